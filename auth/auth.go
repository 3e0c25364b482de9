// Package auth decides who a request is, exactly as Hasura's JWT mode would,
// and stricter where Hasura is weak.
//
// # What it verifies
//
// An Authenticator takes the headers of an HTTP request (or of a WebSocket
// connection_init merged with its upgrade request) and returns either a
// Session (the role and session variables to send to Hasura) or an *Error
// carrying Hasura's code and message. The pipeline follows Hasura's order,
// so the first failing step decides the answer: admin secret, token
// extraction, issuer pre-match and counting, compact decoding, signature,
// exp/iat/nbf/iss/aud (then azp), claims extraction, role selection, session
// variable types.
//
// # Hasura parity
//
// Configuration (Config, JWTSecret) is Hasura's HASURA_GRAPHQL_JWT_SECRET(S)
// object, and each refusal is one of the Err* values: the code and message
// Hasura answers, from getUserInfoWithExpTime_ in
// server/src-lib/Hasura/Server/Auth.hs and processJwt_, parseClaimsMap and
// parseHasuraClaims in server/src-lib/Hasura/Server/Auth/JWT.hs. Where this proxy is
// stricter (RequireConfig, authorized_parties, asymmetric-only JWKS
// algorithms, a token size limit), the refusal says so in Hasura's style and
// the switch is documented on the field.
//
// # Keys
//
// Keys come from KeySources: RemoteKeys for jwk_url (fetched and refreshed in
// the background, see Run, with Hasura's Cache-Control and Expires rules) and
// StaticKey for type+key. Verified tokens are kept in a bounded cache until
// their exp, so a reused token costs a hash and a map lookup;
// request-dependent checks (role selection) run every time.
//
// # Concurrency and ownership
//
// Authenticator, RemoteKeys and StaticKey are safe for concurrent use. The
// caller owns the lifecycle: it builds the Authenticator once from a
// validated Config, runs Authenticator.Run under a context it cancels at
// shutdown, and passes in the logger, the *metrics.Metrics and the clock.
// Package auth owns the refusal values (Code, Message and the Reasons, which
// package metrics uses as label values); how a refusal is answered (HTTP
// status, WebSocket close, webhook body) is the caller's, see package proxy.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Session is an authenticated identity: what the proxy sends to Hasura.
// Sessions returned by Authenticate are read-only; Vars may be shared with
// the token cache.
type Session struct {
	// Result is ResultAllowed (a verified token), ResultAnonymous (no token,
	// unauthorized role) or ResultAdmin (the right admin secret).
	Result string
	// Role is the role Hasura must use; never empty.
	Role string
	// Vars are the session variables other than the role, lower-case names.
	Vars []Var
	// Exp is the token's expiry; zero when the session does not expire.
	Exp time.Time
	// Secret names the JWT secret that verified the token.
	Secret string
	// UserID is x-hasura-user-id, for logs that enable it.
	UserID string
	// SessionID is the token's sid claim (Clerk's session id) and Subject
	// its sub (Clerk's user id), empty when absent or not strings. Subject
	// is who the session counts as for per-user socket limits; both let
	// revocation find what a session belongs to. They are not logged.
	SessionID, Subject string
}

// Revocations tells revoked sessions and users apart; the revocation
// package's Set implements it. Revoked is called for every verified token,
// cache hits included, so it must be cheap (a map lookup) and safe for
// concurrent use. An empty sid or sub never matches.
type Revocations interface {
	Revoked(sid, sub string, now time.Time) bool
}

// Options configure New.
type Options struct {
	// Config is the auth section, already validated.
	Config Config
	// AdminSecret is Hasura's admin secret, compared in constant time with
	// the x-hasura-admin-secret / x-hasura-access-key a client sends.
	AdminSecret Secret
	// KeySources overrides the key source of each secret, by index; nil
	// entries (or a short slice) mean "build from the secret's config".
	KeySources []KeySource
	// HTTPClient fetches JWKS documents; nil means a client with explicit
	// timeouts built by NewRemoteKeys.
	HTTPClient *http.Client
	// Logger receives the key sets' fetch and rotation events, under the
	// name "jwks"; nil discards them. Refusals are not logged here: the
	// caller logs the returned *Error. No token or secret is ever logged.
	Logger *zap.Logger
	// Metrics records decisions, verification time, the token cache and the
	// jwks_* metrics; nil records nothing.
	Metrics *metrics.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Revocations, when not nil, refuses tokens of revoked sessions and
	// users with ErrRevoked.
	Revocations Revocations
}

