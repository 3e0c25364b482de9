package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
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
	hook, err := newDemoClerkWebhook()
	if err != nil {
		return err
	}
	signOut := &demoSignOut{issuer: issuer, hook: hook}
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
	if issuer.URL, err = bg.start("token issuer", signOut.handler(issuer.Handler())); err != nil {
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
	if err := os.WriteFile(cfgPath, []byte(demoConfigYAML(o, issuer.URL, hasuraURL)+demoClerkYAML(signOut.hook)), 0o600); err != nil {
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

	page, err := bg.start("demo page", demoPage{proxy: "http://" + addrs.listen, issuer: issuer.URL}.handler())
	if err != nil {
		return err
	}
	signOut.hook.setURL("http://" + addrs.listen + demoClerkPath)
	token, err := issuer.Mint(fake.Claims{User: "alice", Role: "user", Allowed: []string{"user"}, TTL: o.ttl, AZP: demoAZP})
	if err != nil {
		return err
	}
	printDemo(stdout, demoText{
		opts:      o,
		proxy:     "http://" + addrs.listen,
		ops:       "http://" + addrs.ops,
		issuer:    issuer.URL,
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

// newDemoIssuer is the token issuer playing Clerk's Frontend API for the
// demo (internal/fake's Clerk): one RSA key, its JWKS, and GET /token
// minting the demo's defaults. Pages on other origins (the demo page, a
// local app) fetch tokens, so it answers with Hasura's default CORS.
// Whoever serves its Handler sets its URL.
func newDemoIssuer() (*fake.Clerk, error) {
	return fake.NewClerk(
		fake.WithKIDPrefix("ins_demo"),
		fake.WithCacheControl("public, max-age=300"),
		fake.WithClerkCORS(),
		fake.WithTokenDefaults(fake.TokenDefaults{AZP: demoAZP, TTL: demoDefaultTTL, MaxTTL: demoMaxTTL}),
	)
}

// demoHasura stands in for Hasura with HASURA_GRAPHQL_ADMIN_SECRET set
// (internal/fake's Hasura): it refuses requests without the right admin
// secret, as Hasura does, and answers every query and subscription with
// the session it received, events subscription events interval apart (the
// page's live one until it stops). It answers with Hasura's default CORS
// ("*"): a preflight sent straight to the stand-in gets 204, not 405. It
// keeps no record of what it received. It is safe for concurrent use.
type demoHasura struct {
	secret   string
	events   int           // subscription events per subscription
	interval time.Duration // between events

	once sync.Once
	h    *fake.Hasura
}

func (d *demoHasura) standIn() *fake.Hasura {
	d.once.Do(func() {
		d.h = fake.NewHasura(
			fake.WithAdminSecret(d.secret),
			fake.WithEvents(d.events, d.interval),
			fake.WithLiveOperation(demoLiveOperation),
			fake.WithHasuraCORS(),
			fake.WithRecordLimit(0),
		)
	})
	return d.h
}

func (d *demoHasura) handler() http.Handler { return d.standIn().Handler() }

// closeAll closes every WebSocket and waits for their handlers.
func (d *demoHasura) closeAll() { d.standIn().Close() }

// WebSocket subprotocols, as Hasura names them.
const (
	protoTransportWS = fake.ProtoTransportWS // the graphql-ws library
	protoLegacyWS    = fake.ProtoLegacyWS    // subscriptions-transport-ws (Apollo)
)

// demoWSMessage is a message of either protocol.
type demoWSMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
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
