package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process the benchmark owns: it is stopped by stop, and
// killed by the kernel if the benchmark dies first (Pdeathsig).
type proc struct {
	name string
	addr string // host:port it serves on
	ops  string // host:port of the proxy's ops listener (/metrics); empty for other roles
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) url() string { return "http://" + p.addr }

func start(name string, cmd *exec.Cmd, addr, logPath string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, addr: addr, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = lf.Close()
		close(p.done)
	}()
	return p, nil
}

// startRole re-executes this binary as a child role serving on a fresh
// loopback listener, which it inherits as fd 3.
func startRole(role, target, dir string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(self, "-role", role, "-target", target)
	cmd.ExtraFiles = []*os.File{f}
	return start(role, cmd, ln.Addr().String(), filepath.Join(dir, role+".log"))
}

// stop asks the process to exit, then kills it after a grace period.
func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports why the process ended, or nil while it runs.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v (log %s: %s)", p.name, p.err, p.log, tail(p.log, 800))
	default:
		return nil
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// memKB reads VmHWM (peak) and VmRSS (current) of pid, in KiB.
func memKB(pid int) (hwm, rss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmHWM", "VmRSS":
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parse %s %q: %w", k, v, err)
			}
			if k == "VmHWM" {
				hwm = n
			} else {
				rss = n
			}
		}
	}
	return hwm, rss, sc.Err()
}

// freeAddr returns a loopback address nothing listens on right now, for
// the proxy binary, which takes its addresses from its config file.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, p exits, or the deadline passes.
func waitHTTP(ctx context.Context, p *proc, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	var last string
	for {
		if err := p.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s within %s: %s (log: %s)", p.name, url, within, last, tail(p.log, 800))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// proxyConfig is the real proxy's configuration file, in its normal
// format: Clerk-style jwk_url and issuer, azp checked, aud not required
// (Clerk session tokens have none), logging at warn (no access log), and
// no per-user socket cap: the subscription measurement opens every socket
// with one token.
func proxyConfig(listen, ops, upstream, jwksURL string, cacheSize int) string {
	return fmt.Sprintf(`server:
  listen: %q
  ops_listen: %q
upstream:
  url: %q
  admin_secret: "bench-admin-secret-0123456789"
auth:
  jwt_secret:
    jwk_url: %q
    issuer: %q
    allowed_skew: 5
  authorized_parties: [%q]
  require:
    aud: false
  token_cache:
    size: %d
websocket:
  max_connections_per_user: 10000
log:
  level: warn
`, listen, ops, upstream, jwksURL, benchIssuer, benchAZP, cacheSize)
}

// startProxy runs the proxy binary with a config file written to dir (extra
// sections appended) and waits for /readyz.
func startProxy(ctx context.Context, name, bin, dir, upstream, jwksURL string, cacheSize int, gogc string, extra ...string) (*proc, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(proxyConfig(listen, ops, upstream, jwksURL, cacheSize)+strings.Join(extra, "")), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", cfg)
	if gogc != "" {
		cmd.Env = append(os.Environ(), "GOGC="+gogc)
	}
	p, err := start(name, cmd, listen, filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	p.ops = ops
	if err := waitHTTP(ctx, p, "http://"+ops+"/readyz", 20*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// cpuSample is the machine's CPU time and the part of it used by the
// benchmark's own processes, in clock ticks.
type cpuSample struct{ busy, total, ours uint64 }

// sampleCPU reads /proc/stat and the utime+stime of pids.
func sampleCPU(pids []int) (cpuSample, error) {
	var s cpuSample
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return s, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// already inside user and nice). Interrupt time belongs to no process
	// (loopback TCP runs much of it for the benchmark itself), so it is
	// left out of busy; steal is the hypervisor giving the CPU to others.
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return s, err
		}
		s.total += n
		switch i {
		case 0, 1, 2, 7:
			s.busy += n
		}
	}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited
		}
		// Fields after the parenthesised command name; utime and stime
		// are fields 14 and 15 of the whole line.
		_, rest, ok := strings.Cut(string(b), ") ")
		if !ok {
			continue
		}
		g := strings.Fields(rest)
		if len(g) < 13 {
			continue
		}
		for _, v := range g[11:13] {
			n, _ := strconv.ParseUint(v, 10, 64)
			s.ours += n
		}
	}
	return s, nil
}

// foreignShare is the share of all CPU time between a and b used by
// processes other than the benchmark's (other jobs, the hypervisor's
// steal): a disturbed measurement.
func foreignShare(a, b cpuSample) float64 {
	total := float64(b.total - a.total)
	if total <= 0 {
		return 0
	}
	foreign := float64(b.busy-a.busy) - float64(b.ours-a.ours)
	return max(0, foreign/total)
}

// counters reads the named counters (summed over labels) from the proxy's
// /metrics, in the Prometheus text format.
func counters(ctx context.Context, p *proc, names ...string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.ops+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
				f := strings.Fields(line)
				v, err := strconv.ParseFloat(f[len(f)-1], 64)
				if err == nil {
					out[n] += v
				}
			}
		}
	}
	return out, sc.Err()
}
