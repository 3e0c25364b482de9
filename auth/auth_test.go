package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

const (
	testIssuer = "https://clerk.example.test"
	testAZP    = "https://app.example.test"
	testHSKey  = "0123456789abcdef0123456789abcdef"
	testAdmin  = "admin-secret-for-tests"
)

var testNow = time.Unix(1_800_000_000, 0)

// rsaKeys caches generated RSA keys: generating them dominates test time.
var rsaKeys = struct {
	sync.Mutex
	m map[string]*rsa.PrivateKey
}{m: map[string]*rsa.PrivateKey{}}

func rsaKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	rsaKeys.Lock()
	defer rsaKeys.Unlock()
	if k, ok := rsaKeys.m[name]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeys.m[name] = k
	return k
}

// newKeySetServer serves a JWKS of the given RSA keys (kid → key) and
// counts fetches: internal/fake's Clerk, at JWKSURL. setKeys swaps the
// served set.
func newKeySetServer(t testing.TB, keys map[string]*rsa.PrivateKey) *fake.Clerk {
	t.Helper()
	var opts []fake.ClerkOption
	for _, k := range fakeKeys(keys) {
		opts = append(opts, fake.WithKey(k))
	}
	return fake.StartClerk(t, opts...)
}

// setKeys makes s serve keys (kid → key) from now on.
func setKeys(s *fake.Clerk, keys map[string]*rsa.PrivateKey) { s.SetKeys(fakeKeys(keys)...) }

func fakeKeys(keys map[string]*rsa.PrivateKey) []fake.Key {
	out := make([]fake.Key, 0, len(keys))
	for kid, k := range keys {
		out = append(out, fake.Key{KID: kid, Private: k})
	}
	return out
}

// sign mints a token. header adds or overrides header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clerkClaims is a Clerk "hasura" template token issued at testNow.
func clerkClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"sub": "user_2abc",
		"azp": testAZP,
		"iat": testNow.Unix(),
		"nbf": testNow.Unix() - 5,
		"exp": testNow.Unix() + 60,
		"sid": "sess_1",
		DefaultClaimsNamespace: map[string]any{
			"x-hasura-user-id":       "1",
			"x-hasura-default-role":  "user",
			"x-hasura-allowed-roles": []any{"user", "editor"},
		},
	}
}

func hasuraNS(c map[string]any) map[string]any { return c[DefaultClaimsNamespace].(map[string]any) }

func rs256(t testing.TB, claims map[string]any) string {
	return sign(t, jwt.SigningMethodRS256, rsaKey(t, "a"), map[string]any{"kid": "ins_a"}, claims)
}

func hs256(t testing.TB, claims map[string]any) string {
	return sign(t, jwt.SigningMethodHS256, []byte(testHSKey), nil, claims)
}

// newTestAuth builds an Authenticator with a fixed clock, a fresh metrics
// registry, and remote keys loaded before it returns.
func newTestAuth(t testing.TB, cfg Config) (*Authenticator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	a := startAuth(t, Options{
		Config:      cfg,
		AdminSecret: testAdmin,
		Logger:      zaptest.NewLogger(t),
		Metrics:     metrics.New(reg),
		Now:         func() time.Time { return testNow },
	})
	return a, reg
}

// startAuth builds an Authenticator from o, runs its key refresh until the
// test ends, and waits for every remote key set.
func startAuth(t testing.TB, o Options) *Authenticator {
	t.Helper()
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, rk := range a.remote {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		err := rk.WaitReady(wctx)
		wcancel()
		if err != nil {
			t.Fatalf("WaitReady = %v; want nil", err)
		}
	}
	return a
}

func jwksConfig(url string) Config {
	c := DefaultConfig()
	c.JWTSecret = &JWTSecret{JWKURL: url, Issuer: testIssuer}
	c.AuthorizedParties = []string{testAZP}
	return c
}

