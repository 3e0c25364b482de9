package main

// The first hour of a newcomer, replayed against the built binary: each
// stumble of issue 15 (help, version, install, environment-only operation,
// configuration errors and warnings, healthcheck, verify without keys).

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// binResult is what one run of the binary printed and its exit status.
type binResult struct {
	stdout, stderr string
	code           int
}

// runBin runs the built binary in dir with env and waits for it (bounded).
func runBin(t *testing.T, dir string, env []string, args ...string) binResult {
	t.Helper()
	needBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := binResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	return r
}

// startBinaryIn runs the built binary in dir with env and args and waits for
// its starting line; Cleanup kills it.
func startBinaryIn(t *testing.T, dir string, env []string, args ...string) (*process, logEntry) {
	t.Helper()
	needBinary(t)
	p := &process{logs: newLogSink(), exited: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	start := p.logs.wait(t, `"starting"`, p.exited, msgIs("starting"))
	p.clientAddr = start.str("listen")
	p.client = "http://" + p.clientAddr
	p.ops = "http://" + start.str("ops_listen")
	return p, start
}

// TestBinaryHelp: -h, --help and help list every command, one line each,
// and exit 0; help COMMAND shows the command's flags.
func TestBinaryHelp(t *testing.T) {
	commands := []string{
		"hasura-auth-proxy [-config FILE]  ",
		"hasura-auth-proxy -check-config [-config FILE]  ",
		"hasura-auth-proxy demo  ",
		"hasura-auth-proxy verify [-config FILE] TOKEN  ",
		"hasura-auth-proxy healthcheck [-addr HOST:PORT]  ",
		"hasura-auth-proxy version  ",
		"hasura-auth-proxy help [COMMAND]  ",
		"-version",
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runBin(t, t.TempDir(), childEnv(), args...)
			if r.code != 0 {
				t.Errorf("exit status %d; want 0\n%s%s", r.code, r.stdout, r.stderr)
			}
			all := r.stdout + r.stderr
			for _, c := range commands {
				if !strings.Contains(all, c) {
					t.Errorf("help lacks %q:\n%s", c, all)
				}
			}
			if args[0] == "help" && r.stdout == "" {
				t.Errorf("help printed nothing on stdout; stderr:\n%s", r.stderr)
			}
		})
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help", "verify"}, 0, "usage: hasura-auth-proxy verify"},
		{[]string{"help", "healthcheck"}, 0, "usage: hasura-auth-proxy healthcheck"},
		{[]string{"help", "demo"}, 0, "usage: hasura-auth-proxy demo"},
		{[]string{"help", "nope"}, 2, `unknown command "nope"`},
		{[]string{"nope"}, 2, `unexpected argument "nope" (commands: demo, verify, healthcheck, version, help)`},
	}
	for _, tt := range tests {
		r := runBin(t, t.TempDir(), childEnv(), tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.want) {
			t.Errorf("%v: exit %d, output:\n%s%s\nwant exit %d and %q", tt.args, r.code, r.stdout, r.stderr, tt.code, tt.want)
		}
	}
}

// TestBinaryVersion: version, -version and --version print the module
// version, commit and Go version the binary carries.
func TestBinaryVersion(t *testing.T) {
	needBinary(t)
	bi, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	want := readBuildInfoFrom(bi)
	wantOut := "hasura-auth-proxy " + want.Version + "\n  commit: " + want.revisionLabel() + "\n  go:     " + want.GoVersion + "\n"
	for _, arg := range []string{"version", "-version", "--version"} {
		r := runBin(t, t.TempDir(), childEnv(), arg)
		if r.code != 0 || r.stdout != wantOut {
			t.Errorf("%s: exit %d, stdout %q; want 0 and %q (stderr %q)", arg, r.code, r.stdout, wantOut, r.stderr)
		}
	}
}

// TestBinaryBuildInfoAndStart: the starting line carries the build and
// where the configuration came from; /metrics has the build_info gauge;
// configuration warnings are logged at start.
func TestBinaryBuildInfoAndStart(t *testing.T) {
	needBinary(t)
	bi, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	want := readBuildInfoFrom(bi)
	h := newFakeHasura(t)
	cfg := testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8), HSKey: randomHex(t, 24)}
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	text := strings.Replace(cfg.yaml(), "auth:\n", "auth:\n  authorized_parties: [app.example.test]\n", 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p, start := startBinaryIn(t, t.TempDir(), childEnv(), "-config", path)
	for k, v := range map[string]string{"version": want.Version, "revision": want.revisionLabel(),
		"goversion": want.GoVersion, "config_from": path} {
		if got := start.str(k); got != v {
			t.Errorf("starting line %s = %q; want %q", k, got, v)
		}
	}
	w := p.logs.wait(t, "configuration warning", p.exited, msgIs("configuration warning"))
	if got := w.str("warning"); !strings.HasPrefix(got, `auth.authorized_parties[0]: "app.example.test" has no scheme`) {
		t.Errorf("warning = %q; want the authorized_parties entry without a scheme", got)
	}
	key := "build_info{goversion=" + want.GoVersion + ",revision=" + want.revisionLabel() + ",version=" + want.Version + "}"
	if got, ok := samples(t, p.ops)[key]; !ok || got != 1 {
		t.Errorf("%s = %v (present %t); want 1", key, got, ok)
	}
}

