package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Defaults of JWKSConfig, applied by ApplyDefaults to fields left zero.
const (
	DefaultJWKSRefreshInterval           = 5 * time.Minute
	DefaultJWKSUnknownKIDRefreshInterval = 30 * time.Second
	DefaultJWKSMaxStale                  = 24 * time.Hour
	DefaultJWKSFetchTimeout              = 5 * time.Second
	DefaultJWKSMinRefreshInterval        = time.Minute
	DefaultJWKSMaxRefreshInterval        = time.Hour
	DefaultJWKSUnknownKIDWait            = time.Second
	DefaultJWKSMaxBodyBytes              = 1 << 20
)

// Retry schedule while fetches fail: the wait starts at backoffMin and doubles
// up to backoffMax, each wait jittered between half and all of it.
const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second
)

// maxLoggedKID bounds how much of an attacker-chosen kid reaches a log line.
const maxLoggedKID = 32

// minRSABits is the smallest RSA modulus accepted from a JWKS.
const minRSABits = 2048

// errReadOnly is returned by the mutating jwkset.Storage methods of the
// remote key set: only the fetcher replaces keys.
var errReadOnly = errors.New("read-only key set: keys change only by fetching the jwk_url")

// JWKSConfig tunes how keys are fetched from a jwk_url (YAML auth.jwks). It
// applies to every remote key source. Durations are Go duration strings in
// YAML ("5m", "30s"); a bare number is a decoding error, never nanoseconds.
// The zero value means "all defaults" once ApplyDefaults has run.
type JWKSConfig struct {
	// RefreshInterval is how often keys are refetched when the response
	// says nothing usable about caching (no Cache-Control max-age, no-cache,
	// must-revalidate, no Expires). Default 5m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// UnknownKIDRefreshInterval is the least time between two refreshes
	// triggered by tokens naming an unknown kid. The first one is allowed at
	// once. Default 30s.
	UnknownKIDRefreshInterval time.Duration `yaml:"unknown_kid_refresh_interval"`
	// MaxStale is how long the last good keys keep being used after the last
	// successful fetch while refreshes fail. Past it, tokens are refused with
	// NoUsableKeys. Default 24h.
	MaxStale time.Duration `yaml:"max_stale"`
	// FetchTimeout bounds one whole fetch: connect, TLS, headers and body.
	// Default 5s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MinRefreshInterval is the lower clamp of a Cache-Control max-age or an
	// Expires, and the interval used where Hasura refetches at once
	// (no-cache, no-store, must-revalidate without max-age, max-age=0, an
	// Expires in the past). Default 1m.
	MinRefreshInterval time.Duration `yaml:"min_refresh_interval"`
	// MaxRefreshInterval is the upper clamp of a Cache-Control max-age or
	// an Expires.
	// Default 1h.
	MaxRefreshInterval time.Duration `yaml:"max_refresh_interval"`
	// UnknownKIDWait is the longest a request waits for the refresh its
	// unknown kid triggered (or joined) before it is refused. Default 1s.
	UnknownKIDWait time.Duration `yaml:"unknown_kid_wait"`
	// MaxBodyBytes caps the JWKS response body; larger answers are refused.
	// Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// ApplyDefaults sets every zero field to its default. Negative values are left
// for Validate to report.
func (c *JWKSConfig) ApplyDefaults() {
	setDefault(&c.RefreshInterval, DefaultJWKSRefreshInterval)
	setDefault(&c.UnknownKIDRefreshInterval, DefaultJWKSUnknownKIDRefreshInterval)
	setDefault(&c.MaxStale, DefaultJWKSMaxStale)
	setDefault(&c.FetchTimeout, DefaultJWKSFetchTimeout)
	setDefault(&c.MinRefreshInterval, DefaultJWKSMinRefreshInterval)
	setDefault(&c.MaxRefreshInterval, DefaultJWKSMaxRefreshInterval)
	setDefault(&c.UnknownKIDWait, DefaultJWKSUnknownKIDWait)
	setDefault(&c.MaxBodyBytes, DefaultJWKSMaxBodyBytes)
}

func setDefault[T time.Duration | int64](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

// Validate reports every problem of c at once (errors.Join), each naming its
// field under the prefix field (normally "auth.jwks"). It does no I/O. Call
// it after ApplyDefaults: a zero field is reported as not positive.
func (c JWKSConfig) Validate(field string) error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", field, name, fmt.Sprintf(format, args...)))
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"refresh_interval", c.RefreshInterval},
		{"unknown_kid_refresh_interval", c.UnknownKIDRefreshInterval},
		{"max_stale", c.MaxStale},
		{"fetch_timeout", c.FetchTimeout},
		{"min_refresh_interval", c.MinRefreshInterval},
		{"max_refresh_interval", c.MaxRefreshInterval},
		{"unknown_kid_wait", c.UnknownKIDWait},
	}
	allPositive := true
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be positive")
			allPositive = false
		}
	}
	if c.MaxBodyBytes <= 0 {
		bad("max_body_bytes", "must be positive")
	}
	if !allPositive {
		return errors.Join(errs...)
	}
	if c.MinRefreshInterval > c.MaxRefreshInterval {
		bad("min_refresh_interval", "must not exceed max_refresh_interval (%s)", c.MaxRefreshInterval)
	} else if c.RefreshInterval < c.MinRefreshInterval || c.RefreshInterval > c.MaxRefreshInterval {
		bad("refresh_interval", "must be between min_refresh_interval (%s) and max_refresh_interval (%s)",
			c.MinRefreshInterval, c.MaxRefreshInterval)
	}
	// Keys must not expire between two scheduled refreshes of a healthy JWKS.
	if c.MaxStale <= c.MaxRefreshInterval {
		bad("max_stale", "must be longer than max_refresh_interval (%s), or healthy keys expire between refreshes",
			c.MaxRefreshInterval)
	}
	return errors.Join(errs...)
}

