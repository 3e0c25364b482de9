package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// StaticKey is the KeySource of a Hasura `type`+`key` secret: one fixed key,
// never refreshed. Like Hasura it ignores the token's kid. Unlike Hasura it
// accepts only the algorithm named by type (Algorithms), so the caller's
// parser pins it and the key function checks it again. Safe for concurrent
// use; it holds no mutable state.
type StaticKey struct {
	alg string
	key any // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

var _ KeySource = (*StaticKey)(nil)

// hmacMinLen is Hasura's minimum HS secret length, in bytes of the raw key.
var hmacMinLen = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// NewStaticKey parses key for typ, Hasura's `type`:
//   - HS256/HS384/HS512: key is the raw secret (its UTF-8 bytes, not base64),
//     at least 32/48/64 bytes;
//   - RS256/384/512, ES256/384/512, Ed25519: key is a PEM public key (PKIX
//     "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY") or an X.509 "CERTIFICATE".
//
// A key that does not match typ (an RSA key for ES256, a P-384 key for
// ES256, ...) or a private key is an error. Errors never contain the key; they
// follow Hasura's wording where Hasura has one (the caller adds "Invalid JWK: ").
func NewStaticKey(typ string, key string) (*StaticKey, error) {
	if n, ok := hmacMinLen[typ]; ok {
		if len(key) < n {
			//lint:ignore ST1005 Hasura's exact startup error, which operators search for.
			return nil, fmt.Errorf("Key size too small; should be atleast %d characters", n)
		}
		return &StaticKey{alg: typ, key: []byte(key)}, nil
	}
	var alg string
	switch typ {
	case "RS256", "RS384", "RS512", "ES256", "ES384", "ES512":
		alg = typ
	case "Ed25519":
		alg = "EdDSA"
	default:
		//lint:ignore ST1005 Hasura's exact startup error, which operators search for.
		return nil, fmt.Errorf("Key type: %s is not supported", typ)
	}
	pub, err := parsePublicPEM(key)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", typ, err)
	}
	if err := keyMatchesType(typ, pub); err != nil {
		return nil, err
	}
	return &StaticKey{alg: alg, key: pub}, nil
}

// parsePublicPEM reads the first PEM block of s as a public key or a
// certificate's public key.
func parsePublicPEM(s string) (any, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block found (expected -----BEGIN PUBLIC KEY----- or -----BEGIN CERTIFICATE-----)")
	}
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKIX public key: %w", err)
		}
		return pub, nil
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#1 public key: %w", err)
		}
		return pub, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("PEM block %q is a private key: configure the public key or certificate only", block.Type)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q (expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
}

// keyMatchesType checks that pub is the kind of key typ needs.
func keyMatchesType(typ string, pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if typ == "RS256" || typ == "RS384" || typ == "RS512" {
			if k.N.BitLen() < minRSABits {
				return fmt.Errorf("%s key: RSA key of %d bits is shorter than %d", typ, k.N.BitLen(), minRSABits)
			}
			return nil
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[typ]
		if want == nil {
			break
		}
		if k.Curve != want {
			return fmt.Errorf("%s key: EC key on curve %s, %s needs %s", typ, k.Curve.Params().Name, typ,
				want.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		if typ == "Ed25519" {
			return nil
		}
	}
	return fmt.Errorf("%s key: is %s, which does not match type %s", typ, keyKind(pub), typ)
}

func keyKind(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "an RSA key"
	case *ecdsa.PublicKey:
		return "an EC " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "an Ed25519 key"
	default:
		return fmt.Sprintf("an unsupported %T key", pub)
	}
}

// Keyfunc returns the key whatever the token's kid (as Hasura does), after
// checking the token's alg is the configured one. The error, which cannot
// happen behind a parser pinned to Algorithms, does not wrap ErrNoKeys or
// ErrUnknownKID.
func (s *StaticKey) Keyfunc(context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if t.Method == nil || t.Method.Alg() != s.alg {
			return nil, fmt.Errorf("token alg is not %s", s.alg)
		}
		return s.key, nil
	}
}

// Algorithms returns the one algorithm this key verifies, for
// jwt.WithValidMethods: the type itself, or "EdDSA" for Ed25519.
func (s *StaticKey) Algorithms() []string { return []string{s.alg} }

// Ready is always nil: a static key is always usable.
func (s *StaticKey) Ready() error { return nil }

// Generation is constant: a static key never changes.
func (s *StaticKey) Generation() uint64 { return 0 }