// Authenticator runs the authentication pipeline. Create it with New; the
// zero value is not usable. It is safe for concurrent use. Until Run has
// fetched the remote key sets, tokens of those secrets are refused with
// ErrNoUsableKeys; Ready and WaitReady tell when they are held.
type Authenticator struct {
	secrets     []*secretVerifier
	locations   []location
	remote      []*RemoteKeys
	adminSecret Secret
	anonRole    string
	passthrough bool
	maxToken    int
	cache       *tokenCache
	revoked     Revocations
	log         *zap.Logger
	metrics     *metrics.Metrics
	now         func() time.Time
}

// New builds an Authenticator from a validated configuration. It does no
// network I/O: remote key sets are fetched by Run.
func New(o Options) (*Authenticator, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.AdminSecret == "" {
		return nil, errors.New("auth: an admin secret is required (JWT mode requires HASURA_GRAPHQL_ADMIN_SECRET)")
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	a := &Authenticator{
		adminSecret: o.AdminSecret,
		anonRole:    o.Config.UnauthorizedRole,
		passthrough: o.Config.AdminSecretPassthrough,
		maxToken:    o.Config.MaxTokenBytes,
		revoked:     o.Revocations,
		log:         log,
		metrics:     o.Metrics,
		now:         now,
	}
	secrets := o.Config.Secrets()
	if len(secrets) > 64 {
		return nil, errors.New("auth: at most 64 JWT secrets are supported")
	}
	for i := range secrets {
		s := &secrets[i]
		name := s.Name
		if name == "" {
			name = strconv.Itoa(i)
		}
		rules, err := newClaimsRules(s, o.Config.ArrayClaims == "postgres")
		if err != nil {
			return nil, fmt.Errorf("auth: secret %s: %w", name, err)
		}
		v := &secretVerifier{
			index:             i,
			name:              name,
			loc:               s.location(),
			issuer:            s.Issuer,
			audience:          s.Audience,
			skew:              time.Duration(s.AllowedSkew * float64(time.Second)),
			rules:             rules,
			requireExp:        o.Config.Require.Exp,
			requireIss:        o.Config.Require.Iss,
			requireAud:        o.Config.Require.Aud,
			requireAZP:        o.Config.Require.AZP,
			authorizedParties: o.Config.AuthorizedParties,
		}
		if i < len(o.KeySources) && o.KeySources[i] != nil {
			v.keys = o.KeySources[i]
			v.algs = JWKSAlgorithms()
			if s.Key != "" {
				if sk, err := NewStaticKey(s.Type, s.Key.Reveal()); err == nil {
					v.algs = sk.Algorithms()
				}
			}
		} else if s.Key != "" {
			sk, err := NewStaticKey(s.Type, s.Key.Reveal())
			if err != nil {
				return nil, fmt.Errorf("auth: secret %s: %w", name, err)
			}
			v.keys, v.algs = sk, sk.Algorithms()
		} else {
			rk, err := NewRemoteKeys(RemoteKeysOptions{
				URL:     s.JWKURL,
				Name:    name,
				Config:  o.Config.JWKS,
				Client:  o.HTTPClient,
				Logger:  log,
				Metrics: o.Metrics,
				Now:     now,
			})
			if err != nil {
				return nil, fmt.Errorf("auth: secret %s: %w", name, err)
			}
			v.keys, v.algs = rk, JWKSAlgorithms()
			a.remote = append(a.remote, rk)
		}
		a.secrets = append(a.secrets, v)
		if !containsLoc(a.locations, v.loc) {
			a.locations = append(a.locations, v.loc)
		}
	}
	if o.Config.TokenCache.Size > 0 {
		sources := make([]KeySource, len(a.secrets))
		for i, v := range a.secrets {
			sources[i] = v.keys
		}
		a.cache = newTokenCache(o.Config.TokenCache.Size, sources, o.Metrics)
	}
	return a, nil
}

func containsLoc(ls []location, l location) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// Run keeps every remote key set fresh until ctx is done. It returns when
// all refreshers have stopped.
func (a *Authenticator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, rk := range a.remote {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rk.Run(ctx)
		}()
	}
	wg.Wait()
}

// Ready reports nil when every secret has usable keys, else what is missing.
func (a *Authenticator) Ready() error {
	var errs []error
	for _, v := range a.secrets {
		if err := v.keys.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("jwt secret %s: %w", v.name, err))
		}
	}
	return errors.Join(errs...)
}

