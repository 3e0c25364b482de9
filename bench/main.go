// Command bench measures hasura-auth-proxy against a bare
// httputil.ReverseProxy on loopback (issue 6). Run it with `make bench`
// from the repository root, or `cd bench && go run . -repo ..`.
//
// It starts a JWKS server, a stand-in Hasura (its own process), a bare
// ReverseProxy with the default transport and no authentication (its own
// process: the ceiling), and the real proxy binary built from the
// repository and configured through its normal config file (twice: token
// cache on, and off). It mints RS256 tokens with a real RSA-2048 key and
// drives each target in turn with vegeta, interleaved over several rounds:
// max throughput with one reused token, with 5,000 rotating tokens, with
// every request fully verified (cache off), and a fixed-rate latency run.
// Then it opens idle subscriptions through fresh proxy processes and
// measures RSS per subscription. It prints a table and writes
// results/results.json and results/ratios.png.
//
// Everything listens on 127.0.0.1 only; every child process is stopped
// on return and killed by the kernel if the benchmark dies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	repo     string
	out      string
	rounds   int
	duration time.Duration
	warmup   time.Duration
	conns    int
	rate     int
	tokens   int
	subs     int
	timeout  time.Duration
	// maxForeign is the largest share of CPU other processes may take
	// during a run before it is repeated (once).
	maxForeign float64
	// proxyGOGC, when set, is the GOGC of the proxy processes only.
	proxyGOGC string
	// limits runs the API-limits scenario (limits.go).
	limits bool
	// only, when set, runs that scenario alone.
	only string
}

