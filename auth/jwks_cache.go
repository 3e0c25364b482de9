package auth

import (
	"net/http"
	"strings"
	"time"
)

// refreshAfter computes how long fresh keys may be kept before the next
// scheduled refresh, deciding from the response headers the way Hasura's
// determineJwkExpiryLifetime does (server/src-lib/Hasura/Server/Auth/JWT.hs),
// with every answer clamped to [MinRefreshInterval, MaxRefreshInterval]:
//
//   - Cache-Control with must-revalidate: its max-age (else s-maxage), or
//     at once when it has none;
//   - else Cache-Control with no-cache or no-store: at once;
//   - else Cache-Control with max-age (else s-maxage): that many seconds;
//   - else (no Cache-Control, or one without any of those) Expires: the
//     time left until that date, measured on now;
//   - else, or when the max-age, s-maxage or Expires value that decides
//     is malformed: RefreshInterval.
//
// "At once" and an Expires in the past mean MinRefreshInterval: Hasura
// refetches about every second then, the proxy does not. Hasura keeps the
// previous expiry where RefreshInterval is used (and so never refreshes keys
// that came without cache headers).
func refreshAfter(h http.Header, c JWKSConfig, now time.Time) time.Duration {
	clamp := func(d time.Duration) time.Duration {
		return min(max(d, c.MinRefreshInterval), c.MaxRefreshInterval)
	}
	if lines := h.Values("Cache-Control"); len(lines) > 0 {
		cc := parseCacheControl(lines)
		age, broken := cc.maxAge, cc.maxAgeBroken
		if !cc.hasMaxAge {
			age, broken = cc.sMaxAge, cc.sMaxAgeBroken
		}
		switch {
		case broken:
			// Hasura: a max-age it cannot read makes the whole answer
			// "no information"; Expires is not consulted.
			return c.RefreshInterval
		case cc.mustRevalidate:
			if age < 0 {
				return c.MinRefreshInterval
			}
			return clamp(time.Duration(age) * time.Second)
		case cc.noCache:
			return c.MinRefreshInterval
		case age >= 0:
			return clamp(time.Duration(age) * time.Second)
		}
	}
	if v := h.Get("Expires"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return c.RefreshInterval
		}
		left := t.Sub(now)
		if left <= 0 {
			return c.MinRefreshInterval
		}
		return clamp(left)
	}
	return c.RefreshInterval
}

// cacheControl is what refreshAfter reads of Cache-Control. Ages are -1
// when absent; a Broken flag marks a value that is not a number.
type cacheControl struct {
	mustRevalidate, noCache     bool
	hasMaxAge                   bool
	maxAge, sMaxAge             int64
	maxAgeBroken, sMaxAgeBroken bool
}

// parseCacheControl reads the directives refreshAfter uses from every
// Cache-Control line. Names are case-insensitive (RFC 9111 §5.2), values
// may be quoted, the first max-age (and the first s-maxage) counts, and a
// directive without a value is ignored. A value is read as Hasura's
// Data/Parser/CacheControl.hs reads it: leading digits, anything after them
// ignored; a value that does not start with a digit is broken.
func parseCacheControl(lines []string) cacheControl {
	cc := cacheControl{maxAge: -1, sMaxAge: -1}
	hasSMaxAge := false
	for _, line := range lines {
		for _, part := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch name {
			case "must-revalidate":
				cc.mustRevalidate = true
			case "no-cache", "no-store":
				cc.noCache = true
			case "max-age", "s-maxage":
				if value == "" {
					continue
				}
				if name == "max-age" && !cc.hasMaxAge {
					cc.hasMaxAge = true
					cc.maxAge, cc.maxAgeBroken = deltaSeconds(value)
				} else if name == "s-maxage" && !hasSMaxAge {
					hasSMaxAge = true
					cc.sMaxAge, cc.sMaxAgeBroken = deltaSeconds(value)
				}
			}
		}
	}
	return cc
}

// deltaSeconds reads the leading digits of v. Values beyond 2^31 seconds
// are 2^31 (RFC 9111 §1.2.2), far above any clamp; no digits is broken.
func deltaSeconds(v string) (n int64, broken bool) {
	i := 0
	for i < len(v) && '0' <= v[i] && v[i] <= '9' {
		if n < 1<<31 {
			n = n*10 + int64(v[i]-'0')
		}
		i++
	}
	if i == 0 {
		return -1, true
	}
	return min(n, 1<<31), false
}
