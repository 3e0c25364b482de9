// # GraphQL over WebSocket
//
// For subscriptions, the proxy terminates the client's socket, authenticates
// its connection_init with the same Authenticator as HTTP, dials Hasura with
// the trusted session headers and relays messages both ways. The operator's
// guide is docs/websocket.md.
//
// Per connection there are two goroutines: the net/http handler goroutine,
// which runs the init phase and then relays client -> Hasura, and one
// goroutine relaying Hasura -> client. Each peer has one reader; data
// messages to the client are serialized by wsConn.cliWrite, and close
// frames (WriteControl) may be sent from anywhere. Any goroutine (a relay,
// the expiry timer, shutdown) ends a connection with wsConn.stop(cause):
// the first cause wins; it sends each peer its close frame (after the legacy
// connection_error, if any) and a read deadline closeGrace away. The readers
// keep reading, dropping messages, until the peer's close answer or the
// deadline; then the handler closes both TCP connections, server first as
// RFC 6455 asks.
package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// WebSocketConfig is the `websocket:` section: limits and switches of the
// GraphQL-over-WebSocket path. In proxy.Options, zero fields take the values
// of DefaultWebSocketConfig.
type WebSocketConfig struct {
	// MaxConnections caps open client sockets (those still waiting for
	// connection_init included). Upgrades beyond it are refused with 503.
	// Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxMessageBytes caps one message in either direction; a larger one
	// closes the socket with 1009. Live queries can return large results.
	// Default 8 MiB.
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// InitTimeout is how long a client may take to send connection_init
	// after the upgrade; then the socket is closed with 4408. Default 10s.
	InitTimeout time.Duration `yaml:"init_timeout"`
	// WriteTimeout bounds delivering one message to a peer (client or
	// Hasura). A peer that does not take it in time is disconnected, so a
	// slow reader never holds the other direction. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// HandshakeTimeout bounds connecting to Hasura's WebSocket, TCP dial and
	// upgrade included. Default 10s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ReadCookie reads the Cookie header of the upgrade request for
	// authentication, like HASURA_GRAPHQL_WS_READ_COOKIE; off by default, as
	// in Hasura, because any web page can open a socket that carries the
	// user's cookies. Requires AllowedOrigins or a server.cors_domain list,
	// which then stands in for AllowedOrigins (CheckReadCookie).
	ReadCookie bool `yaml:"read_cookie"`
	// AllowedOrigins, when not empty, refuses upgrades whose Origin header is
	// not in the list (exact "scheme://host[:port]", case-insensitive) with
	// Hasura's 400 access-denied. Requests without Origin (non-browser
	// clients) are not affected. Empty allows every origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// TypePrefixBytes is how much of a client message after connection_init
	// the proxy holds while its top-level "type" is unknown. A message that
	// ends within it is relayed whole; a longer one is streamed to Hasura as
	// it arrives, so a socket holds at most this much of a message however
	// large it is. A value above MaxMessageBytes acts as MaxMessageBytes.
	// Default 64 KiB.
	TypePrefixBytes int64 `yaml:"type_prefix_bytes"`
	// MessageTimeout bounds receiving one client message after
	// connection_init, from its first frame to its last; a message not
	// finished in time closes the socket with 4408. An idle socket has no
	// deadline (legacy clients send nothing while they listen). Default 30s.
	MessageTimeout time.Duration `yaml:"message_timeout"`
	// BufferBudgetBytes caps the bytes the whole process holds for client
	// messages that have not arrived whole (before connection_init, and the
	// prefixes and stream buffers after it). A read the budget cannot cover
	// closes its socket with 1013 (try again later). Default 32 MiB.
	BufferBudgetBytes int64 `yaml:"buffer_budget_bytes"`
	// MaxPendingPerIP caps the sockets one client IP (IPv6: its /64) may
	// hold open before their connection_init is done; further upgrades from
	// it get 503. Default 64.
	MaxPendingPerIP int `yaml:"max_pending_per_ip"`
	// MaxConnectionsPerUser caps the open sockets of one user (the token's
	// sub, per JWT secret); a socket over it is closed with 4429 after its
	// connection_init. The admin secret and the unauthorized role are not
	// capped per user. Default 100.
	MaxConnectionsPerUser int `yaml:"max_connections_per_user"`
}

// DefaultWebSocketConfig returns the defaults a config file overrides.
func DefaultWebSocketConfig() WebSocketConfig {
	return WebSocketConfig{
		MaxConnections:   10000,
		MaxMessageBytes:  8 << 20,
		InitTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		HandshakeTimeout: 10 * time.Second,

		TypePrefixBytes:       64 << 10,
		MessageTimeout:        30 * time.Second,
		BufferBudgetBytes:     32 << 20,
		MaxPendingPerIP:       64,
		MaxConnectionsPerUser: 100,
	}
}

// withDefaults fills zero fields from DefaultWebSocketConfig.
func (c WebSocketConfig) withDefaults() WebSocketConfig {
	d := DefaultWebSocketConfig()
	if c.MaxConnections == 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = d.InitTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	c.limitDefaults(d)
	return c
}

