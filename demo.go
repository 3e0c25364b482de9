package main

// The demo subcommand: the real proxy, in one command, on 127.0.0.1 only.
//
// `hasura-auth-proxy demo` starts three things in this process:
//
//   - a token issuer that plays Clerk: its own RSA-2048 key generated at
//     start, a JWKS at /.well-known/jwks.json (kid set), and GET /token
//     minting Clerk-shaped RS256 template tokens (iss, sub, azp, sid, iat,
//     nbf = iat-5, exp, header kid) carrying the Hasura claims;
//   - a Hasura stand-in that answers every GraphQL query, and one
//     subscription on both WebSocket protocols, with the session it
//     received (the admin secret shown only as "present");
//   - the real proxy (serve) with a configuration written to a temporary
//     file that points at both, which verify can load too.
//
// It prints the addresses, a fresh token and commands to paste: requests that
// are allowed and refused, verify, the webhook and a subscription. Ctrl-C
// (ctx) stops everything and removes the temporary file. Nothing listens on
// or connects to anything but 127.0.0.1.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// Demo defaults.
const (
	demoListen     = "127.0.0.1:8000"
	demoOpsListen  = "127.0.0.1:9090"
	demoAZP        = "http://localhost:3000"
	demoWebhook    = "/webhook"
	demoDefaultTTL = time.Hour
	demoMaxTTL     = 24 * time.Hour
	// demoReadyTimeout bounds waiting for the proxy to be ready (keys
	// fetched, stand-in healthy).
	demoReadyTimeout = 15 * time.Second
	// demoDone is the last line the demo prints on stdout.
	demoDone = "Press Ctrl-C to stop."
)

const demoUsage = `usage: hasura-auth-proxy demo [-listen ADDR] [-ops-listen ADDR] [-ttl D]

Runs the real proxy on 127.0.0.1 with an in-process token issuer (playing
Clerk) and an in-process Hasura stand-in, and prints commands to try it.
Ctrl-C stops everything.

`

// demoOptions are the demo's flags, resolved.
type demoOptions struct {
	listen, opsListen string
	ttl               time.Duration
	// cmd is how the printed commands invoke this program.
	cmd string
	// subInterval paces the stand-in's subscription events.
	subInterval time.Duration
	// moved says, by flag name, why a default address was replaced by a
	// free port ("" when it was not).
	moved map[string]string
}

// runDemo is `hasura-auth-proxy demo`.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, demoUsage)
		fs.PrintDefaults()
	}
	listen := fs.String("listen", demoListen, "the proxy's client address (127.0.0.1 only); if the default is taken, a free port is used")
	opsListen := fs.String("ops-listen", demoOpsListen, "the proxy's ops address (127.0.0.1 only); if the default is taken, a free port is used")
	ttl := fs.Duration("ttl", demoDefaultTTL, "lifetime of the printed token")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hasura-auth-proxy demo: unexpected argument %q\n", fs.Arg(0))
		return exitCode(2)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := demoOptions{ttl: *ttl, cmd: demoCommand(), subInterval: time.Second, moved: map[string]string{}}
	var err error
	if o.listen, o.moved["listen"], err = demoPick(*listen, set["listen"]); err != nil {
		fmt.Fprintln(stderr, "hasura-auth-proxy demo: -listen:", err)
		return exitCode(2)
	}
	if o.opsListen, o.moved["ops-listen"], err = demoPick(*opsListen, set["ops-listen"]); err != nil {
		fmt.Fprintln(stderr, "hasura-auth-proxy demo: -ops-listen:", err)
		return exitCode(2)
	}
	if o.ttl <= 0 || o.ttl > demoMaxTTL {
		fmt.Fprintf(stderr, "hasura-auth-proxy demo: -ttl: must be between 1s and %s\n", demoMaxTTL)
		return exitCode(2)
	}
	return demo(ctx, o, stdout, stderr)
}

// demoCommand is how to run this program again from the same shell: as it
// was invoked, or "go run ." when go run (or go test) built it in a
// temporary directory.
func demoCommand() string {
	exe := os.Args[0]
	if strings.Contains(filepath.ToSlash(exe), "/go-build") || strings.HasSuffix(exe, ".test") ||
		strings.ContainsAny(exe, " '\"$`\\") {
		return "go run ."
	}
	return exe
}

