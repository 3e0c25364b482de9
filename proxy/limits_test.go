package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// fakeLimits refuses every operation whose payload or body mentions
// "refuse me", as a rate limit on HTTP.
type fakeLimits struct {
	ops   atomic.Int32
	mu    sync.Mutex
	seen  []string // bodies AdmitHTTP saw; "<nil>" for none
	limit time.Duration
}

func (f *fakeLimits) Applies(s *auth.Session) bool { return s.Result != auth.ResultAdmin }

func (f *fakeLimits) AdmitHTTP(_ *http.Request, body []byte, _ *auth.Session) *Refusal {
	f.mu.Lock()
	if body == nil {
		f.seen = append(f.seen, "<nil>")
	} else {
		f.seen = append(f.seen, string(body))
	}
	f.mu.Unlock()
	if strings.Contains(string(body), "refuse me") {
		return &Refusal{Code: "rate-limit-exceeded", Message: "rate limit exceeded", Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond}
	}
	return nil
}

func (f *fakeLimits) AdmitOperation(_ *http.Request, _ *auth.Session, payload []byte) *Refusal {
	f.ops.Add(1)
	if strings.Contains(string(payload), "refuse me") {
		return &Refusal{Code: "depth-limit-exceeded", Message: "depth limit exceeded", Status: http.StatusBadRequest}
	}
	return nil
}

func (f *fakeLimits) TimeLimit(*auth.Session) time.Duration { return f.limit }

func withLimits(l Limits) wsStageOpt { return func(c *wsStageConfig) { c.limits = l } }

// A refused subscribe gets the protocol's error for its id and never
// reaches Hasura; the socket and the next operation carry on.
func TestWebSocketLimits(t *testing.T) {
	for _, tt := range []struct {
		proto, subscribe, wantErr string
	}{
		{protoTransportWS, "subscribe", `{"id":"bad","type":"error","payload":[{"message":"depth limit exceeded","extensions":{"path":"$","code":"depth-limit-exceeded"}}]}`},
		{protoLegacy, "start", `{"id":"bad","type":"error","payload":{"message":"depth limit exceeded","extensions":{"path":"$","code":"depth-limit-exceeded"}}}`},
	} {
		t.Run(tt.proto, func(t *testing.T) {
			fl := &fakeLimits{}
			st := newWSStage(t, withLimits(fl))
			c := mustDial(t, st.url("/v1/graphql"), tt.proto, nil)
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
			up := st.hasura.next(t)
			up.next(t) // connection_init

			send(t, c, `{"id":"bad","type":"`+tt.subscribe+`","payload":{"query":"subscription { refuse me }"}}`)
			good := `{"id":"ok","type":"` + tt.subscribe + `","payload":{"query":"subscription { s }"}}`
			send(t, c, good)
			if got := up.next(t); string(got) != good {
				t.Errorf("Hasura got %s; want only the admitted operation, unchanged: %s", got, good)
			}
			var gotErr, gotComplete, gotData bool
			for i := 0; i < 20 && !(gotErr && gotData); i++ {
				b := recv(t, c)
				var m struct{ ID, Type string }
				_ = json.Unmarshal(b, &m)
				switch {
				case m.ID == "bad" && m.Type == "error":
					jsonEq(t, b, tt.wantErr)
					gotErr = true
				case m.ID == "bad" && m.Type == "complete":
					gotComplete = true
				case m.ID == "ok" && (m.Type == "next" || m.Type == "data"):
					gotData = true
				}
			}
			if !gotErr || !gotData {
				t.Errorf("client got error %t, data of the next operation %t; want both", gotErr, gotData)
			}
			// complete follows the error on the legacy protocol, written
			// before the next operation is even relayed.
			if tt.proto == protoLegacy && !gotComplete {
				t.Errorf("legacy: no complete for the refused operation")
			}
			if n := fl.ops.Load(); n != 2 {
				t.Errorf("limits asked about %d operations; want 2", n)
			}
		})
	}
}

