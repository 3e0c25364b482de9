package limits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
// using the same Redis. It is safe for concurrent use; run must be running
// for take to get answers.
//
// Checks are pipelined: take queues its script call, and run's flushers
// send whatever is queued in one pipeline (one write and one read on each
// side, instead of one per request) and hand each caller its reply. Under
// load a round trip carries many checks; an idle proxy sends each alone,
// at once. Each script call stays atomic in Redis.
type redisCounter struct {
	client  redis.Cmdable
	timeout time.Duration
	// now, when set (tests), replaces Redis's clock.
	now func() time.Time
	// id makes the members this process adds unique across replicas.
	id    string
	seq   atomic.Uint64
	queue chan *redisTake
}

// redisTake is one queued check and where its answer goes.
type redisTake struct {
	key  string
	args []any
	done chan redisReply // buffered: a flusher never blocks on a caller that gave up
}

type redisReply struct {
	ok    bool
	retry time.Duration
	err   error
}

// Pipelining bounds.
const (
	// redisFlushers is how many pipelines may be in flight at once.
	redisFlushers = 4
	// redisBatch is the most checks one pipeline carries.
	redisBatch = 128
	// redisQueue bounds the checks waiting for a flusher; past it take
	// fails at once (on_error applies) rather than queueing without end.
	redisQueue = 4096
)

func newRedisCounter(client redis.Cmdable, timeout time.Duration, now func() time.Time) *redisCounter {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &redisCounter{client: client, timeout: timeout, now: now, id: hex.EncodeToString(b[:]),
		queue: make(chan *redisTake, redisQueue)}
}

// errQueueFull is a check refused because too many wait for Redis.
var errQueueFull = errors.New("too many rate-limit checks waiting for redis")

func (c *redisCounter) take(ctx context.Context, key string, n, max int) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	now := ""
	if c.now != nil {
		now = strconv.FormatInt(c.now().UnixMilli(), 10)
	}
	member := c.id + ":" + strconv.FormatUint(c.seq.Add(1), 36) + ":"
	t := &redisTake{key: keyPrefix + key, args: []any{now, window.Milliseconds(), max, n, member}, done: make(chan redisReply, 1)}
	select {
	case c.queue <- t:
	default:
		return false, 0, errQueueFull
	}
	select {
	case r := <-t.done:
		return r.ok, r.retry, r.err
	case <-ctx.Done():
		return false, 0, fmt.Errorf("redis: %w", ctx.Err())
	}
}

// run sends the queued checks until ctx is done.
func (c *redisCounter) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range redisFlushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.flushLoop(ctx)
		}()
	}
	wg.Wait()
}

func (c *redisCounter) flushLoop(ctx context.Context) {
	batch := make([]*redisTake, 0, redisBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case t := <-c.queue:
			batch = append(batch, t)
		}
	drain:
		for len(batch) < redisBatch {
			select {
			case t := <-c.queue:
				batch = append(batch, t)
			default:
				break drain
			}
		}
		c.flush(ctx, batch)
	}
}

// flush runs one pipeline of EVALSHA, and EVAL for the scripts Redis does
// not hold (the first call, or after a restart), and answers each check.
func (c *redisCounter) flush(ctx context.Context, batch []*redisTake) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range batch {
			cmds[i] = slidingLogScript.EvalSha(ctx, p, []string{t.key}, t.args...)
		}
		return nil
	})
	var retry []int
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		_, _ = c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range retry {
				cmds[i] = slidingLogScript.Eval(ctx, p, []string{batch[i].key}, batch[i].args...)
			}
			return nil
		})
	}
	for i, t := range batch {
		t.done <- reply(cmds[i])
	}
}

func reply(cmd *redis.Cmd) redisReply {
	res, err := cmd.Int64Slice()
	switch {
	case err != nil:
		return redisReply{err: err}
	case len(res) != 2:
		return redisReply{err: errors.New("rate limit script: unexpected reply")}
	}
	return redisReply{ok: res[0] == 1, retry: time.Duration(res[1]) * time.Millisecond}
}
