package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

const verifyUsage = `usage: hasura-auth-proxy verify [-config FILE] [-role ROLE] [-as WHERE] [-timeout D] TOKEN|-

Runs the proxy's exact verification of TOKEN ("-" reads it from stdin) with
the keys and rules of the configuration, and prints the decision, the Hasura
error a client would get, the token's header and claims, the time left
before exp, and the session headers that would be sent to Hasura (admin
secret redacted). Exit status: 0 allowed, 1 refused, 2 usage or
configuration error, or keys that could not be fetched from jwk_url.

`

// maxStdinToken bounds what verify reads from stdin.
const maxStdinToken = 1 << 20

// verifyRedacted replaces the admin secret wherever it would be printed.
const verifyRedacted = "[REDACTED]"

// runVerify is `hasura-auth-proxy verify`.
func runVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, verifyUsage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "configuration file, as for the proxy (default ./config.yaml if it exists, else the environment alone)")
	role := fs.String("role", "", "the X-Hasura-Role the client sends (empty: the token's default role)")
	as := fs.String("as", "", `where the client sends the token: "authorization", "cookie:NAME" or "header:NAME" (default: where the first configured secret reads it)`)
	timeout := fs.Duration("timeout", 10*time.Second, "the longest wait for the jwk_url keys (a failed first fetch, bounded by auth.jwks.fetch_timeout, ends it sooner)")

	// Flags may come before or after the token.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return exitCode(2)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "hasura-auth-proxy verify: exactly one TOKEN (or -) is required")
		fs.Usage()
		return exitCode(2)
	}
	token, err := readToken(pos[0], stdin)
	if err != nil {
		fmt.Fprintln(stderr, "hasura-auth-proxy verify:", err)
		return exitCode(2)
	}

	// The real admin secret is never loaded (see the file comment).
	ownSecret, err := randomSecret()
	if err != nil {
		return err
	}
	lookup := func(k string) (string, bool) {
		if k == config.EnvAdminSecret {
			return ownSecret, true
		}
		return os.LookupEnv(k)
	}
	cfg, src, err := config.Resolve(*configPath, lookup)
	if err != nil {
		fmt.Fprintf(stderr, "configuration %s is invalid:\n", src)
		for _, line := range splitErrors(err) {
			fmt.Fprintln(stderr, "  -", line)
		}
		return exitCode(2)
	}
	loc := *as
	if loc == "" {
		loc = defaultTokenLocation(cfg.Auth)
	}
	header, err := verifyHeaders(loc, token, *role)
	if err != nil {
		fmt.Fprintln(stderr, "hasura-auth-proxy verify: -as:", err)
		return exitCode(2)
	}

	v, err := newVerifier(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "hasura-auth-proxy verify:", err)
		return exitCode(2)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		v.authn.Run(runCtx)
	}()
	defer func() {
		stop()
		wg.Wait()
	}()
	// Without the keys the proxy would hold, a decision would be about
	// their absence, not about the token: say so and stop. WaitFetched
	// answers after the first fetch (bounded by auth.jwks.fetch_timeout).
	waitCtx, cancel := context.WithTimeout(ctx, *timeout)
	keysErr := v.authn.WaitFetched(waitCtx)
	timedOut := waitCtx.Err() != nil
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if keysErr != nil {
		if timedOut {
			fmt.Fprintf(stderr, "hasura-auth-proxy verify: keys not loaded within -timeout %s: %v\n", *timeout, keysErr)
			return exitCode(2)
		}
		for _, line := range splitErrors(keysErr) {
			fmt.Fprintln(stderr, "hasura-auth-proxy verify:", line)
		}
		return exitCode(2)
	}

	r := v.check(ctx, header)
	r.location = loc
	r.role = *role
	if r.session != nil {
		r.limits = describeLimits(cfg, r.session)
	}
	r.print(stdout, token, time.Now())
	if r.err != nil {
		return exitCode(1)
	}
	return nil
}

// readToken returns the token argument, or stdin's content for "-". A
// leading "Bearer " (as copied from a request) is dropped.
func readToken(arg string, stdin io.Reader) (string, error) {
	tok := arg
	if arg == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, maxStdinToken+1))
		if err != nil {
			return "", fmt.Errorf("read token from stdin: %w", err)
		}
		if len(b) > maxStdinToken {
			return "", fmt.Errorf("token on stdin is larger than %d bytes", maxStdinToken)
		}
		tok = string(b)
	}
	tok = strings.TrimSpace(tok)
	if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	if tok == "" {
		return "", errors.New("the token is empty")
	}
	return tok, nil
}

