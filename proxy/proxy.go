// Package proxy is the HTTP front of hasura-auth-proxy: it authenticates
// each request with the auth package and forwards it to Hasura through
// httputil.ReverseProxy with Hasura's admin secret and the trusted
// x-hasura-* session headers.
//
// The forwarding contract, in order:
//
//  1. Every header whose name starts with "x-hasura-" (any case, "_" counted
//     as "-", every value) is removed from the request.
//  2. X-Hasura-Admin-Secret, X-Hasura-Role (never empty) and one lower-case
//     header per session variable are set from the verified session.
//  3. A last check in the transport refuses to send any request that carries
//     the admin secret without exactly one non-empty X-Hasura-Role equal to
//     the role the proxy chose.
//
// Refusals are answered exactly as Hasura's JWT mode answers them: the
// GraphQL error shape with HTTP 200 on /v1/graphql and /v1beta1/relay, the
// same body with the original status on /v1alpha1/graphql, and
// {"error","path","code"} elsewhere.
//
// Every answer carries the CORS headers of Options.CORS (cors.go), and the
// proxy answers CORS preflights itself.
//
// Other OPTIONS requests and GET/HEAD /healthz, /hasura/healthz and /v1/version
// pass without a token, and without the admin secret.
package proxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Config is the `upstream:` section: where Hasura is and how to reach it.
type Config struct {
	// URL is Hasura's base URL, e.g. http://127.0.0.1:8080.
	URL string `yaml:"url"`
	// AdminSecret is HASURA_GRAPHQL_ADMIN_SECRET; sent on every
	// authenticated request together with the role the proxy chose.
	AdminSecret auth.Secret `yaml:"admin_secret"`
	// DialTimeout bounds connecting to Hasura. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds waiting for Hasura's response headers
	// (a slow query) and answers 504 past it. Default 60s.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleConnTimeout closes idle upstream connections. Default 90s.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// MaxIdleConnsPerHost keeps this many idle connections to Hasura so
	// bursts do not pay for new connections. Default 256.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// ForwardAuthorization keeps the client's Authorization header (Hasura
	// actions with forward_client_headers use it). Default true.
	ForwardAuthorization bool `yaml:"forward_authorization"`
	// ForwardCookie keeps the client's Cookie header. Default true.
	ForwardCookie bool `yaml:"forward_cookie"`
	// AllowedPaths are the paths forwarded for a client without the admin
	// secret (exact paths, and "prefix/" entries); see AllowList. Default
	// DefaultAllowedPaths.
	AllowedPaths []string `yaml:"allowed_paths"`
}

// DefaultConfig returns the upstream defaults a config file overrides.
func DefaultConfig() Config {
	return Config{
		URL:                   "http://127.0.0.1:8080",
		DialTimeout:           5 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   256,
		ForwardAuthorization:  true,
		ForwardCookie:         true,
		AllowedPaths:          DefaultAllowedPaths(),
	}
}

// Validate reports every problem, naming the field. It does no I/O.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, errors.New("upstream.url: must be an absolute http(s) URL such as http://127.0.0.1:8080"))
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		errs = append(errs, errors.New("upstream.url: must not carry a query, fragment or credentials"))
	}
	if c.AdminSecret == "" {
		errs = append(errs, errors.New("upstream.admin_secret: required (set HASURA_GRAPHQL_ADMIN_SECRET); JWT mode requires an admin secret"))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("upstream.dial_timeout: must be positive"))
	}
	if c.ResponseHeaderTimeout <= 0 {
		errs = append(errs, errors.New("upstream.response_header_timeout: must be positive"))
	}
	if c.IdleConnTimeout <= 0 {
		errs = append(errs, errors.New("upstream.idle_conn_timeout: must be positive"))
	}
	if c.MaxIdleConnsPerHost < 1 {
		errs = append(errs, errors.New("upstream.max_idle_conns_per_host: must be at least 1"))
	}
	if _, err := ParseAllowList("upstream.allowed_paths", c.AllowedPaths); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Authenticator decides who a request is; *auth.Authenticator implements it.
// The error, when not nil, is an *auth.Error.
type Authenticator interface {
	Authenticate(ctx context.Context, h http.Header) (*auth.Session, error)
}

