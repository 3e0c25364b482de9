package metrics

import (
	"strconv"
)

// Other is the label value every closed set falls back to: a value outside
// the set is recorded as Other, never as itself.
const Other = "other"

// Endpoint label values of requests_total and request_duration_seconds.
const (
	// EndpointGraphQL is /v1/graphql and /v1alpha1/graphql.
	EndpointGraphQL = "graphql"
	// EndpointRelay is /v1beta1/relay.
	EndpointRelay = "relay"
	// EndpointMetadata is /v1/metadata.
	EndpointMetadata = "metadata"
	// EndpointQuery is /v2/query (and the legacy /v1/query).
	EndpointQuery = "query"
	// EndpointREST is Hasura's RESTified endpoints under /api/rest/.
	EndpointREST = "rest"
	// EndpointHealth is Hasura's own /healthz and /v1/version relayed through the client port.
	EndpointHealth = "health"
	// EndpointWebhook is the proxy's Hasura auth-webhook endpoint.
	EndpointWebhook = "webhook"
)

// Result label values of auth_decisions_total.
const (
	// ResultAllowed is a verified JWT that was let through with its role.
	ResultAllowed = "allowed"
	// ResultAnonymous is a request without credentials let through as the unauthorized role.
	ResultAnonymous = "anonymous"
	// ResultAdmin is a request that presented the correct admin secret.
	ResultAdmin = "admin"
	// ResultDenied is a refused request; its reason says why.
	ResultDenied = "denied"
)

// Reason label values of auth_decisions_total. Package auth owns them and
// their meaning (auth.ReasonOK and the rest, whose doc says when each is
// given); they are repeated here because auth records its decisions through
// this package, which therefore cannot import it. A test in package auth
// fails when the two sets differ.
const (
	ReasonOK                  = "ok"                    // auth.ReasonOK
	ReasonMissing             = "missing"               // auth.ReasonMissing
	ReasonMalformed           = "malformed"             // auth.ReasonMalformed
	ReasonMultiple            = "multiple"              // auth.ReasonMultiple
	ReasonExpired             = "expired"               // auth.ReasonExpired
	ReasonNotYetValid         = "not_yet_valid"         // auth.ReasonNotYetValid
	ReasonIssuedInFuture      = "issued_in_future"      // auth.ReasonIssuedInFuture
	ReasonBadSignature        = "bad_signature"         // auth.ReasonBadSignature
	ReasonBadAlgorithm        = "bad_algorithm"         // auth.ReasonBadAlgorithm
	ReasonUnknownKID          = "unknown_kid"           // auth.ReasonUnknownKID
	ReasonNoKeys              = "no_keys"               // auth.ReasonNoKeys
	ReasonBadIssuer           = "bad_issuer"            // auth.ReasonBadIssuer
	ReasonBadAudience         = "bad_audience"          // auth.ReasonBadAudience
	ReasonBadAZP              = "bad_azp"               // auth.ReasonBadAZP
	ReasonClaimsInvalid       = "claims_invalid"        // auth.ReasonClaimsInvalid
	ReasonRoleMissing         = "role_missing"          // auth.ReasonRoleMissing
	ReasonRoleNotAllowed      = "role_not_allowed"      // auth.ReasonRoleNotAllowed
	ReasonBadAdminSecret      = "bad_admin_secret"      // auth.ReasonBadAdminSecret
	ReasonAdminSecretDisabled = "admin_secret_disabled" // auth.ReasonAdminSecretDisabled
	ReasonTokenTooLarge       = "token_too_large"       // auth.ReasonTokenTooLarge
	ReasonMissingExp          = "missing_exp"           // auth.ReasonMissingExp
	ReasonBadClaimValue       = "bad_claim_value"       // auth.ReasonBadClaimValue
	ReasonRevoked             = "revoked"               // auth.ReasonRevoked
)

