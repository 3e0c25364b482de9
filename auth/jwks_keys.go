package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/MicahParks/jwkset"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// maxLoggedKID bounds how much of an attacker-chosen kid reaches a log line.
const maxLoggedKID = 32

// keySnapshot is one immutable key set. It is never modified after being
// published; a refresh builds a new one.
type keySnapshot struct {
	byKID   map[string]jwkset.JWK
	keys    []jwkset.JWK         // every key, in JWKS order, including those without kid
	mem     *jwkset.MemoryJWKSet // the same keys, for the JSON/Marshal methods
	fetched time.Time            // last successful fetch (or 304) of these keys; zero if none
}

func (s *keySnapshot) empty() bool { return len(s.keys) == 0 }

func newSnapshot(keys []jwkset.JWK, fetched time.Time) *keySnapshot {
	s := &keySnapshot{byKID: make(map[string]jwkset.JWK, len(keys)), keys: keys, mem: jwkset.NewMemoryStorage(),
		fetched: fetched}
	for _, k := range keys {
		if kid := k.Marshal().KID; kid != "" {
			s.byKID[kid] = k
		}
	}
	// MemoryJWKSet.KeyReplaceAll cannot fail; the copy keeps s.keys unshared.
	_ = s.mem.KeyReplaceAll(context.Background(), slices.Clone(keys))
	return s
}

// publish installs a new snapshot of keys, bumping the generation when a
// held key is removed or changed. Callers hold fetchMu.
func (k *RemoteKeys) publish(keys []jwkset.JWK, fetched time.Time) {
	old := k.snap.Load()
	bump := removesOrChanges(old.keys, keys)
	if added, removed := kidChanges(old.keys, keys); !old.empty() && (len(added) > 0 || len(removed) > 0) {
		// A rotation is the event to look for when unknown_kid denials
		// rise; kids come from the JWKS, not from tokens.
		k.log.Info("jwks keys changed", zap.Strings("added_kids", added), zap.Strings("removed_kids", removed))
	}
	k.snap.Store(newSnapshot(keys, fetched))
	if bump {
		// After the new keys are installed, never before: a verification
		// that reads the new generation must not find a removed key in the
		// old snapshot, or its result would be cached under the new
		// generation and outlive the key.
		k.generation.Add(1)
	}
	k.metrics.JWKSKeys(k.name, len(keys))
	k.signal()
}

// kidChanges lists the kids present only in new (added) and only in old
// (removed), each truncated for logging.
func kidChanges(old, new []jwkset.JWK) (added, removed []string) {
	in := func(set []jwkset.JWK, kid string) bool {
		for _, j := range set {
			if j.Marshal().KID == kid {
				return true
			}
		}
		return false
	}
	for _, j := range new {
		if kid := j.Marshal().KID; !in(old, kid) {
			added = append(added, loggableKID(kid))
		}
	}
	for _, j := range old {
		if kid := j.Marshal().KID; !in(new, kid) {
			removed = append(removed, loggableKID(kid))
		}
	}
	return added, removed
}

func (k *RemoteKeys) signal() {
	k.notifyMu.Lock()
	close(k.notify)
	k.notify = make(chan struct{})
	k.notifyMu.Unlock()
}

// removesOrChanges reports whether some key of old is missing from new, or is
// present under the same kid with different material, alg or use.
func removesOrChanges(old, new []jwkset.JWK) bool {
	byKID := make(map[string]jwkset.JWK, len(new))
	var noKID []jwkset.JWK
	for _, k := range new {
		if kid := k.Marshal().KID; kid != "" {
			byKID[kid] = k
		} else {
			noKID = append(noKID, k)
		}
	}
	for _, o := range old {
		kid := o.Marshal().KID
		if kid == "" {
			if !slices.ContainsFunc(noKID, func(n jwkset.JWK) bool { return sameKey(o, n) }) {
				return true
			}
			continue
		}
		n, ok := byKID[kid]
		if !ok || !sameKey(o, n) {
			return true
		}
	}
	return false
}

func sameKey(a, b jwkset.JWK) bool {
	ma, mb := a.Marshal(), b.Marshal()
	if ma.ALG != mb.ALG || ma.USE != mb.USE {
		return false
	}
	ka, ok := a.Key().(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b.Key())
}

// usable returns the current snapshot when it holds keys younger than
// max_stale, else nil. Keys past max_stale are dropped here (once, by CAS),
// bumping the generation, so expiry needs no lock and no timer to be exact.
func (k *RemoteKeys) usable() *keySnapshot {
	s := k.snap.Load()
	if s.empty() {
		return nil
	}
	if k.now().Sub(s.fetched) <= k.cfg.MaxStale {
		return s
	}
	if k.snap.CompareAndSwap(s, newSnapshot(nil, s.fetched)) {
		k.generation.Add(1)
		k.stale.Store(false)
		k.metrics.JWKSKeys(k.name, 0)
		k.metrics.JWKSStale(k.name, false)
		k.log.Error("jwks keys dropped: older than max_stale; tokens are refused until a fetch succeeds",
			zap.Time("last_success", s.fetched), zap.Duration("max_stale", k.cfg.MaxStale))
		k.signal()
	}
	return nil
}

