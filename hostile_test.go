package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange writes request on a new connection to addr and returns every
// answer read before the proxy closed the connection or stopped answering
// (the deadline is only a failure bound).
func rawExchange(t *testing.T, addr, request string, answers int) []*http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range answers {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

// TestBinaryHostileRequests runs the attacks against the built
// binary with a verified user's token: none of the admin paths, the dotted
// path, CONNECT or TRACE reaches Hasura (each is answered as Hasura answers
// a path it has no route for); the admin secret still reaches them all; a
// request framed with both Content-Length and Transfer-Encoding closes its
// connection.
func TestBinaryHostileRequests(t *testing.T) {
	h := newFakeHasura(t)
	hsKey := randomHex(t, 32)
	const admin = "binary-admin-secret-0123456789"
	p := startBinary(t, testConfig{UpstreamURL: h.URL, AdminSecret: admin, HSKey: hsKey})
	tok := signHS(t, hsKey, claimsFor(hsIssuer))
	attacks := []struct{ method, target string }{
		{"POST", "/v1/metadata"},
		{"POST", "/v2/query"},
		{"POST", "/v1alpha1/pg_dump"},
		{"GET", "/v1alpha1/config"},
		{"POST", "/v1/graphql/%2e%2e/%2e%2e/v1/metadata"},
		{"POST", "//v1/metadata"},
		{"POST", "/v1/graphql/../metadata"},
		{"CONNECT", "/v1/graphql"},
		{"TRACE", "/v1/graphql"},
	}
	for _, a := range attacks {
		t.Run(a.method+" "+a.target, func(t *testing.T) {
			before := h.Count()
			got := rawExchange(t, p.clientAddr, a.method+" "+a.target+" HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer "+tok+
				"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 1)
			if len(got) != 1 {
				t.Fatalf("got %d answers; want 1", len(got))
			}
			body, _ := io.ReadAll(got[0].Body)
			var v map[string]string
			_ = json.Unmarshal(body, &v)
			if got[0].StatusCode != http.StatusNotFound || v["code"] != "not-found" || v["error"] != "resource does not exist" || v["path"] != "$" {
				t.Errorf("answer %d %s; want 404 {\"path\":\"$\",\"error\":\"resource does not exist\",\"code\":\"not-found\"}", got[0].StatusCode, body)
			}
			if n := h.Count() - before; n != 0 {
				t.Errorf("reached Hasura %d times; want 0", n)
			}

			before = h.Count()
			rawExchange(t, p.clientAddr, a.method+" "+a.target+" HTTP/1.1\r\nHost: hasura\r\nX-Hasura-Admin-Secret: "+admin+
				"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 1)
			if n := h.Count() - before; n != 1 {
				t.Errorf("with the admin secret: reached Hasura %d times; want 1 (admin keeps full access)", n)
			}
		})
	}
	t.Run("Content-Length and Transfer-Encoding", func(t *testing.T) {
		before := h.Count()
		got := rawExchange(t, p.clientAddr, "POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer "+tok+
			"\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"+
			"POST /v1/graphql HTTP/1.1\r\nHost: hasura\r\nAuthorization: Bearer "+tok+"\r\nContent-Length: 2\r\n\r\n{}", 2)
		if len(got) != 1 {
			t.Errorf("got %d answers; want 1 and the connection closed", len(got))
		}
		if len(got) > 0 && !got[0].Close {
			t.Errorf("the answer did not announce Connection: close")
		}
		if n := h.Count() - before; n != 1 {
			t.Errorf("reached Hasura %d times; want 1 (the pipelined request must not be read)", n)
		}
	})
}
