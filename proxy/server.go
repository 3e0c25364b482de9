package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ServerConfig is the `server:` section: the listeners and their limits.
type ServerConfig struct {
	// Listen is the client address, e.g. ":8000".
	Listen string `yaml:"listen"`
	// OpsListen serves /metrics, /healthz and /readyz; never the client
	// port, because Hasura has its own /healthz there.
	OpsListen string `yaml:"ops_listen"`
	// ReadHeaderTimeout bounds reading request headers (slowloris).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response (a client that stops reading).
	// It must exceed upstream.response_header_timeout.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownGrace is how long in-flight requests may take to finish after
	// SIGTERM.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MaxHeaderBytes caps request headers (and so the token).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// WebhookPath serves Hasura's auth-webhook protocol on the client
	// listener when set (off by default).
	WebhookPath string `yaml:"webhook_path"`
	// CORSDomain is Hasura's HASURA_GRAPHQL_CORS_DOMAIN (which overrides
	// it): "*" (the default) or a comma-separated list of origins such as
	// "https://app.example.com, https://*.example.com, http://localhost:3000".
	// See CORS.
	CORSDomain string `yaml:"cors_domain"`
	// CORSDisabled is Hasura's HASURA_GRAPHQL_DISABLE_CORS: no CORS headers
	// at all, and OPTIONS requests are forwarded to Hasura.
	CORSDisabled bool `yaml:"cors_disabled"`
	// TrustedProxies lists the peers (CIDRs or addresses) whose
	// X-Forwarded-For may name the client IP that per-client limits use.
	// Empty (the default): the client is always the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AdminSecretThrottle limits wrong admin secrets per client IP
	// (adminthrottle.go).
	AdminSecretThrottle AdminThrottleConfig `yaml:"admin_secret_throttle"`
}

// Trusted returns the parsed TrustedProxies. Validate reports a bad entry;
// on a config that passed it, this never fails.
func (c *ServerConfig) Trusted() TrustedProxies {
	t, _ := ParseTrustedProxies("server.trusted_proxies", c.TrustedProxies)
	return t
}

// DefaultServerConfig returns the server defaults a config file overrides.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Listen:              ":8000",
		OpsListen:           ":9090",
		ReadHeaderTimeout:   10 * time.Second,
		ReadTimeout:         60 * time.Second,
		WriteTimeout:        120 * time.Second,
		IdleTimeout:         120 * time.Second,
		ShutdownGrace:       20 * time.Second,
		MaxHeaderBytes:      64 << 10,
		MaxBodyBytes:        10 << 20,
		CORSDomain:          corsDefaultDomain,
		AdminSecretThrottle: DefaultAdminThrottleConfig(),
	}
}

// Validate reports every problem, naming the field. It does no I/O.
func (c *ServerConfig) Validate() error {
	var errs []error
	add := func(field, msg string) { errs = append(errs, fmt.Errorf("server.%s: %s", field, msg)) }
	if c.Listen == "" {
		add("listen", "required, e.g. \":8000\"")
	}
	if c.OpsListen == "" {
		add("ops_listen", "required, e.g. \":9090\"")
	} else if c.OpsListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		// Port 0 asks the kernel for two different free ports.
		add("ops_listen", "must differ from server.listen (Hasura has its own /healthz on the client port)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout},
		{"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout},
		{"idle_timeout", c.IdleTimeout},
		{"shutdown_grace", c.ShutdownGrace},
	} {
		if d.v <= 0 {
			add(d.name, "must be positive")
		}
	}
	if c.MaxHeaderBytes < 4096 {
		add("max_header_bytes", "must be at least 4096")
	}
	if c.MaxBodyBytes < 1024 {
		add("max_body_bytes", "must be at least 1024")
	}
	if _, err := ParseTrustedProxies("server.trusted_proxies", c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if err := c.AdminSecretThrottle.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p := c.WebhookPath; p != "" {
		switch {
		case !strings.HasPrefix(p, "/"):
			add("webhook_path", "must start with /")
		case ShadowsHasura(p):
			add("webhook_path", "must not shadow a Hasura path")
		}
	}
	if _, err := ParseCORS(c.CORSDomain, c.CORSDisabled); err != nil {
		add("cors_domain", err.Error())
	}
	return errors.Join(errs...)
}

// CORS returns the parsed policy of a validated configuration.
func (c *ServerConfig) CORS() *CORS {
	p, err := ParseCORS(c.CORSDomain, c.CORSDisabled)
	if err != nil {
		return nil
	}
	return p
}

// NewServer returns the client-facing http.Server with every timeout set
// on purpose.
func NewServer(c ServerConfig, h http.Handler, log *zap.Logger) *http.Server {
	return &http.Server{
		Addr:              c.Listen,
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}
