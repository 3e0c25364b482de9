package auth

import (
	"context"
	"testing"
)

// TestSessionSub: a verified token's session carries its sub, from a fresh
// verification and from the token cache alike; the admin secret's session
// has none.
func TestSessionSub(t *testing.T) {
	cfg := hsConfig()
	cfg.TokenCache.Size = 10
	a, _ := newTestAuth(t, cfg)
	tok := hs256(t, clerkClaims())
	for _, call := range []string{"verified", "cached"} {
		s, err := a.Authenticate(context.Background(), bearer(tok))
		if err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		if s.Subject != "user_2abc" {
			t.Errorf("%s: Sub = %q; want %q", call, s.Subject, "user_2abc")
		}
	}
	if a.cache.len() != 1 {
		t.Errorf("cache holds %d entries; want 1 (the second call was a hit)", a.cache.len())
	}
	s, err := a.Authenticate(context.Background(), with(bearer(tok), "X-Hasura-Admin-Secret", testAdmin))
	if err != nil {
		t.Fatal(err)
	}
	if s.Result != ResultAdmin || s.Subject != "" {
		t.Errorf("admin session: Result %q, Sub %q; want %q and no sub", s.Result, s.Subject, ResultAdmin)
	}
}
