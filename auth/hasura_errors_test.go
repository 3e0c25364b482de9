package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// TestHasuraErrorTexts pins, token by token, the message Hasura answers, as
// read from the sources that produce it:
//
//   - jose (hs-jose 0.10 to 0.12): src/Crypto/JOSE/JWS.hs (the Signature
//     FromJSON instance: "protected header contains invalid JSON"; the order
//     payload, header, signature; jwsCritInvalidNames),
//     src/Crypto/JOSE/Header.hs (headerRequired: missing required header;
//     parseCrit), src/Crypto/JOSE/TH.hs (endGuardExp:
//     unrecognised value, over the Alg list of src/Crypto/JOSE/JWA/JWS.hs,
//     which gained ES256K in 0.10), src/Crypto/JWT.hs (the ClaimsSet,
//     StringOrURI, NumericDate and Audience FromJSON instances);
//   - aeson 2: its "parsing X failed, expected Y, but encountered Z" and
//     eitherDecode's "Error in $.path: " prefix;
//   - Hasura: server/src-lib/Hasura/Server/Auth/JWT.hs ("Could not verify
//     JWT: " <> tshow e, tokenIssuer, parseClaimsMap, parseJwtClaim),
//     server/src-lib/Data/Parser/JSONPath.hs (encodeJSONPath, whose cases
//     are in server/src-test/Data/Parser/JSONPathSpec.hs) and
//     server/src-lib/Data/Text/NonEmpty.hs (RoleName's withText "String").
func TestHasuraErrorTexts(t *testing.T) {
	jwks := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	enc := base64.RawURLEncoding.EncodeToString
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// compact joins a header and a payload (raw JSON or any text) with a
	// signature that is valid base64url; nothing here gets as far as
	// checking it.
	compact := func(header, payload string) string {
		return enc([]byte(header)) + "." + enc([]byte(payload)) + ".c2ln"
	}
	rs := `{"alg":"RS256","kid":"ins_a"}`
	claims := func(f func(c map[string]any)) map[string]any { c := clerkClaims(); f(c); return c }
	payload := func(f func(c map[string]any)) string { return js(claims(f)) }
	const (
		jws    = `Could not verify JWT: JWSError (JSONDecodeError "`
		cset   = `Could not verify JWT: JWTClaimsSetDecodeError "Error in $`
		roles  = "invalid x-hasura-allowed-roles; should be a list of roles: "
		unkAlg = `unrecognised value; expected: [\"HS256\",\"HS384\",\"HS512\",\"RS256\",\"RS384\",\"RS512\",\"ES256\",\"ES384\",\"ES512\",\"ES256K\",\"PS256\",\"PS384\",\"PS512\",\"none\",\"EdDSA\"]`
	)
	tests := []struct {
		name   string
		secret func(*JWTSecret)
		token  string
		code   string
		msg    string // "" means the token is accepted
	}{
		{name: "header is not JSON", token: compact(`not json`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `protected header contains invalid JSON")`},
		{name: "header is a JSON array", token: compact(`["alg"]`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `protected header contains invalid JSON")`},
		{name: "header without alg", token: compact(`{"typ":"JWT","kid":"ins_a"}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `missing required header \"alg\"")`},
		{name: "unknown alg", token: compact(`{"alg":"XS256"}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + unkAlg + `")`},
		{name: "alg is not a string", token: compact(`{"alg":256}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + unkAlg + `")`},
		{name: "alg is case-sensitive", token: compact(`{"alg":"rs256"}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + unkAlg + `")`},
		{name: "kid is not a string", token: compact(`{"alg":"RS256","kid":7}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `parsing Text failed, expected String, but encountered Number")`},
		{name: "crit with an extension", token: compact(`{"alg":"RS256","crit":["exp"],"exp":1}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `crit key is not understood")`},
		{name: "crit naming a registered parameter", token: compact(`{"alg":"RS256","crit":["kid","x"]}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `crit key is reserved")`},
		{name: "crit empty", token: compact(`{"alg":"RS256","crit":[]}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `parsing NonEmpty failed, unexpected empty list")`},
		{name: "crit not a list", token: compact(`{"alg":"RS256","crit":"exp"}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `parsing NonEmpty failed, expected Array, but encountered String")`},
		{name: "crit with a number", token: compact(`{"alg":"RS256","crit":[1]}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `parsing Text failed, expected String, but encountered Number")`},
		{name: "typ is checked before crit", token: compact(`{"alg":"RS256","typ":1,"crit":["x"]}`, payload(func(map[string]any) {})),
			code: CodeInvalidJWT, msg: jws + `parsing Text failed, expected String, but encountered Number")`},
		{name: "payload base64 is checked before the header", token: enc([]byte("not json")) + ".!!!.c2ln",
			code: CodeInvalidJWT, msg: jws + `Not valid base64url")`},
		{name: "header errors come before claims errors", token: compact(`{}`, `[1]`),
			code: CodeInvalidJWT, msg: jws + `missing required header \"alg\"")`},
		{name: "broken header, foreign iss: the pre-match reads the payload", token: compact(`{}`, payload(func(c map[string]any) { c["iss"] = "https://evil.test" })),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWTNotInIssuer"},
		{name: "four parts, foreign iss: the pre-match reads the second part", token: compact(rs, payload(func(c map[string]any) { c["iss"] = "https://evil.test" })) + ".x",
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWTNotInIssuer"},
		{name: "payload is an array", token: compact(rs, `[{"iss":"x"}]`),
			code: CodeInvalidJWT, msg: cset + `: parsing JWT Claims Set failed, expected Object, but encountered Array"`},
		{name: "payload is a string", token: compact(rs, `"x"`),
			code: CodeInvalidJWT, msg: cset + `: parsing JWT Claims Set failed, expected Object, but encountered String"`},
		{name: "exp is a string", token: compact(rs, payload(func(c map[string]any) { c["exp"] = "1700000000" })),
			code: CodeInvalidJWT, msg: cset + `.exp: parsing NumericDate failed, expected Number, but encountered String"`},
		{name: "iat is a boolean", token: compact(rs, payload(func(c map[string]any) { c["iat"] = true })),
			code: CodeInvalidJWT, msg: cset + `.iat: parsing NumericDate failed, expected Number, but encountered Boolean"`},
		{name: "nbf is an object", token: compact(rs, payload(func(c map[string]any) { c["nbf"] = map[string]any{} })),
			code: CodeInvalidJWT, msg: cset + `.nbf: parsing NumericDate failed, expected Number, but encountered Object"`},
		{name: "iss is a number", token: compact(rs, payload(func(c map[string]any) { c["iss"] = 42 })),
			code: CodeInvalidJWT, msg: cset + `.iss: parsing StringOrURI failed, expected String, but encountered Number"`},
		{name: "iss is checked before exp", token: compact(rs, payload(func(c map[string]any) { c["iss"] = 42; c["exp"] = "x" })),
			code: CodeInvalidJWT, msg: cset + `.iss: parsing StringOrURI failed, expected String, but encountered Number"`},
		{name: "iss with a colon that is not a URI", token: compact(rs, payload(func(c map[string]any) { c["iss"] = "my issuer: clerk" })),
			code: CodeInvalidJWT, msg: cset + `.iss: failed to parse StringOrURI"`},
		{name: "sub with a colon that is not a URI", token: compact(rs, payload(func(c map[string]any) { c["sub"] = "user 2:abc" })),
			code: CodeInvalidJWT, msg: cset + `.sub: failed to parse StringOrURI"`},
		{name: "sub that is a URI", token: rs256(t, claims(func(c map[string]any) { c["sub"] = "user:2abc" }))},
		{name: "aud string with a colon that is not a URI", token: compact(rs, payload(func(c map[string]any) { c["aud"] = "app:one two" })),
			code: CodeInvalidJWT, msg: cset + `.aud: failed to parse StringOrURI"`},
		{name: "aud list with a number", token: compact(rs, payload(func(c map[string]any) { c["aud"] = []any{"a", 1} })),
			code: CodeInvalidJWT, msg: cset + `.aud: parsing StringOrURI failed, expected String, but encountered Array"`},
		{name: "aud list with a bad URI", token: compact(rs, payload(func(c map[string]any) { c["aud"] = []any{"x:y z"} })),
			code: CodeInvalidJWT, msg: cset + `.aud: parsing StringOrURI failed, expected String, but encountered Array"`},
		{name: "aud object", token: compact(rs, payload(func(c map[string]any) { c["aud"] = map[string]any{} })),
			code: CodeInvalidJWT, msg: cset + `.aud: parsing StringOrURI failed, expected String, but encountered Object"`},
		{name: "jti is a number", token: compact(rs, payload(func(c map[string]any) { c["jti"] = 1 })),
			code: CodeInvalidJWT, msg: cset + `.jti: parsing Text failed, expected String, but encountered Number"`},
		{name: "null registered claims are absent", token: rs256(t, claims(func(c map[string]any) { c["jti"] = nil; c["aud"] = nil }))},
		{name: "allowed role that is a number", token: rs256(t, claims(func(c map[string]any) { hasuraNS(c)["x-hasura-allowed-roles"] = []any{"user", 7} })),
			code: CodeJWTInvalidClaims, msg: roles + "parsing String failed, expected String, but encountered Number"},
		{name: "allowed role that is null", token: rs256(t, claims(func(c map[string]any) { hasuraNS(c)["x-hasura-allowed-roles"] = []any{nil} })),
			code: CodeJWTInvalidClaims, msg: roles + "parsing String failed, expected String, but encountered Null"},
		{name: "allowed roles not a list", token: rs256(t, claims(func(c map[string]any) { hasuraNS(c)["x-hasura-allowed-roles"] = "user" })),
			code: CodeJWTInvalidClaims, msg: roles + "parsing [] failed, expected Array, but encountered String"},
		{name: "namespace path with a bracket key", secret: func(s *JWTSecret) { s.ClaimsNamespacePath = "$.hasura['claims%']" },
			token: rs256(t, clerkClaims()),
			code:  CodeJWTInvalidClaims, msg: `claims not found at claims_namespace_path: '$.hasura["claims%"]'`},
		{name: "namespace path names with a hyphen stay plain", secret: func(s *JWTSecret) { s.ClaimsNamespacePath = `$["x-hasura"].claims` },
			token: rs256(t, clerkClaims()),
			code:  CodeJWTInvalidClaims, msg: `claims not found at claims_namespace_path: '$.x-hasura.claims'`},
		{name: "namespace path key escaped as JSON", secret: func(s *JWTSecret) { s.ClaimsNamespacePath = `$['a"b\\c'][0]['7seven']` },
			token: rs256(t, clerkClaims()),
			code:  CodeJWTInvalidClaims, msg: `claims not found at claims_namespace_path: '$["a\"b\\c"][0]["7seven"]'`},
		{name: "stringified json error names the path the same way",
			secret: func(s *JWTSecret) {
				s.ClaimsNamespacePath = "$['https://hasura.io/jwt/claims']"
				s.ClaimsFormat = "stringified_json"
			},
			token: rs256(t, claims(func(c map[string]any) { c[DefaultClaimsNamespace] = "{nope" })),
			code:  CodeJWTInvalidClaims, msg: `expecting stringified json at: 'claims_namespace_path $["https://hasura.io/jwt/claims"]', but found: {nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := jwksConfig(jwks.JWKSURL())
			cfg.TokenCache.Size = 0
			if tt.secret != nil {
				tt.secret(cfg.JWTSecret)
			}
			a, _ := newTestAuth(t, cfg)
			s, err := a.Authenticate(context.Background(), bearer(tt.token))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Authenticate = %v; want accepted", err)
				}
				if s.Role != "user" {
					t.Fatalf("role = %q; want %q", s.Role, "user")
				}
				return
			}
			wantErr(t, err, tt.code, tt.msg)
		})
	}
}

// TestJSONPathString follows server/src-test/Data/Parser/JSONPathSpec.hs.
func TestJSONPathString(t *testing.T) {
	tests := []struct {
		path jsonPath
		want string
	}{
		{jsonPath{{key: "ABCD"}}, "$.ABCD"},
		{jsonPath{{key: "7seven"}, {index: 0, isIdx: true}, {key: "@!^@*#(!("}}, `$["7seven"][0]["@!^@*#(!("]`},
		{jsonPath{{key: "/\\ '\" \t\r\n \ufffd"}}, "$[\"/\\\\ '\\\" \\t\\r\\n \ufffd\"]"},
		{jsonPath{{key: "a\x01\x7f"}}, "$[\"a\\u0001\x7f\"]"},
		{jsonPath{{key: "x-hasura-claims"}, {key: "_a1"}}, "$.x-hasura-claims._a1"},
		{jsonPath{{key: "-x"}, {key: ""}}, `$["-x"][""]`},
		{jsonPath{}, "$"},
	}
	for _, tt := range tests {
		if got := tt.path.String(); got != tt.want {
			t.Errorf("String() = %q; want %q", got, tt.want)
		}
		back, err := parseJSONPath(tt.want)
		if err != nil || back.String() != tt.want {
			t.Errorf("parseJSONPath(%q) = %v, %v; want it to print back the same", tt.want, back, err)
		}
	}
}
