package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// wsDialFrom opens a client socket from the loopback address ip, a distinct
// client for the per-IP limits. It returns the handshake answer on failure.
func wsDialFrom(t *testing.T, ip, url, proto string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	d := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: wsWait, NetDialContext: nd.DialContext}
	c, resp, err := d.Dial(url, nil)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, resp, err
}

// wsTokenFor mints a valid token like wsToken for the user sub.
func wsTokenFor(t *testing.T, sub string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iat": time.Now().Add(-time.Minute).Unix(), "exp": time.Now().Add(wsTokTTL).Unix(),
		auth.DefaultClaimsNamespace: map[string]any{
			"x-hasura-allowed-roles": []string{"user"},
			"x-hasura-default-role":  "user",
			"x-hasura-user-id":       sub,
		}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(wsKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// initSocket sends connection_init with tok and waits for the ack (and
// Hasura's keep-alive after it).
func initSocket(t *testing.T, c *websocket.Conn, tok string) {
	t.Helper()
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + tok}))
	if got := recv(t, c); !bytes.Contains(got, []byte("connection_ack")) {
		t.Fatalf("init answer %s; want connection_ack", got)
	}
	recv(t, c)
}

// startMessage writes n bytes of a text message that never ends: gorilla
// sends them as non-final frames once its buffer fills.
func startMessage(t *testing.T, c *websocket.Conn, head string, n int) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(wsWait))
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, head+strings.Repeat("x", n-len(head))); err != nil {
		t.Fatalf("write: %v", err)
	}
	// Push out what the writer still buffers as one more non-final frame
	// by writing a full buffer's worth more.
	if _, err := w.Write(bytes.Repeat([]byte("x"), 8<<10)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// waitMetric waits until the series equals want.
func (st *wsStage) waitMetric(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(wsWait)
	for {
		got := st.metric(t, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v; want %v", name, labels, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPendingKeyUsesPeerWithoutTrust: with no trusted proxies the pending
// count is keyed by the TCP peer, whatever X-Forwarded-For claims (the
// X-Forwarded-For walk itself is TestClientIP in clientip_test.go).
func TestPendingKeyUsesPeerWithoutTrust(t *testing.T) {
	for _, tt := range []struct {
		remote string
		want   netip.Addr
	}{
		{"127.0.0.2:4000", netip.MustParseAddr("127.0.0.2")},
		{"[::1]:4000", netip.MustParseAddr("::1")},
		{"[::ffff:10.0.0.1]:4000", netip.MustParseAddr("10.0.0.1")},
		{"not an address", netip.Addr{}},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/graphql", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", "192.0.2.1")
		var none TrustedProxies
		if got := none.ClientIP(r); got != tt.want {
			t.Errorf("ClientIP(RemoteAddr %q, X-Forwarded-For 192.0.2.1) = %v; want %v", tt.remote, got, tt.want)
		}
	}
}

func TestPendingKey(t *testing.T) {
	for _, tt := range []struct{ ip, want string }{
		{"127.0.0.2", "127.0.0.2"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"},
		{"2001:db8:1:3::1", "2001:db8:1:3::"},
	} {
		if got := pendingKey(netip.MustParseAddr(tt.ip)); got != netip.MustParseAddr(tt.want) {
			t.Errorf("pendingKey(%s) = %v; want %s", tt.ip, got, tt.want)
		}
	}
}

func TestWebSocketLimitsValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*WebSocketConfig)
		want string // "" for valid
	}{
		{"defaults", func(*WebSocketConfig) {}, ""},
		{"prefix at its minimum", func(c *WebSocketConfig) { c.TypePrefixBytes = 1024 }, ""},
		// A prefix above max_message_bytes counts as that limit (8 MiB).
		{"prefix above max_message_bytes", func(c *WebSocketConfig) { c.TypePrefixBytes = 1 << 30 }, ""},
		{"budget for a prefix above max_message_bytes", func(c *WebSocketConfig) { c.TypePrefixBytes, c.BufferBudgetBytes = 1<<30, 32<<20-1 },
			"websocket.buffer_budget_bytes: must be at least 33554432"},
		{"prefix too small", func(c *WebSocketConfig) { c.TypePrefixBytes = 1023 },
			"websocket.type_prefix_bytes: must be between 1024 and 1073741824, not 1023"},
		{"budget too small", func(c *WebSocketConfig) { c.BufferBudgetBytes = 256<<10 - 1 },
			"websocket.buffer_budget_bytes: must be at least 262144 (4 times the larger of websocket.type_prefix_bytes and 64 KiB), not 262143"},
		{"budget for a large prefix", func(c *WebSocketConfig) { c.TypePrefixBytes, c.BufferBudgetBytes = 1<<20, 4<<20 }, ""},
		{"negative message timeout", func(c *WebSocketConfig) { c.MessageTimeout = -time.Second },
			"websocket.message_timeout: must be positive"},
		{"negative pending", func(c *WebSocketConfig) { c.MaxPendingPerIP = -1 }, "websocket.max_pending_per_ip: must be at least 1"},
		{"negative per user", func(c *WebSocketConfig) { c.MaxConnectionsPerUser = -1 },
			"websocket.max_connections_per_user: must be at least 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultWebSocketConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v; want %q", err, tt.want)
			}
		})
	}
}

