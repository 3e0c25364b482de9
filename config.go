package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/limits"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
)

// fileConfig is the configuration file: each package's section, nothing
// else.
type fileConfig struct {
	Server    proxy.ServerConfig    `yaml:"server"`
	Upstream  proxy.Config          `yaml:"upstream"`
	WebSocket proxy.WebSocketConfig `yaml:"websocket"`
	Auth      auth.Config           `yaml:"auth"`
	Log       logConfig             `yaml:"log"`
	// Redis is the state replicas share (API limits, revocation).
	Redis store.Config `yaml:"redis"`
	// APILimits is Hasura EE's api_limits object (limits package).
	APILimits limits.Config `yaml:"api_limits"`
	// Introspection is Hasura's graphql_schema_introspection metadata.
	Introspection limits.IntrospectionConfig `yaml:"graphql_schema_introspection"`
	// MetadataDir, when set, is a Hasura metadata directory whose
	// api_limits.yaml and graphql_schema_introspection.yaml are read in
	// place of those sections (limits.LoadMetadataDir).
	MetadataDir string `yaml:"metadata_dir"`
}

// logConfig is the `log:` section.
type logConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or console.
	Format string `yaml:"format"`
	// UserID adds x-hasura-user-id to access log lines.
	UserID bool `yaml:"user_id"`
}

func defaultConfig() fileConfig {
	return fileConfig{
		Server:    proxy.DefaultServerConfig(),
		Upstream:  proxy.DefaultConfig(),
		WebSocket: proxy.DefaultWebSocketConfig(),
		Auth:      auth.DefaultConfig(),
		Log:       logConfig{Level: "info", Format: "json"},
		Redis:     store.DefaultConfig(),
	}
}

// Environment variables that override configuration keys, so the values of
// Clerk's Hasura guide can be pasted as they are.
const (
	envJWTSecret        = "HASURA_GRAPHQL_JWT_SECRET"
	envJWTSecrets       = "HASURA_GRAPHQL_JWT_SECRETS"
	envAdminSecret      = "HASURA_GRAPHQL_ADMIN_SECRET"
	envUnauthorizedRole = "HASURA_GRAPHQL_UNAUTHORIZED_ROLE"
)

// loadConfig reads, expands, decodes strictly and validates the file at
// path. getenv is the environment (os.Getenv in production). Every problem
// is reported at once, naming its field.
func loadConfig(path string, getenv func(string) string) (*fileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	// Problems are returned joined, not wrapped, so callers can list each.
	return parseConfig(data, getenv)
}

func parseConfig(data []byte, getenv func(string) string) (*fileConfig, error) {
	cfg := defaultConfig()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if len(doc.Content) > 0 {
		var errs []error
		expandNode(&doc, getenv, &errs)
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		if err := inlineJSONSecrets(&doc); err != nil {
			return nil, err
		}
		// yaml.Node.Decode cannot refuse unknown keys; re-encode and decode
		// with KnownFields so a misspelt key is an error, not a default.
		expanded, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(expanded))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("invalid configuration: %w", hideYAMLValues(err))
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return nil, err
	}
	if err := loadMetadataDir(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// yamlQuoted is how go.yaml.in/yaml/v3 quotes a value in its type errors.
var yamlQuoted = regexp.MustCompile("`[^`]*`")

// hideYAMLValues removes the quoted values from YAML type errors: a secret
// pasted under the wrong key must not reach a log or a terminal.
func hideYAMLValues(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	lines := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		lines[i] = yamlQuoted.ReplaceAllString(e, "(value hidden)")
	}
	return errors.New("yaml: " + strings.Join(lines, "; "))
}

