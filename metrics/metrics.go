// Package metrics defines every Prometheus metric the proxy exports, all named
// hasura_auth_proxy_*, and the closed sets their label values come from.
//
// Label values never come from the request, the token, a kid, a user id or a
// path: every method folds a value outside its closed set to [Other], so an
// attacker-controlled string can never create a series. The one label that is
// not a closed set of this package is issuer, which callers fill from
// configuration only (see [Metrics.JWKSRefresh]).
//
// The metrics are registered on a registry passed to [New], never on the
// default registry. Every series of the closed sets is created at zero by New,
// so rate() and alerts see zeros instead of absent series. The operator's
// reference, with example PromQL, is docs/metrics.md.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name of this package.
const Namespace = "hasura_auth_proxy"

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

// Reason label values of auth_decisions_total. They map the auth error
// catalogue; the auth package attaches one to every decision.
const (
	// ReasonOK is every accepted decision (allowed, anonymous, admin).
	ReasonOK = "ok"
	// ReasonMissing is no token where one is required (no unauthorized role configured).
	ReasonMissing = "missing"
	// ReasonMalformed is a token that is not a well-formed JWT (bad base64, JSON, header or scheme).
	ReasonMalformed = "malformed"
	// ReasonMultiple is more than one token (header and cookie, or repeated), Hasura's "Multiple JWTs found".
	ReasonMultiple = "multiple"
	// ReasonExpired is a token past exp (after the allowed skew).
	ReasonExpired = "expired"
	// ReasonNotYetValid is a token before nbf (after the allowed skew).
	ReasonNotYetValid = "not_yet_valid"
	// ReasonIssuedInFuture is a token whose iat lies in the future (after the allowed skew).
	ReasonIssuedInFuture = "issued_in_future"
	// ReasonBadSignature is a signature that does not verify with the selected key.
	ReasonBadSignature = "bad_signature"
	// ReasonBadAlgorithm is an alg that is not allowed for the key (none, HS/RS confusion, ...).
	ReasonBadAlgorithm = "bad_algorithm"
	// ReasonUnknownKID is a kid that is in no key set, even after the rate-limited refresh.
	ReasonUnknownKID = "unknown_kid"
	// ReasonNoKeys is no usable key at all (never fetched, or too stale): a proxy-side problem, not the client's.
	ReasonNoKeys = "no_keys"
	// ReasonBadIssuer is an iss that matches no configured issuer.
	ReasonBadIssuer = "bad_issuer"
	// ReasonBadAudience is an aud that does not contain the configured audience.
	ReasonBadAudience = "bad_audience"
	// ReasonBadAZP is an azp (Clerk's authorized party) that is not an allowed origin.
	ReasonBadAZP = "bad_azp"
	// ReasonClaimsInvalid is a Hasura claims object that is absent or not shaped as Hasura requires.
	ReasonClaimsInvalid = "claims_invalid"
	// ReasonRoleMissing is claims without a usable default role.
	ReasonRoleMissing = "role_missing"
	// ReasonRoleNotAllowed is an x-hasura-role the token's allowed roles do not include.
	ReasonRoleNotAllowed = "role_not_allowed"
	// ReasonBadAdminSecret is a wrong admin secret.
	ReasonBadAdminSecret = "bad_admin_secret"
	// ReasonAdminSecretDisabled is an admin secret presented while admin passthrough is off.
	ReasonAdminSecretDisabled = "admin_secret_disabled"
	// ReasonTokenTooLarge is a token longer than the configured limit, refused before parsing.
	ReasonTokenTooLarge = "token_too_large"
	// ReasonMissingExp is a token without exp where the configuration requires one.
	ReasonMissingExp = "missing_exp"
	// ReasonBadClaimValue is a session variable value of the wrong type or shape (not a string, array, ...).
	ReasonBadClaimValue = "bad_claim_value"
	// ReasonRevoked is a valid token whose session (sid) or user (sub) was revoked by a Clerk webhook or the revoke command.
	ReasonRevoked = "revoked"
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
		CloseUpstreamUnreachable, CloseWriteTimeout, CloseSessionRevoked, Other}
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

