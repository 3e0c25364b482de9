package main

// The healthcheck subcommand: a probe for container runtimes that cannot
// run curl (the image is distroless), e.g. Docker's HEALTHCHECK and docker
// compose's depends_on: condition: service_healthy.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

const healthcheckUsage = `usage: hasura-auth-proxy healthcheck [-addr HOST:PORT | -config FILE] [-timeout D]

Asks a running proxy's ops listener for /readyz and exits 0 when it answers
200 (ready), 1 otherwise, printing why. The address is -addr, else the
configuration's server.ops_listen (the same configuration the proxy reads:
-config, ./config.yaml or the environment), with an empty or wildcard host
replaced by 127.0.0.1.

`

// defaultHealthcheckTimeout bounds the whole probe; Docker's HEALTHCHECK
// default timeout is 30s, compose files commonly use 5s.
const defaultHealthcheckTimeout = 3 * time.Second

// runHealthcheck is `hasura-auth-proxy healthcheck`.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, healthcheckUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "", "the ops listener, HOST:PORT (default: from the configuration's server.ops_listen)")
	configPath := fs.String("config", "", "configuration file to read server.ops_listen from (default ./config.yaml if it exists, else the environment)")
	timeout := fs.Duration("timeout", defaultHealthcheckTimeout, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hasura-auth-proxy healthcheck: unexpected argument %q\n", fs.Arg(0))
		return exitCode(2)
	}
	target := *addr
	if target == "" {
		cfg, src, err := config.Resolve(*configPath, os.LookupEnv)
		if err != nil {
			fmt.Fprintf(stderr, "hasura-auth-proxy healthcheck: configuration %s is invalid:\n", src)
			for _, line := range splitErrors(err) {
				fmt.Fprintln(stderr, "  -", line)
			}
			return exitCode(1)
		}
		target = cfg.Server.OpsListen
	}
	target, err := probeAddr(target)
	if err != nil {
		fmt.Fprintln(stderr, "hasura-auth-proxy healthcheck:", err)
		return exitCode(2)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	status, body, err := getReadyz(ctx, "http://"+target+"/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "hasura-auth-proxy healthcheck: %s: %v\n", target, err)
		return exitCode(1)
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "hasura-auth-proxy healthcheck: %s/readyz answered %d:\n%s", target, status, body)
		return exitCode(1)
	}
	fmt.Fprint(stdout, body)
	return nil
}

// probeAddr turns a listen address into one to connect to: ":9090" and
// "0.0.0.0:9090" are reached on 127.0.0.1, "[::]:9090" on [::1].
func probeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", listen, err)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("address %q: a port chosen at start (0) cannot be probed; pass -addr", listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// getReadyz fetches url without proxies (HTTP_PROXY in a container must not
// route a loopback probe).
func getReadyz(ctx context.Context, url string) (int, string, error) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	body := string(b)
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return resp.StatusCode, body, nil
}
