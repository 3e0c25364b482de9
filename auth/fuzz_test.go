package auth

// Fuzz targets for every parser that takes attacker input, seeded from the
// table cases. Each checks properties, not only the absence of panics:
// results that reach Hasura are always valid, unmodified header values, and
// parse/print pairs round-trip. Crashers found by `go test -fuzz` are kept
// under testdata/fuzz/<FuzzName>/ and replayed by every `go test`.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fzHSKey is the HS256 secret of FuzzAuthenticate; it must never appear in
// an error.
const fzHSKey = "fuzz-hs256-key-0123456789abcdef-0123456789"

// FuzzExtractTokens feeds arbitrary Authorization, Cookie and custom header
// values to token extraction at every kind of location.
func FuzzExtractTokens(f *testing.F) {
	for _, s := range []struct{ authz, cookie, custom string }{
		{"Bearer abc.def.ghi", "", ""},
		{"bearer abc.def.ghi", "", ""},
		{"BEARER\tabc.def.ghi", "", ""},
		{"  Bearer   abc  ", "", ""},
		{"Bearer", "", ""},
		{"Bearer ", "", ""},
		{"Bearer a b", "", ""},
		{"Basic dXNlcjpwYXNz", "", ""},
		{"Bearer\x00abc", "", ""},
		{"", "__session=abc.def.ghi; other=1", "abc"},
		{"", "__session=a; __session=b", " tok "},
		{"", `__session="quoted"`, ""},
		{"", "__session", "\t"},
	} {
		f.Add(s.authz, s.cookie, s.custom)
	}
	f.Fuzz(func(t *testing.T, authz, cookie, custom string) {
		h := http.Header{}
		if authz != "" {
			h["Authorization"] = []string{authz}
		}
		if cookie != "" {
			h["Cookie"] = []string{cookie}
		}
		if custom != "" {
			h["X-Token"] = []string{custom}
		}
		// parseBearer: one token, no blanks, and "Bearer <tok>" gives it back.
		if tok, ok := parseBearer(authz); ok {
			if tok == "" || strings.ContainsAny(tok, " \t") {
				t.Fatalf("parseBearer(%q) = %q; want a non-empty token without blanks", authz, tok)
			}
			if again, ok := parseBearer("Bearer " + tok); !ok || again != tok {
				t.Fatalf("parseBearer(Bearer %q) = %q, %v; want %q, true", tok, again, ok, tok)
			}
		}
		for _, loc := range []location{
			{kind: "authorization"},
			{kind: "cookie", name: "__session"},
			{kind: "header", name: "X-Token"},
		} {
			cands, err := extractTokens(h, loc, nil)
			if err != nil {
				if loc.kind != "authorization" || !errors.Is(err, ErrMalformedHeader) {
					t.Fatalf("%s: extractTokens err = %v; want nil (or ErrMalformedHeader for authorization)", loc.kind, err)
				}
				continue
			}
			for _, c := range cands {
				if c.loc != loc {
					t.Fatalf("candidate loc = %v; want %v", c.loc, loc)
				}
				switch loc.kind {
				case "authorization":
					if want, _ := parseBearer(authz); c.raw != want {
						t.Fatalf("authorization candidate %q, want %q", c.raw, want)
					}
				case "header":
					if c.raw != strings.TrimSpace(custom) {
						t.Fatalf("header candidate = %q; want %q", c.raw, strings.TrimSpace(custom))
					}
				case "cookie":
					if !strings.Contains(cookie, c.raw) {
						t.Fatalf("cookie candidate = %q; want a part of %q", c.raw, cookie)
					}
				}
			}
			if loc.kind == "authorization" && len(cands) > 1 {
				t.Fatalf("tokens from one Authorization value = %d; want at most 1", len(cands))
			}
		}
	})
}

