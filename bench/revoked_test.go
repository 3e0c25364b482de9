package main

import "testing"

func TestRevocationVerdict(t *testing.T) {
	run := func(round int, target string, rps float64) runRecord {
		return runRecord{Round: round, Scenario: scRevoked, Target: target, runStats: runStats{RPS: rps}}
	}
	tests := []struct {
		name    string
		runs    []runRecord
		wantMet bool
		want    string
	}{
		{"within 2%", []runRecord{run(1, tgProxy, 1000), run(1, tgProxyRevoked, 990), run(2, tgProxy, 1000), run(2, tgProxyRevoked, 1010)},
			true, "1.000x (rounds 0.990-1.010)"},
		{"3% slower", []runRecord{run(1, tgProxy, 1000), run(1, tgProxyRevoked, 970)}, false, "0.970x (rounds 0.970-0.970)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{Runs: tt.runs}
			v, ok := r.revocationVerdict()
			if !ok || v.Met != tt.wantMet || v.Measured != tt.want {
				t.Errorf("verdict = %+v, %v; want met %v, measured %q", v, ok, tt.wantMet, tt.want)
			}
		})
	}
	if _, ok := (&report{}).revocationVerdict(); ok {
		t.Error("a verdict without revocation runs")
	}
}
