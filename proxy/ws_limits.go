package proxy

// Fair shares of the WebSocket path: a cap per client IP on sockets that
// have not finished connection_init (websocket.max_pending_per_ip), so one
// client cycling unauthenticated sockets cannot hold websocket.max_connections,
// and a cap per authenticated user on open sockets
// (websocket.max_connections_per_user). Also the read deadline of a message
// in progress after connection_init (websocket.message_timeout).

import (
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// wsLimits counts sockets per client IP before init and per user after.
// It is safe for concurrent use.
type wsLimits struct {
	maxPending, maxPerUser int

	mu      sync.Mutex
	pending map[netip.Addr]int
	users   map[string]int
}

func newWSLimits(cfg WebSocketConfig) *wsLimits {
	return &wsLimits{
		maxPending: cfg.MaxPendingPerIP,
		maxPerUser: cfg.MaxConnectionsPerUser,
		pending:    make(map[netip.Addr]int),
		users:      make(map[string]int),
	}
}

// acquire counts one more socket under key in m unless it holds limit.
func acquire[K comparable](mu *sync.Mutex, m map[K]int, key K, limit int) bool {
	mu.Lock()
	defer mu.Unlock()
	if m[key] >= limit {
		return false
	}
	m[key]++
	return true
}

func release[K comparable](mu *sync.Mutex, m map[K]int, key K) {
	mu.Lock()
	defer mu.Unlock()
	if m[key] <= 1 {
		delete(m, key)
		return
	}
	m[key]--
}

// userKey is who a session counts as for max_connections_per_user: the
// token's sub under the JWT secret that verified it. Sessions without one
// (the admin secret, the unauthorized role, a token without sub) are not
// capped per user.
func userKey(s *auth.Session) (string, bool) {
	if s.Result != auth.ResultAllowed || s.Subject == "" {
		return "", false
	}
	return s.Secret + "\x00" + s.Subject, true
}

// pendingKey is what max_pending_per_ip counts a client address under: the
// address itself for IPv4, its /64 for IPv6, the smallest block a single
// host is usually given (so one host cannot spread over its 2^64
// addresses).
func pendingKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// admitPending counts the upgrade under its client IP, or answers 503 and
// reports false when that IP already has max_pending_per_ip sockets waiting
// for connection_init.
func (p *wsProxy) admitPending(w http.ResponseWriter, r *http.Request, c *wsConn) bool {
	ip := pendingKey(p.h.opts.TrustedProxies.ClientIP(r))
	if !acquire(&p.limits.mu, p.limits.pending, ip, p.limits.maxPending) {
		p.metrics.WebSocketOpened()
		p.metrics.WebSocketClosed(metrics.CloseTooManyPending)
		c.x.upErr = "too many websocket connections waiting for connection_init from this client"
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, wsErrorBody("unexpected",
			"too many WebSocket connections waiting for connection_init from this client (websocket.max_pending_per_ip)"))
		return false
	}
	c.pendingIP, c.pending = ip, true
	return true
}

// donePending gives the socket's pending slot back (once): at the end of
// connection_init or of the connection. Handler goroutine only.
func (c *wsConn) donePending() {
	if c.pending {
		c.pending = false
		release(&c.p.limits.mu, c.p.limits.pending, c.pendingIP)
	}
}

// admitUser counts the socket under the session's user, or closes it with
// 4429 and reports false when the user already has max_connections_per_user
// open sockets. Handler goroutine only.
func (c *wsConn) admitUser(s *auth.Session) bool {
	key, ok := userKey(s)
	if !ok {
		return true
	}
	l := c.p.limits
	if !acquire(&l.mu, l.users, key, l.maxPerUser) {
		c.p.log.Info("websocket refused: too many connections for the user", zap.String("request_id", c.x.rid))
		const text = "Too many connections for this user"
		cause := wsCause{metric: metrics.CloseTooManyPerUser, clientCode: closeTooManyInitsCode, clientText: text,
			logCode: closeTooManyInitsCode, logErr: "too many websocket connections for the user"}
		if c.proto == protoLegacy {
			cause.clientMsg = connectionErrorMessage(text)
		}
		c.stop(cause)
		return false
	}
	c.userKey = key
	return true
}