// Validate reports every problem, naming the field. It does no I/O.
func (c *WebSocketConfig) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("websocket.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.MaxConnections < 1 {
		add("max_connections", "must be at least 1")
	}
	if c.MaxMessageBytes < minMessageBytes || c.MaxMessageBytes > 1<<30 {
		add("max_message_bytes", "must be between %d and 1073741824, not %d", minMessageBytes, c.MaxMessageBytes)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"init_timeout", c.InitTimeout},
		{"write_timeout", c.WriteTimeout},
		{"handshake_timeout", c.HandshakeTimeout},
		{"message_timeout", c.MessageTimeout},
	} {
		if d.v <= 0 {
			add(d.name, "must be positive")
		}
	}
	for i, o := range c.AllowedOrigins {
		if _, ok := normalizeOrigin(o); !ok {
			add(fmt.Sprintf("allowed_origins[%d]", i), "must be an origin such as https://app.example.com (scheme, host and optional port only), not %q", o)
		}
	}
	errs = append(errs, c.validateLimits()...)
	return errors.Join(errs...)
}

// normalizeOrigin returns the lower-case "scheme://host[:port]" of an
// origin, without a default port, and whether it is one.
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	// Browsers leave the default port out of Origin.
	if u.Scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	return u.Scheme + "://" + host, true
}

// Subprotocols and the paths Hasura accepts upgrades on (the paths: checkPath
// in onConn, server/src-lib/Hasura/GraphQL/Transport/WebSocket.hs; the
// subprotocols: .../Transport/WebSocket/Server.hs).
const (
	protoTransportWS = "graphql-transport-ws"
	protoLegacy      = "graphql-ws"

	wsPathsMessage = "only '/v1/graphql', '/v1alpha1/graphql' and '/v1beta1/relay' are supported on websockets"
)

// Close codes of the graphql-transport-ws protocol (also used by Hasura on
// the legacy protocol where it has no code of its own).
const (
	closeBadRequest       = 4400
	closeUnauthorized     = 4401
	closeForbidden        = 4403
	closeInitTimeout      = 4408
	closeTooManyInitsCode = 4429
)

const (
	// minMessageBytes is the smallest websocket.max_message_bytes.
	minMessageBytes = 4 << 10
	// maxInitBytes caps messages before a successful connection_init: a
	// token and a few headers, never a large document.
	maxInitBytes = 64 << 10
	// closeGrace is how long the proxy waits for a peer to answer its close
	// frame (or hang up) before closing the TCP connection.
	closeGrace = time.Second
	// upstreamReadBuffer is the read buffer of Hasura's socket. Large
	// messages bypass it (they are read straight into the client's write
	// buffer), so it only holds frame headers and small messages.
	upstreamReadBuffer = 1 << 10
	// upstreamWriteBuffer is the size of the pooled write buffers of Hasura's
	// socket; idle sockets hold none.
	upstreamWriteBuffer = 16 << 10
)

// wsProxy serves WebSocket upgrades for a Handler. It is safe for concurrent
// use.
type wsProxy struct {
	h        *Handler
	cfg      WebSocketConfig
	log      *zap.Logger
	metrics  *metrics.Metrics
	origins  map[string]bool
	upgrader websocket.Upgrader
	dialer   websocket.Dialer
	base     url.URL // Hasura's ws:// or wss:// URL, without path
	budget   *wsBudget
	limits   *wsLimits

	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	closing bool
	wg      sync.WaitGroup
	// sessions finds the sockets of a revoked session (wsrevoke.go).
	sessions wsSessions
}

func newWebSocketProxy(h *Handler, cfg WebSocketConfig) (*wsProxy, error) {
	cfg = cfg.withDefaults()
	if err := errors.Join(cfg.Validate(), CheckReadCookie(cfg, h.opts.CORS)); err != nil {
		return nil, err
	}
	p := &wsProxy{
		h:       h,
		cfg:     cfg,
		log:     h.log.Named("websocket"),
		metrics: h.metrics,
		conns:   make(map[*wsConn]struct{}),
		base:    *h.target,
		budget:  newWSBudget(cfg.BufferBudgetBytes, h.metrics),
		limits:  newWSLimits(cfg),
	}
	p.base.Path, p.base.RawPath = "", ""
	if p.base.Scheme == "https" {
		p.base.Scheme = "wss"
	} else {
		p.base.Scheme = "ws"
	}
	if len(cfg.AllowedOrigins) > 0 {
		p.origins = make(map[string]bool, len(cfg.AllowedOrigins))
		for _, o := range cfg.AllowedOrigins {
			n, _ := normalizeOrigin(o)
			p.origins[n] = true
		}
	}
	p.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteTimeout,
		// Zero buffer sizes and no pool: the socket reuses the 4 KiB read
		// and write buffers net/http already allocated for the connection
		// (and keeps referenced while the handler runs), so a client socket
		// costs no extra buffer memory.
		// The Origin policy is applied before Upgrade, with Hasura's answer.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeJSONError(w, status, wsErrorBody("bad-request", reason.Error()))
		},
	}
	netDialer := &net.Dialer{Timeout: h.opts.Upstream.DialTimeout, KeepAlive: 30 * time.Second}
	p.dialer = websocket.Dialer{
		NetDialContext:   netDialer.DialContext,
		Proxy:            nil,
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   upstreamReadBuffer,
		WriteBufferSize:  upstreamWriteBuffer,
		WriteBufferPool:  &sync.Pool{},
	}
	return p, nil
}

