package proxy

import (
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// revokedSessions is a Revocations fake: the sids revoked so far, and how
// many lookups to answer "not revoked" before that (to land a revocation
// between a socket's authentication and its registration).
type revokedSessions struct {
	mu      sync.Mutex
	sids    map[string]bool
	blindly int
}

func (r *revokedSessions) Revoked(sid, _ string, _ time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.blindly > 0 {
		r.blindly--
		return false
	}
	return r.sids[sid]
}

func (r *revokedSessions) revoke(sid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sids == nil {
		r.sids = map[string]bool{}
	}
	r.sids[sid] = true
}

// sessionToken mints a token of Clerk session sid for user alice.
func sessionToken(t *testing.T, sid string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "alice", "sid": sid, "iat": time.Now().Add(-time.Minute).Unix(),
		"exp": time.Now().Add(time.Hour).Unix(), auth.DefaultClaimsNamespace: map[string]any{
			"x-hasura-allowed-roles": []string{"user"}, "x-hasura-default-role": "user", "x-hasura-user-id": "alice"}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(wsKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantRevokedClose(t *testing.T, proto string, c *websocket.Conn) {
	t.Helper()
	msgs, ce := expectClose(t, c)
	if proto == protoTransportWS {
		if ce.Code != 4403 || ce.Text != "session revoked" {
			t.Errorf("close %d %q; want 4403 \"session revoked\"", ce.Code, ce.Text)
		}
		return
	}
	want := `{"type":"connection_error","payload":"Could not verify JWT: the session was revoked"}`
	if n := len(msgs); n == 0 || msgs[n-1] != want {
		t.Errorf("messages before close = %q; want the last to be %s", msgs, want)
	}
	if ce.Code != 4400 {
		t.Errorf("close %d %q; want 4400", ce.Code, ce.Text)
	}
}

// TestWebSocketSessionRevoked: CloseSessions closes the sockets of the
// revoked session at once, and only those.
func TestWebSocketSessionRevoked(t *testing.T) {
	for _, proto := range []string{protoTransportWS, protoLegacy} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			rv := &revokedSessions{}
			st := newWSStage(t, func(c *wsStageConfig) { c.revocations = rv })
			revoked := mustDial(t, st.url("/v1/graphql"), proto, nil)
			send(t, revoked, initMsg(map[string]string{"Authorization": "Bearer " + sessionToken(t, "sess_1")}))
			upRevoked := st.hasura.next(t)
			recv(t, revoked) // connection_ack
			kept := mustDial(t, st.url("/v1/graphql"), proto, nil)
			send(t, kept, initMsg(map[string]string{"Authorization": "Bearer " + sessionToken(t, "sess_2")}))
			upKept := st.hasura.next(t)
			recv(t, kept)

			rv.revoke("sess_1")
			start := time.Now()
			if n := st.handler.CloseSessions(func(sid, _ string) bool { return sid == "sess_1" }); n != 1 {
				t.Errorf("CloseSessions = %d; want 1", n)
			}
			wantRevokedClose(t, proto, revoked)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("closed %v after the revocation; want at once", d)
			}
			if code := upRevoked.waitClosed(t); code != websocket.CloseNormalClosure {
				t.Errorf("Hasura saw close %d; want 1000", code)
			}
			st.waitFinished(t, 1)
			if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseSessionRevoked); got != 1 {
				t.Errorf("websocket_closed_total{session_revoked} = %v; want 1", got)
			}

			// The other session's socket still relays.
			upKept.next(t) // its connection_init
			send(t, kept, `{"type":"ping"}`)
			if got := string(upKept.next(t)); got != `{"type":"ping"}` {
				t.Errorf("Hasura got %s; want the ping", got)
			}
			// A closed socket is forgotten: nothing left to close.
			if n := st.handler.CloseSessions(func(sid, _ string) bool { return sid == "sess_1" }); n != 0 {
				t.Errorf("CloseSessions after close = %d; want 0", n)
			}
		})
	}
}

// TestWebSocketRevokedDuringInit: a revocation that lands after the
// socket's authentication but before it is registered still closes it.
func TestWebSocketRevokedDuringInit(t *testing.T) {
	rv := &revokedSessions{blindly: 1} // Authenticate's lookup misses it
	rv.revoke("sess_1")
	st := newWSStage(t, func(c *wsStageConfig) { c.revocations = rv })
	c := mustDial(t, st.url("/v1/graphql"), protoTransportWS, nil)
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + sessionToken(t, "sess_1")}))
	wantRevokedClose(t, protoTransportWS, c)
	st.waitFinished(t, 1)
	if got := st.metric(t, "websocket_closed_total", "reason", metrics.CloseSessionRevoked); got != 1 {
		t.Errorf("websocket_closed_total{session_revoked} = %v; want 1", got)
	}
}

// TestWebSocketRevokedAtInit: a token of a revoked session is refused at
// connection_init like any invalid token.
func TestWebSocketRevokedAtInit(t *testing.T) {
	rv := &revokedSessions{}
	rv.revoke("sess_1")
	st := newWSStage(t, func(c *wsStageConfig) { c.revocations = rv })
	c := mustDial(t, st.url("/v1/graphql"), protoLegacy, nil)
	send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + sessionToken(t, "sess_1")}))
	msgs, _ := expectClose(t, c)
	want := `{"type":"connection_error","payload":"Could not verify JWT: the session was revoked"}`
	if len(msgs) == 0 || msgs[len(msgs)-1] != want {
		t.Errorf("messages = %q; want %s", msgs, want)
	}
}
