package auth

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"go.yaml.in/yaml/v3"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// fakeClock is a settable clock for staleness and rate-limit decisions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// signer is a test key pair with its kid.
type signer struct {
	kid    string
	alg    string
	priv   crypto.Signer
	method jwt.SigningMethod
}

func newRSASigner(t *testing.T, kid string) signer {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, alg: "RS256", priv: priv, method: jwt.SigningMethodRS256}
}

func newECSigner(t *testing.T, kid string) signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, alg: "ES256", priv: priv, method: jwt.SigningMethodES256}
}

func newEdSigner(t *testing.T, kid string) signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, alg: "EdDSA", priv: priv, method: jwt.SigningMethodEdDSA}
}

// jwk is the public JWK of s, with alg and use:"sig".
func (s signer) jwk(t *testing.T) jwkset.JWKMarshal {
	t.Helper()
	return marshalPublic(t, s.priv.Public(), jwkset.JWKMetadataOptions{KID: s.kid, ALG: jwkset.ALG(s.alg),
		USE: jwkset.UseSig})
}

func marshalPublic(t *testing.T, pub any, md jwkset.JWKMetadataOptions) jwkset.JWKMarshal {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	return j.Marshal()
}

// token signs a valid token; an empty kid leaves the header without one.
func (s signer) token(t *testing.T, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, jwt.MapClaims{"sub": "user_1", "exp": time.Now().Add(time.Hour).Unix()})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	raw, err := tok.SignedString(s.priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func verify(ctx context.Context, ks KeySource, algs []string, raw string) error {
	_, err := jwt.NewParser(jwt.WithValidMethods(algs)).Parse(raw, ks.Keyfunc(ctx))
	return err
}

// jwksServer is an httptest JWKS endpoint whose behaviour a test swaps.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	handler http.HandlerFunc
	fetches atomic.Int64
	inm     atomic.Value // last If-None-Match received (string)
}

