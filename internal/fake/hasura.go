package fake

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Request is one HTTP request the stand-in Hasura received.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// Mode is how the stand-in answers HTTP requests; see [Hasura.SetMode].
type Mode int

// Modes. Every request is recorded first, whatever the mode.
const (
	Answer Mode = iota // answer (the default)
	Fail               // HTTP 500 with Hasura's error body
	Hang               // no answer until the client gives up or Close
	Hold               // wait for Release (announced on Arrived), then answer
	Drop               // close the connection without an answer
)

// maxRecords is how many requests and sockets a Hasura keeps by default
// (the latest); Count stays exact.
const maxRecords = 4096

// HasuraOption configures a [Hasura].
type HasuraOption func(*Hasura)

// WithAdminSecret makes the stand-in behave like Hasura with
// HASURA_GRAPHQL_ADMIN_SECRET set: HTTP requests and WebSocket
// connection_init without exactly this secret are refused with Hasura's
// access-denied error, and /v1/graphql answers only POST (405 otherwise).
func WithAdminSecret(s string) HasuraOption { return func(h *Hasura) { h.secret = s } }

// WithBody answers every HTTP request with body instead of the session.
func WithBody(body string) HasuraOption { return func(h *Hasura) { h.body = []byte(body) } }

// WithHeader sets a response header on every HTTP answer (it replaces the
// echoed X-Request-Id too).
func WithHeader(key, value string) HasuraOption {
	return func(h *Hasura) { h.header.Set(key, value) }
}

// WithHasuraCORS answers with Hasura's default CORS policy ("*").
func WithHasuraCORS() HasuraOption { return func(h *Hasura) { h.cors = true } }

// RecordHealthz makes /healthz an ordinary path: recorded and answered like
// any other. By default GET /healthz answers "OK" (see SetHealthy) without
// being recorded, so readiness probes do not move the counts.
func RecordHealthz() HasuraOption { return func(h *Hasura) { h.recordHealth = true } }

// WithEvents sets how many events each subscription gets before it
// completes (default 1) and the pause between them (default none). With 0
// a subscription gets no event and stays open until the client stops it
// (idle subscriptions, as the benchmark holds).
func WithEvents(n int, interval time.Duration) HasuraOption {
	return func(h *Hasura) { h.events, h.interval = n, interval }
}

// WithLiveOperation names an operation whose subscriptions stream events
// (every interval) until the client stops them.
func WithLiveOperation(name string) HasuraOption { return func(h *Hasura) { h.live = name } }

// WithRecordLimit keeps the latest n requests and sockets instead of 4096;
// 0 keeps none (a long-running demo), and bodies are then discarded
// unread beyond 1 MiB. Count stays exact.
func WithRecordLimit(n int) HasuraOption { return func(h *Hasura) { h.limit = max(n, 0) } }

// WithResponder lets f answer HTTP requests after they are recorded; when
// it returns false the stand-in answers as usual.
func WithResponder(f func(http.ResponseWriter, *http.Request) bool) HasuraOption {
	return func(h *Hasura) { h.responder = f }
}

