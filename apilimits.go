package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/limits"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

// newLimits builds the API limits of cfg: nil when nothing is configured,
// counters in Redis when redis.url is set. run sends the checks to Redis
// until its context is done. rdb (nil without redis.url) is the process's
// one Redis client, which the caller owns and closes.
func newLimits(cfg *config.File, rdb *redis.Client, log *zap.Logger, reg prometheus.Registerer) (l proxy.Limits, run func(context.Context)) {
	o := limits.Options{
		Config:         cfg.APILimits,
		Introspection:  cfg.Introspection,
		Store:          cfg.Redis,
		TrustedProxies: cfg.Server.Trusted(),
		Logger:         log.Named("limits"),
	}
	probe := limits.New(o)
	if !probe.Enabled() {
		return nil, func(context.Context) {}
	}
	o.Metrics = metrics.NewLimits(reg, cfg.APILimits.Roles(cfg.Introspection))
	if rdb != nil && cfg.APILimits.RateLimit != nil && !cfg.APILimits.Disabled {
		o.Redis = rdb
	}
	lim := limits.New(o)
	return lim, lim.Run
}

// describeLimits is what `verify` prints of the API limits that apply to
// s, or "" when none are configured.
func describeLimits(cfg *config.File, s *auth.Session) string {
	l := limits.New(limits.Options{Config: cfg.APILimits, Introspection: cfg.Introspection})
	if !l.Enabled() {
		return ""
	}
	a := l.For(s)
	if a.Exempt {
		return "none (the admin secret is never limited)"
	}
	var parts []string
	add := func(name string, v int, unit string) {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d%s", name, v, unit))
		}
	}
	add("depth", a.DepthLimit, "")
	add("nodes", a.NodeLimit, "")
	add("batch", a.BatchLimit, "")
	add("time", a.TimeLimitSeconds, "s")
	if a.RateLimit != nil {
		parts = append(parts, fmt.Sprintf("rate %d/min per %s", a.RateLimit.MaxReqsPerMin, a.RateLimit.UniqueParams))
	}
	if !a.IntrospectionAllowed {
		parts = append(parts, "introspection disabled")
	}
	if len(parts) == 0 {
		return "none for role " + s.Role
	}
	if cfg.APILimits.Disabled {
		parts = append(parts, "(api_limits.disabled: true)")
	}
	return strings.Join(parts, ", ")
}
