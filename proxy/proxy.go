package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"go.uber.org/zap"

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
	// Upstream is the `upstream:` section; it must be valid.
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

// Handler authenticates and forwards requests to Hasura, HTTP and
// WebSocket alike (see the package comment for what it guarantees). Build
// it with New; the zero value is not usable. It is safe for concurrent
// use.
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