// demoAddr checks that addr is a loopback address, and replaces a taken
// default port with an ephemeral one. Port 0 is kept: the proxy's startup
// line tells the port it got.
func demoAddr(addr string, explicit bool) (string, error) {
	a, _, err := demoPick(addr, explicit)
	return a, err
}

// demoPick is demoAddr that also says why a taken default was replaced
// ("127.0.0.1:8000 is taken (bind: address already in use)"), or "".
func demoPick(addr string, explicit bool) (string, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", "", fmt.Errorf("%s: the demo listens on 127.0.0.1 only", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
		addr = net.JoinHostPort(host, port)
	}
	if port == "0" {
		return addr, "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if explicit {
			return "", "", err
		}
		why := err.Error()
		if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
			why = oe.Err.Error()
		}
		note := fmt.Sprintf("%s is taken (%s)", addr, why)
		if port == "9090" {
			note += "; 9090 is also Prometheus's default port"
		}
		return net.JoinHostPort(host, "0"), note, nil
	}
	_ = ln.Close()
	return addr, "", nil
}

// demoMovedNotes are the banner's lines about default ports that were
// taken, with the ports used instead.
func demoMovedNotes(o demoOptions, a demoAddrs) []string {
	var notes []string
	for _, m := range []struct{ flag, got string }{{"listen", a.listen}, {"ops-listen", a.ops}} {
		if why := o.moved[m.flag]; why != "" {
			notes = append(notes, fmt.Sprintf("-%s: %s, so the demo uses %s instead (choose one with -%s ADDR)", m.flag, why, m.got, m.flag))
		}
	}
	return notes
}

// demo runs everything until ctx is done.
func demo(ctx context.Context, o demoOptions, stdout, stderr io.Writer) (err error) {
	issuer, err := newDemoIssuer()
	if err != nil {
		return err
	}
	secret, err := randomSecret()
	if err != nil {
		return err
	}
	hasura := &demoHasura{secret: secret, events: 3, interval: o.subInterval}

	var bg demoServers
	defer func() {
		if e := bg.stop(); err == nil {
			err = e
		}
	}()
	if issuer.url, err = bg.start("token issuer", issuer.handler()); err != nil {
		return err
	}
	hasuraURL, err := bg.start("Hasura stand-in", hasura.handler())
	if err != nil {
		return err
	}
	bg.onStop(hasura.closeAll)

	if o.opsListen == o.listen {
		// Both ephemeral: two different ports, but server.ops_listen must
		// differ from server.listen as text. "00" is port 0 too.
		host, _, _ := net.SplitHostPort(o.opsListen)
		o.opsListen = net.JoinHostPort(host, "00")
	}
	dir, err := os.MkdirTemp("", "hasura-auth-proxy-demo-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoConfigYAML(o, issuer.url, hasuraURL)+demoClerkYAML(issuer.clerk)), 0o600); err != nil {
		return err
	}
	// The demo's own environment: the generated admin secret, and nothing
	// from the caller's shell (HASURA_GRAPHQL_JWT_SECRET there would
	// replace the demo issuer).
	cfg, err := loadConfig(cfgPath, func(k string) string {
		if k == envAdminSecret {
			return secret
		}
		return ""
	})
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}

	proxyCtx, stopProxy := context.WithCancel(context.Background())
	defer stopProxy()
	// The proxy's log waits below the banner: it is held until the banner
	// is printed (or the demo ends first).
	logs := newStartupWatcher(stderr)
	served := make(chan error, 1)
	go func() { served <- serve(proxyCtx, cfg, configSource{Path: cfgPath}, logs, reloadSource{}) }()
	defer func() {
		stopProxy()
		if e := <-served; err == nil {
			err = e
		}
		logs.release()
	}()

	var addrs demoAddrs
	select {
	case addrs = <-logs.started:
	case e := <-served:
		served <- e
		return fmt.Errorf("proxy: %w", e)
	case <-ctx.Done():
		return nil
	}
	if err := demoWaitReady(ctx, "http://"+addrs.ops+"/readyz", served); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	page, err := bg.start("demo page", demoPage{proxy: "http://" + addrs.listen, issuer: issuer.url}.handler())
	if err != nil {
		return err
	}
	issuer.clerk.setURL("http://" + addrs.listen + demoClerkPath)
	token, err := issuer.mint(demoClaims{user: "alice", role: "user", allowed: []string{"user"}, ttl: o.ttl, azp: demoAZP})
	if err != nil {
		return err
	}
	printDemo(stdout, demoText{
		opts:      o,
		proxy:     "http://" + addrs.listen,
		ops:       "http://" + addrs.ops,
		issuer:    issuer.url,
		hasura:    hasuraURL,
		config:    cfgPath,
		token:     token,
		tokenUser: "alice",
		tokenRole: "user",
		page:      page,
		moved:     demoMovedNotes(o, addrs),
	})
	logs.release()

	select {
	case <-ctx.Done():
		return nil
	case e := <-served:
		served <- e
		if e == nil {
			e = errors.New("stopped unexpectedly")
		}
		return fmt.Errorf("proxy: %w", e)
	}
}

