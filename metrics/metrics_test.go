package metrics

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.prom from the current metrics")

const prefix = Namespace + "_"

// snapshot returns every hasura_auth_proxy_ sample reg holds, keyed by
// name{labels}: counter and gauge values, and for histograms the observation
// count under the name and the sum under name_sum.
func snapshot(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather = %v; want nil", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
			}
			key := strings.TrimPrefix(mf.GetName(), prefix) + "{" + strings.Join(pairs, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
				got[strings.Replace(key, "{", "_sum{", 1)] = m.GetHistogram().GetSampleSum()
			default:
				t.Fatalf("%s type = %v; want counter, gauge or histogram", key, mf.GetType())
			}
		}
	}
	return got
}

// changes returns the samples whose value differs between before and after
// (a sample absent from before counts as 0 there).
func changes(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d[k] = -before[k]
		}
	}
	return d
}

func TestMethodsMoveExactlyTheirSeries(t *testing.T) {
	tests := []struct {
		name  string
		setup func(m *Metrics)
		do    func(m *Metrics)
		want  map[string]float64 // delta per sample; every other sample must stay put
	}{
		{
			name: "request graphql 200",
			do:   func(m *Metrics) { m.ObserveRequest(EndpointGraphQL, 200, 2*time.Millisecond) },
			want: map[string]float64{
				"requests_total{code=200,endpoint=graphql}":      1,
				"request_duration_seconds{endpoint=graphql}":     1,
				"request_duration_seconds_sum{endpoint=graphql}": 0.002,
			},
		},
		{
			name: "request relay 401",
			do:   func(m *Metrics) { m.ObserveRequest(EndpointRelay, 401, time.Second) },
			want: map[string]float64{
				"requests_total{code=401,endpoint=relay}":      1,
				"request_duration_seconds{endpoint=relay}":     1,
				"request_duration_seconds_sum{endpoint=relay}": 1,
			},
		},
		{
			name: "request unknown endpoint and status fold to other",
			do:   func(m *Metrics) { m.ObserveRequest("/v1/graphql?evil=1", 418, 3*time.Second) },
			want: map[string]float64{
				"requests_total{code=other,endpoint=other}":    1,
				"request_duration_seconds{endpoint=other}":     1,
				"request_duration_seconds_sum{endpoint=other}": 3,
			},
		},
		{
			name: "request endpoint is case sensitive",
			do:   func(m *Metrics) { m.ObserveRequest("GraphQL", 503, 0) },
			want: map[string]float64{
				"requests_total{code=503,endpoint=other}":  1,
				"request_duration_seconds{endpoint=other}": 1,
			},
		},
		{
			name: "auth allowed ok",
			do:   func(m *Metrics) { m.AuthDecision(ResultAllowed, ReasonOK) },
			want: map[string]float64{"auth_decisions_total{reason=ok,result=allowed}": 1},
		},
		{
			name: "auth denied expired",
			do:   func(m *Metrics) { m.AuthDecision(ResultDenied, ReasonExpired) },
			want: map[string]float64{"auth_decisions_total{reason=expired,result=denied}": 1},
		},
		{
			name: "auth denied admin secret disabled",
			do:   func(m *Metrics) { m.AuthDecision(ResultDenied, ReasonAdminSecretDisabled) },
			want: map[string]float64{"auth_decisions_total{reason=admin_secret_disabled,result=denied}": 1},
		},
		{
			name: "auth unknown result and reason fold to other",
			do:   func(m *Metrics) { m.AuthDecision("eyJhbGciOiJub25lIn0", "kid=../../etc/passwd\n") },
			want: map[string]float64{"auth_decisions_total{reason=other,result=other}": 1},
		},
		{
			name: "verify duration",
			do:   func(m *Metrics) { m.ObserveVerify(35 * time.Microsecond) },
			want: map[string]float64{
				"token_verify_duration_seconds{}":     1,
				"token_verify_duration_seconds_sum{}": 0.000035,
			},
		},
		{
			name: "jwks refresh success",
			do:   func(m *Metrics) { m.JWKSRefresh("clerk", JWKSSuccess) },
			want: map[string]float64{"jwks_refresh_total{issuer=clerk,result=success}": 1},
		},
		{
			name: "jwks refresh unknown result folds to other",
			do:   func(m *Metrics) { m.JWKSRefresh("clerk", "dial tcp: refused") },
			want: map[string]float64{"jwks_refresh_total{issuer=clerk,result=other}": 1},
		},
		{
			name: "jwks keys",
			do:   func(m *Metrics) { m.JWKSKeys("clerk", 3) },
			want: map[string]float64{"jwks_keys{issuer=clerk}": 3},
		},
		{
			name: "jwks last success",
			do:   func(m *Metrics) { m.JWKSLastSuccess("clerk", time.Unix(1700000000, 500_000_000)) },
			want: map[string]float64{"jwks_last_success_timestamp_seconds{issuer=clerk}": 1700000000.5},
		},
		{
			name: "jwks stale",
			do:   func(m *Metrics) { m.JWKSStale("clerk", true) },
			want: map[string]float64{"jwks_stale{issuer=clerk}": 1},
		},
		{
			name:  "jwks no longer stale",
			setup: func(m *Metrics) { m.JWKSStale("clerk", true) },
			do:    func(m *Metrics) { m.JWKSStale("clerk", false) },
			want:  map[string]float64{"jwks_stale{issuer=clerk}": -1},
		},
		{
			name: "upstream timeout",
			do:   func(m *Metrics) { m.UpstreamError(UpstreamTimeout) },
			want: map[string]float64{"upstream_errors_total{kind=timeout}": 1},
		},
		{
			name: "upstream guard refused",
			do:   func(m *Metrics) { m.UpstreamError(UpstreamGuardRefused) },
			want: map[string]float64{"upstream_errors_total{kind=guard_refused}": 1},
		},
		{
			name: "upstream unknown kind folds to other",
			do:   func(m *Metrics) { m.UpstreamError("ECONNREFUSED 10.0.0.1") },
			want: map[string]float64{"upstream_errors_total{kind=other}": 1},
		},
		{
			name: "websocket opened",
			do:   func(m *Metrics) { m.WebSocketOpened() },
			want: map[string]float64{"websocket_connections{}": 1},
		},
		{
			name:  "websocket closed at exp",
			setup: func(m *Metrics) { m.WebSocketOpened() },
			do:    func(m *Metrics) { m.WebSocketClosed(CloseTokenExpired) },
			want: map[string]float64{
				"websocket_connections{}":                      -1,
				"websocket_closed_total{reason=token_expired}": 1,
			},
		},
		{
			name:  "websocket closed for unknown reason folds to other",
			setup: func(m *Metrics) { m.WebSocketOpened() },
			do:    func(m *Metrics) { m.WebSocketClosed("4403: Forbidden") },
			want: map[string]float64{
				"websocket_connections{}":              -1,
				"websocket_closed_total{reason=other}": 1,
			},
		},
		{
			name: "token cache hit",
			do:   func(m *Metrics) { m.TokenCacheHit() },
			want: map[string]float64{"token_cache_hits_total{}": 1},
		},
		{
			name: "token cache miss",
			do:   func(m *Metrics) { m.TokenCacheMiss() },
			want: map[string]float64{"token_cache_misses_total{}": 1},
		},
		{
			name: "token cache evicted",
			do:   func(m *Metrics) { m.TokenCacheEvicted(5) },
			want: map[string]float64{"token_cache_evictions_total{}": 5},
		},
		{
			name: "token cache evicted zero or negative is ignored",
			do:   func(m *Metrics) { m.TokenCacheEvicted(0); m.TokenCacheEvicted(-3) },
			want: map[string]float64{},
		},
		{
			name: "token cache size",
			do:   func(m *Metrics) { m.TokenCacheSize(42) },
			want: map[string]float64{"token_cache_entries{}": 42},
		},
		{
			name: "ready",
			do:   func(m *Metrics) { m.SetReady(true) },
			want: map[string]float64{"ready{}": 1},
		},
		{
			name:  "not ready",
			setup: func(m *Metrics) { m.SetReady(true) },
			do:    func(m *Metrics) { m.SetReady(false) },
			want:  map[string]float64{"ready{}": -1},
		},
		{
			name: "webhook allowed",
			do:   func(m *Metrics) { m.WebhookDecision(WebhookAllowed) },
			want: map[string]float64{"webhook_requests_total{result=allowed}": 1},
		},
		{
			name: "webhook unknown result folds to other",
			do:   func(m *Metrics) { m.WebhookDecision("Allowed") },
			want: map[string]float64{"webhook_requests_total{result=other}": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := New(reg)
			m.InitIssuer("clerk")
			if tt.setup != nil {
				tt.setup(m)
			}
			before := snapshot(t, reg)
			tt.do(m)
			got := changes(before, snapshot(t, reg))
			if len(got) != len(tt.want) {
				t.Errorf("changed samples = %v; want %v", got, tt.want)
			}
			for k, want := range tt.want {
				if d := got[k] - want; d > 1e-9 || d < -1e-9 {
					t.Errorf("%s moved by %v; want %v (all changes: %v)", k, got[k], want, got)
				}
			}
		})
	}
}

func TestNewCreatesClosedSetSeriesAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	tests := []struct {
		name string
		want int
	}{
		{"requests_total", len(Endpoints()) * len(Codes())},
		{"request_duration_seconds", len(Endpoints())},
		{"auth_decisions_total", len(Results()) * len(Reasons())},
		{"token_verify_duration_seconds", 1},
		{"upstream_errors_total", len(UpstreamKinds())},
		{"ready", 1},
		{"websocket_connections", 1},
		{"websocket_closed_total", len(CloseReasons())},
		{"token_cache_hits_total", 1},
		{"token_cache_misses_total", 1},
		{"token_cache_evictions_total", 1},
		{"token_cache_entries", 1},
		{"webhook_requests_total", len(WebhookResults())},
		// No issuer is known before InitIssuer or the first refresh.
		{"jwks_refresh_total", 0},
		{"jwks_keys", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testutil.GatherAndCount(reg, prefix+tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("series = %d; want %d", got, tt.want)
			}
		})
	}
	for k, v := range snapshot(t, reg) {
		if v != 0 {
			t.Errorf("%s = %v after New; want 0", k, v)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s series = %d, %v; want 1 (runtime and process collectors registered)", name, n, err)
		}
	}
}

func TestInitIssuer(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.InitIssuer("clerk")
	m.InitIssuer("1")
	tests := []struct {
		name string
		want int
	}{
		{"jwks_refresh_total", 2 * len(JWKSResults())},
		{"jwks_keys", 2},
		{"jwks_last_success_timestamp_seconds", 2},
		{"jwks_stale", 2},
	}
	for _, tt := range tests {
		if got := testutil.CollectAndCount(vecOf(m, tt.name)); got != tt.want {
			t.Errorf("%s series = %d; want %d", tt.name, got, tt.want)
		}
	}
	if got := testutil.ToFloat64(m.jwksLastSuccess.WithLabelValues("clerk")); got != 0 {
		t.Errorf("last success = %v; want 0 (never)", got)
	}
}

