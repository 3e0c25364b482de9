package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/revocation"
)

// revocations is serve's wiring of session revocation: the Set every
// request is checked against, Redis sharing when redis.url is set, and the
// Clerk webhook endpoint when clerk_webhook.path is.
type revocations struct {
	set   *revocation.Set
	redis *revocation.Redis
	hook  *revocation.Webhook // nil without clerk_webhook.path
	path  string
	log   *zap.Logger
}

// newRevocations builds the revocation set; rdb (nil without redis.url) is
// the process's one Redis client, which the caller owns and closes.
func newRevocations(cfg *config.File, rdb *redis.Client, log *zap.Logger, reg prometheus.Registerer) (*revocations, error) {
	m := metrics.NewRevocation(reg)
	r := &revocations{set: revocation.NewSet(nil, m), path: cfg.ClerkWebhook.Path, log: log}
	var shared revocation.Shared
	if rdb != nil {
		r.redis = revocation.NewRedis(rdb, r.set, log)
		shared = r.redis
	}
	if r.path != "" {
		hook, err := revocation.NewWebhook(revocation.WebhookOptions{
			Config:  cfg.ClerkWebhook,
			Set:     r.set,
			Shared:  shared,
			Logger:  log,
			Metrics: m,
		})
		if err != nil {
			return nil, err
		}
		r.hook = hook
	}
	return r, nil
}

// closeSockets makes every revocation that takes effect close the open
// WebSockets of its session or user through closeSessions (every
// generation's proxy.Handler.CloseSessions).
func (r *revocations) closeSockets(closeSessions func(revoked func(sid, sub string) bool) int) {
	r.set.OnRevoke(func(rev revocation.Revocation) {
		if n := closeSessions(rev.Matches); n > 0 {
			r.log.Info("closed websockets of a revoked session", zap.String("kind", rev.Kind), zap.Int("sockets", n))
		}
	})
}

// handler serves the Clerk webhook in front of next, when configured.
func (r *revocations) handler(next http.Handler) http.Handler {
	if r.hook == nil {
		return next
	}
	return revocation.Mount(r.path, r.hook, next)
}

// run prunes expired revocations and follows Redis until ctx is done.
func (r *revocations) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.set.Run(ctx) })
	if r.redis != nil {
		wg.Go(func() { r.redis.Run(ctx) })
	}
	wg.Wait()
}
