package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultClaimsNamespace is Hasura's default claims namespace key. It is a
// literal key: it is never split on dots.
const DefaultClaimsNamespace = "https://hasura.io/jwt/claims"

// DefaultMaxTokenBytes caps the size of a token before any decoding work.
// Clerk keeps its tokens well under the 4 KB cookie limit.
const DefaultMaxTokenBytes = 16 << 10

// Config is the `auth:` section of the configuration file. Decode it over the
// value returned by DefaultConfig so that absent keys keep their defaults.
type Config struct {
	// JWTSecret is exactly Hasura's HASURA_GRAPHQL_JWT_SECRET object.
	JWTSecret *JWTSecret `yaml:"jwt_secret"`
	// JWTSecrets is Hasura's HASURA_GRAPHQL_JWT_SECRETS: several issuers.
	JWTSecrets []JWTSecret `yaml:"jwt_secrets"`
	// UnauthorizedRole is the role of requests that carry no token at all.
	// Empty means such requests are refused.
	UnauthorizedRole string `yaml:"unauthorized_role"`
	// AuthorizedParties is Clerk's azp allow-list. When non-empty, a token's
	// azp must be listed (and present, unless Require.AZP is false).
	AuthorizedParties []string `yaml:"authorized_parties"`
	// AdminSecretPassthrough forwards requests that present the right admin
	// secret as admin, as Hasura does. When false every request carrying an
	// admin secret header is refused.
	AdminSecretPassthrough bool `yaml:"admin_secret_passthrough"`
	// JWKS tunes how jwk_url key sets are fetched and refreshed.
	JWKS JWKSConfig `yaml:"jwks"`
	// Require holds the stricter-than-Hasura switches.
	Require RequireConfig `yaml:"require"`
	// ArrayClaims is "reject" (Hasura) or "postgres": array session claims
	// become Postgres array literals such as {a,b}.
	ArrayClaims string `yaml:"array_claims"`
	// ErrorStatus is "hasura" (Hasura's statuses, 200 on /v1/graphql) or
	// "http" (401, or 403 for access-denied, with WWW-Authenticate).
	ErrorStatus string `yaml:"error_status"`
	// MaxTokenBytes refuses longer tokens before decoding them.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// TokenCache keeps verified tokens so a reused token skips the
	// signature check.
	TokenCache TokenCacheConfig `yaml:"token_cache"`
}

// RequireConfig holds the checks where this proxy is deliberately stricter
// than Hasura. Each defaults to true.
type RequireConfig struct {
	// Exp refuses tokens without exp (Hasura accepts them forever).
	Exp bool `yaml:"exp"`
	// Iss refuses tokens without iss when an issuer is configured.
	Iss bool `yaml:"iss"`
	// Aud refuses tokens without aud when an audience is configured.
	Aud bool `yaml:"aud"`
	// AZP refuses tokens without azp when authorized_parties is set.
	AZP bool `yaml:"azp"`
}

// TokenCacheConfig sizes the verified-token cache.
type TokenCacheConfig struct {
	// Size is the most verified tokens kept; 0 disables the cache.
	Size int `yaml:"size"`
}

// DefaultConfig returns the defaults that a configuration file overrides.
func DefaultConfig() Config {
	c := Config{
		AdminSecretPassthrough: true,
		Require:                RequireConfig{Exp: true, Iss: true, Aud: true, AZP: true},
		ArrayClaims:            "reject",
		ErrorStatus:            "hasura",
		MaxTokenBytes:          DefaultMaxTokenBytes,
		TokenCache:             TokenCacheConfig{Size: 10000},
	}
	c.JWKS.ApplyDefaults()
	return c
}

// Secrets returns the configured secrets in order: jwt_secrets, else the
// single jwt_secret.
func (c *Config) Secrets() []JWTSecret {
	if len(c.JWTSecrets) > 0 {
		return c.JWTSecrets
	}
	if c.JWTSecret != nil {
		return []JWTSecret{*c.JWTSecret}
	}
	return nil
}

