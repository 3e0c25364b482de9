package limits

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the `api_limits:` section: the object Hasura EE's
// set_api_limits metadata API takes and metadata/api_limits.yaml holds,
// with the same keys. The zero value limits nothing.
type Config struct {
	// Disabled turns every limit off while keeping the configuration.
	Disabled bool `yaml:"disabled"`
	// DepthLimit bounds the nesting of fields with a selection set.
	DepthLimit *Limit `yaml:"depth_limit"`
	// NodeLimit bounds the number of fields with a selection set.
	NodeLimit *Limit `yaml:"node_limit"`
	// BatchLimit bounds the operations of a JSON array body.
	BatchLimit *Limit `yaml:"batch_limit"`
	// TimeLimit bounds, in seconds, how long Hasura may take to answer.
	TimeLimit *Limit `yaml:"time_limit"`
	// RateLimit bounds the operations per sliding minute.
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// Limit is Hasura's APILimitOption: a global value and per-role overrides.
// A nil Global means roles without an entry are not limited (Hasura
// requires global; this proxy accepts a file without it).
type Limit struct {
	Global  *int           `yaml:"global"`
	PerRole map[string]int `yaml:"per_role"`
}

// RateLimit is Hasura's RateLimitOption.
type RateLimit struct {
	Global  *RateRule           `yaml:"global"`
	PerRole map[string]RateRule `yaml:"per_role"`
}

// RateRule is one rate limit: at most MaxReqsPerMin operations in any
// sliding minute per (role, UniqueParams).
type RateRule struct {
	MaxReqsPerMin int          `yaml:"max_reqs_per_min"`
	UniqueParams  UniqueParams `yaml:"unique_params"`
}

// UniqueParams is Hasura's unique_params: absent (one counter per role),
// the string "IP" (per client address) or a list of session variable names
// (per their values).
type UniqueParams struct {
	IP bool
	// Vars are lower-case session variable names, in the configured order.
	Vars []string
}

// UnmarshalYAML accepts "IP" or a list of session variable names.
func (u *UniqueParams) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*u = UniqueParams{}
			return nil
		}
		if n.Value != "IP" {
			return fmt.Errorf("line %d: unique_params must be \"IP\" or a list of session variables, not %q", n.Line, n.Value)
		}
		*u = UniqueParams{IP: true}
		return nil
	case yaml.SequenceNode:
		var vars []string
		if err := n.Decode(&vars); err != nil {
			return fmt.Errorf("line %d: unique_params must be \"IP\" or a list of session variables", n.Line)
		}
		for i := range vars {
			vars[i] = strings.ToLower(vars[i])
		}
		*u = UniqueParams{Vars: vars}
		return nil
	}
	return fmt.Errorf("line %d: unique_params must be \"IP\" or a list of session variables", n.Line)
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (u UniqueParams) MarshalYAML() (any, error) {
	switch {
	case u.IP:
		return "IP", nil
	case len(u.Vars) > 0:
		return u.Vars, nil
	}
	return nil, nil
}

// String is "IP", the variable names joined with ",", or "role".
func (u UniqueParams) String() string {
	switch {
	case u.IP:
		return "IP"
	case len(u.Vars) > 0:
		return strings.Join(u.Vars, ",")
	}
	return "role"
}

// IntrospectionConfig is the `graphql_schema_introspection:` section,
// Hasura's metadata key of the same name.
type IntrospectionConfig struct {
	// DisabledForRoles are the roles whose operations may not select
	// __schema or __type.
	DisabledForRoles []string `yaml:"disabled_for_roles"`
}

// maxLimit bounds every configured integer, so sums never overflow.
const maxLimit = 1 << 30

