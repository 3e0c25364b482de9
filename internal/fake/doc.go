// Package fake holds the one stand-in for each real thing the proxy talks
// to: [Clerk], an issuer that plays Clerk's Frontend API (a JWKS and tokens
// shaped like Clerk's "hasura" JWT template), and [Hasura], a stand-in
// Hasura GraphQL Engine (HTTP and both WebSocket protocols) that records
// what reaches it. The demo, every Go test and the benchmark use these two
// instead of writing their own, so they cannot drift apart.
//
// # Tests
//
// In a test, start each on an ephemeral 127.0.0.1 port; both stop when the
// test ends:
//
//	clerk := fake.StartClerk(t)
//	hasura := fake.StartHasura(t, fake.WithAdminSecret(secret))
//	// configure the proxy with clerk.JWKSURL(), clerk.URL (the issuer)
//	// and hasura.URL, then:
//	tok, _ := clerk.Mint(fake.Claims{User: "alice", Role: "user"})
//	// ... send a request through the proxy ...
//	got, _ := hasura.Last() // what the proxy forwarded
//
// Start* take a [TB] (a *testing.T or *testing.B): a failure to listen fails
// the test, and Close is registered with Cleanup. Nothing in this package
// imports testing, so the demo links none of it.
//
// # Misbehaving on demand
//
// Both switch their answers while running, for tests of what the proxy does
// when its dependencies fail:
//
//   - [Clerk.SetAnswer]: the key set, HTTP 500 or 503, malformed JSON, an
//     empty key set, a document larger than any sane limit, or no answer;
//     [Clerk.HoldJWKS] and [Clerk.ReleaseJWKS] gate fetches; [Clerk.Rotate],
//     [Clerk.Retire] and [Clerk.SetKeys] change the published keys;
//     [Clerk.Fetches] and [Clerk.WaitFetches] count fetches, so a test waits
//     on the counter, never on the clock.
//   - [Hasura.SetMode]: answer, fail with 500, hang, hold until
//     [Hasura.Release] (announced on [Hasura.Arrived]), or drop the
//     connection; per request, a query string with hang=1 or slow=1 does
//     the same; [Hasura.SetHealthy] switches /healthz, and
//     [Hasura.HealthChecks] counts the probes.
//
// # WebSockets
//
// [Hasura] speaks graphql-transport-ws and the legacy graphql-ws on
// /v1/graphql, choosing between them as Hasura does. connection_init is
// checked like Hasura checks it (its payload's headers, overridden by the
// upgrade request's x-hasura-*), and each subscription gets the session
// [WithEvents] times, then complete; with WithEvents(0, 0) subscriptions
// stay open and silent ([Hasura.Subscriptions] counts them).
// [Hasura.Sockets] records every upgrade and its connection_init payloads.
//
// # Records
//
// A Hasura keeps the latest 4096 requests and sockets ([WithRecordLimit]
// changes that; 0 keeps none, for the demo and the benchmark); its counts
// stay exact.
//
// # Without a test
//
// [NewClerk] and [NewHasura] build the same stand-ins without serving them:
// serve [Clerk.Handler] and [Hasura.Handler] yourself (the demo does, with
// its own servers), set the URL field before the first request, and call
// Close when done.
//
// # Concurrency
//
// Every exported method of [Clerk] and [Hasura] is safe for concurrent use.
// The URL fields are written once, before the first request, and only read
// afterwards.
package fake

// TB is the part of testing.TB that Start* use; *testing.T, *testing.B and
// *testing.F satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}