// Options configure New.
type Options struct {
	Upstream Config
	// MaxBodyBytes caps request bodies; larger ones are answered 413.
	MaxBodyBytes int64
	// ErrorStatus is auth.error_status: "hasura" or "http".
	ErrorStatus string
	Auth        Authenticator
	Logger      *zap.Logger
	Metrics     *metrics.Metrics
	// LogUserID adds x-hasura-user-id to access log lines.
	LogUserID bool
	// Transport overrides the upstream transport (tests); it is still
	// wrapped by the admin-secret guard.
	Transport http.RoundTripper
	// WebhookPath, when not empty, answers Hasura's auth-webhook protocol
	// on that exact path instead of forwarding (server.webhook_path; see
	// webhook.go).
	WebhookPath string
	// Now is the clock of webhook and WebSocket expiries; nil means
	// time.Now.
	Now func() time.Time
	// AfterFunc schedules the close of a WebSocket at its token's exp (the
	// delay read on Now's clock): it calls f in its own goroutine once d has
	// passed, and its result cancels that. Nil means time.AfterFunc. Tests
	// set Now and AfterFunc to one fake clock, so that expiry needs no
	// waiting.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// WebSocket configures GraphQL over WebSocket (ws.go); zero fields
	// take DefaultWebSocketConfig's values.
	WebSocket WebSocketConfig
	// CORS is the cross-origin policy of every answer (cors.go); nil sends
	// no CORS headers and forwards OPTIONS to Hasura.
	CORS *CORS
	// TrustedProxies says whose X-Forwarded-For names the client IP for
	// per-client limits (server.trusted_proxies). The zero value trusts
	// nobody: the client is the TCP peer.
	TrustedProxies TrustedProxies
	// AdminThrottle limits wrong admin secrets per client
	// (server.admin_secret_throttle); the zero value means
	// DefaultAdminThrottleConfig.
	AdminThrottle AdminThrottleConfig
	// Revocations, when not nil, is asked again once a WebSocket is
	// registered for CloseSessions (wsrevoke.go).
	Revocations auth.Revocations
	// Limits, when not nil, enforces API limits (limits.go).
	Limits Limits
}

// Handler authenticates and forwards requests to Hasura. It is safe for
// concurrent use.
type Handler struct {
	opts     Options
	target   *url.URL
	secret   []string // the admin secret as a one-value header
	httpMode bool
	rp       *httputil.ReverseProxy
	log      *zap.Logger
	metrics  *metrics.Metrics
	// serveWebSocket handles WebSocket upgrades; nil refuses them.
	serveWebSocket func(w http.ResponseWriter, r *http.Request, x *exchange)
	// websockets tracks the open sockets for CloseWebSockets (ws.go).
	websockets *wsProxy
	// allow is upstream.allowed_paths (allowlist.go).
	allow AllowList
	// throttle counts wrong admin secrets per client (adminthrottle.go).
	throttle *adminThrottle
}

// New builds a Handler. The upstream configuration must be valid.
func New(o Options) (*Handler, error) {
	if err := o.Upstream.Validate(); err != nil {
		return nil, err
	}
	if o.Auth == nil {
		return nil, errors.New("proxy: an authenticator is required")
	}
	if o.MaxBodyBytes <= 0 {
		return nil, errors.New("proxy: MaxBodyBytes must be positive")
	}
	target, _ := url.Parse(o.Upstream.URL)
	allow, _ := ParseAllowList("upstream.allowed_paths", o.Upstream.AllowedPaths)
	if o.AdminThrottle == (AdminThrottleConfig{}) {
		o.AdminThrottle = DefaultAdminThrottleConfig()
	}
	if err := o.AdminThrottle.Validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{
		opts:     o,
		target:   target,
		secret:   []string{o.Upstream.AdminSecret.Reveal()},
		httpMode: o.ErrorStatus == "http",
		log:      log,
		metrics:  o.Metrics,
		allow:    allow,
		throttle: newAdminThrottle(o.AdminThrottle, o.Now),
	}
	h.opts.Auth = &throttledAuth{next: o.Auth, throttle: h.throttle, h: h}
	tr := o.Transport
	if tr == nil {
		tr = NewTransport(o.Upstream)
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      &guard{next: tr},
		BufferPool:     newBufferPool(),
		ErrorHandler:   h.upstreamError,
		ModifyResponse: h.modifyResponse,
		ErrorLog:       zap.NewStdLog(log.Named("reverseproxy")),
	}
	ws, err := newWebSocketProxy(h, o.WebSocket)
	if err != nil {
		return nil, err
	}
	h.websockets, h.serveWebSocket = ws, ws.serve
	return h, nil
}

