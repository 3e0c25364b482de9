package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// registeredClaims are removed before claims_namespace_path is evaluated, as
// Hasura does.
var registeredClaims = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// claimSet is a decoded JWT payload: the registered claims typed, and every
// top-level claim kept raw for the Hasura claims lookup. It implements
// jwt.Claims.
type claimSet struct {
	raw    map[string]json.RawMessage
	exp    *jwt.NumericDate
	nbf    *jwt.NumericDate
	iat    *jwt.NumericDate
	iss    string
	hasIss bool
	sub    string
	aud    jwt.ClaimStrings
	hasAud bool
	azp    string
	hasAZP bool
}

// claimDecodeError is a registered claim jose cannot decode, with aeson's
// text: Msg at the JSON path Path ("" for the payload itself, ".exp", ...).
type claimDecodeError struct {
	Path string
	Msg  string
}

func (e *claimDecodeError) Error() string {
	return "Error in $" + e.Path + ": " + e.Msg
}

// The NumericDate range the proxy represents: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59Z. Values beyond it keep their order with every
// realistic clock.
const (
	minNumericDate = -62135596800
	maxNumericDate = 253402300799
)

// decodeClaims decodes a payload into c, refusing it as jose does
// (JWTClaimsSetDecodeError).
func decodeClaims(b []byte, c *claimSet) *Error {
	if err := json.Unmarshal(b, c); err != nil {
		if ce, ok := errors.AsType[*claimDecodeError](err); ok {
			return claimsDecodeErr(ce.Error())
		}
		return errClaimsNotJSON
	}
	return nil
}

// UnmarshalJSON decodes a JWT payload the way jose's ClaimsSet FromJSON
// instance does (hs-jose src/Crypto/JWT.hs; aeson's messages, as
// eitherDecode formats them): the registered claims in its order, iss, sub,
// aud, exp, nbf, iat and jti, each either absent, null or of its type. A
// StringOrURI (iss, sub, each aud) that contains ":" must be a URI. Then
// azp, which only this proxy reads.
func (c *claimSet) UnmarshalJSON(b []byte) error {
	if k := jsonKind(b); k != "Object" {
		return &claimDecodeError{Msg: "parsing JWT Claims Set failed, expected Object, but encountered " + k}
	}
	if err := json.Unmarshal(b, &c.raw); err != nil {
		return err
	}
	present := func(name string) (json.RawMessage, bool) {
		v, ok := c.raw[name]
		if !ok || string(bytes.TrimSpace(v)) == "null" {
			return nil, false
		}
		return v, true
	}
	text := func(v json.RawMessage) (string, bool) {
		var s string
		return s, jsonKind(v) == "String" && json.Unmarshal(v, &s) == nil
	}
	stringOrURI := func(name string) (string, bool, error) {
		v, ok := present(name)
		if !ok {
			return "", false, nil
		}
		s, ok := text(v)
		if !ok {
			return "", false, &claimDecodeError{"." + name, "parsing StringOrURI failed, expected String, but encountered " + jsonKind(v)}
		}
		if strings.Contains(s, ":") && !isURI(s) {
			return "", false, &claimDecodeError{"." + name, "failed to parse StringOrURI"}
		}
		return s, true, nil
	}
	numeric := func(name string) (*jwt.NumericDate, error) {
		v, ok := present(name)
		if !ok {
			return nil, nil
		}
		if k := jsonKind(v); k != "Number" {
			return nil, &claimDecodeError{"." + name, "parsing NumericDate failed, expected Number, but encountered " + k}
		}
		// Every JSON number is a NumericDate to jose; one beyond float64
		// (1e400) parses as an infinity, clamped below.
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsNaN(f) {
			return nil, &claimDecodeError{"." + name, "parsing NumericDate failed, expected Number, but encountered Number"}
		}
		// Clamp to years 1-9999 before converting: a float outside int64
		// converts to an implementation-defined value (math.MinInt64 on
		// amd64), which made a far-future nbf or iat a far-past one.
		f = min(max(f, minNumericDate), maxNumericDate)
		sec, frac := math.Modf(f)
		// Keep the fraction: jwt.NewNumericDate would round to whole
		// seconds, accepting an nbf up to a second early where Hasura
		// (which keeps fractions) refuses it.
		return &jwt.NumericDate{Time: time.Unix(int64(sec), int64(frac*1e9))}, nil
	}
	plainText := func(name string) (string, bool, error) {
		v, ok := present(name)
		if !ok {
			return "", false, nil
		}
		s, ok := text(v)
		if !ok {
			return "", false, &claimDecodeError{"." + name, "parsing Text failed, expected String, but encountered " + jsonKind(v)}
		}
		return s, true, nil
	}
	var err error
	if c.iss, c.hasIss, err = stringOrURI("iss"); err != nil {
		return err
	}
	if c.sub, _, err = stringOrURI("sub"); err != nil {
		return err
	}
	if v, ok := present("aud"); ok {
		// jose: a list of StringOrURI, else one. When both fail, aeson
		// reports the second attempt's error.
		if s, isStr := text(v); isStr {
			if strings.Contains(s, ":") && !isURI(s) {
				return &claimDecodeError{".aud", "failed to parse StringOrURI"}
			}
			c.aud = jwt.ClaimStrings{s}
		} else {
			var elems []json.RawMessage
			if jsonKind(v) != "Array" || json.Unmarshal(v, &elems) != nil {
				return &claimDecodeError{".aud", "parsing StringOrURI failed, expected String, but encountered " + jsonKind(v)}
			}
			c.aud = make(jwt.ClaimStrings, 0, len(elems))
			for _, e := range elems {
				s, isStr := text(e)
				if !isStr || strings.Contains(s, ":") && !isURI(s) {
					return &claimDecodeError{".aud", "parsing StringOrURI failed, expected String, but encountered Array"}
				}
				c.aud = append(c.aud, s)
			}
		}
		c.hasAud = true
	}
	if c.exp, err = numeric("exp"); err != nil {
		return err
	}
	if c.nbf, err = numeric("nbf"); err != nil {
		return err
	}
	if c.iat, err = numeric("iat"); err != nil {
		return err
	}
	if _, _, err = plainText("jti"); err != nil {
		return err
	}
	if c.azp, c.hasAZP, err = plainText("azp"); err != nil {
		return err
	}
	return nil
}

// stringClaim returns the top-level claim name when it is a JSON string,
// else "". It never fails: a claim only revocation reads must not change
// which tokens verify.
func stringClaim(c *claimSet, name string) string {
	v, ok := c.raw[name]
	if !ok || len(v) == 0 || v[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// GetExpirationTime implements jwt.Claims.
func (c *claimSet) GetExpirationTime() (*jwt.NumericDate, error) { return c.exp, nil }

// GetNotBefore implements jwt.Claims.
func (c *claimSet) GetNotBefore() (*jwt.NumericDate, error) { return c.nbf, nil }

// GetIssuedAt implements jwt.Claims.
func (c *claimSet) GetIssuedAt() (*jwt.NumericDate, error) { return c.iat, nil }

// GetIssuer implements jwt.Claims.
func (c *claimSet) GetIssuer() (string, error) { return c.iss, nil }

// GetSubject implements jwt.Claims.
func (c *claimSet) GetSubject() (string, error) { return c.sub, nil }

// GetAudience implements jwt.Claims.
func (c *claimSet) GetAudience() (jwt.ClaimStrings, error) { return c.aud, nil }
