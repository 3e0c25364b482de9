package fake

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// HasuraNamespace is the claim under which Clerk's "hasura" JWT template
// puts the session (Hasura's default claims_namespace).
const HasuraNamespace = "https://hasura.io/jwt/claims"

// Key is an RSA signing key and the kid it is published under.
type Key struct {
	KID     string
	Private *rsa.PrivateKey
}

// NewKey generates an RSA-2048 key published under kid.
func NewKey(kid string) (Key, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Key{}, err
	}
	return Key{KID: kid, Private: k}, nil
}

// JWK is k's public half as a JWK (RS256, use sig), as Clerk publishes it.
func (k Key) JWK() map[string]string {
	pub := k.Private.PublicKey
	return map[string]string{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.KID,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// JWKSAnswer is what the JWKS endpoint answers; see [Clerk.SetAnswer].
type JWKSAnswer int

// JWKS answers.
const (
	JWKSKeys        JWKSAnswer = iota // the published keys (the default)
	JWKSError                         // HTTP 500
	JWKSMalformed                     // 200 with truncated JSON
	JWKSEmpty                         // 200 with {"keys":[]}
	JWKSHuge                          // 200 with a valid 4 MiB document without keys
	JWKSHang                          // no answer until the client gives up or Close
	JWKSUnavailable                   // HTTP 503, as a load balancer in front answers
)

// TokenDefaults are what GET /token fills in for parameters it is not
// given, and its limit on ttl.
type TokenDefaults struct {
	AZP    string        // azp; default "http://localhost:3000"
	TTL    time.Duration // lifetime; default 1h
	MaxTTL time.Duration // the largest |ttl| accepted; default 24h
}

// ClerkOption configures a [Clerk].
type ClerkOption func(*Clerk)

// WithKey publishes k; the first key given signs. Without WithKey one
// RSA-2048 key is generated.
func WithKey(k Key) ClerkOption { return func(c *Clerk) { c.keys = append(c.keys, k) } }

// WithKIDPrefix sets the prefix of generated kids (default "ins_", as
// Clerk's instance keys are named), followed by 16 random hex digits.
func WithKIDPrefix(p string) ClerkOption { return func(c *Clerk) { c.kidPrefix = p } }

// WithClock sets the clock tokens are minted by (default time.Now).
func WithClock(now func() time.Time) ClerkOption { return func(c *Clerk) { c.now = now } }

// WithHS256Key sets the HS256 key [Clerk.MintHS256] signs with (default 32
// random bytes, hex-encoded).
func WithHS256Key(key string) ClerkOption { return func(c *Clerk) { c.hsKey = key } }

// WithCacheControl sets the Cache-Control header of JWKS answers (default
// none).
func WithCacheControl(v string) ClerkOption { return func(c *Clerk) { c.cacheControl = v } }

// WithClerkCORS answers with Hasura's default CORS policy ("*"), so pages
// on other origins can fetch tokens.
func WithClerkCORS() ClerkOption { return func(c *Clerk) { c.cors = true } }

// WithTokenDefaults sets the defaults of GET /token; zero fields keep
// theirs.
func WithTokenDefaults(d TokenDefaults) ClerkOption {
	return func(c *Clerk) {
		c.tokens.AZP = cmp.Or(d.AZP, c.tokens.AZP)
		c.tokens.TTL = cmp.Or(d.TTL, c.tokens.TTL)
		c.tokens.MaxTTL = cmp.Or(d.MaxTTL, c.tokens.MaxTTL)
	}
}

// WithJWKSHeld starts with JWKS fetches held until [Clerk.ReleaseJWKS].
func WithJWKSHeld() ClerkOption { return func(c *Clerk) { c.gate = make(chan struct{}) } }

// Clerk plays a Clerk instance's Frontend API: RSA keys published as a JWKS
// at /.well-known/jwks.json ([Clerk.JWKSURL]), tokens shaped like Clerk's "hasura" JWT template
// from [Clerk.Mint] and from GET /token, and switchable failures. Create it
// with [StartClerk] in tests or [NewClerk]. Its methods are safe for
// concurrent use.
type Clerk struct {
	// URL is the base URL the Clerk is served at, and the iss of the
	// tokens it mints. StartClerk sets it; whoever serves Handler sets it
	// before the first request.
	URL string

	now          func() time.Time
	kidPrefix    string
	hsKey        string
	cacheControl string
	cors         bool
	tokens       TokenDefaults
	done         chan struct{}
	closeOnce    sync.Once
	srv          *server

	mu      sync.Mutex
	keys    []Key // keys[0] signs
	answer  JWKSAnswer
	gate    chan struct{} // nil: open
	fetches int64
	fetched chan struct{} // closed and replaced on every fetch
}

// NewClerk builds a Clerk without serving it.
func NewClerk(opts ...ClerkOption) (*Clerk, error) {
	c := &Clerk{
		now:       time.Now,
		kidPrefix: "ins_",
		tokens:    TokenDefaults{AZP: "http://localhost:3000", TTL: time.Hour, MaxTTL: 24 * time.Hour},
		done:      make(chan struct{}),
		fetched:   make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	if len(c.keys) == 0 {
		k, err := NewKey(c.kidPrefix + randomHex(8))
		if err != nil {
			return nil, err
		}
		c.keys = []Key{k}
	}
	if c.hsKey == "" {
		c.hsKey = randomHex(32)
	}
	return c, nil
}

// StartClerk serves a new Clerk on an ephemeral 127.0.0.1 port until the
// test ends.
func StartClerk(t TB, opts ...ClerkOption) *Clerk {
	t.Helper()
	c, err := NewClerk(opts...)
	if err != nil {
		t.Fatalf("fake clerk: %v", err)
	}
	c.srv, c.URL, err = listen(c.Handler())
	if err != nil {
		t.Fatalf("fake clerk: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Close ends held and hanging answers and, when StartClerk served it,
// stops the server.
func (c *Clerk) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		if c.srv != nil {
			_ = c.srv.close()
		}
	})
}

// JWKSURL is the JWKS address: URL + "/.well-known/jwks.json".
func (c *Clerk) JWKSURL() string { return c.URL + "/.well-known/jwks.json" }

// Handler serves GET /token and the JWKS.
func (c *Clerk) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", c.serveToken)
	mux.HandleFunc("GET /.well-known/jwks.json", c.serveJWKS)
	if c.cors {
		return hasuraCORS(mux)
	}
	return mux
}

// Signer returns the key tokens are signed with.
func (c *Clerk) Signer() Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[0]
}

// KID is the signing key's kid.
func (c *Clerk) KID() string { return c.Signer().KID }

// HS256Key is the key MintHS256 signs with.
func (c *Clerk) HS256Key() string { return c.hsKey }

// Keys returns the published keys, the signing key first.
func (c *Clerk) Keys() []Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Key(nil), c.keys...)
}

