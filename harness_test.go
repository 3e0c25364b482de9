package main

// The harness of the package main tests: a stand-in Hasura that records what
// it receives and a JWKS server with keys generated in the test (both
// internal/fake's), tokens signed with them, a log sink the tests can wait on, and the proxy itself started
// through run() (in process) or as a built binary (process_test.go), always
// on ephemeral 127.0.0.1 ports.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// waitTimeout bounds every wait of these tests; nothing should come near it.
const waitTimeout = 15 * time.Second

// randomHex returns n random bytes in hex: unique secrets whose appearance
// anywhere in the output is a leak, never a coincidence.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// logSink collects what the proxy writes to stderr and lets a test wait for
// a line. It is safe for concurrent use.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *logSink) snapshot() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String(), s.changed
}

// logEntry is one JSON log line.
type logEntry map[string]any

func (e logEntry) str(k string) string { s, _ := e[k].(string); return s }

// parseEntries parses every complete JSON line of out; other lines (the
// binary's final error line, console output) are skipped.
func parseEntries(out string) []logEntry {
	var es []logEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			es = append(es, e)
		}
	}
	return es
}

// entries returns the JSON lines logged so far.
func (s *logSink) entries() []logEntry { return parseEntries(s.String()) }

// wait returns the first line match accepts, waiting for it up to
// waitTimeout. The proxy exiting (exited closed) ends the wait early.
func (s *logSink) wait(t *testing.T, what string, exited <-chan struct{}, match func(logEntry) bool) logEntry {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for gone := false; ; {
		out, changed := s.snapshot()
		for _, e := range parseEntries(out) {
			if match(e) {
				return e
			}
		}
		if gone {
			t.Fatalf("proxy exited before logging %s; log:\n%s", what, out)
		}
		select {
		case <-changed:
		case <-exited:
			gone = true // one last look at what it wrote
		case <-timer.C:
			t.Fatalf("no log line %s within %s; log:\n%s", what, waitTimeout, s.String())
		}
	}
}

// msgIs matches log lines by message.
func msgIs(msg string) func(logEntry) bool {
	return func(e logEntry) bool { return e.str("msg") == msg }
}

// newFakeHasura is the stand-in Hasura of these tests (internal/fake): it
// records every request but GET /healthz and answers {"data":{"ok":true}};
// ?hang=1 waits until the client goes away; ?slow=1 announces itself on
// Arrived and answers at Release.
func newFakeHasura(t *testing.T) *fake.Hasura {
	t.Helper()
	return fake.StartHasura(t, fake.WithBody(`{"data":{"ok":true}}`))
}

