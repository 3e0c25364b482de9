package limits

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"go.yaml.in/yaml/v3"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store/storetest"
)

const testYAML = `
api_limits:
  depth_limit: {global: 3, per_role: {user: 2}}
  node_limit:  {global: 5, per_role: {user: 4}}
  batch_limit: {global: 3, per_role: {user: 2}}
  time_limit:  {global: 30, per_role: {user: 10}}
  rate_limit:
    global:   {max_reqs_per_min: 100, unique_params: IP}
    per_role: {user: {max_reqs_per_min: 3, unique_params: [x-hasura-user-id]}, editor: {max_reqs_per_min: 2}}
graphql_schema_introspection:
  disabled_for_roles: [user]
`

type testFile struct {
	APILimits     Config              `yaml:"api_limits"`
	Introspection IntrospectionConfig `yaml:"graphql_schema_introspection"`
}

func decode(t *testing.T, s string) testFile {
	t.Helper()
	var f testFile
	if err := yamlDecodeStrict(s, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// yamlDecodeStrict decodes a test configuration and validates it.
func yamlDecodeStrict(s string, f *testFile) error {
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if err := f.APILimits.Validate(); err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}

func newTestLimiter(t *testing.T, yml string, clk *fakeClock) (*Limiter, *prometheus.Registry) {
	t.Helper()
	f := decode(t, yml)
	reg := prometheus.NewRegistry()
	return New(Options{
		Config: f.APILimits, Introspection: f.Introspection, Store: store.DefaultConfig(),
		Metrics: metrics.NewLimits(reg, f.APILimits.Roles(f.Introspection)), Now: clk.now,
	}), reg
}

func session(role string, vars ...string) *auth.Session {
	s := &auth.Session{Result: auth.ResultAllowed, Role: role}
	for i := 0; i+1 < len(vars); i += 2 {
		s.Vars = append(s.Vars, auth.Var{Name: vars[i], Value: vars[i+1]})
	}
	return s
}

func post(path, body, peer string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.RemoteAddr = peer + ":1234"
	return r
}

func TestAdmitHTTP(t *testing.T) {
	const deep = `{"query":"{ a { b { c { d } } } }"}` // depth 3, nodes 3
	const ok = `{"query":"{ a { b } }"}`               // depth 1
	const intro = `{"query":"{ __schema { types { name } } }"}`
	tests := []struct {
		name     string
		s        *auth.Session
		method   string
		path     string
		body     string
		wantCode string
		wantIn   string
	}{
		{name: "admitted", s: session("user", "x-hasura-user-id", "1"), body: ok},
		{name: "per_role depth", s: session("user"), body: deep, wantCode: CodeDepthLimit, wantIn: `depth is 3, the limit for role "user" is 2`},
		{name: "global depth for a role without an entry", s: session("viewer"), body: deep},
		{name: "global depth refuses", s: session("viewer"), body: `{"query":"{ a { b { c { d { e } } } } }"}`, wantCode: CodeDepthLimit, wantIn: "is 3"},
		{name: "admin is never limited", s: &auth.Session{Result: auth.ResultAdmin, Role: "user"}, body: `[` + deep + `,` + deep + `,` + deep + `]`},
		{name: "a token with role admin is the admin role", s: session("admin"), body: `[` + deep + `,` + deep + `,` + deep + `,` + deep + `]`},
		{name: "nodes", s: session("user"), body: `{"query":"{ a { b } c { d } e { f } g { h } i { j } }"}`, wantCode: CodeNodeLimit, wantIn: "has 5 nodes"},
		{name: "batch limit", s: session("user"), body: `[` + ok + `,` + ok + `,` + ok + `]`, wantCode: CodeBatchLimit, wantIn: "holds 3 operations"},
		{name: "batch at the limit", s: session("user"), body: `[` + ok + `,` + ok + `]`},
		{name: "each batch element is checked", s: session("user"), body: `[` + ok + `,` + deep + `]`, wantCode: CodeDepthLimit, wantIn: "operation 1 of the batch"},
		{name: "introspection disabled", s: session("user"), body: intro, wantCode: CodeIntrospection},
		{name: "introspection allowed and exempt from depth", s: session("viewer"), body: `{"query":"{ __schema { types { fields { type { ofType { name } } } } } }"}`},
		{name: "typename is fine", s: session("user"), body: `{"query":"{ __typename }"}`},
		{name: "exact member names: QUERY is not query", s: session("user"), body: `{"query":"{ a { b { c { d } } } }","QUERY":"{ a }"}`, wantCode: CodeDepthLimit},
		{name: "last duplicate member wins", s: session("user"), body: `{"query":"{ a }","query":"{ a { b { c { d } } } }"}`, wantCode: CodeDepthLimit},
		{name: "operationName selects", s: session("user"), body: `{"query":"query A { a { b { c { d } } } } query B { a }","operationName":"B"}`},
		{name: "operationName selects the deep one", s: session("user"), body: `{"query":"query A { a { b { c { d } } } } query B { a }","operationName":"A"}`, wantCode: CodeDepthLimit},
		{name: "invalid document", s: session("user"), body: `{"query":"{ a { ...F } }"}`, wantCode: CodeInvalid, wantIn: "unknown fragment"},
		{name: "not JSON", s: session("user"), body: `nope`, wantCode: CodeBadRequest},
		{name: "GET query=", s: session("user"), method: http.MethodGet, path: "/v1/graphql?query=" + "%7B%20a%20%7B%20b%20%7B%20c%20%7B%20d%20%7D%20%7D%20%7D%20%7D", wantCode: CodeDepthLimit},
		{name: "REST endpoints are not analysed", s: session("user"), method: http.MethodGet, path: "/api/rest/users?query=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(t, testYAML, newFakeClock())
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/graphql"
			}
			r := httptest.NewRequest(method, path, nil)
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			if !l.Applies(tt.s) {
				if tt.wantCode != "" {
					t.Fatalf("Applies = false; want true")
				}
				return
			}
			ref := l.AdmitHTTP(r, body, tt.s)
			switch {
			case tt.wantCode == "" && ref != nil:
				t.Fatalf("refused %+v; want admitted", ref)
			case tt.wantCode != "" && ref == nil:
				t.Fatalf("admitted; want %s", tt.wantCode)
			case ref != nil && (ref.Code != tt.wantCode || !strings.Contains(ref.Message, tt.wantIn)):
				t.Errorf("refusal = %q %q; want code %q, message containing %q", ref.Code, ref.Message, tt.wantCode, tt.wantIn)
			}
		})
	}
}