func newJWKSServer(t *testing.T, h http.HandlerFunc) *jwksServer {
	t.Helper()
	s := &jwksServer{handler: h}
	s.inm.Store("")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.inm.Store(r.Header.Get("If-None-Match"))
		s.mu.Lock()
		h := s.handler
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(h http.HandlerFunc) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

func jwksJSON(t *testing.T, keys ...jwkset.JWKMarshal) []byte {
	t.Helper()
	b, err := json.Marshal(jwkset.JWKSMarshal{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serveKeys(t *testing.T, keys ...jwkset.JWKMarshal) http.HandlerFunc {
	body := jwksJSON(t, keys...)
	return serveBody(http.StatusOK, string(body))
}

func serveBody(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// serveHeld never answers: it holds every request until the client gives up
// or the test ends, and counts in held the requests it is holding. A fetch
// of it can only end by the client's timeout, whatever the machine's speed.
func serveHeld(t *testing.T, held *atomic.Int64) http.HandlerFunc {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		defer held.Add(-1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

// jwksEventually polls cond until it holds; the 10 s bound is for a broken
// build, not a speed expectation.
func jwksEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testConfig is short enough for tests and valid.
func testConfig() JWKSConfig {
	return JWKSConfig{
		RefreshInterval:           time.Hour,
		UnknownKIDRefreshInterval: 30 * time.Second,
		MaxStale:                  24 * time.Hour,
		FetchTimeout:              2 * time.Second,
		MinRefreshInterval:        time.Minute,
		MaxRefreshInterval:        2 * time.Hour,
		UnknownKIDWait:            time.Second,
		MaxBodyBytes:              64 << 10,
	}
}

type harness struct {
	keys    *RemoteKeys
	reg     *prometheus.Registry
	results chan string
	clock   *fakeClock
}

func newHarness(t *testing.T, url string, cfg JWKSConfig, log *zap.Logger) *harness {
	t.Helper()
	if log == nil {
		log = zaptest.NewLogger(t)
	}
	h := &harness{reg: prometheus.NewRegistry(), results: make(chan string, 1000), clock: newFakeClock()}
	k, err := NewRemoteKeys(RemoteKeysOptions{URL: url, Name: "test", Config: cfg, Logger: log,
		Metrics: metrics.New(h.reg), Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	k.backoffMin, k.backoffMax = 20*time.Millisecond, 80*time.Millisecond
	k.afterFetch = func(r string) {
		select {
		case h.results <- r:
		default:
		}
	}
	h.keys = k
	return h
}

// run starts Run and stops it (waiting for it) when the test ends.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.keys.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// await waits for the next fetch result and checks it.
func (h *harness) await(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-h.results:
		if got != want {
			t.Fatalf("fetch result = %q; want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no fetch result; want %q", want)
	}
}

func (h *harness) fetch(t *testing.T, want string) {
	t.Helper()
	if got, _ := h.keys.fetch(context.Background()); got != want {
		t.Fatalf("fetch = %q; want %q", got, want)
	}
	<-h.results
}

// metric returns the value of the series name{issuer="test",extra...}.
func (h *harness) metric(t *testing.T, name string, extra ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"issuer": "test"}
	for i := 0; i+1 < len(extra); i += 2 {
		want[extra[i]] = extra[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != metrics.Namespace+"_"+name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func TestJWKSConfigYAML(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    JWKSConfig
		wantErr string
	}{
		{name: "durations as strings", yaml: "refresh_interval: 10m\nunknown_kid_refresh_interval: 45s\nmax_stale: 48h\n" +
			"fetch_timeout: 3s\nmin_refresh_interval: 2m\nmax_refresh_interval: 2h\nunknown_kid_wait: 500ms\nmax_body_bytes: 4096\n",
			want: JWKSConfig{RefreshInterval: 10 * time.Minute, UnknownKIDRefreshInterval: 45 * time.Second,
				MaxStale: 48 * time.Hour, FetchTimeout: 3 * time.Second, MinRefreshInterval: 2 * time.Minute,
				MaxRefreshInterval: 2 * time.Hour, UnknownKIDWait: 500 * time.Millisecond, MaxBodyBytes: 4096}},
		{name: "empty takes defaults", yaml: "{}\n", want: JWKSConfig{RefreshInterval: 5 * time.Minute,
			UnknownKIDRefreshInterval: 30 * time.Second, MaxStale: 24 * time.Hour, FetchTimeout: 5 * time.Second,
			MinRefreshInterval: time.Minute, MaxRefreshInterval: time.Hour, UnknownKIDWait: time.Second,
			MaxBodyBytes: 1 << 20}},
		{name: "bare number is not nanoseconds", yaml: "refresh_interval: 300\n", wantErr: "cannot unmarshal"},
		{name: "bad duration", yaml: "max_stale: forever\n", wantErr: "cannot unmarshal"},
		{name: "unknown key", yaml: "refresh: 5m\n", wantErr: "field refresh not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got JWKSConfig
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			err := dec.Decode(&got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.ApplyDefaults()
			if got != tt.want {
				t.Fatalf("got %+v; want %+v", got, tt.want)
			}
			if err := got.Validate("auth.jwks"); err != nil {
				t.Fatalf("Validate = %v; want nil", err)
			}
		})
	}
}

func TestJWKSConfigValidate(t *testing.T) {
	valid := func() JWKSConfig { var c JWKSConfig; c.ApplyDefaults(); return c }
	tests := []struct {
		name   string
		modify func(*JWKSConfig)
		want   []string
	}{
		{name: "defaults", modify: func(*JWKSConfig) {}},
		{name: "negatives", modify: func(c *JWKSConfig) {
			c.MaxStale, c.FetchTimeout, c.UnknownKIDWait, c.MaxBodyBytes = -1, -time.Second, -1, -5
		}, want: []string{"auth.jwks.max_stale: must be positive", "auth.jwks.fetch_timeout: must be positive",
			"auth.jwks.unknown_kid_wait: must be positive", "auth.jwks.max_body_bytes: must be positive"}},
		{name: "zero without defaults", modify: func(c *JWKSConfig) { c.RefreshInterval = 0 },
			want: []string{"auth.jwks.refresh_interval: must be positive"}},
		{name: "min above max", modify: func(c *JWKSConfig) { c.MinRefreshInterval = 2 * time.Hour },
			want: []string{"auth.jwks.min_refresh_interval: must not exceed max_refresh_interval (1h0m0s)"}},
		{name: "refresh below min", modify: func(c *JWKSConfig) { c.RefreshInterval = 30 * time.Second },
			want: []string{"auth.jwks.refresh_interval: must be between min_refresh_interval (1m0s) and max_refresh_interval (1h0m0s)"}},
		{name: "max_stale too short", modify: func(c *JWKSConfig) { c.MaxStale = 30 * time.Minute },
			want: []string{"auth.jwks.max_stale: must be longer than max_refresh_interval (1h0m0s), or healthy keys expire between refreshes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate("auth.jwks")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil; want %q", tt.want)
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Validate =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRefreshAfter follows Hasura's determineJwkExpiryLifetime
// (server/src-lib/Hasura/Server/Auth/JWT.hs) and its unit cases
// (server/src-test/Hasura/Server/Auth/JWTSpec.hs), within the proxy's clamps:
// where Hasura expires the keys at once the proxy waits min_refresh_interval,
// and where it has no information the proxy waits refresh_interval.
func TestRefreshAfter(t *testing.T) {
	cfg := JWKSConfig{RefreshInterval: 5 * time.Minute, MinRefreshInterval: time.Minute, MaxRefreshInterval: time.Hour}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	in := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name         string
		cacheControl []string
		expires      string
		want         time.Duration
	}{
		{"no headers", nil, "", 5 * time.Minute},
		{"public", []string{"public"}, "", 5 * time.Minute},
		{"max-age", []string{"public, max-age=600"}, "", 10 * time.Minute},
		{"max-age clamped up", []string{"max-age=10"}, "", time.Minute},
		{"max-age clamped down", []string{"max-age=86400"}, "", time.Hour},
		{"max-age overflow", []string{"max-age=99999999999999999999"}, "", time.Hour},
		{"max-age=0", []string{"max-age=0"}, "", time.Minute},
		{"no-cache", []string{"no-cache"}, "", time.Minute},
		{"no-store wins over max-age", []string{"no-store, max-age=600"}, "", time.Minute},
		{"s-maxage", []string{"public, s-maxage=900"}, "", 15 * time.Minute},
		{"max-age before s-maxage", []string{"s-maxage=900, max-age=300"}, "", 5 * time.Minute},
		{"quoted, upper case", []string{`MAX-AGE="1200"`}, "", 20 * time.Minute},
		{"digits then junk", []string{"max-age=1200abc"}, "", 20 * time.Minute},
		{"first max-age counts", []string{"max-age=1200", "max-age=60"}, "", 20 * time.Minute},
		{"two lines", []string{"public", "max-age=1800"}, "", 30 * time.Minute},
		{"max-age without value", []string{"max-age"}, in(10 * time.Minute), 10 * time.Minute},
		{"negative max-age is broken", []string{"max-age=-5"}, "", 5 * time.Minute},

		// The JWTSpec.hs table (E = Expires 60 s ahead; clamp 1m..1h).
		{"max-age=10, no-cache", []string{"max-age=10, no-cache"}, in(time.Minute), time.Minute},
		{"must-revalidate", []string{"must-revalidate"}, in(time.Minute), time.Minute},
		{"max-age=10, must-revalidate", []string{"max-age=10, must-revalidate"}, in(time.Minute), time.Minute},
		{"max-age=10, no-store", []string{"max-age=10, no-store"}, in(time.Minute), time.Minute},
		{"public, max-age=10", []string{"public, max-age=10"}, in(time.Minute), time.Minute},
		{"public, s-maxage=10", []string{"public, s-maxage=10"}, in(time.Minute), time.Minute},
		{"public falls back to Expires", []string{"public"}, in(20 * time.Minute), 20 * time.Minute},
		{"Expires alone", nil, in(20 * time.Minute), 20 * time.Minute},
		{"max-age=lolbroken ignores Expires", []string{"max-age=lolbroken"}, in(20 * time.Minute), 5 * time.Minute},
		{"broken Expires", []string{"public"}, "lolbroken", 5 * time.Minute},

		// must-revalidate with a max-age uses it (test_jwk.py
		// test_cache_control_header_max_age_must_revalidate).
		{"must-revalidate, max-age=1800", []string{"must-revalidate, max-age=1800"}, "", 30 * time.Minute},
		{"must-revalidate beats no-cache", []string{"no-cache, must-revalidate, max-age=1800"}, "", 30 * time.Minute},
		{"Expires clamped down", nil, in(48 * time.Hour), time.Hour},
		{"Expires clamped up", nil, in(10 * time.Second), time.Minute},
		{"Expires in the past", nil, in(-time.Hour), time.Minute},
		{"Expires RFC 850", nil, now.Add(20 * time.Minute).Format("Monday, 02-Jan-06 15:04:05 GMT"), 20 * time.Minute},
		{"max-age beats Expires", []string{"max-age=600"}, in(20 * time.Minute), 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.cacheControl {
				h.Add("Cache-Control", v)
			}
			if tt.expires != "" {
				h.Set("Expires", tt.expires)
			}
			if got := refreshAfter(h, cfg, now); got != tt.want {
				t.Fatalf("refreshAfter(Cache-Control %q, Expires %q) = %s; want %s", tt.cacheControl, tt.expires, got, tt.want)
			}
		})
	}
	for range 100 {
		if d := jitterDown(10 * time.Minute); d < 9*time.Minute || d > 10*time.Minute {
			t.Fatalf("jitterDown(10m) = %s; want within [9m, 10m]", d)
		}
	}
}

// TestRemoteKeysCacheHeaders runs whole fetches against a JWKS that sends the
// headers of Hasura's test_jwk.py (server/tests-py/test_jwk.py): the next
// refresh is scheduled from them, measured on the injected clock.
func TestRemoteKeysCacheHeaders(t *testing.T) {
	es := newECSigner(t, "k1")
	body := jwksJSON(t, es.jwk(t))
	cfg := testConfig()
	cfg.MinRefreshInterval = time.Second
	tests := []struct {
		name    string
		headers func(now time.Time) map[string]string
		want    time.Duration
	}{
		{"must-revalidate", func(time.Time) map[string]string {
			return map[string]string{"Cache-Control": "must-revalidate"}
		}, time.Second},
		{"max-age=3, must-revalidate", func(time.Time) map[string]string {
			return map[string]string{"Cache-Control": "max-age=3, must-revalidate"}
		}, 3 * time.Second},
		{"no-cache, public", func(time.Time) map[string]string {
			return map[string]string{"Cache-Control": "no-cache, public"}
		}, time.Second},
		{"Expires in 3 s", func(now time.Time) map[string]string {
			return map[string]string{"Expires": now.Add(3 * time.Second).Format(http.TimeFormat)}
		}, 3 * time.Second},
		{"none", func(time.Time) map[string]string { return nil }, cfg.RefreshInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h *harness
			srv := newJWKSServer(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range tt.headers(h.clock.Now()) {
					w.Header().Set(k, v)
				}
				_, _ = w.Write(body)
			})
			h = newHarness(t, srv.URL, cfg, nil)
			for i := range 2 {
				got, next := h.keys.fetch(context.Background())
				<-h.results
				if got != metrics.JWKSSuccess || next != tt.want {
					t.Fatalf("fetch %d = %q, next %s; want %q, next %s", i, got, next, metrics.JWKSSuccess, tt.want)
				}
				h.clock.Advance(next)
			}
		})
	}
}

func TestNewRemoteKeysRejects(t *testing.T) {
	tests := []struct {
		name string
		o    RemoteKeysOptions
		want string
	}{
		{"relative URL", RemoteKeysOptions{URL: "/jwks.json"}, "absolute http or https"},
		{"ftp", RemoteKeysOptions{URL: "ftp://example.com/jwks"}, "absolute http or https"},
		{"bad config", RemoteKeysOptions{URL: "https://example.com/jwks", Config: JWKSConfig{MaxStale: -1}},
			"auth.jwks.max_stale: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRemoteKeys(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want %q", err, tt.want)
			}
		})
	}
}

func TestRemoteKeysFirstFetch(t *testing.T) {
	rs := newRSASigner(t, "ins_1")
	srv := newJWKSServer(t, serveKeys(t, rs.jwk(t)))
	h := newHarness(t, srv.URL, testConfig(), nil)
	if err := h.keys.Ready(); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("Ready before Run = %v; want ErrNoKeys", err)
	}
	if srv.fetches.Load() != 0 {
		t.Fatal("NewRemoteKeys fetched; it must not")
	}
	h.run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.keys.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.keys.Ready(); err != nil {
		t.Fatalf("Ready = %v; want nil", err)
	}
	if err := verify(ctx, h.keys, JWKSAlgorithms(), rs.token(t, "ins_1")); err != nil {
		t.Fatalf("verify = %v; want nil", err)
	}
	// No kid: keyfunc tries every held key.
	if err := verify(ctx, h.keys, JWKSAlgorithms(), rs.token(t, "")); err != nil {
		t.Fatalf("verify without kid = %v; want nil", err)
	}
	if got := h.metric(t, "jwks_keys"); got != 1 {
		t.Errorf("jwks_keys = %v; want 1", got)
	}
	if got := h.metric(t, "jwks_refresh_total", "result", "success"); got != 1 {
		t.Errorf("jwks_refresh_total{success} = %v; want 1", got)
	}
	if got := h.metric(t, "jwks_last_success_timestamp_seconds"); got != float64(h.clock.Now().Unix()) {
		t.Errorf("jwks_last_success = %v; want %v", got, h.clock.Now().Unix())
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("fetches = %d; want 1", got)
	}
}

func TestRemoteKeysStartFailureRecovers(t *testing.T) {
	es := newECSigner(t, "k1")
	good := serveKeys(t, es.jwk(t))
	var healthy atomic.Bool
	srv := newJWKSServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		good(w, r)
	})
	h := newHarness(t, srv.URL, testConfig(), nil)
	h.run(t)
	h.await(t, metrics.JWKSError)
	h.await(t, metrics.JWKSError) // a retry, by backoff

	ctx := context.Background()
	if err := h.keys.Ready(); !errors.Is(err, ErrNoKeys) || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("Ready = %v; want ErrNoKeys naming the last error", err)
	}
	for _, kid := range []string{"k1", ""} {
		if err := verify(ctx, h.keys, JWKSAlgorithms(), es.token(t, kid)); !errors.Is(err, ErrNoKeys) {
			t.Fatalf("verify kid %q = %v; want ErrNoKeys", kid, err)
		}
	}
	if got := h.metric(t, "jwks_stale"); got != 0 {
		t.Errorf("jwks_stale without keys = %v; want 0", got)
	}

	healthy.Store(true)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.keys.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if err := verify(ctx, h.keys, JWKSAlgorithms(), es.token(t, "k1")); err != nil {
		t.Fatalf("verify after recovery = %v; want nil", err)
	}
	if got := h.metric(t, "jwks_refresh_total", "result", "error"); got < 2 {
		t.Errorf("jwks_refresh_total{error} = %v; want at least 2", got)
	}
	if got := h.metric(t, "jwks_refresh_total", "result", "success"); got != 1 {
		t.Errorf("jwks_refresh_total{success} = %v; want 1", got)
	}
}

func TestRemoteKeysRotation(t *testing.T) {
	a, b := newRSASigner(t, "ins_a"), newRSASigner(t, "ins_b")
	srv := newJWKSServer(t, serveKeys(t, a.jwk(t)))
	cfg := testConfig()
	// A refresh that ends releases its waiters at once, so a long wait
	// costs nothing here; it only keeps a slow machine from failing the
	// refresh-then-verify below, and tells "answered at once" apart from
	// "waited" for the rate-limited kid.
	cfg.UnknownKIDWait = time.Minute
	h := newHarness(t, srv.URL, cfg, nil)
	h.run(t)
	h.await(t, metrics.JWKSSuccess)
	ctx := context.Background()

	srv.set(serveKeys(t, a.jwk(t), b.jwk(t)))
	if err := verify(ctx, h.keys, JWKSAlgorithms(), b.token(t, "ins_b")); err != nil {
		t.Fatalf("verify new kid = %v; want nil", err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d; want 2 (start, unknown kid)", got)
	}
	if got := h.metric(t, "jwks_refresh_total", "result", "unknown_kid_refresh"); got != 1 {
		t.Errorf("jwks_refresh_total{unknown_kid_refresh} = %v; want 1", got)
	}
	h.await(t, metrics.JWKSSuccess)

	// Another unknown kid inside unknown_kid_refresh_interval: refused at once, no fetch.
	start := time.Now()
	err := verify(ctx, h.keys, JWKSAlgorithms(), b.token(t, "ins_c"))
	if !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("verify rate-limited kid = %v; want ErrUnknownKID", err)
	}
	if d := time.Since(start); d > cfg.UnknownKIDWait/6 {
		t.Errorf("rate-limited kid waited %s; want an answer without waiting for unknown_kid_wait (%s)", d, cfg.UnknownKIDWait)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("fetches = %d; want still 2", got)
	}

	// Once the interval has passed, an unknown kid may refresh again.
	h.clock.Advance(cfg.UnknownKIDRefreshInterval)
	err = verify(ctx, h.keys, JWKSAlgorithms(), b.token(t, "ins_c"))
	if !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("verify unknown kid = %v; want ErrUnknownKID", err)
	}
	if !strings.Contains(err.Error(), `"ins_c"`) {
		t.Errorf("verify unknown kid = %q; want it to contain %q", err, `"ins_c"`)
	}
	if got := srv.fetches.Load(); got != 3 {
		t.Fatalf("fetches = %d; want 3", got)
	}
}

func TestRemoteKeysUnknownKIDFlood(t *testing.T) {
	es := newECSigner(t, "k1")
	good := serveKeys(t, es.jwk(t))
	srv := newJWKSServer(t, good)
	cfg := testConfig()
	cfg.UnknownKIDWait = 200 * time.Millisecond
	cfg.FetchTimeout = time.Hour
	h := newHarness(t, srv.URL, cfg, nil)
	h.run(t)
	h.await(t, metrics.JWKSSuccess)
	// The refresh the flood triggers never ends (until the test does): every
	// answer below was bounded by unknown_kid_wait, not by the JWKS.
	var held atomic.Int64
	srv.set(serveHeld(t, &held))

	const n = 200
	out := make(chan error, n)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = es.token(t, fmt.Sprintf("attacker-%d", i))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out <- verify(context.Background(), h.keys, JWKSAlgorithms(), tokens[i])
		})
	}
	wg.Wait()
	close(out)
	for err := range out {
		if !errors.Is(err, ErrUnknownKID) {
			t.Fatalf("verify = %v; want ErrUnknownKID", err)
		}
	}
	// The refresh may reach the JWKS after the last answer.
	jwksEventually(t, "the unknown-kid refresh to reach the JWKS", func() bool { return held.Load() == 1 })
	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("JWKS fetches = %d; want 2 (start + one unknown-kid refresh)", got)
	}
	if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, "k1")); err != nil {
		t.Errorf("verify known kid during the flood = %v; want nil", err)
	}
}

