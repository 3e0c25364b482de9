package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHostileMethodsMoveExactlyTheirSeries(t *testing.T) {
	tests := []struct {
		name string
		do   func(m *Metrics)
		want map[string]float64
	}{
		{"path not allowed", func(m *Metrics) { m.RequestNotAllowed(NotAllowedPath) },
			map[string]float64{"requests_not_allowed_total{reason=path}": 1}},
		{"method not allowed", func(m *Metrics) { m.RequestNotAllowed(NotAllowedMethod) },
			map[string]float64{"requests_not_allowed_total{reason=method}": 1}},
		{"not-allowed reason folds to other", func(m *Metrics) { m.RequestNotAllowed("/v1/metadata") },
			map[string]float64{"requests_not_allowed_total{reason=other}": 1}},
		{"admin secret throttled", func(m *Metrics) { m.AdminSecretThrottled() },
			map[string]float64{"admin_secret_throttled_total{}": 1}},
		{"reload success", func(m *Metrics) { m.ConfigReload(ReloadSuccess) },
			map[string]float64{"config_reloads_total{result=success}": 1}},
		{"reload error", func(m *Metrics) { m.ConfigReload(ReloadError) },
			map[string]float64{"config_reloads_total{result=error}": 1}},
		{"reload result folds to other", func(m *Metrics) { m.ConfigReload("ok") },
			map[string]float64{"config_reloads_total{result=other}": 1}},
		{"config loaded", func(m *Metrics) { m.ConfigLoaded(time.Unix(1_700_000_000, 500_000_000)) },
			map[string]float64{"config_last_reload_success_timestamp_seconds{}": 1_700_000_000.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := New(reg)
			before := snapshot(t, reg)
			tt.do(m)
			got := changes(before, snapshot(t, reg))
			if len(got) != len(tt.want) {
				t.Errorf("changed samples = %v; want %v", got, tt.want)
			}
			for k, want := range tt.want {
				if d := got[k] - want; d > 1e-6 || d < -1e-6 {
					t.Errorf("%s moved by %v; want %v (all changes: %v)", k, got[k], want, got)
				}
			}
		})
	}
	var m *Metrics
	m.RequestNotAllowed(NotAllowedPath)
	m.AdminSecretThrottled()
	m.ConfigReload(ReloadSuccess)
	m.ConfigLoaded(time.Now())
}