// JWKSAlgorithms returns the signature algorithms accepted for tokens verified
// with keys from a jwk_url: asymmetric only, so a published symmetric key or
// an HS/RS confusion can never verify a token. The caller pins its parser to
// this list (jwt.WithValidMethods). It returns a fresh slice on every call.
func JWKSAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// RemoteKeysOptions configures NewRemoteKeys.
type RemoteKeysOptions struct {
	// URL is the jwk_url (http or https). Required.
	URL string
	// Name labels this source in metrics and logs; it must come from the
	// configuration (the issuer or the secret's index), never from a token.
	// Empty means the URL's host.
	Name string
	// Config tunes fetching; zero fields take their defaults.
	Config JWKSConfig
	// Client fetches the JWKS. Nil means a client with explicit dial, TLS,
	// response-header and overall timeouts derived from Config.FetchTimeout.
	// Each fetch is also bounded by Config.FetchTimeout whatever the client.
	Client *http.Client
	// Logger receives refresh state changes; nil discards them.
	Logger *zap.Logger
	// Metrics receives the jwks_* metrics; nil records nothing.
	Metrics *metrics.Metrics
	// Now is the clock for staleness and rate limiting; nil means time.Now.
	Now func() time.Time
}

// RemoteKeys is the KeySource of a jwk_url. Create it with NewRemoteKeys and
// start its refresh loop with Run; until the first successful fetch it holds
// no keys and every key lookup fails with ErrNoKeys.
//
// Verification reads an immutable snapshot through an atomic pointer, so it
// never waits for a lock a refresh holds. A token naming an unknown kid may
// trigger one refresh (single-flight, rate limited by
// UnknownKIDRefreshInterval) and waits for it at most UnknownKIDWait.
//
// All methods are safe for concurrent use.
type RemoteKeys struct {
	url     string // as configured, query included; never logged
	logURL  string // without userinfo, query and fragment
	name    string
	cfg     JWKSConfig
	client  *http.Client
	log     *zap.Logger
	metrics *metrics.Metrics
	now     func() time.Time
	kf      keyfunc.Keyfunc

	snap       atomic.Pointer[keySnapshot] // never nil after NewRemoteKeys
	generation atomic.Uint64
	stale      atomic.Bool
	lastErr    atomic.Pointer[string] // why the last fetch failed; nil after a success
	fetched    atomic.Bool            // a fetch has ended (success or failure)

	// notify is closed and replaced whenever a snapshot is published.
	notifyMu sync.Mutex
	notify   chan struct{}

	// fetchMu serializes fetches and guards the fields below it.
	fetchMu      sync.Mutex
	etag         string
	failing      bool
	ignoredNote  string // the last logged summary of ignored keys
	loadedBefore bool

	// kidMu guards the unknown-kid single flight and its rate limiter.
	kidMu      sync.Mutex
	runCtx     context.Context // nil before Run and after it returns
	kidFlight  chan struct{}   // closed when the in-flight kid refresh ends; nil when none
	lastKidRun time.Time       // zero: the next kid refresh may start at once
	kidWG      sync.WaitGroup

	// Retry schedule; constants in production, shortened by tests.
	backoffMin, backoffMax time.Duration
	// afterFetch, when set (tests), observes every fetch result.
	afterFetch func(result string)
}

// keySnapshot is one immutable key set. It is never modified after being
// published; a refresh builds a new one.
type keySnapshot struct {
	byKID   map[string]jwkset.JWK
	keys    []jwkset.JWK         // every key, in JWKS order, including those without kid
	mem     *jwkset.MemoryJWKSet // the same keys, for the JSON/Marshal methods
	fetched time.Time            // last successful fetch (or 304) of these keys; zero if none
}

func (s *keySnapshot) empty() bool { return len(s.keys) == 0 }

