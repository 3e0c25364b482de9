package limits

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestAnalyse(t *testing.T) {
	tests := []struct {
		name, query, op string
		want            Facts
	}{
		// Hasura's own examples (docs "API limits": depth and node limits).
		{name: "depth 1", query: `query deep1_1 { viewer { name } }`, want: Facts{Depth: 1, Nodes: 1}},
		{name: "depth 1 inline fragment", query: `query deep1_2 { viewer { ... on User { name } } }`, want: Facts{Depth: 1, Nodes: 1}},
		{name: "depth 2", query: `query deep2 { viewer { albums { title } } }`, want: Facts{Depth: 2, Nodes: 2}},
		{name: "depth 3 named fragment", query: `query deep3 { viewer { albums { ...musicInfo songs { ...musicInfo } } } }
			fragment musicInfo on Music { id name }`, want: Facts{Depth: 3, Nodes: 3}},
		{name: "hasura node example", query: `{ author { name articles { id title } } homepage_entries { article_id } }`, want: Facts{Depth: 2, Nodes: 3}},
		{name: "leaves only", query: `{ __typename }`, want: Facts{}},
		{name: "fragment adds its fields each time it is spread", query: `{ a { ...F } b { ...F } } fragment F on T { x { y } }`, want: Facts{Depth: 2, Nodes: 4}},
		{name: "nested fragments", query: `{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { d } }`, want: Facts{Depth: 3, Nodes: 3}},
		{name: "aliases are fields", query: `{ x: a { b } y: a { b } }`, want: Facts{Depth: 1, Nodes: 2}},
		{name: "mutation", query: `mutation { insert_users(objects: {}) { returning { id } } }`, want: Facts{Depth: 2, Nodes: 2}},
		{name: "subscription", query: `subscription { users { id } }`, want: Facts{Depth: 1, Nodes: 1}},
		{name: "select by operationName", query: `query A { a { b { c } } } query B { a { b } }`, op: "B", want: Facts{Depth: 1, Nodes: 1}},
		// Introspection: __schema/__type anywhere; exempt from depth, not
		// from nodes; __typename is not introspection.
		{name: "introspection", query: `{ __schema { types { name fields { name } } } }`, want: Facts{Depth: 0, Nodes: 3, Introspection: true}},
		{name: "__type aliased", query: `{ t: __type(name: "x") { name } }`, want: Facts{Nodes: 1, Introspection: true}},
		{name: "introspection in a fragment", query: `{ ...I } fragment I on query_root { __schema { queryType { name } } }`, want: Facts{Nodes: 2, Introspection: true}},
		{name: "introspection in an inline fragment", query: `{ ... on query_root { __type(name: "a") { name } } }`, want: Facts{Nodes: 1, Introspection: true}},
		{name: "mixed: depth counts the rest", query: `{ __schema { types { fields { name } } } users { posts { id } } }`, want: Facts{Depth: 2, Nodes: 5, Introspection: true}},
		{name: "typename is not introspection", query: `{ users { __typename id } }`, want: Facts{Depth: 1, Nodes: 1}},
		{name: "a field named like an operation is not introspection", query: `query __schema { users { id } }`, want: Facts{Depth: 1, Nodes: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := analyse(tt.query).operation(tt.op)
			if err != nil {
				t.Fatalf("analyse(%q) error %v; want none", tt.query, err)
			}
			if got != tt.want {
				t.Errorf("analyse(%q) = %+v; want %+v", tt.query, got, tt.want)
			}
		})
	}
}

func TestAnalyseInvalid(t *testing.T) {
	tests := []struct {
		name, query, op, want string
	}{
		{"syntax", `{ a { `, "", "Expected Name"},
		{"empty", ``, "", "no operation"},
		{"only fragments", `fragment F on T { a }`, "", "no operation"},
		{"unknown fragment", `{ a { ...Nope } }`, "", `unknown fragment "Nope"`},
		{"fragment cycle", `{ ...A } fragment A on T { b { ...B } } fragment B on T { ...A }`, "", `spreads itself`},
		{"self spread", `{ ...A } fragment A on T { ...A }`, "", `spreads itself`},
		{"duplicate fragment", `{ ...A } fragment A on T { a } fragment A on T { b }`, "", "defined twice"},
		{"duplicate operation", `query A { a } query A { b }`, "A", "defined twice"},
		{"ambiguous", `query A { a } query B { b }`, "", "operationName is not specified"},
		{"no such operation", `query A { a }`, "B", `no such operation found in the document: "B"`},
		{"unused cycle still refused", `{ a } fragment A on T { ...A }`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := analyse(tt.query).operation(tt.op)
			if tt.want == "" {
				// An unused fragment is not walked: Hasura refuses the
				// document for the unused fragment itself; the limits do
				// not need to.
				if err != nil {
					t.Fatalf("error %v; want none", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("analyse(%q) error = %v; want ErrInvalid containing %q", tt.query, err, tt.want)
			}
		})
	}
}

// A few kilobytes of fragments that each spread the next twice would count
// 2^n nodes: the count saturates and the walk stays linear.
func TestAnalyseExponentialFragments(t *testing.T) {
	var b strings.Builder
	b.WriteString("{ ...F0 }\n")
	const n = 200
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "fragment F%d on T { a { ...F%d } b { ...F%d } }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on T { leaf }\n", n)
	got, err := analyse(b.String()).operation("")
	if err != nil {
		t.Fatal(err)
	}
	if got.Nodes != maxCount || got.Depth != n {
		t.Errorf("facts = %+v; want Nodes %d (saturated), Depth %d", got, maxCount, n)
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(8)
	for i := 0; i < 100; i++ {
		c.get(fmt.Sprintf("{ a%d { b } }", i))
	}
	if n := c.len(); n > 8 {
		t.Errorf("cache holds %d entries; want at most 8", n)
	}
	d1 := c.get("{ x { y } }")
	if d2 := c.get("{ x { y } }"); d1 != d2 {
		t.Errorf("a repeated query was analysed again; want the cached analysis")
	}
}

// FuzzAnalyse: attacker-supplied documents never crash the analysis, and
// the facts are within their bounds.
func FuzzAnalyse(f *testing.F) {
	for _, s := range []string{
		`{ a { b } }`, `query A { a } query B { b }`, `{ ...A } fragment A on T { ...A }`,
		`{ __schema { types { name } } }`, `{ ... on T { a { b } } }`, `{ a { ...F } } fragment F on T { b { c } }`,
		`subscription { s { id } }`, `{`, `fragment F on T { a }`,
	} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, query, op string) {
		facts, err := analyse(query).operation(op)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if facts.Depth < 0 || facts.Nodes < 0 || facts.Nodes > maxCount || facts.Depth > facts.Nodes && !facts.Introspection {
			t.Fatalf("facts %+v out of bounds", facts)
		}
	})
}

// FuzzParseBody: any body either parses or is refused; never a crash.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{`{"query":"{ a }"}`, `[{"query":"{ a }"},{"query":"{ b }"}]`, `{"query":1}`, `[1]`, `null`, `{"operationName":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, _, ok := parseBody(body)
		if ok && reqs == nil {
			t.Fatal("parsed without requests")
		}
	})
}
