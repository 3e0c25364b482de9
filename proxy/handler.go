package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// exchange is the per-request state shared by the handler, the rewrite hook,
// the guard and the error handler. It also records the response status.
type exchange struct {
	http.ResponseWriter
	status   int
	rid      string
	endpoint string
	fam      family
	session  *auth.Session
	authErr  *auth.Error
	upErr    string
	// clientIP is set for requests that may present an admin secret, for
	// the admin-secret throttle (adminthrottle.go).
	clientIP netip.Addr
	// bodyFailed is set when reading the client's body failed:
	// bodyTimedOut, or bodyMalformed for anything else (a broken chunked
	// encoding, a connection cut mid-body).
	bodyFailed atomic.Int32
	// extra are access log fields of the request's handler (a WebSocket's
	// close code and reason).
	extra []zap.Field
}

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 {
		x.status = code
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return x.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// Flush forwards streaming flushes.
func (x *exchange) Flush() {
	if f, ok := x.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type exchangeKey struct{}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ep, fam := endpoint(r.URL.Path)
	x := &exchange{ResponseWriter: w, rid: requestID(r.Header.Get("X-Request-Id")), endpoint: ep, fam: fam}
	w.Header().Set("X-Request-Id", x.rid)
	closeIfChunked(w, r)
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	defer func() {
		d := time.Since(start)
		status := x.status
		if status == 0 {
			status = http.StatusOK
		}
		if status != http.StatusSwitchingProtocols {
			// An upgraded WebSocket lives for hours; it is counted by the
			// websocket_* metrics, not as a request.
			h.metrics.ObserveRequest(x.endpoint, status, d)
		}
		h.accessLog(r, x, status, d)
	}()
	// Browsers apply no CORS to WebSocket handshakes (the Origin check in
	// ws.go is what protects them), so upgrades get no CORS headers.
	if !isWebSocketUpgrade(r) && h.opts.CORS.apply(w.Header(), r) {
		preflight(x, r)
		return
	}

	if h.opts.WebhookPath != "" && r.URL.Path == h.opts.WebhookPath && r.URL.RawPath == "" {
		x.endpoint = metrics.EndpointWebhook
		h.serveWebhook(x, r)
		return
	}
	adminAttempt := presentsAdminSecret(r.Header)
	if adminAttempt || isWebSocketUpgrade(r) {
		x.clientIP = h.opts.TrustedProxies.ClientIP(r)
	}
	if isWebSocketUpgrade(r) {
		if h.serveWebSocket == nil {
			x.authErr = nil
			writeJSONError(x, http.StatusBadRequest, errorBody(familyOther, "not-supported", "websocket upgrades are not supported by this proxy"))
			return
		}
		h.serveWebSocket(x, r, x)
		return
	}
	// The body limit applies to every forwarded request, authenticated or
	// not.
	if r.ContentLength > h.opts.MaxBodyBytes {
		h.tooLarge(x)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &bodyReader{ReadCloser: http.MaxBytesReader(x, r.Body, h.opts.MaxBodyBytes), x: x}
	}
	allowed, why := h.allow.Allows(r)
	if !allowed && !adminAttempt && !adminPreflight(r) {
		// Before any token work: nothing outside the allow-list reaches
		// Hasura for a client without the admin secret.
		h.notAllowed(x, why)
		return
	}
	if unauthenticated(r) && (allowed || r.Method == http.MethodOptions) {
		// Forwarded stripped of every x-hasura-* header and without the
		// admin secret: Hasura answers these without authentication.
		h.rp.ServeHTTP(x, r)
		return
	}
	s, err := h.opts.Auth.Authenticate(r.Context(), r.Header)
	if err != nil {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			ae = unexpectedAuthError(err)
		}
		x.authErr = ae
		writeAuthError(x, fam, ae, h.httpMode)
		return
	}
	if !allowed && s.Result != auth.ResultAdmin {
		h.notAllowed(x, why)
		return
	}
	x.session = s
	if h.opts.Limits != nil {
		admitted, release := h.admitLimits(x, r)
		if admitted == nil {
			return
		}
		defer release()
		r = admitted
	}
	h.rp.ServeHTTP(x, r)
}

// bodyReader notes that reading the client's body failed (a client too slow
// for server.read_timeout), so the error handler can tell that apart from
// Hasura failing. The transport reads the body on its own goroutine, hence
// the atomic.
// Values of exchange.bodyFailed.
const (
	bodyTimedOut  int32 = 1
	bodyMalformed int32 = 2
)

type bodyReader struct {
	io.ReadCloser
	x *exchange
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.x.bodyFailed.Store(bodyTimedOut)
		} else {
			b.x.bodyFailed.Store(bodyMalformed)
		}
	}
	return n, err
}

func (h *Handler) tooLarge(x *exchange) {
	x.upErr = "request body too large"
	writeJSONError(x, http.StatusRequestEntityTooLarge,
		errorBody(x.fam, "payload-too-large", fmt.Sprintf("request body is larger than %d bytes (server.max_body_bytes)", h.opts.MaxBodyBytes)))
}

// unauthenticated reports the requests Hasura answers without
// authentication. The path must be exact and unescaped, so encoded or
// dotted variants are authenticated like any other path.
func unauthenticated(r *http.Request) bool {
	if r.Method == http.MethodOptions {
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.URL.RawPath != "" {
		return false
	}
	switch r.URL.Path {
	case "/healthz", "/hasura/healthz", "/v1/version":
		return true
	}
	return false
}

func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[name] {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// upstreamError answers when Hasura could not be reached or answered badly.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		x = &exchange{ResponseWriter: w, fam: familyOther}
	}
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		h.tooLarge(x)
		return
	case errors.Is(err, errGuard):
		h.metrics.UpstreamError(metrics.UpstreamGuardRefused)
		h.log.Error("upstream request refused by the admin secret guard", zap.String("request_id", x.rid), zap.Error(err))
		x.upErr = "guard refused"
		writeJSONError(x, http.StatusBadGateway, errorBody(x.fam, "unexpected", "internal error: request refused by the proxy"))
	case x.bodyFailed.Load() == bodyTimedOut:
		// The client did not send its body in time: answer, in case it is
		// still listening.
		h.metrics.UpstreamError(metrics.UpstreamCanceled)
		x.upErr = "client body not received in time"
		writeJSONError(x, http.StatusRequestTimeout, errorBody(x.fam, "unexpected", "the request body was not received in time"))
	case x.bodyFailed.Load() == bodyMalformed:
		h.metrics.UpstreamError(metrics.UpstreamCanceled)
		x.upErr = "client body malformed or cut off"
		writeJSONError(x, http.StatusBadRequest, errorBody(x.fam, "bad-request", "the request body could not be read"))
	case h.timeLimitError(x, r):
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
		h.metrics.UpstreamError(metrics.UpstreamCanceled)
		x.upErr = "client canceled"
		x.status = 499
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		h.metrics.UpstreamError(metrics.UpstreamTimeout)
		x.upErr = "upstream timeout"
		writeJSONError(x, http.StatusGatewayTimeout, errorBody(x.fam, "unexpected", "Hasura did not answer in time"))
	default:
		h.metrics.UpstreamError(metrics.UpstreamUnreachable)
		x.upErr = "upstream unreachable"
		h.log.Warn("upstream unreachable", zap.String("request_id", x.rid), zap.Error(err))
		writeJSONError(x, http.StatusBadGateway, errorBody(x.fam, "unexpected", "Hasura is unreachable"))
	}
}
