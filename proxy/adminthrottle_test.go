package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Unix(1_700_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAdminThrottleTable(t *testing.T) {
	clock := newTestClock()
	th := newAdminThrottle(AdminThrottleConfig{Failures: 3, Window: time.Minute, MaxClients: 100}, clock.Now)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for i := range 3 {
		if _, blocked := th.blocked(a); blocked {
			t.Fatalf("blocked after %d failures; want 3 allowed", i)
		}
		th.fail(a)
	}
	wait, blocked := th.blocked(a)
	if !blocked || wait != time.Minute {
		t.Errorf("after 3 failures: blocked = %v, wait %s; want true, 1m0s", blocked, wait)
	}
	if _, blocked := th.blocked(b); blocked {
		t.Errorf("another client is blocked; want only the one that failed")
	}
	clock.Add(59 * time.Second)
	if wait, blocked := th.blocked(a); !blocked || wait != time.Second {
		t.Errorf("59s later: blocked = %v, wait %s; want true, 1s", blocked, wait)
	}
	clock.Add(time.Second)
	if _, blocked := th.blocked(a); blocked {
		t.Errorf("once the window ended: still blocked")
	}
	th.fail(a)
	if _, blocked := th.blocked(a); blocked {
		t.Errorf("one failure in a new window: blocked; want a fresh budget")
	}

	// One IPv6 host holds a /64: it is one client however it rotates.
	v6 := newAdminThrottle(AdminThrottleConfig{Failures: 2, Window: time.Minute, MaxClients: 100}, clock.Now)
	v6.fail(netip.MustParseAddr("2001:db8:1:2::1"))
	v6.fail(netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	if _, blocked := v6.blocked(netip.MustParseAddr("2001:db8:1:2::77")); !blocked {
		t.Errorf("an address of the same /64 is not blocked")
	}
	if _, blocked := v6.blocked(netip.MustParseAddr("2001:db8:1:3::1")); blocked {
		t.Errorf("the next /64 is blocked")
	}
	// ::ffff:192.0.2.1 is 192.0.2.1.
	v6.fail(netip.MustParseAddr("::ffff:192.0.2.1"))
	v6.fail(netip.MustParseAddr("192.0.2.1"))
	if _, blocked := v6.blocked(netip.MustParseAddr("192.0.2.1")); !blocked {
		t.Errorf("an IPv4-mapped address counts apart from its IPv4 form")
	}
}

// TestAdminThrottleBoundedMemory: a flood of addresses never grows the table
// past MaxClients, and the expired entries are the first to go.
func TestAdminThrottleBoundedMemory(t *testing.T) {
	clock := newTestClock()
	th := newAdminThrottle(AdminThrottleConfig{Failures: 5, Window: time.Minute, MaxClients: 100}, clock.Now)
	for i := range 100_000 {
		th.fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if n := th.size(); n > 100 {
			t.Fatalf("after %d addresses the table holds %d; want at most 100", i+1, n)
		}
	}
	// A blocked client, then a window later a flood: the expired entries
	// make room, the table stays bounded.
	blocked := netip.MustParseAddr("192.0.2.9")
	for range 5 {
		th.fail(blocked)
	}
	clock.Add(2 * time.Minute)
	for i := range 50 {
		th.fail(netip.AddrFrom4([4]byte{172, 16, 0, byte(i)}))
	}
	if n := th.size(); n != 50 {
		t.Errorf("table holds %d after the sweep; want the 50 fresh entries", n)
	}
}

// TestAdminThrottleEvictionSparesThrottled: when the table is full, a new
// address evicts a client that is not throttled rather than one that is.
func TestAdminThrottleEvictionSparesThrottled(t *testing.T) {
	clock := newTestClock()
	th := newAdminThrottle(AdminThrottleConfig{Failures: 2, Window: time.Minute, MaxClients: 10}, clock.Now)
	var throttled []netip.Addr
	for i := range 9 {
		a := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		th.fail(a)
		th.fail(a)
		throttled = append(throttled, a)
	}
	th.fail(netip.MustParseAddr("10.0.1.1")) // one failure: not throttled
	for i := range 20 {
		// Each newcomer has one failure, so it is the next one evicted.
		th.fail(netip.AddrFrom4([4]byte{10, 0, 2, byte(i)}))
		for _, a := range throttled {
			if _, blocked := th.blocked(a); !blocked {
				t.Fatalf("after %d newcomers, throttled client %s was evicted", i+1, a)
			}
		}
	}
	if n := th.size(); n != 10 {
		t.Errorf("table holds %d; want 10", n)
	}
}

// loopbackClient is an HTTP client whose connections come from ip.
func loopbackClient(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestAdminThrottleClients runs the guessing attack from 127.0.0.2 over real
// connections: after 5 wrong secrets its admin-secret attempts are refused
// without comparing (even the right secret), with the same answer, counted;
// its token requests and another client (127.0.0.3) are not slowed; the
// injected clock's next window gives it a fresh budget.
func TestAdminThrottleClients(t *testing.T) {
	clock := newTestClock()
	f := newFixture(t, func(_ *auth.Config, o *Options) { o.Now = clock.Now })
	attacker, other := loopbackClient(t, "127.0.0.2"), loopbackClient(t, "127.0.0.3")
	tok := f.token(goodClaims())
	send := func(c *http.Client, h http.Header) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, f.px.URL+"/v1/graphql", strings.NewReader(`{"query":"{ x }"}`))
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range h {
			req.Header[k] = vs
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wrong := http.Header{"X-Hasura-Admin-Secret": {"guess"}}
	right := http.Header{"X-Hasura-Admin-Secret": {pxAdmin}}
	compared := func() float64 {
		return counterValue(t, f.reg, metrics.Namespace+"_auth_decisions_total", map[string]string{"result": "denied", "reason": "bad_admin_secret"})
	}
	throttled := func() float64 {
		return counterValue(t, f.reg, metrics.Namespace+"_admin_secret_throttled_total", nil)
	}

	var firstBody string
	for i := range 5 {
		_, body := send(attacker, wrong)
		if i == 0 {
			firstBody = body
		}
	}
	if got := compared(); got != 5 {
		t.Errorf("wrong secrets compared = %v; want 5", got)
	}
	for range 20 {
		if status, body := send(attacker, wrong); status != http.StatusOK || body != firstBody {
			t.Errorf("throttled guess answered %d %s; want the same answer as a wrong secret, %s", status, body, firstBody)
		}
	}
	before := f.up.count()
	if _, body := send(attacker, right); body != firstBody {
		t.Errorf("right secret while throttled answered %s; want the wrong-secret answer %s", body, firstBody)
	}
	if got := f.up.count() - before; got != 0 {
		t.Errorf("right secret while throttled reached Hasura %d times; want 0", got)
	}
	if got := compared(); got != 5 {
		t.Errorf("wrong secrets compared = %v; want still 5 (throttled ones are not compared)", got)
	}
	if got := throttled(); got != 21 {
		t.Errorf("admin_secret_throttled_total = %v; want 21", got)
	}

	// Not slowed: the attacker's token requests, and another client's
	// admin secret.
	before = f.up.count()
	send(attacker, http.Header{"Authorization": {"Bearer " + tok}})
	send(other, right)
	if got := f.up.count() - before; got != 2 {
		t.Errorf("token request from the throttled client and admin request from another: %d reached Hasura; want 2", got)
	}
	if got := f.up.last(t).Header.Get("X-Hasura-Role"); got != "admin" {
		t.Errorf("other client's X-Hasura-Role = %q; want admin", got)
	}

	clock.Add(time.Minute)
	before = f.up.count()
	send(attacker, right)
	if got := f.up.count() - before; got != 1 {
		t.Errorf("right secret a window later reached Hasura %d times; want 1", got)
	}
}

// TestAdminThrottleTrustedProxy: behind a trusted proxy the client is the
// X-Forwarded-For address, so clients behind one load balancer are throttled
// apart.
func TestAdminThrottleTrustedProxy(t *testing.T) {
	tp, err := ParseTrustedProxies("server.trusted_proxies", []string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(_ *auth.Config, o *Options) {
		o.TrustedProxies = tp
		o.AdminThrottle = AdminThrottleConfig{Failures: 2, Window: time.Minute, MaxClients: 10}
	})
	do := func(xff, secret string) {
		t.Helper()
		f.do(t, http.MethodPost, "/v1/graphql", http.Header{"X-Forwarded-For": {xff}, "X-Hasura-Admin-Secret": {secret}}, `{}`)
	}
	do("198.51.100.1", "a")
	do("198.51.100.1", "b")
	before := f.up.count()
	do("198.51.100.1", pxAdmin)
	do("198.51.100.2", pxAdmin)
	if got := f.up.count() - before; got != 1 {
		t.Errorf("%d admin requests reached Hasura; want 1 (198.51.100.2's; 198.51.100.1 is throttled)", got)
	}
}

// TestAdminThrottleWebSocket: admin secrets in a WebSocket's connection_init
// count and are throttled like those of HTTP requests, so sockets are no way
// around the throttle; the client's tokens still open sockets.
func TestAdminThrottleWebSocket(t *testing.T) {
	clock := newTestClock()
	hasura := newWSHasura(t, true)
	ac := auth.DefaultConfig()
	ac.JWTSecret = &auth.JWTSecret{Type: "HS256", Key: auth.Secret(wsKey)}
	a, err := auth.New(auth.Options{Config: ac, AdminSecret: wsAdmin})
	if err != nil {
		t.Fatal(err)
	}
	uc := DefaultConfig()
	uc.URL, uc.AdminSecret = hasura.srv.URL, wsAdmin
	h, err := New(Options{Upstream: uc, MaxBodyBytes: 1 << 20, ErrorStatus: "hasura", Auth: a, Now: clock.Now,
		AdminThrottle: AdminThrottleConfig{Failures: 2, Window: time.Minute, MaxClients: 10}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wsWait)
		defer cancel()
		_ = h.CloseWebSockets(ctx)
		srv.Close()
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/graphql"
	initWith := func(headers map[string]string) (acked bool) {
		t.Helper()
		c := mustDial(t, url, protoTransportWS, nil)
		defer c.Close()
		send(t, c, initMsg(headers))
		_ = c.SetReadDeadline(time.Now().Add(wsWait))
		_, b, err := c.ReadMessage()
		return err == nil && strings.Contains(string(b), "connection_ack")
	}
	for i := range 2 {
		if initWith(map[string]string{"x-hasura-admin-secret": "guess"}) {
			t.Fatalf("wrong admin secret %d acknowledged", i)
		}
	}
	if initWith(map[string]string{"x-hasura-admin-secret": wsAdmin}) {
		t.Errorf("right admin secret acknowledged while the client is throttled; want refused")
	}
	if n := hasura.dials.Load(); n != 0 {
		t.Errorf("Hasura dialled %d times; want 0", n)
	}
	if !initWith(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}) {
		t.Errorf("a token from the throttled client was refused; want acknowledged")
	}
	clock.Add(time.Minute)
	if !initWith(map[string]string{"x-hasura-admin-secret": wsAdmin}) {
		t.Errorf("right admin secret a window later refused; want acknowledged")
	}
}
