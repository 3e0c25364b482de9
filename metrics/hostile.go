package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reason label values of requests_not_allowed_total.
const (
	// NotAllowedPath is a path outside upstream.allowed_paths (or not spelt exactly).
	NotAllowedPath = "path"
	// NotAllowedMethod is a method other than GET, POST, OPTIONS and HEAD.
	NotAllowedMethod = "method"
)

// Result label values of config_reloads_total.
const (
	// ReloadSuccess is a reload whose configuration was valid and is now in effect.
	ReloadSuccess = "success"
	// ReloadError is a reload refused (unreadable or invalid configuration); the previous one keeps serving.
	ReloadError = "error"
)

var (
	notAllowedSet = []string{NotAllowedPath, NotAllowedMethod, Other}
	reloadSet     = []string{ReloadSuccess, ReloadError, Other}
)

// hostileMetrics are the defences against hostile clients and the
// configuration reload.
type hostileMetrics struct {
	notAllowed, reloadResults index

	requestsNotAllowed []prometheus.Counter // [reason]
	adminThrottled     prometheus.Counter
	reloads            []prometheus.Counter // [result]
	lastReload         prometheus.Gauge
}

func newHostileMetrics(reg prometheus.Registerer) hostileMetrics {
	h := hostileMetrics{notAllowed: newIndex(notAllowedSet), reloadResults: newIndex(reloadSet)}
	na := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "requests_not_allowed_total",
		Help:      "Requests refused before authentication because their path or method is outside upstream.allowed_paths, by reason.",
	}, []string{"reason"}))
	for _, r := range notAllowedSet {
		h.requestsNotAllowed = append(h.requestsNotAllowed, na.WithLabelValues(r))
	}
	h.adminThrottled = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "admin_secret_throttled_total",
		Help:      "Admin-secret attempts refused without comparing because their client presented too many wrong ones (server.admin_secret_throttle).",
	}))
	rl := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "config_reloads_total",
		Help:      "Configuration reloads (SIGHUP), by result.",
	}, []string{"result"}))
	for _, r := range reloadSet {
		h.reloads = append(h.reloads, rl.WithLabelValues(r))
	}
	h.lastReload = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "config_last_reload_success_timestamp_seconds",
		Help:      "Unix time the configuration in effect was loaded: at startup, then at each successful reload.",
	}))
	return h
}

// RequestNotAllowed counts a request refused by the allow-list; reason is
// NotAllowedPath or NotAllowedMethod.
func (m *Metrics) RequestNotAllowed(reason string) {
	if m == nil {
		return
	}
	m.hostile.requestsNotAllowed[m.hostile.notAllowed.of(reason)].Inc()
}

// AdminSecretThrottled counts an admin-secret attempt refused by the
// throttle.
func (m *Metrics) AdminSecretThrottled() {
	if m == nil {
		return
	}
	m.hostile.adminThrottled.Inc()
}

// ConfigReload counts a reload; result is ReloadSuccess or ReloadError.
func (m *Metrics) ConfigReload(result string) {
	if m == nil {
		return
	}
	m.hostile.reloads[m.hostile.reloadResults.of(result)].Inc()
}

// ConfigLoaded records the time the configuration in effect was loaded.
func (m *Metrics) ConfigLoaded(t time.Time) {
	if m == nil {
		return
	}
	m.hostile.lastReload.Set(float64(t.UnixNano()) / 1e9)
}

// NotAllowedReasons returns the closed set of requests_not_allowed_total reason label values, Other last.
func NotAllowedReasons() []string { return clone(notAllowedSet) }

// ReloadResults returns the closed set of config_reloads_total result label values, Other last.
func ReloadResults() []string { return clone(reloadSet) }