// SetKeys replaces the published keys; keys[0] signs from now on. It
// panics on an empty list (use SetAnswer(JWKSEmpty) to publish none).
func (c *Clerk) SetKeys(keys ...Key) {
	if len(keys) == 0 {
		panic("fake: SetKeys without keys")
	}
	c.mu.Lock()
	c.keys = append([]Key(nil), keys...)
	c.mu.Unlock()
}

// Rotate generates a key that signs from now on; the old keys stay
// published (as during a Clerk key rotation) until Retire.
func (c *Clerk) Rotate() (Key, error) {
	k, err := NewKey(c.kidPrefix + randomHex(8))
	if err != nil {
		return Key{}, err
	}
	c.mu.Lock()
	c.keys = append([]Key{k}, c.keys...)
	c.mu.Unlock()
	return k, nil
}

// Retire stops publishing the key kid; the signing key cannot be retired.
func (c *Clerk) Retire(kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.keys[:1:1]
	for _, k := range c.keys[1:] {
		if k.KID != kid {
			out = append(out, k)
		}
	}
	c.keys = out
}

// SetAnswer switches what the JWKS endpoint answers.
func (c *Clerk) SetAnswer(a JWKSAnswer) {
	c.mu.Lock()
	c.answer = a
	c.mu.Unlock()
}

// HoldJWKS holds every JWKS fetch from now on until ReleaseJWKS (or the
// client gives up, or Close). Held fetches are counted when they arrive.
func (c *Clerk) HoldJWKS() {
	c.mu.Lock()
	if c.gate == nil {
		c.gate = make(chan struct{})
	}
	c.mu.Unlock()
}

// ReleaseJWKS answers the held fetches and stops holding.
func (c *Clerk) ReleaseJWKS() {
	c.mu.Lock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
	c.mu.Unlock()
}

// Fetches is the number of JWKS requests received so far.
func (c *Clerk) Fetches() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

// WaitFetches waits until at least n JWKS requests were received, or ctx
// ends.
func (c *Clerk) WaitFetches(ctx context.Context, n int64) error {
	for {
		c.mu.Lock()
		got, changed := c.fetches, c.fetched
		c.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d JWKS fetches, want %d: %w", got, n, ctx.Err())
		}
	}
}

func (c *Clerk) serveJWKS(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.fetches++
	close(c.fetched)
	c.fetched = make(chan struct{})
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		}
	}
	c.mu.Lock()
	answer := c.answer
	list := make([]map[string]string, 0, len(c.keys))
	for _, k := range c.keys {
		list = append(list, k.JWK())
	}
	c.mu.Unlock()
	if c.cacheControl != "" {
		w.Header().Set("Cache-Control", c.cacheControl)
	}
	w.Header().Set("Content-Type", "application/json")
	switch answer {
	case JWKSError:
		http.Error(w, "internal error", http.StatusInternalServerError)
	case JWKSUnavailable:
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
	case JWKSMalformed:
		_, _ = io.WriteString(w, `{"keys":[{"kty":"RSA","n":`)
	case JWKSEmpty:
		_, _ = io.WriteString(w, `{"keys":[]}`)
	case JWKSHuge:
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{}, "padding": strings.Repeat("x", 4<<20)})
	case JWKSHang:
		select {
		case <-r.Context().Done():
		case <-c.done:
		}
	default:
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": list})
	}
}

