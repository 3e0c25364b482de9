package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// TestShippedConfigWarns: config.yaml with CLERK_FRONTEND_API unset is
// valid but names the placeholder host; with it set there is no warning.
func TestShippedConfigWarns(t *testing.T) {
	env := map[string]string{"HASURA_GRAPHQL_ADMIN_SECRET": "s3cret"}
	cfg, err := config.Load("config.yaml", envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	w := config.Warnings(cfg)
	if len(w) != 2 || !strings.HasPrefix(w[0], "auth.jwt_secret.jwk_url: example.clerk.accounts.dev is the example's placeholder") ||
		!strings.HasPrefix(w[1], "auth.jwt_secret.issuer: example.clerk.accounts.dev") {
		t.Errorf("warnings = %q; want the placeholder jwk_url and issuer", w)
	}
	env["CLERK_FRONTEND_API"] = "clerk.app.example.test"
	if cfg, err = config.Load("config.yaml", envMap(env)); err != nil {
		t.Fatal(err)
	}
	if w := config.Warnings(cfg); len(w) != 0 {
		t.Errorf("warnings = %q; want none with CLERK_FRONTEND_API set", w)
	}
}

func TestReadBuildInfoFrom(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}}
	got := readBuildInfoFrom(bi)
	if got.Version != "v1.2.3" || got.revisionLabel() != "0123abcd-modified" || got.GoVersion != "go1.26.1" {
		t.Errorf("readBuildInfoFrom = %+v; want v1.2.3, 0123abcd-modified, go1.26.1", got)
	}
	got = readBuildInfoFrom(&debug.BuildInfo{})
	if got.Version != "(devel)" || got.revisionLabel() != "unknown" || got.GoVersion != runtime.Version() {
		t.Errorf("readBuildInfoFrom(empty) = %+v; want (devel), unknown, %s", got, runtime.Version())
	}
}
