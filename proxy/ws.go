package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
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
