package config

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
	"github.com/hasura-auth-proxy/hasura-auth-proxy/revocation"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
)

// File is the configuration file: each package's section, nothing
// else.
type File struct {
	Server    proxy.ServerConfig    `yaml:"server"`
	Upstream  proxy.Config          `yaml:"upstream"`
	WebSocket proxy.WebSocketConfig `yaml:"websocket"`
	Auth      auth.Config           `yaml:"auth"`
	Log       LogConfig             `yaml:"log"`
	// Redis is the state replicas share (API limits, revocation).
	Redis store.Config `yaml:"redis"`
	// ClerkWebhook receives Clerk's session and user events (revocation).
	ClerkWebhook revocation.Config `yaml:"clerk_webhook"`
	// APILimits is Hasura EE's api_limits object (limits package).
	APILimits limits.Config `yaml:"api_limits"`
	// Introspection is Hasura's graphql_schema_introspection metadata.
	Introspection limits.IntrospectionConfig `yaml:"graphql_schema_introspection"`
	// MetadataDir, when set, is a Hasura metadata directory whose
	// api_limits.yaml and graphql_schema_introspection.yaml are read in
	// place of those sections (limits.LoadMetadataDir).
	MetadataDir string `yaml:"metadata_dir"`
}

// LogConfig is the `log:` section.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or console.
	Format string `yaml:"format"`
	// UserID adds x-hasura-user-id to access log lines.
	UserID bool `yaml:"user_id"`
}

func Default() File {
	return File{
		Server:    proxy.DefaultServerConfig(),
		Upstream:  proxy.DefaultConfig(),
		WebSocket: proxy.DefaultWebSocketConfig(),
		Auth:      auth.DefaultConfig(),
		Log:       LogConfig{Level: "info", Format: "json"},
		Redis:     store.DefaultConfig(),

		ClerkWebhook: revocation.DefaultConfig(),
	}
}

// Environment variables that override configuration keys, so the values of
// Clerk's Hasura guide can be pasted as they are.
const (
	EnvJWTSecret        = "HASURA_GRAPHQL_JWT_SECRET"
	EnvJWTSecrets       = "HASURA_GRAPHQL_JWT_SECRETS"
	EnvAdminSecret      = "HASURA_GRAPHQL_ADMIN_SECRET"
	EnvUnauthorizedRole = "HASURA_GRAPHQL_UNAUTHORIZED_ROLE"
	EnvCORSDomain       = "HASURA_GRAPHQL_CORS_DOMAIN"
	EnvDisableCORS      = "HASURA_GRAPHQL_DISABLE_CORS"
)

// Load reads, expands, decodes strictly and validates the file at
// path. getenv is the environment (os.Getenv in production). Every problem
// is reported at once, naming its field.
func Load(path string, getenv func(string) string) (*File, error) {
	return LoadLookup(path, LookupFromGetenv(getenv))
}

// LoadLookup is Load with an environment that tells unset from
// empty (os.LookupEnv), as ${VAR?message} needs.
func LoadLookup(path string, lookup func(string) (string, bool)) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	// Problems are returned joined, not wrapped, so callers can list each.
	return ParseLookup(data, lookup)
}

// LookupFromGetenv adapts a getenv function: an empty value counts as unset.
func LookupFromGetenv(getenv func(string) string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
}

func Parse(data []byte, getenv func(string) string) (*File, error) {
	return ParseLookup(data, LookupFromGetenv(getenv))
}

