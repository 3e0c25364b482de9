package proxy

import "strings"

// ShadowsHasura reports whether an endpoint the proxy serves itself at path
// p (server.webhook_path, clerk_webhook.path) would hide a path Hasura
// serves: its APIs under /v1, /v2, /api/, its console and /healthz.
func ShadowsHasura(p string) bool {
	return strings.HasPrefix(p, "/v1") || strings.HasPrefix(p, "/v2") || strings.HasPrefix(p, "/api/") ||
		strings.HasPrefix(p, "/hasura") || p == "/healthz" || strings.HasPrefix(p, "/console")
}
