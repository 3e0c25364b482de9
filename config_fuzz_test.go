package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

// Secrets handed to the configuration through the environment in
// FuzzParseConfig. Neither may ever appear in an error or in the startup
// view of the configuration.
const (
	fzAdminSecret = "fz-admin-Q7vP2mX9kL4wR8tY"
	fzHSKey       = "fz-hs-key-N3bV6cZ1xJ5hG0fD8sA2qW4eR7tY9uI"
)

// FuzzParseConfig decodes arbitrary YAML with the Hasura environment
// variables set. config.Parse never panics; its errors never contain the
// admin secret or the JWT key given through the environment (unless the
// YAML itself asks for those variables with ${...}); a configuration it
// accepts builds an authenticator and a proxy, and its startup view (the
// log line) holds no secret.
func FuzzParseConfig(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yml")
	seeds = append(seeds, "config.yaml")
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
		f.Add(b, uint8(1))
	}
	for _, s := range []string{
		"",
		"auth: {jwt_secret: '{\"jwk_url\":\"https://clerk.example/.well-known/jwks.json\"}'}\n",
		"upstream: {admin_secret: \"${HASURA_GRAPHQL_ADMIN_SECRET}\"}\nauth: {jwt_secret: {type: HS256, key: \"${K:-0123456789abcdef0123456789abcdef}\"}}\n",
		"log: {level: \"${HASURA_GRAPHQL_ADMIN_SECRET}\"}\n",
		"server: {max_header_bytes: \"${X}\"}\n",
		"auth: {jwt_secrets: [{jwk_url: 'http://a', issuer: a}, {jwk_url: 'http://b', issuer: b, header: {type: Cookie, name: s}}]}\n",
		"auth:\n  jwt_secret:\n    jwk_url: https://x\n    claims_map:\n      x-hasura-allowed-roles: {path: $.roles, default: [user]}\n      x-hasura-default-role: user\n",
		"a: &a [*a]\n",
		"auth: {jwt_secret: '{\"type\":\"HS256\",\"key\":\"" + strings.Repeat("k", 40) + "\"'}\n",
		"${HASURA_GRAPHQL_ADMIN_SECRET}: 1\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, envMode uint8) {
		env := map[string]string{config.EnvAdminSecret: fzAdminSecret}
		switch envMode % 3 {
		case 0:
			env[config.EnvJWTSecret] = `{"type":"HS256","key":"` + fzHSKey + `"}`
		case 1:
			env[config.EnvJWTSecrets] = `[{"type":"HS384","key":"` + fzHSKey + fzHSKey + `","issuer":"i"}]`
		case 2:
			// The file alone: its own values, nothing from Hasura's variables.
			delete(env, config.EnvAdminSecret)
		}
		cfg, err := config.Parse(data, func(k string) string { return env[k] })
		// A file that names a variable may legitimately echo its value
		// (e.g. log.level: "${HASURA_GRAPHQL_ADMIN_SECRET}" is quoted back).
		asks := bytes.Contains(data, []byte("HASURA_GRAPHQL")) || bytes.Contains(data, []byte("fz-"))
		if err != nil {
			if msg := err.Error(); !asks && (strings.Contains(msg, fzAdminSecret) || strings.Contains(msg, fzHSKey)) {
				t.Fatalf("error leaks a secret from the environment: %s", msg)
			}
			return
		}
		if envMode%3 != 2 && cfg.Upstream.AdminSecret.Reveal() != fzAdminSecret {
			t.Fatalf("HASURA_GRAPHQL_ADMIN_SECRET did not override the file")
		}
		view, err := json.Marshal(configView(cfg))
		if err != nil {
			t.Fatalf("configView does not marshal: %v", err)
		}
		shown := string(view) + fmt.Sprintf("%v %+v %#v", *cfg, *cfg, *cfg)
		for _, s := range []string{fzAdminSecret, fzHSKey, cfg.Upstream.AdminSecret.Reveal()} {
			if len(s) >= 8 && strings.Contains(shown, s) {
				t.Fatalf("the configuration view shows a secret: %s", view)
			}
		}
		// Accepted means buildable, without I/O.
		a, err := auth.New(auth.Options{Config: cfg.Auth, AdminSecret: cfg.Upstream.AdminSecret, Logger: zap.NewNop()})
		if err != nil {
			t.Fatalf("valid configuration, but auth.New: %v", err)
		}
		if _, err := proxy.New(proxy.Options{
			Upstream: cfg.Upstream, MaxBodyBytes: cfg.Server.MaxBodyBytes, ErrorStatus: cfg.Auth.ErrorStatus, Auth: a,
		}); err != nil {
			t.Fatalf("valid configuration, but proxy.New: %v", err)
		}
	})
}
