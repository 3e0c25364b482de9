package auth

import (
	"fmt"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// Hasura error codes, as Hasura's JWT mode puts them in extensions.code.
const (
	CodeInvalidHeaders       = "invalid-headers"
	CodeInvalidJWT           = "invalid-jwt"
	CodeJWTInvalidClaims     = "jwt-invalid-claims"
	CodeJWTMissingRoleClaims = "jwt-missing-role-claims"
	CodeAccessDenied         = "access-denied"
)

// Results are the closed set of authentication outcomes
// (hasura_auth_proxy_auth_decisions_total{result}).
const (
	ResultAllowed   = metrics.ResultAllowed
	ResultAnonymous = metrics.ResultAnonymous
	ResultAdmin     = metrics.ResultAdmin
	ResultDenied    = metrics.ResultDenied
)

// Error is an authentication refusal. Code and Message are exactly what
// Hasura's JWT mode would answer (or, where this proxy is stricter than
// Hasura, a message in the same style); they are safe to send to the client.
// Reason is one of Reasons(), the label of the decision in metrics and
// logs. Detail is for logs only: it never holds a token, a secret or an
// unverified claim value. The HTTP status of a refusal is the proxy
// package's decision, not a property of the error.
//
// Errors are values: compare them with errors.Is, which matches on Code and
// Reason, or inspect them with errors.As.
type Error struct {
	Code    string
	Message string
	Reason  string
	Detail  string
}

// Error returns the code and message, then the detail in parentheses: a
// log line, not the client's answer (which is Code and Message).
func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Code + ": " + e.Message + " (" + e.Detail + ")"
	}
	return e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code and Reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Reason == e.Reason
}

// withDetail returns a copy of e carrying a log-only detail.
func (e *Error) withDetail(format string, args ...any) *Error {
	c := *e
	c.Detail = fmt.Sprintf(format, args...)
	return &c
}

func newErr(code, reason, msg string) *Error {
	return &Error{Code: code, Message: msg, Reason: reason}
}

func jwtErr(reason, msg string) *Error {
	return newErr(CodeInvalidJWT, reason, "Could not verify JWT: "+msg)
}

func claimsErr(reason, msg string) *Error {
	return newErr(CodeJWTInvalidClaims, reason, msg)
}

// The error catalogue of Hasura's JWT mode (the refusals of
// server/src-lib/Hasura/Server/Auth/JWT.hs and Hasura/Server/Auth.hs), plus the
// refusals where this proxy is deliberately stricter. The variables are
// templates: never modify them, use withDetail to attach log context.
var (
	ErrMissingToken      = newErr(CodeInvalidHeaders, ReasonMissing, "Missing 'Authorization' or 'Cookie' header in JWT authentication mode")
	ErrMalformedHeader   = newErr(CodeInvalidHeaders, ReasonMalformed, "Malformed Authorization header")
	ErrMultipleTokens    = newErr(CodeInvalidHeaders, ReasonMultiple, "Could not verify JWT: Multiple JWTs found")
	ErrNotInIssuer       = jwtErr(ReasonBadIssuer, "JWTNotInIssuer")
	ErrNoSignatures      = jwtErr(ReasonBadAlgorithm, "JWSError JWSNoSignatures")
	ErrInvalidSignature  = jwtErr(ReasonBadSignature, "JWSError JWSInvalidSignature")
	ErrBadAlgorithm      = jwtErr(ReasonBadAlgorithm, "JWSError JWSInvalidSignature")
	ErrUnknownKey        = jwtErr(ReasonUnknownKID, "JWSError JWSInvalidSignature")
	ErrNoUsableKeys      = jwtErr(ReasonNoKeys, "JWSError NoUsableKeys")
	ErrExpired           = jwtErr(ReasonExpired, "JWTExpired")
	ErrIssuedAtFuture    = jwtErr(ReasonIssuedInFuture, "JWTIssuedAtFuture")
	ErrNotYetValid       = jwtErr(ReasonNotYetValid, "JWTNotYetValid")
	ErrNotInAudience     = jwtErr(ReasonBadAudience, "JWTNotInAudience")
	ErrRoleNotAllowed    = newErr(CodeAccessDenied, ReasonRoleNotAllowed, "Your requested role is not in allowed roles")
	ErrAllowedRolesClaim = newErr(CodeJWTMissingRoleClaims, ReasonRoleMissing, "JWT claim does not contain x-hasura-allowed-roles")
	ErrDefaultRoleClaim  = newErr(CodeJWTMissingRoleClaims, ReasonRoleMissing, "JWT claim does not contain x-hasura-default-role")
	ErrBadAdminSecret    = &Error{Code: CodeAccessDenied, Reason: ReasonBadAdminSecret,
		Message: "invalid x-hasura-admin-secret/x-hasura-access-key"}
	ErrAdminSecretDisabled = &Error{Code: CodeAccessDenied, Reason: ReasonAdminSecretDisabled,
		Message: "invalid x-hasura-admin-secret/x-hasura-access-key"}

	// Stricter than Hasura: there is no Hasura message to copy.
	ErrMissingExp    = jwtErr(ReasonMissingExp, `token has no "exp" claim (required by auth.require.exp)`)
	ErrMissingIssuer = jwtErr(ReasonBadIssuer, `token has no "iss" claim (required by auth.require.iss)`)
	ErrMissingAud    = jwtErr(ReasonBadAudience, `token has no "aud" claim (required by auth.require.aud)`)
	ErrMissingAZP    = jwtErr(ReasonBadAZP, `token has no "azp" claim (required by auth.require.azp with auth.authorized_parties set)`)
	ErrBadAZP        = jwtErr(ReasonBadAZP, `token "azp" claim is not in auth.authorized_parties`)
	// ErrRevoked is a valid token whose session or user was revoked
	// (Options.Revocations): refused as an invalid token.
	ErrRevoked = jwtErr(ReasonRevoked, "the session was revoked")
)

// compactDecodeErr is Hasura's answer to a token that is not three parts.
func compactDecodeErr(parts int) *Error {
	return jwtErr(ReasonMalformed, fmt.Sprintf("JWSError (CompactDecodeError Invalid number of parts: Expected 3 parts; got %d)", parts))
}

// tokenTooLargeErr refuses a token longer than auth.max_token_bytes before
// any decoding work is spent on it.
func tokenTooLargeErr(limit int) *Error {
	return jwtErr(ReasonTokenTooLarge, fmt.Sprintf("JWSError (CompactDecodeError token is larger than %d bytes)", limit))
}
