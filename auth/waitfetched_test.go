package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// TestWaitFetched: WaitFetched returns after the first fetch, nil with keys,
// else an error naming the URL (without its query) and the reason, without
// waiting through the retries; a JWKS that hangs is cut by fetch_timeout.
func TestWaitFetched(t *testing.T) {
	keys := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	failing := fake.StartClerk(t, fake.WithKey(fake.Key{KID: "ins_a", Private: rsaKey(t, "a")}))
	failing.SetAnswer(fake.JWKSUnavailable)
	hanging := fake.StartClerk(t, fake.WithKey(fake.Key{KID: "ins_a", Private: rsaKey(t, "a")}))
	hanging.SetAnswer(fake.JWKSHang)

	tests := []struct {
		name    string
		url     string
		timeout time.Duration // fetch_timeout; 0 keeps the default
		want    []string      // substrings of the error; nil: no error
	}{
		{name: "keys", url: keys.JWKSURL()},
		{name: "503", url: failing.JWKSURL() + "?api_key=hidden-query", want: []string{"keys could not be fetched from " + failing.JWKSURL() + ": ", "503"}},
		{name: "no answer within fetch_timeout", url: hanging.JWKSURL(), timeout: 200 * time.Millisecond,
			want: []string{"keys could not be fetched from " + hanging.JWKSURL() + ": "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := jwksConfig(tt.url)
			if tt.timeout > 0 {
				cfg.JWKS.FetchTimeout = tt.timeout
			}
			a, err := New(Options{Config: cfg, AdminSecret: testAdmin, Logger: zaptest.NewLogger(t),
				Metrics: metrics.New(prometheus.NewRegistry())})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { a.Run(runCtx); close(done) }()
			t.Cleanup(func() { stop(); <-done })

			// A failure bound only: the answer comes after one fetch.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = a.WaitFetched(ctx)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("WaitFetched = %v; want nil", err)
				}
				return
			}
			if err == nil || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				t.Fatalf("WaitFetched = %v; want the fetch error before the 30s bound", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("WaitFetched = %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hidden-query") {
				t.Errorf("WaitFetched = %q; want it without the URL's query", err)
			}
		})
	}
}
