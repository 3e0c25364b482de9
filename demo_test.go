package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// demoWait bounds every wait of the demo tests.
const demoWait = 30 * time.Second

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// running demo.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// readDemo reads the demo's stdout up to its last line. The lines are
// delivered by a goroutine that ends when r is closed.
func readDemo(t *testing.T, r io.Reader, exited <-chan error) []string {
	t.Helper()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timer := time.NewTimer(demoWait)
	defer timer.Stop()
	var out []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo output ended early:\n%s", strings.Join(out, "\n"))
			}
			out = append(out, l)
			if l == demoDone {
				// Keep draining, so a late write can never block the demo.
				go func() {
					for range lines {
					}
				}()
				return out
			}
		case err := <-exited:
			t.Fatalf("demo exited early: %v\n%s", err, strings.Join(out, "\n"))
		case <-timer.C:
			t.Fatalf("demo printed no %q within %s:\n%s", demoDone, demoWait, strings.Join(out, "\n"))
		}
	}
}

// shellWords splits a command line the way sh would for the demo's
// commands: spaces separate words, '...' is literal, "..." expands $NAME.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("unterminated \" in %q", line)
			}
			cur.WriteString(expandVars(line[i+1:i+1+j], vars))
			i += j + 1
			inWord = true
		case c == '$':
			m := regexp.MustCompile(`^\$[A-Z_]+`).FindString(line[i:])
			cur.WriteString(expandVars(m, vars))
			i += len(m) - 1
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func expandVars(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$[A-Z_]+`).ReplaceAllStringFunc(s, func(v string) string { return vars[v[1:]] })
}

// curlRequest turns the demo's curl words into a request: -s, -H, -d, URL.
func curlRequest(t *testing.T, words []string) *http.Request {
	t.Helper()
	if len(words) == 0 || words[0] != "curl" {
		t.Fatalf("not a curl command: %q", words)
	}
	method, target := http.MethodGet, ""
	var body io.Reader
	hdr := http.Header{}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; w {
		case "-s":
		case "-H":
			i++
			k, v, ok := strings.Cut(words[i], ":")
			if !ok {
				t.Fatalf("bad -H %q", words[i])
			}
			hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "-d":
			i++
			method, body = http.MethodPost, strings.NewReader(words[i])
		default:
			if strings.HasPrefix(w, "-") || target != "" {
				t.Fatalf("curl option the test does not know: %q in %q", w, words)
			}
			target = w
		}
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	return req
}

// matchPrinted reports whether got is what the demo printed; <...> in the
// printed text stands for any value without quotes.
func matchPrinted(printed, got string) bool {
	parts := regexp.MustCompile(`<[^>]+>`).Split(printed, -1)
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `[^"]+`) + `$`).MatchString(got)
}

// demoCommands are the runnable parts of the demo's output.
type demoCommands struct {
	token   string
	mintURL string
	curls   []printedCmd
	verify  []printedCmd
	signOut string // the sign-out command (demo_revoke_test.go runs it)
	ws      struct {
		proto, url string
		messages   []string
	}
}

type printedCmd struct{ line, want string }

func parseDemo(t *testing.T, lines []string, cmd string) demoCommands {
	t.Helper()
	var d demoCommands
	for i, l := range lines {
		next := ""
		if i+1 < len(lines) {
			next = lines[i+1]
		}
		want, hasWant := strings.CutPrefix(next, "  # => ")
		switch {
		case strings.HasPrefix(l, "TOKEN=$(curl -s '"):
			d.mintURL = strings.TrimSuffix(strings.TrimPrefix(l, "TOKEN=$(curl -s '"), "')")
		case strings.HasPrefix(l, "TOKEN="):
			d.token = strings.TrimPrefix(l, "TOKEN=")
		case strings.HasPrefix(l, "  curl ") && strings.Contains(l, "/sign-out "):
			d.signOut = strings.TrimSpace(l)
		case strings.HasPrefix(l, "  curl "):
			if !hasWant {
				t.Fatalf("no expected answer after %q", l)
			}
			d.curls = append(d.curls, printedCmd{strings.TrimSpace(l), want})
		case strings.HasPrefix(l, "  "+cmd+" verify "):
			if !hasWant {
				t.Fatalf("no expected answer after %q", l)
			}
			d.verify = append(d.verify, printedCmd{strings.TrimPrefix(l, "  "+cmd+" "), want})
		case strings.HasPrefix(l, "  (echo '"):
			m := regexp.MustCompile(`^  \(echo '([^']*)'; echo '([^']*)'; sleep \d+\) \| websocat --protocol (\S+) (\S+)$`).FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("unexpected subscription command %q", l)
			}
			d.ws.messages = []string{m[1], m[2]}
			d.ws.proto, d.ws.url = m[3], m[4]
		}
	}
	if d.token == "" || d.mintURL == "" || len(d.curls) < 4 || len(d.verify) != 2 || d.ws.url == "" || len(d.ws.messages) != 2 {
		t.Fatalf("demo output lacks commands (%d curl, %d verify, ws %q):\n%s", len(d.curls), len(d.verify), d.ws.url, strings.Join(lines, "\n"))
	}
	return d
}

