package metrics

import "github.com/prometheus/client_golang/prometheus"

// Result label values of clerk_webhook_deliveries_total.
const (
	// DeliveryRevoked is a verified revocation event applied (and shared, with Redis).
	DeliveryRevoked = "revoked"
	// DeliveryDuplicate is a verified delivery whose svix-id was already applied: acknowledged, not applied again.
	DeliveryDuplicate = "duplicate"
	// DeliveryIgnored is a verified event of a type that revokes nothing: acknowledged.
	DeliveryIgnored = "ignored"
	// DeliveryUnauthorized is a delivery with a missing or wrong signature, or a timestamp too far off: 401.
	DeliveryUnauthorized = "unauthorized"
	// DeliveryMalformed is a verified delivery whose body is not a Clerk event: 400.
	DeliveryMalformed = "malformed"
	// DeliveryTooLarge is a body over the limit: 413.
	DeliveryTooLarge = "too_large"
	// DeliveryMethodNotAllowed is a request other than POST: 405.
	DeliveryMethodNotAllowed = "method_not_allowed"
	// DeliveryUnavailable is a revocation applied on this replica but not written to Redis: 503, so Clerk retries.
	DeliveryUnavailable = "unavailable"
)

// Source label values of revocations_applied_total.
const (
	// SourceLocal is a revocation this process received (webhook or revoke command on this replica).
	SourceLocal = "local"
	// SourceRedis is a revocation learnt from Redis (published by another replica, or loaded at start).
	SourceRedis = "redis"
)

// Kind label values of revoked_entries.
const (
	KindSession = "session"
	KindUser    = "user"
)

var (
	deliveryResultSet = []string{DeliveryRevoked, DeliveryDuplicate, DeliveryIgnored, DeliveryUnauthorized,
		DeliveryMalformed, DeliveryTooLarge, DeliveryMethodNotAllowed, DeliveryUnavailable, Other}
	sourceSet = []string{SourceLocal, SourceRedis, Other}
	kindSet   = []string{KindSession, KindUser, Other}
)

// DeliveryResults returns the closed set of clerk_webhook_deliveries_total result label values, Other last.
func DeliveryResults() []string { return clone(deliveryResultSet) }

// Revocation holds the metrics of session revocation. Create it with
// [NewRevocation]. All methods are safe for concurrent use and no-ops on a
// nil *Revocation.
type Revocation struct {
	results, sources, kinds index
	deliveries              []prometheus.Counter // [result]
	applied                 []prometheus.Counter // [source]
	entries                 []prometheus.Gauge   // [kind]
}

// NewRevocation creates the revocation metric families on reg (as [New]
// does: every series at zero, a second call with the same reg shares them).
func NewRevocation(reg prometheus.Registerer) *Revocation {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Revocation{results: newIndex(deliveryResultSet), sources: newIndex(sourceSet), kinds: newIndex(kindSet)}
	deliveries := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "clerk_webhook_deliveries_total",
		Help:      "Requests to the Clerk webhook endpoint (clerk_webhook.path), by result.",
	}, []string{"result"}))
	for _, r := range deliveryResultSet {
		m.deliveries = append(m.deliveries, deliveries.WithLabelValues(r))
	}
	applied := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "revocations_applied_total",
		Help:      "Session and user revocations newly put in effect on this replica, by where they came from (local: a webhook or revoke command here; redis: another replica or the store at start).",
	}, []string{"source"}))
	for _, s := range sourceSet {
		m.applied = append(m.applied, applied.WithLabelValues(s))
	}
	entries := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "revoked_entries",
		Help:      "Revoked sessions and users held (each until clerk_webhook.max_token_lifetime after its event), by kind.",
	}, []string{"kind"}))
	for _, k := range kindSet {
		m.entries = append(m.entries, entries.WithLabelValues(k))
	}
	return m
}

// Delivery counts one request to the webhook endpoint, with result one of the Delivery constants.
func (m *Revocation) Delivery(result string) {
	if m == nil {
		return
	}
	m.deliveries[m.results.of(result)].Inc()
}

// Applied counts one revocation newly in effect, from source (SourceLocal or SourceRedis).
func (m *Revocation) Applied(source string) {
	if m == nil {
		return
	}
	m.applied[m.sources.of(source)].Inc()
}

// Entries sets the number of revocations of kind (KindSession or KindUser) held.
func (m *Revocation) Entries(kind string, n int) {
	if m == nil {
		return
	}
	m.entries[m.kinds.of(kind)].Set(float64(n))
}
