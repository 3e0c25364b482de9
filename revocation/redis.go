package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Redis names. Every replica of one deployment must use the same Redis
// database; keys and channel are prefixed so the database can be shared
// with the API limits.
const (
	// KeyPrefix + kind + ":" + id holds a revocation's Until (Unix
	// milliseconds), expiring at Until.
	KeyPrefix = "hasura-auth-proxy:revoked:"
	// deliveryPrefix + svix-id marks a delivery as shared, so a redelivery
	// to any replica is acknowledged without being applied again.
	deliveryPrefix = "hasura-auth-proxy:clerk-delivery:"
	// Channel carries each new revocation to the running replicas.
	Channel = "hasura-auth-proxy:revocations"
)

// Subscriber timing.
const (
	// pingEvery checks an idle subscription, so a Redis that vanished
	// without closing the connection is noticed.
	pingEvery = 15 * time.Second
	// minBackoff and maxBackoff bound the wait between attempts to
	// subscribe again after an outage.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
	// scanCount is the SCAN batch of the load at (re)subscription.
	scanCount = 500
)

// shareScript stores and announces a revocation once per delivery, in one
// atomic round trip. KEYS[1] the revocation key, KEYS[2] the delivery key
// (ignored when ARGV[3] is empty); ARGV[1] Until in Unix milliseconds,
// ARGV[2] the channel message, ARGV[3] "1" to deduplicate by delivery.
// The revocation key keeps the later of two Untils.
var shareScript = redis.NewScript(`
if ARGV[3] == "1" then
  if not redis.call("SET", KEYS[2], "1", "NX", "PXAT", ARGV[1]) then return 0 end
end
local cur = tonumber(redis.call("GET", KEYS[1]) or "0") or 0
if cur < tonumber(ARGV[1]) then
  redis.call("SET", KEYS[1], ARGV[1], "PXAT", ARGV[1])
end
redis.call("PUBLISH", KEYS[3], ARGV[2])
return 1
`)

// message is what Channel carries.
type message struct {
	Kind  string `json:"kind"`
	ID    string `json:"id"`
	Until int64  `json:"until"` // Unix milliseconds
}

// Redis shares revocations through a Redis: Share writes them, Run applies
// everyone's to the Set. It is safe for concurrent use.
type Redis struct {
	client *redis.Client
	set    *Set
	log    *zap.Logger
	// subscribed is called after each successful (re)subscription and
	// load (tests wait on it); nil in production.
	subscribed func()
}

// NewRedis returns the Redis sharing for set, on client (store.NewClient:
// every call bounded by redis.timeout). The caller owns client.
func NewRedis(client *redis.Client, set *Set, log *zap.Logger) *Redis {
	if log == nil {
		log = zap.NewNop()
	}
	return &Redis{client: client, set: set, log: log}
}

func revocationKey(kind, id string) string { return KeyPrefix + kind + ":" + id }

// Share implements Shared: one script call, bounded by the client's
// timeout.
func (r *Redis) Share(ctx context.Context, rev Revocation, delivery string) (bool, error) {
	msg, err := json.Marshal(message{Kind: rev.Kind, ID: rev.ID, Until: rev.Until.UnixMilli()})
	if err != nil {
		return false, err
	}
	dedupe := "0"
	if delivery != "" {
		dedupe = "1"
	}
	n, err := shareScript.Run(ctx, r.client,
		[]string{revocationKey(rev.Kind, rev.ID), deliveryPrefix + delivery, Channel},
		strconv.FormatInt(rev.Until.UnixMilli(), 10), string(msg), dedupe).Int()
	if err != nil {
		return false, fmt.Errorf("redis: share revocation: %w", err)
	}
	return n == 1, nil
}

// Run subscribes to Channel and applies every revocation published there
// until ctx is done. After each (re)subscription it loads every revocation
// key, so what was published while this replica was away (or before it
// started) takes effect too. Redis being down is retried with a backoff of
// at most maxBackoff; it never ends Run.
func (r *Redis) Run(ctx context.Context) {
	backoff := minBackoff
	// Only the first failure of an outage is a warning: the retries every
	// maxBackoff would flood the log.
	lvl := zap.WarnLevel
	for ctx.Err() == nil {
		loaded, err := r.subscribe(ctx)
		if loaded {
			backoff, lvl = minBackoff, zap.WarnLevel
		}
		if err != nil && ctx.Err() == nil {
			r.log.Log(lvl, "revocations: redis unavailable; retrying (a replica started later, or back from an outage, loads what it missed)", zap.Error(err))
			lvl = zap.DebugLevel
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// subscribe runs one subscription until it fails or ctx is done. It
// reports whether it got as far as loading the stored revocations, and why
// it ended.
func (r *Redis) subscribe(ctx context.Context) (bool, error) {
	ps := r.client.Subscribe(ctx, Channel)
	defer ps.Close()
	// A read blocked on the connection does not watch ctx: closing the
	// subscription ends it.
	defer context.AfterFunc(ctx, func() { _ = ps.Close() })()
	loaded := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if err != nil {
			if ctx.Err() != nil {
				return loaded, nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && loaded {
				// Idle: make sure the connection still leads to Redis.
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			return loaded, err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// Subscribed before loading: nothing published from now on
			// is missed.
			n, err := r.load(ctx)
			if err != nil {
				return false, err
			}
			loaded = true
			r.log.Info("revocations: subscribed to redis", zap.Int("loaded", n))
			if r.subscribed != nil {
				r.subscribed()
			}
		case *redis.Message:
			r.apply(m.Payload)
		}
	}
}

// apply puts one channel message in effect.
func (r *Redis) apply(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		r.log.Warn("revocations: unreadable message on the redis channel")
		return
	}
	r.set.Add(Revocation{Kind: m.Kind, ID: m.ID, Until: time.UnixMilli(m.Until)}, metrics.SourceRedis)
}

// load puts every stored revocation in effect and returns how many it
// read.
func (r *Redis) load(ctx context.Context) (int, error) {
	var cursor uint64
	n := 0
	for {
		keys, next, err := r.client.Scan(ctx, cursor, KeyPrefix+"*", scanCount).Result()
		if err != nil {
			return n, fmt.Errorf("redis: scan revocations: %w", err)
		}
		if len(keys) > 0 {
			vals, err := r.client.MGet(ctx, keys...).Result()
			if err != nil {
				return n, fmt.Errorf("redis: read revocations: %w", err)
			}
			for i, k := range keys {
				kind, id, ok := strings.Cut(strings.TrimPrefix(k, KeyPrefix), ":")
				s, isStr := vals[i].(string)
				if !ok || !isStr {
					continue // expired between SCAN and MGET, or not ours
				}
				ms, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					continue
				}
				r.set.Add(Revocation{Kind: kind, ID: id, Until: time.UnixMilli(ms)}, metrics.SourceRedis)
				n++
			}
		}
		if next == 0 {
			return n, nil
		}
		cursor = next
	}
}
