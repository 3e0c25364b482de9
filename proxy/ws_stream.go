package proxy

// Reading client messages with bounded memory. Before connection_init a
// message is read whole (it must be parsed, and rewritten if it is the init),
// at most maxInitBytes. After it, a message is read only until its top-level
// "type" is known, and at most websocket.type_prefix_bytes of it; the rest
// is streamed to Hasura through one buffer as it arrives. Every buffer is
// reserved from the process's buffer budget (ws_budget.go).

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// upstreamWriter is what relaying a client message needs of Hasura's
// socket (a *websocket.Conn).
type upstreamWriter interface {
	NextWriter(messageType int) (io.WriteCloser, error)
	WriteMessage(messageType int, data []byte) error
	SetWriteDeadline(t time.Time) error
}

// readInitMessage reads one whole client message before connection_init.
// Call release once the message is parsed.
func (c *wsConn) readInitMessage() (data []byte, release func(), err error) {
	_, r, err := c.cli.NextReader()
	if err != nil {
		return nil, nil, err
	}
	m := &msgBuffer{budget: c.p.budget}
	// One byte over the read limit, so a message of exactly maxInitBytes
	// ends in the buffer; gorilla refuses a longer one (ErrReadLimit).
	err = m.fill(r, maxInitBytes+1, func([]byte) bool { return false })
	if err == io.EOF {
		return m.buf, m.free, nil
	}
	m.free()
	return nil, nil, err
}

// relayClientMessage relays one client message to Hasura. Every message is
// scanned for its top-level "type": a connection_init is never relayed
// (graphql-transport-ws closes 4429, the legacy protocol ignores it). At
// most websocket.type_prefix_bytes are held while the type is unknown; a
// message that ends within them is sent whole. Otherwise it is streamed:
// the held prefix, then the rest through the same buffer. A streamed
// message found to be a connection_init, or to hold a second top-level
// "type", is aborted before its final frame, so Hasura never processes it,
// and the connection is closed.
func (c *wsConn) relayClientMessage(up upstreamWriter, mt int, r io.Reader) *wsCause {
	sc := &c.scan
	sc.reset()
	m := &msgBuffer{budget: c.p.budget}
	defer m.free()
	limit := int(min(c.p.cfg.TypePrefixBytes, c.p.cfg.MaxMessageBytes))
	typeKnown := func(p []byte) bool {
		sc.feed(p)
		return sc.first != typeUnknown
	}
	if c.limitsApply() {
		// API limits judge the whole operation before any of it reaches
		// Hasura: the message is held whole, bounded by max_message_bytes
		// (gorilla's read limit) and the buffer budget like any other.
		limit = int(c.p.cfg.MaxMessageBytes) + 1
		typeKnown = func(p []byte) bool {
			sc.feed(p)
			return false
		}
	}
	err := m.fill(r, limit, typeKnown)
	switch {
	case err == io.EOF:
		return c.relayWhole(up, mt, m.buf)
	case err == nil || errors.Is(err, errPrefixFull):
		// The type is known, or the prefix is full without it.
	default:
		return ptr(c.messageReadCause(err))
	}
	if sc.first == typeInit {
		// Decided early: never relayed, whatever follows.
		if c.proto == protoTransportWS {
			return tooManyInits()
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return ptr(c.messageReadCause(err))
		}
		return nil
	}
	if cause := c.streamedTypeCause(); cause != nil {
		return cause
	}
	// The stream holds one of Hasura's socket's pooled write buffers until
	// the message ends.
	if !c.p.budget.reserve(upstreamWriteBuffer, upstreamWriteBuffer) {
		return ptr(c.budgetCause())
	}
	defer c.p.budget.release(upstreamWriteBuffer)
	_ = up.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
	w, err := up.NextWriter(mt)
	if err != nil {
		return ptr(c.upstreamWriteCause(err))
	}
	if _, err := w.Write(m.buf); err != nil {
		return ptr(c.upstreamWriteCause(err))
	}
	buf := m.buf[:cap(m.buf)]
	for {
		n, err := r.Read(buf)
		if n > 0 {
			sc.feed(buf[:n])
			if cause := c.streamedTypeCause(); cause != nil {
				return cause
			}
			// The client paces a streamed message (message_timeout bounds
			// it); write_timeout bounds Hasura taking each part of it.
			_ = up.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return ptr(c.upstreamWriteCause(werr))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return ptr(c.messageReadCause(err))
		}
	}
	_ = up.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
	if err := w.Close(); err != nil {
		return ptr(c.upstreamWriteCause(err))
	}
	return nil
}

// relayWhole relays a message read whole.
func (c *wsConn) relayWhole(up upstreamWriter, mt int, data []byte) *wsCause {
	sc := &c.scan
	if sc.nTypes > 1 {
		return c.duplicateTypeCause()
	}
	if sc.first == typeInit {
		if c.proto == protoTransportWS {
			return tooManyInits()
		}
		return nil
	}
	if refused, cause := c.admitOperation(data); refused {
		return cause
	}
	_ = up.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
	if err := up.WriteMessage(mt, data); err != nil {
		return ptr(c.upstreamWriteCause(err))
	}
	return nil
}

// streamedTypeCause is the cause that aborts a message being streamed: a
// second top-level "type", or a first one, found after the prefix, that
// says connection_init. Neither may reach Hasura.
func (c *wsConn) streamedTypeCause() *wsCause {
	sc := &c.scan
	switch {
	case sc.nTypes > 1:
		return c.duplicateTypeCause()
	case sc.first == typeInit && c.proto == protoTransportWS:
		return tooManyInits()
	case sc.first == typeInit:
		// The legacy protocol would ignore a second init, but part of this
		// one has gone to Hasura already.
		return &wsCause{metric: metrics.CloseProtocolError, clientCode: closeBadRequest,
			clientText: "Invalid message received", upCode: websocket.CloseNormalClosure,
			logCode: closeBadRequest, logErr: "connection_init type after websocket.type_prefix_bytes"}
	}
	return nil
}

// messageReadCause explains a failed read of a client message after init:
// the buffer budget, websocket.message_timeout, or what clientReadCause
// says.
func (c *wsConn) messageReadCause(err error) wsCause {
	if errors.Is(err, errBudget) {
		return c.budgetCause()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !c.stopped() {
		return c.messageTimeoutCause()
	}
	return c.clientReadCause(err)
}