// releaseLimits gives back every slot the socket holds. Handler goroutine
// only, once the connection is finished.
func (c *wsConn) releaseLimits() {
	c.donePending()
	if c.userKey != "" {
		release(&c.p.limits.mu, c.p.limits.users, c.userKey)
		c.userKey = ""
	}
}

// messageDeadline bounds reading the client message in progress by
// websocket.message_timeout (on), or lifts the bound between messages
// (off): an idle socket has no deadline, because legacy graphql-ws clients
// send nothing while they listen, but a started message must arrive whole
// in time, so a partial message cannot hold its buffer for long. A close in
// progress keeps its own deadline.
func (c *wsConn) messageDeadline(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cliClosing {
		return
	}
	var t time.Time
	if on {
		t = time.Now().Add(c.p.cfg.MessageTimeout)
	}
	_ = c.cli.NetConn().SetReadDeadline(t)
}

// budgetCause closes a socket whose message read the buffer budget refused:
// 1013, which graphql-ws clients retry.
func (c *wsConn) budgetCause() wsCause {
	return wsCause{metric: metrics.CloseBufferBudget, clientCode: websocket.CloseTryAgainLater,
		clientText: "Server busy, try again later", upCode: websocket.CloseNormalClosure,
		logCode: websocket.CloseTryAgainLater, logErr: "websocket buffer budget exhausted"}
}

// messageTimeoutCause closes a socket whose message did not arrive whole
// within websocket.message_timeout.
func (c *wsConn) messageTimeoutCause() wsCause {
	return wsCause{metric: metrics.CloseMessageTimeout, clientCode: closeInitTimeout,
		clientText: "Message timeout", upCode: websocket.CloseNormalClosure,
		logCode: closeInitTimeout, logErr: "message not received whole within websocket.message_timeout"}
}

// limitDefaults fills the zero limit fields from d.
func (c *WebSocketConfig) limitDefaults(d WebSocketConfig) {
	if c.TypePrefixBytes == 0 {
		c.TypePrefixBytes = d.TypePrefixBytes
	}
	if c.MessageTimeout == 0 {
		c.MessageTimeout = d.MessageTimeout
	}
	if c.BufferBudgetBytes == 0 {
		c.BufferBudgetBytes = d.BufferBudgetBytes
	}
	if c.MaxPendingPerIP == 0 {
		c.MaxPendingPerIP = d.MaxPendingPerIP
	}
	if c.MaxConnectionsPerUser == 0 {
		c.MaxConnectionsPerUser = d.MaxConnectionsPerUser
	}
}

// minTypePrefixBytes is the smallest websocket.type_prefix_bytes: every
// client library puts "type" within the first few dozen bytes.
const minTypePrefixBytes = 1 << 10

// validateLimits checks the limit fields (message_timeout is checked with
// the other durations).
func (c *WebSocketConfig) validateLimits() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("websocket.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	// Above max_message_bytes it is that limit in effect.
	if c.TypePrefixBytes < minTypePrefixBytes || c.TypePrefixBytes > 1<<30 {
		add("type_prefix_bytes", "must be between %d and 1073741824, not %d", minTypePrefixBytes, c.TypePrefixBytes)
	}
	// Large buffers may use three quarters of the budget; a few whole
	// init messages or prefixes must fit in that.
	prefix := min(c.TypePrefixBytes, max(c.MaxMessageBytes, minTypePrefixBytes))
	if floor := 4 * max(prefix, maxInitBytes); c.BufferBudgetBytes < floor {
		add("buffer_budget_bytes", "must be at least %d (4 times the larger of websocket.type_prefix_bytes and 64 KiB), not %d",
			floor, c.BufferBudgetBytes)
	}
	if c.MaxPendingPerIP < 1 {
		add("max_pending_per_ip", "must be at least 1")
	}
	if c.MaxConnectionsPerUser < 1 {
		add("max_connections_per_user", "must be at least 1")
	}
	return errs
}
