// # Auth webhook mode (server.webhook_path)
//
// Hasura started with HASURA_GRAPHQL_AUTH_HOOK=http://proxy:8000<path> calls
// this endpoint for every request and WebSocket connection_init that does not
// carry an admin secret, and this proxy answers with the session Hasura must
// use. The verification is exactly the proxy's (same Authenticator, same role
// selection through the client's x-hasura-role), only the transport differs:
//
//   - GET mode (HASURA_GRAPHQL_AUTH_HOOK_MODE=GET, Hasura's default): the
//     client's headers arrive as the webhook request's own headers (Hasura
//     drops Content-Length, Content-Type, User-Agent, Host, Origin, Referer,
//     Accept*, Cache-Control, Connection and DNT first).
//   - POST mode: a JSON body {"headers": {name: value, ...}, "request": ...}
//     where headers are the client's and request is the GraphQL request (or
//     null for a WebSocket connection_init); request is not used.
//
// Answers, as Hasura reads them:
//
//   - 200 with a JSON object of strings: X-Hasura-Role, one X-Hasura-* key
//     per session variable, and for tokens with an exp, "Expires" (HTTP date
//     of exp) and "Cache-Control" ("max-age=<seconds left>"). Hasura reads
//     these two from the body, not from the HTTP headers, and closes the
//     client's WebSocket at that time, as JWT mode does at exp.
//   - 401 for every refusal, with Hasura's {"error","path","code"} body for
//     logs; Hasura itself tells the client "Authentication hook unauthorized
//     this request".
//   - 400 for a request that is not what Hasura sends, 405 for other methods,
//     413 for an oversized POST body; Hasura turns any of them into a 500.
//
// The webhook never grants admin: Hasura checks x-hasura-admin-secret itself
// and never calls the webhook when one is sent, so a webhook request carrying
// an admin secret (or access key) did not come from Hasura's normal path. It
// is refused with 401 before the value is compared, so the endpoint is no
// oracle for guessing the admin secret either.
//
// The HTTP response carries Cache-Control: no-store: the GET-mode URL is the
// same for every user, so no HTTP cache may keep one user's session.
package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// errWebhookAdmin refuses an admin secret sent to the webhook.
var errWebhookAdmin = &auth.Error{
	Code:    auth.CodeAccessDenied,
	Message: "the auth webhook never grants admin: send x-hasura-admin-secret to Hasura, not to the webhook",
	Reason:  auth.ReasonBadAdminSecret,
}

// webhookPost is the body Hasura sends in POST mode.
type webhookPost struct {
	Headers map[string]json.RawMessage `json:"headers"`
	Request json.RawMessage            `json:"request"`
}

func (h *Handler) serveWebhook(x *exchange, r *http.Request) {
	var hdr http.Header
	switch r.Method {
	case http.MethodGet:
		hdr = r.Header
	case http.MethodPost:
		var err error
		if hdr, err = h.webhookPostHeaders(x, r); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				h.metrics.WebhookDecision(metrics.WebhookError)
				h.tooLarge(x)
				return
			}
			h.webhookBadRequest(x, http.StatusBadRequest, err.Error())
			return
		}
	default:
		x.Header().Set("Allow", "GET, POST")
		h.webhookBadRequest(x, http.StatusMethodNotAllowed, "the auth webhook answers GET and POST (HASURA_GRAPHQL_AUTH_HOOK_MODE)")
		return
	}

	if hasAdminSecret(hdr) {
		h.webhookRefuse(x, errWebhookAdmin)
		return
	}
	s, err := h.opts.Auth.Authenticate(r.Context(), hdr)
	if err != nil {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			ae = unexpectedAuthError(err)
			x.authErr = ae
			h.metrics.WebhookDecision(metrics.WebhookError)
			writeJSONError(x, http.StatusInternalServerError, errorBody(familyOther, ae.Code, ae.Message))
			return
		}
		h.webhookRefuse(x, ae)
		return
	}
	if s.Result == auth.ResultAdmin {
		// Unreachable while admin headers are refused above; kept so that a
		// change in auth can never turn the webhook into an admin grant.
		h.webhookRefuse(x, errWebhookAdmin)
		return
	}
	x.session = s

	body, err := json.Marshal(webhookSession(s, h.webhookNow()))
	if err != nil {
		h.webhookBadRequest(x, http.StatusInternalServerError, "internal error")
		return
	}
	hd := x.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	x.WriteHeader(http.StatusOK)
	_, _ = x.Write(body)
	h.metrics.WebhookDecision(metrics.WebhookAllowed)
}

func (h *Handler) webhookNow() time.Time {
	if h.opts.Now != nil {
		return h.opts.Now()
	}
	return time.Now()
}

// webhookSession is the 200 body: session variables with their usual
// header spelling, and the expiry keys Hasura reads.
func webhookSession(s *auth.Session, now time.Time) map[string]string {
	out := make(map[string]string, len(s.Vars)+3)
	for _, v := range s.Vars {
		out[textproto.CanonicalMIMEHeaderKey(v.Name)] = v.Value
	}
	// Set last: a claim can never override the role the proxy chose.
	out["X-Hasura-Role"] = s.Role
	if !s.Exp.IsZero() {
		left := max(s.Exp.Sub(now), 0)
		out["Expires"] = s.Exp.UTC().Format(http.TimeFormat)
		out["Cache-Control"] = fmt.Sprintf("max-age=%d", int64(left/time.Second))
	}
	return out
}

// webhookPostHeaders reads the client headers of a POST-mode call.
func (h *Handler) webhookPostHeaders(x *exchange, r *http.Request) (http.Header, error) {
	if r.ContentLength > h.opts.MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: h.opts.MaxBodyBytes}
	}
	dec := json.NewDecoder(http.MaxBytesReader(x, r.Body, h.opts.MaxBodyBytes))
	var p webhookPost
	if err := dec.Decode(&p); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, errors.New(`POST body must be Hasura's {"headers": {...}, "request": ...}`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("POST body must hold exactly one JSON object")
	}
	if p.Headers == nil {
		return nil, errors.New(`POST body has no "headers" object`)
	}
	hdr := make(http.Header, len(p.Headers))
	for name, raw := range p.Headers {
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("POST body: header %q is not a string", webhookTruncate(name, 64))
		}
		k := textproto.CanonicalMIMEHeaderKey(name)
		hdr[k] = append(hdr[k], v)
	}
	return hdr, nil
}

// hasAdminSecret reports an admin secret or access key header under any
// spelling Hasura or an intermediary could read as one.
func hasAdminSecret(h http.Header) bool {
	for k := range h {
		if !isHasuraHeader(k) {
			continue
		}
		switch strings.ToLower(strings.ReplaceAll(k, "_", "-")) {
		case "x-hasura-admin-secret", "x-hasura-access-key":
			return true
		}
	}
	return false
}

func (h *Handler) webhookRefuse(x *exchange, e *auth.Error) {
	x.authErr = e
	h.metrics.WebhookDecision(metrics.WebhookDenied)
	x.Header().Set("Cache-Control", "no-store")
	writeJSONError(x, http.StatusUnauthorized, errorBody(familyOther, e.Code, e.Message))
}

func (h *Handler) webhookBadRequest(x *exchange, status int, msg string) {
	x.upErr = "webhook: " + msg
	h.metrics.WebhookDecision(metrics.WebhookError)
	writeJSONError(x, status, errorBody(familyOther, "bad-request", msg))
}

func webhookTruncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
