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

	"github.com/gorilla/websocket"

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
			// Answered as upstreamError answers the same failures.
			switch {
			case errors.As(err, new(*http.MaxBytesError)):
				h.tooLarge(x)
			case x.bodyFailed.Load() == bodyTimedOut:
				x.upErr = "client body not received in time"
				writeJSONError(x, http.StatusRequestTimeout, errorBody(x.fam, "unexpected", "the request body was not received in time"))
			default:
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

// limitsApply reports whether the connection's operations are checked by
// API limits; their messages are then held whole (they are bounded by
// websocket.max_message_bytes) so a subscribe can be refused before Hasura
// sees it.
func (c *wsConn) limitsApply() bool {
	if c.x == nil || c.x.session == nil || c.p.h == nil {
		return false // not yet authenticated (or a bare conn in a test)
	}
	l := c.p.h.opts.Limits
	return l != nil && l.Applies(c.x.session)
}

// admitOperation checks a whole client message that is a subscribe or
// start against the limits. A refused operation gets the protocol's error
// message for its id (and, on the legacy protocol, complete, as Hasura
// sends); the socket and its other operations stay open. It reports
// whether the message was refused, and a cause when answering failed.
func (c *wsConn) admitOperation(data []byte) (bool, *wsCause) {
	if !c.limitsApply() {
		return false, nil
	}
	msg, err := parseClientMessage(data)
	if err != nil || (msg.Type != "subscribe" && msg.Type != "start") {
		return false, nil
	}
	id, ok := stringID(msg.ID)
	if !ok {
		return false, nil // Hasura refuses it
	}
	ref := c.p.h.opts.Limits.AdmitOperation(c.upgrade, c.x.session, msg.Payload)
	if ref == nil {
		return false, nil
	}
	msgs := [][]byte{operationErrorMessage(c.proto, id, c.x.fam, ref)}
	if c.proto == protoLegacy {
		msgs = append(msgs, completeMessage(id))
	}
	c.cliWrite.Lock()
	defer c.cliWrite.Unlock()
	for _, m := range msgs {
		if c.cliDirty {
			return true, nil // the cause is recorded already
		}
		_ = c.cli.SetWriteDeadline(time.Now().Add(c.p.cfg.WriteTimeout))
		if err := c.cli.WriteMessage(websocket.TextMessage, m); err != nil {
			c.cliDirty = true
			return true, ptr(c.clientWriteCause(err))
		}
	}
	return true, nil
}

// operationErrorMessage is the error message of one operation: a list of
// GraphQL errors in graphql-transport-ws, one error object in the legacy
// protocol (the endpoint's error shape, as startErrorMessage).
func operationErrorMessage(proto, id string, f family, ref *Refusal) []byte {
	item := gqlErrorItem{Message: ref.Message, Extensions: gqlExtensions{Path: "$", Code: ref.Code}}
	var payload any = item
	switch {
	case proto == protoTransportWS:
		payload = []gqlErrorItem{item}
	case f == familyGraphQLAlpha:
		payload = plainError{Error: ref.Message, Path: "$", Code: ref.Code}
	}
	return marshal(struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Payload any    `json:"payload"`
	}{id, "error", payload}, `{"type":"error","payload":[{"message":"internal error"}]}`)
}
