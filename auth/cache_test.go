package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// genKeys is a KeySource whose generation the test sets. Its key function
// finds no key: cache tests never verify through it.
type genKeys struct{ gen atomic.Uint64 }

func (g *genKeys) Keyfunc(context.Context) jwt.Keyfunc {
	return func(*jwt.Token) (any, error) { return nil, ErrNoKeys }
}
func (g *genKeys) Ready() error       { return nil }
func (g *genKeys) Generation() uint64 { return g.gen.Load() }

// perfClock is a settable clock safe for concurrent use.
type perfClock struct{ ns atomic.Int64 }

func newPerfClock(t time.Time) *perfClock {
	c := &perfClock{}
	c.set(t)
	return c
}
func (c *perfClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *perfClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *perfClock) add(d time.Duration) { c.ns.Add(int64(d)) }

var cacheT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testEntry is an entry for token tok of secret, valid until notAfter,
// verified under generation gen.
func testEntry(tok string, secret int, notAfter time.Time, gen uint64) *cacheEntry {
	return &cacheEntry{key: tokenKey(tok), secret: secret, claims: &hasuraClaims{defaultRole: tok},
		exp: notAfter.Add(-5 * time.Second), notAfter: notAfter, generation: gen}
}

func newTestCache(t *testing.T, size int, sources ...KeySource) (*tokenCache, *prometheus.Registry) {
	t.Helper()
	if len(sources) == 0 {
		sources = []KeySource{&genKeys{}}
	}
	reg := prometheus.NewRegistry()
	return newTokenCache(size, sources, metrics.New(reg)), reg
}

func cacheGet(c *tokenCache, tok string, now time.Time) *cacheEntry {
	k := tokenKey(tok)
	return c.get(&k, now)
}

func TestTokenCacheHitMissExpiryGeneration(t *testing.T) {
	src0, src1 := &genKeys{}, &genKeys{}
	tests := []struct {
		name string
		// before runs after the entry for "tok" (secret 0, notAfter
		// cacheT0+60s, generation 0) is stored, and returns the lookup time.
		before  func() time.Time
		wantHit bool
	}{
		{"hit", func() time.Time { return cacheT0 }, true},
		{"last nanosecond before exp+skew", func() time.Time { return cacheT0.Add(60*time.Second - 1) }, true},
		{"at exp+skew", func() time.Time { return cacheT0.Add(60 * time.Second) }, false},
		{"long after exp+skew", func() time.Time { return cacheT0.Add(time.Hour) }, false},
		{"key set lost a key", func() time.Time { src0.gen.Add(1); return cacheT0 }, false},
		{"another secret's key set changed", func() time.Time { src1.gen.Add(1); return cacheT0 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src0.gen.Store(0)
			src1.gen.Store(0)
			c, reg := newTestCache(t, 100, src0, src1)
			if got := cacheGet(c, "tok", cacheT0); got != nil {
				t.Fatalf("get on an empty cache = %+v; want nil", got)
			}
			e := testEntry("tok", 0, cacheT0.Add(60*time.Second), 0)
			c.put(e, cacheT0)
			at := tt.before()
			got := cacheGet(c, "tok", at)
			if (got != nil) != tt.wantHit {
				t.Fatalf("get at %v: hit %v; want %v", at.Sub(cacheT0), got != nil, tt.wantHit)
			}
			if got != nil && got != e {
				t.Fatalf("get = %+v; want the entry put, %+v", got, e)
			}
			wantHits := 0.0
			if tt.wantHit {
				wantHits = 1
			}
			if h := perfCounter(t, reg, "hasura_auth_proxy_token_cache_hits_total"); h != wantHits {
				t.Errorf("hits = %v; want %v", h, wantHits)
			}
			if m := perfCounter(t, reg, "hasura_auth_proxy_token_cache_misses_total"); m != 2-wantHits {
				t.Errorf("misses = %v; want %v", m, 2-wantHits)
			}
			if c.len() != 1 {
				t.Errorf("len = %d; want 1", c.len())
			}
		})
	}
}

