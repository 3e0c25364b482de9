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
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name      string
		cfg       config.LogConfig
		wantInfo  bool // an info line is written
		wantDebug bool
		check     func(t *testing.T, line string)
	}{
		{
			name: "json by default", cfg: config.LogConfig{Level: "info", Format: "json"}, wantInfo: true,
			check: func(t *testing.T, line string) {
				var e map[string]any
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				for k, want := range map[string]any{"level": "info", "logger": "proxy", "msg": "request", "duration": 0.0015} {
					if e[k] != want {
						t.Errorf("%s = %#v; want %#v", k, e[k], want)
					}
				}
				if _, err := time.Parse("2006-01-02T15:04:05.000Z0700", e["ts"].(string)); err != nil {
					t.Errorf("ts: %v", err)
				}
			},
		},
		{
			name: "console for humans", cfg: config.LogConfig{Level: "info", Format: "console"}, wantInfo: true,
			check: func(t *testing.T, line string) {
				f := strings.Split(line, "\t")
				if len(f) < 4 || f[1] != "INFO" || f[2] != "proxy" || f[3] != "request" {
					t.Errorf("fields = %q; want ts, INFO, proxy, request, ...", f)
				}
				if !strings.Contains(line, `"duration": "1.5ms"`) {
					t.Errorf("line %q: want the duration as 1.5ms", line)
				}
			},
		},
		{name: "warn hides info", cfg: config.LogConfig{Level: "warn", Format: "json"}},
		{name: "debug shows debug", cfg: config.LogConfig{Level: "debug", Format: "json"}, wantInfo: true, wantDebug: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := newLogger(tt.cfg, &buf)
			if err != nil {
				t.Fatal(err)
			}
			log.Named("proxy").Info("request", zap.Duration("duration", 1500*time.Microsecond))
			log.Debug("debug line")
			out := buf.String()
			if got := strings.Contains(out, `request`); got != tt.wantInfo {
				t.Errorf("info written = %v; want %v (%q)", got, tt.wantInfo, out)
			}
			if got := strings.Contains(out, "debug line"); got != tt.wantDebug {
				t.Errorf("debug written = %v; want %v (%q)", got, tt.wantDebug, out)
			}
			if tt.check != nil {
				tt.check(t, strings.SplitN(out, "\n", 2)[0])
			}
		})
	}
	if _, err := newLogger(config.LogConfig{Level: "loud", Format: "json"}, io.Discard); err == nil {
		t.Error("newLogger accepted level loud")
	}
}

