package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// TestSetXForwardedMatchesLibrary: the one-allocation version sets exactly
// what httputil's SetXForwarded sets on an outbound request as Rewrite sees
// it (X-Forwarded-* already removed).
func TestSetXForwardedMatchesLibrary(t *testing.T) {
	tests := []struct {
		name       string
		remoteAddr string
		host       string
		tls        bool
	}{
		{"ipv4", "192.0.2.7:51000", "api.example.com", false},
		{"ipv6 over tls", "[2001:db8::1]:443", "api.example.com:8443", true},
		{"unparsable remote address", "not-an-address", "h", false},
		{"empty host", "127.0.0.1:1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := httptest.NewRequest(http.MethodPost, "/v1/graphql", nil)
			in.RemoteAddr, in.Host = tt.remoteAddr, tt.host
			if tt.tls {
				in.TLS = &tls.ConnectionState{}
			}
			mk := func() *httputil.ProxyRequest {
				return &httputil.ProxyRequest{In: in, Out: &http.Request{Header: http.Header{"Accept": {"*/*"}}}}
			}
			want, got := mk(), mk()
			want.SetXForwarded()
			setXForwarded(got)
			if !reflect.DeepEqual(got.Out.Header, want.Out.Header) {
				t.Errorf("got %v; want %v", got.Out.Header, want.Out.Header)
			}
		})
	}
}

// TestHeaderNameIs: the allocation-free comparison agrees with
// strings.ToLower(strings.ReplaceAll(name, "_", "-")) == want.
func TestHeaderNameIs(t *testing.T) {
	names := []string{
		"X-Hasura-Admin-Secret", "x-hasura-admin-secret", "X_HASURA_ADMIN_SECRET", "X-Hasura-Admin_Secret",
		"X-Hasura-Admin-Secret2", "X-Hasura-Admin-Secre", "X-Hasura-Role", "x_hasura_role", "X-Hasura-Rol",
		"X-Hasura-Access-Key", "X-Hasura-Access-\u212Aey", "X-Hasura-Rol\u212A", "X-Hasura-Röle", "",
	}
	for _, want := range []string{"x-hasura-admin-secret", "x-hasura-role", "x-hasura-access-key"} {
		for _, name := range names {
			exp := strings.ToLower(strings.ReplaceAll(name, "_", "-")) == want
			if got := headerNameIs(name, want); got != exp {
				t.Errorf("headerNameIs(%q, %q) = %v; want %v", name, want, got, exp)
			}
		}
	}
}

