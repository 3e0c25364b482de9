package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	tok    *jwt.Token
	claims *claimSet
	// algErr is set when the header names no algorithm golang-jwt knows;
	// Hasura reports that at the signature step, after the issuer
	// pre-match, so it is held until then.
	algErr *Error
	// decodeErr is set, and tok nil, for a token that could not be decoded
	// at all; it is kept so the issuer pre-match can still count it.
	decodeErr *Error
}

// decodeToken performs compact decoding and claims decoding (catalogue rows
// 5-7), in Hasura's order.
func decodeToken(raw string, maxBytes int) (*decodedToken, *Error) {
	if len(raw) > maxBytes {
		return nil, tokenTooLargeErr(maxBytes)
	}
	// Never split an unbounded number of parts (CVE-2025-30204).
	if n := strings.Count(raw, "."); n != 2 {
		return nil, compactDecodeErr(n + 1)
	}
	d1 := strings.IndexByte(raw, '.')
	d2 := strings.LastIndexByte(raw, '.')
	h64, c64, s64 := raw[:d1], raw[d1+1:d2], raw[d2+1:]

	tok := &jwt.Token{Raw: raw}
	hb, err := segmentDecoder.DecodeSegment(h64)
	if err != nil {
		return nil, jwtErr(ReasonMalformed, `JWSError (JSONDecodeError "Not valid base64url")`)
	}
	if err := json.Unmarshal(hb, &tok.Header); err != nil || tok.Header == nil {
		return nil, jwtErr(ReasonMalformed, `JWSError (JSONDecodeError "Error in $: the JWS header is not a JSON object")`)
	}
	if _, ok := tok.Header["crit"]; ok {
		return nil, errCritical
	}
	cb, err := segmentDecoder.DecodeSegment(c64)
	if err != nil {
		return nil, jwtErr(ReasonMalformed, `JWSError (JSONDecodeError "Not valid base64url")`)
	}
	c := &claimSet{}
	if err := json.Unmarshal(cb, c); err != nil {
		var ce *claimDecodeError
		if errors.As(err, &ce) {
			return nil, jwtErr(ReasonMalformed, fmt.Sprintf("JWTClaimsSetDecodeError %q", ce.Error()))
		}
		return nil, jwtErr(ReasonMalformed, `JWTClaimsSetDecodeError "Error in $: the claims set is not a JSON object"`)
	}
	tok.Claims = c
	if tok.Signature, err = segmentDecoder.DecodeSegment(s64); err != nil {
		return nil, jwtErr(ReasonMalformed, `JWSError (JSONDecodeError "Not valid base64url")`)
	}
	d := &decodedToken{tok: tok, claims: c}
	alg, _ := tok.Header["alg"].(string)
	switch {
	case alg == "none":
		d.algErr = ErrNoSignatures
	case alg == "":
		d.algErr = ErrBadAlgorithm.withDetail("token header has no alg")
	default:
		if tok.Method = jwt.GetSigningMethod(alg); tok.Method == nil {
			d.algErr = ErrBadAlgorithm.withDetail("unsupported alg %q", truncate(alg, 16))
		}
	}
	return d, nil
}

// issuerMatches is Hasura's issuer pre-match: a secret without issuer, or a
// token without iss, or equal values (reference §1.2).
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