func TestRemoteKeysUnknownKIDSingleFlight(t *testing.T) {
	es := newECSigner(t, "k1")
	good := serveKeys(t, es.jwk(t))
	srv := newJWKSServer(t, good)
	cfg := testConfig()
	cfg.UnknownKIDWait = 100 * time.Millisecond
	cfg.FetchTimeout = time.Hour
	h := newHarness(t, srv.URL, cfg, nil)
	h.run(t)
	h.await(t, metrics.JWKSSuccess)
	var held atomic.Int64
	srv.set(serveHeld(t, &held)) // the first refresh stays in flight until the test ends

	for i := range 3 {
		if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, "new")); !errors.Is(err, ErrUnknownKID) {
			t.Fatalf("verify %d = %v; want ErrUnknownKID", i, err)
		}
		// The rate limit would allow another refresh, but one is still in flight.
		h.clock.Advance(time.Hour)
	}
	if got := h.metric(t, "jwks_refresh_total", "result", "unknown_kid_refresh"); got != 1 {
		t.Errorf("unknown-kid refreshes started = %v; want 1 (the first is still in flight)", got)
	}
	jwksEventually(t, "the unknown-kid refresh to reach the JWKS", func() bool { return held.Load() == 1 })
	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("fetches = %d; want 2 (start, one unknown-kid refresh)", got)
	}
}