func TestRateLimitUniqueParams(t *testing.T) {
	clk := newFakeClock()
	l, reg := newTestLimiter(t, testYAML, clk)
	admit := func(s *auth.Session, peer string) *proxy.Refusal {
		return l.AdmitHTTP(post("/v1/graphql", `{"query":"{ a }"}`, peer), []byte(`{"query":"{ a }"}`), s)
	}
	// user: 3 a minute per x-hasura-user-id, whatever the address.
	for i := 0; i < 3; i++ {
		if ref := admit(session("user", "x-hasura-user-id", "u1"), "127.0.0."+string(rune('1'+i))); ref != nil {
			t.Fatalf("request %d refused %+v; want admitted", i, ref)
		}
	}
	ref := admit(session("user", "x-hasura-user-id", "u1"), "127.0.0.9")
	if ref == nil || ref.Code != CodeRateLimit || ref.RetryAfter != time.Minute || ref.Status != http.StatusTooManyRequests {
		t.Fatalf("4th request of u1 = %+v; want %s with RetryAfter 1m", ref, CodeRateLimit)
	}
	if ref := admit(session("user", "x-hasura-user-id", "u2"), "127.0.0.1"); ref != nil {
		t.Errorf("u2 refused %+v; want its own counter", ref)
	}
	// A batch of 2 counts 2.
	b := []byte(`[{"query":"{ a }"},{"query":"{ a }"}]`)
	if ref := l.AdmitHTTP(post("/v1/graphql", "", "127.0.0.1"), b, session("user", "x-hasura-user-id", "u2")); ref != nil {
		t.Errorf("u2 batch of 2 refused %+v; want admitted (3 in all)", ref)
	}
	if ref := admit(session("user", "x-hasura-user-id", "u2"), "127.0.0.1"); ref == nil {
		t.Errorf("u2's 4th operation admitted; want refused")
	}
	// editor: per role, no unique params: one counter for every editor.
	if admit(session("editor", "x-hasura-user-id", "a"), "127.0.0.1") != nil || admit(session("editor", "x-hasura-user-id", "b"), "127.0.0.2") != nil {
		t.Fatal("editor refused within its limit")
	}
	if admit(session("editor", "x-hasura-user-id", "c"), "127.0.0.3") == nil {
		t.Error("3rd editor operation admitted; want refused (one counter per role)")
	}
	// global (IP): per address and per role.
	for i := 0; i < 100; i++ {
		if admit(session("viewer"), "127.0.0.5") != nil {
			t.Fatalf("viewer request %d refused", i)
		}
	}
	if admit(session("viewer"), "127.0.0.5") == nil {
		t.Error("101st viewer request from one address admitted; want refused")
	}
	if admit(session("viewer"), "127.0.0.6") != nil || admit(session("other"), "127.0.0.5") != nil {
		t.Error("another address or role refused; want its own counter")
	}
	clk.advance(window)
	if ref := admit(session("user", "x-hasura-user-id", "u1"), "127.0.0.1"); ref != nil {
		t.Errorf("u1 a minute later refused %+v; want admitted", ref)
	}
	want := map[string]float64{"user": 2, "editor": 1, "other": 1}
	for role, n := range want {
		if got := refusals(t, reg, metrics.LimitRate, role); got != n {
			t.Errorf("limit_refusals_total{kind=rate,role=%s} = %v; want %v", role, got, n)
		}
	}
}

