package config

// Where the configuration comes from: the -config file, ./config.yaml, or,
// as Hasura users configure Hasura, the environment alone.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// DefaultConfigFile is read when -config is not given and it exists.
const DefaultConfigFile = "config.yaml"

// Environment variables of environment-only operation, besides the Hasura
// ones applyEnv reads. config.yaml reads the same names, so moving between a
// file and the environment changes nothing.
const (
	EnvHasuraURL        = "HASURA_GRAPHQL_URL"
	EnvClerkFrontendAPI = "CLERK_FRONTEND_API"
	EnvListen           = "PROXY_LISTEN"
	EnvOpsListen        = "PROXY_OPS_LISTEN"
	EnvLogLevel         = "PROXY_LOG_LEVEL"
	EnvLogFormat        = "PROXY_LOG_FORMAT"
)

// EnvOnlyConfig is the configuration document of environment-only
// operation. HASURA_GRAPHQL_JWT_SECRET(S), HASURA_GRAPHQL_ADMIN_SECRET and
// HASURA_GRAPHQL_UNAUTHORIZED_ROLE are applied by applyEnv, as over a file.
const EnvOnlyConfig = `
server:
  listen: "${PROXY_LISTEN:-:8000}"
  ops_listen: "${PROXY_OPS_LISTEN:-:9090}"
upstream:
  url: "${HASURA_GRAPHQL_URL:-http://127.0.0.1:8080}"
log:
  level: "${PROXY_LOG_LEVEL:-info}"
  format: "${PROXY_LOG_FORMAT:-json}"
`

// EnvOnlyClerkSecret is added when no JWT secret variable is set but
// CLERK_FRONTEND_API is: Clerk's JWKS and issuer, as in config.yaml.
const EnvOnlyClerkSecret = `
auth:
  jwt_secret:
    jwk_url: "https://${CLERK_FRONTEND_API}/.well-known/jwks.json"
    issuer: "https://${CLERK_FRONTEND_API}"
`

// Source says where a configuration was read from, for messages and
// the starting log line.
type Source struct {
	// Path is the file read, or "" for the environment alone.
	Path string
}

// String is "FILE" or "from the environment", to follow "configuration".
func (s Source) String() string {
	if s.Path == "" {
		return "from the environment"
	}
	return s.Path
}

// LogValue is the starting line's config_from field.
func (s Source) LogValue() string {
	if s.Path == "" {
		return "environment"
	}
	return s.Path
}

// Resolve loads the configuration: the file at path when path is not
// empty, else ./config.yaml when it exists, else the environment alone.
func Resolve(path string, lookup func(string) (string, bool)) (*File, Source, error) {
	if path == "" {
		if _, err := os.Stat(DefaultConfigFile); err == nil {
			path = DefaultConfigFile
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, Source{Path: DefaultConfigFile}, fmt.Errorf("read config: %w", err)
		}
	}
	src := Source{Path: path}
	if path != "" {
		cfg, err := LoadLookup(path, lookup)
		return cfg, src, err
	}
	doc := EnvOnlyConfig
	set := func(k string) bool { v, _ := lookup(k); return v != "" }
	if set(EnvClerkFrontendAPI) && !set(EnvJWTSecret) && !set(EnvJWTSecrets) {
		doc += EnvOnlyClerkSecret
	}
	cfg, err := ParseLookup([]byte(doc), lookup)
	return cfg, src, err
}