func TestRemoteKeysUnknownKIDWaitBoundedByContext(t *testing.T) {
	es := newECSigner(t, "k1")
	good := serveKeys(t, es.jwk(t))
	srv := newJWKSServer(t, good)
	cfg := testConfig()
	// Neither the wait nor the refresh can end first: only the request's
	// context can answer it.
	cfg.UnknownKIDWait = time.Hour
	cfg.FetchTimeout = time.Hour
	h := newHarness(t, srv.URL, cfg, nil)
	h.run(t)
	h.await(t, metrics.JWKSSuccess)
	srv.set(serveHeld(t, new(atomic.Int64)))

	tok := es.token(t, "other")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := verify(ctx, h.keys, JWKSAlgorithms(), tok); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("verify = %v; want ErrUnknownKID", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answered after %s; want no earlier than the request context's 100ms", d)
	}
}

func TestRemoteKeysUnknownKIDWithoutRun(t *testing.T) {
	es := newECSigner(t, "k1")
	srv := newJWKSServer(t, serveKeys(t, es.jwk(t)))
	h := newHarness(t, srv.URL, testConfig(), nil)
	h.fetch(t, metrics.JWKSSuccess)
	// Without Run there is no owner for a background fetch: refuse at once.
	if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, "nope")); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("verify = %v; want ErrUnknownKID", err)
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("fetches = %d; want 1", got)
	}
}

