// Package metrics defines every Prometheus metric the proxy exports, all named
// hasura_auth_proxy_*, and the closed sets their label values come from.
//
// Label values never come from the request, the token, a kid, a user id or a
// path: every method folds a value outside its closed set to [Other], so an
// attacker-controlled string can never create a series. The one label that is
// not a closed set of this package is issuer, which callers fill from
// configuration only (see [Metrics.JWKSRefresh]).
//
// Who owns the values: the auth decision reasons are package auth's
// (auth.Reasons; this package repeats them because auth records through it,
// and a test in auth keeps the two sets equal); the other closed sets
// (endpoints, codes, JWKS results, upstream kinds, close reasons, webhook
// results) are defined here, and callers pass these constants.
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name of this package.
const Namespace = "hasura_auth_proxy"

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
	wsBuffered    prometheus.Gauge
	wsClosed      []prometheus.Counter // [reason]

	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
	cacheEvictions prometheus.Counter
	cacheEntries   prometheus.Gauge

	webhookRequests []prometheus.Counter // [result]

	hostile hostileMetrics // hostile.go
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

	m.wsBuffered = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "websocket_buffered_bytes",
		Help:      "Bytes held for client WebSocket messages that have not arrived whole, out of websocket.buffer_budget_bytes.",
	}))

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
	m.hostile = newHostileMetrics(reg)
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
// Result constants and reason one of package auth's reasons (Reasons(),
// "ok" for every accepted decision). A value outside either closed set is
// counted as Other.
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

// WebSocketBuffered adds delta (negative when released) to the bytes held
// for partial client WebSocket messages.
func (m *Metrics) WebSocketBuffered(delta int64) {
	if m == nil {
		return
	}
	m.wsBuffered.Add(float64(delta))
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
