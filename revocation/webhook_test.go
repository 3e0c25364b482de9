package revocation

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// testKey is the signing key; testSecret is how Clerk shows it.
var (
	testKey    = []byte("0123456789abcdef0123456789abcdef")
	testSecret = "whsec_" + base64.StdEncoding.EncodeToString(testKey)
	otherKey   = []byte("fedcba9876543210fedcba9876543210")
)

// svixSignature is one v1 entry, computed as the Standard Webhooks spec
// says (independently of the library the endpoint uses).
func svixSignature(key []byte, id string, ts int64, body string) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// shareFunc adapts a function to Shared.
type shareFunc func(ctx context.Context, r Revocation, delivery string) (bool, error)

func (f shareFunc) Share(ctx context.Context, r Revocation, delivery string) (bool, error) {
	return f(ctx, r, delivery)
}

type webhookFixture struct {
	hook  *Webhook
	set   *Set
	clock *clock
	reg   *prometheus.Registry
	logs  *observer.ObservedLogs
}

func newWebhookFixture(t testing.TB, shared Shared) *webhookFixture {
	t.Helper()
	f := &webhookFixture{clock: &clock{t: t0}, reg: prometheus.NewRegistry()}
	m := metrics.NewRevocation(f.reg)
	f.set = NewSet(f.clock.now, m)
	core, logs := observer.New(zap.DebugLevel)
	f.logs = logs
	cfg := DefaultConfig()
	cfg.Path = "/clerk/webhook"
	cfg.SigningSecret = auth.Secret(testSecret)
	hook, err := NewWebhook(WebhookOptions{Config: cfg, Set: f.set, Shared: shared, Logger: zap.New(core), Metrics: m, Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	f.hook = hook
	return f
}

// delivery is one request to the endpoint.
type delivery struct {
	method string
	id     string
	ts     int64
	body   string
	sig    string // "" signs body with testKey
	header http.Header
}

func (f *webhookFixture) send(t *testing.T, d delivery) *httptest.ResponseRecorder {
	t.Helper()
	if d.method == "" {
		d.method = http.MethodPost
	}
	if d.ts == 0 {
		d.ts = f.clock.now().Unix()
	}
	if d.sig == "" {
		d.sig = svixSignature(testKey, d.id, d.ts, d.body)
	}
	req := httptest.NewRequest(d.method, "/clerk/webhook", strings.NewReader(d.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", d.id)
	req.Header.Set("svix-timestamp", strconv.FormatInt(d.ts, 10))
	req.Header.Set("svix-signature", d.sig)
	for k, vs := range d.header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	f.hook.ServeHTTP(rec, req)
	return rec
}

func (f *webhookFixture) deliveries(t *testing.T, result string) float64 {
	return metricValue(t, f.reg, "clerk_webhook_deliveries_total", map[string]string{"result": result})
}

// clerkEvent is a Clerk webhook body of type typ about data.id id.
func clerkEvent(typ, id string) string {
	if strings.HasPrefix(typ, "user.") {
		return `{"data":{"deleted":true,"id":"` + id + `","object":"user"},"instance_id":"ins_1","object":"event","timestamp":1740830400000,"type":"` + typ + `"}`
	}
	return `{"data":{"abandon_at":1743422400000,"client_id":"client_1","created_at":1740826800000,"expire_at":1741431600000,` +
		`"id":"` + id + `","last_active_at":1740830400000,"object":"session","status":"revoked","updated_at":1740830400000,` +
		`"user_id":"user_1"},"instance_id":"ins_1","object":"event","timestamp":1740830400000,"type":"` + typ + `"}`
}

func TestWebhookVerification(t *testing.T) {
	body := clerkEvent("session.revoked", "sess_1")
	now := t0.Unix()
	good := svixSignature(testKey, "msg_1", now, body)
	tests := []struct {
		name       string
		d          delivery
		wantStatus int
		wantResult string
		wantSess   bool
	}{
		{"good", delivery{id: "msg_1", body: body}, 200, metrics.DeliveryRevoked, true},
		{"second of several signatures matches", delivery{id: "msg_1", body: body,
			sig: svixSignature(otherKey, "msg_1", now, body) + " " + good}, 200, metrics.DeliveryRevoked, true},
		{"first of several signatures matches", delivery{id: "msg_1", body: body,
			sig: good + " v1,bm90IGEgc2lnbmF0dXJl"}, 200, metrics.DeliveryRevoked, true},
		{"none of several signatures matches", delivery{id: "msg_1", body: body,
			sig: svixSignature(otherKey, "msg_1", now, body) + " v1,bm90IGEgc2lnbmF0dXJl"}, 401, metrics.DeliveryUnauthorized, false},
		{"signed with another secret", delivery{id: "msg_1", body: body, sig: svixSignature(otherKey, "msg_1", now, body)},
			401, metrics.DeliveryUnauthorized, false},
		{"signature of another id", delivery{id: "msg_2", body: body, sig: good}, 401, metrics.DeliveryUnauthorized, false},
		{"signature of another timestamp", delivery{id: "msg_1", ts: now + 1, body: body, sig: good}, 401, metrics.DeliveryUnauthorized, false},
		{"body changed after signing", delivery{id: "msg_1", body: clerkEvent("session.revoked", "sess_2"), sig: good},
			401, metrics.DeliveryUnauthorized, false},
		{"unversioned signature", delivery{id: "msg_1", body: body, sig: strings.TrimPrefix(good, "v1,")}, 401, metrics.DeliveryUnauthorized, false},
		{"missing signature", delivery{id: "msg_1", body: body, header: http.Header{"Svix-Signature": nil}},
			401, metrics.DeliveryUnauthorized, false},
		{"missing id", delivery{body: body}, 401, metrics.DeliveryUnauthorized, false},
		{"missing timestamp", delivery{id: "msg_1", body: body, header: http.Header{"Svix-Timestamp": nil}},
			401, metrics.DeliveryUnauthorized, false},
		{"timestamp not a number", delivery{id: "msg_1", body: body, header: http.Header{"Svix-Timestamp": {"yesterday"}}},
			401, metrics.DeliveryUnauthorized, false},
		{"timestamp 6 minutes old", delivery{id: "msg_1", ts: now - 360, body: body}, 401, metrics.DeliveryUnauthorized, false},
		{"timestamp 6 minutes ahead", delivery{id: "msg_1", ts: now + 360, body: body}, 401, metrics.DeliveryUnauthorized, false},
		{"timestamp 4 minutes old", delivery{id: "msg_1", ts: now - 240, body: body}, 200, metrics.DeliveryRevoked, true},
		{"verified body not JSON", delivery{id: "msg_1", body: "not json"}, 400, metrics.DeliveryMalformed, false},
		{"verified body without type", delivery{id: "msg_1", body: `{"data":{"id":"sess_1"}}`}, 400, metrics.DeliveryMalformed, false},
		{"verified body an array", delivery{id: "msg_1", body: `[1]`}, 400, metrics.DeliveryMalformed, false},
		{"revoking event without data.id", delivery{id: "msg_1", body: `{"type":"session.revoked","data":{}}`},
			400, metrics.DeliveryMalformed, false},
		{"revoking event with a numeric data.id", delivery{id: "msg_1", body: `{"type":"session.ended","data":{"id":7}}`},
			400, metrics.DeliveryMalformed, false},
		{"other event type", delivery{id: "msg_1", body: clerkEvent("session.created", "sess_1")}, 200, metrics.DeliveryIgnored, false},
		{"GET", delivery{method: http.MethodGet, id: "msg_1", body: body}, 405, metrics.DeliveryMethodNotAllowed, false},
		{"body too large", delivery{id: "msg_1", body: `{"type":"user.updated","data":{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}}`},
			413, metrics.DeliveryTooLarge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWebhookFixture(t, nil)
			rec := f.send(t, tt.d)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d; want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := f.deliveries(t, tt.wantResult); got != 1 {
				t.Errorf("clerk_webhook_deliveries_total{result=%q} = %v; want 1", tt.wantResult, got)
			}
			if got := f.set.Revoked("sess_1", "", f.clock.now()); got != tt.wantSess {
				t.Errorf("sess_1 revoked = %v; want %v", got, tt.wantSess)
			}
			if tt.wantStatus == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "POST" {
				t.Errorf("Allow = %q; want POST", rec.Header().Get("Allow"))
			}
			for _, e := range f.logs.All() {
				line := fmt.Sprint(e.Message, e.ContextMap())
				for _, secret := range []string{tt.d.body, testSecret, base64.StdEncoding.EncodeToString(testKey)} {
					if len(secret) > 20 && strings.Contains(line, secret) {
						t.Errorf("log line %q holds the body or the secret", line)
					}
				}
			}
		})
	}
}

func TestWebhookEvents(t *testing.T) {
	tests := []struct {
		typ      string
		sid, sub string
		want     bool
	}{
		{"session.revoked", "sess_x", "", true},
		{"session.ended", "sess_x", "", true},
		{"session.removed", "sess_x", "", true},
		{"user.deleted", "", "sess_x", true},
		{"session.created", "sess_x", "sess_x", false},
		{"user.updated", "sess_x", "sess_x", false},
		{"organization.deleted", "sess_x", "sess_x", false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			f := newWebhookFixture(t, nil)
			if rec := f.send(t, delivery{id: "msg_" + tt.typ, body: clerkEvent(tt.typ, "sess_x")}); rec.Code != 200 {
				t.Fatalf("status = %d; want 200", rec.Code)
			}
			if got := f.set.Revoked(tt.sid, tt.sub, f.clock.now()); got != tt.want {
				t.Errorf("Revoked(%q, %q) = %v; want %v", tt.sid, tt.sub, got, tt.want)
			}
			// Only the kind the event names is revoked.
			if f.set.Revoked(tt.sub, tt.sid, f.clock.now()) && tt.sid != tt.sub {
				t.Errorf("the id was revoked as the other kind")
			}
		})
	}
}

// TestWebhookLifetime: a revocation holds for max_token_lifetime after the
// delivery, then ends.
func TestWebhookLifetime(t *testing.T) {
	f := newWebhookFixture(t, nil)
	f.send(t, delivery{id: "msg_1", body: clerkEvent("session.revoked", "sess_1")})
	if !f.set.Revoked("sess_1", "", t0.Add(time.Hour-time.Millisecond)) {
		t.Error("not revoked just before max_token_lifetime")
	}
	if f.set.Revoked("sess_1", "", t0.Add(time.Hour)) {
		t.Error("still revoked at max_token_lifetime")
	}
}

func TestWebhookReplayedID(t *testing.T) {
	f := newWebhookFixture(t, nil)
	body := clerkEvent("session.revoked", "sess_1")
	if rec := f.send(t, delivery{id: "msg_1", body: body}); rec.Code != 200 {
		t.Fatalf("first delivery: status %d; want 200", rec.Code)
	}
	// Svix retries carry the same id with a new timestamp and signature.
	f.clock.add(time.Minute)
	if rec := f.send(t, delivery{id: "msg_1", body: body}); rec.Code != 200 {
		t.Fatalf("redelivery: status %d; want 200", rec.Code)
	}
	if got := f.deliveries(t, metrics.DeliveryDuplicate); got != 1 {
		t.Errorf("deliveries{duplicate} = %v; want 1", got)
	}
	if got := metricValue(t, f.reg, "revocations_applied_total", map[string]string{"source": "local"}); got != 1 {
		t.Errorf("revocations_applied_total{local} = %v; want 1", got)
	}
	// Not applied twice: the revocation still ends an hour after the first.
	if f.set.Revoked("sess_1", "", t0.Add(time.Hour)) {
		t.Error("the redelivery extended the revocation")
	}
}

// TestWebhookSharedUnavailable: Redis failing answers 503 with the
// revocation in effect here; Clerk's redelivery then shares it.
func TestWebhookSharedUnavailable(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	fail := true
	f := newWebhookFixture(t, shareFunc(func(_ context.Context, r Revocation, d string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Kind+" "+r.ID+" "+d)
		if fail {
			return false, errors.New("redis: i/o timeout")
		}
		return true, nil
	}))
	body := clerkEvent("user.deleted", "user_1")
	if rec := f.send(t, delivery{id: "msg_1", body: body}); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: status %d; want 503", rec.Code)
	}
	if !f.set.Revoked("", "user_1", f.clock.now()) {
		t.Error("with Redis down: not revoked on this replica")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if rec := f.send(t, delivery{id: "msg_1", body: body}); rec.Code != 200 {
		t.Fatalf("redelivery: status %d; want 200", rec.Code)
	}
	if rec := f.send(t, delivery{id: "msg_1", body: body}); rec.Code != 200 {
		t.Fatalf("third delivery: status %d; want 200", rec.Code)
	}
	want := []string{"user user_1 msg_1", "user user_1 msg_1"}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("Share calls = %q; want %q (the third delivery is a duplicate)", calls, want)
	}
	for result, want := range map[string]float64{metrics.DeliveryUnavailable: 1, metrics.DeliveryRevoked: 1, metrics.DeliveryDuplicate: 1} {
		if got := f.deliveries(t, result); got != want {
			t.Errorf("deliveries{%s} = %v; want %v", result, got, want)
		}
	}
}

