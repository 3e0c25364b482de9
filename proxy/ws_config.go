package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// WebSocketConfig is the `websocket:` section: limits and switches of the
// GraphQL-over-WebSocket path. In proxy.Options, zero fields take the values
// of DefaultWebSocketConfig.
type WebSocketConfig struct {
	// MaxConnections caps open client sockets (those still waiting for
	// connection_init included). Upgrades beyond it are refused with 503.
	// Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxMessageBytes caps one message in either direction; a larger one
	// closes the socket with 1009. Live queries can return large results.
	// Default 8 MiB.
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// InitTimeout is how long a client may take to send connection_init
	// after the upgrade; then the socket is closed with 4408. Default 10s.
	InitTimeout time.Duration `yaml:"init_timeout"`
	// WriteTimeout bounds delivering one message to a peer (client or
	// Hasura). A peer that does not take it in time is disconnected, so a
	// slow reader never holds the other direction. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// HandshakeTimeout bounds connecting to Hasura's WebSocket, TCP dial and
	// upgrade included. Default 10s.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// ReadCookie reads the Cookie header of the upgrade request for
	// authentication, like HASURA_GRAPHQL_WS_READ_COOKIE; off by default, as
	// in Hasura, because any web page can open a socket that carries the
	// user's cookies. Requires AllowedOrigins or a server.cors_domain list,
	// which then stands in for AllowedOrigins (CheckReadCookie).
	ReadCookie bool `yaml:"read_cookie"`
	// AllowedOrigins, when not empty, refuses upgrades whose Origin header is
	// not in the list (exact "scheme://host[:port]", case-insensitive) with
	// Hasura's 400 access-denied. Requests without Origin (non-browser
	// clients) are not affected. Empty allows every origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// TypePrefixBytes is how much of a client message after connection_init
	// the proxy holds while its top-level "type" is unknown. A message that
	// ends within it is relayed whole; a longer one is streamed to Hasura as
	// it arrives, so a socket holds at most this much of a message however
	// large it is. A value above MaxMessageBytes acts as MaxMessageBytes.
	// Default 64 KiB.
	TypePrefixBytes int64 `yaml:"type_prefix_bytes"`
	// MessageTimeout bounds receiving one client message after
	// connection_init, from its first frame to its last; a message not
	// finished in time closes the socket with 4408. An idle socket has no
	// deadline (legacy clients send nothing while they listen). Default 30s.
	MessageTimeout time.Duration `yaml:"message_timeout"`
	// BufferBudgetBytes caps the bytes the whole process holds for client
	// messages that have not arrived whole (before connection_init, and the
	// prefixes and stream buffers after it). A read the budget cannot cover
	// closes its socket with 1013 (try again later). Default 32 MiB.
	BufferBudgetBytes int64 `yaml:"buffer_budget_bytes"`
	// MaxPendingPerIP caps the sockets one client IP (IPv6: its /64) may
	// hold open before their connection_init is done; further upgrades from
	// it get 503. Default 64.
	MaxPendingPerIP int `yaml:"max_pending_per_ip"`
	// MaxConnectionsPerUser caps the open sockets of one user (the token's
	// sub, per JWT secret); a socket over it is closed with 4429 after its
	// connection_init. The admin secret and the unauthorized role are not
	// capped per user. Default 100.
	MaxConnectionsPerUser int `yaml:"max_connections_per_user"`
}

// DefaultWebSocketConfig returns the defaults a config file overrides.
func DefaultWebSocketConfig() WebSocketConfig {
	return WebSocketConfig{
		MaxConnections:   10000,
		MaxMessageBytes:  8 << 20,
		InitTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		HandshakeTimeout: 10 * time.Second,

		TypePrefixBytes:       64 << 10,
		MessageTimeout:        30 * time.Second,
		BufferBudgetBytes:     32 << 20,
		MaxPendingPerIP:       64,
		MaxConnectionsPerUser: 100,
	}
}

// withDefaults fills zero fields from DefaultWebSocketConfig.
func (c WebSocketConfig) withDefaults() WebSocketConfig {
	d := DefaultWebSocketConfig()
	if c.MaxConnections == 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = d.InitTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	c.limitDefaults(d)
	return c
}

// Validate reports every problem, naming the field. It does no I/O.
func (c *WebSocketConfig) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("websocket.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.MaxConnections < 1 {
		add("max_connections", "must be at least 1")
	}
	if c.MaxMessageBytes < minMessageBytes || c.MaxMessageBytes > 1<<30 {
		add("max_message_bytes", "must be between %d and 1073741824, not %d", minMessageBytes, c.MaxMessageBytes)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"init_timeout", c.InitTimeout},
		{"write_timeout", c.WriteTimeout},
		{"handshake_timeout", c.HandshakeTimeout},
		{"message_timeout", c.MessageTimeout},
	} {
		if d.v <= 0 {
			add(d.name, "must be positive")
		}
	}
	for i, o := range c.AllowedOrigins {
		if _, ok := normalizeOrigin(o); !ok {
			add(fmt.Sprintf("allowed_origins[%d]", i), "must be an origin such as https://app.example.com (scheme, host and optional port only), not %q", o)
		}
	}
	errs = append(errs, c.validateLimits()...)
	return errors.Join(errs...)
}

// normalizeOrigin returns the lower-case "scheme://host[:port]" of an
// origin, without a default port, and whether it is one.
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	// Browsers leave the default port out of Origin.
	if u.Scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	} else {
		host = strings.TrimSuffix(host, ":80")
	}
	return u.Scheme + "://" + host, true
}