func TestRemoteKeysFailedRefreshKeepsKeys(t *testing.T) {
	es := newECSigner(t, "k1")
	oct := jwkset.JWKMarshal{KTY: jwkset.KtyOct, KID: "hs", K: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}
	tests := []struct {
		name    string
		bodyMax int64
		handler http.HandlerFunc
		want    string
	}{
		{name: "500", handler: serveBody(http.StatusInternalServerError, `{"keys":[]}`), want: metrics.JWKSError},
		{name: "404", handler: serveBody(http.StatusNotFound, "not found"), want: metrics.JWKSError},
		{name: "bad JSON", handler: serveBody(http.StatusOK, `{"keys":[{"kty":`), want: metrics.JWKSError},
		{name: "HTML", handler: serveBody(http.StatusOK, `<html>maintenance</html>`), want: metrics.JWKSError},
		{name: "slow", handler: serveHeld(t, new(atomic.Int64)), want: metrics.JWKSError},
		{name: "empty set", handler: serveBody(http.StatusOK, `{"keys":[]}`), want: metrics.JWKSEmpty},
		{name: "empty object", handler: serveBody(http.StatusOK, `{}`), want: metrics.JWKSEmpty},
		{name: "null", handler: serveBody(http.StatusOK, `null`), want: metrics.JWKSEmpty},
		{name: "only unusable keys", handler: serveKeys(t, oct), want: metrics.JWKSEmpty},
		{name: "too large with length", bodyMax: 256, handler: serveBody(http.StatusOK,
			string(jwksJSON(t, es.jwk(t), es.jwk(t), es.jwk(t)))), want: metrics.JWKSTooLarge},
		{name: "too large chunked", bodyMax: 256, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			for range 100 {
				_, _ = w.Write([]byte(`{"keys":[]}                                          `))
				w.(http.Flusher).Flush()
			}
		}, want: metrics.JWKSTooLarge},
		{name: "304 without If-None-Match", handler: serveBody(http.StatusNotModified, ""), want: metrics.JWKSError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, serveKeys(t, es.jwk(t)))
			cfg := testConfig()
			// Short enough for the slow case to fail fast, long enough that
			// a loaded machine (make check runs fuzzers too) still fetches
			// the good answers in time.
			cfg.FetchTimeout = 2 * time.Second
			if tt.name == "slow" {
				cfg.FetchTimeout = 150 * time.Millisecond
			}
			if tt.bodyMax > 0 {
				cfg.MaxBodyBytes = tt.bodyMax
			}
			h := newHarness(t, srv.URL, cfg, nil)
			h.fetch(t, metrics.JWKSSuccess)
			gen := h.keys.Generation()

			srv.set(tt.handler)
			h.fetch(t, tt.want)
			if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, "k1")); err != nil {
				t.Fatalf("verify with kept keys = %v; want nil", err)
			}
			if err := h.keys.Ready(); err != nil {
				t.Errorf("Ready = %v; want nil (stale keys are usable)", err)
			}
			if !h.keys.stale.Load() || h.metric(t, "jwks_stale") != 1 {
				t.Errorf("stale = %v, jwks_stale = %v; want true, 1", h.keys.stale.Load(), h.metric(t, "jwks_stale"))
			}
			if got := h.metric(t, "jwks_refresh_total", "result", tt.want); got != 1 {
				t.Errorf("jwks_refresh_total{%s} = %v; want 1", tt.want, got)
			}
			if got := h.metric(t, "jwks_keys"); got != 1 {
				t.Errorf("jwks_keys = %v; want 1", got)
			}
			if h.keys.Generation() != gen {
				t.Errorf("Generation after a failed refresh = %d; want %d (unchanged)", h.keys.Generation(), gen)
			}

			srv.set(serveKeys(t, es.jwk(t)))
			h.fetch(t, metrics.JWKSSuccess)
			if h.keys.stale.Load() || h.metric(t, "jwks_stale") != 0 {
				t.Errorf("stale, jwks_stale after a successful refresh = %v, %v; want false, 0", h.keys.stale.Load(), h.metric(t, "jwks_stale"))
			}
		})
	}
}

func TestRemoteKeysMaxStale(t *testing.T) {
	es := newECSigner(t, "k1")
	srv := newJWKSServer(t, serveKeys(t, es.jwk(t)))
	cfg := testConfig()
	h := newHarness(t, srv.URL, cfg, nil)
	h.fetch(t, metrics.JWKSSuccess)
	gen := h.keys.Generation()
	srv.set(serveBody(http.StatusBadGateway, ""))

	h.clock.Advance(cfg.MaxStale - time.Second)
	h.fetch(t, metrics.JWKSError)
	if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, "k1")); err != nil {
		t.Fatalf("verify just before max_stale = %v; want nil", err)
	}
	h.clock.Advance(2 * time.Second)
	for _, kid := range []string{"k1", ""} {
		if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, kid)); !errors.Is(err, ErrNoKeys) {
			t.Fatalf("verify kid %q past max_stale = %v; want ErrNoKeys", kid, err)
		}
	}
	if err := h.keys.Ready(); !errors.Is(err, ErrNoKeys) || !strings.Contains(err.Error(), "max_stale") {
		t.Errorf("Ready = %v; want ErrNoKeys mentioning max_stale", err)
	}
	if h.keys.Generation() == gen {
		t.Errorf("Generation after keys expired = %d; want a new one (was %d)", h.keys.Generation(), gen)
	}
	if h.metric(t, "jwks_keys") != 0 || h.metric(t, "jwks_stale") != 0 {
		t.Errorf("jwks_keys = %v, jwks_stale = %v; want 0, 0", h.metric(t, "jwks_keys"), h.metric(t, "jwks_stale"))
	}

	srv.set(serveKeys(t, es.jwk(t)))
	h.fetch(t, metrics.JWKSSuccess)
	if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, "k1")); err != nil {
		t.Fatalf("verify after recovery = %v; want nil", err)
	}
}

