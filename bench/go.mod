module github.com/hasura-auth-proxy/hasura-auth-proxy/bench

go 1.26.8

require (
	github.com/gorilla/websocket v1.5.3
	github.com/tsenart/vegeta/v12 v12.13.0
	golang.org/x/image v0.48.0
)

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/influxdata/tdigest v0.0.1 // indirect
	github.com/josharian/intern v1.0.0 // indirect
	github.com/mailru/easyjson v0.7.7 // indirect
	github.com/rs/dnscache v0.0.0-20230804202142-fc85eb664529 // indirect
	golang.org/x/net v0.27.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

require github.com/hasura-auth-proxy/hasura-auth-proxy v0.0.0

// The benchmark's Clerk and Hasura stand-ins are the repository's own
// (internal/fake), built from this working tree.
replace github.com/hasura-auth-proxy/hasura-auth-proxy => ../
