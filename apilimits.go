package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/limits"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
)

// newLimits builds the API limits of cfg: nil when nothing is configured,
// counters in Redis when redis.url is set. close releases the Redis client.
func newLimits(cfg *fileConfig, log *zap.Logger, reg prometheus.Registerer) (l proxy.Limits, close func(), err error) {
	o := limits.Options{
		Config:         cfg.APILimits,
		Introspection:  cfg.Introspection,
		Store:          cfg.Redis,
		TrustedProxies: cfg.Server.Trusted(),
		Logger:         log.Named("limits"),
	}
	probe := limits.New(o)
	if !probe.Enabled() {
		return nil, func() {}, nil
	}
	o.Metrics = metrics.NewLimits(reg, cfg.APILimits.Roles(cfg.Introspection))
	close = func() {}
	if cfg.Redis.Enabled() && cfg.APILimits.RateLimit != nil && !cfg.APILimits.Disabled {
		client, err := store.NewClient(cfg.Redis)
		if err != nil {
			return nil, nil, err
		}
		o.Redis = client
		close = func() { _ = client.Close() }
	}
	return limits.New(o), close, nil
}
