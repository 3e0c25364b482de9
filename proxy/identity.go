package proxy

import (
	"net"
	"net/http"
	"net/http/httputil"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// identity is what the proxy asserts to Hasura about one request or
// WebSocket: the inputs of identityHeaders, gathered by its two callers
// (rewrite for HTTP, upstreamHeaders for the WebSocket dial).
type identity struct {
	// Session is the verified session; nil for the requests Hasura answers
	// without authentication, which then carry no admin secret and no
	// x-hasura-* header at all.
	Session *auth.Session
	// Secret is the admin secret as a one-value header (Handler.secret:
	// shared, never modified).
	Secret []string
	// RequestID becomes X-Request-Id; empty leaves dst's as it is.
	RequestID string
	// ForwardAuthorization and ForwardCookie are
	// upstream.forward_authorization and upstream.forward_cookie: when off,
	// the client's Authorization or Cookie header is removed from dst.
	ForwardAuthorization, ForwardCookie bool
}

// identityHeaders makes dst, the headers about to be sent to Hasura for the
// client request in, carry exactly the identity the proxy decided: strip,
// then set. It removes every x-hasura-* header of any case and with "_" for
// "-" (StripHasuraHeaders), sets X-Forwarded-For, X-Forwarded-Host and
// X-Forwarded-Proto from in's connection (replacing any the client sent),
// drops Authorization and Cookie unless id forwards them, sets X-Request-Id,
// and finally the admin secret, role and session variables of id.Session.
//
// It reads only its arguments: in's RemoteAddr, Host and TLS, never its
// headers or context. dst may be a copy of in's headers (HTTP) or empty
// (the WebSocket dial, which sends nothing else of the client's upgrade).
func identityHeaders(dst http.Header, in *http.Request, id identity) {
	setXForwardedHeaders(dst, in)
	StripHasuraHeaders(dst)
	if !id.ForwardAuthorization {
		delete(dst, "Authorization")
	}
	if !id.ForwardCookie {
		delete(dst, "Cookie")
	}
	if id.RequestID != "" {
		dst["X-Request-Id"] = []string{id.RequestID}
	}
	if id.Session != nil {
		SetSessionHeaders(dst, id.Secret, id.Session)
	}
}

// setXForwarded is ProxyRequest.SetXForwarded with one allocation for the
// three values instead of one each. ReverseProxy removes the outbound
// X-Forwarded-* headers before Rewrite runs, so there is never a prior
// X-Forwarded-For to append to.
func setXForwarded(pr *httputil.ProxyRequest) {
	setXForwardedHeaders(pr.Out.Header, pr.In)
}

// setXForwardedHeaders sets out's X-Forwarded-For (removed when in's
// RemoteAddr has no host part), X-Forwarded-Host and X-Forwarded-Proto from
// in, overwriting any values out had.
func setXForwardedHeaders(out http.Header, in *http.Request) {
	vals := make([]string, 3)
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		vals[0] = ip
		out["X-Forwarded-For"] = vals[0:1:1]
	} else {
		delete(out, "X-Forwarded-For")
	}
	vals[1] = in.Host
	out["X-Forwarded-Host"] = vals[1:2:2]
	vals[2] = "http"
	if in.TLS != nil {
		vals[2] = "https"
	}
	out["X-Forwarded-Proto"] = vals[2:3:3]
}
