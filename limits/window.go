package limits

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// window is the sliding one-minute window of Hasura's rate limits: an
// operation is admitted when fewer than max operations of the same key were
// admitted in the minute before it.
const window = time.Minute

// counter records operations in sliding windows. memCounter keeps them in
// the process, redisCounter in Redis.
type counter interface {
	// take admits n operations under key when the window then holds at
	// most max, recording them; otherwise it records nothing and says how
	// long until the window would admit them. err means no answer (Redis
	// unreachable): the caller applies redis.on_error.
	take(ctx context.Context, key string, n, max int) (ok bool, retry time.Duration, err error)
}

// memShards spreads keys over independently locked shards.
const memShards = 32

// memCounter is a sliding log per key, in memory: exact, and at most max
// timestamps per key. Keys idle for a window are swept. It is safe for
// concurrent use.
type memCounter struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [memShards]memShard
}

type memShard struct {
	mu        sync.Mutex
	keys      map[string]*slidingLog
	lastSweep time.Time
}

// slidingLog holds the admission times of one key, oldest first.
type slidingLog struct{ t []time.Time }

func newMemCounter(now func() time.Time) *memCounter {
	c := &memCounter{now: now, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].keys = map[string]*slidingLog{}
	}
	return c
}

func (c *memCounter) take(_ context.Context, key string, n, max int) (bool, time.Duration, error) {
	now := c.now()
	s := &c.shards[maphash.String(c.seed, key)%memShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= window {
		s.sweep(now)
	}
	l := s.keys[key]
	if l == nil {
		l = &slidingLog{}
		s.keys[key] = l
	}
	l.prune(now)
	count := len(l.t)
	if count+n > max {
		return false, retryAfter(l.t, now, count+n-max), nil
	}
	for range n {
		l.t = append(l.t, now)
	}
	return true, 0, nil
}

// retryAfter is how long until need of the times leave the window, or a
// whole window when they are not enough (n > max).
func retryAfter(t []time.Time, now time.Time, need int) time.Duration {
	if need > len(t) {
		return window
	}
	return t[need-1].Add(window).Sub(now)
}

// prune drops the times that are a window old or older.
func (l *slidingLog) prune(now time.Time) {
	cut := now.Add(-window)
	i := 0
	for i < len(l.t) && !l.t[i].After(cut) {
		i++
	}
	// The dropped prefix stays in the array until an append outgrows it,
	// then only the live times are copied: amortised, no allocation per call.
	l.t = l.t[i:]
}

// sweep removes the keys with nothing left in the window.
func (s *memShard) sweep(now time.Time) {
	s.lastSweep = now
	cut := now.Add(-window)
	for k, l := range s.keys {
		if len(l.t) == 0 || !l.t[len(l.t)-1].After(cut) {
			delete(s.keys, k)
		}
	}
}

// size is the number of keys held, for tests.
func (c *memCounter) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}
