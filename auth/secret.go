package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/textproto"
)

// Secret is a configuration value that must never be printed: the admin
// secret, an HS key. Every formatting path (fmt verbs, JSON, YAML, zap)
// renders it as "[REDACTED]"; Reveal returns the value for actual use.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return `auth.Secret("` + s.String() + `")` }

// Format redacts the secret for every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText redacts the secret (zap and encoding/* use it).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Equal compares s with a presented value in constant time, without leaking
// the length of either through timing (both are hashed first).
func (s Secret) Equal(presented string) bool {
	a := sha256.Sum256([]byte(s))
	b := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && s != ""
}

func textprotoCanonical(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

// isToken reports whether s is a valid HTTP header field name (RFC 9110
// token), which is also what a cookie name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v can be sent as a header value as it is:
// no control characters other than horizontal tab (so no CR, LF or NUL).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