// FuzzJSONPath parses Hasura's JSONPath subset. A path that parses prints
// (String) to a path that parses to the same elements. Lookups
// never panic and find only valid JSON in valid JSON.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{
		"$", "$.a", "a", "$.a.b", "$.a[0]", "$['https://hasura.io/jwt/claims']", `$["a.b"]`,
		"$.hasura.claims", "$.a.[0]", "$[0][1]", "$.a-b", "$._x", "$.", "$..a", "$[", "$[-1]", "$[+1]",
		`$['a\'b']`, `$["a\"b"]`, `$["\u00e9"]`, "$['']", "$[99999999999999999999]", "$.a['b'].c[2]",
	} {
		f.Add(s, []byte(`{"a":{"b":[1,{"c":"x"}],"a.b":1},"https://hasura.io/jwt/claims":{"x-hasura-user-id":"1"}}`))
	}
	f.Fuzz(func(t *testing.T, s string, doc []byte) {
		p, err := parseJSONPath(s)
		if err != nil {
			return
		}
		printed := p.String()
		if !strings.HasPrefix(printed, "$") {
			t.Fatalf("String() = %q; want a path starting with $", printed)
		}
		for _, e := range p {
			if e.isIdx && e.index < 0 {
				t.Fatalf("parseJSONPath(%q) has index %d; want no negative index", s, e.index)
			}
		}
		q, err := parseJSONPath(printed)
		if err != nil {
			t.Fatalf("parseJSONPath(%q) (printed from %q) = %v; want nil", printed, s, err)
		}
		if !reflect.DeepEqual(q, p) {
			t.Fatalf("%q printed as %q parses to %#v, want %#v", s, printed, q, p)
		}
		v, ok := p.lookup(doc)
		if ok && json.Valid(doc) && !json.Valid(v) {
			t.Fatalf("lookup(%q) in valid JSON = %q; want valid JSON", s, v)
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(doc, &top) == nil {
			v, ok := p.lookupIn(top)
			if ok && !json.Valid(v) {
				t.Fatalf("lookupIn(%q) = %q; want valid JSON", s, v)
			}
		}
	})
}

// FuzzDecodeToken decodes arbitrary compact tokens. It never panics, refuses
// with an *Error from the catalogue, and a token it accepts has a header, a
// claim set and a signature.
func FuzzDecodeToken(f *testing.F) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		enc([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc([]byte(`{"iss":"i","exp":1,"aud":["a"]}`)) + ".c2ln",
		enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{}`)) + ".",
		enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(`{"exp":"soon"}`)) + ".x",
		enc([]byte(`[]`)) + "." + enc([]byte(`{}`)) + ".x",
		enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`[]`)) + ".x",
		enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"exp":1e400}`)) + ".x",
		"a.b", "a.b.c.d", "...", "", "!!.!!.!!",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		d, err := decodeToken(raw, DefaultMaxTokenBytes)
		if err != nil || d.claims == nil {
			t.Fatalf("decodeToken(%q) = %+v, %v; want a decoded token", raw, d, err)
		}
		if err := d.decodeErr; err != nil {
			if err.Code != CodeInvalidJWT || !strings.HasPrefix(err.Message, "Could not verify JWT: ") || d.tok != nil {
				t.Fatalf("decodeToken(%q) = %+v; want an invalid-jwt \"Could not verify JWT: \" error and no token", raw, d)
			}
			return
		}
		if d.tok == nil || d.tok.Header == nil || d.tok.Claims != d.claims {
			t.Fatalf("decodeToken(%q) = %+v; want a token with header and the decoded claims", raw, d)
		}
		if d.tok.Raw != raw || strings.Count(raw, ".") != 2 {
			t.Fatalf("decodeToken(%q) Raw = %q; want the three-part input", raw, d.tok.Raw)
		}
		alg, _ := d.tok.Header["alg"].(string)
		switch {
		case alg == "none" && d.algErr != ErrNoSignatures:
			t.Fatalf("alg none: algErr = %v; want %v", d.algErr, ErrNoSignatures)
		case d.algErr == nil && (d.tok.Method == nil || d.tok.Method.Alg() != alg):
			t.Fatalf("alg %q: method = %v, algErr nil; want the method of %q or an alg error", alg, d.tok.Method, alg)
		}
	})
}

