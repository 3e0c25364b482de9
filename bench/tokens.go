package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// Clerk-like identity used by every token the benchmark mints.
const (
	benchIssuer = "https://bench.clerk.accounts.dev"
	benchAZP    = "https://app.example.com"
	benchKID    = "ins_2benchKey"
	tokenLife   = 60 * time.Second // Clerk's default template lifetime
)

// issuer is internal/fake's Clerk with a real RSA-2048 key: it serves the
// JWKS and mints RS256 tokens shaped like Clerk's (default claims plus the
// Hasura namespace).
type issuer struct {
	*fake.Clerk
}

func newIssuer() (*issuer, error) {
	key, err := fake.NewKey(benchKID)
	if err != nil {
		return nil, err
	}
	c, err := fake.NewClerk(fake.WithKey(key))
	if err != nil {
		return nil, err
	}
	return &issuer{c}, nil
}

// mint signs one token for user n, issued now and valid for tokenLife.
func (is *issuer) mint(n int, now time.Time) (string, error) {
	sub := fmt.Sprintf("user_2bench%06d", n)
	return is.Mint(fake.Claims{
		User:    sub,
		Role:    "user",
		Allowed: []string{"user", "editor"},
		AZP:     benchAZP,
		Issuer:  benchIssuer,
		Session: map[string]any{"x-hasura-org-id": "org_42"},
		// The one now of the whole batch, and Clerk's other claims.
		Extra: map[string]any{
			"iat": now.Unix(),
			"nbf": now.Add(-5 * time.Second).Unix(),
			"exp": now.Add(tokenLife).Unix(),
			"jti": fmt.Sprintf("jti_%d_%d", now.UnixNano(), n),
			"sid": fmt.Sprintf("sess_2bench%06d", n),
			"v":   2,
			"fva": []int{0, -1},
		},
	})
}

// mintMany signs n distinct tokens on every CPU.
func (is *issuer) mintMany(n int) ([]string, error) {
	out := make([]string, n)
	now := time.Now()
	workers := runtime.NumCPU()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				tok, err := is.mint(i, now)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = tok
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
