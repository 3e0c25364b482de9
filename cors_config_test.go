package main

import (
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// TestCORSConfig: server.cors_domain / cors_disabled and Hasura's
// environment variables, which win over the file.
func TestCORSConfig(t *testing.T) {
	const base = `upstream: {url: "http://127.0.0.1:8080", admin_secret: "s"}
auth:
  jwt_secret: {jwk_url: "https://clerk.example.test/.well-known/jwks.json"}
`
	for _, tt := range []struct {
		name      string
		yaml      string
		env       map[string]string
		wantErr   string
		allowed   string
		denied    string
		wantList  bool
		wantNoneO bool // CORS disabled: nothing allowed
		// wantOneErr: wantErr is the only problem reported.
		wantOneErr bool
	}{
		{name: "default is Hasura's *", allowed: "https://anything.example"},
		{name: "file list", yaml: "server: {cors_domain: \"https://app.example.com, http://localhost:3000\"}\n",
			allowed: "http://localhost:3000", denied: "https://evil.example", wantList: true},
		{name: "env overrides file", yaml: "server: {cors_domain: \"https://app.example.com\"}\n",
			env:     map[string]string{"HASURA_GRAPHQL_CORS_DOMAIN": "https://*.example.org"},
			allowed: "https://a.example.org", denied: "https://app.example.com", wantList: true},
		{name: "file disabled", yaml: "server: {cors_disabled: true}\n", denied: "https://a.example", wantNoneO: true},
		{name: "env disabled", env: map[string]string{"HASURA_GRAPHQL_DISABLE_CORS": "True"}, denied: "https://a.example", wantNoneO: true},
		{name: "env re-enables", yaml: "server: {cors_disabled: true}\n", env: map[string]string{"HASURA_GRAPHQL_DISABLE_CORS": "false"},
			allowed: "https://a.example"},
		{name: "bad env boolean", env: map[string]string{"HASURA_GRAPHQL_DISABLE_CORS": "maybe"},
			wantErr: "HASURA_GRAPHQL_DISABLE_CORS: must be true or false"},
		{name: "bad domain names the path", yaml: "server: {cors_domain: \"localhost:3000\"}\n",
			wantErr: `server.cors_domain: invalid domain "localhost:3000"`},
		{name: "bad env domain names the path", env: map[string]string{"HASURA_GRAPHQL_CORS_DOMAIN": "https://a.example/"},
			wantErr: `server.cors_domain: invalid domain "https://a.example/"`},
		{name: "read_cookie with * refused", yaml: "websocket: {read_cookie: true}\n",
			wantErr: "websocket.read_cookie: requires websocket.allowed_origins or a server.cors_domain origin list"},
		{name: "bad domain with read_cookie: one error", yaml: "websocket: {read_cookie: true}\nserver: {cors_domain: \"x\"}\n",
			wantErr: `server.cors_domain: invalid domain "x"`, wantOneErr: true},
		{name: "read_cookie takes the CORS list", yaml: "websocket: {read_cookie: true}\nserver: {cors_domain: \"https://app.example.com\"}\n",
			allowed: "https://app.example.com", wantList: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(base+tt.yaml), envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v; want one containing %q", err, tt.wantErr)
				}
				if n := len(strings.Split(err.Error(), "\n")); tt.wantOneErr && n != 1 {
					t.Errorf("%d problems reported; want 1:\n%v", n, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v; want nil", err)
			}
			c := cfg.Server.CORS()
			if tt.allowed != "" && !c.Allows(tt.allowed) {
				t.Errorf("Allows(%q) = false; want true", tt.allowed)
			}
			if tt.denied != "" && c.Allows(tt.denied) {
				t.Errorf("Allows(%q) = true; want false", tt.denied)
			}
			if got := c.IsList(); got != tt.wantList {
				t.Errorf("IsList() = %v; want %v", got, tt.wantList)
			}
			if got := c.Enabled(); got == tt.wantNoneO {
				t.Errorf("Enabled() = %v; want %v", got, !tt.wantNoneO)
			}
		})
	}
}
