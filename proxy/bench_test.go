package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

const (
	benchIssuer = "https://bench.clerk.accounts.dev"
	benchAdmin  = "bench-admin-secret-0123456789"
	benchQuery  = `{"query":"query Orders($limit: Int!) { orders(limit: $limit, order_by: {created_at: desc}) { id total status } }","variables":{"limit":10},"operationName":"Orders"}`
	benchAnswer = `{"data":{"orders":[{"id":1,"total":"9.99","status":"paid"}]}}`
)

// benchUpstream is an in-memory Hasura: it drains the request body and
// answers benchAnswer, so a benchmark measures the proxy alone.
type benchUpstream struct{}

func (benchUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body:          io.NopCloser(strings.NewReader(benchAnswer)),
		ContentLength: int64(len(benchAnswer)),
		Request:       r,
	}, nil
}

// benchWriter is a reusable ResponseWriter that keeps only the status and
// the body length, so allocations reported are the handler's own.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}
func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// benchHandler builds a Handler over an RS256 static key, with the token
// cache of cacheSize (0: off), logging at warn (no access log) and upstream
// transport tr (nil: the tuned default).
func benchHandler(tb testing.TB, cacheSize int, upstreamURL string, tr http.RoundTripper) (*Handler, func() string) {
	return benchHandlerLog(tb, cacheSize, upstreamURL, tr, zap.NewNop())
}

// benchHandlerLog is benchHandler with the proxy's logger.
func benchHandlerLog(tb testing.TB, cacheSize int, upstreamURL string, tr http.RoundTripper, plog *zap.Logger) (*Handler, func() string) {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	ac := auth.DefaultConfig()
	ac.JWTSecret = &auth.JWTSecret{Type: "RS256", Key: auth.Secret(pemKey), Issuer: benchIssuer, AllowedSkew: 5}
	ac.AuthorizedParties = []string{"https://app.example.com"}
	ac.TokenCache.Size = cacheSize
	m := metrics.New(prometheus.NewRegistry())
	log := zap.NewNop()
	a, err := auth.New(auth.Options{Config: ac, AdminSecret: benchAdmin, Logger: log, Metrics: m})
	if err != nil {
		tb.Fatal(err)
	}
	uc := DefaultConfig()
	uc.URL = upstreamURL
	uc.AdminSecret = benchAdmin
	h, err := New(Options{Upstream: uc, MaxBodyBytes: 1 << 20, ErrorStatus: "hasura", Auth: a, Logger: plog,
		Metrics: m, Transport: tr})
	if err != nil {
		tb.Fatal(err)
	}
	mint := func() string {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"azp": "https://app.example.com", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"iss": benchIssuer, "nbf": now.Add(-5 * time.Second).Unix(), "sid": "sess_2bench", "sub": "user_2bench",
			"v": 2, "fva": []int{0, -1},
			auth.DefaultClaimsNamespace: map[string]any{
				"x-hasura-user-id":       "user_2bench",
				"x-hasura-default-role":  "user",
				"x-hasura-allowed-roles": []string{"user", "editor"},
				"x-hasura-org-id":        "org_42",
			},
		})
		tok.Header["kid"] = "ins_2bench"
		raw, err := tok.SignedString(priv)
		if err != nil {
			tb.Fatal(err)
		}
		return raw
	}
	return h, mint
}

// benchRequest is a browser-like GraphQL POST through the proxy.
func benchRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/graphql", strings.NewReader(benchQuery))
	r.Header = http.Header{
		"Authorization":   {"Bearer " + tok},
		"Content-Type":    {"application/json"},
		"Accept":          {"application/graphql-response+json, application/json"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) bench"},
		"Origin":          {"https://app.example.com"},
	}
	r.ContentLength = int64(len(benchQuery))
	return r
}

// serveBench runs the handler b.N times with a fresh body each time and
// checks the answer.
func serveBench(b *testing.B, h *Handler, tok string) {
	b.Helper()
	w := &benchWriter{h: make(http.Header)}
	r := benchRequest(tok)
	body := strings.NewReader(benchQuery)
	rc := io.NopCloser(body)
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(benchQuery)
		r.Body = rc
		w.reset()
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK || w.n != len(benchAnswer) {
			b.Fatalf("answer: status %d, %d bytes", w.status, w.n)
		}
	}
}

// BenchmarkHandlerCached is the whole handler for a reused token: cache
// hit, header rewrite, guard, ReverseProxy, in-memory upstream.
func BenchmarkHandlerCached(b *testing.B) {
	h, mint := benchHandler(b, 10000, "http://hasura.invalid:8080", benchUpstream{})
	serveBench(b, h, mint())
}

// BenchmarkHandlerCachedAccessLog is BenchmarkHandlerCached with the access
// log on (level info, JSON, to io.Discard): what one log line costs.
func BenchmarkHandlerCachedAccessLog(b *testing.B) {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel)
	h, mint := benchHandlerLog(b, 10000, "http://hasura.invalid:8080", benchUpstream{}, zap.New(core))
	serveBench(b, h, mint())
}

// BenchmarkHandlerCold is the whole handler with a full RS256 verification
// on every request (token cache off).
func BenchmarkHandlerCold(b *testing.B) {
	h, mint := benchHandler(b, 0, "http://hasura.invalid:8080", benchUpstream{})
	serveBench(b, h, mint())
}

// BenchmarkHandlerLoopback forwards over a real loopback connection with
// the tuned transport to internal/fake's Hasura (keeping no records), in
// parallel.
func BenchmarkHandlerLoopback(b *testing.B) {
	up := fake.StartHasura(b, fake.WithBody(benchAnswer), fake.WithRecordLimit(0))
	h, mint := benchHandler(b, 10000, up.URL, nil)
	tok := mint()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: make(http.Header)}
		r := benchRequest(tok)
		body := bytes.NewReader([]byte(benchQuery))
		rc := io.NopCloser(body)
		for pb.Next() {
			body.Reset([]byte(benchQuery))
			r.Body = rc
			w.reset()
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK || w.n != len(benchAnswer) {
				b.Errorf("answer: status %d, %d bytes", w.status, w.n)
				return
			}
		}
	})
}

// BenchmarkSessionHeaders is the header work of one forwarded request:
// strip every x-hasura-* header, then set the secret, role and variables.
func BenchmarkSessionHeaders(b *testing.B) {
	s := &auth.Session{Result: auth.ResultAllowed, Role: "user", Vars: []auth.Var{
		{Name: "x-hasura-org-id", Value: "org_42"}, {Name: "x-hasura-user-id", Value: "user_2bench"}}}
	secret := []string{benchAdmin}
	in := benchRequest("x.y.z").Header
	in["X-Hasura-Role"] = []string{"admin"}
	out := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		clear(out)
		for k, v := range in {
			out[k] = v
		}
		StripHasuraHeaders(out)
		SetSessionHeaders(out, secret, s)
	}
}

// BenchmarkRequestID is a fresh request id (the client sent none).
func BenchmarkRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if len(requestID("")) != 32 {
			b.Fatal("bad id")
		}
	}
}
