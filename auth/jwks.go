package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Retry schedule while fetches fail: the wait starts at backoffMin and doubles
// up to backoffMax, each wait jittered between half and all of it.
const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second
)

// errReadOnly is returned by the mutating jwkset.Storage methods of the
// remote key set: only the fetcher replaces keys.
var errReadOnly = errors.New("read-only key set: keys change only by fetching the jwk_url")

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