// CloseWebSockets closes every proxied WebSocket with 1001 (going away) on
// both sides, refuses new upgrades with 503, and waits until their handlers
// have finished. When ctx ends first, the remaining connections are cut
// without a close handshake and ctx's error is returned. Call it during
// shutdown alongside http.Server.Shutdown, which does not track hijacked
// connections.
func (h *Handler) CloseWebSockets(ctx context.Context) error {
	if h.websockets == nil {
		return nil
	}
	return h.websockets.closeAll(ctx)
}

func (p *wsProxy) closeAll(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	conns := make([]*wsConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	// In parallel: a stop may wait for a slow client to take its close.
	var stops sync.WaitGroup
	for _, c := range conns {
		stops.Add(1)
		go func() {
			defer stops.Done()
			c.stop(causeShutdown())
		}()
	}
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		stops.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	for c := range p.conns {
		c.kill()
	}
	p.mu.Unlock()
	<-done
	return ctx.Err()
}

var (
	errShuttingDown = errors.New("shutting down")
	errTooMany      = errors.New("too many connections")
)

func (p *wsProxy) register(c *wsConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return errShuttingDown
	}
	if len(p.conns) >= p.cfg.MaxConnections {
		return errTooMany
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	return nil
}

func (p *wsProxy) unregister(c *wsConn) {
	p.untrack(c)
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	p.wg.Done()
}

// wsErrorBody is the body Hasura answers refused handshakes with: one
// GraphQL error object, not wrapped in "errors".
func wsErrorBody(code, message string) []byte {
	b, err := json.Marshal(gqlErrorItem{Message: message, Extensions: gqlExtensions{Path: "$", Code: code}})
	if err != nil {
		return []byte(`{"message":"internal error","extensions":{"path":"$","code":"unexpected"}}`)
	}
	return b
}

// upgradeWriter lets gorilla hijack the connection behind the exchange and
// records the 101 for the access log.
type upgradeWriter struct{ *exchange }

func (u upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(u.exchange.ResponseWriter).Hijack()
	if err == nil {
		u.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// serve handles one upgrade request; it returns when the connection is
// closed.
func (p *wsProxy) serve(w http.ResponseWriter, r *http.Request, x *exchange) {
	switch r.URL.Path {
	case "/v1/graphql", "/v1alpha1/graphql", "/v1beta1/relay":
	default:
		x.upErr = "websocket path not supported"
		writeJSONError(w, http.StatusNotFound, wsErrorBody("not-found", wsPathsMessage))
		return
	}
	if r.URL.RawPath != "" {
		// An escaped variant of a GraphQL path is not that path.
		x.upErr = "websocket path not supported"
		writeJSONError(w, http.StatusNotFound, wsErrorBody("not-found", wsPathsMessage))
		return
	}
	if p.origins != nil {
		if o := r.Header.Get("Origin"); o != "" {
			if n, ok := normalizeOrigin(o); !ok || !p.origins[n] {
				x.upErr = "origin not allowed"
				writeJSONError(w, http.StatusBadRequest, wsErrorBody(auth.CodeAccessDenied, "received origin header does not match configured CORS domains"))
				return
			}
		}
	} else if p.cfg.ReadCookie {
		// CheckReadCookie made sure the CORS policy is an origin list.
		if o := r.Header.Get("Origin"); o != "" && !p.h.opts.CORS.Allows(o) {
			x.upErr = "origin not allowed"
			writeJSONError(w, http.StatusBadRequest, wsErrorBody(auth.CodeAccessDenied, "received origin header does not match configured CORS domains"))
			return
		}
	}
	proto, echo := chooseSubprotocol(r.Header)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := &wsConn{p: p, x: x, proto: proto, ctx: ctx, cancel: cancel}
	switch p.register(c) {
	case errShuttingDown:
		x.upErr = "shutting down"
		w.Header().Set("Retry-After", "0")
		writeJSONError(w, http.StatusServiceUnavailable, wsErrorBody("unexpected", "Server is shutting down"))
		return
	case errTooMany:
		p.metrics.WebSocketOpened()
		p.metrics.WebSocketClosed(metrics.CloseTooManyConnections)
		x.upErr = "too many websocket connections"
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, wsErrorBody("unexpected",
			"too many WebSocket connections (websocket.max_connections)"))
		return
	}
	defer p.unregister(c)
	if !p.admitPending(w, r, c) {
		return
	}
	defer c.releaseLimits()

	respHeader := http.Header{"X-Request-Id": {x.rid}}
	if echo {
		respHeader["Sec-Websocket-Protocol"] = []string{proto}
	}
	conn, err := p.upgrader.Upgrade(upgradeWriter{x}, r, respHeader)
	if err != nil {
		// Upgrade has answered the client (or the hijacked connection is
		// already closed).
		if x.upErr == "" {
			x.upErr = "websocket handshake failed"
		}
		return
	}
	p.metrics.WebSocketOpened()
	c.run(r, conn)
	c.mu.Lock()
	cause := *c.cause
	c.mu.Unlock()
	p.metrics.WebSocketClosed(cause.metric)
	if cause.logErr != "" && x.upErr == "" {
		x.upErr = cause.logErr
	}
	x.extra = append(x.extra,
		zap.String("subprotocol", proto),
		zap.Int("close_code", cause.logCode),
		zap.String("close_reason", cause.metric),
	)
}

// chooseSubprotocol applies Hasura's rule: graphql-transport-ws only when it
// is exactly the one subprotocol asked for, otherwise the legacy graphql-ws.
// echo reports whether the client offered the chosen name, so it may be
// named in the answer (a client that offered none must not get one).
func chooseSubprotocol(h http.Header) (proto string, echo bool) {
	vs := h["Sec-Websocket-Protocol"]
	if len(vs) == 1 && strings.TrimSpace(vs[0]) == protoTransportWS {
		return protoTransportWS, true
	}
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == protoLegacy {
				return protoLegacy, true
			}
		}
	}
	return protoLegacy, false
}