func TestHTTPLimits(t *testing.T) {
	tests := []struct {
		name, errorStatus, path, body string
		wantStatus                    int
		wantForwarded                 bool
		wantSeen                      string
		wantBody                      string
	}{
		{name: "refused on /v1/graphql: 200", errorStatus: "hasura", path: "/v1/graphql", body: `{"query":"refuse me"}`, wantStatus: 200, wantSeen: `{"query":"refuse me"}`,
			wantBody: `{"errors":[{"message":"rate limit exceeded","extensions":{"path":"$","code":"rate-limit-exceeded"}}]}`},
		{name: "refused on /v1alpha1/graphql: the limit's status", errorStatus: "hasura", path: "/v1alpha1/graphql", body: `{"query":"refuse me"}`, wantStatus: 429, wantSeen: `{"query":"refuse me"}`},
		{name: "error_status http: 429", errorStatus: "http", path: "/v1/graphql", body: `{"query":"refuse me"}`, wantStatus: 429, wantSeen: `{"query":"refuse me"}`},
		{name: "REST: no body read", errorStatus: "hasura", path: "/api/rest/users", body: `{"query":"refuse me"}`, wantStatus: 200, wantForwarded: true, wantSeen: "<nil>"},
		{name: "metadata is not limited", errorStatus: "hasura", path: "/v1/metadata", body: `{"query":"refuse me"}`, wantStatus: 200, wantForwarded: true},
		{name: "admitted body forwarded unchanged", errorStatus: "hasura", path: "/v1/graphql", body: `{"query":"{ a }"}`, wantStatus: 200, wantForwarded: true, wantSeen: `{"query":"{ a }"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := &fakeLimits{}
			f := newFixture(t, func(_ *auth.Config, o *Options) {
				o.ErrorStatus = tt.errorStatus
				o.Limits = fl
				// Every path, so /v1/metadata reaches the limits' decision.
				o.Upstream.AllowedPaths = []string{"/"}
			})
			resp := f.do(t, http.MethodPost, tt.path, http.Header{"Authorization": {"Bearer " + f.token(goodClaims())}}, tt.body)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d; want %d (%s)", resp.StatusCode, tt.wantStatus, b)
			}
			if tt.wantBody != "" && string(b) != tt.wantBody {
				t.Errorf("body = %s; want %s", b, tt.wantBody)
			}
			if got := f.up.count() == 1; got != tt.wantForwarded {
				t.Fatalf("forwarded = %t; want %t", got, tt.wantForwarded)
			}
			if !tt.wantForwarded && resp.Header.Get("Retry-After") != "2" {
				t.Errorf("Retry-After = %q; want 2 (1.5s rounded up)", resp.Header.Get("Retry-After"))
			}
			fl.mu.Lock()
			seen := strings.Join(fl.seen, "|")
			fl.mu.Unlock()
			if seen != tt.wantSeen {
				t.Errorf("limits saw %q; want %q", seen, tt.wantSeen)
			}
		})
	}
	// The admin passthrough is never asked about.
	fl := &fakeLimits{}
	f := newFixture(t, func(_ *auth.Config, o *Options) { o.Limits = fl })
	resp := f.do(t, http.MethodPost, "/v1/graphql", http.Header{"X-Hasura-Admin-Secret": {pxAdmin}}, `{"query":"refuse me"}`)
	if resp.StatusCode != 200 || f.up.count() != 1 || len(fl.seen) != 0 {
		t.Errorf("admin: status %d, forwarded %d, limits asked %d times; want 200, 1, 0", resp.StatusCode, f.up.count(), len(fl.seen))
	}
}

// Past the time limit the client gets the timeout answer, even when the
// upstream timeout is far longer.
func TestHTTPTimeLimit(t *testing.T) {
	fl := &fakeLimits{limit: 200 * time.Millisecond}
	f := newFixture(t, func(_ *auth.Config, o *Options) { o.Limits = fl })
	f.up.handler = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	resp := f.do(t, http.MethodPost, "/v1/graphql", http.Header{"Authorization": {"Bearer " + f.token(goodClaims())}}, `{"query":"{ a }"}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(b), "time limit of 200ms") {
		t.Errorf("answer %d %s; want 504 naming the time limit", resp.StatusCode, b)
	}
}