// demoConfigYAML is the proxy configuration of the demo. The admin secret
// comes from the environment the demo passes to loadConfig; verify brings
// its own.
func demoConfigYAML(o demoOptions, issuerURL, hasuraURL string) string {
	return fmt.Sprintf(`# Written by "hasura-auth-proxy demo"; removed when the demo stops.
# %[1]s verify -config <this file> TOKEN   checks tokens with these rules.
server:
  listen: %[2]q
  ops_listen: %[3]q
  shutdown_grace: 5s
  webhook_path: %[4]q
upstream:
  url: %[5]q
  admin_secret: "${HASURA_GRAPHQL_ADMIN_SECRET}"
auth:
  jwt_secret:
    jwk_url: %[6]q
    issuer: %[7]q
    allowed_skew: 5
  authorized_parties: [%[8]q]
log:
  level: info
  format: console
`, o.cmd, o.listen, o.opsListen, demoWebhook, hasuraURL, issuerURL+"/.well-known/jwks.json", issuerURL, demoAZP) + demoLimitsYAML
}

// demoAddrs are the proxy's bound addresses.
type demoAddrs struct{ listen, ops string }

// startupWatcher holds the proxy's log until release, then passes it
// through to w, and reports the bound addresses of its "starting" line
// (serve documents that line for port 0), in the JSON or the console format.
// The held starting line loses its effective configuration (the demo prints
// the configuration file's path instead): the first screen stays readable.
type startupWatcher struct {
	w        io.Writer
	started  chan demoAddrs
	mu       sync.Mutex
	partial  []byte
	seen     bool
	held     []byte
	released bool
}

func newStartupWatcher(w io.Writer) *startupWatcher {
	return &startupWatcher{w: w, started: make(chan demoAddrs, 1)}
}

func (s *startupWatcher) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := p
	if !s.seen {
		s.partial = append(s.partial, p...)
		out = nil
		for {
			i := bytes.IndexByte(s.partial, '\n')
			if i < 0 {
				break
			}
			line := s.partial[:i+1]
			s.partial = s.partial[i+1:]
			if a, short, ok := parseStartingLine(line); ok && !s.seen {
				s.seen = true
				s.started <- a
				line = short
			}
			out = append(out, line...)
		}
		if s.seen {
			out = append(out, s.partial...)
			s.partial = nil
		} else if len(s.partial) > 1<<16 {
			out = append(out, s.partial...)
			s.partial = nil
		}
	}
	if !s.released {
		s.held = append(s.held, out...)
		return len(p), nil
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// release writes what was held and passes everything after it through.
func (s *startupWatcher) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	held := append(s.held, s.partial...)
	s.held, s.partial = nil, nil
	if s.seen || len(held) > 0 {
		_, _ = s.w.Write(held)
	}
}

