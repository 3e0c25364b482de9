package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestDemoSignOut runs the demo's sign-out step as printed: with a
// subscription open on $TOKEN, the issuer's sign-out delivers Clerk's
// signed session.ended to the proxy, which closes the subscription with
// 4403 "session revoked" and refuses the token.
func TestDemoSignOut(t *testing.T) {
	d := parseDemo(t, startDemo(t), "go run .")
	m := regexp.MustCompile(`^curl -s -X POST (\S+/sign-out) -H "Authorization: Bearer \$TOKEN"$`).FindStringSubmatch(d.signOut)
	if m == nil {
		t.Fatalf("sign-out command = %q; want curl -s -X POST .../sign-out -H \"Authorization: Bearer $TOKEN\"", d.signOut)
	}

	dialer := websocket.Dialer{Subprotocols: []string{d.ws.proto}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := dialer.Dial(d.ws.url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", d.ws.url, err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(demoWait))
	for _, msg := range d.ws.messages {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if _, b, err := conn.ReadMessage(); err != nil || !strings.Contains(string(b), "connection_ack") {
		t.Fatalf("first message %s, %v; want connection_ack", b, err)
	}

	req, _ := http.NewRequest(http.MethodPost, m[1], nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Status  int    `json:"proxy_status"`
		Session string `json:"session_ended"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	_ = resp.Body.Close()
	if err != nil || answer.Status != http.StatusOK || !strings.HasPrefix(answer.Session, "sess_") {
		t.Fatalf("sign-out answered %+v, %v; want proxy_status 200 and the session", answer, err)
	}
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue // events sent before the revocation
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4403 || ce.Text != "session revoked" {
			t.Errorf("subscription ended with %v; want close 4403 \"session revoked\"", err)
		}
		break
	}

	q, _ := http.NewRequest(http.MethodPost, strings.Replace(d.ws.url, "ws://", "http://", 1), strings.NewReader(`{"query":"{ session }"}`))
	q.Header.Set("Authorization", "Bearer "+d.token)
	q.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(q)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(b), "Could not verify JWT: the session was revoked") {
		t.Errorf("query after sign-out = %s; want the revoked refusal", b)
	}
}
