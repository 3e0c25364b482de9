package proxy

import (
	"bytes"
	"encoding/json"
	"io"
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
	whKey         = "webhook-test-hs256-key-0123456789abcdef"
	whAdminSecret = "webhook-test-admin-secret"
	whPath        = "/auth-hook"
	whIssuer      = "https://clerk.example.test"
	whAZP         = "https://app.example.test"
	// hasuraUA is what Hasura puts in User-Agent when it calls a webhook.
	hasuraUA = "hasura-graphql-engine/v2.48.5"
)

var whNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// webhookFixture is the proxy with webhook mode on, in front of an upstream
// that must never be called by the webhook.
type webhookFixture struct {
	srv      *httptest.Server
	reg      *prometheus.Registry
	upstream *fake.Hasura
}

func newWebhookFixture(t *testing.T, anonRole string) *webhookFixture {
	t.Helper()
	up := fake.StartHasura(t, fake.RecordHealthz(), fake.WithResponder(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusTeapot)
		return true
	}))

	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	cfg := auth.DefaultConfig()
	cfg.JWTSecret = &auth.JWTSecret{Type: "HS256", Key: auth.Secret(whKey), Issuer: whIssuer}
	cfg.AuthorizedParties = []string{whAZP}
	cfg.UnauthorizedRole = anonRole
	now := func() time.Time { return whNow }
	a, err := auth.New(auth.Options{Config: cfg, AdminSecret: whAdminSecret, Logger: log.Named("auth"), Metrics: m, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	upCfg := DefaultConfig()
	upCfg.URL = up.URL
	upCfg.AdminSecret = whAdminSecret
	h, err := New(Options{
		Upstream:     upCfg,
		MaxBodyBytes: 64 << 10,
		ErrorStatus:  "hasura",
		Auth:         a,
		Logger:       log.Named("proxy"),
		Metrics:      m,
		WebhookPath:  whPath,
		Now:          now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &webhookFixture{srv: srv, reg: reg, upstream: up}
}

// whToken signs a Clerk-shaped HS256 token issued at whNow; edit changes
// the claims before signing.
func whToken(t *testing.T, edit func(c jwt.MapClaims, ns map[string]any)) string {
	t.Helper()
	ns := map[string]any{
		"x-hasura-user-id":       "user_42",
		"x-hasura-org-id":        "org_7",
		"x-hasura-default-role":  "user",
		"x-hasura-allowed-roles": []string{"user", "editor"},
	}
	c := jwt.MapClaims{
		"iss":                       whIssuer,
		"sub":                       "user_42",
		"azp":                       whAZP,
		"iat":                       whNow.Unix(),
		"nbf":                       whNow.Unix() - 5,
		"exp":                       whNow.Add(time.Hour).Unix(),
		auth.DefaultClaimsNamespace: ns,
	}
	if edit != nil {
		edit(c, ns)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(whKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hasuraGET builds the webhook call of HASURA_GRAPHQL_AUTH_HOOK_MODE=GET:
// the client's headers, minus the ones Hasura drops, plus Hasura's own
// Content-Type and User-Agent.
func hasuraGET(t *testing.T, url string, client map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range client {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", hasuraUA)
	return req
}

// hasuraPOST builds the webhook call of HASURA_GRAPHQL_AUTH_HOOK_MODE=POST:
// every client header in "headers", and the GraphQL request (null for a
// WebSocket connection_init) in "request".
func hasuraPOST(t *testing.T, url string, client map[string]string, request string) *http.Request {
	t.Helper()
	hb, err := json.Marshal(client)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"headers":` + string(hb) + `,"request":` + request + `}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", hasuraUA)
	return req
}

// graphQLRequest is the "request" Hasura sends for an HTTP GraphQL call.
const graphQLRequest = `{"query":"query UserQuery($a: Int) { users(where: {id: {_eq: $a}}) { id } }","variables":{"a":1},"operationName":"UserQuery"}`

// clientHeaders are the headers of a browser's GraphQL call, as Hasura
// received them; extra adds or overrides some.
func clientHeaders(extra map[string]string) map[string]string {
	h := map[string]string{
		"Host":            "hasura.example.test",
		"User-Agent":      "Mozilla/5.0",
		"Accept":          "*/*",
		"Accept-Encoding": "gzip, deflate, br",
		"Content-Type":    "application/json",
		"Content-Length":  "121",
		"Origin":          whAZP,
		"Referer":         whAZP + "/",
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func TestWebhook(t *testing.T) {
	expires := whNow.Add(time.Hour).Format(http.TimeFormat) // "Wed, 02 Jan 2030 04:04:05 GMT"
	user := map[string]string{
		"X-Hasura-Role":    "user",
		"X-Hasura-User-Id": "user_42",
		"X-Hasura-Org-Id":  "org_7",
		"Expires":          expires,
		"Cache-Control":    "max-age=3600",
	}
	editor := map[string]string{}
	for k, v := range user {
		editor[k] = v
	}
	editor["X-Hasura-Role"] = "editor"

	good := whToken(t, nil)
	expired := whToken(t, func(c jwt.MapClaims, _ map[string]any) { c["exp"] = whNow.Add(-time.Minute).Unix() })
	badAZP := whToken(t, func(c jwt.MapClaims, _ map[string]any) { c["azp"] = "https://evil.example.test" })
	shortLived := whToken(t, func(c jwt.MapClaims, _ map[string]any) { c["exp"] = whNow.Add(59*time.Second + 0).Unix() })

	type want struct {
		status int
		body   map[string]string // the 200 session object
		code   string            // the refusal's Hasura code
		msg    string            // the refusal's Hasura message
		result string            // webhook_requests_total{result}
	}
	tests := []struct {
		name string
		anon string
		req  func(t *testing.T, url string) *http.Request
		want want
	}{
		{
			name: "GET: default role",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + good})
			},
			want: want{status: 200, body: user, result: metrics.WebhookAllowed},
		},
		{
			name: "GET: x-hasura-role selects an allowed role",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + good, "X-Hasura-Role": "editor"})
			},
			want: want{status: 200, body: editor, result: metrics.WebhookAllowed},
		},
		{
			name: "GET: client x-hasura-* headers are not session variables",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + good, "X-Hasura-User-Id": "someone-else", "X-Hasura-Org-Id": "org_1"})
			},
			want: want{status: 200, body: user, result: metrics.WebhookAllowed},
		},
		{
			name: "GET: expiry in seconds left, rounded down",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + shortLived})
			},
			want: want{status: 200, body: map[string]string{
				"X-Hasura-Role": "user", "X-Hasura-User-Id": "user_42", "X-Hasura-Org-Id": "org_7",
				"Expires": whNow.Add(59 * time.Second).Format(http.TimeFormat), "Cache-Control": "max-age=59",
			}, result: metrics.WebhookAllowed},
		},
		{
			name: "GET: role not allowed",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + good, "X-Hasura-Role": "admin"})
			},
			want: want{status: 401, code: auth.CodeAccessDenied, msg: "Your requested role is not in allowed roles", result: metrics.WebhookDenied},
		},
		{
			name: "GET: expired",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + expired})
			},
			want: want{status: 401, code: auth.CodeInvalidJWT, msg: "Could not verify JWT: JWTExpired", result: metrics.WebhookDenied},
		},
		{
			name: "GET: azp not authorized",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + badAZP})
			},
			want: want{status: 401, code: auth.CodeInvalidJWT, msg: auth.ErrBadAZP.Message, result: metrics.WebhookDenied},
		},
		{
			name: "GET: no token, no unauthorized role",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, nil)
			},
			want: want{status: 401, code: auth.CodeInvalidHeaders, msg: auth.ErrMissingToken.Message, result: metrics.WebhookDenied},
		},
		{
			name: "GET: no token, unauthorized role",
			anon: "anonymous",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"X-Hasura-User-Id": "forged"})
			},
			want: want{status: 200, body: map[string]string{"X-Hasura-Role": "anonymous"}, result: metrics.WebhookAllowed},
		},
		{
			name: "GET: the right admin secret is refused, never admin",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"X-Hasura-Admin-Secret": whAdminSecret, "X-Hasura-Role": "admin"})
			},
			want: want{status: 401, code: auth.CodeAccessDenied, msg: errWebhookAdmin.Message, result: metrics.WebhookDenied},
		},
		{
			name: "GET: an access key with a valid token is refused",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraGET(t, url, map[string]string{"Authorization": "Bearer " + good, "X-Hasura-Access-Key": "guess"})
			},
			want: want{status: 401, code: auth.CodeAccessDenied, msg: errWebhookAdmin.Message, result: metrics.WebhookDenied},
		},
		{
			name: "POST: GraphQL request",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraPOST(t, url, clientHeaders(map[string]string{"Authorization": "Bearer " + good}), graphQLRequest)
			},
			want: want{status: 200, body: user, result: metrics.WebhookAllowed},
		},
		{
			name: "POST: lower-case header names, role selection",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraPOST(t, url, clientHeaders(map[string]string{"authorization": "Bearer " + good, "x-hasura-role": "editor"}), graphQLRequest)
			},
			want: want{status: 200, body: editor, result: metrics.WebhookAllowed},
		},
		{
			name: "POST: WebSocket connection_init (request null)",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraPOST(t, url, map[string]string{
					"Host": "hasura.example.test", "Upgrade": "websocket", "Connection": "Upgrade",
					"Sec-WebSocket-Protocol": "graphql-transport-ws", "Sec-WebSocket-Version": "13",
					"Authorization": "Bearer " + good,
				}, "null")
			},
			want: want{status: 200, body: user, result: metrics.WebhookAllowed},
		},
		{
			name: "POST: batched GraphQL request",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraPOST(t, url, clientHeaders(map[string]string{"Authorization": "Bearer " + good}), "["+graphQLRequest+","+graphQLRequest+"]")
			},
			want: want{status: 200, body: user, result: metrics.WebhookAllowed},
		},
		{
			name: "POST: malformed Authorization",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraPOST(t, url, clientHeaders(map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}), graphQLRequest)
			},
			want: want{status: 401, code: auth.CodeInvalidHeaders, msg: "Malformed Authorization header", result: metrics.WebhookDenied},
		},
		{
			name: "POST: admin secret in the forwarded headers",
			req: func(t *testing.T, url string) *http.Request {
				return hasuraPOST(t, url, clientHeaders(map[string]string{"x-hasura-admin-secret": whAdminSecret}), graphQLRequest)
			},
			want: want{status: 401, code: auth.CodeAccessDenied, msg: errWebhookAdmin.Message, result: metrics.WebhookDenied},
		},
		{
			name: "POST: body is not Hasura's",
			req: func(t *testing.T, url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(graphQLRequest))
				return req
			},
			want: want{status: 400, code: "bad-request", msg: `POST body has no "headers" object`, result: metrics.WebhookError},
		},
		{
			name: "POST: a header value that is not a string",
			req: func(t *testing.T, url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"headers":{"Authorization":["Bearer x"]},"request":null}`))
				return req
			},
			want: want{status: 400, code: "bad-request", msg: `POST body: header "Authorization" is not a string`, result: metrics.WebhookError},
		},
		{
			name: "POST: trailing data",
			req: func(t *testing.T, url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"headers":{}} {}`))
				return req
			},
			want: want{status: 400, code: "bad-request", msg: "POST body must hold exactly one JSON object", result: metrics.WebhookError},
		},
		{
			name: "PUT is not a webhook mode",
			req: func(t *testing.T, url string) *http.Request {
				req, _ := http.NewRequest(http.MethodPut, url, nil)
				return req
			},
			want: want{status: 405, code: "bad-request", msg: "the auth webhook answers GET and POST (HASURA_GRAPHQL_AUTH_HOOK_MODE)", result: metrics.WebhookError},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWebhookFixture(t, tt.anon)
			resp, err := f.srv.Client().Do(tt.req(t, f.srv.URL+whPath))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.StatusCode; got != tt.want.status {
				t.Fatalf("status: got %d, want %d (body %s)", got, tt.want.status, raw)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" && resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("HTTP Cache-Control: got %q, want no-store", got)
			}
			if tt.want.body != nil {
				// Hasura decodes the body as an object of strings: anything
				// else is a 500 there.
				var got map[string]string
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatalf("body is not an object of strings: %v: %s", err, raw)
				}
				if !equalStringMaps(got, tt.want.body) {
					t.Errorf("session:\n got %v\nwant %v", got, tt.want.body)
				}
			} else {
				var got plainError
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatalf("refusal body: %v: %s", err, raw)
				}
				if got.Code != tt.want.code || got.Error != tt.want.msg || got.Path != "$" {
					t.Errorf("refusal: got %+v, want code %q message %q", got, tt.want.code, tt.want.msg)
				}
			}
			if got := webhookCount(t, f.reg, tt.want.result); got != 1 {
				t.Errorf("webhook_requests_total{result=%q}: got %v, want 1", tt.want.result, got)
			}
			if got := requestCount(t, f.reg, metrics.EndpointWebhook); got != 1 {
				t.Errorf("requests_total{endpoint=webhook}: got %v, want 1", got)
			}
			if n := f.upstream.Count(); n != 0 {
				t.Errorf("the webhook forwarded %d requests to Hasura", n)
			}
		})
	}
}