func TestConfigView(t *testing.T) {
	const (
		admin = "admin-secret-7f3a9c"
		hsKey = "hs-key-0123456789abcdef0123456789abcdef"
	)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
upstream: {url: "http://hasura:8080", admin_secret: %q}
server: {shutdown_grace: 25s}
auth:
  jwt_secrets:
    - name: hs
      type: HS256
      key: %q
      issuer: https://hs.test
      claims_map:
        x-hasura-allowed-roles: [user]
        x-hasura-default-role: user
        x-hasura-user-id: {path: $.sub, default: anonymous}
    - {name: clerk, jwk_url: "https://user:pa55@clerk.test/jwks.json?api_key=k3y", issuer: https://clerk.test}
`, admin, hsKey)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// Rendered as the startup line renders it.
	var buf bytes.Buffer
	log, err := newLogger(config.LogConfig{Level: "info", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("starting", zap.Any("config", configView(cfg)))
	line := buf.String()
	for _, secret := range []string{admin, hsKey, "pa55", "k3y"} {
		if strings.Contains(line, secret) {
			t.Errorf("startup line holds %q:\n%s", secret, line)
		}
	}
	if strings.Contains(line, `"jwt_secret"`) {
		t.Errorf("startup line shows jwt_secret, which jwt_secrets overrides:\n%s", line)
	}
	var e struct {
		Config struct {
			Server   map[string]any `json:"server"`
			Upstream map[string]any `json:"upstream"`
			Auth     struct {
				JWTSecrets []map[string]any `json:"jwt_secrets"`
				JWKS       map[string]any   `json:"jwks"`
			} `json:"auth"`
			Log map[string]any `json:"log"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatal(err)
	}
	c := e.Config
	checks := []struct {
		name      string
		got, want any
	}{
		{"server.shutdown_grace", c.Server["shutdown_grace"], "25s"},
		{"server.read_header_timeout", c.Server["read_header_timeout"], "10s"},
		{"server.max_body_bytes", c.Server["max_body_bytes"], float64(10 << 20)},
		{"upstream.admin_secret", c.Upstream["admin_secret"], "[REDACTED]"},
		{"upstream.response_header_timeout", c.Upstream["response_header_timeout"], "1m0s"},
		{"auth.jwks.refresh_interval", c.Auth.JWKS["refresh_interval"], "5m0s"},
		{"log.level", c.Log["level"], "info"},
	}
	if len(c.Auth.JWTSecrets) == 2 {
		hs, clerk := c.Auth.JWTSecrets[0], c.Auth.JWTSecrets[1]
		cm, _ := hs["claims_map"].(map[string]any)
		checks = append(checks, []struct {
			name      string
			got, want any
		}{
			{"jwt_secrets[0].key", hs["key"], "[REDACTED]"},
			{"jwt_secrets[0].type", hs["type"], "HS256"},
			{"jwt_secrets[0].claims_map.x-hasura-default-role", cm["x-hasura-default-role"], "user"},
			{"jwt_secrets[0].claims_map.x-hasura-user-id", fmt.Sprint(cm["x-hasura-user-id"]), "map[default:anonymous path:$.sub]"},
			{"jwt_secrets[1].jwk_url", clerk["jwk_url"], "https://[REDACTED]@clerk.test/jwks.json?[REDACTED]"},
			{"jwt_secrets[1].key (empty fields omitted)", clerk["key"], nil},
		}...)
	} else {
		t.Errorf("jwt_secrets = %v; want 2 entries", c.Auth.JWTSecrets)
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %#v; want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://clerk.test/.well-known/jwks.json", "https://clerk.test/.well-known/jwks.json"},
		{"https://u:p@clerk.test/jwks", "https://[REDACTED]@clerk.test/jwks"},
		{"https://clerk.test/jwks?key=abc", "https://clerk.test/jwks?[REDACTED]"},
		{"https://clerk.test/jwks#frag", "https://clerk.test/jwks"},
		{"%zz", "[REDACTED]"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// readyFunc adapts a function to keySources.
type readyFunc func() error

func (f readyFunc) Ready() error { return f() }

// gauge reads an unlabelled gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

func TestHealth(t *testing.T) {
	hasura := fake.StartHasura(t)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	noKeys := errors.Join(fmt.Errorf("jwt secret clerk: %w", auth.ErrNoKeys), errors.New("jwt secret hs: no usable keys\nsecond line"))
	tests := []struct {
		name         string
		url          string // Hasura's base URL
		keys         error
		hasuraStatus int
		draining     bool
		wantStatus   int
		wantBody     []string // lines, in order
		wantHits     int64
	}{
		{name: "ready", url: hasura.URL + "/", hasuraStatus: 200, wantStatus: 200, wantBody: []string{"ready"}, wantHits: 1},
		{name: "keys missing", url: hasura.URL, keys: noKeys, hasuraStatus: 200, wantStatus: 503, wantHits: 1,
			wantBody: []string{"not ready: jwt secret clerk: no usable keys", "not ready: jwt secret hs: no usable keys", "not ready: second line"}},
		{name: "hasura unhealthy", url: hasura.URL, hasuraStatus: 500, wantStatus: 503, wantHits: 1,
			wantBody: []string{"not ready: hasura: /healthz answered 500"}},
		{name: "hasura unreachable and keys missing", url: downURL, keys: auth.ErrNoKeys, wantStatus: 503,
			wantBody: []string{"not ready: no usable keys", "not ready: hasura: Get \"" + downURL + "/healthz\": dial tcp"}},
		{name: "draining asks nobody", url: hasura.URL, hasuraStatus: 200, draining: true, wantStatus: 503,
			wantBody: []string{"not ready: shutting down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hasura.HealthChecks()
			hasura.SetHealthy(tt.hasuraStatus == 200)
			reg := prometheus.NewRegistry()
			h := newHealth(healthOptions{
				Keys:     readyFunc(func() error { return tt.keys }),
				Upstream: proxy.Config{URL: tt.url, DialTimeout: time.Second, ResponseHeaderTimeout: time.Second, IdleConnTimeout: time.Second, MaxIdleConnsPerHost: 1},
				Metrics:  metrics.New(reg),
			})
			if tt.draining {
				h.drain()
			}
			rec := httptest.NewRecorder()
			h.serveReady(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d; want %d", rec.Code, tt.wantStatus)
			}
			lines := strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
			if len(lines) != len(tt.wantBody) {
				t.Fatalf("body = %q; want lines starting %q", rec.Body.String(), tt.wantBody)
			}
			for i, want := range tt.wantBody {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d = %q; want prefix %q", i, lines[i], want)
				}
			}
			if got := hasura.HealthChecks() - before; got != tt.wantHits {
				t.Errorf("Hasura /healthz asked %d times; want %d", got, tt.wantHits)
			}
			if n := hasura.Count(); n != 0 {
				t.Errorf("health check asked Hasura %d other requests; want only /healthz", n)
			}
			wantGauge := 0.0
			if tt.wantStatus == 200 {
				wantGauge = 1
			}
			if got := gauge(t, reg, "hasura_auth_proxy_ready"); got != wantGauge {
				t.Errorf("ready gauge = %v; want %v", got, wantGauge)
			}
		})
	}
}

func TestHealthCachesHasuraCheck(t *testing.T) {
	hasura := fake.StartHasura(t)
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := newHealth(healthOptions{
		Keys:     readyFunc(func() error { return nil }),
		Upstream: proxy.Config{URL: hasura.URL, DialTimeout: time.Second, ResponseHeaderTimeout: time.Second, IdleConnTimeout: time.Second, MaxIdleConnsPerHost: 1},
		Now:      clock,
	})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	steps := []struct {
		name     string
		ctx      context.Context
		advance  time.Duration
		healthy  bool
		wantErr  bool
		wantHits int64
	}{
		{name: "first probe asks Hasura", ctx: context.Background(), healthy: true, wantHits: 1},
		{name: "within the TTL the answer is reused", ctx: context.Background(), advance: upstreamCheckTTL - time.Millisecond, healthy: false, wantHits: 1},
		{name: "past the TTL Hasura is asked again", ctx: context.Background(), advance: time.Millisecond, healthy: false, wantErr: true, wantHits: 2},
		{name: "a cancelled probe still checks, and caches the real answer", ctx: cancelled, advance: upstreamCheckTTL, healthy: true, wantHits: 3},
		{name: "which the next probe reuses", ctx: context.Background(), healthy: false, wantHits: 3},
	}
	for _, s := range steps {
		advance(s.advance)
		hasura.SetHealthy(s.healthy)
		err := h.upstream(s.ctx)
		if (err != nil) != s.wantErr {
			t.Errorf("%s: err = %v; want error %v", s.name, err, s.wantErr)
		}
		if got := hasura.HealthChecks(); got != s.wantHits {
			t.Errorf("%s: Hasura asked %d times; want %d", s.name, got, s.wantHits)
		}
	}
}

// TestHealthRunKeepsGaugeCurrent checks the background re-evaluation: the
// gauge follows readiness without anyone probing /readyz.
func TestHealthRunKeepsGaugeCurrent(t *testing.T) {
	hasura := fake.StartHasura(t)
	reg := prometheus.NewRegistry()
	var keysErr atomic.Pointer[error]
	noKeys := error(auth.ErrNoKeys)
	keysErr.Store(&noKeys)
	h := newHealth(healthOptions{
		Keys:     readyFunc(func() error { return *keysErr.Load() }),
		Upstream: proxy.Config{URL: hasura.URL, DialTimeout: time.Second, ResponseHeaderTimeout: time.Second, IdleConnTimeout: time.Second, MaxIdleConnsPerHost: 1},
		Metrics:  metrics.New(reg),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx, time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })

	waitGauge := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for gauge(t, reg, "hasura_auth_proxy_ready") != want {
			if time.Now().After(deadline) {
				t.Fatalf("ready gauge never became %v", want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitGauge(0)
	var ok error
	keysErr.Store(&ok)
	waitGauge(1)
	h.drain()
	if got := gauge(t, reg, "hasura_auth_proxy_ready"); got != 0 {
		t.Errorf("ready gauge = %v right after drain; want 0", got)
	}
	waitGauge(0)
}

// hsProxy starts a proxy with one HS256 secret in front of a fresh stand-in
// Hasura.
func hsProxy(t *testing.T, c testConfig) (*runningProxy, *fake.Hasura, string) {
	t.Helper()
	h := newFakeHasura(t)
	c.UpstreamURL = h.URL
	if c.AdminSecret == "" {
		c.AdminSecret = "admin-" + randomHex(t, 8)
	}
	if c.HSKey == "" {
		c.HSKey = randomHex(t, 24)
	}
	return startProxy(t, c), h, c.HSKey
}

// do sends req and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// accessLine waits for the access log line of request id rid.
func (p *runningProxy) accessLine(t *testing.T, rid string) logEntry {
	t.Helper()
	return p.logs.wait(t, "request "+rid, p.exited, func(e logEntry) bool {
		return e.str("msg") == "request" && e.str("request_id") == rid
	})
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestID(t *testing.T) {
	p, h, key := hsProxy(t, testConfig{})
	token := signHS(t, key, claimsFor(hsIssuer))
	tests := []struct {
		name     string
		in       []string // X-Request-Id values sent
		token    string
		wantKept string // "" means a generated id is expected
		upstream bool   // the request reaches Hasura
	}{
		{name: "well-formed id is kept", in: []string{"req-1.a_b:C"}, token: token, wantKept: "req-1.a_b:C", upstream: true},
		{name: "128 characters are kept", in: []string{strings.Repeat("a", 128)}, token: token, wantKept: strings.Repeat("a", 128), upstream: true},
		{name: "absent id is generated", token: token, upstream: true},
		{name: "129 characters are replaced", in: []string{strings.Repeat("a", 129)}, token: token, upstream: true},
		{name: "spaces are replaced", in: []string{"a b"}, token: token, upstream: true},
		{name: "injection is replaced", in: []string{`x","level":"error`}, token: token, upstream: true},
		{name: "non-ASCII is replaced", in: []string{"ré"}, token: token, upstream: true},
		{name: "only the first of several counts", in: []string{"first", "second"}, token: token, wantKept: "first", upstream: true},
		{name: "denied requests carry it back too", in: []string{"denied-1"}, wantKept: "denied-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Count()
			req, _ := http.NewRequest(http.MethodPost, p.client+"/v1/graphql", strings.NewReader(`{"query":"{a}"}`))
			for _, v := range tt.in {
				req.Header.Add("X-Request-Id", v)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, _ := do(t, req)
			got := resp.Header.Values("X-Request-Id")
			if len(got) != 1 {
				t.Fatalf("response X-Request-Id = %q; want exactly one", got)
			}
			rid := got[0]
			if tt.wantKept != "" && rid != tt.wantKept {
				t.Errorf("request id = %q; want %q", rid, tt.wantKept)
			}
			if tt.wantKept == "" && !generatedID.MatchString(rid) {
				t.Errorf("request id = %q; want 32 hex digits", rid)
			}
			if tt.upstream {
				r, ok := h.Last()
				if !ok || h.Count() != before+1 {
					t.Fatal("request did not reach Hasura")
				}
				if up := r.Header.Values("X-Request-Id"); len(up) != 1 || up[0] != rid {
					t.Errorf("Hasura got X-Request-Id %q; want [%q]", up, rid)
				}
			} else if h.Count() != before {
				t.Error("a denied request reached Hasura")
			}
			if line := p.accessLine(t, rid); line.str("path") != "/v1/graphql" {
				t.Errorf("access line %v: want path /v1/graphql", line)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	key := newSigningKey(t, "kid-1")
	jwks := newFakeJWKS(t, false, key)
	tests := []struct {
		name      string
		logUserID bool
		path      string
		token     func(t *testing.T) string
		role      string // X-Hasura-Role sent
		want      map[string]any
		absent    []string
		detail    string // a substring of the detail field
	}{
		{
			name: "allowed", path: "/v1/graphql",
			token:  func(t *testing.T) string { return signRS(t, key, claimsFor(rsIssuer)) },
			want:   map[string]any{"method": "POST", "path": "/v1/graphql", "status": 200.0, "endpoint": "graphql", "auth": "allowed", "role": "user", "level": "info", "logger": "proxy"},
			absent: []string{"user_id", "reason", "detail", "error"},
		},
		{
			name: "allowed with user id", logUserID: true, path: "/v1beta1/relay",
			token: func(t *testing.T) string { return signRS(t, key, claimsFor(rsIssuer)) },
			want:  map[string]any{"endpoint": "relay", "auth": "allowed", "role": "user", "user_id": "user_2abc"},
		},
		{
			name: "role not allowed", path: "/api/rest/things", role: "admin",
			token:  func(t *testing.T) string { return signRS(t, key, claimsFor(rsIssuer)) },
			want:   map[string]any{"status": 400.0, "endpoint": "rest", "auth": "denied", "reason": "role_not_allowed"},
			absent: []string{"role", "user_id"},
		},
		{
			name: "unknown kid is logged truncated", path: "/v1/graphql",
			token: func(t *testing.T) string {
				return signRS(t, fake.Key{KID: strings.Repeat("K", 100), Private: key.Private}, claimsFor(rsIssuer))
			},
			want:   map[string]any{"status": 200.0, "auth": "denied", "reason": "unknown_kid"},
			detail: `kid "` + strings.Repeat("K", 32) + `…" not in the key set of secret clerk`,
		},
		{
			name: "bad signature names the secret", path: "/v1/graphql",
			token: func(t *testing.T) string {
				return signRS(t, newSigningKey(t, key.KID), claimsFor(rsIssuer))
			},
			want:   map[string]any{"auth": "denied", "reason": "bad_signature"},
			detail: `secret clerk, kid "kid-1": `,
		},
		{
			name: "missing", path: "/v1/graphql",
			token: func(*testing.T) string { return "" },
			want:  map[string]any{"auth": "denied", "reason": "missing"},
		},
		{
			name: "unauthenticated health passes without auth fields", path: "/healthz",
			token:  func(*testing.T) string { return "" },
			want:   map[string]any{"method": "GET", "status": 200.0, "endpoint": "health"},
			absent: []string{"auth", "reason", "role"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHasura(t)
			p := startProxy(t, testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8), JWKSURL: jwks.JWKSURL(), LogUserID: tt.logUserID})
			p.waitKeys(t, "clerk")
			method := http.MethodPost
			if tt.path == "/healthz" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, p.client+tt.path, nil)
			tok := tt.token(t)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			if tt.role != "" {
				req.Header.Set("X-Hasura-Role", tt.role)
			}
			resp, _ := do(t, req)
			line := p.accessLine(t, resp.Header.Get("X-Request-Id"))
			for k, want := range tt.want {
				if line[k] != want {
					t.Errorf("%s = %#v; want %#v (line %v)", k, line[k], want, line)
				}
			}
			for _, k := range tt.absent {
				if v, ok := line[k]; ok {
					t.Errorf("%s = %#v; want absent", k, v)
				}
			}
			if d, ok := line["duration"].(float64); !ok || d <= 0 || d > 10 {
				t.Errorf("duration = %#v; want seconds", line["duration"])
			}
			if !strings.Contains(line.str("detail"), tt.detail) {
				t.Errorf("detail = %q; want it to contain %q", line.str("detail"), tt.detail)
			}
			if tok != "" && strings.Contains(p.logs.String(), tok[strings.LastIndexByte(tok, '.')+1:]) {
				t.Error("the token's signature appears in the log")
			}
			if strings.Contains(p.logs.String(), strings.Repeat("K", 33)) {
				t.Error("the kid appears untruncated in the log")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 2048
	p, h, key := hsProxy(t, testConfig{MaxBodyBytes: limit})
	token := signHS(t, key, claimsFor(hsIssuer))
	const gqlTooLarge = `{"errors":[{"message":"request body is larger than 2048 bytes (server.max_body_bytes)","extensions":{"path":"$","code":"payload-too-large"}}]}`
	const plainTooLarge = `{"error":"request body is larger than 2048 bytes (server.max_body_bytes)","path":"$","code":"payload-too-large"}`
	tests := []struct {
		name       string
		path       string
		size       int
		chunked    bool
		token      string
		wantStatus int
		wantBody   string // exact, when set
		wantRelay  bool   // Hasura gets the whole body and its answer is relayed
	}{
		{name: "at the limit passes", path: "/v1/graphql", size: limit, token: token, wantStatus: 200, wantRelay: true},
		{name: "chunked at the limit passes", path: "/v1/graphql", size: limit, chunked: true, token: token, wantStatus: 200, wantRelay: true},
		{name: "content-length over the limit, graphql shape", path: "/v1/graphql", size: limit + 1, token: token, wantStatus: 413, wantBody: gqlTooLarge},
		{name: "content-length over the limit, before authentication", path: "/v1/graphql", size: limit + 1, wantStatus: 413, wantBody: gqlTooLarge},
		{name: "content-length over the limit, REST shape", path: "/api/rest/upload", size: 1 << 20, token: token, wantStatus: 413, wantBody: plainTooLarge},
		{name: "chunked over the limit, graphql shape", path: "/v1/graphql", size: 3 * limit, chunked: true, token: token, wantStatus: 413, wantBody: gqlTooLarge},
		{name: "chunked over the limit, REST shape", path: "/api/rest/upload", size: 64 << 10, chunked: true, token: token, wantStatus: 413, wantBody: plainTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Count()
			body := strings.Repeat("x", tt.size)
			var r io.Reader = strings.NewReader(body)
			if tt.chunked {
				r = io.MultiReader(r) // hides the length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, p.client+tt.path, r)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, got := do(t, req)
			if (req.ContentLength <= 0) != tt.chunked {
				t.Fatalf("request ContentLength = %d; chunked %v", req.ContentLength, tt.chunked)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d; want %d (body %s)", resp.StatusCode, tt.wantStatus, got)
			}
			if tt.wantBody != "" {
				if got != tt.wantBody {
					t.Errorf("body = %s; want %s", got, tt.wantBody)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
			switch {
			case tt.wantRelay:
				rec, _ := h.Last()
				if h.Count() != before+1 || len(rec.Body) != tt.size {
					t.Errorf("Hasura got %d requests, last body %d bytes; want 1 of %d", h.Count()-before, len(rec.Body), tt.size)
				}
				if got != `{"data":{"ok":true}}` {
					t.Errorf("body = %s; want Hasura's answer", got)
				}
			case !tt.chunked:
				// A declared length over the limit never reaches Hasura.
				if h.Count() != before {
					t.Error("an oversized request reached Hasura")
				}
			}
			line := p.accessLine(t, resp.Header.Get("X-Request-Id"))
			if tt.wantStatus == 413 && line.str("error") != "request body too large" {
				t.Errorf("access line error = %q; want request body too large", line.str("error"))
			}
		})
	}
}

func TestSlowHeaderTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	p, _, _ := hsProxy(t, testConfig{ReadHeaderTimeout: timeout.String(), AnonRole: "anonymous"})

	start := time.Now() // before the server can have started its clock
	conn, err := net.Dial("tcp", p.clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A request line and one header, then nothing: the server must not wait
	// for the rest forever.
	if _, err := io.WriteString(conn, "GET /v1/graphql HTTP/1.1\r\nHost: proxy\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	elapsed := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s; want it closed after read_header_timeout %s", elapsed, timeout)
	}
	if elapsed < timeout {
		t.Errorf("connection closed after %s; want no earlier than read_header_timeout %s", elapsed, timeout)
	}
	if len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 408")) {
		t.Errorf("got %q; want the connection closed, or a 408", got)
	}

	// The listener still serves well-behaved clients.
	if status, _ := get(t, p.client+"/v1/version"); status != http.StatusOK {
		t.Errorf("GET /v1/version = %d after a slow client; want 200", status)
	}
}

func TestTrickledBodyIsCutOff(t *testing.T) {
	const readTimeout = 500 * time.Millisecond
	p, h, _ := hsProxy(t, testConfig{ReadTimeout: readTimeout.String(), AnonRole: "anonymous"})

	start := time.Now()
	conn, err := net.Dial("tcp", p.clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// 1000 bytes announced, one sent every 20ms: 20s for the whole body.
	if _, err := io.WriteString(conn, "POST /v1/graphql HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 1000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-writerDone })

	if err := conn.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	// Whatever the server answers, if anything, it must come, and the
	// connection must end, long before the body could have been sent.
	rest, err := io.ReadAll(bufio.NewReader(conn))
	elapsed := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s; want it cut off after read_timeout %s", elapsed, readTimeout)
	}
	// No upper bound beyond the read deadline (waitTimeout, shorter than
	// the 20s the body takes): how long after read_timeout the cut comes
	// depends on how busy the machine is.
	if elapsed < readTimeout {
		t.Errorf("cut off after %s; want no earlier than read_timeout %s", elapsed, readTimeout)
	}
	if bytes.Contains(rest, []byte(`"data"`)) {
		t.Errorf("got Hasura's answer for a body that never arrived: %q", rest)
	}
	if len(rest) > 0 && !bytes.HasPrefix(rest, []byte("HTTP/1.1 408 ")) {
		t.Errorf("answer %q; want 408 (or nothing at all), never an empty 200", rest)
	}
	if r, ok := h.Last(); ok && len(r.Body) >= 1000 {
		t.Errorf("Hasura got the whole body (%d bytes)", len(r.Body))
	}
}

func TestHeaderLimit(t *testing.T) {
	p, h, key := hsProxy(t, testConfig{AnonRole: "anonymous"})
	token := signHS(t, key, claimsFor(hsIssuer))
	tests := []struct {
		name       string
		padding    int // bytes of an extra header
		wantStatus int
	}{
		{"a token and 32 KiB of headers pass", 32 << 10, 200},
		// server.max_header_bytes is 64 KiB (net/http allows 4 KiB more).
		{"100 KiB of headers are refused", 100 << 10, 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Count()
			req, _ := http.NewRequest(http.MethodPost, p.client+"/v1/graphql", strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("X-Padding", strings.Repeat("p", tt.padding))
			resp, _ := do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d; want %d", resp.StatusCode, tt.wantStatus)
			}
			if reached := h.Count() > before; reached != (tt.wantStatus == 200) {
				t.Errorf("reached Hasura = %v; want %v", reached, tt.wantStatus == 200)
			}
		})
	}
}

func TestConfigViewSingleSecret(t *testing.T) {
	cfg, err := config.Parse([]byte(`
upstream: {admin_secret: x-admin-secret-value}
auth: {jwt_secret: {jwk_url: "https://clerk.test/.well-known/jwks.json?token=abc", issuer: https://clerk.test}}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(configView(cfg)["auth"])
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{`"jwt_secret":{"issuer":"https://clerk.test","jwk_url":"https://clerk.test/.well-known/jwks.json?[REDACTED]"}`} {
		if !strings.Contains(got, want) {
			t.Errorf("auth view %s; want it to contain %s", got, want)
		}
	}
	if strings.Contains(got, "jwt_secrets") || strings.Contains(got, "abc") {
		t.Errorf("auth view %s: want no jwt_secrets and no query value", got)
	}
}