// ParseLookup expands ${...} in the document, checks its shape
// against the Go types (checkShape), decodes what is well-formed strictly
// over the defaults, applies the environment and validates, and reports the
// problems of every stage together, each once.
func ParseLookup(data []byte, lookup func(string) (string, bool)) (*File, error) {
	cfg := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var errs []error
	var removed []shapeProblem // entries taken out of the document: their validation errors would repeat them
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		var expandErrs []shapeProblem
		expanded := map[*yaml.Node]bool{}
		expandNode(root, "", lookup, expanded, &expandErrs)
		expandErrs = append(expandErrs, inlineJSONSecrets(&doc, expanded)...)
		shape := checkShape(root, cfg, expanded)
		if root.Kind != yaml.MappingNode {
			return nil, shape[0]
		}
		for _, p := range append(expandErrs, shape...) {
			errs = append(errs, p)
		}
		removed = append(expandErrs, shape...)
		// yaml.Node.Decode cannot refuse unknown keys; re-encode and decode
		// with KnownFields so a misspelt key is an error, not a default.
		// checkShape removed what it reported, so this is a safety net.
		pruned, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(pruned))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			errs = append(errs, fmt.Errorf("invalid configuration: %w", hideYAMLValues(err)))
		}
	}
	getenv := func(k string) string { v, _ := lookup(k); return v }
	if err := applyEnv(&cfg, getenv); err != nil {
		errs = append(errs, err)
	}
	if err := loadMetadataDir(&cfg); err != nil {
		errs = append(errs, err)
	}
	for _, e := range splitErrorValues(cfg.Validate()) {
		if !coveredBy(problemPath(e.Error()), removed) {
			errs = append(errs, e)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// splitErrorValues flattens joined errors.
func splitErrorValues(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrorValues(e)...)
		}
		return out
	}
	return []error{err}
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

// expandNode replaces ${...} in every scalar value (never in keys), see
// expandEnv. Expanding after parsing means a value with YAML syntax in it
// stays a plain string. A value that cannot be expanded is reported under
// its YAML path and replaced by null, so the rest of the document is still
// checked.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), expanded map[*yaml.Node]bool, errs *[]shapeProblem) {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := expandEnvLookup(n.Value, lookup)
		if err != nil {
			p := path
			if p == "" {
				p = "(top level)"
			}
			*errs = append(*errs, shapeProblem{path: p, line: n.Line, msg: err.Error()})
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
			return
		}
		if v != n.Value {
			n.Value = v
			expanded[n] = true
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
			expandNode(n.Content[i], joinPath(path, n.Content[i-1].Value), lookup, expanded, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), lookup, expanded, errs)
		}
	default:
		for _, c := range n.Content {
			expandNode(c, path, lookup, expanded, errs)
		}
	}
}

// expandEnv is expandEnvLookup with an environment where empty is unset.
func expandEnv(s string, getenv func(string) string) (string, error) {
	return expandEnvLookup(s, LookupFromGetenv(getenv))
}

// expandEnvLookup expands the POSIX shell forms docker compose also
// accepts: ${VAR}, ${VAR:-default} (default when unset or empty),
// ${VAR:?message} (fail with message when unset or empty) and ${VAR?message}
// (fail when unset). "$$" is a literal "$". Errors
// never quote the value, which may be a secret, only the variable's name and
// the configuration's own message.
func expandEnvLookup(s string, lookup func(string) (string, bool)) (string, error) {
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
		n := 0
		for n < len(expr) && isEnvNameByte(expr[n], n) {
			n++
		}
		name, op := expr[:n], expr[n:]
		if name == "" {
			// The text is part of the value, which may be a secret.
			return "", errors.New("invalid variable name in ${...}: use letters, digits and _")
		}
		v, set := lookup(name)
		switch {
		case op == "":
		case strings.HasPrefix(op, ":-"):
			if v == "" {
				v = op[2:]
			}
		case strings.HasPrefix(op, ":?"), strings.HasPrefix(op, "?"):
			colon := op[0] == ':'
			msg := strings.TrimPrefix(strings.TrimPrefix(op, ":"), "?")
			if !set || (colon && v == "") {
				what := "is not set"
				if colon {
					what = "is not set or empty"
				}
				if msg == "" {
					return "", fmt.Errorf("environment variable %s %s", name, what)
				}
				return "", fmt.Errorf("environment variable %s %s: %s", name, what, msg)
			}
		default:
			return "", errors.New("invalid variable name in ${...}: use letters, digits and _, then optionally :-default, :?message or ?message")
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), nil
}

func isEnvNameByte(c byte, i int) bool {
	return c == '_' || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || (i > 0 && '0' <= c && c <= '9')
}

