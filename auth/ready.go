package auth

import (
	"context"
	"errors"
	"fmt"
)

// WaitReady blocks until every secret has usable keys (nil) or ctx ends. It
// needs Run to be running for jwk_url secrets to become ready; static keys
// are ready at once. When ctx ends first, the error wraps ctx.Err() and says
// what is still missing (the Ready error, which never holds a secret).
//
// It is meant for one-shot callers such as the verify command, which must
// not judge a token before the keys the proxy would use are loaded.
func (a *Authenticator) WaitReady(ctx context.Context) error {
	for _, rk := range a.remote {
		if err := rk.WaitReady(ctx); err != nil {
			if why := a.Ready(); why != nil {
				return fmt.Errorf("%w: %w", err, why)
			}
			return err
		}
	}
	return nil
}

// WaitFetched blocks until every jwk_url secret has usable keys (nil) or its
// first fetch has failed (the errors of those that failed, joined, each
// naming the URL without credentials or query), or ctx ends (ctx.Err()
// wrapped with what is missing). It answers within one fetch_timeout of Run
// starting: for one-shot callers (verify) that must not wait through retries
// to report that the keys are unreachable.
func (a *Authenticator) WaitFetched(ctx context.Context) error {
	var errs []error
	for _, rk := range a.remote {
		if err := rk.WaitFetched(ctx); err != nil {
			if ctx.Err() != nil {
				if why := a.Ready(); why != nil {
					return fmt.Errorf("%w: %w", err, why)
				}
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
