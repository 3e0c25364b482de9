package proxy

import (
	"net/http"
	"net/netip"
)

// clientIP is the address the per-client limits count r under: the peer
// of the TCP connection. A RemoteAddr that does not parse (never the case
// for net/http's server) gives the zero Addr, one shared bucket.
//
// Every per-client limit asks this one function, so trusting a proxy in
// front (X-Forwarded-For from server.trusted_proxies) is a change here only.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
