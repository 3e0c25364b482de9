package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

// reloadKeysTimeout bounds how long a reload waits for the new
// configuration's key sets before it is refused.
const reloadKeysTimeout = 15 * time.Second

// reloadSource is what serve reloads from: each value of signals (SIGHUP)
// calls load. The zero value never reloads.
type reloadSource struct {
	signals <-chan os.Signal
	load    func() (*config.File, error)
}

// processState is built once per process and shared by every generation.
// Its zero value (no revocations, no limits) is valid.
type processState struct {
	revocations auth.Revocations
	limits      proxy.Limits
}

// generation is the client handler built from one configuration, with the
// authenticator it owns. A reload builds a new one beside the old; the old
// keeps serving the requests and WebSockets it already has.
type generation struct {
	cfg     *config.File
	authn   *auth.Authenticator
	handler *proxy.Handler

	stopOnce sync.Once
	cancel   context.CancelFunc // stops authn.Run
	ran      chan struct{}      // closed once authn.Run has returned
}

// newGeneration builds the authenticator and the client handler of cfg. It
// does no network I/O; start begins the key refresh.
//
// state is what the process builds once and every generation shares: the
// revocation set (a reload never forgets a revoked session) and the API
// limits with their counters (a reload never resets a rate window).
func newGeneration(cfg *config.File, log *zap.Logger, m *metrics.Metrics, state processState) (*generation, error) {
	authn, err := auth.New(auth.Options{
		Config:      cfg.Auth,
		AdminSecret: cfg.Upstream.AdminSecret,
		Logger:      log.Named("auth"),
		Metrics:     m,
		Revocations: state.revocations,
	})
	if err != nil {
		return nil, err
	}
	handler, err := proxy.New(proxy.Options{
		Upstream:       cfg.Upstream,
		MaxBodyBytes:   cfg.Server.MaxBodyBytes,
		ErrorStatus:    cfg.Auth.ErrorStatus,
		Auth:           authn,
		Logger:         log.Named("proxy"),
		Metrics:        m,
		LogUserID:      cfg.Log.UserID,
		WebhookPath:    cfg.Server.WebhookPath,
		WebSocket:      cfg.WebSocket,
		CORS:           cfg.Server.CORS(),
		TrustedProxies: cfg.Server.Trusted(),
		AdminThrottle:  cfg.Server.AdminSecretThrottle,
		Revocations:    state.revocations,
		Limits:         state.limits,
	})
	if err != nil {
		return nil, err
	}
	return &generation{cfg: cfg, authn: authn, handler: handler, ran: make(chan struct{})}, nil
}

// start runs the key refresh until stop. Key refresh outlives the serve
// context: keys stay fresh while in-flight requests drain.
func (g *generation) start() {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() {
		defer close(g.ran)
		g.authn.Run(ctx)
	}()
}

// stop ends the key refresh and waits for it.
func (g *generation) stop() {
	g.stopOnce.Do(func() {
		g.cancel()
		<-g.ran
	})
}

// liveHandler serves every request with the current generation. Swapping
// it is one atomic store: a request is served entirely by the generation it
// started on. It is safe for concurrent use.
type liveHandler struct {
	cur atomic.Pointer[generation]
}

func (l *liveHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.cur.Load().handler.ServeHTTP(w, r)
}

// Ready is the current authenticator's readiness (every key source has
// usable keys), for /readyz.
func (l *liveHandler) Ready() error { return l.cur.Load().authn.Ready() }

// reloader replaces the live generation on SIGHUP. Its methods are called
// from serve's goroutine only, except closeWebSockets and stopAll, which
// serve calls after the last reload.
type reloader struct {
	live    *liveHandler
	load    func() (*config.File, error)
	log     *zap.Logger // the process logger; components are named from it
	mainLog *zap.Logger
	metrics *metrics.Metrics
	now     func() time.Time
	// keysTimeout bounds the wait for the new key sets; zero means
	// reloadKeysTimeout.
	keysTimeout time.Duration
	// state is handed to every new generation.
	state processState

	mu      sync.Mutex
	retired []*generation // older generations that may still hold WebSockets
}

