package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Limits enforces API limits (api_limits, graphql_schema_introspection) on
// authenticated GraphQL requests and WebSocket operations, after the role
// is chosen and before anything is forwarded. *limits.Limiter implements
// it. Implementations must be safe for concurrent use.
type Limits interface {
	// Applies reports whether s is subject to any limit; when it is not,
	// the proxy neither reads the body nor calls the Admit methods.
	Applies(s *auth.Session) bool
	// AdmitHTTP decides one request of s: body is the whole request body
	// (nil for a GET or a RESTified endpoint), which the proxy forwards
	// unchanged when admitted. nil admits.
	AdmitHTTP(r *http.Request, body []byte, s *auth.Session) *Refusal
	// AdmitOperation decides one WebSocket subscribe/start message of s
	// on the connection whose upgrade request was r. nil admits.
	AdmitOperation(r *http.Request, s *auth.Session, msg []byte) *Refusal
	// TimeLimit is how long Hasura may take to answer a request of s; 0
	// means no limit.
	TimeLimit(s *auth.Session) time.Duration
}

// Refusal is a limit refusing an operation: Hasura's code and message.
type Refusal struct {
	// Code is the GraphQL error's extensions.code (rate-limit-exceeded,
	// depth-limit-exceeded, ...).
	Code    string
	Message string
	// Status is the HTTP status under auth.error_status "http" and on
	// /v1alpha1/graphql (429 for rate limits, 400 otherwise).
	Status int
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
}

// errTimeLimit is the cause of a request context past api_limits.time_limit.
var errTimeLimit = errors.New("api_limits.time_limit exceeded")

// limited reports whether the request is one the limits look at: GraphQL
// and RESTified endpoints.
func limited(x *exchange) bool {
	switch x.endpoint {
	case metrics.EndpointGraphQL, metrics.EndpointRelay, metrics.EndpointREST:
		return true
	}
	return false
}

// admitLimits applies Options.Limits to an authenticated request. It
// returns the request to forward (with the time limit in its context and
// the body it read) and the function that releases it once the exchange
// is over, or nil after answering a refusal.
func (h *Handler) admitLimits(x *exchange, r *http.Request) (*http.Request, func()) {
	l := h.opts.Limits
	if !limited(x) || !l.Applies(x.session) {
		return r, func() {}
	}
	var body []byte
	if x.endpoint != metrics.EndpointREST && r.Method == http.MethodPost && r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			if errors.As(err, new(*http.MaxBytesError)) {
				h.tooLarge(x)
			} else {
				x.upErr = "client body malformed or cut off"
				writeJSONError(x, http.StatusBadRequest, errorBody(x.fam, "bad-request", "the request body could not be read"))
			}
			return nil, nil
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
		if r.ContentLength < 0 {
			r.ContentLength = int64(len(b))
		}
	}
	if ref := l.AdmitHTTP(r, body, x.session); ref != nil {
		h.writeRefusal(x, ref)
		return nil, nil
	}
	if d := l.TimeLimit(x.session); d > 0 {
		ctx, cancel := context.WithTimeoutCause(r.Context(), d, errTimeLimit)
		return r.WithContext(ctx), cancel
	}
	return r, func() {}
}

// writeRefusal is the one place that turns a limit refusal into Hasura's
// HTTP answer.
func (h *Handler) writeRefusal(x *exchange, ref *Refusal) {
	status := http.StatusOK
	if h.httpMode || x.fam != familyGraphQL {
		status = ref.Status
	}
	if ref.RetryAfter > 0 {
		x.Header().Set("Retry-After", strconv.FormatInt(int64((ref.RetryAfter+time.Second-1)/time.Second), 10))
	}
	x.upErr = "refused by api limits: " + ref.Code
	writeJSONError(x, status, errorBody(x.fam, ref.Code, ref.Message))
}

// timeLimitError answers a request whose api_limits.time_limit passed
// before Hasura answered; ok is false when the limit was not the cause.
func (h *Handler) timeLimitError(x *exchange, r *http.Request) bool {
	if h.opts.Limits == nil || context.Cause(r.Context()) != errTimeLimit {
		return false
	}
	h.metrics.UpstreamError(metrics.UpstreamTimeout)
	x.upErr = "api_limits.time_limit exceeded"
	d := h.opts.Limits.TimeLimit(x.session)
	writeJSONError(x, http.StatusGatewayTimeout, errorBody(x.fam, "unexpected",
		fmt.Sprintf("the operation did not finish within the time limit of %s (api_limits.time_limit)", d)))
	return true
}
