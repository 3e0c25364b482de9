package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// hostileHeaders are what a client trying to choose its own identity
// sends: every spelling of the x-hasura-* headers Hasura would read (raw
// map keys, so they reach identityHeaders uncanonicalized), spoofed
// X-Forwarded-*, and the ordinary headers that must pass.
func hostileHeaders() http.Header {
	return http.Header{
		"X-Hasura-Role":         {"admin"},
		"x-hasura-admin-secret": {"guessed"},
		"X_Hasura_Role":         {"admin"},
		"x_hasura_user_id":      {"1"},
		"X-HASURA-ACCESS-KEY":   {"old"},
		"X-Hasura-Org-Id":       {"7", "8"},
		"x-hasura-user-id":      {"1"},
		"X-Forwarded-For":       {"203.0.113.66"},
		"X-Forwarded-Host":      {"evil.example"},
		"X-Forwarded-Proto":     {"https"},
		"X-Request-Id":          {"client-chosen"},
		"Authorization":         {"Bearer token"},
		"Cookie":                {"__session=abc"},
		"Accept":                {"*/*"},
		"Content-Type":          {"application/json"},
	}
}

// TestIdentityHeaders: hostile headers in, exactly the proxy's identity
// out, for each shape of request the HTTP Rewrite and the WebSocket dial
// hand it.
func TestIdentityHeaders(t *testing.T) {
	secret := []string{"the-admin-secret"}
	user := &auth.Session{Result: auth.ResultAllowed, Role: "user",
		Vars: []auth.Var{{Name: "x-hasura-user-id", Value: "42"}, {Name: "x-hasura-org-id", Value: "9"}}}
	admin := &auth.Session{Result: auth.ResultAdmin, Role: "admin"}
	tests := []struct {
		name       string
		remoteAddr string
		host       string
		tls        bool
		dst        func() http.Header // nil: a copy of hostileHeaders
		id         identity
		want       http.Header
	}{
		{
			name: "user session, forwarding on", remoteAddr: "192.0.2.7:51000", host: "api.example.com",
			id: identity{Session: user, Secret: secret, RequestID: "rid-1", ForwardAuthorization: true, ForwardCookie: true},
			want: http.Header{
				"Accept": {"*/*"}, "Content-Type": {"application/json"},
				"Authorization": {"Bearer token"}, "Cookie": {"__session=abc"},
				"X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Host": {"api.example.com"}, "X-Forwarded-Proto": {"http"},
				"X-Request-Id":          {"rid-1"},
				"X-Hasura-Admin-Secret": {"the-admin-secret"}, "X-Hasura-Role": {"user"},
				"x-hasura-user-id": {"42"}, "x-hasura-org-id": {"9"},
			},
		},
		{
			name: "forwarding off drops Authorization and Cookie", remoteAddr: "192.0.2.7:51000", host: "api.example.com",
			id: identity{Session: user, Secret: secret, RequestID: "rid-2"},
			want: http.Header{
				"Accept": {"*/*"}, "Content-Type": {"application/json"},
				"X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Host": {"api.example.com"}, "X-Forwarded-Proto": {"http"},
				"X-Request-Id":          {"rid-2"},
				"X-Hasura-Admin-Secret": {"the-admin-secret"}, "X-Hasura-Role": {"user"},
				"x-hasura-user-id": {"42"}, "x-hasura-org-id": {"9"},
			},
		},
		{
			name: "admin secret session over TLS and IPv6", remoteAddr: "[2001:db8::1]:443", host: "api.example.com:8443", tls: true,
			id: identity{Session: admin, Secret: secret, RequestID: "rid-3", ForwardCookie: true},
			want: http.Header{
				"Accept": {"*/*"}, "Content-Type": {"application/json"}, "Cookie": {"__session=abc"},
				"X-Forwarded-For": {"2001:db8::1"}, "X-Forwarded-Host": {"api.example.com:8443"}, "X-Forwarded-Proto": {"https"},
				"X-Request-Id":          {"rid-3"},
				"X-Hasura-Admin-Secret": {"the-admin-secret"}, "X-Hasura-Role": {"admin"},
			},
		},
		{
			name: "no session: stripped, no admin secret", remoteAddr: "192.0.2.7:51000", host: "api.example.com",
			id: identity{Secret: secret, RequestID: "rid-4", ForwardAuthorization: true, ForwardCookie: true},
			want: http.Header{
				"Accept": {"*/*"}, "Content-Type": {"application/json"},
				"Authorization": {"Bearer token"}, "Cookie": {"__session=abc"},
				"X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Host": {"api.example.com"}, "X-Forwarded-Proto": {"http"},
				"X-Request-Id": {"rid-4"},
			},
		},
		{
			name: "unparsable remote address removes the client's X-Forwarded-For", remoteAddr: "not-an-address", host: "h",
			id: identity{Session: user, Secret: secret, RequestID: "rid-5"},
			want: http.Header{
				"Accept": {"*/*"}, "Content-Type": {"application/json"},
				"X-Forwarded-Host": {"h"}, "X-Forwarded-Proto": {"http"},
				"X-Request-Id":          {"rid-5"},
				"X-Hasura-Admin-Secret": {"the-admin-secret"}, "X-Hasura-Role": {"user"},
				"x-hasura-user-id": {"42"}, "x-hasura-org-id": {"9"},
			},
		},
		{
			name: "empty request id keeps the header as it is", remoteAddr: "192.0.2.7:51000", host: "api.example.com",
			id: identity{Secret: secret},
			want: http.Header{
				"Accept": {"*/*"}, "Content-Type": {"application/json"},
				"X-Forwarded-For": {"192.0.2.7"}, "X-Forwarded-Host": {"api.example.com"}, "X-Forwarded-Proto": {"http"},
				"X-Request-Id": {"client-chosen"},
			},
		},
		{
			name: "websocket dial starts from nothing", remoteAddr: "127.0.0.2:4000", host: "proxy.local",
			dst: func() http.Header { return http.Header{} },
			id:  identity{Session: user, Secret: secret, RequestID: "rid-7"},
			want: http.Header{
				"X-Forwarded-For": {"127.0.0.2"}, "X-Forwarded-Host": {"proxy.local"}, "X-Forwarded-Proto": {"http"},
				"X-Request-Id":          {"rid-7"},
				"X-Hasura-Admin-Secret": {"the-admin-secret"}, "X-Hasura-Role": {"user"},
				"x-hasura-user-id": {"42"}, "x-hasura-org-id": {"9"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := httptest.NewRequest(http.MethodPost, "/v1/graphql", nil)
			in.Header = hostileHeaders()
			in.RemoteAddr, in.Host = tt.remoteAddr, tt.host
			if tt.tls {
				in.TLS = &tls.ConnectionState{}
			}
			dst := in.Header.Clone()
			if tt.dst != nil {
				dst = tt.dst()
			}
			identityHeaders(dst, in, tt.id)
			if !reflect.DeepEqual(dst, tt.want) {
				t.Errorf("headers = %v; want %v", dst, tt.want)
			}
			if !reflect.DeepEqual(in.Header, hostileHeaders()) {
				t.Errorf("client request headers changed to %v; want them untouched", in.Header)
			}
		})
	}
}

// TestIdentityHeadersValuesIndependent: the admin secret slice is shared
// between requests, so setting the headers of one request must never
// change it, and appending to one header must not change another.
func TestIdentityHeadersValuesIndependent(t *testing.T) {
	secret := []string{"the-admin-secret"}
	s := &auth.Session{Role: "user", Vars: []auth.Var{{Name: "x-hasura-user-id", Value: "42"}}}
	in := httptest.NewRequest(http.MethodPost, "/v1/graphql", nil)
	in.RemoteAddr = "192.0.2.7:51000"
	dst := http.Header{}
	identityHeaders(dst, in, identity{Session: s, Secret: secret, RequestID: "r"})
	dst["X-Forwarded-For"] = append(dst["X-Forwarded-For"], "appended")
	dst["x-hasura-user-id"] = append(dst["x-hasura-user-id"], "appended")
	if got, want := dst["X-Forwarded-Host"], []string{"example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("X-Forwarded-Host = %q; want %q", got, want)
	}
	if got, want := dst["X-Hasura-Role"], []string{"user"}; !reflect.DeepEqual(got, want) {
		t.Errorf("X-Hasura-Role = %q; want %q", got, want)
	}
	if got, want := secret, []string{"the-admin-secret"}; !reflect.DeepEqual(got, want) {
		t.Errorf("shared secret = %q; want %q", got, want)
	}
}
