package proxy_test

// The adversarial suite: hostile clients, hostile tokens and hostile key
// servers against the real handler, served by the real http.Server
// (proxy.NewServer), in front of a stand-in Hasura that records every request
// exactly as it arrived on the wire.
//
// The invariant checked on every request that reaches the stand-in, in every
// test (advHasura.checkAll runs in t.Cleanup):
//
//   - a request carrying X-Hasura-Admin-Secret carries exactly one, equal to
//     the configured secret, and exactly one non-empty X-Hasura-Role;
//   - a request without the admin secret carries no x-hasura-* header at all;
//   - no x-hasura-* header, under any casing or with "_" for "-", carries a
//     value a client sent (the tests mark them with advCanary), and no
//     trailer reaches Hasura;
//   - nothing follows the request on its connection (no smuggled request).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

const (
	advAdminSecret = "adv-admin-secret-0123456789abcdef"
	advIssuerA     = "https://clerk-a.example.test"
	advIssuerB     = "https://clerk-b.example.test"
	advIssuerC     = "https://static-c.example.test"
	advAZP         = "https://app.example.test"
	// advCanary marks every value a hostile client puts in an x-hasura-*
	// header: it must never reach Hasura.
	advCanary = "spoofed-by-client"
)

// ---------------------------------------------------------------------------
// Stand-in Hasura: one request per connection, recorded byte for byte.

// advRecord is one request as the stand-in Hasura received it.
type advRecord struct {
	raw      []byte      // every byte read from the connection
	lines    [][2]string // header lines as sent: raw name, value
	req      *http.Request
	body     []byte
	trailer  http.Header
	leftover int   // bytes that followed the request on its connection
	err      error // the request head could not be parsed
	// bodyErr is a body cut short: the proxy stops forwarding a body the
	// client framed badly, after the (checked) head was sent.
	bodyErr error
	tunnel  []byte
}

// header returns every value of the header lines whose name, compared
// case-insensitively with "_" read as "-", is name.
func (r *advRecord) header(name string) []string {
	var vs []string
	for _, l := range r.lines {
		if advNorm(l[0]) == name {
			vs = append(vs, l[1])
		}
	}
	return vs
}

func advNorm(name string) string { return strings.ToLower(strings.ReplaceAll(name, "_", "-")) }

// advHasura is a stand-in Hasura on a raw TCP listener. It answers 200 with
// a small JSON body and closes the connection, so every request is on its
// own connection and anything after it is visible.
type advHasura struct {
	ln     net.Listener
	secret string
	// switchProtocols answers 101 to every request, as a careless upstream
	// might, and records what the client sends through the tunnel.
	switchProtocols atomic.Bool

	mu       sync.Mutex
	recs     []*advRecord
	recorded chan struct{} // one token per record, for settle
	wg       sync.WaitGroup
	// unrecorded counts the requests answered but not yet recorded: the
	// record is made when the connection ends, after the answer.
	unrecorded atomic.Int64
}

func newAdvHasura(t *testing.T, secret string) *advHasura {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &advHasura{ln: ln, secret: secret, recorded: make(chan struct{}, 4096)}
	h.wg.Add(1)
	go h.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		h.wg.Wait()
		h.checkAll(t)
	})
	return h
}

func (h *advHasura) url() string { return "http://" + h.ln.Addr().String() }

func (h *advHasura) accept() {
	defer h.wg.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.serve(c)
		}()
	}
}

func (h *advHasura) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	rec := &advRecord{}
	answered := false
	answer := func() {
		answered = true
		h.unrecorded.Add(1)
	}
	defer func() {
		if raw.Len() == 0 {
			return // a spare connection the transport never used
		}
		rec.raw = raw.Bytes()
		rec.lines = advHeaderLines(rec.raw)
		h.mu.Lock()
		h.recs = append(h.recs, rec)
		h.mu.Unlock()
		if answered {
			h.unrecorded.Add(-1)
		}
		select {
		case h.recorded <- struct{}{}:
		default:
		}
	}()
	req, err := http.ReadRequest(br)
	if err != nil {
		rec.err = err
		return
	}
	rec.req = req
	rec.body, rec.bodyErr = io.ReadAll(req.Body)
	rec.trailer = req.Trailer
	rec.leftover = br.Buffered()
	if h.switchProtocols.Load() {
		up := req.Header.Get("Upgrade")
		if up == "" {
			up = "h2c"
		}
		answer()
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		rec.tunnel, _ = io.ReadAll(io.LimitReader(c, 1<<16))
		return
	}
	const body = `{"data":{"ok":true}}`
	answer()
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
}

// advHeaderLines splits the header block of a raw request into name/value
// pairs, names exactly as sent.
func advHeaderLines(raw []byte) [][2]string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	var out [][2]string
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		out = append(out, [2]string{name, strings.TrimSpace(value)})
	}
	return out
}

// records returns what was received so far.
func (h *advHasura) records() []*advRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*advRecord(nil), h.recs...)
}

// settle waits until at least want requests are recorded (or 5 s passed)
// and returns the records. The stand-in answers before it records, so a
// client may see the answer a moment before the record exists.
func (h *advHasura) settle(t *testing.T, want int) []*advRecord {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		if recs := h.records(); len(recs) >= want {
			return recs
		}
		select {
		case <-h.recorded:
		case <-timeout.C:
			return h.records()
		}
	}
}

// answeredRecords waits until every request answered so far is recorded and
// returns the records.
func (h *advHasura) answeredRecords(t *testing.T) []*advRecord {
	t.Helper()
	advEventually(t, "the stand-in to record what it answered", func() bool { return h.unrecorded.Load() == 0 })
	return h.records()
}

// reset forgets the records so far (after checking them). It first waits for
// the records of the requests already answered: a test's client can be done
// before they exist, and they would otherwise land in the next test.
func (h *advHasura) reset(t *testing.T) {
	t.Helper()
	advEventually(t, "the stand-in to record what it answered", func() bool { return h.unrecorded.Load() == 0 })
	h.checkAll(t)
	h.mu.Lock()
	h.recs = nil
	h.mu.Unlock()
	for len(h.recorded) > 0 {
		<-h.recorded
	}
}

// checkAll asserts the invariant on every record.
func (h *advHasura) checkAll(t *testing.T) {
	t.Helper()
	for i, r := range h.records() {
		if err := advInvariant(r, h.secret); err != nil {
			t.Errorf("request %d reaching Hasura breaks the invariant: %v\n%s", i, err, advShow(r.raw))
		}
	}
}

// advInvariant is the security invariant of the package comment.
func advInvariant(r *advRecord, secret string) error {
	if r.err != nil {
		return fmt.Errorf("unparsable request: %v", r.err)
	}
	var secrets, roles []string
	hasura := 0
	for _, l := range r.lines {
		name, value := l[0], l[1]
		if name != strings.TrimSpace(name) || name == "" {
			return fmt.Errorf("header name %q has surrounding whitespace", name)
		}
		n := advNorm(name)
		if !strings.HasPrefix(n, "x-hasura-") {
			continue
		}
		hasura++
		if strings.Contains(strings.ToLower(value), advCanary) {
			return fmt.Errorf("client value reached Hasura in %s", name)
		}
		switch n {
		case "x-hasura-admin-secret":
			if name != "X-Hasura-Admin-Secret" {
				return fmt.Errorf("admin secret under the name %q", name)
			}
			secrets = append(secrets, value)
		case "x-hasura-role":
			roles = append(roles, value)
		case "x-hasura-access-key":
			return errors.New("x-hasura-access-key reached Hasura")
		}
	}
	switch {
	case len(secrets) == 0 && hasura > 0:
		return fmt.Errorf("%d x-hasura-* headers without the admin secret", hasura)
	case len(secrets) > 1:
		return fmt.Errorf("%d admin secret headers", len(secrets))
	case len(secrets) == 1 && secrets[0] != secret:
		return errors.New("admin secret differs from the configured one")
	case len(secrets) == 1 && (len(roles) != 1 || roles[0] == ""):
		return fmt.Errorf("admin secret with roles %q", roles)
	}
	for k := range r.trailer {
		return fmt.Errorf("trailer %q reached Hasura", k)
	}
	if r.leftover != 0 {
		return fmt.Errorf("%d bytes followed the request on its connection", r.leftover)
	}
	if len(r.tunnel) > 0 {
		return fmt.Errorf("%d bytes tunnelled to Hasura after a protocol switch", len(r.tunnel))
	}
	return nil
}

// advShow renders a raw request for a failure message, secret redacted.
func advShow(raw []byte) string {
	s := strings.ReplaceAll(string(raw), advAdminSecret, "[ADMIN SECRET]")
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}

// ---------------------------------------------------------------------------
// JWKS stand-ins.

// advKey is a signing key with its kid.
type advKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func advNewKey(t *testing.T, kid string, bits int) advKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return advKey{kid: kid, priv: k}
}

func advJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// JWKS answer modes.
const (
	jwksGood = iota
	jwksHuge
	jwksSlow
	jwksMalformed
	jwksEmpty
	jwksError
)

// advJWKS serves a JWK set and counts fetches. Its answer is switchable.
type advJWKS struct {
	*httptest.Server
	fetches atomic.Int64
	mode    atomic.Int32
	// release ends slow answers (closed at cleanup).
	release chan struct{}
	// held counts the slow answers in progress.
	held atomic.Int64

	mu   sync.Mutex
	keys []map[string]any
}

func newAdvJWKS(t *testing.T, keys ...advKey) *advJWKS {
	t.Helper()
	j := &advJWKS{release: make(chan struct{})}
	j.setKeys(keys...)
	j.Server = httptest.NewServer(http.HandlerFunc(j.serve))
	t.Cleanup(func() {
		close(j.release)
		j.Close()
	})
	return j
}

func (j *advJWKS) setKeys(keys ...advKey) {
	var out []map[string]any
	for _, k := range keys {
		out = append(out, advJWK(k.kid, &k.priv.PublicKey))
	}
	j.setJWKs(out...)
}

func (j *advJWKS) setJWKs(jwks ...map[string]any) {
	j.mu.Lock()
	j.keys = jwks
	j.mu.Unlock()
}

func (j *advJWKS) serve(w http.ResponseWriter, r *http.Request) {
	j.fetches.Add(1)
	w.Header().Set("Content-Type", "application/json")
	switch j.mode.Load() {
	case jwksHuge:
		// A valid document far larger than jwks.max_body_bytes.
		big := map[string]any{"keys": []any{}, "padding": strings.Repeat("x", 4<<20)}
		_ = json.NewEncoder(w).Encode(big)
	case jwksSlow:
		j.held.Add(1)
		defer j.held.Add(-1)
		select {
		case <-j.release:
		case <-r.Context().Done():
		}
	case jwksMalformed:
		_, _ = io.WriteString(w, `{"keys":[{"kty":"RSA","n":`)
	case jwksEmpty:
		_, _ = io.WriteString(w, `{"keys":[]}`)
	case jwksError:
		http.Error(w, "boom", http.StatusInternalServerError)
	default:
		j.mu.Lock()
		doc := map[string]any{"keys": j.keys}
		j.mu.Unlock()
		_ = json.NewEncoder(w).Encode(doc)
	}
}

