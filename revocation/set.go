package revocation

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// What a revocation names.
const (
	// KindSession is a Clerk session id: tokens whose sid claim it is.
	KindSession = metrics.KindSession
	// KindUser is a Clerk user id: tokens whose sub claim it is.
	KindUser = metrics.KindUser
)

// Revocation is one revoked session or user, in effect until Until.
type Revocation struct {
	Kind  string // KindSession or KindUser
	ID    string
	Until time.Time
}

// Set holds the revocations in effect in this process. Revoked is the hot
// path: with nothing revoked it is one atomic load, else a lock-free map
// lookup per id. Writes are rare (a sign-out) and serialized. Expired
// entries stop matching at once and are removed by Prune. It is safe for
// concurrent use; create it with NewSet.
type Set struct {
	now     func() time.Time
	metrics *metrics.Revocation

	// n counts the entries of both maps, so an empty set costs no lookup.
	n atomic.Int64
	// sessions and users map an id to its Until (time.Time). sync.Map's
	// reads take no lock, so concurrent requests do not contend.
	sessions, users sync.Map

	mu       sync.Mutex // serializes Add and Prune
	counts   [2]int     // entries by kind, under mu
	onRevoke func(Revocation)
}

// NewSet returns an empty Set. now is the clock (nil: time.Now); m may be
// nil.
func NewSet(now func() time.Time, m *metrics.Revocation) *Set {
	if now == nil {
		now = time.Now
	}
	s := &Set{now: now, metrics: m}
	m.Entries(KindSession, 0)
	m.Entries(KindUser, 0)
	return s
}

// OnRevoke sets the function called (outside the Set's lock, on the
// goroutine that added it) with every revocation that newly takes effect,
// to close what the session or user still has open. Call it before the
// Set is used.
func (s *Set) OnRevoke(f func(Revocation)) {
	s.mu.Lock()
	s.onRevoke = f
	s.mu.Unlock()
}

// Revoked reports whether session sid or user sub is revoked at now. Empty
// ids never match. It implements auth.Revocations.
func (s *Set) Revoked(sid, sub string, now time.Time) bool {
	if s.n.Load() == 0 {
		return false
	}
	return held(&s.sessions, sid, now) || held(&s.users, sub, now)
}

func held(m *sync.Map, id string, now time.Time) bool {
	if id == "" {
		return false
	}
	v, ok := m.Load(id)
	return ok && now.Before(v.(time.Time))
}

func (s *Set) table(kind string) (*sync.Map, int) {
	if kind == KindUser {
		return &s.users, 1
	}
	return &s.sessions, 0
}

// Add puts r in effect, or extends the one in effect to r.Until. It
// reports whether r newly took effect (it was not already revoked at now);
// only then is it counted as applied from source (metrics.SourceLocal or
// metrics.SourceRedis) and passed to the OnRevoke function. A revocation
// already past is ignored.
func (s *Set) Add(r Revocation, source string) bool {
	if r.ID == "" || (r.Kind != KindSession && r.Kind != KindUser) {
		return false
	}
	now := s.now()
	if !now.Before(r.Until) {
		return false
	}
	m, k := s.table(r.Kind)
	s.mu.Lock()
	fresh := true
	if v, ok := m.Load(r.ID); ok {
		cur := v.(time.Time)
		fresh = !now.Before(cur)
		if !r.Until.After(cur) {
			s.mu.Unlock()
			return false
		}
	} else {
		s.counts[k]++
		s.n.Add(1)
		s.metrics.Entries(r.Kind, s.counts[k])
	}
	m.Store(r.ID, r.Until)
	f := s.onRevoke
	s.mu.Unlock()
	if !fresh {
		return false
	}
	s.metrics.Applied(source)
	if f != nil {
		f(r)
	}
	return true
}

// Prune removes the entries expired at now and returns how many are left.
func (s *Set) Prune(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, kind := range []string{KindSession, KindUser} {
		m, _ := s.table(kind)
		m.Range(func(id, until any) bool {
			if !now.Before(until.(time.Time)) {
				m.Delete(id)
				s.counts[k]--
				s.n.Add(-1)
			}
			return true
		})
		s.metrics.Entries(kind, s.counts[k])
	}
	return int(s.n.Load())
}

// Len is the number of entries held, expired ones not yet pruned included.
func (s *Set) Len() int { return int(s.n.Load()) }

// pruneInterval is how often Run removes expired entries.
const pruneInterval = time.Minute

// Run prunes expired entries every minute until ctx is done.
func (s *Set) Run(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Prune(s.now())
		}
	}
}

// Matches reports whether a token with session sid and user sub is one r
// revokes.
func (r Revocation) Matches(sid, sub string) bool {
	switch r.Kind {
	case KindSession:
		return sid != "" && sid == r.ID
	case KindUser:
		return sub != "" && sub == r.ID
	}
	return false
}