// Histogram buckets, in seconds. Verification of a cached token costs about a
// microsecond and an RS256 signature about 35 µs, so the verify buckets start
// at 10 µs; the top ones catch a verification that waited for an unknown-kid
// JWKS refresh. Requests go from 0.5 ms (the proxy's own answers) to 10 s
// (long Hasura queries).
var (
	verifyBuckets  = []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1}
	requestBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
)

// Metrics holds every metric of the proxy. Create it with [New]. All methods
// are safe for concurrent use, and all are no-ops on a nil *Metrics, so code
// under test may pass nil.
//
// The series of the closed sets are resolved once in New, so recording costs
// a lookup in a small table and an atomic add, with no allocation and no lock.
type Metrics struct {
	endpoints, results, reasons, jwksResults, upstreamKinds, closeReasons, webhookResults index

	requests        [][]prometheus.Counter // [endpoint][code]
	requestDuration []prometheus.Observer  // [endpoint]
	authDecisions   [][]prometheus.Counter // [result][reason]
	verifyDuration  prometheus.Observer

	jwksRefresh     *prometheus.CounterVec
	jwksKeys        *prometheus.GaugeVec
	jwksLastSuccess *prometheus.GaugeVec
	jwksStale       *prometheus.GaugeVec

	upstreamErrors []prometheus.Counter // [kind]

	ready prometheus.Gauge

	wsConnections prometheus.Gauge
	wsClosed      []prometheus.Counter // [reason]

	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
	cacheEvictions prometheus.Counter
	cacheEntries   prometheus.Gauge

	webhookRequests []prometheus.Counter // [result]
}

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

// New creates every metric family, registers them on reg together with the
// Go runtime and process collectors, and creates every series of the closed
// sets at zero. It never touches the default registry; a nil reg leaves the
// metrics unregistered (they still count, which benchmarks use).
//
// Calling New twice with the same reg is allowed: the second *Metrics shares
// the already registered families. New panics only if reg holds a different
// collector under one of these names, which is a programming error.
func New(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		endpoints:      newIndex(endpointSet),
		results:        newIndex(resultSet),
		reasons:        newIndex(reasonSet),
		jwksResults:    newIndex(jwksResultSet),
		upstreamKinds:  newIndex(upstreamKindSet),
		closeReasons:   newIndex(closeReasonSet),
		webhookResults: newIndex(webhookResultSet),
	}

	registerOther(reg, collectors.NewGoCollector())
	registerOther(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	requests := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "requests_total",
		Help:      "HTTP requests answered on the client port, by endpoint and status code (statuses outside a fixed set are \"other\").",
	}, []string{"endpoint", "code"}))
	requestDuration := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "request_duration_seconds",
		Help:      "Time from receiving a request on the client port to the end of the response, by endpoint.",
		Buckets:   requestBuckets,
	}, []string{"endpoint"}))
	codes := Codes()
	for _, e := range endpointSet {
		row := make([]prometheus.Counter, len(codes))
		for j, c := range codes {
			row[j] = requests.WithLabelValues(e, c)
		}
		m.requests = append(m.requests, row)
		m.requestDuration = append(m.requestDuration, requestDuration.WithLabelValues(e))
	}

	authDecisions := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "auth_decisions_total",
		Help:      "Authentication decisions (HTTP requests, WebSocket inits, webhook calls), by result and reason.",
	}, []string{"result", "reason"}))
	for _, r := range resultSet {
		row := make([]prometheus.Counter, len(reasonSet))
		for j, why := range reasonSet {
			row[j] = authDecisions.WithLabelValues(r, why)
		}
		m.authDecisions = append(m.authDecisions, row)
	}

	m.verifyDuration = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "token_verify_duration_seconds",
		Help:      "Time spent verifying a token: signature and claims, or the token cache lookup that replaces them.",
		Buckets:   verifyBuckets,
	}))

	m.jwksRefresh = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "jwks_refresh_total",
		Help:      "JWKS fetches by configured issuer and result.",
	}, []string{"issuer", "result"}))
	m.jwksKeys = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "jwks_keys",
		Help:      "Verification keys currently held, by configured issuer.",
	}, []string{"issuer"}))
	m.jwksLastSuccess = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "jwks_last_success_timestamp_seconds",
		Help:      "Unix time of the last successful JWKS fetch, by configured issuer (0: never).",
	}, []string{"issuer"}))
	m.jwksStale = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "jwks_stale",
		Help:      "1 while the keys of a configured issuer are served although their refresh is failing, else 0.",
	}, []string{"issuer"}))

	upstreamErrors := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "upstream_errors_total",
		Help:      "Requests that got no usable answer from Hasura, by kind.",
	}, []string{"kind"}))
	for _, k := range upstreamKindSet {
		m.upstreamErrors = append(m.upstreamErrors, upstreamErrors.WithLabelValues(k))
	}

	m.ready = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "ready",
		Help:      "1 while /readyz answers ready (every key source has usable keys, Hasura answers /healthz, not shutting down), else 0.",
	}))

	m.wsConnections = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "websocket_connections",
		Help:      "Client WebSocket connections currently open.",
	}))
	wsClosed := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "websocket_closed_total",
		Help:      "Client WebSocket connections closed, by reason.",
	}, []string{"reason"}))
	for _, r := range closeReasonSet {
		m.wsClosed = append(m.wsClosed, wsClosed.WithLabelValues(r))
	}

	m.cacheHits = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "token_cache_hits_total",
		Help:      "Token verifications answered from the verified-token cache.",
	}))
	m.cacheMisses = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "token_cache_misses_total",
		Help:      "Token verifications not found in the verified-token cache.",
	}))
	m.cacheEvictions = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "token_cache_evictions_total",
		Help:      "Entries removed from the verified-token cache before or at their expiry (size bound, exp, key change).",
	}))
	m.cacheEntries = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "token_cache_entries",
		Help:      "Entries currently held by the verified-token cache.",
	}))

	webhookRequests := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "webhook_requests_total",
		Help:      "Hasura auth-webhook calls answered, by result.",
	}, []string{"result"}))
	for _, r := range webhookResultSet {
		m.webhookRequests = append(m.webhookRequests, webhookRequests.WithLabelValues(r))
	}
	return m
}

