package proxy

import (
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

func TestParseCORS(t *testing.T) {
	for _, tt := range []struct {
		name     string
		domain   string
		disabled bool
		wantErr  string // substring; "" means valid
		allow    []string
		deny     []string
	}{
		{name: "star", domain: "*",
			allow: []string{"http://localhost:3000", "https://evil.example", "null"},
			deny:  []string{""}},
		{name: "disabled star", domain: "*", disabled: true,
			deny: []string{"http://localhost:3000"}},
		{name: "exact list with ports and blanks", domain: " https://app.example.com , http://localhost:3000,http://127.0.0.1:8001",
			allow: []string{"https://app.example.com", "http://localhost:3000", "http://127.0.0.1:8001"},
			deny:  []string{"http://app.example.com", "https://app.example.com:443", "http://localhost:3001", "http://localhost", "https://x.app.example.com", "HTTPS://app.example.com"}},
		{name: "port normalised like Hasura's show", domain: "http://localhost:03000",
			allow: []string{"http://localhost:3000"}},
		{name: "wildcard matches exactly one label", domain: "https://*.example.com",
			allow: []string{"https://app.example.com", "https://x-y.example.com"},
			deny:  []string{"https://example.com", "https://a.b.example.com", "http://app.example.com", "https://app.example.com:8443", "https://app.example.org"}},
		{name: "wildcard with port", domain: "http://*.localhost:3000",
			allow: []string{"http://app.localhost:3000"},
			deny:  []string{"http://app.localhost", "http://app.localhost:3001"}},
		{name: "list disabled", domain: "https://app.example.com", disabled: true,
			deny: []string{"https://app.example.com"}},
		{name: "no scheme", domain: "app.example.com", wantErr: `invalid domain "app.example.com": scheme must be http:// or https://`},
		{name: "empty entry", domain: "https://a.example,", wantErr: `invalid domain ""`},
		{name: "empty", domain: "", wantErr: `invalid domain ""`},
		{name: "path", domain: "https://app.example.com/", wantErr: "without path"},
		{name: "bad port", domain: "http://localhost:x", wantErr: "port must be a number"},
		{name: "port zero", domain: "http://localhost:0", wantErr: "port must be a number"},
		{name: "star inside list", domain: "https://a.example, *", wantErr: `invalid domain "*"`},
		{name: "two bad entries both reported", domain: "ftp://a, b", wantErr: `invalid domain "b"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCORS(tt.domain, tt.disabled)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCORS(%q) error = %v; want one containing %q", tt.domain, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCORS(%q) error = %v; want nil", tt.domain, err)
			}
			for _, o := range tt.allow {
				if !c.Allows(o) {
					t.Errorf("Allows(%q) = false; want true", o)
				}
			}
			for _, o := range tt.deny {
				if c.Allows(o) {
					t.Errorf("Allows(%q) = true; want false", o)
				}
			}
		})
	}
}

func TestServerConfigCORSDomain(t *testing.T) {
	c := DefaultServerConfig()
	if c.CORSDomain != "*" {
		t.Errorf("default cors_domain = %q; want %q", c.CORSDomain, "*")
	}
	c.CORSDomain = "localhost:3000"
	err := c.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), `server.cors_domain: invalid domain "localhost:3000"`) {
		t.Errorf("Validate() = %v; want a server.cors_domain error", err)
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "timeout awaiting response headers" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

const corsOrigin = "http://localhost:3000"

// wantCORS checks that an answer carries Hasura's CORS headers for origin,
// each exactly once.
func wantCORS(t *testing.T, h http.Header, origin string) {
	t.Helper()
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":      origin,
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Allow-Methods":     "GET,POST,PUT,PATCH,DELETE,OPTIONS",
	} {
		if got := h.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q; want [%q]", k, got, want)
		}
	}
	n := 0
	for _, v := range h.Values("Vary") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "Origin") {
				n++
			}
		}
	}
	if n != 1 {
		t.Errorf("Vary = %q; want Origin exactly once", h.Values("Vary"))
	}
}

func wantNoCORS(t *testing.T, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("%s = %q; want no CORS header", k, h.Values(k))
		}
	}
}

// hasuraCORS answers like Hasura with its default CORS policy: its own
// CORS headers, which the proxy must replace and never repeat.
func hasuraCORS(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,OPTIONS")
		w.Header().Set("Vary", "Origin, Accept-Encoding")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"data":{"ok":true}}`)
}

// TestCORSOnEveryAnswer: every answer, the proxy's own refusals included,
// carries the policy's headers once, so a page can read Hasura's error.
func TestCORSOnEveryAnswer(t *testing.T) {
	list, err := ParseCORS("https://app.example.com, "+corsOrigin, false)
	if err != nil {
		t.Fatal(err)
	}
	withCORS := func(c *CORS, tr http.RoundTripper) fixtureOpt {
		return func(_ *auth.Config, o *Options) {
			o.CORS = c
			o.MaxBodyBytes = 1024
			if tr != nil {
				o.Transport = tr
			}
		}
	}
	unreachable := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("connection refused") })
	slow := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, timeoutError{} })
	for _, tt := range []struct {
		name       string
		tr         http.RoundTripper
		method     string
		token      bool
		role       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "forwarded answer", method: "POST", token: true, wantStatus: 200},
		{name: "no token", method: "POST", wantStatus: 200, wantCode: "invalid-headers"},
		{name: "role not allowed", method: "POST", token: true, role: "admin", wantStatus: 200, wantCode: "access-denied"},
		{name: "413", method: "POST", token: true, body: strings.Repeat("x", 2048), wantStatus: 413, wantCode: "payload-too-large"},
		{name: "502", method: "POST", token: true, tr: unreachable, wantStatus: 502, wantCode: "unexpected"},
		{name: "504", method: "POST", token: true, tr: slow, wantStatus: 504, wantCode: "unexpected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withCORS(list, tt.tr))
			f.up.handler = hasuraCORS
			h := http.Header{"Origin": {corsOrigin}, "Content-Type": {"application/json"}}
			if tt.token {
				h.Set("Authorization", "Bearer "+f.token(goodClaims()))
			}
			if tt.role != "" {
				h.Set("X-Hasura-Role", tt.role)
			}
			body := tt.body
			if body == "" {
				body = `{"query":"{ x }"}`
			}
			resp := f.do(t, tt.method, "/v1/graphql", h, body)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d; want %d (body %s)", resp.StatusCode, tt.wantStatus, b)
			}
			if tt.wantCode != "" && !strings.Contains(string(b), `"code":"`+tt.wantCode+`"`) {
				t.Errorf("body = %s; want code %q", b, tt.wantCode)
			}
			wantCORS(t, resp.Header, corsOrigin)
			if tt.name == "forwarded answer" {
				if got := resp.Header.Values("Vary"); !strings.Contains(strings.Join(got, ","), "Accept-Encoding") {
					t.Errorf("Vary = %q; want Hasura's Accept-Encoding kept", got)
				}
			}

			// The same request from an origin outside the list gets no
			// CORS header at all, Hasura's own included.
			h.Set("Origin", "https://evil.example")
			resp = f.do(t, tt.method, "/v1/graphql", h, body)
			_, _ = io.Copy(io.Discard, resp.Body)
			wantNoCORS(t, resp.Header)
		})
	}
}