// lookupUnknown handles a kid that is not in the held set: it starts (or
// joins) the single in-flight refresh when the rate limit allows, waits for
// it at most UnknownKIDWait and ctx, then looks again.
func (k *RemoteKeys) lookupUnknown(ctx context.Context, kid string) (jwkset.JWK, error) {
	k.kidMu.Lock()
	flight := k.kidFlight
	if flight == nil && k.runCtx != nil && k.runCtx.Err() == nil {
		now := k.now()
		if k.lastKidRun.IsZero() || now.Sub(k.lastKidRun) >= k.cfg.UnknownKIDRefreshInterval {
			k.lastKidRun = now
			flight = make(chan struct{})
			k.kidFlight = flight
			k.kidWG.Add(1)
			go k.kidRefresh(k.runCtx, flight)
			if ce := k.log.Check(zap.InfoLevel, "unknown kid; refreshing jwks"); ce != nil {
				ce.Write(zap.String("kid", loggableKID(kid)))
			}
		}
	}
	k.kidMu.Unlock()
	if flight == nil {
		return jwkset.JWK{}, fmt.Errorf("%w %s (refresh rate-limited)", ErrUnknownKID, loggableKID(kid))
	}
	t := time.NewTimer(k.cfg.UnknownKIDWait)
	defer t.Stop()
	select {
	case <-flight:
	case <-t.C:
	case <-ctx.Done():
	}
	s := k.usable()
	if s == nil {
		return jwkset.JWK{}, fmt.Errorf("jwks %s: %w", k.name, ErrNoKeys)
	}
	if jwk, ok := s.byKID[kid]; ok {
		return jwk, nil
	}
	return jwkset.JWK{}, fmt.Errorf("%w %s", ErrUnknownKID, loggableKID(kid))
}

// kidRefresh is the single in-flight unknown-kid refresh. It runs under the
// Run context, not the request's, so a client that gives up does not abort
// the fetch other requests are waiting for.
func (k *RemoteKeys) kidRefresh(ctx context.Context, done chan struct{}) {
	defer k.kidWG.Done()
	k.metrics.JWKSRefresh(k.name, metrics.JWKSUnknownKIDRefresh)
	k.fetch(ctx)
	k.kidMu.Lock()
	k.kidFlight = nil
	k.kidMu.Unlock()
	close(done)
}

// loggableKID quotes a token's kid, truncated: it is attacker input.
func loggableKID(kid string) string {
	if len(kid) > maxLoggedKID {
		return strconv.Quote(kid[:maxLoggedKID]) + "..."
	}
	return strconv.Quote(kid)
}

// remoteStorage adapts RemoteKeys to jwkset.Storage for keyfunc. Reads come
// from the current snapshot; writes are refused.
type remoteStorage struct{ k *RemoteKeys }

var _ jwkset.Storage = remoteStorage{}

// KeyRead returns the key for kid, refreshing once (bounded) on a miss.
func (s remoteStorage) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	snap := s.k.usable()
	if snap == nil {
		return jwkset.JWK{}, fmt.Errorf("jwks %s: %w", s.k.name, ErrNoKeys)
	}
	if jwk, ok := snap.byKID[kid]; ok {
		return jwk, nil
	}
	return s.k.lookupUnknown(ctx, kid)
}

// KeyReadAll returns every held key (tokens without kid try each), or
// ErrNoKeys when none is usable.
func (s remoteStorage) KeyReadAll(context.Context) ([]jwkset.JWK, error) {
	snap := s.k.usable()
	if snap == nil {
		return nil, fmt.Errorf("jwks %s: %w", s.k.name, ErrNoKeys)
	}
	return slices.Clone(snap.keys), nil
}

// KeyDelete is refused: the key set is read-only.
func (remoteStorage) KeyDelete(context.Context, string) (bool, error) { return false, errReadOnly }

// KeyReplaceAll is refused: the key set is read-only.
func (remoteStorage) KeyReplaceAll(context.Context, []jwkset.JWK) error { return errReadOnly }

// KeyWrite is refused: the key set is read-only.
func (remoteStorage) KeyWrite(context.Context, jwkset.JWK) error { return errReadOnly }

// mem returns the MemoryJWKSet of the usable snapshot (empty when none).
func (s remoteStorage) mem() *jwkset.MemoryJWKSet {
	if snap := s.k.usable(); snap != nil {
		return snap.mem
	}
	return jwkset.NewMemoryStorage()
}

// JSON returns the held keys as a JWK Set.
func (s remoteStorage) JSON(ctx context.Context) (json.RawMessage, error) {
	m, err := s.Marshal(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// JSONPublic returns the held keys as a JWK Set (they are all public).
func (s remoteStorage) JSONPublic(ctx context.Context) (json.RawMessage, error) {
	return s.mem().JSONPublic(ctx)
}

// JSONPrivate returns the held keys as a JWK Set; they hold no private part.
func (s remoteStorage) JSONPrivate(ctx context.Context) (json.RawMessage, error) {
	return s.mem().JSONPrivate(ctx)
}

// JSONWithOptions returns the held keys as a JWK Set marshalled with options.
func (s remoteStorage) JSONWithOptions(ctx context.Context, mo jwkset.JWKMarshalOptions,
	vo jwkset.JWKValidateOptions) (json.RawMessage, error) {
	return s.mem().JSONWithOptions(ctx, mo, vo)
}

// Marshal returns the held keys as a JWKSMarshal (never a nil Keys slice).
func (s remoteStorage) Marshal(ctx context.Context) (jwkset.JWKSMarshal, error) {
	m, err := s.mem().Marshal(ctx)
	if m.Keys == nil {
		m.Keys = []jwkset.JWKMarshal{}
	}
	return m, err
}

// MarshalWithOptions returns the held keys as a JWKSMarshal built with options.
func (s remoteStorage) MarshalWithOptions(ctx context.Context, mo jwkset.JWKMarshalOptions,
	vo jwkset.JWKValidateOptions) (jwkset.JWKSMarshal, error) {
	m, err := s.mem().MarshalWithOptions(ctx, mo, vo)
	if m.Keys == nil {
		m.Keys = []jwkset.JWKMarshal{}
	}
	return m, err
}
