package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// runRecord is one measured run.
type runRecord struct {
	Round    int    `json:"round"`
	Scenario string `json:"scenario"`
	Target   string `json:"target"`
	runStats
	// PeakRSSKB is the target process's VmHWM after the run.
	PeakRSSKB int64 `json:"peak_rss_kib"`
}

// summaryRow aggregates one (scenario, target) over the rounds: medians
// of rps and latencies, summed errors, the largest peak RSS.
type summaryRow struct {
	Scenario  string  `json:"scenario"`
	Target    string  `json:"target"`
	RPS       float64 `json:"rps_median"`
	P50ms     float64 `json:"p50_ms_median"`
	P99ms     float64 `json:"p99_ms_median"`
	Errors    int     `json:"errors"`
	Requests  int     `json:"requests"`
	PeakRSSKB int64   `json:"peak_rss_kib"`
	// Ratio is the median over rounds of rps / the bare proxy's rps in
	// the same round and scenario (1 for the bare proxy).
	Ratio    float64 `json:"ratio_to_bare_median"`
	RatioMin float64 `json:"ratio_to_bare_min"`
	RatioMax float64 `json:"ratio_to_bare_max"`
	// P99AddedMs is the median over rounds of p99 - the bare proxy's p99.
	P99AddedMs float64 `json:"p99_added_ms_median"`
}

// verdict is one issue-6 target and whether this run met it.
type verdict struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

type peakRSS struct {
	Process string `json:"process"`
	PeakKB  int64  `json:"peak_rss_kib"`
}

type machineInfo struct {
	NProc      int    `json:"nproc"`
	CPU        string `json:"cpu"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Date       string `json:"date"`
}

type report struct {
	Machine  machineInfo       `json:"machine"`
	Settings map[string]string `json:"settings"`
	Runs     []runRecord       `json:"runs"`
	Summary  []summaryRow      `json:"summary"`
	PeakRSS  []peakRSS         `json:"peak_rss"`
	Subs     []subsResult      `json:"idle_subscriptions"`
	// CacheHits and CacheMisses are the cache-on proxy's token cache
	// counters after every load run (warm-ups included).
	CacheHits   float64   `json:"token_cache_hits"`
	CacheMisses float64   `json:"token_cache_misses"`
	Verdicts    []verdict `json:"targets"`
}

func machine() machineInfo {
	m := machineInfo{NProc: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		Date: time.Now().UTC().Format(time.RFC3339)}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func settings(o options) map[string]string {
	return map[string]string{
		"rounds": fmt.Sprint(o.rounds), "duration": o.duration.String(), "warmup": o.warmup.String(),
		"connections": fmt.Sprint(o.conns), "fixed_rate": fmt.Sprintf("%d/s", o.rate),
		"rotating_tokens": fmt.Sprint(o.tokens), "subscriptions": fmt.Sprint(o.subs),
		"max_foreign_cpu": fmt.Sprint(o.maxForeign), "proxy_gogc": o.proxyGOGC,
		"load_generator": "vegeta v12.13.0 (library), HTTP/1.1 keep-alive",
		"request":        "POST /v1/graphql, GraphQL JSON body, Authorization: Bearer <RS256-2048 Clerk-like token>",
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize fills Summary and Verdicts from Runs, PeakRSS and Subs.
func (r *report) summarize() {
	type key struct{ sc, tg string }
	bare := map[key]runRecord{} // (scenario, round) -> the scenario's baseline run
	for _, x := range r.Runs {
		if x.Target == baseline(x.Scenario) {
			bare[key{x.Scenario, fmt.Sprint(x.Round)}] = x
		}
	}
	var order []key
	groups := map[key][]runRecord{}
	for _, x := range r.Runs {
		k := key{x.Scenario, x.Target}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], x)
	}
	r.Summary = nil
	for _, k := range order {
		g := groups[k]
		row := summaryRow{Scenario: k.sc, Target: k.tg}
		var rps, p50, p99, ratio, added []float64
		for _, x := range g {
			rps, p50, p99 = append(rps, x.RPS), append(p50, x.P50ms), append(p99, x.P99ms)
			row.Errors += x.Errors
			row.Requests += x.Requests
			row.PeakRSSKB = max(row.PeakRSSKB, x.PeakRSSKB)
			if b, ok := bare[key{x.Scenario, fmt.Sprint(x.Round)}]; ok && b.RPS > 0 {
				ratio = append(ratio, x.RPS/b.RPS)
				added = append(added, x.P99ms-b.P99ms)
			}
		}
		row.RPS, row.P50ms, row.P99ms = median(rps), median(p50), median(p99)
		row.Ratio, row.P99AddedMs = median(ratio), median(added)
		if len(ratio) > 0 {
			row.RatioMin, row.RatioMax = slices.Min(ratio), slices.Max(ratio)
		}
		r.Summary = append(r.Summary, row)
	}

	r.Verdicts = nil
	find := func(sc, tg string) (summaryRow, bool) {
		for _, s := range r.Summary {
			if s.Scenario == sc && s.Target == tg {
				return s, true
			}
		}
		return summaryRow{}, false
	}
	for _, t := range []struct {
		sc, what string
		min      float64
	}{
		{scReused, "reused token: throughput >= 1.0x bare", 1.0},
		{scRotating, "5,000 rotating tokens, cache on: >= 0.95x bare", 0.95},
		{scNoCache, "every request verified (cache off): >= 0.7x bare", 0.7},
	} {
		if s, ok := find(t.sc, tgProxy); ok {
			r.Verdicts = append(r.Verdicts, verdict{Target: t.what, Met: s.Ratio >= t.min,
				Measured: fmt.Sprintf("%.2fx (rounds %.2f-%.2f)", s.Ratio, s.RatioMin, s.RatioMax)})
		}
	}
	for _, t := range []struct {
		tg, what string
		min      float64
	}{
		{tgLimitsMem, "api limits, in-memory rate limit: >= 0.9x the proxy without limits", 0.9},
		{tgLimitsRedis, "api limits, rate limit in Redis: >= 0.7x the proxy without limits", 0.7},
	} {
		if s, ok := find(scLimits, t.tg); ok {
			r.Verdicts = append(r.Verdicts, verdict{Target: t.what, Met: s.Ratio >= t.min,
				Measured: fmt.Sprintf("%.2fx (rounds %.2f-%.2f)", s.Ratio, s.RatioMin, s.RatioMax)})
		}
	}
	if s, ok := find(scLatency, tgProxy); ok {
		r.Verdicts = append(r.Verdicts, verdict{Target: "p99 added at the fixed rate <= 1 ms", Met: s.P99AddedMs <= 1,
			Measured: fmt.Sprintf("%+.2f ms (proxy p99 %.2f ms)", s.P99AddedMs, s.P99ms)})
	}
	var peak int64
	for _, p := range r.PeakRSS {
		if strings.HasPrefix(p.Process, "proxy") {
			peak = max(peak, p.PeakKB)
		}
	}
	if peak > 0 {
		r.Verdicts = append(r.Verdicts, verdict{Target: "peak RSS under the throughput runs <= 64 MiB", Met: peak <= 64<<10,
			Measured: fmt.Sprintf("%.1f MiB", float64(peak)/1024)})
	}
	for _, s := range r.Subs {
		if s.Target != tgProxy {
			continue
		}
		v := verdict{Target: "idle proxied subscription <= 64 KiB", Met: s.Error == "" && s.PerSubKB <= 64,
			Measured: fmt.Sprintf("%.1f KiB each (%d open)", s.PerSubKB, s.Opened)}
		if s.Error != "" {
			v.Measured = "not measured: " + s.Error
		}
		r.Verdicts = append(r.Verdicts, v)
	}
	if v, ok := r.revocationVerdict(); ok {
		r.Verdicts = append(r.Verdicts, v)
	}
	errs := 0
	for _, s := range r.Summary {
		errs += s.Errors
	}
	r.Verdicts = append(r.Verdicts, verdict{Target: "no errors (every answer is the stand-in's success body)",
		Met: errs == 0, Measured: fmt.Sprintf("%d errors", errs)})
}

func (r *report) printTable(w io.Writer) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\treq/s\tp50 ms\tp99 ms\tratio\tp99 added ms\terrors\tpeak RSS MiB\t")
	for _, s := range r.Summary {
		ratio, added := "-", "-"
		if s.Target != baseline(s.Scenario) {
			ratio = fmt.Sprintf("%.2fx", s.Ratio)
			added = fmt.Sprintf("%+.2f", s.P99AddedMs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t%d\t%.1f\t\n", s.Scenario, s.Target, s.RPS, s.P50ms, s.P99ms,
			ratio, added, s.Errors, float64(s.PeakRSSKB)/1024)
	}
	_ = tw.Flush()
	if len(r.Subs) > 0 {
		fmt.Fprintln(w)
		for _, s := range r.Subs {
			fmt.Fprintf(w, "idle subscriptions via %-5s: %d open, %.1f KiB each %s\n", s.Target, s.Opened, s.PerSubKB, s.Error)
		}
	}
	fmt.Fprintln(w)
	for _, v := range r.Verdicts {
		mark := "MET   "
		if !v.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "%s %-58s %s\n", mark, v.Target, v.Measured)
	}
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *report) bars() []bar {
	var out []bar
	for _, t := range []struct {
		sc, label string
		min       float64
	}{
		{scReused, "reused token", 1.0},
		{scRotating, "5,000 tokens (cache)", 0.95},
		{scNoCache, "cache off (RS256 each)", 0.7},
	} {
		for _, s := range r.Summary {
			if s.Scenario == t.sc && s.Target == tgProxy {
				out = append(out, bar{label: t.label, ratio: s.Ratio, target: t.min})
			}
		}
	}
	return out
}

func (r *report) chartTitle() string {
	return fmt.Sprintf("hasura-auth-proxy throughput / bare httputil.ReverseProxy (%d CPUs, %s, %s)",
		r.Machine.NProc, r.Machine.CPU, runtime.Version())
}
