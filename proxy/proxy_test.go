package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

const (
	pxHSKey  = "0123456789abcdef0123456789abcdef"
	pxAdmin  = "the-admin-secret"
	pxIssuer = "https://clerk.proxy.test"
)

// recorder is the stand-in Hasura of these tests (internal/fake's): it
// records every request, /healthz included, and answers
// {"data":{"ok":true}} with an X-Request-Id of its own, which the proxy
// must replace.
type recorder struct {
	*fake.Hasura
	// handler, when set, answers instead of the stand-in (after it
	// recorded the request).
	handler http.HandlerFunc
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Hasura = fake.StartHasura(t,
		fake.RecordHealthz(),
		fake.WithBody(`{"data":{"ok":true}}`),
		fake.WithHeader("X-Request-Id", "hasura-own-id"),
		fake.WithResponder(func(w http.ResponseWriter, r *http.Request) bool {
			if rec.handler == nil {
				return false
			}
			rec.handler(w, r)
			return true
		}))
	return rec
}

func (rec *recorder) last(t *testing.T) fake.Request {
	t.Helper()
	r, ok := rec.Last()
	if !ok {
		t.Fatal("nothing reached Hasura")
	}
	return r
}

func (rec *recorder) count() int { return rec.Count() }

type fixture struct {
	up    *recorder
	px    *httptest.Server
	reg   *prometheus.Registry
	token func(claims map[string]any) string
}

type fixtureOpt func(*auth.Config, *Options)

func newFixture(t *testing.T, opts ...fixtureOpt) *fixture {
	t.Helper()
	up := newRecorder(t)
	ac := auth.DefaultConfig()
	ac.JWTSecret = &auth.JWTSecret{Type: "HS256", Key: pxHSKey, Issuer: pxIssuer}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	o := Options{
		Upstream:     DefaultConfig(),
		MaxBodyBytes: 1 << 20,
		ErrorStatus:  "hasura",
		Logger:       zaptest.NewLogger(t),
		Metrics:      m,
	}
	o.Upstream.URL = up.URL
	o.Upstream.AdminSecret = pxAdmin
	for _, f := range opts {
		f(&ac, &o)
	}
	a, err := auth.New(auth.Options{Config: ac, AdminSecret: pxAdmin, Logger: zaptest.NewLogger(t), Metrics: m,
		Revocations: o.Revocations})
	if err != nil {
		t.Fatal(err)
	}
	o.Auth = a
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	px := httptest.NewServer(h)
	t.Cleanup(px.Close)
	return &fixture{up: up, px: px, reg: reg, token: func(claims map[string]any) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(pxHSKey))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}
}

func goodClaims() map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": pxIssuer, "sub": "user_1", "iat": now, "nbf": now - 5, "exp": now + 60,
		"https://hasura.io/jwt/claims": map[string]any{
			"x-hasura-user-id":       "42",
			"x-hasura-org-id":        "7",
			"x-hasura-default-role":  "user",
			"x-hasura-allowed-roles": []any{"user", "editor"},
		},
	}
}

