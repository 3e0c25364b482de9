package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// segmentDecoder decodes JWT segments exactly as golang-jwt does by default
// (base64url without padding). It is read-only and shared.
var segmentDecoder = jwt.NewParser()

// decodedToken is a token split and decoded, before any signature check.
type decodedToken struct {
	// tok is nil when decodeErr is set.
	tok *jwt.Token
	// claims is never nil. It holds the payload's claims whenever they
	// decode, even when the rest of the token does not: Hasura's issuer
	// pre-match (tokenIssuer in server/src-lib/Hasura/Server/Auth/JWT.hs)
	// reads iss from the payload alone. Otherwise it is empty, so the token
	// has no iss and matches every secret.
	claims *claimSet
	// algErr is set when the header names "none" or an algorithm
	// golang-jwt does not implement; Hasura reports that at the signature
	// step, so it is held until then.
	algErr *Error
	// decodeErr is the first decoding failure, in jose's order; it is the
	// answer if the token is the one the issuer pre-match chose.
	decodeErr *Error
}

// joseAlgs are the "alg" values jose 0.10 and later parse (the Alg type in
// hs-jose src/Crypto/JOSE/JWA/JWS.hs, in its order; ES256K came with 0.10).
// Any other value fails compact decoding.
var joseAlgs = [...]string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
	"ES256K", "PS256", "PS384", "PS512", "none", "EdDSA"}

// Decoding failures, with jose's texts (hs-jose 0.10 to 0.12:
// src/Crypto/JOSE/Types/Internal.hs parseB64Url, src/Crypto/JOSE/JWS.hs the
// Signature FromJSON instance, src/Crypto/JOSE/Header.hs headerRequired,
// src/Crypto/JOSE/TH.hs endGuardExp), as Hasura prints them ("Could not
// verify JWT: " <> tshow e).
var (
	errNotBase64     = jwsDecodeErr("Not valid base64url")
	errHeaderNotJSON = jwsDecodeErr("protected header contains invalid JSON")
	errMissingAlg    = jwsDecodeErr(`missing required header "alg"`)
	errUnknownAlg    = jwsDecodeErr(`unrecognised value; expected: ["` + strings.Join(joseAlgs[:], `","`) + `"]`)
	errClaimsNotJSON = claimsDecodeErr("Error in $: the claims set is not a JSON object")
)

// jwsDecodeErr is jose's JWSError (JSONDecodeError msg).
func jwsDecodeErr(msg string) *Error {
	return jwtErr(ReasonMalformed, "JWSError (JSONDecodeError "+hsShow(msg)+")")
}

// claimsDecodeErr is jose's JWTClaimsSetDecodeError msg.
func claimsDecodeErr(msg string) *Error {
	return jwtErr(ReasonMalformed, "JWTClaimsSetDecodeError "+hsShow(msg))
}