// NewTransport returns the tuned upstream transport: explicit timeouts,
// enough idle connections for bursts, never an environment proxy.
func NewTransport(c Config) *http.Transport {
	d := &net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   c.MaxIdleConnsPerHost,
		IdleConnTimeout:       c.IdleConnTimeout,
		ResponseHeaderTimeout: c.ResponseHeaderTimeout,
		TLSHandshakeTimeout:   c.DialTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

// exchange is the per-request state shared by the handler, the rewrite hook,
// the guard and the error handler. It also records the response status.
type exchange struct {
	http.ResponseWriter
	status   int
	rid      string
	endpoint string
	fam      family
	session  *auth.Session
	authErr  *auth.Error
	upErr    string
	// clientIP is set for requests that may present an admin secret, for
	// the admin-secret throttle (adminthrottle.go).
	clientIP netip.Addr
	// bodyFailed is set when reading the client's body failed:
	// bodyTimedOut, or bodyMalformed for anything else (a broken chunked
	// encoding, a connection cut mid-body).
	bodyFailed atomic.Int32
	// extra are access log fields of the request's handler (a WebSocket's
	// close code and reason).
	extra []zap.Field
}

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 {
		x.status = code
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return x.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// Flush forwards streaming flushes.
func (x *exchange) Flush() {
	if f, ok := x.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type exchangeKey struct{}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ep, fam := endpoint(r.URL.Path)
	x := &exchange{ResponseWriter: w, rid: requestID(r.Header.Get("X-Request-Id")), endpoint: ep, fam: fam}
	w.Header().Set("X-Request-Id", x.rid)
	closeIfChunked(w, r)
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	defer func() {
		d := time.Since(start)
		status := x.status
		if status == 0 {
			status = http.StatusOK
		}
		if status != http.StatusSwitchingProtocols {
			// An upgraded WebSocket lives for hours; it is counted by the
			// websocket_* metrics, not as a request.
			h.metrics.ObserveRequest(x.endpoint, status, d)
		}
		h.accessLog(r, x, status, d)
	}()
	// Browsers apply no CORS to WebSocket handshakes (the Origin check in
	// ws.go is what protects them), so upgrades get no CORS headers.
	if !isWebSocketUpgrade(r) && h.opts.CORS.apply(w.Header(), r) {
		preflight(x, r)
		return
	}

	if h.opts.WebhookPath != "" && r.URL.Path == h.opts.WebhookPath && r.URL.RawPath == "" {
		x.endpoint = metrics.EndpointWebhook
		h.serveWebhook(x, r)
		return
	}
	adminAttempt := presentsAdminSecret(r.Header)
	if adminAttempt || isWebSocketUpgrade(r) {
		x.clientIP = h.opts.TrustedProxies.ClientIP(r)
	}
	if isWebSocketUpgrade(r) {
		if h.serveWebSocket == nil {
			x.authErr = nil
			writeJSONError(x, http.StatusBadRequest, errorBody(familyOther, "not-supported", "websocket upgrades are not supported by this proxy"))
			return
		}
		h.serveWebSocket(x, r, x)
		return
	}
	// The body limit applies to every forwarded request, authenticated or
	// not.
	if r.ContentLength > h.opts.MaxBodyBytes {
		h.tooLarge(x)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &bodyReader{ReadCloser: http.MaxBytesReader(x, r.Body, h.opts.MaxBodyBytes), x: x}
	}
	allowed, why := h.allow.Allows(r)
	if !allowed && !adminAttempt && !adminPreflight(r) {
		// Before any token work: nothing outside the allow-list reaches
		// Hasura for a client without the admin secret.
		h.notAllowed(x, why)
		return
	}
	if unauthenticated(r) && (allowed || r.Method == http.MethodOptions) {
		// Forwarded stripped of every x-hasura-* header and without the
		// admin secret: Hasura answers these without authentication.
		h.rp.ServeHTTP(x, r)
		return
	}
	s, err := h.opts.Auth.Authenticate(r.Context(), r.Header)
	if err != nil {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			ae = &auth.Error{Code: "unexpected", Message: "internal error", Reason: metrics.Other, Status: http.StatusInternalServerError, Detail: err.Error()}
		}
		x.authErr = ae
		writeAuthError(x, fam, ae, h.httpMode)
		return
	}
	if !allowed && s.Result != auth.ResultAdmin {
		h.notAllowed(x, why)
		return
	}
	x.session = s
	if h.opts.Limits != nil {
		admitted, release := h.admitLimits(x, r)
		if admitted == nil {
			return
		}
		defer release()
		r = admitted
	}
	h.rp.ServeHTTP(x, r)
}

// inMemoryBodyBytes is the largest request body (of known length) the
// guard reads whole before handing the request to the transport.
// net/http's Transport writes an in-memory body (bytes.Reader) together
// with the request headers; for any other body, and ReverseProxy always
// wraps the body, it flushes the headers first: a second write syscall and
// TCP segment on every request. GraphQL requests are nearly always far
// smaller.
const inMemoryBodyBytes = 64 << 10

// readBody reads the n-byte body so the transport sees an in-memory reader.
// A read failure is not answered here: the bytes read and then the same
// error are replayed to the transport, which fails exactly as it would have
// while streaming (bodyReader has already recorded the failure).
func readBody(body io.Reader, n int64) io.ReadCloser {
	buf := make([]byte, n)
	var (
		m   int
		err error
	)
	for empty := 0; m < len(buf) && err == nil; {
		var k int
		k, err = body.Read(buf[m:])
		m += k
		if k > 0 {
			empty = 0
		} else if empty++; empty == 100 {
			err = io.ErrNoProgress // as bufio does with a reader that never yields
		}
	}
	if m == len(buf) && (err == nil || err == io.EOF) {
		return io.NopCloser(bytes.NewReader(buf))
	}
	// The loop ended on an error other than a clean EOF after n bytes.
	return io.NopCloser(io.MultiReader(bytes.NewReader(buf[:m]), failedRead{err}))
}

// failedRead returns err from every Read.
type failedRead struct{ err error }

func (f failedRead) Read([]byte) (int, error) { return 0, f.err }

// bodyReader notes that reading the client's body failed (a client too slow
// for server.read_timeout), so the error handler can tell that apart from
// Hasura failing. The transport reads the body on its own goroutine, hence
// the atomic.
// Values of exchange.bodyFailed.
const (
	bodyTimedOut  int32 = 1
	bodyMalformed int32 = 2
)

type bodyReader struct {
	io.ReadCloser
	x *exchange
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.x.bodyFailed.Store(bodyTimedOut)
		} else {
			b.x.bodyFailed.Store(bodyMalformed)
		}
	}
	return n, err
}

