package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
)

// newLogger builds the process logger from the log section: JSON lines by
// default (durations in seconds, for queries), zap's console format for
// `format: console` (durations as "1.5ms", for eyes).
func newLogger(c config.LogConfig, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.SecondsDurationEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		ec.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// Ops listener timeouts: probes and scrapes are small and local, so these
// are fixed rather than configured.
const (
	opsReadHeaderTimeout = 5 * time.Second
	opsReadTimeout       = 10 * time.Second
	opsWriteTimeout      = 30 * time.Second
	opsIdleTimeout       = 60 * time.Second
	// opsShutdownGrace bounds the scrape or probe in flight when the ops
	// listener closes, after the client listener has drained.
	opsShutdownGrace = time.Second
)

// serve runs the proxy until ctx is done, then drains in-flight requests
// within server.shutdown_grace. Its startup line ("starting") names the bound
// addresses, so a listen address of port 0 can be discovered from the log,
// the build (version, revision, goversion) and where the configuration came
// from (config_from: src). Each signal of reloads replaces the configuration
// (reload.go).
func serve(ctx context.Context, cfg *config.File, src config.Source, logOut io.Writer, reloads reloadSource) error {
	log, err := newLogger(cfg.Log, logOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	mainLog := log.Named("main")

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	// One Redis client for everything replicas share (revocations, rate
	// counters); nil without redis.url.
	var rdb *redis.Client
	if cfg.Redis.Enabled() {
		if rdb, err = store.NewClient(cfg.Redis); err != nil {
			return err
		}
		defer func() { _ = rdb.Close() }()
	}
	revoked, err := newRevocations(cfg, rdb, log.Named("revocation"), reg)
	if err != nil {
		return err
	}
	apiLimits, runLimits := newLimits(cfg, rdb, log, reg)
	build := readBuildInfo()
	metrics.RegisterBuildInfo(reg, build.Version, build.revisionLabel(), build.GoVersion)
	state := processState{revocations: revoked.set, limits: apiLimits}
	gen, err := newGeneration(cfg, log, m, state)
	if err != nil {
		return err
	}
	live := &liveHandler{}
	live.cur.Store(gen)
	rl := &reloader{live: live, load: reloads.load, log: log, mainLog: mainLog, metrics: m, now: time.Now,
		state: state}
	m.ConfigLoaded(time.Now())
	// A revocation closes the sockets of every generation, retired ones
	// included.
	revoked.closeSockets(rl.closeSessions)

	clientLn, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Server.Listen, err)
	}
	opsLn, err := net.Listen("tcp", cfg.Server.OpsListen)
	if err != nil {
		_ = clientLn.Close()
		return fmt.Errorf("listen %s: %w", cfg.Server.OpsListen, err)
	}

	health := newHealth(healthOptions{
		Keys:     live,
		Upstream: cfg.Upstream,
		Metrics:  m,
	})
	clientSrv := proxy.NewServer(cfg.Server, revoked.handler(live), log)
	opsSrv := &http.Server{
		Handler:           opsMux(reg, health),
		ReadHeaderTimeout: opsReadHeaderTimeout,
		ReadTimeout:       opsReadTimeout,
		WriteTimeout:      opsWriteTimeout,
		IdleTimeout:       opsIdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("ops")),
	}

	// Background work (key refresh, the readiness gauge) outlives ctx: keys
	// stay fresh while in-flight requests drain, and stop after.
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	var wg sync.WaitGroup
	gen.start()
	wg.Add(3)
	go func() {
		defer wg.Done()
		revoked.run(runCtx)
	}()
	go func() {
		defer wg.Done()
		runLimits(runCtx)
	}()
	go func() {
		defer wg.Done()
		health.run(runCtx, readyGaugeInterval)
	}()

	mainLog.Info("starting",
		zap.String("listen", clientLn.Addr().String()),
		zap.String("ops_listen", opsLn.Addr().String()),
		zap.String("version", build.Version),
		zap.String("revision", build.revisionLabel()),
		zap.String("goversion", build.GoVersion),
		zap.String("config_from", src.LogValue()),
		zap.Any("config", configView(cfg)),
	)
	for _, w := range config.Warnings(cfg) {
		mainLog.Warn("configuration warning", zap.String("warning", w))
	}
	errc := make(chan error, 2)
	go func() { errc <- serveUntilClosed(clientSrv, clientLn) }()
	go func() { errc <- serveUntilClosed(opsSrv, opsLn) }()

	var serveErr error
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case serveErr = <-errc:
			mainLog.Error("listener failed", zap.Error(serveErr))
			running = false
		case <-reloads.signals:
			rl.reload(ctx)
		}
	}
	// Unready at once, then stop accepting and drain with a fresh deadline
	// (ctx is already cancelled). The ops listener stays up while the client
	// listener drains, so probes see "shutting down" rather than a refused
	// connection.
	health.drain()
	mainLog.Info("shutting down: not ready, no new connections, draining in-flight requests",
		zap.Duration("grace", cfg.Server.ShutdownGrace))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace)
	defer cancel()
	// Shutdown does not track hijacked connections: WebSockets are closed
	// (1001) alongside it.
	wsClosed := make(chan error, 1)
	go func() { wsClosed <- rl.closeWebSockets(shutdownCtx) }()
	if err := clientSrv.Shutdown(shutdownCtx); err != nil {
		mainLog.Warn("in-flight requests did not finish within the grace period; closing them", zap.Error(err))
		_ = clientSrv.Close()
	}
	if err := <-wsClosed; err != nil {
		mainLog.Warn("websockets did not close within the grace period; cut them", zap.Error(err))
	}
	opsCtx, cancelOps := context.WithTimeout(context.Background(), opsShutdownGrace)
	defer cancelOps()
	if err := opsSrv.Shutdown(opsCtx); err != nil {
		_ = opsSrv.Close()
	}
	cancelRun()
	rl.stopAll()
	wg.Wait()
	mainLog.Info("stopped")
	return serveErr
}