// refusals reads one series of limit_refusals_total.
func refusals(t *testing.T, reg *prometheus.Registry, kind, role string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hasura_auth_proxy_limit_refusals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["kind"] == kind && labels["role"] == role {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series kind=%s role=%s", kind, role)
	return 0
}

func TestDisabled(t *testing.T) {
	l, _ := newTestLimiter(t, strings.Replace(testYAML, "api_limits:\n", "api_limits:\n  disabled: true\n", 1), newFakeClock())
	deep := []byte(`{"query":"{ a { b { c { d { e } } } } }"}`)
	if ref := l.AdmitHTTP(post("/v1/graphql", "", "127.0.0.1"), deep, session("user")); ref != nil {
		t.Errorf("disabled: refused %+v; want admitted", ref)
	}
	// Introspection control is a separate section and stays on.
	intro := []byte(`{"query":"{ __schema { types { name } } }"}`)
	if ref := l.AdmitHTTP(post("/v1/graphql", "", "127.0.0.1"), intro, session("user")); ref == nil || ref.Code != CodeIntrospection {
		t.Errorf("disabled: introspection = %+v; want %s", ref, CodeIntrospection)
	}
	if d := l.TimeLimit(session("user")); d != 0 {
		t.Errorf("disabled: TimeLimit = %s; want 0", d)
	}
}

func TestTimeLimit(t *testing.T) {
	l, _ := newTestLimiter(t, testYAML, newFakeClock())
	for _, tt := range []struct {
		s    *auth.Session
		want time.Duration
	}{
		{session("user"), 10 * time.Second},
		{session("viewer"), 30 * time.Second},
		{&auth.Session{Result: auth.ResultAdmin, Role: "user"}, 0},
	} {
		if got := l.TimeLimit(tt.s); got != tt.want {
			t.Errorf("TimeLimit(%s) = %s; want %s", tt.s.Role, got, tt.want)
		}
	}
}

// With Redis unreachable, on_error decides, within redis.timeout, and the
// outage is logged once, then its end once.
func TestRedisOnError(t *testing.T) {
	for _, deny := range []bool{false, true} {
		name := "allow"
		if deny {
			name = "deny"
		}
		t.Run(name, func(t *testing.T) {
			rs := storetest.Start(t)
			sc := store.DefaultConfig()
			sc.URL = auth.Secret(rs.URL())
			sc.Timeout = 200 * time.Millisecond
			if deny {
				sc.OnError = store.OnErrorDeny
			}
			client, err := store.NewClient(sc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = client.Close() })
			f := decode(t, testYAML)
			core, logs := observer.New(zap.InfoLevel)
			reg := prometheus.NewRegistry()
			clk := newFakeClock()
			l := New(Options{Config: f.APILimits, Store: sc, Redis: client, Logger: zap.New(core), Now: clk.now,
				Metrics: metrics.NewLimits(reg, f.APILimits.Roles(f.Introspection))})
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() {
				defer close(ran)
				l.Run(ctx)
			}()
			t.Cleanup(func() {
				cancel()
				<-ran
			})
			body := []byte(`{"query":"{ a }"}`)
			s := session("user", "x-hasura-user-id", "u")
			if ref := l.AdmitHTTP(post("/v1/graphql", "", "127.0.0.1"), body, s); ref != nil {
				t.Fatalf("with Redis up: refused %+v", ref)
			}
			rs.Stop()
			for i := 0; i < 3; i++ {
				start := time.Now()
				ref := l.AdmitHTTP(post("/v1/graphql", "", "127.0.0.1"), body, s)
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("check took %s with Redis down; want about redis.timeout", d)
				}
				if deny && (ref == nil || ref.Code != CodeRateLimit || ref.Status != http.StatusServiceUnavailable) {
					t.Errorf("on_error deny: got %+v; want a 503 %s refusal", ref, CodeRateLimit)
				}
				if !deny && ref != nil {
					t.Errorf("on_error allow: refused %+v; want admitted", ref)
				}
			}
			if n := logs.FilterMessageSnippet("redis unreachable").Len(); n != 1 {
				t.Errorf("outage logged %d times; want once", n)
			}
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "hasura_auth_proxy_redis_errors_total" {
					for _, m := range mf.GetMetric() {
						if m.GetLabel()[0].GetValue() == name && m.GetCounter().GetValue() != 3 {
							t.Errorf("redis_errors_total{on_error=%s} = %v; want 3", name, m.GetCounter().GetValue())
						}
					}
				}
			}
			// Redis was asked twice: once up, once failing; the other
			// checks within outageRetry applied on_error without it.
			for _, mf := range mfs {
				if mf.GetName() == "hasura_auth_proxy_redis_request_duration_seconds" {
					if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 2 {
						t.Errorf("redis_request_duration_seconds count = %d; want 2", n)
					}
				}
			}
			rs.Restart()
			clk.advance(outageRetry)
			if ref := l.AdmitHTTP(post("/v1/graphql", "", "127.0.0.1"), body, s); ref != nil {
				t.Errorf("after restart: refused %+v; want admitted", ref)
			}
			if n := logs.FilterMessageSnippet("redis reachable again").Len(); n != 1 {
				t.Errorf("recovery logged %d times; want once", n)
			}
		})
	}
}

