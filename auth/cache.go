package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// cacheWays is the associativity of the verified-token cache: a token can
// live in one of this many slots of the set its hash selects. With 32 ways,
// 5,000 live tokens in a 10,000-entry cache overflow a set (and so evict a
// live token) with probability about 1e-4 per set, 0.04 sets in all; with 16
// ways it was 2.3 sets, measured as up to 0.3% misses in a rotation. A
// lookup reads at most four cache lines of tags.
const cacheWays = 32

// cacheKey is SHA-256 of the whole raw token. A cryptographic hash is
// required: two tokens sharing a key would share an identity.
type cacheKey = [sha256.Size]byte

// tokenKey hashes raw without copying it: sha256.Sum256 only reads its
// argument, so viewing the string's bytes is safe and saves a
// token-sized allocation on every request.
func tokenKey(raw string) cacheKey {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// cacheEntry is a verified token: everything that does not depend on the
// request. Entries are immutable once stored.
type cacheEntry struct {
	key     cacheKey
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
	// sid and sub are the token's session and user, for the revocation
	// check and the per-user socket count of a hit.
	sid, sub string
}

// tokenCache maps SHA-256(token) to its verification result.
//
// It is a set-associative table: the hash picks a set, the set holds up to
// cacheWays entries behind atomic pointers. Lookups take no lock and write
// no shared memory, so any number of concurrent hits on the same token do
// not contend; inserts lock only their set. The capacity is exactly the
// configured size. An entry is served only while it is valid (before
// notAfter, and verified under the current key set generation); invalid
// entries are never returned and their slots are the first reused. Only
// successes are stored. It is safe for concurrent use.
type tokenCache struct {
	sets []cacheSet
	// sources are the key sources by secret index, for the generation
	// check of a hit.
	sources []KeySource
	size    atomic.Int64
	metrics *metrics.Metrics
}

type cacheSet struct {
	// mu serializes inserts into this set; lookups never take it.
	mu sync.Mutex
	n  int // usable ways, fixed at construction
	// tags hold the first 8 bytes of each way's key (0: empty), so a lookup
	// dereferences an entry only when its tag matches. A tag is a hint: the
	// entry's full key is always compared.
	tags [cacheWays]atomic.Uint64
	ways [cacheWays]atomic.Pointer[cacheEntry]
}

// newTokenCache returns a cache holding at most size entries (size > 0);
// sources[i] is the key source of secret i.
func newTokenCache(size int, sources []KeySource, m *metrics.Metrics) *tokenCache {
	nsets := (size + cacheWays - 1) / cacheWays
	base, extra := size/nsets, size%nsets
	c := &tokenCache{sets: make([]cacheSet, nsets), sources: sources, metrics: m}
	for i := range c.sets {
		c.sets[i].n = base
		if i < extra {
			c.sets[i].n++
		}
	}
	m.TokenCacheSize(0)
	return c
}

func (c *tokenCache) set(key *cacheKey) *cacheSet {
	return &c.sets[binary.LittleEndian.Uint64(key[8:16])%uint64(len(c.sets))]
}

// tag is never 0, which marks an empty way.
func tag(key *cacheKey) uint64 { return binary.LittleEndian.Uint64(key[:8]) | 1 }

// valid reports whether e may be served at now: a fresh verification would
// accept the token (now before exp+skew) and the key set has not lost a
// key since e was verified.
func (c *tokenCache) valid(e *cacheEntry, now time.Time) bool {
	return now.Before(e.notAfter) && e.generation == c.sources[e.secret].Generation()
}

// get returns the valid entry for key at now, or nil, and counts the hit or
// the miss. It takes no lock.
func (c *tokenCache) get(key *cacheKey, now time.Time) *cacheEntry {
	s := c.set(key)
	t := tag(key)
	for i := 0; i < s.n; i++ {
		if s.tags[i].Load() != t {
			continue
		}
		if e := s.ways[i].Load(); e != nil && e.key == *key {
			if c.valid(e, now) {
				c.metrics.TokenCacheHit()
				return e
			}
			break
		}
	}
	c.metrics.TokenCacheMiss()
	return nil
}

// put stores e under e.key. It replaces an entry with the same key, else
// takes an empty or invalid way, else evicts the way expiring first.
func (c *tokenCache) put(e *cacheEntry, now time.Time) {
	s := c.set(&e.key)
	s.mu.Lock()
	slot := -1
	for i := 0; i < s.n; i++ {
		if w := s.ways[i].Load(); w != nil && w.key == e.key {
			slot = i
			break
		}
	}
	if slot < 0 {
		for i := 0; i < s.n; i++ {
			if w := s.ways[i].Load(); w == nil || !c.valid(w, now) {
				slot = i
				break
			}
		}
	}
	if slot < 0 {
		// Every way holds a valid token: evict the one expiring first. It
		// has the least useful life left, and clients that refresh their
		// tokens before expiry (Clerk's do, every minute) have already
		// moved on from it. Ties go to the lowest way, so an overflowing
		// set churns one slot instead of all of them.
		slot = 0
		for i := 1; i < s.n; i++ {
			if s.ways[i].Load().notAfter.Before(s.ways[slot].Load().notAfter) {
				slot = i
			}
		}
	}
	// The entry is published before its tag, so a reader that sees the
	// new tag also sees the new entry.
	old := s.ways[slot].Swap(e)
	s.tags[slot].Store(tag(&e.key))
	s.mu.Unlock()
	switch {
	case old == nil:
		c.metrics.TokenCacheSize(int(c.size.Add(1)))
	case old.key != e.key:
		c.metrics.TokenCacheEvicted(1)
	}
}

// len is the number of entries held, valid or not.
func (c *tokenCache) len() int { return int(c.size.Load()) }

// capacity is the most entries the cache holds.
func (c *tokenCache) capacity() int {
	n := 0
	for i := range c.sets {
		n += c.sets[i].n
	}
	return n
}
