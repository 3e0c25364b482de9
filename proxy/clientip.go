package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies is the parsed `server.trusted_proxies` list: the peers whose
// X-Forwarded-For may name the client. The zero value trusts nobody, so the
// client is always the TCP peer. It is immutable and safe for concurrent use.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies parses CIDRs ("10.0.0.0/8") and single addresses
// ("10.1.2.3", taken as /32 or /128). field names the config key in errors.
func ParseTrustedProxies(field string, list []string) (TrustedProxies, error) {
	var t TrustedProxies
	for i, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			t.prefixes = append(t.prefixes, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return TrustedProxies{}, fmt.Errorf("%s[%d]: %q is neither a CIDR (10.0.0.0/8) nor an IP address", field, i, s)
		}
		a = a.Unmap()
		t.prefixes = append(t.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return t, nil
}

// Contains reports whether a is a trusted proxy.
func (t TrustedProxies) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address a request came from, for per-client limits and
// logs: the TCP peer, unless the peer is a trusted proxy, in which case the
// right-most X-Forwarded-For entry that is not itself a trusted proxy (the
// entries left of it were written by the client and prove nothing). A
// malformed entry stops the walk at the last address known to be good. The
// zero Addr means the peer address could not be parsed (never the case for
// a net/http server request).
func (t TrustedProxies) ClientIP(r *http.Request) netip.Addr {
	peer := remoteAddr(r.RemoteAddr)
	if !peer.IsValid() || len(t.prefixes) == 0 || !t.Contains(peer) {
		return peer
	}
	client := peer
	vals := r.Header.Values("X-Forwarded-For")
	for i := len(vals) - 1; i >= 0; i-- {
		entries := strings.Split(vals[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(entries[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !t.Contains(client) {
				return client
			}
		}
	}
	return client
}

// remoteAddr parses http.Request.RemoteAddr ("ip:port").
func remoteAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