// TestWebSocketStreamsPastPrefix: after connection_init a message longer
// than websocket.type_prefix_bytes is streamed to Hasura and arrives
// unchanged, whether its "type" comes first or after the prefix; a
// connection_init or a second "type" found after the prefix is aborted
// before its final frame, so Hasura never gets it whole, and the socket is
// closed. Every buffer reservation is given back.
func TestWebSocketStreamsPastPrefix(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	for _, tt := range []struct {
		name, msg string
		// close is the client's close code; 0 when the message is relayed.
		close map[string]int
	}{
		{"type first", `{"id":"1","type":"subscribe","payload":{"query":"subscription { s }","pad":"` + big + `"}}`, nil},
		{"type after the prefix", `{"id":"1","payload":{"query":"subscription { s }","pad":"` + big + `"},"type":"subscribe"}`, nil},
		{"no type", `{"id":"1","payload":{"pad":"` + big + `"}}`, nil},
		{"connection_init after the prefix", `{"payload":{"headers":{"X-Hasura-User-Id":"bob"},"pad":"` + big + `"},"type":"connection_init"}`,
			map[string]int{protoTransportWS: 4429, protoLegacy: 4400}},
		{"second type after the prefix", `{"id":"1","type":"subscribe","payload":{"pad":"` + big + `"},"type":"connection_init"}`,
			map[string]int{protoTransportWS: 4400, protoLegacy: 4400}},
		{"first type after the prefix, second later", `{"payload":{"pad":"` + big + `"},"type":"subscribe","id":"1","p2":"` + big + `","type":"x"}`,
			map[string]int{protoTransportWS: 4400, protoLegacy: 4400}},
	} {
		for _, proto := range []string{protoTransportWS, protoLegacy} {
			t.Run(tt.name+"/"+proto, func(t *testing.T) {
				st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.TypePrefixBytes = 1024 }), func(c *wsStageConfig) { c.autoOff = true })
				c := mustDial(t, st.url("/v1/graphql"), proto, nil)
				send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
				up := st.hasura.next(t)
				up.next(t) // the proxy's connection_init
				send(t, c, tt.msg)
				if code := tt.close[proto]; code != 0 {
					if _, ce := expectClose(t, c); ce.Code != code {
						t.Errorf("close %d %q; want %d", ce.Code, ce.Text, code)
					}
					up.waitClosed(t)
					select {
					case m := <-up.msgs:
						t.Errorf("Hasura received a whole message of %d bytes: %.60s", len(m), m)
					default:
					}
				} else if got := up.next(t); string(got) != tt.msg {
					t.Errorf("Hasura got %d bytes (%.60s); want the %d bytes sent", len(got), got, len(tt.msg))
				}
				st.waitMetric(t, 0, "websocket_buffered_bytes")
			})
		}
	}
}

