package fake

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket subprotocols, as Hasura names them.
const (
	ProtoTransportWS = "graphql-transport-ws" // the graphql-ws library
	ProtoLegacyWS    = "graphql-ws"           // subscriptions-transport-ws (Apollo)
)

// Socket is one WebSocket the stand-in accepted: its upgrade request and
// the connection_init payloads it received.
type Socket struct {
	Path, Protocol string
	Header         http.Header

	mu    sync.Mutex
	inits []json.RawMessage
}

// Inits returns the connection_init payloads received so far.
func (s *Socket) Inits() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]json.RawMessage(nil), s.inits...)
}

// Sockets returns the WebSockets accepted so far, oldest first.
func (h *Hasura) Sockets() []*Socket {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Socket(nil), h.sockets...)
}

// Subscriptions is the number of subscriptions running now.
func (h *Hasura) Subscriptions() int64 { return h.subs.Load() }

// OpenSockets is the number of WebSockets open now.
func (h *Hasura) OpenSockets() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// wsMessage is a message of either protocol.
type wsMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// serveWebSocket speaks Hasura's two protocols, chosen as Hasura chooses:
// exactly "graphql-transport-ws" is the graphql-ws library's protocol,
// anything else the legacy one.
func (h *Hasura) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	offered := websocket.Subprotocols(r)
	proto := ProtoLegacyWS
	if len(offered) == 1 && offered[0] == ProtoTransportWS {
		proto = ProtoTransportWS
	}
	var rh http.Header
	if len(offered) > 0 {
		rh = http.Header{"Sec-Websocket-Protocol": {proto}}
	}
	up := websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// The stand-in is reached through the proxy, on 127.0.0.1.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	conn, err := up.Upgrade(w, r, rh)
	if err != nil {
		return // the upgrader answered
	}
	s := &Socket{Path: r.URL.Path, Protocol: proto, Header: r.Header.Clone()}
	if !h.track(conn, s) {
		_ = conn.Close()
		return
	}
	defer h.untrack(conn)
	c := &wsConn{conn: conn, sock: s, hasura: h}
	c.run()
}

func (h *Hasura) track(c *websocket.Conn, s *Socket) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	if h.limit > 0 {
		h.sockets = append(h.sockets, s)
		if len(h.sockets) > h.limit {
			h.sockets = append(h.sockets[:0:0], h.sockets[len(h.sockets)-h.limit:]...)
		}
	}
	h.wg.Add(1)
	return true
}

func (h *Hasura) untrack(c *websocket.Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	_ = c.Close()
	h.wg.Done()
}

// wsConn is one stand-in WebSocket connection.
type wsConn struct {
	conn   *websocket.Conn
	sock   *Socket
	hasura *Hasura

	writeMu sync.Mutex
	session map[string]any // set by a successful connection_init
}

func (c *wsConn) send(m any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteJSON(m)
}

func (c *wsConn) close(code int, reason string) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

// run reads messages until the connection ends; subscriptions run in their
// own goroutines and end with it.
func (c *wsConn) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var subs sync.WaitGroup
	defer func() {
		cancel()
		subs.Wait()
	}()
	active := map[string]context.CancelFunc{}
	var activeMu sync.Mutex
	c.conn.SetReadLimit(1 << 20)
	for {
		var m wsMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "connection_init":
			c.sock.mu.Lock()
			c.sock.inits = append(c.sock.inits, append(json.RawMessage(nil), m.Payload...))
			c.sock.mu.Unlock()
			if !c.init(m.Payload) {
				return
			}
		case "ping":
			_ = c.send(wsMessage{Type: "pong"})
		case "subscribe", "start":
			if c.session == nil {
				if c.sock.Protocol == ProtoTransportWS {
					c.close(4401, "Unauthorized")
					return
				}
				_ = c.send(map[string]any{"type": "error", "id": m.ID, "payload": map[string]any{
					"message":    "start received before the connection is initialised",
					"extensions": map[string]string{"path": "$", "code": "start-failed"},
				}})
				continue
			}
			subCtx, stop := context.WithCancel(ctx)
			activeMu.Lock()
			if old, ok := active[m.ID]; ok {
				old()
			}
			active[m.ID] = stop
			activeMu.Unlock()
			subs.Add(1)
			go func(id string, live bool) {
				defer subs.Done()
				c.hasura.subs.Add(1)
				defer c.hasura.subs.Add(-1)
				c.emit(subCtx, id, live)
			}(m.ID, c.hasura.isLive(m.Payload))
		case "complete", "stop":
			activeMu.Lock()
			if stop, ok := active[m.ID]; ok {
				stop()
				delete(active, m.ID)
			}
			activeMu.Unlock()
		case "connection_terminate":
			return
		}
	}
}

// isLive reports whether a subscribe/start payload names the live
// operation.
func (h *Hasura) isLive(payload json.RawMessage) bool {
	var p struct {
		OperationName string `json:"operationName"`
	}
	return h.live != "" && json.Unmarshal(payload, &p) == nil && p.OperationName == h.live
}

// init checks the admin secret as Hasura would: the connection_init
// payload's headers, overridden by the upgrade request's x-hasura-*.
func (c *wsConn) init(payload json.RawMessage) bool {
	var p struct {
		Headers map[string]string `json:"headers"`
	}
	_ = json.Unmarshal(payload, &p)
	h := http.Header{}
	for k, v := range p.Headers {
		h.Set(k, v)
	}
	for k, vs := range c.sock.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-hasura-") {
			h[k] = vs
		}
	}
	if msg := c.hasura.adminSecretError(h); msg != "" {
		if c.sock.Protocol == ProtoTransportWS {
			c.close(4403, "Forbidden")
		} else {
			_ = c.send(map[string]any{"type": "connection_error", "payload": msg})
			c.close(4400, "Connection initialization failed: "+msg)
		}
		return false
	}
	c.session = session(h)
	if err := c.send(wsMessage{Type: "connection_ack"}); err != nil {
		return false
	}
	if c.sock.Protocol == ProtoLegacyWS {
		_ = c.send(wsMessage{Type: "ka"})
	}
	return true
}

// emit sends the session events of one subscription, then completes it; a
// live one streams until ctx ends.
func (c *wsConn) emit(ctx context.Context, id string, live bool) {
	kind := "next"
	if c.sock.Protocol == ProtoLegacyWS {
		kind = "data"
	}
	if c.hasura.events == 0 && !live {
		<-ctx.Done() // idle until stopped
		return
	}
	interval := c.hasura.interval
	if interval <= 0 {
		interval = time.Millisecond // a live subscription still yields
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; live || i < c.hasura.events; i++ {
		if i > 0 && (live || c.hasura.interval > 0) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		payload, err := json.Marshal(map[string]any{"data": map[string]any{"session": c.session}})
		if err != nil || c.send(wsMessage{Type: kind, ID: id, Payload: payload}) != nil {
			return
		}
	}
	_ = c.send(wsMessage{Type: "complete", ID: id})
}
