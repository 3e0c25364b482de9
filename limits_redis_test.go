package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/store/storetest"
)

// Two proxy processes on one Redis share a per-role rate limit exactly;
// with Redis stopped each applies its redis.on_error within redis.timeout
// and stays ready; once Redis is back they count together again.
func TestAPILimitsTwoProcessesShareRedis(t *testing.T) {
	needBinary(t)
	rs := storetest.Start(t)
	h := newFakeHasura(t)
	key := randomHex(t, 24)
	const max = 5
	cfg := func(onError string) testConfig {
		return testConfig{UpstreamURL: h.URL, AdminSecret: "admin-" + randomHex(t, 8), HSKey: key, Extra: fmt.Sprintf(`
api_limits:
  rate_limit:
    per_role: {user: {max_reqs_per_min: %d, unique_params: [x-hasura-user-id]}}
redis:
  url: %q
  timeout: 200ms
  on_error: %s
`, max, rs.URL(), onError)}
	}
	allow, deny := startBinary(t, cfg("allow")), startBinary(t, cfg("deny"))
	procs := []*process{allow, deny}

	send := func(p *process, uid string) (code string, d time.Duration) {
		t.Helper()
		start := time.Now()
		resp, body := do(t, gqlPost(t, p.client+"/v1/graphql", userToken(t, key, uid), `{"query":"{ a }"}`))
		d = time.Since(start)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (body %s); want 200", resp.StatusCode, body)
		}
		if !strings.Contains(body, `"errors"`) {
			return "", d
		}
		return errorCode(t, body), d
	}
	shared := func(uid string) {
		t.Helper()
		admitted := 0
		for i := 0; i < 3*max; i++ {
			code, _ := send(procs[i%2], uid)
			switch code {
			case "":
				admitted++
			case "rate-limit-exceeded":
			default:
				t.Fatalf("request %d: code %q; want admitted or rate-limit-exceeded", i, code)
			}
		}
		if admitted != max {
			t.Errorf("%s: %d of %d requests admitted across two proxies; want exactly %d", uid, admitted, 3*max, max)
		}
	}
	shared("u1")

	rs.Stop()
	// Each check gives up after redis.timeout (200ms); 3s is a generous
	// bound for a busy machine, far below an unbounded wait.
	const bound = 3 * time.Second
	for i := 0; i < 3; i++ {
		if code, d := send(allow, "u1"); code != "" || d > bound {
			t.Errorf("on_error allow, Redis down: code %q after %s; want admitted within %s", code, d, bound)
		}
		if code, d := send(deny, "u2"); code != "rate-limit-exceeded" || d > bound {
			t.Errorf("on_error deny, Redis down: code %q after %s; want rate-limit-exceeded within %s", code, d, bound)
		}
	}
	for _, p := range procs {
		if status, body := get(t, p.ops+"/readyz"); status != http.StatusOK {
			t.Errorf("readyz with Redis down = %d %s; want 200 (Redis is not a readiness dependency)", status, body)
		}
	}
	if s := samples(t, allow.ops); s["redis_errors_total{on_error=allow}"] < 3 {
		t.Errorf("redis_errors_total{on_error=allow} = %v; want >= 3", s["redis_errors_total{on_error=allow}"])
	}
	if n := strings.Count(allow.logs.String(), "redis unreachable"); n != 1 {
		t.Errorf("outage logged %d times by one process; want once", n)
	}

	rs.Restart()
	// Each proxy tries Redis again a second after its last failure: probe
	// (with a user of its own) until both count again.
	for _, p := range procs {
		eventually(t, "proxy counting in Redis again", func() bool {
			send(p, "probe")
			return strings.Contains(p.logs.String(), "redis reachable again")
		})
	}
	shared("u3")
}