// TestTokenCacheReplace: storing a token again replaces its entry in place,
// so a token re-verified after a key change is served again.
func TestTokenCacheReplace(t *testing.T) {
	src := &genKeys{}
	c, _ := newTestCache(t, 10, src)
	c.put(testEntry("tok", 0, cacheT0.Add(time.Minute), 0), cacheT0)
	src.gen.Store(1)
	if cacheGet(c, "tok", cacheT0) != nil {
		t.Fatal("entry of the old generation served")
	}
	fresh := testEntry("tok", 0, cacheT0.Add(time.Minute), 1)
	c.put(fresh, cacheT0)
	if got := cacheGet(c, "tok", cacheT0); got != fresh {
		t.Fatalf("get = %+v; want the re-verified entry", got)
	}
	if c.len() != 1 {
		t.Fatalf("len = %d; want 1", c.len())
	}
}

// TestTokenCacheSizeBound: the capacity is exactly the configured size and
// no number of inserts makes the cache hold more.
func TestTokenCacheSizeBound(t *testing.T) {
	for _, size := range []int{1, 2, 7, 31, 32, 33, 100, 1000, 10000, 12345} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c, reg := newTestCache(t, size)
			if got := c.capacity(); got != size {
				t.Fatalf("capacity = %d; want %d", got, size)
			}
			puts := 3 * size
			if puts > 6000 {
				puts = 6000
			}
			for i := 0; i < puts; i++ {
				c.put(testEntry(fmt.Sprintf("tok-%d", i), 0, cacheT0.Add(time.Minute), 0), cacheT0)
				if c.len() > size {
					t.Fatalf("after %d puts len = %d; want at most %d", i+1, c.len(), size)
				}
			}
			evicted := perfCounter(t, reg, "hasura_auth_proxy_token_cache_evictions_total")
			if int(evicted)+c.len() != puts {
				t.Errorf("evictions %v + len %d = %d; want puts %d", evicted, c.len(), int(evicted)+c.len(), puts)
			}
		})
	}
}

// TestTokenCacheEviction: a full set evicts to make room, and invalid
// entries (expired, older generation) go before valid ones.
func TestTokenCacheEviction(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		c, reg := newTestCache(t, 1)
		c.put(testEntry("a", 0, cacheT0.Add(time.Minute), 0), cacheT0)
		c.put(testEntry("b", 0, cacheT0.Add(time.Minute), 0), cacheT0)
		if cacheGet(c, "a", cacheT0) != nil {
			t.Error("evicted entry served")
		}
		if cacheGet(c, "b", cacheT0) == nil {
			t.Error("new entry not served")
		}
		if got := perfCounter(t, reg, "hasura_auth_proxy_token_cache_evictions_total"); got != 1 {
			t.Errorf("evictions = %v; want 1", got)
		}
		if c.len() != 1 {
			t.Errorf("len = %d; want 1", c.len())
		}
	})
	t.Run("earliest expiry first", func(t *testing.T) {
		c, _ := newTestCache(t, 3) // one set of three ways
		c.put(testEntry("b", 0, cacheT0.Add(2*time.Hour), 0), cacheT0)
		c.put(testEntry("a", 0, cacheT0.Add(time.Hour), 0), cacheT0)
		c.put(testEntry("c", 0, cacheT0.Add(3*time.Hour), 0), cacheT0)
		for _, step := range []struct{ add, gone string }{{"d", "a"}, {"e", "b"}} {
			c.put(testEntry(step.add, 0, cacheT0.Add(4*time.Hour), 0), cacheT0)
			if cacheGet(c, step.gone, cacheT0) != nil {
				t.Errorf("after adding %s: get(%s) = held; want evicted (it expires first)", step.add, step.gone)
			}
			if cacheGet(c, step.add, cacheT0) == nil || cacheGet(c, "c", cacheT0) == nil {
				t.Errorf("after adding %s: get(%s) or get(c) = nil; want both held (they expire later)", step.add, step.add)
			}
		}
	})
	tests := []struct {
		name string
		// invalidate makes entry "old" (one of two in a two-way set)
		// invalid and returns the time of the next insert.
		invalidate func(src *genKeys) time.Time
	}{
		{"expired first", func(*genKeys) time.Time { return cacheT0.Add(2 * time.Second) }},
		{"old generation first", func(src *genKeys) time.Time { src.gen.Store(1); return cacheT0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcOld, srcKeep := &genKeys{}, &genKeys{}
			c, _ := newTestCache(t, 2, srcOld, srcKeep)
			c.put(testEntry("old", 0, cacheT0.Add(time.Second), 0), cacheT0)
			c.put(testEntry("keep", 1, cacheT0.Add(time.Hour), 0), cacheT0)
			at := tt.invalidate(srcOld)
			for i := 0; i < 20; i++ {
				tok := fmt.Sprintf("new-%d", i)
				c.put(testEntry(tok, 1, cacheT0.Add(time.Hour), 0), at)
				if cacheGet(c, "keep", at) == nil {
					t.Fatalf("round %d: get(keep) = nil; want it held (an invalid entry should go first)", i)
				}
				if cacheGet(c, tok, at) == nil {
					t.Fatalf("round %d: get(%s) = nil; want the new entry", i, tok)
				}
				// Expire the entry just stored so the next round has an
				// invalid entry to replace again.
				c.put(testEntry(tok, 0, at.Add(-time.Nanosecond), 0), at)
			}
		})
	}
}

