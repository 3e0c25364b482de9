package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestDemoPage runs the demo and checks what its page relies on: the page
// is printed first and served from an origin of its own, the proxy answers
// its preflights and refusals with CORS headers, the issuer hands it tokens
// cross-origin, the stand-in answers a direct preflight 204 (not 405), and
// the page's live subscription streams past the three events of a plain
// one.
func TestDemoPage(t *testing.T) {
	lines := startDemo(t)
	first := regexp.MustCompile(`^Open (http://127\.0\.0\.1:\d+) in a browser`).FindStringSubmatch(lines[0])
	if first == nil {
		t.Fatalf("first line = %q; want the page to open", lines[0])
	}
	pageURL := first[1]
	find := func(re string) string {
		for _, l := range lines {
			if m := regexp.MustCompile(re).FindStringSubmatch(l); m != nil {
				return m[1]
			}
		}
		t.Fatalf("no line matches %s", re)
		return ""
	}
	proxyURL := find(`proxy \(clients use this\)\s+(http://\S+)`)
	issuerURL := strings.TrimSuffix(find(`token issuer \(plays Clerk\)\s+(http://\S+)`), "/.well-known/jwks.json")
	hasuraURL := find(`Hasura stand-in\s+(http://\S+)`)

	do := func(method, url string, h http.Header, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp, string(b)
	}

	resp, page := do("GET", pageURL+"/", http.Header{}, "")
	if resp.StatusCode != 200 || !strings.Contains(page, `"proxy":"`+proxyURL+`"`) || !strings.Contains(page, `"issuer":"`+issuerURL+`"`) {
		t.Fatalf("page: HTTP %d, proxy %s / issuer %s not in its configuration:\n%s", resp.StatusCode, proxyURL, issuerURL, page)
	}
	preflight := http.Header{
		"Origin":                         {pageURL},
		"Access-Control-Request-Method":  {"POST"},
		"Access-Control-Request-Headers": {"authorization,content-type,x-hasura-role"},
	}
	for _, tt := range []struct{ name, url string }{
		{"proxy", proxyURL + "/v1/graphql"},
		{"Hasura stand-in", hasuraURL + "/v1/graphql"},
	} {
		resp, _ := do("OPTIONS", tt.url, preflight.Clone(), "")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != pageURL ||
			resp.Header.Get("Access-Control-Allow-Headers") != "authorization,content-type,x-hasura-role" {
			t.Errorf("%s preflight: HTTP %d, headers %v; want 204 allowing %s", tt.name, resp.StatusCode, resp.Header, pageURL)
		}
	}

	resp, token := do("GET", issuerURL+"/token?ttl=1m", http.Header{"Origin": {pageURL}}, "")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != pageURL {
		t.Fatalf("issuer /token from the page: HTTP %d, Access-Control-Allow-Origin %q; want 200, %q",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), pageURL)
	}
	token = strings.TrimSpace(token)
	for _, tt := range []struct {
		name string
		h    http.Header
		want string
	}{
		{"allowed", http.Header{"Authorization": {"Bearer " + token}}, `"x-hasura-role":"user"`},
		{"role not allowed", http.Header{"Authorization": {"Bearer " + token}, "X-Hasura-Role": {"admin"}}, `"code":"access-denied"`},
		{"no token", http.Header{}, `"code":"invalid-headers"`},
	} {
		tt.h.Set("Origin", pageURL)
		tt.h.Set("Content-Type", "application/json")
		resp, body := do("POST", proxyURL+"/v1/graphql", tt.h, `{"query":"{ session }"}`)
		if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != pageURL {
			t.Errorf("%s: Access-Control-Allow-Origin = %q; want [%q]", tt.name, got, pageURL)
		}
		if !strings.Contains(body, tt.want) {
			t.Errorf("%s: body %s; want %s", tt.name, body, tt.want)
		}
	}

	// The page's subscription: more events than a plain one's three.
	ws := "ws" + strings.TrimPrefix(proxyURL, "http") + "/v1/graphql"
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{protoTransportWS}}).Dial(ws, http.Header{"Origin": {pageURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(demoWait))
	init, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]any{"headers": map[string]string{"Authorization": "Bearer " + token}}})
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "id": "1", "payload": map[string]string{"operationName": demoLiveOperation, "query": "subscription Live { session }"}})
	for _, m := range [][]byte{init, sub} {
		if err := conn.WriteMessage(websocket.TextMessage, m); err != nil {
			t.Fatal(err)
		}
	}
	for events := 0; events < 4; {
		var m demoWSMessage
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("after %d events: %v", events, err)
		}
		switch m.Type {
		case "next":
			events++
		case "complete", "error":
			t.Fatalf("live subscription ended after %d events: %s", events, m.Type)
		}
	}
}
