package proxy

// Tests of the WebSocket path over real HTTP: a stand-in Hasura built with
// gorilla/websocket that records every upgrade request and message, the
// proxy in front of it (real Authenticator with a static HS256 key), and
// gorilla clients. Every read has a deadline; every test waits for the
// proxy's handlers to return before it ends.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

const (
	wsKey    = "websocket-test-hs256-key-0123456789abcdef"
	wsAdmin  = "websocket-test-admin-secret"
	wsWait   = 10 * time.Second // a bound for a broken build, never waited for by a passing test
	wsTokTTL = time.Hour
)

// wsUpConn is one socket the stand-in Hasura accepted.
type wsUpConn struct {
	header http.Header
	path   string
	proto  string
	conn   *websocket.Conn
	wmu    sync.Mutex
	msgs   chan []byte
	closed chan struct{}
	// closeErr is the error that ended the stand-in's reads; set before
	// closed is closed.
	closeErr error
}

func (u *wsUpConn) write(t *testing.T, mt int, b []byte) error {
	t.Helper()
	u.wmu.Lock()
	defer u.wmu.Unlock()
	_ = u.conn.SetWriteDeadline(time.Now().Add(wsWait))
	return u.conn.WriteMessage(mt, b)
}

// next returns the next message the stand-in received.
func (u *wsUpConn) next(t *testing.T) []byte {
	t.Helper()
	select {
	case m := <-u.msgs:
		return m
	case <-time.After(wsWait):
		t.Fatal("timed out waiting for a message at Hasura")
		return nil
	}
}

// waitClosed returns the close code Hasura's socket ended with (1006: no
// close frame).
func (u *wsUpConn) waitClosed(t *testing.T) int {
	t.Helper()
	select {
	case <-u.closed:
	case <-time.After(wsWait):
		t.Fatal("timed out waiting for Hasura's socket to close")
	}
	var ce *websocket.CloseError
	if errors.As(u.closeErr, &ce) {
		return ce.Code
	}
	return websocket.CloseAbnormalClosure
}

// wsHasura is the stand-in Hasura. With auto on, it answers like Hasura:
// connection_init -> connection_ack (if the upgrade carried the admin
// secret) and a keep-alive; subscribe/start -> one next/data holding the
// x-hasura-* upgrade headers, then complete; ping -> pong.
type wsHasura struct {
	srv   *httptest.Server
	auto  bool
	conns chan *wsUpConn
	dials atomic.Int32
	wg    sync.WaitGroup

	mu  sync.Mutex
	all []*wsUpConn
}

func newWSHasura(t *testing.T, auto bool) *wsHasura {
	t.Helper()
	f := &wsHasura{auto: auto, conns: make(chan *wsUpConn, 64)}
	up := websocket.Upgrader{Subprotocols: []string{protoTransportWS, protoLegacy}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.dials.Add(1)
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.wg.Add(1)
		defer f.wg.Done()
		u := &wsUpConn{header: r.Header.Clone(), path: r.URL.Path, proto: conn.Subprotocol(), conn: conn,
			msgs: make(chan []byte, 256), closed: make(chan struct{})}
		conn.SetReadLimit(64 << 20)
		f.mu.Lock()
		f.all = append(f.all, u)
		f.mu.Unlock()
		f.conns <- u
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				u.closeErr = err
				close(u.closed)
				_ = conn.Close()
				return
			}
			select {
			case u.msgs <- b:
			default:
			}
			if f.auto {
				f.answer(u, b)
			}
		}
	}))
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		for _, u := range f.all {
			_ = u.conn.Close()
		}
		f.mu.Unlock()
		done := make(chan struct{})
		go func() { f.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(wsWait):
			t.Error("stand-in Hasura handlers did not finish")
		}
	})
	return f
}

// session is what the stand-in reports as the session: the x-hasura-*
// headers of the upgrade request, names lower-cased.
func (u *wsUpConn) session() map[string]string {
	s := map[string]string{}
	for k, vs := range u.header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-hasura-") {
			s[lk] = strings.Join(vs, ",")
		}
	}
	return s
}

func (f *wsHasura) answer(u *wsUpConn, b []byte) {
	var m struct {
		Type string          `json:"type"`
		ID   json.RawMessage `json:"id"`
	}
	if json.Unmarshal(b, &m) != nil {
		return
	}
	send := func(v any) {
		out, _ := json.Marshal(v)
		u.wmu.Lock()
		_ = u.conn.SetWriteDeadline(time.Now().Add(wsWait))
		_ = u.conn.WriteMessage(websocket.TextMessage, out)
		u.wmu.Unlock()
	}
	legacy := u.proto == protoLegacy
	switch m.Type {
	case "connection_init":
		if u.header.Get("X-Hasura-Admin-Secret") != wsAdmin {
			u.wmu.Lock()
			_ = u.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4403, "Forbidden"), time.Now().Add(wsWait))
			u.wmu.Unlock()
			return
		}
		send(map[string]string{"type": "connection_ack"})
		if legacy {
			send(map[string]string{"type": "ka"})
		} else {
			send(map[string]any{"type": "ping", "payload": map[string]string{"message": "keepalive"}})
		}
	case "subscribe", "start":
		typ := "next"
		if legacy {
			typ = "data"
		}
		send(map[string]any{"type": typ, "id": m.ID, "payload": map[string]any{"data": map[string]any{"session": u.session()}}})
		send(map[string]any{"type": "complete", "id": m.ID})
	case "ping":
		send(map[string]string{"type": "pong"})
	}
}

// next returns the next socket the stand-in accepted.
func (f *wsHasura) next(t *testing.T) *wsUpConn {
	t.Helper()
	select {
	case u := <-f.conns:
		return u
	case <-time.After(wsWait):
		t.Fatal("timed out waiting for the proxy to dial Hasura")
		return nil
	}
}

// wsStage is the stand-in Hasura with the proxy in front.
type wsStage struct {
	hasura  *wsHasura
	srv     *httptest.Server
	handler *Handler
	reg     *prometheus.Registry
	logs    *observer.ObservedLogs
	// finished receives once per client request after ServeHTTP returned
	// (access log written).
	finished chan struct{}
}

type wsStageOpt func(*wsStageConfig)

type wsStageConfig struct {
	ws       WebSocketConfig
	auth     func(*auth.Config)
	upstream func(*Config)
	server   func(*http.Server)
	autoOff  bool
	// clock, when set, is the clock of the authenticator and of the
	// proxy's expiry timers.
	clock *fakeClock
	// revocations is given to the authenticator and the proxy.
	revocations auth.Revocations
	limits      Limits
}

