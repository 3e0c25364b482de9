package auth

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of JWKSConfig, applied by ApplyDefaults to fields left zero.
const (
	DefaultJWKSRefreshInterval           = 5 * time.Minute
	DefaultJWKSUnknownKIDRefreshInterval = 30 * time.Second
	DefaultJWKSMaxStale                  = 24 * time.Hour
	DefaultJWKSFetchTimeout              = 5 * time.Second
	DefaultJWKSMinRefreshInterval        = time.Minute
	DefaultJWKSMaxRefreshInterval        = time.Hour
	DefaultJWKSUnknownKIDWait            = time.Second
	DefaultJWKSMaxBodyBytes              = 1 << 20
)

// JWKSConfig tunes how keys are fetched from a jwk_url (YAML auth.jwks). It
// applies to every remote key source. Durations are Go duration strings in
// YAML ("5m", "30s"); a bare number is a decoding error, never nanoseconds.
// The zero value means "all defaults" once ApplyDefaults has run.
type JWKSConfig struct {
	// RefreshInterval is how often keys are refetched when the response
	// says nothing usable about caching (no Cache-Control max-age, no-cache,
	// must-revalidate, no Expires). Default 5m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// UnknownKIDRefreshInterval is the least time between two refreshes
	// triggered by tokens naming an unknown kid. The first one is allowed at
	// once. Default 30s.
	UnknownKIDRefreshInterval time.Duration `yaml:"unknown_kid_refresh_interval"`
	// MaxStale is how long the last good keys keep being used after the last
	// successful fetch while refreshes fail. Past it, tokens are refused with
	// NoUsableKeys. Default 24h.
	MaxStale time.Duration `yaml:"max_stale"`
	// FetchTimeout bounds one whole fetch: connect, TLS, headers and body.
	// Default 5s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MinRefreshInterval is the lower clamp of a Cache-Control max-age or an
	// Expires, and the interval used where Hasura refetches at once
	// (no-cache, no-store, must-revalidate without max-age, max-age=0, an
	// Expires in the past). Default 1m.
	MinRefreshInterval time.Duration `yaml:"min_refresh_interval"`
	// MaxRefreshInterval is the upper clamp of a Cache-Control max-age or
	// an Expires.
	// Default 1h.
	MaxRefreshInterval time.Duration `yaml:"max_refresh_interval"`
	// UnknownKIDWait is the longest a request waits for the refresh its
	// unknown kid triggered (or joined) before it is refused. Default 1s.
	UnknownKIDWait time.Duration `yaml:"unknown_kid_wait"`
	// MaxBodyBytes caps the JWKS response body; larger answers are refused.
	// Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// ApplyDefaults sets every zero field to its default. Negative values are left
// for Validate to report.
func (c *JWKSConfig) ApplyDefaults() {
	setDefault(&c.RefreshInterval, DefaultJWKSRefreshInterval)
	setDefault(&c.UnknownKIDRefreshInterval, DefaultJWKSUnknownKIDRefreshInterval)
	setDefault(&c.MaxStale, DefaultJWKSMaxStale)
	setDefault(&c.FetchTimeout, DefaultJWKSFetchTimeout)
	setDefault(&c.MinRefreshInterval, DefaultJWKSMinRefreshInterval)
	setDefault(&c.MaxRefreshInterval, DefaultJWKSMaxRefreshInterval)
	setDefault(&c.UnknownKIDWait, DefaultJWKSUnknownKIDWait)
	setDefault(&c.MaxBodyBytes, DefaultJWKSMaxBodyBytes)
}

func setDefault[T time.Duration | int64](p *T, def T) {
	if *p == 0 {
		*p = def
	}
}

// Validate reports every problem of c at once (errors.Join), each naming its
// field under the prefix field (normally "auth.jwks"). It does no I/O. Call
// it after ApplyDefaults: a zero field is reported as not positive.
func (c JWKSConfig) Validate(field string) error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", field, name, fmt.Sprintf(format, args...)))
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"refresh_interval", c.RefreshInterval},
		{"unknown_kid_refresh_interval", c.UnknownKIDRefreshInterval},
		{"max_stale", c.MaxStale},
		{"fetch_timeout", c.FetchTimeout},
		{"min_refresh_interval", c.MinRefreshInterval},
		{"max_refresh_interval", c.MaxRefreshInterval},
		{"unknown_kid_wait", c.UnknownKIDWait},
	}
	allPositive := true
	for _, p := range positive {
		if p.d <= 0 {
			bad(p.name, "must be positive")
			allPositive = false
		}
	}
	if c.MaxBodyBytes <= 0 {
		bad("max_body_bytes", "must be positive")
	}
	if !allPositive {
		return errors.Join(errs...)
	}
	if c.MinRefreshInterval > c.MaxRefreshInterval {
		bad("min_refresh_interval", "must not exceed max_refresh_interval (%s)", c.MaxRefreshInterval)
	} else if c.RefreshInterval < c.MinRefreshInterval || c.RefreshInterval > c.MaxRefreshInterval {
		bad("refresh_interval", "must be between min_refresh_interval (%s) and max_refresh_interval (%s)",
			c.MinRefreshInterval, c.MaxRefreshInterval)
	}
	// Keys must not expire between two scheduled refreshes of a healthy JWKS.
	if c.MaxStale <= c.MaxRefreshInterval {
		bad("max_stale", "must be longer than max_refresh_interval (%s), or healthy keys expire between refreshes",
			c.MaxRefreshInterval)
	}
	return errors.Join(errs...)
}

// JWKSAlgorithms returns the signature algorithms accepted for tokens verified
// with keys from a jwk_url: asymmetric only, so a published symmetric key or
// an HS/RS confusion can never verify a token. The caller pins its parser to
// this list (jwt.WithValidMethods). It returns a fresh slice on every call.
func JWKSAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}