// Result label values of jwks_refresh_total.
const (
	// JWKSSuccess is a fetch whose key set was parsed and installed.
	JWKSSuccess = "success"
	// JWKSNotModified is a fetch answered 304 Not Modified; the held keys stay.
	JWKSNotModified = "not_modified"
	// JWKSError is a failed fetch (network, status, parse); the held keys stay.
	JWKSError = "error"
	// JWKSEmpty is a fetched key set without usable keys, refused; the held keys stay.
	JWKSEmpty = "empty"
	// JWKSTooLarge is a response over the size limit, refused; the held keys stay.
	JWKSTooLarge = "too_large"
	// JWKSUnknownKIDRefresh is a fetch triggered by a token naming an unknown kid (counted in addition to its outcome).
	JWKSUnknownKIDRefresh = "unknown_kid_refresh"
)

// Kind label values of upstream_errors_total.
const (
	// UpstreamUnreachable is Hasura refusing or failing the connection (dial, DNS, reset).
	UpstreamUnreachable = "unreachable"
	// UpstreamTimeout is Hasura not answering within the configured timeout.
	UpstreamTimeout = "timeout"
	// UpstreamCanceled is the client going away before Hasura answered.
	UpstreamCanceled = "canceled"
	// UpstreamBadResponse is an answer from Hasura the proxy could not relay.
	UpstreamBadResponse = "bad_response"
	// UpstreamGuardRefused is the last-line guard refusing a request that would have carried the admin secret
	// without a verified decision; it should stay at zero, anything else is a bug.
	UpstreamGuardRefused = "guard_refused"
)

// Reason label values of websocket_closed_total.
const (
	// CloseClientClosed is the client closing its socket.
	CloseClientClosed = "client_closed"
	// CloseUpstreamClosed is Hasura closing its socket.
	CloseUpstreamClosed = "upstream_closed"
	// CloseInitTimeout is no connection_init within the init timeout.
	CloseInitTimeout = "init_timeout"
	// CloseInitFailed is a connection_init whose authentication failed (the reason is in auth_decisions_total).
	CloseInitFailed = "init_failed"
	// CloseTokenExpired is the proxy closing the socket at the token's exp.
	CloseTokenExpired = "token_expired"
	// CloseShutdown is the proxy closing the socket because it is shutting down.
	CloseShutdown = "shutdown"
	// CloseMessageTooLarge is a message over the size limit in either direction.
	CloseMessageTooLarge = "message_too_large"
	// CloseProtocolError is a message that breaks the subprotocol (bad JSON, second connection_init, ...).
	CloseProtocolError = "protocol_error"
	// CloseTooManyConnections is an upgrade refused because the socket limit is reached.
	CloseTooManyConnections = "too_many_connections"
	// CloseUpstreamUnreachable is Hasura's WebSocket that could not be dialled after a successful init.
	CloseUpstreamUnreachable = "upstream_unreachable"
	// CloseWriteTimeout is a peer (client or Hasura) that stopped reading
	// for longer than websocket.write_timeout: the socket is closed so the
	// other direction is not blocked.
	CloseWriteTimeout = "write_timeout"
	// CloseTooManyPending is an upgrade refused because its client IP already holds
	// websocket.max_pending_per_ip sockets that have not finished connection_init.
	CloseTooManyPending = "too_many_pending_per_ip"
	// CloseTooManyPerUser is a socket closed after its connection_init because its user already holds
	// websocket.max_connections_per_user sockets.
	CloseTooManyPerUser = "too_many_per_user"
	// CloseBufferBudget is a socket closed because reading its message would have exceeded
	// websocket.buffer_budget_bytes, the process's budget for partial messages.
	CloseBufferBudget = "buffer_budget"
	// CloseMessageTimeout is a client message after connection_init not received whole within
	// websocket.message_timeout.
	CloseMessageTimeout = "message_timeout"
	// CloseSessionRevoked is the proxy closing the socket because its session or user was revoked.
	CloseSessionRevoked = "session_revoked"
)

// Result label values of webhook_requests_total.
const (
	// WebhookAllowed is a webhook call answered 200 with session variables.
	WebhookAllowed = "allowed"
	// WebhookDenied is a webhook call answered 401.
	WebhookDenied = "denied"
	// WebhookError is a webhook call that could not be answered properly (bad request, internal error).
	WebhookError = "error"
)

