package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// outcome is one request through a running proxy and the series it must
// move.
type outcome struct {
	name string
	path string // default /v1/graphql
	// header sets the request's credentials.
	header     func(t *testing.T, h http.Header)
	chunked    int // a chunked body of this many bytes
	length     int // a body of this many bytes with Content-Length
	wantStatus int
	// want is the exact delta of the requests_total, auth_decisions_total
	// and upstream_errors_total series (no other series of those families
	// may move), plus any other samples that must move by at least the value.
	want map[string]float64
}

// exactFamilies are the families whose every moved series a case must name.
var exactFamilies = []string{"requests_total{", "auth_decisions_total{", "upstream_errors_total{"}

func isExact(k string) bool {
	for _, f := range exactFamilies {
		if strings.HasPrefix(k, f) {
			return true
		}
	}
	return false
}

func bearer(tok string) func(*testing.T, http.Header) {
	return func(_ *testing.T, h http.Header) { h.Set("Authorization", "Bearer "+tok) }
}

// runOutcome sends o through p and checks the metrics it moved.
func runOutcome(t *testing.T, p *runningProxy, o outcome) {
	t.Helper()
	before := samples(t, p.ops)
	path := o.path
	if path == "" {
		path = "/v1/graphql"
	}
	var body io.Reader = strings.NewReader(`{"query":"{ a }"}`)
	switch {
	case o.chunked > 0:
		body = io.MultiReader(strings.NewReader(strings.Repeat("x", o.chunked)))
	case o.length > 0:
		body = strings.NewReader(strings.Repeat("x", o.length))
	}
	req, err := http.NewRequest(http.MethodPost, p.client+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if o.header != nil {
		o.header(t, req.Header)
	}
	resp, got := do(t, req)
	if resp.StatusCode != o.wantStatus {
		t.Errorf("status = %d; want %d (body %s)", resp.StatusCode, o.wantStatus, got)
	}
	d := waitDelta(t, p.ops, before, o.want)
	for k, want := range o.want {
		if d[k] < want || (isExact(k) && d[k] != want) {
			t.Errorf("%s moved by %v; want %v", k, d[k], want)
		}
	}
	var extra []string
	for k, v := range d {
		if _, ok := o.want[k]; !ok && isExact(k) {
			extra = append(extra, fmt.Sprintf("%s %+v", k, v))
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("unexpected series moved: %v", extra)
	}
}

// TestMetricsPerOutcome sends a request of every outcome through a running
// proxy and checks that exactly the right series move.
func TestMetricsPerOutcome(t *testing.T) {
	key := newSigningKey(t, "kid-1")
	jwks := newFakeJWKS(t, false, key)
	hsKey := randomHex(t, 24)
	admin := "admin-" + randomHex(t, 8)

	h := newFakeHasura(t)
	p := startProxy(t, testConfig{UpstreamURL: h.URL, AdminSecret: admin, JWKSURL: jwks.JWKSURL(), HSKey: hsKey,
		AnonRole: "anonymous", MaxBodyBytes: 4096})
	p.waitKeys(t, "clerk")

	// After the first fetch, the issuer's JWKS series are set.
	s := samples(t, p.ops)
	for k, want := range map[string]float64{
		"jwks_keys{issuer=clerk}":                                     1,
		"jwks_stale{issuer=clerk}":                                    0,
		"jwks_refresh_total{issuer=clerk,result=success}":             1,
		"jwks_refresh_total{issuer=clerk,result=error}":               0,
		"jwks_refresh_total{issuer=clerk,result=unknown_kid_refresh}": 0,
	} {
		if s[k] != want {
			t.Errorf("%s = %v; want %v", k, s[k], want)
		}
	}
	if ts := s["jwks_last_success_timestamp_seconds{issuer=clerk}"]; time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("jwks_last_success_timestamp_seconds = %v; want about now", ts)
	}
	if _, ok := s["jwks_keys{issuer=hs}"]; ok {
		t.Error("a static key has jwks series")
	}

	rs := func(mod func(jwt.MapClaims)) func(*testing.T, http.Header) {
		return func(t *testing.T, h http.Header) {
			c := claimsFor(rsIssuer)
			if mod != nil {
				mod(c)
			}
			h.Set("Authorization", "Bearer "+signRS(t, key, c))
		}
	}
	verified := map[string]float64{"token_verify_duration_seconds{}": 1}
	with := func(a, b map[string]float64) map[string]float64 {
		m := map[string]float64{}
		for k, v := range a {
			m[k] = v
		}
		for k, v := range b {
			m[k] = v
		}
		return m
	}
	graphql200 := map[string]float64{"requests_total{code=200,endpoint=graphql}": 1, "request_duration_seconds{endpoint=graphql}": 1}
	tests := []outcome{
		{name: "allowed, jwks key", header: rs(nil), wantStatus: 200,
			want: with(with(graphql200, verified), map[string]float64{"auth_decisions_total{reason=ok,result=allowed}": 1})},
		{name: "allowed, HS key", wantStatus: 200,
			header: func(t *testing.T, h http.Header) {
				h.Set("Authorization", "Bearer "+signHS(t, hsKey, claimsFor(hsIssuer)))
			},
			want: with(with(graphql200, verified), map[string]float64{"auth_decisions_total{reason=ok,result=allowed}": 1})},
		{name: "anonymous", wantStatus: 200,
			want: with(graphql200, map[string]float64{"auth_decisions_total{reason=ok,result=anonymous}": 1})},
		{name: "admin", wantStatus: 200, header: func(_ *testing.T, h http.Header) { h.Set("X-Hasura-Admin-Secret", admin) },
			want: with(graphql200, map[string]float64{"auth_decisions_total{reason=ok,result=admin}": 1})},
		{name: "denied bad admin secret on metadata", path: "/v1/metadata", wantStatus: 401,
			header: func(_ *testing.T, h http.Header) { h.Set("X-Hasura-Admin-Secret", admin+"x") },
			want: map[string]float64{"requests_total{code=401,endpoint=metadata}": 1, "request_duration_seconds{endpoint=metadata}": 1,
				"auth_decisions_total{reason=bad_admin_secret,result=denied}": 1}},
		{name: "denied expired", wantStatus: 200, header: rs(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }),
			want: with(with(graphql200, verified), map[string]float64{"auth_decisions_total{reason=expired,result=denied}": 1})},
		{name: "denied bad signature", wantStatus: 200,
			header: func(t *testing.T, h http.Header) {
				h.Set("Authorization", "Bearer "+signRS(t, newSigningKey(t, key.KID), claimsFor(rsIssuer)))
			},
			want: with(with(graphql200, verified), map[string]float64{"auth_decisions_total{reason=bad_signature,result=denied}": 1})},
		{name: "denied unknown kid, after one refresh", wantStatus: 200,
			header: func(t *testing.T, h http.Header) {
				h.Set("Authorization", "Bearer "+signRS(t, fake.Key{KID: "rotated", Private: key.Private}, claimsFor(rsIssuer)))
			},
			want: with(with(graphql200, verified), map[string]float64{"auth_decisions_total{reason=unknown_kid,result=denied}": 1,
				"jwks_refresh_total{issuer=clerk,result=unknown_kid_refresh}": 1, "jwks_refresh_total{issuer=clerk,result=success}": 1})},
		// Undecodable, so it has no iss and matches both secrets reading
		// Authorization: Hasura's answer is "Multiple JWTs found".
		{name: "denied undecodable, two secrets", wantStatus: 200, header: bearer("not-a-jwt"),
			want: with(graphql200, map[string]float64{"auth_decisions_total{reason=multiple,result=denied}": 1})},
		{name: "denied multiple", wantStatus: 200,
			header: func(t *testing.T, h http.Header) {
				tok := signRS(t, key, claimsFor(rsIssuer))
				h.Add("Authorization", "Bearer "+tok)
				h.Add("Authorization", "Bearer "+tok)
			},
			want: with(graphql200, map[string]float64{"auth_decisions_total{reason=multiple,result=denied}": 1})},
		{name: "denied bad issuer", wantStatus: 200, header: rs(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }),
			want: with(graphql200, map[string]float64{"auth_decisions_total{reason=bad_issuer,result=denied}": 1})},
		{name: "denied role not allowed", wantStatus: 200,
			header: func(t *testing.T, h http.Header) { rs(nil)(t, h); h.Set("X-Hasura-Role", "admin") },
			want:   with(with(graphql200, verified), map[string]float64{"auth_decisions_total{reason=role_not_allowed,result=denied}": 1})},
		{name: "denied claims without roles", wantStatus: 200,
			header: rs(func(c jwt.MapClaims) { c["https://hasura.io/jwt/claims"] = map[string]any{"x-hasura-user-id": "u"} }),
			want:   with(with(graphql200, verified), map[string]float64{"auth_decisions_total{reason=role_missing,result=denied}": 1})},
		{name: "body over the limit by content-length, before auth", length: 5000, wantStatus: 413, header: rs(nil),
			want: map[string]float64{"requests_total{code=413,endpoint=graphql}": 1, "request_duration_seconds{endpoint=graphql}": 1}},
		{name: "chunked body over the limit, after auth", chunked: 5000, wantStatus: 413, header: rs(nil),
			want: with(verified, map[string]float64{"requests_total{code=413,endpoint=graphql}": 1, "request_duration_seconds{endpoint=graphql}": 1,
				"auth_decisions_total{reason=ok,result=allowed}": 1})},
		// Only GET and HEAD /healthz pass without authentication.
		{name: "POST /healthz is authenticated", path: "/healthz", wantStatus: 200,
			want: map[string]float64{"requests_total{code=200,endpoint=health}": 1, "request_duration_seconds{endpoint=health}": 1,
				"auth_decisions_total{reason=ok,result=anonymous}": 1}},
	}
	for _, o := range tests {
		t.Run(o.name, func(t *testing.T) { runOutcome(t, p, o) })
	}

	t.Run("GET /healthz passes without a decision", func(t *testing.T) {
		before := samples(t, p.ops)
		if status, _ := get(t, p.client+"/healthz"); status != 200 {
			t.Errorf("status = %d; want 200", status)
		}
		d := waitDelta(t, p.ops, before, map[string]float64{"requests_total{code=200,endpoint=health}": 1})
		for k := range d {
			if strings.HasPrefix(k, "auth_decisions_total{") {
				t.Errorf("%s moved for an unauthenticated path", k)
			}
		}
	})
}

