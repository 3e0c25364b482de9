package main

// The command line's shared parts: the usage text that lists every
// subcommand, and the build information that version, the starting log line
// and the build_info metric report.

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// usage is the top-level help: every subcommand, one line each.
const usage = `hasura-auth-proxy verifies Clerk JWTs exactly as Hasura's JWT mode does and forwards
requests to Hasura with the admin secret and the verified x-hasura-* session.

Usage:
  hasura-auth-proxy [-config FILE]                 run the proxy
  hasura-auth-proxy -check-config [-config FILE]   validate the configuration, print every problem and warning, exit
  hasura-auth-proxy demo                           try it: the proxy, a token issuer and a Hasura stand-in on 127.0.0.1
  hasura-auth-proxy verify [-config FILE] TOKEN    explain the proxy's decision on a token (exit 0 allowed, 1 refused)
  hasura-auth-proxy healthcheck [-addr HOST:PORT]  ask a running proxy's /readyz (exit 0 ready, 1 not); for HEALTHCHECK
  hasura-auth-proxy version                        print the version, commit and Go version (also: -version)
  hasura-auth-proxy help [COMMAND]                 this text, or a command's flags

Without -config, ./config.yaml is read if it exists; otherwise the configuration comes from the environment
alone: HASURA_GRAPHQL_JWT_SECRET (or _JWT_SECRETS, or CLERK_FRONTEND_API), HASURA_GRAPHQL_ADMIN_SECRET,
HASURA_GRAPHQL_URL, and optionally HASURA_GRAPHQL_UNAUTHORIZED_ROLE, PROXY_LISTEN, PROXY_OPS_LISTEN,
PROXY_LOG_LEVEL, PROXY_LOG_FORMAT.

Flags of the proxy:
`

// buildInfo is what the binary knows about its own build.
type buildInfo struct {
	// Version is the main module's version: a tag such as v1.2.0 for
	// `go install ...@v1.2.0`, a pseudo-version for a build in a checkout
	// (Go 1.24+), or "(devel)".
	Version string
	// Revision is the VCS commit, "unknown" when the build had none
	// (-buildvcs=false, or no git).
	Revision string
	// Modified is true when the work tree had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// readBuildInfo reads the build information the Go toolchain embedded.
func readBuildInfo() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return buildInfo{Version: "(devel)", Revision: "unknown", GoVersion: runtime.Version()}
	}
	return readBuildInfoFrom(bi)
}

// readBuildInfoFrom extracts what buildInfo holds from bi.
func readBuildInfoFrom(bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: "(devel)", Revision: "unknown", GoVersion: runtime.Version()}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// revisionLabel is the revision with "-modified" for a dirty work tree.
func (b buildInfo) revisionLabel() string {
	if b.Modified {
		return b.Revision + "-modified"
	}
	return b.Revision
}

// printVersion is `hasura-auth-proxy version`.
func printVersion(w io.Writer) {
	b := readBuildInfo()
	fmt.Fprintf(w, "hasura-auth-proxy %s\n  commit: %s\n  go:     %s\n", b.Version, b.revisionLabel(), b.GoVersion)
}
