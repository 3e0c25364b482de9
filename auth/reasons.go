package auth

// Reasons say why a decision was taken: every Error carries one, and the
// accepted decisions carry ReasonOK. They are the closed set of label values
// of hasura_auth_proxy_auth_decisions_total{reason} and the "reason" field of
// the refusal log lines, so a value never comes from the request. Package auth
// owns them; package metrics pre-creates each at zero and folds any other
// string to "other" (TestReasonsAreMetricsLabels keeps the two sets equal).
const (
	// ReasonOK is every accepted decision (allowed, anonymous, admin).
	ReasonOK = "ok"
	// ReasonMissing is no token where one is required (no unauthorized role configured).
	ReasonMissing = "missing"
	// ReasonMalformed is a token that is not a well-formed JWT (bad base64, JSON, header or scheme).
	ReasonMalformed = "malformed"
	// ReasonMultiple is more than one token (header and cookie, or repeated), Hasura's "Multiple JWTs found".
	ReasonMultiple = "multiple"
	// ReasonExpired is a token past exp (after the allowed skew).
	ReasonExpired = "expired"
	// ReasonNotYetValid is a token before nbf (after the allowed skew).
	ReasonNotYetValid = "not_yet_valid"
	// ReasonIssuedInFuture is a token whose iat lies in the future (after the allowed skew).
	ReasonIssuedInFuture = "issued_in_future"
	// ReasonBadSignature is a signature that does not verify with the selected key.
	ReasonBadSignature = "bad_signature"
	// ReasonBadAlgorithm is an alg that is not allowed for the key (none, HS/RS confusion, ...).
	ReasonBadAlgorithm = "bad_algorithm"
	// ReasonUnknownKID is a kid that is in no key set, even after the rate-limited refresh.
	ReasonUnknownKID = "unknown_kid"
	// ReasonNoKeys is no usable key at all (never fetched, or too stale): a proxy-side problem, not the client's.
	ReasonNoKeys = "no_keys"
	// ReasonBadIssuer is an iss that matches no configured issuer.
	ReasonBadIssuer = "bad_issuer"
	// ReasonBadAudience is an aud that does not contain the configured audience.
	ReasonBadAudience = "bad_audience"
	// ReasonBadAZP is an azp (Clerk's authorized party) that is not an allowed origin.
	ReasonBadAZP = "bad_azp"
	// ReasonClaimsInvalid is a Hasura claims object that is absent or not shaped as Hasura requires.
	ReasonClaimsInvalid = "claims_invalid"
	// ReasonRoleMissing is claims without a usable default role.
	ReasonRoleMissing = "role_missing"
	// ReasonRoleNotAllowed is an x-hasura-role the token's allowed roles do not include.
	ReasonRoleNotAllowed = "role_not_allowed"
	// ReasonBadAdminSecret is a wrong admin secret.
	ReasonBadAdminSecret = "bad_admin_secret"
	// ReasonAdminSecretDisabled is an admin secret presented while admin passthrough is off.
	ReasonAdminSecretDisabled = "admin_secret_disabled"
	// ReasonTokenTooLarge is a token longer than the configured limit, refused before parsing.
	ReasonTokenTooLarge = "token_too_large"
	// ReasonMissingExp is a token without exp where the configuration requires one.
	ReasonMissingExp = "missing_exp"
	// ReasonBadClaimValue is a session variable value of the wrong type or shape (not a string, array, ...).
	ReasonBadClaimValue = "bad_claim_value"
	// ReasonRevoked is a valid token whose session (sid) or user (sub) was
	// revoked by a Clerk webhook or the revoke command.
	ReasonRevoked = "revoked"
)

// Reasons returns every reason constant, ReasonOK first, in a fresh slice.
func Reasons() []string {
	return []string{ReasonOK, ReasonMissing, ReasonMalformed, ReasonMultiple, ReasonExpired, ReasonNotYetValid,
		ReasonIssuedInFuture, ReasonBadSignature, ReasonBadAlgorithm, ReasonUnknownKID, ReasonNoKeys,
		ReasonBadIssuer, ReasonBadAudience, ReasonBadAZP, ReasonClaimsInvalid, ReasonRoleMissing,
		ReasonRoleNotAllowed, ReasonBadAdminSecret, ReasonAdminSecretDisabled, ReasonTokenTooLarge,
		ReasonMissingExp, ReasonBadClaimValue, ReasonRevoked}
}