// Authenticate decides who the request with headers h is. h must not be
// modified during the call. The error, when not nil, is an *Error.
func (a *Authenticator) Authenticate(ctx context.Context, h http.Header) (*Session, error) {
	s, err := a.authenticate(ctx, h)
	if err != nil {
		a.metrics.AuthDecision(ResultDenied, err.Reason)
		return nil, err
	}
	a.metrics.AuthDecision(s.Result, ReasonOK)
	return s, nil
}

// candidate is a token found at one location.
type candidate struct {
	raw string
	loc location
}

func (a *Authenticator) authenticate(ctx context.Context, h http.Header) (*Session, *Error) {
	// 0. Admin secret: checked first, and the JWT is then never looked at
	// (getUserInfoWithExpTime_ in server/src-lib/Hasura/Server/Auth.hs).
	if secret, ok := adminSecretHeader(h); ok {
		if !a.passthrough {
			return nil, ErrAdminSecretDisabled
		}
		if !a.adminSecret.Equal(secret) {
			return nil, ErrBadAdminSecret
		}
		return adminSession(h), nil
	}

	// 1. Token extraction at every configured location.
	// Room for the usual one or two tokens without a heap allocation.
	var candBuf [2]candidate
	cands := candBuf[:0]
	for _, loc := range a.locations {
		var err *Error
		if cands, err = extractTokens(h, loc, cands); err != nil {
			return nil, err
		}
	}
	if len(cands) == 0 {
		if a.anonRole == "" {
			return nil, ErrMissingToken
		}
		// Stricter than Hasura: no client-supplied session variables.
		return &Session{Result: ResultAnonymous, Role: a.anonRole}, nil
	}

	// 2. Issuer pre-match and counting, as processJwt_ in
	// server/src-lib/Hasura/Server/Auth/JWT.hs does: no match is JWTNotInIssuer, two are
	// "Multiple JWTs found".
	var (
		matchSecret *secretVerifier
		matchCand   candidate
		matchDec    *decodedToken
		matchHit    *cacheEntry
		matchKey    cacheKey
		matches     int
	)
	now := a.now()
	for _, c := range cands {
		var (
			d   *decodedToken
			hit *cacheEntry
			key cacheKey
		)
		if a.cache != nil && len(c.raw) <= a.maxToken {
			key = tokenKey(c.raw)
			hit = a.cache.get(&key, now)
		}
		for _, v := range a.secrets {
			if v.loc != c.loc {
				continue
			}
			var ok bool
			if hit != nil {
				ok = hit.issMask&(1<<v.index) != 0
			} else {
				if d == nil {
					var err *Error
					if d, err = decodeToken(c.raw, a.maxToken); err != nil {
						// An undecodable token has no iss: it matches
						// every secret, and its decoding error is the
						// answer if it is the one match.
						d = &decodedToken{claims: &claimSet{}, decodeErr: err}
					}
				}
				ok = v.issuerMatches(d)
			}
			if ok {
				matches++
				matchSecret, matchCand, matchDec, matchHit, matchKey = v, c, d, hit, key
			}
		}
	}
	switch {
	case matches == 0:
		return nil, ErrNotInIssuer
	case matches > 1:
		return nil, ErrMultipleTokens
	}

	// 3-5. Verification and claims, or the cache.
	v := matchSecret
	var (
		hc       *hasuraClaims
		exp      time.Time
		sid, sub string
	)
	// cache.get returned only an entry valid now (before exp+skew, current
	// key set generation); it must also be the secret that matched here.
	if e := matchHit; e != nil && e.secret == v.index {
		hc, exp, sid, sub = e.claims, e.exp, e.sid, e.sub
	} else {
		if matchDec == nil {
			var err *Error
			if matchDec, err = decodeToken(matchCand.raw, a.maxToken); err != nil {
				return nil, err
			}
		}
		if matchDec.decodeErr != nil {
			return nil, matchDec.decodeErr
		}
		gen := v.keys.Generation()
		start := time.Now()
		var err *Error
		hc, err = v.verify(ctx, matchDec, now)
		a.metrics.ObserveVerify(time.Since(start))
		if err != nil {
			return nil, err
		}
		sid, sub = stringClaim(matchDec.claims, "sid"), matchDec.claims.sub
		if c := matchDec.claims; c.exp != nil {
			exp = c.exp.Time
			if a.cache != nil && hc.varsErr == nil {
				a.cache.put(&cacheEntry{
					key:        matchKey,
					secret:     v.index,
					issMask:    a.issuerMask(matchDec),
					claims:     hc,
					exp:        exp,
					notAfter:   exp.Add(v.skew),
					generation: gen,
					sid:        sid,
					sub:        sub,
				}, now)
			}
		}
	}

	// A revoked session or user is refused like an invalid token, from the
	// cache too: the cache holds what was verified, not what is still
	// allowed.
	if a.revoked != nil && a.revoked.Revoked(sid, sub, now) {
		return nil, ErrRevoked
	}

	// 6. Role selection, then 7. session variable types.
	role, err := selectRole(hc, firstValue(h, "X-Hasura-Role"))
	if err != nil {
		return nil, err
	}
	if hc.varsErr != nil {
		return nil, hc.varsErr
	}
	s := &Session{Result: ResultAllowed, Role: role, Vars: hc.vars, Exp: exp, Secret: v.name, SessionID: sid, Subject: sub}
	for _, kv := range hc.vars {
		if kv.Name == varUserID {
			s.UserID = kv.Value
			break
		}
	}
	return s, nil
}