// wsCause says why a connection ends and what each side is told.
type wsCause struct {
	// metric is the websocket_closed_total reason.
	metric string
	// clientCode/clientText is the close frame for the client; 0 sends none
	// (the client closed first, or its socket is unusable).
	clientCode int
	clientText string
	// clientMsg is a data message sent to the client before its close frame
	// (the legacy protocol's connection_error).
	clientMsg []byte
	// upCode/upText is the close frame for Hasura; 0 sends none.
	upCode int
	upText string
	// logCode is the close code the client sent or got, for the access log
	// (1006: the connection ended without one).
	logCode int
	// logErr is the access log's error field.
	logErr string
}

func causeShutdown() wsCause {
	return wsCause{metric: metrics.CloseShutdown, clientCode: websocket.CloseGoingAway, clientText: "server shutting down",
		upCode: websocket.CloseGoingAway, logCode: websocket.CloseGoingAway}
}

// wsConn is one proxied connection.
type wsConn struct {
	p      *wsProxy
	x      *exchange
	proto  string
	ctx    context.Context
	cancel context.CancelFunc
	timer  func() bool   // stops the expiry timer; nil when none
	upDone chan struct{} // closed when the Hasura -> client relay ends
	// cliReadDone: a read from the client failed (gorilla's reader is then
	// unusable). Handler goroutine only.
	cliReadDone bool
	scan        typeScanner // client message scanner (handler goroutine only)
	// pendingIP holds a max_pending_per_ip slot while pending; userKey a
	// max_connections_per_user slot when set. Handler goroutine only.
	pendingIP netip.Addr
	pending   bool
	userKey   string

	// upgrade is the upgrade request, for API limits (limits.go).
	upgrade *http.Request

	// cliWrite serializes data messages to the client: the Hasura -> client
	// relay holds it for each message; stop takes it to send the legacy
	// connection_error. cliDirty (guarded by it): a message was left
	// unfinished or a write failed, so no further data message may be sent
	// (close frames still may).
	cliWrite sync.Mutex
	cliDirty bool

	mu         sync.Mutex
	cause      *wsCause
	cli        *websocket.Conn // nil until the upgrade
	up         *websocket.Conn // nil until Hasura is dialled
	cliClosing bool            // the cause was delivered to the client
	upClosing  bool            // the cause was delivered to Hasura
	finished   bool
}

// stop ends the connection for cause unless it is already ending: the
// first cause wins. It sends each side its close frame at once and gives
// each peer closeGrace to answer; the relays keep reading (and drop what
// they read) until the answer comes. Safe from any goroutine; it may block
// up to websocket.write_timeout to deliver a legacy connection_error.
func (c *wsConn) stop(cause wsCause) {
	c.mu.Lock()
	if c.cause != nil || c.finished {
		c.mu.Unlock()
		return
	}
	c.cause = &cause
	c.mu.Unlock()
	c.cancel()
	c.closeClient()
	c.closeUpstream()
}

// stopped reports whether a cause has been recorded.
func (c *wsConn) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause != nil
}

// closeClient delivers the cause to the client once: its data message,
// then its close frame, then a read deadline for the client's answer.
func (c *wsConn) closeClient() {
	c.mu.Lock()
	if c.cause == nil || c.cli == nil || c.cliClosing {
		c.mu.Unlock()
		return
	}
	c.cliClosing = true
	cause, cli, up := *c.cause, c.cli, c.up
	c.mu.Unlock()
	if cause.clientMsg != nil {
		if !c.cliWrite.TryLock() {
			// The relay is in the middle of a message: let it finish it
			// if Hasura sends the rest in time.
			if up != nil {
				_ = up.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
			}
			c.cliWrite.Lock()
		}
		if !c.cliDirty {
			_ = cli.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
			if err := cli.WriteMessage(websocket.TextMessage, cause.clientMsg); err != nil {
				c.cliDirty = true
			}
		}
		c.cliWrite.Unlock()
	}
	sendClose(cli, cause.clientCode, cause.clientText)
}

// closeUpstream delivers the cause to Hasura once.
func (c *wsConn) closeUpstream() {
	c.mu.Lock()
	if c.cause == nil || c.up == nil || c.upClosing {
		c.mu.Unlock()
		return
	}
	c.upClosing = true
	cause, up := *c.cause, c.up
	c.mu.Unlock()
	sendClose(up, cause.upCode, cause.upText)
}

// sendClose sends a close frame (unless code is 0) and bounds how long the
// peer's reader may still wait for its answer: closeGrace after a close
// frame, no time at all without one.
func sendClose(conn *websocket.Conn, code int, text string) {
	wait := time.Duration(0)
	if code != 0 {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(closeGrace))
		wait = closeGrace
	}
	_ = conn.NetConn().SetReadDeadline(time.Now().Add(wait))
}

