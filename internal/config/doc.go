// Package config is hasura-auth-proxy's configuration file: the YAML format
// (File, composed of the sections that auth, proxy, store, limits and
// revocation define), ${VAR} expansion and Hasura's environment overrides
// (Load, Parse, Resolve for the env-only mode), the shape checker that names
// the YAML path of every problem with a did-you-mean, validation
// (File.Validate), and the warnings -check-config prints (Warnings).
package config
