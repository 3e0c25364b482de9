package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/limits"
)

// Step 8 of the demo: the 11th operation of a minute is refused.
func TestDemoRateLimit(t *testing.T) {
	cfg, err := config.Parse([]byte(`
upstream: {url: "http://127.0.0.1:8080", admin_secret: "s3cret"}
auth:
  jwt_secret: {type: HS256, key: "0123456789abcdef0123456789abcdef"}
`+demoLimitsYAML), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	l := limits.New(limits.Options{Config: cfg.APILimits, Introspection: cfg.Introspection})
	s := &auth.Session{Result: auth.ResultAllowed, Role: "user", Vars: []auth.Var{{Name: "x-hasura-user-id", Value: "alice"}}}
	body := []byte(`{"query":"{ session }"}`)
	for i := 1; i <= 11; i++ {
		ref := l.AdmitHTTP(httptest.NewRequest("POST", "/v1/graphql", strings.NewReader("")), body, s)
		if (ref != nil) != (i == 11) {
			t.Fatalf("operation %d: refusal %+v; want only the 11th refused", i, ref)
		}
		if ref != nil && (ref.Code != limits.CodeRateLimit || ref.RetryAfter <= 0) {
			t.Errorf("11th: %+v; want %s with a Retry-After", ref, limits.CodeRateLimit)
		}
	}
}