// TestTokenCacheConcurrent hammers one small cache from many goroutines
// (run with -race): every hit is the entry of the token asked for, and is
// valid at the time asked.
func TestTokenCacheConcurrent(t *testing.T) {
	src := &genKeys{}
	c, _ := newTestCache(t, 64, src)
	const (
		workers = 8
		rounds  = 2000
		tokens  = 200
	)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				tok := fmt.Sprintf("tok-%d", (i*7+w*13)%tokens)
				now := cacheT0.Add(time.Duration(i%120) * time.Second)
				gen := src.Generation()
				if w == 0 && i%500 == 499 {
					src.gen.Add(1)
				}
				e := cacheGet(c, tok, now)
				switch {
				case e == nil:
					c.put(testEntry(tok, 0, now.Add(time.Minute), gen), now)
				case e.key != tokenKey(tok):
					t.Errorf("get(%s) = entry of key %x; want key %x", tok, e.key, tokenKey(tok))
					return
				case !now.Before(e.notAfter):
					t.Errorf("get(%s) at %v = entry valid until %v; want nil (expired)", tok, now, e.notAfter)
					return
				case e.generation < gen:
					t.Errorf("get at generation %d = entry of generation %d; want nil (older generation)", gen, e.generation)
					return
				}
				if n := c.len(); n > 64 {
					t.Errorf("len = %d; want at most 64", n)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestTokenCacheThroughAuthenticate: hits and misses are counted, failures
// are never stored, and a stored token stops being served at exp+skew.
func TestTokenCacheThroughAuthenticate(t *testing.T) {
	f := newPerfFixture(t)
	clock := newPerfClock(cacheT0)
	reg := prometheus.NewRegistry()
	a := f.authenticator(t, 100, clock.now, metrics.New(reg))
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := f.mint(t, "user_good", cacheT0, time.Minute)
	for i := 0; i < 3; i++ {
		s := perfMustAuth(t, a, perfBearer(good))
		if s.Role != "user" || s.UserID != "user_good" {
			t.Fatalf("call %d: session = %+v; want role user, user id user_good", i, s)
		}
	}
	if h, m := perfCounter(t, reg, "hasura_auth_proxy_token_cache_hits_total"),
		perfCounter(t, reg, "hasura_auth_proxy_token_cache_misses_total"); h != 2 || m != 1 {
		t.Errorf("hits %v misses %v; want 2 and 1", h, m)
	}
	if a.cache.len() != 1 {
		t.Fatalf("len = %d; want 1", a.cache.len())
	}

	mod := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := f.claims("user_bad", cacheT0, time.Minute)
		change(c)
		return c
	}
	failures := []struct {
		name string
		tok  string
	}{
		{"expired", f.mint(t, "user_old", cacheT0.Add(-time.Hour), time.Minute)},
		{"bad signature", f.sign(t, other, f.claims("user_bad", cacheT0, time.Minute))},
		{"wrong azp", f.sign(t, f.priv, mod(func(c jwt.MapClaims) { c["azp"] = "https://evil.example" }))},
		{"wrong issuer", f.sign(t, f.priv, mod(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))},
		{"no allowed roles", f.sign(t, f.priv, mod(func(c jwt.MapClaims) {
			delete(c[DefaultClaimsNamespace].(map[string]any), "x-hasura-allowed-roles")
		}))},
		{"session variable not a string", f.sign(t, f.priv, mod(func(c jwt.MapClaims) {
			c[DefaultClaimsNamespace].(map[string]any)["x-hasura-org-id"] = 42
		}))},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 2; i++ {
				if s, err := a.Authenticate(context.Background(), perfBearer(tt.tok)); err == nil {
					t.Fatalf("call %d: Authenticate = %+v, nil; want a refusal", i, s)
				}
			}
			if a.cache.len() != 1 {
				t.Fatalf("cache len = %d; want 1 (failures are not cached)", a.cache.len())
			}
		})
	}

	// exp is cacheT0+60s, skew 5s: served up to the last instant before
	// cacheT0+65s, never at or after it.
	clock.set(cacheT0.Add(65*time.Second - time.Millisecond))
	perfMustAuth(t, a, perfBearer(good))
	clock.add(time.Millisecond)
	if _, err := a.Authenticate(context.Background(), perfBearer(good)); err == nil {
		t.Fatal("token served from the cache at exp+skew")
	}
	clock.add(time.Hour)
	if _, err := a.Authenticate(context.Background(), perfBearer(good)); err == nil {
		t.Fatal("token served from the cache after exp+skew")
	}
}

