package main

// Tests that need a real process: signals, exit codes and what main prints.
// TestMain builds the binary once; -short skips these tests.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// binPath is the proxy binary TestMain built, or "" under -short.
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(func() int {
		if testing.Short() {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "hasura-auth-proxy-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		goTool, err := exec.LookPath("go")
		if err != nil {
			fmt.Fprintln(os.Stderr, "go tool not found, cannot build the binary:", err)
			return 1
		}
		binPath = filepath.Join(dir, "hasura-auth-proxy")
		build := exec.Command(goTool, "build", "-o", binPath, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "go build:", err)
			return 1
		}
		return m.Run()
	}())
}

func needBinary(t *testing.T) {
	t.Helper()
	if binPath == "" {
		t.Skip("-short: the binary is not built")
	}
}

// childEnv is the test's environment without the variables that would
// override the configuration file.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HASURA_GRAPHQL_") {
			env = append(env, kv)
		}
	}
	return env
}

// process is the built proxy running as a child process.
type process struct {
	cmd         *exec.Cmd
	logs        *logSink
	client, ops string
	clientAddr  string
	configPath  string        // the configuration file it was started with
	exited      chan struct{} // closed once the process has exited
	state       *os.ProcessState
}

// startBinary runs the built proxy with configuration c and waits for its
// startup line. Cleanup kills it if it is still running.
func startBinary(t *testing.T, c testConfig) *process {
	t.Helper()
	path := writeConfig(t, c)
	p, _ := startBinaryIn(t, "", childEnv(), "-config", path)
	p.configPath = path
	return p
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to d for the process to exit and returns its state.
func (p *process) waitExit(t *testing.T, d time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-p.exited:
		return p.state
	case <-time.After(d):
		t.Fatalf("process still running after %s; log:\n%s", d, p.logs.String())
		return nil
	}
}

// result is what a client got for one request.
type result struct {
	status int
	body   string
	err    error
}

// slowRequest sends an anonymous ?slow=1 query in the background and waits
// until the stand-in Hasura holds it.
func slowRequest(t *testing.T, client string, h *fake.Hasura) <-chan result {
	t.Helper()
	out := make(chan result, 1)
	go func() {
		resp, err := http.Post(client+"/v1/graphql?slow=1", "application/json", strings.NewReader(`{"query":"{ slow }"}`))
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-h.Arrived():
	case <-time.After(waitTimeout):
		t.Fatal("the slow request never reached Hasura")
	}
	return out
}

// eventually polls cond until it holds, for up to waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestShutdownDrainsInFlight: on SIGTERM or SIGINT the proxy turns unready
// at once, stops accepting, lets the request in flight finish with its full
// answer, and exits 0.
func TestShutdownDrainsInFlight(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			h := newFakeHasura(t)
			p := startBinary(t, testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8),
				HSKey: randomHex(t, 24), AnonRole: "anonymous", ShutdownGrace: "30s"})
			eventually(t, "ready", func() bool { s, _ := get(t, p.ops+"/readyz"); return s == 200 })
			inFlight := slowRequest(t, p.client, h)

			p.signal(t, sig)
			p.logs.wait(t, "shutting down", p.exited, func(e logEntry) bool { return strings.HasPrefix(e.str("msg"), "shutting down") })
			// The ops listener stays up while draining, and says why it is
			// not ready.
			status, body := get(t, p.ops+"/readyz")
			if status != 503 || body != "not ready: shutting down\n" {
				t.Errorf("/readyz while draining = %d %q; want 503 shutting down", status, body)
			}
			if s, _ := get(t, p.ops+"/healthz"); s != 200 {
				t.Errorf("/healthz while draining = %d; want 200 (alive)", s)
			}
			eventually(t, "client listener closed", func() bool {
				c, err := net.DialTimeout("tcp", p.clientAddr, time.Second)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			select {
			case r := <-inFlight:
				t.Fatalf("in-flight request ended before Hasura answered: %+v", r)
			case <-p.exited:
				t.Fatal("process exited with a request in flight")
			default:
			}

			h.Release()
			r := <-inFlight
			if r.err != nil || r.status != 200 || r.body != `{"data":{"ok":true}}` {
				t.Errorf("in-flight request got %d %q %v; want Hasura's full answer", r.status, r.body, r.err)
			}
			state := p.waitExit(t, waitTimeout)
			if !state.Exited() || state.ExitCode() != 0 {
				t.Errorf("exit: %v; want exit status 0; log:\n%s", state, p.logs.String())
			}
			if es := p.logs.entries(); len(es) == 0 || es[len(es)-1].str("msg") != "stopped" {
				t.Errorf("last log line is not \"stopped\"; log:\n%s", p.logs.String())
			}
		})
	}
}

