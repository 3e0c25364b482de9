package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind label values of limit_refusals_total.
const (
	LimitRate          = "rate"
	LimitDepth         = "depth"
	LimitNode          = "node"
	LimitBatch         = "batch"
	LimitIntrospection = "introspection"
	// LimitInvalid is a document the limits could not analyse (a parse
	// error, an unknown fragment, a fragment cycle).
	LimitInvalid = "invalid"
	// LimitStoreDown is a request refused because Redis did not answer and
	// redis.on_error is deny.
	LimitStoreDown = "store_unavailable"
)

var limitKindSet = []string{LimitRate, LimitDepth, LimitNode, LimitBatch, LimitIntrospection, LimitInvalid, LimitStoreDown}

// LimitKinds is the closed set of limit_refusals_total's kind label.
func LimitKinds() []string { return clone(limitKindSet) }

// Limits are the API-limit metrics: refusals by kind and role, and the
// Redis round trips of the shared rate limiter. Role label values come from
// the configured role names only; every other role is Other. A nil
// *Limits records nothing. It is safe for concurrent use.
type Limits struct {
	roles    index
	refusals [][]prometheus.Counter // [kind][role]
	kinds    index
	redisDur prometheus.Observer
	redisErr [2]prometheus.Counter // [allow, deny]
}

// NewLimits registers the API-limit metrics on reg. roles are the role
// names the configuration mentions; each gets its own series, and every
// series is created at zero.
func NewLimits(reg prometheus.Registerer, roles []string) *Limits {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	roleSet := slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return r == Other })
	roleSet = append(roleSet, Other)
	m := &Limits{roles: newIndex(roleSet), kinds: newIndex(limitKindSet)}
	refusals := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "limit_refusals_total",
		Help:      "Operations refused by API limits, by limit kind and role (configured role names, else other).",
	}, []string{"kind", "role"}))
	for _, k := range limitKindSet {
		row := make([]prometheus.Counter, len(roleSet))
		for i, r := range roleSet {
			row[i] = refusals.WithLabelValues(k, r)
		}
		m.refusals = append(m.refusals, row)
	}
	m.redisDur = register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "redis_request_duration_seconds",
		Help:      "Round trips to Redis of the shared rate limiter, successful or not.",
		Buckets:   []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
	}))
	redisErr := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "redis_errors_total",
		Help:      "Rate-limit checks Redis did not answer within redis.timeout, by the redis.on_error applied.",
	}, []string{"on_error"}))
	m.redisErr[0] = redisErr.WithLabelValues("allow")
	m.redisErr[1] = redisErr.WithLabelValues("deny")
	return m
}

// Refused counts one refusal: kind is one of the Limit constants, role the
// session's role (recorded as Other unless configured).
func (m *Limits) Refused(kind, role string) {
	if m == nil {
		return
	}
	m.refusals[m.kinds.of(kind)][m.roles.of(role)].Inc()
}

// ObserveRedis records one round trip to Redis.
func (m *Limits) ObserveRedis(d time.Duration) {
	if m == nil {
		return
	}
	m.redisDur.Observe(d.Seconds())
}

// RedisError counts a check Redis did not answer; deny says which
// redis.on_error was applied.
func (m *Limits) RedisError(deny bool) {
	if m == nil {
		return
	}
	if deny {
		m.redisErr[1].Inc()
	} else {
		m.redisErr[0].Inc()
	}
}