func TestMetricsMissingToken(t *testing.T) {
	p, _, _ := hsProxy(t, testConfig{}) // no unauthorized role
	runOutcome(t, p, outcome{name: "missing", wantStatus: 200, want: map[string]float64{
		"requests_total{code=200,endpoint=graphql}": 1, "auth_decisions_total{reason=missing,result=denied}": 1}})
	runOutcome(t, p, outcome{name: "malformed", header: bearer("not-a-jwt"), wantStatus: 200, want: map[string]float64{
		"requests_total{code=200,endpoint=graphql}": 1, "auth_decisions_total{reason=malformed,result=denied}": 1}})
	runOutcome(t, p, outcome{name: "missing on a REST endpoint", path: "/api/rest/things", wantStatus: 400, want: map[string]float64{
		"requests_total{code=400,endpoint=rest}": 1, "auth_decisions_total{reason=missing,result=denied}": 1}})
	runOutcome(t, p, outcome{name: "metadata is outside the allow-list", path: "/v1/metadata", wantStatus: 404, want: map[string]float64{
		"requests_total{code=404,endpoint=metadata}": 1, "requests_not_allowed_total{reason=path}": 1}})
}

func TestMetricsUpstreamErrors(t *testing.T) {
	hsKey := randomHex(t, 24)
	token := signHS(t, hsKey, claimsFor(hsIssuer))

	t.Run("unreachable is 502", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		p := startProxy(t, testConfig{UpstreamURL: closed, AdminSecret: "admin-" + randomHex(t, 8), HSKey: hsKey})
		runOutcome(t, p, outcome{header: bearer(token), wantStatus: 502, want: map[string]float64{
			"requests_total{code=502,endpoint=graphql}":      1,
			"auth_decisions_total{reason=ok,result=allowed}": 1,
			"upstream_errors_total{kind=unreachable}":        1,
		}})
		if !strings.Contains(p.logs.String(), `"msg":"upstream unreachable"`) {
			t.Error("no upstream unreachable log line")
		}
	})
	t.Run("no answer in time is 504", func(t *testing.T) {
		h := newFakeHasura(t)
		p := startProxy(t, testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8), HSKey: hsKey,
			ResponseHeaderTimeout: "200ms"})
		runOutcome(t, p, outcome{path: "/v1/graphql?hang=1", header: bearer(token), wantStatus: 504, want: map[string]float64{
			"requests_total{code=504,endpoint=graphql}":      1,
			"auth_decisions_total{reason=ok,result=allowed}": 1,
			"upstream_errors_total{kind=timeout}":            1,
		}})
	})
}