// newSigningKey generates an RSA key to publish under kid.
func newSigningKey(t *testing.T, kid string) fake.Key {
	t.Helper()
	k, err := fake.NewKey(kid)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newFakeJWKS is a JWKS server (internal/fake's Clerk) publishing keys;
// gated holds every fetch until ReleaseJWKS. Its address is JWKSURL.
func newFakeJWKS(t *testing.T, gated bool, keys ...fake.Key) *fake.Clerk {
	t.Helper()
	opts := make([]fake.ClerkOption, 0, len(keys)+1)
	for _, k := range keys {
		opts = append(opts, fake.WithKey(k))
	}
	if gated {
		opts = append(opts, fake.WithJWKSHeld())
	}
	return fake.StartClerk(t, opts...)
}

// Issuers of the two configured secrets.
const (
	rsIssuer = "https://clerk.test"
	hsIssuer = "https://hs.test"
)

// claimsFor returns valid claims for iss with the Hasura claims of a user.
// Each call has its own jti, so no two tokens are equal (and none is
// answered from the verified-token cache).
func claimsFor(iss string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"jti": rand.Text(),
		"iss": iss,
		"sub": "user_2abc",
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"https://hasura.io/jwt/claims": map[string]any{
			"x-hasura-allowed-roles": []string{"user"},
			"x-hasura-default-role":  "user",
			"x-hasura-user-id":       "user_2abc",
		},
	}
}

// signRS signs c with k under its kid, whether or not anything publishes
// k: forged and rotated tokens too.
func signRS(t *testing.T, k fake.Key, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = k.KID
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signHS(t *testing.T, key string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testConfig is what the tests vary in the proxy's configuration file.
// Empty fields keep the proxy's defaults.
type testConfig struct {
	UpstreamURL string
	AdminSecret string
	JWKSURL     string // a jwk_url secret for rsIssuer, named "clerk"
	HSKey       string // an HS256 secret for hsIssuer, named "hs"
	AnonRole    string

	ReadHeaderTimeout, ReadTimeout, ShutdownGrace string
	ResponseHeaderTimeout                         string
	UnknownKIDRefreshInterval                     string
	MaxBodyBytes                                  int
	LogFormat, LogLevel                           string
	LogUserID                                     bool
	// WebSocket holds lines of the websocket: section, each "key: value".
	WebSocket []string
	// Extra is YAML appended as it is (whole top-level sections).
	Extra string
}

func (c testConfig) yaml() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	opt := func(key, v string) {
		if v != "" {
			line("  %s: %q", key, v)
		}
	}
	line("server:")
	line("  listen: 127.0.0.1:0")
	line("  ops_listen: 127.0.0.1:0")
	opt("read_header_timeout", c.ReadHeaderTimeout)
	opt("read_timeout", c.ReadTimeout)
	opt("shutdown_grace", c.ShutdownGrace)
	if c.MaxBodyBytes > 0 {
		line("  max_body_bytes: %d", c.MaxBodyBytes)
	}
	line("upstream:")
	line("  url: %q", c.UpstreamURL)
	line("  admin_secret: %q", c.AdminSecret)
	opt("response_header_timeout", c.ResponseHeaderTimeout)
	line("auth:")
	line("  jwt_secrets:")
	if c.JWKSURL != "" {
		line("    - {name: clerk, jwk_url: %q, issuer: %q}", c.JWKSURL, rsIssuer)
	}
	if c.HSKey != "" {
		line("    - {name: hs, type: HS256, key: %q, issuer: %q}", c.HSKey, hsIssuer)
	}
	opt("unauthorized_role", c.AnonRole)
	if c.UnknownKIDRefreshInterval != "" {
		line("  jwks:")
		line("    unknown_kid_refresh_interval: %q", c.UnknownKIDRefreshInterval)
	}
	if len(c.WebSocket) > 0 {
		line("websocket:")
		for _, l := range c.WebSocket {
			line("  %s", l)
		}
	}
	line("log:")
	opt("level", c.LogLevel)
	opt("format", c.LogFormat)
	line("  user_id: %t", c.LogUserID)
	b.WriteString(c.Extra)
	return b.String()
}

// writeConfig writes c to a file in a fresh temporary directory.
func writeConfig(t *testing.T, c testConfig) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(c.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clearHasuraEnv keeps the environment from overriding the test's file.
func clearHasuraEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{config.EnvJWTSecret, config.EnvJWTSecrets, config.EnvAdminSecret, config.EnvUnauthorizedRole} {
		t.Setenv(k, "")
	}
}

// runningProxy is a proxy started by startProxy.
type runningProxy struct {
	client, ops string // base URLs
	clientAddr  string // host:port of the client listener
	logs        *logSink
	exited      chan struct{} // closed when run has returned
	err         error         // what run returned; read after exited
	stop        context.CancelFunc
}

// wait returns run's result once it has returned, or fails the test.
func (p *runningProxy) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(waitTimeout):
		t.Fatalf("proxy did not stop within %s", waitTimeout)
		return nil
	}
}

// startProxy runs the proxy in process through run(), as main does, and
// waits for its startup line. Cleanup cancels it and checks that it stopped
// cleanly.
func startProxy(t *testing.T, c testConfig) *runningProxy {
	t.Helper()
	clearHasuraEnv(t)
	path := writeConfig(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	p := &runningProxy{logs: newLogSink(), exited: make(chan struct{}), stop: cancel}
	go func() {
		defer close(p.exited)
		p.err = run(ctx, []string{"-config", path}, io.Discard, p.logs)
	}()
	start := p.logs.wait(t, `"starting"`, p.exited, msgIs("starting"))
	p.clientAddr = start.str("listen")
	p.client = "http://" + p.clientAddr
	p.ops = "http://" + start.str("ops_listen")
	t.Cleanup(func() {
		cancel()
		if err := p.wait(t); err != nil {
			t.Errorf("run returned %v; want nil after cancel", err)
		}
	})
	return p
}

// waitKeys waits until the key source named issuer has loaded keys.
func (p *runningProxy) waitKeys(t *testing.T, issuer string) {
	t.Helper()
	p.logs.wait(t, "jwks keys loaded for "+issuer, p.exited, func(e logEntry) bool {
		return e.str("msg") == "jwks keys loaded" && e.str("issuer") == issuer
	})
}

// get performs a GET and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// samples scrapes /metrics and returns every hasura_auth_proxy_ sample keyed
// as the metrics package's tests key them: name{label=value,...} without the
// prefix; a histogram gives its count under its name and its sum under
// name_sum.
func samples(t *testing.T, ops string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(ops + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	prefix := metrics.Namespace + "_"
	out := map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+"="+l.GetValue())
			}
			key := strings.TrimPrefix(name, prefix) + "{" + strings.Join(pairs, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
				out[strings.Replace(key, "{", "_sum{", 1)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// delta returns the samples that differ between before and after.
func delta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// waitDelta scrapes until every sample of want has moved by at least its
// value since before (the request counter is recorded as the handler
// returns, which may be just after the client read the answer), and returns
// the last delta.
func waitDelta(t *testing.T, ops string, before, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		d := delta(before, samples(t, ops))
		done := true
		for k, v := range want {
			if d[k] < v {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
}
