package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func pemPKIX(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func pemCert(t *testing.T, priv crypto.Signer) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewStaticKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, p384, p521 := ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), ecKey(t, elliptic.P521())
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))
	rsaPriv := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	pkcs8, err := x509.MarshalPKCS8PrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))

	hs := func(n int) string { return strings.Repeat("s", n) }
	tests := []struct {
		name    string
		typ     string
		key     string
		signer  any // key to sign a test token with; nil when construction must fail
		method  jwt.SigningMethod
		wantAlg string
		wantErr string
	}{
		{name: "HS256", typ: "HS256", key: hs(32), signer: []byte(hs(32)), method: jwt.SigningMethodHS256, wantAlg: "HS256"},
		{name: "HS384", typ: "HS384", key: hs(48), signer: []byte(hs(48)), method: jwt.SigningMethodHS384, wantAlg: "HS384"},
		{name: "HS512", typ: "HS512", key: hs(64), signer: []byte(hs(64)), method: jwt.SigningMethodHS512, wantAlg: "HS512"},
		{name: "HS256 raw not base64", typ: "HS256", key: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
			signer: []byte("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"), method: jwt.SigningMethodHS256, wantAlg: "HS256"},
		{name: "HS256 31", typ: "HS256", key: hs(31), wantErr: "Key size too small; should be atleast 32 characters"},
		{name: "HS384 47", typ: "HS384", key: hs(47), wantErr: "Key size too small; should be atleast 48 characters"},
		{name: "HS512 63", typ: "HS512", key: hs(63), wantErr: "Key size too small; should be atleast 64 characters"},
		{name: "HS256 counts bytes", typ: "HS256", key: strings.Repeat("é", 16), signer: []byte(strings.Repeat("é", 16)),
			method: jwt.SigningMethodHS256, wantAlg: "HS256"},
		{name: "RS256 PKIX", typ: "RS256", key: pemPKIX(t, &rsaKey.PublicKey), signer: rsaKey,
			method: jwt.SigningMethodRS256, wantAlg: "RS256"},
		{name: "RS384 PKCS1", typ: "RS384", key: pkcs1, signer: rsaKey, method: jwt.SigningMethodRS384, wantAlg: "RS384"},
		{name: "RS512 certificate", typ: "RS512", key: pemCert(t, rsaKey), signer: rsaKey,
			method: jwt.SigningMethodRS512, wantAlg: "RS512"},
		{name: "RS256 with text around", typ: "RS256", key: "Clerk public key:\n" + pemPKIX(t, &rsaKey.PublicKey) + "\n",
			signer: rsaKey, method: jwt.SigningMethodRS256, wantAlg: "RS256"},
		{name: "ES256", typ: "ES256", key: pemPKIX(t, &p256.PublicKey), signer: p256, method: jwt.SigningMethodES256,
			wantAlg: "ES256"},
		{name: "ES384 certificate", typ: "ES384", key: pemCert(t, p384), signer: p384, method: jwt.SigningMethodES384,
			wantAlg: "ES384"},
		{name: "ES512", typ: "ES512", key: pemPKIX(t, &p521.PublicKey), signer: p521, method: jwt.SigningMethodES512,
			wantAlg: "ES512"},
		{name: "Ed25519", typ: "Ed25519", key: pemPKIX(t, edKey.Public()), signer: edKey,
			method: jwt.SigningMethodEdDSA, wantAlg: "EdDSA"},
		{name: "Ed25519 certificate", typ: "Ed25519", key: pemCert(t, edKey), signer: edKey,
			method: jwt.SigningMethodEdDSA, wantAlg: "EdDSA"},
		{name: "unsupported type", typ: "PS256", key: pemPKIX(t, &rsaKey.PublicKey), wantErr: "Key type: PS256 is not supported"},
		{name: "lower-case type", typ: "hs256", key: hs(32), wantErr: "Key type: hs256 is not supported"},
		{name: "RSA key for ES256", typ: "ES256", key: pemPKIX(t, &rsaKey.PublicKey),
			wantErr: "ES256 key: is an RSA key, which does not match type ES256"},
		{name: "P-384 key for ES256", typ: "ES256", key: pemPKIX(t, &p384.PublicKey),
			wantErr: "ES256 key: EC key on curve P-384, ES256 needs P-256"},
		{name: "EC key for RS256", typ: "RS256", key: pemPKIX(t, &p256.PublicKey),
			wantErr: "RS256 key: is an EC P-256 key, which does not match type RS256"},
		{name: "Ed25519 key for RS256", typ: "RS256", key: pemPKIX(t, edKey.Public()),
			wantErr: "RS256 key: is an Ed25519 key, which does not match type RS256"},
		{name: "EC key for Ed25519", typ: "Ed25519", key: pemPKIX(t, &p256.PublicKey),
			wantErr: "Ed25519 key: is an EC P-256 key, which does not match type Ed25519"},
		{name: "short RSA", typ: "RS256", key: pemPKIX(t, &smallRSA.PublicKey),
			wantErr: "RS256 key: RSA key of 1024 bits is shorter than 2048"},
		{name: "RSA private key", typ: "RS256", key: rsaPriv, wantErr: `PEM block "RSA PRIVATE KEY" is a private key`},
		{name: "PKCS8 private key", typ: "ES256", key: ecPriv, wantErr: `PEM block "PRIVATE KEY" is a private key`},
		{name: "not PEM", typ: "RS256", key: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", wantErr: "RS256 key: no PEM block found"},
		{name: "bad DER", typ: "RS256", key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
			wantErr: "RS256 key: parse PKIX public key"},
		{name: "other block", typ: "RS256", key: "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n",
			wantErr: `unsupported PEM block "FOO"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, err := NewStaticKey(tt.typ, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
				}
				if len(tt.key) > 20 && strings.Contains(err.Error(), tt.key[:20]) {
					t.Errorf("err = %q; want it without the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sk.Algorithms(); !slices.Equal(got, []string{tt.wantAlg}) {
				t.Fatalf("Algorithms = %v; want [%s]", got, tt.wantAlg)
			}
			if sk.Ready() != nil || sk.Generation() != 0 {
				t.Fatal("static key not ready or not constant")
			}
			// The kid is ignored, as in Hasura: any kid, or none, verifies.
			for _, kid := range []string{"", "ins_anything", "../../etc/passwd"} {
				tok := jwt.NewWithClaims(tt.method, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()})
				if kid != "" {
					tok.Header["kid"] = kid
				}
				raw, err := tok.SignedString(tt.signer)
				if err != nil {
					t.Fatal(err)
				}
				if err := verify(context.Background(), sk, sk.Algorithms(), raw); err != nil {
					t.Errorf("verify with kid %q = %v; want nil", kid, err)
				}
			}
		})
	}
}

func TestStaticKeyPinsAlgorithm(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pemPKIX(t, &rsaKey.PublicKey)
	sk, err := NewStaticKey("RS256", pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(m jwt.SigningMethod, key any) string {
		raw, err := jwt.NewWithClaims(m, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name  string
		raw   string
		algs  []string // the parser's allowed list
		wantS error
	}{
		{"RS384 with the same key, parser pinned", mint(jwt.SigningMethodRS384, rsaKey), sk.Algorithms(),
			jwt.ErrTokenSignatureInvalid},
		{"RS384 with the same key, careless parser", mint(jwt.SigningMethodRS384, rsaKey), []string{"RS256", "RS384"},
			jwt.ErrTokenUnverifiable},
		{"HS256 keyed with the public PEM", mint(jwt.SigningMethodHS256, []byte(pubPEM)), []string{"RS256", "HS256"},
			jwt.ErrTokenUnverifiable},
		{"alg none", mint(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), []string{"RS256", "none"},
			jwt.ErrTokenUnverifiable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verify(context.Background(), sk, tt.algs, tt.raw)
			if !errors.Is(err, tt.wantS) {
				t.Fatalf("verify = %v; want %v", err, tt.wantS)
			}
		})
	}
}
