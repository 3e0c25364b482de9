// Package revocation refuses the tokens of signed-out Clerk sessions and
// deleted users before their exp.
//
// A JWT cannot be recalled: without this package a token keeps working
// until its exp, and a subscription it opened stays open. Clerk announces
// sign-outs, revocations and user deletions as signed webhooks (Svix, the
// Standard Webhooks scheme). Webhook verifies and parses them, and a Set
// holds each revoked session id (a token's sid) and user id (its sub) for
// Config.MaxTokenLifetime, the longest a token issued before the event can
// live. auth.Authenticator asks the Set about every verified token, cache
// hits included; the proxy closes the open WebSockets of a revoked session.
//
// With a Redis (the shared `redis:` section), Redis carries revocations to
// every replica: a revocation is written as a key with a TTL (so a replica
// started later loads it) and published on a channel (so running replicas
// apply it at once). See docs/revocation.md for the operator's guide.
package revocation

import (
	"errors"
	"fmt"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
)

// EnvSigningSecret overrides Config.SigningSecret; it is the name Clerk's
// own SDKs read the webhook signing secret from.
const EnvSigningSecret = "CLERK_WEBHOOK_SIGNING_SECRET"

// Config is the `clerk_webhook:` section.
type Config struct {
	// Path serves the webhook endpoint on the client port (Clerk must
	// reach it), e.g. /clerk/webhook. Empty: no endpoint (revocations can
	// still come from Redis and the revoke command).
	Path string `yaml:"path"`
	// SigningSecret is the endpoint's whsec_... secret from Clerk's
	// dashboard. Required with Path.
	SigningSecret auth.Secret `yaml:"signing_secret"`
	// MaxTokenLifetime is how long a revocation is kept: the longest
	// lifetime of the JWT templates whose tokens the proxy accepts. A token
	// issued just before the event is refused until then; after it, the
	// token's own exp refuses it.
	MaxTokenLifetime time.Duration `yaml:"max_token_lifetime"`
}

// DefaultConfig returns the defaults a config file overrides: no endpoint,
// revocations kept for an hour.
func DefaultConfig() Config { return Config{MaxTokenLifetime: time.Hour} }

// maxLifetime bounds MaxTokenLifetime: a revocation is memory (and a Redis
// key) held that long.
const maxLifetime = 30 * 24 * time.Hour

// Validate reports every problem, naming the field. It does no I/O.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, msg string) { errs = append(errs, fmt.Errorf("clerk_webhook.%s: %s", field, msg)) }
	if p := c.Path; p != "" {
		switch {
		case !strings.HasPrefix(p, "/"):
			add("path", "must start with /")
		case proxy.ShadowsHasura(p):
			add("path", "must not shadow a Hasura path")
		}
		switch {
		case c.SigningSecret == "":
			add("signing_secret", "required with clerk_webhook.path (Clerk dashboard, Webhooks, Signing Secret; or set "+EnvSigningSecret+")")
		default:
			if _, err := newVerifier(c.SigningSecret); err != nil {
				add("signing_secret", err.Error())
			}
		}
	}
	if c.MaxTokenLifetime < time.Second || c.MaxTokenLifetime > maxLifetime {
		add("max_token_lifetime", fmt.Sprintf("must be between 1s and %s, not %s", maxLifetime, c.MaxTokenLifetime))
	}
	return errors.Join(errs...)
}

// newVerifier checks the form of a signing secret and returns its
// verifier. The error never quotes the secret.
func newVerifier(secret auth.Secret) (*standardwebhooks.Webhook, error) {
	s := secret.Reveal()
	if !strings.HasPrefix(s, "whsec_") {
		return nil, errors.New(`must be the whsec_... signing secret Clerk shows for the endpoint`)
	}
	wh, err := standardwebhooks.NewWebhook(s)
	if err != nil {
		return nil, errors.New("the part after whsec_ must be non-empty base64")
	}
	return wh, nil
}