// The closed sets, in exposition order. Each is an immutable table: it is
// only read, and the exported accessors hand out copies.
var (
	endpointSet = []string{EndpointGraphQL, EndpointRelay, EndpointMetadata, EndpointQuery, EndpointREST,
		EndpointHealth, EndpointWebhook, Other}
	codeSet   = []int{200, 204, 301, 302, 304, 400, 401, 403, 404, 405, 413, 429, 500, 502, 503, 504}
	resultSet = []string{ResultAllowed, ResultAnonymous, ResultAdmin, ResultDenied, Other}
	reasonSet = []string{ReasonOK, ReasonMissing, ReasonMalformed, ReasonMultiple, ReasonExpired,
		ReasonNotYetValid, ReasonIssuedInFuture, ReasonBadSignature, ReasonBadAlgorithm, ReasonUnknownKID,
		ReasonNoKeys, ReasonBadIssuer, ReasonBadAudience, ReasonBadAZP, ReasonClaimsInvalid, ReasonRoleMissing,
		ReasonRoleNotAllowed, ReasonBadAdminSecret, ReasonAdminSecretDisabled, ReasonTokenTooLarge,
		ReasonMissingExp, ReasonBadClaimValue, ReasonRevoked, Other}
	jwksResultSet = []string{JWKSSuccess, JWKSNotModified, JWKSError, JWKSEmpty, JWKSTooLarge,
		JWKSUnknownKIDRefresh, Other}
	upstreamKindSet = []string{UpstreamUnreachable, UpstreamTimeout, UpstreamCanceled, UpstreamBadResponse,
		UpstreamGuardRefused, Other}
	closeReasonSet = []string{CloseClientClosed, CloseUpstreamClosed, CloseInitTimeout, CloseInitFailed,
		CloseTokenExpired, CloseShutdown, CloseMessageTooLarge, CloseProtocolError, CloseTooManyConnections,
		CloseUpstreamUnreachable, CloseWriteTimeout, CloseTooManyPending, CloseTooManyPerUser, CloseBufferBudget,
		CloseMessageTimeout, CloseSessionRevoked, Other}
	webhookResultSet = []string{WebhookAllowed, WebhookDenied, WebhookError, Other}
)

// Endpoints returns the closed set of endpoint label values, Other last.
func Endpoints() []string { return clone(endpointSet) }

// Codes returns the closed set of code label values (HTTP statuses as strings), Other last.
// Any other status is recorded as Other.
func Codes() []string {
	s := make([]string, 0, len(codeSet)+1)
	for _, c := range codeSet {
		s = append(s, strconv.Itoa(c))
	}
	return append(s, Other)
}

// Results returns the closed set of auth decision result label values, Other last.
func Results() []string { return clone(resultSet) }

// Reasons returns the closed set of auth decision reason label values, Other last.
func Reasons() []string { return clone(reasonSet) }

// JWKSResults returns the closed set of jwks_refresh_total result label values, Other last.
func JWKSResults() []string { return clone(jwksResultSet) }

// UpstreamKinds returns the closed set of upstream_errors_total kind label values, Other last.
func UpstreamKinds() []string { return clone(upstreamKindSet) }

// CloseReasons returns the closed set of websocket_closed_total reason label values, Other last.
func CloseReasons() []string { return clone(closeReasonSet) }

// WebhookResults returns the closed set of webhook_requests_total result label values, Other last.
func WebhookResults() []string { return clone(webhookResultSet) }

func clone(s []string) []string { return append([]string(nil), s...) }

// index maps the label values of one closed set to their position; the last
// position is Other, where everything else goes.
type index map[string]int

func newIndex(values []string) index {
	ix := make(index, len(values))
	for i, v := range values {
		ix[v] = i
	}
	return ix
}

// of returns the position of v, or of Other when v is not in the set.
func (ix index) of(v string) int {
	if i, ok := ix[v]; ok {
		return i
	}
	return len(ix) - 1
}

// codeIndex returns the position of an HTTP status in Codes(), Other being last.
func codeIndex(code int) int {
	for i, c := range codeSet {
		if c == code {
			return i
		}
	}
	return len(codeSet)
}