// Validate reports every problem at once, each naming its field. It does no
// I/O.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch {
	case c.JWTSecret == nil && len(c.JWTSecrets) == 0:
		add("jwt_secret", "one of auth.jwt_secret or auth.jwt_secrets is required (HASURA_GRAPHQL_JWT_SECRET)")
	case c.JWTSecret != nil && len(c.JWTSecrets) > 0:
		add("jwt_secrets", "set auth.jwt_secret or auth.jwt_secrets, not both")
	}
	if c.JWTSecret != nil && len(c.JWTSecrets) == 0 {
		errs = append(errs, c.JWTSecret.Validate("auth.jwt_secret"))
	}
	for i := range c.JWTSecrets {
		errs = append(errs, c.JWTSecrets[i].Validate(fmt.Sprintf("auth.jwt_secrets[%d]", i)))
	}
	errs = append(errs, checkAmbiguousSecrets(c.JWTSecrets))
	if c.UnauthorizedRole != "" && strings.TrimSpace(c.UnauthorizedRole) != c.UnauthorizedRole {
		add("unauthorized_role", "must not start or end with spaces")
	}
	for i, p := range c.AuthorizedParties {
		if strings.TrimSpace(p) == "" {
			add(fmt.Sprintf("authorized_parties[%d]", i), "must not be empty")
		}
	}
	if c.ArrayClaims != "reject" && c.ArrayClaims != "postgres" {
		add("array_claims", "must be reject or postgres, not %q", c.ArrayClaims)
	}
	if c.ErrorStatus != "hasura" && c.ErrorStatus != "http" {
		add("error_status", "must be hasura or http, not %q", c.ErrorStatus)
	}
	if c.MaxTokenBytes < 512 || c.MaxTokenBytes > 1<<20 {
		add("max_token_bytes", "must be between 512 and 1048576, not %d", c.MaxTokenBytes)
	}
	if c.TokenCache.Size < 0 {
		add("token_cache.size", "must not be negative")
	}
	errs = append(errs, c.JWKS.Validate("auth.jwks"))
	return errors.Join(errs...)
}

// checkAmbiguousSecrets refuses two secrets that read the same header and
// accept the same issuer: every token would match both and be refused with
// "Multiple JWTs found".
func checkAmbiguousSecrets(ss []JWTSecret) error {
	var errs []error
	for i := range ss {
		for j := i + 1; j < len(ss); j++ {
			if ss[i].location() != ss[j].location() {
				continue
			}
			if ss[i].Issuer == "" || ss[j].Issuer == "" || ss[i].Issuer == ss[j].Issuer {
				errs = append(errs, fmt.Errorf("auth.jwt_secrets[%d]: reads the same header as auth.jwt_secrets[%d] and accepts the same issuers: give each a distinct issuer", j, i))
			}
		}
	}
	return errors.Join(errs...)
}

// JWTSecret is one Hasura JWT secret, with Hasura's field names. It decodes
// from YAML and from the JSON of HASURA_GRAPHQL_JWT_SECRET alike.
type JWTSecret struct {
	// Type is the algorithm of Key: HS256/384/512, RS256/384/512,
	// ES256/384/512 or Ed25519. Required with Key, ignored with JWKURL.
	Type string `json:"type,omitempty" yaml:"type"`
	// Key is the raw HS secret, or a PEM public key or certificate.
	Key Secret `json:"key,omitempty" yaml:"key"`
	// JWKURL is the JWKS location, e.g. https://<frontend-api>/.well-known/jwks.json.
	JWKURL string `json:"jwk_url,omitempty" yaml:"jwk_url"`
	// ClaimsNamespace is the literal top-level key holding the Hasura claims.
	ClaimsNamespace string `json:"claims_namespace,omitempty" yaml:"claims_namespace"`
	// ClaimsNamespacePath locates the claims with Hasura's JSONPath subset.
	ClaimsNamespacePath string `json:"claims_namespace_path,omitempty" yaml:"claims_namespace_path"`
	// ClaimsFormat is "json" (default) or "stringified_json".
	ClaimsFormat string `json:"claims_format,omitempty" yaml:"claims_format"`
	// ClaimsMap maps session variables to literal values or token paths;
	// when set, the namespace fields are ignored, as in Hasura.
	ClaimsMap map[string]ClaimsMapEntry `json:"claims_map,omitempty" yaml:"claims_map"`
	// Audience is a string or a list; a token aud must contain one of them.
	Audience StringOrList `json:"audience,omitempty" yaml:"audience"`
	// Issuer is the exact expected iss.
	Issuer string `json:"issuer,omitempty" yaml:"issuer"`
	// AllowedSkew is the leeway in seconds for exp, nbf and iat.
	AllowedSkew float64 `json:"allowed_skew,omitempty" yaml:"allowed_skew"`
	// Header says where the token is read from; nil means Authorization.
	Header *HeaderSource `json:"header,omitempty" yaml:"header"`
	// Name labels this secret in metrics and logs (an extension; Hasura has
	// no such field). Empty means the secret's index.
	Name string `json:"name,omitempty" yaml:"name"`
}

