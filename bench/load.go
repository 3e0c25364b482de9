package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadSpec is one measured run against one target.
type loadSpec struct {
	url     string   // the target's base URL
	tokens  []string // rotated per request
	rate    int      // requests/s; 0 is max throughput with conns workers
	conns   int
	warmup  time.Duration
	measure time.Duration
}

// runStats is what one run measured.
type runStats struct {
	Requests  int     `json:"requests"`
	RPS       float64 `json:"rps"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Errors    int     `json:"errors"`
	ErrSample string  `json:"error_sample,omitempty"`
	// Note flags a fixed-rate run that could not keep its rate: the
	// machine (or the target) was saturated, so its latencies measure
	// queueing, not the target.
	Note string `json:"note,omitempty"`
	// ForeignCPU is the share of the machine's CPU that processes other
	// than the benchmark's used during the run.
	ForeignCPU float64 `json:"foreign_cpu_share"`
}

// targeter posts graphqlBody to /v1/graphql, rotating through tokens.
func targeter(base string, tokens []string) vegeta.Targeter {
	headers := make([]http.Header, len(tokens))
	for i, t := range tokens {
		headers[i] = http.Header{
			"Authorization": {"Bearer " + t},
			"Content-Type":  {"application/json"},
			"Accept":        {"application/json"},
		}
	}
	body := []byte(graphqlBody)
	u := base + "/v1/graphql"
	var next atomic.Uint64
	return func(t *vegeta.Target) error {
		i := next.Add(1) - 1
		t.Method, t.URL, t.Body = http.MethodPost, u, body
		t.Header = headers[i%uint64(len(headers))]
		return nil
	}
}

// newClient is the load generator's HTTP/1.1 client: exactly conns
// keep-alive connections.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// runLoad warms the target up, then measures it. Both phases share the
// client, so measured requests run on warm connections.
func runLoad(s loadSpec) runStats {
	client := newClient(s.conns)
	defer client.CloseIdleConnections()
	tr := targeter(s.url, s.tokens)
	attack := func(d time.Duration, record bool) runStats {
		opts := []func(*vegeta.Attacker){vegeta.Client(client), vegeta.KeepAlive(true)}
		pacer := vegeta.Rate{Freq: s.rate, Per: time.Second}
		if s.rate == 0 {
			opts = append(opts, vegeta.Workers(uint64(s.conns)), vegeta.MaxWorkers(uint64(s.conns)))
		} else {
			opts = append(opts, vegeta.Workers(uint64(s.conns)))
		}
		atk := vegeta.NewAttacker(opts...)
		want := []byte(successBody)
		var (
			lat         []time.Duration
			first, last time.Time
			st          runStats
		)
		for r := range atk.Attack(tr, pacer, d, "bench") {
			if !record {
				continue
			}
			st.Requests++
			if first.IsZero() || r.Timestamp.Before(first) {
				first = r.Timestamp
			}
			if end := r.End(); end.After(last) {
				last = end
			}
			lat = append(lat, r.Latency)
			if r.Code != http.StatusOK || !bytes.Equal(r.Body, want) {
				st.Errors++
				if st.ErrSample == "" {
					st.ErrSample = fmt.Sprintf("status %d, error %q, body %.160q", r.Code, r.Error, r.Body)
				}
			}
		}
		if st.Requests == 0 {
			return st
		}
		slices.Sort(lat)
		st.RPS = float64(st.Requests) / last.Sub(first).Seconds()
		st.P50ms = ms(percentile(lat, 0.50))
		st.P99ms = ms(percentile(lat, 0.99))
		if s.rate > 0 && st.RPS < 0.9*float64(s.rate) {
			st.Note = fmt.Sprintf("overloaded: achieved %.0f of %d req/s", st.RPS, s.rate)
		}
		return st
	}
	if s.warmup > 0 {
		attack(s.warmup, false)
	}
	return attack(s.measure, true)
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