func (h *Handler) tooLarge(x *exchange) {
	x.upErr = "request body too large"
	writeJSONError(x, http.StatusRequestEntityTooLarge,
		errorBody(x.fam, "payload-too-large", fmt.Sprintf("request body is larger than %d bytes (server.max_body_bytes)", h.opts.MaxBodyBytes)))
}

// unauthenticated reports the requests Hasura answers without
// authentication. The path must be exact and unescaped, so encoded or
// dotted variants are authenticated like any other path.
func unauthenticated(r *http.Request) bool {
	if r.Method == http.MethodOptions {
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.URL.RawPath != "" {
		return false
	}
	switch r.URL.Path {
	case "/healthz", "/hasura/healthz", "/v1/version":
		return true
	}
	return false
}

func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// rewrite builds the upstream request: strip, then set (package comment).
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	x, _ := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.SetURL(h.target)
	setXForwarded(pr)
	out := pr.Out.Header
	StripHasuraHeaders(out)
	// Request trailers are never forwarded: a declared "Trailer:
	// X-Hasura-Role" would otherwise reach Hasura, and with it any value a
	// body-buffering step had copied. Hasura reads no request trailers.
	pr.Out.Trailer = nil
	if !isWebSocketUpgrade(pr.In) {
		// Only the WebSocket path may switch protocols: an h2c or other
		// upgrade forwarded with the admin secret would hand the client a
		// raw tunnel to Hasura if Hasura agreed. Without these headers
		// ReverseProxy also refuses any 101 answer (502).
		delete(out, "Upgrade")
		delete(out, "Connection")
	}
	if !h.opts.Upstream.ForwardAuthorization {
		delete(out, "Authorization")
	}
	if !h.opts.Upstream.ForwardCookie {
		delete(out, "Cookie")
	}
	if x == nil {
		return
	}
	out["X-Request-Id"] = []string{x.rid}
	if x.session != nil {
		SetSessionHeaders(out, h.secret, x.session)
	}
}

