package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

func TestWaitReady(t *testing.T) {
	keys := newKeySetServer(t, map[string]*rsa.PrivateKey{"ins_a": rsaKey(t, "a")})
	failing := fake.StartClerk(t, fake.WithKey(fake.Key{KID: "ins_a", Private: rsaKey(t, "a")}))
	failing.SetAnswer(fake.JWKSUnavailable)

	tests := []struct {
		name    string
		cfg     Config
		wantErr error // nil: ready
	}{
		{name: "static key is ready at once", cfg: hsConfig()},
		{name: "jwk_url becomes ready after the first fetch", cfg: jwksConfig(keys.JWKSURL())},
		{name: "jwk_url that never answers", cfg: jwksConfig(failing.JWKSURL()), wantErr: ErrNoKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(Options{
				Config:      tt.cfg,
				AdminSecret: testAdmin,
				Logger:      zaptest.NewLogger(t),
				Metrics:     metrics.New(prometheus.NewRegistry()),
			})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { a.Run(runCtx); close(done) }()
			t.Cleanup(func() { stop(); <-done })

			timeout := 10 * time.Second
			if tt.wantErr != nil {
				timeout = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err = a.WaitReady(ctx)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("WaitReady = %v; want nil", err)
				}
				if err := a.Ready(); err != nil {
					t.Fatalf("Ready after WaitReady = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("WaitReady: got %v, want %v and %v", err, context.DeadlineExceeded, tt.wantErr)
			}
		})
	}
}