func newWSStage(t *testing.T, opts ...wsStageOpt) *wsStage {
	t.Helper()
	var sc wsStageConfig
	for _, o := range opts {
		o(&sc)
	}
	st := &wsStage{hasura: newWSHasura(t, !sc.autoOff), reg: prometheus.NewRegistry(), finished: make(chan struct{}, 1024)}
	m := metrics.New(st.reg)
	obsCore, logs := observer.New(zapcore.InfoLevel)
	st.logs = logs
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), obsCore))

	ac := auth.DefaultConfig()
	ac.JWTSecret = &auth.JWTSecret{Type: "HS256", Key: auth.Secret(wsKey)}
	if sc.auth != nil {
		sc.auth(&ac)
	}
	ao := auth.Options{Config: ac, AdminSecret: wsAdmin, Logger: log.Named("auth"), Metrics: m,
		Revocations: sc.revocations}
	if sc.clock != nil {
		ao.Now = sc.clock.Now
	}
	a, err := auth.New(ao)
	if err != nil {
		t.Fatal(err)
	}
	uc := DefaultConfig()
	uc.URL = st.hasura.srv.URL
	uc.AdminSecret = wsAdmin
	uc.DialTimeout = time.Second
	if sc.upstream != nil {
		sc.upstream(&uc)
	}
	po := Options{Upstream: uc, MaxBodyBytes: 1 << 20, ErrorStatus: "hasura", Auth: a,
		Logger: log.Named("proxy"), Metrics: m, WebSocket: sc.ws, Revocations: sc.revocations, Limits: sc.limits}
	if sc.clock != nil {
		po.Now, po.AfterFunc = sc.clock.Now, sc.clock.AfterFunc
	}
	h, err := New(po)
	if err != nil {
		t.Fatal(err)
	}
	st.handler = h
	var active sync.WaitGroup
	st.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active.Add(1)
		defer func() {
			active.Done()
			st.finished <- struct{}{}
		}()
		h.ServeHTTP(w, r)
	}))
	if sc.server != nil {
		sc.server(st.srv.Config)
	}
	st.srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wsWait)
		defer cancel()
		if err := h.CloseWebSockets(ctx); err != nil {
			t.Errorf("CloseWebSockets: %v", err)
		}
		st.srv.Close()
		done := make(chan struct{})
		go func() { active.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(wsWait):
			t.Error("proxy handlers did not finish")
		}
	})
	return st
}

func withWS(f func(*WebSocketConfig)) wsStageOpt { return func(c *wsStageConfig) { f(&c.ws) } }

func (st *wsStage) url(path string) string {
	return "ws" + strings.TrimPrefix(st.srv.URL, "http") + path
}

// waitFinished waits until n more client requests have been handled
// completely.
func (st *wsStage) waitFinished(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-st.finished:
		case <-time.After(wsWait):
			t.Fatal("timed out waiting for the proxy handler to return")
		}
	}
}

// metric returns the value of the series of name with labels.
func (st *wsStage) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, err := st.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != metrics.Namespace+"_"+name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// wsToken mints an HS256 token for user alice, roles user and viewer,
// expiring at exp, with extra claims merged into the Hasura claims.
func wsToken(t *testing.T, exp time.Time, hasura map[string]any) string {
	t.Helper()
	hc := map[string]any{
		"x-hasura-allowed-roles": []string{"user", "viewer"},
		"x-hasura-default-role":  "user",
		"x-hasura-user-id":       "alice",
	}
	for k, v := range hasura {
		hc[k] = v
	}
	c := jwt.MapClaims{"sub": "alice", "iat": time.Now().Add(-time.Minute).Unix(), auth.DefaultClaimsNamespace: hc}
	if !exp.IsZero() {
		c["exp"] = exp.Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(wsKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wsDial opens a client socket; protocols nil asks for none.
func wsDial(t *testing.T, url string, protocols []string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: wsWait}
	c, resp, err := d.Dial(url, h)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, resp, err
}

func mustDial(t *testing.T, url, proto string, h http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := wsDial(t, url, []string{proto}, h)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial: %v %s", err, body)
	}
	if got := c.Subprotocol(); got != proto {
		t.Fatalf("subprotocol %q, want %q", got, proto)
	}
	return c
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(wsWait))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("send %.100s: %v", msg, err)
	}
}

// recv returns the next data message, skipping nothing.
func recv(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wsWait))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

// expectClose reads until the socket closes and returns the data messages
// received before, and the close error.
func expectClose(t *testing.T, c *websocket.Conn) ([]string, *websocket.CloseError) {
	t.Helper()
	var msgs []string
	_ = c.SetReadDeadline(time.Now().Add(wsWait))
	for range 10000 {
		_, b, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("socket ended without a close frame: %v (after %q)", err, msgs)
			}
			return msgs, ce
		}
		msgs = append(msgs, string(b))
	}
	t.Fatal("too many messages")
	return nil, nil
}

func initMsg(headers map[string]string) string {
	b, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]any{"headers": headers}})
	return string(b)
}

