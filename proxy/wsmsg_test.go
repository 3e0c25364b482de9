package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// initCases are connection_init messages and the payload.headers the proxy
// must read from them (nil: none). They seed FuzzConnectionInit.
var initCases = []struct {
	name    string
	msg     string
	headers []headerField
	err     bool
}{
	{"graphql-ws connectionParams", `{"type":"connection_init","payload":{"headers":{"Authorization":"Bearer t"}}}`,
		[]headerField{{"Authorization", "Bearer t"}}, false},
	{"order kept, duplicates kept", `{"type":"connection_init","payload":{"headers":{"x-hasura-role":"a","Authorization":"Bearer 1","authorization":"Bearer 2"}}}`,
		[]headerField{{"x-hasura-role", "a"}, {"Authorization", "Bearer 1"}, {"authorization", "Bearer 2"}}, false},
	{"non-string values ignored", `{"type":"connection_init","payload":{"headers":{"a":1,"b":null,"c":["x"],"d":{"e":"f"},"g":"h"}}}`,
		[]headerField{{"g", "h"}}, false},
	{"escapes decoded", `{"type":"connection_init","payload":{"headers":{"Authori\u007aation":"Bearer \u0074"}}}`,
		[]headerField{{"Authorization", "Bearer t"}}, false},
	{"no payload", `{"type":"connection_init"}`, nil, false},
	{"null payload", `{"type":"connection_init","payload":null}`, nil, false},
	{"payload without headers", `{"type":"connection_init","payload":{"authToken":"t"}}`, nil, false},
	{"top-level Authorization not read", `{"type":"connection_init","payload":{"Authorization":"Bearer t"}}`, nil, false},
	{"headers not an object", `{"type":"connection_init","payload":{"headers":"Authorization: Bearer t"}}`, nil, false},
	{"last headers member wins", `{"type":"connection_init","payload":{"headers":{"a":"1"},"headers":{"b":"2"}}}`,
		[]headerField{{"b", "2"}}, false},
	{"empty name dropped", `{"type":"connection_init","payload":{"headers":{"":"x"}}}`, nil, false},
	{"payload a string", `{"type":"connection_init","payload":"Bearer t"}`, nil, true},
	{"payload an array", `{"type":"connection_init","payload":[{"headers":{"a":"b"}}]}`, nil, true},
	{"upper-case TYPE is not type", `{"TYPE":"connection_init"}`, nil, true},
	{"not JSON", `connection_init`, nil, true},
	{"an array", `[{"type":"connection_init"}]`, nil, true},
	{"type not a string", `{"type":1}`, nil, true},
}

func TestParseConnectionInit(t *testing.T) {
	for _, tt := range initCases {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := parseClientMessage([]byte(tt.msg))
			var got []headerField
			if err == nil {
				if msg.Type != "connection_init" {
					err = errUnexpectedType
				} else {
					got, err = parseInitPayload(msg.Payload)
				}
			}
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.headers) {
				t.Errorf("headers %q, want %q", got, tt.headers)
			}
		})
	}
}

// FuzzConnectionInit feeds the connection_init parser arbitrary messages:
// it must not panic, must only accept valid JSON, and must return exactly
// the string members of payload.headers, in order.
func FuzzConnectionInit(f *testing.F) {
	for _, tt := range initCases {
		f.Add([]byte(tt.msg))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parseClientMessage(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		headers, err := parseInitPayload(msg.Payload)
		if err != nil {
			return
		}
		// Oracle: the ordered string members, found another way.
		var want []headerField
		var p map[string]json.RawMessage
		if json.Unmarshal(msg.Payload, &p) == nil {
			want = orderedStrings(t, p["headers"])
		}
		if !reflect.DeepEqual(headers, want) {
			t.Fatalf("headers %q, want %q (message %q)", headers, want, data)
		}
		// What the proxy builds from them is a well-formed header map.
		c := &wsConn{p: &wsProxy{}}
		for k := range c.authHeaders(http.Header{}, headers) {
			if k != http.CanonicalHeaderKey(k) {
				t.Fatalf("non-canonical header name %q", k)
			}
		}
	})
}