// expandNode replaces ${VAR} and ${VAR:-default} in every scalar value
// (never in keys). Expanding after parsing means a value with YAML syntax in
// it stays a plain string.
func expandNode(n *yaml.Node, getenv func(string) string, errs *[]error) {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := expandEnv(n.Value, getenv)
		if err != nil {
			*errs = append(*errs, fmt.Errorf("line %d: %w", n.Line, err))
			return
		}
		if v != n.Value {
			n.Value = v
			// A quoted value stays a string whatever it holds; a plain
			// one is typed again from its new text (sizes, booleans).
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				n.Tag = "!!str"
			} else {
				n.Tag = ""
			}
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			expandNode(n.Content[i], getenv, errs)
		}
	default:
		for _, c := range n.Content {
			expandNode(c, getenv, errs)
		}
	}
}

// expandEnv expands ${VAR} and ${VAR:-default}. "$$" is a literal "$".
func expandEnv(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${ in value")
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			// The text is part of the value, which may be a secret.
			return "", errors.New("invalid variable name in ${...}: use letters, digits and _")
		}
		v := getenv(name)
		if v == "" && hasDef {
			v = def
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || (i > 0 && '0' <= c && c <= '9')) {
			return false
		}
	}
	return true
}

// inlineJSONSecrets lets auth.jwt_secret / auth.jwt_secrets be given as a
// JSON string (the value of HASURA_GRAPHQL_JWT_SECRET pasted in quotes): the
// string is parsed and put in place of the scalar, so strict decoding still
// applies to its fields.
func inlineJSONSecrets(doc *yaml.Node) error {
	root := doc.Content[0]
	authNode := mappingValue(root, "auth")
	if authNode == nil {
		return nil
	}
	for _, key := range []string{"jwt_secret", "jwt_secrets"} {
		n := mappingValue(authNode, key)
		if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" || strings.TrimSpace(n.Value) == "" {
			continue
		}
		var inner yaml.Node
		if err := yaml.Unmarshal([]byte(n.Value), &inner); err != nil || len(inner.Content) == 0 {
			return fmt.Errorf("auth.%s: a string value must hold Hasura's JSON (as in HASURA_GRAPHQL_JWT_SECRET)", key)
		}
		*n = *inner.Content[0]
	}
	return nil
}

func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// applyEnv applies the Hasura environment variables, when set and not
// empty. HASURA_GRAPHQL_JWT_SECRETS wins over HASURA_GRAPHQL_JWT_SECRET, as in
// Hasura.
func applyEnv(c *fileConfig, getenv func(string) string) error {
	var errs []error
	if v := getenv(envJWTSecrets); v != "" {
		ss, err := auth.ParseJWTSecretsJSON(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envJWTSecrets, err))
		} else {
			c.Auth.JWTSecrets, c.Auth.JWTSecret = ss, nil
		}
	} else if v := getenv(envJWTSecret); v != "" {
		s, err := auth.ParseJWTSecretJSON(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envJWTSecret, err))
		} else {
			c.Auth.JWTSecret, c.Auth.JWTSecrets = s, nil
		}
	}
	if v := getenv(envAdminSecret); v != "" {
		c.Upstream.AdminSecret = auth.Secret(v)
	}
	if v := getenv(envUnauthorizedRole); v != "" {
		c.Auth.UnauthorizedRole = v
	}
	if v := getenv(store.EnvRedisURL); v != "" {
		c.Redis.URL = auth.Secret(v)
	}
	return errors.Join(errs...)
}

func (c *fileConfig) validate() error {
	var errs []error
	errs = append(errs, c.Server.Validate(), c.Upstream.Validate(), c.WebSocket.Validate(), c.Auth.Validate(), c.Redis.Validate(),
		c.APILimits.Validate(), c.Introspection.Validate())
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: must be debug, info, warn or error, not %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format: must be json or console, not %q", c.Log.Format))
	}
	if c.Upstream.ResponseHeaderTimeout >= c.Server.WriteTimeout && c.Server.WriteTimeout > 0 {
		errs = append(errs, errors.New("server.write_timeout: must exceed upstream.response_header_timeout, or slow Hasura answers are cut off"))
	}
	return errors.Join(errs...)
}