// TestWebSocketPartialHoldsPrefix: after connection_init an unfinished
// message whose "type" never comes holds exactly its prefix and the stream's
// write buffer to Hasura, however much of it has arrived.
func TestWebSocketPartialHoldsPrefix(t *testing.T) {
	const prefix = 1 << 10
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.TypePrefixBytes = prefix }))
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	initSocket(t, c, wsToken(t, time.Now().Add(wsTokTTL), nil))
	st.hasura.next(t)
	startMessage(t, c, `{"payload":"`, 512<<10)
	st.waitMetric(t, prefix+upstreamWriteBuffer, "websocket_buffered_bytes")
	_ = c.Close()
	st.waitMetric(t, 0, "websocket_buffered_bytes")
}

// TestWebSocketMessageTimeout: after connection_init a message that does
// not arrive whole within websocket.message_timeout closes its socket with
// 4408, while a socket that sends nothing at all for longer is not closed:
// a WebSocket ping frame still gets its pong frame, and a graphql-ws ping
// message (or a legacy start) its answer.
func TestWebSocketMessageTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		t.Run(proto, func(t *testing.T) {
			st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.MessageTimeout = timeout }))
			idle := mustDial(t, st.url("/v1/graphql"), proto, nil)
			initSocket(t, idle, wsToken(t, time.Now().Add(wsTokTTL), nil))
			st.hasura.next(t)

			slow := mustDial(t, st.url("/v1/graphql"), proto, nil)
			initSocket(t, slow, wsToken(t, time.Now().Add(wsTokTTL), nil))
			st.hasura.next(t)
			start := time.Now()
			startMessage(t, slow, `{"type":"subscribe","id":"1","payload":{"query":"`, 16<<10)
			_, ce := expectClose(t, slow)
			if ce.Code != 4408 || ce.Text != "Message timeout" {
				t.Errorf("close %d %q; want 4408 \"Message timeout\"", ce.Code, ce.Text)
			}
			if d := time.Since(start); d < timeout {
				t.Errorf("closed after %v; want at least the message timeout %v", d, timeout)
			}
			st.waitMetric(t, 1, "websocket_closed_total", "reason", metrics.CloseMessageTimeout)

			// idle has sent nothing for longer than the timeout: still open.
			pong := make(chan struct{})
			idle.SetPongHandler(func(string) error { close(pong); return nil })
			if err := idle.WriteControl(websocket.PingMessage, []byte("ka"), time.Now().Add(wsWait)); err != nil {
				t.Fatalf("ping frame: %v", err)
			}
			ping := `{"type":"ping"}`
			want := `{"type":"pong"}`
			if proto == protoLegacy {
				// Legacy clients send nothing while listening; a start
				// shows the socket works.
				ping = `{"id":"2","type":"start","payload":{"query":"subscription { s }"}}`
				want = ""
			}
			send(t, idle, ping)
			got := recv(t, idle)
			if want != "" {
				jsonEq(t, got, want)
			} else if !bytes.Contains(got, []byte(`"data"`)) {
				t.Errorf("answer to start %s; want data", got)
			}
			// The proxy answered the ping frame as it read it, before the
			// message that followed.
			select {
			case <-pong:
			default:
				t.Error("no pong frame for the ping frame")
			}
		})
	}
}

