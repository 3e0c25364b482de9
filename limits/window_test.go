package limits

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/store/storetest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The same sliding-window contract, checked on both counters.
func testSlidingWindow(t *testing.T, newCounter func(now func() time.Time) counter) {
	type step struct {
		advance time.Duration
		key     string
		n       int
		ok      bool
		retry   time.Duration // checked when !ok
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{"admits max then refuses", 3, []step{
			{0, "a", 1, true, 0}, {10 * time.Second, "a", 1, true, 0}, {10 * time.Second, "a", 1, true, 0},
			{5 * time.Second, "a", 1, false, 35 * time.Second}, // the first leaves at 60s
		}},
		{"slides: the oldest leaves after a minute", 2, []step{
			{0, "a", 1, true, 0}, {30 * time.Second, "a", 1, true, 0},
			{29 * time.Second, "a", 1, false, time.Second},
			{time.Second, "a", 1, true, 0}, // exactly 60s after the first
			{0, "a", 1, false, 30 * time.Second},
		}},
		{"a refusal records nothing", 1, []step{
			{0, "a", 1, true, 0}, {20 * time.Second, "a", 1, false, 40 * time.Second},
			{20 * time.Second, "a", 1, false, 20 * time.Second}, {20 * time.Second, "a", 1, true, 0},
		}},
		{"keys are independent", 1, []step{{0, "a", 1, true, 0}, {0, "b", 1, true, 0}, {0, "a", 1, false, time.Minute}}},
		{"a batch counts whole or not at all", 3, []step{
			{0, "a", 2, true, 0}, {10 * time.Second, "a", 2, false, 50 * time.Second}, {0, "a", 1, true, 0},
		}},
		{"more than max never fits", 2, []step{{0, "a", 3, false, time.Minute}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			c := newCounter(clk.now)
			prefix := t.Name() + ":"
			for i, s := range tt.steps {
				clk.advance(s.advance)
				ok, retry, err := c.take(context.Background(), prefix+s.key, s.n, tt.max)
				if err != nil {
					t.Fatalf("step %d: take error %v", i, err)
				}
				if ok != s.ok {
					t.Fatalf("step %d: take(%q, %d) ok = %t; want %t", i, s.key, s.n, ok, s.ok)
				}
				if !ok && retry != s.retry {
					t.Errorf("step %d: retry = %s; want %s", i, retry, s.retry)
				}
			}
		})
	}
}

func TestMemCounter(t *testing.T) {
	testSlidingWindow(t, func(now func() time.Time) counter { return newMemCounter(now) })
}

func TestMemCounterSweepsIdleKeys(t *testing.T) {
	clk := newFakeClock()
	c := newMemCounter(clk.now)
	for i := 0; i < 100; i++ {
		_, _, _ = c.take(context.Background(), fmt.Sprintf("old%d", i), 1, 5)
	}
	clk.advance(2 * window)
	// One take in every shard sweeps it.
	hit := map[uint64]bool{}
	fresh := 0
	for i := 0; len(hit) < memShards && i < 100000; i++ {
		k := fmt.Sprintf("fresh%d", i)
		if sh := maphash.String(c.seed, k) % memShards; !hit[sh] {
			hit[sh] = true
			_, _, _ = c.take(context.Background(), k, 1, 5)
			fresh++
		}
	}
	if n := c.size(); n != fresh {
		t.Errorf("counter holds %d keys; want %d (the idle ones swept)", n, fresh)
	}
}

func TestRedisCounter(t *testing.T) {
	rs := storetest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	testSlidingWindow(t, func(now func() time.Time) counter { return runningRedisCounter(t, client, time.Second, now) })
}

// Keys expire a window after the last admission, so Redis does not fill
// up with the counters of clients long gone.
func TestRedisCounterKeysExpire(t *testing.T) {
	rs := storetest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	c := runningRedisCounter(t, client, time.Second, nil) // Redis's own clock
	if ok, _, err := c.take(context.Background(), "k", 1, 5); !ok || err != nil {
		t.Fatalf("take = %t, %v; want admitted", ok, err)
	}
	ttl, err := client.PTTL(context.Background(), keyPrefix+"k").Result()
	if err != nil || ttl <= 0 || ttl > window {
		t.Errorf("PTTL = %s, %v; want in (0, %s]", ttl, err, window)
	}
}

// With Redis stopped, take fails within the timeout instead of waiting.
func TestRedisCounterDown(t *testing.T) {
	rs := storetest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	c := runningRedisCounter(t, client, 200*time.Millisecond, nil)
	rs.Stop()
	start := time.Now()
	_, _, err := c.take(context.Background(), "k", 1, 5)
	if err == nil {
		t.Fatal("take with Redis stopped: no error; want one")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("take took %s with Redis stopped; want about the 200ms timeout", d)
	}
}

// runningRedisCounter is a redisCounter whose flushers run until the test
// ends.
func runningRedisCounter(t *testing.T, client redis.Cmdable, timeout time.Duration, now func() time.Time) *redisCounter {
	c := newRedisCounter(client, timeout, now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

// Concurrent checks share pipelines and each gets its own answer: exactly
// max of them are admitted.
func TestRedisCounterPipelinedConcurrent(t *testing.T) {
	rs := storetest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	c := runningRedisCounter(t, client, 5*time.Second, nil)
	const n, max = 300, 120
	var wg sync.WaitGroup
	results := make(chan bool, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := c.take(context.Background(), "shared", 1, max)
			if err != nil {
				t.Errorf("take: %v", err)
			}
			results <- ok
		}()
	}
	wg.Wait()
	close(results)
	admitted := 0
	for ok := range results {
		if ok {
			admitted++
		}
	}
	if admitted != max {
		t.Errorf("%d of %d concurrent checks admitted; want exactly %d", admitted, n, max)
	}
}