func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %s", want)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestWebSocketRelay runs a subscription through the proxy on both
// protocols with hostile x-hasura-* headers in the upgrade request and in
// the payload, and checks exactly what Hasura saw and that every message is
// relayed unchanged both ways.
func TestWebSocketRelay(t *testing.T) {
	for _, tt := range []struct {
		proto, subscribe, data string
	}{
		{protoTransportWS, "subscribe", "next"},
		{protoLegacy, "start", "data"},
	} {
		t.Run(tt.proto, func(t *testing.T) {
			st := newWSStage(t)
			tok := wsToken(t, time.Now().Add(wsTokTTL), nil)
			upgrade := http.Header{
				"X-Hasura-Role":         {"admin"},
				"X-Hasura-User-Id":      {"mallory-upgrade"},
				"X-Hasura-Org-Id":       {"evil-upgrade"},
				"X_hasura_default_role": {"admin"},
			}
			c := mustDial(t, st.url("/v1/graphql"), tt.proto, upgrade)
			send(t, c, initMsg(map[string]string{
				"Authorization":           "Bearer " + tok,
				"x-hasura-role":           "user",
				"X-Hasura-User-Id":        "mallory-payload",
				"x-hasura-org-id":         "evil-payload",
				"x-hasura-allowed-roles":  "{admin}",
				"X-HASURA-DEFAULT-ROLE":   "admin",
				"x-hasura-backend-secret": "x",
			}))
			// The legacy client sends start right behind the init.
			sub := fmt.Sprintf(`{"id":"op-1","type":%q,"payload":{"query":"subscription { s }"}}`, tt.subscribe)
			send(t, c, sub)

			up := st.hasura.next(t)
			if up.proto != tt.proto || up.path != "/v1/graphql" {
				t.Errorf("Hasura got subprotocol %q path %q", up.proto, up.path)
			}
			wantSession := map[string]string{"x-hasura-admin-secret": wsAdmin, "x-hasura-role": "user", "x-hasura-user-id": "alice"}
			if got := up.session(); fmt.Sprint(got) != fmt.Sprint(wantSession) {
				t.Errorf("x-hasura-* on the upgrade to Hasura: %v, want %v", got, wantSession)
			}
			for _, h := range []string{"Authorization", "Cookie", "Origin"} {
				if v := up.header.Get(h); v != "" {
					t.Errorf("upgrade to Hasura carries %s", h)
				}
			}
			if up.header.Get("X-Request-Id") == "" || up.header.Get("X-Forwarded-For") != "127.0.0.1" {
				t.Errorf("upgrade to Hasura: X-Request-Id %q X-Forwarded-For %q", up.header.Get("X-Request-Id"), up.header.Get("X-Forwarded-For"))
			}
			jsonEq(t, up.next(t), `{"type":"connection_init","payload":{"headers":{
				"x-hasura-admin-secret":"`+wsAdmin+`","x-hasura-role":"user","x-hasura-user-id":"alice",
				"Authorization":"Bearer `+tok+`"}}}`)
			if got := up.next(t); string(got) != sub {
				t.Errorf("subscribe relayed as %s, want %s", got, sub)
			}

			jsonEq(t, recv(t, c), `{"type":"connection_ack"}`)
			ka := recv(t, c)
			if tt.proto == protoTransportWS {
				jsonEq(t, ka, `{"type":"ping","payload":{"message":"keepalive"}}`)
			} else {
				jsonEq(t, ka, `{"type":"ka"}`)
			}
			jsonEq(t, recv(t, c), `{"type":"`+tt.data+`","id":"op-1","payload":{"data":{"session":{
				"x-hasura-admin-secret":"`+wsAdmin+`","x-hasura-role":"user","x-hasura-user-id":"alice"}}}}`)
			jsonEq(t, recv(t, c), `{"type":"complete","id":"op-1"}`)

			// Unchanged both ways, byte for byte, text and binary.
			for _, m := range []struct {
				mt   int
				body string
			}{
				{websocket.TextMessage, `{"type":"pong","payload":{"x":[1, 2 ,3]}}`},
				{websocket.BinaryMessage, "\x00\x01not json"},
			} {
				_ = c.SetWriteDeadline(time.Now().Add(wsWait))
				if err := c.WriteMessage(m.mt, []byte(m.body)); err != nil {
					t.Fatal(err)
				}
				if got := up.next(t); string(got) != m.body {
					t.Errorf("client -> Hasura: %q, want %q", got, m.body)
				}
				if err := up.write(t, m.mt, []byte(m.body)); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(wsWait))
				mt, got, err := c.ReadMessage()
				if err != nil || mt != m.mt || string(got) != m.body {
					t.Errorf("Hasura -> client: %d %q %v, want %d %q", mt, got, err, m.mt, m.body)
				}
			}

			// The client's close code reaches Hasura.
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "bye"), time.Now().Add(wsWait))
			if code := up.waitClosed(t); code != 4321 {
				t.Errorf("Hasura saw close %d, want 4321", code)
			}
			st.waitFinished(t, 1)
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseClientClosed); got != 1 {
				t.Errorf("websocket_closed_total{client_closed} = %v", got)
			}
			if got := st.metric(t, "websocket_connections"); got != 0 {
				t.Errorf("websocket_connections = %v after close", got)
			}
			if got := st.metric(t, "auth_decisions_total", "result", "allowed", "reason", "ok"); got != 1 {
				t.Errorf("auth_decisions_total{allowed} = %v", got)
			}
			if got := st.metric(t, "requests_total", "endpoint", "graphql", "code", "other"); got != 0 {
				t.Errorf("an upgraded socket was counted as a request")
			}
			lines := st.logs.FilterMessage("request").All()
			if len(lines) != 1 {
				t.Fatalf("%d access log lines, want 1", len(lines))
			}
			f := lines[0].ContextMap()
			if f["status"] != int64(101) || f["role"] != "user" || f["close_code"] != int64(4321) ||
				f["close_reason"] != metrics.CloseClientClosed || f["subprotocol"] != tt.proto {
				t.Errorf("access log line %v", f)
			}
			if s := fmt.Sprint(f); strings.Contains(s, tok) || strings.Contains(s, wsAdmin) {
				t.Errorf("access log holds a secret: %v", f)
			}
		})
	}
}

// TestWebSocketUpstreamClose relays Hasura's close codes (4xxx included) to
// the client.
func TestWebSocketUpstreamClose(t *testing.T) {
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		t.Run(proto, func(t *testing.T) {
			st := newWSStage(t)
			c := mustDial(t, st.url("/v1/graphql"), proto, nil)
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
			up := st.hasura.next(t)
			up.next(t)
			recv(t, c) // ack
			recv(t, c) // keep-alive
			up.wmu.Lock()
			_ = up.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4500, "schema reloaded"), time.Now().Add(wsWait))
			up.wmu.Unlock()
			_, ce := expectClose(t, c)
			if ce.Code != 4500 || ce.Text != "schema reloaded" {
				t.Errorf("client got close %d %q, want 4500 %q", ce.Code, ce.Text, "schema reloaded")
			}
			st.waitFinished(t, 1)
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseUpstreamClosed); got != 1 {
				t.Errorf("websocket_closed_total{upstream_closed} = %v", got)
			}
		})
	}
}