func randomSecret() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// defaultTokenLocation is where the first configured secret reads tokens,
// in the -as syntax.
func defaultTokenLocation(c auth.Config) string {
	ss := c.Secrets()
	if len(ss) == 0 || ss[0].Header == nil {
		return "authorization"
	}
	switch h := ss[0].Header; strings.ToLower(h.Type) {
	case "cookie":
		return "cookie:" + h.Name
	case "customheader":
		return "header:" + h.Name
	}
	return "authorization"
}

// verifyHeaders is the request a client would send: the token at loc and,
// when role is set, X-Hasura-Role.
func verifyHeaders(loc, token, role string) (http.Header, error) {
	h := http.Header{}
	kind, name, _ := strings.Cut(loc, ":")
	switch strings.ToLower(kind) {
	case "authorization":
		h.Set("Authorization", "Bearer "+token)
	case "cookie":
		if name == "" {
			return nil, errors.New(`cookie needs a name, e.g. "cookie:__session"`)
		}
		h.Set("Cookie", (&http.Cookie{Name: name, Value: token}).String())
	case "header":
		if name == "" {
			return nil, errors.New(`header needs a name, e.g. "header:X-Auth-Token"`)
		}
		h.Set(name, token)
	default:
		return nil, fmt.Errorf(`%q: want "authorization", "cookie:NAME" or "header:NAME"`, loc)
	}
	if role != "" {
		h.Set("X-Hasura-Role", role)
	}
	return h, nil
}

// verifier is the proxy's pipeline with the upstream replaced by a
// recorder.
type verifier struct {
	authn   *auth.Authenticator
	handler http.Handler

	mu   sync.Mutex
	sent http.Header // the request headers that reached the stub upstream
}

func newVerifier(cfg *config.File) (*verifier, error) {
	authn, err := auth.New(auth.Options{
		Config:      cfg.Auth,
		AdminSecret: cfg.Upstream.AdminSecret,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, err
	}
	v := &verifier{authn: authn}
	h, err := proxy.New(proxy.Options{
		Upstream:     cfg.Upstream,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		ErrorStatus:  cfg.Auth.ErrorStatus,
		Auth:         authn,
		Logger:       zap.NewNop(),
		Transport:    verifyTransport(v.record),
	})
	if err != nil {
		return nil, err
	}
	v.handler = h
	return v, nil
}

type verifyTransport func(*http.Request) (*http.Response, error)

func (f verifyTransport) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// record stands in for Hasura: it keeps the headers and answers an empty
// GraphQL result.
func (v *verifier) record(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	v.mu.Lock()
	v.sent = r.Header.Clone()
	v.mu.Unlock()
	body := `{"data":{}}`
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, nil
}

// verifyResult is everything verify prints.
type verifyResult struct {
	session *auth.Session
	err     *auth.Error
	status  int    // the proxy's HTTP status on /v1/graphql
	body    []byte // the proxy's body on /v1/graphql when refused
	sent    http.Header

	location string
	role     string
	// limits describes the API limits of the session's role ("" if none).
	limits string
}

// check authenticates h as the proxy does, then sends it through the
// handler for the exact answer and the headers Hasura would get. The token
// cache makes the second verification a lookup; the decision is the same.
func (v *verifier) check(ctx context.Context, h http.Header) *verifyResult {
	r := &verifyResult{}
	s, err := v.authn.Authenticate(ctx, h)
	if err != nil {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			ae = &auth.Error{Code: "unexpected", Message: err.Error()}
		}
		r.err = ae
	} else {
		r.session = s
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/graphql", strings.NewReader(`{"query":"query { __typename }"}`))
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	v.handler.ServeHTTP(rec, req)
	r.status = rec.Code
	r.body = rec.Body.Bytes()
	v.mu.Lock()
	r.sent = v.sent
	v.sent = nil
	v.mu.Unlock()
	return r
}

func (r *verifyResult) print(w io.Writer, token string, now time.Time) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	p("token (sent as %s", r.location)
	if r.role != "" {
		p(", with X-Hasura-Role: %s", r.role)
	}
	p(")\n")
	hdr, claims, decErr := decodeForDisplay(token)
	if decErr != nil {
		p("  not decodable: %v\n", decErr)
	} else {
		p("  header: %s\n", verifyIndentJSON(hdr, "  "))
		p("  claims: %s\n", verifyIndentJSON(claims, "  "))
		printTimes(w, claims, now)
	}
	p("\n")

	if r.err == nil {
		s := r.session
		p("decision: ALLOWED (%s", s.Result)
		if s.Secret != "" {
			p(", JWT secret %s", s.Secret)
		}
		p(")\n")
		p("  role: %s\n", s.Role)
		if !s.Exp.IsZero() {
			p("  session ends at exp: %s (%s)\n", s.Exp.UTC().Format(time.RFC3339), relativeTime(s.Exp, now))
		}
		if r.limits != "" {
			p("  api limits: %s\n", r.limits)
		}
		p("\nheaders sent to Hasura (client headers other than x-hasura-* are forwarded as they are):\n")
		for _, line := range sentHeaders(r.sent) {
			p("  %s\n", line)
		}
		return
	}

	e := r.err
	p("decision: REFUSED\n")
	p("  Hasura error code:    %s\n", e.Code)
	p("  Hasura error message: %s\n", e.Message)
	if e.Detail != "" {
		p("  detail (proxy log):   %s\n", e.Detail)
	}
	p("  reason (metrics):     %s\n", e.Reason)
	p("\nwhat a client gets on POST /v1/graphql: HTTP %d\n  %s\n", r.status, bytes.TrimSpace(r.body))
	if hint := troubleshootingHint(e); hint != "" {
		p("\nhint: %s\n", hint)
	}
	p("see docs/troubleshooting.md\n")
}

