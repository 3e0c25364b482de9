package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store/storetest"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*store.Config)
		want []string // substrings of the error; empty: valid
	}{
		{"defaults (no redis)", func(*store.Config) {}, nil},
		{"redis url", func(c *store.Config) { c.URL = "redis://127.0.0.1:6379/0" }, nil},
		{"tls url with password", func(c *store.Config) { c.URL = "rediss://:hunter2@redis.internal:6380/1" }, nil},
		{"unix socket", func(c *store.Config) { c.URL = "unix:///run/redis.sock" }, nil},
		{"http scheme", func(c *store.Config) { c.URL = "http://hunter2@redis:6379" }, []string{`redis.url: scheme "http" is not redis`}},
		{"bad db", func(c *store.Config) { c.URL = "redis://:hunter2@127.0.0.1:6379/notadb" }, []string{"redis.url: not a valid Redis URL"}},
		{"zero timeout", func(c *store.Config) { c.Timeout = 0 }, []string{"redis.timeout: must be between 1ms and 10s"}},
		{"huge timeout", func(c *store.Config) { c.Timeout = time.Minute }, []string{"redis.timeout"}},
		{"bad on_error", func(c *store.Config) { c.OnError = "retry" }, []string{`redis.on_error: must be allow or deny, not "retry"`}},
		{"several at once", func(c *store.Config) { c.Timeout = -1; c.OnError = "" }, []string{"redis.timeout", "redis.on_error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := store.DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want errors containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate() = %q; it echoes the password", err)
			}
		})
	}
}

func TestSafeURLHidesPassword(t *testing.T) {
	c := store.Config{URL: "rediss://default:hunter2@redis.internal:6380/2"}
	got := c.SafeURL()
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "redis.internal:6380/2") {
		t.Errorf("SafeURL() = %q; want the host and db without the password", got)
	}
}

func TestClientAgainstRealRedis(t *testing.T) {
	r := storetest.Start(t)
	c := store.DefaultConfig()
	c.URL = auth.Secret(r.URL())
	c.Timeout = 2 * time.Second
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	cl, err := store.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	ctx := context.Background()
	if err := cl.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := cl.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want \"v\", nil", got, err)
	}

	// Down: a command fails within the timeout instead of hanging.
	r.Stop()
	start := time.Now()
	err = cl.Get(ctx, "k").Err()
	if err == nil {
		t.Fatal("GET with Redis stopped: nil error; want a connection error")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("GET with Redis stopped took %s; want it bounded by the timeout", d)
	}

	// Back: the same client reconnects (data is gone: no persistence).
	r.Restart()
	var lastErr error
	for i := 0; i < 50; i++ {
		if lastErr = cl.Set(ctx, "k2", "v2", time.Minute).Err(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("SET after restart: %v", lastErr)
	}
	if pong, err := r.Do("GET", "k2"); err != nil || pong != "$2" {
		t.Errorf("raw GET k2 = %q, %v; want bulk reply of length 2", pong, err)
	}
}
