package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Subprotocols and the paths Hasura accepts upgrades on; wsPathsMessage
// is the answer on any other path.
const (
	protoTransportWS = "graphql-transport-ws"
	protoLegacy      = "graphql-ws"

	wsPathsMessage = "only '/v1/graphql', '/v1alpha1/graphql' and '/v1beta1/relay' are supported on websockets"
)

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