// TestWebSocketInitFailures: each refused connection_init gets Hasura's
// answer for its protocol, and Hasura is never dialled.
func TestWebSocketInitFailures(t *testing.T) {
	valid := func(t *testing.T) string { return wsToken(t, time.Now().Add(wsTokTTL), nil) }
	for _, tt := range []struct {
		name    string
		payload func(t *testing.T) map[string]string
		upgrade func(t *testing.T) http.Header
		message string
		reason  string
	}{
		{"expired", func(t *testing.T) map[string]string {
			return map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(-time.Minute), nil)}
		}, nil, "Could not verify JWT: JWTExpired", metrics.ReasonExpired},
		{"missing", func(*testing.T) map[string]string { return nil }, nil,
			"Missing 'Authorization' or 'Cookie' header in JWT authentication mode", metrics.ReasonMissing},
		{"malformed header", func(*testing.T) map[string]string { return map[string]string{"authorization": "Bearer"} }, nil,
			"Malformed Authorization header", metrics.ReasonMalformed},
		{"malformed token", func(*testing.T) map[string]string { return map[string]string{"Authorization": "Bearer abc.def"} }, nil,
			"Could not verify JWT: JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got 2)", metrics.ReasonMalformed},
		{"token in payload and upgrade", func(t *testing.T) map[string]string {
			return map[string]string{"Authorization": "Bearer " + valid(t)}
		}, func(t *testing.T) http.Header { return http.Header{"Authorization": {"Bearer " + valid(t)}} },
			"Could not verify JWT: Multiple JWTs found", metrics.ReasonMultiple},
		{"two tokens in payload (name case)", func(t *testing.T) map[string]string {
			return map[string]string{"Authorization": "Bearer " + valid(t), "authorization": "Bearer " + valid(t)}
		}, nil, "Could not verify JWT: Multiple JWTs found", metrics.ReasonMultiple},
		{"role not allowed", func(t *testing.T) map[string]string {
			return map[string]string{"Authorization": "Bearer " + valid(t), "X-Hasura-Role": "editor"}
		}, nil, "Your requested role is not in allowed roles", metrics.ReasonRoleNotAllowed},
		{"role not allowed on the upgrade", func(t *testing.T) map[string]string {
			return map[string]string{"Authorization": "Bearer " + valid(t)}
		}, func(*testing.T) http.Header { return http.Header{"X-Hasura-Role": {"admin"}} },
			"Your requested role is not in allowed roles", metrics.ReasonRoleNotAllowed},
		{"wrong admin secret in payload", func(t *testing.T) map[string]string {
			return map[string]string{"Authorization": "Bearer " + valid(t), "x-hasura-admin-secret": "guess"}
		}, nil, "invalid x-hasura-admin-secret/x-hasura-access-key", metrics.ReasonBadAdminSecret},
		{"wrong admin secret on the upgrade", func(t *testing.T) map[string]string {
			return map[string]string{"Authorization": "Bearer " + valid(t)}
		}, func(*testing.T) http.Header { return http.Header{"X-Hasura-Admin-Secret": {"guess"}} },
			"invalid x-hasura-admin-secret/x-hasura-access-key", metrics.ReasonBadAdminSecret},
		// Hasura builds its header map with the upgrade request last, so
		// the upgrade's admin secret overrides the payload's.
		{"right admin secret in payload, wrong on the upgrade", func(*testing.T) map[string]string {
			return map[string]string{"x-hasura-admin-secret": wsAdmin}
		}, func(*testing.T) http.Header { return http.Header{"X-Hasura-Admin-Secret": {"guess"}} },
			"invalid x-hasura-admin-secret/x-hasura-access-key", metrics.ReasonBadAdminSecret},
	} {
		for _, proto := range []string{protoTransportWS, protoLegacy} {
			t.Run(tt.name+"/"+proto, func(t *testing.T) {
				st := newWSStage(t)
				var h http.Header
				if tt.upgrade != nil {
					h = tt.upgrade(t)
				}
				c := mustDial(t, st.url("/v1/graphql"), proto, h)
				send(t, c, initMsg(tt.payload(t)))
				msgs, ce := expectClose(t, c)
				if proto == protoTransportWS {
					if len(msgs) != 0 || ce.Code != 4403 || ce.Text != `{"server_error_msg":"4403: Forbidden"}` {
						t.Errorf("got %q then close %d %q, want close 4403 {\"server_error_msg\":\"4403: Forbidden\"}", msgs, ce.Code, ce.Text)
					}
				} else {
					want := connectionErrorMessage(tt.message)
					wantReason := hasuraCloseReason(4400, "Connection initialization failed: "+tt.message)
					if len(msgs) != 1 || msgs[0] != string(want) || ce.Code != 4400 || ce.Text != wantReason {
						t.Errorf("got %q then close %d %q, want %s then 4400 %q", msgs, ce.Code, ce.Text, want, wantReason)
					}
				}
				st.waitFinished(t, 1)
				if n := st.hasura.dials.Load(); n != 0 {
					t.Errorf("Hasura was dialled %d times", n)
				}
				if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseInitFailed); got != 1 {
					t.Errorf("websocket_closed_total{init_failed} = %v", got)
				}
				if got := st.metric(t, "auth_decisions_total", "result", "denied", "reason", tt.reason); got != 1 {
					t.Errorf("auth_decisions_total{denied,%s} = %v", tt.reason, got)
				}
				if got := st.metric(t, "websocket_connections"); got != 0 {
					t.Errorf("websocket_connections = %v", got)
				}
			})
		}
	}
}

// TestWebSocketAdminSecret: the right admin secret is Hasura's admin mode
// (client x-hasura-* become session variables), and such a session never
// expires.
func TestWebSocketAdminSecret(t *testing.T) {
	st := newWSStage(t)
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	send(t, c, initMsg(map[string]string{"X-Hasura-Admin-Secret": wsAdmin, "x-hasura-role": "manager", "x-hasura-org-id": "7"}))
	up := st.hasura.next(t)
	want := map[string]string{"x-hasura-admin-secret": wsAdmin, "x-hasura-role": "manager", "x-hasura-org-id": "7"}
	if got := up.session(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("session %v, want %v", got, want)
	}
	jsonEq(t, recv(t, c), `{"type":"connection_ack"}`)
}

// TestWebSocketBeforeInit: messages before connection_init are answered per
// protocol, without dialling Hasura.
func TestWebSocketBeforeInit(t *testing.T) {
	t.Run("graphql-transport-ws subscribe", func(t *testing.T) {
		st := newWSStage(t)
		c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
		send(t, c, `{"type":"ping","payload":{"n":1}}`)
		jsonEq(t, recv(t, c), `{"type":"pong","payload":{"n":1}}`)
		send(t, c, `{"id":"1","type":"subscribe","payload":{"query":"subscription { s }"}}`)
		msgs, ce := expectClose(t, c)
		if want := `{"server_error_msg":"4401: Unauthorized"}`; len(msgs) != 0 || ce.Code != 4401 || ce.Text != want {
			t.Errorf("got %q then close %d %q, want 4401 %q", msgs, ce.Code, ce.Text, want)
		}
		st.waitFinished(t, 1)
		if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseProtocolError); got != 1 {
			t.Errorf("websocket_closed_total{protocol_error} = %v", got)
		}
	})
	t.Run("graphql-transport-ws invalid message", func(t *testing.T) {
		st := newWSStage(t)
		c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
		send(t, c, `{"type":"connection_init","payload":"not an object"}`)
		_, ce := expectClose(t, c)
		// Hasura's text is longer than a close frame holds: cut to 123 bytes.
		want := `{"server_error_msg":"4400: Parsing client message failed: parsing ClientMessage failed: Error in $.payload: expected Obje"}`
		if ce.Code != 4400 || ce.Text != want {
			t.Errorf("close %d %q; want 4400 %q", ce.Code, ce.Text, want)
		}
	})
	for _, path := range []string{"/v1/graphql", "/v1alpha1/graphql"} {
		t.Run("legacy start and garbage on "+path, func(t *testing.T) {
			st := newWSStage(t)
			c := mustDial(t, st.url(path), protoLegacy, nil)
			send(t, c, `{"id":"7","type":"start","payload":{"query":"subscription { s }"}}`)
			if path == "/v1alpha1/graphql" {
				jsonEq(t, recv(t, c), `{"type":"error","id":"7","payload":{"error":"start received before the connection is initialised","path":"$","code":"start-failed"}}`)
			} else {
				jsonEq(t, recv(t, c), `{"type":"error","id":"7","payload":{"message":"start received before the connection is initialised","extensions":{"path":"$","code":"start-failed"}}}`)
			}
			jsonEq(t, recv(t, c), `{"type":"complete","id":"7"}`)
			send(t, c, `not json`)
			jsonEq(t, recv(t, c), `{"type":"connection_error","payload":"parsing ClientMessage failed: Error in $: expected Object"}`)
			// Still open: a proper init now works.
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
			jsonEq(t, recv(t, c), `{"type":"connection_ack"}`)
			if up := st.hasura.next(t); up.path != path {
				t.Errorf("dialled %s, want %s", up.path, path)
			}
		})
	}
	t.Run("legacy connection_terminate", func(t *testing.T) {
		st := newWSStage(t)
		c := mustDial(t, st.url("/v1/graphql"), protoLegacy, nil)
		send(t, c, `{"type":"connection_terminate"}`)
		_, ce := expectClose(t, c)
		if ce.Code != 1000 {
			t.Errorf("close %d %q, want 1000", ce.Code, ce.Text)
		}
	})
}

// TestWebSocketInitTimeout closes a socket that sends no connection_init.
func TestWebSocketInitTimeout(t *testing.T) {
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		t.Run(proto, func(t *testing.T) {
			st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.InitTimeout = 300 * time.Millisecond }))
			start := time.Now()
			c := mustDial(t, st.url("/v1/graphql"), proto, nil)
			_, ce := expectClose(t, c)
			if want := `{"server_error_msg":"4408: Connection initialisation timeout"}`; ce.Code != 4408 || ce.Text != want {
				t.Errorf("close %d %q, want 4408 %q", ce.Code, ce.Text, want)
			}
			// Never before init_timeout; how much later depends on how busy
			// the machine is (expectClose bounds it at wsWait).
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Errorf("closed after %v; want no earlier than init_timeout 300ms", d)
			}
			st.waitFinished(t, 1)
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseInitTimeout); got != 1 {
				t.Errorf("websocket_closed_total{init_timeout} = %v", got)
			}
		})
	}
}

// TestWebSocketSecondInit: a second connection_init never reaches Hasura,
// however it is spelt or wherever its "type" is.
func TestWebSocketSecondInit(t *testing.T) {
	big := strings.Repeat("x", 20<<10)
	for _, tt := range []struct {
		name, msg string
		// dup: the message holds two "type" members; it is refused on both
		// protocols.
		dup bool
	}{
		{"plain", `{"type":"connection_init","payload":{"headers":{"X-Hasura-User-Id":"bob"}}}`, false},
		{"escaped", `{"t\u0079pe":"connection_\u0069nit","payload":{"headers":{"X-Hasura-User-Id":"bob"}}}`, false},
		{"type after a large payload", `{"payload":{"headers":{"X-Hasura-User-Id":"bob"},"pad":"` + big + `"},"type":"connection_init"}`, false},
		{"second type after a large payload", `{"type":"subscribe","id":"9","payload":{"pad":"` + big + `"},"type":"connection_init"}`, true},
		{"second type in a small message", `{"type":"subscribe","id":"9","type":"connection_init"}`, true},
		// The first "type" decides: this is a connection_init.
		{"init then another type", `{"type":"connection_init","type":"subscribe","id":"9"}`, false},
	} {
		for _, proto := range []string{protoTransportWS, protoLegacy} {
			t.Run(tt.name+"/"+proto, func(t *testing.T) {
				st := newWSStage(t)
				c := mustDial(t, st.url("/v1/graphql"), proto, nil)
				send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
				up := st.hasura.next(t)
				up.next(t)
				recv(t, c)
				recv(t, c)
				send(t, c, tt.msg)
				switch {
				case tt.dup:
					_, ce := expectClose(t, c)
					if ce.Code != 4400 {
						t.Errorf("close %d %q, want 4400", ce.Code, ce.Text)
					}
					up.waitClosed(t)
				case proto == protoTransportWS:
					_, ce := expectClose(t, c)
					if want := `{"server_error_msg":"4429: Too many requests"}`; ce.Code != 4429 || ce.Text != want {
						t.Errorf("close %d %q, want 4429 %q", ce.Code, ce.Text, want)
					}
					up.waitClosed(t)
				default:
					// Ignored: the socket keeps working.
					send(t, c, `{"id":"2","type":"start","payload":{"query":"subscription { s }"}}`)
					if got := string(up.next(t)); !strings.Contains(got, `"id":"2"`) {
						t.Errorf("Hasura got %s, want the start", got)
					}
				}
				// Nothing but the first init ever arrived complete at Hasura.
				for {
					select {
					case m := <-up.msgs:
						if bytes.Contains(m, []byte("connection_")) || bytes.Contains(m, []byte("bob")) {
							t.Errorf("Hasura received %.80s", m)
						}
						continue
					default:
					}
					break
				}
			})
		}
	}
}

// TestWebSocketTokenExpiry closes both sides when the clock reaches the
// token's exp, and not a moment before. The clock is injected (authenticator
// and expiry timer), so nothing waits for exp and a busy machine cannot make
// the close look late.
func TestWebSocketTokenExpiry(t *testing.T) {
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock(time.Now().Truncate(time.Second))
			st := newWSStage(t, func(c *wsStageConfig) { c.clock = clock })
			exp := clock.Now().Add(time.Hour)
			c := mustDial(t, st.url("/v1/graphql"), proto, nil)
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, exp, nil)}))
			up := st.hasura.next(t) // dialled after the token was verified and its timer set
			up.next(t)              // the connection_init
			if got := clock.pending(); got != 1 {
				t.Fatalf("expiry timers = %d; want 1", got)
			}
			clock.Advance(time.Hour - time.Nanosecond)
			if got := clock.pending(); got != 1 {
				t.Fatalf("expiry timers 1ns before exp = %d; want 1 (closed before exp)", got)
			}
			// One nanosecond before exp the socket still relays, both ways:
			// the subscription reaches Hasura and its answers (up to the
			// complete) reach the client.
			start := map[string]string{protoTransportWS: "subscribe", protoLegacy: "start"}[proto]
			send(t, c, `{"id":"1","type":"`+start+`","payload":{"query":"subscription { s }"}}`)
			if got := string(up.next(t)); !strings.Contains(got, `"id":"1"`) {
				t.Errorf("Hasura got %s; want the %s of id 1", got, start)
			}
			for i := 0; ; i++ {
				if i == 10 {
					t.Fatal("no complete of id 1 among the first 10 messages to the client")
				}
				if m := string(recv(t, c)); strings.Contains(m, `"complete"`) {
					break
				}
			}
			clock.Advance(time.Nanosecond)
			msgs, ce := expectClose(t, c)
			if proto == protoTransportWS {
				if ce.Code != 4403 || ce.Text != "token expired" {
					t.Errorf("close %d %q, want 4403 token expired", ce.Code, ce.Text)
				}
			} else {
				if n := len(msgs); n == 0 || msgs[n-1] != `{"type":"connection_error","payload":"Could not verify JWT: JWTExpired"}` {
					t.Errorf("messages before close: %q", msgs)
				}
				if ce.Code != 4400 {
					t.Errorf("close %d %q, want 4400", ce.Code, ce.Text)
				}
			}
			if code := up.waitClosed(t); code != websocket.CloseNormalClosure {
				t.Errorf("Hasura saw close %d, want 1000", code)
			}
			st.waitFinished(t, 1)
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseTokenExpired); got != 1 {
				t.Errorf("websocket_closed_total{token_expired} = %v", got)
			}
		})
	}
}

// TestWebSocketExpiredWithinSkew: a token accepted within allowed_skew but
// already past exp never reaches Hasura.
func TestWebSocketExpiredWithinSkew(t *testing.T) {
	st := newWSStage(t, func(c *wsStageConfig) {
		c.auth = func(a *auth.Config) { a.JWTSecret.AllowedSkew = 60 }
	})
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(-10*time.Second), nil)}))
	_, ce := expectClose(t, c)
	if ce.Code != 4403 || ce.Text != "token expired" {
		t.Errorf("close %d %q", ce.Code, ce.Text)
	}
	st.waitFinished(t, 1)
	if n := st.hasura.dials.Load(); n != 0 {
		t.Errorf("Hasura dialled %d times", n)
	}
}

// TestWebSocketLargeMessages relays messages near the limit unchanged both
// ways, on the streamed and the held paths.
func TestWebSocketLargeMessages(t *testing.T) {
	const limit = 1 << 20
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.MaxMessageBytes = limit }), func(c *wsStageConfig) { c.autoOff = true })
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	c.SetReadLimit(4 * limit)
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
	up := st.hasura.next(t)
	up.next(t)
	pad := strings.Repeat("0123456789abcdef", (limit-200)/16)
	for _, m := range []string{
		`{"id":"1","type":"subscribe","payload":{"query":"` + pad + `"}}`, // type first: streamed
		`{"id":"2","payload":{"query":"` + pad + `"},"type":"subscribe"}`, // type last: held whole
	} {
		send(t, c, m)
		if got := up.next(t); string(got) != m {
			t.Errorf("client -> Hasura: %d bytes differ from the %d sent", len(got), len(m))
		}
	}
	out := []byte(`{"id":"1","type":"next","payload":{"data":"` + pad + `"}}`)
	if err := up.write(t, websocket.TextMessage, out); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); !bytes.Equal(got, out) {
		t.Errorf("Hasura -> client: %d bytes differ from the %d sent", len(got), len(out))
	}
}

// TestWebSocketMessageTooLarge closes with 1009 when either side sends more
// than websocket.max_message_bytes.
func TestWebSocketMessageTooLarge(t *testing.T) {
	const limit = 8 << 10
	for _, from := range []string{"client", "hasura"} {
		t.Run(from, func(t *testing.T) {
			st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.MaxMessageBytes = limit }))
			c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
			c.SetReadLimit(1 << 20)
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
			up := st.hasura.next(t)
			up.next(t)
			recv(t, c)
			recv(t, c)
			big := `{"type":"next","id":"1","payload":"` + strings.Repeat("y", limit) + `"}`
			if from == "client" {
				send(t, c, big)
			} else if err := up.write(t, websocket.TextMessage, []byte(big)); err != nil {
				t.Fatal(err)
			}
			_, ce := expectClose(t, c)
			if ce.Code != websocket.CloseMessageTooBig {
				t.Errorf("close %d %q, want 1009", ce.Code, ce.Text)
			}
			up.waitClosed(t)
			st.waitFinished(t, 1)
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseMessageTooLarge); got != 1 {
				t.Errorf("websocket_closed_total{message_too_large} = %v", got)
			}
		})
	}
}

// TestWebSocketTooManyConnections refuses upgrades beyond the limit with
// 503 in Hasura's JSON shape.
func TestWebSocketTooManyConnections(t *testing.T) {
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.MaxConnections = 2 }))
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		c := mustDial(t, st.url("/v1/graphql"), proto, nil)
		// A round trip: the proxy has counted the socket.
		send(t, c, `{"type":"ping"}`)
		jsonEq(t, recv(t, c), `{"type":"pong"}`)
	}
	_, resp, err := wsDial(t, st.url("/v1/graphql"), []string{protoTransportWS}, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third socket: %v %v, want 503", err, resp)
	}
	b, _ := io.ReadAll(resp.Body)
	jsonEq(t, b, `{"message":"too many WebSocket connections (websocket.max_connections)","extensions":{"path":"$","code":"unexpected"}}`)
	st.waitFinished(t, 1)
	if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseTooManyConnections); got != 1 {
		t.Errorf("websocket_closed_total{too_many_connections} = %v", got)
	}
	if got := st.metric(t, "websocket_connections"); got != 2 {
		t.Errorf("websocket_connections = %v, want 2", got)
	}
}

// TestWebSocketSlowReader: a client that stops reading is disconnected
// after websocket.write_timeout, and meanwhile its own messages still reach
// Hasura.
func TestWebSocketSlowReader(t *testing.T) {
	// write_timeout is also the window in which the client's pong below must
	// be relayed while the other direction is stalled: 1s, not less, so a
	// busy machine still fits one relay in it.
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.WriteTimeout = time.Second }))
	d := websocket.Dialer{
		Subprotocols:     []string{protoTransportWS},
		HandshakeTimeout: wsWait,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4 << 10) // a small window fills fast
			}
			return nc, err
		},
	}
	c, _, err := d.Dial(st.url("/v1/graphql"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
	up := st.hasura.next(t)
	up.next(t)

	// Hasura floods; the client reads nothing from now on.
	flood := make(chan error, 1)
	go func() {
		msg := []byte(`{"type":"next","id":"1","payload":"` + strings.Repeat("z", 64<<10) + `"}`)
		for range 4096 {
			up.wmu.Lock()
			_ = up.conn.SetWriteDeadline(time.Now().Add(wsWait))
			err := up.conn.WriteMessage(websocket.TextMessage, msg)
			up.wmu.Unlock()
			if err != nil {
				flood <- err
				return
			}
		}
		flood <- errors.New("the proxy took 256 MiB from Hasura for a client that reads nothing")
	}()
	// The other direction is not blocked by the stalled one.
	send(t, c, `{"type":"pong"}`)
	if got := string(up.next(t)); got != `{"type":"pong"}` {
		t.Errorf("Hasura got %s", got)
	}
	up.waitClosed(t)
	select {
	case err := <-flood:
		if strings.Contains(err.Error(), "256 MiB") {
			t.Error(err)
		}
	case <-time.After(wsWait):
		t.Error("Hasura's writes were never released")
	}
	st.waitFinished(t, 1)
	if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseWriteTimeout); got != 1 {
		t.Errorf("websocket_closed_total{write_timeout} = %v", got)
	}
	line := st.logs.FilterMessage("request").All()
	if len(line) != 1 || line[0].ContextMap()["error"] != "client too slow: write timeout" {
		t.Errorf("access log: %v", line)
	}
}

// TestWebSocketShutdown closes every socket with 1001 on both sides, in the
// init phase too, and refuses new upgrades.
func TestWebSocketShutdown(t *testing.T) {
	st := newWSStage(t)
	var clients []*websocket.Conn
	var ups []*wsUpConn
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		c := mustDial(t, st.url("/v1/graphql"), proto, nil)
		send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
		up := st.hasura.next(t)
		up.next(t)
		recv(t, c)
		clients, ups = append(clients, c), append(ups, up)
	}
	waiting := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil) // no init yet
	clients = append(clients, waiting)

	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	if err := st.handler.CloseWebSockets(ctx); err != nil {
		t.Fatalf("CloseWebSockets: %v", err)
	}
	for i, c := range clients {
		_, ce := expectClose(t, c)
		if ce.Code != websocket.CloseGoingAway {
			t.Errorf("client %d: close %d %q, want 1001", i, ce.Code, ce.Text)
		}
	}
	for i, up := range ups {
		if code := up.waitClosed(t); code != websocket.CloseGoingAway {
			t.Errorf("Hasura socket %d: close %d, want 1001", i, code)
		}
	}
	_, resp, err := wsDial(t, st.url("/v1/graphql"), []string{protoTransportWS}, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("upgrade after shutdown: %v %v, want 503", err, resp)
	}
	st.waitFinished(t, 4)
	if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseShutdown); got != 3 {
		t.Errorf("websocket_closed_total{shutdown} = %v, want 3", got)
	}
}

// TestWebSocketHandshake: paths, subprotocol choice, Origin policy.
func TestWebSocketHandshake(t *testing.T) {
	t.Run("paths", func(t *testing.T) {
		st := newWSStage(t)
		for _, p := range []string{"/v1/metadata", "/v2/query", "/v1/graphql/", "/v1%2Fgraphql", "/"} {
			_, resp, err := wsDial(t, st.url(p), []string{protoTransportWS}, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %v %v, want 404", p, err, resp)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			if want := `{"message":"only '/v1/graphql', '/v1alpha1/graphql' and '/v1beta1/relay' are supported on websockets","extensions":{"path":"$","code":"not-found"}}`; string(b) != want {
				t.Errorf("%s: body %s", p, b)
			}
		}
		c := mustDial(t, st.url("/v1beta1/relay"), protoTransportWS, nil)
		send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
		if up := st.hasura.next(t); up.path != "/v1beta1/relay" {
			t.Errorf("dialled %s", up.path)
		}
	})
	t.Run("subprotocols", func(t *testing.T) {
		for _, tt := range []struct {
			asked []string
			want  string // what Hasura is dialled with
			echo  string
		}{
			{[]string{"graphql-transport-ws"}, protoTransportWS, protoTransportWS},
			{[]string{"graphql-ws"}, protoLegacy, protoLegacy},
			{[]string{"graphql-transport-ws", "graphql-ws"}, protoLegacy, protoLegacy},
			{[]string{"graphql-ws", "graphql-transport-ws"}, protoLegacy, protoLegacy},
			{nil, protoLegacy, ""},
			{[]string{"foo"}, protoLegacy, ""},
		} {
			st := newWSStage(t)
			c, _, err := wsDial(t, st.url("/v1/graphql"), tt.asked, nil)
			if err != nil {
				t.Fatalf("%v: %v", tt.asked, err)
			}
			if c.Subprotocol() != tt.echo {
				t.Errorf("%v: answered %q, want %q", tt.asked, c.Subprotocol(), tt.echo)
			}
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
			if up := st.hasura.next(t); up.proto != tt.want {
				t.Errorf("%v: Hasura dialled with %q, want %q", tt.asked, up.proto, tt.want)
			}
		}
	})
	t.Run("origin", func(t *testing.T) {
		st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.AllowedOrigins = []string{"https://app.example.com"} }))
		_, resp, err := wsDial(t, st.url("/v1/graphql"), []string{protoTransportWS}, http.Header{"Origin": {"https://evil.example.com"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("foreign origin: %v %v, want 400", err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		jsonEq(t, b, `{"message":"received origin header does not match configured CORS domains","extensions":{"path":"$","code":"access-denied"}}`)
		mustDial(t, st.url("/v1/graphql"), protoTransportWS, http.Header{"Origin": {"HTTPS://APP.example.com"}})
		mustDial(t, st.url("/v1/graphql"), protoTransportWS, http.Header{"Origin": {"https://app.example.com:443"}})
		mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	})
}

// TestWebSocketCookie: the upgrade request's Cookie is read only with
// websocket.read_cookie, as with HASURA_GRAPHQL_WS_READ_COOKIE; a Cookie in
// payload.headers is always read.
func TestWebSocketCookie(t *testing.T) {
	cookieAuth := func(c *wsStageConfig) {
		c.auth = func(a *auth.Config) { a.JWTSecret.Header = &auth.HeaderSource{Type: "Cookie", Name: "__session"} }
	}
	tok := wsToken(t, time.Now().Add(wsTokTTL), nil)
	t.Run("upgrade cookie ignored by default", func(t *testing.T) {
		st := newWSStage(t, cookieAuth)
		c := mustDial(t, st.url("/v1/graphql"), protoLegacy, http.Header{"Cookie": {"__session=" + tok}})
		send(t, c, initMsg(nil))
		msgs, ce := expectClose(t, c)
		if ce.Code != 4400 || len(msgs) != 1 || !strings.Contains(msgs[0], "Missing 'Authorization' or 'Cookie' header") {
			t.Errorf("got %q then %d", msgs, ce.Code)
		}
	})
	t.Run("payload cookie", func(t *testing.T) {
		st := newWSStage(t, cookieAuth)
		c := mustDial(t, st.url("/v1/graphql"), protoLegacy, nil)
		send(t, c, initMsg(map[string]string{"cookie": "a=b; __session=" + tok}))
		jsonEq(t, recv(t, c), `{"type":"connection_ack"}`)
		var init struct {
			Payload struct{ Headers map[string]string } `json:"payload"`
		}
		up := st.hasura.next(t)
		if err := json.Unmarshal(up.next(t), &init); err != nil || init.Payload.Headers["Cookie"] != "a=b; __session="+tok {
			t.Errorf("forwarded cookie %q", init.Payload.Headers["Cookie"])
		}
	})
	t.Run("upgrade cookie with read_cookie", func(t *testing.T) {
		st := newWSStage(t, cookieAuth, withWS(func(c *WebSocketConfig) {
			c.ReadCookie, c.AllowedOrigins = true, []string{"https://app.example.com"}
		}))
		c := mustDial(t, st.url("/v1/graphql"), protoLegacy, http.Header{
			"Cookie": {"__session=" + tok}, "Origin": {"https://app.example.com"}})
		send(t, c, initMsg(nil))
		jsonEq(t, recv(t, c), `{"type":"connection_ack"}`)
	})
}

// TestWebSocketForwardingOff: with forwarding off, Authorization and Cookie
// do not reach Hasura at all.
func TestWebSocketForwardingOff(t *testing.T) {
	st := newWSStage(t, func(c *wsStageConfig) {
		c.upstream = func(u *Config) { u.ForwardAuthorization, u.ForwardCookie = false, false }
	})
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	tok := wsToken(t, time.Now().Add(wsTokTTL), nil)
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + tok, "Cookie": "a=b"}))
	up := st.hasura.next(t)
	jsonEq(t, up.next(t), `{"type":"connection_init","payload":{"headers":{
		"x-hasura-admin-secret":"`+wsAdmin+`","x-hasura-role":"user","x-hasura-user-id":"alice"}}}`)
}

// TestWebSocketUpstreamUnreachable closes the client with 1013 (retryable)
// when Hasura cannot be dialled after a successful init.
func TestWebSocketUpstreamUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		t.Run(proto, func(t *testing.T) {
			st := newWSStage(t, func(c *wsStageConfig) { c.upstream = func(u *Config) { u.URL = dead } })
			c := mustDial(t, st.url("/v1/graphql"), proto, nil)
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
			_, ce := expectClose(t, c)
			if ce.Code != websocket.CloseTryAgainLater {
				t.Errorf("close %d %q, want 1013", ce.Code, ce.Text)
			}
			st.waitFinished(t, 1)
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseUpstreamUnreachable); got != 1 {
				t.Errorf("websocket_closed_total{upstream_unreachable} = %v", got)
			}
			if got := st.metric(t, "upstream_errors_total", "kind", metrics.UpstreamUnreachable); got != 1 {
				t.Errorf("upstream_errors_total{unreachable} = %v", got)
			}
		})
	}
}

