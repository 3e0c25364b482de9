package proxy

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeUpstream records what relayClientMessage sends Hasura: finished
// messages only count once their writer is closed (gorilla sends the final
// frame on Close).
type fakeUpstream struct {
	finished [][]byte
	open     *fakeWriter
}

type fakeWriter struct {
	up  *fakeUpstream
	buf bytes.Buffer
}

func (w *fakeWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *fakeWriter) Close() error {
	w.up.finished = append(w.up.finished, w.buf.Bytes())
	w.up.open = nil
	return nil
}

func (u *fakeUpstream) NextWriter(int) (io.WriteCloser, error) {
	u.open = &fakeWriter{up: u}
	return u.open, nil
}

func (u *fakeUpstream) WriteMessage(_ int, data []byte) error {
	u.finished = append(u.finished, bytes.Clone(data))
	return nil
}

func (u *fakeUpstream) SetWriteDeadline(time.Time) error { return nil }

// chunkReader returns at most n bytes per Read, as frames arriving in parts.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzStreamedRelay: whatever the message, the prefix size and how its
// bytes arrive, relayClientMessage finishes a message at Hasura exactly
// when the whole message, scanned at once, has one top-level "type" that is
// not connection_init (or none), and then the bytes are the client's,
// unchanged; a connection_init or a second "type" never gets its final
// frame. Every reservation is given back.
func FuzzStreamedRelay(f *testing.F) {
	big := strings.Repeat("x", 3000)
	for _, s := range []string{
		`{"type":"subscribe","id":"1","payload":{"query":"subscription { s }"}}`,
		`{"id":"1","payload":{"pad":"` + big + `"},"type":"subscribe"}`,
		`{"payload":{"pad":"` + big + `"},"type":"connection_init"}`,
		`{"type":"subscribe","payload":{"pad":"` + big + `"},"type":"connection_init"}`,
		`{"type":"connection_init","type":"subscribe"}`,
		`{"t\u0079pe":"connection_\u0069nit"}`,
		`{"payload":"` + big + `"}`,
		`not json`,
		``,
	} {
		f.Add([]byte(s), uint16(1024), uint8(200), false)
		f.Add([]byte(s), uint16(7), uint8(1), true)
	}
	f.Fuzz(func(t *testing.T, msg []byte, prefix uint16, chunk uint8, legacy bool) {
		if len(msg) > 1<<16 {
			return
		}
		var whole typeScanner
		whole.feed(msg)
		refused := whole.nTypes > 1 || whole.first == typeInit

		proto := protoTransportWS
		if legacy {
			proto = protoLegacy
		}
		budget := newWSBudget(1<<30, nil)
		c := &wsConn{proto: proto, p: &wsProxy{budget: budget, cfg: WebSocketConfig{
			TypePrefixBytes: int64(prefix%4096) + 1, MaxMessageBytes: 1 << 20, WriteTimeout: time.Second,
		}}}
		up := &fakeUpstream{}
		cause := c.relayClientMessage(up, websocket.TextMessage, chunkReader{bytes.NewReader(msg), int(chunk) + 1})
		if refused {
			if len(up.finished) != 0 {
				t.Fatalf("refused message (first type %d, %d types) finished at Hasura: %.80q", whole.first, whole.nTypes, up.finished[0])
			}
			// Only the legacy protocol may ignore it, and only unsent.
			if cause == nil && (!legacy || up.open != nil || whole.first != typeInit) {
				t.Fatalf("refused message neither closed the socket nor was ignored unsent")
			}
		} else {
			if cause != nil {
				t.Fatalf("message refused: %s", cause.logErr)
			}
			if len(up.finished) != 1 || !bytes.Equal(up.finished[0], msg) {
				t.Fatalf("Hasura finished %d messages (%.80q); want the message unchanged", len(up.finished), up.finished)
			}
		}
		if got := budget.used.Load(); got != 0 {
			t.Fatalf("%d bytes still reserved after the message", got)
		}
	})
}
