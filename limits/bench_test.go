package limits

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store/storetest"
)

const benchYAML = `
api_limits:
  depth_limit: {global: 10}
  node_limit: {global: 100}
  rate_limit:
    global: {max_reqs_per_min: 1000000, unique_params: [x-hasura-user-id]}
`

const benchBody = `{"query":"query Orders($limit: Int!) { orders(limit: $limit, order_by: {created_at: desc}) { id total status } }","variables":{"limit":10},"operationName":"Orders"}`

func benchAdmit(b *testing.B, l *Limiter) {
	s := &auth.Session{Result: auth.ResultAllowed, Role: "user", Vars: []auth.Var{{Name: "x-hasura-user-id", Value: "u1"}}}
	body := []byte(benchBody)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("POST", "/v1/graphql", strings.NewReader(""))
		for pb.Next() {
			if ref := l.AdmitHTTP(r, body, s); ref != nil {
				b.Fatalf("refused: %+v", ref)
			}
		}
	})
}

// BenchmarkAdmitMemory is the cost of the limits per request with the
// counters in the process.
func BenchmarkAdmitMemory(b *testing.B) {
	f := decodeB(b, benchYAML)
	benchAdmit(b, New(Options{Config: f.APILimits, Store: store.DefaultConfig()}))
}

// BenchmarkAdmitRedis is the same with the counters in a real Redis.
func BenchmarkAdmitRedis(b *testing.B) {
	rs := storetest.Start(b)
	f := decodeB(b, benchYAML)
	sc := store.DefaultConfig()
	sc.Timeout = time.Second
	client := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	b.Cleanup(func() { _ = client.Close() })
	l := New(Options{Config: f.APILimits, Store: sc, Redis: client})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	benchAdmit(b, l)
}

func decodeB(b *testing.B, s string) testFile {
	b.Helper()
	var f testFile
	if err := yamlDecodeStrict(s, &f); err != nil {
		b.Fatal(err)
	}
	return f
}
