package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// TestDemoPick: a taken default port is replaced by a free one and the
// reason is given (with Prometheus's 9090 named); an explicit one is an
// error.
func TestDemoPick(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close() })
	addr, note, err := demoPick(busy.Addr().String(), false)
	if err != nil || addr != "127.0.0.1:0" || note != busy.Addr().String()+" is taken (bind: address already in use)" {
		t.Errorf("demoPick(busy default) = %q, %q, %v; want 127.0.0.1:0 and the reason", addr, note, err)
	}
	if _, _, err := demoPick(busy.Addr().String(), true); err == nil {
		t.Error("demoPick(busy explicit) = nil error; want the listen error")
	}
	if addr, note, err := demoPick("127.0.0.1:0", false); err != nil || addr != "127.0.0.1:0" || note != "" {
		t.Errorf("demoPick(port 0) = %q, %q, %v; want it kept without a note", addr, note, err)
	}
	o := demoOptions{moved: map[string]string{"ops-listen": "127.0.0.1:9090 is taken (bind: address already in use); 9090 is also Prometheus's default port"}}
	got := demoMovedNotes(o, demoAddrs{listen: "127.0.0.1:8000", ops: "127.0.0.1:41234"})
	want := []string{"-ops-listen: 127.0.0.1:9090 is taken (bind: address already in use); 9090 is also Prometheus's default port, so the demo uses 127.0.0.1:41234 instead (choose one with -ops-listen ADDR)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("demoMovedNotes = %q; want %q", got, want)
	}
}

// TestDemoAnnouncesMovedPorts: the banner names each moved port, the reason
// and the port used instead.
func TestDemoAnnouncesMovedPorts(t *testing.T) {
	t.Setenv(config.EnvJWTSecret, "")
	t.Setenv(config.EnvJWTSecrets, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	exited := make(chan error, 1)
	o := demoOptions{listen: "127.0.0.1:0", opsListen: "127.0.0.1:0", ttl: demoDefaultTTL, cmd: "go run .", subInterval: demoDefaultTTL,
		moved: map[string]string{"listen": "127.0.0.1:8000 is taken (bind: address already in use)"}}
	go func() {
		err := demo(ctx, o, pw, &stderr)
		_ = pw.Close()
		exited <- err
	}()
	lines := readDemo(t, pr, exited)
	out := strings.Join(lines, "\n")
	re := regexp.MustCompile(`(?m)^  note: -listen: 127\.0\.0\.1:8000 is taken \(bind: address already in use\), so the demo uses (127\.0\.0\.1:\d+) instead \(choose one with -listen ADDR\)$`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("banner lacks the moved -listen note:\n%s", out)
	}
	if !strings.Contains(out, "proxy (clients use this)     http://"+m[1]) {
		t.Errorf("the note's port %s is not the proxy's printed address:\n%s", m[1], out)
	}
	if strings.Contains(out, "-ops-listen:") {
		t.Errorf("banner has an -ops-listen note though it was not moved:\n%s", out)
	}
	cancel()
	if err := <-exited; err != nil {
		t.Fatalf("demo returned %v", err)
	}
}

// TestStartupWatcher: the log is held until release, the starting line
// (console or JSON) gives the addresses and loses its configuration, and
// later lines pass straight through.
func TestStartupWatcher(t *testing.T) {
	tests := []struct {
		name, start, want string
	}{
		{"console",
			"2026-01-01T00:00:00.000Z\tINFO\tmain\tstarting\t{\"listen\": \"127.0.0.1:1\", \"ops_listen\": \"127.0.0.1:2\", \"config\": {\"server\": {}}, \"version\": \"v1\"}\n",
			"2026-01-01T00:00:00.000Z\tINFO\tmain\tstarting\t{\"listen\":\"127.0.0.1:1\",\"ops_listen\":\"127.0.0.1:2\",\"version\":\"v1\"}\n"},
		{"json",
			`{"level":"info","msg":"starting","listen":"127.0.0.1:1","ops_listen":"127.0.0.1:2","config":{"a":1}}` + "\n",
			`{"level":"info","listen":"127.0.0.1:1","msg":"starting","ops_listen":"127.0.0.1:2"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w bytes.Buffer
			s := newStartupWatcher(&w)
			before := "2026-01-01T00:00:00.000Z\tINFO\tauth\tjwks keys loaded\n"
			for _, chunk := range []string{before, tt.start[:10], tt.start[10:]} {
				if _, err := s.Write([]byte(chunk)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case a := <-s.started:
				if a != (demoAddrs{listen: "127.0.0.1:1", ops: "127.0.0.1:2"}) {
					t.Errorf("addresses = %+v; want 127.0.0.1:1 and 127.0.0.1:2", a)
				}
			default:
				t.Fatal("no addresses reported")
			}
			if w.Len() != 0 {
				t.Fatalf("wrote %q before release; want nothing", w.String())
			}
			s.release()
			if got, want := w.String(), before+tt.want; got != want {
				t.Errorf("after release = %q; want %q", got, want)
			}
			_, _ = s.Write([]byte("after\n"))
			if !strings.HasSuffix(w.String(), "after\n") {
				t.Errorf("a write after release did not pass through: %q", w.String())
			}
		})
	}
}
