package revocation_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/revocation"
)

// BenchmarkAuthenticateCachedRevocations is the hot path the revocation
// check adds to: a reused (cached) token, with no revocation set, an empty
// one, and one holding 10,000 other sessions and users.
func BenchmarkAuthenticateCachedRevocations(b *testing.B) {
	const key = "0123456789abcdef0123456789abcdef"
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "user_bench", "sid": "sess_bench", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		auth.DefaultClaimsNamespace: map[string]any{"x-hasura-default-role": "user", "x-hasura-allowed-roles": []string{"user"}},
	}).SignedString([]byte(key))
	if err != nil {
		b.Fatal(err)
	}
	full := revocation.NewSet(nil, nil)
	for i := range 10000 {
		until := now.Add(time.Hour)
		full.Add(revocation.Revocation{Kind: revocation.KindSession, ID: fmt.Sprintf("sess_%06d", i), Until: until}, metrics.SourceLocal)
		full.Add(revocation.Revocation{Kind: revocation.KindUser, ID: fmt.Sprintf("user_%06d", i), Until: until}, metrics.SourceLocal)
	}
	for _, bc := range []struct {
		name string
		rv   auth.Revocations
	}{
		{"none", nil},
		{"empty", revocation.NewSet(nil, nil)},
		{"20000-revoked", full},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := auth.DefaultConfig()
			cfg.JWTSecret = &auth.JWTSecret{Type: "HS256", Key: key}
			cfg.Require.Iss, cfg.Require.Aud, cfg.Require.AZP = false, false, false
			a, err := auth.New(auth.Options{Config: cfg, AdminSecret: "admin", Revocations: bc.rv})
			if err != nil {
				b.Fatal(err)
			}
			h := http.Header{"Authorization": {"Bearer " + tok}}
			if _, err := a.Authenticate(context.Background(), h); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.Authenticate(context.Background(), h); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRevoked is the check alone.
func BenchmarkRevoked(b *testing.B) {
	now := time.Now()
	s := revocation.NewSet(nil, nil)
	b.Run("empty", func(b *testing.B) {
		for b.Loop() {
			s.Revoked("sess_bench", "user_bench", now)
		}
	})
	for i := range 10000 {
		s.Add(revocation.Revocation{Kind: revocation.KindSession, ID: fmt.Sprintf("sess_%06d", i), Until: now.Add(time.Hour)}, metrics.SourceLocal)
	}
	b.Run("10000-revoked", func(b *testing.B) {
		for b.Loop() {
			s.Revoked("sess_bench", "user_bench", now)
		}
	})
}
