package proxy

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

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