func newSnapshot(keys []jwkset.JWK, fetched time.Time) *keySnapshot {
	s := &keySnapshot{byKID: make(map[string]jwkset.JWK, len(keys)), keys: keys, mem: jwkset.NewMemoryStorage(),
		fetched: fetched}
	for _, k := range keys {
		if kid := k.Marshal().KID; kid != "" {
			s.byKID[kid] = k
		}
	}
	// MemoryJWKSet.KeyReplaceAll cannot fail; the copy keeps s.keys unshared.
	_ = s.mem.KeyReplaceAll(context.Background(), slices.Clone(keys))
	return s
}

// NewRemoteKeys checks o and returns a RemoteKeys holding no keys. It does no
// I/O: call Run to fetch. The config is completed with defaults and validated.
func NewRemoteKeys(o RemoteKeysOptions) (*RemoteKeys, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("jwk_url: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("jwk_url: must be an absolute http or https URL")
	}
	cfg := o.Config
	cfg.ApplyDefaults()
	if err := cfg.Validate("auth.jwks"); err != nil {
		return nil, err
	}
	safe := *u
	safe.User, safe.RawQuery, safe.ForceQuery, safe.Fragment, safe.RawFragment = nil, "", false, "", ""
	k := &RemoteKeys{
		url:        o.URL,
		logURL:     safe.String(),
		name:       o.Name,
		cfg:        cfg,
		client:     o.Client,
		log:        o.Logger,
		metrics:    o.Metrics,
		now:        o.Now,
		notify:     make(chan struct{}),
		backoffMin: backoffMin,
		backoffMax: backoffMax,
	}
	if k.name == "" {
		k.name = u.Host
	}
	if k.client == nil {
		k.client = newJWKSClient(cfg.FetchTimeout)
	}
	if k.log == nil {
		k.log = zap.NewNop()
	}
	k.log = k.log.Named("jwks").With(zap.String("issuer", k.name), zap.String("url", k.logURL))
	if k.now == nil {
		k.now = time.Now
	}
	k.snap.Store(newSnapshot(nil, time.Time{}))
	// No use whitelist: keys without "use" are valid signature keys (Hasura
	// #10774 broke on exactly that), and encryption keys never reach the
	// snapshot, see usableKey.
	k.kf, err = keyfunc.New(keyfunc.Options{Storage: remoteStorage{k}})
	if err != nil {
		return nil, err
	}
	k.metrics.InitIssuer(k.name)
	return k, nil
}

// newJWKSClient builds the default fetch client: every phase has a deadline,
// redirects are few and never downgrade https to http.
func newJWKSClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          4,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to http refused")
			}
			return nil
		},
	}
}

// Keyfunc returns the key function for one request. A token with a known kid
// gets that key; without kid, golang-jwt tries every held key. An unknown kid
// may wait for one refresh, bounded by UnknownKIDWait and ctx. Errors wrap
// ErrNoKeys or ErrUnknownKID. The caller's parser must pin the algorithms to
// JWKSAlgorithms.
func (k *RemoteKeys) Keyfunc(ctx context.Context) jwt.Keyfunc {
	return k.kf.KeyfuncCtx(ctx)
}

// Ready reports nil while usable keys are held, else an error wrapping
// ErrNoKeys that says why (never fetched, last error, or too stale).
func (k *RemoteKeys) Ready() error {
	if k.usable() != nil {
		return nil
	}
	why := "no successful fetch yet"
	if s := k.snap.Load(); !s.fetched.IsZero() {
		why = fmt.Sprintf("last successful fetch %s ago exceeds max_stale %s", k.now().Sub(s.fetched).Round(time.Second),
			k.cfg.MaxStale)
	}
	if e := k.lastErr.Load(); e != nil {
		why += "; last error: " + *e
	}
	return fmt.Errorf("jwks %s: %w: %s", k.name, ErrNoKeys, why)
}

// Generation increases whenever a refresh removes a key or changes the
// material of a kept kid, and when keys are dropped for being older than
// max_stale. Adding keys does not change it.
func (k *RemoteKeys) Generation() uint64 {
	k.usable() // drops expired keys, which bumps the generation
	return k.generation.Load()
}