// TestShutdownGraceExceeded: a request still running at the end of
// server.shutdown_grace is cut off and the process still exits 0.
func TestShutdownGraceExceeded(t *testing.T) {
	const grace = 300 * time.Millisecond
	h := newFakeHasura(t)
	p := startBinary(t, testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8),
		HSKey: randomHex(t, 24), AnonRole: "anonymous", ShutdownGrace: grace.String()})
	inFlight := slowRequest(t, p.client, h)
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	state := p.waitExit(t, waitTimeout)
	if elapsed := time.Since(start); elapsed < grace {
		t.Errorf("exited after %s; want no earlier than the grace %s", elapsed, grace)
	}
	if !state.Exited() || state.ExitCode() != 0 {
		t.Errorf("exit: %v; want exit status 0", state)
	}
	if r := <-inFlight; r.err == nil {
		t.Errorf("in-flight request got %d %q; want the connection cut", r.status, r.body)
	}
	if !strings.Contains(p.logs.String(), "did not finish within the grace period") {
		t.Errorf("no grace-period warning; log:\n%s", p.logs.String())
	}
}

// TestSecondSignalExitsAtOnce: a second signal during the drain ends the
// process without waiting for the grace period.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	h := newFakeHasura(t)
	p := startBinary(t, testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8),
		HSKey: randomHex(t, 24), AnonRole: "anonymous", ShutdownGrace: "60s"})
	inFlight := slowRequest(t, p.client, h)
	p.signal(t, syscall.SIGTERM)
	p.logs.wait(t, "shutting down", p.exited, func(e logEntry) bool { return strings.HasPrefix(e.str("msg"), "shutting down") })

	// main restores the default handler right after the first signal; a
	// signal sent in the microseconds before that is absorbed, so send
	// again (at most a few times) until the process is gone.
	start := time.Now()
	var state *os.ProcessState
	for i := 0; i < 5 && state == nil; i++ {
		p.signal(t, syscall.SIGTERM)
		select {
		case <-p.exited:
			state = p.state
		case <-time.After(time.Second):
		}
	}
	if state == nil {
		t.Fatalf("still running 5s after a second SIGTERM, with a 60s grace; log:\n%s", p.logs.String())
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("exit: %v; want killed by the second SIGTERM", state)
	}
	t.Logf("exited %s after the second signal", time.Since(start))
	if r := <-inFlight; r.err == nil {
		t.Errorf("in-flight request got %d; want the connection cut", r.status)
	}
}

// TestBinaryBadConfig: the binary refuses an invalid file with exit status 1
// (-check-config included), naming the problem, never a secret.
func TestBinaryBadConfig(t *testing.T) {
	needBinary(t)
	admin := "admin-" + randomHex(t, 12)
	hsKey := "hskey-" + randomHex(t, 20)
	cfg := testConfig{UpstreamURL: "http://127.0.0.1:1", AdminSecret: admin, HSKey: hsKey}
	good := writeConfig(t, cfg)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	// Secrets pasted into the wrong fields, and a bad level: the errors name
	// fields, and quote at most a short prefix of a value.
	text := strings.Replace(cfg.yaml(), "server:\n", "server:\n  max_body_bytes: "+hsKey+"\n  idle_timeout: "+admin+"\n", 1)
	text = strings.Replace(text, "log:\n", "log:\n  level: loud\n", 1)
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"check valid", []string{"-check-config", "-config", good}, 0, "configuration " + good + " is valid"},
		{"check invalid", []string{"-check-config", "-config", bad}, 1, "server.max_body_bytes: this is text; write a whole number such as 10485760"},
		{"run invalid", []string{"-config", bad}, 1, "hasura-auth-proxy: "},
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binPath, tt.args...)
			cmd.Env = childEnv()
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit status %d; want %d; output:\n%s", code, tt.wantCode, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			for what, secret := range map[string]string{"admin secret": admin, "HS key": hsKey} {
				if strings.Contains(string(out), secret) {
					t.Errorf("output holds the %s:\n%s", what, out)
				}
			}
		})
	}
}