// Hasura stands in for Hasura GraphQL Engine. Over HTTP it records every
// request ([Hasura.Requests]) and answers {"data":{"session":{...}}} with
// the x-hasura-* headers it received (the admin secret shown as true), or
// the body given by [WithBody]; its X-Request-Id echoes the request's, as
// Hasura's does. On /v1/graphql it speaks both of Hasura's WebSocket
// protocols (see [Hasura.Sockets]). Create it with [StartHasura] in tests
// or [NewHasura]. Its methods are safe for concurrent use.
type Hasura struct {
	// URL is the stand-in's base URL. StartHasura sets it; whoever serves
	// Handler sets it before the first request.
	URL string

	secret       string
	body         []byte
	header       http.Header
	cors         bool
	recordHealth bool
	events       int
	interval     time.Duration
	live         string
	limit        int
	responder    func(http.ResponseWriter, *http.Request) bool
	srv          *server
	done         chan struct{}
	closeOnce    sync.Once

	healthy atomic.Bool
	probes  atomic.Int64
	arrived chan struct{}
	subs    atomic.Int64

	mu      sync.Mutex
	reqs    []Request
	count   int
	mode    Mode
	gate    chan struct{} // closed by Release
	sockets []*Socket
	conns   map[*websocket.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// NewHasura builds a stand-in without serving it.
func NewHasura(opts ...HasuraOption) *Hasura {
	h := &Hasura{
		header:  http.Header{},
		events:  1,
		limit:   maxRecords,
		done:    make(chan struct{}),
		arrived: make(chan struct{}, 64),
		gate:    make(chan struct{}),
		conns:   map[*websocket.Conn]struct{}{},
	}
	h.healthy.Store(true)
	for _, o := range opts {
		o(h)
	}
	return h
}

// StartHasura serves a new stand-in on an ephemeral 127.0.0.1 port until
// the test ends.
func StartHasura(t TB, opts ...HasuraOption) *Hasura {
	t.Helper()
	h := NewHasura(opts...)
	var err error
	h.srv, h.URL, err = listen(h.Handler())
	if err != nil {
		t.Fatalf("fake hasura: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// Close ends held and hanging requests, closes every WebSocket and waits
// for their handlers, and, when StartHasura served it, stops the server.
func (h *Hasura) Close() {
	h.closeOnce.Do(func() {
		close(h.done)
		h.mu.Lock()
		h.closed = true
		for c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
		if h.srv != nil {
			_ = h.srv.close()
		}
	})
}

// WSURL is the WebSocket address of /v1/graphql.
func (h *Hasura) WSURL() string { return "ws" + strings.TrimPrefix(h.URL, "http") + "/v1/graphql" }

// Handler serves the stand-in.
func (h *Hasura) Handler() http.Handler {
	if h.cors {
		return hasuraCORS(http.HandlerFunc(h.serve))
	}
	return http.HandlerFunc(h.serve)
}

// SetHealthy switches GET /healthz between 200 "OK" and 500 "ERROR".
func (h *Hasura) SetHealthy(ok bool) { h.healthy.Store(ok) }

// HealthChecks is the number of GET /healthz answered so far (none with
// RecordHealthz: they count as requests then).
func (h *Hasura) HealthChecks() int64 { return h.probes.Load() }

// SetMode switches how HTTP requests are answered from now on.
func (h *Hasura) SetMode(m Mode) {
	h.mu.Lock()
	h.mode = m
	h.mu.Unlock()
}

// Arrived receives once per request that starts being held (mode Hold or
// ?slow=1), in arrival order.
func (h *Hasura) Arrived() <-chan struct{} { return h.arrived }

// Release answers every request held so far; later ones wait for the next
// Release.
func (h *Hasura) Release() {
	h.mu.Lock()
	close(h.gate)
	h.gate = make(chan struct{})
	h.mu.Unlock()
}

// Requests returns the requests received so far (the latest 4096, or as
// WithRecordLimit says), oldest first.
func (h *Hasura) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// Last returns the latest request received, if any.
func (h *Hasura) Last() (Request, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) == 0 {
		return Request{}, false
	}
	return h.reqs[len(h.reqs)-1], true
}

// Count is the number of requests received so far.
func (h *Hasura) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func (h *Hasura) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && !h.recordHealth && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		h.probes.Add(1)
		if h.healthy.Load() {
			_, _ = io.WriteString(w, "OK")
			return
		}
		http.Error(w, "ERROR", http.StatusInternalServerError)
		return
	}
	if r.URL.Path == "/v1/graphql" && websocket.IsWebSocketUpgrade(r) {
		h.serveWebSocket(w, r)
		return
	}
	var body []byte
	if h.limit > 0 {
		body, _ = io.ReadAll(io.LimitReader(r.Body, 64<<20))
	} else {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	}
	h.mu.Lock()
	h.count++
	if h.limit > 0 {
		h.reqs = append(h.reqs, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		if len(h.reqs) > h.limit {
			h.reqs = append(h.reqs[:0:0], h.reqs[len(h.reqs)-h.limit:]...)
		}
	}
	mode, gate := h.mode, h.gate
	h.mu.Unlock()
	if r.URL.RawQuery != "" {
		switch q := r.URL.Query(); {
		case q.Get("hang") != "":
			mode = Hang
		case q.Get("slow") != "":
			mode = Hold
		}
	}
	switch mode {
	case Fail:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"path": "$", "error": "internal error", "code": "unexpected"})
		return
	case Hang:
		select {
		case <-r.Context().Done():
		case <-h.done:
		}
		return
	case Hold:
		select {
		case h.arrived <- struct{}{}:
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		}
	case Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if h.responder != nil && h.responder(w, r) {
		return
	}
	if id := r.Header.Get("X-Request-Id"); id != "" {
		w.Header().Set("X-Request-Id", id)
	}
	for k, vs := range h.header {
		w.Header()[k] = vs
	}
	if r.URL.Path == "/v1/graphql" && h.secret != "" && r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST a GraphQL query", http.StatusMethodNotAllowed)
		return
	}
	if msg := h.adminSecretError(r.Header); msg != "" {
		writeJSON(w, http.StatusOK, map[string]any{"errors": []any{map[string]any{
			"message": msg, "extensions": map[string]string{"path": "$", "code": "access-denied"},
		}}})
		return
	}
	if h.body != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(h.body)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"session": session(r.Header)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// session is what Hasura would see: the x-hasura-* values by lower-case
// name (the first of each), with the admin secret replaced by true.
func session(hdr http.Header) map[string]any {
	out := map[string]any{}
	for k, vs := range hdr {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-hasura-") || len(vs) == 0 {
			continue
		}
		if lk == "x-hasura-admin-secret" {
			out[lk] = true
			continue
		}
		out[lk] = vs[0]
	}
	return out
}

// adminSecretError is Hasura's refusal for a missing or wrong admin
// secret, or "" when hdr carries the right one or no secret is set.
func (h *Hasura) adminSecretError(hdr http.Header) string {
	if h.secret == "" {
		return ""
	}
	vs, ok := hdr["X-Hasura-Admin-Secret"]
	switch {
	case !ok:
		return "x-hasura-admin-secret/x-hasura-access-key required, but not found"
	case len(vs) != 1 || !equalSecret(h.secret, vs[0]):
		return "invalid x-hasura-admin-secret/x-hasura-access-key"
	}
	return ""
}

func equalSecret(want, got string) bool {
	a, b := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
