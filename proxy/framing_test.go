package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestFraming sends each framing as raw bytes followed by a pipelined
// second request, and checks what net/http and the proxy make of it: the
// status, whether the second request was answered on the same connection,
// and what reached Hasura.
func TestFraming(t *testing.T) {
	f := newFixture(t)
	tok := f.token(goodClaims())
	addr := strings.TrimPrefix(f.px.URL, "http://")
	auth := "Authorization: Bearer " + tok + "\r\n"
	second := "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name      string
		request   string
		status    int
		keepAlive bool   // the pipelined request is answered
		reached   int    // requests that reached Hasura, the pipelined one included; -1: not checked
		header    string // a header Hasura must have received, "name: value"
	}{
		{name: "content-length (control)", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth + "Content-Length: 2\r\n\r\n{}",
			status: 200, keepAlive: true, reached: 2},
		{name: "content-length and transfer-encoding", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			status: 200, keepAlive: false, reached: 1},
		{name: "transfer-encoding chunked", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			status: 200, keepAlive: false, reached: 1},
		{name: "chunked, refused before auth", request: "POST /v1/metadata HTTP/1.1\r\nHost: h\r\n" +
			"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			status: 404, keepAlive: false, reached: 0},
		{name: "transfer-encoding gzip, chunked", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			status: 501, keepAlive: false, reached: 0},
		{name: "transfer-encoding twice", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
			status: 501, keepAlive: false, reached: 0},
		{name: "transfer-encoding identity", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}",
			status: 501, keepAlive: false, reached: 0},
		{name: "differing content-lengths", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
			status: 400, keepAlive: false, reached: 0},
		{name: "space before colon", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Content-Length : 2\r\n\r\n{}",
			status: 400, keepAlive: false, reached: 0},
		{name: "obs-fold is unfolded", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"X-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{}",
			status: 200, keepAlive: true, reached: 2, header: "X-Folded: a b"},
		{name: "obs-fold cannot smuggle an x-hasura header", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"X-Folded: a\r\n X-Hasura-Role: admin\r\nContent-Length: 2\r\n\r\n{}",
			status: 200, keepAlive: true, reached: 2, header: "X-Folded: a X-Hasura-Role: admin"},
		{name: "bare LF line endings", request: "POST /v1/graphql HTTP/1.1\nHost: h\n" + strings.TrimSuffix(auth, "\r\n") +
			"\nContent-Length: 2\n\n{}",
			status: 200, keepAlive: true, reached: 2},
		// The body fails while it streams: whether Hasura saw the request
		// start depends on timing, that nothing follows does not.
		{name: "bare LF in a chunk", request: "POST /v1/graphql HTTP/1.1\r\nHost: h\r\n" + auth +
			"Transfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n",
			status: 400, keepAlive: false, reached: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.up.count()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tt.request+second); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("first answer: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d; want %d", resp.StatusCode, tt.status)
			}
			resp2, err := http.ReadResponse(br, nil)
			answered := err == nil
			if answered {
				_, _ = io.Copy(io.Discard, resp2.Body)
				_ = resp2.Body.Close()
			}
			if answered != tt.keepAlive {
				t.Errorf("pipelined request answered = %v (%v); want %v", answered, err, tt.keepAlive)
			}
			if !tt.keepAlive && answered {
				t.Errorf("the connection stayed open after a request with ambiguous framing")
			}
			if got := f.up.count() - before; tt.reached >= 0 && got != tt.reached {
				t.Errorf("%d requests reached Hasura; want %d", got, tt.reached)
			}
			if tt.header != "" && tt.reached > 0 {
				name, value, _ := strings.Cut(tt.header, ": ")
				r := f.up.Requests()[before]
				if got := r.Header.Values(name); len(got) != 1 || got[0] != value {
					t.Errorf("Hasura received %s = %q; want [%q]", name, got, value)
				}
				if got := r.Header.Values("X-Hasura-Role"); len(got) != 1 || got[0] != "user" {
					t.Errorf("Hasura received X-Hasura-Role = %q; want [user]", got)
				}
			}
		})
	}
}