// FuzzClaimSet decodes arbitrary JSON as a JWT payload.
func FuzzClaimSet(f *testing.F) {
	for _, s := range []string{
		`{"iss":"a","sub":"s","aud":"x","exp":1.5,"nbf":null,"iat":0,"azp":"p"}`,
		`{"aud":["a","b"]}`, `{"aud":1}`, `{"exp":"1"}`, `{"exp":1e309}`, `{"iss":null}`, `[]`, `"x"`, ` {} `,
		`{"https://hasura.io/jwt/claims":{"x-hasura-user-id":"1"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &claimSet{}
		if err := json.Unmarshal(b, c); err != nil {
			return
		}
		if c.hasIss != (c.raw["iss"] != nil && string(c.raw["iss"]) != "null") {
			t.Fatalf("hasIss = %v for %s; want %v", c.hasIss, b, !c.hasIss)
		}
		if c.hasAud && len(c.aud) == 0 && string(bytes.TrimSpace(c.raw["aud"])) != "[]" {
			t.Fatalf("aud = [] for %s; want the audiences (only a literal [] is empty)", b)
		}
		for _, d := range []struct {
			name string
			set  bool
		}{{"exp", c.exp != nil}, {"nbf", c.nbf != nil}, {"iat", c.iat != nil}} {
			if d.set && (c.raw[d.name] == nil || string(c.raw[d.name]) == "null") {
				t.Fatalf("%s set for %s; want unset (no such claim)", d.name, b)
			}
		}
	})
}

// fzRules builds claims rules for one of the configuration modes.
func fzRules(t *testing.T, mode uint8, path string) (claimsRules, bool) {
	t.Helper()
	s := &JWTSecret{}
	switch mode % 6 {
	case 0: // default namespace
	case 1:
		s.ClaimsNamespace = "claims"
	case 2:
		s.ClaimsNamespacePath = "$.hasura.claims"
	case 3:
		s.ClaimsNamespacePath = path
		s.ClaimsFormat = "stringified_json"
	case 4:
		s.ClaimsFormat = "stringified_json"
	case 5:
		s.ClaimsMap = map[string]ClaimsMapEntry{
			"x-hasura-allowed-roles": {Path: "$.roles"},
			"x-hasura-default-role":  {Path: "$.role", Default: json.RawMessage(`"user"`)},
			"x-hasura-user-id":       {Path: "$.sub"},
			"x-hasura-org-id":        {Path: path, Default: json.RawMessage(`"none"`)},
			"x-hasura-tenant":        {Literal: json.RawMessage(`"t1"`)},
		}
	}
	if s.ClaimsNamespacePath != "" {
		if _, err := parseJSONPath(s.ClaimsNamespacePath); err != nil {
			return claimsRules{}, false
		}
	}
	if p := s.ClaimsMap["x-hasura-org-id"].Path; s.ClaimsMap != nil {
		if _, err := parseJSONPath(p); err != nil {
			return claimsRules{}, false
		}
	}
	r, err := newClaimsRules(s, mode >= 6)
	if err != nil {
		return claimsRules{}, false
	}
	return r, true
}

// checkSessionClaims is the property every verified claim set must have
// before any of it becomes a header sent to Hasura.
func checkSessionClaims(t *testing.T, hc *hasuraClaims) {
	t.Helper()
	if hc.defaultRole == "" {
		t.Fatal("empty default role")
	}
	for _, r := range append([]string{hc.defaultRole}, hc.allowedRoles...) {
		if r == "" || !validHeaderValue(r) || strings.Trim(r, " \t") != r {
			t.Fatalf("role = %q; want a non-empty valid header value without surrounding blanks", r)
		}
	}
	seen := map[string]bool{}
	for _, v := range hc.vars {
		checkVar(t, v)
		if seen[v.Name] {
			t.Fatalf("session variable %s seen twice; want once", v.Name)
		}
		seen[v.Name] = true
	}
}

func checkVar(t *testing.T, v Var) {
	t.Helper()
	if v.Name != strings.ToLower(v.Name) || !strings.HasPrefix(v.Name, "x-hasura-") || !isToken(v.Name) {
		t.Fatalf("session variable name = %q; want a lower-case x-hasura-* token", v.Name)
	}
	switch strings.ReplaceAll(v.Name, "_", "-") {
	case varRole, varAdminSecret, varAccessKey, varBackendOnly, varAllowedRoles, varDefaultRole:
		t.Fatalf("session variable %q forwarded; want reserved names dropped", v.Name)
	}
	if !validHeaderValue(v.Value) {
		t.Fatalf("session variable %s = %q; want a valid header value", v.Name, v.Value)
	}
}

// FuzzClaimsExtract applies every claims mode (namespace, custom namespace,
// path, stringified JSON, claims_map; arrays rejected or as Postgres arrays)
// to arbitrary payloads.
func FuzzClaimsExtract(f *testing.F) {
	ns := `{"x-hasura-allowed-roles":["user","editor"],"x-hasura-default-role":"user","x-hasura-user-id":"u1","x-hasura-org":["a","b c"]}`
	nsStr, _ := json.Marshal(ns)
	for _, s := range []struct {
		payload string
		mode    uint8
		path    string
	}{
		{`{"https://hasura.io/jwt/claims":` + ns + `}`, 0, ""},
		{`{"https://hasura.io/jwt/claims":` + ns + `}`, 6, ""},
		{`{"claims":` + ns + `}`, 1, ""},
		{`{"hasura":{"claims":` + ns + `}}`, 2, ""},
		{`{"hasura":{"claims":` + string(nsStr) + `}}`, 3, "$.hasura.claims"},
		{`{"https://hasura.io/jwt/claims":` + string(nsStr) + `}`, 4, ""},
		{`{"roles":["user"],"role":"user","sub":"u1","org":{"id":"o"}}`, 5, "$.org.id"},
		{`{"roles":["user"],"sub":"u1"}`, 11, "$.missing"},
		{`{"https://hasura.io/jwt/claims":{"x-hasura-allowed-roles":[" admin"],"x-hasura-default-role":" admin"}}`, 0, ""},
		{`{"https://hasura.io/jwt/claims":{"x-hasura-allowed-roles":["u"],"x-hasura-default-role":"u","x-hasura-admin_secret":"s","X-Hasura-Role":"admin","x-hasura-a":"\r\n"}}`, 0, ""},
		{`{"https://hasura.io/jwt/claims":{"x-hasura-allowed-roles":["u"],"x-hasura-default-role":"u","x-hasura-list":["a",1,true,null,"{}","NULL",""]}}`, 6, ""},
	} {
		f.Add([]byte(s.payload), s.mode, s.path)
	}
	f.Fuzz(func(t *testing.T, payload []byte, mode uint8, path string) {
		mode %= 12
		r, ok := fzRules(t, mode, path)
		if !ok {
			return
		}
		c := &claimSet{}
		if json.Unmarshal(payload, c) != nil {
			return
		}
		hc, err := r.extract(c)
		if err != nil {
			if err.Code != CodeJWTInvalidClaims && err.Code != CodeJWTMissingRoleClaims {
				t.Fatalf("extract err = %+v; want code %s or %s", err, CodeJWTInvalidClaims, CodeJWTMissingRoleClaims)
			}
			return
		}
		if hc.varsErr != nil {
			if hc.varsErr.Code != CodeJWTInvalidClaims {
				t.Fatalf("varsErr = %+v; want code %s", hc.varsErr, CodeJWTInvalidClaims)
			}
			return
		}
		checkSessionClaims(t, hc)
		if r.claimsMap != nil {
			for _, v := range hc.vars {
				if v.Name == "x-hasura-tenant" && v.Value != "t1" {
					t.Fatalf("x-hasura-tenant = %q; want the literal %q", v.Value, "t1")
				}
			}
		}
		for _, role := range hc.allowedRoles {
			if got, err := selectRole(hc, role); err != nil || got != role {
				t.Fatalf("selectRole(%q) = %q, %v; want %q, nil", role, got, err, role)
			}
		}
	})
}

// FuzzPostgresArray renders JSON arrays as Postgres array literals and reads
// them back with Postgres' own rules: the elements must survive.
func FuzzPostgresArray(f *testing.F) {
	for _, s := range []string{
		`["a","b"]`, `["a b","x\"y","c\\d","{}",",",""]`, `["NULL","null",null]`, `[1,2.5,true,false]`,
		`[" lead","trail ","\t"]`, `["é","日本"]`, `[]`, `[[1]]`, `[{"a":1}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		lit, ok := postgresArray(raw)
		var elems []json.RawMessage
		if !ok {
			return
		}
		if json.Unmarshal(raw, &elems) != nil {
			t.Fatalf("postgresArray(%q) = ok; want refused (not a JSON array)", raw)
		}
		got, err := fzParsePGArray(lit)
		if err != nil {
			t.Fatalf("postgresArray(%s) = %q, which Postgres cannot read (%v); want a valid array literal", raw, lit, err)
		}
		if len(got) != len(elems) {
			t.Fatalf("postgresArray(%s) = %q: %d elements, want %d", raw, lit, len(got), len(elems))
		}
		for i, e := range elems {
			var want *string
			switch jsonKind(e) {
			case "String":
				var s string
				if json.Unmarshal(e, &s) != nil {
					t.Fatalf("element %d = %s; want a JSON string", i, e)
				}
				want = &s
			case "Null":
			default:
				s := string(bytes.TrimSpace(e))
				want = &s
			}
			switch {
			case want == nil && got[i] != nil:
				t.Fatalf("postgresArray(%s) = %q: element %d is %q, want NULL", raw, lit, i, *got[i])
			case want != nil && (got[i] == nil || *got[i] != *want):
				t.Fatalf("postgresArray(%s) = %q: element %d is %v, want %q", raw, lit, i, got[i], *want)
			}
		}
	})
}