// advCounterServer counts every request it gets: an attacker's JWKS that
// must never be contacted.
type advCounterServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newAdvCounterServer(t *testing.T, body string) *advCounterServer {
	t.Helper()
	s := &advCounterServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// advClock is a settable clock shared by the authenticator and the key
// sources, so rate limits and expiries are deterministic.
type advClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *advClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *advClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ---------------------------------------------------------------------------
// The environment: two JWKS issuers, one static RS256 issuer, the proxy on
// a real server, the stand-in Hasura.

// advKeys are generated once per test function (RSA generation is slow).
type advKeys struct {
	a1, a2, b1, c1, attacker advKey
}

func newAdvKeys(t *testing.T) *advKeys {
	t.Helper()
	return &advKeys{
		a1:       advNewKey(t, "ins_a1", 2048),
		a2:       advNewKey(t, "ins_a2", 2048),
		b1:       advNewKey(t, "ins_b1", 2048),
		c1:       advNewKey(t, "static_c1", 2048),
		attacker: advNewKey(t, "ins_evil", 2048),
	}
}

type advOptions struct {
	// configure adjusts the auth configuration before New.
	configure func(*auth.Config)
	// before runs once the JWKS stand-ins exist, before the first fetch.
	before func(*advEnv)
	// noWait skips waiting for the JWKS keys (hostile JWKS at start).
	noWait bool
	// upstream replaces the raw stand-in Hasura (WebSocket tests).
	upstream string
	// throttle replaces the admin-secret throttle's defaults.
	throttle proxy.AdminThrottleConfig
}

type advEnv struct {
	keys    *advKeys
	clock   *advClock
	jwksA   *advJWKS
	jwksB   *advJWKS
	hasura  *advHasura
	reg     *prometheus.Registry
	addr    string
	client  *http.Client
	remoteA *auth.RemoteKeys
}

func newAdvEnv(t *testing.T, keys *advKeys, o advOptions) *advEnv {
	t.Helper()
	log := zaptest.NewLogger(t)
	e := &advEnv{
		keys:   keys,
		clock:  &advClock{t: time.Now()},
		jwksA:  newAdvJWKS(t, keys.a1, keys.a2),
		jwksB:  newAdvJWKS(t, keys.b1),
		hasura: newAdvHasura(t, advAdminSecret),
		reg:    prometheus.NewRegistry(),
	}
	m := metrics.New(e.reg)

	cfg := auth.DefaultConfig()
	cfg.JWTSecrets = []auth.JWTSecret{
		{JWKURL: e.jwksA.URL, Issuer: advIssuerA, Name: "a"},
		{JWKURL: e.jwksB.URL, Issuer: advIssuerB, Name: "b"},
		{Type: "RS256", Key: auth.Secret(advPublicPEM(t, &keys.c1.priv.PublicKey)), Issuer: advIssuerC, Name: "c"},
	}
	cfg.AuthorizedParties = []string{advAZP}
	// A bound for a stuck fetch, not a speed expectation: on a busy machine
	// even a good (or a 4 MiB) answer can take seconds, and a fetch cut
	// short would count as an error. The slow JWKS test sets its own.
	cfg.JWKS.FetchTimeout = 10 * time.Second
	cfg.JWKS.UnknownKIDWait = 300 * time.Millisecond
	cfg.JWKS.MaxBodyBytes = 64 << 10
	if o.configure != nil {
		o.configure(&cfg)
	}

	if o.before != nil {
		o.before(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		running.Wait()
	})
	var sources []auth.KeySource
	for i, j := range []*advJWKS{e.jwksA, e.jwksB} {
		rk, err := auth.NewRemoteKeys(auth.RemoteKeysOptions{
			URL: j.URL, Name: []string{"a", "b"}[i], Config: cfg.JWKS, Logger: log, Metrics: m, Now: e.clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		running.Add(1)
		go func() {
			defer running.Done()
			rk.Run(ctx)
		}()
		if !o.noWait {
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			err := rk.WaitReady(wctx)
			wcancel()
			if err != nil {
				t.Fatalf("jwks %d not ready: %v", i, err)
			}
		}
		if i == 0 {
			e.remoteA = rk
		}
		sources = append(sources, rk)
	}

	authn, err := auth.New(auth.Options{
		Config: cfg, AdminSecret: advAdminSecret, KeySources: sources, Logger: log.Named("auth"), Metrics: m, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	up := proxy.DefaultConfig()
	up.URL = e.hasura.url()
	if o.upstream != "" {
		up.URL = o.upstream
	}
	up.AdminSecret = advAdminSecret
	up.ResponseHeaderTimeout = 5 * time.Second
	sc := proxy.DefaultServerConfig()
	h, err := proxy.New(proxy.Options{
		Upstream: up, MaxBodyBytes: sc.MaxBodyBytes, ErrorStatus: cfg.ErrorStatus, Auth: authn,
		Logger: log.Named("proxy"), Metrics: m, AdminThrottle: o.throttle,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every handler call is waited for at cleanup: hijacked (WebSocket)
	// connections outlive srv.Close, and must not log after the test.
	var handling sync.WaitGroup
	srv := proxy.NewServer(sc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handling.Add(1)
		defer handling.Done()
		h.ServeHTTP(w, r)
	}), log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.CloseWebSockets(ctx)
		handling.Wait()
	})
	e.addr = ln.Addr().String()
	e.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(e.client.CloseIdleConnections)
	return e
}

func advPublicPEM(t *testing.T, pub *rsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// claims is a Clerk "hasura" template payload for iss, valid now.
func (e *advEnv) claims(iss string) map[string]any {
	now := e.clock.Now()
	return map[string]any{
		"iss": iss, "sub": "user_1", "azp": advAZP,
		"iat": now.Unix(), "nbf": now.Unix() - 5, "exp": now.Add(5 * time.Minute).Unix(),
		"https://hasura.io/jwt/claims": map[string]any{
			"x-hasura-allowed-roles": []any{"user", "editor"},
			"x-hasura-default-role":  "user",
			"x-hasura-user-id":       "user_1",
		},
	}
}

// ns returns the Hasura claims object of c for editing.
func advNS(c map[string]any) map[string]any {
	return c["https://hasura.io/jwt/claims"].(map[string]any)
}

// sign mints a token: header entries are added to (or override) the JOSE
// header; a nil kid leaves it out.
func advSign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
			continue
		}
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// token is a valid token of issuer A signed with key a1.
func (e *advEnv) token(t *testing.T) string {
	t.Helper()
	return advSign(t, jwt.SigningMethodRS256, e.keys.a1.priv, map[string]any{"kid": e.keys.a1.kid}, e.claims(advIssuerA))
}

// advUnsigned builds a compact token from raw header and payload JSON and a
// raw signature segment.
func advUnsigned(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

// do sends a request with the header map as given (names are not
// canonicalised), without keep-alive.
func (e *advEnv) do(t *testing.T, method, path string, h http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// raw writes payload on a fresh connection and returns everything the proxy
// answered until it closed the connection (or 5 s passed). The payload should
// end with a request that says Connection: close. The write side stays open:
// Go's server cancels a request whose client half-closes.
func (e *advEnv) raw(t *testing.T, payload string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// advStatuses returns the status codes of every response in a raw answer.
func advStatuses(answer string) []int {
	var codes []int
	br := bufio.NewReader(strings.NewReader(answer))
	for range 16 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	return codes
}

// gqlError decodes a GraphQL error answer.
func advGQLError(t *testing.T, status int, body []byte) (code, message string) {
	t.Helper()
	var v struct {
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &v); err != nil || len(v.Errors) != 1 {
		t.Fatalf("status %d, body %s: not a GraphQL error", status, body)
	}
	return v.Errors[0].Extensions.Code, v.Errors[0].Message
}

// counter reads one series of a counter from the registry.
func (e *advEnv) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func advBearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// one returns the single record received, failing otherwise.
func (e *advEnv) one(t *testing.T) *advRecord {
	t.Helper()
	recs := e.hasura.settle(t, 1)
	if len(recs) != 1 {
		t.Fatalf("Hasura received %d requests, want 1", len(recs))
	}
	return recs[0]
}

// none asserts that nothing reached Hasura.
func (e *advEnv) none(t *testing.T) {
	t.Helper()
	if recs := e.hasura.records(); len(recs) != 0 {
		t.Fatalf("Hasura received %d requests, want none:\n%s", len(recs), advShow(recs[0].raw))
	}
}

func advGet(vs []string) string {
	if len(vs) == 0 {
		return "<absent>"
	}
	return strings.Join(vs, " | ")
}

// ---------------------------------------------------------------------------
// Header spoofing.

// TestAdversarialSpoofedHeaders sends a valid token together with client
// x-hasura-* headers in every casing, duplicated, multi-valued and with
// underscores: none of the values reaches Hasura, which gets the proxy's
// role and the token's session variables.
func TestAdversarialSpoofedHeaders(t *testing.T) {
	keys := newAdvKeys(t)
	tests := []struct {
		name     string
		header   http.Header // sent as is: names are not canonicalised
		wantRole string
	}{
		{"canonical", http.Header{"X-Hasura-User-Id": {advCanary}, "X-Hasura-Org-Id": {advCanary}}, "user"},
		{"lower case", http.Header{"x-hasura-user-id": {advCanary}, "x-hasura-org-id": {advCanary}}, "user"},
		{"upper case", http.Header{"X-HASURA-USER-ID": {advCanary}, "X-HASURA-ORG-ID": {advCanary}}, "user"},
		{"mixed case", http.Header{"x-HaSuRa-UsEr-Id": {advCanary}}, "user"},
		{"duplicated", http.Header{"X-Hasura-User-Id": {advCanary, advCanary + "2"}}, "user"},
		{"duplicated across casings", http.Header{"X-Hasura-User-Id": {advCanary}, "x-hasura-user-id": {advCanary}}, "user"},
		{"comma list", http.Header{"X-Hasura-User-Id": {"user_1, " + advCanary}}, "user"},
		{"underscores", http.Header{"X_Hasura_User_Id": {advCanary}, "x_hasura_role": {advCanary}, "X-Hasura_Org_Id": {advCanary}}, "user"},
		{"empty values", http.Header{"X-Hasura-Org-Id": {""}}, "user"},
		{"backend only permissions", http.Header{"X-Hasura-Use-Backend-Only-Permissions": {"true " + advCanary}}, "user"},
		{"request id and forwarding", http.Header{"X-Forwarded-For": {"10.0.0.1"}, "Forwarded": {"for=10.0.0.1"}, "X-Hasura-Request-Id": {advCanary}}, "user"},
		{"role selection is not spoofing", http.Header{"X-Hasura-Role": {"editor"}, "X-Hasura-Org-Id": {advCanary}}, "editor"},
		{"role selection lower case", http.Header{"x-hasura-role": {"editor"}}, "editor"},
		{"underscored role is not a role selection", http.Header{"X_Hasura_Role": {"editor"}}, "user"},
		{"many headers", advManyHeaders(300), "user"},
	}
	e := newAdvEnv(t, keys, advOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { e.hasura.reset(t) })
			h := advBearer(e.token(t))
			for k, vs := range tt.header {
				h[k] = vs
			}
			resp, body := e.do(t, http.MethodPost, "/v1/graphql", h, `{"query":"{ __typename }"}`)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"ok":true`)) {
				t.Fatalf("got %d %s, want Hasura's answer", resp.StatusCode, body)
			}
			r := e.one(t)
			if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != tt.wantRole {
				t.Errorf("X-Hasura-Role = %s, want %s", advGet(got), tt.wantRole)
			}
			if got := r.header("x-hasura-user-id"); len(got) != 1 || got[0] != "user_1" {
				t.Errorf("x-hasura-user-id = %s, want user_1 (from the token)", advGet(got))
			}
			for _, n := range []string{"x-hasura-org-id", "x-hasura-use-backend-only-permissions", "x-hasura-request-id"} {
				if got := r.header(n); len(got) != 0 {
					t.Errorf("%s = %s reached Hasura", n, advGet(got))
				}
			}
		})
	}
}

func advManyHeaders(n int) http.Header {
	h := http.Header{}
	for i := range n {
		h[fmt.Sprintf("X-Hasura-Var-%d", i)] = []string{advCanary}
	}
	return h
}

// TestAdversarialRawHeaderNames sends header names with odd whitespace,
// control bytes and folding over a raw connection. Whatever Go's server
// makes of them, it either refuses the request or the invariant holds.
func TestAdversarialRawHeaderNames(t *testing.T) {
	keys := newAdvKeys(t)
	e := newAdvEnv(t, keys, advOptions{})
	tok := e.token(t)
	tests := []struct {
		name   string
		lines  string // extra header lines, CRLF-terminated
		refuse bool   // Go's server must answer 400 without forwarding
	}{
		{"space before colon", "X-Hasura-Role : admin\r\n", true},
		{"tab before colon", "X-Hasura-User-Id\t: " + advCanary + "\r\n", true},
		{"space inside name", "X-Hasura Role: admin\r\n", true},
		{"leading space folds into previous", "User-Agent: t\r\n X-Hasura-Role: admin\r\n", false},
		{"leading tab folds into previous", "User-Agent: t\r\n\tX-Hasura-User-Id: " + advCanary + "\r\n", false},
		{"NUL in name", "X-Hasura-Role\x00: admin\r\n", true},
		{"NUL in value", "X-Hasura-User-Id: a\x00" + advCanary + "\r\n", true},
		{"bare LF line ending", "X-Hasura-User-Id: " + advCanary + "\n", false},
		{"bare CR in value", "X-Hasura-User-Id: a\r" + advCanary + "\r\n", true},
		{"non-ASCII name", "X-Hasura-Rolé: admin\r\n", true},
		{"empty name", ": " + advCanary + "\r\n", true},
		{"underscore role", "X_HASURA_ROLE: admin\r\nx_hasura_user_id: " + advCanary + "\r\n", false},
		{"obs-text value", "X-Hasura-User-Id: \xff" + advCanary + "\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { e.hasura.reset(t) })
			ans := e.raw(t, "GET /v1/graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer "+tok+
				"\r\n"+tt.lines+"Connection: close\r\n\r\n")
			codes := advStatuses(ans)
			if len(codes) != 1 {
				t.Fatalf("got %d responses, want 1:\n%s", len(codes), ans)
			}
			if tt.refuse {
				if codes[0] != http.StatusBadRequest {
					t.Errorf("status %d, want 400 from Go's server", codes[0])
				}
				e.none(t)
				return
			}
			if codes[0] == http.StatusOK {
				r := e.one(t)
				if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != "user" {
					t.Errorf("X-Hasura-Role = %s, want user", advGet(got))
				}
			}
		})
	}
}

// TestAdversarialHopByHop lists x-hasura-* headers (and the credentials) in
// Connection, declares them as trailers, and asks for protocol upgrades:
// the role the proxy sets always arrives, nothing is smuggled in trailers,
// and no upgrade or tunnel reaches Hasura outside the WebSocket path.
func TestAdversarialHopByHop(t *testing.T) {
	keys := newAdvKeys(t)
	e := newAdvEnv(t, keys, advOptions{})
	tok := e.token(t)
	t.Run("Connection lists the session headers", func(t *testing.T) {
		for _, conn := range []string{
			"X-Hasura-Role",
			"X-Hasura-Admin-Secret, X-Hasura-Role, X-Hasura-User-Id",
			"close, x-hasura-role, x-hasura-user-id",
			"Authorization",
		} {
			t.Run(conn, func(t *testing.T) {
				t.Cleanup(func() { e.hasura.reset(t) })
				h := advBearer(tok)
				h["Connection"] = []string{conn}
				h["X-Hasura-Role"] = []string{"editor"}
				resp, body := e.do(t, http.MethodPost, "/v1/graphql", h, `{"query":"{ __typename }"}`)
				if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"ok":true`)) {
					t.Fatalf("got %d %s, want Hasura's answer", resp.StatusCode, body)
				}
				r := e.one(t)
				if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != "editor" {
					t.Errorf("X-Hasura-Role = %s, want editor", advGet(got))
				}
				if got := r.header("x-hasura-user-id"); len(got) != 1 || got[0] != "user_1" {
					t.Errorf("x-hasura-user-id = %s, want user_1", advGet(got))
				}
				if got := r.header("connection"); len(got) != 0 {
					t.Errorf("Connection = %s reached Hasura", advGet(got))
				}
			})
		}
	})
	t.Run("trailers", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		body := `{"query":"{ __typename }"}`
		ans := e.raw(t, "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer "+tok+"\r\n"+
			"Transfer-Encoding: chunked\r\nTrailer: X-Hasura-Role, X-Hasura-Admin-Secret, X-Hasura-User-Id\r\nTe: trailers\r\n"+
			"Connection: close\r\n\r\n"+
			fmt.Sprintf("%x\r\n%s\r\n0\r\n", len(body), body)+
			"X-Hasura-Role: admin\r\nX-Hasura-Admin-Secret: "+advCanary+"\r\nX-Hasura-User-Id: "+advCanary+"\r\n\r\n")
		if codes := advStatuses(ans); len(codes) != 1 || codes[0] != http.StatusOK {
			t.Fatalf("statuses %v:\n%s", codes, ans)
		}
		r := e.one(t)
		if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != "user" {
			t.Errorf("X-Hasura-Role = %s, want user", advGet(got))
		}
		if bytes.Contains(bytes.ToLower(r.raw), []byte(advCanary)) || bytes.Contains(r.raw, []byte("admin\r\n")) {
			t.Errorf("a trailer value reached Hasura:\n%s", advShow(r.raw))
		}
	})
	t.Run("non-WebSocket upgrade", func(t *testing.T) {
		e.hasura.switchProtocols.Store(true)
		t.Cleanup(func() {
			e.hasura.switchProtocols.Store(false)
			e.hasura.reset(t)
		})
		for _, up := range []string{"h2c", "websocket/13", "foo"} {
			t.Run(up, func(t *testing.T) {
				t.Cleanup(func() { e.hasura.reset(t) })
				ans := e.raw(t, "GET /v1/graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer "+tok+
					"\r\nConnection: Upgrade\r\nUpgrade: "+up+"\r\n\r\n"+
					"GET /v1/metadata HTTP/1.1\r\nHost: hasura\r\nX-Hasura-Role: admin\r\nConnection: close\r\n\r\n")
				if codes := advStatuses(ans); len(codes) == 0 || codes[0] != http.StatusBadGateway {
					t.Errorf("statuses %v, want 502 (Hasura switched protocols unasked):\n%s", codes, ans)
				}
				for _, r := range e.hasura.answeredRecords(t) {
					if len(r.header("upgrade")) != 0 {
						t.Errorf("Upgrade reached Hasura on the HTTP path:\n%s", advShow(r.raw))
					}
				}
			})
		}
	})
}

// ---------------------------------------------------------------------------
// Paths, smuggling, sizes.

// TestAdversarialUnauthenticatedPaths tries dot segments, encoded slashes,
// double slashes, parameters and queries around the paths Hasura answers
// without authentication, each without a token, with a token and with the
// right admin secret. Only the exact paths pass without a token, and they
// reach Hasura with no admin secret and no x-hasura-* header whatever the
// client sent; every variant is outside upstream.allowed_paths, so only the
// right admin secret gets it forwarded.
func TestAdversarialUnauthenticatedPaths(t *testing.T) {
	keys := newAdvKeys(t)
	// The "no token" variant presents a wrong admin secret every time.
	e := newAdvEnv(t, keys, advOptions{throttle: proxy.AdminThrottleConfig{Failures: 1000, Window: time.Minute, MaxClients: 10}})
	tok := e.token(t)
	const (
		unauth = "forwarded without credentials"
		// unauthAdmin is unauth for a request that presents an admin
		// secret, and refused by the allow-list for a token.
		unauthAdmin = "forwarded without credentials, with an admin secret"
		refused     = "refused"
		// authed is an allowed path that is not unauthenticated: it is
		// authenticated like any other.
		authed = "authenticated"
		none   = "answered by Go's server"
	)
	variants := []struct {
		name    string
		headers string
		role    string // the role of an authenticated variant
	}{
		{"no token", "X-Hasura-Admin-Secret: " + advCanary + "\r\nX-Hasura-Role: admin\r\nx-hasura-user-id: " + advCanary + "\r\n", ""},
		{"token", "Authorization: Bearer " + tok + "\r\nX-Hasura-Role: editor\r\nx-hasura-user-id: " + advCanary + "\r\n", "editor"},
		{"admin secret", "X-Hasura-Admin-Secret: " + advAdminSecret + "\r\nX-Hasura-Role: admin\r\n", "admin"},
	}
	tests := []struct {
		method, target string
		want           string
	}{
		{"GET", "/healthz", unauth},
		{"HEAD", "/healthz", unauth},
		{"GET", "/healthz?x", unauth},
		{"GET", "/healthz?v1/graphql", unauth},
		{"GET", "/hasura/healthz", unauth},
		{"GET", "/v1/version", unauth},
		{"GET", "http://evil.example/healthz", unauth},
		{"OPTIONS", "/v1/graphql", unauth},
		{"OPTIONS", "/v1/metadata", unauthAdmin},
		{"OPTIONS", "*", none},
		{"POST", "/healthz", authed},
		{"PUT", "/v1/version", refused},
		{"GET", "/healthz/../v1/graphql", refused},
		{"GET", "/healthz/..%2fv1%2fgraphql", refused},
		{"GET", "/healthz%2F..%2Fv1%2Fgraphql", refused},
		{"GET", "/%2e%2e/v1/graphql", refused},
		{"GET", "/hasura/healthz/../../v1/metadata", refused},
		{"GET", "/./healthz", refused},
		{"GET", "//healthz", refused},
		{"GET", "//v1/graphql", refused},
		{"GET", "/healthz/", refused},
		{"GET", "/HEALTHZ", refused},
		{"GET", "/%68ealthz", refused},
		{"GET", "/healthz%00", refused},
		{"GET", "/healthz%20", refused},
		{"GET", "/v1/version;x", refused},
		{"GET", "/v1/version/..;/graphql", refused},
		{"GET", "/healthz#/../v1/graphql", refused},
		{"GET", "http://evil.example/v1/graphql", authed},
		{"GET", "http://evil.example//healthz", refused},
	}
	for _, tt := range tests {
		for _, v := range variants {
			t.Run(tt.method+" "+tt.target+" "+v.name, func(t *testing.T) {
				t.Cleanup(func() { e.hasura.reset(t) })
				ans := e.raw(t, tt.method+" "+tt.target+" HTTP/1.1\r\nHost: hasura\r\n"+v.headers+"Connection: close\r\n\r\n")
				codes := advStatuses(ans)
				if len(codes) != 1 {
					t.Fatalf("got %d answers:\n%s", len(codes), ans)
				}
				switch {
				case tt.want == unauthAdmin && v.role == "editor", tt.want == refused && v.role == "editor":
					e.none(t)
					if codes[0] != http.StatusNotFound {
						t.Errorf("status %d; want 404 from the allow-list:\n%s", codes[0], ans)
					}
				case tt.want == unauth, tt.want == unauthAdmin:
					r := e.one(t)
					for _, l := range r.lines {
						if strings.HasPrefix(advNorm(l[0]), "x-hasura-") {
							t.Errorf("%s reached Hasura on an unauthenticated path", l[0])
						}
					}
				case tt.want == none || v.role == "" && tt.want != unauthAdmin:
					e.none(t)
					if tt.want == refused && codes[0] == http.StatusOK && !strings.Contains(ans, "access-denied") {
						t.Errorf("status 200 without an auth error:\n%s", ans)
					}
				default:
					r := e.one(t)
					if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != v.role {
						t.Errorf("X-Hasura-Role = %s, want %s", advGet(got), v.role)
					}
				}
			})
		}
	}
}