// TestAuthenticateConcurrent runs verification and cache hits for many
// tokens from many goroutines (run with -race); each caller gets its own
// token's identity.
func TestAuthenticateConcurrent(t *testing.T) {
	f := newPerfFixture(t)
	a := f.authenticator(t, 8, nil, nil) // smaller than the token set: evictions too
	now := time.Now()
	toks := make([]string, 24)
	for i := range toks {
		toks[i] = f.mint(t, fmt.Sprintf("user_%d", i), now, time.Hour)
	}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				n := (i*5 + w) % len(toks)
				s, err := a.Authenticate(context.Background(), http.Header{"Authorization": {"Bearer " + toks[n]}})
				if err != nil {
					t.Errorf("Authenticate(token %d) = %v; want nil", n, err)
					return
				}
				if want := fmt.Sprintf("user_%d", n); s.UserID != want {
					t.Errorf("token %d: user %q; want %q", n, s.UserID, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := a.cache.len(); n > 8 {
		t.Errorf("len = %d; want at most 8", n)
	}
}

// cachedAuthAllocBudget is what a cache hit may allocate: the returned
// Session. Measured with testing.AllocsPerRun; raise it only with a reason.
const cachedAuthAllocBudget = 1

// TestCachedAuthenticateAllocs keeps allocations on the cached path from
// growing unnoticed.
func TestCachedAuthenticateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	f := newPerfFixture(t)
	a := f.authenticator(t, 100, nil, metrics.New(prometheus.NewRegistry()))
	h := perfBearer(f.mint(t, "user_2perf", time.Now(), time.Hour))
	perfMustAuth(t, a, h)
	ctx := context.Background()
	got := testing.AllocsPerRun(200, func() {
		if _, err := a.Authenticate(ctx, h); err != nil {
			t.Fatal(err)
		}
	})
	if got > cachedAuthAllocBudget {
		t.Fatalf("cached Authenticate allocations per call = %v; want at most %d", got, cachedAuthAllocBudget)
	}
}