func vecOf(m *Metrics, name string) prometheus.Collector {
	switch name {
	case "jwks_refresh_total":
		return m.jwksRefresh
	case "jwks_keys":
		return m.jwksKeys
	case "jwks_last_success_timestamp_seconds":
		return m.jwksLastSuccess
	default:
		return m.jwksStale
	}
}

// TestHostileValuesNeverBecomeLabels feeds every method values an attacker
// could choose and checks that each label value exposed is in its closed set.
func TestHostileValuesNeverBecomeLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	hostile := []string{"", " ", "OK", "expired ", "other\x00", "a\"b", strings.Repeat("x", 4096), "graphql\n", "ok,reason=x"}
	for _, s := range hostile {
		m.ObserveRequest(s, -1, time.Millisecond)
		m.ObserveRequest(s, 999, time.Millisecond)
		m.AuthDecision(s, s)
		m.AuthDecision(ResultDenied, s)
		m.JWKSRefresh("clerk", s)
		m.UpstreamError(s)
		m.WebSocketOpened()
		m.WebSocketClosed(s)
		m.WebhookDecision(s)
		m.RequestNotAllowed(s)
		m.ConfigReload(s)
	}
	allowed := map[string][]string{
		"endpoint": Endpoints(),
		"code":     Codes(),
		"result":   slices.Concat(Results(), JWKSResults(), WebhookResults(), ReloadResults()),
		"reason":   slices.Concat(Reasons(), CloseReasons(), NotAllowedReasons()),
		"kind":     UpstreamKinds(),
		"issuer":   {"clerk"},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if !slices.Contains(allowed[l.GetName()], l.GetValue()) {
					t.Errorf("%s label %s = %q; want one of %q", mf.GetName(), l.GetName(), l.GetValue(), allowed[l.GetName()])
				}
			}
		}
	}
	if got := testutil.ToFloat64(m.authDecisions[m.results.of(Other)][m.reasons.of(Other)]); got != float64(len(hostile)) {
		t.Errorf("auth_decisions_total{reason=other,result=other} = %v; want %d", got, len(hostile))
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	// Each call would panic on a nil dereference if it were not guarded.
	m.ObserveRequest(EndpointGraphQL, 200, time.Millisecond)
	m.AuthDecision(ResultDenied, ReasonExpired)
	m.ObserveVerify(time.Microsecond)
	m.InitIssuer("clerk")
	m.JWKSRefresh("clerk", JWKSSuccess)
	m.JWKSKeys("clerk", 1)
	m.JWKSLastSuccess("clerk", time.Now())
	m.JWKSStale("clerk", true)
	m.UpstreamError(UpstreamTimeout)
	m.SetReady(true)
	m.WebSocketOpened()
	m.WebSocketClosed(CloseShutdown)
	m.TokenCacheHit()
	m.TokenCacheMiss()
	m.TokenCacheEvicted(1)
	m.TokenCacheSize(1)
	m.WebhookDecision(WebhookAllowed)
}

func TestNewTwiceOnOneRegistryShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := New(reg), New(reg)
	a.TokenCacheHit()
	b.TokenCacheHit()
	if got := testutil.ToFloat64(a.cacheHits); got != 2 {
		t.Errorf("hits = %v; want 2 (both *Metrics count into the registered family)", got)
	}
}

func TestNewWithNilRegistryCounts(t *testing.T) {
	m := New(nil)
	m.UpstreamError(UpstreamCanceled)
	if got := testutil.ToFloat64(m.upstreamErrors[m.upstreamKinds.of(UpstreamCanceled)]); got != 1 {
		t.Errorf("canceled = %v; want 1", got)
	}
}

func TestNewPanicsOnConflictingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: prefix + "requests_total", Help: "not ours"}))
	defer func() {
		if recover() == nil {
			t.Error("New did not panic on a conflicting collector")
		}
	}()
	New(reg)
}

func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				m.ObserveRequest(EndpointGraphQL, 200, time.Millisecond)
				m.AuthDecision(ResultAllowed, ReasonOK)
				m.JWKSRefresh("clerk", JWKSSuccess)
				m.WebSocketOpened()
				m.WebSocketClosed(CloseClientClosed)
				m.TokenCacheSize(i)
			}
		})
	}
	wg.Wait()
	got := snapshot(t, reg)
	for k, want := range map[string]float64{
		"requests_total{code=200,endpoint=graphql}":       workers * each,
		"auth_decisions_total{reason=ok,result=allowed}":  workers * each,
		"jwks_refresh_total{issuer=clerk,result=success}": workers * each,
		"websocket_closed_total{reason=client_closed}":    workers * each,
		"websocket_connections{}":                         0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v; want %v", k, got[k], want)
		}
	}
}