// TestWebSocketServerTimeouts: the server's ReadTimeout and WriteTimeout do
// not cut an upgraded socket.
func TestWebSocketServerTimeouts(t *testing.T) {
	st := newWSStage(t, func(c *wsStageConfig) {
		c.server = func(s *http.Server) { s.ReadTimeout, s.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond }
	})
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
	up := st.hasura.next(t)
	up.next(t)
	recv(t, c)
	recv(t, c)
	// Idle past both server timeouts, without a sleep: wait for Hasura to
	// see a message sent after the timeouts.
	timer := time.NewTimer(600 * time.Millisecond)
	<-timer.C
	send(t, c, `{"type":"ping"}`)
	if got := string(up.next(t)); got != `{"type":"ping"}` {
		t.Errorf("Hasura got %s", got)
	}
	jsonEq(t, recv(t, c), `{"type":"pong"}`)
}

// TestWebSocketIdleMemory measures what the proxy holds per idle proxied
// subscription (client socket + Hasura socket + goroutines): the heap and
// stack in use with N subscriptions through the proxy, minus the same N
// clients connected straight to the stand-in. Budget: 64 KiB each.
func TestWebSocketIdleMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("memory measurement: not under -short or -race")
	}
	const n = 2000
	const budget = 64 << 10
	// One user holds all n sockets.
	st := newWSStage(t, withWS(func(c *WebSocketConfig) { c.MaxConnectionsPerUser = n }))
	// subscribe opens n subscriptions that received their answers and
	// stay open.
	subscribe := func(url string, h http.Header, init string) []*websocket.Conn {
		conns := make([]*websocket.Conn, 0, n)
		for range n {
			c, _, err := wsDial(t, url, []string{protoTransportWS}, h)
			if err != nil {
				t.Fatal(err)
			}
			send(t, c, init)
			send(t, c, `{"id":"1","type":"subscribe","payload":{"query":"subscription { s }"}}`)
			for range 4 { // ack, keep-alive, next, complete
				recv(t, c)
			}
			conns = append(conns, c)
			st.hasura.next(t)
		}
		return conns
	}
	inUse := func() int64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC() // also shrinks idle goroutine stacks
		}
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse + ms.StackInuse)
	}
	closeAll := func(conns []*websocket.Conn) {
		for _, c := range conns {
			_ = c.Close()
		}
	}

	base := inUse()
	direct := subscribe("ws"+strings.TrimPrefix(st.hasura.srv.URL, "http")+"/v1/graphql",
		http.Header{"X-Hasura-Admin-Secret": {wsAdmin}}, `{"type":"connection_init"}`)
	directUse := inUse() - base
	closeAll(direct)

	base = inUse()
	tok := wsToken(t, time.Now().Add(wsTokTTL), nil)
	proxied := subscribe(st.url("/v1/graphql"), nil, initMsg(map[string]string{"Authorization": "Bearer " + tok}))
	proxiedUse := inUse() - base
	per := (proxiedUse - directUse) / n
	t.Logf("direct %d B/conn, proxied %d B/conn: the proxy holds %d B per idle subscription", directUse/n, proxiedUse/n, per)
	if per > budget {
		t.Errorf("the proxy holds %d B per idle subscription, budget %d", per, budget)
	}
	closeAll(proxied)
}

// TestWebSocketNoGoroutineLeak: once a stage is cleaned up (CloseWebSockets
// and the servers closed), no goroutine of any connection is left, whatever
// ended it.
func TestWebSocketNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("sessions", func(t *testing.T) {
		st := newWSStage(t)
		tok := wsToken(t, time.Now().Add(wsTokTTL), nil)
		// A subscription the client closes.
		c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
		send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + tok}))
		st.hasura.next(t)
		recv(t, c)
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(wsWait))
		expectClose(t, c)
		// A refused init.
		c = mustDial(t, st.url("/v1/graphql"), protoLegacy, nil)
		send(t, c, initMsg(nil))
		expectClose(t, c)
		// A socket waiting for its init, and a live subscription, both
		// closed by the cleanup's CloseWebSockets.
		mustDial(t, st.url("/v1/graphql"), protoLegacy, nil)
		c = mustDial(t, st.url("/v1/graphql"), protoLegacy, nil)
		send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + tok}))
		recv(t, c)
	})
	// Goroutines end shortly after their connections close; wait for that,
	// bounded.
	deadline := time.Now().Add(wsWait)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestWebSocketConfigValidate: every invalid field is reported, named.
func TestWebSocketConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*WebSocketConfig)
		want []string
	}{
		{"defaults", func(*WebSocketConfig) {}, nil},
		{"origins", func(c *WebSocketConfig) {
			c.AllowedOrigins = []string{"https://app.example.com", "http://localhost:3000", "HTTPS://X.Example.com/"}
		}, nil},
		{"cookie with origins", func(c *WebSocketConfig) {
			c.ReadCookie, c.AllowedOrigins = true, []string{"https://app.example.com"}
		}, nil},
		{"zeros", func(c *WebSocketConfig) { *c = WebSocketConfig{} }, []string{
			"websocket.max_connections: must be at least 1",
			"websocket.max_message_bytes: must be between 4096 and 1073741824, not 0",
			"websocket.init_timeout: must be positive",
			"websocket.write_timeout: must be positive",
			"websocket.handshake_timeout: must be positive",
			"websocket.message_timeout: must be positive",
			"websocket.type_prefix_bytes: must be between 1024 and 1073741824, not 0",
			"websocket.buffer_budget_bytes: must be at least 262144",
			"websocket.max_pending_per_ip: must be at least 1",
			"websocket.max_connections_per_user: must be at least 1",
		}},
		{"message size", func(c *WebSocketConfig) { c.MaxMessageBytes = 2 << 30 }, []string{
			"websocket.max_message_bytes: must be between 4096 and 1073741824, not 2147483648",
		}},
		{"bad origins", func(c *WebSocketConfig) {
			c.AllowedOrigins = []string{"app.example.com", "https://app.example.com/path", "*", "ws://x", "https://u@x"}
		}, []string{
			`websocket.allowed_origins[0]: must be an origin such as https://app.example.com (scheme, host and optional port only), not "app.example.com"`,
			`websocket.allowed_origins[1]:`, `websocket.allowed_origins[2]:`, `websocket.allowed_origins[3]:`, `websocket.allowed_origins[4]:`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultWebSocketConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
	}
	// In proxy.Options, zero fields take the defaults; a bad value is an
	// error from New.
	if _, err := New(Options{Upstream: Config{URL: "http://127.0.0.1:1", AdminSecret: "s", DialTimeout: time.Second,
		ResponseHeaderTimeout: time.Second, IdleConnTimeout: time.Second, MaxIdleConnsPerHost: 1, AllowedPaths: []string{"/"}},
		MaxBodyBytes: 1, Auth: nopAuth{}, WebSocket: WebSocketConfig{MaxMessageBytes: 10}}); err == nil ||
		!strings.Contains(err.Error(), "websocket.max_message_bytes") {
		t.Errorf("New with a bad websocket config: %v", err)
	}
}

type nopAuth struct{}

func (nopAuth) Authenticate(context.Context, http.Header) (*auth.Session, error) {
	return nil, auth.ErrMissingToken
}
