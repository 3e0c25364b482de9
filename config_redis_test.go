package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

func TestRedisSection(t *testing.T) {
	const base = `
upstream: {url: "http://127.0.0.1:8080", admin_secret: "s"}
auth:
  jwt_secret: {type: HS256, key: "0123456789abcdef0123456789abcdef"}
`
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		wantURL string
		wantTO  time.Duration
		wantErr string
	}{
		{name: "absent: in-process state", yaml: base, wantTO: 100 * time.Millisecond},
		{name: "from the file", yaml: base + "redis: {url: redis://127.0.0.1:6379/0, timeout: 250ms, on_error: deny}\n",
			wantURL: "redis://127.0.0.1:6379/0", wantTO: 250 * time.Millisecond},
		{name: "Hasura EE's variable wins", yaml: base + "redis: {url: redis://file:6379/0}\n",
			env:     map[string]string{"HASURA_GRAPHQL_RATE_LIMIT_REDIS_URL": "rediss://:pw@env:6380/1"},
			wantURL: "rediss://:pw@env:6380/1", wantTO: 100 * time.Millisecond},
		{name: "bad on_error", yaml: base + "redis: {on_error: maybe}\n", wantErr: `redis.on_error: must be allow or deny, not "maybe"`},
		{name: "bad url hides the password", yaml: base + "redis: {url: 'http://:pw-secret@x'}\n", wantErr: `redis.url: scheme "http"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw-secret") {
					t.Errorf("err = %q; it echoes the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Redis.URL.Reveal(); got != tt.wantURL {
				t.Errorf("redis.url = %q; want %q", got, tt.wantURL)
			}
			if c.Redis.Timeout != tt.wantTO {
				t.Errorf("redis.timeout = %s; want %s", c.Redis.Timeout, tt.wantTO)
			}
		})
	}
}