// TestAdversarialSmuggling sends conflicting framing over raw connections.
// Go's server either refuses the request or reads one unambiguous message;
// the request hidden in the body never reaches Hasura (it would come without
// a token and be refused), and each request reaches Hasura alone on its
// connection (advInvariant checks that nothing follows it).
func TestAdversarialSmuggling(t *testing.T) {
	keys := newAdvKeys(t)
	e := newAdvEnv(t, keys, advOptions{})
	auth := "Authorization: Bearer " + e.token(t) + "\r\n"
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: hasura\r\nX-Hasura-Role: admin\r\nConnection: close\r\n\r\n"
	const q = `{"query":"{ __typename }"}`
	tests := []struct {
		name    string
		payload string
		// refuse: Go's server must answer 400 or 501 and forward nothing.
		refuse bool
	}{
		{"CL then TE", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, false},
		{"TE then CL", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled, false},
		{"two different CL", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Content-Length: 0\r\nContent-Length: 70\r\n\r\n" + smuggled, true},
		{"CL list", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Content-Length: 0, 70\r\n\r\n" + smuggled, true},
		{"signed CL", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Content-Length: +0\r\n\r\n" + smuggled, true},
		{"TE chunked, identity", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"TE identity", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n" + smuggled, true},
		{"TE xchunked", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"two TE", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, true},
		{"TE with space before colon", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n" + smuggled, true},
		{"TE folded", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Content-Length: 0\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + smuggled, false},
		{"chunk size overflow", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nx\r\n0\r\n\r\n" + smuggled, false},
		{"bare LF chunk", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n1a\n" + q + "\n0\n\n" + smuggled, false},
		{"HTTP/1.0 with TE", "POST /v1/graphql HTTP/1.0\r\nHost: hasura\r\n" + auth + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n" + smuggled, false},
		{"pipelined after a good request", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(q), q) + smuggled, false},
		{"request in the body", "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\n" + auth + fmt.Sprintf("Connection: close\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled), false},
		{"LF-only request line", "GET /v1/graphql HTTP/1.1\nHost: hasura\n" + strings.TrimSuffix(auth, "\r\n") + "\n\n" + smuggled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { e.hasura.reset(t) })
			ans := e.raw(t, tt.payload)
			codes := advStatuses(ans)
			if len(codes) == 0 {
				t.Fatalf("no answer:\n%s", ans)
			}
			if tt.refuse {
				if codes[0] != http.StatusBadRequest && codes[0] != http.StatusNotImplemented {
					t.Errorf("statuses %v, want 400 or 501 from Go's server", codes)
				}
				e.none(t)
			}
			for _, r := range e.hasura.answeredRecords(t) {
				if r.req != nil && strings.Contains(r.req.URL.Path, "smuggled") {
					t.Errorf("the smuggled request reached Hasura:\n%s", advShow(r.raw))
				}
				if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != "user" {
					t.Errorf("X-Hasura-Role = %s, want user", advGet(got))
				}
			}
		})
	}
}

// TestAdversarialOversized sends headers, tokens and bodies past every
// limit: each is refused before Hasura sees it, or (for a chunked body that
// is only found too large while it streams) the invariant still holds.
func TestAdversarialOversized(t *testing.T) {
	keys := newAdvKeys(t)
	e := newAdvEnv(t, keys, advOptions{})
	tok := e.token(t)
	max := proxy.DefaultServerConfig()

	t.Run("headers past server.max_header_bytes", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		h := advBearer(tok)
		// Go's server allows 4096 bytes over MaxHeaderBytes.
		h["X-Pad"] = []string{strings.Repeat("p", max.MaxHeaderBytes+8192)}
		resp, _ := e.do(t, http.MethodPost, "/v1/graphql", h, `{}`)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", resp.StatusCode)
		}
		e.none(t)
	})
	t.Run("token past auth.max_token_bytes", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		c := e.claims(advIssuerA)
		advNS(c)["x-hasura-pad"] = strings.Repeat("p", auth.DefaultMaxTokenBytes)
		big := advSign(t, jwt.SigningMethodRS256, keys.a1.priv, map[string]any{"kid": keys.a1.kid}, c)
		resp, body := e.do(t, http.MethodPost, "/v1/graphql", advBearer(big), `{}`)
		// Never decoded, so it has no iss and pre-matches all three
		// secrets: Hasura's answer to that is "Multiple JWTs found".
		if code, msg := advGQLError(t, resp.StatusCode, body); code != auth.CodeInvalidHeaders || !strings.Contains(msg, "Multiple JWTs") {
			t.Errorf("got %s %q, want invalid-headers Multiple JWTs found", code, msg)
		}
		e.none(t)
		single := newAdvEnv(t, keys, advOptions{configure: func(c *auth.Config) { c.JWTSecrets = c.JWTSecrets[:1] }})
		resp, body = single.do(t, http.MethodPost, "/v1/graphql", advBearer(big), `{}`)
		if code, msg := advGQLError(t, resp.StatusCode, body); code != auth.CodeInvalidJWT || !strings.Contains(msg, "larger than") {
			t.Errorf("one secret: got %s %q, want invalid-jwt token too large", code, msg)
		}
		if n := single.counter(t, "hasura_auth_proxy_auth_decisions_total", map[string]string{"result": "denied", "reason": "token_too_large"}); n != 1 {
			t.Errorf("auth_decisions_total{reason=token_too_large} = %v, want 1", n)
		}
		single.none(t)
	})
	t.Run("many small x-hasura headers", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		h := advBearer(tok)
		for k, v := range advManyHeaders(2000) {
			h[k] = v
		}
		resp, _ := e.do(t, http.MethodPost, "/v1/graphql", h, `{}`)
		if resp.StatusCode == http.StatusOK {
			e.one(t) // the invariant (no canary) is checked at reset
		}
	})
	t.Run("body past server.max_body_bytes with Content-Length", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		// Refused from the head alone: the body is never read.
		ans := e.raw(t, fmt.Sprintf("POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer %s\r\n"+
			"Content-Length: %d\r\nConnection: close\r\n\r\n{", tok, max.MaxBodyBytes+1))
		if codes := advStatuses(ans); len(codes) != 1 || codes[0] != http.StatusRequestEntityTooLarge {
			t.Errorf("statuses %v, want 413:\n%s", codes, ans)
		}
		e.none(t)
	})
	t.Run("chunked body past server.max_body_bytes", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		req, err := http.NewRequest(http.MethodPost, "http://"+e.addr+"/v1/graphql",
			io.MultiReader(strings.NewReader(strings.Repeat("b", int(max.MaxBodyBytes)+1))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = advBearer(tok)
		req.ContentLength = -1
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("status 200 for a body past the limit")
		}
	})
}

// ---------------------------------------------------------------------------
// Tokens.

// TestAdversarialTokenForgery tries the classic JWT forgeries: alg none,
// HS/RS confusion, hostile kids, jku/x5u/jwk/x5c headers pointing at an
// attacker's keys, cross-issuer signatures, tampered payloads. Each is
// refused with Hasura's answer, nothing reaches Hasura, and the attacker's
// server is never contacted.
func TestAdversarialTokenForgery(t *testing.T) {
	keys := newAdvKeys(t)
	e := newAdvEnv(t, keys, advOptions{})
	attackerJWKS, _ := json.Marshal(map[string]any{"keys": []any{advJWK(keys.attacker.kid, &keys.attacker.priv.PublicKey)}})
	attacker := newAdvCounterServer(t, string(attackerJWKS))
	certDER := advSelfSigned(t, keys.attacker.priv)
	pemA1 := advPublicPEM(t, &keys.a1.priv.PublicKey)
	pemC1 := advPublicPEM(t, &keys.c1.priv.PublicKey)
	evil := keys.attacker.priv
	rs := jwt.SigningMethodRS256
	hs := jwt.SigningMethodHS256
	kid := func(k string) map[string]any { return map[string]any{"kid": k} }
	good := e.claims(advIssuerA)
	goodJSON, _ := json.Marshal(good)
	escalated := e.claims(advIssuerA)
	advNS(escalated)["x-hasura-default-role"] = "admin"
	advNS(escalated)["x-hasura-allowed-roles"] = []any{"admin"}
	escalatedJSON, _ := json.Marshal(escalated)
	valid := e.token(t)
	validSig := valid[strings.LastIndexByte(valid, '.')+1:]

	const (
		badSig  = "Could not verify JWT: JWSError JWSInvalidSignature"
		noSigs  = "Could not verify JWT: JWSError JWSNoSignatures"
		issuer  = "Could not verify JWT: JWTNotInIssuer"
		multi   = "Could not verify JWT: Multiple JWTs found"
		expired = "Could not verify JWT: JWTExpired"
		// jose's header parse (hs-jose src/Crypto/JOSE/Header.hs, TH.hs).
		noAlg   = `Could not verify JWT: JWSError (JSONDecodeError "missing required header \"alg\"")`
		badAlg  = `Could not verify JWT: JWSError (JSONDecodeError "unrecognised value; expected: [\"HS256\",\"HS384\",\"HS512\",\"RS256\",\"RS384\",\"RS512\",\"ES256\",\"ES384\",\"ES512\",\"ES256K\",\"PS256\",\"PS384\",\"PS512\",\"none\",\"EdDSA\"]")`
		kidType = `Could not verify JWT: JWSError (JSONDecodeError "parsing Text failed, expected String, but encountered Number")`
	)
	tests := []struct {
		name  string
		token func() string
		want  string // exact Hasura message
	}{
		{"alg none, empty signature", func() string {
			return advUnsigned(`{"alg":"none","typ":"JWT"}`, string(goodJSON), "")
		}, noSigs},
		{"alg none with a signature", func() string { return advUnsigned(`{"alg":"none"}`, string(goodJSON), validSig) }, noSigs},
		{"alg None", func() string { return advUnsigned(`{"alg":"None"}`, string(goodJSON), "") }, badAlg},
		{"alg NONE", func() string { return advUnsigned(`{"alg":"NONE","kid":"ins_a1"}`, string(goodJSON), "") }, badAlg},
		{"no alg", func() string { return advUnsigned(`{"kid":"ins_a1"}`, string(goodJSON), validSig) }, noAlg},
		{"alg as a number", func() string { return advUnsigned(`{"alg":256,"kid":"ins_a1"}`, string(goodJSON), validSig) }, badAlg},
		{"HS256 keyed with the JWKS public key PEM", func() string { return advSign(t, hs, []byte(pemA1), kid("ins_a1"), good) }, badSig},
		{"HS256 keyed with the modulus", func() string {
			return advSign(t, hs, keys.a1.priv.PublicKey.N.Bytes(), kid("ins_a1"), good)
		}, badSig},
		{"HS256 keyed with the static public key PEM", func() string {
			return advSign(t, hs, []byte(pemC1), nil, e.claims(advIssuerC))
		}, badSig},
		{"HS256 keyed with the static PEM, no kid", func() string {
			return advSign(t, hs, []byte(pemC1), map[string]any{"kid": nil}, e.claims(advIssuerC))
		}, badSig},
		{"RS256 header, payload swapped", func() string {
			return advUnsigned(`{"alg":"RS256","kid":"ins_a1","typ":"JWT"}`, string(escalatedJSON), validSig)
		}, badSig},
		{"signature stripped", func() string { return valid[:strings.LastIndexByte(valid, '.')+1] }, badSig},
		{"PS256 header on an RS256 key", func() string { return advSign(t, jwt.SigningMethodPS256, keys.a1.priv, kid("ins_a1"), good) }, badSig},
		{"kid path traversal", func() string { return advSign(t, rs, evil, kid("../../../../etc/passwd"), good) }, badSig},
		{"kid SQL", func() string { return advSign(t, rs, evil, kid("' OR '1'='1' --"), good) }, badSig},
		{"kid NUL and CRLF", func() string { return advSign(t, rs, evil, kid("ins_a1\x00\r\nX-Hasura-Role: admin"), good) }, badSig},
		{"kid as a number", func() string { return advSign(t, rs, keys.a1.priv, kid2(1), good) }, kidType},
		{"kid very long", func() string { return advSign(t, rs, evil, kid(strings.Repeat("k", 8000)), good) }, badSig},
		{"jku to the attacker", func() string {
			return advSign(t, rs, evil, map[string]any{"kid": keys.attacker.kid, "jku": attacker.URL}, good)
		}, badSig},
		{"x5u to the attacker", func() string {
			return advSign(t, rs, evil, map[string]any{"kid": keys.attacker.kid, "x5u": attacker.URL}, good)
		}, badSig},
		{"jku with a known kid", func() string {
			return advSign(t, rs, evil, map[string]any{"kid": "ins_a1", "jku": attacker.URL}, good)
		}, badSig},
		{"embedded jwk", func() string {
			return advSign(t, rs, evil, map[string]any{"kid": "ins_a1", "jwk": advJWK("ins_a1", &evil.PublicKey)}, good)
		}, badSig},
		{"embedded jwk, no kid", func() string {
			return advSign(t, rs, evil, map[string]any{"kid": nil, "jwk": advJWK("x", &evil.PublicKey)}, good)
		}, badSig},
		{"embedded x5c", func() string {
			return advSign(t, rs, evil, map[string]any{"kid": nil, "x5c": []string{base64.StdEncoding.EncodeToString(certDER)}}, good)
		}, badSig},
		{"issuer A signed with issuer B's key and kid", func() string { return advSign(t, rs, keys.b1.priv, kid("ins_b1"), good) }, badSig},
		{"issuer A signed with issuer B's key, A's kid", func() string { return advSign(t, rs, keys.b1.priv, kid("ins_a1"), good) }, badSig},
		{"issuer A signed with issuer B's key, no kid", func() string {
			return advSign(t, rs, keys.b1.priv, map[string]any{"kid": nil}, good)
		}, badSig},
		{"issuer B signed with issuer A's key", func() string {
			return advSign(t, rs, keys.a1.priv, kid("ins_a1"), e.claims(advIssuerB))
		}, badSig},
		{"static issuer C signed with a JWKS key", func() string {
			return advSign(t, rs, keys.a1.priv, kid("ins_a1"), e.claims(advIssuerC))
		}, badSig},
		{"unknown issuer", func() string {
			return advSign(t, rs, keys.a1.priv, kid("ins_a1"), e.claims("https://evil.example"))
		}, issuer},
		{"no iss pre-matches every secret", func() string {
			c := e.claims(advIssuerA)
			delete(c, "iss")
			return advSign(t, rs, keys.a1.priv, kid("ins_a1"), c)
		}, multi},
		{"expired an hour ago", func() string {
			c := e.claims(advIssuerA)
			c["exp"] = e.clock.Now().Add(-time.Hour).Unix()
			return advSign(t, rs, keys.a1.priv, kid("ins_a1"), c)
		}, expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, http.MethodPost, "/v1/graphql", advBearer(tt.token()), `{"query":"{ __typename }"}`)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want Hasura's 200 on /v1/graphql", resp.StatusCode)
			}
			code, msg := advGQLError(t, resp.StatusCode, body)
			if msg != tt.want {
				t.Errorf("got %s %q, want %q", code, msg, tt.want)
			}
			e.none(t)
		})
	}
	t.Run("a token for each issuer in one request", func(t *testing.T) {
		h := http.Header{"Authorization": {
			"Bearer " + valid,
			"Bearer " + advSign(t, rs, keys.b1.priv, kid("ins_b1"), e.claims(advIssuerB)),
		}}
		resp, body := e.do(t, http.MethodPost, "/v1/graphql", h, `{}`)
		if _, msg := advGQLError(t, resp.StatusCode, body); msg != multi {
			t.Errorf("got %q, want %q", msg, multi)
		}
		e.none(t)
	})
	if n := attacker.hits.Load(); n != 0 {
		t.Errorf("the attacker's key server was contacted %d times", n)
	}
	// The same tokens, signed right, do pass: the refusals above are about
	// the forgery, not the harness.
	for _, tok := range []string{valid, advSign(t, rs, keys.b1.priv, kid("ins_b1"), e.claims(advIssuerB)),
		advSign(t, rs, keys.c1.priv, nil, e.claims(advIssuerC))} {
		resp, body := e.do(t, http.MethodPost, "/v1/graphql", advBearer(tok), `{}`)
		if !bytes.Contains(body, []byte(`"ok":true`)) {
			t.Errorf("a genuine token was refused: %d %s", resp.StatusCode, body)
		}
	}
}