// HeaderSource is Hasura's header object: {"type":"Authorization"},
// {"type":"Cookie","name":N} or {"type":"CustomHeader","name":N}.
type HeaderSource struct {
	// Type is Authorization (a "Bearer <token>" value), Cookie or
	// CustomHeader (the raw token), as in Hasura.
	Type string `json:"type" yaml:"type"`
	// Name is the cookie or header name; empty with Authorization.
	Name string `json:"name,omitempty" yaml:"name"`
}

// location is a comparable description of where a secret reads its token.
type location struct {
	kind string // "authorization", "cookie" or "header"
	name string // cookie name, or canonical header name
}

func (s *JWTSecret) location() location {
	if s.Header == nil {
		return location{kind: "authorization"}
	}
	switch strings.ToLower(s.Header.Type) {
	case "cookie":
		return location{kind: "cookie", name: s.Header.Name}
	case "customheader":
		return location{kind: "header", name: canonicalHeader(s.Header.Name)}
	default:
		return location{kind: "authorization"}
	}
}

// Validate reports every problem with s, naming fields under prefix. The
// messages follow Hasura's startup errors where Hasura has one.
func (s *JWTSecret) Validate(prefix string) error {
	var errs []error
	add := func(field, format string, args ...any) {
		f := prefix
		if field != "" {
			f += "." + field
		}
		errs = append(errs, fmt.Errorf("%s: %s", f, fmt.Sprintf(format, args...)))
	}
	switch {
	case s.Key == "" && s.JWKURL == "":
		add("", "key and jwk_url both cannot be empty")
	case s.Key != "" && s.JWKURL != "":
		add("", "key, jwk_url both cannot be present")
	case s.Key != "":
		if s.Type == "" {
			add("type", "required with key (HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512 or Ed25519)")
		} else if _, err := NewStaticKey(s.Type, string(s.Key)); err != nil {
			add("key", "Invalid JWK: %v", err)
		}
	default:
		u, err := url.Parse(s.JWKURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("jwk_url", "must be an absolute http(s) URL")
		}
	}
	if s.ClaimsNamespace != "" && s.ClaimsNamespacePath != "" {
		add("", "claims_namespace and claims_namespace_path both cannot be set")
	}
	if s.ClaimsNamespacePath != "" {
		if _, err := parseJSONPath(s.ClaimsNamespacePath); err != nil {
			add("claims_namespace_path", "invalid JSON path claims_namespace_path error: %v", err)
		}
	}
	switch s.ClaimsFormat {
	case "", "json", "stringified_json":
	default:
		add("claims_format", "must be json or stringified_json, not %q", s.ClaimsFormat)
	}
	if s.ClaimsMap != nil {
		errs = append(errs, validateClaimsMap(prefix+".claims_map", s.ClaimsMap))
	}
	for i, a := range s.Audience {
		if a == "" {
			add(fmt.Sprintf("audience[%d]", i), "must not be empty")
		}
	}
	if s.AllowedSkew < 0 || s.AllowedSkew > 3600 {
		add("allowed_skew", "must be between 0 and 3600 seconds")
	}
	if h := s.Header; h != nil {
		switch strings.ToLower(h.Type) {
		case "authorization":
		case "cookie", "customheader":
			if h.Name == "" {
				add("header.name", "required for header type %s", h.Type)
			} else if !isToken(h.Name) {
				add("header.name", "%q is not a valid header or cookie name", h.Name)
			}
		default:
			add("header.type", "expected 'type' is 'Authorization' or 'Cookie' or 'CustomHeader'")
		}
	}
	return errors.Join(errs...)
}

func validateClaimsMap(prefix string, m map[string]ClaimsMapEntry) error {
	var errs []error
	for _, k := range []string{varAllowedRoles, varDefaultRole} {
		if _, ok := lookupFold(m, k); !ok {
			errs = append(errs, fmt.Errorf("%s: %s is expected but not found", prefix, k))
		}
	}
	for name, e := range m {
		field := prefix + "." + name
		lname := strings.ToLower(name)
		if !strings.HasPrefix(lname, "x-hasura-") || !isToken(name) {
			errs = append(errs, fmt.Errorf("%s: session variable names must start with x-hasura- and be valid header names", field))
		}
		if e.Path != "" {
			if _, err := parseJSONPath(e.Path); err != nil {
				errs = append(errs, fmt.Errorf("%s.path: invalid JSON path: %v", field, err))
			}
		}
		wantList := lname == varAllowedRoles
		check := func(what string, v json.RawMessage) {
			if v == nil {
				return
			}
			if wantList {
				var roles []string
				if json.Unmarshal(v, &roles) != nil {
					errs = append(errs, fmt.Errorf("%s: %s must be a list of role names", field, what))
				}
				return
			}
			var str string
			if json.Unmarshal(v, &str) != nil {
				errs = append(errs, fmt.Errorf("%s: %s must be a string", field, what))
			}
		}
		if e.Path == "" {
			check("value", e.Literal)
		} else {
			check("default", e.Default)
		}
	}
	return errors.Join(errs...)
}