// TestWebSocketBufferBudget: partial messages may hold at most three
// quarters of websocket.buffer_budget_bytes; the read that would exceed it
// closes its socket with 1013, counted, while a small connection_init still
// gets through, and the budget comes back when the holders close.
func TestWebSocketBufferBudget(t *testing.T) {
	const budget = 256 << 10 // the smallest allowed with the default prefix
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.BufferBudgetBytes = budget }))
	// Before init a message is held whole, up to 64 KiB: a 60 KiB partial
	// one holds a 64 KiB buffer.
	const held = maxInitBytes
	var holders []*websocket.Conn
	for i := 1; i <= 2; i++ {
		c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
		startMessage(t, c, `{"payload":"`, 52<<10)
		st.waitMetric(t, float64(i*held), "websocket_buffered_bytes")
		holders = append(holders, c)
	}
	// A third message of 32 KiB fills its buffer; growing it would need
	// 64 KiB more (plus the 32 KiB it grows from): over three quarters of
	// the budget. The refused socket is closed at once, so that the client
	// reliably reads the close frame this message is exactly 32 KiB: nothing
	// of it is left unread.
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	send(t, c, `{"payload":"`+strings.Repeat("x", 32<<10-len(`{"payload":""}`))+`"}`)
	if _, ce := expectClose(t, c); ce.Code != websocket.CloseTryAgainLater {
		t.Errorf("third holder closed %d %q; want 1013", ce.Code, ce.Text)
	}
	st.waitMetric(t, 1, "websocket_closed_total", "reason", metrics.CloseBufferBudget)
	st.waitMetric(t, 2*held, "websocket_buffered_bytes")

	// Small messages may use the last quarter: a client can still init.
	legit := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	initSocket(t, legit, wsToken(t, time.Now().Add(wsTokTTL), nil))

	for _, h := range holders {
		_ = h.Close()
	}
	st.waitMetric(t, 0, "websocket_buffered_bytes")
}

// TestWebSocketPendingPerIP: one client IP may hold websocket.max_pending_per_ip
// sockets that have not finished connection_init; more get 503 while other
// IPs are served, and a slot comes back when a socket finishes its init or
// closes.
func TestWebSocketPendingPerIP(t *testing.T) {
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.MaxPendingPerIP = 2 }))
	url := st.url("/v1/graphql")
	dialOK := func(ip string) *websocket.Conn {
		t.Helper()
		c, resp, err := wsDialFrom(t, ip, url, protoTransportWS)
		if err != nil {
			t.Fatalf("dial from %s: %v %v", ip, err, resp)
		}
		return c
	}
	refused := func(ip string) {
		t.Helper()
		_, resp, err := wsDialFrom(t, ip, url, protoTransportWS)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("dial from %s: %v %v; want 503", ip, err, resp)
		}
		if got := resp.Header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q; want 1", got)
		}
		b, _ := io.ReadAll(resp.Body)
		jsonEq(t, b, `{"message":"too many WebSocket connections waiting for connection_init from this client (websocket.max_pending_per_ip)","extensions":{"path":"$","code":"unexpected"}}`)
	}
	a1, a2 := dialOK("127.0.0.2"), dialOK("127.0.0.2")
	refused("127.0.0.2")
	dialOK("127.0.0.3")
	st.waitFinished(t, 1) // the refused upgrade
	if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseTooManyPending); got != 1 {
		t.Errorf("websocket_closed_total{too_many_pending_per_ip} = %v; want 1", got)
	}

	// An initialised socket is no longer pending.
	initSocket(t, a1, wsToken(t, time.Now().Add(wsTokTTL), nil))
	dialOK("127.0.0.2")
	refused("127.0.0.2")
	st.waitFinished(t, 1)
	// A closed one gives its slot back.
	_ = a2.Close()
	st.waitFinished(t, 1)
	dialOK("127.0.0.2")
}