// goldenMetrics records a fixed set of observations, so the golden file pins
// values as well as names, types, labels and help texts.
func goldenMetrics(reg prometheus.Registerer) {
	m := New(reg)
	m.InitIssuer("clerk")
	m.ObserveRequest(EndpointGraphQL, 200, 3*time.Millisecond)
	m.ObserveRequest(EndpointMetadata, 401, 400*time.Microsecond)
	m.AuthDecision(ResultAllowed, ReasonOK)
	m.AuthDecision(ResultDenied, ReasonBadSignature)
	m.ObserveVerify(40 * time.Microsecond)
	m.JWKSRefresh("clerk", JWKSSuccess)
	m.JWKSRefresh("clerk", JWKSError)
	m.JWKSKeys("clerk", 2)
	m.JWKSLastSuccess("clerk", time.Unix(1700000000, 0))
	m.JWKSStale("clerk", true)
	m.UpstreamError(UpstreamUnreachable)
	m.SetReady(true)
	m.WebSocketOpened()
	m.WebSocketOpened()
	m.WebSocketClosed(CloseInitFailed)
	m.TokenCacheHit()
	m.TokenCacheMiss()
	m.TokenCacheEvicted(3)
	m.TokenCacheSize(7)
	m.WebhookDecision(WebhookDenied)
}

func TestGolden(t *testing.T) {
	reg := prometheus.NewRegistry()
	goldenMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// Every family of ours is compared, so a new or renamed one fails until
	// the golden file is updated on purpose.
	var names []string
	var text strings.Builder
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		names = append(names, mf.GetName())
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	golden := filepath.Join("testdata", "golden.prom")
	if *update {
		if err := os.WriteFile(golden, []byte(text.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./metrics -run TestGolden -update to create it)", err)
	}
	t.Cleanup(func() { f.Close() })
	if err := testutil.GatherAndCompare(reg, f, names...); err != nil {
		t.Errorf("gathered metrics differ from %s; want equal (rerun with -update if the change is intended):\n%v", golden, err)
	}
	// The golden file must name every family we export, not a subset.
	raw, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(string(raw), "# TYPE "+n+" ") {
			t.Errorf("%s has no # TYPE line for %s; want one", golden, n)
		}
	}
}

// failingCollector fails every collection, standing in for a broken collector.
type failingCollector struct{ desc *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("broken"))
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name       string
		broken     bool
		wantInBody []string
	}{
		{
			name:       "healthy",
			wantInBody: []string{"hasura_auth_proxy_requests_total{", "go_goroutines ", "process_cpu_seconds_total "},
		},
		{
			name:   "a broken collector does not hide the others",
			broken: true,
			wantInBody: []string{"hasura_auth_proxy_auth_decisions_total{",
				`promhttp_metric_handler_errors_total{cause="gathering"} 1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			New(reg)
			if tt.broken {
				reg.MustRegister(failingCollector{prometheus.NewDesc("broken_metric", "Always fails.", nil, nil)})
			}
			srv := httptest.NewServer(Handler(reg))
			t.Cleanup(srv.Close)
			// Scrape twice: the error counter is exposed by the scrape after the failure.
			var body []byte
			for range 2 {
				resp, err := srv.Client().Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d; want 200; body %s", resp.StatusCode, body)
				}
			}
			for _, want := range tt.wantInBody {
				if !strings.Contains(string(body), want) {
					t.Errorf("body lacks %q", want)
				}
			}
		})
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(EndpointGraphQL, 200, time.Millisecond)
		}
	})
}

func BenchmarkAuthDecision(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.AuthDecision(ResultAllowed, ReasonOK)
	}
}