// TestCORSOnWebhookAnswers: webhook mode's answers carry the policy too.
func TestCORSOnWebhookAnswers(t *testing.T) {
	c, _ := ParseCORS("*", false)
	f := newFixture(t, func(_ *auth.Config, o *Options) { o.CORS = c; o.WebhookPath = "/webhook" })
	for _, tt := range []struct {
		name       string
		token      bool
		wantStatus int
	}{{"refused", false, http.StatusUnauthorized}, {"allowed", true, http.StatusOK}} {
		h := http.Header{"Origin": {corsOrigin}}
		if tt.token {
			h.Set("Authorization", "Bearer "+f.token(goodClaims()))
		}
		resp := f.do(t, http.MethodGet, "/webhook", h, "")
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("%s: status = %d; want %d", tt.name, resp.StatusCode, tt.wantStatus)
		}
		wantCORS(t, resp.Header, corsOrigin)
	}
	if n := f.up.count(); n != 0 {
		t.Errorf("webhook requests reaching Hasura = %d; want 0", n)
	}
}

// TestCORSPreflight: the proxy answers preflights from allowed origins as
// Hasura does, without forwarding them; other OPTIONS go to Hasura.
func TestCORSPreflight(t *testing.T) {
	for _, tt := range []struct {
		name        string
		domain      string
		disabled    bool
		origin      string
		wantAnswer  bool // the proxy answers 204 itself
		wantForward bool
	}{
		{name: "star", domain: "*", origin: corsOrigin, wantAnswer: true},
		{name: "listed", domain: corsOrigin, origin: corsOrigin, wantAnswer: true},
		{name: "not listed", domain: "https://app.example.com", origin: corsOrigin, wantForward: true},
		{name: "disabled", domain: "*", disabled: true, origin: corsOrigin, wantForward: true},
		{name: "no origin", domain: "*", wantForward: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCORS(tt.domain, tt.disabled)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, func(_ *auth.Config, o *Options) { o.CORS = c })
			f.up.handler = hasuraCORS
			h := http.Header{
				"Access-Control-Request-Method":  {"POST"},
				"Access-Control-Request-Headers": {"authorization,content-type,x-hasura-role"},
			}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			resp := f.do(t, http.MethodOptions, "/v1/graphql", h, "")
			_, _ = io.Copy(io.Discard, resp.Body)
			if got := f.up.count(); (got > 0) != tt.wantForward {
				t.Errorf("requests reaching Hasura = %d; want forwarded %v", got, tt.wantForward)
			}
			if !tt.wantAnswer {
				if !tt.disabled && tt.origin != "" {
					wantNoCORS(t, resp.Header)
				}
				if tt.disabled {
					wantNoCORS(t, resp.Header)
				}
				return
			}
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("status = %d; want 204", resp.StatusCode)
			}
			wantCORS(t, resp.Header, tt.origin)
			for k, want := range map[string]string{
				"Access-Control-Max-Age":       "1728000",
				"Access-Control-Allow-Headers": "authorization,content-type,x-hasura-role",
				"Content-Type":                 "text/plain charset=UTF-8",
			} {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q; want [%q]", k, got, want)
				}
			}
		})
	}
}

