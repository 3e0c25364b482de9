package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
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
	cfg, err := config.Load(cfgPath, func(k string) string {
		if k == config.EnvAdminSecret {
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
	go func() { served <- serve(proxyCtx, cfg, config.Source{Path: cfgPath}, logs, reloadSource{}) }()
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
// comes from the environment the demo passes to config.Load; verify brings
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
