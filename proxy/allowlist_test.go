package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    string // "" for no error, else a substring of it
	}{
		{"default", DefaultAllowedPaths(), ""},
		{"everything", []string{"/"}, ""},
		{"nested prefix", []string{"/api/rest/public/"}, ""},
		{"empty list", []string{}, "upstream.allowed_paths: list at least one path"},
		{"relative", []string{"v1/graphql"}, `upstream.allowed_paths[0]: "v1/graphql" must start with /`},
		{"escaped", []string{"/v1/graph%71l"}, "upstream.allowed_paths[0]: \"/v1/graph%71l\" must be a plain, unescaped path"},
		{"query", []string{"/v1/graphql?x"}, "must be a plain, unescaped path"},
		{"space", []string{"/v1/graphql "}, "must be a plain, unescaped path"},
		{"backslash", []string{"/v1\\graphql"}, "must be a plain, unescaped path"},
		{"double slash", []string{"//v1/graphql"}, `must not hold empty, "." or ".." segments`},
		{"dot dot", []string{"/api/../v1/metadata"}, `must not hold empty, "." or ".." segments`},
		{"dot prefix", []string{"/api/./"}, `must not hold empty, "." or ".." segments`},
		{"second bad entry named", []string{"/v1/graphql", "nope"}, `upstream.allowed_paths[1]: "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAllowList("upstream.allowed_paths", tt.entries)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ParseAllowList(%q) = %v; want no error", tt.entries, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ParseAllowList(%q) = %v; want an error containing %q", tt.entries, err, tt.want)
			}
		})
	}
}

// hostileTargets are request targets around the default allow-list, with
// whether the default allows them. Each is sent as raw bytes, so the proxy
// sees exactly this request-target.
var hostileTargets = []struct {
	method, target string
	allowed        bool
}{
	{"POST", "/v1/graphql", true},
	{"GET", "/v1/graphql", true},
	{"GET", "/v1/graphql?query=%7B__typename%7D", true},
	{"HEAD", "/v1/graphql", true},
	{"OPTIONS", "/v1/graphql", true},
	{"POST", "/v1beta1/relay", true},
	{"POST", "/v1alpha1/graphql", true},
	{"GET", "/api/rest/users", true},
	{"POST", "/api/rest/users/42/orders", true},
	{"GET", "/api/rest/users/a%20b", true}, // canonical escaping: RawPath stays empty
	{"GET", "/healthz", true},
	{"GET", "/hasura/healthz", true},
	{"GET", "/v1/version", true},
	{"GET", "http://evil.example/v1/graphql", true}, // absolute-form: the path is what is forwarded

	{"POST", "/v1/metadata", false},
	{"POST", "/v1/query", false},
	{"POST", "/v2/query", false},
	{"POST", "/v1alpha1/pg_dump", false},
	{"GET", "/v1alpha1/config", false},
	{"POST", "/v1/graphql/explain", false},
	{"GET", "/dev/subscriptions", false},
	{"GET", "/console", false},
	{"GET", "/", false},
	{"POST", "/v1/graphql/%2e%2e/%2e%2e/v1/metadata", false},
	{"POST", "/v1/graphql/../metadata", false},
	{"POST", "/v1/graphql/..", false},
	{"POST", "/v1/graphql/.", false},
	{"POST", "//v1/metadata", false},
	{"POST", "//v1/graphql", false},
	{"POST", "/v1//graphql", false},
	{"POST", "/./v1/graphql", false},
	{"POST", "/v1/graphql/", false},
	{"POST", "/v1/graphql%2F", false},
	{"POST", "/v1%2Fgraphql", false},
	{"POST", "/v1/graph%71l", false},
	{"POST", "/V1/graphql", false},
	{"POST", "/v1/graphqlx", false},
	{"POST", "/v1/graphql;x", false},
	{"POST", "/v1/graphql%00", false},
	{"POST", "/v1/graphql%20", false},
	{"POST", "/v1/graphql%3F", false},
	{"POST", "/api/rest/", false},
	{"POST", "/api/rest", false},
	{"POST", "/api/rest/../../v1/metadata", false},
	{"POST", "/api/rest/%2e%2e/%2e%2e/v1/metadata", false},
	{"POST", "/api/rest/x%2F..%2F..%2Fv1%2Fmetadata", false},
	{"POST", "/api/rest//x", false},
	{"POST", "/api/rest/x/", false},
	{"POST", "/api/rest/a\\..\\..\\v1\\metadata", false},
	{"POST", "/api/restx/y", false},
	{"GET", "/healthz/../v1/metadata", false},
	{"GET", "http://evil.example//v1/graphql", false},
	{"OPTIONS", "*", false},
	{"PUT", "/v1/graphql", false},
	{"DELETE", "/api/rest/users/1", false},
	{"PATCH", "/v1/graphql", false},
	{"TRACE", "/v1/graphql", false},
	{"CONNECT", "hasura:8080", false},
	{"CONNECT", "/v1/graphql", false},
	{"PROPFIND", "/v1/graphql", false},
}

// rawRequest sends one request as bytes and returns the parsed answer.
func rawRequest(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer to %q: %v", request, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestAllowListHostilePaths sends every hostile target with a valid token:
// the allowed ones reach Hasura, the others are answered as Hasura answers a
// path it has no route for, before the token is looked at, and reach
// nothing. The same targets with the right admin secret all reach Hasura
// (as admin), except what Go's server itself refuses.
func TestAllowListHostilePaths(t *testing.T) {
	f := newFixture(t)
	tok := f.token(goodClaims())
	addr := strings.TrimPrefix(f.px.URL, "http://")
	const notFound = `{"path":"$","error":"resource does not exist","code":"not-found"}`
	for _, tt := range hostileTargets {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			before := f.up.count()
			verifies := counterValue(t, f.reg, metrics.Namespace+"_auth_decisions_total", map[string]string{"result": "allowed", "reason": "ok"})
			resp, body := rawRequest(t, addr, tt.method+" "+tt.target+" HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer "+tok+
				"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			reached := f.up.count() - before
			if tt.allowed {
				if reached != 1 {
					t.Errorf("reached Hasura %d times (status %d %s); want 1", reached, resp.StatusCode, body)
				}
				return
			}
			if reached != 0 {
				t.Errorf("reached Hasura %d times; want 0", reached)
			}
			if tt.target == "*" {
				return // Go's server answers OPTIONS * itself (200, empty), reaching no handler.
			}
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status %d; want 404", resp.StatusCode)
			}
			if tt.method != "HEAD" && !jsonEqual(t, []byte(body), []byte(notFound)) {
				t.Errorf("body %s; want %s", body, notFound)
			}
			after := counterValue(t, f.reg, metrics.Namespace+"_auth_decisions_total", map[string]string{"result": "allowed", "reason": "ok"})
			if after != verifies {
				t.Errorf("auth_decisions_total{allowed} moved by %v: the token was verified before the refusal", after-verifies)
			}
		})
	}
	t.Run("admin secret keeps full access", func(t *testing.T) {
		for _, tt := range hostileTargets {
			if tt.method == "CONNECT" || tt.target == "*" {
				continue
			}
			before := f.up.count()
			resp, body := rawRequest(t, addr, tt.method+" "+tt.target+" HTTP/1.1\r\nHost: hasura\r\nX-Hasura-Admin-Secret: "+pxAdmin+
				"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			if got := f.up.count() - before; got != 1 {
				t.Errorf("%s %s with the admin secret: reached Hasura %d times (status %d %s); want 1", tt.method, tt.target, got, resp.StatusCode, body)
				continue
			}
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.method + " " + tt.target + " HTTP/1.1\r\nHost: h\r\n\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			want := "admin"
			if unauthenticated(r) {
				want = "" // forwarded without any credential, as without the admin secret
			}
			if got := f.up.last(t).Header.Get("X-Hasura-Role"); got != want {
				t.Errorf("%s %s: X-Hasura-Role = %q; want %q", tt.method, tt.target, got, want)
			}
		}
	})
	t.Run("counted by reason", func(t *testing.T) {
		for _, tt := range []struct{ method, target, reason string }{
			{"POST", "/v1/metadata", "path"},
			{"TRACE", "/v1/graphql", "method"},
		} {
			metric := map[string]string{"reason": tt.reason}
			before := counterValue(t, f.reg, metrics.Namespace+"_requests_not_allowed_total", metric)
			rawRequest(t, addr, tt.method+" "+tt.target+" HTTP/1.1\r\nHost: hasura\r\nConnection: close\r\n\r\n")
			if got := counterValue(t, f.reg, metrics.Namespace+"_requests_not_allowed_total", metric) - before; got != 1 {
				t.Errorf("%s %s: requests_not_allowed_total{reason=%q} grew by %v; want 1", tt.method, tt.target, tt.reason, got)
			}
		}
	})
}

// TestAllowListWrongAdminSecret: a request presenting an admin secret is
// decided by it alone, whatever the path; a wrong one gets Hasura's answer
// and reaches nothing.
func TestAllowListWrongAdminSecret(t *testing.T) {
	f := newFixture(t)
	resp := f.do(t, http.MethodPost, "/v1/metadata", http.Header{"X-Hasura-Admin-Secret": {"wrong"}}, `{}`)
	body, _ := io.ReadAll(resp.Body)
	want := `{"error":"invalid x-hasura-admin-secret/x-hasura-access-key","path":"$","code":"access-denied"}`
	if resp.StatusCode != http.StatusUnauthorized || !jsonEqual(t, body, []byte(want)) {
		t.Errorf("got %d %s; want 401 %s", resp.StatusCode, body, want)
	}
	if n := f.up.count(); n != 0 {
		t.Errorf("reached Hasura %d times; want 0", n)
	}
}

// TestAllowListAdminPreflight: the preflight of a browser request that will
// carry the admin secret passes (stripped, without the admin secret), so the
// admin keeps full access from a browser too; any other preflight to a path
// outside the list is refused.
func TestAllowListAdminPreflight(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		acrh string
		want int
	}{
		{"content-type, x-hasura-admin-secret", 1},
		{"X-Hasura-Access-Key", 1},
		{"content-type, authorization", 0},
		{"", 0},
	} {
		before := f.up.count()
		h := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}
		if tt.acrh != "" {
			h.Set("Access-Control-Request-Headers", tt.acrh)
		}
		resp := f.do(t, http.MethodOptions, "/v1/metadata", h, "")
		if got := f.up.count() - before; got != tt.want {
			t.Errorf("preflight with %q: reached Hasura %d times (status %d); want %d", tt.acrh, got, resp.StatusCode, tt.want)
		}
		if tt.want == 1 {
			if got := hasuraHeaders(f.up.last(t)); len(got) != 0 {
				t.Errorf("preflight reached Hasura with %v; want no x-hasura-* header", got)
			}
		}
	}
}

// TestAllowListConfigured: an operator's list replaces the default.
func TestAllowListConfigured(t *testing.T) {
	f := newFixture(t, func(_ *auth.Config, o *Options) {
		o.Upstream.AllowedPaths = []string{"/v1/graphql", "/api/rest/public/"}
	})
	tok := f.token(goodClaims())
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/v1/graphql", 1},
		{"/api/rest/public/x", 1},
		{"/api/rest/private/x", 0},
		{"/v1beta1/relay", 0},
		{"/healthz", 0},
	} {
		before := f.up.count()
		resp := f.do(t, http.MethodPost, tt.path, http.Header{"Authorization": {"Bearer " + tok}}, `{}`)
		if got := f.up.count() - before; got != tt.want {
			t.Errorf("%s: reached Hasura %d times (status %d); want %d", tt.path, got, resp.StatusCode, tt.want)
		}
	}
}

// FuzzAllowList checks that whatever the target, an allowed request's path
// is clean and lies inside the default list.
func FuzzAllowList(f *testing.F) {
	for _, tt := range hostileTargets {
		f.Add(tt.method, tt.target)
	}
	a, err := ParseAllowList("upstream.allowed_paths", DefaultAllowedPaths())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(fmt.Sprintf("%s %s HTTP/1.1\r\nHost: h\r\n\r\n", method, target))))
		if err != nil {
			return
		}
		ok, _ := a.Allows(r)
		if !ok {
			return
		}
		if r.URL.RawPath != "" {
			t.Fatalf("allowed %q, whose path is not in canonical escaping (%q)", target, r.URL.RawPath)
		}
		p := r.URL.Path
		if strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.") ||
			strings.HasSuffix(p, "/..") || strings.HasSuffix(p, "/") || strings.Contains(p, "\\") {
			t.Fatalf("allowed unclean path %q", p)
		}
		exact := map[string]bool{"/v1/graphql": true, "/v1beta1/relay": true, "/v1alpha1/graphql": true,
			"/healthz": true, "/hasura/healthz": true, "/v1/version": true}
		if !exact[p] && !strings.HasPrefix(p, "/api/rest/") {
			t.Fatalf("allowed %q outside the list", p)
		}
	})
}
