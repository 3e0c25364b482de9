package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Webhook timing and size limits.
const (
	// Tolerance is how far a delivery's svix-timestamp may be from now, in
	// either direction, as Svix's own libraries allow: an old delivery
	// captured off the wire cannot be replayed later.
	Tolerance = 5 * time.Minute
	// MaxBodyBytes bounds a delivery's body. Clerk's session and user
	// events are a few KiB; larger bodies are answered 413.
	MaxBodyBytes = 256 << 10
	// maxSeen bounds the delivery ids remembered for deduplication.
	maxSeen = 100_000
)

// The Svix headers of a delivery.
const (
	headerID        = "Svix-Id"
	headerTimestamp = "Svix-Timestamp"
	headerSignature = "Svix-Signature"
)

// Shared carries revocations to the other replicas. Redis implements it.
type Shared interface {
	// Share stores r for replicas that start later and announces it to the
	// running ones, once per delivery id (an empty delivery is always
	// shared). It reports false when the delivery was shared before.
	Share(ctx context.Context, r Revocation, delivery string) (bool, error)
}

// WebhookOptions configure NewWebhook.
type WebhookOptions struct {
	// Config is the clerk_webhook section, validated, with a Path.
	Config Config
	// Set is where revocations take effect in this process.
	Set *Set
	// Shared, when not nil, carries revocations to the other replicas; a
	// delivery it cannot take is answered 503 (after taking effect here).
	Shared  Shared
	Logger  *zap.Logger
	Metrics *metrics.Revocation
	// Now is the clock of the timestamp check and of revocation lifetimes;
	// nil means time.Now.
	Now func() time.Time
}

// Webhook is the endpoint Clerk delivers its events to. It answers:
//
//   - 401 for a missing or wrong signature, or a svix-timestamp more than
//     Tolerance away from now; nothing is applied.
//   - 400 for a verified body that is not a Clerk event (or a revoking event
//     without data.id), 413 for one over MaxBodyBytes, 405 for a method
//     other than POST.
//   - 200 for a verified event: session.revoked, session.ended and
//     session.removed revoke the session data.id; user.deleted revokes the
//     user data.id; other types are ignored. A svix-id applied before is
//     acknowledged without applying it again.
//   - 503 when the revocation took effect here but Redis could not store
//     it: Clerk retries the delivery (same svix-id) until Redis takes it.
//
// The body is read only after the signature is checked against it, and
// never logged; nor is the secret. It is safe for concurrent use.
type Webhook struct {
	verifier *standardwebhooks.Webhook
	lifetime time.Duration
	set      *Set
	shared   Shared
	log      *zap.Logger
	metrics  *metrics.Revocation
	now      func() time.Time
	seen     seenIDs
}

// NewWebhook builds the endpoint.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if o.Set == nil {
		return nil, errors.New("revocation: a Set is required")
	}
	v, err := newVerifier(o.Config.SigningSecret)
	if err != nil {
		return nil, errors.New("clerk_webhook.signing_secret: " + err.Error())
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Webhook{
		verifier: v,
		lifetime: o.Config.MaxTokenLifetime,
		set:      o.Set,
		shared:   o.Shared,
		log:      log,
		metrics:  o.Metrics,
		now:      now,
		seen:     seenIDs{ttl: o.Config.MaxTokenLifetime},
	}, nil
}

// event is the part of a Clerk webhook event the proxy reads.
type event struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// revokes maps the event types that revoke something to what data.id
// names.
var revokes = map[string]string{
	"session.revoked": KindSession,
	"session.ended":   KindSession,
	"session.removed": KindSession,
	"user.deleted":    KindUser,
}

// errUnauthorized is every signature failure: the client learns nothing
// about which check failed.
var errUnauthorized = errors.New("the webhook signature does not verify (svix-id, svix-timestamp, svix-signature)")

