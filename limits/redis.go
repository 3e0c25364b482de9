package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// slidingLogScript is the Redis side of redisCounter: one round trip that
// prunes, counts and (when admitted) records, atomically, so replicas
// sharing a key never admit more than max together. The key is a sorted
// set of admissions scored by their time in milliseconds; it expires a
// window after the last admission. Time is Redis's own (TIME), so replicas
// with skewed clocks still share one window; a test passes ARGV[1].
//
// KEYS[1] key; ARGV: now_ms ("" = Redis TIME), window_ms, max, n, member prefix.
// Returns {admitted (0|1), retry_ms}.
var slidingLogScript = redis.NewScript(`
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local win = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local count = redis.call('ZCARD', KEYS[1])
if count + n > max then
  local need = count + n - max
  local retry = win
  if need <= count then
    local e = redis.call('ZRANGE', KEYS[1], need - 1, need - 1, 'WITHSCORES')
    retry = tonumber(e[2]) + win - now
  end
  return {0, retry}
end
for i = 1, n do
  redis.call('ZADD', KEYS[1], now, ARGV[5] .. i)
end
redis.call('PEXPIRE', KEYS[1], win)
return {1, 0}
`)

// keyPrefix namespaces every key this proxy writes in Redis.
const keyPrefix = "hasura-auth-proxy:rate:"

// redisCounter is memCounter's contract in Redis, shared by every replica
// using the same Redis. Each take is one EVALSHA (EVAL the first time)
// bounded by redis.timeout. It is safe for concurrent use.
type redisCounter struct {
	client  redis.Scripter
	timeout time.Duration
	// now, when set (tests), replaces Redis's clock.
	now func() time.Time
	// id makes the members this process adds unique across replicas.
	id  string
	seq atomic.Uint64
}

func newRedisCounter(client redis.Scripter, timeout time.Duration, now func() time.Time) *redisCounter {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &redisCounter{client: client, timeout: timeout, now: now, id: hex.EncodeToString(b[:])}
}

func (c *redisCounter) take(ctx context.Context, key string, n, max int) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	now := ""
	if c.now != nil {
		now = strconv.FormatInt(c.now().UnixMilli(), 10)
	}
	member := c.id + ":" + strconv.FormatUint(c.seq.Add(1), 36) + ":"
	res, err := slidingLogScript.Run(ctx, c.client, []string{keyPrefix + key},
		now, window.Milliseconds(), max, n, member).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, errors.New("rate limit script: unexpected reply")
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}