// kid2 is a kid header of a non-string type.
func kid2(v any) map[string]any { return map[string]any{"kid": v} }

// advSelfSigned returns a self-signed certificate for key, as an attacker
// would put in x5c.
func advSelfSigned(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestAdversarialClaimValues sends validly signed tokens whose Hasura claims
// are hostile: control characters in values and roles, names that are not
// header names, names of the credentials. Values that cannot be a header
// are refused; the credentials and backend-only switch are never forwarded.
func TestAdversarialClaimValues(t *testing.T) {
	keys := newAdvKeys(t)
	e := newAdvEnv(t, keys, advOptions{})
	tests := []struct {
		name   string
		mutate func(ns map[string]any)
		role   string // X-Hasura-Role request header
		// refuse is the expected error code; empty means forwarded.
		refuse string
		// absent are header names that must not reach Hasura.
		absent []string
	}{
		{"CRLF in a value", func(ns map[string]any) { ns["x-hasura-user-id"] = "u\r\nX-Hasura-Role: admin" }, "", auth.CodeJWTInvalidClaims, nil},
		{"LF in a value", func(ns map[string]any) { ns["x-hasura-org-id"] = "o\nx" }, "", auth.CodeJWTInvalidClaims, nil},
		{"NUL in a value", func(ns map[string]any) { ns["x-hasura-org-id"] = "o\x00x" }, "", auth.CodeJWTInvalidClaims, nil},
		{"DEL in a value", func(ns map[string]any) { ns["x-hasura-org-id"] = "o\x7fx" }, "", auth.CodeJWTInvalidClaims, nil},
		{"CRLF in the default role", func(ns map[string]any) {
			ns["x-hasura-default-role"] = "user\r\nX-Hasura-Admin-Secret: x"
			ns["x-hasura-allowed-roles"] = []any{"user\r\nX-Hasura-Admin-Secret: x"}
		}, "", auth.CodeJWTInvalidClaims, nil},
		{"NUL in an allowed role", func(ns map[string]any) { ns["x-hasura-allowed-roles"] = []any{"user", "ed\x00itor"} }, "", auth.CodeJWTInvalidClaims, nil},
		{"space around the default role", func(ns map[string]any) {
			// Every HTTP hop trims it: Hasura would see "admin".
			ns["x-hasura-default-role"] = " admin"
			ns["x-hasura-allowed-roles"] = []any{" admin"}
		}, "", auth.CodeJWTInvalidClaims, nil},
		{"tab after an allowed role", func(ns map[string]any) { ns["x-hasura-allowed-roles"] = []any{"user", "admin\t"} }, "", auth.CodeJWTInvalidClaims, nil},
		{"space in a name", func(ns map[string]any) { ns["x-hasura-org id"] = "o" }, "", auth.CodeJWTInvalidClaims, nil},
		{"colon in a name", func(ns map[string]any) { ns["x-hasura-org:id"] = "o" }, "", auth.CodeJWTInvalidClaims, nil},
		{"non-ASCII name", func(ns map[string]any) { ns["x-hasura-örg"] = "o" }, "", auth.CodeJWTInvalidClaims, nil},
		{"CRLF in a name", func(ns map[string]any) { ns["x-hasura-org\r\nx-hasura-role"] = "admin" }, "", auth.CodeJWTInvalidClaims, nil},
		{"array value", func(ns map[string]any) { ns["x-hasura-org-id"] = []any{"a", "b"} }, "", auth.CodeJWTInvalidClaims, nil},
		{"object value", func(ns map[string]any) { ns["x-hasura-org-id"] = map[string]any{"a": "b"} }, "", auth.CodeJWTInvalidClaims, nil},
		{"names differing in case", func(ns map[string]any) {
			ns["x-hasura-org-id"] = "a"
			ns["X-Hasura-Org-Id"] = "b"
		}, "", auth.CodeJWTInvalidClaims, nil},
		{"empty allowed role", func(ns map[string]any) { ns["x-hasura-allowed-roles"] = []any{"user", ""} }, "", auth.CodeJWTInvalidClaims, nil},
		{"requested role not allowed", func(map[string]any) {}, "admin", auth.CodeAccessDenied, nil},
		{"requested role differs in case", func(map[string]any) {}, "User", auth.CodeAccessDenied, nil},
		{"admin secret claim", func(ns map[string]any) { ns["x-hasura-admin-secret"] = advCanary }, "", "", nil},
		{"admin secret claim upper case", func(ns map[string]any) { ns["X-HASURA-ADMIN-SECRET"] = advCanary }, "", "", nil},
		{"admin secret claim with underscore", func(ns map[string]any) { ns["x-hasura-admin_secret"] = advCanary }, "", "", []string{"x-hasura-admin-secret"}},
		{"access key claim", func(ns map[string]any) { ns["x-hasura-access-key"] = advCanary }, "", "", []string{"x-hasura-access-key"}},
		{"access key claim with underscore", func(ns map[string]any) { ns["x-hasura-access_key"] = advCanary }, "", "", []string{"x-hasura-access-key"}},
		{"role claim", func(ns map[string]any) { ns["x-hasura-role"] = "admin " + advCanary }, "", "", nil},
		{"role claim with underscore", func(ns map[string]any) { ns["x-hasura-role_"] = "x"; ns["x-hasura_role"] = advCanary }, "", "", nil},
		{"backend-only claim", func(ns map[string]any) { ns["x-hasura-use-backend-only-permissions"] = "true" }, "", "", []string{"x-hasura-use-backend-only-permissions"}},
		{"backend-only claim with underscores", func(ns map[string]any) { ns["x-hasura-use_backend_only_permissions"] = "true" }, "", "", []string{"x-hasura-use-backend-only-permissions"}},
		{"claims outside x-hasura-", func(ns map[string]any) { ns["x_hasura_role"] = advCanary; ns["role"] = advCanary }, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { e.hasura.reset(t) })
			c := e.claims(advIssuerA)
			tt.mutate(advNS(c))
			h := advBearer(advSign(t, jwt.SigningMethodRS256, keys.a1.priv, map[string]any{"kid": keys.a1.kid}, c))
			if tt.role != "" {
				h["X-Hasura-Role"] = []string{tt.role}
			}
			req, err := http.NewRequest(http.MethodPost, "http://"+e.addr+"/v1/graphql", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = h
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.refuse != "" {
				if code, msg := advGQLError(t, resp.StatusCode, body); code != tt.refuse {
					t.Errorf("got %s %q, want %s", code, msg, tt.refuse)
				}
				e.none(t)
				return
			}
			if !bytes.Contains(body, []byte(`"ok":true`)) {
				t.Fatalf("got %d %s, want Hasura's answer", resp.StatusCode, body)
			}
			r := e.one(t)
			if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != "user" {
				t.Errorf("X-Hasura-Role = %s, want user", advGet(got))
			}
			if got := r.header("x-hasura-admin-secret"); len(got) != 1 || got[0] != advAdminSecret {
				t.Errorf("the admin secret is not the configured one alone")
			}
			for _, n := range tt.absent {
				if n == "x-hasura-admin-secret" {
					continue // checked above
				}
				if got := r.header(n); len(got) != 0 {
					t.Errorf("%s reached Hasura: %s", n, advGet(got))
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Key servers.

// TestAdversarialJWKSAnswers makes issuer A's JWKS endpoint hostile after
// good keys were loaded: huge, slow, malformed, empty and failing answers
// never replace the good keys, and a request that triggered the refresh
// waits for it at most jwks.unknown_kid_wait. Swapped keys revoke tokens
// verified (and cached) under the old ones. Symmetric, private and short
// keys in a JWKS are ignored.
//
// Every subtest has an environment of its own: a refresh outlives the
// request that started it whenever the JWKS answers later than
// unknown_kid_wait (on a busy machine any answer can), and a later
// subtest's unknown kid would join that refresh instead of starting its
// own.
func TestAdversarialJWKSAnswers(t *testing.T) {
	keys := newAdvKeys(t)
	rs := jwt.SigningMethodRS256
	refresh := auth.DefaultJWKSUnknownKIDRefreshInterval
	const refused = "Could not verify JWT: JWSError JWSInvalidSignature"
	// unknownKID sends a token naming an unknown kid, past the rate limit,
	// and checks that it is refused.
	unknownKID := func(t *testing.T, e *advEnv, kid string) {
		t.Helper()
		e.clock.Advance(refresh + time.Second)
		tok := advSign(t, rs, keys.attacker.priv, map[string]any{"kid": kid}, e.claims(advIssuerA))
		resp, body := e.do(t, http.MethodPost, "/v1/graphql", advBearer(tok), `{}`)
		if _, msg := advGQLError(t, resp.StatusCode, body); msg != refused {
			t.Errorf("unknown kid: got %q; want %q", msg, refused)
		}
	}
	// trigger asks for one refresh of A's keys with an unknown kid and waits
	// until that refresh has ended with the result want: the request itself
	// is answered after unknown_kid_wait whether or not the refresh ended.
	trigger := func(t *testing.T, e *advEnv, kid, want string) {
		t.Helper()
		name := metrics.Namespace + "_jwks_refresh_total"
		labels := map[string]string{"issuer": "a", "result": want}
		before, ended := e.jwksA.fetches.Load(), e.counter(t, name, labels)
		unknownKID(t, e, kid)
		advEventually(t, fmt.Sprintf("%s%v to reach %v", name, labels, ended+1), func() bool {
			return e.counter(t, name, labels) >= ended+1
		})
		if got := e.jwksA.fetches.Load() - before; got != 1 {
			t.Errorf("the unknown kid caused %d fetches; want 1", got)
		}
	}
	accepted := func(t *testing.T, e *advEnv, tok string) bool {
		t.Helper()
		_, body := e.do(t, http.MethodPost, "/v1/graphql", advBearer(tok), `{}`)
		return bytes.Contains(body, []byte(`"ok":true`))
	}
	for _, mode := range []struct {
		name   string
		mode   int32
		result string
	}{
		{"huge", jwksHuge, metrics.JWKSTooLarge},
		{"malformed", jwksMalformed, metrics.JWKSError},
		{"empty", jwksEmpty, metrics.JWKSEmpty},
		{"500", jwksError, metrics.JWKSError},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newAdvEnv(t, keys, advOptions{})
			e.jwksA.mode.Store(mode.mode)
			trigger(t, e, "kid-"+mode.name, mode.result)
			if !accepted(t, e, e.token(t)) {
				t.Errorf("the last good keys were dropped after a %s answer", mode.name)
			}
		})
	}
	t.Run("slow", func(t *testing.T) {
		// The JWKS holds the fetch until cleanup and fetch_timeout is far
		// beyond the client's 10 s: only unknown_kid_wait running out can
		// answer the request, and the fetch is still held when it is.
		e := newAdvEnv(t, keys, advOptions{configure: func(c *auth.Config) { c.JWKS.FetchTimeout = time.Hour }})
		e.jwksA.mode.Store(jwksSlow)
		before := e.jwksA.fetches.Load()
		unknownKID(t, e, "kid-slow")
		// The refresh may reach the JWKS only after the answer.
		advEventually(t, "the refresh to reach the slow JWKS", func() bool { return e.jwksA.held.Load() == 1 })
		if got := e.jwksA.fetches.Load() - before; got != 1 {
			t.Errorf("the unknown kid caused %d fetches; want 1", got)
		}
		if !accepted(t, e, e.token(t)) {
			t.Errorf("a known kid was refused while the JWKS was slow")
		}
		if got := e.jwksA.held.Load(); got != 1 {
			t.Errorf("fetches held by the slow JWKS = %d; want 1 (the refresh ended early)", got)
		}
	})
	t.Run("swapped key under a known kid", func(t *testing.T) {
		e := newAdvEnv(t, keys, advOptions{})
		old := e.token(t)
		for range 2 { // the second one is a cache hit
			if !accepted(t, e, old) {
				t.Fatal("a genuine token was refused")
			}
		}
		// ins_a1 now names a2's key material.
		e.jwksA.setJWKs(advJWK(keys.a1.kid, &keys.a2.priv.PublicKey))
		trigger(t, e, "kid-swap", metrics.JWKSSuccess)
		if accepted(t, e, old) {
			t.Errorf("a token signed with a key the JWKS no longer holds was still accepted (token cache?)")
		}
		if !accepted(t, e, advSign(t, rs, keys.a2.priv, map[string]any{"kid": keys.a1.kid}, e.claims(advIssuerA))) {
			t.Errorf("a token signed with the new key was refused")
		}
	})
	t.Run("hostile keys in the set are ignored", func(t *testing.T) {
		e := newAdvEnv(t, keys, advOptions{})
		short := advNewKey(t, "short", 1024)
		published := advNewKey(t, "published", 2048)
		priv := advJWK(published.kid, &published.priv.PublicKey)
		priv["d"] = base64.RawURLEncoding.EncodeToString(published.priv.D.Bytes())
		hmacKey := []byte("0123456789abcdef0123456789abcdef")
		e.jwksA.setJWKs(
			advJWK(keys.a1.kid, &keys.a1.priv.PublicKey),
			advJWK(short.kid, &short.priv.PublicKey),
			priv,
			map[string]any{"kty": "oct", "kid": "oct", "alg": "HS256", "k": base64.RawURLEncoding.EncodeToString(hmacKey)},
			map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": advJWK("", &keys.a2.priv.PublicKey)["n"], "e": "AQAB"},
		)
		trigger(t, e, "kid-hostile-set", metrics.JWKSSuccess)
		c := e.claims(advIssuerA)
		for name, tok := range map[string]string{
			"1024-bit key":    advSign(t, rs, short.priv, map[string]any{"kid": short.kid}, c),
			"published d":     advSign(t, rs, published.priv, map[string]any{"kid": published.kid}, c),
			"oct key":         advSign(t, jwt.SigningMethodHS256, hmacKey, map[string]any{"kid": "oct"}, c),
			"encryption key":  advSign(t, rs, keys.a2.priv, map[string]any{"kid": "enc"}, c),
			"oct key, no kid": advSign(t, jwt.SigningMethodHS256, hmacKey, map[string]any{"kid": nil}, c),
		} {
			if accepted(t, e, tok) {
				t.Errorf("%s: a token verified with a key that must be ignored", name)
			}
		}
		if !accepted(t, e, e.token(t)) {
			t.Errorf("the good key was lost")
		}
	})
}

// refreshesEnded waits until every fetch of issuer's JWKS started so far has
// ended with a counted result: the first fetch of the refresh loop (whose
// next one is minutes away) and each unknown-kid refresh, counted once as
// unknown_kid_refresh when it starts and once with its result.
func (e *advEnv) refreshesEnded(t *testing.T, issuer string) {
	t.Helper()
	name := metrics.Namespace + "_jwks_refresh_total"
	started := 1 + e.counter(t, name, map[string]string{"issuer": issuer, "result": metrics.JWKSUnknownKIDRefresh})
	advEventually(t, fmt.Sprintf("the %v fetches of jwks %s to end", started, issuer), func() bool {
		var ended float64
		for _, r := range metrics.JWKSResults() {
			if r != metrics.JWKSUnknownKIDRefresh {
				ended += e.counter(t, name, map[string]string{"issuer": issuer, "result": r})
			}
		}
		return ended >= started
	})
}

// advEventually polls cond until it holds, failing the test after 10 s (a
// bound for a broken build, not a speed expectation).
func advEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAdversarialJWKSAtStart starts with a hostile JWKS: no keys are ever
// installed from it and every token is refused with NoUsableKeys.
func TestAdversarialJWKSAtStart(t *testing.T) {
	keys := newAdvKeys(t)
	for _, mode := range []struct {
		name string
		mode int32
	}{{"huge", jwksHuge}, {"malformed", jwksMalformed}, {"empty", jwksEmpty}, {"500", jwksError}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newAdvEnv(t, keys, advOptions{noWait: true, before: func(e *advEnv) { e.jwksA.mode.Store(mode.mode) }})
			resp, body := e.do(t, http.MethodPost, "/v1/graphql", advBearer(e.token(t)), `{}`)
			if _, msg := advGQLError(t, resp.StatusCode, body); msg != "Could not verify JWT: JWSError NoUsableKeys" {
				t.Errorf("got %q, want NoUsableKeys", msg)
			}
			if err := e.remoteA.Ready(); err == nil {
				t.Errorf("ready with a %s JWKS", mode.name)
			}
			e.none(t)
		})
	}
}

// TestAdversarialUnknownKIDFlood sends hundreds of tokens naming random
// kids (and tokens without kid) for both JWKS issuers, concurrently: each
// endpoint sees at most one fetch per jwks.unknown_kid_refresh_interval.
func TestAdversarialUnknownKIDFlood(t *testing.T) {
	keys := newAdvKeys(t)
	e := newAdvEnv(t, keys, advOptions{})
	rs := jwt.SigningMethodRS256
	// Tokens are signed up front: RSA signing is slower than the proxy.
	var toks []string
	for i := range 200 {
		iss := advIssuerA
		if i%2 == 1 {
			iss = advIssuerB
		}
		kid := any(fmt.Sprintf("flood-%d", i))
		if i%10 == 0 {
			kid = nil
		}
		toks = append(toks, advSign(t, rs, keys.attacker.priv, map[string]any{"kid": kid}, e.claims(iss)))
	}
	flood := func() {
		work := make(chan string)
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for tok := range work {
					req, _ := http.NewRequest(http.MethodPost, "http://"+e.addr+"/v1/graphql", strings.NewReader(`{}`))
					req.Header = advBearer(tok)
					resp, err := e.client.Do(req)
					if err != nil {
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if bytes.Contains(b, []byte(`"ok":true`)) {
						accepted.Add(1)
					}
				}
			}()
		}
		for _, tok := range toks {
			work <- tok
		}
		close(work)
		wg.Wait()
		if n := accepted.Load(); n != 0 {
			t.Errorf("%d forged tokens accepted", n)
		}
	}
	a0, b0 := e.jwksA.fetches.Load(), e.jwksB.fetches.Load()
	flood()
	// A refresh outlives the requests that joined it when the JWKS answers
	// later than unknown_kid_wait; let it end, so that its fetch is not
	// counted in the next interval.
	e.refreshesEnded(t, "a")
	e.refreshesEnded(t, "b")
	if a, b := e.jwksA.fetches.Load()-a0, e.jwksB.fetches.Load()-b0; a > 1 || b > 1 {
		t.Errorf("200 unknown kids caused %d + %d fetches, want at most 1 each", a, b)
	}
	e.clock.Advance(auth.DefaultJWKSUnknownKIDRefreshInterval)
	a1, b1 := e.jwksA.fetches.Load(), e.jwksB.fetches.Load()
	flood()
	if a, b := e.jwksA.fetches.Load()-a1, e.jwksB.fetches.Load()-b1; a > 1 || b > 1 {
		t.Errorf("after one interval: %d + %d fetches, want at most 1 each", a, b)
	}
	e.none(t)
}

// ---------------------------------------------------------------------------
// Admin secret.

// TestAdversarialAdminSecretGuessing presents wrong admin secrets of every
// shape: all get the same access-denied answer, are counted as
// bad_admin_secret, and reach nothing; the right one is forwarded as admin.
func TestAdversarialAdminSecretGuessing(t *testing.T) {
	keys := newAdvKeys(t)
	// Every guess compared: the throttle has its own tests.
	e := newAdvEnv(t, keys, advOptions{throttle: proxy.AdminThrottleConfig{Failures: 1000, Window: time.Minute, MaxClients: 10}})
	wrong := map[string]http.Header{
		"same length":                    {"X-Hasura-Admin-Secret": {strings.Repeat("x", len(advAdminSecret))}},
		"same length, last byte":         {"X-Hasura-Admin-Secret": {advAdminSecret[:len(advAdminSecret)-1] + "g"}},
		"shorter prefix":                 {"X-Hasura-Admin-Secret": {advAdminSecret[:len(advAdminSecret)-1]}},
		"longer":                         {"X-Hasura-Admin-Secret": {advAdminSecret + "0"}},
		"very long":                      {"X-Hasura-Admin-Secret": {strings.Repeat(advAdminSecret, 100)}},
		"one byte":                       {"X-Hasura-Admin-Secret": {"a"}},
		"empty":                          {"X-Hasura-Admin-Secret": {""}},
		"other case":                     {"X-Hasura-Admin-Secret": {strings.ToUpper(advAdminSecret)}},
		"wrong then right":               {"X-Hasura-Admin-Secret": {"nope", advAdminSecret}},
		"comma list":                     {"X-Hasura-Admin-Secret": {"nope, " + advAdminSecret}},
		"access key":                     {"X-Hasura-Access-Key": {"nope"}},
		"wrong secret, right access key": {"X-Hasura-Admin-Secret": {"nope"}, "X-Hasura-Access-Key": {advAdminSecret}},
		"with a valid token":             {"X-Hasura-Admin-Secret": {"nope"}, "Authorization": {"Bearer " + e.token(t)}},
	}
	metric := map[string]string{"result": "denied", "reason": "bad_admin_secret"}
	before := e.counter(t, "hasura_auth_proxy_auth_decisions_total", metric)
	var firstBody []byte
	for name, h := range wrong {
		resp, body := e.do(t, http.MethodPost, "/v1/metadata", h, `{"type":"export_metadata","args":{}}`)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
		if firstBody == nil {
			firstBody = body
		} else if !bytes.Equal(body, firstBody) {
			t.Errorf("%s: answer %s differs from %s", name, body, firstBody)
		}
		if !bytes.Contains(body, []byte(`"code":"access-denied"`)) || bytes.Contains(body, []byte(advAdminSecret)) {
			t.Errorf("%s: body %s", name, body)
		}
	}
	if got := e.counter(t, "hasura_auth_proxy_auth_decisions_total", metric) - before; got != float64(len(wrong)) {
		t.Errorf("auth_decisions_total{reason=bad_admin_secret} grew by %v, want %d", got, len(wrong))
	}
	e.none(t)

	t.Run("right secret", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		h := http.Header{"X-Hasura-Admin-Secret": {advAdminSecret}, "X-Hasura-Role": {"editor"}, "X-Hasura-User-Id": {"chosen-by-admin"}}
		if _, body := e.do(t, http.MethodPost, "/v1/metadata", h, `{}`); !bytes.Contains(body, []byte(`"ok":true`)) {
			t.Fatalf("the right secret was refused: %s", body)
		}
		r := e.one(t)
		if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != "editor" {
			t.Errorf("X-Hasura-Role = %s, want editor (Hasura's admin semantics)", advGet(got))
		}
		if got := r.header("x-hasura-user-id"); len(got) != 1 || got[0] != "chosen-by-admin" {
			t.Errorf("x-hasura-user-id = %s, want the admin's value", advGet(got))
		}
	})
	t.Run("right secret with '_' spellings of the credentials", func(t *testing.T) {
		t.Cleanup(func() { e.hasura.reset(t) })
		h := http.Header{"X-Hasura-Admin-Secret": {advAdminSecret}, "X-Hasura-Admin_secret": {advCanary},
			"X-Hasura-Access_key": {advCanary}, "X-Hasura-Org-Id": {"o1"}}
		if resp, body := e.do(t, http.MethodPost, "/v1/metadata", h, `{}`); !bytes.Contains(body, []byte(`"ok":true`)) {
			t.Fatalf("got %d %s, want the admin request forwarded", resp.StatusCode, body)
		}
		r := e.one(t)
		if got := r.header("x-hasura-role"); len(got) != 1 || got[0] != "admin" {
			t.Errorf("X-Hasura-Role = %s, want admin", advGet(got))
		}
		if got := r.header("x-hasura-org-id"); len(got) != 1 || got[0] != "o1" {
			t.Errorf("x-hasura-org-id = %s, want the admin's value", advGet(got))
		}
	})
	t.Run("passthrough off", func(t *testing.T) {
		off := newAdvEnv(t, keys, advOptions{configure: func(c *auth.Config) { c.AdminSecretPassthrough = false }})
		resp, body := off.do(t, http.MethodPost, "/v1/metadata", http.Header{"X-Hasura-Admin-Secret": {advAdminSecret}}, `{}`)
		if resp.StatusCode != http.StatusUnauthorized || !bytes.Equal(body, firstBody) {
			t.Errorf("got %d %s, want the same access-denied answer", resp.StatusCode, body)
		}
		if n := off.counter(t, "hasura_auth_proxy_auth_decisions_total", map[string]string{"result": "denied", "reason": "admin_secret_disabled"}); n != 1 {
			t.Errorf("auth_decisions_total{reason=admin_secret_disabled} = %v, want 1", n)
		}
		off.none(t)
	})
}