func lookupFold[V any](m map[string]V, key string) (V, bool) {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// ClaimsMapEntry is one claims_map value: a literal (a string, or a list of
// roles for x-hasura-allowed-roles) or {"path": ..., "default": ...}.
type ClaimsMapEntry struct {
	// Literal is the value itself as JSON; nil when Path is set.
	Literal json.RawMessage
	// Path is Hasura's JSONPath into the whole claims set; empty for a
	// literal.
	Path string
	// Default is used when Path finds nothing; nil means none, and then a
	// missing value is refused.
	Default json.RawMessage
}

type claimsMapPathForm struct {
	Path    string          `json:"path" yaml:"path"`
	Default json.RawMessage `json:"default,omitempty" yaml:"-"`
}

// UnmarshalJSON accepts a literal or a {path, default} object.
func (e *ClaimsMapEntry) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var f claimsMapPathForm
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("claims_map entry: %w", err)
		}
		if f.Path == "" {
			return errors.New("claims_map entry: path is required in an object entry")
		}
		*e = ClaimsMapEntry{Path: f.Path, Default: f.Default}
		return nil
	}
	*e = ClaimsMapEntry{Literal: append(json.RawMessage(nil), b...)}
	return nil
}

// MarshalJSON writes the entry back in Hasura's form.
func (e ClaimsMapEntry) MarshalJSON() ([]byte, error) {
	if e.Path == "" {
		return e.Literal, nil
	}
	return json.Marshal(claimsMapPathForm{Path: e.Path, Default: e.Default})
}

// UnmarshalYAML accepts the same two forms from YAML.
func (e *ClaimsMapEntry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		*e = ClaimsMapEntry{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			switch k {
			case "path":
				if err := v.Decode(&e.Path); err != nil {
					return err
				}
			case "default":
				raw, err := yamlToJSON(v)
				if err != nil {
					return err
				}
				e.Default = raw
			default:
				return fmt.Errorf("line %d: field %s not found in claims_map entry (want path, default)", n.Content[i].Line, k)
			}
		}
		if e.Path == "" {
			return fmt.Errorf("line %d: claims_map entry: path is required in an object entry", n.Line)
		}
		return nil
	}
	raw, err := yamlToJSON(n)
	if err != nil {
		return err
	}
	*e = ClaimsMapEntry{Literal: raw}
	return nil
}

func yamlToJSON(n *yaml.Node) (json.RawMessage, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return b, nil
}

// StringOrList decodes a JSON/YAML string or list of strings.
type StringOrList []string

// UnmarshalJSON accepts "a" or ["a","b"].
func (s *StringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringOrList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or a list of strings")
	}
	*s = many
	return nil
}

// UnmarshalYAML accepts a scalar or a sequence of strings.
func (s *StringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = StringOrList{n.Value}
		return nil
	}
	var many []string
	if err := n.Decode(&many); err != nil {
		return fmt.Errorf("line %d: must be a string or a list of strings", n.Line)
	}
	*s = many
	return nil
}

// ParseJWTSecretJSON decodes one HASURA_GRAPHQL_JWT_SECRET value strictly
// (unknown fields are errors).
func ParseJWTSecretJSON(s string) (*JWTSecret, error) {
	var v JWTSecret
	if err := strictJSON(s, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// ParseJWTSecretsJSON decodes a HASURA_GRAPHQL_JWT_SECRETS value strictly.
func ParseJWTSecretsJSON(s string) ([]JWTSecret, error) {
	var v []JWTSecret
	if err := strictJSON(s, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func strictJSON(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// json errors may quote the input; a key must not reach a log.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("invalid JSON at offset %d", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %s: wrong type %s", te.Field, te.Value)
		}
		return err
	}
	if dec.More() {
		return errors.New("invalid JSON: trailing data after the object")
	}
	return nil
}

// canonicalHeader lower-cases nothing: it returns the MIME canonical form
// used as http.Header keys.
func canonicalHeader(name string) string {
	return textprotoCanonical(name)
}
