package auth

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// cacheShards spreads the verified-token cache over independent locks so
// concurrent hits never contend on one mutex.
const cacheShards = 64

// cacheEntry is a verified token: everything that does not depend on the
// request. Entries are immutable once stored.
type cacheEntry struct {
	secret  int    // index of the secret that verified the token
	issMask uint64 // secrets whose issuer pre-match accepts the token
	claims  *hasuraClaims
	exp     time.Time
	// notAfter is exp plus the secret's allowed skew: a hit is served only
	// while a fresh verification would also accept the token.
	notAfter time.Time
	// generation is the key set generation the token was verified under; a
	// refresh that removes or replaces a key invalidates the entry.
	generation uint64
}

// tokenCache maps SHA-256(token) to its verification result. Only successes
// are stored (failures are never cached), entries are never served past
// notAfter, and the size is bounded. It is safe for concurrent use.
type tokenCache struct {
	shards   [cacheShards]cacheShard
	perShard int
	size     atomic.Int64
	metrics  *metrics.Metrics
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*cacheEntry
	_  [40]byte // keep shards on separate cache lines
}

func newTokenCache(size int, m *metrics.Metrics) *tokenCache {
	per := size / cacheShards
	if per < 1 {
		per = 1
	}
	c := &tokenCache{perShard: per, metrics: m}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]*cacheEntry)
	}
	return c
}

// get returns the entry for key, or nil. The caller checks notAfter and the
// generation: an entry is only a hint until then.
func (c *tokenCache) get(key [sha256.Size]byte) *cacheEntry {
	s := &c.shards[key[0]%cacheShards]
	s.mu.RLock()
	e := s.m[key]
	s.mu.RUnlock()
	if e == nil {
		c.metrics.TokenCacheMiss()
	} else {
		c.metrics.TokenCacheHit()
	}
	return e
}

// put stores e, evicting expired entries of the shard first and, if it is
// still full, arbitrary ones (Go's map order is random).
func (c *tokenCache) put(key [sha256.Size]byte, e *cacheEntry, now time.Time) {
	s := &c.shards[key[0]%cacheShards]
	evicted := 0
	s.mu.Lock()
	_, replace := s.m[key]
	if !replace && len(s.m) >= c.perShard {
		for k, old := range s.m {
			if !now.Before(old.notAfter) {
				delete(s.m, k)
				evicted++
			}
		}
		for k := range s.m {
			if len(s.m) < c.perShard {
				break
			}
			delete(s.m, k)
			evicted++
		}
	}
	s.m[key] = e
	s.mu.Unlock()
	delta := int64(1 - evicted)
	if replace {
		delta = 0
	}
	n := c.size.Add(delta)
	c.metrics.TokenCacheEvicted(evicted)
	c.metrics.TokenCacheSize(int(n))
}

// len is the number of entries held.
func (c *tokenCache) len() int { return int(c.size.Load()) }