func TestRemoteKeysETag(t *testing.T) {
	es := newECSigner(t, "k1")
	body := jwksJSON(t, es.jwk(t))
	srv := newJWKSServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "public, max-age=600")
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(body)
	})
	cfg := testConfig()
	h := newHarness(t, srv.URL, cfg, nil)
	if got, next := h.keys.fetch(context.Background()); got != metrics.JWKSSuccess || next != 10*time.Minute {
		t.Fatalf("fetch = %q, %s; want success, 10m", got, next)
	}
	<-h.results
	if inm := srv.inm.Load(); inm != "" {
		t.Fatalf("first fetch If-None-Match = %q; want none", inm)
	}
	gen := h.keys.Generation()
	h.clock.Advance(cfg.MaxStale - time.Minute)
	if got, next := h.keys.fetch(context.Background()); got != metrics.JWKSNotModified || next != 10*time.Minute {
		t.Fatalf("fetch = %q, %s; want not_modified, 10m", got, next)
	}
	<-h.results
	if inm := srv.inm.Load(); inm != `"v1"` {
		t.Fatalf("If-None-Match = %q; want \"v1\"", inm)
	}
	// The 304 renewed the keys' freshness.
	h.clock.Advance(2 * time.Minute)
	if err := verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, "k1")); err != nil {
		t.Fatalf("verify after 304 = %v; want nil", err)
	}
	if h.keys.Generation() != gen {
		t.Errorf("Generation after 304 = %d; want %d (unchanged)", h.keys.Generation(), gen)
	}
	if got := h.metric(t, "jwks_refresh_total", "result", "not_modified"); got != 1 {
		t.Errorf("jwks_refresh_total{not_modified} = %v; want 1", got)
	}
	if got := h.metric(t, "jwks_last_success_timestamp_seconds"); got != float64(h.clock.Now().Add(-2*time.Minute).Unix()) {
		t.Errorf("jwks_last_success_timestamp_seconds = %v; want %v (the 304)", got, float64(h.clock.Now().Add(-2*time.Minute).Unix()))
	}
}

func TestParseJWKSFilters(t *testing.T) {
	rs := newRSASigner(t, "rsa-sig")
	es := newECSigner(t, "ec-nouse")
	ed := newEdSigner(t, "ed")
	encKey := newRSASigner(t, "rsa-enc")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privJWK, err := jwkset.NewJWKFromKey(rs.priv, jwkset.JWKOptions{Marshal: jwkset.JWKMarshalOptions{Private: true},
		Metadata: jwkset.JWKMetadataOptions{KID: "rsa-private"}})
	if err != nil {
		t.Fatal(err)
	}
	octJWK, err := jwkset.NewJWKFromKey([]byte("0123456789abcdef0123456789abcdef"), jwkset.JWKOptions{
		Marshal: jwkset.JWKMarshalOptions{Private: true}, Metadata: jwkset.JWKMetadataOptions{KID: "hs", ALG: "HS256"}})
	if err != nil {
		t.Fatal(err)
	}
	ecNoUse := marshalPublic(t, es.priv.Public(), jwkset.JWKMetadataOptions{KID: "ec-nouse"})
	edNoAlg := marshalPublic(t, ed.priv.Public(), jwkset.JWKMetadataOptions{KID: "ed"})
	enc := marshalPublic(t, encKey.priv.Public(), jwkset.JWKMetadataOptions{KID: "rsa-enc", USE: jwkset.UseEnc})
	hsAlg := marshalPublic(t, encKey.priv.Public(), jwkset.JWKMetadataOptions{KID: "rsa-hs", ALG: "HS256"})
	oaep := marshalPublic(t, encKey.priv.Public(), jwkset.JWKMetadataOptions{KID: "rsa-oaep", ALG: "RSA-OAEP"})
	wrongCurve := marshalPublic(t, es.priv.Public(), jwkset.JWKMetadataOptions{KID: "ec-384", ALG: "ES384"})
	encOps := marshalPublic(t, encKey.priv.Public(), jwkset.JWKMetadataOptions{KID: "rsa-ops",
		KEYOPS: []jwkset.KEYOPS{jwkset.KeyOpsEncrypt}})
	verifyOps := marshalPublic(t, encKey.priv.Public(), jwkset.JWKMetadataOptions{KID: "rsa-verify-ops",
		KEYOPS: []jwkset.KEYOPS{jwkset.KeyOpsVerify}})
	weak := marshalPublic(t, &small.PublicKey, jwkset.JWKMetadataOptions{KID: "rsa-1024"})
	xkey := marshalPublic(t, x.PublicKey(), jwkset.JWKMetadataOptions{KID: "x25519"})
	dup := marshalPublic(t, encKey.priv.Public(), jwkset.JWKMetadataOptions{KID: "rsa-sig"})
	broken := rs.jwk(t)
	broken.KID, broken.N = "broken", "!!!"

	body := jwksJSON(t, rs.jwk(t), ecNoUse, edNoAlg, enc, hsAlg, oaep, wrongCurve, encOps, verifyOps, weak, xkey,
		privJWK.Marshal(), octJWK.Marshal(), dup, broken, jwkset.JWKMarshal{KTY: "EC2", KID: "weird"})
	keys, ignored, err := parseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.Marshal().KID)
	}
	if want := []string{"rsa-sig", "ec-nouse", "ed", "rsa-verify-ops"}; !slices.Equal(kids, want) {
		t.Errorf("kept kids %v; want %v", kids, want)
	}
	wantIgnored := "alg not allowed for key: 3, duplicate kid: 1, invalid: 1, key_ops without verify: 1, " +
		"private key material: 1, rsa key shorter than 2048 bits: 1, symmetric (oct): 1, unsupported OKP curve: 1, " +
		"unsupported kty: 1, use is not sig: 1"
	if got := summarizeIgnored(ignored); got != wantIgnored {
		t.Errorf("ignored = %s\nwant      %s", got, wantIgnored)
	}
	for _, k := range keys {
		switch k.Key().(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, []byte:
			t.Errorf("kid %s key = %T; want a public asymmetric key", k.Marshal().KID, k.Key())
		}
	}

	// End to end: the kept keys verify, the ignored ones are unknown kids.
	srv := newJWKSServer(t, serveBody(http.StatusOK, string(body)))
	h := newHarness(t, srv.URL, testConfig(), nil)
	h.fetch(t, metrics.JWKSSuccess)
	ctx := context.Background()
	for _, s := range []signer{rs, es, ed} {
		if err := verify(ctx, h.keys, JWKSAlgorithms(), s.token(t, s.kid)); err != nil {
			t.Errorf("verify %s = %v; want nil", s.kid, err)
		}
	}
	if err := verify(ctx, h.keys, JWKSAlgorithms(), encKey.token(t, "rsa-enc")); !errors.Is(err, ErrUnknownKID) {
		t.Errorf("verify with the enc key = %v; want ErrUnknownKID", err)
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()})
	hs.Header["kid"] = "hs"
	raw, err := hs.SignedString([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	// Even a parser that allowed HS256 finds no key for it.
	if err := verify(ctx, h.keys, []string{"HS256"}, raw); !errors.Is(err, ErrUnknownKID) {
		t.Errorf("verify with the published oct key = %v; want ErrUnknownKID", err)
	}
}

func TestRemoteKeysGeneration(t *testing.T) {
	a, b, c := newECSigner(t, "a"), newECSigner(t, "b"), newECSigner(t, "c")
	b2 := newECSigner(t, "b")
	aNoUse := marshalPublic(t, a.priv.Public(), jwkset.JWKMetadataOptions{KID: "a", ALG: "ES256"})
	tests := []struct {
		name string
		keys []jwkset.JWKMarshal
		bump bool
	}{
		{"same set", []jwkset.JWKMarshal{a.jwk(t), b.jwk(t)}, false},
		{"reordered", []jwkset.JWKMarshal{b.jwk(t), a.jwk(t)}, false},
		{"key added", []jwkset.JWKMarshal{a.jwk(t), b.jwk(t), c.jwk(t)}, false},
		{"key removed", []jwkset.JWKMarshal{a.jwk(t)}, true},
		{"kid reused for new material", []jwkset.JWKMarshal{a.jwk(t), b2.jwk(t)}, true},
		{"use dropped", []jwkset.JWKMarshal{aNoUse, b.jwk(t)}, true},
		{"replaced entirely", []jwkset.JWKMarshal{c.jwk(t)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, serveKeys(t, a.jwk(t), b.jwk(t)))
			h := newHarness(t, srv.URL, testConfig(), nil)
			h.fetch(t, metrics.JWKSSuccess)
			before := h.keys.Generation()
			srv.set(serveKeys(t, tt.keys...))
			h.fetch(t, metrics.JWKSSuccess)
			if got := h.keys.Generation() != before; got != tt.bump {
				t.Errorf("generation bumped = %v; want %v", got, tt.bump)
			}
		})
	}
}