// sentHeaders lists the session headers of the captured upstream request,
// the admin secret redacted.
func sentHeaders(h http.Header) []string {
	if h == nil {
		return []string{"(none: the request did not reach Hasura)"}
	}
	var out []string
	for k, vs := range h {
		lk := strings.ToLower(k)
		switch {
		case lk == "x-hasura-admin-secret":
			out = append(out, k+": "+verifyRedacted)
		case strings.HasPrefix(lk, "x-hasura-"):
			for _, v := range vs {
				out = append(out, k+": "+v)
			}
		case lk == "authorization" || lk == "cookie":
			out = append(out, k+": (the client's, forwarded)")
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	return out
}

// decodeForDisplay decodes the token's header and claims without verifying
// anything: for the caller's eyes only.
func decodeForDisplay(token string) (header, claims json.RawMessage, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("a JWT has 3 dot-separated parts, this has %d", len(parts))
	}
	seg := func(name, s string) (json.RawMessage, error) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, fmt.Errorf("%s is not base64url: %w", name, err)
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("%s is not JSON", name)
		}
		return b, nil
	}
	if header, err = seg("header", parts[0]); err != nil {
		return nil, nil, err
	}
	if claims, err = seg("claims", parts[1]); err != nil {
		return nil, nil, err
	}
	return header, claims, nil
}

func verifyIndentJSON(raw json.RawMessage, prefix string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, prefix, "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// printTimes shows iat, nbf and exp against the local clock: most refusals
// of valid-looking tokens are about time.
func printTimes(w io.Writer, claims json.RawMessage, now time.Time) {
	var c map[string]any
	if json.Unmarshal(claims, &c) != nil {
		return
	}
	for _, k := range []struct{ claim, label string }{{"iat", "issued"}, {"nbf", "not before"}, {"exp", "expires"}} {
		v, ok := c[k.claim].(float64)
		if !ok {
			if k.claim == "exp" {
				fmt.Fprintf(w, "  %-10s  never (no exp claim)\n", k.label)
			}
			continue
		}
		t := time.Unix(0, int64(v*float64(time.Second))).UTC()
		fmt.Fprintf(w, "  %-10s  %s (%s)\n", k.label, t.Format(time.RFC3339), relativeTime(t, now))
	}
}

// relativeTime renders t against now: "in 59m58s" or "3m2s ago".
func relativeTime(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d > 0:
		return "in " + d.String()
	case d < 0:
		return (-d).String() + " ago"
	}
	return "now"
}

// troubleshootingHint is the first thing to check for a refusal, by reason.
func troubleshootingHint(e *auth.Error) string {
	switch e.Reason {
	case auth.ReasonMissing:
		return "no token where the configuration reads it; check -as and auth.jwt_secret.header"
	case auth.ReasonMalformed:
		return "the value is not a compact JWT; send exactly \"Authorization: Bearer <token>\""
	case auth.ReasonExpired:
		return "the token expired: Clerk template tokens live 60s by default; fetch a fresh one with getToken({template})"
	case auth.ReasonNotYetValid, auth.ReasonIssuedInFuture:
		return "clock skew between Clerk and this host; check NTP, or raise allowed_skew"
	case auth.ReasonBadIssuer:
		return "the token's iss differs from auth.jwt_secret.issuer (your Clerk Frontend API URL)"
	case auth.ReasonBadAZP:
		return "the token's azp (the page's origin) is not in auth.authorized_parties"
	case auth.ReasonUnknownKID, auth.ReasonBadSignature:
		return "the token was not signed by a key of jwk_url: wrong Clerk instance, or a custom signing key on the template"
	case auth.ReasonNoKeys:
		return "no keys could be fetched from jwk_url"
	case auth.ReasonRoleNotAllowed:
		return "X-Hasura-Role (or the default role) is not in x-hasura-allowed-roles"
	case auth.ReasonRoleMissing, auth.ReasonClaimsInvalid:
		return "the Clerk JWT template lacks the Hasura claims, or puts them under another namespace"
	}
	return ""
}