func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		w.answer(rw, http.StatusMethodNotAllowed, metrics.DeliveryMethodNotAllowed, "the Clerk webhook accepts POST only")
		return
	}
	if r.ContentLength > MaxBodyBytes {
		w.answer(rw, http.StatusRequestEntityTooLarge, metrics.DeliveryTooLarge, "body too large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.answer(rw, http.StatusRequestEntityTooLarge, metrics.DeliveryTooLarge, "body too large")
			return
		}
		w.answer(rw, http.StatusBadRequest, metrics.DeliveryMalformed, "the body could not be read")
		return
	}
	now := w.now()
	id := r.Header.Get(headerID)
	if err := w.verify(r.Header, body, now); err != nil {
		w.log.Warn("clerk webhook refused: bad signature", zap.String("svix_id", logID(id)), zap.String("detail", err.Error()))
		w.answer(rw, http.StatusUnauthorized, metrics.DeliveryUnauthorized, errUnauthorized.Error())
		return
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type == "" {
		w.answer(rw, http.StatusBadRequest, metrics.DeliveryMalformed, "the body is not a Clerk event (a JSON object with a type)")
		return
	}
	kind, ok := revokes[ev.Type]
	if !ok {
		w.answer(rw, http.StatusOK, metrics.DeliveryIgnored, "ignored")
		return
	}
	var data struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil || data.ID == "" {
		w.answer(rw, http.StatusBadRequest, metrics.DeliveryMalformed, "a "+ev.Type+" event must carry data.id")
		return
	}
	if w.seen.has(id, now) {
		w.answer(rw, http.StatusOK, metrics.DeliveryDuplicate, "duplicate")
		return
	}
	rev := Revocation{Kind: kind, ID: data.ID, Until: now.Add(w.lifetime)}
	// In effect here first: if Redis is down this replica refuses the
	// session at once, and Clerk's retry shares it later.
	w.set.Add(rev, metrics.SourceLocal)
	if w.shared != nil {
		fresh, err := w.shared.Share(r.Context(), rev, id)
		if err != nil {
			w.log.Warn("clerk webhook: revocation applied on this replica only, Redis did not take it; answering 503 so Clerk retries",
				zap.String("svix_id", logID(id)), zap.String("event", ev.Type), zap.Error(err))
			w.answer(rw, http.StatusServiceUnavailable, metrics.DeliveryUnavailable, "revocation store unavailable, retry")
			return
		}
		if !fresh {
			w.seen.add(id, now)
			w.answer(rw, http.StatusOK, metrics.DeliveryDuplicate, "duplicate")
			return
		}
	}
	w.seen.add(id, now)
	w.log.Info("clerk webhook: revoked", zap.String("svix_id", logID(id)), zap.String("event", ev.Type), zap.String("kind", kind))
	w.answer(rw, http.StatusOK, metrics.DeliveryRevoked, "revoked")
}

// verify checks the Svix headers against body at now.
func (w *Webhook) verify(h http.Header, body []byte, now time.Time) error {
	id, ts, sig := h.Get(headerID), h.Get(headerTimestamp), h.Get(headerSignature)
	if id == "" || ts == "" || sig == "" {
		return errors.New("missing svix-id, svix-timestamp or svix-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("svix-timestamp is not a number of seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return errors.New("svix-timestamp is more than 5 minutes from now")
	}
	// The library checks the timestamp against its own clock; this one is
	// checked above against the injected clock.
	sh := http.Header{}
	sh.Set(standardwebhooks.HeaderWebhookID, id)
	sh.Set(standardwebhooks.HeaderWebhookTimestamp, ts)
	sh.Set(standardwebhooks.HeaderWebhookSignature, sig)
	if err := w.verifier.VerifyIgnoringTimestamp(body, sh); err != nil {
		return errors.New("no svix-signature entry matches")
	}
	return nil
}

func (w *Webhook) answer(rw http.ResponseWriter, status int, result, msg string) {
	w.metrics.Delivery(result)
	rw.Header().Set("Content-Type", "application/json; charset=utf-8")
	rw.WriteHeader(status)
	key := "result"
	if status >= 400 {
		key = "error"
	}
	b, _ := json.Marshal(map[string]string{key: msg})
	_, _ = rw.Write(append(b, '\n'))
}

// logID bounds a client-chosen svix-id before it is logged.
func logID(id string) string {
	const max = 64
	if len(id) > max {
		return id[:max] + "..."
	}
	return id
}

// Mount serves hook at exactly path and everything else with next.
func Mount(path string, hook, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path && r.URL.RawPath == "" {
			hook.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// seenIDs remembers the delivery ids applied, for ttl, so a redelivery is
// acknowledged without being applied twice. It is safe for concurrent use.
type seenIDs struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]time.Time // id -> forget after
}

func (s *seenIDs) has(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	return ok && now.Before(t)
}

func (s *seenIDs) add(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]time.Time)
	}
	if len(s.m) >= maxSeen {
		for k, t := range s.m {
			if !now.Before(t) {
				delete(s.m, k)
			}
		}
		// Still full: forget arbitrary ids. A forgotten id that is
		// delivered again is applied again, which changes nothing.
		for k := range s.m {
			if len(s.m) < maxSeen {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[id] = now.Add(s.ttl)
}
