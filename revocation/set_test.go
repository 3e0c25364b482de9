package revocation

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// metricValue reads one series (counter or gauge) of reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metrics.Namespace+"_"+name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue series
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func TestSetLifetimeAndPrune(t *testing.T) {
	c := &clock{t: t0}
	reg := prometheus.NewRegistry()
	s := NewSet(c.now, metrics.NewRevocation(reg))
	var got []Revocation
	s.OnRevoke(func(r Revocation) { got = append(got, r) })

	if s.Revoked("sess_1", "user_1", c.now()) {
		t.Fatal("empty set revokes")
	}
	sess := Revocation{Kind: KindSession, ID: "sess_1", Until: t0.Add(time.Hour)}
	user := Revocation{Kind: KindUser, ID: "user_9", Until: t0.Add(2 * time.Hour)}
	if !s.Add(sess, metrics.SourceLocal) {
		t.Error("Add(session) = false; want true")
	}
	if s.Add(sess, metrics.SourceRedis) {
		t.Error("second Add of the same revocation = true; want false")
	}
	if !s.Add(user, metrics.SourceRedis) {
		t.Error("Add(user) = false; want true")
	}
	if s.Add(Revocation{Kind: KindSession, ID: "sess_old", Until: t0}, metrics.SourceLocal) {
		t.Error("Add of a revocation already past = true; want false")
	}
	if s.Add(Revocation{Kind: "org", ID: "org_1", Until: t0.Add(time.Hour)}, metrics.SourceLocal) {
		t.Error("Add of an unknown kind = true; want false")
	}
	if len(got) != 2 || got[0] != sess || got[1] != user {
		t.Errorf("OnRevoke got %v; want [%v %v]", got, sess, user)
	}

	tests := []struct {
		name     string
		at       time.Duration
		sid, sub string
		want     bool
	}{
		{"session", 0, "sess_1", "user_1", true},
		{"user", 0, "sess_2", "user_9", true},
		{"neither", 0, "sess_2", "user_1", false},
		{"empty ids", 0, "", "", false},
		{"session is a user id", 0, "user_9", "", false},
		{"user is a session id", 0, "", "sess_1", false},
		{"session just before its end", time.Hour - time.Nanosecond, "sess_1", "", true},
		{"session at its end", time.Hour, "sess_1", "", false},
		{"user after the session ended", time.Hour, "", "user_9", true},
		{"user at its end", 2 * time.Hour, "", "user_9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Revoked(tt.sid, tt.sub, t0.Add(tt.at)); got != tt.want {
				t.Errorf("Revoked(%q, %q, t0+%s) = %v; want %v", tt.sid, tt.sub, tt.at, got, tt.want)
			}
		})
	}

	if got := metricValue(t, reg, "revocations_applied_total", map[string]string{"source": "local"}); got != 1 {
		t.Errorf("revocations_applied_total{local} = %v; want 1", got)
	}
	if got := metricValue(t, reg, "revocations_applied_total", map[string]string{"source": "redis"}); got != 1 {
		t.Errorf("revocations_applied_total{redis} = %v; want 1", got)
	}
	if got := metricValue(t, reg, "revoked_entries", map[string]string{"kind": "session"}); got != 1 {
		t.Errorf("revoked_entries{session} = %v; want 1", got)
	}
	if n := s.Prune(t0.Add(time.Hour)); n != 1 {
		t.Errorf("Prune(t0+1h) left %d; want 1", n)
	}
	if got := metricValue(t, reg, "revoked_entries", map[string]string{"kind": "session"}); got != 0 {
		t.Errorf("revoked_entries{session} after prune = %v; want 0", got)
	}

	// A revocation of an ended session takes effect again (and closes
	// sockets again); one that only extends does not.
	c.add(time.Hour)
	again := Revocation{Kind: KindSession, ID: "sess_1", Until: c.now().Add(time.Hour)}
	if !s.Add(again, metrics.SourceLocal) {
		t.Error("Add after expiry = false; want true")
	}
	longer := again
	longer.Until = again.Until.Add(time.Hour)
	if s.Add(longer, metrics.SourceLocal) {
		t.Error("Add that extends = true; want false")
	}
	if !s.Revoked("sess_1", "", again.Until) {
		t.Error("extended revocation not in effect after the first Until")
	}
	if len(got) != 3 {
		t.Errorf("OnRevoke calls = %d; want 3", len(got))
	}
	if n := s.Prune(t0.Add(10 * time.Hour)); n != 0 || s.Len() != 0 {
		t.Errorf("Prune(t0+10h) left %d (Len %d); want 0", n, s.Len())
	}
}

func TestRevocationMatches(t *testing.T) {
	tests := []struct {
		r        Revocation
		sid, sub string
		want     bool
	}{
		{Revocation{Kind: KindSession, ID: "sess_1"}, "sess_1", "user_1", true},
		{Revocation{Kind: KindSession, ID: "sess_1"}, "sess_2", "sess_1", false},
		{Revocation{Kind: KindUser, ID: "user_1"}, "sess_2", "user_1", true},
		{Revocation{Kind: KindUser, ID: "user_1"}, "user_1", "", false},
		{Revocation{Kind: KindUser, ID: ""}, "", "", false},
	}
	for _, tt := range tests {
		if got := tt.r.Matches(tt.sid, tt.sub); got != tt.want {
			t.Errorf("%v.Matches(%q, %q) = %v; want %v", tt.r, tt.sid, tt.sub, got, tt.want)
		}
	}
}

// TestSetConcurrent runs lookups against adds and prunes (run with -race).
func TestSetConcurrent(t *testing.T) {
	c := &clock{t: t0}
	s := NewSet(c.now, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					s.Revoked("sess_1", "user_1", t0)
				}
			}
		})
	}
	for i := range 1000 {
		s.Add(Revocation{Kind: KindSession, ID: "sess_" + string(rune('a'+i%26)), Until: t0.Add(time.Duration(i+1) * time.Second)}, metrics.SourceLocal)
		if i%100 == 0 {
			s.Prune(t0.Add(time.Duration(i) * time.Second))
		}
	}
	close(stop)
	wg.Wait()
	if !s.Revoked("sess_a", "", t0) {
		t.Error("sess_a not revoked after concurrent adds")
	}
}
