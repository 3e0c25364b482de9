package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// DefaultAllowedPaths is the default of upstream.allowed_paths: what
// applications use. Hasura's GraphQL endpoints, its RESTified endpoints under
// /api/rest/, and the unauthenticated health and version endpoints
// (server/src-lib/Hasura/Server/App.hs routes them as "v1/graphql",
// "v1beta1/relay", "v1alpha1/graphql", "api/rest", "healthz",
// "hasura/healthz" and "v1/version"). The metadata, query, pg_dump, config,
// explain and developer APIs are left out: only the admin uses them.
func DefaultAllowedPaths() []string {
	return []string{
		"/v1/graphql",
		"/v1beta1/relay",
		"/v1alpha1/graphql",
		"/api/rest/",
		"/healthz",
		"/hasura/healthz",
		"/v1/version",
	}
}

// allowedMethods are the methods forwarded for a client that did not present
// the admin secret. Hasura routes only GET and POST (and answers OPTIONS for
// CORS); CONNECT, TRACE, PUT, ... have nothing to reach there.
var allowedMethods = map[string]bool{
	http.MethodGet:     true,
	http.MethodPost:    true,
	http.MethodOptions: true,
	http.MethodHead:    true,
}

// AllowList is the parsed upstream.allowed_paths: the paths a request may
// have to be forwarded without the admin secret. An entry ending in "/" is a
// prefix: it allows every path below it ("/api/rest/" allows
// "/api/rest/users/1", not "/api/rest/" itself). Any other entry is one exact
// path. The zero value allows nothing. It is immutable and safe for
// concurrent use.
type AllowList struct {
	exact    map[string]bool
	prefixes []string
}

// ParseAllowList parses the entries of upstream.allowed_paths; field names the
// config key in errors. Every problem is reported.
func ParseAllowList(field string, entries []string) (AllowList, error) {
	var errs []error
	a := AllowList{exact: make(map[string]bool, len(entries))}
	if len(entries) == 0 {
		errs = append(errs, fmt.Errorf(`%s: list at least one path (["/"] forwards every path)`, field))
	}
	for i, e := range entries {
		if err := checkAllowEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %q %w", field, i, e, err))
			continue
		}
		if strings.HasSuffix(e, "/") {
			a.prefixes = append(a.prefixes, e)
		} else {
			a.exact[e] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return AllowList{}, err
	}
	return a, nil
}

// checkAllowEntry refuses an entry no clean request path can equal, so a
// typo is an error rather than an entry that never matches.
func checkAllowEntry(e string) error {
	if !strings.HasPrefix(e, "/") {
		return errors.New("must start with /")
	}
	for i := 0; i < len(e); i++ {
		if c := e[i]; c <= ' ' || c == 0x7f || c == '%' || c == '?' || c == '#' || c == '\\' {
			return errors.New("must be a plain, unescaped path (no spaces, %, ?, # or \\)")
		}
	}
	if e != "/" && !cleanSegments(strings.TrimSuffix(e[1:], "/")) {
		return errors.New(`must not hold empty, "." or ".." segments`)
	}
	return nil
}

// cleanSegments reports whether every "/"-separated segment of p is
// non-empty and neither "." nor "..".
func cleanSegments(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// Allows reports whether r may be forwarded to Hasura without the admin
// secret, and if not, why ("method" or "path").
//
// The path must be exact: r.URL.RawPath must be empty (net/http sets it when
// the request spelt the path in any but the canonical escaping, so %2e%2e,
// %2F and %61 are all refused rather than guessed at), and the decoded path
// must be an exact entry, or lie below a prefix entry with clean segments
// (no empty, "." or ".." segment, no backslash or control byte). Hasura's
// router (WAI's pathInfo) decodes each segment and resolves none of them, but
// any normalising hop between the proxy and Hasura could; what is refused
// here cannot be re-routed by either.
func (a AllowList) Allows(r *http.Request) (ok bool, reason string) {
	if !allowedMethods[r.Method] {
		return false, "method"
	}
	p := r.URL.Path
	if r.URL.RawPath != "" || !strings.HasPrefix(p, "/") {
		// Also "*" (OPTIONS *) and authority-form targets.
		return false, "path"
	}
	if a.exact[p] {
		return true, ""
	}
	for _, pre := range a.prefixes {
		if len(p) <= len(pre) || !strings.HasPrefix(p, pre) {
			continue
		}
		rest := p[len(pre):]
		if cleanSegments(rest) && plainPath(rest) {
			return true, ""
		}
	}
	return false, "path"
}

// plainPath reports whether p holds no control byte, space or backslash
// (some servers read "\" as "/").
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// presentsAdminSecret reports whether h carries an admin secret header,
// exactly as the auth package looks for one (x-hasura-admin-secret, or the
// deprecated x-hasura-access-key, even empty). Such a request is decided by
// the admin secret alone: right, it is forwarded as admin to any path;
// wrong, it is refused.
func presentsAdminSecret(h http.Header) bool {
	_, ok := h["X-Hasura-Admin-Secret"]
	if !ok {
		_, ok = h["X-Hasura-Access-Key"]
	}
	return ok
}

// adminPreflight reports a CORS preflight for a request that will carry the
// admin secret (a browser never sends custom headers on the preflight
// itself, only their names): it is forwarded, without the admin secret,
// wherever the request it announces may go.
func adminPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions &&
		(headerHasToken(r.Header, "Access-Control-Request-Headers", "x-hasura-admin-secret") ||
			headerHasToken(r.Header, "Access-Control-Request-Headers", "x-hasura-access-key"))
}

// notAllowed answers a request the allow-list refuses exactly as Hasura
// answers a path it has no route for (App.hs: err404 NotFound "resource does
// not exist").
func (h *Handler) notAllowed(x *exchange, reason string) {
	h.metrics.RequestNotAllowed(reason)
	x.upErr = reason + " not allowed (upstream.allowed_paths)"
	writeJSONError(x, http.StatusNotFound, errorBody(familyOther, "not-found", "resource does not exist"))
}