// TestBinaryEnvironmentOnly: with no -config and no ./config.yaml the proxy
// runs from the environment, says so, and verifies tokens; without the
// required variables it names them.
func TestBinaryEnvironmentOnly(t *testing.T) {
	needBinary(t)
	h := newFakeHasura(t)
	admin := "admin-" + randomHex(t, 8)
	key := randomHex(t, 24)
	env := append(childEnv(),
		"HASURA_GRAPHQL_ADMIN_SECRET="+admin,
		`HASURA_GRAPHQL_JWT_SECRET={"type":"HS256","key":"`+key+`","issuer":"`+hsIssuer+`"}`,
		"HASURA_GRAPHQL_URL="+h.URL,
		"PROXY_LISTEN=127.0.0.1:0", "PROXY_OPS_LISTEN=127.0.0.1:0", "PROXY_LOG_LEVEL=debug",
	)
	dir := t.TempDir()
	if r := runBin(t, dir, env, "-check-config"); r.code != 0 || r.stdout != "configuration from the environment is valid\n" {
		t.Errorf("-check-config: exit %d, stdout %q, stderr %q; want 0 and valid", r.code, r.stdout, r.stderr)
	}
	p, start := startBinaryIn(t, dir, env)
	if got := start.str("config_from"); got != "environment" {
		t.Errorf("starting line config_from = %q; want environment", got)
	}
	tok := signHS(t, key, claimsFor(hsIssuer))
	status, _ := postGraphQL(t, p.client, tok)
	if status != 200 {
		t.Errorf("request with a valid token: status %d; want 200", status)
	}
	if rec, ok := h.Last(); !ok || rec.Header.Get("X-Hasura-Admin-Secret") != admin {
		t.Errorf("Hasura did not get the request with the admin secret from HASURA_GRAPHQL_ADMIN_SECRET")
	}

	// verify and healthcheck read the same environment.
	if r := runBin(t, dir, env, "verify", tok); r.code != 0 || !strings.Contains(r.stdout, "decision: ALLOWED") {
		t.Errorf("verify from the environment: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	_, opsPort, _ := net.SplitHostPort(strings.TrimPrefix(p.ops, "http://"))
	hcEnv := append(env[:len(env):len(env)], "PROXY_OPS_LISTEN=127.0.0.1:"+opsPort)
	eventually(t, "ready", func() bool { s, _ := get(t, p.ops+"/readyz"); return s == 200 })
	if r := runBin(t, dir, hcEnv, "healthcheck"); r.code != 0 || r.stdout != "ready\n" {
		t.Errorf("healthcheck from the environment: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// Nothing set: every missing variable is named; no file is mentioned.
	r := runBin(t, t.TempDir(), childEnv())
	for _, w := range []string{
		"hasura-auth-proxy: configuration from the environment is invalid:\n",
		"  - upstream.admin_secret: required (set HASURA_GRAPHQL_ADMIN_SECRET)",
		"  - auth.jwt_secret: one of auth.jwt_secret or auth.jwt_secrets is required (HASURA_GRAPHQL_JWT_SECRET)",
	} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if r.code != 1 || strings.Contains(r.stderr, "no such file") {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and no file error", r.code, r.stderr)
	}

	// CLERK_FRONTEND_API alone gives the jwk_url and issuer, as in config.yaml.
	r = runBin(t, t.TempDir(), append(childEnv(), "HASURA_GRAPHQL_ADMIN_SECRET=x", "CLERK_FRONTEND_API=clerk.app.example.test"), "-check-config")
	if r.code != 0 || r.stderr != "" {
		t.Errorf("CLERK_FRONTEND_API: exit %d, stdout %q, stderr %q; want valid without warnings", r.code, r.stdout, r.stderr)
	}
}

// TestBinaryConfigErrors: the first hour's broken file gives every problem
// at once with what to write; compose's ${VAR:?message} works; the shipped
// config.yaml warns about its placeholder Clerk host.
func TestBinaryConfigErrors(t *testing.T) {
	needBinary(t)
	golden, err := os.ReadFile("testdata/invalid-first-hour.golden")
	if err != nil {
		t.Fatal(err)
	}
	_, wantErr, _ := strings.Cut(string(golden), "stderr:\n")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	r := runBin(t, wd, childEnv(), "-check-config", "-config", "testdata/invalid-first-hour.yml")
	if r.code != 1 || r.stderr != wantErr {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 and:\n%s", r.code, r.stderr, wantErr)
	}

	r = runBin(t, wd, childEnv(), "-check-config", "-config", "config.yaml")
	if r.code != 1 || !strings.Contains(r.stderr, "upstream.admin_secret: required (set HASURA_GRAPHQL_ADMIN_SECRET)") {
		t.Errorf("config.yaml without the admin secret: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runBin(t, wd, append(childEnv(), "HASURA_GRAPHQL_ADMIN_SECRET=s3cret-value"), "-check-config", "-config", "config.yaml")
	if r.code != 0 || !strings.Contains(r.stderr, "auth.jwt_secret.jwk_url: example.clerk.accounts.dev is the example's placeholder") ||
		r.stdout != "configuration config.yaml is valid (2 warnings)\n" {
		t.Errorf("config.yaml: exit %d, stdout %q, stderr:\n%s\nwant 0 with the placeholder warnings", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "s3cret-value") {
		t.Error("the admin secret was printed")
	}

	compose := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(compose, []byte(`upstream:
  url: http://127.0.0.1:8080
  admin_secret: ${HASURA_GRAPHQL_ADMIN_SECRET:?set HASURA_GRAPHQL_ADMIN_SECRET in .env}
auth:
  jwt_secret: {jwk_url: "https://${CLERK_FRONTEND_API:?set CLERK_FRONTEND_API in .env}/.well-known/jwks.json"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runBin(t, wd, append(childEnv(), "CLERK_FRONTEND_API="), "-check-config", "-config", compose)
	for _, w := range []string{
		"upstream.admin_secret: environment variable HASURA_GRAPHQL_ADMIN_SECRET is not set or empty: set HASURA_GRAPHQL_ADMIN_SECRET in .env (line 3)",
		"auth.jwt_secret.jwk_url: environment variable CLERK_FRONTEND_API is not set or empty: set CLERK_FRONTEND_API in .env (line 5)",
	} {
		if r.code != 1 || !strings.Contains(r.stderr, w) {
			t.Errorf("compose-style file: exit %d; stderr lacks %q:\n%s", r.code, w, r.stderr)
		}
	}
	r = runBin(t, wd, append(childEnv(), "HASURA_GRAPHQL_ADMIN_SECRET=x", "CLERK_FRONTEND_API=clerk.app.example.test"), "-check-config", "-config", compose)
	if r.code != 0 {
		t.Errorf("compose-style file with the variables set: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestBinaryHealthcheck: healthcheck exits 0 on a ready proxy (address from
// -addr or from the configuration), 1 on an unready or absent one.
func TestBinaryHealthcheck(t *testing.T) {
	needBinary(t)
	h := newFakeHasura(t)
	cfg := testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8), HSKey: randomHex(t, 24)}
	p := startBinary(t, cfg)
	opsAddr := strings.TrimPrefix(p.ops, "http://")
	eventually(t, "ready", func() bool { s, _ := get(t, p.ops+"/readyz"); return s == 200 })

	r := runBin(t, t.TempDir(), childEnv(), "healthcheck", "-addr", opsAddr)
	if r.code != 0 || r.stdout != "ready\n" {
		t.Errorf("healthcheck -addr: exit %d, stdout %q, stderr %q; want 0 and ready", r.code, r.stdout, r.stderr)
	}
	// The address from the configuration, as the image's HEALTHCHECK does
	// (./config.yaml in the working directory); ":PORT" means 127.0.0.1.
	_, port, _ := net.SplitHostPort(opsAddr)
	dir := t.TempDir()
	text := strings.Replace(cfg.yaml(), "ops_listen: 127.0.0.1:0", "ops_listen: \":"+port+"\"", 1)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runBin(t, dir, childEnv(), "healthcheck"); r.code != 0 || r.stdout != "ready\n" {
		t.Errorf("healthcheck from ./config.yaml: exit %d, stdout %q, stderr %q; want 0 and ready", r.code, r.stdout, r.stderr)
	}

	down := startBinary(t, testConfig{UpstreamURL: "http://127.0.0.1:1", AdminSecret: "a", HSKey: randomHex(t, 24)})
	r = runBin(t, t.TempDir(), childEnv(), "healthcheck", "-addr", strings.TrimPrefix(down.ops, "http://"))
	if r.code != 1 || !strings.Contains(r.stderr, "/readyz answered 503") || !strings.Contains(r.stderr, "not ready: hasura") {
		t.Errorf("unready proxy: exit %d, stderr %q; want 1 with the /readyz body", r.code, r.stderr)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	r = runBin(t, t.TempDir(), childEnv(), "healthcheck", "-addr", closed)
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("nothing listening: exit %d, stderr %q; want 1 and connection refused", r.code, r.stderr)
	}
}

// TestBinaryVerifyWithoutKeys: verify against an unreachable jwk_url says
// so and exits 2, instead of waiting 10s and refusing the token.
func TestBinaryVerifyWithoutKeys(t *testing.T) {
	needBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "verify.yaml")
	if err := os.WriteFile(path, []byte(`upstream: {url: "http://127.0.0.1:1"}
auth:
  jwt_secret: {jwk_url: "http://`+closed+`/.well-known/jwks.json?key=hidden", issuer: "https://clerk.test"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := signHS(t, randomHex(t, 24), claimsFor("https://clerk.test"))
	r := runBin(t, t.TempDir(), childEnv(), "verify", "-config", path, tok)
	want := "hasura-auth-proxy verify: keys could not be fetched from http://" + closed + "/.well-known/jwks.json: "
	if r.code != 2 || !strings.HasPrefix(r.stderr, want) || strings.Contains(r.stderr, "hidden") {
		t.Errorf("exit %d, stderr %q; want 2 and %q...", r.code, r.stderr, want)
	}
	if strings.Contains(r.stdout, "JWTNotInIssuer") || strings.Contains(r.stdout, "decision") {
		t.Errorf("verify judged the token without keys:\n%s", r.stdout)
	}
}

// postGraphQL sends a query with the token and returns the status and body.
func postGraphQL(t *testing.T, base, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/graphql", strings.NewReader(`{"query":"{ a }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestInstallPutsCommandOnPath replays the Quickstart after a fresh clone:
// `make install` (go install .) puts hasura-auth-proxy on PATH, and the
// README says to run it before the first hasura-auth-proxy command.
func TestInstallPutsCommandOnPath(t *testing.T) {
	needBinary(t)
	makeTool, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	gobin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, makeTool, "install")
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	if _, err := exec.LookPath(filepath.Join(gobin, "hasura-auth-proxy")); err != nil {
		t.Fatalf("make install put no hasura-auth-proxy in GOBIN: %v", err)
	}
	env := []string{"PATH=" + gobin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	// As the Quickstart types it: a shell finds the command on PATH.
	onPath := exec.CommandContext(ctx, "/bin/sh", "-c", "hasura-auth-proxy version")
	onPath.Env = env
	onPath.Dir = t.TempDir()
	if out, err := onPath.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "hasura-auth-proxy ") {
		t.Errorf("hasura-auth-proxy version from PATH: %v\n%s", err, out)
	}

	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, quick, _ := strings.Cut(string(readme), "## Quickstart with Clerk")
	install := strings.Index(quick, "go install .")
	first := strings.Index(quick, "   hasura-auth-proxy ")
	if install < 0 || first < 0 || install > first {
		t.Errorf("the Quickstart runs hasura-auth-proxy (at %d) before telling to go install . (at %d)", first, install)
	}
}

// TestImageHealthcheckAddress: the image's HEALTHCHECK runs healthcheck
// in /etc/hasura-auth-proxy, so it reads the shipped config.yaml with the
// container's environment: the compose environment gives 127.0.0.1:9090.
func TestImageHealthcheckAddress(t *testing.T) {
	env := map[string]string{
		"HASURA_GRAPHQL_ADMIN_SECRET": "s", "HASURA_GRAPHQL_URL": "http://hasura:8080",
		"CLERK_FRONTEND_API": "clerk.app.example.test", "PROXY_LISTEN": ":8000", "PROXY_OPS_LISTEN": ":9090",
	}
	cfg, _, err := config.Resolve("config.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if got, err := probeAddr(cfg.Server.OpsListen); err != nil || got != "127.0.0.1:9090" {
		t.Errorf("probe address = %q, %v; want 127.0.0.1:9090", got, err)
	}
	for in, want := range map[string]string{"[::]:9090": "[::1]:9090", "0.0.0.0:1": "127.0.0.1:1", "10.0.0.1:2": "10.0.0.1:2"} {
		if got, err := probeAddr(in); err != nil || got != want {
			t.Errorf("probeAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := probeAddr("127.0.0.1:0"); err == nil {
		t.Error("probeAddr(port 0) = nil error; want one (a chosen-at-start port cannot be probed)")
	}
}
