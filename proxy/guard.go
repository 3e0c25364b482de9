package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// inMemoryBodyBytes is the largest request body (of known length) the
// guard reads whole before handing the request to the transport.
// net/http's Transport writes an in-memory body (bytes.Reader) together
// with the request headers; for any other body, and ReverseProxy always
// wraps the body, it flushes the headers first: a second write syscall and
// TCP segment on every request. GraphQL requests are nearly always far
// smaller.
const inMemoryBodyBytes = 64 << 10

// readBody reads the n-byte body so the transport sees an in-memory reader.
// A read failure is not answered here: the bytes read and then the same
// error are replayed to the transport, which fails exactly as it would have
// while streaming (bodyReader has already recorded the failure).
func readBody(body io.Reader, n int64) io.ReadCloser {
	buf := make([]byte, n)
	var (
		m   int
		err error
	)
	for empty := 0; m < len(buf) && err == nil; {
		var k int
		k, err = body.Read(buf[m:])
		m += k
		if k > 0 {
			empty = 0
		} else if empty++; empty == 100 {
			err = io.ErrNoProgress // as bufio does with a reader that never yields
		}
	}
	if m == len(buf) && (err == nil || err == io.EOF) {
		return io.NopCloser(bytes.NewReader(buf))
	}
	// The loop ended on an error other than a clean EOF after n bytes.
	return io.NopCloser(io.MultiReader(bytes.NewReader(buf[:m]), failedRead{err}))
}

// failedRead returns err from every Read.
type failedRead struct{ err error }

func (f failedRead) Read([]byte) (int, error) { return 0, f.err }

// errGuard is returned by the transport guard; it never reaches a client.
var errGuard = errors.New("refused to send the admin secret without the role the proxy chose")

// guard is the last line of defence: whatever happened before, a request
// carrying the admin secret leaves only with exactly one non-empty
// X-Hasura-Role equal to the role of the session the proxy verified.
type guard struct{ next http.RoundTripper }

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkOutgoing(req); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if req.Body != nil && 0 < req.ContentLength && req.ContentLength <= inMemoryBodyBytes {
		// A shallow copy: RoundTrip must not modify the caller's request.
		r2 := *req
		r2.Body = readBody(req.Body, req.ContentLength)
		req = &r2
	}
	return g.next.RoundTrip(req)
}

func checkOutgoing(req *http.Request) error {
	var secret, role []string
	for k, vs := range req.Header {
		if !isHasuraHeader(k) {
			continue
		}
		switch {
		case headerNameIs(k, "x-hasura-admin-secret"):
			if k != "X-Hasura-Admin-Secret" {
				return fmt.Errorf("%w: stray admin secret header", errGuard)
			}
			secret = vs
		case headerNameIs(k, "x-hasura-role"):
			if k != "X-Hasura-Role" {
				return fmt.Errorf("%w: stray role header", errGuard)
			}
			role = vs
		case headerNameIs(k, "x-hasura-access-key"):
			return fmt.Errorf("%w: access key header", errGuard)
		}
	}
	if secret == nil {
		return nil
	}
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	switch {
	case x == nil || x.session == nil:
		return fmt.Errorf("%w: no verified session", errGuard)
	case len(secret) != 1 || len(role) != 1 || role[0] == "":
		return fmt.Errorf("%w: role header missing or repeated", errGuard)
	case role[0] != x.session.Role:
		return fmt.Errorf("%w: role header differs from the session", errGuard)
	case !validValue(role[0]) || strings.Trim(role[0], " \t") != role[0]:
		// HTTP trims surrounding blanks: " admin" would arrive as "admin".
		return fmt.Errorf("%w: role would not reach Hasura unchanged", errGuard)
	}
	return nil
}

// headerNameIs reports whether strings.ToLower(strings.ReplaceAll(name,
// "_", "-")) == want, for a lower-case ASCII want, without allocating on
// the ASCII names every request carries.
func headerNameIs(name, want string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			// Unicode case folding (e.g. U+212A KELVIN SIGN to "k"):
			// keep the exact semantics.
			return strings.ToLower(strings.ReplaceAll(name, "_", "-")) == want
		}
	}
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if foldHeaderByte(name[i]) != want[i] {
			return false
		}
	}
	return true
}
