package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// The limits sections' invalid fixtures (named limits-invalid-*.yml so the
// shared invalid-*.yml table stays untouched) and their errors.
func TestInvalidLimitsConfigs(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"limits-invalid-values.yml", []string{
			"api_limits.depth_limit.global: must be between 1 and 1073741824, not 0",
			"api_limits.depth_limit.per_role.user: must be between 1 and 1073741824, not -1",
			"api_limits.node_limit.per_role: a role name must not be empty",
			"api_limits.batch_limit.global: must be between 1 and 1073741824, not 2000000000",
			"api_limits.time_limit.global: at most 86400 seconds, not 100000",
			"api_limits.rate_limit.global.max_reqs_per_min: must be between 1 and 1000000, not 0",
			`api_limits.rate_limit.per_role.user.unique_params[1]: "user-id" is not a session variable`,
			`api_limits.rate_limit.per_role.user.unique_params[2]: "x-hasura-user-id" is listed twice`,
			"graphql_schema_introspection.disabled_for_roles[1]: must not be empty",
		}},
		{"limits-invalid-unique-params.yml", []string{`unique_params must be "IP" or a list of session variables, not "ip"`}},
		{"limits-invalid-unknown-key.yml", []string{"api_limits.depth_limits: unknown key; did you mean depth_limit?"}},
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

// The configuration contract decodes as written.
func TestLimitsConfigContract(t *testing.T) {
	cfg, err := config.Parse([]byte(`
upstream: {url: "http://127.0.0.1:8080", admin_secret: "s3cret"}
auth:
  jwt_secret: {type: HS256, key: "0123456789abcdef0123456789abcdef"}
server:
  trusted_proxies: [10.0.0.0/8]
api_limits:
  disabled: false
  depth_limit: {global: 10, per_role: {user: 5}}
  node_limit:  {global: 100, per_role: {user: 50}}
  batch_limit: {global: 5, per_role: {user: 2}}
  time_limit:  {global: 30, per_role: {user: 10}}
  rate_limit:
    global:   {max_reqs_per_min: 600, unique_params: IP}
    per_role: {user: {max_reqs_per_min: 60, unique_params: [x-hasura-user-id]}}
graphql_schema_introspection:
  disabled_for_roles: [user, anonymous]
redis:
  url: redis://127.0.0.1:6379/0
  timeout: 100ms
  on_error: allow
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.APILimits
	if *l.DepthLimit.Global != 10 || l.DepthLimit.PerRole["user"] != 5 || *l.NodeLimit.Global != 100 ||
		*l.BatchLimit.Global != 5 || l.TimeLimit.PerRole["user"] != 10 ||
		l.RateLimit.Global.MaxReqsPerMin != 600 || !l.RateLimit.Global.UniqueParams.IP ||
		l.RateLimit.PerRole["user"].UniqueParams.Vars[0] != "x-hasura-user-id" {
		t.Errorf("api_limits decoded as %+v", l)
	}
	if got := strings.Join(cfg.Introspection.DisabledForRoles, ","); got != "user,anonymous" {
		t.Errorf("disabled_for_roles = %q; want user,anonymous", got)
	}
	if got := strings.Join(l.Roles(cfg.Introspection), ","); got != "anonymous,user" {
		t.Errorf("Roles = %q; want anonymous,user", got)
	}
}

// metadata_dir reads Hasura's own metadata files.
func TestLimitsMetadataDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := `
upstream: {url: "http://127.0.0.1:8080", admin_secret: "s3cret"}
auth:
  jwt_secret: {type: HS256, key: "0123456789abcdef0123456789abcdef"}
metadata_dir: ` + strconv.Quote(dir) + "\n"
	// As the Hasura CLI exports them.
	write("api_limits.yaml", "disabled: false\ndepth_limit:\n  global: 5\n  per_role:\n    user: 3\nrate_limit:\n  global:\n    max_reqs_per_min: 100\n    unique_params: IP\n")
	write("graphql_schema_introspection.yaml", "disabled_for_roles:\n  - anonymous\n")
	cfg, err := config.Parse([]byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.APILimits; l.DepthLimit == nil || *l.DepthLimit.Global != 5 || l.DepthLimit.PerRole["user"] != 3 || !l.RateLimit.Global.UniqueParams.IP {
		t.Errorf("api_limits from metadata_dir = %+v", l)
	}
	if got := cfg.Introspection.DisabledForRoles; len(got) != 1 || got[0] != "anonymous" {
		t.Errorf("disabled_for_roles = %v; want [anonymous]", got)
	}

	for _, tt := range []struct {
		name, extra, file, body, want string
	}{
		{"both inline and in the directory", "api_limits: {depth_limit: {global: 2}}\n", "", "", "api_limits: also in metadata_dir (api_limits.yaml); keep one"},
		{"unknown key in the file", "", "api_limits.yaml", "depth_limits: {global: 2}\n", "metadata_dir: api_limits.yaml: yaml: unmarshal errors:\n  line 1: field depth_limits not found"},
		{"file values are validated", "", "api_limits.yaml", "node_limit: {global: 0}\n", "api_limits.node_limit.global: must be between 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.file != "" {
				write(tt.file, tt.body)
			}
			_, err := config.Parse([]byte(base+tt.extra), noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one containing %q", err, tt.want)
			}
		})
	}
	// A directory without the files leaves the sections as they are.
	empty := strings.Replace(base, strconv.Quote(dir), strconv.Quote(t.TempDir()), 1)
	if cfg, err := config.Parse([]byte(empty+"api_limits: {depth_limit: {global: 2}}\n"), noEnv); err != nil || *cfg.APILimits.DepthLimit.Global != 2 {
		t.Errorf("empty metadata_dir: %v; want the inline section kept", err)
	}
}
