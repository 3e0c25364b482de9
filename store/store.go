// Package store holds what replicas of the proxy share: the `redis:`
// configuration section and the Redis client built from it. API limits
// (rate counters) and revocation (revoked sessions) both keep their state
// in the process when no Redis is configured, and in Redis when one is, so
// that a limit of 60 a minute means 60 across every replica.
//
// Redis is reached through github.com/redis/go-redis/v9 with every call
// bounded by Config.Timeout: a Redis that stops answering costs a request at
// most that long, after which Config.OnError decides what the request gets.
package store

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// EnvRedisURL overrides Config.URL; it is Hasura EE's own name for the
// Redis its rate limiter uses, so an EE deployment's value can be reused.
const EnvRedisURL = "HASURA_GRAPHQL_RATE_LIMIT_REDIS_URL"

// What a request gets while Redis cannot answer (Config.OnError).
const (
	OnErrorAllow = "allow"
	OnErrorDeny  = "deny"
)

// Config is the `redis:` section. The zero URL means no Redis: every
// replica keeps its own state.
type Config struct {
	// URL is redis://[user:password@]host:port/db, rediss:// for TLS, or
	// unix:///path. It may carry a password, so it is a Secret: logs show
	// SafeURL.
	URL auth.Secret `yaml:"url"`
	// Timeout is the longest any request waits on Redis (dial, write and
	// read of one round trip).
	Timeout time.Duration `yaml:"timeout"`
	// OnError is allow or deny: what a request gets while Redis cannot
	// answer in Timeout.
	OnError string `yaml:"on_error"`
}

// DefaultConfig returns the defaults a config file overrides: no Redis, a
// 100 ms bound, and allow on error (an outage of the counter store must
// not become an outage of the API).
func DefaultConfig() Config {
	return Config{Timeout: 100 * time.Millisecond, OnError: OnErrorAllow}
}

// Enabled reports whether a Redis is configured.
func (c *Config) Enabled() bool { return c.URL != "" }

// Validate reports every problem, naming the field. It does no I/O.
func (c *Config) Validate() error {
	var errs []error
	if c.URL != "" {
		if _, err := redis.ParseURL(c.URL.Reveal()); err != nil {
			// go-redis errors quote nothing secret, but say only what is wrong.
			errs = append(errs, fmt.Errorf("redis.url: %s (write redis://host:6379/0, rediss://... for TLS)", urlProblem(c.URL.Reveal(), err)))
		}
	}
	if c.Timeout <= 0 || c.Timeout > 10*time.Second {
		errs = append(errs, fmt.Errorf("redis.timeout: must be between 1ms and 10s, not %s", c.Timeout))
	}
	switch c.OnError {
	case OnErrorAllow, OnErrorDeny:
	default:
		errs = append(errs, fmt.Errorf("redis.on_error: must be allow or deny, not %q", c.OnError))
	}
	return errors.Join(errs...)
}

// urlProblem describes a bad URL without echoing it (it may hold a
// password).
func urlProblem(raw string, err error) string {
	u, perr := url.Parse(raw)
	switch {
	case perr != nil:
		return "not a URL"
	case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
		return fmt.Sprintf("scheme %q is not redis, rediss or unix", u.Scheme)
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			return "not a valid Redis URL"
		}
		return "not a valid Redis URL: " + err.Error()
	}
}

// SafeURL is URL with any password removed, for logs.
func (c *Config) SafeURL() string {
	if c.URL == "" {
		return ""
	}
	u, err := url.Parse(c.URL.Reveal())
	if err != nil {
		return "[unparseable]"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	return u.Redacted()
}

// NewClient returns a client for a validated, enabled Config. It does not
// connect: the first command does, so a Redis that is down at start is an
// outage like any other, not a startup failure. The caller closes it.
func NewClient(c Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(c.URL.Reveal())
	if err != nil {
		return nil, fmt.Errorf("redis.url: %s", urlProblem(c.URL.Reveal(), err))
	}
	opt.DialTimeout = c.Timeout
	opt.ReadTimeout = c.Timeout
	opt.WriteTimeout = c.Timeout
	opt.PoolTimeout = c.Timeout
	// A retry would double the worst-case wait past Timeout.
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	// Identify nothing: CLIENT SETINFO is noise on older servers.
	opt.DisableIdentity = true
	return redis.NewClient(opt), nil
}
