package proxy

import (
	"net/http"
	"net/http/httputil"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// rewrite builds the upstream request: strip, then set (package comment).
// The identity headers are identityHeaders' work; rewrite adds what only
// HTTP needs (target, trailers, upgrade headers).
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	x, _ := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.SetURL(h.target)
	out := pr.Out.Header
	// Request trailers are never forwarded: a declared "Trailer:
	// X-Hasura-Role" would otherwise reach Hasura, and with it any value a
	// body-buffering step had copied. Hasura reads no request trailers.
	pr.Out.Trailer = nil
	if !isWebSocketUpgrade(pr.In) {
		// Only the WebSocket path may switch protocols: an h2c or other
		// upgrade forwarded with the admin secret would hand the client a
		// raw tunnel to Hasura if Hasura agreed. Without these headers
		// ReverseProxy also refuses any 101 answer (502).
		delete(out, "Upgrade")
		delete(out, "Connection")
	}
	id := identity{
		Secret:               h.secret,
		ForwardAuthorization: h.opts.Upstream.ForwardAuthorization,
		ForwardCookie:        h.opts.Upstream.ForwardCookie,
	}
	if x != nil {
		id.Session, id.RequestID = x.session, x.rid
	}
	identityHeaders(out, pr.In, id)
}

// StripHasuraHeaders removes every header whose name, compared
// case-insensitively with "_" read as "-", starts with "x-hasura-".
func StripHasuraHeaders(h http.Header) {
	for k := range h {
		if isHasuraHeader(k) {
			delete(h, k)
		}
	}
}

func isHasuraHeader(name string) bool {
	const p = "x-hasura-"
	if len(name) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if foldHeaderByte(name[i]) != p[i] {
			return false
		}
	}
	return true
}

// foldHeaderByte is how the proxy compares header names byte by byte, as
// Hasura reads them: ASCII case-insensitively, with "_" read as "-".
func foldHeaderByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	if c == '_' {
		c = '-'
	}
	return c
}

// SetSessionHeaders sets the admin secret, the role and the session
// variables of s on h, which must already be stripped of x-hasura-*
// headers. secret is the admin secret as a one-element slice (shared,
// never modified).
func SetSessionHeaders(h http.Header, secret []string, s *auth.Session) {
	// One backing array for every value instead of one per header; each
	// header's slice is capped so an Add on one cannot overwrite the next.
	vals := make([]string, len(s.Vars)+1)
	for i, v := range s.Vars {
		vals[i] = v.Value
		h[v.Name] = vals[i : i+1 : i+1]
	}
	vals[len(s.Vars)] = s.Role
	h["X-Hasura-Admin-Secret"] = secret
	h["X-Hasura-Role"] = vals[len(s.Vars):]
}

// modifyResponse drops Hasura's X-Request-Id and, under a CORS policy, its
// CORS headers: ServeHTTP already set the proxy's, and ReverseProxy adds
// upstream headers to them rather than replacing them.
func (h *Handler) modifyResponse(resp *http.Response) error {
	delete(resp.Header, "X-Request-Id")
	if h.opts.CORS != nil {
		stripUpstreamCORS(resp.Header)
	}
	return nil
}
