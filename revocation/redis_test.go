package revocation

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store/storetest"
)

// wait bounds every wait on an event; the events themselves come within
// milliseconds.
const wait = 10 * time.Second

// replica is one process's revocation state on a shared Redis.
type replica struct {
	set        *Set
	redis      *Redis
	revoked    chan Revocation // every revocation that takes effect
	subscribed chan struct{}   // every (re)subscription with its load
}

func startReplica(t *testing.T, url string) *replica {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.URL = auth.Secret(url)
	client, err := store.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{set: NewSet(nil, nil), revoked: make(chan Revocation, 100), subscribed: make(chan struct{}, 100)}
	r.set.OnRevoke(func(rev Revocation) { r.revoked <- rev })
	r.redis = NewRedis(client, r.set, zaptest.NewLogger(t))
	r.redis.subscribed = func() { r.subscribed <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.redis.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; _ = client.Close() })
	return r
}

func (r *replica) waitSubscribed(t *testing.T) {
	t.Helper()
	select {
	case <-r.subscribed:
	case <-time.After(wait):
		t.Fatal("not subscribed to Redis")
	}
}

func (r *replica) waitRevoked(t *testing.T, want Revocation) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case got := <-r.revoked:
			if got.Kind == want.Kind && got.ID == want.ID {
				if !got.Until.Equal(want.Until) {
					t.Errorf("Until = %v; want %v", got.Until, want.Until)
				}
				return
			}
		case <-deadline:
			t.Fatalf("%s %s did not take effect", want.Kind, want.ID)
		}
	}
}

func TestRedisSharing(t *testing.T) {
	rs := storetest.Start(t)
	a, b := startReplica(t, rs.URL()), startReplica(t, rs.URL())
	a.waitSubscribed(t)
	b.waitSubscribed(t)

	rev := Revocation{Kind: KindSession, ID: "sess_1", Until: time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())}
	a.set.Add(rev, metrics.SourceLocal)
	a.waitRevoked(t, rev)
	fresh, err := a.redis.Share(context.Background(), rev, "msg_1")
	if err != nil || !fresh {
		t.Fatalf("Share = %v, %v; want true, nil", fresh, err)
	}
	b.waitRevoked(t, rev)
	if !b.set.Revoked("sess_1", "", time.Now()) {
		t.Error("replica b does not refuse sess_1")
	}
	if fresh, err := b.redis.Share(context.Background(), rev, "msg_1"); err != nil || fresh {
		t.Errorf("Share of the same delivery = %v, %v; want false, nil", fresh, err)
	}
	if ttl, err := rs.Do("PTTL", KeyPrefix+"session:sess_1"); err != nil || ttl[0] != ':' || ttl == ":-1" {
		t.Errorf("PTTL of the revocation key = %q, %v; want a positive TTL", ttl, err)
	}

	// A replica started later loads what is stored; garbage is skipped.
	if _, err := rs.Do("SET", KeyPrefix+"user:user_x", "not a number"); err != nil {
		t.Fatal(err)
	}
	user := Revocation{Kind: KindUser, ID: "user_1", Until: time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())}
	if _, err := a.redis.Share(context.Background(), user, ""); err != nil {
		t.Fatal(err)
	}
	b.waitRevoked(t, user)
	c := startReplica(t, rs.URL())
	c.waitSubscribed(t)
	for _, tt := range []struct{ sid, sub string }{{"sess_1", ""}, {"", "user_1"}} {
		if !c.set.Revoked(tt.sid, tt.sub, time.Now()) {
			t.Errorf("late replica: Revoked(%q, %q) = false; want true", tt.sid, tt.sub)
		}
	}
	if c.set.Revoked("", "user_x", time.Now()) {
		t.Error("late replica took an unreadable key")
	}
}

// TestRedisOutage: with Redis down, Share fails within the timeout; once it
// is back, replicas subscribe again and a new Share reaches them.
func TestRedisOutage(t *testing.T) {
	rs := storetest.Start(t)
	a, b := startReplica(t, rs.URL()), startReplica(t, rs.URL())
	a.waitSubscribed(t)
	b.waitSubscribed(t)

	rs.Stop()
	rev := Revocation{Kind: KindSession, ID: "sess_down", Until: time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())}
	start := time.Now()
	if _, err := a.redis.Share(context.Background(), rev, "msg_down"); err == nil {
		t.Fatal("Share with Redis stopped = nil error; want one")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Share with Redis stopped took %v; want about redis.timeout", d)
	}

	rs.Restart()
	a.waitSubscribed(t)
	b.waitSubscribed(t)
	if fresh, err := a.redis.Share(context.Background(), rev, "msg_down"); err != nil || !fresh {
		t.Fatalf("Share after the restart = %v, %v; want true, nil (the failed try left no trace)", fresh, err)
	}
	b.waitRevoked(t, rev)

	// A revocation stored while a replica's subscription was down (here:
	// stored without a message) is loaded when it subscribes again.
	quiet := Revocation{Kind: KindSession, ID: "sess_quiet", Until: time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())}
	if _, err := rs.Do("SET", KeyPrefix+"session:sess_quiet", strconv.FormatInt(quiet.Until.UnixMilli(), 10), "PX", "3600000"); err != nil {
		t.Fatal(err)
	}
	// Garbage on the channel is skipped.
	if _, err := rs.Do("PUBLISH", Channel, "not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	b.waitSubscribed(t)
	b.waitRevoked(t, quiet)
}
