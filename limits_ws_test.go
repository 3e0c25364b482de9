package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The whole wiring over WebSocket: the real limiter behind the real proxy
// in front of the demo's Hasura stand-in. A refused subscribe gets its
// error and the socket carries on; each subscribe counts against the rate
// limit.
func TestAPILimitsWebSocket(t *testing.T) {
	const admin = "ws-limits-admin-secret-0123456789"
	h := &demoHasura{secret: admin, events: 1, interval: time.Millisecond}
	up := httptest.NewServer(h.handler())
	t.Cleanup(func() {
		h.closeAll()
		up.Close()
	})
	key := randomHex(t, 24)
	p := startProxy(t, testConfig{UpstreamURL: up.URL, AdminSecret: admin, HSKey: key, Extra: `
api_limits:
  depth_limit: {global: 2}
  rate_limit:
    per_role: {user: {max_reqs_per_min: 2, unique_params: [x-hasura-user-id]}}
`})
	d := websocket.Dialer{Subprotocols: []string{protoTransportWS}, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial("ws"+strings.TrimPrefix(p.client, "http")+"/v1/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	send := func(m string) {
		t.Helper()
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	// next reads messages until one for id arrives and returns its type
	// and the code of its first error, if any.
	next := func(id string) (typ, code string) {
		t.Helper()
		for i := 0; i < 50; i++ {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var m struct {
				ID      string          `json:"id"`
				Type    string          `json:"type"`
				Payload json.RawMessage `json:"payload"`
			}
			_ = json.Unmarshal(b, &m)
			if m.ID != id {
				continue
			}
			var errs []struct {
				Extensions struct{ Code string } `json:"extensions"`
			}
			if m.Type == "error" && json.Unmarshal(m.Payload, &errs) == nil && len(errs) > 0 {
				code = errs[0].Extensions.Code
			}
			return m.Type, code
		}
		t.Fatalf("no message for %q", id)
		return "", ""
	}
	send(`{"type":"connection_init","payload":{"headers":{"Authorization":"Bearer ` + userToken(t, key, "ws-user") + `"}}}`)
	sub := func(id, query string) string {
		return `{"type":"subscribe","id":"` + id + `","payload":{"query":"` + query + `"}}`
	}
	send(sub("deep", "subscription { session { a { b { c } } } }"))
	if typ, code := next("deep"); typ != "error" || code != "depth-limit-exceeded" {
		t.Errorf("deep subscription: %s %s; want error depth-limit-exceeded", typ, code)
	}
	for _, id := range []string{"one", "two"} {
		send(sub(id, "subscription { session }"))
		if typ, _ := next(id); typ != "next" {
			t.Errorf("%s: %s; want next (admitted, the socket still open)", id, typ)
		}
	}
	send(sub("three", "subscription { session }"))
	if typ, code := next("three"); typ != "error" || code != "rate-limit-exceeded" {
		t.Errorf("third subscription: %s %s; want error rate-limit-exceeded", typ, code)
	}
	// The rate limit is shared with HTTP: the same user is refused there too.
	resp, body := do(t, gqlPost(t, p.client+"/v1/graphql", userToken(t, key, "ws-user"), `{"query":"{ session }"}`))
	if resp.StatusCode != http.StatusOK || errorCode(t, body) != "rate-limit-exceeded" {
		t.Errorf("HTTP after the WebSocket operations: %d %s; want rate-limit-exceeded", resp.StatusCode, body)
	}
}
