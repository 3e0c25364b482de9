package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// wsHasura adds a graphql-transport-ws endpoint to a fakeHasura: it acks
// connection_init and answers each subscribe with one next carrying the id.
func wsHasura(t *testing.T, f *fake.Hasura) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			f.Handler().ServeHTTP(w, r)
			return
		}
		conn, err := up.Upgrade(w, r, http.Header{"Sec-Websocket-Protocol": {"graphql-transport-ws"}})
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			var m struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			}
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			switch m.Type {
			case "connection_init":
				err = conn.WriteJSON(map[string]any{"type": "connection_ack"})
			case "subscribe":
				err = conn.WriteJSON(map[string]any{"type": "next", "id": m.ID, "payload": map[string]any{"data": map[string]any{"n": 1}}})
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.CloseClientConnections)
	t.Cleanup(srv.Close)
	return srv
}

// subscribe sends a subscribe with id and waits for its next.
func subscribe(t *testing.T, conn *websocket.Conn, id string) {
	t.Helper()
	if err := conn.WriteJSON(map[string]any{"type": "subscribe", "id": id, "payload": map[string]any{"query": "subscription { n }"}}); err != nil {
		t.Fatalf("subscribe %s: %v", id, err)
	}
	for {
		var m struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}
		_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("subscription %s: %v", id, err)
		}
		if m.Type == "next" && m.ID == id {
			return
		}
	}
}