// TestWebhookSharedDuplicate: a delivery another replica already shared is
// acknowledged as a duplicate.
func TestWebhookSharedDuplicate(t *testing.T) {
	f := newWebhookFixture(t, shareFunc(func(context.Context, Revocation, string) (bool, error) { return false, nil }))
	if rec := f.send(t, delivery{id: "msg_1", body: clerkEvent("session.ended", "sess_1")}); rec.Code != 200 {
		t.Fatalf("status %d; want 200", rec.Code)
	}
	if got := f.deliveries(t, metrics.DeliveryDuplicate); got != 1 {
		t.Errorf("deliveries{duplicate} = %v; want 1", got)
	}
}

func TestMount(t *testing.T) {
	hook := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(298) })
	h := Mount("/clerk/webhook", hook, next)
	for path, want := range map[string]int{"/clerk/webhook": 299, "/clerk/webhook/": 298, "/clerk/%77ebhook": 298, "/v1/graphql": 298} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		if rec.Code != want {
			t.Errorf("%s: status %d; want %d", path, rec.Code, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"path and secret", func(c *Config) { c.Path, c.SigningSecret = "/clerk/webhook", auth.Secret(testSecret) }, ""},
		{"relative path", func(c *Config) { c.Path, c.SigningSecret = "clerk", auth.Secret(testSecret) }, "clerk_webhook.path: must start with /"},
		{"Hasura path", func(c *Config) { c.Path, c.SigningSecret = "/v1/clerk", auth.Secret(testSecret) }, "clerk_webhook.path: must not shadow a Hasura path"},
		{"no secret", func(c *Config) { c.Path = "/clerk/webhook" }, "clerk_webhook.signing_secret: required"},
		{"secret without whsec_", func(c *Config) { c.Path, c.SigningSecret = "/clerk/webhook", "c2VjcmV0" }, "clerk_webhook.signing_secret: must be the whsec_"},
		{"secret not base64", func(c *Config) { c.Path, c.SigningSecret = "/clerk/webhook", "whsec_!!!" }, "clerk_webhook.signing_secret: the part after whsec_"},
		{"zero lifetime", func(c *Config) { c.MaxTokenLifetime = 0 }, "clerk_webhook.max_token_lifetime: must be between"},
		{"lifetime too long", func(c *Config) { c.MaxTokenLifetime = 800 * time.Hour }, "clerk_webhook.max_token_lifetime: must be between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v; want an error with %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "!!!"):
				t.Errorf("Validate() = %v quotes the secret", err)
			}
		})
	}
}

// FuzzWebhook: whatever arrives, the endpoint answers without a 5xx (no
// Shared configured) and applies nothing unless the signature verifies.
func FuzzWebhook(f *testing.F) {
	f.Add("msg_1", "1772366400", "v1,abc", clerkEvent("session.revoked", "sess_1"))
	f.Add("", "", "", "")
	f.Add("msg_1", "-1", "v1,"+strings.Repeat("=", 50), `{"type":"session.revoked","data":null}`)
	fx := newWebhookFixture(f, nil)
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		req := httptest.NewRequest(http.MethodPost, "/clerk/webhook", strings.NewReader(body))
		req.Header.Set("svix-id", id)
		req.Header.Set("svix-timestamp", ts)
		req.Header.Set("svix-signature", sig)
		rec := httptest.NewRecorder()
		fx.hook.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for bad input", rec.Code)
		}
		// Nothing the fuzzer makes is signed with the key: nothing may
		// ever be applied.
		if fx.set.Len() > 0 {
			t.Fatalf("applied without a valid signature (status %d)", rec.Code)
		}
	})
}