// ---------------------------------------------------------------------------
// Fuzzing the handler.

// advRecorder is an upstream transport that records outgoing requests and
// answers 200.
type advRecorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *advRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{}`)), Request: req}, nil
}

func (r *advRecorder) take() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// FuzzProxyHeaders sends a valid token with arbitrary extra header lines on
// an arbitrary method and path through the handler. Whatever arrives
// upstream carries the admin secret only with exactly one role the token
// allows, and no x-hasura-* header but the token's session variables; an
// unauthenticated forward carries no x-hasura-* header at all; the guard
// never has to step in.
func FuzzProxyHeaders(f *testing.F) {
	const key = "fuzz-proxy-hs256-key-0123456789abcdef"
	cfg := auth.DefaultConfig()
	cfg.JWTSecret = &auth.JWTSecret{Type: "HS256", Key: key}
	cfg.UnauthorizedRole = "anonymous"
	authn, err := auth.New(auth.Options{Config: cfg, AdminSecret: advAdminSecret})
	if err != nil {
		f.Fatal(err)
	}
	rec := &advRecorder{}
	up := proxy.DefaultConfig()
	up.AdminSecret = advAdminSecret
	h, err := proxy.New(proxy.Options{Upstream: up, MaxBodyBytes: 1 << 20, ErrorStatus: "hasura", Auth: authn, Transport: rec})
	if err != nil {
		f.Fatal(err)
	}
	tok := advSign(f, jwt.SigningMethodHS256, []byte(key), nil, map[string]any{
		"sub": "u", "exp": time.Now().Add(24 * time.Hour).Unix(),
		"https://hasura.io/jwt/claims": map[string]any{
			"x-hasura-allowed-roles": []any{"user", "editor"}, "x-hasura-default-role": "user", "x-hasura-user-id": "user_1",
		},
	})
	for _, s := range []struct {
		lines, path string
		method      uint8
		withToken   bool
	}{
		{"X-Hasura-Role: editor\nX-Hasura-User-Id: x", "/v1/graphql", 0, true},
		{"x-hasura-role: admin", "/v1/graphql", 0, true},
		{"X_Hasura_Role: admin\nx_hasura_user_id: x\nX-Hasura-Admin_Secret: x", "/v1/graphql", 0, true},
		{"Connection: X-Hasura-Role\nX-Hasura-Role: editor", "/v1/metadata", 0, true},
		{"X-Hasura-Admin-Secret: guess", "/v1/graphql", 0, true},
		{"X-Hasura-Access-Key: guess", "/v1/graphql", 0, false},
		{"X-Hasura-User-Id: x", "/healthz", 1, false},
		{"X-Hasura-Role: x", "/v1/version", 2, true},
		{"Authorization: Basic x", "/v1/graphql", 0, true},
		{"Trailer: X-Hasura-Role\nTe: trailers", "/v1/graphql", 0, true},
		{"Upgrade: h2c\nConnection: Upgrade", "/v1/graphql", 0, true},
		{"X-Hasura-Role: editor\nX-Hasura-Role: user", "/v1/relay", 0, true},
	} {
		f.Add([]byte(s.lines), s.path, s.method, s.withToken)
	}
	methods := []string{http.MethodPost, http.MethodGet, http.MethodOptions, http.MethodHead, http.MethodPut, "PATCH"}
	f.Fuzz(func(t *testing.T, lines []byte, path string, method uint8, withToken bool) {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		hdr := http.Header{}
		for _, l := range strings.Split(string(lines), "\n") {
			name, value, ok := strings.Cut(l, ":")
			value = strings.TrimSpace(value)
			if !ok || !advValidName(name) || !advValidValue(value) {
				continue // Go's server refuses these before any handler
			}
			name = http.CanonicalHeaderKey(name)
			if name == "Upgrade" || name == "Host" || name == "Content-Length" || name == "Transfer-Encoding" {
				continue // the WebSocket path and framing are fuzzed elsewhere
			}
			hdr[name] = append(hdr[name], value)
		}
		if withToken {
			hdr["Authorization"] = append([]string{"Bearer " + tok}, hdr["Authorization"]...)
		}
		req := (&http.Request{
			Method: methods[int(method)%len(methods)], URL: u, RequestURI: path, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: hdr, Host: "hasura", RemoteAddr: "192.0.2.1:1234", Body: http.NoBody,
		}).WithContext(context.Background())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if strings.Contains(w.Body.String(), "refused by the proxy") {
			t.Fatalf("the guard had to refuse a request: headers %q", hdr)
		}
		requested := ""
		if vs := hdr["X-Hasura-Role"]; len(vs) > 0 {
			requested = vs[0]
		}
		for _, out := range rec.take() {
			var secrets, roles []string
			vars := 0
			for k, vs := range out.Header {
				n := advNorm(k)
				switch {
				case !strings.HasPrefix(n, "x-hasura-"):
				case k == "X-Hasura-Admin-Secret":
					secrets = vs
				case k == "X-Hasura-Role":
					roles = vs
				case k == "x-hasura-user-id" && len(vs) == 1 && vs[0] == "user_1":
					vars++ // SetSessionHeaders uses lower-case names
				default:
					t.Fatalf("%s: %q reached Hasura (request headers %q)", k, vs, hdr)
				}
			}
			if len(secrets) == 0 {
				if len(roles) != 0 || vars != 0 {
					t.Fatalf("session headers without the admin secret: %q", out.Header)
				}
				continue
			}
			if len(secrets) != 1 || secrets[0] != advAdminSecret || len(roles) != 1 {
				t.Fatalf("admin secret %d times, roles %q", len(secrets), roles)
			}
			switch want := requested; {
			case roles[0] == "anonymous" && !withToken:
			case want == "" && roles[0] == "user":
			case want != "" && roles[0] == want && (want == "user" || want == "editor"):
			default:
				t.Fatalf("role %q forwarded; requested %q, token %v", roles[0], requested, withToken)
			}
		}
	})
}

// advValidName reports whether Go's server accepts s as a header name.
func advValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// advValidValue reports whether Go's server accepts s as a header value.
func advValidValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// WebSocket.

// advWSUpstream is a stand-in Hasura WebSocket endpoint. It records each
// upgrade request's headers and the connection_init the proxy sends, then
// acknowledges it.
type advWSUpstream struct {
	*httptest.Server
	mu    sync.Mutex
	dials []advWSDial
}

type advWSDial struct {
	header http.Header
	init   []byte
}

func newAdvWSUpstream(t *testing.T) *advWSUpstream {
	t.Helper()
	u := &advWSUpstream{}
	up := websocket.Upgrader{Subprotocols: []string{"graphql-transport-ws", "graphql-ws"}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, init, _ := c.ReadMessage()
		u.mu.Lock()
		u.dials = append(u.dials, advWSDial{header: r.Header.Clone(), init: init})
		u.mu.Unlock()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_ack"}`))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *advWSUpstream) take() []advWSDial {
	u.mu.Lock()
	defer u.mu.Unlock()
	d := u.dials
	u.dials = nil
	return d
}

