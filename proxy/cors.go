package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// CORS is the proxy's one cross-origin policy, configured like Hasura's
// (server.cors_domain / HASURA_GRAPHQL_CORS_DOMAIN and server.cors_disabled /
// HASURA_GRAPHQL_DISABLE_CORS) and applied the way Hasura's corsMiddleware
// applies it (server/src-lib/Hasura/Server/Middleware.hs):
//
//   - A request without Origin, or whose Origin the policy does not allow,
//     gets no CORS headers.
//   - Any other request gets Access-Control-Allow-Origin echoing its Origin,
//     Access-Control-Allow-Credentials: true and Access-Control-Allow-Methods,
//     on every answer: refusals the proxy writes itself (auth errors, 413,
//     502, 504) as much as Hasura's forwarded answers.
//   - An OPTIONS request from an allowed Origin is a preflight: the proxy
//     answers it itself with 204, Access-Control-Max-Age 1728000 and
//     Access-Control-Allow-Headers echoing Access-Control-Request-Headers,
//     and Hasura never sees it.
//
// On forwarded answers Hasura's own Access-Control-* headers are replaced,
// never repeated: the browser sees exactly one policy whatever Hasura's own
// CORS configuration is. Unlike Hasura, the proxy also sends Vary: Origin,
// because the answer depends on the Origin it echoes.
//
// A nil *CORS sends no CORS headers and forwards OPTIONS to Hasura. A CORS
// is immutable and safe for concurrent use.
type CORS struct {
	disabled  bool
	all       bool
	exact     map[string]bool
	wildcards map[originParts]bool
}

// originParts is Hasura's DomainParts: scheme ("https://"), host without
// the wildcard label, and port (0 when absent).
type originParts struct {
	scheme, host string
	port         int
}

// Values of Hasura's CORS headers (mkDefaultCorsPolicy and corsMiddleware in
// Hasura's Cors.hs and Middleware.hs).
const (
	corsMethods       = "GET,POST,PUT,PATCH,DELETE,OPTIONS"
	corsMaxAge        = "1728000"
	corsPreflightType = "text/plain charset=UTF-8" // sic, as Hasura sends it
	corsDomainHelp    = "all domains should have scheme + (optional wildcard) host + (optional port), e.g. https://app.example.com, https://*.example.com, http://localhost:3000"
	corsDefaultDomain = "*"
)

