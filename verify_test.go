package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// exitStatus is the process exit status run's error stands for.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	return 1
}

// verifyFixture is a token issuer (the demo's) and configurations that
// trust it.
type verifyFixture struct {
	issuer verifyIssuer
	dir    string
}

// verifyIssuer is the demo's issuer, served; url is its URL (the name the
// demo's tests use).
type verifyIssuer struct {
	*fake.Clerk
	url string
}

// demoClaims are the variable parts of a fixture token; zero fields take
// the fixture's defaults.
type demoClaims struct {
	user, role string
	allowed    []string
	ttl        time.Duration
	azp        string
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	iss, err := newDemoIssuer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	return &verifyFixture{issuer: verifyIssuer{Clerk: iss, url: srv.URL}, dir: t.TempDir()}
}

// config writes a configuration trusting the issuer; authExtra is added
// under auth: and secretExtra under auth.jwt_secret:.
func (f *verifyFixture) config(t *testing.T, name, jwkURL, secretExtra, authExtra string) string {
	t.Helper()
	if jwkURL == "" {
		jwkURL = f.issuer.url + "/.well-known/jwks.json"
	}
	y := `server:
  listen: "127.0.0.1:0"
  ops_listen: "127.0.0.1:1"
upstream:
  url: "http://127.0.0.1:1"
  admin_secret: "${HASURA_GRAPHQL_ADMIN_SECRET}"
auth:
  jwt_secret:
    jwk_url: "` + jwkURL + `"
    issuer: "` + f.issuer.url + `"
` + secretExtra + `  authorized_parties: ["` + demoAZP + `"]
` + authExtra
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *verifyFixture) token(t *testing.T, c demoClaims) string {
	t.Helper()
	if c.user == "" {
		c.user = "alice"
	}
	if c.role == "" {
		c.role = "user"
	}
	if c.allowed == nil {
		c.allowed = []string{c.role}
	}
	if c.ttl == 0 {
		c.ttl = time.Hour
	}
	if c.azp == "" {
		c.azp = demoAZP
	}
	tok, err := f.issuer.Mint(fake.Claims{User: c.user, Role: c.role, Allowed: c.allowed, TTL: c.ttl, AZP: c.azp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerify(t *testing.T) {
	// The real admin secret must never be needed nor printed.
	adminSecret := "verify-test-admin-secret-" + strings.Repeat("7", 16)
	t.Setenv(config.EnvAdminSecret, adminSecret)
	t.Setenv(config.EnvJWTSecret, "")
	t.Setenv(config.EnvJWTSecrets, "")

	f := newVerifyFixture(t)
	cfg := f.config(t, "config.yaml", "", "", "")
	cookieCfg := f.config(t, "cookie.yaml", "", "    header: {type: Cookie, name: __session}\n", "")
	// JWKS servers that fail: an error, and no answer at all.
	down := fake.StartClerk(t, fake.WithKey(f.issuer.Signer()))
	down.SetAnswer(fake.JWKSError)
	downCfg := f.config(t, "down.yaml", down.JWKSURL(), "", "")
	hang := fake.StartClerk(t, fake.WithKey(f.issuer.Signer()))
	hang.SetAnswer(fake.JWKSHang)
	hangCfg := f.config(t, "hang.yaml", hang.JWKSURL(), "", "")
	badCfg := filepath.Join(f.dir, "bad.yaml")
	if err := os.WriteFile(badCfg, []byte("auth:\n  jwt_secret: {jwk_url: 'ftp://x'}\n  unknown_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	good := f.token(t, demoClaims{})
	editor := f.token(t, demoClaims{role: "user", allowed: []string{"user", "editor"}})
	expired := f.token(t, demoClaims{ttl: -time.Minute})
	evilAZP := f.token(t, demoClaims{azp: "https://evil.example"})
	other, err := newDemoIssuer()
	if err != nil {
		t.Fatal(err)
	}
	other.URL = f.issuer.url // same iss, a key the JWKS does not hold
	forged, err := other.Mint(fake.Claims{User: "alice", Role: "user", Allowed: []string{"user"}, TTL: time.Hour, AZP: demoAZP})
	if err != nil {
		t.Fatal(err)
	}
	noClaims, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": f.issuer.url, "sub": "alice", "azp": demoAZP, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(f.issuer.Signer().Private)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		args   []string
		stdin  string
		status int
		want   []string // substrings of stdout
		errOut []string // substrings of stderr
	}{
		{
			name: "allowed, default role", args: []string{"-config", cfg, good}, status: 0,
			want: []string{"decision: ALLOWED (allowed, JWT secret 0)", "role: user", "X-Hasura-Admin-Secret: [REDACTED]",
				"X-Hasura-Role: user", "x-hasura-user-id: alice", "Authorization: (the client's, forwarded)", `"kid": "` + f.issuer.KID() + `"`, "expires     ", "session ends at exp: "},
		},
		{
			name: "allowed, role chosen after the token", args: []string{"-config", cfg, editor, "-role", "editor"}, status: 0,
			want: []string{"decision: ALLOWED", "X-Hasura-Role: editor", "with X-Hasura-Role: editor"},
		},
		{
			name: "refused: role not allowed", args: []string{"-config", cfg, "-role", "admin", good}, status: 1,
			want: []string{"decision: REFUSED", "Hasura error code:    access-denied", "Your requested role is not in allowed roles",
				`HTTP 200`, `{"errors":[{"message":"Your requested role is not in allowed roles","extensions":{"path":"$","code":"access-denied"}}]}`},
		},
		{
			name: "refused: expired", args: []string{"-config", cfg, expired}, status: 1,
			want: []string{"Could not verify JWT: JWTExpired", "expires     ", " ago)", "hint: the token expired"},
		},
		{
			name: "refused: azp", args: []string{"-config", cfg, evilAZP}, status: 1,
			want: []string{`token "azp" claim is not in auth.authorized_parties`, `"azp": "https://evil.example"`},
		},
		{
			name: "refused: signed by another key", args: []string{"-config", cfg, forged}, status: 1,
			want: []string{"Could not verify JWT: JWSError JWSInvalidSignature", "detail (proxy log):", "not in the key set"},
		},
		{
			name: "refused: no Hasura claims", args: []string{"-config", cfg, noClaims}, status: 1,
			want: []string{"jwt-invalid-claims", "claims key: 'https://hasura.io/jwt/claims' not found"},
		},
		{
			name: "refused: not a JWT", args: []string{"-config", cfg, "not.a-jwt"}, status: 1,
			want: []string{"not decodable", "Could not verify JWT: JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)"},
		},
		{
			name: "token from stdin, with its Bearer prefix", args: []string{"-config", cfg, "-"}, stdin: "Bearer " + good + "\n", status: 0,
			want: []string{"decision: ALLOWED"},
		},
		{
			name: "cookie location from the configuration", args: []string{"-config", cookieCfg, good}, status: 0,
			want: []string{"token (sent as cookie:__session)", "decision: ALLOWED", "Cookie: (the client's, forwarded)"},
		},
		{
			name: "-as overrides the location", args: []string{"-config", cookieCfg, "-as", "authorization", good}, status: 1,
			want: []string{"Missing 'Authorization' or 'Cookie' header in JWT authentication mode"},
		},
		{
			// Not a 10s wait and then a JWTNotInIssuer-like refusal: the
			// first failed fetch ends it, exit 2 (the -timeout message
			// differs, so this also shows the timeout did not expire).
			name: "keys unreachable: said at once, exit 2", args: []string{"-config", downCfg, good}, status: 2,
			errOut: []string{"hasura-auth-proxy verify: keys could not be fetched from " + down.JWKSURL()},
		},
		{
			name: "keys not loaded within -timeout", args: []string{"-config", hangCfg, "-timeout", "200ms", good}, status: 2,
			errOut: []string{"hasura-auth-proxy verify: keys not loaded within -timeout 200ms: context deadline exceeded"},
		},
		{name: "usage: no token", args: []string{"-config", cfg}, status: 2, errOut: []string{"exactly one TOKEN"}},
		{name: "usage: two tokens", args: []string{"-config", cfg, good, good}, status: 2, errOut: []string{"exactly one TOKEN"}},
		{name: "usage: empty stdin", args: []string{"-config", cfg, "-"}, stdin: " \n", status: 2, errOut: []string{"the token is empty"}},
		{name: "usage: bad -as", args: []string{"-config", cfg, "-as", "query:x", good}, status: 2, errOut: []string{"-as:"}},
		{name: "usage: unknown flag", args: []string{"-bogus", good}, status: 2, errOut: []string{"flag provided but not defined"}},
		{name: "config: missing file", args: []string{"-config", filepath.Join(f.dir, "nope.yaml"), good}, status: 2, errOut: []string{"is invalid", "no such file"}},
		{name: "config: invalid", args: []string{"-config", badCfg, good}, status: 2, errOut: []string{"is invalid", "unknown_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := runVerify(ctx, tt.args, strings.NewReader(tt.stdin), &out, &errb)
			if got := exitStatus(err); got != tt.status {
				t.Fatalf("exit status %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", got, err, tt.status, out.String(), errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.errOut {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			for _, s := range []string{adminSecret, "[REDACTED]" + adminSecret} {
				if strings.Contains(out.String()+errb.String(), s) {
					t.Errorf("the admin secret was printed")
				}
			}
		})
	}
}

// TestVerifyNeverPrintsKeys checks an HS256 configuration: the key verifies
// the token and appears nowhere in the output.
func TestVerifyNeverPrintsKeys(t *testing.T) {
	const hsKey = "verify-hs256-key-which-must-stay-secret-0123"
	t.Setenv(config.EnvJWTSecret, "")
	t.Setenv(config.EnvJWTSecrets, "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hs.yaml")
	y := `upstream:
  url: "http://127.0.0.1:1"
  admin_secret: "the-file-admin-secret-value"
auth:
  jwt_secret: {type: HS256, key: "` + hsKey + `"}
`
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	sign := func(key string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "u1", "exp": time.Now().Add(time.Minute).Unix(),
			"https://hasura.io/jwt/claims": map[string]any{
				"x-hasura-user-id": "u1", "x-hasura-default-role": "user", "x-hasura-allowed-roles": []string{"user"},
			},
		}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name   string
		token  string
		status int
		want   string
	}{
		{"right key", sign(hsKey), 0, "decision: ALLOWED"},
		{"wrong key", sign(strings.Repeat("k", 40)), 1, "JWSInvalidSignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"verify", "-config", cfg, tt.token}, &out, &errb)
			if got := exitStatus(err); got != tt.status {
				t.Fatalf("exit status %d, want %d\n%s%s", got, tt.status, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("stdout lacks %q:\n%s", tt.want, out.String())
			}
			all := out.String() + errb.String()
			for _, secret := range []string{hsKey, "the-file-admin-secret-value"} {
				if strings.Contains(all, secret) {
					t.Errorf("output contains the secret %q", secret)
				}
			}
		})
	}
}