// TestReadCookieOriginsFromCORS: with read_cookie on and no
// websocket.allowed_origins, the CORS origin list checks upgrades; "*"
// cannot stand in for it.
func TestReadCookieOriginsFromCORS(t *testing.T) {
	star, _ := ParseCORS("*", false)
	list, _ := ParseCORS("https://*.example.com", false)
	ws := DefaultWebSocketConfig()
	ws.ReadCookie = true
	for _, tt := range []struct {
		name    string
		ws      WebSocketConfig
		cors    *CORS
		wantErr bool
	}{
		{"star", ws, star, true},
		{"none", ws, nil, true},
		{"list", ws, list, false},
		{"explicit origins", WebSocketConfig{ReadCookie: true, AllowedOrigins: []string{"https://a.example"}}, star, false},
		{"no cookie", DefaultWebSocketConfig(), star, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckReadCookie(tt.ws, tt.cors)
			if (err != nil) != tt.wantErr {
				t.Fatalf("CheckReadCookie = %v; want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "websocket.read_cookie: requires websocket.allowed_origins") {
				t.Errorf("error = %q; want it to name websocket.read_cookie", err)
			}
		})
	}

	f := newFixture(t, func(_ *auth.Config, o *Options) { o.CORS = list; o.WebSocket.ReadCookie = true })
	for _, tt := range []struct {
		origin  string
		refused bool
	}{
		{"https://evil.example", true},
		{"https://app.example.com", false},
		{"", false},
	} {
		// Without Sec-WebSocket-Key the upgrade fails after the Origin
		// check, so no socket outlives the test.
		h := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		resp := f.do(t, http.MethodGet, "/v1/graphql", h, "")
		b, _ := io.ReadAll(resp.Body)
		refused := resp.StatusCode == http.StatusBadRequest && strings.Contains(string(b), "does not match configured CORS domains")
		if refused != tt.refused {
			t.Errorf("Origin %q: status %d body %s; want refused %v", tt.origin, resp.StatusCode, b, tt.refused)
		}
		wantNoCORS(t, resp.Header)
	}
}

// FuzzCORSOrigin feeds request Origins (attacker input) to a star and a
// list policy: no panic, "*" allows exactly the non-empty ones, and a list
// allows only its exact origin or one more label under its wildcard.
func FuzzCORSOrigin(f *testing.F) {
	for _, o := range []string{
		"", "null", "http://localhost:3000", "https://app.example.com", "http://a.localhost:3000",
		"http://.localhost:3000", "http://a.localhost:+3000", "http://a.localhost:03000", "http://a.b.localhost:3000",
		"https://app.example.com:443", "http://a.localhost:3000/", "http://[::1]:3000", "https://app.example.com\x00",
	} {
		f.Add(o)
	}
	star, err := ParseCORS("*", false)
	if err != nil {
		f.Fatal(err)
	}
	list, err := ParseCORS("https://app.example.com, http://*.localhost:3000", false)
	if err != nil {
		f.Fatal(err)
	}
	under := regexp.MustCompile(`^http://[^.]*\.localhost:0{0,1}3000$`)
	f.Fuzz(func(t *testing.T, origin string) {
		if got := star.Allows(origin); got != (origin != "") {
			t.Errorf("* Allows(%q) = %v; want %v", origin, got, origin != "")
		}
		if list.Allows(origin) && origin != "https://app.example.com" && !under.MatchString(origin) {
			t.Errorf("list Allows(%q) = true; want false", origin)
		}
		h := http.Header{}
		r, _ := http.NewRequest(http.MethodOptions, "http://proxy.test/v1/graphql", nil)
		r.Header.Set("Origin", origin)
		if list.apply(h, r) && h.Get("Access-Control-Allow-Origin") != r.Header.Get("Origin") {
			t.Errorf("Access-Control-Allow-Origin = %q; want the request's %q", h.Get("Access-Control-Allow-Origin"), origin)
		}
	})
}