// inlineJSONSecrets lets auth.jwt_secret / auth.jwt_secrets be given as a
// JSON string (the value of HASURA_GRAPHQL_JWT_SECRET pasted in quotes): the
// string is parsed and put in place of the scalar, so strict decoding still
// applies to its fields.
func inlineJSONSecrets(doc *yaml.Node, expanded map[*yaml.Node]bool) []shapeProblem {
	root := doc.Content[0]
	authNode := mappingValue(root, "auth")
	if authNode == nil {
		return nil
	}
	var problems []shapeProblem
	for _, key := range []string{"jwt_secret", "jwt_secrets"} {
		n := mappingValue(authNode, key)
		if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || strings.TrimSpace(n.Value) == "" {
			continue
		}
		var inner yaml.Node
		if err := yaml.Unmarshal([]byte(n.Value), &inner); err != nil || len(inner.Content) == 0 {
			problems = append(problems, shapeProblem{path: "auth." + key, line: n.Line,
				msg: "a string value must hold Hasura's JSON (as in HASURA_GRAPHQL_JWT_SECRET)"})
			*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}
			continue
		}
		*n = *inner.Content[0]
		if expanded[n] {
			markExpanded(n, expanded)
		}
	}
	return problems
}

// markExpanded marks every node under n as coming from the environment.
func markExpanded(n *yaml.Node, expanded map[*yaml.Node]bool) {
	expanded[n] = true
	for _, c := range n.Content {
		markExpanded(c, expanded)
	}
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
func applyEnv(c *File, getenv func(string) string) error {
	var errs []error
	if v := getenv(EnvJWTSecrets); v != "" {
		ss, err := auth.ParseJWTSecretsJSON(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvJWTSecrets, err))
		} else {
			c.Auth.JWTSecrets, c.Auth.JWTSecret = ss, nil
		}
	} else if v := getenv(EnvJWTSecret); v != "" {
		s, err := auth.ParseJWTSecretJSON(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvJWTSecret, err))
		} else {
			c.Auth.JWTSecret, c.Auth.JWTSecrets = s, nil
		}
	}
	if v := getenv(EnvAdminSecret); v != "" {
		c.Upstream.AdminSecret = auth.Secret(v)
	}
	if v := getenv(EnvUnauthorizedRole); v != "" {
		c.Auth.UnauthorizedRole = v
	}
	if v := getenv(EnvCORSDomain); v != "" {
		c.Server.CORSDomain = v
	}
	if v := getenv(EnvDisableCORS); v != "" {
		// The spellings Hasura's environment parser accepts, any case, and
		// 1/0.
		switch strings.ToLower(v) {
		case "true", "t", "yes", "y", "1":
			c.Server.CORSDisabled = true
		case "false", "f", "no", "n", "0":
			c.Server.CORSDisabled = false
		default:
			errs = append(errs, fmt.Errorf("%s: must be true or false", EnvDisableCORS))
		}
	}
	if v := getenv(store.EnvRedisURL); v != "" {
		c.Redis.URL = auth.Secret(v)
	}
	if v := getenv(revocation.EnvSigningSecret); v != "" {
		c.ClerkWebhook.SigningSecret = auth.Secret(v)
	}
	return errors.Join(errs...)
}

func (c *File) Validate() error {
	var errs []error
	errs = append(errs, c.Server.Validate(), c.Upstream.Validate(), c.WebSocket.Validate(), c.Auth.Validate(), c.Redis.Validate(),
		c.APILimits.Validate(), c.Introspection.Validate())
	errs = append(errs, c.ClerkWebhook.Validate())
	if p := c.ClerkWebhook.Path; p != "" && p == c.Server.WebhookPath {
		errs = append(errs, errors.New("clerk_webhook.path: must differ from server.webhook_path"))
	}
	if cors := c.Server.CORS(); cors != nil {
		// An invalid cors_domain is reported once, by Server.Validate.
		errs = append(errs, proxy.CheckReadCookie(c.WebSocket, cors))
	}
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
