package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLimitsRoleLabelsAreClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewLimits(reg, []string{"user", Other, "anonymous"})
	// Every series exists at zero: kinds x (anonymous, user, other).
	if n := testutil.CollectAndCount(reg, Namespace+"_limit_refusals_total"); n != len(limitKindSet)*3 {
		t.Errorf("limit_refusals_total has %d series; want %d", n, len(limitKindSet)*3)
	}
	m.Refused(LimitDepth, "user")
	m.Refused(LimitDepth, "attacker-chosen-role")
	m.Refused(LimitRate, Other)
	m.RedisError(true)
	m.ObserveRedis(0)
	var nilM *Limits
	nilM.Refused(LimitDepth, "user") // a nil *Limits records nothing, without panicking
	for _, tt := range []struct {
		kind, role string
		want       float64
	}{
		{LimitDepth, "user", 1}, {LimitDepth, Other, 1}, {LimitRate, Other, 1}, {LimitRate, "user", 0},
	} {
		v := m.refusals[m.kinds.of(tt.kind)][m.roles.of(tt.role)]
		if got := testutil.ToFloat64(v); got != tt.want {
			t.Errorf("limit_refusals_total{kind=%s,role=%s} = %v; want %v", tt.kind, tt.role, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(reg, Namespace+"_limit_refusals_total"); n != len(limitKindSet)*3 {
		t.Errorf("after refusals: %d series; want still %d (no new role values)", n, len(limitKindSet)*3)
	}
	if got := testutil.ToFloat64(m.redisErr[1]); got != 1 {
		t.Errorf("redis_errors_total{on_error=deny} = %v; want 1", got)
	}
}
