package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// TestRevokedSessionRefused: a token of a revoked session is refused like
// an invalid token on HTTP and in webhook mode, and never reaches Hasura.
func TestRevokedSessionRefused(t *testing.T) {
	rv := &revokedSessions{}
	rv.revoke("sess_revoked")
	f := newFixture(t, func(_ *auth.Config, o *Options) {
		o.Revocations = rv
		o.WebhookPath = "/auth/webhook"
	})
	claims := goodClaims()
	claims["sid"] = "sess_revoked"
	revoked := http.Header{"Authorization": {"Bearer " + f.token(claims)}}
	claims["sid"] = "sess_ok"
	ok := http.Header{"Authorization": {"Bearer " + f.token(claims)}}

	tests := []struct {
		name       string
		path       string
		h          http.Header
		wantStatus int
		wantBody   string
	}{
		{"graphql", "/v1/graphql", revoked, 200,
			`{"errors":[{"extensions":{"path":"$","code":"invalid-jwt"},"message":"Could not verify JWT: the session was revoked"}]}`},
		{"rest endpoint", "/api/rest/profile", revoked, 400,
			`{"path":"$","error":"Could not verify JWT: the session was revoked","code":"invalid-jwt"}`},
		{"webhook mode", "/auth/webhook", revoked, 401,
			`{"path":"$","error":"Could not verify JWT: the session was revoked","code":"invalid-jwt"}`},
		{"webhook mode, another session", "/auth/webhook", ok, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.up.count()
			resp := f.do(t, http.MethodGet, tt.path, tt.h, "")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d; want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" && !jsonEqual(t, body, []byte(tt.wantBody)) {
				t.Errorf("body = %s; want %s", body, tt.wantBody)
			}
			if tt.wantBody == "" {
				var v map[string]string
				if err := json.Unmarshal(body, &v); err != nil || v["X-Hasura-Role"] != "user" {
					t.Errorf("webhook body = %s; want the session", body)
				}
			}
			if got := f.up.count() - before; got != 0 {
				t.Errorf("Hasura got %d requests; want 0", got)
			}
		})
	}
}
