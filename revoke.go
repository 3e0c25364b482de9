package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/revocation"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
)

// runRevoke is `hasura-auth-proxy revoke -config FILE (-session ID | -user
// ID)`: an operator's revocation in an incident, written to the Redis of
// the configuration (redis.url) for clerk_webhook.max_token_lifetime, so
// every replica refuses the session or user within a second. Without a
// Redis there is no shared store to write to: each replica only learns
// revocations from its own webhook deliveries.
func runRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hasura-auth-proxy revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.yaml", "configuration file")
	session := fs.String("session", "", "Clerk session id to revoke (a token's sid, sess_...)")
	user := fs.String("user", "", "Clerk user id to revoke (a token's sub, user_...)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 || (*session == "") == (*user == "") {
		fmt.Fprintln(stderr, "usage: hasura-auth-proxy revoke -config FILE (-session ID | -user ID)")
		return exitCode(2)
	}
	cfg, err := config.Load(*configPath, os.Getenv)
	if err != nil {
		return fmt.Errorf("configuration %s: %w", *configPath, err)
	}
	if !cfg.Redis.Enabled() {
		return errors.New("revoke needs redis.url: without a shared Redis each replica keeps its own revocations (deliver the Clerk event to each replica's clerk_webhook.path instead)")
	}
	rev := revocation.Revocation{Kind: revocation.KindSession, ID: *session}
	if *user != "" {
		rev = revocation.Revocation{Kind: revocation.KindUser, ID: *user}
	}
	rev.Until = time.Now().Add(cfg.ClerkWebhook.MaxTokenLifetime)
	client, err := store.NewClient(cfg.Redis)
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := revocation.NewRedis(client, nil, nil).Share(ctx, rev, ""); err != nil {
		return fmt.Errorf("%w (redis %s)", err, cfg.Redis.SafeURL())
	}
	fmt.Fprintf(stdout, "revoked %s %s until %s on every replica using redis %s\n",
		rev.Kind, rev.ID, rev.Until.UTC().Format(time.RFC3339), cfg.Redis.SafeURL())
	return nil
}
