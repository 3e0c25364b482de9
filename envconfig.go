package main

// Where the configuration comes from: the -config file, ./config.yaml, or,
// as Hasura users configure Hasura, the environment alone.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// defaultConfigFile is read when -config is not given and it exists.
const defaultConfigFile = "config.yaml"

// Environment variables of environment-only operation, besides the Hasura
// ones applyEnv reads. config.yaml reads the same names, so moving between a
// file and the environment changes nothing.
const (
	envHasuraURL        = "HASURA_GRAPHQL_URL"
	envClerkFrontendAPI = "CLERK_FRONTEND_API"
	envListen           = "PROXY_LISTEN"
	envOpsListen        = "PROXY_OPS_LISTEN"
	envLogLevel         = "PROXY_LOG_LEVEL"
	envLogFormat        = "PROXY_LOG_FORMAT"
)

// envOnlyConfig is the configuration document of environment-only
// operation. HASURA_GRAPHQL_JWT_SECRET(S), HASURA_GRAPHQL_ADMIN_SECRET and
// HASURA_GRAPHQL_UNAUTHORIZED_ROLE are applied by applyEnv, as over a file.
const envOnlyConfig = `
server:
  listen: "${PROXY_LISTEN:-:8000}"
  ops_listen: "${PROXY_OPS_LISTEN:-:9090}"
upstream:
  url: "${HASURA_GRAPHQL_URL:-http://127.0.0.1:8080}"
log:
  level: "${PROXY_LOG_LEVEL:-info}"
  format: "${PROXY_LOG_FORMAT:-json}"
`

// envOnlyClerkSecret is added when no JWT secret variable is set but
// CLERK_FRONTEND_API is: Clerk's JWKS and issuer, as in config.yaml.
const envOnlyClerkSecret = `
auth:
  jwt_secret:
    jwk_url: "https://${CLERK_FRONTEND_API}/.well-known/jwks.json"
    issuer: "https://${CLERK_FRONTEND_API}"
`

// configSource says where a configuration was read from, for messages and
// the starting log line.
type configSource struct {
	// Path is the file read, or "" for the environment alone.
	Path string
}

// String is "FILE" or "from the environment", to follow "configuration".
func (s configSource) String() string {
	if s.Path == "" {
		return "from the environment"
	}
	return s.Path
}

// logValue is the starting line's config_from field.
func (s configSource) logValue() string {
	if s.Path == "" {
		return "environment"
	}
	return s.Path
}

// resolveConfig loads the configuration: the file at path when path is not
// empty, else ./config.yaml when it exists, else the environment alone.
func resolveConfig(path string, lookup func(string) (string, bool)) (*fileConfig, configSource, error) {
	if path == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			path = defaultConfigFile
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, configSource{Path: defaultConfigFile}, fmt.Errorf("read config: %w", err)
		}
	}
	src := configSource{Path: path}
	if path != "" {
		cfg, err := loadConfigLookup(path, lookup)
		return cfg, src, err
	}
	doc := envOnlyConfig
	set := func(k string) bool { v, _ := lookup(k); return v != "" }
	if set(envClerkFrontendAPI) && !set(envJWTSecret) && !set(envJWTSecrets) {
		doc += envOnlyClerkSecret
	}
	cfg, err := parseConfigLookup([]byte(doc), lookup)
	return cfg, src, err
}