// TestJWKSRefreshMetricsAndLogs follows one issuer through a failing and a
// recovering key endpoint: the series move and each state change is logged
// once, not once per request or per failed fetch.
func TestJWKSRefreshMetricsAndLogs(t *testing.T) {
	key := newSigningKey(t, "kid-1")
	jwks := newFakeJWKS(t, false, key)
	h := newFakeHasura(t)
	p := startProxy(t, testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8), JWKSURL: jwks.JWKSURL(),
		UnknownKIDRefreshInterval: "1ms"})
	p.waitKeys(t, "clerk")
	good := signRS(t, key, claimsFor(rsIssuer))
	unknown := signRS(t, fake.Key{KID: "unknown", Private: key.Private}, claimsFor(rsIssuer))
	count := func(msg string) int {
		n := 0
		for _, e := range p.logs.entries() {
			if e.str("msg") == msg {
				n++
			}
		}
		return n
	}

	jwks.SetAnswer(fake.JWKSError)
	// Each unknown-kid token triggers one refresh, which fails.
	for i := range 3 {
		runOutcome(t, p, outcome{name: "unknown kid while failing", header: bearer(unknown), wantStatus: 200, want: map[string]float64{
			"requests_total{code=200,endpoint=graphql}":                   1,
			"auth_decisions_total{reason=unknown_kid,result=denied}":      1,
			"jwks_refresh_total{issuer=clerk,result=unknown_kid_refresh}": 1,
			"jwks_refresh_total{issuer=clerk,result=error}":               1,
		}})
		if got := samples(t, p.ops)["jwks_stale{issuer=clerk}"]; got != 1 {
			t.Errorf("fetch %d: jwks_stale = %v; want 1", i, got)
		}
	}
	// The held keys are still served.
	runOutcome(t, p, outcome{name: "known kid while stale", header: bearer(good), wantStatus: 200, want: map[string]float64{
		"requests_total{code=200,endpoint=graphql}": 1, "auth_decisions_total{reason=ok,result=allowed}": 1}})
	if got := count("jwks refresh failed; serving the last good keys"); got != 1 {
		t.Errorf("refresh failure logged %d times over 3 failed fetches; want once", got)
	}
	if got := count("unknown kid; refreshing jwks"); got != 3 {
		t.Errorf("unknown-kid refresh logged %d times; want once per refresh (3)", got)
	}

	jwks.SetAnswer(fake.JWKSKeys)
	runOutcome(t, p, outcome{name: "unknown kid after recovery", header: bearer(unknown), wantStatus: 200, want: map[string]float64{
		"requests_total{code=200,endpoint=graphql}":                   1,
		"auth_decisions_total{reason=unknown_kid,result=denied}":      1,
		"jwks_refresh_total{issuer=clerk,result=unknown_kid_refresh}": 1,
		"jwks_refresh_total{issuer=clerk,result=success}":             1,
	}})
	s := samples(t, p.ops)
	if s["jwks_stale{issuer=clerk}"] != 0 || s["jwks_keys{issuer=clerk}"] != 1 {
		t.Errorf("after recovery: stale %v keys %v; want 0 and 1", s["jwks_stale{issuer=clerk}"], s["jwks_keys{issuer=clerk}"])
	}
	if got := count("jwks refresh recovered"); got != 1 {
		t.Errorf("recovery logged %d times; want once", got)
	}
	if got := count("jwks keys loaded"); got != 1 {
		t.Errorf("first load logged %d times; want once", got)
	}
}

