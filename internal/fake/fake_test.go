package fake_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

const wait = 10 * time.Second

func get(t *testing.T, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// keyfunc verifies with the keys the JWKS publishes now.
func keyfunc(t *testing.T, c *fake.Clerk) jwt.Keyfunc {
	t.Helper()
	_, body := get(t, c.JWKSURL(), nil)
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	return func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k["kid"] == tok.Header["kid"] {
				n, _ := base64.RawURLEncoding.DecodeString(k["n"])
				e, _ := base64.RawURLEncoding.DecodeString(k["e"])
				return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
			}
		}
		return nil, fmt.Errorf("kid %v not published", tok.Header["kid"])
	}
}

func TestClerkMint(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	c := fake.StartClerk(t, fake.WithClock(func() time.Time { return now }), fake.WithKIDPrefix("ins_t"))
	tok, err := c.Mint(fake.Claims{User: "bob", Role: "editor", Allowed: []string{"user", "editor"}, TTL: time.Hour, AZP: "https://app.test",
		Session: map[string]any{"x-hasura-org-id": "7"}, Extra: map[string]any{"jti": "j1"}})
	if err != nil {
		t.Fatal(err)
	}
	var got jwt.MapClaims
	parsed, err := jwt.ParseWithClaims(tok, &got, keyfunc(t, c), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatalf("minted token does not verify against the JWKS: %v", err)
	}
	if kid := parsed.Header["kid"]; kid != c.KID() || !strings.HasPrefix(c.KID(), "ins_t") {
		t.Errorf("kid = %v; want %q with prefix ins_t", kid, c.KID())
	}
	ns, _ := got[fake.HasuraNamespace].(map[string]any)
	for k, want := range map[string]any{"iss": c.URL, "sub": "bob", "azp": "https://app.test", "jti": "j1",
		"iat": float64(now.Unix()), "nbf": float64(now.Unix() - 5), "exp": float64(now.Unix() + 3600)} {
		if got[k] != want {
			t.Errorf("%s = %v; want %v", k, got[k], want)
		}
	}
	if sid, _ := got["sid"].(string); !strings.HasPrefix(sid, "sess_") {
		t.Errorf("sid = %q; want sess_...", sid)
	}
	if ns["x-hasura-user-id"] != "bob" || ns["x-hasura-default-role"] != "editor" || ns["x-hasura-org-id"] != "7" ||
		fmt.Sprint(ns["x-hasura-allowed-roles"]) != "[user editor]" {
		t.Errorf("hasura claims = %v; want bob, editor, [user editor], org 7", ns)
	}
	hs, err := c.MintHS256(fake.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(hs, func(*jwt.Token) (any, error) { return []byte(c.HS256Key()), nil },
		jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
		t.Errorf("HS256 token: %v", err)
	}
}

func TestClerkRotation(t *testing.T) {
	c := fake.StartClerk(t)
	old := c.KID()
	oldTok, _ := c.Mint(fake.Claims{})
	k, err := c.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	newTok, _ := c.Mint(fake.Claims{})
	kf := keyfunc(t, c)
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := jwt.Parse(tok, kf); err != nil {
			t.Errorf("%s key during rotation: %v; want published", name, err)
		}
	}
	if c.KID() != k.KID || k.KID == old {
		t.Errorf("signing kid = %q; want the new %q (old %q)", c.KID(), k.KID, old)
	}
	c.Retire(old)
	if _, err := jwt.Parse(oldTok, keyfunc(t, c)); err == nil {
		t.Error("retired key still published")
	}
	if n := len(c.Keys()); n != 1 {
		t.Errorf("%d keys after Retire; want 1", n)
	}
}