// ParseCORS parses a cors_domain value (Hasura's syntax: "*", or a
// comma-separated list of origins, each scheme://host[:port] with an
// optional "*." before the host matching exactly one more label) into a
// policy. disabled turns CORS off whatever the domain, as Hasura's
// --disable-cors does. Errors do not name the field; the caller does.
func ParseCORS(domain string, disabled bool) (*CORS, error) {
	c := &CORS{disabled: disabled}
	if strings.TrimSpace(domain) == "*" {
		c.all = true
		return c, nil
	}
	c.exact = make(map[string]bool)
	c.wildcards = make(map[originParts]bool)
	var errs []error
	for _, d := range strings.Split(domain, ",") {
		d = strings.TrimSpace(d)
		p, wild, err := parseDomain(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid domain %q: %w; %s", d, err, corsDomainHelp))
			continue
		}
		if wild {
			c.wildcards[p] = true
		} else {
			c.exact[p.String()] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (p originParts) String() string {
	if p.port == 0 {
		return p.scheme + p.host
	}
	return p.scheme + p.host + ":" + strconv.Itoa(p.port)
}

// parseDomain parses one configured domain. It is stricter than Hasura's
// parser, which accepts text it can then never match (a trailing "/" or a
// path, a non-numeric port): those are refused here, at startup.
func parseDomain(d string) (originParts, bool, error) {
	var p originParts
	switch {
	case strings.HasPrefix(d, "http://"):
		p.scheme = "http://"
	case strings.HasPrefix(d, "https://"):
		p.scheme = "https://"
	default:
		return p, false, errors.New("scheme must be http:// or https://")
	}
	rest := d[len(p.scheme):]
	wild := strings.HasPrefix(rest, "*.")
	if wild {
		rest = rest[2:]
	}
	host, port, hasPort := strings.Cut(rest, ":")
	if host == "" || strings.ContainsAny(host, "/?#@*[] \t") {
		return p, false, errors.New("host must be a plain host name, without path, user or brackets")
	}
	if hasPort {
		n, ok := decimal(port)
		if !ok || n < 1 || n > 65535 {
			return p, false, errors.New("port must be a number from 1 to 65535")
		}
		p.port = n
	}
	p.host = host
	return p, wild, nil
}

// parseOrigin splits a request Origin as Hasura's originParser does for
// wildcard matching: the first label of the host is dropped, so
// "https://a.example.com" gives ("https://", "example.com", 0).
func parseOrigin(o string) (originParts, bool) {
	var p originParts
	switch {
	case strings.HasPrefix(o, "http://"):
		p.scheme = "http://"
	case strings.HasPrefix(o, "https://"):
		p.scheme = "https://"
	default:
		return p, false
	}
	rest := o[len(p.scheme):]
	_, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return p, false
	}
	host, port, hasPort := strings.Cut(rest, ":")
	if host == "" {
		return p, false
	}
	if hasPort {
		n, ok := decimal(port)
		if !ok {
			return p, false
		}
		p.port = n
	}
	p.host = host
	return p, true
}

// decimal parses 1-5 ASCII digits (leading zeros allowed, as Hasura's
// parser allows them); no sign, no blanks.
func decimal(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// Enabled reports whether the policy ever sends CORS headers.
func (c *CORS) Enabled() bool { return c != nil && !c.disabled }

// IsList reports whether the policy is an origin list (not "*", not
// disabled): only then can it stand in for websocket.allowed_origins.
func (c *CORS) IsList() bool { return c.Enabled() && !c.all }

// Allows reports whether an Origin gets CORS headers.
func (c *CORS) Allows(origin string) bool {
	switch {
	case !c.Enabled() || origin == "":
		return false
	case c.all || c.exact[origin]:
		return true
	}
	p, ok := parseOrigin(origin)
	return ok && c.wildcards[p]
}

// apply sets the CORS headers for r on h (the response headers) and
// reports whether r is a preflight the caller must answer with preflight
// instead of handling it.
func (c *CORS) apply(h http.Header, r *http.Request) bool {
	if c == nil {
		return false
	}
	origin := r.Header.Get("Origin")
	if !c.Allows(origin) {
		return false
	}
	h["Access-Control-Allow-Origin"] = []string{origin}
	h["Access-Control-Allow-Credentials"] = []string{"true"}
	h["Access-Control-Allow-Methods"] = []string{corsMethods}
	h.Add("Vary", "Origin")
	return r.Method == http.MethodOptions
}

// preflight answers a preflight as Hasura does; apply has set the common
// headers.
func preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Access-Control-Max-Age"] = []string{corsMaxAge}
	h["Access-Control-Allow-Headers"] = []string{r.Header.Get("Access-Control-Request-Headers")}
	h.Add("Vary", "Access-Control-Request-Headers")
	h["Content-Type"] = []string{corsPreflightType}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusNoContent)
}

// corsResponseHeaders are the headers apply and preflight own; Hasura's
// copies are dropped from forwarded answers so none is sent twice.
var corsResponseHeaders = [...]string{
	"Access-Control-Allow-Origin",
	"Access-Control-Allow-Credentials",
	"Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers",
	"Access-Control-Max-Age",
}

// stripUpstreamCORS removes Hasura's CORS headers from a forwarded answer,
// and "Origin" from its Vary (apply adds its own).
func stripUpstreamCORS(h http.Header) {
	for _, k := range corsResponseHeaders {
		delete(h, k)
	}
	vs, ok := h["Vary"]
	if !ok {
		return
	}
	var keep []string
	for _, v := range vs {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" && !strings.EqualFold(part, "Origin") {
				keep = append(keep, part)
			}
		}
	}
	if len(keep) == 0 {
		delete(h, "Vary")
	} else {
		h["Vary"] = []string{strings.Join(keep, ", ")}
	}
}

// CheckReadCookie reports the one cross-section rule of websocket.read_cookie:
// reading the upgrade request's cookies needs an Origin allow-list, either
// websocket.allowed_origins or, when that is empty, a server.cors_domain
// list (not "*", not disabled). cors is the parsed server policy.
func CheckReadCookie(ws WebSocketConfig, cors *CORS) error {
	if ws.ReadCookie && len(ws.AllowedOrigins) == 0 && !cors.IsList() {
		return errors.New("websocket.read_cookie: requires websocket.allowed_origins or a server.cors_domain origin list (not \"*\"): without an Origin check any web page could open a socket authenticated by the user's cookies")
	}
	return nil
}

// Wrap is Hasura's corsMiddleware around next: the CORS headers on every
// answer and preflights answered with 204. It is for stand-ins that must
// answer as Hasura does (the demo's Hasura and token issuer); Handler
// applies the policy itself.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.apply(w.Header(), r) {
			preflight(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