// hsShow quotes s as Haskell's show does for the texts above: in double
// quotes, with backslash and double quote escaped. (show also escapes
// control and non-ASCII characters; no message here holds one.)
func hsShow(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// decodeToken performs compact decoding and claims decoding (catalogue rows
// 5-7). It fails only for a token over maxBytes; any other problem is
// d.decodeErr, the first one in the order jose 0.12 meets them
// (FromCompact for JWS and verifyJWSWithPayload): the number of parts, the
// payload's base64, the header's base64, JSON and alg, the types of kid, typ
// and cty, the signature's base64, then the claims.
func decodeToken(raw string, maxBytes int) (*decodedToken, *Error) {
	if len(raw) > maxBytes {
		return nil, tokenTooLargeErr(maxBytes)
	}
	d := &decodedToken{claims: &claimSet{}}
	// Never split an unbounded number of parts (CVE-2025-30204).
	d1 := strings.IndexByte(raw, '.')
	d2 := -1
	if d1 >= 0 {
		if i := strings.IndexByte(raw[d1+1:], '.'); i >= 0 {
			d2 = d1 + 1 + i
		}
	}
	var claimsErr *Error
	var payloadErr error
	if d2 >= 0 {
		var cb []byte
		if cb, payloadErr = segmentDecoder.DecodeSegment(raw[d1+1 : d2]); payloadErr == nil {
			c := &claimSet{}
			if claimsErr = decodeClaims(cb, c); claimsErr == nil {
				d.claims = c
			}
		}
	}
	if n := strings.Count(raw, "."); n != 2 {
		d.decodeErr = compactDecodeErr(n + 1)
		return d, nil
	}
	if payloadErr != nil {
		d.decodeErr = errNotBase64
		return d, nil
	}
	tok := &jwt.Token{Raw: raw}
	hb, err := segmentDecoder.DecodeSegment(raw[:d1])
	if err != nil {
		d.decodeErr = errNotBase64
		return d, nil
	}
	if err := json.Unmarshal(hb, &tok.Header); err != nil || tok.Header == nil {
		d.decodeErr = errHeaderNotJSON
		return d, nil
	}
	if e := checkHeader(tok.Header); e != nil {
		d.decodeErr = e
		return d, nil
	}
	if tok.Signature, err = segmentDecoder.DecodeSegment(raw[d2+1:]); err != nil {
		d.decodeErr = errNotBase64
		return d, nil
	}
	if claimsErr != nil {
		d.decodeErr = claimsErr
		return d, nil
	}
	tok.Claims = d.claims
	d.tok = tok
	switch alg := tok.Header["alg"].(string); alg {
	case "none":
		d.algErr = ErrNoSignatures
	default:
		if tok.Method = jwt.GetSigningMethod(alg); tok.Method == nil {
			d.algErr = ErrBadAlgorithm.withDetail("unsupported alg %q", truncate(alg, 16))
		}
	}
	return d, nil
}

// checkHeader applies jose's parse of the JWS header parameters the proxy
// reads, that are plain strings, or that change the meaning of the token
// (JWSHeader's parseParamsFor, in its order): alg must be one of joseAlgs;
// kid, typ and cty must be strings; crit is refused. (jose also parses jku,
// jwk, x5u, x5c, x5t and x5t#S256; the proxy does not look at them.)
func checkHeader(h map[string]any) *Error {
	alg, ok := h["alg"]
	if !ok {
		return errMissingAlg
	}
	if s, isStr := alg.(string); !isStr || !slices.Contains(joseAlgs[:], s) {
		return errUnknownAlg
	}
	for _, name := range [...]string{"kid", "typ", "cty"} {
		if v, ok := h[name]; ok {
			if _, isStr := v.(string); !isStr {
				return jwsDecodeErr("parsing Text failed, expected String, but encountered " + goKind(v))
			}
		}
	}
	if v, ok := h["crit"]; ok {
		return critErr(v)
	}
	return nil
}

// joseCritReserved are the names jose refuses in "crit" (jwsCritInvalidNames
// in hs-jose src/Crypto/JOSE/JWS.hs).
var joseCritReserved = [...]string{"alg", "jku", "jwk", "x5u", "x5t", "x5t#S256", "x5c", "kid", "typ", "cty", "crit"}

// critErr is jose's answer to a "crit" header: it must be a non-empty list
// of strings (aeson's NonEmpty), and since the proxy, like jose's JWSHeader,
// understands no extension, every name in it is refused (parseCrit in
// src/Crypto/JOSE/Header.hs), as RFC 7515 §4.1.11 requires.
func critErr(v any) *Error {
	list, ok := v.([]any)
	if !ok {
		return jwsDecodeErr("parsing NonEmpty failed, expected Array, but encountered " + goKind(v))
	}
	for _, e := range list {
		if _, isStr := e.(string); !isStr {
			return jwsDecodeErr("parsing Text failed, expected String, but encountered " + goKind(e))
		}
	}
	if len(list) == 0 {
		return jwsDecodeErr("parsing NonEmpty failed, unexpected empty list")
	}
	if slices.Contains(joseCritReserved[:], list[0].(string)) {
		return jwsDecodeErr("crit key is reserved")
	}
	return jwsDecodeErr("crit key is not understood")
}

// goKind names the JSON type of a value decoded into any, as aeson does.
func goKind(v any) string {
	switch v.(type) {
	case nil:
		return "Null"
	case bool:
		return "Boolean"
	case float64, json.Number:
		return "Number"
	case string:
		return "String"
	case []any:
		return "Array"
	default:
		return "Object"
	}
}

// issuerMatches is Hasura's issuer pre-match: a secret without issuer, or a
// token without iss, or equal values (processJwt_ in
// server/src-lib/Hasura/Server/Auth/JWT.hs).
func (v *secretVerifier) issuerMatches(d *decodedToken) bool {
	return v.issuer == "" || !d.claims.hasIss || d.claims.iss == v.issuer
}

// secretVerifier verifies tokens for one configured JWT secret. It is
// immutable after construction and safe for concurrent use.
type secretVerifier struct {
	index    int
	name     string
	keys     KeySource
	algs     []string
	loc      location
	issuer   string
	audience []string
	skew     time.Duration
	rules    claimsRules

	requireExp, requireIss, requireAud, requireAZP bool
	authorizedParties                              []string
}

// verify checks the signature, the registered claims and the Hasura claims
// of a decoded token (catalogue rows 8-24). The result does not depend on
// the request, so it may be cached until exp.
func (v *secretVerifier) verify(ctx context.Context, d *decodedToken, now time.Time) (*hasuraClaims, *Error) {
	if err := v.checkSignature(ctx, d); err != nil {
		return nil, err
	}
	c := d.claims
	// Hasura's order: exp, iat, nbf, iss, aud; then azp (stricter).
	if c.exp == nil {
		if v.requireExp {
			return nil, ErrMissingExp
		}
	} else if !now.Before(c.exp.Add(v.skew)) {
		return nil, ErrExpired
	}
	if c.iat != nil && c.iat.After(now.Add(v.skew)) {
		return nil, ErrIssuedAtFuture
	}
	if c.nbf != nil && now.Before(c.nbf.Add(-v.skew)) {
		return nil, ErrNotYetValid
	}
	if v.issuer != "" {
		if !c.hasIss {
			if v.requireIss {
				return nil, ErrMissingIssuer
			}
		} else if c.iss != v.issuer {
			return nil, ErrNotInIssuer
		}
	}
	if len(v.audience) > 0 {
		if !c.hasAud {
			if v.requireAud {
				return nil, ErrMissingAud
			}
		} else if !slices.ContainsFunc(c.aud, func(a string) bool { return slices.Contains(v.audience, a) }) {
			return nil, ErrNotInAudience
		}
	}
	if len(v.authorizedParties) > 0 {
		if !c.hasAZP || c.azp == "" {
			if v.requireAZP {
				return nil, ErrMissingAZP
			}
		} else if !slices.Contains(v.authorizedParties, c.azp) {
			return nil, ErrBadAZP
		}
	}
	return v.rules.extract(c)
}

func (v *secretVerifier) checkSignature(ctx context.Context, d *decodedToken) *Error {
	if d.algErr != nil {
		return d.algErr
	}
	tok := d.tok
	alg := tok.Method.Alg()
	if !slices.Contains(v.algs, alg) {
		return ErrBadAlgorithm.withDetail("alg %s not allowed for secret %s", alg, v.name)
	}
	key, err := v.keys.Keyfunc(ctx)(tok)
	if err != nil {
		kid, _ := tok.Header["kid"].(string)
		switch {
		case errors.Is(err, ErrNoKeys):
			return ErrNoUsableKeys.withDetail("secret %s has no usable keys", v.name)
		case errors.Is(err, ErrUnknownKID):
			return ErrUnknownKey.withDetail("kid %q not in the key set of secret %s", truncate(kid, 32), v.name)
		default:
			return ErrBadAlgorithm.withDetail("key lookup for kid %q: %s", truncate(kid, 32), truncate(err.Error(), 160))
		}
	}
	signed := tok.Raw[:strings.LastIndexByte(tok.Raw, '.')]
	switch k := key.(type) {
	case jwt.VerificationKeySet:
		if len(k.Keys) == 0 {
			return ErrNoUsableKeys.withDetail("secret %s has no usable keys", v.name)
		}
		for _, one := range k.Keys {
			if err = tok.Method.Verify(signed, tok.Signature, one); err == nil {
				return nil
			}
		}
	default:
		err = tok.Method.Verify(signed, tok.Signature, k)
	}
	if err != nil {
		kid, _ := tok.Header["kid"].(string)
		return ErrInvalidSignature.withDetail("secret %s, kid %q: %v", v.name, truncate(kid, 32), err)
	}
	return nil
}