func (f *fixture) do(t *testing.T, method, path string, h http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.px.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// hasuraHeaders returns every x-hasura-* header Hasura received, lower-cased.
func hasuraHeaders(r fake.Request) map[string][]string {
	out := map[string][]string{}
	for k, vs := range r.Header {
		if isHasuraHeader(k) {
			out[strings.ToLower(k)] = vs
		}
	}
	return out
}

// TestForwardsVerifiedSession: strip every client x-hasura-* header, then set
// the admin secret, the chosen role and the token's session variables.
func TestForwardsVerifiedSession(t *testing.T) {
	f := newFixture(t)
	tok := f.token(goodClaims())
	h := http.Header{
		"Authorization":                         {"Bearer " + tok},
		"X-Hasura-Role":                         {"editor"},
		"X-Hasura-User-Id":                      {"1", "2"},
		"x-hasura-org-id":                       {"999"},
		"X-HASURA-ADMIN-SECRET":                 {},
		"X_hasura_user_id":                      {"3"},
		"X-Hasura-Use-Backend-Only-Permissions": {"true"},
		"Cookie":                                {"a=b"},
		"X-Request-Id":                          {"client-id-1"},
	}
	resp := f.do(t, http.MethodPost, "/v1/graphql", h, `{"query":"{ x }"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := hasuraHeaders(f.up.last(t))
	want := map[string][]string{
		"x-hasura-admin-secret": {pxAdmin},
		"x-hasura-role":         {"editor"},
		"x-hasura-user-id":      {"42"},
		"x-hasura-org-id":       {"7"},
	}
	if len(got) != len(want) {
		t.Fatalf("Hasura received %v; want %v", got, want)
	}
	for k, v := range want {
		if strings.Join(got[k], ",") != strings.Join(v, ",") {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
	up := f.up.last(t)
	if up.Header.Get("Authorization") != "Bearer "+tok || up.Header.Get("Cookie") != "a=b" {
		t.Errorf("Authorization/Cookie not kept: %v", up.Header)
	}
	if up.Header.Get("X-Request-Id") != "client-id-1" || resp.Header.Get("X-Request-Id") != "client-id-1" || len(resp.Header["X-Request-Id"]) != 1 {
		t.Errorf("request id upstream %q, response %v", up.Header.Get("X-Request-Id"), resp.Header["X-Request-Id"])
	}
	if up.Header.Get("X-Forwarded-For") == "" {
		t.Error("X-Forwarded-For not set")
	}
}

func TestForwardingSwitches(t *testing.T) {
	f := newFixture(t, func(_ *auth.Config, o *Options) {
		o.Upstream.ForwardAuthorization = false
		o.Upstream.ForwardCookie = false
	})
	resp := f.do(t, http.MethodPost, "/v1/graphql", http.Header{"Authorization": {"Bearer " + f.token(goodClaims())}, "Cookie": {"a=b"}}, "{}")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	up := f.up.last(t)
	if up.Header.Get("Authorization") != "" || up.Header.Get("Cookie") != "" {
		t.Errorf("forwarded despite the switches: %v", up.Header)
	}
}

// TestErrorShapes: Hasura's body and status for each endpoint family
// (server/src-lib/Hasura/Server/App.hs: status 200 on /v1/graphql and
// /v1beta1/relay, the original status elsewhere), in both error_status
// modes.
func TestErrorShapes(t *testing.T) {
	type want struct {
		status int
		body   string
		www    string
	}
	missing := "Missing 'Authorization' or 'Cookie' header in JWT authentication mode"
	gqlMissing := `{"errors":[{"message":"` + missing + `","extensions":{"path":"$","code":"invalid-headers"}}]}`
	plainMissing := `{"error":"` + missing + `","path":"$","code":"invalid-headers"}`
	badRole := `{"errors":[{"message":"Your requested role is not in allowed roles","extensions":{"path":"$","code":"access-denied"}}]}`
	badAdmin := `{"errors":[{"message":"invalid x-hasura-admin-secret/x-hasura-access-key","extensions":{"path":"$","code":"access-denied"}}]}`
	badAdminPlain := `{"error":"invalid x-hasura-admin-secret/x-hasura-access-key","path":"$","code":"access-denied"}`
	tests := []struct {
		name     string
		mode     string
		path     string
		h        func(f *fixture) http.Header
		hasura   want
		httpMode want
	}{
		{name: "graphql missing", path: "/v1/graphql", h: func(*fixture) http.Header { return nil },
			hasura: want{200, gqlMissing, ""}, httpMode: want{401, gqlMissing, "Bearer"}},
		{name: "relay missing", path: "/v1beta1/relay", h: func(*fixture) http.Header { return nil },
			hasura: want{200, gqlMissing, ""}, httpMode: want{401, gqlMissing, "Bearer"}},
		{name: "v1alpha1 missing", path: "/v1alpha1/graphql", h: func(*fixture) http.Header { return nil },
			hasura: want{400, gqlMissing, ""}, httpMode: want{401, gqlMissing, "Bearer"}},
		{name: "metadata missing", path: "/v1/metadata", h: func(*fixture) http.Header { return nil },
			hasura: want{400, plainMissing, ""}, httpMode: want{401, plainMissing, "Bearer"}},
		{name: "rest missing", path: "/api/rest/things", h: func(*fixture) http.Header { return nil },
			hasura: want{400, plainMissing, ""}, httpMode: want{401, plainMissing, "Bearer"}},
		{name: "graphql role not allowed", path: "/v1/graphql", h: func(f *fixture) http.Header {
			return http.Header{"Authorization": {"Bearer " + f.token(goodClaims())}, "X-Hasura-Role": {"admin"}}
		}, hasura: want{200, badRole, ""}, httpMode: want{403, badRole, ""}},
		{name: "expired token", path: "/v1/graphql", h: func(f *fixture) http.Header {
			c := goodClaims()
			c["exp"] = time.Now().Unix() - 100
			return http.Header{"Authorization": {"Bearer " + f.token(c)}}
		}, hasura: want{200, `{"errors":[{"message":"Could not verify JWT: JWTExpired","extensions":{"path":"$","code":"invalid-jwt"}}]}`, ""},
			httpMode: want{401, `{"errors":[{"message":"Could not verify JWT: JWTExpired","extensions":{"path":"$","code":"invalid-jwt"}}]}`, `Bearer error="invalid_token"`}},
		{name: "v1alpha1 bad admin secret", path: "/v1alpha1/graphql", h: func(*fixture) http.Header {
			return http.Header{"X-Hasura-Admin-Secret": {"wrong"}}
		}, hasura: want{401, badAdmin, ""}, httpMode: want{403, badAdmin, ""}},
		{name: "graphql bad admin secret", path: "/v1/graphql", h: func(*fixture) http.Header {
			return http.Header{"X-Hasura-Admin-Secret": {"wrong"}}
		}, hasura: want{200, badAdmin, ""}, httpMode: want{403, badAdmin, ""}},
		{name: "metadata bad admin secret", path: "/v1/metadata", h: func(*fixture) http.Header {
			return http.Header{"X-Hasura-Access-Key": {""}}
		}, hasura: want{401, badAdminPlain, ""}, httpMode: want{403, badAdminPlain, ""}},
	}
	for _, mode := range []string{"hasura", "http"} {
		// Every path, so the shape of each family is reached.
		f := newFixture(t, func(_ *auth.Config, o *Options) { o.ErrorStatus = mode; o.Upstream.AllowedPaths = []string{"/"} })
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				w := tt.hasura
				if mode == "http" {
					w = tt.httpMode
				}
				before := f.up.count()
				resp := f.do(t, http.MethodPost, tt.path, tt.h(f), `{"query":"{ x }"}`)
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != w.status {
					t.Errorf("status %d; want %d", resp.StatusCode, w.status)
				}
				if !jsonEqual(t, body, []byte(w.body)) {
					t.Errorf("body %s\nwant %s", body, w.body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Errorf("content type %q", ct)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != w.www {
					t.Errorf("WWW-Authenticate %q; want %q", got, w.www)
				}
				if f.up.count() != before {
					t.Error("a refused request reached Hasura")
				}
			})
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// TestUnauthenticatedPaths: OPTIONS and the health/version paths pass
// without a token, never with the admin secret or client x-hasura-*.
func TestUnauthenticatedPaths(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method, path string
		pass         bool
	}{
		{http.MethodOptions, "/v1/graphql", true},
		{http.MethodGet, "/healthz", true},
		{http.MethodHead, "/healthz", true},
		{http.MethodGet, "/hasura/healthz", true},
		{http.MethodGet, "/v1/version", true},
		{http.MethodGet, "/healthz?x=1", true},
		{http.MethodPost, "/healthz", false},
		{http.MethodGet, "/healthz/", false},
		{http.MethodGet, "/healthz/../v1/graphql", false},
		{http.MethodGet, "/v1%2Fversion", false},
		{http.MethodGet, "//healthz", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := f.up.count()
			req, _ := http.NewRequest(tt.method, f.px.URL+tt.path, nil)
			req.URL.Opaque = "" // send the path as written
			req.URL.RawPath = ""
			raw := strings.SplitN(tt.path, "?", 2)
			req.URL.Opaque = raw[0]
			if len(raw) == 2 {
				req.URL.RawQuery = raw[1]
			}
			req.Header.Set("X-Hasura-Role", "admin")
			req.Header.Set("X-Hasura-Admin-Secret", "wrong")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			reached := f.up.count() > before
			if tt.pass {
				if !reached {
					t.Fatalf("status %d: not forwarded", resp.StatusCode)
				}
				if got := hasuraHeaders(f.up.last(t)); len(got) != 0 {
					t.Errorf("forwarded x-hasura headers %v", got)
				}
				return
			}
			if reached && len(hasuraHeaders(f.up.last(t))) != 0 {
				t.Errorf("authenticated path forwarded %v", hasuraHeaders(f.up.last(t)))
			}
		})
	}
}

// TestAnonymousAndAdmin: the unauthorized role carries no client session
// variables; the admin secret forwards the client's x-hasura-* with an
// explicit role.
func TestAnonymousAndAdmin(t *testing.T) {
	f := newFixture(t, func(c *auth.Config, _ *Options) { c.UnauthorizedRole = "anonymous" })
	f.do(t, http.MethodPost, "/v1/graphql", http.Header{"X-Hasura-User-Id": {"1"}, "X-Hasura-Role": {"admin"}}, "{}")
	got := hasuraHeaders(f.up.last(t))
	if len(got) != 2 || got["x-hasura-role"][0] != "anonymous" || got["x-hasura-admin-secret"][0] != pxAdmin {
		t.Errorf("anonymous forwarded %v", got)
	}
	f.do(t, http.MethodPost, "/v1/graphql", http.Header{"X-Hasura-Admin-Secret": {pxAdmin}, "X-Hasura-User-Id": {"5"}}, "{}")
	got = hasuraHeaders(f.up.last(t))
	if got["x-hasura-role"][0] != "admin" || got["x-hasura-user-id"][0] != "5" || len(got) != 3 {
		t.Errorf("admin forwarded %v", got)
	}
	f.do(t, http.MethodPost, "/v1/graphql", http.Header{"X-Hasura-Access-Key": {pxAdmin}, "X-Hasura-Role": {"user"}}, "{}")
	got = hasuraHeaders(f.up.last(t))
	if got["x-hasura-role"][0] != "user" || got["x-hasura-access-key"] != nil || got["x-hasura-admin-secret"][0] != pxAdmin {
		t.Errorf("access-key admin forwarded %v", got)
	}
}

// TestUpstreamFailures: 502 when Hasura is unreachable, 504 when it is too
// slow, both in the endpoint's error shape with code unexpected.
func TestUpstreamFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		_ = ln.Close()
		f := newFixture(t, func(_ *auth.Config, o *Options) { o.Upstream.URL = dead })
		resp := f.do(t, http.MethodPost, "/v1/graphql", http.Header{"Authorization": {"Bearer " + f.token(goodClaims())}}, "{}")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 502 || !jsonEqual(t, body, []byte(`{"errors":[{"message":"Hasura is unreachable","extensions":{"path":"$","code":"unexpected"}}]}`)) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
		if v := counterValue(t, f.reg, metrics.Namespace+"_upstream_errors_total", map[string]string{"kind": "unreachable"}); v != 1 {
			t.Errorf("upstream_errors_total{unreachable} = %v", v)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := newFixture(t, func(_ *auth.Config, o *Options) { o.Upstream.ResponseHeaderTimeout = 100 * time.Millisecond })
		f.up.SetMode(fake.Hang)
		resp := f.do(t, http.MethodPost, "/api/rest/slow", http.Header{"Authorization": {"Bearer " + f.token(goodClaims())}}, "{}")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 504 || !jsonEqual(t, body, []byte(`{"error":"Hasura did not answer in time","path":"$","code":"unexpected"}`)) {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, func(_ *auth.Config, o *Options) { o.MaxBodyBytes = 2048 })
	h := http.Header{"Authorization": {"Bearer " + f.token(goodClaims())}}
	resp := f.do(t, http.MethodPost, "/v1/graphql", h, strings.Repeat("x", 4096))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(body), "payload-too-large") {
		t.Errorf("content-length: %d %s", resp.StatusCode, body)
	}
	// Chunked: no Content-Length, cut off while streaming.
	req, _ := http.NewRequest(http.MethodPost, f.px.URL+"/v1/graphql", io.MultiReader(strings.NewReader(strings.Repeat("y", 8192))))
	req.ContentLength = -1
	req.Header.Set("Authorization", h.Get("Authorization"))
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if resp2.StatusCode != 413 {
		t.Errorf("chunked: %d", resp2.StatusCode)
	}
}

// TestGuard: the transport refuses anything carrying the admin secret
// without exactly the role the proxy chose, whatever produced it.
func TestGuard(t *testing.T) {
	sess := &auth.Session{Result: auth.ResultAllowed, Role: "user"}
	tests := []struct {
		name    string
		header  http.Header
		session *auth.Session
		ok      bool
	}{
		{"no secret, no session", http.Header{}, nil, true},
		{"secret and the session role", http.Header{"X-Hasura-Admin-Secret": {"s"}, "X-Hasura-Role": {"user"}}, sess, true},
		{"secret without session", http.Header{"X-Hasura-Admin-Secret": {"s"}, "X-Hasura-Role": {"user"}}, nil, false},
		{"secret without role", http.Header{"X-Hasura-Admin-Secret": {"s"}}, sess, false},
		{"secret with empty role", http.Header{"X-Hasura-Admin-Secret": {"s"}, "X-Hasura-Role": {""}}, sess, false},
		{"secret with two roles", http.Header{"X-Hasura-Admin-Secret": {"s"}, "X-Hasura-Role": {"user", "admin"}}, sess, false},
		{"secret with another role", http.Header{"X-Hasura-Admin-Secret": {"s"}, "X-Hasura-Role": {"admin"}}, sess, false},
		{"stray lower-case role", http.Header{"X-Hasura-Admin-Secret": {"s"}, "X-Hasura-Role": {"user"}, "x-hasura-role": {"admin"}}, sess, false},
		{"stray lower-case secret", http.Header{"x-hasura-admin-secret": {"s"}}, nil, false},
		{"access key", http.Header{"X-Hasura-Access-Key": {"s"}}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			g := &guard{next: roundTripFunc(func(*http.Request) (*http.Response, error) {
				called = true
				return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
			})}
			req := httptest.NewRequest(http.MethodPost, "http://hasura/v1/graphql", nil)
			req.Header = tt.header
			if tt.session != nil {
				req = req.WithContext(context.WithValue(req.Context(), exchangeKey{}, &exchange{session: tt.session}))
			}
			_, err := g.RoundTrip(req)
			if tt.ok != (err == nil) || tt.ok != called {
				t.Errorf("err %v called %v; want ok=%v", err, called, tt.ok)
			}
			if err != nil && !errors.Is(err, errGuard) {
				t.Errorf("error %v is not errGuard", err)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRequestID(t *testing.T) {
	for _, in := range []string{"abc-123", "a.b_c:d", strings.Repeat("a", 128)} {
		if got := requestID(in); got != in {
			t.Errorf("requestID(%q) = %q", in, got)
		}
	}
	for _, in := range []string{"", "has space", "new\nline", strings.Repeat("a", 129), "<script>"} {
		got := requestID(in)
		if got == in || len(got) != 32 {
			t.Errorf("requestID(%q) = %q; want a fresh id", in, got)
		}
	}
	if a, b := requestID(""), requestID(""); a == b {
		t.Error("ids repeat")
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.URL = "http://x:1/?q=1"
	c.DialTimeout = 0
	err := c.Validate()
	for _, want := range []string{"upstream.url: must not carry a query", "upstream.admin_secret: required", "upstream.dial_timeout: must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v missing %q", err, want)
		}
	}
	s := DefaultServerConfig()
	s.WebhookPath = "/v1/graphql"
	s.MaxHeaderBytes = 10
	err = s.Validate()
	for _, want := range []string{"server.webhook_path: must not shadow a Hasura path", "server.max_header_bytes"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v missing %q", err, want)
		}
	}
}

// TestMalformedBody: a broken chunked body is answered 400, not passed on
// as a Hasura failure or an empty 200.
func TestMalformedBody(t *testing.T) {
	f := newFixture(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.px.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "POST /v1/graphql HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer " + f.token(goodClaims()) +
		"\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\nzz-not-hex\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "the request body could not be read") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}
