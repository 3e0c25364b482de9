package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// verify prints the API limits that apply to the token's role.
func TestVerifyShowsLimits(t *testing.T) {
	t.Setenv(config.EnvAdminSecret, "verify-limits-admin-secret-0123456789")
	t.Setenv(config.EnvJWTSecret, "")
	t.Setenv(config.EnvJWTSecrets, "")
	f := newVerifyFixture(t)
	cfg := f.config(t, "limits.yaml", "", "", `api_limits:
  depth_limit: {global: 10, per_role: {user: 5}}
  time_limit: {global: 30}
  rate_limit:
    per_role: {user: {max_reqs_per_min: 60, unique_params: [x-hasura-user-id]}}
graphql_schema_introspection:
  disabled_for_roles: [user]
`)
	plain := f.config(t, "plain.yaml", "", "", "")
	tests := []struct {
		name, cfg, role string
		want, not       string
	}{
		{"user", cfg, "", "api limits: depth 5, time 30s, rate 60/min per x-hasura-user-id, introspection disabled", ""},
		{"editor gets global", cfg, "editor", "api limits: depth 10, time 30s", "introspection disabled"},
		{"no limits configured", plain, "", "", "api limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := f.token(t, demoClaims{role: "user", allowed: []string{"user", "editor"}})
			args := []string{"-config", tt.cfg, tok}
			if tt.role != "" {
				args = append(args, "-role", tt.role)
			}
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := runVerify(ctx, args, strings.NewReader(""), &out, &errb); err != nil {
				t.Fatalf("verify: %v\n%s%s", err, out.String(), errb.String())
			}
			if tt.want != "" && !strings.Contains(out.String(), tt.want) {
				t.Errorf("stdout lacks %q:\n%s", tt.want, out.String())
			}
			if tt.not != "" && strings.Contains(out.String(), tt.not) {
				t.Errorf("stdout has %q:\n%s", tt.not, out.String())
			}
		})
	}
}
