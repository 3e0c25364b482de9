package main

// The demo's in-process servers (the fake Clerk, the Hasura stand-in) and
// the watcher that reads the proxy's bound addresses from its log.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// startupWatcher holds the proxy's log until release, then passes it
// through to w, and reports the bound addresses of its "starting" line
// (serve documents that line for port 0), in the JSON or the console format.
// The held starting line loses its effective configuration (the demo prints
// the configuration file's path instead): the first screen stays readable.
type startupWatcher struct {
	w        io.Writer
	started  chan demoAddrs
	mu       sync.Mutex
	partial  []byte
	seen     bool
	held     []byte
	released bool
}

func newStartupWatcher(w io.Writer) *startupWatcher {
	return &startupWatcher{w: w, started: make(chan demoAddrs, 1)}
}

func (s *startupWatcher) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := p
	if !s.seen {
		s.partial = append(s.partial, p...)
		out = nil
		for {
			i := bytes.IndexByte(s.partial, '\n')
			if i < 0 {
				break
			}
			line := s.partial[:i+1]
			s.partial = s.partial[i+1:]
			if a, short, ok := parseStartingLine(line); ok && !s.seen {
				s.seen = true
				s.started <- a
				line = short
			}
			out = append(out, line...)
		}
		if s.seen {
			out = append(out, s.partial...)
			s.partial = nil
		} else if len(s.partial) > 1<<16 {
			out = append(out, s.partial...)
			s.partial = nil
		}
	}
	if !s.released {
		s.held = append(s.held, out...)
		return len(p), nil
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// release writes what was held and passes everything after it through.
func (s *startupWatcher) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	held := append(s.held, s.partial...)
	s.held, s.partial = nil, nil
	if s.seen || len(held) > 0 {
		_, _ = s.w.Write(held)
	}
}

// parseStartingLine recognises serve's "starting" line, JSON or console
// ("TIME\tLEVEL\tmain\tstarting\t{fields}"), and returns the bound
// addresses and the line without its config field.
func parseStartingLine(line []byte) (demoAddrs, []byte, bool) {
	var fields map[string]json.RawMessage
	prefix, body := []byte(nil), bytes.TrimSpace(line)
	if json.Unmarshal(body, &fields) != nil {
		parts := bytes.Split(body, []byte("\t"))
		if len(parts) < 5 || string(parts[3]) != "starting" || json.Unmarshal(parts[len(parts)-1], &fields) != nil {
			return demoAddrs{}, nil, false
		}
		prefix = bytes.Join(parts[:len(parts)-1], []byte("\t"))
	} else if string(fields["msg"]) != `"starting"` {
		return demoAddrs{}, nil, false
	}
	var a demoAddrs
	if json.Unmarshal(fields["listen"], &a.listen) != nil || json.Unmarshal(fields["ops_listen"], &a.ops) != nil ||
		a.listen == "" || a.ops == "" {
		return demoAddrs{}, nil, false
	}
	delete(fields, "config")
	b, err := json.Marshal(fields)
	if err != nil {
		return a, line, true
	}
	if prefix != nil {
		b = append(append(prefix, '\t'), b...)
	}
	return a, append(b, '\n'), true
}

// demoWaitReady polls the proxy's /readyz until it answers 200: the keys are
// fetched and the stand-in answers. It gives up after demoReadyTimeout, when
// ctx ends, or when the proxy stops (served).
func demoWaitReady(ctx context.Context, url string, served chan error) error {
	ctx, cancel := context.WithTimeout(ctx, demoReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = strings.TrimSpace(string(b))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proxy not ready within %s: %s", demoReadyTimeout, last)
		case e := <-served:
			served <- e
			return fmt.Errorf("proxy stopped before it was ready: %v", e)
		case <-tick.C:
		}
	}
}

// demoServers runs the demo's in-process servers on 127.0.0.1 and stops
// them all.
type demoServers struct {
	servers []*http.Server
	done    []chan error
	hooks   []func()
}

// start serves h on an ephemeral 127.0.0.1 port and returns its base URL.
func (d *demoServers) start(name string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- serveUntilClosed(srv, ln) }()
	d.servers = append(d.servers, srv)
	d.done = append(d.done, done)
	return "http://" + ln.Addr().String(), nil
}

// onStop runs f when the servers stop (for hijacked connections, which
// Shutdown does not track).
func (d *demoServers) onStop(f func()) { d.hooks = append(d.hooks, f) }

func (d *demoServers) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range d.hooks {
		f()
	}
	var errs []error
	for i, srv := range d.servers {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		errs = append(errs, <-d.done[i])
	}
	return errors.Join(errs...)
}

// newDemoIssuer is the token issuer playing Clerk's Frontend API for the
// demo (internal/fake's Clerk): one RSA key, its JWKS, and GET /token
// minting the demo's defaults. Pages on other origins (the demo page, a
// local app) fetch tokens, so it answers with Hasura's default CORS.
// Whoever serves its Handler sets its URL.
func newDemoIssuer() (*fake.Clerk, error) {
	return fake.NewClerk(
		fake.WithKIDPrefix("ins_demo"),
		fake.WithCacheControl("public, max-age=300"),
		fake.WithClerkCORS(),
		fake.WithTokenDefaults(fake.TokenDefaults{AZP: demoAZP, TTL: demoDefaultTTL, MaxTTL: demoMaxTTL}),
	)
}

// demoHasura stands in for Hasura with HASURA_GRAPHQL_ADMIN_SECRET set
// (internal/fake's Hasura): it refuses requests without the right admin
// secret, as Hasura does, and answers every query and subscription with
// the session it received, events subscription events interval apart (the
// page's live one until it stops). It answers with Hasura's default CORS
// ("*"): a preflight sent straight to the stand-in gets 204, not 405. It
// keeps no record of what it received. It is safe for concurrent use.
type demoHasura struct {
	secret   string
	events   int           // subscription events per subscription
	interval time.Duration // between events

	once sync.Once
	h    *fake.Hasura
}

func (d *demoHasura) standIn() *fake.Hasura {
	d.once.Do(func() {
		d.h = fake.NewHasura(
			fake.WithAdminSecret(d.secret),
			fake.WithEvents(d.events, d.interval),
			fake.WithLiveOperation(demoLiveOperation),
			fake.WithHasuraCORS(),
			fake.WithRecordLimit(0),
		)
	})
	return d.h
}

func (d *demoHasura) handler() http.Handler { return d.standIn().Handler() }

// closeAll closes every WebSocket and waits for their handlers.
func (d *demoHasura) closeAll() { d.standIn().Close() }