// sendAs posts a query with the admin secret (or anonymously when secret is
// empty) and returns the status and body.
func sendAs(t *testing.T, client, secret string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, client+"/v1/graphql", strings.NewReader(`{"query":"{ x }"}`))
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("X-Hasura-Admin-Secret", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitSample scrapes until key has at least value want.
func waitSample(t *testing.T, ops, key string, want float64) map[string]float64 {
	t.Helper()
	var s map[string]float64
	eventually(t, key+" reaching "+jsonNumber(want), func() bool {
		s = samples(t, ops)
		return s[key] >= want
	})
	return s
}

func jsonNumber(f float64) string { b, _ := json.Marshal(f); return string(b) }

// TestReloadOnSIGHUP runs the reload scenario against the built
// binary: 50 requests held by a slow Hasura and an open subscription
// survive a SIGHUP; after it the rotated admin secret is the one accepted
// from clients and sent to Hasura; a setting that needs a restart is named
// in a warning and kept; an invalid file is refused with a log line and a
// metric, and the running configuration keeps serving.
func TestReloadOnSIGHUP(t *testing.T) {
	f := newFakeHasura(t)
	up := wsHasura(t, f)
	const oldSecret, newSecret = "old-admin-secret-0123456789", "new-admin-secret-9876543210"
	c := testConfig{UpstreamURL: up.URL, AdminSecret: oldSecret, HSKey: randomHex(t, 32), AnonRole: "anonymous"}
	p := startBinary(t, c)

	if s := samples(t, p.ops); s["config_last_reload_success_timestamp_seconds{}"] == 0 {
		t.Errorf("config_last_reload_success_timestamp_seconds = 0 at start; want the start time")
	}
	dialer := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: waitTimeout}
	conn, _, err := dialer.Dial("ws://"+p.clientAddr+"/v1/graphql", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	subscribe(t, conn, "before")

	var inFlight []<-chan result
	for range 50 {
		inFlight = append(inFlight, slowRequest(t, p.client, f))
	}

	// Rotate the admin secret, and change a setting that needs a restart.
	c.AdminSecret, c.ReadHeaderTimeout = newSecret, "7s"
	if err := os.WriteFile(p.configPath, []byte(c.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	s := waitSample(t, p.ops, "config_reloads_total{result=success}", 1)
	if s["config_reloads_total{result=error}"] != 0 {
		t.Errorf("config_reloads_total{result=error} = %v; want 0", s["config_reloads_total{result=error}"])
	}
	warn := p.logs.wait(t, "the restart-only warning", p.exited, msgIs("configuration reloaded, but these settings take effect only at restart; their running values are kept"))
	if kept, _ := warn["kept"].([]any); len(kept) != 1 || kept[0] != "server.read_header_timeout" {
		t.Errorf("kept = %v; want [server.read_header_timeout]", warn["kept"])
	}

	f.Release()
	for i, ch := range inFlight {
		select {
		case r := <-ch:
			if r.err != nil || r.status != http.StatusOK || r.body != `{"data":{"ok":true}}` {
				t.Errorf("in-flight request %d: got %d %q %v; want 200 with Hasura's answer", i, r.status, r.body, r.err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("in-flight request %d never answered", i)
		}
	}
	subscribe(t, conn, "after")

	// The new secret is the one accepted, and the one Hasura receives.
	if status, body := sendAs(t, p.client, oldSecret); !strings.Contains(body, "access-denied") {
		t.Errorf("old admin secret after the reload: %d %s; want access-denied", status, body)
	}
	before := f.Count()
	sendAs(t, p.client, newSecret)
	sendAs(t, p.client, "")
	if got := f.Count() - before; got != 2 {
		t.Fatalf("%d requests reached Hasura; want 2", got)
	}
	last, _ := f.Last()
	if got := last.Header.Get("X-Hasura-Admin-Secret"); got != newSecret {
		t.Errorf("admin secret sent to Hasura after the reload is not the rotated one")
	}

	// An invalid file is refused; the running configuration keeps serving.
	if err := os.WriteFile(p.configPath, []byte("upstream:\n  url: ftp://nowhere\n  unknown_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	s = waitSample(t, p.ops, "config_reloads_total{result=error}", 1)
	if s["config_reloads_total{result=success}"] != 1 {
		t.Errorf("config_reloads_total{result=success} = %v; want still 1", s["config_reloads_total{result=success}"])
	}
	refused := p.logs.wait(t, "the refusal line", p.exited, msgIs("configuration reload refused; the running configuration keeps serving"))
	if probs, _ := refused["problems"].([]any); len(probs) == 0 {
		t.Errorf("refusal line without problems: %v", refused)
	}
	before = f.Count()
	sendAs(t, p.client, newSecret)
	if f.Count()-before != 1 {
		t.Errorf("after a refused reload the running configuration stopped serving")
	}
	last, _ = f.Last()
	if got := last.Header.Get("X-Hasura-Admin-Secret"); got != newSecret {
		t.Errorf("admin secret sent to Hasura after a refused reload changed")
	}
	subscribe(t, conn, "after-refused")

	// SIGTERM still drains and exits 0, closing the subscription that a
	// replaced configuration holds with 1001 (going away).
	p.signal(t, syscall.SIGTERM)
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("subscription ended with %v; want close 1001", err)
		}
		break
	}
	if st := p.waitExit(t, waitTimeout); st.ExitCode() != 0 {
		t.Errorf("exit code %d; want 0\n%s", st.ExitCode(), p.logs.String())
	}
}

func TestKeepRestartOnly(t *testing.T) {
	base := func() *config.File { c := config.Default(); return &c }
	tests := []struct {
		name   string
		change func(*config.File)
		want   []string
	}{
		{"nothing", func(*config.File) {}, nil},
		{"reloadable settings", func(c *config.File) {
			c.Upstream.AdminSecret = "rotated"
			c.Server.MaxBodyBytes = 4096
			c.Upstream.AllowedPaths = []string{"/v1/graphql"}
			c.Auth.UnauthorizedRole = "anonymous"
			c.WebSocket.MaxConnections = 3
		}, nil},
		{"listeners", func(c *config.File) { c.Server.Listen, c.Server.OpsListen = ":1", ":2" }, []string{"server.listen", "server.ops_listen"}},
		{"server timeouts", func(c *config.File) {
			c.Server.ReadTimeout, c.Server.WriteTimeout, c.Server.IdleTimeout = time.Second, time.Second, time.Second
		}, []string{"server.read_timeout", "server.write_timeout", "server.idle_timeout"}},
		{"upstream url, log, redis", func(c *config.File) {
			c.Upstream.URL = "http://other:8080"
			c.Log.Level = "debug"
			c.Redis.URL = "redis://127.0.0.1:1"
		}, []string{"upstream.url", "log", "redis"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, cfg := base(), base()
			tt.change(cfg)
			want := base()
			tt.change(want)
			got := keepRestartOnly(old, cfg)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("kept %q; want %q", got, tt.want)
			}
			// Kept settings are back to the running values; the rest is new.
			if cfg.Server.Listen != old.Server.Listen || cfg.Upstream.URL != old.Upstream.URL || cfg.Log != old.Log ||
				cfg.Server.WriteTimeout != old.Server.WriteTimeout {
				t.Errorf("a restart-only setting was not restored: %+v", cfg.Server)
			}
			if cfg.Upstream.AdminSecret != want.Upstream.AdminSecret || cfg.Server.MaxBodyBytes != want.Server.MaxBodyBytes {
				t.Errorf("a reloadable setting was not taken from the new configuration")
			}
		})
	}
}

// TestReloadRefusedWithoutKeys: a configuration whose key set cannot be
// fetched never takes over, and the running one keeps verifying; one that
// loads replaces it.
func TestReloadRefusedWithoutKeys(t *testing.T) {
	hsKey := randomHex(t, 32)
	jwksDown := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(jwksDown.Close)
	running := testConfig{UpstreamURL: "http://127.0.0.1:1", AdminSecret: "reload-admin-secret-0123", HSKey: hsKey}
	cfg, err := config.Parse([]byte(running.yaml()), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogSink()
	log, err := newLogger(cfg.Log, logs)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	gen, err := newGeneration(cfg, log, m, processState{})
	if err != nil {
		t.Fatal(err)
	}
	gen.start()
	live := &liveHandler{}
	live.cur.Store(gen)
	next := running
	rl := &reloader{live: live, log: log, mainLog: log.Named("main"), metrics: m, now: time.Now, keysTimeout: 200 * time.Millisecond,
		load: func() (*config.File, error) {
			return config.Parse([]byte(next.yaml()), func(string) string { return "" })
		}}
	t.Cleanup(rl.stopAll)
	count := func(result string) float64 { return reloads(t, reg, result) }

	next.JWKSURL = jwksDown.URL
	rl.reload(context.Background())
	if got := count("error"); got != 1 {
		t.Errorf("config_reloads_total{error} = %v; want 1", got)
	}
	if live.cur.Load() != gen {
		t.Fatalf("a configuration without keys took over")
	}
	if !strings.Contains(logs.String(), "the keys of the new configuration were not loaded") {
		t.Errorf("no refusal line naming the keys:\n%s", logs.String())
	}

	next.JWKSURL = ""
	next.AdminSecret = "reload-admin-secret-rotated"
	rl.reload(context.Background())
	if got := count("success"); got != 1 {
		t.Errorf("config_reloads_total{success} = %v; want 1", got)
	}
	if g := live.cur.Load(); g == gen || g.cfg.Upstream.AdminSecret != "reload-admin-secret-rotated" {
		t.Errorf("the valid configuration did not take over")
	}
}

// reloads returns config_reloads_total{result} gathered from reg.
func reloads(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metrics.Namespace+"_config_reloads_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return mm.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("config_reloads_total{result=%q} not found", result)
	return 0
}