func TestReadiness(t *testing.T) {
	key := newSigningKey(t, "kid-1")
	jwks := newFakeJWKS(t, true, key) // holds every fetch until ReleaseJWKS
	h := newFakeHasura(t)
	p := startProxy(t, testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8), JWKSURL: jwks.JWKSURL(), HSKey: randomHex(t, 24)})

	ready := func(t *testing.T) (int, string, float64) {
		t.Helper()
		status, body := get(t, p.ops+"/readyz")
		return status, body, samples(t, p.ops)["ready{}"]
	}
	// waitReady polls /readyz until its status is want: Hasura's answer is
	// cached for upstreamCheckTTL.
	waitReady := func(t *testing.T, want int) (string, float64) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for {
			status, body, g := ready(t)
			if status == want || time.Now().After(deadline) {
				if status != want {
					t.Fatalf("/readyz = %d %q; want %d", status, body, want)
				}
				return body, g
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	t.Run("before keys arrive", func(t *testing.T) {
		status, body, g := ready(t)
		if status != 503 || body != "not ready: jwt secret clerk: jwks clerk: no usable keys: no successful fetch yet\n" {
			t.Errorf("/readyz = %d %q; want 503 naming the clerk key source only", status, body)
		}
		if g != 0 {
			t.Errorf("ready gauge = %v; want 0", g)
		}
		if status, body := get(t, p.ops+"/healthz"); status != 200 || body != "ok\n" {
			t.Errorf("/healthz = %d %q; want 200 ok: alive even when not ready", status, body)
		}
	})
	t.Run("after keys arrive", func(t *testing.T) {
		jwks.ReleaseJWKS()
		p.waitKeys(t, "clerk")
		body, g := waitReady(t, 200)
		if body != "ready\n" || g != 1 {
			t.Errorf("/readyz body %q gauge %v; want ready and 1", body, g)
		}
	})
	t.Run("while Hasura is down", func(t *testing.T) {
		h.SetHealthy(false)
		body, g := waitReady(t, 503)
		if body != "not ready: hasura: /healthz answered 500\n" || g != 0 {
			t.Errorf("/readyz body %q gauge %v; want Hasura named and 0", body, g)
		}
	})
	t.Run("after Hasura is back", func(t *testing.T) {
		h.SetHealthy(true)
		if body, g := waitReady(t, 200); body != "ready\n" || g != 1 {
			t.Errorf("/readyz body %q gauge %v; want ready and 1", body, g)
		}
	})
}

// TestOpsEndpointsOnlyOnOpsPort: the client port relays /healthz to Hasura
// and authenticates everything else; /metrics and /readyz are never served
// there.
func TestOpsEndpointsOnlyOnOpsPort(t *testing.T) {
	p, h, _ := hsProxy(t, testConfig{})
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/healthz", 200, "OK"}, // Hasura's
		{"/readyz", 404, ""},    // outside upstream.allowed_paths
		{"/metrics", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := h.Count()
			status, body := get(t, p.client+tt.path)
			if status != tt.wantStatus {
				t.Errorf("client port %s = %d; want %d", tt.path, status, tt.wantStatus)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("client port %s body = %q; want Hasura's %q", tt.path, body, tt.wantBody)
			}
			if strings.Contains(body, "hasura_auth_proxy_") || strings.Contains(body, "ready") {
				t.Errorf("client port %s served an ops answer: %q", tt.path, body)
			}
			if h.Count() != before {
				t.Errorf("%s reached Hasura's recorded paths", tt.path)
			}
		})
	}
	if status, body := get(t, p.ops+"/metrics"); status != 200 || !strings.Contains(body, "hasura_auth_proxy_requests_total") {
		t.Errorf("ops /metrics = %d; want the metrics", status)
	}
	if status, _ := get(t, p.ops+"/v1/graphql"); status != 404 {
		t.Errorf("ops /v1/graphql = %d; want 404: the ops port proxies nothing", status)
	}
}

