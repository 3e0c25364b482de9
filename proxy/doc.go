// Package proxy is the client-facing half of hasura-auth-proxy: an
// http.Handler that authenticates each request with an [Authenticator]
// (the auth package) and forwards it to Hasura through
// httputil.ReverseProxy with Hasura's admin secret and the trusted
// x-hasura-* session headers, and that does the same for GraphQL
// subscriptions over WebSocket.
//
// # What the Handler guarantees
//
// The forwarding contract, in order (identityHeaders in identity.go, called
// by the HTTP Rewrite hook and by the WebSocket dial alike):
//
//  1. Strip: every header whose name starts with "x-hasura-" (any case, "_"
//     counted as "-", every value) is removed from the request. Client
//     X-Forwarded-For, -Host and -Proto are replaced by what the proxy saw;
//     Authorization and Cookie are removed unless upstream.forward_authorization
//     and upstream.forward_cookie keep them (on a WebSocket they travel in
//     the rewritten connection_init, never in the upgrade request).
//  2. Set: X-Hasura-Admin-Secret, X-Hasura-Role (never empty) and one
//     lower-case header per session variable are set from the verified
//     session, plus X-Request-Id.
//  3. Guard: a last check in the transport (guard.go) refuses to send any
//     request that carries the admin secret without exactly one non-empty
//     X-Hasura-Role equal to the role the proxy chose; the WebSocket dial
//     runs the same check before connecting. Whatever a bug earlier in the
//     chain did, Hasura never gets the admin secret with a role the client
//     chose.
//
// Before any token work, a client without the admin secret reaches only the
// paths of upstream.allowed_paths ([AllowList], allowlist.go); wrong admin
// secrets are throttled per client ([AdminThrottleConfig]). Other OPTIONS
// requests and GET/HEAD /healthz, /hasura/healthz and /v1/version pass
// without a token, stripped and without the admin secret.
//
// Refusals are answered exactly as Hasura's JWT mode answers them
// (errors.go): the GraphQL error shape with HTTP 200 on /v1/graphql and
// /v1beta1/relay, the same body with the original status on
// /v1alpha1/graphql, and {"error","path","code"} elsewhere; with
// auth.error_status "http" an auth refusal is 401 (with WWW-Authenticate),
// or 403 for access-denied, on every path. The client sees Hasura's message;
// the access log sees the detail.
//
// Every answer carries the CORS headers of Options.CORS ([CORS], cors.go),
// and the proxy answers CORS preflights itself. When Options.Limits is set,
// authenticated GraphQL requests and WebSocket operations are admitted by it
// ([Limits], limits.go, ws_limits.go) after the role is chosen and before
// anything is forwarded. [Handler.CloseSessions] closes the sockets of
// revoked sessions (wsrevoke.go); the revocation package calls it.
//
// # The WebSocket path
//
// An upgrade on /v1/graphql, /v1alpha1/graphql or /v1beta1/relay is served
// by the proxy itself, not forwarded: it checks the Origin
// (websocket.allowed_origins), terminates the client's socket, picks the
// subprotocol as Hasura does (graphql-transport-ws or the legacy
// graphql-ws), authenticates connection_init with the same Authenticator as
// HTTP, dials Hasura with the identity headers and a rewritten
// connection_init that carries only them, and relays messages both ways
// until either side closes or the token expires. The operator's guide is
// docs/websocket.md.
//
// Per connection there are two goroutines: the net/http handler goroutine,
// which runs the init phase and then relays client -> Hasura, and one
// goroutine relaying Hasura -> client. Each peer has one reader; data
// messages to the client are serialized by wsConn.cliWrite, and close
// frames (WriteControl) may be sent from anywhere. Any goroutine (a relay,
// the expiry timer, shutdown, a revocation) ends a connection with
// wsConn.stop(cause): the first cause wins; it sends each peer its close
// frame (after the legacy connection_error, if any) and a read deadline
// closeGrace away. The readers keep reading, dropping messages, until the
// peer's close answer or the deadline; then the handler closes both TCP
// connections, server first as RFC 6455 asks.
//
// # Concurrency and ownership
//
// A [Handler] is safe for concurrent use and owns no goroutine outside the
// requests it serves: each WebSocket's goroutines end before its ServeHTTP
// returns. http.Server.Shutdown does not track hijacked connections, so
// whoever runs the server calls [Handler.CloseWebSockets] during shutdown
// with its own deadline. The per-request state (the exchange in handler.go)
// belongs to one request and is shared only by that request's handler,
// Rewrite hook, guard and error handler through its context. Configuration
// values ([Config], [WebSocketConfig], [ServerConfig]) are plain values:
// Validate reports every problem, naming the YAML field, and does no I/O;
// New copies what it needs.
//
// # Where each concern lives
//
//	proxy.go         Config (upstream:), Options, Handler, New, NewTransport
//	handler.go       ServeHTTP and the per-request exchange, body limits, upstream errors
//	identity.go      identityHeaders: strip-then-set, X-Forwarded-*, shared by HTTP and WebSocket
//	rewrite.go       the ReverseProxy Rewrite and ModifyResponse hooks, x-hasura-* helpers
//	guard.go         the last-line admin-secret guard transport, small-body buffering
//	accesslog.go     the access log line, request ids, the copy buffer pool
//	errors.go        Hasura's refusal bodies and statuses per endpoint family
//	allowlist.go     upstream.allowed_paths
//	adminthrottle.go throttling wrong admin secrets per client
//	clientip.go      server.trusted_proxies and the client IP
//	cors.go          server.cors_domain
//	limits.go        the API limits hook on HTTP
//	webhook.go       Hasura's auth-webhook protocol (server.webhook_path)
//	server.go        ServerConfig (server:) and NewServer
//	ws.go            wsProxy and wsConn: construction and the stop/close lifecycle
//	ws_config.go     WebSocketConfig (websocket:), defaults, Validate
//	ws_registry.go   open-socket registry, CloseWebSockets
//	ws_handshake.go  upgrade paths, Origin check, subprotocol, the upgrade itself
//	ws_init.go       messages before connection_init, its authentication, expiry
//	ws_dial.go       dialling Hasura, the rewritten connection_init
//	ws_relay.go      both relay directions and why each ends
//	ws_stream.go     streaming large client messages; ws_budget.go the buffer budget
//	ws_limits.go     per-IP, per-user and API limits on sockets
//	wsmsg.go         parsing and building graphql-ws / graphql-transport-ws messages
//	wsclose.go       Hasura's close reasons; wsrevoke.go closing revoked sessions
package proxy
