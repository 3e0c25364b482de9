package proxy

import "net/http"

// closeIfChunked closes the connection after a request that carried
// Transfer-Encoding.
//
// RFC 9112 section 6.1: a server that receives both Content-Length and
// Transfer-Encoding MUST close the connection after responding, since the
// two framings disagree about where the next request starts (request
// smuggling). net/http reads such a request by its chunked framing but
// deletes Content-Length before the handler runs, so the handler cannot tell
// which chunked requests also carried one; closing after every chunked
// request covers them. Browsers and GraphQL clients send bodies with
// Content-Length, so the cost is a new connection for the rare client that
// streams a chunked body.
//
// Other framings net/http decides before any handler runs, and the proxy
// cannot make stricter (framing_test.go pins each, so a Go release that
// changes one is noticed): a Transfer-Encoding other than a single chunked
// is answered 501 and the connection closed; differing Content-Length
// values are answered 400 and closed; a space before a header's colon is
// answered 400; an obsolete line folding (obs-fold) is accepted and replaced
// by one space, as RFC 9112 section 5.2 allows, so Hasura receives one
// unfolded line; a line ending in a bare LF is accepted, as RFC 9112
// section 2.2 allows; a chunk line ending in a bare LF fails the body
// (400) and closes the connection.
func closeIfChunked(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}
