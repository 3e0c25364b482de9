package auth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// declaredReasons returns the value of every Reason* constant declared in the
// package's non-test files, so a reason added without updating Reasons() is
// caught too.
func declaredReasons(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s is not a string literal; want every reason spelled out in package auth", name.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					values = append(values, v)
				}
			}
		}
	}
	return values
}

// TestReasonsAreMetricsLabels fails when auth gains (or loses) a reason that
// package metrics does not pre-create at zero: metrics cannot import auth,
// so its closed set repeats auth's.
func TestReasonsAreMetricsLabels(t *testing.T) {
	got := Reasons()
	declared := declaredReasons(t)
	slices.Sort(declared)
	if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, declared) {
		t.Errorf("Reasons() = %v; want every declared Reason constant %v", sorted, declared)
	}
	if got[0] != ReasonOK {
		t.Errorf("Reasons()[0] = %q; want %q", got[0], ReasonOK)
	}

	labels := metrics.Reasons()
	if want := append(Reasons(), metrics.Other); !slices.Equal(labels, want) {
		t.Errorf("metrics.Reasons() = %v; want auth.Reasons() then %q: %v", labels, metrics.Other, want)
	}

	reg := prometheus.NewRegistry()
	metrics.New(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	zero := map[string]int{} // reason -> series at zero
	for _, f := range families {
		if f.GetName() != metrics.Namespace+"_auth_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && m.GetCounter().GetValue() == 0 {
					zero[l.GetValue()]++
				}
			}
		}
	}
	for _, r := range Reasons() {
		if n, want := zero[r], len(metrics.Results()); n != want {
			t.Errorf("auth_decisions_total{reason=%q} series at zero after metrics.New = %d; want %d (one per result)",
				r, n, want)
		}
	}
}