// parseStartingLine recognises serve's "starting" line, JSON or console
// ("TIME\tLEVEL\tmain\tstarting\t{fields}"), and returns the bound
// addresses and the line without its config field.
func parseStartingLine(line []byte) (demoAddrs, []byte, bool) {
	var fields map[string]json.RawMessage
	prefix, body := []byte(nil), bytes.TrimSpace(line)
	if json.Unmarshal(body, &fields) != nil {
		parts := bytes.Split(body, []byte("\t"))
		if len(parts) < 5 || string(parts[3]) != "starting" || json.Unmarshal(parts[len(parts)-1], &fields) != nil {
			return demoAddrs{}, nil, false
		}
		prefix = bytes.Join(parts[:len(parts)-1], []byte("\t"))
	} else if string(fields["msg"]) != `"starting"` {
		return demoAddrs{}, nil, false
	}
	var a demoAddrs
	if json.Unmarshal(fields["listen"], &a.listen) != nil || json.Unmarshal(fields["ops_listen"], &a.ops) != nil ||
		a.listen == "" || a.ops == "" {
		return demoAddrs{}, nil, false
	}
	delete(fields, "config")
	b, err := json.Marshal(fields)
	if err != nil {
		return a, line, true
	}
	if prefix != nil {
		b = append(append(prefix, '\t'), b...)
	}
	return a, append(b, '\n'), true
}

// demoWaitReady polls the proxy's /readyz until it answers 200: the keys are
// fetched and the stand-in answers. It gives up after demoReadyTimeout, when
// ctx ends, or when the proxy stops (served).
func demoWaitReady(ctx context.Context, url string, served chan error) error {
	ctx, cancel := context.WithTimeout(ctx, demoReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = strings.TrimSpace(string(b))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proxy not ready within %s: %s", demoReadyTimeout, last)
		case e := <-served:
			served <- e
			return fmt.Errorf("proxy stopped before it was ready: %v", e)
		case <-tick.C:
		}
	}
}

// demoServers runs the demo's in-process servers on 127.0.0.1 and stops
// them all.
type demoServers struct {
	servers []*http.Server
	done    []chan error
	hooks   []func()
}

// start serves h on an ephemeral 127.0.0.1 port and returns its base URL.
func (d *demoServers) start(name string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- serveUntilClosed(srv, ln) }()
	d.servers = append(d.servers, srv)
	d.done = append(d.done, done)
	return "http://" + ln.Addr().String(), nil
}

// onStop runs f when the servers stop (for hijacked connections, which
// Shutdown does not track).
func (d *demoServers) onStop(f func()) { d.hooks = append(d.hooks, f) }

func (d *demoServers) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range d.hooks {
		f()
	}
	var errs []error
	for i, srv := range d.servers {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		errs = append(errs, <-d.done[i])
	}
	return errors.Join(errs...)
}

// demoIssuer plays Clerk's Frontend API for the demo: one RSA key, its JWKS,
// and a token endpoint. It is safe for concurrent use once url is set.
type demoIssuer struct {
	key *rsa.PrivateKey
	kid string
	url string
	now func() time.Time
	// clerk sends Clerk's webhooks (demo_revoke.go).
	clerk *demoClerkWebhook
}

func newDemoIssuer() (*demoIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	clerk, err := newDemoClerkWebhook()
	if err != nil {
		return nil, err
	}
	return &demoIssuer{key: key, kid: "ins_demo" + hex.EncodeToString(b[:]), now: time.Now, clerk: clerk}, nil
}

func (d *demoIssuer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", d.serveJWKS)
	mux.HandleFunc("GET /token", d.serveToken)
	mux.HandleFunc("POST /sign-out", d.serveSignOut)
	// Pages on other origins (the demo page, a local app) fetch tokens.
	return demoCORS.Wrap(mux)
}