func TestClerkAnswers(t *testing.T) {
	c := fake.StartClerk(t, fake.WithCacheControl("public, max-age=300"))
	tests := []struct {
		answer fake.JWKSAnswer
		status int
		check  func(body string) bool
	}{
		{fake.JWKSKeys, 200, func(b string) bool { return strings.Contains(b, `"kid":"`+c.KID()+`"`) }},
		{fake.JWKSError, 500, func(string) bool { return true }},
		{fake.JWKSUnavailable, 503, func(string) bool { return true }},
		{fake.JWKSMalformed, 200, func(b string) bool { return json.Unmarshal([]byte(b), new(any)) != nil }},
		{fake.JWKSEmpty, 200, func(b string) bool { return b == `{"keys":[]}` }},
		{fake.JWKSHuge, 200, func(b string) bool { return len(b) > 4<<20 && json.Unmarshal([]byte(b), new(any)) == nil }},
	}
	for i, tt := range tests {
		c.SetAnswer(tt.answer)
		resp, body := get(t, c.JWKSURL(), nil)
		if resp.StatusCode != tt.status || !tt.check(body) {
			t.Errorf("answer %d: %d %.80s; want %d and the answer's body", tt.answer, resp.StatusCode, body, tt.status)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=300" {
			t.Errorf("Cache-Control = %q; want public, max-age=300", got)
		}
		if got := c.Fetches(); got != int64(i+1) {
			t.Errorf("Fetches = %d; want %d", got, i+1)
		}
	}
}

func TestClerkHoldAndHang(t *testing.T) {
	c := fake.StartClerk(t, fake.WithJWKSHeld())
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(c.JWKSURL())
		if err != nil {
			done <- 0
			return
		}
		_ = resp.Body.Close()
		done <- resp.StatusCode
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.WaitFetches(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-done:
		t.Fatalf("held fetch answered %d before ReleaseJWKS", s)
	default:
	}
	c.ReleaseJWKS()
	if s := <-done; s != 200 {
		t.Errorf("released fetch: %d; want 200", s)
	}

	c.SetAnswer(fake.JWKSHang)
	client := &http.Client{Timeout: 50 * time.Millisecond}
	if resp, err := client.Get(c.JWKSURL()); err == nil {
		_ = resp.Body.Close()
		t.Errorf("hanging JWKS answered %d; want no answer", resp.StatusCode)
	}
}

func TestClerkTokenEndpoint(t *testing.T) {
	c := fake.StartClerk(t, fake.WithClerkCORS(), fake.WithTokenDefaults(fake.TokenDefaults{AZP: "https://app.test", MaxTTL: time.Hour}))
	resp, body := get(t, c.URL+"/token?user=bob&role=editor&allowed=user,editor&ttl=10m", http.Header{"Origin": {"https://page.test"}})
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Access-Control-Allow-Origin") != "https://page.test" {
		t.Fatalf("token: %d %v; want 200, no-store, CORS", resp.StatusCode, resp.Header)
	}
	var got jwt.MapClaims
	if _, err := jwt.ParseWithClaims(strings.TrimSpace(body), &got, keyfunc(t, c)); err != nil {
		t.Fatal(err)
	}
	if got["sub"] != "bob" || got["azp"] != "https://app.test" || got["exp"].(float64)-got["iat"].(float64) != 600 {
		t.Errorf("claims = %v; want bob, the default azp, 10m", got)
	}
	for _, bad := range []string{"ttl=0s", "ttl=2h", "ttl=soon", "user=%0a", "iss=" + strings.Repeat("x", 200)} {
		if resp, _ := get(t, c.URL+"/token?"+bad, nil); resp.StatusCode != 400 {
			t.Errorf("%s: %d; want 400", bad, resp.StatusCode)
		}
	}
}