// WaitReady blocks until usable keys are held (nil) or ctx ends (ctx.Err()).
// Run must be running for it to succeed.
func (k *RemoteKeys) WaitReady(ctx context.Context) error {
	for {
		k.notifyMu.Lock()
		ch := k.notify
		k.notifyMu.Unlock()
		if k.usable() != nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run fetches the keys at once and then keeps them fresh until ctx is done:
// after a success it waits refresh_interval, or what the response's
// Cache-Control or Expires says, clamped to [min_refresh_interval,
// max_refresh_interval] (see refreshAfter); after a
// failure it retries with jittered exponential backoff (250ms up to 30s)
// while keeping the last good keys up to max_stale. Run returns when ctx is
// done, after any fetch it started has ended. Call it once.
func (k *RemoteKeys) Run(ctx context.Context) {
	k.kidMu.Lock()
	k.runCtx = ctx
	k.kidMu.Unlock()
	defer func() {
		k.kidMu.Lock()
		k.runCtx = nil
		k.kidMu.Unlock()
		k.kidWG.Wait()
	}()

	backoff := k.backoffMin
	for {
		result, next := k.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		switch result {
		case metrics.JWKSSuccess, metrics.JWKSNotModified:
			backoff = k.backoffMin
			wait = jitterDown(next)
		default:
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, k.backoffMax)
		}
		// Wake up when the held keys pass max_stale, so they are dropped (and
		// the generation bumped) even when nobody asks for them.
		if s := k.snap.Load(); !s.empty() {
			if left := s.fetched.Add(k.cfg.MaxStale).Sub(k.now()); left < wait {
				wait = max(left, 0)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		k.usable()
	}
}

// jitterDown shortens d by up to 10% so that many proxies started together
// spread their refreshes.
func jitterDown(d time.Duration) time.Duration {
	return d - rand.N(d/10+1)
}

// refreshAfter computes how long fresh keys may be kept before the next
// scheduled refresh, deciding from the response headers the way Hasura's
// determineJwkExpiryLifetime does (server/src-lib/Hasura/Server/Auth/JWT.hs),
// with every answer clamped to [MinRefreshInterval, MaxRefreshInterval]:
//
//   - Cache-Control with must-revalidate: its max-age (else s-maxage), or
//     at once when it has none;
//   - else Cache-Control with no-cache or no-store: at once;
//   - else Cache-Control with max-age (else s-maxage): that many seconds;
//   - else (no Cache-Control, or one without any of those) Expires: the
//     time left until that date, measured on now;
//   - else, or when the max-age, s-maxage or Expires value that decides
//     is malformed: RefreshInterval.
//
// "At once" and an Expires in the past mean MinRefreshInterval: Hasura
// refetches about every second then, the proxy does not. Hasura keeps the
// previous expiry where RefreshInterval is used (and so never refreshes keys
// that came without cache headers).
func refreshAfter(h http.Header, c JWKSConfig, now time.Time) time.Duration {
	clamp := func(d time.Duration) time.Duration {
		return min(max(d, c.MinRefreshInterval), c.MaxRefreshInterval)
	}
	if lines := h.Values("Cache-Control"); len(lines) > 0 {
		cc := parseCacheControl(lines)
		age, broken := cc.maxAge, cc.maxAgeBroken
		if !cc.hasMaxAge {
			age, broken = cc.sMaxAge, cc.sMaxAgeBroken
		}
		switch {
		case broken:
			// Hasura: a max-age it cannot read makes the whole answer
			// "no information"; Expires is not consulted.
			return c.RefreshInterval
		case cc.mustRevalidate:
			if age < 0 {
				return c.MinRefreshInterval
			}
			return clamp(time.Duration(age) * time.Second)
		case cc.noCache:
			return c.MinRefreshInterval
		case age >= 0:
			return clamp(time.Duration(age) * time.Second)
		}
	}
	if v := h.Get("Expires"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return c.RefreshInterval
		}
		left := t.Sub(now)
		if left <= 0 {
			return c.MinRefreshInterval
		}
		return clamp(left)
	}
	return c.RefreshInterval
}

// cacheControl is what refreshAfter reads of Cache-Control. Ages are -1
// when absent; a Broken flag marks a value that is not a number.
type cacheControl struct {
	mustRevalidate, noCache     bool
	hasMaxAge                   bool
	maxAge, sMaxAge             int64
	maxAgeBroken, sMaxAgeBroken bool
}

// parseCacheControl reads the directives refreshAfter uses from every
// Cache-Control line. Names are case-insensitive (RFC 9111 §5.2), values
// may be quoted, the first max-age (and the first s-maxage) counts, and a
// directive without a value is ignored. A value is read as Hasura's
// Data/Parser/CacheControl.hs reads it: leading digits, anything after them
// ignored; a value that does not start with a digit is broken.
func parseCacheControl(lines []string) cacheControl {
	cc := cacheControl{maxAge: -1, sMaxAge: -1}
	hasSMaxAge := false
	for _, line := range lines {
		for _, part := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch name {
			case "must-revalidate":
				cc.mustRevalidate = true
			case "no-cache", "no-store":
				cc.noCache = true
			case "max-age", "s-maxage":
				if value == "" {
					continue
				}
				if name == "max-age" && !cc.hasMaxAge {
					cc.hasMaxAge = true
					cc.maxAge, cc.maxAgeBroken = deltaSeconds(value)
				} else if name == "s-maxage" && !hasSMaxAge {
					hasSMaxAge = true
					cc.sMaxAge, cc.sMaxAgeBroken = deltaSeconds(value)
				}
			}
		}
	}
	return cc
}

// deltaSeconds reads the leading digits of v. Values beyond 2^31 seconds
// are 2^31 (RFC 9111 §1.2.2), far above any clamp; no digits is broken.
func deltaSeconds(v string) (n int64, broken bool) {
	i := 0
	for i < len(v) && '0' <= v[i] && v[i] <= '9' {
		if n < 1<<31 {
			n = n*10 + int64(v[i]-'0')
		}
		i++
	}
	if i == 0 {
		return -1, true
	}
	return min(n, 1<<31), false
}

// fetchError is a failed fetch with the metrics result it counts as.
type fetchError struct {
	result string
	err    error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// fetch performs one fetch under fetchMu, installs the keys it got, records
// metrics and logs state changes. It returns the metrics result and, on
// success, how long until the next scheduled refresh.
func (k *RemoteKeys) fetch(ctx context.Context) (result string, next time.Duration) {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()

	next, err := k.fetchLocked(ctx)
	if ctx.Err() != nil {
		// Shutting down (the fetch timeout is a child context, so this is
		// not a timeout): neither a success nor a failure of the JWKS.
		return metrics.JWKSError, 0
	}
	result = metrics.JWKSSuccess
	if err != nil {
		result = metrics.JWKSError
		if fe, ok := errors.AsType[*fetchError](err); ok {
			result = fe.result
		}
	} else if next < 0 {
		result, next = metrics.JWKSNotModified, -next
	}
	k.metrics.JWKSRefresh(k.name, result)

	held := k.usable()
	if err == nil && held == nil {
		// Only a clock jumping past max_stale during the fetch gets here.
		err = errors.New("fetch jwks: keys expired as they were installed")
	}
	if err != nil {
		msg := err.Error()
		k.lastErr.Store(&msg)
		k.stale.Store(held != nil)
		k.metrics.JWKSStale(k.name, held != nil)
		if !k.failing {
			k.failing = true
			if held != nil {
				k.log.Warn("jwks refresh failed; serving the last good keys", zap.String("result", result),
					zap.Int("keys", len(held.keys)), zap.Time("last_success", held.fetched), zap.Error(err))
			} else {
				k.log.Error("jwks fetch failed; no keys, tokens are refused until a fetch succeeds",
					zap.String("result", result), zap.Error(err))
			}
		} else if ce := k.log.Check(zap.DebugLevel, "jwks refresh failed again"); ce != nil {
			ce.Write(zap.String("result", result), zap.Error(err))
		}
	} else {
		k.lastErr.Store(nil)
		k.stale.Store(false)
		k.metrics.JWKSStale(k.name, false)
		k.metrics.JWKSLastSuccess(k.name, held.fetched)
		switch {
		case k.failing:
			k.log.Info("jwks refresh recovered", zap.String("result", result), zap.Int("keys", len(held.keys)))
		case !k.loadedBefore:
			k.log.Info("jwks keys loaded", zap.Int("keys", len(held.keys)))
		}
		k.failing, k.loadedBefore = false, true
	}
	if !k.fetched.Swap(true) && err != nil {
		// Wake WaitFetched: the first attempt failed.
		k.signal()
	}
	if k.afterFetch != nil {
		k.afterFetch(result)
	}
	return result, next
}

// WaitFetched blocks until usable keys are held (nil), or the first fetch
// has failed without usable keys (an error saying from where and why, the
// URL without credentials or query), or ctx ends (ctx.Err()). Unlike
// WaitReady it does not wait through the retries: it answers within one
// fetch_timeout of Run starting. Run must be running.
func (k *RemoteKeys) WaitFetched(ctx context.Context) error {
	for {
		k.notifyMu.Lock()
		ch := k.notify
		k.notifyMu.Unlock()
		if k.usable() != nil {
			return nil
		}
		if k.fetched.Load() {
			why := "no keys"
			if e := k.lastErr.Load(); e != nil {
				why = *e
			}
			return fmt.Errorf("keys could not be fetched from %s: %s", k.logURL, why)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fetchLocked does the HTTP work of fetch. A negative duration means 304 Not
// Modified with the next refresh after -d.
func (k *RemoteKeys) fetchLocked(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return 0, fmt.Errorf("fetch jwks: %w", redactURL(err, k.logURL))
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	req.Header.Set("User-Agent", "hasura-auth-proxy")
	held := k.usable()
	if k.etag != "" && held != nil {
		req.Header.Set("If-None-Match", k.etag)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetch jwks: %w", redactURL(err, k.logURL))
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotModified && held != nil && req.Header.Get("If-None-Match") != "":
		// Same keys: only their freshness changes.
		k.publish(held.keys, k.now())
		return -refreshAfter(resp.Header, k.cfg, k.now()), nil
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("fetch jwks: unexpected status %d", resp.StatusCode)
	}
	if resp.ContentLength > k.cfg.MaxBodyBytes {
		return 0, &fetchError{metrics.JWKSTooLarge,
			fmt.Errorf("fetch jwks: body of %d bytes exceeds max_body_bytes %d", resp.ContentLength, k.cfg.MaxBodyBytes)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, k.cfg.MaxBodyBytes+1))
	if err != nil {
		return 0, fmt.Errorf("fetch jwks: read body: %w", redactURL(err, k.logURL))
	}
	if int64(len(body)) > k.cfg.MaxBodyBytes {
		return 0, &fetchError{metrics.JWKSTooLarge,
			fmt.Errorf("fetch jwks: body exceeds max_body_bytes %d", k.cfg.MaxBodyBytes)}
	}
	keys, ignored, err := parseJWKS(body)
	if err != nil {
		return 0, err
	}
	if note := summarizeIgnored(ignored); note != k.ignoredNote {
		k.ignoredNote = note
		if note != "" {
			k.log.Warn("jwks keys ignored", zap.String("ignored", note), zap.Int("usable", len(keys)))
		}
	}
	if len(keys) == 0 {
		return 0, &fetchError{metrics.JWKSEmpty, errors.New("fetch jwks: no usable signature keys in the response")}
	}
	k.etag = resp.Header.Get("ETag")
	k.publish(keys, k.now())
	return refreshAfter(resp.Header, k.cfg, k.now()), nil
}

// redactURL replaces the URL inside a *url.Error (which may carry a query
// string or credentials) with the loggable one.
func redactURL(err error, safe string) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return &url.Error{Op: ue.Op, URL: safe, Err: ue.Err}
	}
	return err
}

// parseJWKS decodes a JWK Set and keeps only public asymmetric signature
// keys. ignored counts the dropped keys by reason.
func parseJWKS(body []byte) (keys []jwkset.JWK, ignored map[string]int, err error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("fetch jwks: decode: %w", err)
	}
	ignored = map[string]int{}
	seen := map[string]bool{}
	for _, m := range set.Keys {
		if why := unusableKey(m); why != "" {
			ignored[why]++
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: false}, jwkset.JWKValidateOptions{})
		if err != nil {
			ignored["invalid"]++
			continue
		}
		if why := unusableMaterial(jwk); why != "" {
			ignored[why]++
			continue
		}
		if kid := m.KID; kid != "" {
			if seen[kid] {
				ignored["duplicate kid"]++
				continue
			}
			seen[kid] = true
		}
		keys = append(keys, jwk)
	}
	return keys, ignored, nil
}

// unusableKey says why a JWK must not verify tokens ("" when it may), from its
// JSON members alone.
func unusableKey(m jwkset.JWKMarshal) string {
	switch {
	case m.KTY == jwkset.KtyOct:
		return "symmetric (oct)"
	case m.KTY != jwkset.KtyRSA && m.KTY != jwkset.KtyEC && m.KTY != jwkset.KtyOKP:
		return "unsupported kty"
	case m.KTY == jwkset.KtyOKP && m.CRV != jwkset.CrvEd25519:
		return "unsupported OKP curve"
	// A JWKS is public: a private key published in it can be used by anyone
	// to sign tokens, so the whole key is refused, not only its private part.
	case m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.OTH) > 0 || m.K != "":
		return "private key material"
	case m.USE != "" && m.USE != jwkset.UseSig:
		return "use is not sig"
	case len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify):
		return "key_ops without verify"
	case m.ALG != "" && !algFitsKey(string(m.ALG), m):
		return "alg not allowed for key"
	}
	return ""
}

