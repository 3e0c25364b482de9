package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := percentile(lat, tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v; want %v", tt.q, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
}

// TestSummarize: ratios pair each proxy run with the bare run of the same
// round, medians are taken over rounds, and verdicts follow the targets.
func TestSummarize(t *testing.T) {
	r := &report{
		PeakRSS: []peakRSS{{Process: "proxy-cache", PeakKB: 70 << 10}, {Process: "bare", PeakKB: 100 << 10}},
		Subs:    []subsResult{{Target: tgProxy, Opened: 2000, PerSubKB: 40}},
	}
	add := func(round int, sc, tg string, rps, p99 float64, errs int) {
		r.Runs = append(r.Runs, runRecord{Round: round, Scenario: sc, Target: tg,
			runStats: runStats{Requests: 100, RPS: rps, P99ms: p99, Errors: errs}})
	}
	for round, bare := range []float64{1000, 2000, 4000} {
		add(round, scReused, tgBare, bare, 5, 0)
		add(round, scReused, tgProxy, bare*[]float64{1.1, 0.9, 1.5}[round], 5, 0)
		add(round, scNoCache, tgBare, bare, 5, 0)
		add(round, scNoCache, tgProxy, bare*0.5, 5, 1)
		add(round, scLatency, tgBare, 2000, 4, 0)
		add(round, scLatency, tgProxy, 2000, 4.5, 0)
	}
	r.summarize()
	var reused summaryRow
	for _, s := range r.Summary {
		if s.Scenario == scReused && s.Target == tgProxy {
			reused = s
		}
	}
	if reused.Ratio < 1.0999 || reused.Ratio > 1.1001 || reused.RatioMin != 0.9 || reused.RatioMax != 1.5 {
		t.Errorf("reused ratio %v (%v-%v); want median 1.1, range 0.9-1.5", reused.Ratio, reused.RatioMin, reused.RatioMax)
	}
	want := map[string]bool{
		"reused token":           true,
		"every request verified": false,
		"p99 added":              true,
		"peak RSS":               false,
		"idle proxied":           true,
		"no errors":              false,
	}
	for prefix, met := range want {
		found := false
		for _, v := range r.Verdicts {
			if strings.Contains(v.Target, prefix) {
				found = true
				if v.Met != met {
					t.Errorf("%s: met %v; want %v (%s)", v.Target, v.Met, met, v.Measured)
				}
			}
		}
		if !found {
			t.Errorf("no verdict for %q", prefix)
		}
	}
	if err := writeChart(filepath.Join(t.TempDir(), "c.png"), "test", r.bars()); err != nil {
		t.Fatal(err)
	}
}