// TestNoSecretsInOutput runs requests of every outcome through a real
// server, then checks that no token (nor any of its parts), admin secret or
// HS key appears in the log, in a response body or header, or in the output
// of -check-config.
func TestNoSecretsInOutput(t *testing.T) {
	key := newSigningKey(t, "kid-1")
	jwks := newFakeJWKS(t, false, key)
	h := newFakeHasura(t)
	admin := "admin-" + randomHex(t, 12)
	hsKey := "hskey-" + randomHex(t, 20)
	wrongAdmin := "wrong-" + randomHex(t, 12)
	cfg := testConfig{UpstreamURL: h.URL, AdminSecret: admin, JWKSURL: jwks.JWKSURL(), HSKey: hsKey, MaxBodyBytes: 4096,
		ResponseHeaderTimeout: "300ms", LogLevel: "debug"}
	p := startProxy(t, cfg)
	p.waitKeys(t, "clerk")

	var tokens []string
	mint := func(tok string) string { tokens = append(tokens, tok); return tok }
	expired := claimsFor(rsIssuer)
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	noRoles := claimsFor(hsIssuer)
	noRoles["https://hasura.io/jwt/claims"] = map[string]any{"x-hasura-user-id": "u"}
	badIss := claimsFor(rsIssuer)
	badIss["iss"] = "https://evil.test"
	type req struct {
		path   string
		header http.Header
		body   string
	}
	auth := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	reqs := []req{
		{path: "/v1/graphql", header: auth(mint(signRS(t, key, claimsFor(rsIssuer))))},
		{path: "/v1/graphql", header: auth(mint(signHS(t, hsKey, claimsFor(hsIssuer))))},
		{path: "/v1/metadata", header: auth(mint(signRS(t, key, expired)))},
		{path: "/v1/graphql", header: auth(mint(signRS(t, newSigningKey(t, "kid-1"), claimsFor(rsIssuer))))},
		{path: "/v1/graphql", header: auth(mint(signRS(t, fake.Key{KID: "other", Private: key.Private}, claimsFor(rsIssuer))))},
		{path: "/v1/graphql", header: auth(mint(signHS(t, hsKey+"x", claimsFor(hsIssuer))))},
		{path: "/v1/graphql", header: auth(mint(signHS(t, hsKey, noRoles)))},
		{path: "/v1/graphql", header: auth(mint(signRS(t, key, badIss)))},
		{path: "/v1/graphql", header: auth(mint("eyJhbGciOiJub25lIn0.eyJzdWIiOiJzZWNyZXQtc3ViamVjdCJ9."))},
		{path: "/v1/graphql", header: auth(mint("garbage-token-" + randomHex(t, 8)))},
		{path: "/v1/graphql", header: http.Header{"Cookie": {"__session=" + mint(signRS(t, key, claimsFor(rsIssuer)))}}},
		{path: "/v1/graphql", header: http.Header{"X-Hasura-Admin-Secret": {admin}}},
		{path: "/v1/metadata", header: http.Header{"X-Hasura-Admin-Secret": {wrongAdmin}}},
		{path: "/v1/graphql", header: http.Header{"X-Hasura-Access-Key": {wrongAdmin}}},
		{path: "/v1/graphql", header: auth(tokens[0]), body: strings.Repeat("x", 5000)},
		{path: "/v1/graphql?hang=1", header: auth(tokens[0])},
		{path: "/v1/graphql", header: http.Header{"Authorization": {"Bearer " + tokens[0], "Bearer " + tokens[1]}}},
		{path: "/v1/graphql", header: http.Header{"Authorization": {"Basic " + mint(randomHex(t, 10))}}},
	}
	var answers bytes.Buffer
	for _, r := range reqs {
		hr, _ := http.NewRequest(http.MethodPost, p.client+r.path, strings.NewReader(r.body))
		for k, vs := range r.header {
			hr.Header[k] = vs
		}
		resp, body := do(t, hr)
		fmt.Fprintf(&answers, "%d %v %s\n", resp.StatusCode, resp.Header, body)
		p.accessLine(t, resp.Header.Get("X-Request-Id"))
	}
	// Upstream down, for its error path.
	h.Close()
	hr, _ := http.NewRequest(http.MethodPost, p.client+"/v1/graphql", nil)
	hr.Header.Set("Authorization", "Bearer "+tokens[0])
	resp, body := do(t, hr)
	fmt.Fprintf(&answers, "%d %v %s\n", resp.StatusCode, resp.Header, body)
	p.accessLine(t, resp.Header.Get("X-Request-Id"))
	get(t, p.ops+"/readyz")
	get(t, p.ops+"/metrics")
	p.stop()
	if err := p.wait(t); err != nil {
		t.Errorf("run returned %v", err)
	}

	// -check-config, valid and invalid, in process (the binary's own output
	// is checked in process_test.go).
	clearHasuraEnv(t)
	var check bytes.Buffer
	if err := run(context.Background(), []string{"-check-config", "-config", writeConfig(t, cfg)}, &check, &check); err != nil {
		t.Errorf("-check-config on a valid file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	badYAML := cfg.yaml() + "  level: loud\n" // duplicate key under log:
	badYAML = strings.Replace(badYAML, "server:\n", "server:\n  max_body_bytes: "+hsKey+"\n  shutdown_grace: "+admin+"\n", 1)
	if err := os.WriteFile(bad, []byte(badYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"-check-config", "-config", bad}, &check, &check); err == nil {
		t.Error("-check-config accepted an invalid file")
	}
	shortKey := cfg
	shortKey.HSKey = "short-" + randomHex(t, 4)
	if err := run(context.Background(), []string{"-check-config", "-config", writeConfig(t, shortKey)}, &check, &check); err == nil {
		t.Error("-check-config accepted a short HS key")
	}

	secrets := map[string]string{"admin secret": admin, "HS key": hsKey, "wrong admin secret": wrongAdmin, "short HS key": shortKey.HSKey}
	for i, tok := range tokens {
		secrets[fmt.Sprintf("token %d", i)] = tok
		// A token's payload or signature alone is as telling as the token.
		for j, part := range strings.Split(tok, ".") {
			if len(part) >= 16 {
				secrets[fmt.Sprintf("token %d part %d", i, j)] = part
			}
		}
	}
	outputs := map[string]string{"log": p.logs.String(), "answers": answers.String(), "-check-config": check.String()}
	for where, out := range outputs {
		for what, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
	}
	// The checks above must have had something to look at.
	for _, want := range []string{`"admin_secret":"[REDACTED]"`, `"reason":"bad_signature"`, `"reason":"bad_admin_secret"`,
		`"error":"upstream unreachable"`, `"msg":"upstream unreachable"`} {
		if !strings.Contains(p.logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if !strings.Contains(check.String(), "is valid") || !strings.Contains(check.String(), "is invalid") {
		t.Errorf("-check-config output lacks a valid and an invalid verdict:\n%s", check.String())
	}
}
