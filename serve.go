package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

// newLogger builds the process logger from the log section.
func newLogger(c logConfig, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// serve runs the proxy until ctx is done, then drains in-flight requests
// within server.shutdown_grace.
func serve(ctx context.Context, cfg *fileConfig, logOut io.Writer) error {
	log, err := newLogger(cfg.Log, logOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	authn, err := auth.New(auth.Options{
		Config:      cfg.Auth,
		AdminSecret: cfg.Upstream.AdminSecret,
		Logger:      log.Named("auth"),
		Metrics:     m,
	})
	if err != nil {
		return err
	}
	handler, err := proxy.New(proxy.Options{
		Upstream:     cfg.Upstream,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		ErrorStatus:  cfg.Auth.ErrorStatus,
		Auth:         authn,
		Logger:       log.Named("proxy"),
		Metrics:      m,
		LogUserID:    cfg.Log.UserID,
	})
	if err != nil {
		return err
	}

	clientLn, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Server.Listen, err)
	}
	opsLn, err := net.Listen("tcp", cfg.Server.OpsListen)
	if err != nil {
		_ = clientLn.Close()
		return fmt.Errorf("listen %s: %w", cfg.Server.OpsListen, err)
	}

	var draining atomic.Bool
	health := newHealth(cfg.Upstream, authn, &draining)
	ops := http.NewServeMux()
	ops.Handle("/metrics", metrics.Handler(reg))
	ops.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	ops.HandleFunc("/readyz", health.serveReady)

	clientSrv := proxy.NewServer(cfg.Server, handler, log)
	opsSrv := &http.Server{
		Handler:           ops,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("ops")),
	}

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		authn.Run(runCtx)
	}()

	log.Info("starting",
		zap.String("listen", clientLn.Addr().String()),
		zap.String("ops_listen", opsLn.Addr().String()),
		zap.Any("config", redactedView(cfg)),
	)
	errc := make(chan error, 2)
	go func() { errc <- serveUntilClosed(clientSrv, clientLn) }()
	go func() { errc <- serveUntilClosed(opsSrv, opsLn) }()

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.Duration("grace", cfg.Server.ShutdownGrace))
	case serveErr = <-errc:
		log.Error("listener failed", zap.Error(serveErr))
	}
	// Unready at once, then stop accepting and drain with a fresh deadline
	// (ctx is already cancelled).
	draining.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace)
	defer cancel()
	if err := clientSrv.Shutdown(shutdownCtx); err != nil {
		log.Warn("in-flight requests did not finish within the grace period", zap.Error(err))
		_ = clientSrv.Close()
	}
	_ = opsSrv.Shutdown(shutdownCtx)
	cancelRun()
	wg.Wait()
	log.Info("stopped")
	return serveErr
}

func serveUntilClosed(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// redactedView is the effective configuration for the startup log line:
// secrets render as [REDACTED] through auth.Secret.
func redactedView(c *fileConfig) any {
	return struct {
		Server   proxy.ServerConfig
		Upstream proxy.Config
		Auth     auth.Config
		Log      logConfig
	}{c.Server, c.Upstream, c.Auth, c.Log}
}

// health answers /readyz: ready when every key source has usable keys and
// Hasura's /healthz answers 200, checked with a short timeout and cached
// briefly so probes do not hammer Hasura.
type health struct {
	authn    *auth.Authenticator
	client   *http.Client
	url      string
	draining *atomic.Bool

	mu      sync.Mutex
	checked time.Time
	lastErr error
}

func newHealth(up proxy.Config, authn *auth.Authenticator, draining *atomic.Bool) *health {
	tr := proxy.NewTransport(up)
	tr.MaxIdleConnsPerHost = 2
	return &health{
		authn:    authn,
		client:   &http.Client{Transport: tr, Timeout: 2 * time.Second},
		url:      up.URL + "/healthz",
		draining: draining,
	}
}

const upstreamCheckTTL = 2 * time.Second

func (h *health) upstream(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.checked.IsZero() && time.Since(h.checked) < upstreamCheckTTL {
		return h.lastErr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err == nil {
		var resp *http.Response
		resp, err = h.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("hasura /healthz answered %d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("hasura: %w", err)
	}
	h.checked, h.lastErr = time.Now(), err
	return err
}

func (h *health) serveReady(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if h.draining.Load() {
		problems = append(problems, "shutting down")
	}
	if err := h.authn.Ready(); err != nil {
		problems = append(problems, splitErrors(err)...)
	}
	if err := h.upstream(r.Context()); err != nil {
		problems = append(problems, err.Error())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			_, _ = io.WriteString(w, "not ready: "+p+"\n")
		}
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}
