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
// (Clerk session tokens have none), logging at warn (no access log).
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
log:
  level: warn
`, listen, ops, upstream, jwksURL, benchIssuer, benchAZP, cacheSize)
}

// startProxy runs the proxy binary with a config file written to dir and
// waits for /readyz.
func startProxy(ctx context.Context, name, bin, dir, upstream, jwksURL string, cacheSize int) (*proc, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ops, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(proxyConfig(listen, ops, upstream, jwksURL, cacheSize)), 0o600); err != nil {
		return nil, err
	}
	p, err := start(name, exec.Command(bin, "-config", cfg), listen, filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, "http://"+ops+"/readyz", 20*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}
