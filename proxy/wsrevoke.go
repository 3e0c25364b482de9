package proxy

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// wsSessions indexes the authenticated sockets by session and user, so a
// revocation can close them. The zero value is ready; it is safe for
// concurrent use.
type wsSessions struct {
	mu    sync.Mutex
	conns map[*wsConn]wsIdentity
}

// wsIdentity is what a socket's token names.
type wsIdentity struct{ sid, sub string }

// track records c as authenticated by s. It reports false, after stopping c,
// when s was revoked between its authentication and now: a revocation that
// lands in that gap finds c neither by Authenticate nor by CloseSessions.
func (p *wsProxy) track(c *wsConn, s *auth.Session) bool {
	if s.SessionID == "" && s.Subject == "" {
		return true
	}
	p.sessions.mu.Lock()
	if p.sessions.conns == nil {
		p.sessions.conns = make(map[*wsConn]wsIdentity)
	}
	p.sessions.conns[c] = wsIdentity{sid: s.SessionID, sub: s.Subject}
	p.sessions.mu.Unlock()
	if rv := p.h.opts.Revocations; rv != nil && rv.Revoked(s.SessionID, s.Subject, time.Now()) {
		c.stop(c.revokedCause())
		return false
	}
	return true
}

// untrack forgets c; called when its handler ends.
func (p *wsProxy) untrack(c *wsConn) {
	p.sessions.mu.Lock()
	delete(p.sessions.conns, c)
	p.sessions.mu.Unlock()
}

// CloseSessions closes every open WebSocket whose token's sid and sub make
// revoked report true: 4403 "session revoked" on graphql-transport-ws, a
// connection_error then 4400 on the legacy graphql-ws (as at a token's
// exp), and a normal close towards Hasura. It returns how many it closes,
// without waiting for their close handshakes.
func (h *Handler) CloseSessions(revoked func(sid, sub string) bool) int {
	if h.websockets == nil {
		return 0
	}
	p := h.websockets
	var hit []*wsConn
	p.sessions.mu.Lock()
	for c, id := range p.sessions.conns {
		if revoked(id.sid, id.sub) {
			hit = append(hit, c)
		}
	}
	p.sessions.mu.Unlock()
	for _, c := range hit {
		// stop may wait up to websocket.write_timeout on a slow client.
		go c.stop(c.revokedCause())
	}
	return len(hit)
}

func (c *wsConn) revokedCause() wsCause {
	const text = "session revoked"
	if c.proto == protoTransportWS {
		return wsCause{metric: metrics.CloseSessionRevoked, clientCode: closeForbidden, clientText: text,
			upCode: websocket.CloseNormalClosure, logCode: closeForbidden, logErr: text}
	}
	return wsCause{metric: metrics.CloseSessionRevoked, clientMsg: connectionErrorMessage(auth.ErrRevoked.Message),
		clientCode: closeBadRequest, clientText: text, upCode: websocket.CloseNormalClosure,
		logCode: closeBadRequest, logErr: text}
}
