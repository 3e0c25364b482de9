package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// family is how Hasura shapes and statuses errors for a path (the
// error-response encoding of server/src-lib/Hasura/Server/App.hs). It is
// derived from the exact request path.
type family int

const (
	// familyGraphQL is /v1/graphql and /v1beta1/relay: always HTTP 200 with
	// a GraphQL errors body.
	familyGraphQL family = iota
	// familyGraphQLAlpha is /v1alpha1/graphql: the GraphQL body with the
	// original status.
	familyGraphQLAlpha
	// familyOther is every other endpoint: {"error","path","code"} with the
	// original status.
	familyOther
)

// endpoint classifies a request path into the closed set of metric
// endpoints and Hasura's error family.
func endpoint(path string) (string, family) {
	switch path {
	case "/v1/graphql":
		return metrics.EndpointGraphQL, familyGraphQL
	case "/v1beta1/relay":
		return metrics.EndpointRelay, familyGraphQL
	case "/v1alpha1/graphql":
		return metrics.EndpointGraphQL, familyGraphQLAlpha
	case "/v1/metadata":
		return metrics.EndpointMetadata, familyOther
	case "/v1/query", "/v2/query":
		return metrics.EndpointQuery, familyOther
	case "/healthz", "/hasura/healthz", "/v1/version":
		return metrics.EndpointHealth, familyOther
	}
	if len(path) > len("/api/rest/") && path[:len("/api/rest/")] == "/api/rest/" {
		return metrics.EndpointREST, familyOther
	}
	return metrics.Other, familyOther
}

type gqlError struct {
	Errors []gqlErrorItem `json:"errors"`
}

type gqlErrorItem struct {
	Message    string        `json:"message"`
	Extensions gqlExtensions `json:"extensions"`
}

type gqlExtensions struct {
	Path string `json:"path"`
	Code string `json:"code"`
}

type plainError struct {
	Error string `json:"error"`
	Path  string `json:"path"`
	Code  string `json:"code"`
}

// codeUnexpected is Hasura's code for a failure of its own; the proxy uses
// it for an Authenticator error that is not an *auth.Error.
const codeUnexpected = "unexpected"

// unexpectedAuthError is the refusal for an Authenticator error that is not
// an *auth.Error (HTTP, WebSocket and webhook alike): the client sees
// "internal error", the access log sees err.
func unexpectedAuthError(err error) *auth.Error {
	return &auth.Error{Code: codeUnexpected, Message: "internal error", Reason: metrics.Other, Detail: err.Error()}
}

// errorBody renders Hasura's error body for the family.
func errorBody(f family, code, message string) []byte {
	var v any
	if f == familyOther {
		v = plainError{Error: message, Path: "$", Code: code}
	} else {
		v = gqlError{Errors: []gqlErrorItem{{Message: message, Extensions: gqlExtensions{Path: "$", Code: code}}}}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Marshalling three strings cannot fail; keep a valid body anyway.
		return []byte(`{"error":"internal error","path":"$","code":"unexpected"}`)
	}
	return b
}

// writeJSONError writes an error body with Hasura's headers. status is the
// final HTTP status.
func writeJSONError(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// authStatus is the HTTP status of an auth refusal on family f.
// errorStatus "hasura" mirrors Hasura: 200 on /v1/graphql and relay, the
// original status elsewhere. "http" answers 401, or 403 for access-denied.
func authStatus(f family, e *auth.Error, httpMode bool) int {
	switch {
	case httpMode && e.Code == auth.CodeAccessDenied:
		return http.StatusForbidden
	case httpMode:
		return http.StatusUnauthorized
	case f == familyGraphQL:
		return http.StatusOK
	default:
		return hasuraStatus(e)
	}
}

// hasuraStatus is Hasura's original HTTP status for an auth refusal, which
// it answers on every path but /v1/graphql and /v1beta1/relay: 401 for a
// wrong admin secret (or one presented while admin passthrough is off), 500
// for the proxy's own failure (code "unexpected"), and 400 for every token
// and claims problem, access-denied for a role included.
func hasuraStatus(e *auth.Error) int {
	switch {
	case e.Reason == auth.ReasonBadAdminSecret || e.Reason == auth.ReasonAdminSecretDisabled:
		return http.StatusUnauthorized
	case e.Code == codeUnexpected:
		return http.StatusInternalServerError
	default:
		return http.StatusBadRequest
	}
}

// writeAuthError is the one place that turns an auth refusal into Hasura's
// HTTP answer.
func writeAuthError(w http.ResponseWriter, f family, e *auth.Error, httpMode bool) int {
	status := authStatus(f, e, httpMode)
	if status == http.StatusUnauthorized && httpMode {
		if e.Reason == auth.ReasonMissing {
			w.Header().Set("WWW-Authenticate", `Bearer`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
	}
	writeJSONError(w, status, errorBody(f, e.Code, e.Message))
	return status
}