// TestSetSessionHeadersShareNoValues: the values share one backing array,
// yet adding to one header never changes another.
func TestSetSessionHeadersShareNoValues(t *testing.T) {
	s := &auth.Session{Role: "user", Vars: []auth.Var{{Name: "x-hasura-org-id", Value: "7"}, {Name: "x-hasura-user-id", Value: "42"}}}
	h := http.Header{}
	SetSessionHeaders(h, []string{"secret"}, s)
	h["x-hasura-org-id"] = append(h["x-hasura-org-id"], "appended")
	want := http.Header{
		"x-hasura-org-id":       {"7", "appended"},
		"x-hasura-user-id":      {"42"},
		"X-Hasura-Admin-Secret": {"secret"},
		"X-Hasura-Role":         {"user"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v; want %v", h, want)
	}
}

// TestBufferPoolNoAllocs: returning a buffer to the pool allocates nothing,
// and Get hands out full-size buffers.
func TestBufferPoolNoAllocs(t *testing.T) {
	p := newBufferPool()
	p.Put(p.Get()) // warm
	allocs := testing.AllocsPerRun(100, func() {
		b := p.Get()
		if len(b) != copyBufferSize {
			t.Fatalf("len %d", len(b))
		}
		p.Put(b)
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("Get+Put allocates %v times", allocs)
	}
	p.Put(make([]byte, 10)) // too small: dropped, never handed out
	if b := p.Get(); len(b) != copyBufferSize {
		t.Errorf("len %d after a short Put", len(b))
	}
}

// handlerAllocBudget is what the whole handler may allocate for a cached
// token with the in-memory upstream (ReverseProxy's own request clone,
// context and header work included; 4 of them buy the in-memory body that
// saves a write syscall per request). Measured; raise only with a reason.
const handlerAllocBudget = 33

// TestHandlerAllocs keeps the handler's allocations from growing unnoticed.
func TestHandlerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	h, mint := benchHandler(t, 100, "http://hasura.invalid:8080", benchUpstream{})
	w := &benchWriter{h: make(http.Header)}
	r := benchRequest(mint())
	body := strings.NewReader(benchQuery)
	serve := func() {
		body.Reset(benchQuery)
		r.Body = readCloser{body}
		w.reset()
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			t.Fatalf("status %d", w.status)
		}
	}
	serve()
	// The stand-in upstream allocates its response; count it out.
	upReq := &http.Request{URL: &url.URL{}}
	upstream := testing.AllocsPerRun(100, func() {
		resp, _ := benchUpstream{}.RoundTrip(upReq)
		_ = resp
	})
	got := testing.AllocsPerRun(200, serve) - upstream
	if got > handlerAllocBudget {
		t.Fatalf("handler allocates %v times per request; budget %d", got, handlerAllocBudget)
	}
	t.Logf("handler allocations per request: %v (stand-in upstream: %v)", got, upstream)
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// TestReadBody: a body read whole replays exactly what the client sent, and
// a failed read replays the bytes received and then the same error, so the
// transport fails as it would have while streaming.
func TestReadBody(t *testing.T) {
	errBroken := errors.New("connection reset")
	tests := []struct {
		name    string
		body    io.Reader
		n       int64
		want    string
		wantErr error
	}{
		{"whole", strings.NewReader("0123456789"), 10, "0123456789", nil},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader("0123456789")), 10, "0123456789", nil},
		{"data with EOF", iotest.DataErrReader(strings.NewReader("0123456789")), 10, "0123456789", nil},
		{"short", strings.NewReader("01234"), 10, "01234", io.EOF},
		{"broken", io.MultiReader(strings.NewReader("0123"), iotest.ErrReader(errBroken)), 10, "0123", errBroken},
		{"no progress", zeroReader{}, 10, "", io.ErrNoProgress},
		{"timeout", iotest.TimeoutReader(strings.NewReader("0123456789")), 20, "0123456789", iotest.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := readBody(tt.body, tt.n)
			got, err := io.ReadAll(rc)
			if string(got) != tt.want {
				t.Errorf("body %q; want %q", got, tt.want)
			}
			if tt.wantErr == io.EOF {
				// A clean early EOF reads as a short body, as it did.
				if err != nil {
					t.Errorf("error %v; want a short body", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v; want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				if _, ok := rc.(io.WriterTo); !ok {
					t.Errorf("body %T is not an in-memory reader", rc)
				}
			}
		})
	}
}

// TestGuardSendsBodyInMemory: the transport gets small bodies as an
// in-memory reader (so it writes headers and body at once), large ones as
// the stream they were, and both intact.
func TestGuardSendsBodyInMemory(t *testing.T) {
	for _, size := range []int{len(benchQuery), inMemoryBodyBytes, inMemoryBodyBytes + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			sent := strings.Repeat("q", size)
			var (
				got      string
				inMemory bool
			)
			tr := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				_, inMemory = r.Body.(io.WriterTo)
				b, err := io.ReadAll(r.Body)
				if err != nil {
					return nil, err
				}
				got = string(b)
				return benchUpstream{}.RoundTrip(&http.Request{})
			})
			h, mint := benchHandler(t, 100, "http://hasura.invalid:8080", tr)
			h.opts.MaxBodyBytes = 1 << 20
			r := benchRequest(mint())
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(sent)), int64(size)
			w := &benchWriter{h: make(http.Header)}
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK || got != sent {
				t.Fatalf("status %d, upstream got %d bytes; want %d", w.status, len(got), size)
			}
			if want := size <= inMemoryBodyBytes; inMemory != want {
				t.Errorf("in-memory body %v; want %v", inMemory, want)
			}
		})
	}
}

// zeroReader breaks the io.Reader contract: (0, nil) forever.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }
