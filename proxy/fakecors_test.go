package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// TestFakeCORSMatchesPolicy: the stand-ins' Hasura-default CORS (internal/
// fake cannot import this package) answers exactly as ParseCORS("*").
func TestFakeCORSMatchesPolicy(t *testing.T) {
	inner := func(w http.ResponseWriter, _ *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
		return true
	}
	stand := fake.StartHasura(t, fake.WithHasuraCORS(), fake.RecordHealthz(), fake.WithResponder(inner))
	c, err := ParseCORS("*", false)
	if err != nil {
		t.Fatal(err)
	}
	policy := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner(w, r) })))
	t.Cleanup(policy.Close)
	for _, tt := range []struct {
		name, method string
		h            http.Header
	}{
		{"no origin", http.MethodPost, http.Header{}},
		{"origin", http.MethodPost, http.Header{"Origin": {"https://app.example.com"}}},
		{"preflight", http.MethodOptions, http.Header{"Origin": {"http://localhost:3000"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization,content-type"}}},
		{"options without origin", http.MethodOptions, http.Header{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer := func(base string) (int, http.Header) {
				req, _ := http.NewRequest(tt.method, base+"/v1/graphql", strings.NewReader("{}"))
				req.Header = tt.h.Clone()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode, resp.Header
			}
			wantStatus, want := answer(policy.URL)
			gotStatus, got := answer(stand.URL)
			if gotStatus != wantStatus {
				t.Errorf("status = %d; want %d", gotStatus, wantStatus)
			}
			for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
				"Access-Control-Allow-Headers", "Access-Control-Max-Age", "Vary", "Content-Type", "Content-Length"} {
				if g, w := strings.Join(got.Values(k), "|"), strings.Join(want.Values(k), "|"); g != w {
					t.Errorf("%s = %q; want %q", k, g, w)
				}
			}
		})
	}
}