// check asserts the invariant on one upstream WebSocket: the upgrade
// request and the rewritten connection_init each carry the configured admin
// secret once with exactly the role the proxy chose, and nothing a client
// sent in an x-hasura-* header.
func (d advWSDial) check(t *testing.T, wantRole string) {
	t.Helper()
	rec := &advRecord{}
	for k, vs := range d.header {
		for _, v := range vs {
			rec.lines = append(rec.lines, [2]string{k, v})
		}
	}
	if err := advInvariant(rec, advAdminSecret); err != nil {
		t.Errorf("upgrade request to Hasura: %v", err)
	}
	if got := rec.header("x-hasura-role"); len(got) != 1 || got[0] != wantRole {
		t.Errorf("upgrade X-Hasura-Role = %s, want %s", advGet(got), wantRole)
	}
	var init struct {
		Type    string `json:"type"`
		Payload struct {
			Headers map[string]string `json:"headers"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(d.init, &init); err != nil || init.Type != "connection_init" {
		t.Fatalf("connection_init sent to Hasura: %s (%v)", d.init, err)
	}
	prec := &advRecord{}
	for k, v := range init.Payload.Headers {
		prec.lines = append(prec.lines, [2]string{k, v})
	}
	if got := prec.header("x-hasura-role"); len(got) != 1 || got[0] != wantRole {
		t.Errorf("connection_init x-hasura-role = %s, want %s", advGet(got), wantRole)
	}
	for _, l := range prec.lines {
		n := advNorm(l[0])
		if strings.HasPrefix(n, "x-hasura-") && strings.Contains(strings.ToLower(l[1]), advCanary) {
			t.Errorf("connection_init to Hasura carries the client's %s", l[0])
		}
		if n == "x-hasura-admin-secret" && l[1] != advAdminSecret {
			t.Errorf("connection_init carries a different admin secret")
		}
		if n == "x-hasura-access-key" {
			t.Errorf("connection_init carries %s", l[0])
		}
	}
}

// TestAdversarialWebSocket spoofs x-hasura-* headers in the upgrade request
// and in the connection_init payload, in every casing and spelling, and
// tries the credentials there: Hasura's socket is opened only for a
// verified session, with the proxy's role and nothing of the client's.
func TestAdversarialWebSocket(t *testing.T) {
	keys := newAdvKeys(t)
	ws := newAdvWSUpstream(t)
	// Wrong admin secrets are tried on purpose: keep the throttle out of it.
	e := newAdvEnv(t, keys, advOptions{upstream: ws.URL, throttle: proxy.AdminThrottleConfig{Failures: 1000, Window: time.Minute, MaxClients: 10}})
	tok := e.token(t)
	spoof := map[string]any{
		"X-Hasura-User-Id": advCanary, "x-hasura-org-id": advCanary, "X_HASURA_ROLE": "admin",
		"x-hasura-use-backend-only-permissions": advCanary, "X-Hasura-Admin_Secret": advCanary,
	}
	with := func(base map[string]any, extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	spoofHeader := http.Header{"X-Hasura-User-Id": {advCanary}, "X-Hasura-Org-Id": {advCanary}, "X_hasura_role": {"admin"}}
	tests := []struct {
		name     string
		upgrade  http.Header
		payload  map[string]any // payload.headers
		wantRole string         // "" means refused, Hasura never dialled
	}{
		{"token in payload, spoofs in payload", nil, with(spoof, map[string]any{"Authorization": "Bearer " + tok}), "user"},
		{"token in payload, spoofs in upgrade", spoofHeader, map[string]any{"Authorization": "Bearer " + tok}, "user"},
		{"token on upgrade, spoofs in payload", http.Header{"Authorization": {"Bearer " + tok}}, spoof, "user"},
		{"role selection in payload", nil, map[string]any{"Authorization": "Bearer " + tok, "x-hasura-role": "editor", "x-hasura-user-id": advCanary}, "editor"},
		{"role not allowed", nil, map[string]any{"Authorization": "Bearer " + tok, "X-Hasura-Role": "admin"}, ""},
		{"role not allowed on upgrade", http.Header{"X-Hasura-Role": {"admin"}}, map[string]any{"Authorization": "Bearer " + tok}, ""},
		{"wrong admin secret in payload", nil, map[string]any{"x-hasura-admin-secret": advCanary, "x-hasura-role": "admin"}, ""},
		{"wrong access key in payload", nil, map[string]any{"X-Hasura-Access-Key": advCanary, "Authorization": "Bearer " + tok}, ""},
		{"wrong admin secret on upgrade", http.Header{"X-Hasura-Admin-Secret": {advCanary}}, map[string]any{"Authorization": "Bearer " + tok}, ""},
		{"no token, only spoofs", spoofHeader, spoof, ""},
		{"CRLF in the payload token", nil, map[string]any{"Authorization": "Bearer " + tok + "\r\nX-Hasura-Role: admin"}, ""},
		{"two tokens differing in name case", nil, map[string]any{"Authorization": "Bearer " + tok, "authorization": "Bearer " + tok}, ""},
		{"token as a non-string", nil, map[string]any{"Authorization": []any{"Bearer " + tok}}, ""},
		{"right admin secret in payload", nil, map[string]any{"X-Hasura-Admin-Secret": advAdminSecret, "X-Hasura-Role": "editor"}, "editor"},
	}
	for _, tt := range tests {
		for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
			t.Run(tt.name+"/"+proto, func(t *testing.T) {
				d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
				c, resp, err := d.Dial("ws://"+e.addr+"/v1/graphql", tt.upgrade)
				if err != nil {
					t.Fatalf("dial: %v (%v)", err, resp)
				}
				defer c.Close()
				init, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]any{"headers": tt.payload}})
				if err := c.WriteMessage(websocket.TextMessage, init); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, msg, err := c.ReadMessage()
				acked := err == nil && bytes.Contains(msg, []byte("connection_ack"))
				dials := ws.take()
				if tt.wantRole == "" {
					if acked || len(dials) != 0 {
						t.Fatalf("accepted (%s), Hasura dialled %d times", msg, len(dials))
					}
					return
				}
				if !acked || len(dials) != 1 {
					t.Fatalf("got %s %v, Hasura dialled %d times; want an ack", msg, err, len(dials))
				}
				dials[0].check(t, tt.wantRole)
				if tt.name == "right admin secret in payload" {
					return
				}
				if got := advWSUserID(dials[0]); got != "user_1" {
					t.Errorf("x-hasura-user-id = %q, want the token's", got)
				}
			})
		}
	}
	t.Run("subscription before connection_init", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 5 * time.Second}
		c, _, err := d.Dial("ws://"+e.addr+"/v1/graphql", http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"id":"1","type":"subscribe","payload":{"query":"subscription { x }"}}`))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := c.ReadMessage(); err == nil {
			t.Errorf("got %s, want the socket closed", msg)
		}
		if n := len(ws.take()); n != 0 {
			t.Errorf("Hasura dialled %d times before connection_init", n)
		}
	})
}

