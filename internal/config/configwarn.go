package config

import (
	"fmt"
	"net/url"
	"strings"
)

// PlaceholderClerkHost is config.yaml's stand-in for a Clerk Frontend API
// host (used when CLERK_FRONTEND_API is unset). No real instance has it.
const PlaceholderClerkHost = "example.clerk.accounts.dev"

// Warnings lists what is valid but almost certainly not meant: the
// placeholder Clerk host, and issuers or authorized parties that no Clerk
// token can match (http:// on a loopback host is left alone: development
// origins and local test issuers). -check-config prints them and serve logs them; they do
// not stop the proxy. Issuers and origins are not secrets; jwk_url is shown
// by host only.
func Warnings(c *File) []string {
	var out []string
	secrets := c.Auth.Secrets()
	for i, s := range secrets {
		prefix := "auth.jwt_secret"
		if len(c.Auth.JWTSecrets) > 0 {
			prefix = fmt.Sprintf("auth.jwt_secrets[%d]", i)
		}
		if u, err := url.Parse(s.JWKURL); err == nil && s.JWKURL != "" && strings.EqualFold(u.Hostname(), PlaceholderClerkHost) {
			out = append(out, prefix+".jwk_url: "+PlaceholderClerkHost+" is the example's placeholder, not a Clerk instance; "+
				"set CLERK_FRONTEND_API to your Frontend API host (Clerk dashboard, API keys), or write the jwk_url")
		}
		if s.Issuer == "" {
			continue
		}
		if u, err := url.Parse(s.Issuer); err == nil && strings.EqualFold(u.Hostname(), PlaceholderClerkHost) {
			out = append(out, prefix+".issuer: "+PlaceholderClerkHost+" is the example's placeholder; "+
				"write your Frontend API URL, e.g. https://clerk.your-app.com")
		}
		if !strings.HasPrefix(s.Issuer, "https://") && !isLocalHTTPOrigin(s.Issuer) {
			out = append(out, fmt.Sprintf("%s.issuer: %q %s; Clerk's iss is the Frontend API URL, e.g. https://clerk.your-app.com, "+
				"so no Clerk token matches this issuer", prefix, s.Issuer, schemeProblem(s.Issuer)))
		}
	}
	for i, p := range c.Auth.AuthorizedParties {
		if strings.HasPrefix(p, "https://") || isLocalHTTPOrigin(p) || strings.TrimSpace(p) == "" {
			continue
		}
		out = append(out, fmt.Sprintf("auth.authorized_parties[%d]: %q %s; Clerk's azp is the page's origin, e.g. https://app.example.com "+
			"(http:// only for localhost), so no Clerk token matches this entry", i, p, schemeProblem(p)))
	}
	return out
}

// schemeProblem says what is wrong with a value that does not start with
// https://.
func schemeProblem(v string) string {
	if !strings.Contains(v, "://") {
		return "has no scheme"
	}
	return "is not https://"
}

// isLocalHTTPOrigin reports an http:// URL on a loopback host, which a
// development app (or a local test issuer, as in the demo) legitimately has.
func isLocalHTTPOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || u.Scheme != "http" {
		return false
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}
