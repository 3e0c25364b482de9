// Command hasura-auth-proxy is a sidecar in front of Hasura GraphQL Engine
// that verifies Clerk-issued JWTs exactly as Hasura's JWT mode would (and
// stricter where Hasura is weak), then forwards requests to Hasura with the
// admin secret and trusted x-hasura-* session headers.
//
// Usage:
//
//	hasura-auth-proxy [-config FILE]                 run the proxy (default ./config.yaml, else the environment)
//	hasura-auth-proxy -check-config [-config FILE]   validate the configuration and exit
//	hasura-auth-proxy demo                           try it: proxy, token issuer and Hasura stand-in on 127.0.0.1
//	hasura-auth-proxy verify [-config FILE] [-role ROLE] TOKEN|-
//	                                                 explain the proxy's decision on a token (exit 0 allowed, 1 refused)
//	hasura-auth-proxy healthcheck [-addr HOST:PORT]  probe a running proxy's /readyz (exit 0 ready, 1 not)
//	hasura-auth-proxy version                        print the version, commit and Go version
//	hasura-auth-proxy help [COMMAND]                 list the commands, or a command's flags
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

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
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
		case "healthcheck":
			return runHealthcheck(ctx, args[1:], stdout, stderr)
		case "version":
			printVersion(stdout)
			return nil
		case "help":
			return runHelp(ctx, args[1:], stdout, stderr)
		case "revoke":
			return runRevoke(ctx, args[1:], stdout, stderr)
		}
	}
	fs := newProxyFlags(stderr)
	configPath := fs.String("config", "", "configuration file (default ./config.yaml if it exists, else the environment alone)")
	checkOnly := fs.Bool("check-config", false, "validate the configuration, print every problem and warning, and exit")
	version := fs.Bool("version", false, "print the version, commit and Go version, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitCode(2)
	}
	if *version {
		printVersion(stdout)
		return nil
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hasura-auth-proxy: unexpected argument %q (commands: demo, verify, healthcheck, version, help)\n", fs.Arg(0))
		return exitCode(2)
	}
	cfg, src, err := config.Resolve(*configPath, os.LookupEnv)
	if *checkOnly {
		return reportCheck(cfg, src, err, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hasura-auth-proxy: configuration %s is invalid:\n", src)
		for _, line := range splitErrors(err) {
			fmt.Fprintln(stderr, "  -", line)
		}
		return exitCode(1)
	}
	// SIGHUP reloads the file and the environment (reload.go) instead of
	// ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serve(ctx, cfg, src, stderr, reloadSource{signals: hup, load: func() (*config.File, error) {
		c, _, err := config.Resolve(*configPath, os.LookupEnv)
		return c, err
	}})
}

// newProxyFlags is the flag set of the proxy itself; its usage is the
// top-level help.
func newProxyFlags(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hasura-auth-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// runHelp is `hasura-auth-proxy help [COMMAND]`: the top-level help on
// stdout, or the command's own.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fs := newProxyFlags(stdout)
		fs.String("config", "", "configuration file (default ./config.yaml if it exists, else the environment alone)")
		fs.Bool("check-config", false, "validate the configuration, print every problem and warning, and exit")
		fs.Bool("version", false, "print the version, commit and Go version, and exit")
		fs.Usage()
		return nil
	}
	switch args[0] {
	case "demo", "verify", "healthcheck":
		return run(ctx, []string{args[0], "-h"}, stdout, stdout)
	case "version":
		fmt.Fprintln(stdout, "usage: hasura-auth-proxy version\n\nPrints the module version, the commit and the Go version the binary was built with.")
		return nil
	}
	fmt.Fprintf(stderr, "hasura-auth-proxy help: unknown command %q (commands: demo, verify, healthcheck, version)\n", args[0])
	return exitCode(2)
}
