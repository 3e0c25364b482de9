package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

func TestClerkWebhookSection(t *testing.T) {
	const base = `
upstream: {url: "http://127.0.0.1:8080", admin_secret: "s"}
auth:
  jwt_secret: {type: HS256, key: "0123456789abcdef0123456789abcdef"}
`
	const fileSecret, envSecret = "whsec_ZmlsZS1zZWNyZXQ=", "whsec_ZW52LXNlY3JldA=="
	tests := []struct {
		name         string
		yaml         string
		env          map[string]string
		wantPath     string
		wantSecret   string
		wantLifetime time.Duration
		wantErr      string
	}{
		{name: "absent: off, an hour", yaml: base, wantLifetime: time.Hour},
		{name: "from the file", yaml: base + "clerk_webhook: {path: /clerk/webhook, signing_secret: " + fileSecret + ", max_token_lifetime: 2h}\n",
			wantPath: "/clerk/webhook", wantSecret: fileSecret, wantLifetime: 2 * time.Hour},
		{name: "Clerk's variable wins", yaml: base + "clerk_webhook: {path: /clerk/webhook, signing_secret: " + fileSecret + "}\n",
			env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": envSecret}, wantPath: "/clerk/webhook", wantSecret: envSecret, wantLifetime: time.Hour},
		{name: "the variable alone", yaml: base + "clerk_webhook: {path: /clerk/webhook}\n",
			env: map[string]string{"CLERK_WEBHOOK_SIGNING_SECRET": envSecret}, wantPath: "/clerk/webhook", wantSecret: envSecret, wantLifetime: time.Hour},
		{name: "path without secret", yaml: base + "clerk_webhook: {path: /clerk/webhook}\n", wantErr: "clerk_webhook.signing_secret: required"},
		{name: "Hasura path", yaml: base + "clerk_webhook: {path: /v1/graphql, signing_secret: " + fileSecret + "}\n",
			wantErr: "clerk_webhook.path: must not shadow a Hasura path"},
		{name: "unknown key", yaml: base + "clerk_webhook: {secret: x}\n", wantErr: "clerk_webhook.secret: unknown key; clerk_webhook takes path, signing_secret, max_token_lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.yaml), envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := c.ClerkWebhook
			if w.Path != tt.wantPath || w.SigningSecret.Reveal() != tt.wantSecret || w.MaxTokenLifetime != tt.wantLifetime {
				t.Errorf("clerk_webhook = %q, %q, %s; want %q, %q, %s", w.Path, w.SigningSecret.Reveal(), w.MaxTokenLifetime,
					tt.wantPath, tt.wantSecret, tt.wantLifetime)
			}
		})
	}
}