var _ redis.Scripter = (*redis.Client)(nil)

// WebSocket operations: each subscribe/start payload is checked like an
// HTTP request of one operation, and counts against the rate limit.
func TestAdmitOperation(t *testing.T) {
	l, _ := newTestLimiter(t, testYAML, newFakeClock())
	r := httptest.NewRequest(http.MethodGet, "/v1/graphql", nil)
	s := session("user", "x-hasura-user-id", "ws")
	for _, tt := range []struct {
		payload, want string
	}{
		{`{"query":"subscription { a { b { c { d } } } }"}`, CodeDepthLimit},
		{`{"query":"subscription { __schema { types { name } } }"}`, CodeIntrospection},
		{`{"query":"subscription S { a { b } }","operationName":"S","variables":{}}`, ""},
		{`"not an object"`, CodeBadRequest},
		{`{"query":"subscription { a { b } }"}`, ""},
		{`{"query":"subscription { a { b } }"}`, ""},
		{`{"query":"subscription { a { b } }"}`, CodeRateLimit}, // the 4th admitted-shape operation of user ws
	} {
		ref := l.AdmitOperation(r, s, []byte(tt.payload))
		got := ""
		if ref != nil {
			got = ref.Code
		}
		if got != tt.want {
			t.Errorf("AdmitOperation(%s) = %q; want %q", tt.payload, got, tt.want)
		}
	}
}

// unique_params: IP is the TCP peer, or behind a trusted proxy the
// right-most untrusted X-Forwarded-For entry.
func TestRateLimitClientIP(t *testing.T) {
	f := decode(t, "api_limits:\n  rate_limit:\n    global: {max_reqs_per_min: 1, unique_params: IP}\n")
	trusted, err := proxy.ParseTrustedProxies("server.trusted_proxies", []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	l := New(Options{Config: f.APILimits, Store: store.DefaultConfig(), TrustedProxies: trusted, Now: newFakeClock().now})
	body := []byte(`{"query":"{ a }"}`)
	req := func(peer, xff string) *http.Request {
		r := post("/v1/graphql", "", peer)
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	for _, tt := range []struct {
		name, peer, xff string
		refused         bool
	}{
		{"first client behind the balancer", "127.0.0.1", "203.0.113.1", false},
		{"same client, another balancer", "127.0.0.2", "203.0.113.1", true},
		{"another client", "127.0.0.1", "203.0.113.2", false},
		{"a client cannot pick its address left of the balancer's entry", "127.0.0.1", "198.51.100.9, 203.0.113.2", true},
		{"an untrusted peer's X-Forwarded-For is ignored", "192.0.2.7", "203.0.113.3", false},
		{"so that peer is one client", "192.0.2.7", "203.0.113.4", true},
	} {
		ref := l.AdmitHTTP(req(tt.peer, tt.xff), body, session("viewer"))
		if (ref != nil) != tt.refused {
			t.Errorf("%s: refusal %+v; want refused %t", tt.name, ref, tt.refused)
		}
	}
}