// Validate reports every problem, naming its YAML path. It does no I/O.
func (c *Config) Validate() error {
	var errs []error
	check := func(name string, l *Limit, min int) {
		if l == nil {
			return
		}
		if l.Global != nil && (*l.Global < min || *l.Global > maxLimit) {
			errs = append(errs, fmt.Errorf("api_limits.%s.global: must be between %d and %d, not %d", name, min, maxLimit, *l.Global))
		}
		for _, role := range sortedKeys(l.PerRole) {
			if v := l.PerRole[role]; v < min || v > maxLimit {
				errs = append(errs, fmt.Errorf("api_limits.%s.per_role.%s: must be between %d and %d, not %d", name, role, min, maxLimit, v))
			}
			if role == "" {
				errs = append(errs, fmt.Errorf("api_limits.%s.per_role: a role name must not be empty", name))
			}
		}
	}
	check("depth_limit", c.DepthLimit, 1)
	check("node_limit", c.NodeLimit, 1)
	check("batch_limit", c.BatchLimit, 1)
	check("time_limit", c.TimeLimit, 1)
	if c.TimeLimit != nil {
		// Seconds; a day is far past any HTTP timeout in front of Hasura.
		for _, role := range sortedKeys(c.TimeLimit.PerRole) {
			if v := c.TimeLimit.PerRole[role]; v > 86400 {
				errs = append(errs, fmt.Errorf("api_limits.time_limit.per_role.%s: at most 86400 seconds, not %d", role, v))
			}
		}
		if g := c.TimeLimit.Global; g != nil && *g > 86400 {
			errs = append(errs, fmt.Errorf("api_limits.time_limit.global: at most 86400 seconds, not %d", *g))
		}
	}
	if r := c.RateLimit; r != nil {
		rule := func(path string, rr RateRule) {
			if rr.MaxReqsPerMin < 1 || rr.MaxReqsPerMin > 1_000_000 {
				errs = append(errs, fmt.Errorf("%s.max_reqs_per_min: must be between 1 and 1000000, not %d", path, rr.MaxReqsPerMin))
			}
			for i, v := range rr.UniqueParams.Vars {
				if !strings.HasPrefix(v, "x-hasura-") || v == "x-hasura-role" {
					errs = append(errs, fmt.Errorf("%s.unique_params[%d]: %q is not a session variable (x-hasura-*, other than x-hasura-role)", path, i, v))
				}
				if slices.Contains(rr.UniqueParams.Vars[:i], v) {
					errs = append(errs, fmt.Errorf("%s.unique_params[%d]: %q is listed twice", path, i, v))
				}
			}
		}
		if r.Global != nil {
			rule("api_limits.rate_limit.global", *r.Global)
		}
		for _, role := range sortedKeys(r.PerRole) {
			if role == "" {
				errs = append(errs, errors.New("api_limits.rate_limit.per_role: a role name must not be empty"))
			}
			rule("api_limits.rate_limit.per_role."+role, r.PerRole[role])
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem, naming its YAML path.
func (c *IntrospectionConfig) Validate() error {
	var errs []error
	for i, r := range c.DisabledForRoles {
		if r == "" {
			errs = append(errs, fmt.Errorf("graphql_schema_introspection.disabled_for_roles[%d]: must not be empty", i))
		}
	}
	return errors.Join(errs...)
}

// Roles are every role name the configuration mentions, sorted: the closed
// set of the role label of the limits metrics.
func (c *Config) Roles(ic IntrospectionConfig) []string {
	set := map[string]bool{}
	for _, l := range []*Limit{c.DepthLimit, c.NodeLimit, c.BatchLimit, c.TimeLimit} {
		if l != nil {
			for r := range l.PerRole {
				set[r] = true
			}
		}
	}
	if c.RateLimit != nil {
		for r := range c.RateLimit.PerRole {
			set[r] = true
		}
	}
	for _, r := range ic.DisabledForRoles {
		set[r] = true
	}
	return sortedKeys(set)
}

// forRole is the value for role: its per_role entry, else global; 0 means
// no limit.
func (l *Limit) forRole(role string) int {
	if l == nil {
		return 0
	}
	if v, ok := l.PerRole[role]; ok {
		return v
	}
	if l.Global != nil {
		return *l.Global
	}
	return 0
}

// forRole is the rule for role, or nil.
func (r *RateLimit) forRole(role string) *RateRule {
	if r == nil {
		return nil
	}
	if rr, ok := r.PerRole[role]; ok {
		return &rr
	}
	return r.Global
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
