package auth

import (
	"net/netip"
	"strings"
)

// isURI reports whether s is a URI by RFC 3986's "URI" rule (scheme ":"
// hier-part [ "?" query ] [ "#" fragment ]), the rule Haskell's
// Network.URI.parseURI applies. RFC 7519 §2 requires a StringOrURI value
// that contains ":" to be one, and jose (src/Crypto/JWT.hs, stringOrUri)
// refuses iss, sub and aud values that are not; Go's url.Parse is far more
// lenient, hence this parser. Only ASCII is allowed, as in RFC 3986.
func isURI(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon < 1 || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < colon; i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	rest := s[colon+1:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		if !uriChars(rest[i+1:], "/?") {
			return false
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		if !uriChars(rest[i+1:], "/?") {
			return false
		}
		rest = rest[:i]
	}
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		authority := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			authority, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		if !validAuthority(authority) {
			return false
		}
	}
	// path-abempty, path-absolute, path-rootless or path-empty: segments of
	// pchar separated by "/".
	return uriChars(rest, "/")
}

// validAuthority checks [ userinfo "@" ] host [ ":" port ].
func validAuthority(a string) bool {
	if i := strings.IndexByte(a, '@'); i >= 0 {
		if !uriChars(a[:i], "") {
			return false
		}
		a = a[i+1:]
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 || !validIPLiteral(a[1:end]) {
			return false
		}
		host, port = "", a[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
		}
	} else if i := strings.IndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
	}
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	// reg-name (which covers IPv4address): unreserved, pct-encoded and
	// sub-delims, no ":" or "@".
	return uriChars(host, "") && !strings.ContainsAny(host, ":@")
}

// validIPLiteral checks what is inside "[...]": an IPv6 address without a
// zone, or IPvFuture ("v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )).
func validIPLiteral(s string) bool {
	if len(s) > 0 && (s[0] == 'v' || s[0] == 'V') {
		dot := strings.IndexByte(s, '.')
		if dot < 2 || dot == len(s)-1 {
			return false
		}
		for i := 1; i < dot; i++ {
			if !isHex(s[i]) {
				return false
			}
		}
		for i := dot + 1; i < len(s); i++ {
			if c := s[i]; !isUnreserved(c) && !isSubDelim(c) && c != ':' {
				return false
			}
		}
		return true
	}
	if strings.ContainsRune(s, '%') {
		return false
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// uriChars reports whether s holds only pchar (unreserved, pct-encoded,
// sub-delims, ":" and "@") and the bytes in extra.
func uriChars(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@':
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool { return strings.IndexByte("!$&'()*+,;=", c) >= 0 }