// runCurls runs every printed curl command with net/http and compares the
// answer with the printed one.
func runCurls(t *testing.T, d demoCommands) {
	t.Helper()
	vars := map[string]string{"TOKEN": d.token}
	for _, c := range d.curls {
		words, err := shellWords(c.line, vars)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(curlRequest(t, words))
		if err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: HTTP %d", c.line, resp.StatusCode)
		}
		if got := strings.TrimSpace(string(b)); !matchPrinted(c.want, got) {
			t.Errorf("%s\n got: %s\nwant: %s", c.line, got, c.want)
		}
	}
}

// runVerifies runs the printed verify commands in process and compares the
// exit status and decision with the printed ones.
func runVerifies(t *testing.T, d demoCommands, token string) {
	t.Helper()
	re := regexp.MustCompile(`^exit status (\d): (ALLOWED|REFUSED), (.*)$`)
	for _, c := range d.verify {
		words, err := shellWords(c.line, map[string]string{"TOKEN": token})
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindStringSubmatch(c.want)
		if m == nil {
			t.Fatalf("unexpected verify answer %q", c.want)
		}
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), demoWait)
		err = run(ctx, words, &out, &errb)
		cancel()
		if got := fmt.Sprint(exitStatus(err)); got != m[1] {
			t.Errorf("%s: exit status %s, printed %s\n%s%s", c.line, got, m[1], out.String(), errb.String())
		}
		if !strings.Contains(out.String(), "decision: "+m[2]) {
			t.Errorf("%s: no decision %s:\n%s", c.line, m[2], out.String())
		}
		detail := m[3]
		if m[2] == "REFUSED" {
			_, detail, _ = strings.Cut(detail, ": ")
		}
		if !strings.Contains(out.String(), detail) {
			t.Errorf("%s: output lacks %q:\n%s", c.line, detail, out.String())
		}
	}
}