func (d *demoIssuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	pub := d.key.PublicKey
	doc := map[string][]map[string]string{"keys": {{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": d.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(doc)
}

// demoClaims are the variable parts of a minted token.
type demoClaims struct {
	user, role string
	allowed    []string
	ttl        time.Duration
	azp        string
	// iss overrides the issuer (a token "from another Clerk instance");
	// empty means the issuer's own URL.
	iss string
}

// serveToken mints a token: ?user=alice&role=user&allowed=user,editor&ttl=1h&azp=URL&iss=URL.
// The answer is the bare token, so TOKEN=$(curl -s ...) works.
func (d *demoIssuer) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := demoClaims{user: q.Get("user"), role: q.Get("role"), ttl: demoDefaultTTL, azp: demoAZP}
	if c.user == "" {
		c.user = "alice"
	}
	if c.role == "" {
		c.role = "user"
	}
	c.allowed = []string{c.role}
	if v := q.Get("allowed"); v != "" {
		c.allowed = strings.Split(v, ",")
	}
	if v := q.Get("azp"); v != "" {
		c.azp = v
	}
	c.iss = q.Get("iss")
	if v := q.Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d == 0 || d > demoMaxTTL || d < -demoMaxTTL {
			http.Error(w, fmt.Sprintf("ttl: a Go duration between -%s and %s, not 0 (negative mints an expired token)", demoMaxTTL, demoMaxTTL), http.StatusBadRequest)
			return
		}
		c.ttl = d
	}
	for _, v := range append([]string{c.user, c.role, c.azp}, c.allowed...) {
		if v == "" || len(v) > 128 || !demoPrintable(v) || len(c.iss) > 128 || !demoPrintable(c.iss) {
			http.Error(w, "user, role, allowed, azp and iss must be 1-128 printable characters", http.StatusBadRequest)
			return
		}
	}
	tok, err := d.mint(c)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, tok+"\n")
}

func demoPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// mint signs a token shaped like a Clerk "hasura" JWT template token.
func (d *demoIssuer) mint(c demoClaims) (string, error) {
	now := d.now().Unix()
	var sid [8]byte
	if _, err := rand.Read(sid[:]); err != nil {
		return "", err
	}
	allowed := make([]any, len(c.allowed))
	for i, r := range c.allowed {
		allowed[i] = r
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": cmp.Or(c.iss, d.url),
		"sub": c.user,
		"azp": c.azp,
		"sid": "sess_" + hex.EncodeToString(sid[:]),
		"iat": now,
		"nbf": now - 5,
		"exp": now + int64(c.ttl/time.Second),
		auth.DefaultClaimsNamespace: map[string]any{
			"x-hasura-user-id":       c.user,
			"x-hasura-default-role":  c.role,
			"x-hasura-allowed-roles": allowed,
		},
	})
	tok.Header["kid"] = d.kid
	return tok.SignedString(d.key)
}

// demoHasura stands in for Hasura with HASURA_GRAPHQL_ADMIN_SECRET set: it
// refuses requests without the right admin secret, as Hasura does, and
// answers every query and subscription with the session it received. It is
// safe for concurrent use.
type demoHasura struct {
	secret   string
	events   int           // subscription events per subscription
	interval time.Duration // between events

	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (d *demoHasura) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "OK")
	})
	mux.HandleFunc("/v1/graphql", d.serveGraphQL)
	// Hasura's default CORS ("*"): a preflight sent straight to the
	// stand-in gets 204, not 405.
	return demoCORS.Wrap(mux)
}

// session is what Hasura would see: the x-hasura-* values by lower-case
// name, with the admin secret replaced by whether it is present.
func (d *demoHasura) session(h http.Header) map[string]any {
	out := map[string]any{}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-hasura-") || len(vs) == 0 {
			continue
		}
		if lk == "x-hasura-admin-secret" {
			out[lk] = true
			continue
		}
		out[lk] = vs[0]
	}
	return out
}

// adminSecretError is Hasura's refusal for a missing or wrong admin secret,
// or "" when h carries the right one.
func (d *demoHasura) adminSecretError(h http.Header) string {
	vs, ok := h["X-Hasura-Admin-Secret"]
	switch {
	case !ok:
		return "x-hasura-admin-secret/x-hasura-access-key required, but not found"
	case len(vs) != 1 || !auth.Secret(d.secret).Equal(vs[0]):
		return "invalid x-hasura-admin-secret/x-hasura-access-key"
	}
	return ""
}

