package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/store/storetest"
)

// revocationWithin is the contract: a revocation answered by one replica
// is in effect on every replica within this. Tests wait on the event and
// fail only past revocationBound, a generous bound for a busy CI machine;
// the time taken is logged.
const (
	revocationWithin = time.Second
	revocationBound  = 10 * time.Second
)

var processWebhookKey = []byte("process-test-webhook-key-32bytes")

// revocationReplica starts the built proxy with Redis at redisURL and the
// Clerk webhook on, and waits until it has subscribed to Redis.
func revocationReplica(t *testing.T, hasuraURL, redisURL string) *process {
	t.Helper()
	p := startBinary(t, revocationConfig(hasuraURL, redisURL))
	waitLogCount(t, p, "revocations: subscribed to redis", 1)
	return p
}

func revocationConfig(hasuraURL, redisURL string) testConfig {
	c := testConfig{
		UpstreamURL: hasuraURL, AdminSecret: "process-admin-secret", HSKey: hsKey32,
		Extra: "clerk_webhook:\n  path: /clerk/webhook\n" +
			"  signing_secret: " + strconv.Quote("whsec_"+base64.StdEncoding.EncodeToString(processWebhookKey)) + "\n" +
			"  max_token_lifetime: 1h\n",
	}
	if redisURL != "" {
		c.Extra += "redis:\n  url: " + strconv.Quote(redisURL) + "\n"
	}
	return c
}

const hsKey32 = "process-test-hs256-key-of-32-bytes!!"

// waitLogCount waits until p has logged msg n times.
func waitLogCount(t *testing.T, p *process, msg string, n int) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		out, changed := p.logs.snapshot()
		got := 0
		for _, e := range parseEntries(out) {
			if e.str("msg") == msg {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-p.exited:
			t.Fatalf("proxy exited before logging %q %d times; log:\n%s", msg, n, out)
		case <-timer.C:
			t.Fatalf("%q logged %d times within %s; want %d; log:\n%s", msg, got, waitTimeout, n, out)
		}
	}
}

// sessionTokenHS is a token of Clerk session sid.
func sessionTokenHS(t *testing.T, sid string) string {
	c := claimsFor(hsIssuer)
	c["sid"] = sid
	return signHS(t, hsKey32, c)
}

