package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"time"
)

// The API-limits scenario (issue 12): the proxy with depth, node and an
// in-memory rate limit that never trips, and with the same rate limit in
// Redis, against the same proxy without limits (the baseline of this
// scenario, not the bare ReverseProxy).
const (
	scLimits      = "limits"
	tgLimitsMem   = "proxy-limits"
	tgLimitsRedis = "proxy-redis"
)

// limitsYAML is appended to the proxy's configuration: every request is
// parsed (from the cache) and counted; 1,000,000 a minute is far above
// what one machine can send, so nothing is refused.
const limitsYAML = `api_limits:
  depth_limit: {global: 10}
  node_limit: {global: 100}
  rate_limit:
    global: {max_reqs_per_min: 1000000, unique_params: [x-hasura-user-id]}
`

// baseline is the target each scenario's ratios are computed against.
func baseline(scenario string) string {
	if scenario == scLimits || scenario == scRevoked {
		// Both measure the cost of a feature on the proxy itself.
		return tgProxy
	}
	return tgBare
}

// startRedis runs redis-server on a free loopback port, without
// persistence, and waits until it accepts connections.
func startRedis(ctx context.Context, dir string) (*proc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install redis-server): %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", dir)
	p, err := start("redis", cmd, addr, filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("redis-server did not listen on %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// redisYAML points the proxy's rate limiter at the Redis at addr.
func redisYAML(addr string) string {
	return fmt.Sprintf("redis:\n  url: \"redis://%s/0\"\n  timeout: 100ms\n  on_error: allow\n", addr)
}

// startLimitsTargets starts the proxies of the limits scenario (-limits):
// in-memory limits, and Redis limits when redis-server is installed (else
// that target is skipped with a note). Started processes join procs.
func startLimitsTargets(ctx context.Context, o options, bin, dir, upstream, jwksURL string, procs *[]*proc, stdout io.Writer) (mem, rds *proc, err error) {
	if !o.limits {
		return nil, nil, nil
	}
	mem, err = startProxy(ctx, "proxy-limits", bin, dir, upstream, jwksURL, 10000, o.proxyGOGC, limitsYAML)
	if err != nil {
		return nil, nil, err
	}
	*procs = append(*procs, mem)
	redis, err := startRedis(ctx, dir)
	if err != nil {
		fmt.Fprintln(stdout, "limits scenario without the Redis target:", err)
		return mem, nil, nil
	}
	*procs = append(*procs, redis)
	rds, err = startProxy(ctx, "proxy-redis", bin, dir, upstream, jwksURL, 10000, o.proxyGOGC, limitsYAML, redisYAML(redis.addr))
	if err != nil {
		return nil, nil, err
	}
	*procs = append(*procs, rds)
	return mem, rds, nil
}