func TestRemoteKeysStorage(t *testing.T) {
	es, ed := newECSigner(t, "k1"), newEdSigner(t, "k2")
	srv := newJWKSServer(t, serveKeys(t, es.jwk(t), ed.jwk(t)))
	h := newHarness(t, srv.URL, testConfig(), nil)
	st := h.keys.kf.Storage()
	ctx := context.Background()

	if _, err := st.KeyReadAll(ctx); !errors.Is(err, ErrNoKeys) {
		t.Errorf("KeyReadAll before fetch = %v; want ErrNoKeys", err)
	}
	if _, err := st.KeyRead(ctx, "k1"); !errors.Is(err, ErrNoKeys) {
		t.Errorf("KeyRead before fetch = %v; want ErrNoKeys", err)
	}
	if m, err := st.Marshal(ctx); err != nil || m.Keys == nil || len(m.Keys) != 0 {
		t.Errorf("Marshal before fetch = %v, %v; want empty keys", m, err)
	}
	h.fetch(t, metrics.JWKSSuccess)

	if err := st.KeyWrite(ctx, jwkset.JWK{}); !errors.Is(err, errReadOnly) {
		t.Errorf("KeyWrite = %v; want read-only", err)
	}
	if _, err := st.KeyDelete(ctx, "k1"); !errors.Is(err, errReadOnly) {
		t.Errorf("KeyDelete = %v; want read-only", err)
	}
	if err := st.KeyReplaceAll(ctx, nil); !errors.Is(err, errReadOnly) {
		t.Errorf("KeyReplaceAll = %v; want read-only", err)
	}
	if all, err := st.KeyReadAll(ctx); err != nil || len(all) != 2 {
		t.Errorf("KeyReadAll = %d keys, %v; want 2", len(all), err)
	}
	for name, f := range map[string]func(context.Context) (json.RawMessage, error){
		"JSON": st.JSON, "JSONPublic": st.JSONPublic, "JSONPrivate": st.JSONPrivate,
	} {
		raw, err := f(ctx)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var set jwkset.JWKSMarshal
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(set.Keys) != 2 || set.Keys[0].KID != "k1" || set.Keys[1].KID != "k2" || set.Keys[0].D != "" {
			t.Errorf("%s = %s; want the two public keys", name, raw)
		}
	}
	m, err := st.MarshalWithOptions(ctx, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil || len(m.Keys) != 2 {
		t.Errorf("MarshalWithOptions = %d keys, %v; want 2", len(m.Keys), err)
	}
}

func TestRemoteKeysLogsStateChangesOnly(t *testing.T) {
	es := newECSigner(t, "k1")
	srv := newJWKSServer(t, serveKeys(t, es.jwk(t)))
	core, logs := observer.New(zapcore.DebugLevel)
	h := newHarness(t, srv.URL+"/jwks.json?token=s3cret", testConfig(), zap.New(core))
	h.fetch(t, metrics.JWKSSuccess)
	srv.set(serveBody(http.StatusInternalServerError, ""))
	for range 3 {
		h.fetch(t, metrics.JWKSError)
	}
	srv.set(serveKeys(t, es.jwk(t)))
	h.fetch(t, metrics.JWKSSuccess)
	h.fetch(t, metrics.JWKSSuccess)
	for range 50 {
		_ = verify(context.Background(), h.keys, JWKSAlgorithms(), es.token(t, strings.Repeat("x", 100)))
	}

	count := func(msg string, lvl zapcore.Level) int {
		return logs.Filter(func(e observer.LoggedEntry) bool { return e.Message == msg && e.Level == lvl }).Len()
	}
	for _, c := range []struct {
		msg  string
		lvl  zapcore.Level
		want int
	}{
		{"jwks keys loaded", zapcore.InfoLevel, 1},
		{"jwks refresh failed; serving the last good keys", zapcore.WarnLevel, 1},
		{"jwks refresh failed again", zapcore.DebugLevel, 2},
		{"jwks refresh recovered", zapcore.InfoLevel, 1},
	} {
		if got := count(c.msg, c.lvl); got != c.want {
			t.Errorf("%q logged %d times; want %d", c.msg, got, c.want)
		}
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if s := fmt.Sprint(f.String, f.Interface); strings.Contains(s, "s3cret") {
				t.Errorf("log %q field %s = %s; want it without the URL query", e.Message, f.Key, s)
			}
			if f.Key == "url" && f.String != srv.URL+"/jwks.json" {
				t.Errorf("url = %q; want it without query", f.String)
			}
		}
	}

	// A transport error carries the URL: it must be redacted too.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	core2, logs2 := observer.New(zapcore.DebugLevel)
	h2 := newHarness(t, deadURL+"/jwks?token=s3cret", testConfig(), zap.New(core2))
	h2.fetch(t, metrics.JWKSError)
	for _, e := range logs2.All() {
		for _, f := range e.Context {
			if f.Interface != nil && strings.Contains(fmt.Sprint(f.Interface), "s3cret") {
				t.Errorf("log %q field %s = %v; want it without the URL query", e.Message, f.Key, f.Interface)
			}
		}
	}
	if err := h2.keys.Ready(); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Ready = %v; want an error without the URL query", err)
	}
}