// setXForwarded is ProxyRequest.SetXForwarded with one allocation for the
// three values instead of one each. ReverseProxy removes the outbound
// X-Forwarded-* headers before Rewrite runs, so there is never a prior
// X-Forwarded-For to append to.
func setXForwarded(pr *httputil.ProxyRequest) {
	vals := make([]string, 3)
	out := pr.Out.Header
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		vals[0] = ip
		out["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(out, "X-Forwarded-For")
	}
	vals[1] = pr.In.Host
	out["X-Forwarded-Host"] = vals[1:2:2]
	vals[2] = "http"
	if pr.In.TLS != nil {
		vals[2] = "https"
	}
	out["X-Forwarded-Proto"] = vals[2:3:3]
}

// StripHasuraHeaders removes every header whose name, compared
// case-insensitively with "_" read as "-", starts with "x-hasura-".
func StripHasuraHeaders(h http.Header) {
	for k := range h {
		if isHasuraHeader(k) {
			delete(h, k)
		}
	}
}

func isHasuraHeader(name string) bool {
	const p = "x-hasura-"
	if len(name) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// SetSessionHeaders sets the admin secret, the role and the session
// variables of s on h, which must already be stripped of x-hasura-*
// headers. secret is the admin secret as a one-element slice (shared,
// never modified).
func SetSessionHeaders(h http.Header, secret []string, s *auth.Session) {
	// One backing array for every value instead of one per header; each
	// header's slice is capped so an Add on one cannot overwrite the next.
	vals := make([]string, len(s.Vars)+1)
	for i, v := range s.Vars {
		vals[i] = v.Value
		h[v.Name] = vals[i : i+1 : i+1]
	}
	vals[len(s.Vars)] = s.Role
	h["X-Hasura-Admin-Secret"] = secret
	h["X-Hasura-Role"] = vals[len(s.Vars):]
}

// modifyResponse drops Hasura's X-Request-Id and, under a CORS policy, its
// CORS headers: ServeHTTP already set the proxy's, and ReverseProxy adds
// upstream headers to them rather than replacing them.
func (h *Handler) modifyResponse(resp *http.Response) error {
	delete(resp.Header, "X-Request-Id")
	if h.opts.CORS != nil {
		stripUpstreamCORS(resp.Header)
	}
	return nil
}

// errGuard is returned by the transport guard; it never reaches a client.
var errGuard = errors.New("refused to send the admin secret without the role the proxy chose")

// guard is the last line of defence: whatever happened before, a request
// carrying the admin secret leaves only with exactly one non-empty
// X-Hasura-Role equal to the role of the session the proxy verified.
type guard struct{ next http.RoundTripper }

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkOutgoing(req); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if req.Body != nil && 0 < req.ContentLength && req.ContentLength <= inMemoryBodyBytes {
		// A shallow copy: RoundTrip must not modify the caller's request.
		r2 := *req
		r2.Body = readBody(req.Body, req.ContentLength)
		req = &r2
	}
	return g.next.RoundTrip(req)
}

func checkOutgoing(req *http.Request) error {
	var secret, role []string
	for k, vs := range req.Header {
		if !isHasuraHeader(k) {
			continue
		}
		switch {
		case headerNameIs(k, "x-hasura-admin-secret"):
			if k != "X-Hasura-Admin-Secret" {
				return fmt.Errorf("%w: stray admin secret header", errGuard)
			}
			secret = vs
		case headerNameIs(k, "x-hasura-role"):
			if k != "X-Hasura-Role" {
				return fmt.Errorf("%w: stray role header", errGuard)
			}
			role = vs
		case headerNameIs(k, "x-hasura-access-key"):
			return fmt.Errorf("%w: access key header", errGuard)
		}
	}
	if secret == nil {
		return nil
	}
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	switch {
	case x == nil || x.session == nil:
		return fmt.Errorf("%w: no verified session", errGuard)
	case len(secret) != 1 || len(role) != 1 || role[0] == "":
		return fmt.Errorf("%w: role header missing or repeated", errGuard)
	case role[0] != x.session.Role:
		return fmt.Errorf("%w: role header differs from the session", errGuard)
	case !validValue(role[0]) || strings.Trim(role[0], " \t") != role[0]:
		// HTTP trims surrounding blanks: " admin" would arrive as "admin".
		return fmt.Errorf("%w: role would not reach Hasura unchanged", errGuard)
	}
	return nil
}