func main() {
	var (
		o      options
		role   string
		target string
	)
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&role, "role", "", "internal: run as a child role (upstream, bare)")
	fs.StringVar(&target, "target", "", "internal: the bare proxy's upstream URL")
	fs.StringVar(&o.repo, "repo", "..", "repository root to build the proxy from")
	fs.StringVar(&o.out, "out", "results", "directory for results.json and ratios.png")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds per scenario")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each run")
	fs.IntVar(&o.conns, "conns", 32, "connections for the max-throughput runs")
	fs.IntVar(&o.rate, "rate", 2000, "requests/s of the fixed-rate latency run")
	fs.IntVar(&o.tokens, "tokens", 5000, "distinct tokens in the rotating scenario")
	fs.IntVar(&o.subs, "subs", 2000, "idle subscriptions to open (0 skips)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	fs.Float64Var(&o.maxForeign, "max-foreign", 0.15, "repeat a run (once) when other processes took more than this share of the CPU")
	fs.StringVar(&o.proxyGOGC, "proxy-gogc", "", "GOGC for the proxy processes only (empty: inherit)")
	fs.StringVar(&o.only, "only", "", "run only this scenario (reused-token, 5000-tokens, no-cache, latency, limits)")
	fs.BoolVar(&o.limits, "limits", true, "also measure the proxy with API limits (in memory and in Redis) against the proxy without")
	_ = fs.Parse(os.Args[1:])

	if role != "" {
		if err := runRole(role, target); err != nil {
			fmt.Fprintln(os.Stderr, "bench", role+":", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Scenario and target names, as they appear in the table and the JSON.
const (
	scReused   = "reused-token"
	scRotating = "5000-tokens"
	scNoCache  = "no-cache"
	scLatency  = "latency"

	tgDirect    = "direct"
	tgBare      = "bare"
	tgBareTuned = "bare-tuned"
	tgProxy     = "proxy"
)

func run(ctx context.Context, o options, stdout io.Writer) error {
	if o.rounds < 1 || o.rounds > 20 {
		return errors.New("-rounds must be between 1 and 20")
	}
	dir, err := os.MkdirTemp("", "hap-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintln(stdout, "building the proxy from", o.repo)
	bin := filepath.Join(dir, "hasura-auth-proxy")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	build.Dir = o.repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}

	is, err := newIssuer()
	if err != nil {
		return err
	}
	jwksLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	jwksSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: is.Handler()}
	go func() { _ = jwksSrv.Serve(jwksLn) }()
	defer jwksSrv.Close()
	is.URL = "http://" + jwksLn.Addr().String()
	jwksURL := is.JWKSURL()

	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	up, err := startRole(roleUpstream, "", dir)
	if err != nil {
		return err
	}
	procs = append(procs, up)
	if err := waitHTTP(ctx, up, up.url()+"/healthz", 10*time.Second); err != nil {
		return err
	}
	bare, err := startRole(roleBare, up.url(), dir)
	if err != nil {
		return err
	}
	procs = append(procs, bare)
	if err := waitHTTP(ctx, bare, bare.url()+"/healthz", 10*time.Second); err != nil {
		return err
	}
	bareTuned, err := startRole(roleBareTuned, up.url(), dir)
	if err != nil {
		return err
	}
	procs = append(procs, bareTuned)
	if err := waitHTTP(ctx, bareTuned, bareTuned.url()+"/healthz", 10*time.Second); err != nil {
		return err
	}
	pxCache, err := startProxy(ctx, "proxy-cache", bin, dir, up.url(), jwksURL, 10000, o.proxyGOGC)
	if err != nil {
		return err
	}
	procs = append(procs, pxCache)
	pxNoCache, err := startProxy(ctx, "proxy-nocache", bin, dir, up.url(), jwksURL, 0, o.proxyGOGC)
	if err != nil {
		return err
	}
	procs = append(procs, pxNoCache)
	pxRevoked, err := startRevokedProxy(ctx, bin, dir, up.url(), jwksURL, o.proxyGOGC, revokedSessions)
	if err != nil {
		return err
	}
	procs = append(procs, pxRevoked)
	pxLimits, pxRedis, err := startLimitsTargets(ctx, o, bin, dir, up.url(), jwksURL, &procs, stdout)
	if err != nil {
		return err
	}

	rep := &report{Machine: machine(), Settings: settings(o)}
	fmt.Fprintf(stdout, "machine: %d CPUs, %s, %s\n", rep.Machine.NProc, rep.Machine.CPU, rep.Machine.GoVersion)

	// Tokens live 60 s like Clerk's, so every run (and every repeat of a
	// run) gets freshly minted ones: on a busy machine a round can outlast
	// a token.
	fresh := func(n int) ([]string, error) {
		start := time.Now()
		toks, err := is.mintMany(n)
		if err != nil {
			return nil, err
		}
		if d := time.Since(start); d > tokenLife/3 {
			return nil, fmt.Errorf("minting %d tokens took %s: the machine is too busy for tokens that live %s", n, d.Round(time.Second), tokenLife)
		}
		return toks, nil
	}
	runOne := func(round int, scenario, target string, p *proc, ntokens, rate int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if o.only != "" && scenario != o.only {
			return nil
		}
		for _, q := range procs {
			if err := q.exited(); err != nil {
				return err
			}
		}
		spec := loadSpec{url: p.url(), rate: rate, conns: o.conns, warmup: o.warmup, measure: o.duration}
		pids := []int{os.Getpid()}
		for _, q := range procs {
			pids = append(pids, q.pid())
		}
		var st runStats
		var foreign float64
		// A run during which other processes took a large share of the CPU
		// measured them, not the target: run it once more.
		for attempt := 1; attempt <= 2; attempt++ {
			toks, err := fresh(ntokens)
			if err != nil {
				return err
			}
			spec.tokens = toks
			before, err := sampleCPU(pids)
			if err != nil {
				return err
			}
			st = runLoad(spec)
			after, err := sampleCPU(pids)
			if err != nil {
				return err
			}
			if foreign = foreignShare(before, after); foreign <= o.maxForeign {
				break
			}
			if attempt == 1 {
				fmt.Fprintf(stdout, "round %d %-13s %-10s disturbed: %.0f%% of the CPU went to other processes; running it again\n",
					round, scenario, target, 100*foreign)
			}
		}
		st.ForeignCPU = foreign
		if foreign > o.maxForeign {
			st.Note = strings.TrimPrefix(st.Note+fmt.Sprintf("; disturbed: %.0f%% foreign CPU", 100*foreign), "; ")
		}
		hwm, _, err := memKB(p.pid())
		if err != nil {
			return err
		}
		r := runRecord{Round: round, Scenario: scenario, Target: target, runStats: st, PeakRSSKB: hwm}
		rep.Runs = append(rep.Runs, r)
		fmt.Fprintf(stdout, "round %d %-13s %-10s %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d  peak RSS %5.1f MiB  foreign CPU %2.0f%%\n",
			round, scenario, target, st.RPS, st.P50ms, st.P99ms, st.Errors, float64(hwm)/1024, 100*foreign)
		if st.ErrSample != "" {
			fmt.Fprintln(stdout, "    first error:", st.ErrSample)
		}
		if st.Note != "" {
			fmt.Fprintln(stdout, "    note:", st.Note)
		}
		return nil
	}
	// Alternate the order of targets between rounds so drift (thermal,
	// other load) does not favour one of them.
	order := func(round int, ts ...string) []string {
		if round%2 == 1 {
			for i, j := 0, len(ts)-1; i < j; i, j = i+1, j-1 {
				ts[i], ts[j] = ts[j], ts[i]
			}
		}
		return ts
	}
	byName := map[string]*proc{tgDirect: up, tgBare: bare, tgBareTuned: bareTuned}

	for round := 1; round <= o.rounds; round++ {
		byName[tgProxy] = pxCache
		for _, t := range order(round, tgDirect, tgBare, tgBareTuned, tgProxy) {
			if err := runOne(round, scReused, t, byName[t], 1, 0); err != nil {
				return err
			}
		}
		for _, t := range order(round, tgBare, tgProxy) {
			if err := runOne(round, scRotating, t, byName[t], o.tokens, 0); err != nil {
				return err
			}
		}
		byName[tgProxy] = pxNoCache
		for _, t := range order(round, tgBare, tgProxy) {
			if err := runOne(round, scNoCache, t, byName[t], 1, 0); err != nil {
				return err
			}
		}
		byName[tgProxy] = pxCache
		for _, t := range order(round, tgBare, tgProxy) {
			if err := runOne(round, scLatency, t, byName[t], 1, o.rate); err != nil {
				return err
			}
		}
		byName[tgProxyRevoked] = pxRevoked
		for _, t := range order(round, tgProxy, tgProxyRevoked) {
			if err := runOne(round, scRevoked, t, byName[t], 1, 0); err != nil {
				return err
			}
		}
		if pxLimits != nil {
			byName[tgLimitsMem], byName[tgLimitsRedis] = pxLimits, pxRedis
			targets := []string{tgProxy, tgLimitsMem}
			if pxRedis != nil {
				targets = append(targets, tgLimitsRedis)
			}
			for _, t := range order(round, targets...) {
				if err := runOne(round, scLimits, t, byName[t], 1, 0); err != nil {
					return err
				}
			}
		}
	}
	const hits, misses = "hasura_auth_proxy_token_cache_hits_total", "hasura_auth_proxy_token_cache_misses_total"
	if c, err := counters(ctx, pxCache, hits, misses); err == nil {
		rep.CacheHits, rep.CacheMisses = c[hits], c[misses]
		fmt.Fprintf(stdout, "token cache of the proxy over all cache-on runs: %.0f hits, %.0f misses\n", c[hits], c[misses])
	} else {
		fmt.Fprintln(stdout, "token cache counters not read:", err)
	}
	for _, p := range []*proc{pxCache, pxNoCache, pxRevoked, bare, bareTuned} {
		hwm, _, err := memKB(p.pid())
		if err != nil {
			return err
		}
		rep.PeakRSS = append(rep.PeakRSS, peakRSS{Process: p.name, PeakKB: hwm})
	}

	if o.subs > 0 {
		// Fresh processes: RSS freed after the load runs would otherwise
		// be reused by the subscriptions and hide their cost.
		pxCache.stop()
		pxNoCache.stop()
		pxRevoked.stop()
		bare.stop()
		bareTuned.stop()
		for _, name := range []string{tgBare, tgProxy} {
			tok, err := fresh(1)
			if err != nil {
				return err
			}
			var p *proc
			if name == tgBare {
				p, err = startRole(roleBare, up.url(), dir)
				if err == nil {
					err = waitHTTP(ctx, p, p.url()+"/healthz", 10*time.Second)
				}
			} else {
				p, err = startProxy(ctx, "proxy-subs", bin, dir, up.url(), jwksURL, 10000, o.proxyGOGC)
			}
			if p != nil {
				procs = append(procs, p)
			}
			if err != nil {
				return err
			}
			sr := measureSubs(ctx, name, p, up, tok[0], o.subs)
			rep.Subs = append(rep.Subs, sr)
			fmt.Fprintf(stdout, "subscriptions %-7s opened %d  RSS %6.1f -> %6.1f MiB  %6.1f KiB each %s\n", name, sr.Opened,
				float64(sr.RSSBefKB)/1024, float64(sr.RSSAftKB)/1024, sr.PerSubKB, sr.Error)
			p.stop()
		}
	}

	rep.summarize()
	rep.printTable(stdout)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if err := rep.writeJSON(filepath.Join(o.out, "results.json")); err != nil {
		return err
	}
	if err := writeChart(filepath.Join(o.out, "ratios.png"), rep.chartTitle(), rep.bars()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(o.out, "results.json"), filepath.Join(o.out, "ratios.png"))
	return nil
}