// kill closes both TCP connections at once (shutdown grace exhausted).
func (c *wsConn) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause == nil {
		s := causeShutdown()
		c.cause = &s
	}
	c.cancel()
	if c.cli != nil {
		_ = c.cli.NetConn().Close()
	}
	if c.up != nil {
		_ = c.up.NetConn().Close()
	}
}

// run drives the connection from the upgrade to the end.
func (c *wsConn) run(r *http.Request, cli *websocket.Conn) {
	cli.SetReadLimit(maxInitBytes)
	// The init deadline is set before the conn is published, so the
	// deadline of a later stop always overrides it.
	_ = cli.NetConn().SetReadDeadline(time.Now().Add(c.p.cfg.InitTimeout))
	c.upgrade = r
	c.mu.Lock()
	c.cli = cli
	c.mu.Unlock()
	c.closeClient() // a stop that came before the upgrade

	if !c.stopped() {
		if s, authHeaders := c.awaitInit(r); s != nil {
			c.donePending()
			if c.admitUser(s) && c.connectUpstream(r, s, authHeaders) {
				c.relay()
			}
		}
	}
	c.finish()
}

// awaitInit handles the messages before connection_init and authenticates
// it. It returns the session, or nil after recording a cause.
func (c *wsConn) awaitInit(r *http.Request) (*auth.Session, http.Header) {
	for {
		data, release, err := c.readInitMessage()
		if err != nil {
			c.cliReadDone = true
			c.stop(c.initReadCause(err))
			return nil, nil
		}
		msg, perr := parseClientMessage(data)
		release()
		if perr != nil {
			if !c.invalidMessage(perr) {
				return nil, nil
			}
			continue
		}
		switch msg.Type {
		case "connection_init":
			headers, perr := parseInitPayload(msg.Payload)
			if perr != nil {
				if !c.invalidMessage(perr) {
					return nil, nil
				}
				continue
			}
			return c.authenticate(r, headers)
		case "ping":
			// Hasura answers pings on both protocols, before init too.
			if !c.writeClient(pongMessage(msg.Payload)) {
				return nil, nil
			}
		case "pong":
		case "subscribe":
			if c.proto == protoTransportWS {
				c.stop(wsCause{metric: metrics.CloseProtocolError, clientCode: closeUnauthorized, clientText: hasuraCloseReason(closeUnauthorized, "Unauthorized"),
					logCode: closeUnauthorized, logErr: "subscribe before connection_init"})
				return nil, nil
			}
			if !c.invalidMessage(errUnexpectedType) {
				return nil, nil
			}
		case "complete", "stop":
			// Nothing is running yet; there is nothing to stop.
		case "start":
			if c.proto == protoTransportWS {
				if !c.invalidMessage(errUnexpectedType) {
					return nil, nil
				}
				continue
			}
			// Hasura: an error for the operation, then complete; the socket
			// stays open.
			id, ok := stringID(msg.ID)
			if !ok {
				if !c.invalidMessage(errors.New("start message without a string id")) {
					return nil, nil
				}
				continue
			}
			_, fam := endpoint(r.URL.Path)
			if !c.writeClient(startErrorMessage(id, fam, "start received before the connection is initialised")) ||
				!c.writeClient(completeMessage(id)) {
				return nil, nil
			}
		case "connection_terminate":
			if c.proto == protoLegacy {
				c.stop(wsCause{metric: metrics.CloseClientClosed, clientCode: websocket.CloseNormalClosure,
					clientText: "GQL_CONNECTION_TERMINATE received", logCode: websocket.CloseNormalClosure})
				return nil, nil
			}
			if !c.invalidMessage(errUnexpectedType) {
				return nil, nil
			}
		default:
			if !c.invalidMessage(errUnexpectedType) {
				return nil, nil
			}
		}
	}
}

// invalidMessage answers a message the proxy cannot parse before init, as
// Hasura does: graphql-transport-ws closes with 4400, the legacy protocol
// sends connection_error and carries on. It reports whether to carry on.
func (c *wsConn) invalidMessage(err error) bool {
	if c.proto == protoTransportWS {
		c.stop(wsCause{metric: metrics.CloseProtocolError, clientCode: closeBadRequest,
			clientText: hasuraCloseReason(closeBadRequest, "Parsing client message failed: parsing ClientMessage failed: "+err.Error()),
			logCode:    closeBadRequest, logErr: "invalid message before connection_init"})
		return false
	}
	return c.writeClient(connectionErrorMessage("parsing ClientMessage failed: " + err.Error()))
}

// writeClient sends one data message to the client from the handler
// goroutine (before the relay starts). It records a cause on failure.
func (c *wsConn) writeClient(msg []byte) bool {
	c.cliWrite.Lock()
	_ = c.cli.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
	err := c.cli.WriteMessage(websocket.TextMessage, msg)
	if err != nil {
		c.cliDirty = true
	}
	c.cliWrite.Unlock()
	if err != nil {
		c.stop(c.clientWriteCause(err))
		return false
	}
	return true
}

