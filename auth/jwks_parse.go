package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/MicahParks/jwkset"
)

// minRSABits is the smallest RSA modulus accepted from a JWKS.
const minRSABits = 2048

// parseJWKS decodes a JWK Set and keeps only public asymmetric signature
// keys. ignored counts the dropped keys by reason.
func parseJWKS(body []byte) (keys []jwkset.JWK, ignored map[string]int, err error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("fetch jwks: decode: %w", err)
	}
	ignored = map[string]int{}
	seen := map[string]bool{}
	for _, m := range set.Keys {
		if why := unusableKey(m); why != "" {
			ignored[why]++
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: false}, jwkset.JWKValidateOptions{})
		if err != nil {
			ignored["invalid"]++
			continue
		}
		if why := unusableMaterial(jwk); why != "" {
			ignored[why]++
			continue
		}
		if kid := m.KID; kid != "" {
			if seen[kid] {
				ignored["duplicate kid"]++
				continue
			}
			seen[kid] = true
		}
		keys = append(keys, jwk)
	}
	return keys, ignored, nil
}

// unusableKey says why a JWK must not verify tokens ("" when it may), from its
// JSON members alone.
func unusableKey(m jwkset.JWKMarshal) string {
	switch {
	case m.KTY == jwkset.KtyOct:
		return "symmetric (oct)"
	case m.KTY != jwkset.KtyRSA && m.KTY != jwkset.KtyEC && m.KTY != jwkset.KtyOKP:
		return "unsupported kty"
	case m.KTY == jwkset.KtyOKP && m.CRV != jwkset.CrvEd25519:
		return "unsupported OKP curve"
	// A JWKS is public: a private key published in it can be used by anyone
	// to sign tokens, so the whole key is refused, not only its private part.
	case m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.OTH) > 0 || m.K != "":
		return "private key material"
	case m.USE != "" && m.USE != jwkset.UseSig:
		return "use is not sig"
	case len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify):
		return "key_ops without verify"
	case m.ALG != "" && !algFitsKey(string(m.ALG), m):
		return "alg not allowed for key"
	}
	return ""
}

// algFitsKey reports whether a JWK's alg is an allowed JWKS algorithm for its
// key type (and curve).
func algFitsKey(alg string, m jwkset.JWKMarshal) bool {
	switch m.KTY {
	case jwkset.KtyRSA:
		return slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg)
	case jwkset.KtyEC:
		return (alg == "ES256" && m.CRV == jwkset.CrvP256) || (alg == "ES384" && m.CRV == jwkset.CrvP384) ||
			(alg == "ES512" && m.CRV == jwkset.CrvP521)
	case jwkset.KtyOKP:
		return alg == "EdDSA"
	}
	return false
}

// unusableMaterial checks the parsed key itself.
func unusableMaterial(jwk jwkset.JWK) string {
	switch key := jwk.Key().(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return "rsa key shorter than 2048 bits"
		}
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() && key.Curve != elliptic.P384() && key.Curve != elliptic.P521() {
			return "unsupported EC curve"
		}
	case ed25519.PublicKey:
	default:
		return "unsupported key"
	}
	return ""
}

func summarizeIgnored(ignored map[string]int) string {
	parts := make([]string, 0, len(ignored))
	for why, n := range ignored {
		parts = append(parts, fmt.Sprintf("%s: %d", why, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