func advWSUserID(d advWSDial) string {
	for k, vs := range d.header {
		if advNorm(k) == "x-hasura-user-id" && len(vs) == 1 {
			return vs[0]
		}
	}
	return ""
}

// advAuthFunc adapts a function to proxy.Authenticator: a faulty
// authenticator, to test the last check before Hasura on its own.
type advAuthFunc func(context.Context, http.Header) (*auth.Session, error)

func (f advAuthFunc) Authenticate(ctx context.Context, h http.Header) (*auth.Session, error) {
	return f(ctx, h)
}

// TestAdversarialGuardBehindFaultyAuth puts an authenticator that returns
// hostile sessions in front of the guard: whatever auth gets wrong, a
// request leaves with the admin secret only with one clean role equal to
// the session's, and no stray spelling of the credentials.
func TestAdversarialGuardBehindFaultyAuth(t *testing.T) {
	tests := []struct {
		name     string
		session  auth.Session
		wantRole string // "" means refused by the guard
	}{
		{"leading space in the role", auth.Session{Role: " admin"}, ""},
		{"trailing tab in the role", auth.Session{Role: "admin\t"}, ""},
		{"CRLF in the role", auth.Session{Role: "user\r\nX-Hasura-Role: admin"}, ""},
		{"NUL in the role", auth.Session{Role: "us\x00er"}, ""},
		{"empty role", auth.Session{Role: ""}, ""},
		{"lower-case role variable", auth.Session{Role: "user", Vars: []auth.Var{{Name: "x-hasura-role", Value: "admin"}}}, ""},
		{"underscore role variable", auth.Session{Role: "user", Vars: []auth.Var{{Name: "x_hasura_role", Value: "admin"}}}, ""},
		{"admin secret variable", auth.Session{Role: "user", Vars: []auth.Var{{Name: "x-hasura-admin_secret", Value: advCanary}}}, ""},
		{"access key variable", auth.Session{Role: "user", Vars: []auth.Var{{Name: "x-hasura-access-key", Value: advCanary}}}, ""},
		{"canonical role variable is overridden", auth.Session{Role: "user", Vars: []auth.Var{{Name: "X-Hasura-Role", Value: "admin"}}}, "user"},
		{"clean session", auth.Session{Role: "user", Vars: []auth.Var{{Name: "x-hasura-user-id", Value: "u"}}}, "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hasura := newAdvHasura(t, advAdminSecret)
			up := proxy.DefaultConfig()
			up.URL = hasura.url()
			up.AdminSecret = advAdminSecret
			s := tt.session
			h, err := proxy.New(proxy.Options{
				Upstream: up, MaxBodyBytes: 1 << 20, ErrorStatus: "hasura", Logger: zaptest.NewLogger(t),
				Auth: advAuthFunc(func(context.Context, http.Header) (*auth.Session, error) { return &s, nil }),
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			resp, err := http.Post(srv.URL+"/v1/graphql", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.wantRole == "" {
				if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(body, []byte("refused by the proxy")) {
					t.Errorf("got %d %s, want the guard's 502", resp.StatusCode, body)
				}
				if recs := hasura.records(); len(recs) != 0 {
					t.Errorf("Hasura received:\n%s", advShow(recs[0].raw))
				}
				return
			}
			recs := hasura.settle(t, 1)
			if len(recs) != 1 {
				t.Fatalf("Hasura received %d requests (%d %s)", len(recs), resp.StatusCode, body)
			}
			if got := recs[0].header("x-hasura-role"); len(got) != 1 || got[0] != tt.wantRole {
				t.Errorf("X-Hasura-Role = %s, want %s", advGet(got), tt.wantRole)
			}
		})
	}
}