// TestWebSocketPerUser: one user (sub) may hold websocket.max_connections_per_user
// open sockets; the next is closed after its connection_init with 4429
// before Hasura is dialled, other users and the admin secret are not
// affected, and a closed socket gives its slot back.
func TestWebSocketPerUser(t *testing.T) {
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		t.Run(proto, func(t *testing.T) {
			st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.MaxConnectionsPerUser = 2 }))
			url := st.url("/v1/graphql")
			open := func(sub string) *websocket.Conn {
				t.Helper()
				c := mustDial(t, url, proto, nil)
				initSocket(t, c, wsTokenFor(t, sub))
				st.hasura.next(t)
				return c
			}
			a1 := open("alice")
			open("alice")
			c := mustDial(t, url, proto, nil)
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsTokenFor(t, "alice")}))
			msgs, ce := expectClose(t, c)
			if ce.Code != 4429 || ce.Text != "Too many connections for this user" {
				t.Errorf("close %d %q; want 4429 \"Too many connections for this user\"", ce.Code, ce.Text)
			}
			wantMsgs := 0
			if proto == protoLegacy {
				wantMsgs = 1
				if len(msgs) == 1 {
					jsonEq(t, []byte(msgs[0]), `{"type":"connection_error","payload":"Too many connections for this user"}`)
				}
			}
			if len(msgs) != wantMsgs {
				t.Errorf("messages before the close %q; want %d", msgs, wantMsgs)
			}
			st.waitFinished(t, 1)
			if got := st.hasura.dials.Load(); got != 2 {
				t.Errorf("Hasura dialled %d times; want 2", got)
			}
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseTooManyPerUser); got != 1 {
				t.Errorf("websocket_closed_total{too_many_per_user} = %v; want 1", got)
			}

			open("bob")
			// The admin secret is not a user.
			for range 3 {
				c := mustDial(t, url, proto, nil)
				send(t, c, initMsg(map[string]string{"X-Hasura-Admin-Secret": wsAdmin}))
				if got := recv(t, c); !bytes.Contains(got, []byte("connection_ack")) {
					t.Fatalf("admin init answer %s; want connection_ack", got)
				}
				st.hasura.next(t)
			}

			_ = a1.Close()
			st.waitFinished(t, 1)
			open("alice")
		})
	}
}

// TestWSBudget: reservations never exceed the limit, large buffers stop at
// three quarters, and everything reserved is given back.
func TestWSBudget(t *testing.T) {
	b := newWSBudget(64<<10, nil)
	if !b.reserve(48<<10, 48<<10) {
		t.Fatal("reserve 48 KiB of 64: refused")
	}
	if b.reserve(1, 8<<10) {
		t.Error("a large buffer got past three quarters")
	}
	if !b.reserve(16<<10, smallMsgBytes) {
		t.Error("small buffers may use the last quarter: refused")
	}
	if b.reserve(1, 1) {
		t.Error("reserve past the limit: accepted")
	}
	b.release(64 << 10)
	if got := b.used.Load(); got != 0 {
		t.Errorf("used = %d after releasing all; want 0", got)
	}

	// A message buffer grows by doubling up to its limit and never holds
	// more than it reserved.
	m := &msgBuffer{budget: b}
	err := m.fill(strings.NewReader(strings.Repeat("y", 5000)), 8<<10, func([]byte) bool { return false })
	if err != io.EOF || len(m.buf) != 5000 || int64(cap(m.buf)) != b.used.Load() {
		t.Errorf("fill = %v, len %d, cap %d, reserved %d; want EOF, 5000 and cap == reserved", err, len(m.buf), cap(m.buf), b.used.Load())
	}
	m.free()
	m = &msgBuffer{budget: b}
	if err := m.fill(strings.NewReader(strings.Repeat("y", 9000)), 8<<10, func([]byte) bool { return false }); err != errPrefixFull || len(m.buf) != 8<<10 {
		t.Errorf("fill past the limit = %v, len %d; want errPrefixFull, 8192", err, len(m.buf))
	}
	m.free()
	if got := b.used.Load(); got != 0 {
		t.Errorf("used = %d after free; want 0", got)
	}
}

// TestWebSocketStreamSlowClient: a streamed message the client sends over
// longer than websocket.write_timeout still reaches Hasura whole: the write
// timeout bounds Hasura taking each part, not the client's pace (which
// message_timeout bounds).
func TestWebSocketStreamSlowClient(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.WriteTimeout = writeTimeout }), func(c *wsStageConfig) { c.autoOff = true })
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
	up := st.hasura.next(t)
	up.next(t)
	_ = c.SetWriteDeadline(time.Now().Add(wsWait))
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	var sent bytes.Buffer
	part := func(s string) {
		t.Helper()
		sent.WriteString(s)
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	part(`{"type":"subscribe","id":"1","payload":{"pad":"`)
	for range 4 {
		part(strings.Repeat("x", 8<<10))
		// Together longer than the write timeout.
		<-time.After(writeTimeout / 2)
	}
	part(`"}}`)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := up.next(t); !bytes.Equal(got, sent.Bytes()) {
		t.Errorf("Hasura got %d bytes; want the %d sent", len(got), sent.Len())
	}
}