func serveUntilClosed(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// opsMux serves the ops listener: /metrics, /healthz (the process is alive)
// and /readyz.
func opsMux(reg *prometheus.Registry, h *health) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", h.serveReady)
	return mux
}

// configView is the effective configuration for the startup log line, in
// the configuration file's own field names, with durations as Go duration
// strings ("5m0s") and every secret as "[REDACTED]" (auth.Secret redacts
// itself when marshalled). A jwk_url's credentials and query, which may hold
// an API key, are redacted too.
func configView(c *config.File) map[string]any {
	view, err := yamlGeneric(c)
	if err != nil {
		return map[string]any{"error": "cannot render the configuration: " + err.Error()}
	}
	// JWTSecret's claims_map entries only marshal well as JSON (Hasura's
	// form), and JSON omits the fields left empty: render secrets that way.
	authView, _ := view["auth"].(map[string]any)
	if authView == nil {
		return view
	}
	secret := func(s auth.JWTSecret) any {
		s.JWKURL = redactURL(s.JWKURL)
		v, err := jsonGeneric(s)
		if err != nil {
			return "cannot render: " + err.Error()
		}
		return v
	}
	// Only one of the two is in effect; the other would print as null.
	delete(authView, "jwt_secret")
	delete(authView, "jwt_secrets")
	if c.Auth.JWTSecret != nil && len(c.Auth.JWTSecrets) == 0 {
		authView["jwt_secret"] = secret(*c.Auth.JWTSecret)
	}
	if len(c.Auth.JWTSecrets) > 0 {
		list := make([]any, 0, len(c.Auth.JWTSecrets))
		for _, s := range c.Auth.JWTSecrets {
			list = append(list, secret(s))
		}
		authView["jwt_secrets"] = list
	}
	return view
}

