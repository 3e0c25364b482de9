package auth

// errCritical refuses a token whose JWS header carries "crit" (RFC 7515
// section 4.1.11): it lists extensions the recipient MUST understand, or the
// JWS is invalid. This proxy implements none (not even RFC 7797's "b64"), and
// a crit that is empty, not an array, or names a parameter of RFC 7515 itself
// is invalid anyway, so any crit is refused, at decoding, before any key or
// issuer is looked at. No unverified value is echoed.
var errCritical = jwtErr(ReasonMalformed, `JWSError (JSONDecodeError "Error in $: the JWS header lists critical extensions (crit) this server does not support")`)