// fzParsePGArray reads a one-dimensional Postgres array literal the way
// array_in does: unquoted elements are trimmed of whitespace and NULL
// (any case) is null; quoted elements keep everything, with backslash
// escapes.
func fzParsePGArray(s string) ([]*string, error) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, errors.New("not enclosed in {}")
	}
	body := s[1 : len(s)-1]
	if strings.TrimSpace(body) == "" {
		return nil, nil
	}
	var out []*string
	for i := 0; ; {
		for i < len(body) && strings.IndexByte(" \t\n\r\v\f", body[i]) >= 0 {
			i++
		}
		var elem strings.Builder
		quoted := i < len(body) && body[i] == '"'
		if quoted {
			i++
			closed := false
			for i < len(body) {
				c := body[i]
				if c == '\\' && i+1 < len(body) {
					elem.WriteByte(body[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				elem.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("unterminated quoted element")
			}
			for i < len(body) && strings.IndexByte(" \t\n\r\v\f", body[i]) >= 0 {
				i++
			}
		} else {
			for i < len(body) && body[i] != ',' {
				switch body[i] {
				case '"', '{', '}', '\\':
					return nil, errors.New("special character in an unquoted element")
				}
				elem.WriteByte(body[i])
				i++
			}
		}
		v := elem.String()
		switch {
		case quoted:
			out = append(out, &v)
		default:
			v = strings.TrimRight(v, " \t\n\r\v\f")
			if v == "" {
				return nil, errors.New("empty unquoted element")
			}
			if strings.EqualFold(v, "NULL") {
				out = append(out, nil)
			} else {
				out = append(out, &v)
			}
		}
		if i >= len(body) {
			return out, nil
		}
		if body[i] != ',' {
			return nil, errors.New("junk after an element")
		}
		i++
	}
}

// FuzzAuthenticate runs the whole pipeline on validly signed tokens whose
// header and payload bytes are arbitrary (HS256 static key, so the fuzzer
// reaches past the signature), with an arbitrary requested role and custom
// header. A session is always safe to turn into headers; a refusal is an
// *Error that leaks neither the key nor the token.
func FuzzAuthenticate(f *testing.F) {
	cfg := DefaultConfig()
	cfg.JWTSecrets = []JWTSecret{
		{Type: "HS256", Key: fzHSKey, Issuer: "https://a.example", Name: "a"},
		{Type: "HS256", Key: fzHSKey + "-b", Issuer: "https://b.example", Name: "b",
			ClaimsNamespacePath: "$.hasura", ClaimsFormat: "stringified_json", Header: &HeaderSource{Type: "CustomHeader", Name: "X-Token"}},
	}
	cfg.AuthorizedParties = []string{"https://app.example"}
	cfg.ArrayClaims = "postgres"
	now := time.Unix(1_800_000_000, 0)
	a, err := New(Options{Config: cfg, AdminSecret: "fuzz-admin-secret", Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	good := `{"iss":"https://a.example","azp":"https://app.example","sub":"u","exp":1800000060,"iat":1800000000,` +
		`"https://hasura.io/jwt/claims":{"x-hasura-allowed-roles":["user","editor"],"x-hasura-default-role":"user","x-hasura-user-id":"u","x-hasura-orgs":["a","b"]}}`
	for _, s := range []struct {
		header, payload, role string
		where                 uint8
	}{
		{`{"alg":"HS256","typ":"JWT"}`, good, "", 0},
		{`{"alg":"HS256"}`, good, "editor", 0},
		{`{"alg":"HS256"}`, good, "admin", 0},
		{`{"alg":"HS512"}`, good, "", 0},
		{`{"alg":"none"}`, good, "", 0},
		{`{"alg":"HS256"}`, strings.Replace(strings.Replace(good, `"user","editor"`, `" user"`, 1), `default-role":"user"`, `default-role":" user"`, 1), "", 0},
		{`{"alg":"HS256"}`, strings.Replace(good, `"x-hasura-user-id":"u"`, `"x-hasura-user-id":"u\r\nx"`, 1), "", 0},
		{`{"alg":"HS256"}`, strings.Replace(good, `"x-hasura-user-id"`, `"x-hasura-admin_secret"`, 1), "", 0},
		{`{"alg":"HS256"}`, `{"iss":"https://b.example","exp":1800000060,"hasura":"{\"x-hasura-allowed-roles\":[\"u\"],\"x-hasura-default-role\":\"u\"}"}`, "", 1},
		{`{"alg":"HS256"}`, `{"exp":1800000060}`, "", 2},
	} {
		f.Add(s.header, []byte(s.payload), s.role, s.where)
	}
	f.Fuzz(func(t *testing.T, header string, payload []byte, role string, where uint8) {
		enc := base64.RawURLEncoding.EncodeToString
		signing := enc([]byte(header)) + "." + enc(payload)
		key := fzHSKey
		if where%3 == 1 {
			key += "-b"
		}
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(signing))
		tok := signing + "." + enc(mac.Sum(nil))
		h := http.Header{}
		switch where % 3 {
		case 0:
			h["Authorization"] = []string{"Bearer " + tok}
		case 1:
			h["X-Token"] = []string{tok}
		default:
			h["Authorization"] = []string{"Bearer " + tok}
			h["X-Token"] = []string{tok}
		}
		if role != "" {
			h["X-Hasura-Role"] = []string{role}
		}
		s, err := a.Authenticate(context.Background(), h)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error = %T %v; want an *Error", err, err)
			}
			for _, secret := range []string{fzHSKey, "fuzz-admin-secret"} {
				if strings.Contains(e.Message, secret) || strings.Contains(e.Detail, secret) {
					t.Fatalf("error = %+v; want it without the secret", e)
				}
			}
			if len(tok) > 40 && (strings.Contains(e.Message, tok) || strings.Contains(e.Detail, tok)) {
				t.Fatalf("error = %+v; want it without the token", e)
			}
			if !utf8.ValidString(e.Message) && utf8.Valid(payload) {
				t.Fatalf("Message = %q; want valid UTF-8", e.Message)
			}
			return
		}
		if s.Result != ResultAllowed {
			t.Fatalf("Result for a token = %q; want %q", s.Result, ResultAllowed)
		}
		if s.Role == "" || !validHeaderValue(s.Role) || strings.Trim(s.Role, " \t") != s.Role {
			t.Fatalf("Role = %q; want a non-empty valid header value without surrounding blanks", s.Role)
		}
		if role != "" && s.Role != role {
			t.Fatalf("Role = %q; want the requested %q", s.Role, role)
		}
		for _, v := range s.Vars {
			checkVar(t, v)
		}
	})
}

// FuzzSecretEqual checks the admin secret comparison: equal exactly when
// the values are equal and the configured secret is not empty.
func FuzzSecretEqual(f *testing.F) {
	f.Add("s3cret", "s3cret")
	f.Add("s3cret", "s3creT")
	f.Add("s3cret", "s3cre")
	f.Add("", "")
	f.Add("a", "")
	f.Fuzz(func(t *testing.T, configured, presented string) {
		if got, want := Secret(configured).Equal(presented), configured == presented && configured != ""; got != want {
			t.Fatalf("Secret(%q).Equal(%q) = %v, want %v", configured, presented, got, want)
		}
	})
}