// Claims are the variable parts of a minted token; zero fields take the
// defaults given.
type Claims struct {
	User    string        // sub and x-hasura-user-id; default "alice"
	Role    string        // x-hasura-default-role; default "user"
	Allowed []string      // x-hasura-allowed-roles; default [Role]
	TTL     time.Duration // exp - iat; default 1m (Clerk's); negative: expired
	AZP     string        // azp; omitted when empty
	Issuer  string        // iss; default the Clerk's URL
	// Session adds claims to the Hasura namespace (x-hasura-org-id, ...).
	Session map[string]any
	// Extra adds top-level claims (jti, ...), replacing standard ones of
	// the same name.
	Extra map[string]any
}

// Mint signs an RS256 token shaped like a Clerk "hasura" JWT template
// token: iss, sub, azp, sid, iat, nbf = iat-5, exp, the kid header and
// the Hasura claims.
func (c *Clerk) Mint(cl Claims) (string, error) {
	k := c.Signer()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c.claims(cl))
	tok.Header["kid"] = k.KID
	return tok.SignedString(k.Private)
}

// MintHS256 signs the same claims as Mint with the HS256 key.
func (c *Clerk) MintHS256(cl Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c.claims(cl)).SignedString([]byte(c.hsKey))
}

// Sign signs arbitrary claims with the signing key and its kid: tokens
// Clerk would never issue.
func (c *Clerk) Sign(claims map[string]any) (string, error) {
	k := c.Signer()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	tok.Header["kid"] = k.KID
	return tok.SignedString(k.Private)
}

func (c *Clerk) claims(cl Claims) jwt.MapClaims {
	user := cmp.Or(cl.User, "alice")
	role := cmp.Or(cl.Role, "user")
	allowed := cl.Allowed
	if allowed == nil {
		allowed = []string{role}
	}
	roles := make([]any, len(allowed))
	for i, r := range allowed {
		roles[i] = r
	}
	ttl := cmp.Or(cl.TTL, time.Minute)
	ns := map[string]any{
		"x-hasura-user-id":       user,
		"x-hasura-default-role":  role,
		"x-hasura-allowed-roles": roles,
	}
	maps.Copy(ns, cl.Session)
	now := c.now().Unix()
	m := jwt.MapClaims{
		"iss":           cmp.Or(cl.Issuer, c.URL),
		"sub":           user,
		"sid":           "sess_" + randomHex(8),
		"iat":           now,
		"nbf":           now - 5,
		"exp":           now + int64(ttl/time.Second),
		HasuraNamespace: ns,
	}
	if cl.AZP != "" {
		m["azp"] = cl.AZP
	}
	maps.Copy(m, cl.Extra)
	return m
}

// serveToken mints a token:
// ?user=alice&role=user&allowed=user,editor&ttl=1h&azp=URL&iss=URL. The
// answer is the bare token, so TOKEN=$(curl -s ...) works.
func (c *Clerk) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cl := Claims{User: cmp.Or(q.Get("user"), "alice"), Role: cmp.Or(q.Get("role"), "user"), TTL: c.tokens.TTL, AZP: c.tokens.AZP}
	cl.Allowed = []string{cl.Role}
	if v := q.Get("allowed"); v != "" {
		cl.Allowed = strings.Split(v, ",")
	}
	if v := q.Get("azp"); v != "" {
		cl.AZP = v
	}
	cl.Issuer = q.Get("iss")
	if v := q.Get("ttl"); v != "" {
		max := c.tokens.MaxTTL
		d, err := time.ParseDuration(v)
		if err != nil || d == 0 || d > max || d < -max {
			http.Error(w, fmt.Sprintf("ttl: a Go duration between -%s and %s, not 0 (negative mints an expired token)", max, max), http.StatusBadRequest)
			return
		}
		cl.TTL = d
	}
	for _, v := range append([]string{cl.User, cl.Role, cl.AZP}, cl.Allowed...) {
		if v == "" || len(v) > 128 || !printable(v) || len(cl.Issuer) > 128 || !printable(cl.Issuer) {
			http.Error(w, "user, role, allowed, azp and iss must be 1-128 printable characters", http.StatusBadRequest)
			return
		}
	}
	tok, err := c.Mint(cl)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, tok+"\n")
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// randomHex is n random bytes, hex-encoded. crypto/rand.Read never fails.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
