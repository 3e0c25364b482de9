package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// AdminThrottleConfig is `server.admin_secret_throttle`: how many wrong
// admin secrets one client may present before its admin-secret attempts are
// refused without being compared.
type AdminThrottleConfig struct {
	// Failures is the number of wrong admin secrets a client may present
	// per Window. Default 5.
	Failures int `yaml:"failures"`
	// Window is the period Failures are counted over; a client that used
	// them up is refused until its window ends. Default 1m.
	Window time.Duration `yaml:"window"`
	// MaxClients bounds the clients remembered at once (about 100 bytes
	// each). Past it, expired entries are dropped, then preferably clients
	// that are not throttled. Default 10000.
	MaxClients int `yaml:"max_clients"`
}

// DefaultAdminThrottleConfig returns the defaults: 5 failures a minute,
// 10000 clients.
func DefaultAdminThrottleConfig() AdminThrottleConfig {
	return AdminThrottleConfig{Failures: 5, Window: time.Minute, MaxClients: 10000}
}

// Validate reports every problem, naming the field.
func (c *AdminThrottleConfig) Validate() error {
	var errs []error
	if c.Failures < 1 {
		errs = append(errs, errors.New("server.admin_secret_throttle.failures: must be at least 1"))
	}
	if c.Window <= 0 {
		errs = append(errs, errors.New("server.admin_secret_throttle.window: must be positive"))
	}
	if c.MaxClients < 1 {
		errs = append(errs, errors.New("server.admin_secret_throttle.max_clients: must be at least 1"))
	}
	return errors.Join(errs...)
}

// adminThrottle counts wrong admin secrets per client network (the IPv4
// address, or the IPv6 /64, which one host can fill) in fixed windows. It is
// safe for concurrent use; its memory is bounded by MaxClients.
type adminThrottle struct {
	cfg AdminThrottleConfig
	now func() time.Time

	mu        sync.Mutex
	clients   map[netip.Prefix]*throttleEntry
	lastSweep time.Time
}

type throttleEntry struct {
	start    time.Time // start of the current window
	failures int
}

func newAdminThrottle(cfg AdminThrottleConfig, now func() time.Time) *adminThrottle {
	if now == nil {
		now = time.Now
	}
	return &adminThrottle{cfg: cfg, now: now, clients: make(map[netip.Prefix]*throttleEntry)}
}

// throttleKey is the network a client address is counted under.
func throttleKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// blocked reports whether ip has used up its failures for the current
// window, and how long until the window ends.
func (t *adminThrottle) blocked(ip netip.Addr) (time.Duration, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.clients[throttleKey(ip)]
	if e == nil {
		return 0, false
	}
	end := e.start.Add(t.cfg.Window)
	if !now.Before(end) {
		return 0, false
	}
	return end.Sub(now), e.failures >= t.cfg.Failures
}

// fail records one wrong admin secret from ip.
func (t *adminThrottle) fail(ip netip.Addr) {
	now := t.now()
	key := throttleKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.clients[key]
	if e != nil && !now.Before(e.start.Add(t.cfg.Window)) {
		e.start, e.failures = now, 0
	}
	if e == nil {
		t.makeRoom(now)
		e = &throttleEntry{start: now}
		t.clients[key] = e
	}
	e.failures++
}

// evictProbes bounds the entries looked at to choose one to evict.
const evictProbes = 64

// makeRoom keeps the table under MaxClients: expired entries go first (at
// most one sweep per quarter window, so a flood of new addresses does not
// turn each insert into a scan), then an entry that is not throttling its
// client, among up to evictProbes looked at (a flood of addresses should not
// free the clients already throttled), else an arbitrary one.
func (t *adminThrottle) makeRoom(now time.Time) {
	if len(t.clients) < t.cfg.MaxClients {
		return
	}
	if now.Sub(t.lastSweep) >= t.cfg.Window/4 {
		t.lastSweep = now
		for k, e := range t.clients {
			if !now.Before(e.start.Add(t.cfg.Window)) {
				delete(t.clients, k)
			}
		}
	}
	for len(t.clients) >= t.cfg.MaxClients {
		var victim netip.Prefix
		probes := 0
		for k, e := range t.clients {
			if probes == 0 {
				victim = k
			}
			if e.failures < t.cfg.Failures {
				victim = k
				break
			}
			if probes++; probes == evictProbes {
				break
			}
		}
		delete(t.clients, victim)
	}
}

// size is the number of clients remembered.
func (t *adminThrottle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}

// throttledAuth throttles admin-secret attempts per client in front of an
// Authenticator. The client is the exchange's clientIP, set by ServeHTTP for
// requests that can carry an admin secret (headers, or a WebSocket's
// connection_init); without one (the webhook, whose caller is Hasura) the
// attempt is not throttled.
type throttledAuth struct {
	next     Authenticator
	throttle *adminThrottle
	h        *Handler
}

func (a *throttledAuth) Authenticate(ctx context.Context, hdr http.Header) (*auth.Session, error) {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	if x == nil || !x.clientIP.IsValid() || !presentsAdminSecret(hdr) {
		return a.next.Authenticate(ctx, hdr)
	}
	if wait, blocked := a.throttle.blocked(x.clientIP); blocked {
		// Hasura's answer to a wrong admin secret, whether or not this
		// one was right: a guesser learns nothing more by trying.
		a.h.metrics.AdminSecretThrottled()
		return nil, errThrottled(wait)
	}
	s, err := a.next.Authenticate(ctx, hdr)
	if errors.Is(err, auth.ErrBadAdminSecret) {
		a.throttle.fail(x.clientIP)
	}
	return s, err
}

// errThrottled is ErrBadAdminSecret with a log-only detail.
func errThrottled(wait time.Duration) *auth.Error {
	e := *auth.ErrBadAdminSecret
	e.Detail = fmt.Sprintf("admin secret not compared: too many wrong admin secrets from this client (server.admin_secret_throttle), retry in %s", wait.Round(time.Second))
	return &e
}
