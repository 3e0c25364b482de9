package proxy

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Options.Now/AfterFunc and auth.Options.Now:
// time moves only in Advance, which starts every function whose time has come
// (in its own goroutine, as time.AfterFunc does).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, timers: map[*fakeTimer]struct{}{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers[t] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.timers[t]
		delete(c.timers, t)
		return pending
	}
}

// Advance moves the clock by d and starts the functions that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t.f)
			delete(c.timers, t)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// pending returns how many timers have not fired nor been stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

func TestFakeClock(t *testing.T) {
	c := newFakeClock(time.Unix(1000, 0))
	fired := make(chan string, 2)
	c.AfterFunc(time.Second, func() { fired <- "a" })
	stopB := c.AfterFunc(time.Second, func() { fired <- "b" })
	if !stopB() {
		t.Errorf("stop of a pending timer = false; want true")
	}
	c.Advance(time.Second - time.Nanosecond)
	if got := c.pending(); got != 1 {
		t.Fatalf("pending before the deadline = %d; want 1", got)
	}
	c.Advance(time.Nanosecond)
	if got := <-fired; got != "a" {
		t.Errorf("fired %q; want %q", got, "a")
	}
	if got := c.pending(); got != 0 {
		t.Errorf("pending after the deadline = %d; want 0", got)
	}
	if got, want := c.Now(), time.Unix(1001, 0); !got.Equal(want) {
		t.Errorf("Now() = %v; want %v", got, want)
	}
	select {
	case got := <-fired:
		t.Errorf("stopped timer %q fired", got)
	default:
	}
}
