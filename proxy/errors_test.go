package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// TestAuthStatus: the proxy alone decides the HTTP status of an auth
// refusal, from the error, the endpoint family and auth.error_status. Under
// "hasura" the non-GraphQL families get Hasura's original status: 401 for
// the admin secret refusals, 400 for every token and claims problem, 500
// for an Authenticator failure that is not an *auth.Error.
func TestAuthStatus(t *testing.T) {
	unexpected := &auth.Error{Code: "unexpected", Message: "internal error", Reason: metrics.Other, Detail: errors.New("boom").Error()}
	tests := []struct {
		name     string
		err      *auth.Error
		original int // the "hasura" status off /v1/graphql
		http     int // the "http" status
	}{
		{"missing token", auth.ErrMissingToken, 400, 401},
		{"malformed header", auth.ErrMalformedHeader, 400, 401},
		{"multiple tokens", auth.ErrMultipleTokens, 400, 401},
		{"bad issuer", auth.ErrNotInIssuer, 400, 401},
		{"no signatures", auth.ErrNoSignatures, 400, 401},
		{"bad signature", auth.ErrInvalidSignature, 400, 401},
		{"bad algorithm", auth.ErrBadAlgorithm, 400, 401},
		{"unknown kid", auth.ErrUnknownKey, 400, 401},
		{"no usable keys", auth.ErrNoUsableKeys, 400, 401},
		{"expired", auth.ErrExpired, 400, 401},
		{"issued in the future", auth.ErrIssuedAtFuture, 400, 401},
		{"not yet valid", auth.ErrNotYetValid, 400, 401},
		{"bad audience", auth.ErrNotInAudience, 400, 401},
		{"role not allowed", auth.ErrRoleNotAllowed, 400, 403},
		{"no allowed roles claim", auth.ErrAllowedRolesClaim, 400, 401},
		{"no default role claim", auth.ErrDefaultRoleClaim, 400, 401},
		{"missing exp", auth.ErrMissingExp, 400, 401},
		{"missing iss", auth.ErrMissingIssuer, 400, 401},
		{"missing aud", auth.ErrMissingAud, 400, 401},
		{"missing azp", auth.ErrMissingAZP, 400, 401},
		{"bad azp", auth.ErrBadAZP, 400, 401},
		{"revoked", auth.ErrRevoked, 400, 401},
		{"bad admin secret", auth.ErrBadAdminSecret, 401, 403},
		{"admin secret disabled", auth.ErrAdminSecretDisabled, 401, 403},
		{"throttled admin secret", errThrottled(5), 401, 403},
		{"admin secret sent to the webhook", errWebhookAdmin, 401, 403},
		{"not an auth error", unexpected, 500, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				f        family
				httpMode bool
				want     int
			}{
				{familyGraphQL, false, http.StatusOK},
				{familyGraphQLAlpha, false, tt.original},
				{familyOther, false, tt.original},
				{familyGraphQL, true, tt.http},
				{familyGraphQLAlpha, true, tt.http},
				{familyOther, true, tt.http},
			} {
				if got := authStatus(c.f, tt.err, c.httpMode); got != c.want {
					t.Errorf("authStatus(family %d, http %v) = %d; want %d", c.f, c.httpMode, got, c.want)
				}
			}
		})
	}
}

// TestWriteAuthError: the answer's status, headers and body for one
// refusal per shape.
func TestWriteAuthError(t *testing.T) {
	tests := []struct {
		name     string
		f        family
		err      *auth.Error
		httpMode bool
		status   int
		wwwAuth  string
		body     string
	}{
		{"graphql, hasura statuses", familyGraphQL, auth.ErrExpired, false, 200, "",
			`{"errors":[{"message":"Could not verify JWT: JWTExpired","extensions":{"path":"$","code":"invalid-jwt"}}]}`},
		{"metadata, bad admin secret", familyOther, auth.ErrBadAdminSecret, false, 401, "",
			`{"error":"invalid x-hasura-admin-secret/x-hasura-access-key","path":"$","code":"access-denied"}`},
		{"alpha, missing token", familyGraphQLAlpha, auth.ErrMissingToken, false, 400, "",
			`{"errors":[{"message":"Missing 'Authorization' or 'Cookie' header in JWT authentication mode","extensions":{"path":"$","code":"invalid-headers"}}]}`},
		{"http statuses, missing token", familyGraphQL, auth.ErrMissingToken, true, 401, `Bearer`,
			`{"errors":[{"message":"Missing 'Authorization' or 'Cookie' header in JWT authentication mode","extensions":{"path":"$","code":"invalid-headers"}}]}`},
		{"http statuses, bad token", familyOther, auth.ErrInvalidSignature, true, 401, `Bearer error="invalid_token"`,
			`{"error":"Could not verify JWT: JWSError JWSInvalidSignature","path":"$","code":"invalid-jwt"}`},
		{"http statuses, role not allowed", familyGraphQL, auth.ErrRoleNotAllowed, true, 403, "",
			`{"errors":[{"message":"Your requested role is not in allowed roles","extensions":{"path":"$","code":"access-denied"}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if got := writeAuthError(rec, tt.f, tt.err, tt.httpMode); got != tt.status {
				t.Errorf("returned status %d; want %d", got, tt.status)
			}
			if rec.Code != tt.status {
				t.Errorf("status = %d; want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wwwAuth {
				t.Errorf("WWW-Authenticate = %q; want %q", got, tt.wwwAuth)
			}
			if got := rec.Body.String(); got != tt.body {
				t.Errorf("body = %s; want %s", got, tt.body)
			}
		})
	}
}

// failingAuth is an Authenticator whose every answer is a plain error, as
// a broken implementation would give.
type failingAuth struct{ err error }

func (f failingAuth) Authenticate(context.Context, http.Header) (*auth.Session, error) {
	return nil, f.err
}

// TestNonAuthErrorAnswer: an Authenticator error that is not an
// *auth.Error is answered as Hasura's "unexpected" internal error, with its
// text kept out of the answer, and nothing reaches Hasura.
func TestNonAuthErrorAnswer(t *testing.T) {
	forwarded := 0
	up := DefaultConfig()
	up.URL, up.AdminSecret = "http://127.0.0.1:1", "admin-secret-for-the-test"
	h, err := New(Options{Upstream: up, MaxBodyBytes: 1 << 20, ErrorStatus: "hasura",
		Auth: failingAuth{errors.New("database of sessions unreachable")},
		Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			forwarded++
			return nil, errors.New("must not be called")
		})})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/v1/graphql", 200, `{"errors":[{"message":"internal error","extensions":{"path":"$","code":"unexpected"}}]}`},
		{"/api/rest/things", 500, `{"error":"internal error","path":"$","code":"unexpected"}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(`{"query":"{ a }"}`))
			r.Header.Set("Authorization", "Bearer x.y.z")
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Errorf("status = %d; want %d", rec.Code, tt.status)
			}
			if got := rec.Body.String(); got != tt.body {
				t.Errorf("body = %s; want %s", got, tt.body)
			}
		})
	}
	if forwarded != 0 {
		t.Errorf("forwarded %d requests to Hasura; want 0", forwarded)
	}
}