func (d *demoHasura) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	if websocket.IsWebSocketUpgrade(r) {
		d.serveWebSocket(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST a GraphQL query", http.StatusMethodNotAllowed)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	var body any
	if msg := d.adminSecretError(r.Header); msg != "" {
		body = map[string]any{"errors": []any{map[string]any{
			"message": msg, "extensions": map[string]string{"path": "$", "code": "access-denied"},
		}}}
	} else {
		body = map[string]any{"data": map[string]any{"session": d.session(r.Header)}}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

// WebSocket subprotocols, as Hasura names them.
const (
	protoTransportWS = "graphql-transport-ws" // the graphql-ws library
	protoLegacyWS    = "graphql-ws"           // subscriptions-transport-ws (Apollo)
)

// demoWSMessage is a message of either protocol.
type demoWSMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// serveWebSocket speaks Hasura's two protocols, chosen as Hasura chooses:
// exactly "graphql-transport-ws" is the graphql-ws library's protocol,
// anything else the legacy one.
func (d *demoHasura) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	offered := websocket.Subprotocols(r)
	proto := protoLegacyWS
	if len(offered) == 1 && offered[0] == protoTransportWS {
		proto = protoTransportWS
	}
	var rh http.Header
	if len(offered) > 0 {
		rh = http.Header{"Sec-Websocket-Protocol": {proto}}
	}
	up := websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// The stand-in is only reached through the proxy on 127.0.0.1.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	conn, err := up.Upgrade(w, r, rh)
	if err != nil {
		return // the upgrader answered
	}
	if !d.track(conn) {
		_ = conn.Close()
		return
	}
	defer d.untrack(conn)
	c := &demoConn{conn: conn, proto: proto, upgrade: r.Header, hasura: d}
	c.run()
}

func (d *demoHasura) track(c *websocket.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	if d.conns == nil {
		d.conns = map[*websocket.Conn]struct{}{}
	}
	d.conns[c] = struct{}{}
	d.wg.Add(1)
	return true
}

func (d *demoHasura) untrack(c *websocket.Conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
	_ = c.Close()
	d.wg.Done()
}

// closeAll closes every WebSocket and waits for their handlers.
func (d *demoHasura) closeAll() {
	d.mu.Lock()
	d.closed = true
	for c := range d.conns {
		_ = c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// demoConn is one stand-in WebSocket connection.
type demoConn struct {
	conn    *websocket.Conn
	proto   string
	upgrade http.Header
	hasura  *demoHasura

	writeMu sync.Mutex
	session map[string]any // set by a successful connection_init
}

func (c *demoConn) send(m any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.conn.WriteJSON(m)
}

func (c *demoConn) close(code int, reason string) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

// run reads messages until the connection ends; subscriptions run in their
// own goroutines and end with it.
func (c *demoConn) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var subs sync.WaitGroup
	defer func() {
		cancel()
		subs.Wait()
	}()
	active := map[string]context.CancelFunc{}
	var activeMu sync.Mutex
	c.conn.SetReadLimit(1 << 20)
	for {
		var m demoWSMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "connection_init":
			if !c.init(m.Payload) {
				return
			}
		case "ping":
			_ = c.send(demoWSMessage{Type: "pong"})
		case "subscribe", "start":
			if c.session == nil {
				if c.proto == protoTransportWS {
					c.close(4401, "Unauthorized")
					return
				}
				_ = c.send(map[string]any{"type": "error", "id": m.ID, "payload": map[string]any{
					"message":    "start received before the connection is initialised",
					"extensions": map[string]string{"path": "$", "code": "start-failed"},
				}})
				continue
			}
			subCtx, stop := context.WithCancel(ctx)
			activeMu.Lock()
			if old, ok := active[m.ID]; ok {
				old()
			}
			active[m.ID] = stop
			activeMu.Unlock()
			subs.Add(1)
			go func(id string, live bool) {
				defer subs.Done()
				c.emit(subCtx, id, live)
			}(m.ID, demoLive(m.Payload))
		case "complete", "stop":
			activeMu.Lock()
			if stop, ok := active[m.ID]; ok {
				stop()
				delete(active, m.ID)
			}
			activeMu.Unlock()
		case "connection_terminate":
			return
		}
	}
}

// init checks the admin secret as Hasura would: the connection_init
// payload's headers, overridden by the upgrade request's.
func (c *demoConn) init(payload json.RawMessage) bool {
	var p struct {
		Headers map[string]string `json:"headers"`
	}
	_ = json.Unmarshal(payload, &p)
	h := http.Header{}
	for k, v := range p.Headers {
		h.Set(k, v)
	}
	for k, vs := range c.upgrade {
		if strings.HasPrefix(strings.ToLower(k), "x-hasura-") {
			h[k] = vs
		}
	}
	if msg := c.hasura.adminSecretError(h); msg != "" {
		if c.proto == protoTransportWS {
			c.close(4403, "Forbidden")
		} else {
			_ = c.send(map[string]any{"type": "connection_error", "payload": msg})
			c.close(4400, "Connection initialization failed: "+msg)
		}
		return false
	}
	c.session = c.hasura.session(h)
	if err := c.send(demoWSMessage{Type: "connection_ack"}); err != nil {
		return false
	}
	if c.proto == protoLegacyWS {
		_ = c.send(demoWSMessage{Type: "ka"})
	}
	return true
}

// emit sends the session events of one subscription, then completes it;
// a live one (the demo page's) streams until ctx ends.
func (c *demoConn) emit(ctx context.Context, id string, live bool) {
	kind := "next"
	if c.proto == protoLegacyWS {
		kind = "data"
	}
	t := time.NewTicker(c.hasura.interval)
	defer t.Stop()
	for i := 0; live || i < c.hasura.events; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		payload, err := json.Marshal(map[string]any{"data": map[string]any{"session": c.session}})
		if err != nil || c.send(demoWSMessage{Type: kind, ID: id, Payload: payload}) != nil {
			return
		}
	}
	_ = c.send(demoWSMessage{Type: "complete", ID: id})
}

// demoText is what printDemo fills in.
type demoText struct {
	opts                       demoOptions
	proxy, ops, issuer, hasura string
	config, token              string
	tokenUser, tokenRole       string
	page                       string // the demo page (demo_page.go)
	// moved explains default ports that were taken.
	moved []string
}

// printDemo prints the addresses and the commands to paste. The "# =>" lines
// are what each command answers; the demo's test runs the commands and
// compares.
func printDemo(w io.Writer, t demoText) {
	bw := bufio.NewWriter(w)
	defer func() { _ = bw.Flush() }()
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	gql := t.proxy + "/v1/graphql"
	query := `-H 'Content-Type: application/json' -d '{"query":"{ session }"}'`
	session := func(role, user string) string {
		b, _ := json.Marshal(map[string]any{"data": map[string]any{"session": map[string]any{
			"x-hasura-admin-secret": true, "x-hasura-role": role, "x-hasura-user-id": user,
		}}})
		return string(b)
	}
	// Hasura's error body, fields in Hasura's (and the proxy's) order.
	hasuraErr := func(code, msg string) string {
		type ext struct {
			Path string `json:"path"`
			Code string `json:"code"`
		}
		type item struct {
			Message    string `json:"message"`
			Extensions ext    `json:"extensions"`
		}
		b, _ := json.Marshal(struct {
			Errors []item `json:"errors"`
		}{[]item{{Message: msg, Extensions: ext{Path: "$", Code: code}}}})
		return string(b)
	}
	mintURL := t.issuer + "/token?user=bob&role=editor&allowed=user,editor&ttl=10m"
	wsURL := "ws" + strings.TrimPrefix(t.proxy, "http") + "/v1/graphql"
	initPayload, _ := json.Marshal(map[string]any{"headers": map[string]string{"Authorization": "Bearer " + t.token}})
	initMsg, _ := json.Marshal(demoWSMessage{Type: "connection_init", Payload: initPayload})

	p("Open %s in a browser: a page on its own origin calling the proxy as a Clerk app does.\n\n", t.page)
	p("hasura-auth-proxy demo: the real proxy with a token issuer playing Clerk and a Hasura stand-in,\n")
	p("all in this process on 127.0.0.1 (nothing else is contacted).\n\n")
	p("  proxy (clients use this)     %s\n", t.proxy)
	p("  proxy ops                    %s/metrics  %s/readyz\n", t.ops, t.ops)
	p("  token issuer (plays Clerk)   %s/.well-known/jwks.json\n", t.issuer)
	p("  Hasura stand-in              %s (answers with the session it receives)\n", t.hasura)
	p("  proxy configuration          %s\n", t.config)
	for _, m := range t.moved {
		p("  note: %s\n", m)
	}
	p("\n")
	p("A token for %s (role %s, valid %s), as Clerk's \"hasura\" JWT template would issue:\n\n", t.tokenUser, t.tokenRole, t.opts.ttl)
	p("TOKEN=%s\n\n", t.token)
	p("Mint others (user, role, allowed, ttl (negative: expired), azp, iss):\n\n")
	p("TOKEN=$(curl -s '%s')\n\n", mintURL)

	p("1. Allowed. Hasura gets the verified session and the admin secret, never the client's x-hasura-* headers:\n\n")
	p("  curl -s %s -H \"Authorization: Bearer $TOKEN\" -H 'X-Hasura-User-Id: mallory' %s\n", gql, query)
	p("  # => %s\n\n", session(t.tokenRole, t.tokenUser))
	p("2. Refused: a role the token does not allow (Hasura's own error, HTTP 200 as on /v1/graphql):\n\n")
	p("  curl -s %s -H \"Authorization: Bearer $TOKEN\" -H 'X-Hasura-Role: admin' %s\n", gql, query)
	p("  # => %s\n\n", hasuraErr(auth.CodeAccessDenied, auth.ErrRoleNotAllowed.Message))
	p("3. Refused: no token.\n\n")
	p("  curl -s %s %s\n", gql, query)
	p("  # => %s\n\n", hasuraErr(auth.CodeInvalidHeaders, auth.ErrMissingToken.Message))
	p("4. Why is a token refused? verify runs the proxy's exact checks and explains:\n\n")
	p("  %s verify -config %s \"$TOKEN\"\n", t.opts.cmd, t.config)
	p("  # => exit status 0: ALLOWED, role: %s\n", t.tokenRole)
	p("  %s verify -config %s -role admin \"$TOKEN\"\n", t.opts.cmd, t.config)
	p("  # => exit status 1: REFUSED, %s: %s\n\n", auth.CodeAccessDenied, auth.ErrRoleNotAllowed.Message)
	p("5. Hasura's auth-webhook mode, same checks (HASURA_GRAPHQL_AUTH_HOOK=%s%s):\n\n", t.proxy, demoWebhook)
	p("  curl -s %s%s -H \"Authorization: Bearer $TOKEN\"\n", t.proxy, demoWebhook)
	p("  # => {\"Cache-Control\":\"max-age=<seconds left>\",\"Expires\":\"<exp as an HTTP date>\",\"X-Hasura-Role\":%q,\"X-Hasura-User-Id\":%q}\n\n", t.tokenRole, t.tokenUser)
	p("6. A subscription: the page (%s) shows one live, surviving each token expiry; nothing to install.\n", t.page)
	p("   The same from a terminal, optionally, with websocat (https://github.com/vi/websocat):\n\n")
	p("  (echo '%s'; echo '%s'; sleep 4) | websocat --protocol %s %s\n", initMsg,
		`{"type":"subscribe","id":"1","payload":{"query":"subscription { session }"}}`, protoTransportWS, wsURL)
	p("  # => {\"type\":\"connection_ack\"}, then %d x {\"type\":\"next\",\"id\":\"1\",\"payload\":{\"data\":{\"session\":{...}}}}, then {\"type\":\"complete\",\"id\":\"1\"}\n\n", 3)
	p("%s", demoLimitsSteps(t))
	printDemoSignOut(p, t)
	p("The proxy's log follows on stderr, one line per request with its decision and reason; metrics: %s/metrics\n\n", t.ops)
	p("%s\n", demoDone)
}