// initReadCause explains a failed read before init: the init timeout, a
// stop (the cause is already recorded), or the client.
func (c *wsConn) initReadCause(err error) wsCause {
	if errors.Is(err, errBudget) {
		return c.budgetCause()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !c.stopped() {
		return wsCause{metric: metrics.CloseInitTimeout, clientCode: closeInitTimeout,
			clientText: hasuraCloseReason(closeInitTimeout, "Connection initialisation timeout"), logCode: closeInitTimeout, logErr: "no connection_init in time"}
	}
	return c.clientReadCause(err)
}

// authHeaders builds the headers Hasura would authenticate the init with:
// payload.headers first, then the upgrade request's headers without the
// handshake ones, and without Cookie unless websocket.read_cookie. The
// admin secret is the exception: Hasura's header map lets the upgrade
// request's value override the payload's, so it goes first.
func (c *wsConn) authHeaders(upgrade http.Header, payload []headerField) http.Header {
	h := make(http.Header, len(upgrade)+len(payload))
	for _, f := range payload {
		k := http.CanonicalHeaderKey(f.name)
		h[k] = append(h[k], f.value)
	}
	for k, vs := range upgrade {
		switch k {
		case "Sec-Websocket-Key", "Sec-Websocket-Version", "Upgrade", "Connection":
			continue
		case "Cookie":
			if !c.p.cfg.ReadCookie {
				continue
			}
		case "X-Hasura-Admin-Secret", "X-Hasura-Access-Key":
			h[k] = append(slices.Clone(vs), h[k]...)
			continue
		}
		h[k] = append(h[k], vs...)
	}
	return h
}

// authenticate runs the same Authenticate as HTTP and answers a refusal as
// Hasura does. It returns the session, or nil after recording a cause.
func (c *wsConn) authenticate(r *http.Request, payload []headerField) (*auth.Session, http.Header) {
	h := c.authHeaders(r.Header, payload)
	s, err := c.p.h.opts.Auth.Authenticate(c.ctx, h)
	if c.stopped() {
		// Shut down (or timed out) while authenticating.
		return nil, nil
	}
	if err != nil {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			ae = &auth.Error{Code: "unexpected", Message: "internal error", Reason: metrics.Other,
				Status: http.StatusInternalServerError, Detail: err.Error()}
		}
		c.x.authErr = ae
		if c.proto == protoTransportWS {
			c.stop(wsCause{metric: metrics.CloseInitFailed, clientCode: closeForbidden, clientText: hasuraCloseReason(closeForbidden, "Forbidden"),
				logCode: closeForbidden})
		} else {
			c.stop(wsCause{metric: metrics.CloseInitFailed, clientMsg: connectionErrorMessage(ae.Message),
				clientCode: closeBadRequest, clientText: hasuraCloseReason(closeBadRequest, "Connection initialization failed: "+ae.Message),
				logCode: closeBadRequest})
		}
		return nil, nil
	}
	c.x.session = s
	if !c.p.track(c, s) {
		return nil, nil
	}
	if !s.Exp.IsZero() {
		// Hasura's expiry timer ignores allowed_skew: a token accepted
		// within the skew but already past exp is closed at once.
		d := s.Exp.Sub(c.p.h.now())
		if d <= 0 {
			c.stop(c.expiredCause())
			return nil, nil
		}
		c.timer = c.p.h.afterFunc(d, func() { c.stop(c.expiredCause()) })
	}
	return s, h
}

func (c *wsConn) expiredCause() wsCause {
	if c.proto == protoTransportWS {
		return wsCause{metric: metrics.CloseTokenExpired, clientCode: closeForbidden, clientText: "token expired",
			upCode: websocket.CloseNormalClosure, logCode: closeForbidden, logErr: "token expired"}
	}
	return wsCause{metric: metrics.CloseTokenExpired, clientMsg: connectionErrorMessage(auth.ErrExpired.Message),
		clientCode: closeBadRequest, clientText: "token expired", upCode: websocket.CloseNormalClosure,
		logCode: closeBadRequest, logErr: "token expired"}
}

// upstreamHeaders are the headers of the upgrade request to Hasura: the
// trusted session (strip-then-set: the map starts empty), the request id and
// X-Forwarded-*. Nothing else of the client's request is sent.
func (c *wsConn) upstreamHeaders(r *http.Request, s *auth.Session) http.Header {
	h := make(http.Header, len(s.Vars)+6)
	SetSessionHeaders(h, c.p.h.secret, s)
	h["X-Request-Id"] = []string{c.x.rid}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h["X-Forwarded-For"] = []string{ip}
	}
	h["X-Forwarded-Host"] = []string{r.Host}
	if r.TLS != nil {
		h["X-Forwarded-Proto"] = []string{"https"}
	} else {
		h["X-Forwarded-Proto"] = []string{"http"}
	}
	return h
}