// register registers c on reg, or returns the equal collector reg already holds.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("metrics: register: %v", err))
}

// registerOther registers a collector this package does not read back, such
// as the Go runtime collector, which the caller may have registered already.
func registerOther(reg prometheus.Registerer, c prometheus.Collector) {
	err := reg.Register(c)
	if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); err != nil && !ok {
		panic(fmt.Sprintf("metrics: register: %v", err))
	}
}

// ObserveRequest records one answered request on the client port: endpoint is
// one of the Endpoint constants, code the HTTP status sent, d the time from
// receiving the request to the end of the response.
func (m *Metrics) ObserveRequest(endpoint string, code int, d time.Duration) {
	if m == nil {
		return
	}
	e := m.endpoints.of(endpoint)
	m.requests[e][codeIndex(code)].Inc()
	m.requestDuration[e].Observe(d.Seconds())
}

// AuthDecision counts one authentication decision: result is one of the
// Result constants and reason one of the Reason constants (ReasonOK for every
// accepted decision).
func (m *Metrics) AuthDecision(result, reason string) {
	if m == nil {
		return
	}
	m.authDecisions[m.results.of(result)][m.reasons.of(reason)].Inc()
}

// ObserveVerify records the time one token verification took.
func (m *Metrics) ObserveVerify(d time.Duration) {
	if m == nil {
		return
	}
	m.verifyDuration.Observe(d.Seconds())
}

// InitIssuer creates the series of one configured issuer with a remote JWKS
// at zero (no refresh yet, no keys, last success 0 meaning never, not stale),
// so alerts see the issuer before its first fetch ends. Call it once per
// remote key source at startup, not for static keys, whose last-success
// timestamp would otherwise stay 0 and look like keys that never arrive.
// Calling it again resets the gauges, so call it before the first fetch.
//
// issuer, here and in every JWKS method, must be a configured issuer name (or
// its index in the configuration), never a value read from a token: it is the
// only label this package does not fold into a closed set.
func (m *Metrics) InitIssuer(issuer string) {
	if m == nil {
		return
	}
	for _, r := range jwksResultSet {
		m.jwksRefresh.WithLabelValues(issuer, r)
	}
	m.jwksKeys.WithLabelValues(issuer).Set(0)
	m.jwksLastSuccess.WithLabelValues(issuer).Set(0)
	m.jwksStale.WithLabelValues(issuer).Set(0)
}