// algFitsKey reports whether a JWK's alg is an allowed JWKS algorithm for its
// key type (and curve).
func algFitsKey(alg string, m jwkset.JWKMarshal) bool {
	switch m.KTY {
	case jwkset.KtyRSA:
		return slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg)
	case jwkset.KtyEC:
		return (alg == "ES256" && m.CRV == jwkset.CrvP256) || (alg == "ES384" && m.CRV == jwkset.CrvP384) ||
			(alg == "ES512" && m.CRV == jwkset.CrvP521)
	case jwkset.KtyOKP:
		return alg == "EdDSA"
	}
	return false
}

// unusableMaterial checks the parsed key itself.
func unusableMaterial(jwk jwkset.JWK) string {
	switch key := jwk.Key().(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return "rsa key shorter than 2048 bits"
		}
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() && key.Curve != elliptic.P384() && key.Curve != elliptic.P521() {
			return "unsupported EC curve"
		}
	case ed25519.PublicKey:
	default:
		return "unsupported key"
	}
	return ""
}

func summarizeIgnored(ignored map[string]int) string {
	parts := make([]string, 0, len(ignored))
	for why, n := range ignored {
		parts = append(parts, fmt.Sprintf("%s: %d", why, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// publish installs a new snapshot of keys, bumping the generation when a
// held key is removed or changed. Callers hold fetchMu.
func (k *RemoteKeys) publish(keys []jwkset.JWK, fetched time.Time) {
	old := k.snap.Load()
	bump := removesOrChanges(old.keys, keys)
	if added, removed := kidChanges(old.keys, keys); !old.empty() && (len(added) > 0 || len(removed) > 0) {
		// A rotation is the event to look for when unknown_kid denials
		// rise; kids come from the JWKS, not from tokens.
		k.log.Info("jwks keys changed", zap.Strings("added_kids", added), zap.Strings("removed_kids", removed))
	}
	k.snap.Store(newSnapshot(keys, fetched))
	if bump {
		// After the new keys are installed, never before: a verification
		// that reads the new generation must not find a removed key in the
		// old snapshot, or its result would be cached under the new
		// generation and outlive the key.
		k.generation.Add(1)
	}
	k.metrics.JWKSKeys(k.name, len(keys))
	k.signal()
}

// kidChanges lists the kids present only in new (added) and only in old
// (removed), each truncated for logging.
func kidChanges(old, new []jwkset.JWK) (added, removed []string) {
	in := func(set []jwkset.JWK, kid string) bool {
		for _, j := range set {
			if j.Marshal().KID == kid {
				return true
			}
		}
		return false
	}
	for _, j := range new {
		if kid := j.Marshal().KID; !in(old, kid) {
			added = append(added, loggableKID(kid))
		}
	}
	for _, j := range old {
		if kid := j.Marshal().KID; !in(new, kid) {
			removed = append(removed, loggableKID(kid))
		}
	}
	return added, removed
}

func (k *RemoteKeys) signal() {
	k.notifyMu.Lock()
	close(k.notify)
	k.notify = make(chan struct{})
	k.notifyMu.Unlock()
}

// removesOrChanges reports whether some key of old is missing from new, or is
// present under the same kid with different material, alg or use.
func removesOrChanges(old, new []jwkset.JWK) bool {
	byKID := make(map[string]jwkset.JWK, len(new))
	var noKID []jwkset.JWK
	for _, k := range new {
		if kid := k.Marshal().KID; kid != "" {
			byKID[kid] = k
		} else {
			noKID = append(noKID, k)
		}
	}
	for _, o := range old {
		kid := o.Marshal().KID
		if kid == "" {
			if !slices.ContainsFunc(noKID, func(n jwkset.JWK) bool { return sameKey(o, n) }) {
				return true
			}
			continue
		}
		n, ok := byKID[kid]
		if !ok || !sameKey(o, n) {
			return true
		}
	}
	return false
}

func sameKey(a, b jwkset.JWK) bool {
	ma, mb := a.Marshal(), b.Marshal()
	if ma.ALG != mb.ALG || ma.USE != mb.USE {
		return false
	}
	ka, ok := a.Key().(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b.Key())
}

// usable returns the current snapshot when it holds keys younger than
// max_stale, else nil. Keys past max_stale are dropped here (once, by CAS),
// bumping the generation, so expiry needs no lock and no timer to be exact.
func (k *RemoteKeys) usable() *keySnapshot {
	s := k.snap.Load()
	if s.empty() {
		return nil
	}
	if k.now().Sub(s.fetched) <= k.cfg.MaxStale {
		return s
	}
	if k.snap.CompareAndSwap(s, newSnapshot(nil, s.fetched)) {
		k.generation.Add(1)
		k.stale.Store(false)
		k.metrics.JWKSKeys(k.name, 0)
		k.metrics.JWKSStale(k.name, false)
		k.log.Error("jwks keys dropped: older than max_stale; tokens are refused until a fetch succeeds",
			zap.Time("last_success", s.fetched), zap.Duration("max_stale", k.cfg.MaxStale))
		k.signal()
	}
	return nil
}

// lookupUnknown handles a kid that is not in the held set: it starts (or
// joins) the single in-flight refresh when the rate limit allows, waits for
// it at most UnknownKIDWait and ctx, then looks again.
func (k *RemoteKeys) lookupUnknown(ctx context.Context, kid string) (jwkset.JWK, error) {
	k.kidMu.Lock()
	flight := k.kidFlight
	if flight == nil && k.runCtx != nil && k.runCtx.Err() == nil {
		now := k.now()
		if k.lastKidRun.IsZero() || now.Sub(k.lastKidRun) >= k.cfg.UnknownKIDRefreshInterval {
			k.lastKidRun = now
			flight = make(chan struct{})
			k.kidFlight = flight
			k.kidWG.Add(1)
			go k.kidRefresh(k.runCtx, flight)
			if ce := k.log.Check(zap.InfoLevel, "unknown kid; refreshing jwks"); ce != nil {
				ce.Write(zap.String("kid", loggableKID(kid)))
			}
		}
	}
	k.kidMu.Unlock()
	if flight == nil {
		return jwkset.JWK{}, fmt.Errorf("%w %s (refresh rate-limited)", ErrUnknownKID, loggableKID(kid))
	}
	t := time.NewTimer(k.cfg.UnknownKIDWait)
	defer t.Stop()
	select {
	case <-flight:
	case <-t.C:
	case <-ctx.Done():
	}
	s := k.usable()
	if s == nil {
		return jwkset.JWK{}, fmt.Errorf("jwks %s: %w", k.name, ErrNoKeys)
	}
	if jwk, ok := s.byKID[kid]; ok {
		return jwk, nil
	}
	return jwkset.JWK{}, fmt.Errorf("%w %s", ErrUnknownKID, loggableKID(kid))
}

// kidRefresh is the single in-flight unknown-kid refresh. It runs under the
// Run context, not the request's, so a client that gives up does not abort
// the fetch other requests are waiting for.
func (k *RemoteKeys) kidRefresh(ctx context.Context, done chan struct{}) {
	defer k.kidWG.Done()
	k.metrics.JWKSRefresh(k.name, metrics.JWKSUnknownKIDRefresh)
	k.fetch(ctx)
	k.kidMu.Lock()
	k.kidFlight = nil
	k.kidMu.Unlock()
	close(done)
}

// loggableKID quotes a token's kid, truncated: it is attacker input.
func loggableKID(kid string) string {
	if len(kid) > maxLoggedKID {
		return strconv.Quote(kid[:maxLoggedKID]) + "..."
	}
	return strconv.Quote(kid)
}

// remoteStorage adapts RemoteKeys to jwkset.Storage for keyfunc. Reads come
// from the current snapshot; writes are refused.
type remoteStorage struct{ k *RemoteKeys }

var _ jwkset.Storage = remoteStorage{}

// KeyRead returns the key for kid, refreshing once (bounded) on a miss.
func (s remoteStorage) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	snap := s.k.usable()
	if snap == nil {
		return jwkset.JWK{}, fmt.Errorf("jwks %s: %w", s.k.name, ErrNoKeys)
	}
	if jwk, ok := snap.byKID[kid]; ok {
		return jwk, nil
	}
	return s.k.lookupUnknown(ctx, kid)
}

// KeyReadAll returns every held key (tokens without kid try each), or
// ErrNoKeys when none is usable.
func (s remoteStorage) KeyReadAll(context.Context) ([]jwkset.JWK, error) {
	snap := s.k.usable()
	if snap == nil {
		return nil, fmt.Errorf("jwks %s: %w", s.k.name, ErrNoKeys)
	}
	return slices.Clone(snap.keys), nil
}

// KeyDelete is refused: the key set is read-only.
func (remoteStorage) KeyDelete(context.Context, string) (bool, error) { return false, errReadOnly }

// KeyReplaceAll is refused: the key set is read-only.
func (remoteStorage) KeyReplaceAll(context.Context, []jwkset.JWK) error { return errReadOnly }

// KeyWrite is refused: the key set is read-only.
func (remoteStorage) KeyWrite(context.Context, jwkset.JWK) error { return errReadOnly }

// mem returns the MemoryJWKSet of the usable snapshot (empty when none).
func (s remoteStorage) mem() *jwkset.MemoryJWKSet {
	if snap := s.k.usable(); snap != nil {
		return snap.mem
	}
	return jwkset.NewMemoryStorage()
}

// JSON returns the held keys as a JWK Set.
func (s remoteStorage) JSON(ctx context.Context) (json.RawMessage, error) {
	m, err := s.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// JSONPublic returns the held keys as a JWK Set (they are all public).
func (s remoteStorage) JSONPublic(ctx context.Context) (json.RawMessage, error) {
	return s.mem().JSONPublic(ctx)
}

// JSONPrivate returns the held keys as a JWK Set; they hold no private part.
func (s remoteStorage) JSONPrivate(ctx context.Context) (json.RawMessage, error) {
	return s.mem().JSONPrivate(ctx)
}

// JSONWithOptions returns the held keys as a JWK Set marshalled with options.
func (s remoteStorage) JSONWithOptions(ctx context.Context, mo jwkset.JWKMarshalOptions,
	vo jwkset.JWKValidateOptions) (json.RawMessage, error) {
	return s.mem().JSONWithOptions(ctx, mo, vo)
}

// Marshal returns the held keys as a JWKSMarshal (never a nil Keys slice).
func (s remoteStorage) Marshal(ctx context.Context) (jwkset.JWKSMarshal, error) {
	m, err := s.mem().Marshal(ctx)
	if m.Keys == nil {
		m.Keys = []jwkset.JWKMarshal{}
	}
	return m, err
}

// MarshalWithOptions returns the held keys as a JWKSMarshal built with options.
func (s remoteStorage) MarshalWithOptions(ctx context.Context, mo jwkset.JWKMarshalOptions,
	vo jwkset.JWKValidateOptions) (jwkset.JWKSMarshal, error) {
	m, err := s.mem().MarshalWithOptions(ctx, mo, vo)
	if m.Keys == nil {
		m.Keys = []jwkset.JWKMarshal{}
	}
	return m, err
}
