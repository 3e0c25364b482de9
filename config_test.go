package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

func noEnv(string) string { return "" }

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestInvalidConfigs loads each testdata/invalid-*.yml and checks that every
// expected problem is reported, naming its field.
func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid-unknown-key.yml", []string{"server.lisen: unknown key; did you mean listen?"}},
		{"invalid-unknown-secret-field.yml", []string{"auth.jwt_secret.issuers: unknown key; did you mean issuer?"}},
		{"invalid-no-admin-secret.yml", []string{"upstream.admin_secret: required (set HASURA_GRAPHQL_ADMIN_SECRET)"}},
		{"invalid-key-and-url.yml", []string{"auth.jwt_secret: key, jwk_url both cannot be present"}},
		{"invalid-neither-key-nor-url.yml", []string{"auth.jwt_secret: key and jwk_url both cannot be empty"}},
		{"invalid-no-jwt-secret.yml", []string{"auth.jwt_secret: one of auth.jwt_secret or auth.jwt_secrets is required"}},
		{"invalid-key-type.yml", []string{"auth.jwt_secret.key: Invalid JWK: Key type: HS999 is not supported"}},
		{"invalid-short-hs-key.yml", []string{"auth.jwt_secret.key: Invalid JWK: Key size too small; should be atleast 32 characters"}},
		{"invalid-json-path.yml", []string{"auth.jwt_secret.claims_namespace_path: invalid JSON path claims_namespace_path error:"}},
		{"invalid-namespace-and-path.yml", []string{"auth.jwt_secret: claims_namespace and claims_namespace_path both cannot be set"}},
		{"invalid-claims-map.yml", []string{"field dflt not found in claims_map entry"}},
		{"invalid-header-type.yml", []string{"auth.jwt_secret.header.type: expected 'type' is 'Authorization' or 'Cookie' or 'CustomHeader'"}},
		{"invalid-urls.yml", []string{"upstream.url: must be an absolute http(s) URL", "auth.jwt_secret.jwk_url: must be an absolute http(s) URL"}},
		{"invalid-many.yml", []string{
			"server.ops_listen: must differ from server.listen",
			"server.shutdown_grace: must be positive",
			"upstream.admin_secret: required",
			"auth.jwt_secret.key: Invalid JWK: Key size too small",
			"auth.array_claims: must be reject or postgres",
			"auth.error_status: must be hasura or http",
			"log.level: must be debug, info, warn or error",
		}},
		{"invalid-json-string.yml", []string{"auth.jwt_secret: a string value must hold Hasura's JSON"}},
		{"invalid-ambiguous-secrets.yml", []string{"auth.jwt_secrets[1]: reads the same header as auth.jwt_secrets[0]"}},
		{"invalid-websocket.yml", []string{
			"websocket.max_connections: must be at least 1",
			"websocket.init_timeout: must be positive",
			"websocket.allowed_origins[0]: must be an origin such as https://app.example.com",
		}},
		{"invalid-first-hour.yml", []string{
			"server.listn: unknown key; did you mean listen?",
			"server.read_timeout: 300 is a number; write a duration such as 1m",
			"auth.jwks.refresh_interval: 300 is a number; write a duration such as 5m",
			"logs: unknown key; did you mean log?",
			"auth.array_claims: must be reject or postgres",
		}},
		{"invalid-env-required.yml", []string{"upstream.url: environment variable UNSET_HASURA_URL is not set or empty: set UNSET_HASURA_URL to Hasura's URL"}},
		{"invalid-shapes.yml", []string{"upstream.admin_secret: this is a mapping, not a string"}},
		{"invalid-websocket-limits.yml", []string{
			"websocket.type_prefix_bytes: must be between 1024 and 1073741824, not 100",
			"websocket.message_timeout: must be positive",
			"websocket.buffer_budget_bytes: must be at least 262144",
			"websocket.max_pending_per_ip: must be at least 1",
			"websocket.max_connections_per_user: must be at least 1",
		}},
		{"invalid-duration.yml", []string{"server.read_header_timeout: 10 is a number; write a duration such as 10s (line 1)"}},
		{"invalid-hostile.yml", []string{
			"server.admin_secret_throttle.failures: must be at least 1",
			"server.admin_secret_throttle.window: must be positive",
			"server.admin_secret_throttle.max_clients: must be at least 1",
			`upstream.allowed_paths[1]: "v1beta1/relay" must start with /`,
			`upstream.allowed_paths[2]: "/api/../v1/metadata" must not hold empty, "." or ".." segments`,
			`upstream.allowed_paths[3]: "/v1/graph%71l" must be a plain, unescaped path`,
		}},
		{"invalid-allowed-paths-empty.yml", []string{`upstream.allowed_paths: list at least one path (["/"] forwards every path)`}},
		{"invalid-clerk-webhook.yml", []string{
			"clerk_webhook.path: must differ from server.webhook_path",
			"clerk_webhook.signing_secret: must be the whsec_",
			"clerk_webhook.max_token_lifetime: must be between 1s and 720h0m0s, not 0s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := config.Load(filepath.Join("testdata", tt.file), noEnv)
			if err == nil {
				t.Fatal("loaded without error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestInvalidFixturesAllListed keeps the table and testdata in step.
func TestInvalidFixturesAllListed(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yml")
	if err != nil || len(files) < 10 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	src, err := os.ReadFile("config_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !bytes.Contains(src, []byte(`"`+filepath.Base(f)+`"`)) {
			t.Errorf("%s has no test case", f)
		}
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := config.Load("config.yaml", envMap(map[string]string{"HASURA_GRAPHQL_ADMIN_SECRET": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Auth.JWTSecret.JWKURL; got != "https://example.clerk.accounts.dev/.well-known/jwks.json" {
		t.Errorf("jwk_url %q", got)
	}
	if cfg.Server.Listen != ":8000" || cfg.Server.OpsListen != ":9090" || cfg.Upstream.AdminSecret.Reveal() != "s3cret" {
		t.Errorf("unexpected %+v / %+v", cfg.Server, cfg.Upstream)
	}
}

func TestConfigExpansionAndEnv(t *testing.T) {
	const base = `
server:
  listen: "${LISTEN:-127.0.0.1:8000}"
  ops_listen: 127.0.0.1:9090
  max_body_bytes: ${BODY:-2048}
upstream: {url: "${HASURA_URL}", admin_secret: "${ADMIN}"}
auth:
  jwt_secret: {jwk_url: "https://${FAPI}/.well-known/jwks.json", issuer: "https://${FAPI}"}
`
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *config.File)
	}{
		{
			name: "expansion and defaults",
			yaml: base,
			env:  map[string]string{"HASURA_URL": "http://hasura:8080", "ADMIN": "a: b # not yaml", "FAPI": "clerk.app.test"},
			check: func(t *testing.T, c *config.File) {
				if c.Server.Listen != "127.0.0.1:8000" || c.Server.MaxBodyBytes != 2048 {
					t.Errorf("server %+v", c.Server)
				}
				if c.Upstream.AdminSecret.Reveal() != "a: b # not yaml" {
					t.Errorf("a secret with YAML syntax was not kept verbatim: %q", c.Upstream.AdminSecret.Reveal())
				}
				if c.Auth.JWTSecret.Issuer != "https://clerk.app.test" {
					t.Errorf("issuer %q", c.Auth.JWTSecret.Issuer)
				}
			},
		},
		{
			name: "Hasura environment variables override the file",
			yaml: base,
			env: map[string]string{"HASURA_URL": "http://hasura:8080", "ADMIN": "file", "FAPI": "x.test",
				"HASURA_GRAPHQL_ADMIN_SECRET":      "from-env",
				"HASURA_GRAPHQL_JWT_SECRET":        `{"type":"HS256","key":"0123456789abcdef0123456789abcdef","claims_namespace":"claims.jwt.hasura.io"}`,
				"HASURA_GRAPHQL_UNAUTHORIZED_ROLE": "anonymous"},
			check: func(t *testing.T, c *config.File) {
				if c.Upstream.AdminSecret.Reveal() != "from-env" || c.Auth.UnauthorizedRole != "anonymous" {
					t.Errorf("env not applied: %+v", c.Auth)
				}
				if s := c.Auth.JWTSecret; s.Type != "HS256" || s.JWKURL != "" || s.ClaimsNamespace != "claims.jwt.hasura.io" {
					t.Errorf("jwt secret %+v", s)
				}
			},
		},
		{
			name: "JWT_SECRETS wins over JWT_SECRET",
			yaml: base,
			env: map[string]string{"HASURA_URL": "http://hasura:8080", "ADMIN": "a", "FAPI": "x.test",
				"HASURA_GRAPHQL_JWT_SECRET":  `{"jwk_url":"https://one.test/jwks"}`,
				"HASURA_GRAPHQL_JWT_SECRETS": `[{"jwk_url":"https://a.test/jwks","issuer":"https://a.test"},{"jwk_url":"https://b.test/jwks","issuer":"https://b.test"}]`},
			check: func(t *testing.T, c *config.File) {
				if c.Auth.JWTSecret != nil || len(c.Auth.JWTSecrets) != 2 {
					t.Errorf("secrets %+v %+v", c.Auth.JWTSecret, c.Auth.JWTSecrets)
				}
			},
		},
		{
			name: "jwt_secret as a pasted JSON string",
			yaml: `
upstream: {url: "http://127.0.0.1:8080", admin_secret: "a"}
auth:
  jwt_secret: '{"jwk_url":"https://clerk.app.test/.well-known/jwks.json","audience":["a","b"],"allowed_skew":2.5,"claims_map":{"x-hasura-allowed-roles":["user"],"x-hasura-default-role":"user","x-hasura-user-id":{"path":"$.sub"}}}'
`,
			check: func(t *testing.T, c *config.File) {
				s := c.Auth.JWTSecret
				if s.JWKURL == "" || len(s.Audience) != 2 || s.AllowedSkew != 2.5 || s.ClaimsMap["x-hasura-user-id"].Path != "$.sub" {
					t.Errorf("secret %+v", s)
				}
			},
		},
		{
			name: "claims_map in YAML",
			yaml: `
upstream: {url: "http://127.0.0.1:8080", admin_secret: "a"}
auth:
  jwt_secret:
    type: HS256
    key: "0123456789abcdef0123456789abcdef"
    audience: hasura
    claims_map:
      x-hasura-allowed-roles: [user, editor]
      x-hasura-default-role: {path: "$.role", default: user}
      x-hasura-user-id: {path: "$.sub"}
    header: {type: Cookie, name: __session}
`,
			check: func(t *testing.T, c *config.File) {
				s := c.Auth.JWTSecret
				if string(s.ClaimsMap["x-hasura-allowed-roles"].Literal) != `["user","editor"]` ||
					string(s.ClaimsMap["x-hasura-default-role"].Default) != `"user"` ||
					len(s.Audience) != 1 || s.Header.Name != "__session" {
					t.Errorf("secret %+v", s)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestCheckConfigCommand runs -check-config: exit 1 listing every problem,
// exit 0 when valid.
func TestCheckConfigCommand(t *testing.T) {
	t.Setenv("HASURA_GRAPHQL_ADMIN_SECRET", "")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-check-config", "-config", "testdata/invalid-many.yml"}, &out, &errOut)
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 {
		t.Fatalf("err %v; want exit code 1", err)
	}
	if n := strings.Count(errOut.String(), "\n  - "); n < 7 {
		t.Errorf("want every problem on its own line, got %d:\n%s", n, errOut.String())
	}

	t.Setenv("HASURA_GRAPHQL_ADMIN_SECRET", "s3cret")
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"-check-config", "-config", "config.yaml"}, &out, &errOut); err != nil {
		t.Fatalf("valid config: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "is valid") || strings.Contains(out.String()+errOut.String(), "s3cret") {
		t.Errorf("output %q %q", out.String(), errOut.String())
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-nope"}, &out, &errOut)
	var ec exitCode
	if !errors.As(err, &ec) || ec != 2 {
		t.Errorf("unknown flag: %v", err)
	}
	if _, err := config.Load("testdata/does-not-exist.yml", noEnv); err == nil {
		t.Error("missing file accepted")
	}
}

func TestDefaultsMatchDocs(t *testing.T) {
	c := config.Default()
	if c.Server.ShutdownGrace != 20*time.Second || c.Server.MaxBodyBytes != 10<<20 ||
		c.Auth.JWKS.RefreshInterval != 5*time.Minute || c.Auth.JWKS.UnknownKIDRefreshInterval != 30*time.Second ||
		c.Auth.JWKS.MaxStale != 24*time.Hour || c.Auth.JWKS.FetchTimeout != 5*time.Second ||
		!c.Auth.Require.Exp || !c.Auth.Require.Iss || !c.Auth.Require.Aud || !c.Auth.Require.AZP ||
		c.Auth.ArrayClaims != "reject" || c.Auth.ErrorStatus != "hasura" || c.Auth.TokenCache.Size != 10000 ||
		!c.Auth.AdminSecretPassthrough {
		t.Errorf("defaults drifted from the documented ones: %+v", c)
	}
}

// TestPlainExpansionKeepsValues: an unquoted ${VAR} whose value looks like
// YAML (a mapping, a bool, a number, a flow collection) is still taken as
// the literal value, never as structure.
func TestPlainExpansionKeepsValues(t *testing.T) {
	const doc = "upstream:\n  url: http://127.0.0.1:8080\n  admin_secret: ${ADMIN}\nauth:\n  jwt_secret: {type: HS256, key: 0123456789abcdef0123456789abcdef}\n"
	for _, v := range []string{"a: b # c", "true", "123", "{x}", "- y", "'q", "[1, 2]", "&anchor"} {
		c, err := config.Parse([]byte(doc), envMap(map[string]string{"ADMIN": v}))
		if err != nil {
			t.Errorf("%q: %v", v, err)
			continue
		}
		if got := c.Upstream.AdminSecret.Reveal(); got != v {
			t.Errorf("%q became %q", v, got)
		}
	}
}

// TestTypeErrorsHideValues: a secret pasted under a key of another type is
// not repeated in the error.
func TestTypeErrorsHideValues(t *testing.T) {
	doc := "server:\n  max_body_bytes: hskey-0123456789abcdef\nupstream: {url: \"http://127.0.0.1:8080\", admin_secret: a}\n"
	_, err := config.Parse([]byte(doc), noEnv)
	if err == nil || strings.Contains(err.Error(), "hskey") || !strings.Contains(err.Error(), "server.max_body_bytes: this is text; write a whole number such as 10485760 (line 2)") {
		t.Errorf("error %v", err)
	}
}
