package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// perfFixture is a Clerk-like issuer for benchmarks and cache tests: an
// RSA-2048 key served as a JWKS by internal/fake's Clerk, and RS256 tokens
// carrying Clerk's default claims plus the Hasura namespace.
type perfFixture struct {
	priv *rsa.PrivateKey
	kid  string
	iss  string
	azp  string
	jwks *fake.Clerk
}

func newPerfFixture(tb testing.TB) *perfFixture {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	f := &perfFixture{priv: priv, kid: "ins_2perfKey", iss: "https://perf.clerk.accounts.dev", azp: "https://app.example.com"}
	f.jwks = fake.StartClerk(tb, fake.WithKey(fake.Key{KID: f.kid, Private: priv}))
	return f
}

// claims are Clerk's default session claims plus the Hasura namespace, for
// user sub, issued at iat and valid for life.
func (f *perfFixture) claims(sub string, iat time.Time, life time.Duration) jwt.MapClaims {
	return jwt.MapClaims{
		"azp": f.azp,
		"exp": iat.Add(life).Unix(),
		"iat": iat.Unix(),
		"iss": f.iss,
		"jti": "jti_" + sub,
		"nbf": iat.Add(-5 * time.Second).Unix(),
		"sid": "sess_" + sub,
		"sub": sub,
		"v":   2,
		"fva": []int{0, -1},
		DefaultClaimsNamespace: map[string]any{
			"x-hasura-user-id":       sub,
			"x-hasura-default-role":  "user",
			"x-hasura-allowed-roles": []string{"user", "editor"},
			"x-hasura-org-id":        "org_42",
		},
	}
}

// mint signs a token for user sub issued at iat, valid for life.
func (f *perfFixture) mint(tb testing.TB, sub string, iat time.Time, life time.Duration) string {
	tb.Helper()
	return f.sign(tb, f.priv, f.claims(sub, iat, life))
}

// sign signs claims with key under the fixture's kid.
func (f *perfFixture) sign(tb testing.TB, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = f.kid
	raw, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// config is a Clerk-style auth section for the fixture's issuer.
func (f *perfFixture) config(cacheSize int) Config {
	c := DefaultConfig()
	c.JWTSecret = &JWTSecret{JWKURL: f.jwks.JWKSURL(), Issuer: f.iss, AllowedSkew: 5}
	c.AuthorizedParties = []string{f.azp}
	c.TokenCache.Size = cacheSize
	return c
}

// authenticator builds an Authenticator over the fixture's JWKS, runs its
// refresher until the test ends and waits for the first key set. now nil
// means time.Now.
func (f *perfFixture) authenticator(tb testing.TB, cacheSize int, now func() time.Time, m *metrics.Metrics) *Authenticator {
	tb.Helper()
	a, err := New(Options{Config: f.config(cacheSize), AdminSecret: "perf-admin-secret-0123456789",
		Logger: zap.NewNop(), Metrics: m, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	for _, rk := range a.remote {
		if err := rk.WaitReady(wctx); err != nil {
			tb.Fatalf("jwks never became ready: %v", err)
		}
	}
	return a
}

func perfBearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
}

func perfMustAuth(tb testing.TB, a *Authenticator, h http.Header) *Session {
	tb.Helper()
	s, err := a.Authenticate(context.Background(), h)
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	return s
}

// BenchmarkAuthenticateCold is a full RS256-2048 verification per call:
// token extraction, decoding, JWKS key lookup, signature, registered claims,
// Hasura claims and role selection, with the token cache off.
func BenchmarkAuthenticateCold(b *testing.B) {
	f := newPerfFixture(b)
	a := f.authenticator(b, 0, nil, metrics.New(prometheus.NewRegistry()))
	h := perfBearer(f.mint(b, "user_2perf", time.Now(), time.Hour))
	perfMustAuth(b, a, h)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateCached is a reused token answered by the cache: a
// SHA-256 of the token, a lookup and role selection.
func BenchmarkAuthenticateCached(b *testing.B) {
	f := newPerfFixture(b)
	a := f.authenticator(b, 10000, nil, metrics.New(prometheus.NewRegistry()))
	h := perfBearer(f.mint(b, "user_2perf", time.Now(), time.Hour))
	perfMustAuth(b, a, h)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateCachedParallel is the cached path from every P at
// once with one shared token: all hits land on one cache slot.
func BenchmarkAuthenticateCachedParallel(b *testing.B) {
	f := newPerfFixture(b)
	a := f.authenticator(b, 10000, nil, metrics.New(prometheus.NewRegistry()))
	h := perfBearer(f.mint(b, "user_2perf", time.Now(), time.Hour))
	perfMustAuth(b, a, h)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(context.Background(), h); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuthenticateCachedRotating cycles through 5,000 distinct tokens,
// all held by the cache, as many users sharing one proxy would.
func BenchmarkAuthenticateCachedRotating(b *testing.B) {
	f := newPerfFixture(b)
	reg := prometheus.NewRegistry()
	a := f.authenticator(b, 10000, nil, metrics.New(reg))
	const n = 5000
	now := time.Now()
	hs := make([]http.Header, n)
	for i := range hs {
		hs[i] = perfBearer(f.mint(b, fmt.Sprintf("user_%d", i), now, time.Hour))
		perfMustAuth(b, a, hs[i])
	}
	warm := perfCounter(b, reg, "hasura_auth_proxy_token_cache_misses_total")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), hs[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == n {
			i = 0
		}
	}
	misses := perfCounter(b, reg, "hasura_auth_proxy_token_cache_misses_total") - warm
	b.ReportMetric(misses/float64(b.N), "misses/op")
}

// perfCounter reads the value of the counter name from reg.
func perfCounter(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	tb.Fatalf("metric %s not registered", name)
	return 0
}

// BenchmarkClaimsToSession is the claims half of a verification: decoding
// the payload, extracting the Hasura claims and selecting the role, without
// the signature.
func BenchmarkClaimsToSession(b *testing.B) {
	f := newPerfFixture(b)
	a := f.authenticator(b, 0, nil, nil)
	raw := f.mint(b, "user_2perf", time.Now(), time.Hour)
	v := a.secrets[0]
	b.ReportAllocs()
	for b.Loop() {
		d, err := decodeToken(raw, DefaultMaxTokenBytes)
		if err != nil {
			b.Fatal(err)
		}
		hc, err := v.rules.extract(d.claims)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := selectRole(hc, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenHash is the cache key of a Clerk-sized token.
func BenchmarkTokenHash(b *testing.B) {
	f := newPerfFixture(b)
	raw := f.mint(b, "user_2perf", time.Now(), time.Hour)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var sink cacheKey
	for b.Loop() {
		sink = tokenKey(raw)
	}
	_ = sink
}