func TestHasuraHTTP(t *testing.T) {
	h := fake.StartHasura(t, fake.WithAdminSecret("s3cret"))
	post := func(hdr http.Header) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, h.URL+"/v1/graphql?x=1", strings.NewReader(`{"query":"{ session }"}`))
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, strings.TrimSpace(string(b))
	}
	resp, body := post(http.Header{"X-Hasura-Admin-Secret": {"s3cret"}, "X-Hasura-Role": {"user"}, "X-Request-Id": {"rid-1"}})
	if want := `{"data":{"session":{"x-hasura-admin-secret":true,"x-hasura-role":"user"}}}`; body != want || resp.Header.Get("X-Request-Id") != "rid-1" {
		t.Errorf("answer %s (X-Request-Id %q); want %s and rid-1", body, resp.Header.Get("X-Request-Id"), want)
	}
	r, ok := h.Last()
	if !ok || r.Method != "POST" || r.Path != "/v1/graphql" || r.RawQuery != "x=1" || r.Header.Get("X-Hasura-Role") != "user" || string(r.Body) != `{"query":"{ session }"}` {
		t.Errorf("recorded %+v; want the POST as sent", r)
	}
	for _, tt := range []struct {
		hdr  http.Header
		want string
	}{
		{http.Header{}, "x-hasura-admin-secret/x-hasura-access-key required, but not found"},
		{http.Header{"X-Hasura-Admin-Secret": {"wrong"}}, "invalid x-hasura-admin-secret/x-hasura-access-key"},
	} {
		if _, body := post(tt.hdr); !strings.Contains(body, tt.want) || !strings.Contains(body, `"code":"access-denied"`) {
			t.Errorf("answer %s; want access-denied %q", body, tt.want)
		}
	}
	if resp, _ := get(t, h.URL+"/v1/graphql", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/graphql: %d; want 405", resp.StatusCode)
	}
	before := h.Count()
	if _, body := get(t, h.URL+"/healthz", nil); body != "OK" {
		t.Errorf("healthz %q; want OK", body)
	}
	h.SetHealthy(false)
	if resp, _ := get(t, h.URL+"/healthz", nil); resp.StatusCode != 500 {
		t.Errorf("unhealthy healthz: %d; want 500", resp.StatusCode)
	}
	if h.Count() != before {
		t.Errorf("healthz recorded: count %d; want %d", h.Count(), before)
	}
	if n := h.HealthChecks(); n != 2 {
		t.Errorf("HealthChecks = %d; want 2", n)
	}
	if n := len(h.Requests()); n != h.Count() {
		t.Errorf("%d requests kept; want %d", n, h.Count())
	}
}

func TestHasuraModes(t *testing.T) {
	h := fake.StartHasura(t, fake.WithBody(`{"data":{"ok":true}}`), fake.WithHeader("X-Request-Id", "hasura-own"), fake.RecordHealthz())
	if resp, body := get(t, h.URL+"/healthz", http.Header{"X-Request-Id": {"c"}}); body != `{"data":{"ok":true}}` || resp.Header.Get("X-Request-Id") != "hasura-own" {
		t.Errorf("answer %s (id %q); want the body and the fixed id", body, resp.Header.Get("X-Request-Id"))
	}
	h.SetMode(fake.Fail)
	if resp, _ := get(t, h.URL+"/v1/metadata", nil); resp.StatusCode != 500 {
		t.Errorf("Fail: %d; want 500", resp.StatusCode)
	}
	h.SetMode(fake.Drop)
	if resp, err := http.Get(h.URL + "/v1/metadata"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("Drop answered %d; want a closed connection", resp.StatusCode)
	}
	h.SetMode(fake.Hang)
	client := &http.Client{Timeout: 50 * time.Millisecond}
	if resp, err := client.Get(h.URL + "/v1/metadata"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("Hang answered %d; want none", resp.StatusCode)
	}
	h.SetMode(fake.Answer)
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(h.URL + "/v1/graphql?slow=1")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- string(b)
	}()
	select {
	case <-h.Arrived():
	case <-time.After(wait):
		t.Fatal("held request never arrived")
	}
	h.Release()
	if got := <-done; got != `{"data":{"ok":true}}` {
		t.Errorf("released answer %q; want the body", got)
	}
	if n := h.Count(); n != 6 {
		t.Errorf("Count = %d; want 6 (every mode records)", n)
	}
}

func TestHasuraResponder(t *testing.T) {
	h := fake.StartHasura(t, fake.WithResponder(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/teapot" {
			return false
		}
		w.WriteHeader(http.StatusTeapot)
		return true
	}))
	if resp, _ := get(t, h.URL+"/teapot", nil); resp.StatusCode != http.StatusTeapot {
		t.Errorf("responder: %d; want 418", resp.StatusCode)
	}
	if _, body := get(t, h.URL+"/v1/version", nil); !strings.Contains(body, `"session"`) {
		t.Errorf("declined responder: %s; want the session answer", body)
	}
	if h.Count() != 2 {
		t.Errorf("Count = %d; want 2", h.Count())
	}
}

