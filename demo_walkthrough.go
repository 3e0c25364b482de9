package main

// The demo's printed walkthrough: the addresses and the commands to paste
// (see demo.go for what the demo starts).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
)

// WebSocket subprotocols, as Hasura names them.
const (
	protoTransportWS = fake.ProtoTransportWS // the graphql-ws library
	protoLegacyWS    = fake.ProtoLegacyWS    // subscriptions-transport-ws (Apollo)
)

// demoWSMessage is a message of either protocol.
type demoWSMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// demoText is what printDemo fills in.
type demoText struct {
	opts                       demoOptions
	proxy, ops, issuer, hasura string
	config, token              string
	tokenUser, tokenRole       string
	page                       string // the demo page (demo_page.go)
	// moved explains default ports that were taken.
	moved []string
}

// printDemo prints the addresses and the commands to paste. The "# =>" lines
// are what each command answers; the demo's test runs the commands and
// compares.
func printDemo(w io.Writer, t demoText) {
	bw := bufio.NewWriter(w)
	defer func() { _ = bw.Flush() }()
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	gql := t.proxy + "/v1/graphql"
	query := `-H 'Content-Type: application/json' -d '{"query":"{ session }"}'`
	session := func(role, user string) string {
		b, _ := json.Marshal(map[string]any{"data": map[string]any{"session": map[string]any{
			"x-hasura-admin-secret": true, "x-hasura-role": role, "x-hasura-user-id": user,
		}}})
		return string(b)
	}
	// Hasura's error body, fields in Hasura's (and the proxy's) order.
	hasuraErr := func(code, msg string) string {
		type ext struct {
			Path string `json:"path"`
			Code string `json:"code"`
		}
		type item struct {
			Message    string `json:"message"`
			Extensions ext    `json:"extensions"`
		}
		b, _ := json.Marshal(struct {
			Errors []item `json:"errors"`
		}{[]item{{Message: msg, Extensions: ext{Path: "$", Code: code}}}})
		return string(b)
	}
	mintURL := t.issuer + "/token?user=bob&role=editor&allowed=user,editor&ttl=10m"
	wsURL := "ws" + strings.TrimPrefix(t.proxy, "http") + "/v1/graphql"
	initPayload, _ := json.Marshal(map[string]any{"headers": map[string]string{"Authorization": "Bearer " + t.token}})
	initMsg, _ := json.Marshal(demoWSMessage{Type: "connection_init", Payload: initPayload})

	p("Open %s in a browser: a page on its own origin calling the proxy as a Clerk app does.\n\n", t.page)
	p("hasura-auth-proxy demo: the real proxy with a token issuer playing Clerk and a Hasura stand-in,\n")
	p("all in this process on 127.0.0.1 (nothing else is contacted).\n\n")
	p("  proxy (clients use this)     %s\n", t.proxy)
	p("  proxy ops                    %s/metrics  %s/readyz\n", t.ops, t.ops)
	p("  token issuer (plays Clerk)   %s/.well-known/jwks.json\n", t.issuer)
	p("  Hasura stand-in              %s (answers with the session it receives)\n", t.hasura)
	p("  proxy configuration          %s\n", t.config)
	for _, m := range t.moved {
		p("  note: %s\n", m)
	}
	p("\n")
	p("A token for %s (role %s, valid %s), as Clerk's \"hasura\" JWT template would issue:\n\n", t.tokenUser, t.tokenRole, t.opts.ttl)
	p("TOKEN=%s\n\n", t.token)
	p("Mint others (user, role, allowed, ttl (negative: expired), azp, iss):\n\n")
	p("TOKEN=$(curl -s '%s')\n\n", mintURL)

	p("1. Allowed. Hasura gets the verified session and the admin secret, never the client's x-hasura-* headers:\n\n")
	p("  curl -s %s -H \"Authorization: Bearer $TOKEN\" -H 'X-Hasura-User-Id: mallory' %s\n", gql, query)
	p("  # => %s\n\n", session(t.tokenRole, t.tokenUser))
	p("2. Refused: a role the token does not allow (Hasura's own error, HTTP 200 as on /v1/graphql):\n\n")
	p("  curl -s %s -H \"Authorization: Bearer $TOKEN\" -H 'X-Hasura-Role: admin' %s\n", gql, query)
	p("  # => %s\n\n", hasuraErr(auth.CodeAccessDenied, auth.ErrRoleNotAllowed.Message))
	p("3. Refused: no token.\n\n")
	p("  curl -s %s %s\n", gql, query)
	p("  # => %s\n\n", hasuraErr(auth.CodeInvalidHeaders, auth.ErrMissingToken.Message))
	p("4. Why is a token refused? verify runs the proxy's exact checks and explains:\n\n")
	p("  %s verify -config %s \"$TOKEN\"\n", t.opts.cmd, t.config)
	p("  # => exit status 0: ALLOWED, role: %s\n", t.tokenRole)
	p("  %s verify -config %s -role admin \"$TOKEN\"\n", t.opts.cmd, t.config)
	p("  # => exit status 1: REFUSED, %s: %s\n\n", auth.CodeAccessDenied, auth.ErrRoleNotAllowed.Message)
	p("5. Hasura's auth-webhook mode, same checks (HASURA_GRAPHQL_AUTH_HOOK=%s%s):\n\n", t.proxy, demoWebhook)
	p("  curl -s %s%s -H \"Authorization: Bearer $TOKEN\"\n", t.proxy, demoWebhook)
	p("  # => {\"Cache-Control\":\"max-age=<seconds left>\",\"Expires\":\"<exp as an HTTP date>\",\"X-Hasura-Role\":%q,\"X-Hasura-User-Id\":%q}\n\n", t.tokenRole, t.tokenUser)
	p("6. A subscription: the page (%s) shows one live, surviving each token expiry; nothing to install.\n", t.page)
	p("   The same from a terminal, optionally, with websocat (https://github.com/vi/websocat):\n\n")
	p("  (echo '%s'; echo '%s'; sleep 4) | websocat --protocol %s %s\n", initMsg,
		`{"type":"subscribe","id":"1","payload":{"query":"subscription { session }"}}`, protoTransportWS, wsURL)
	p("  # => {\"type\":\"connection_ack\"}, then %d x {\"type\":\"next\",\"id\":\"1\",\"payload\":{\"data\":{\"session\":{...}}}}, then {\"type\":\"complete\",\"id\":\"1\"}\n\n", 3)
	p("%s", demoLimitsSteps(t))
	printDemoSignOut(p, t)
	p("The proxy's log follows on stderr, one line per request with its decision and reason; metrics: %s/metrics\n\n", t.ops)
	p("%s\n", demoDone)
}