// runSubscription connects as printed and checks the stand-in's answers
// through the proxy.
func runSubscription(t *testing.T, d demoCommands) {
	t.Helper()
	dialer := websocket.Dialer{Subprotocols: []string{d.ws.proto}, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := dialer.Dial(d.ws.url, nil)
	if err != nil {
		var body []byte
		if resp != nil {
			body, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		t.Fatalf("dial %s: %v %s", d.ws.url, err, body)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(demoWait))
	for _, m := range d.ws.messages {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	wantSession := `{"x-hasura-admin-secret":true,"x-hasura-role":"user","x-hasura-user-id":"alice"}`
	var got []string
	for len(got) < 5 {
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		var m demoWSMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		switch m.Type {
		case "ping", "pong", "ka":
			continue // keep-alives a relay may add
		case "next":
			var p struct {
				Data struct {
					Session json.RawMessage `json:"session"`
				} `json:"data"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil || string(p.Data.Session) != wantSession || m.ID != "1" {
				t.Errorf("event %s: want session %s", b, wantSession)
			}
		}
		got = append(got, m.Type)
	}
	if want := "connection_ack next next next complete"; strings.Join(got, " ") != want {
		t.Errorf("messages %q, want %q", got, want)
	}
}

// startDemo runs the demo in process on free ports and returns what it
// printed up to its end marker; Cleanup stops it as Ctrl-C would and fails
// the test if it does not stop within demoWait.
func startDemo(t *testing.T) []string {
	t.Helper()
	t.Setenv(config.EnvJWTSecret, "")
	t.Setenv(config.EnvJWTSecrets, "")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	exited := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"demo", "-listen", "127.0.0.1:0", "-ops-listen", "127.0.0.1:0"}, pw, &stderr)
		_ = pw.Close()
		exited <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(demoWait):
			t.Errorf("demo did not stop within %s", demoWait)
		}
	})
	return readDemo(t, pr, exited)
}

// TestDemo runs the demo in process, runs every command it prints exactly
// as printed (curl with net/http, verify in process, the subscription with
// gorilla/websocket), then stops it as Ctrl-C would.
func TestDemo(t *testing.T) {
	t.Setenv(config.EnvJWTSecret, "")
	t.Setenv(config.EnvJWTSecrets, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	exited := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"demo", "-listen", "127.0.0.1:0", "-ops-listen", "127.0.0.1:0"}, pw, &stderr)
		_ = pw.Close()
		exited <- err
	}()
	lines := readDemo(t, pr, exited)
	d := parseDemo(t, lines, "go run .")

	t.Run("curl", func(t *testing.T) { runCurls(t, d) })
	t.Run("verify", func(t *testing.T) { runVerifies(t, d, d.token) })
	t.Run("mint", func(t *testing.T) {
		resp, err := http.Get(d.mintURL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		minted := strings.TrimSpace(string(b))
		cfg := regexp.MustCompile(`-config (\S+)`).FindStringSubmatch(d.verify[0].line)[1]
		var out, errb bytes.Buffer
		err = run(context.Background(), []string{"verify", "-config", cfg, "-role", "user", minted}, &out, &errb)
		if err != nil || !strings.Contains(out.String(), "x-hasura-user-id: bob") {
			t.Errorf("minted token: %v\n%s%s", err, out.String(), errb.String())
		}
	})
	t.Run("subscription", func(t *testing.T) { runSubscription(t, d) })

	proxyAddr := strings.TrimPrefix(regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(d.curls[0].line), "http://")
	cfgPath := regexp.MustCompile(`-config (\S+)`).FindStringSubmatch(d.verify[0].line)[1]
	cancel()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo returned %v after Ctrl-C; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(demoWait):
		t.Fatalf("demo did not stop within %s", demoWait)
	}
	if _, err := os.Stat(cfgPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo left its configuration behind: %v", err)
	}
	if c, err := net.DialTimeout("tcp", proxyAddr, time.Second); err == nil {
		_ = c.Close()
		t.Errorf("the proxy still listens on %s", proxyAddr)
	}
	// Human-readable logs (log.format console) whose first line is short.
	if !regexp.MustCompile(`(?m)^\S+\tINFO\tproxy\trequest\t\{`).MatchString(stderr.String()) {
		t.Errorf("no console-format access log on stderr:\n%s", stderr.String())
	}
	start := regexp.MustCompile(`(?m)^\S+\tINFO\tmain\tstarting\t.*$`).FindString(stderr.String())
	if start == "" || len(start) > 600 || strings.Contains(start, `"config":`) {
		t.Errorf("starting line (%d bytes) = %q; want a short console line without the configuration", len(start), start)
	}
}

// TestDemoAddr checks the demo's listen addresses: loopback only, a taken
// default falls back to a free port, a taken explicit address is an error.
func TestDemoAddr(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close() })
	tests := []struct {
		addr     string
		explicit bool
		want     string // "" means an error
	}{
		{"127.0.0.1:0", true, "127.0.0.1:0"},
		{"localhost:0", true, "127.0.0.1:0"},
		{"[::1]:0", true, "[::1]:0"},
		{busy.Addr().String(), false, "127.0.0.1:0"},
		{busy.Addr().String(), true, ""},
		{"0.0.0.0:8000", true, ""},
		{":8000", true, ""},
		{"192.0.2.1:8000", false, ""},
		{"nonsense", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := demoAddr(tt.addr, tt.explicit)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestDemoUsage checks the demo's usage errors.
func TestDemoUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
		{[]string{"demo", "-listen", "0.0.0.0:8000"}, "127.0.0.1 only"},
		{[]string{"demo", "-ttl", "0s"}, "-ttl"},
		{[]string{"demo", "-bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			if exitStatus(err) != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("got %v, stderr %q; want exit 2 and %q", err, errb.String(), tt.want)
			}
		})
	}
}

// TestDemoHasuraWebSocket talks to the stand-in directly, on both of
// Hasura's protocols, with and without the admin secret.
func TestDemoHasuraWebSocket(t *testing.T) {
	h := &demoHasura{secret: "stand-in-secret", events: 2, interval: time.Millisecond}
	var srv demoServers
	base, err := srv.start("stand-in", h.handler())
	if err != nil {
		t.Fatal(err)
	}
	srv.onStop(h.closeAll)
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Error(err)
		}
	})
	url := "ws" + strings.TrimPrefix(base, "http") + "/v1/graphql"
	okInit := `{"type":"connection_init","payload":{"headers":{"X-Hasura-Admin-Secret":"stand-in-secret","x-hasura-role":"user"}}}`
	badInit := `{"type":"connection_init","payload":{"headers":{"X-Hasura-Admin-Secret":"wrong"}}}`
	tests := []struct {
		name      string
		protocols []string
		upgrade   http.Header
		send      []string
		want      []string // message types, then "close <code>" if closed
	}{
		{
			name: "graphql-transport-ws", protocols: []string{protoTransportWS},
			send: []string{okInit, `{"type":"subscribe","id":"a","payload":{"query":"subscription { session }"}}`},
			want: []string{"connection_ack", "next", "next", "complete"},
		},
		{
			name: "graphql-ws (legacy)", protocols: []string{protoLegacyWS},
			send: []string{okInit, `{"type":"start","id":"a","payload":{"query":"subscription { session }"}}`},
			want: []string{"connection_ack", "ka", "data", "data", "complete"},
		},
		{
			name: "session from the upgrade request overrides the payload", protocols: []string{protoTransportWS},
			upgrade: http.Header{"X-Hasura-Admin-Secret": {"stand-in-secret"}, "X-Hasura-Role": {"editor"}},
			send:    []string{`{"type":"connection_init","payload":{"headers":{"x-hasura-role":"user"}}}`, `{"type":"subscribe","id":"a","payload":{}}`},
			want:    []string{"connection_ack", "next", "next", "complete"},
		},
		{
			name: "graphql-transport-ws, wrong admin secret", protocols: []string{protoTransportWS},
			send: []string{badInit}, want: []string{"close 4403"},
		},
		{
			name: "graphql-ws, wrong admin secret", protocols: []string{protoLegacyWS},
			send: []string{badInit}, want: []string{"connection_error", "close 4400"},
		},
		{
			name: "subscribe before init", protocols: []string{protoTransportWS},
			send: []string{`{"type":"subscribe","id":"a","payload":{}}`}, want: []string{"close 4401"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialer := websocket.Dialer{Subprotocols: tt.protocols, HandshakeTimeout: 5 * time.Second}
			conn, resp, err := dialer.Dial(url, tt.upgrade)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tt.protocols[0] {
				t.Errorf("subprotocol %q, want %q", got, tt.protocols[0])
			}
			for _, m := range tt.send {
				if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			_ = conn.SetReadDeadline(time.Now().Add(demoWait))
			var got []string
			for len(got) < len(tt.want) {
				_, b, err := conn.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						got = append(got, fmt.Sprintf("close %d", ce.Code))
					}
					break
				}
				var m demoWSMessage
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if m.Type == "next" || m.Type == "data" {
					wantRole := `"x-hasura-role":"user"`
					if tt.upgrade != nil {
						wantRole = `"x-hasura-role":"editor"`
					}
					if !bytes.Contains(m.Payload, []byte(wantRole)) || !bytes.Contains(m.Payload, []byte(`"x-hasura-admin-secret":true`)) {
						t.Errorf("event payload %s, want %s and the admin secret as true", m.Payload, wantRole)
					}
				}
				got = append(got, m.Type)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDemoBinary builds the program and runs `demo` as a user would: one
// printed command answers as printed, and SIGINT stops it with status 0.
func TestDemoBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "hasura-auth-proxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "demo", "-listen", "127.0.0.1:0", "-ops-listen", "127.0.0.1:0", "-ttl", "2m")
	cmd.Env = append(os.Environ(), config.EnvJWTSecret+"=", config.EnvJWTSecrets+"=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	lines := readDemo(t, stdout, exited)
	d := parseDemo(t, lines, bin)
	d.curls = d.curls[:2] // one allowed, one refused
	runCurls(t, d)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo exited with %v after SIGINT; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(demoWait):
		t.Fatalf("demo did not stop within %s after SIGINT", demoWait)
	}
}

// TestDemoIssuerTokens mints tokens through the demo issuer's HTTP endpoint
// with the parameters docs/troubleshooting.md uses, and checks with verify
// that each trips the check the documentation says.
func TestDemoIssuerTokens(t *testing.T) {
	t.Setenv(config.EnvJWTSecret, "")
	t.Setenv(config.EnvJWTSecrets, "")
	f := newVerifyFixture(t)
	cfg := f.config(t, "config.yaml", "", "    allowed_skew: 5\n", "")
	tests := []struct {
		query  string
		args   []string
		status int
		want   string
	}{
		{query: "", status: 0, want: "x-hasura-user-id: alice"},
		{query: "user=bob&role=editor&allowed=user,editor&ttl=10m", status: 0, want: "X-Hasura-Role: editor"},
		{query: "user=bob&role=editor&allowed=user,editor", args: []string{"-role", "user"}, status: 0, want: "X-Hasura-Role: user"},
		{query: "ttl=-1m", status: 1, want: "Could not verify JWT: JWTExpired"},
		{query: "azp=https://evil.example", status: 1, want: `token "azp" claim is not in auth.authorized_parties`},
		{query: "iss=https://other.clerk.accounts.dev", status: 1, want: "Could not verify JWT: JWTNotInIssuer"},
		{query: "role=editor&allowed=user", status: 1, want: "Your requested role is not in allowed roles"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, err := http.Get(f.issuer.url + "/token?" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("token endpoint: %d %q %s", resp.StatusCode, resp.Header.Get("Cache-Control"), b)
			}
			var out, errb bytes.Buffer
			args := append([]string{"verify", "-config", cfg}, tt.args...)
			err = run(context.Background(), append(args, strings.TrimSpace(string(b))), &out, &errb)
			if got := exitStatus(err); got != tt.status || !strings.Contains(out.String(), tt.want) {
				t.Errorf("exit %d (want %d), want %q in:\n%s%s", got, tt.status, tt.want, out.String(), errb.String())
			}
		})
	}
	t.Run("tampered signature", func(t *testing.T) {
		tok := f.token(t, demoClaims{})
		tampered := tok[:strings.LastIndexByte(tok, '.')] + ".AAAA" // ${TOKEN%.*}.AAAA
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"verify", "-config", cfg, tampered}, &out, &errb)
		if exitStatus(err) != 1 || !strings.Contains(out.String(), "JWSError JWSInvalidSignature") || !strings.Contains(out.String(), "bad_signature") {
			t.Errorf("got %v:\n%s", err, out.String())
		}
	})
	for _, bad := range []string{"ttl=0s", "ttl=48h", "ttl=soon", "user=%0a", "iss=" + strings.Repeat("x", 200)} {
		t.Run("refused "+bad, func(t *testing.T) {
			resp, err := http.Get(f.issuer.url + "/token?" + bad)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("got %d, want 400", resp.StatusCode)
			}
		})
	}
}