// deliverClerk posts a signed Clerk event to p's webhook and returns the
// status.
func deliverClerk(t *testing.T, p *process, id, typ, dataID string) int {
	t.Helper()
	body := `{"data":{"id":"` + dataID + `","object":"session","status":"revoked","user_id":"user_2abc"},"object":"event","type":"` + typ + `"}`
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, processWebhookKey)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	req, err := http.NewRequest(http.MethodPost, p.client+"/clerk/webhook", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", ts)
	req.Header.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// graphqlRefusal posts a query with tok to p and returns the GraphQL error
// message, "" when the query was forwarded.
func graphqlRefusal(t *testing.T, p *process, tok string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.client+"/v1/graphql", strings.NewReader(`{"query":"{ ok }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &body) != nil || len(body.Errors) == 0 {
		return ""
	}
	return body.Errors[0].Message
}

const revokedMessage = "Could not verify JWT: the session was revoked"

// TestRevocationAcrossReplicas: a revocation delivered to one replica
// closes a live subscription on another, a replica started later refuses
// the session, and with Redis down the receiving replica answers 503 and
// refuses locally until a redelivery after Redis is back reaches everyone.
func TestRevocationAcrossReplicas(t *testing.T) {
	needBinary(t)
	rs := storetest.Start(t)
	hasura := &demoHasura{secret: "process-admin-secret", events: 2, interval: time.Hour}
	hs := httptest.NewServer(hasura.handler())
	t.Cleanup(func() { hasura.closeAll(); hs.Close() })

	p1 := revocationReplica(t, hs.URL, rs.URL())
	p2 := revocationReplica(t, hs.URL, rs.URL())

	// A live subscription on p2.
	tok := sessionTokenHS(t, "sess_live")
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: waitTimeout}
	conn, _, err := d.Dial("ws://"+p2.clientAddr+"/v1/graphql", nil)
	if err != nil {
		t.Fatalf("dial p2: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(revocationBound + waitTimeout))
	for _, m := range []string{
		`{"type":"connection_init","payload":{"headers":{"Authorization":"Bearer ` + tok + `"}}}`,
		`{"type":"subscribe","id":"1","payload":{"query":"subscription { session }"}}`,
	} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{`"connection_ack"`, `"next"`} {
		_, b, err := conn.ReadMessage()
		if err != nil || !bytes.Contains(b, []byte(want)) {
			t.Fatalf("subscription: got %s, %v; want %s", b, err, want)
		}
	}

	// Revoked through p1: p2's subscription closes.
	if got := deliverClerk(t, p1, "msg_live", "session.ended", "sess_live"); got != http.StatusOK {
		t.Fatalf("webhook on p1: status %d; want 200", got)
	}
	answered := time.Now()
	var ce *websocket.CloseError
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("p2 socket ended without a close frame: %v", err)
			}
			break
		}
	}
	took := time.Since(answered)
	t.Logf("p2 closed the subscription %v after p1 answered the webhook (contract: within %v)", took, revocationWithin)
	if ce.Code != 4403 || ce.Text != "session revoked" {
		t.Errorf("p2 close = %d %q; want 4403 \"session revoked\"", ce.Code, ce.Text)
	}
	if took > revocationBound {
		t.Errorf("p2 closed the subscription %v after the webhook; want within %v", took, revocationWithin)
	}
	for name, p := range map[string]*process{"p1": p1, "p2": p2} {
		if got := graphqlRefusal(t, p, tok); got != revokedMessage {
			t.Errorf("%s: refusal %q; want %q", name, got, revokedMessage)
		}
	}
	if got := deliverClerk(t, p2, "msg_live", "session.ended", "sess_live"); got != http.StatusOK {
		t.Errorf("redelivery to p2: status %d; want 200 (duplicate)", got)
	}

	// A replica started later loads the revocation.
	p3 := revocationReplica(t, hs.URL, rs.URL())
	if got := graphqlRefusal(t, p3, tok); got != revokedMessage {
		t.Errorf("p3 (started later): refusal %q; want %q", got, revokedMessage)
	}

	// Redis down: 503, in effect on p1 only.
	rs.Stop()
	down := sessionTokenHS(t, "sess_down")
	if got := deliverClerk(t, p1, "msg_down", "session.revoked", "sess_down"); got != http.StatusServiceUnavailable {
		t.Errorf("webhook with Redis down: status %d; want 503", got)
	}
	if got := graphqlRefusal(t, p1, down); got != revokedMessage {
		t.Errorf("p1 with Redis down: refusal %q; want %q", got, revokedMessage)
	}
	if got := graphqlRefusal(t, p2, down); got != "" {
		t.Errorf("p2 with Redis down: refusal %q; want the query forwarded (nothing shared yet)", got)
	}

	// Redis back (empty: no persistence): every replica subscribes again;
	// Clerk's redelivery of the same svix-id now reaches all of them.
	rs.Restart()
	for _, p := range []*process{p1, p2, p3} {
		waitLogCount(t, p, "revocations: subscribed to redis", 2)
	}
	if got := deliverClerk(t, p1, "msg_down", "session.revoked", "sess_down"); got != http.StatusOK {
		t.Fatalf("redelivery after Redis is back: status %d; want 200", got)
	}
	for name, p := range map[string]*process{"p2": p2, "p3": p3} {
		eventually(t, name+" refuses sess_down", func() bool { return graphqlRefusal(t, p, down) == revokedMessage })
	}
}

// TestRevokeCommand: `revoke -user` goes through Redis to a running
// replica; without Redis it refuses to pretend; bad usage exits 2.
func TestRevokeCommand(t *testing.T) {
	needBinary(t)
	rs := storetest.Start(t)
	hasura := &demoHasura{secret: "process-admin-secret", events: 1, interval: time.Hour}
	hs := httptest.NewServer(hasura.handler())
	t.Cleanup(func() { hasura.closeAll(); hs.Close() })
	p := revocationReplica(t, hs.URL, rs.URL())
	tok := signHS(t, hsKey32, claimsFor(hsIssuer)) // sub user_2abc
	if got := graphqlRefusal(t, p, tok); got != "" {
		t.Fatalf("before revoke: refusal %q; want forwarded", got)
	}

	tests := []struct {
		name     string
		redis    string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"user through redis", rs.URL(), []string{"-user", "user_2abc"}, 0, "revoked user user_2abc until "},
		{"no redis", "", []string{"-session", "sess_1"}, 1, "revoke needs redis.url"},
		{"both ids", rs.URL(), []string{"-session", "sess_1", "-user", "user_1"}, 2, "usage: hasura-auth-proxy revoke"},
		{"no id", rs.URL(), nil, 2, "usage: hasura-auth-proxy revoke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(binPath, append([]string{"revoke", "-config", writeConfig(t, revocationConfig(hs.URL, tt.redis))}, tt.args...)...)
			cmd.Env = childEnv()
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != tt.wantCode {
				t.Errorf("exit code = %d; want %d (output %s)", got, tt.wantCode, out)
			}
			if !strings.Contains(string(out), tt.wantOut) {
				t.Errorf("output = %q; want it to contain %q", out, tt.wantOut)
			}
		})
	}
	eventually(t, "the replica refuses user_2abc", func() bool { return graphqlRefusal(t, p, tok) == revokedMessage })
}

// TestRevocationNoSecretsInLogs: the signing secret, the bodies and the
// revoked ids never reach the log, good deliveries or bad.
func TestRevocationNoSecretsInLogs(t *testing.T) {
	needBinary(t)
	h := newFakeHasura(t)
	p := startBinary(t, revocationConfig(h.URL, ""))
	sid := "sess_" + randomHex(t, 12)
	if got := deliverClerk(t, p, "msg_good", "session.revoked", sid); got != http.StatusOK {
		t.Fatalf("good delivery: status %d; want 200", got)
	}
	if got := deliverClerk(t, p, "msg_good", "session.revoked", sid); got != http.StatusOK {
		t.Fatalf("duplicate delivery: status %d; want 200", got)
	}
	req, _ := http.NewRequest(http.MethodPost, p.client+"/clerk/webhook", strings.NewReader(`{"type":"user.deleted","data":{"id":"`+sid+`"}}`))
	req.Header.Set("svix-id", "msg_bad")
	req.Header.Set("svix-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString([]byte("forged")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged delivery: status %d; want 401", resp.StatusCode)
	}
	p.logs.wait(t, "the refused delivery", p.exited, msgIs("clerk webhook refused: bad signature"))
	logs := p.logs.String()
	for _, secret := range []string{base64.StdEncoding.EncodeToString(processWebhookKey), string(processWebhookKey), sid} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	start := p.logs.wait(t, "starting", p.exited, msgIs("starting"))
	cfg, _ := start["config"].(map[string]any)
	cw, _ := cfg["clerk_webhook"].(map[string]any)
	if got := cw["signing_secret"]; got != "[REDACTED]" {
		t.Errorf("startup view clerk_webhook.signing_secret = %v; want [REDACTED]", got)
	}
}