func TestLoggableKID(t *testing.T) {
	tests := []struct{ kid, want string }{
		{"ins_2kG0aL8", `"ins_2kG0aL8"`},
		{"a\nb\"c", `"a\nb\"c"`},
		{strings.Repeat("k", 40), `"` + strings.Repeat("k", 32) + `"...`},
	}
	for _, tt := range tests {
		if got := loggableKID(tt.kid); got != tt.want {
			t.Errorf("loggableKID(%q) = %s; want %s", tt.kid, got, tt.want)
		}
	}
}

func TestJWKSAlgorithms(t *testing.T) {
	algs := JWKSAlgorithms()
	for _, a := range algs {
		if strings.HasPrefix(a, "HS") || a == "none" {
			t.Errorf("JWKSAlgorithms() contains %s; want asymmetric algorithms only", a)
		}
	}
	algs[0] = "HS256"
	if JWKSAlgorithms()[0] != "RS256" {
		t.Error("JWKSAlgorithms shares its slice with callers")
	}
}

// FuzzParseJWKS feeds arbitrary JWKS bodies (a compromised or broken endpoint)
// to the parser: it must not panic, and whatever it keeps is a public
// asymmetric key with a unique kid.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"e"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","kid":"r","use":"sig"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, _, err := parseJWKS(body)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			switch k.Key().(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				t.Fatalf("kept key type = %T; want an RSA, EC or Ed25519 public key", k.Key())
			}
			if kid := k.Marshal().KID; kid != "" {
				if seen[kid] {
					t.Fatalf("kid %q kept twice; want the first only", kid)
				}
				seen[kid] = true
			}
		}
	})
}

// FuzzRefreshAfter checks that no Cache-Control or Expires value schedules a refresh
// outside [min_refresh_interval, max_refresh_interval].
func FuzzRefreshAfter(f *testing.F) {
	for _, s := range []string{"max-age=0", "no-cache", "max-age=99999999999999999999", "s-maxage=10, max-age=x",
		`max-age="60"`, "max-age=-1", "", "must-revalidate", "Sun, 06 Nov 1994 08:49:37 GMT",
		"Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(s)
	}
	cfg := testConfig()
	f.Fuzz(func(t *testing.T, cc string) {
		now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		for _, h := range []http.Header{{"Cache-Control": {cc}}, {"Expires": {cc}}} {
			if d := refreshAfter(h, cfg, now); d < cfg.MinRefreshInterval || d > cfg.MaxRefreshInterval {
				t.Fatalf("refreshAfter(%v) = %s; want within [%s, %s]", h, d, cfg.MinRefreshInterval, cfg.MaxRefreshInterval)
			}
		}
	})
}

// TestRemoteKeysGenerationAfterSnapshot pins the order of a refresh that
// removes a key: the new key set is installed before the generation moves.
// A verification that reads the new generation must not still find the
// removed key, or its result would be cached under the new generation and
// served after the key was removed. The log line of the rotation is written
// between the two steps, so a hook on it sees the intermediate state.
func TestRemoteKeysGenerationAfterSnapshot(t *testing.T) {
	a, b := newECSigner(t, "a"), newECSigner(t, "b")
	srv := newJWKSServer(t, serveKeys(t, a.jwk(t), b.jwk(t)))
	var (
		h        *harness
		before   uint64
		checked  atomic.Bool
		violated atomic.Bool
	)
	tokA := a.token(t, "a")
	hook := zap.Hooks(func(e zapcore.Entry) error {
		if e.Message != "jwks keys changed" || h == nil {
			return nil
		}
		checked.Store(true)
		if h.keys.Generation() != before && verify(context.Background(), h.keys, JWKSAlgorithms(), tokA) == nil {
			violated.Store(true)
		}
		return nil
	})
	h = newHarness(t, srv.URL, testConfig(), zaptest.NewLogger(t, zaptest.WrapOptions(hook)))
	h.fetch(t, metrics.JWKSSuccess)
	before = h.keys.Generation()
	srv.set(serveKeys(t, b.jwk(t)))
	h.fetch(t, metrics.JWKSSuccess)
	if !checked.Load() {
		t.Fatal("the rotation was not logged; the test saw nothing")
	}
	if violated.Load() {
		t.Error("generation bumped while the removed key still verified: a verification could be cached under the new generation")
	}
	if h.keys.Generation() == before {
		t.Error("generation not bumped after a key was removed")
	}
	if err := verify(context.Background(), h.keys, JWKSAlgorithms(), tokA); err == nil {
		t.Error("removed key still verifies")
	}
}
