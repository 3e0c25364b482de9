package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/limits"
)

// demoLimitsYAML is the demo's api_limits section: small enough that a
// newcomer sees a depth and a rate refusal.
const demoLimitsYAML = `api_limits:                             # docs/limits.md; demo steps 7 and 8
  depth_limit: {global: 2}
  rate_limit:
    per_role: {user: {max_reqs_per_min: 10, unique_params: [x-hasura-user-id]}}
`

// demoLimitsSteps prints the demo's API-limit steps.
func demoLimitsSteps(t demoText) string {
	var b strings.Builder
	gql := t.proxy + "/v1/graphql"
	deep := `{"query":"{ session { user { posts { id } } } }"}`
	msg := fmt.Sprintf("depth limit exceeded: the operation's depth is 3, the limit for role %q is 2 (api_limits.depth_limit)", t.tokenRole)
	type ext struct {
		Path string `json:"path"`
		Code string `json:"code"`
	}
	type item struct {
		Message    string `json:"message"`
		Extensions ext    `json:"extensions"`
	}
	want, _ := json.Marshal(struct {
		Errors []item `json:"errors"`
	}{[]item{{Message: msg, Extensions: ext{Path: "$", Code: limits.CodeDepthLimit}}}})
	fmt.Fprintf(&b, "7. Refused: too deep. The demo's api_limits allow a depth of 2 (Hasura EE's limits, for any Hasura):\n\n")
	fmt.Fprintf(&b, "  curl -s %s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '%s'\n", gql, deep)
	fmt.Fprintf(&b, "  # => %s\n\n", want)
	fmt.Fprintf(&b, "8. Refused: too many. Role %s may run 10 operations a minute per user; the 11th of a minute gets\n", t.tokenRole)
	fmt.Fprintf(&b, "   %s and a Retry-After header:\n\n", limits.CodeRateLimit)
	fmt.Fprintf(&b, "  for i in $(seq 11); do curl -si %s -H \"Authorization: Bearer $TOKEN\" -d '{\"query\":\"{ session }\"}' | grep -i -e retry-after -e '\"code\"'; done\n\n", gql)
	return b.String()
}