// connectUpstream dials Hasura with the trusted headers and sends the
// rewritten connection_init. It reports whether the relay may start.
func (c *wsConn) connectUpstream(r *http.Request, s *auth.Session, authHeaders http.Header) bool {
	hdr := c.upstreamHeaders(r, s)
	// The last line of defence of the HTTP path also guards the dial.
	guarded := (&http.Request{Header: hdr}).WithContext(context.WithValue(c.ctx, exchangeKey{}, c.x))
	if err := checkOutgoing(guarded); err != nil {
		c.p.metrics.UpstreamError(metrics.UpstreamGuardRefused)
		c.p.log.Error("websocket dial refused by the admin secret guard", zap.String("request_id", c.x.rid), zap.Error(err))
		c.stop(wsCause{metric: metrics.CloseUpstreamUnreachable, clientCode: websocket.CloseInternalServerErr,
			clientText: "internal error", logCode: websocket.CloseInternalServerErr, logErr: "guard refused"})
		return false
	}
	initMsg := c.upstreamInit(hdr, authHeaders)

	u := c.p.base
	u.Path = r.URL.Path
	d := c.p.dialer
	d.Subprotocols = []string{c.proto}
	up, resp, err := d.DialContext(c.ctx, u.String(), hdr)
	if err == nil && up.Subprotocol() != c.proto {
		_ = up.Close()
		err = fmt.Errorf("hasura chose subprotocol %q, not %q", up.Subprotocol(), c.proto)
	}
	if err != nil {
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if c.stopped() {
			return false
		}
		kind := metrics.UpstreamUnreachable
		var ne net.Error
		switch {
		case resp != nil:
			kind = metrics.UpstreamBadResponse
		case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
			kind = metrics.UpstreamTimeout
		}
		c.p.metrics.UpstreamError(kind)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		c.p.log.Warn("hasura websocket unreachable", zap.String("request_id", c.x.rid), zap.Int("status", status), zap.Error(err))
		// 1013 (try again later): graphql-ws clients retry it, unlike 1011.
		c.stop(wsCause{metric: metrics.CloseUpstreamUnreachable, clientCode: websocket.CloseTryAgainLater,
			clientText: "Hasura is unavailable", logCode: websocket.CloseTryAgainLater, logErr: "upstream unreachable"})
		return false
	}
	up.SetReadLimit(c.p.cfg.MaxMessageBytes)
	c.mu.Lock()
	c.up = up
	c.mu.Unlock()
	if c.stopped() {
		// Stopped while dialling: Hasura gets the close frame too.
		c.closeUpstream()
		return false
	}
	_ = up.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
	if err := up.WriteMessage(websocket.TextMessage, initMsg); err != nil {
		c.stop(c.upstreamWriteCause(err))
		return false
	}
	return true
}

// upstreamInit is the rewritten connection_init: payload.headers hold only
// the trusted session headers, plus the client's Authorization and Cookie
// when upstream.forward_authorization / forward_cookie are on (Hasura
// forwards them to actions and remote schemas). Every other field of the
// client's payload is dropped: Hasura reads nothing but headers from it.
func (c *wsConn) upstreamInit(hdr, authHeaders http.Header) []byte {
	headers := make(map[string]string, len(hdr)+2)
	for k, vs := range hdr {
		if isHasuraHeader(k) && len(vs) > 0 {
			headers[strings.ToLower(k)] = vs[0]
		}
	}
	up := c.p.h.opts.Upstream
	if vs := authHeaders["Authorization"]; up.ForwardAuthorization && len(vs) > 0 && validValue(vs[0]) {
		headers["Authorization"] = vs[0]
	}
	if vs := authHeaders["Cookie"]; up.ForwardCookie && len(vs) > 0 {
		if v := strings.Join(vs, "; "); validValue(v) {
			headers["Cookie"] = v
		}
	}
	type payload struct {
		Headers map[string]string `json:"headers"`
	}
	// Strings always encode; the empty fallback makes Hasura refuse the
	// init rather than get anything else.
	return marshal(struct {
		Type    string  `json:"type"`
		Payload payload `json:"payload"`
	}{"connection_init", payload{headers}}, `{"type":"connection_init","payload":{"headers":{}}}`)
}