// orderedStrings decodes an object member by member with json.Decoder.Token
// and keeps the string values with non-empty names.
func orderedStrings(t *testing.T, raw json.RawMessage) []headerField {
	t.Helper()
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	var obj map[string]any // validates
	if json.Unmarshal(raw, &obj) != nil {
		t.Fatalf("headers accepted as an object but invalid: %s", raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	_, _ = dec.Token()
	var out []headerField
	for dec.More() {
		k, _ := dec.Token()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if s, ok := v.(string); ok && k.(string) != "" {
			out = append(out, headerField{k.(string), s})
		}
	}
	return out
}

// scanCases are relayed client messages and what typeScanner must find.
// They seed FuzzTypeScanner.
var scanCases = []struct {
	msg    string
	nTypes int
	first  int
}{
	{`{"id":"1","type":"subscribe","payload":{"query":"subscription { a }"}}`, 1, typeOther},
	{`{"type":"connection_init","payload":{}}`, 1, typeInit},
	{` {"t\u0079pe" : "connection_\u0069nit"} `, 1, typeInit},
	{`{"type":"connection_init\u0000"}`, 1, typeOther},
	{`{"type":"CONNECTION_INIT"}`, 1, typeOther},
	{`{"Type":"connection_init"}`, 0, typeUnknown},
	{`{"payload":{"type":"connection_init"},"id":"x"}`, 0, typeUnknown},
	{`{"payload":[{"type":"connection_init"}],"type":"start"}`, 1, typeOther},
	{`{"a":"}\"type\":\"connection_init\"","type":"start"}`, 1, typeOther},
	{`{"a":"\\","type":"connection_init"}`, 1, typeInit},
	{`{"type":"start","type":"connection_init"}`, 2, typeOther},
	{`{"type":{"x":"connection_init"},"type":"connection_init"}`, 2, typeOther},
	{`{"type":null}`, 1, typeOther},
	{`{"type":12,"b":true,"c":-1.5e3}`, 1, typeOther},
	{`{}`, 0, typeUnknown},
	{`[{"type":"connection_init"}]`, 0, typeUnknown},
	{`"connection_init"`, 0, typeUnknown},
	{`{"type":"ping"} {"type":"connection_init"}`, 1, typeOther},
	{`{"type":"\ud83d\ude00"}`, 1, typeOther},
	{`{"type":"` + strings.Repeat("x", 100) + `"}`, 1, typeOther},
}

func TestTypeScanner(t *testing.T) {
	for _, tt := range scanCases {
		for _, size := range []int{1, 2, 3, 7, len(tt.msg)} {
			var s typeScanner
			for i := 0; i < len(tt.msg); i += size {
				s.feed([]byte(tt.msg[i:min(i+size, len(tt.msg))]))
			}
			if s.nTypes != tt.nTypes || s.first != tt.first {
				t.Errorf("%s in chunks of %d: %d types, first %d; want %d, %d", tt.msg, size, s.nTypes, s.first, tt.nTypes, tt.first)
			}
		}
	}
}

// FuzzTypeScanner checks the streaming scanner against encoding/json on
// every valid JSON object, fed in chunks of any size: both must find the
// same number of top-level "type" members and agree on whether the first is
// the string "connection_init". This is what keeps a second
// connection_init from ever being relayed.
func FuzzTypeScanner(f *testing.F) {
	for _, tt := range scanCases {
		f.Add([]byte(tt.msg), uint8(1))
		f.Add([]byte(tt.msg), uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var s typeScanner
		size := int(chunk%64) + 1
		for i := 0; i < len(data); i += size {
			s.feed(data[i:min(i+size, len(data))])
		}
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		if !json.Valid(data) || len(trimmed) == 0 || trimmed[0] != '{' {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		_, _ = dec.Token()
		n, first := 0, typeUnknown
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if k.(string) != "type" {
				continue
			}
			n++
			if first == typeUnknown {
				var str string
				if json.Unmarshal(v, &str) == nil && str == "connection_init" {
					first = typeInit
				} else {
					first = typeOther
				}
			}
		}
		if s.nTypes != n || s.first != first {
			t.Fatalf("%q (chunks of %d): scanner %d types, first %d; encoding/json %d, %d", data, size, s.nTypes, s.first, n, first)
		}
	})
}