// yamlGeneric renders v as YAML and decodes it back into plain maps, lists
// and scalars.
func yamlGeneric(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonGeneric renders v as JSON and decodes it back into plain maps, lists
// and scalars.
func jsonGeneric(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// redactURL hides a URL's userinfo and query, keeping what tells an
// operator where keys come from.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[REDACTED]"
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return raw
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString("[REDACTED]@")
	}
	b.WriteString(u.Host + u.EscapedPath())
	if u.RawQuery != "" {
		b.WriteString("?[REDACTED]")
	}
	return b.String()
}

// Readiness timing.
const (
	// upstreamCheckTimeout bounds one GET of Hasura's /healthz.
	upstreamCheckTimeout = 2 * time.Second
	// upstreamCheckTTL is how long one answer of Hasura's /healthz is
	// reused, so probes and the gauge do not hammer Hasura.
	upstreamCheckTTL = 2 * time.Second
	// readyGaugeInterval is how often the ready gauge is re-evaluated
	// without a probe asking.
	readyGaugeInterval = 5 * time.Second
)

// keySources is what readiness needs of the authenticator.
type keySources interface {
	// Ready reports nil when every key source has usable keys.
	Ready() error
}

// healthOptions configure newHealth.
type healthOptions struct {
	Keys     keySources
	Upstream proxy.Config
	Metrics  *metrics.Metrics
	// Client checks Hasura; nil means the tuned upstream transport with
	// upstreamCheckTimeout.
	Client *http.Client
	// Now is the clock of the upstream cache; nil means time.Now.
	Now func() time.Time
}

// health answers /readyz and keeps the ready gauge: ready when every key
// source has usable keys and Hasura's /healthz answers 200 (checked with a
// short timeout, the answer cached for upstreamCheckTTL), and the process is
// not shutting down. It is safe for concurrent use.
type health struct {
	keys     keySources
	client   *http.Client
	url      string
	now      func() time.Time
	metrics  *metrics.Metrics
	draining atomic.Bool

	mu      sync.Mutex // held during a check, so concurrent probes share one
	checked time.Time
	lastErr error
}

func newHealth(o healthOptions) *health {
	client := o.Client
	if client == nil {
		tr := proxy.NewTransport(o.Upstream)
		tr.MaxIdleConnsPerHost = 2
		client = &http.Client{Transport: tr, Timeout: upstreamCheckTimeout}
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &health{
		keys:    o.Keys,
		client:  client,
		url:     strings.TrimSuffix(o.Upstream.URL, "/") + "/healthz",
		now:     now,
		metrics: o.Metrics,
	}
}

// upstream checks Hasura's /healthz, or returns the cached answer.
func (h *health) upstream(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.checked.IsZero() && h.now().Sub(h.checked) < upstreamCheckTTL {
		return h.lastErr
	}
	// A probe that gives up must not leave "context canceled" cached for
	// the next one: the check runs to its own timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), upstreamCheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err == nil {
		var resp *http.Response
		resp, err = h.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("/healthz answered %d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("hasura: %w", err)
	}
	h.checked, h.lastErr = h.now(), err
	return err
}

// problems lists what is not ready; none means ready. It updates the ready
// gauge.
func (h *health) problems(ctx context.Context) []string {
	if h.draining.Load() {
		h.metrics.SetReady(false)
		return []string{"shutting down"}
	}
	var out []string
	if err := h.keys.Ready(); err != nil {
		// One line per problem, so the body reads as a list.
		for _, p := range splitErrors(err) {
			out = append(out, strings.Split(p, "\n")...)
		}
	}
	if err := h.upstream(ctx); err != nil {
		out = append(out, err.Error())
	}
	// A drain that started during the check wins.
	h.metrics.SetReady(len(out) == 0 && !h.draining.Load())
	return out
}

// drain turns the process unready for good.
func (h *health) drain() {
	h.draining.Store(true)
	h.metrics.SetReady(false)
}

// run re-evaluates readiness every interval until ctx is done, so the ready
// gauge is meaningful even when nothing probes /readyz.
func (h *health) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		h.problems(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *health) serveReady(w http.ResponseWriter, r *http.Request) {
	problems := h.problems(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			_, _ = io.WriteString(w, "not ready: "+p+"\n")
		}
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}