func hsConfig() Config {
	c := DefaultConfig()
	c.JWTSecret = &JWTSecret{Type: "HS256", Key: testHSKey}
	return c
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func with(h http.Header, kv ...string) http.Header {
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// wantErr checks that err is the *Error with Hasura's code and message.
func wantErr(t *testing.T, err error, code, msg string) *Error {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v; want %s %q", err, code, msg)
	}
	if ae.Code != code || ae.Message != msg {
		t.Fatalf("got %s %q; want %s %q", ae.Code, ae.Message, code, msg)
	}
	return ae
}

func varsMap(vs []Var) map[string]string {
	m := map[string]string{}
	for _, v := range vs {
		m[v.Name] = v.Value
	}
	return m
}

// TestCatalogue runs every error of Hasura's JWT mode (the codes and messages
// of server/src-lib/Hasura/Server/Auth/JWT.hs and Auth.hs, and the hs-jose
// errors JWT.hs wraps in "Could not verify JWT: ...") and the
// stricter-than-Hasura refusals through a JWKS-backed secret.
func TestCatalogue(t *testing.T) {
	jwks := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	mut := func(f func(c map[string]any)) map[string]any { c := clerkClaims(); f(c); return c }
	other := rsaKey(t, "other")
	tests := []struct {
		name     string
		cfg      func(*Config)
		header   http.Header
		code     string
		msg      string
		reason   string
		wantRole string
		wantVars map[string]string
	}{
		{name: "valid token, default role", header: bearer(rs256(t, clerkClaims())),
			wantRole: "user", wantVars: map[string]string{"x-hasura-user-id": "1"}},
		{name: "valid token, requested role", header: with(bearer(rs256(t, clerkClaims())), "X-Hasura-Role", "editor"),
			wantRole: "editor", wantVars: map[string]string{"x-hasura-user-id": "1"}},
		{name: "empty role header means default", header: with(bearer(rs256(t, clerkClaims())), "X-Hasura-Role", ""),
			wantRole: "user"},
		{name: "bearer scheme is case-insensitive", header: http.Header{"Authorization": {"bEaReR   " + rs256(t, clerkClaims())}},
			wantRole: "user"},
		{name: "1 no token", header: http.Header{},
			code: CodeInvalidHeaders, msg: "Missing 'Authorization' or 'Cookie' header in JWT authentication mode", reason: ReasonMissing},
		{name: "2 empty authorization", header: http.Header{"Authorization": {""}},
			code: CodeInvalidHeaders, msg: "Malformed Authorization header", reason: ReasonMalformed},
		{name: "2 bare bearer", header: http.Header{"Authorization": {"Bearer"}},
			code: CodeInvalidHeaders, msg: "Malformed Authorization header", reason: ReasonMalformed},
		{name: "2 basic scheme", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}},
			code: CodeInvalidHeaders, msg: "Malformed Authorization header", reason: ReasonMalformed},
		{name: "2 third word", header: http.Header{"Authorization": {"Bearer a.b.c extra"}},
			code: CodeInvalidHeaders, msg: "Malformed Authorization header", reason: ReasonMalformed},
		{name: "3 two authorization headers", header: http.Header{"Authorization": {"Bearer " + rs256(t, clerkClaims()), "Bearer " + rs256(t, clerkClaims())}},
			code: CodeInvalidHeaders, msg: "Could not verify JWT: Multiple JWTs found", reason: ReasonMultiple},
		{name: "4 issuer differs (even when expired)", header: bearer(rs256(t, mut(func(c map[string]any) { c["iss"] = "https://evil.test"; c["exp"] = testNow.Unix() - 600 }))),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWTNotInIssuer", reason: ReasonBadIssuer},
		{name: "5 two parts", header: bearer("abc.def"),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)", reason: ReasonMalformed},
		{name: "5 many dots", header: bearer(strings.Repeat(".", 1000)),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 1001)", reason: ReasonMalformed},
		{name: "6 bad base64", header: bearer("!!!.e30.sig"),
			code: CodeInvalidJWT, msg: `Could not verify JWT: JWSError (JSONDecodeError "Not valid base64url")`, reason: ReasonMalformed},
		{name: "7 exp of the wrong type", header: bearer(rs256(t, mut(func(c map[string]any) { c["exp"] = "soon" }))),
			code: CodeInvalidJWT, msg: `Could not verify JWT: JWTClaimsSetDecodeError "Error in $.exp: parsing NumericDate failed, expected Number, but encountered String"`, reason: ReasonMalformed},
		{name: "7 aud of the wrong type", header: bearer(rs256(t, mut(func(c map[string]any) { c["aud"] = 42 }))),
			code: CodeInvalidJWT, msg: `Could not verify JWT: JWTClaimsSetDecodeError "Error in $.aud: parsing StringOrURI failed, expected String, but encountered Number"`, reason: ReasonMalformed},
		{name: "8 alg none", header: bearer(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, clerkClaims())),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError JWSNoSignatures", reason: ReasonBadAlgorithm},
		{name: "9 signed by another key, same kid", header: bearer(sign(t, jwt.SigningMethodRS256, other, map[string]any{"kid": "ins_a"}, clerkClaims())),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError JWSInvalidSignature", reason: ReasonBadSignature},
		{name: "9 HS256 with the public key as secret", header: bearer(sign(t, jwt.SigningMethodHS256, x509.MarshalPKCS1PublicKey(&rsaKey(t, "a").PublicKey), map[string]any{"kid": "ins_a"}, clerkClaims())),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError JWSInvalidSignature", reason: ReasonBadAlgorithm},
		{name: "9 RS512 not the key's alg", header: bearer(sign(t, jwt.SigningMethodRS512, rsaKey(t, "a"), map[string]any{"kid": "ins_a"}, clerkClaims())),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError JWSInvalidSignature", reason: ReasonBadAlgorithm},
		{name: "9 unknown kid", header: bearer(sign(t, jwt.SigningMethodRS256, other, map[string]any{"kid": "ins_zz"}, clerkClaims())),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError JWSInvalidSignature", reason: ReasonUnknownKID},
		{name: "9 no kid tries every key", header: bearer(sign(t, jwt.SigningMethodRS256, rsaKey(t, "a"), nil, clerkClaims())),
			wantRole: "user"},
		// RFC 7515 section 4.1.11: a validly signed token whose crit lists an
		// extension the proxy does not implement is invalid.
		{name: "crit unknown extension", header: bearer(sign(t, jwt.SigningMethodRS256, rsaKey(t, "a"), map[string]any{"kid": "ins_a", "crit": []any{"exp"}, "exp": 1}, clerkClaims())),
			code: CodeInvalidJWT, msg: `Could not verify JWT: JWSError (JSONDecodeError "crit key is not understood")`, reason: ReasonMalformed},
		{name: "crit b64 (RFC 7797, not implemented)", header: bearer(sign(t, jwt.SigningMethodRS256, rsaKey(t, "a"), map[string]any{"kid": "ins_a", "crit": []any{"b64"}, "b64": true}, clerkClaims())),
			code: CodeInvalidJWT, msg: `Could not verify JWT: JWSError (JSONDecodeError "crit key is not understood")`, reason: ReasonMalformed},
		{name: "crit empty list", header: bearer(sign(t, jwt.SigningMethodRS256, rsaKey(t, "a"), map[string]any{"kid": "ins_a", "crit": []any{}}, clerkClaims())),
			code: CodeInvalidJWT, msg: `Could not verify JWT: JWSError (JSONDecodeError "parsing NonEmpty failed, unexpected empty list")`, reason: ReasonMalformed},
		{name: "crit null", header: bearer(sign(t, jwt.SigningMethodRS256, rsaKey(t, "a"), map[string]any{"kid": "ins_a", "crit": nil}, clerkClaims())),
			code: CodeInvalidJWT, msg: `Could not verify JWT: JWSError (JSONDecodeError "parsing NonEmpty failed, expected Array, but encountered Null")`, reason: ReasonMalformed},
		{name: "11 expired", header: bearer(rs256(t, mut(func(c map[string]any) { c["exp"] = testNow.Unix() - 60 }))),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWTExpired", reason: ReasonExpired},
		{name: "11 expired exactly now", header: bearer(rs256(t, mut(func(c map[string]any) { c["exp"] = testNow.Unix() }))),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWTExpired", reason: ReasonExpired},
		{name: "11 skew keeps it valid", cfg: func(c *Config) { c.JWTSecret.AllowedSkew = 60 },
			header: bearer(rs256(t, mut(func(c map[string]any) { c["exp"] = testNow.Unix() - 30 }))), wantRole: "user"},
		{name: "12 iat in the future", header: bearer(rs256(t, mut(func(c map[string]any) { c["iat"] = testNow.Unix() + 30 }))),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWTIssuedAtFuture", reason: ReasonIssuedInFuture},
		{name: "13 nbf in the future", header: bearer(rs256(t, mut(func(c map[string]any) { c["nbf"] = testNow.Unix() + 30 }))),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWTNotYetValid", reason: ReasonNotYetValid},
		{name: "14 wrong audience", cfg: func(c *Config) { c.JWTSecret.Audience = StringOrList{"myapp-1234", "myapp-9876"} },
			header: bearer(rs256(t, mut(func(c map[string]any) { c["aud"] = "rubbish_audience" }))),
			code:   CodeInvalidJWT, msg: "Could not verify JWT: JWTNotInAudience", reason: ReasonBadAudience},
		{name: "14 audience in list", cfg: func(c *Config) { c.JWTSecret.Audience = StringOrList{"myapp-1234", "myapp-9876"} },
			header: bearer(rs256(t, mut(func(c map[string]any) { c["aud"] = []any{"x", "myapp-9876"} }))), wantRole: "user"},
		{name: "14 empty aud list", cfg: func(c *Config) { c.JWTSecret.Audience = StringOrList{"myapp-1234"} },
			header: bearer(rs256(t, mut(func(c map[string]any) { c["aud"] = []any{} }))),
			code:   CodeInvalidJWT, msg: "Could not verify JWT: JWTNotInAudience", reason: ReasonBadAudience},
		{name: "no audience configured accepts any aud", header: bearer(rs256(t, mut(func(c map[string]any) { c["aud"] = "hasura-test-suite" }))), wantRole: "user"},
		{name: "15 namespace missing", header: bearer(rs256(t, mut(func(c map[string]any) { delete(c, DefaultClaimsNamespace) }))),
			code: CodeJWTInvalidClaims, msg: "claims key: 'https://hasura.io/jwt/claims' not found", reason: ReasonClaimsInvalid},
		{name: "17 namespace not an object", header: bearer(rs256(t, mut(func(c map[string]any) { c[DefaultClaimsNamespace] = "x" }))),
			code: CodeJWTInvalidClaims, msg: "expecting a json object when claims_format is json", reason: ReasonClaimsInvalid},
		{name: "20 allowed roles missing", header: bearer(rs256(t, mut(func(c map[string]any) { delete(hasuraNS(c), "x-hasura-allowed-roles") }))),
			code: CodeJWTMissingRoleClaims, msg: "JWT claim does not contain x-hasura-allowed-roles", reason: ReasonRoleMissing},
		{name: "20 both missing reports allowed roles", header: bearer(rs256(t, mut(func(c map[string]any) {
			delete(hasuraNS(c), "x-hasura-allowed-roles")
			delete(hasuraNS(c), "x-hasura-default-role")
		}))), code: CodeJWTMissingRoleClaims, msg: "JWT claim does not contain x-hasura-allowed-roles", reason: ReasonRoleMissing},
		{name: "21 allowed roles a string", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-allowed-roles"] = "user" }))),
			code: CodeJWTInvalidClaims, msg: "invalid x-hasura-allowed-roles; should be a list of roles: parsing [] failed, expected Array, but encountered String", reason: ReasonClaimsInvalid},
		{name: "21 allowed roles with an empty role", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-allowed-roles"] = []any{"user", ""} }))),
			code: CodeJWTInvalidClaims, msg: "invalid x-hasura-allowed-roles; should be a list of roles: empty string not allowed", reason: ReasonClaimsInvalid},
		{name: "22 default role missing", header: bearer(rs256(t, mut(func(c map[string]any) { delete(hasuraNS(c), "x-hasura-default-role") }))),
			code: CodeJWTMissingRoleClaims, msg: "JWT claim does not contain x-hasura-default-role", reason: ReasonRoleMissing},
		{name: "23 default role a number", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-default-role"] = 3 }))),
			code: CodeJWTInvalidClaims, msg: "invalid x-hasura-default-role; should be a single role name: parsing String failed, expected String, but encountered Number", reason: ReasonClaimsInvalid},
		{name: "23 default role null (Clerk shortcode resolved to nothing)", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-default-role"] = nil }))),
			code: CodeJWTInvalidClaims, msg: "invalid x-hasura-default-role; should be a single role name: parsing String failed, expected String, but encountered Null", reason: ReasonClaimsInvalid},
		{name: "25 requested role not allowed", header: with(bearer(rs256(t, clerkClaims())), "X-Hasura-Role", "admin"),
			code: CodeAccessDenied, msg: "Your requested role is not in allowed roles", reason: ReasonRoleNotAllowed},
		{name: "25 role compared case-sensitively", header: with(bearer(rs256(t, clerkClaims())), "X-Hasura-Role", "User"),
			code: CodeAccessDenied, msg: "Your requested role is not in allowed roles", reason: ReasonRoleNotAllowed},
		{name: "25 default role not in allowed roles", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-allowed-roles"] = []any{"editor"} }))),
			code: CodeAccessDenied, msg: "Your requested role is not in allowed roles", reason: ReasonRoleNotAllowed},
		{name: "25 empty allowed roles refuse everything", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-allowed-roles"] = []any{} }))),
			code: CodeAccessDenied, msg: "Your requested role is not in allowed roles", reason: ReasonRoleNotAllowed},
		{name: "26 array session claim", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-org-ids"] = []any{"1", "2"} }))),
			code: CodeJWTInvalidClaims, msg: "x-hasura-* claims: parsing Text failed, expected String, but encountered Array", reason: ReasonClaimsInvalid},
		{name: "26 number session claim", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-user-id"] = 1 }))),
			code: CodeJWTInvalidClaims, msg: "x-hasura-* claims: parsing Text failed, expected String, but encountered Number", reason: ReasonClaimsInvalid},
		{name: "25 before 26: bad role and array claim", header: with(bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-org-ids"] = []any{"1"} }))), "X-Hasura-Role", "admin"),
			code: CodeAccessDenied, msg: "Your requested role is not in allowed roles", reason: ReasonRoleNotAllowed},
		{name: "postgres arrays", cfg: func(c *Config) { c.ArrayClaims = "postgres" },
			header: bearer(rs256(t, mut(func(c map[string]any) {
				hasuraNS(c)["x-hasura-org-ids"] = []any{"1", "a b", `q"x`, nil, 3, true, ""}
			}))), wantRole: "user", wantVars: map[string]string{"x-hasura-user-id": "1", "x-hasura-org-ids": `{1,"a b","q\"x",NULL,3,true,""}`}},
		{name: "claim keys are case-insensitive and lower-cased", header: bearer(rs256(t, mut(func(c map[string]any) {
			ns := hasuraNS(c)
			delete(ns, "x-hasura-user-id")
			ns["X-Hasura-User-Id"] = "7"
			ns["X-HASURA-ALLOWED-ROLES"] = ns["x-hasura-allowed-roles"]
			delete(ns, "x-hasura-allowed-roles")
			ns["other-claim"] = 5
		}))), wantRole: "user", wantVars: map[string]string{"x-hasura-user-id": "7"}},
		{name: "x-hasura-role claim is overridden, secret and backend-only claims dropped", header: bearer(rs256(t, mut(func(c map[string]any) {
			ns := hasuraNS(c)
			ns["x-hasura-role"] = "admin"
			ns["x-hasura-admin-secret"] = "x"
			ns["x-hasura-use-backend-only-permissions"] = "true"
		}))), wantRole: "user", wantVars: map[string]string{"x-hasura-user-id": "1"}},
		// Stricter than Hasura.
		{name: "strict: no exp", header: bearer(rs256(t, mut(func(c map[string]any) { delete(c, "exp") }))),
			code: CodeInvalidJWT, msg: `Could not verify JWT: token has no "exp" claim (required by auth.require.exp)`, reason: ReasonMissingExp},
		{name: "relaxed: no exp allowed", cfg: func(c *Config) { c.Require.Exp = false },
			header: bearer(rs256(t, mut(func(c map[string]any) { delete(c, "exp") }))), wantRole: "user"},
		{name: "strict: no iss with issuer configured", header: bearer(rs256(t, mut(func(c map[string]any) { delete(c, "iss") }))),
			code: CodeInvalidJWT, msg: `Could not verify JWT: token has no "iss" claim (required by auth.require.iss)`, reason: ReasonBadIssuer},
		{name: "relaxed: no iss allowed", cfg: func(c *Config) { c.Require.Iss = false },
			header: bearer(rs256(t, mut(func(c map[string]any) { delete(c, "iss") }))), wantRole: "user"},
		{name: "strict: no aud with audience configured", cfg: func(c *Config) { c.JWTSecret.Audience = StringOrList{"hasura"} },
			header: bearer(rs256(t, clerkClaims())),
			code:   CodeInvalidJWT, msg: `Could not verify JWT: token has no "aud" claim (required by auth.require.aud)`, reason: ReasonBadAudience},
		{name: "relaxed: no aud allowed", cfg: func(c *Config) { c.JWTSecret.Audience = StringOrList{"hasura"}; c.Require.Aud = false },
			header: bearer(rs256(t, clerkClaims())), wantRole: "user"},
		{name: "strict: azp not authorized", header: bearer(rs256(t, mut(func(c map[string]any) { c["azp"] = "https://evil.test" }))),
			code: CodeInvalidJWT, msg: `Could not verify JWT: token "azp" claim is not in auth.authorized_parties`, reason: ReasonBadAZP},
		{name: "strict: azp missing", header: bearer(rs256(t, mut(func(c map[string]any) { delete(c, "azp") }))),
			code: CodeInvalidJWT, msg: `Could not verify JWT: token has no "azp" claim (required by auth.require.azp with auth.authorized_parties set)`, reason: ReasonBadAZP},
		{name: "relaxed: azp may be missing", cfg: func(c *Config) { c.Require.AZP = false },
			header: bearer(rs256(t, mut(func(c map[string]any) { delete(c, "azp") }))), wantRole: "user"},
		{name: "relaxed azp still refuses a wrong azp", cfg: func(c *Config) { c.Require.AZP = false },
			header: bearer(rs256(t, mut(func(c map[string]any) { c["azp"] = "https://evil.test" }))),
			code:   CodeInvalidJWT, msg: `Could not verify JWT: token "azp" claim is not in auth.authorized_parties`, reason: ReasonBadAZP},
		{name: "strict: CR LF in a claim value", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-user-id"] = "1\r\nX-Hasura-Role: admin" }))),
			code: CodeJWTInvalidClaims, msg: "x-hasura-* claims: the value of x-hasura-user-id contains a control character (CR, LF, NUL, ...)", reason: ReasonBadClaimValue},
		{name: "strict: NUL in a claim value", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-user-id"] = "1\x00" }))),
			code: CodeJWTInvalidClaims, msg: "x-hasura-* claims: the value of x-hasura-user-id contains a control character (CR, LF, NUL, ...)", reason: ReasonBadClaimValue},
		{name: "strict: claim name not a header token", header: bearer(rs256(t, mut(func(c map[string]any) { hasuraNS(c)["x-hasura-user id"] = "1" }))),
			code: CodeJWTInvalidClaims, msg: `x-hasura-* claims: "x-hasura-user id" is not a valid header name`, reason: ReasonBadClaimValue},
		{name: "strict: token too large", header: bearer(strings.Repeat("a", DefaultMaxTokenBytes+1)),
			code: CodeInvalidJWT, msg: "Could not verify JWT: JWSError (CompactDecodeError token is larger than 16384 bytes)", reason: ReasonTokenTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := jwksConfig(jwks.JWKSURL())
			cfg.TokenCache.Size = 0
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			a, reg := newTestAuth(t, cfg)
			s, err := a.Authenticate(context.Background(), tt.header)
			if tt.code != "" {
				ae := wantErr(t, err, tt.code, tt.msg)
				if ae.Reason != tt.reason {
					t.Errorf("reason %q; want %q", ae.Reason, tt.reason)
				}
				if got := counterValue(t, reg, "auth_decisions_total", map[string]string{"result": ResultDenied, "reason": tt.reason}); got != 1 {
					t.Errorf("auth_decisions_total{denied,%s} = %v; want 1", tt.reason, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate = %v; want nil", err)
			}
			if s.Role != tt.wantRole || s.Result != ResultAllowed {
				t.Errorf("role %q result %q; want %q allowed", s.Role, s.Result, tt.wantRole)
			}
			if tt.wantVars != nil {
				if got := varsMap(s.Vars); !mapsEqual(got, tt.wantVars) {
					t.Errorf("vars %v; want %v", got, tt.wantVars)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// counterValue reads the counter hasura_auth_proxy_<name> whose labels
// include all of want; 0 when there is no such series.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hasura_auth_proxy_"+name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestKeyTypes verifies Hasura's conformance tokens with every static key
// type: the rsa, ed25519 and es configs of Hasura's
// server/tests-py/test_jwt.py, plus HS.
func TestKeyTypes(t *testing.T) {
	rk := rsaKey(t, "a")
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	pemOf := func(pub any) string {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	tests := []struct {
		name, typ, key string
		method         jwt.SigningMethod
		signKey        any
	}{
		{"RS512", "RS512", pemOf(&rk.PublicKey), jwt.SigningMethodRS512, rk},
		{"RS256 PKCS1", "RS256", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rk.PublicKey)})), jwt.SigningMethodRS256, rk},
		{"ES256", "ES256", pemOf(&ek.PublicKey), jwt.SigningMethodES256, ek},
		{"Ed25519", "Ed25519", pemOf(edk.Public()), jwt.SigningMethodEdDSA, edk},
		{"HS256", "HS256", testHSKey, jwt.SigningMethodHS256, []byte(testHSKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.JWTSecret = &JWTSecret{Type: tt.typ, Key: Secret(tt.key)}
			a, _ := newTestAuth(t, cfg)
			ok := sign(t, tt.method, tt.signKey, map[string]any{"kid": "whatever"}, clerkClaims())
			if s, err := a.Authenticate(context.Background(), bearer(ok)); err != nil || s.Role != "user" {
				t.Fatalf("Authenticate(valid token) = %+v, %v; want role user, nil", s, err)
			}
			// Hasura's invalid_signature case: HS-signed with a random
			// RSA PEM as the HMAC secret (HS384 when the config is HS256).
			method := jwt.SigningMethod(jwt.SigningMethodHS256)
			if tt.typ == "HS256" {
				method = jwt.SigningMethodHS384
			}
			bad := sign(t, method, []byte(pemOf(&rsaKey(t, "other").PublicKey)), nil, clerkClaims())
			_, err := a.Authenticate(context.Background(), bearer(bad))
			wantErr(t, err, CodeInvalidJWT, "Could not verify JWT: JWSError JWSInvalidSignature")
		})
	}
}

// TestHeaderLocations reads tokens from a cookie and a custom header, as
// Hasura's header option says.
func TestHeaderLocations(t *testing.T) {
	tok := hs256(t, clerkClaims())
	tests := []struct {
		name   string
		header *HeaderSource
		h      http.Header
		code   string
		msg    string
	}{
		{"cookie", &HeaderSource{Type: "Cookie", Name: "hasura_user"}, http.Header{"Cookie": {"a=b; hasura_user=" + tok}}, "", ""},
		{"cookie type case-insensitive", &HeaderSource{Type: "cookie", Name: "hasura_user"}, http.Header{"Cookie": {"hasura_user=" + tok}}, "", ""},
		{"two cookies", &HeaderSource{Type: "Cookie", Name: "hasura_user"}, http.Header{"Cookie": {"hasura_user=" + tok + "; hasura_user=" + tok}},
			CodeInvalidHeaders, "Could not verify JWT: Multiple JWTs found"},
		{"authorization ignored in cookie mode", &HeaderSource{Type: "Cookie", Name: "hasura_user"}, bearer(tok),
			CodeInvalidHeaders, "Missing 'Authorization' or 'Cookie' header in JWT authentication mode"},
		{"custom header", &HeaderSource{Type: "CustomHeader", Name: "hasura_user"}, http.Header{"Hasura_user": {tok}}, "", ""},
		{"custom header, any case", &HeaderSource{Type: "CustomHeader", Name: "X-Token"}, http.Header{"X-Token": {tok}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hsConfig()
			cfg.JWTSecret.Header = tt.header
			a, _ := newTestAuth(t, cfg)
			s, err := a.Authenticate(context.Background(), tt.h)
			if tt.code != "" {
				wantErr(t, err, tt.code, tt.msg)
				return
			}
			if err != nil || s.Role != "user" {
				t.Fatalf("Authenticate = %+v, %v; want role user, nil", s, err)
			}
		})
	}
}

// TestNamespaceOptions covers claims_namespace, claims_namespace_path and
// claims_format: the variations test_jwt.py's AbstractTestJwtBasic runs, and
// parseClaimsMap's errors (JWT.hs) for a missing namespace path, a
// stringified_json value that is not a string, and one that does not parse.
func TestNamespaceOptions(t *testing.T) {
	roles := map[string]any{"x-hasura-user-id": "1", "x-hasura-default-role": "user", "x-hasura-allowed-roles": []any{"user"}}
	rolesJSON, _ := json.Marshal(roles)
	base := func(extra map[string]any) map[string]any {
		c := clerkClaims()
		delete(c, DefaultClaimsNamespace)
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name   string
		secret JWTSecret
		claims map[string]any
		msg    string
	}{
		{"custom namespace with dots is literal", JWTSecret{ClaimsNamespace: "claims.jwt.hasura.io"}, base(map[string]any{"claims.jwt.hasura.io": roles}), ""},
		{"path $ reads the root", JWTSecret{ClaimsNamespacePath: "$"}, base(roles), ""},
		{"path $.hasura_claims", JWTSecret{ClaimsNamespacePath: "$.hasura_claims"}, base(map[string]any{"hasura_claims": roles}), ""},
		{"path $.hasura.claims", JWTSecret{ClaimsNamespacePath: "$.hasura.claims"}, base(map[string]any{"hasura": map[string]any{"claims": roles}}), ""},
		{"path with bracket key", JWTSecret{ClaimsNamespacePath: "$.hasura['claims%']"}, base(map[string]any{"hasura": map[string]any{"claims%": roles}}), ""},
		{"path never sees registered claims", JWTSecret{ClaimsNamespacePath: "$.sub"}, base(map[string]any{}), "claims not found at claims_namespace_path: '$.sub'"},
		{"16 path missing", JWTSecret{ClaimsNamespacePath: "$.hasura['claims%']"}, base(map[string]any{"hasura": map[string]any{}}), `claims not found at claims_namespace_path: '$.hasura["claims%"]'`},
		{"stringified json", JWTSecret{ClaimsFormat: "stringified_json"}, base(map[string]any{DefaultClaimsNamespace: string(rolesJSON)}), ""},
		{"stringified with path", JWTSecret{ClaimsFormat: "stringified_json", ClaimsNamespacePath: "$.h"}, base(map[string]any{"h": string(rolesJSON)}), ""},
		{"18 stringified but an object", JWTSecret{ClaimsFormat: "stringified_json"}, base(map[string]any{DefaultClaimsNamespace: roles}), "expecting a string when claims_format is stringified_json"},
		{"19 stringified does not parse", JWTSecret{ClaimsFormat: "stringified_json"}, base(map[string]any{DefaultClaimsNamespace: "{nope"}),
			"expecting stringified json at: 'claims_namespace https://hasura.io/jwt/claims', but found: {nope"},
		{"19 stringified path mode", JWTSecret{ClaimsFormat: "stringified_json", ClaimsNamespacePath: "$.x"}, base(map[string]any{"x": "[]"}),
			"expecting stringified json at: 'claims_namespace_path $.x', but found: []"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			s := tt.secret
			s.Type, s.Key = "HS256", testHSKey
			cfg.JWTSecret = &s
			a, _ := newTestAuth(t, cfg)
			sess, err := a.Authenticate(context.Background(), bearer(hs256(t, tt.claims)))
			if tt.msg != "" {
				wantErr(t, err, CodeJWTInvalidClaims, tt.msg)
				return
			}
			if err != nil || sess.Role != "user" || varsMap(sess.Vars)["x-hasura-user-id"] != "1" {
				t.Fatalf("Authenticate = %+v, %v; want role user, x-hasura-user-id 1, nil", sess, err)
			}
		})
	}
}

// TestClaimsMap runs the cases of Hasura's server/tests-py/test_jwt_claims_map.py
// (basic, basic with defaults, static).
func TestClaimsMap(t *testing.T) {
	const ns = "https://myapp.com/jwt/claims"
	path := func(p string) ClaimsMapEntry { return ClaimsMapEntry{Path: p} }
	pathDef := func(p, def string) ClaimsMapEntry { return ClaimsMapEntry{Path: p, Default: json.RawMessage(def)} }
	basic := map[string]ClaimsMapEntry{
		"x-hasura-user-id":       path("$.['" + ns + "'].user.id"),
		"x-hasura-allowed-roles": path("$.['" + ns + "'].role.allowed"),
		"x-hasura-default-role":  path("$.['" + ns + "'].role.default"),
	}
	withDefaults := map[string]ClaimsMapEntry{
		"x-hasura-user-id":       pathDef("$.['"+ns+"'].user.id", `"1"`),
		"x-hasura-allowed-roles": pathDef("$.['"+ns+"'].role.allowed", `["user","editor"]`),
		"x-hasura-default-role":  pathDef("$.['"+ns+"'].role.default", `"user"`),
	}
	static := map[string]ClaimsMapEntry{
		"x-hasura-allowed-roles": {Literal: json.RawMessage(`["user","editor"]`)},
		"x-hasura-default-role":  {Literal: json.RawMessage(`"user"`)},
		"x-hasura-custom-header": {Literal: json.RawMessage(`"custom-value"`)},
		"x-hasura-user-id":       path("$.['" + ns + "'].user.id"),
	}
	subPath := map[string]ClaimsMapEntry{
		"x-hasura-allowed-roles": {Literal: json.RawMessage(`["user"]`)},
		"x-hasura-default-role":  {Literal: json.RawMessage(`"user"`)},
		"x-hasura-user-id":       path("$.sub"),
	}
	token := func(mut func(user, role map[string]any)) map[string]any {
		c := clerkClaims()
		delete(c, DefaultClaimsNamespace)
		user := map[string]any{"id": "1"}
		role := map[string]any{"allowed": []any{"user", "editor"}, "default": "user"}
		if mut != nil {
			mut(user, role)
		}
		c[ns] = map[string]any{"user": user, "role": role}
		return c
	}
	tests := []struct {
		name     string
		m        map[string]ClaimsMapEntry
		claims   map[string]any
		role     string
		code     string
		msg      string
		wantVars map[string]string
	}{
		{name: "basic valid", m: basic, claims: token(nil), wantVars: map[string]string{"x-hasura-user-id": "1"}},
		{name: "basic role not allowed", m: basic, claims: token(func(_, r map[string]any) {
			r["allowed"] = []any{"contractor", "editor"}
			r["default"] = "contractor"
		}), role: "user", code: CodeAccessDenied, msg: "Your requested role is not in allowed roles"},
		{name: "basic no allowed roles", m: basic, claims: token(func(_, r map[string]any) { delete(r, "allowed") }),
			code: CodeJWTMissingRoleClaims, msg: "JWT claim does not contain x-hasura-allowed-roles"},
		{name: "basic allowed roles a string", m: basic, claims: token(func(_, r map[string]any) { r["allowed"] = "user" }),
			code: CodeJWTInvalidClaims, msg: "invalid x-hasura-allowed-roles; should be a list of roles: parsing [] failed, expected Array, but encountered String"},
		{name: "basic no default role", m: basic, claims: token(func(_, r map[string]any) { delete(r, "default") }),
			code: CodeJWTMissingRoleClaims, msg: "JWT claim does not contain x-hasura-default-role"},
		{name: "basic default role a number", m: basic, claims: token(func(_, r map[string]any) { r["default"] = 1 }),
			code: CodeJWTInvalidClaims, msg: "invalid x-hasura-default-role; should be a role: parsing String failed, expected String, but encountered Number"},
		{name: "basic user id missing", m: basic, claims: token(func(u, _ map[string]any) { delete(u, "id") }),
			code: CodeJWTInvalidClaims, msg: "JWT claim from claims_map, x-hasura-user-id not found"},
		{name: "defaults used when missing", m: withDefaults, claims: token(func(u, r map[string]any) { delete(u, "id"); delete(r, "allowed"); delete(r, "default") }),
			wantVars: map[string]string{"x-hasura-user-id": "1"}},
		{name: "default not used when the path exists with a bad value", m: withDefaults, claims: token(func(_, r map[string]any) { r["allowed"] = "user" }),
			code: CodeJWTInvalidClaims, msg: "invalid x-hasura-allowed-roles; should be a list of roles: parsing [] failed, expected Array, but encountered String"},
		{name: "static values", m: static, claims: token(nil), wantVars: map[string]string{"x-hasura-user-id": "1", "x-hasura-custom-header": "custom-value"}},
		{name: "static random role", m: static, claims: token(nil), role: "random_string", code: CodeAccessDenied, msg: "Your requested role is not in allowed roles"},
		{name: "static claim not found", m: static, claims: token(func(u, _ map[string]any) { delete(u, "id") }),
			code: CodeJWTInvalidClaims, msg: "JWT claim from claims_map, x-hasura-user-id not found"},
		{name: "path may read registered claims", m: subPath, claims: token(nil), wantVars: map[string]string{"x-hasura-user-id": "user_2abc"}},
		{name: "non-string path value", m: basic, claims: token(func(u, _ map[string]any) { u["id"] = 7 }),
			code: CodeJWTInvalidClaims, msg: "x-hasura-* claims: parsing Text failed, expected String, but encountered Number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hsConfig()
			cfg.JWTSecret.ClaimsMap = tt.m
			a, _ := newTestAuth(t, cfg)
			h := bearer(hs256(t, tt.claims))
			if tt.role != "" {
				h.Set("X-Hasura-Role", tt.role)
			}
			s, err := a.Authenticate(context.Background(), h)
			if tt.code != "" {
				wantErr(t, err, tt.code, tt.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Role != "user" || !mapsEqual(varsMap(s.Vars), tt.wantVars) {
				t.Fatalf("role %q vars %v; want user %v", s.Role, varsMap(s.Vars), tt.wantVars)
			}
		})
	}
}

// TestAdminSecretAndAnonymous covers the admin secret (checked first, the JWT
// then never read: getUserInfoWithExpTime_ in
// server/src-lib/Hasura/Server/Auth.hs), the unauthorized role (used only when
// no token is found anywhere: withoutAuthZ in processJwt_, JWT.hs) and the
// cases of server/src-test/Hasura/Server/AuthSpec.hs.
func TestAdminSecretAndAnonymous(t *testing.T) {
	tok := hs256(t, clerkClaims())
	tests := []struct {
		name        string
		anon        string
		passthrough bool
		h           http.Header
		code        string
		reason      string
		result      string
		role        string
		vars        map[string]string
	}{
		{name: "admin secret", passthrough: true, h: http.Header{"X-Hasura-Admin-Secret": {testAdmin}}, result: ResultAdmin, role: "admin", vars: map[string]string{}},
		{name: "admin secret with role", passthrough: true, h: http.Header{"X-Hasura-Admin-Secret": {testAdmin}, "X-Hasura-Role": {"r00t"}, "X-Hasura-User-Id": {"5"}},
			result: ResultAdmin, role: "r00t", vars: map[string]string{"x-hasura-user-id": "5"}},
		{name: "admin secret with empty role means admin", passthrough: true, h: http.Header{"X-Hasura-Admin-Secret": {testAdmin}, "X-Hasura-Role": {""}}, result: ResultAdmin, role: "admin", vars: map[string]string{}},
		{name: "admin secret wins over a token", passthrough: true, h: http.Header{"X-Hasura-Admin-Secret": {testAdmin}, "Authorization": {"Bearer garbage"}}, result: ResultAdmin, role: "admin", vars: map[string]string{}},
		{name: "access key", passthrough: true, h: http.Header{"X-Hasura-Access-Key": {testAdmin}}, result: ResultAdmin, role: "admin", vars: map[string]string{}},
		{name: "bad admin secret", passthrough: true, h: http.Header{"X-Hasura-Admin-Secret": {"nope"}}, code: CodeAccessDenied, reason: ReasonBadAdminSecret},
		{name: "empty admin secret", passthrough: true, h: http.Header{"X-Hasura-Admin-Secret": {""}}, code: CodeAccessDenied, reason: ReasonBadAdminSecret},
		{name: "bad access key", passthrough: true, h: http.Header{"X-Hasura-Access-Key": {"nope"}}, code: CodeAccessDenied, reason: ReasonBadAdminSecret},
		{name: "admin secret checked before a valid token", passthrough: true, h: with(bearer(tok), "X-Hasura-Admin-Secret", "nope"), code: CodeAccessDenied, reason: ReasonBadAdminSecret},
		{name: "passthrough off refuses the right secret", h: http.Header{"X-Hasura-Admin-Secret": {testAdmin}}, code: CodeAccessDenied, reason: ReasonAdminSecretDisabled},
		{name: "anonymous", anon: "an0nymous", h: http.Header{}, result: ResultAnonymous, role: "an0nymous", vars: map[string]string{}},
		{name: "anonymous ignores role and session headers", anon: "an0nymous", h: http.Header{"X-Hasura-Role": {"admin"}, "X-Hasura-User-Id": {"1"}}, result: ResultAnonymous, role: "an0nymous", vars: map[string]string{}},
		{name: "anonymous never for a bad token", anon: "an0nymous", h: bearer("x.y.z"), code: CodeInvalidJWT, reason: ReasonMalformed},
		{name: "anonymous never for an empty authorization", anon: "an0nymous", h: http.Header{"Authorization": {""}}, code: CodeInvalidHeaders, reason: ReasonMalformed},
		{name: "token with anonymous role set", anon: "an0nymous", h: bearer(tok), result: ResultAllowed, role: "user", vars: map[string]string{"x-hasura-user-id": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hsConfig()
			cfg.UnauthorizedRole = tt.anon
			cfg.AdminSecretPassthrough = tt.passthrough
			a, reg := newTestAuth(t, cfg)
			s, err := a.Authenticate(context.Background(), tt.h)
			if tt.code != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Code != tt.code || ae.Reason != tt.reason {
					t.Fatalf("got %v; want %s/%s", err, tt.code, tt.reason)
				}
				// The 401 of an admin refusal is the proxy's decision
				// (proxy.TestAuthStatus).
				if tt.code == CodeAccessDenied && ae.Message != "invalid x-hasura-admin-secret/x-hasura-access-key" {
					t.Errorf("admin refusal = %q; want %q", ae.Message, "invalid x-hasura-admin-secret/x-hasura-access-key")
				}
				if got := counterValue(t, reg, "auth_decisions_total", map[string]string{"result": ResultDenied, "reason": tt.reason}); got != 1 {
					t.Errorf("denied counter %v; want 1", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Result != tt.result || s.Role != tt.role || !mapsEqual(varsMap(s.Vars), tt.vars) {
				t.Fatalf("got %s %q %v; want %s %q %v", s.Result, s.Role, varsMap(s.Vars), tt.result, tt.role, tt.vars)
			}
		})
	}
}

// TestSeveralIssuers routes tokens by the unverified iss to one secret's
// keys, never a merged key set, as processJwt_ (JWT.hs) pairs each secret
// with the tokens at its location and verifies against the one match.
func TestSeveralIssuers(t *testing.T) {
	jwksA := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	jwksB := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_b": rsaKey(t, "b")})
	cfg := DefaultConfig()
	cfg.JWTSecrets = []JWTSecret{
		{JWKURL: jwksA.JWKSURL(), Issuer: "https://a.test", Name: "a"},
		{JWKURL: jwksB.JWKSURL(), Issuer: "https://b.test", Name: "b"},
	}
	a, _ := newTestAuth(t, cfg)
	claims := func(iss string) map[string]any { c := clerkClaims(); c["iss"] = iss; return c }
	signWith := func(key, kid, iss string) string {
		return sign(t, jwt.SigningMethodRS256, rsaKey(t, key), map[string]any{"kid": kid}, claims(iss))
	}
	tests := []struct {
		name   string
		h      http.Header
		secret string
		msg    string
	}{
		{name: "issuer a", h: bearer(signWith("a", "ins_a", "https://a.test")), secret: "a"},
		{name: "issuer b", h: bearer(signWith("b", "ins_b", "https://b.test")), secret: "b"},
		{name: "claims a, signed by b's key", h: bearer(signWith("b", "ins_b", "https://a.test")), msg: "Could not verify JWT: JWSError JWSInvalidSignature"},
		{name: "claims a, b's key under a's kid", h: bearer(signWith("b", "ins_a", "https://a.test")), msg: "Could not verify JWT: JWSError JWSInvalidSignature"},
		{name: "unknown issuer", h: bearer(signWith("a", "ins_a", "https://c.test")), msg: "Could not verify JWT: JWTNotInIssuer"},
		{name: "no iss matches both", h: bearer(sign(t, jwt.SigningMethodRS256, rsaKey(t, "a"), map[string]any{"kid": "ins_a"}, func() map[string]any { c := clerkClaims(); delete(c, "iss"); return c }())),
			msg: "Could not verify JWT: Multiple JWTs found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := a.Authenticate(context.Background(), tt.h)
			if tt.msg != "" {
				var ae *Error
				if !errors.As(err, &ae) || ae.Message != tt.msg {
					t.Fatalf("got %v; want %q", err, tt.msg)
				}
				return
			}
			if err != nil || s.Secret != tt.secret {
				t.Fatalf("session %+v err %v; want secret %s", s, err, tt.secret)
			}
		})
	}
}

// TestRotationAndOutage: a new kid is picked up at once, a JWKS outage keeps
// the last good keys, an empty key set never wipes them.
func TestRotationAndOutage(t *testing.T) {
	jwks := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	cfg := jwksConfig(jwks.JWKSURL())
	cfg.TokenCache.Size = 0
	a, _ := newTestAuth(t, cfg)
	ctx := context.Background()

	setKeys(jwks, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a"), "ins_new": rsaKey(t, "b")})
	rotated := sign(t, jwt.SigningMethodRS256, rsaKey(t, "b"), map[string]any{"kid": "ins_new"}, clerkClaims())
	if _, err := a.Authenticate(ctx, bearer(rotated)); err != nil {
		t.Fatalf("Authenticate(token of the rotated key) = %v; want nil", err)
	}
	before := jwks.Fetches()
	for i := 0; i < 50; i++ {
		tok := sign(t, jwt.SigningMethodRS256, rsaKey(t, "b"), map[string]any{"kid": "ins_flood_" + string(rune('a'+i%26))}, clerkClaims())
		_, err := a.Authenticate(ctx, bearer(tok))
		wantErr(t, err, CodeInvalidJWT, "Could not verify JWT: JWSError JWSInvalidSignature")
	}
	if n := jwks.Fetches() - before; n > 1 {
		t.Errorf("unknown kid flood caused %d JWKS fetches; want at most 1", n)
	}

	jwks.SetAnswer(fake.JWKSEmpty) // empty set: must not wipe the cache
	jwks.Close()                   // and then the endpoint is down
	if _, err := a.Authenticate(ctx, bearer(rs256(t, clerkClaims()))); err != nil {
		t.Fatalf("Authenticate during the JWKS outage = %v; want nil (keys kept)", err)
	}
}

// TestNoKeysYet answers NoUsableKeys while the JWKS cannot be fetched.
func TestNoKeysYet(t *testing.T) {
	down := fake.StartClerk(t, fake.WithKey(fake.Key{KID: "ins_a", Private: rsaKey(t, "a")}))
	down.SetAnswer(fake.JWKSError)
	cfg := jwksConfig(down.JWKSURL())
	a, err := New(Options{Config: cfg, AdminSecret: testAdmin, Logger: zaptest.NewLogger(t), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if a.Ready() == nil {
		t.Fatal("ready without keys")
	}
	_, err = a.Authenticate(context.Background(), bearer(rs256(t, clerkClaims())))
	wantErr(t, err, CodeInvalidJWT, "Could not verify JWT: JWSError NoUsableKeys")
}

// TestTokenCache: a cached token still goes through role selection, expires
// with exp+skew, and is dropped when the key set loses its key.
func TestTokenCache(t *testing.T) {
	jwks := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	cfg := jwksConfig(jwks.JWKSURL())
	cfg.JWTSecret.AllowedSkew = 5
	now := testNow
	var mu sync.Mutex
	a := startAuth(t, Options{Config: cfg, AdminSecret: testAdmin, Logger: zaptest.NewLogger(t), Metrics: metrics.New(prometheus.NewRegistry()),
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	ctx := context.Background()
	tok := rs256(t, clerkClaims())
	for i := 0; i < 3; i++ {
		if s, err := a.Authenticate(ctx, bearer(tok)); err != nil || s.Role != "user" {
			t.Fatalf("call %d: Authenticate = %+v, %v; want role user, nil", i, s, err)
		}
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache holds %d entries; want 1", a.cache.len())
	}
	_, err := a.Authenticate(ctx, with(bearer(tok), "X-Hasura-Role", "admin"))
	wantErr(t, err, CodeAccessDenied, "Your requested role is not in allowed roles")
	if s, err := a.Authenticate(ctx, with(bearer(tok), "X-Hasura-Role", "editor")); err != nil || s.Role != "editor" {
		t.Fatalf("Authenticate(cache hit, role editor) = %+v, %v; want role editor, nil", s, err)
	}
	// Valid until exp+skew, not a moment longer.
	mu.Lock()
	now = testNow.Add(64 * time.Second)
	mu.Unlock()
	if _, err := a.Authenticate(ctx, bearer(tok)); err != nil {
		t.Fatalf("Authenticate within skew = %v; want nil", err)
	}
	mu.Lock()
	now = testNow.Add(65 * time.Second)
	mu.Unlock()
	_, err = a.Authenticate(ctx, bearer(tok))
	wantErr(t, err, CodeInvalidJWT, "Could not verify JWT: JWTExpired")
	// Failures are never cached.
	bad := rs256(t, func() map[string]any { c := clerkClaims(); c["azp"] = "https://evil.test"; return c }())
	mu.Lock()
	now = testNow
	mu.Unlock()
	for i := 0; i < 2; i++ {
		_, err = a.Authenticate(ctx, bearer(bad))
		wantErr(t, err, CodeInvalidJWT, `Could not verify JWT: token "azp" claim is not in auth.authorized_parties`)
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache len = %d; want 1 (failures are not cached)", a.cache.len())
	}
	// The key is removed from the JWKS: after the refresh, the cached
	// token must not be served.
	setKeys(jwks, map[string]*rsa.PrivateKey{"ins_b": rsaKey(t, "b")})
	other := sign(t, jwt.SigningMethodRS256, rsaKey(t, "b"), map[string]any{"kid": "ins_b"}, clerkClaims())
	if _, err := a.Authenticate(ctx, bearer(other)); err != nil { // triggers the unknown-kid refresh
		t.Fatalf("Authenticate(token of a new kid) = %v; want nil", err)
	}
	_, err = a.Authenticate(ctx, bearer(tok))
	if err == nil {
		t.Fatal("cached token served after its key left the key set")
	}
}

// TestNewRejectsBadConfig: New validates and needs an admin secret.
func TestNewRejectsBadConfig(t *testing.T) {
	cfg := hsConfig()
	if _, err := New(Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), "admin secret") {
		t.Errorf("New without admin secret: err = %v; want an error mentioning %q", err, "admin secret")
	}
	cfg.JWTSecret = nil
	if _, err := New(Options{Config: cfg, AdminSecret: testAdmin}); err == nil {
		t.Error("no jwt secret accepted")
	}
}

func TestParseBearer(t *testing.T) {
	tests := []struct {
		in, tok string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer   abc  ", "abc", true},
		{"Bearer\tabc", "abc", true},
		{"  Bearer abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"", "", false},
		{"Basic abc", "", false},
		{"Bearer a b", "", false},
		{"Bearerabc", "", false},
	}
	for _, tt := range tests {
		tok, ok := parseBearer(tt.in)
		if tok != tt.tok || ok != tt.ok {
			t.Errorf("parseBearer(%q) = %q, %v; want %q, %v", tt.in, tok, ok, tt.tok, tt.ok)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("super-secret-value")
	js, _ := json.Marshal(s)
	txt, _ := s.MarshalText()
	yml, _ := s.MarshalYAML()
	outs := []string{s.String(), s.GoString(), string(js), string(txt), fmt.Sprint(yml)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%10s"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, struct{ K Secret }{s}))
	}
	for _, out := range outs {
		if strings.Contains(out, "super-secret") || strings.Contains(out, "7375706572") {
			t.Errorf("formatted Secret = %s; want it without the secret (plain or hex)", out)
		}
	}
	if !s.Equal("super-secret-value") || s.Equal("super-secret-valuE") || s.Equal("") || Secret("").Equal("") {
		t.Error("Equal is wrong")
	}
}

// TestRotationIsLogged: a refresh that changes the kids logs which were
// added and removed, once.
func TestRotationIsLogged(t *testing.T) {
	jwks := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	core, logs := observer.New(zap.InfoLevel)
	cfg := jwksConfig(jwks.JWKSURL())
	a := startAuth(t, Options{Config: cfg, AdminSecret: testAdmin, Logger: zap.New(core), Now: func() time.Time { return testNow }})
	ctx := context.Background()
	setKeys(jwks, map[string]*rsa.PrivateKey{"ins_b": rsaKey(t, "b")})
	tok := sign(t, jwt.SigningMethodRS256, rsaKey(t, "b"), map[string]any{"kid": "ins_b"}, clerkClaims())
	if _, err := a.Authenticate(ctx, bearer(tok)); err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("jwks keys changed").All()
	if len(entries) != 1 {
		t.Fatalf("%d rotation log lines; want 1", len(entries))
	}
	f := entries[0].ContextMap()
	if fmt.Sprint(f["added_kids"]) != `["ins_b"]` || fmt.Sprint(f["removed_kids"]) != `["ins_a"]` {
		t.Errorf("rotation log fields = %v; want added_kids [\"ins_b\"] and removed_kids [\"ins_a\"]", f)
	}
}

// TestNumericDateOutOfRange pins NumericDates beyond what time.Unix can hold.
// Converting such a float to int64 is implementation-defined in Go (amd64
// gives math.MinInt64), which turned a far-future nbf or iat into a
// far-past one: a token Hasura refuses as not yet valid was accepted, and a
// far-future exp was refused as expired. Far future must stay far future.
func TestNumericDateOutOfRange(t *testing.T) {
	a, _ := newTestAuth(t, hsConfig())
	tests := []struct {
		name  string
		claim string
		value any
		code  string
		msg   string
	}{
		{"nbf 1e300", "nbf", 1e300, CodeInvalidJWT, "Could not verify JWT: JWTNotYetValid"},
		{"nbf past int64 seconds", "nbf", 9.3e18, CodeInvalidJWT, "Could not verify JWT: JWTNotYetValid"},
		{"nbf near int64 max", "nbf", 9.2233720e18, CodeInvalidJWT, "Could not verify JWT: JWTNotYetValid"},
		{"iat 1e300", "iat", 1e300, CodeInvalidJWT, "Could not verify JWT: JWTIssuedAtFuture"},
		{"exp -1e300", "exp", -1e300, CodeInvalidJWT, "Could not verify JWT: JWTExpired"},
		{"exp 1e300", "exp", 1e300, "", ""},
		{"exp near int64 max", "exp", 9.2233720e18, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clerkClaims()
			c[tt.claim] = tt.value
			s, err := a.Authenticate(context.Background(), bearer(hs256(t, c)))
			if tt.code != "" {
				wantErr(t, err, tt.code, tt.msg)
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v; want the token accepted", err)
			}
			if !s.Exp.After(testNow.Add(100 * 365 * 24 * time.Hour)) {
				t.Errorf("Exp = %v; want far in the future", s.Exp)
			}
		})
	}
}

// TestFractionalNumericDates: fractions of a second count, as in Hasura.
func TestFractionalNumericDates(t *testing.T) {
	a, _ := newTestAuth(t, hsConfig())
	now := float64(testNow.Unix())
	tests := []struct {
		name  string
		claim string
		value float64
		msg   string
	}{
		{"nbf half a second ahead", "nbf", now + 0.5, "Could not verify JWT: JWTNotYetValid"},
		{"iat half a second ahead", "iat", now + 0.5, "Could not verify JWT: JWTIssuedAtFuture"},
		{"exp half a second ago", "exp", now - 0.5, "Could not verify JWT: JWTExpired"},
		{"exp half a second ahead", "exp", now + 0.5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clerkClaims()
			c[tt.claim] = tt.value
			_, err := a.Authenticate(context.Background(), bearer(hs256(t, c)))
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Authenticate = %v; want nil", err)
				}
				return
			}
			wantErr(t, err, CodeInvalidJWT, tt.msg)
		})
	}
}
