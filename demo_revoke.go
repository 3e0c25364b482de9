package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// demoClerkPath is the demo proxy's clerk_webhook.path.
const demoClerkPath = "/clerk/webhook"

// demoClerkWebhook is the demo issuer's side of Clerk's webhooks: a signing
// secret written into the demo configuration, and the proxy endpoint it
// delivers to (set once the proxy listens). It is safe for concurrent use.
type demoClerkWebhook struct {
	key []byte
	url atomic.Pointer[string]
}

func newDemoClerkWebhook() (*demoClerkWebhook, error) {
	w := &demoClerkWebhook{key: make([]byte, 24)}
	if _, err := rand.Read(w.key); err != nil {
		return nil, err
	}
	return w, nil
}

// secret is the whsec_... value of clerk_webhook.signing_secret.
func (w *demoClerkWebhook) secret() string {
	return "whsec_" + base64.StdEncoding.EncodeToString(w.key)
}

func (w *demoClerkWebhook) setURL(u string) { w.url.Store(&u) }

// demoSignOut is the demo issuer's sign-out: Clerk's side of a session
// ending, sent to the proxy as Clerk's signed webhook.
type demoSignOut struct {
	issuer *fake.Clerk
	hook   *demoClerkWebhook
}

// handler serves POST /sign-out in front of the issuer's own routes.
func (d *demoSignOut) handler(issuer http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sign-out", d.serveSignOut)
	mux.Handle("/", issuer)
	return mux
}

// serveSignOut plays a sign-out in Clerk: POST /sign-out with the session's
// token as a bearer token sends Clerk's signed session.ended event for its
// sid to the proxy, and answers with what the proxy answered.
func (d *demoSignOut) serveSignOut(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var claims jwt.MapClaims
	if ok {
		_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), &claims, func(*jwt.Token) (any, error) { return &d.issuer.Signer().Private.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}))
		ok = err == nil
	}
	sid, _ := claims["sid"].(string)
	target := d.hook.url.Load()
	if !ok || sid == "" || target == nil {
		http.Error(w, "send a token of this issuer: -H \"Authorization: Bearer $TOKEN\"", http.StatusBadRequest)
		return
	}
	user, _ := claims["sub"].(string)
	now := time.Now()
	body, _ := json.Marshal(map[string]any{
		"object": "event", "type": "session.ended", "timestamp": now.UnixMilli(),
		"data": map[string]any{"object": "session", "id": sid, "user_id": user, "status": "ended", "updated_at": now.UnixMilli()},
	})
	var id [12]byte
	_, _ = rand.Read(id[:])
	msgID, ts := "msg_"+hex.EncodeToString(id[:]), strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, d.hook.key)
	fmt.Fprintf(mac, "%s.%s.%s", msgID, ts, body)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, *target, strings.NewReader(string(body)))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", msgID)
	req.Header.Set("svix-timestamp", ts)
	req.Header.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		http.Error(w, "the proxy did not answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"session_ended": sid, "proxy_status": resp.StatusCode})
}

// demoClerkYAML is the demo configuration's clerk_webhook section.
func demoClerkYAML(w *demoClerkWebhook) string {
	return fmt.Sprintf("clerk_webhook:\n  path: %q\n  signing_secret: %q\n  max_token_lifetime: %s\n",
		demoClerkPath, w.secret(), demoMaxTTL)
}

// printDemoSignOut is the demo's revocation step.
func printDemoSignOut(p func(string, ...any), t demoText) {
	p("9. Sign-out: Clerk's signed webhook revokes the session at once (docs/revocation.md). Keep a subscription of\n")
	p("   step 6 open (a longer sleep), then let the token issuer, playing Clerk, send session.ended for $TOKEN:\n\n")
	p("  curl -s -X POST %s/sign-out -H \"Authorization: Bearer $TOKEN\"\n", t.issuer)
	p("  # => {\"proxy_status\":200,\"session_ended\":\"sess_...\"}\n")
	p("  # the subscription is closed with 4403 \"session revoked\", and step 1 answers %q\n\n", "Could not verify JWT: the session was revoked")
}
