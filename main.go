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
//	hasura-auth-proxy revoke -config FILE (-session ID | -user ID)
//	                                                 revoke a Clerk session or user on every replica (through redis.url)
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
		case "revoke":
			return runRevoke(ctx, args[1:], stdout, stderr)
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