// JWKSRefresh counts one JWKS fetch of a configured issuer (see InitIssuer)
// with its result, one of the JWKS constants. A fetch caused by an unknown kid
// is counted once as JWKSUnknownKIDRefresh and once with its outcome.
func (m *Metrics) JWKSRefresh(issuer, result string) {
	if m == nil {
		return
	}
	m.jwksRefresh.WithLabelValues(issuer, jwksResultSet[m.jwksResults.of(result)]).Inc()
}

// JWKSKeys sets the number of keys held for a configured issuer (see InitIssuer).
func (m *Metrics) JWKSKeys(issuer string, n int) {
	if m == nil {
		return
	}
	m.jwksKeys.WithLabelValues(issuer).Set(float64(n))
}

// JWKSLastSuccess records the time of the last fetch of a configured issuer
// (see InitIssuer) that confirmed its keys: a success or a not-modified
// answer. Alerts on key freshness read it.
func (m *Metrics) JWKSLastSuccess(issuer string, t time.Time) {
	if m == nil {
		return
	}
	m.jwksLastSuccess.WithLabelValues(issuer).Set(float64(t.UnixNano()) / 1e9)
}

// JWKSStale sets whether a configured issuer (see InitIssuer) is serving keys
// whose refresh is failing.
func (m *Metrics) JWKSStale(issuer string, stale bool) {
	if m == nil {
		return
	}
	v := 0.0
	if stale {
		v = 1
	}
	m.jwksStale.WithLabelValues(issuer).Set(v)
}

// UpstreamError counts one request that got no usable answer from Hasura;
// kind is one of the Upstream constants.
func (m *Metrics) UpstreamError(kind string) {
	if m == nil {
		return
	}
	m.upstreamErrors[m.upstreamKinds.of(kind)].Inc()
}

// SetReady records whether the proxy is ready, as /readyz would answer now.
func (m *Metrics) SetReady(ready bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.Set(v)
}

// WebSocketOpened counts one client WebSocket as open. Every call must be
// matched by exactly one WebSocketClosed.
func (m *Metrics) WebSocketOpened() {
	if m == nil {
		return
	}
	m.wsConnections.Inc()
}

// WebSocketClosed counts one client WebSocket opened with WebSocketOpened as
// closed, for reason, one of the Close constants.
func (m *Metrics) WebSocketClosed(reason string) {
	if m == nil {
		return
	}
	m.wsConnections.Dec()
	m.wsClosed[m.closeReasons.of(reason)].Inc()
}

// TokenCacheHit counts one verification answered from the token cache.
func (m *Metrics) TokenCacheHit() {
	if m == nil {
		return
	}
	m.cacheHits.Inc()
}

// TokenCacheMiss counts one verification the token cache could not answer.
func (m *Metrics) TokenCacheMiss() {
	if m == nil {
		return
	}
	m.cacheMisses.Inc()
}

// TokenCacheEvicted counts n entries removed from the token cache; n <= 0 is ignored.
func (m *Metrics) TokenCacheEvicted(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.cacheEvictions.Add(float64(n))
}

// TokenCacheSize sets the number of entries the token cache holds.
func (m *Metrics) TokenCacheSize(n int) {
	if m == nil {
		return
	}
	m.cacheEntries.Set(float64(n))
}

// WebhookDecision counts one auth-webhook call answered with result, one of
// the Webhook constants.
func (m *Metrics) WebhookDecision(result string) {
	if m == nil {
		return
	}
	m.webhookRequests[m.webhookResults.of(result)].Inc()
}

// Handler serves the metrics g gathers in the Prometheus exposition formats.
// A failing collector does not fail the scrape: everything else is served and
// the failure is counted in promhttp_metric_handler_errors_total when g is
// also a Registerer (a *prometheus.Registry is). At most a few scrapes run at
// once and each is bounded in time, so a scraper cannot pile up work.
func Handler(g prometheus.Gatherer) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}
	if reg, ok := g.(prometheus.Registerer); ok {
		opts.Registry = reg
	}
	return promhttp.HandlerFor(g, opts)
}
