package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const limitsYAML = `
api_limits:
  depth_limit: {global: 5, per_role: {user: 2}}
  node_limit: {global: 50}
  batch_limit: {global: 2}
  rate_limit:
    per_role: {user: {max_reqs_per_min: 3, unique_params: [x-hasura-user-id]}}
graphql_schema_introspection:
  disabled_for_roles: [user]
`

// userToken signs an HS256 token for role user with x-hasura-user-id uid.
func userToken(t *testing.T, key, uid string) string {
	t.Helper()
	c := claimsFor(hsIssuer)
	c["https://hasura.io/jwt/claims"] = map[string]any{
		"x-hasura-allowed-roles": []string{"user"}, "x-hasura-default-role": "user", "x-hasura-user-id": uid,
	}
	return signHS(t, key, jwt.MapClaims(c))
}

func gqlPost(t *testing.T, url, token, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// errorCode is errors[0].extensions.code of a GraphQL error body.
func errorCode(t *testing.T, body string) string {
	t.Helper()
	var v struct {
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Errors) == 0 {
		t.Fatalf("body %q is not a GraphQL error", body)
	}
	return v.Errors[0].Extensions.Code
}

func TestAPILimitsHTTP(t *testing.T) {
	p, h, key := hsProxy(t, testConfig{Extra: limitsYAML, AdminSecret: "admin-secret-for-limits"})
	deep := `{"query":"{ a { b { c { d } } } }"}`
	tests := []struct {
		name       string
		path       string
		token      string
		admin      bool
		body       string
		wantStatus int
		wantCode   string // "" means forwarded
	}{
		{name: "admitted", path: "/v1/graphql", token: userToken(t, key, "a"), body: `{"query":"{ a { b } }"}`, wantStatus: 200},
		{name: "depth refused, 200 on /v1/graphql", path: "/v1/graphql", token: userToken(t, key, "b"), body: deep, wantStatus: 200, wantCode: "depth-limit-exceeded"},
		{name: "depth refused, 400 on /v1alpha1/graphql", path: "/v1alpha1/graphql", token: userToken(t, key, "b"), body: deep, wantStatus: 400, wantCode: "depth-limit-exceeded"},
		{name: "relay is limited too", path: "/v1beta1/relay", token: userToken(t, key, "b"), body: deep, wantStatus: 200, wantCode: "depth-limit-exceeded"},
		{name: "introspection refused", path: "/v1/graphql", token: userToken(t, key, "c"), body: `{"query":"{ __schema { queryType { name } } }"}`, wantStatus: 200, wantCode: "introspection-disabled"},
		{name: "batch refused whole", path: "/v1/graphql", token: userToken(t, key, "d"), body: `[{"query":"{ a }"},{"query":"{ a }"},{"query":"{ a }"}]`, wantStatus: 200, wantCode: "batch-limit-exceeded"},
		{name: "fragment cycle refused", path: "/v1/graphql", token: userToken(t, key, "e"), body: `{"query":"{ ...A } fragment A on q { ...A }"}`, wantStatus: 200, wantCode: "validation-failed"},
		{name: "admin is never limited", path: "/v1/graphql", admin: true, body: `[` + deep + `,` + deep + `,` + deep + `]`, wantStatus: 200},
		// Metadata is not reachable with a user's token at all (upstream.allowed_paths); REST
		// endpoints count for rate and time limits only, their bodies are not GraphQL.
		{name: "REST body is not analysed", path: "/api/rest/users", token: userToken(t, key, "f"), body: deep, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Count()
			req := gqlPost(t, p.client+tt.path, tt.token, tt.body)
			if tt.admin {
				req.Header.Set("X-Hasura-Admin-Secret", "admin-secret-for-limits")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%v; logs %s", err, p.logs.String())
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d; want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantCode == "" {
				last, ok := h.Last()
				if h.Count() != before+1 || !ok || string(last.Body) != tt.body {
					t.Fatalf("Hasura got %q (%d requests); want the body unchanged, once", last.Body, h.Count()-before)
				}
				return
			}
			if got := errorCode(t, body); got != tt.wantCode {
				t.Errorf("code = %q; want %q (body %s)", got, tt.wantCode, body)
			}
			if h.Count() != before {
				t.Errorf("a refused request reached Hasura")
			}
		})
	}

	t.Run("rate limit with Retry-After, body of a chunked request unchanged", func(t *testing.T) {
		tok := userToken(t, key, "rate")
		body := `{"query":"{ a { b } }","variables":{"x":1}}`
		for i := 0; i < 3; i++ {
			req := gqlPost(t, p.client+"/v1/graphql", tok, "")
			req.Body = io.NopCloser(io.MultiReader(strings.NewReader(body))) // no length: chunked
			req.ContentLength = -1
			resp, got := do(t, req)
			if last, _ := h.Last(); resp.StatusCode != 200 || string(last.Body) != body {
				t.Fatalf("request %d: status %d body %s, Hasura got %q; want forwarded unchanged", i, resp.StatusCode, got, last.Body)
			}
		}
		resp, got := do(t, gqlPost(t, p.client+"/v1/graphql", tok, body))
		if code := errorCode(t, got); code != "rate-limit-exceeded" {
			t.Fatalf("4th request code = %q; want rate-limit-exceeded", code)
		}
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After = %q; want 1..60 seconds", resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(got, "3 operations per minute") {
			t.Errorf("message %s; want it to name the limit", got)
		}
		// Another user has its own counter.
		if resp, got := do(t, gqlPost(t, p.client+"/v1/graphql", userToken(t, key, "rate2"), body)); resp.StatusCode != 200 || strings.Contains(got, "errors") {
			t.Errorf("another user: %d %s; want forwarded", resp.StatusCode, got)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		s := samples(t, p.ops)
		for k, want := range map[string]float64{
			"limit_refusals_total{kind=depth,role=user}":         3,
			"limit_refusals_total{kind=introspection,role=user}": 1,
			"limit_refusals_total{kind=rate,role=user}":          1,
			"limit_refusals_total{kind=batch,role=user}":         1,
		} {
			if s[k] != want {
				t.Errorf("%s = %v; want %v", k, s[k], want)
			}
		}
	})
}

// api_limits.time_limit bounds the wait for Hasura; past it the client
// gets the timeout answer and Hasura's request is cancelled.
func TestAPILimitsTimeLimit(t *testing.T) {
	p, h, key := hsProxy(t, testConfig{Extra: "api_limits:\n  time_limit: {global: 30, per_role: {user: 1}}\n"})
	start := time.Now()
	resp, body := do(t, gqlPost(t, p.client+"/v1/graphql?slow=1", userToken(t, key, "u"), `{"query":"{ a }"}`))
	d := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || errorCode(t, body) != "unexpected" || !strings.Contains(body, "time limit of 1s") {
		t.Errorf("answer %d %s; want 504 naming the time limit", resp.StatusCode, body)
	}
	if d < time.Second || d > 20*time.Second {
		t.Errorf("answered after %s; want about 1s", d)
	}
	if h.Count() != 1 {
		t.Errorf("Hasura got %d requests; want 1", h.Count())
	}
}