// validValue reports whether v can be sent as an HTTP header value: Hasura
// hands these to actions as headers, so CR, LF and other controls must not
// get through.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// relay copies messages both ways until a cause is recorded, then reads
// the client until its close answer (or the grace), dropping what it reads.
func (c *wsConn) relay() {
	c.mu.Lock()
	if !c.cliClosing {
		_ = c.cli.NetConn().SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	c.cli.SetReadLimit(c.p.cfg.MaxMessageBytes)
	c.upDone = make(chan struct{})
	go c.pumpUpstream()
	for {
		mt, r, err := c.cli.NextReader()
		if err != nil {
			c.cliReadDone = true
			c.stop(c.clientReadCause(err))
			return
		}
		if c.stopped() {
			continue // NextReader drops the unread message
		}
		c.messageDeadline(true)
		cause := c.relayClientMessage(c.up, mt, r)
		c.messageDeadline(false)
		if cause != nil {
			c.stop(*cause)
		}
	}
}

// errReader remembers the read error of a copy, to tell it from a write
// error.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// pumpUpstream relays Hasura -> client, message by message, streaming: a
// message is read straight into the client's write buffer and goes out in
// frames as it arrives, so no message is ever held whole. Once a cause is
// recorded it reads Hasura until its close answer, dropping messages.
func (c *wsConn) pumpUpstream() {
	defer close(c.upDone)
	var er errReader
	for {
		mt, r, err := c.up.NextReader()
		if err != nil {
			c.stop(c.upstreamReadCause(err))
			return
		}
		if c.stopped() {
			continue
		}
		if cause := c.relayUpstreamMessage(mt, r, &er); cause != nil {
			c.stop(*cause)
		}
	}
}

func (c *wsConn) relayUpstreamMessage(mt int, r io.Reader, er *errReader) *wsCause {
	c.cliWrite.Lock()
	defer c.cliWrite.Unlock()
	if c.cliDirty {
		return nil // the cause is recorded already
	}
	_ = c.cli.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
	w, err := c.cli.NextWriter(mt)
	if err != nil {
		c.cliDirty = true
		return ptr(c.clientWriteCause(err))
	}
	er.r, er.err = r, nil
	if _, err := io.Copy(w, er); err != nil {
		c.cliDirty = true
		if er.err != nil {
			return ptr(c.upstreamReadCause(er.err))
		}
		return ptr(c.clientWriteCause(err))
	}
	if err := w.Close(); err != nil {
		c.cliDirty = true
		return ptr(c.clientWriteCause(err))
	}
	return nil
}

func ptr(c wsCause) *wsCause { return &c }

func tooManyInits() *wsCause {
	return &wsCause{metric: metrics.CloseProtocolError, clientCode: closeTooManyInitsCode,
		clientText: hasuraCloseReason(closeTooManyInitsCode, "Too many requests"), upCode: websocket.CloseNormalClosure,
		logCode: closeTooManyInitsCode, logErr: "second connection_init"}
}

func (c *wsConn) duplicateTypeCause() *wsCause {
	return &wsCause{metric: metrics.CloseProtocolError, clientCode: closeBadRequest,
		clientText: hasuraCloseReason(closeBadRequest, `Parsing client message failed: parsing ClientMessage failed: message with more than one "type"`),
		upCode:     websocket.CloseNormalClosure, logCode: closeBadRequest, logErr: `message with more than one "type"`}
}

// clientReadCause explains a failed read from the client.
func (c *wsConn) clientReadCause(err error) wsCause {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// gorilla has answered the close; Hasura gets the same code.
		return wsCause{metric: metrics.CloseClientClosed, upCode: ce.Code, upText: ce.Text, logCode: ce.Code}
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent 1009 to the client.
		return wsCause{metric: metrics.CloseMessageTooLarge, upCode: websocket.CloseNormalClosure,
			logCode: websocket.CloseMessageTooBig, logErr: "client message too large"}
	}
	return wsCause{metric: metrics.CloseClientClosed, upCode: websocket.CloseGoingAway, upText: "client went away",
		logCode: websocket.CloseAbnormalClosure}
}

// upstreamReadCause explains a failed read from Hasura.
func (c *wsConn) upstreamReadCause(err error) wsCause {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// Hasura's close code and reason pass through (4xxx included).
		return wsCause{metric: metrics.CloseUpstreamClosed, clientCode: ce.Code, clientText: ce.Text, logCode: ce.Code}
	case errors.Is(err, websocket.ErrReadLimit):
		return wsCause{metric: metrics.CloseMessageTooLarge, clientCode: websocket.CloseMessageTooBig,
			clientText: "message too large", logCode: websocket.CloseMessageTooBig, logErr: "hasura message too large"}
	}
	return wsCause{metric: metrics.CloseUpstreamClosed, clientCode: websocket.CloseGoingAway,
		clientText: "upstream connection lost", logCode: websocket.CloseGoingAway, logErr: "hasura connection lost"}
}

// clientWriteCause explains a failed write to the client: a slow reader
// (write timeout) or a client that is gone.
func (c *wsConn) clientWriteCause(err error) wsCause {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return wsCause{metric: metrics.CloseWriteTimeout, upCode: websocket.CloseNormalClosure,
			logCode: websocket.CloseAbnormalClosure, logErr: "client too slow: write timeout"}
	}
	return wsCause{metric: metrics.CloseClientClosed, upCode: websocket.CloseGoingAway, upText: "client went away",
		logCode: websocket.CloseAbnormalClosure}
}

// upstreamWriteCause explains a failed write to Hasura.
func (c *wsConn) upstreamWriteCause(err error) wsCause {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return wsCause{metric: metrics.CloseWriteTimeout, clientCode: websocket.CloseGoingAway, clientText: "upstream not reading",
			logCode: websocket.CloseGoingAway, logErr: "hasura too slow: write timeout"}
	}
	return wsCause{metric: metrics.CloseUpstreamClosed, clientCode: websocket.CloseGoingAway,
		clientText: "upstream connection lost", logCode: websocket.CloseGoingAway, logErr: "hasura connection lost"}
}

// finish waits for the peers' close answers (each had closeGrace since its
// close frame) and closes both TCP connections. As a server, the proxy
// closes the TCP connection first once the close handshake is done.
func (c *wsConn) finish() {
	if c.timer != nil {
		c.timer()
	}
	c.mu.Lock()
	if c.cause == nil {
		// Not reached: every path records a cause. Close cleanly anyway.
		c.cause = &wsCause{metric: metrics.Other, clientCode: websocket.CloseInternalServerErr,
			upCode: websocket.CloseNormalClosure, logCode: websocket.CloseInternalServerErr, logErr: "internal error"}
	}
	c.mu.Unlock()
	c.closeClient()
	c.closeUpstream()
	if !c.cliReadDone {
		// Before the relay started: read until the client's close answer.
		for {
			if _, _, err := c.cli.NextReader(); err != nil {
				break
			}
		}
	}
	if c.upDone != nil {
		<-c.upDone
	}
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
	_ = c.cli.NetConn().Close()
	if c.up != nil {
		_ = c.up.NetConn().Close()
	}
}