// reload loads the configuration again (file and environment) and, when it
// is valid, makes it the live one. Settings that only take effect at start
// (listeners, server timeouts, logging, Redis, Hasura's URL) keep their
// running values and are named in a warning. An invalid configuration is
// refused with its problems logged, and the running one keeps serving.
func (rl *reloader) reload(ctx context.Context) {
	old := rl.live.cur.Load()
	cfg, err := rl.load()
	var kept []string
	if err == nil {
		kept = keepRestartOnly(old.cfg, cfg)
		// Kept values next to new ones must still make a valid whole
		// (server.write_timeout against upstream.response_header_timeout).
		err = cfg.Validate()
	}
	var g *generation
	if err == nil {
		g, err = newGeneration(cfg, rl.log, rl.metrics, rl.state)
	}
	if err == nil {
		// A new authenticator starts without keys: it takes over only once
		// it can verify what the old one verifies.
		g.start()
		wait := rl.keysTimeout
		if wait == 0 {
			wait = reloadKeysTimeout
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err = g.authn.WaitReady(wctx)
		cancel()
		if err != nil {
			g.stop()
			err = fmt.Errorf("the keys of the new configuration were not loaded within %s: %w", wait, err)
		}
	}
	if err != nil {
		rl.metrics.ConfigReload(metrics.ReloadError)
		rl.mainLog.Error("configuration reload refused; the running configuration keeps serving",
			zap.Strings("problems", splitErrors(err)))
		return
	}
	rl.live.cur.Store(g)
	rl.metrics.ConfigReload(metrics.ReloadSuccess)
	rl.metrics.ConfigLoaded(rl.now())
	if len(kept) > 0 {
		rl.mainLog.Warn("configuration reloaded, but these settings take effect only at restart; their running values are kept",
			zap.Strings("kept", kept))
	}
	rl.mainLog.Info("configuration reloaded", zap.Any("config", configView(cfg)))

	// The old generation finishes what it has: its requests run on, its
	// WebSockets stay open until they close or the process stops. Its keys
	// stay in memory; their refresh stops.
	old.stop()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	var keep []*generation
	for _, r := range append(rl.retired, old) {
		if r.handler.OpenWebSockets() > 0 {
			keep = append(keep, r)
		}
	}
	rl.retired = keep
}

// closeSessions closes the WebSockets of revoked sessions on every
// generation (proxy.Handler.CloseSessions), retired ones included, and
// returns how many it closed. Safe to call from any goroutine.
func (rl *reloader) closeSessions(revoked func(sid, sub string) bool) int {
	rl.mu.Lock()
	gens := append([]*generation{rl.live.cur.Load()}, rl.retired...)
	rl.mu.Unlock()
	n := 0
	for _, g := range gens {
		n += g.handler.CloseSessions(revoked)
	}
	return n
}

// closeWebSockets closes the WebSockets of every generation, as
// proxy.Handler.CloseWebSockets does for one.
func (rl *reloader) closeWebSockets(ctx context.Context) error {
	rl.mu.Lock()
	gens := append([]*generation{rl.live.cur.Load()}, rl.retired...)
	rl.mu.Unlock()
	errs := make([]error, len(gens))
	var wg sync.WaitGroup
	for i, g := range gens {
		wg.Go(func() { errs[i] = g.handler.CloseWebSockets(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopAll stops the key refresh of the live generation (retired ones are
// stopped when retired).
func (rl *reloader) stopAll() { rl.live.cur.Load().stop() }

// keepRestartOnly copies into cfg the running values of the settings a
// reload cannot change, and names those that differed.
func keepRestartOnly(old, cfg *config.File) []string {
	var kept []string
	keep := func(name string, changed bool, restore func()) {
		if changed {
			kept = append(kept, name)
			restore()
		}
	}
	s, o := &cfg.Server, &old.Server
	// The listeners and the http.Server are built once.
	keep("server.listen", s.Listen != o.Listen, func() { s.Listen = o.Listen })
	keep("server.ops_listen", s.OpsListen != o.OpsListen, func() { s.OpsListen = o.OpsListen })
	keep("server.read_header_timeout", s.ReadHeaderTimeout != o.ReadHeaderTimeout, func() { s.ReadHeaderTimeout = o.ReadHeaderTimeout })
	keep("server.read_timeout", s.ReadTimeout != o.ReadTimeout, func() { s.ReadTimeout = o.ReadTimeout })
	keep("server.write_timeout", s.WriteTimeout != o.WriteTimeout, func() { s.WriteTimeout = o.WriteTimeout })
	keep("server.idle_timeout", s.IdleTimeout != o.IdleTimeout, func() { s.IdleTimeout = o.IdleTimeout })
	keep("server.shutdown_grace", s.ShutdownGrace != o.ShutdownGrace, func() { s.ShutdownGrace = o.ShutdownGrace })
	keep("server.max_header_bytes", s.MaxHeaderBytes != o.MaxHeaderBytes, func() { s.MaxHeaderBytes = o.MaxHeaderBytes })
	// The readiness check holds Hasura's URL; the logger is built once;
	// the Redis connection is opened once.
	keep("upstream.url", cfg.Upstream.URL != old.Upstream.URL, func() { cfg.Upstream.URL = old.Upstream.URL })
	keep("log", cfg.Log != old.Log, func() { cfg.Log = old.Log })
	keep("redis", !reflect.DeepEqual(cfg.Redis, old.Redis), func() { cfg.Redis = old.Redis })
	// The revocation set, its Redis subscription and the Clerk webhook
	// endpoint are built once.
	keep("clerk_webhook", !reflect.DeepEqual(cfg.ClerkWebhook, old.ClerkWebhook), func() { cfg.ClerkWebhook = old.ClerkWebhook })
	// API limits and their rate counters are built once, so a reload
	// cannot reset a window.
	keep("api_limits", !reflect.DeepEqual(cfg.APILimits, old.APILimits), func() { cfg.APILimits = old.APILimits })
	keep("graphql_schema_introspection", !reflect.DeepEqual(cfg.Introspection, old.Introspection), func() { cfg.Introspection = old.Introspection })
	keep("metadata_dir", cfg.MetadataDir != old.MetadataDir, func() { cfg.MetadataDir = old.MetadataDir })
	return kept
}