func TestHasuraWebSocket(t *testing.T) {
	h := fake.StartHasura(t, fake.WithAdminSecret("s3cret"), fake.WithEvents(2, time.Millisecond), fake.WithLiveOperation("Live"))
	okInit := `{"type":"connection_init","payload":{"headers":{"X-Hasura-Admin-Secret":"s3cret","x-hasura-role":"user"}}}`
	tests := []struct {
		name, proto string
		send        []string
		want        string
	}{
		{"transport-ws", fake.ProtoTransportWS, []string{okInit, `{"type":"subscribe","id":"a","payload":{}}`}, "connection_ack next next complete"},
		{"legacy", fake.ProtoLegacyWS, []string{okInit, `{"type":"start","id":"a","payload":{}}`}, "connection_ack ka data data complete"},
		{"live", fake.ProtoTransportWS, []string{okInit, `{"type":"subscribe","id":"a","payload":{"operationName":"Live"}}`}, "connection_ack next next next next next"},
		{"bad secret", fake.ProtoTransportWS, []string{`{"type":"connection_init","payload":{"headers":{"X-Hasura-Admin-Secret":"no"}}}`}, "close 4403"},
		{"subscribe first", fake.ProtoTransportWS, []string{`{"type":"subscribe","id":"a","payload":{}}`}, "close 4401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, _, err := (&websocket.Dialer{Subprotocols: []string{tt.proto}}).Dial(h.WSURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for _, m := range tt.send {
				if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			want := strings.Fields(tt.want)
			var got []string
			for len(got) < len(want) {
				_, b, err := conn.ReadMessage()
				if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
					got = append(got, "close", fmt.Sprint(ce.Code))
					break
				} else if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				var m struct{ Type string }
				_ = json.Unmarshal(b, &m)
				if (m.Type == "next" || m.Type == "data") && !strings.Contains(string(b), `"x-hasura-role":"user"`) {
					t.Errorf("event %s; want the session", b)
				}
				got = append(got, m.Type)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	socks := h.Sockets()
	if len(socks) != len(tests) || socks[0].Protocol != fake.ProtoTransportWS || socks[1].Protocol != fake.ProtoLegacyWS {
		t.Fatalf("%d sockets recorded; want %d with their protocols", len(socks), len(tests))
	}
	if inits := socks[0].Inits(); len(inits) != 1 || !strings.Contains(string(inits[0]), "s3cret") {
		t.Errorf("inits = %s; want the connection_init payload", inits)
	}
}

func TestCORS(t *testing.T) {
	h := fake.StartHasura(t, fake.WithHasuraCORS())
	req, _ := http.NewRequest(http.MethodOptions, h.URL+"/v1/graphql", nil)
	req.Header.Set("Origin", "https://page.test")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Headers") != "authorization" || h.Count() != 0 {
		t.Errorf("preflight: %d %v, %d recorded; want 204 answered by the policy", resp.StatusCode, resp.Header, h.Count())
	}
}

func TestHasuraIdleSubscriptions(t *testing.T) {
	h := fake.StartHasura(t, fake.WithEvents(0, 0))
	conn, _, err := (&websocket.Dialer{Subprotocols: []string{fake.ProtoTransportWS}}).Dial(h.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	for _, m := range []string{`{"type":"connection_init"}`, `{"type":"subscribe","id":"1","payload":{}}`, `{"type":"subscribe","id":"2","payload":{}}`} {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if _, b, err := conn.ReadMessage(); err != nil || !strings.Contains(string(b), "connection_ack") {
		t.Fatalf("got %s, %v; want connection_ack", b, err)
	}
	waitFor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(wait)
		for h.Subscriptions() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Subscriptions = %d; want %d", h.Subscriptions(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(2)
	if n := h.OpenSockets(); n != 1 {
		t.Errorf("OpenSockets = %d; want 1", n)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"complete","id":"1"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(1)
	_ = conn.Close()
	waitFor(0)
}
