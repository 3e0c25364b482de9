package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// revokedIDs is a Revocations fake: a set of revoked sids and subs the test
// changes while the Authenticator runs.
type revokedIDs struct {
	mu       sync.Mutex
	sessions map[string]bool
	users    map[string]bool
}

func (r *revokedIDs) Revoked(sid, sub string, _ time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return (sid != "" && r.sessions[sid]) || (sub != "" && r.users[sub])
}

func (r *revokedIDs) set(sessions, users []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions, r.users = map[string]bool{}, map[string]bool{}
	for _, s := range sessions {
		r.sessions[s] = true
	}
	for _, u := range users {
		r.users[u] = true
	}
}

// TestRevokedRefusedFromCache checks that a revoked session or user is
// refused with invalid-jwt "the session was revoked", also when the token
// is served from the verified-token cache, and that the Session carries sid
// and sub for the socket closer.
func TestRevokedRefusedFromCache(t *testing.T) {
	rv := &revokedIDs{}
	reg := prometheus.NewRegistry()
	a := startAuth(t, Options{
		Config:      hsConfig(),
		AdminSecret: testAdmin,
		Logger:      zaptest.NewLogger(t),
		Metrics:     metrics.New(reg),
		Now:         func() time.Time { return testNow },
		Revocations: rv,
	})
	tok := hs256(t, clerkClaims()) // sid sess_1, sub user_2abc
	s, err := a.Authenticate(context.Background(), bearer(tok))
	if err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if s.SessionID != "sess_1" || s.Subject != "user_2abc" {
		t.Errorf("SessionID, Subject = %q, %q; want sess_1, user_2abc", s.SessionID, s.Subject)
	}
	hits := func() float64 { return counterValue(t, reg, "token_cache_hits_total", nil) }

	tests := []struct {
		name             string
		sessions, users  []string
		wantRevoked      bool
		wantHitsIncrease bool
	}{
		{"session revoked", []string{"sess_1"}, nil, true, true},
		{"user revoked", nil, []string{"user_2abc"}, true, true},
		{"another session revoked", []string{"sess_2"}, []string{"user_other"}, false, true},
		{"nothing revoked", nil, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv.set(tt.sessions, tt.users)
			before := hits()
			_, err := a.Authenticate(context.Background(), bearer(tok))
			if got := hits() - before; got != 1 {
				t.Errorf("cache hits = +%v; want +1 (the check must apply to cache hits)", got)
			}
			if tt.wantRevoked {
				ae := wantErr(t, err, CodeInvalidJWT, "Could not verify JWT: the session was revoked")
				if ae.Reason != ReasonRevoked {
					t.Errorf("reason = %q; want %q", ae.Reason, ReasonRevoked)
				}
				return
			}
			if err != nil {
				t.Errorf("refused: %v; want allowed", err)
			}
		})
	}
	if got := counterValue(t, reg, "auth_decisions_total", map[string]string{"result": ResultDenied, "reason": ReasonRevoked}); got != 2 {
		t.Errorf("auth_decisions_total{denied,revoked} = %v; want 2", got)
	}
}

// TestRevokedOnFirstVerification refuses a revoked token that was never
// cached, and shows that a sid that is not a string is ignored (the token
// still verifies, with no SessionID) rather than changing what verifies.
func TestRevokedOnFirstVerification(t *testing.T) {
	rv := &revokedIDs{}
	rv.set([]string{"sess_1"}, nil)
	a := startAuth(t, Options{
		Config:      hsConfig(),
		AdminSecret: testAdmin,
		Logger:      zaptest.NewLogger(t),
		Now:         func() time.Time { return testNow },
		Revocations: rv,
	})
	_, err := a.Authenticate(context.Background(), bearer(hs256(t, clerkClaims())))
	wantErr(t, err, CodeInvalidJWT, "Could not verify JWT: the session was revoked")

	c := clerkClaims()
	c["sid"] = 42
	s, err := a.Authenticate(context.Background(), bearer(hs256(t, c)))
	if err != nil {
		t.Fatalf("numeric sid: %v; want allowed", err)
	}
	if s.SessionID != "" || s.Subject != "user_2abc" {
		t.Errorf("SessionID, Subject = %q, %q; want \"\", user_2abc", s.SessionID, s.Subject)
	}
}
