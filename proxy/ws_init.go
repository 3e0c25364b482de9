package proxy

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

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
			ae = unexpectedAuthError(err)
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