// headerNameIs reports whether strings.ToLower(strings.ReplaceAll(name,
// "_", "-")) == want, for a lower-case ASCII want, without allocating on
// the ASCII names every request carries.
func headerNameIs(name, want string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			// Unicode case folding (e.g. U+212A KELVIN SIGN to "k"):
			// keep the exact semantics.
			return strings.ToLower(strings.ReplaceAll(name, "_", "-")) == want
		}
	}
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// upstreamError answers when Hasura could not be reached or answered badly.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		x = &exchange{ResponseWriter: w, fam: familyOther}
	}
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		h.tooLarge(x)
		return
	case errors.Is(err, errGuard):
		h.metrics.UpstreamError(metrics.UpstreamGuardRefused)
		h.log.Error("upstream request refused by the admin secret guard", zap.String("request_id", x.rid), zap.Error(err))
		x.upErr = "guard refused"
		writeJSONError(x, http.StatusBadGateway, errorBody(x.fam, "unexpected", "internal error: request refused by the proxy"))
	case x.bodyFailed.Load() == bodyTimedOut:
		// The client did not send its body in time: answer, in case it is
		// still listening.
		h.metrics.UpstreamError(metrics.UpstreamCanceled)
		x.upErr = "client body not received in time"
		writeJSONError(x, http.StatusRequestTimeout, errorBody(x.fam, "unexpected", "the request body was not received in time"))
	case x.bodyFailed.Load() == bodyMalformed:
		h.metrics.UpstreamError(metrics.UpstreamCanceled)
		x.upErr = "client body malformed or cut off"
		writeJSONError(x, http.StatusBadRequest, errorBody(x.fam, "bad-request", "the request body could not be read"))
	case h.timeLimitError(x, r):
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
		h.metrics.UpstreamError(metrics.UpstreamCanceled)
		x.upErr = "client canceled"
		x.status = 499
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		h.metrics.UpstreamError(metrics.UpstreamTimeout)
		x.upErr = "upstream timeout"
		writeJSONError(x, http.StatusGatewayTimeout, errorBody(x.fam, "unexpected", "Hasura did not answer in time"))
	default:
		h.metrics.UpstreamError(metrics.UpstreamUnreachable)
		x.upErr = "upstream unreachable"
		h.log.Warn("upstream unreachable", zap.String("request_id", x.rid), zap.Error(err))
		writeJSONError(x, http.StatusBadGateway, errorBody(x.fam, "unexpected", "Hasura is unreachable"))
	}
}

// accessLog writes one line per request. Nothing is built when the level is
// off.
func (h *Handler) accessLog(r *http.Request, x *exchange, status int, d time.Duration) {
	ce := h.log.Check(zapcore.InfoLevel, "request")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 12)
	fields = append(fields,
		zap.String("request_id", x.rid),
		zap.String("method", r.Method),
		zap.String("path", truncatePath(r.URL.Path)),
		zap.Int("status", status),
		zap.Duration("duration", d),
		zap.String("endpoint", x.endpoint),
	)
	switch {
	case x.session != nil:
		fields = append(fields, zap.String("auth", x.session.Result), zap.String("role", x.session.Role))
		if h.opts.LogUserID && x.session.UserID != "" {
			fields = append(fields, zap.String("user_id", x.session.UserID))
		}
	case x.authErr != nil:
		fields = append(fields, zap.String("auth", auth.ResultDenied), zap.String("reason", x.authErr.Reason))
		if x.authErr.Detail != "" {
			fields = append(fields, zap.String("detail", x.authErr.Detail))
		}
	}
	if x.upErr != "" {
		fields = append(fields, zap.String("error", x.upErr))
	}
	fields = append(fields, x.extra...)
	ce.Write(fields...)
}

func truncatePath(p string) string {
	if len(p) > 256 {
		return p[:256] + "…"
	}
	return p
}

// requestID keeps a well-formed client X-Request-Id (1-128 of
// [A-Za-z0-9._:-]) and otherwise makes a new random one.
func requestID(in string) string {
	if n := len(in); n > 0 && n <= 128 {
		ok := true
		for i := 0; i < n && ok; i++ {
			c := in[i]
			ok = c == '.' || c == '_' || c == ':' || c == '-' ||
				('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		}
		if ok {
			return in
		}
	}
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// copyBufferSize is the size of the reverse proxy's copy buffers.
const copyBufferSize = 32 << 10

// bufferPool lends the reverse proxy copy buffers. It pools array pointers:
// Put converts the slice back to the pointer of its array, which (unlike
// storing &v) allocates nothing.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(v []byte) {
	if cap(v) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(v[:copyBufferSize]))
	}
}
