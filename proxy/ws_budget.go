package proxy

// The per-process budget of bytes held in partial client messages, and the
// buffer that reads a client message against it. Every byte of buffer the
// WebSocket path holds for a client message that has not arrived whole (a
// message before connection_init, the prefix of a relayed message whose
// "type" is not yet known, the chunk a streamed message goes through) is
// reserved from the budget first. When the budget is exhausted the read is
// refused: the socket is closed with 1013 (try again later), counted in
// websocket_closed_total{reason="buffer_budget"}. So however many sockets
// an attacker opens, the proxy never holds more than
// websocket.buffer_budget_bytes of their unfinished messages. Before
// connection_init a refused socket's TCP connection is closed right after
// the close frame, without waiting for the close handshake: under this
// pressure it must stop costing anything at once (letting each refused
// socket linger for its close answer tripled the RSS of the 5,000-socket
// attack). graphql-ws retries 1013 and 1006 alike.
//
// Buffers over smallMsgBytes may use only three quarters of the budget: the
// last quarter is kept for small messages (pings, subscribes, a
// connection_init with a Clerk token), so sockets holding large partial
// messages cannot keep other clients from initialising.

import (
	"errors"
	"io"
	"sync/atomic"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// errBudget is a message read refused because the buffer budget is
// exhausted.
var errBudget = errors.New("websocket buffer budget exhausted")

// errPrefixFull is msgBuffer.fill stopping at its limit with the message
// not finished.
var errPrefixFull = errors.New("message prefix limit reached")

const (
	// minMsgBuffer is the first capacity of a message buffer.
	minMsgBuffer = 1 << 10
	// smallMsgBytes is the largest buffer that may use the last quarter of
	// the budget: most client messages fit (a Clerk token is 1-2 KiB).
	smallMsgBytes = 4 << 10
)

// wsBudget is the budget of bytes held in partial client messages. It is
// safe for concurrent use.
type wsBudget struct {
	limit   int64
	used    atomic.Int64
	metrics *metrics.Metrics
}

func newWSBudget(limit int64, m *metrics.Metrics) *wsBudget {
	return &wsBudget{limit: limit, metrics: m}
}

// reserve takes n bytes for a buffer of size bytes from the budget and
// reports whether it could.
func (b *wsBudget) reserve(n, size int64) bool {
	limit := b.limit
	if size > smallMsgBytes {
		limit -= b.limit / 4
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			b.metrics.WebSocketBuffered(n)
			return true
		}
	}
}

// release gives n reserved bytes back.
func (b *wsBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	b.metrics.WebSocketBuffered(-n)
}

// msgBuffer holds (part of) one client message in a buffer whose whole
// capacity is reserved from a wsBudget. The zero value is not usable; call
// free when done. Not safe for concurrent use.
type msgBuffer struct {
	budget *wsBudget
	buf    []byte
}

// grow makes room for at least one more byte, doubling the capacity up to
// limit. It fails with errBudget when the budget cannot cover it.
func (m *msgBuffer) grow(limit int) error {
	n := max(minMsgBuffer, 2*cap(m.buf))
	n = min(n, limit)
	if n <= cap(m.buf) {
		return errPrefixFull
	}
	// The new buffer is reserved whole while the old one is still live, so
	// the budget never counts less than is held.
	if !m.budget.reserve(int64(n), int64(n)) {
		return errBudget
	}
	nb := make([]byte, len(m.buf), n)
	copy(nb, m.buf)
	m.budget.release(int64(cap(m.buf)))
	m.buf = nb
	return nil
}

// fill reads r into the buffer until r ends (io.EOF), the buffer holds limit
// bytes (errPrefixFull), stop reports true after a read, or an error. The
// bytes read are m.buf.
func (m *msgBuffer) fill(r io.Reader, limit int, stop func(new []byte) bool) error {
	for {
		if len(m.buf) == cap(m.buf) {
			if err := m.grow(limit); err != nil {
				return err
			}
		}
		n, err := r.Read(m.buf[len(m.buf):cap(m.buf)])
		if n > 0 {
			m.buf = m.buf[:len(m.buf)+n]
			if stop(m.buf[len(m.buf)-n:]) {
				if err == io.EOF {
					return io.EOF
				}
				return err
			}
		}
		if err != nil {
			return err
		}
	}
}

// free gives the buffer's reservation back.
func (m *msgBuffer) free() {
	m.budget.release(int64(cap(m.buf)))
	m.buf = nil
}