// TestWebhookOnlyItsPath checks that the webhook answers its exact path
// only, and that other paths are still proxied (here: to the allow-list,
// which refuses them as Hasura refuses a path it has no route for, 404;
// with "/" allowed, the one clean variant reaches the upstream).
func TestWebhookOnlyItsPath(t *testing.T) {
	f := newWebhookFixture(t, "")
	good := whToken(t, nil)
	for _, path := range []string{whPath + "/", whPath + "x", "/auth%2Dhook"} {
		req := hasuraGET(t, f.srv.URL+path, map[string]string{"Authorization": "Bearer " + good})
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: got %d, want the allow-list's 404", path, resp.StatusCode)
		}
	}
	if got := webhookCount(t, f.reg, metrics.WebhookAllowed); got != 0 {
		t.Errorf("webhook answered %v calls on other paths", got)
	}
}

// TestWebhookBodyLimit checks that POST bodies are bounded by
// MaxBodyBytes.
func TestWebhookBodyLimit(t *testing.T) {
	f := newWebhookFixture(t, "")
	big := `{"query":"` + strings.Repeat("a", 70<<10) + `"}`
	for _, chunked := range []bool{false, true} {
		req := hasuraPOST(t, f.srv.URL+whPath, map[string]string{"Authorization": "Bearer x"}, big)
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(bytes.NewReader([]byte(`{"headers":{},"request":` + big + `}`)))
		}
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked=%v: got %d, want 413", chunked, resp.StatusCode)
		}
	}
	if got := webhookCount(t, f.reg, metrics.WebhookError); got != 2 {
		t.Errorf("webhook_requests_total{result=error}: got %v, want 2", got)
	}
}

func equalStringMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// counterValue returns the value of the counter family name with the given
// label, or 0 when absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func webhookCount(t *testing.T, reg *prometheus.Registry, result string) float64 {
	return counterValue(t, reg, metrics.Namespace+"_webhook_requests_total", map[string]string{"result": result})
}

func requestCount(t *testing.T, reg *prometheus.Registry, endpoint string) float64 {
	return counterValue(t, reg, metrics.Namespace+"_requests_total", map[string]string{"endpoint": endpoint})
}
