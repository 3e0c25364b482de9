package auth

import (
	"context"
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// KeySource supplies the verification keys of one configured JWT secret.
// Implementations are safe for concurrent use; Keyfunc never blocks on a
// background refresh (it may wait, bounded, for a refresh it triggered itself
// because a token named an unknown kid).
type KeySource interface {
	// Keyfunc returns the golang-jwt key function for a request whose context
	// is ctx. Errors wrap ErrNoKeys or ErrUnknownKID where those apply.
	Keyfunc(ctx context.Context) jwt.Keyfunc
	// Ready reports nil when usable keys are held, else why not.
	Ready() error
	// Generation changes whenever a refresh removes or replaces a key that
	// was previously held, so results verified under an older generation can
	// be discarded.
	Generation() uint64
}

// Sentinel errors returned (wrapped) by KeySource key functions.
var (
	// ErrNoKeys means the source holds no usable keys (never fetched, or the
	// last good set is older than jwks.max_stale).
	ErrNoKeys = errors.New("no usable keys")
	// ErrUnknownKID means the token names a kid that is not in the key set,
	// even after the refresh it was allowed to trigger.
	ErrUnknownKID = errors.New("unknown kid")
)
