package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// upstreamHeaders are the headers of the upgrade request to Hasura: the
// trusted session (strip-then-set: the map starts empty), the request id and
// X-Forwarded-*. Nothing else of the client's request is sent: the
// client's Authorization and Cookie travel in the rewritten
// connection_init instead (upstreamInit).
func (c *wsConn) upstreamHeaders(r *http.Request, s *auth.Session) http.Header {
	h := make(http.Header, len(s.Vars)+6)
	identityHeaders(h, r, identity{Session: s, Secret: c.p.h.secret, RequestID: c.x.rid})
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
