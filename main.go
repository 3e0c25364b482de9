// Command hasura-auth-proxy is a sidecar in front of Hasura GraphQL Engine
// that verifies Clerk-issued JWTs exactly as Hasura's JWT mode would (and
// stricter where Hasura is weak), then forwards requests to Hasura with the
// admin secret and trusted x-hasura-* session headers.
//
// Usage:
//
//	hasura-auth-proxy [-config FILE]                 run the proxy (default config.yaml)
//	hasura-auth-proxy -check-config [-config FILE]   validate the configuration and exit
//	hasura-auth-proxy demo                           try it: proxy, token issuer and Hasura stand-in on 127.0.0.1
//	hasura-auth-proxy verify [-config FILE] [-role ROLE] TOKEN|-
//	                                                 explain the proxy's decision on a token (exit 0 allowed, 1 refused)
//
// # The demo subcommand
//
// The real proxy, in one command, on 127.0.0.1 only.
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
//
// # The verify subcommand
//
// Why is this token refused?
//
// It loads the configuration exactly as the proxy does, builds the same
// Authenticator and the same proxy.Handler, waits (bounded) for the keys the
// proxy would hold, and sends one POST /v1/graphql through the handler with
// the token where the configuration reads it. Nothing leaves the process but
// the JWKS fetches: the request that would go to Hasura is captured by a
// stub transport, behind the proxy's own admin-secret guard.
//
// verify never needs Hasura's admin secret: it runs with a random one of its
// own (HASURA_GRAPHQL_ADMIN_SECRET and upstream.admin_secret are replaced),
// so it can neither print nor leak the real one; the admin secret header is
// printed redacted anyway. JWT keys (HS secrets) are never printed. The
// token's own header and claims are printed: they are the caller's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second signal ends the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "hasura-auth-proxy:", err)
		os.Exit(1)
	}
}

// exitCode ends the process with a code after the command printed what it
// had to say itself.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run is the whole program: it parses args, and runs a subcommand or the
// proxy until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return runDemo(ctx, args[1:], stdout, stderr)
		case "verify":
			return runVerify(ctx, args[1:], os.Stdin, stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("hasura-auth-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.yaml", "configuration file")
	checkOnly := fs.Bool("check-config", false, "validate the configuration, print every problem, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hasura-auth-proxy: unexpected argument %q\n", fs.Arg(0))
		return exitCode(2)
	}
	cfg, err := loadConfig(*configPath, os.Getenv)
	if *checkOnly {
		if err != nil {
			fmt.Fprintf(stderr, "configuration %s is invalid:\n", *configPath)
			for _, line := range splitErrors(err) {
				fmt.Fprintln(stderr, "  -", line)
			}
			return exitCode(1)
		}
		fmt.Fprintf(stdout, "configuration %s is valid\n", *configPath)
		return nil
	}
	if err != nil {
		return fmt.Errorf("configuration %s: %w", *configPath, err)
	}
	return serve(ctx, cfg, stderr)
}

// splitErrors flattens joined errors into one line each.
func splitErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}
