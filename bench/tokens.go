package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"time"
)

// Clerk-like identity used by every token the benchmark mints.
const (
	benchIssuer = "https://bench.clerk.accounts.dev"
	benchAZP    = "https://app.example.com"
	benchKID    = "ins_2benchKey"
	tokenLife   = 60 * time.Second // Clerk's default template lifetime
)

// issuer holds a real RSA-2048 key: it serves the JWKS and mints RS256
// tokens shaped like Clerk's (default claims plus the Hasura namespace).
type issuer struct {
	key  *rsa.PrivateKey
	jwks []byte
}

func newIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	b64 := base64.RawURLEncoding
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": benchKID,
		"n": b64.EncodeToString(key.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		return nil, err
	}
	return &issuer{key: key, jwks: jwks}, nil
}

// mint signs one token for user n, issued now and valid for tokenLife.
func (is *issuer) mint(n int, now time.Time) (string, error) {
	sub := fmt.Sprintf("user_2bench%06d", n)
	header := map[string]string{"alg": "RS256", "kid": benchKID, "typ": "JWT"}
	claims := map[string]any{
		"azp": benchAZP,
		"exp": now.Add(tokenLife).Unix(),
		"iat": now.Unix(),
		"iss": benchIssuer,
		"jti": fmt.Sprintf("jti_%d_%d", now.UnixNano(), n),
		"nbf": now.Add(-5 * time.Second).Unix(),
		"sid": fmt.Sprintf("sess_2bench%06d", n),
		"sub": sub,
		"v":   2,
		"fva": []int{0, -1},
		"https://hasura.io/jwt/claims": map[string]any{
			"x-hasura-user-id":       sub,
			"x-hasura-default-role":  "user",
			"x-hasura-allowed-roles": []string{"user", "editor"},
			"x-hasura-org-id":        "org_42",
		},
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding
	signing := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, is.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
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