// issuerMask records which secrets' issuer pre-match accepts a token, so a
// cache hit can count matches without decoding the token again.
func (a *Authenticator) issuerMask(d *decodedToken) uint64 {
	var m uint64
	for _, v := range a.secrets {
		if v.issuerMatches(d) {
			m |= 1 << v.index
		}
	}
	return m
}

// adminSecretHeader returns the presented admin secret: x-hasura-admin-secret
// first, else the deprecated x-hasura-access-key. Present but empty counts.
func adminSecretHeader(h http.Header) (string, bool) {
	if vs, ok := h["X-Hasura-Admin-Secret"]; ok {
		if len(vs) == 0 {
			return "", true
		}
		return vs[0], true
	}
	if vs, ok := h["X-Hasura-Access-Key"]; ok {
		if len(vs) == 0 {
			return "", true
		}
		return vs[0], true
	}
	return "", false
}

// adminSession is Hasura's admin-secret mode: the role is x-hasura-role (or
// admin), and every other x-hasura-* header is a session variable.
func adminSession(h http.Header) *Session {
	s := &Session{Result: ResultAdmin, Role: firstValue(h, "X-Hasura-Role")}
	if s.Role == "" {
		s.Role = "admin"
	}
	for name, vs := range h {
		ln := strings.ToLower(name)
		if !strings.HasPrefix(ln, "x-hasura-") || len(vs) == 0 {
			continue
		}
		switch strings.ReplaceAll(ln, "_", "-") {
		case varRole, varAdminSecret, varAccessKey:
			// Also their "_" spellings, which the proxy's last check
			// before Hasura treats as the credentials (and refuses).
			continue
		}
		if !isToken(name) || !validHeaderValue(vs[0]) {
			continue
		}
		s.Vars = append(s.Vars, Var{Name: ln, Value: vs[0]})
		if ln == varUserID {
			s.UserID = vs[0]
		}
	}
	return s
}

func firstValue(h http.Header, canonicalName string) string {
	if vs := h[canonicalName]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// extractTokens appends the tokens found at loc, read as Hasura's
// processJwt_ reads them (server/src-lib/Hasura/Server/Auth/JWT.hs).
func extractTokens(h http.Header, loc location, out []candidate) ([]candidate, *Error) {
	switch loc.kind {
	case "authorization":
		for _, v := range h["Authorization"] {
			tok, ok := parseBearer(v)
			if !ok {
				return nil, ErrMalformedHeader
			}
			out = append(out, candidate{raw: tok, loc: loc})
		}
	case "cookie":
		if _, ok := h["Cookie"]; ok {
			for _, c := range (&http.Request{Header: h}).Cookies() {
				if c.Name == loc.name {
					out = append(out, candidate{raw: c.Value, loc: loc})
				}
			}
		}
	case "header":
		for _, v := range h[loc.name] {
			out = append(out, candidate{raw: strings.TrimSpace(v), loc: loc})
		}
	}
	return out, nil
}

// parseBearer accepts exactly two whitespace-separated words, the first
// "Bearer" in any case (RFC 7235; Hasura itself is case-sensitive).
func parseBearer(v string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimLeft(v, " \t"), " ")
	if !ok {
		// Tab-separated is still two words.
		scheme, rest, ok = strings.Cut(strings.TrimLeft(v, " \t"), "\t")
		if !ok {
			return "", false
		}
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.Trim(rest, " \t")
	// Two IndexByte scans are vectorized; ContainsAny walks a ~1 KB token
	// byte by byte and was a fifth of a cached verification.
	if tok == "" || strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0 {
		return "", false
	}
	return tok, true
}
