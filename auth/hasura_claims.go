package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Session variable names with a special meaning.
const (
	varAllowedRoles = "x-hasura-allowed-roles"
	varDefaultRole  = "x-hasura-default-role"
	varRole         = "x-hasura-role"
	varUserID       = "x-hasura-user-id"
	varAdminSecret  = "x-hasura-admin-secret"
	varAccessKey    = "x-hasura-access-key"
	varBackendOnly  = "x-hasura-use-backend-only-permissions"
)

// Var is one session variable sent to Hasura as a header. Name is lower-case.
type Var struct {
	// Name is the header name, lower-case (x-hasura-user-id).
	Name string
	// Value is the header value Hasura receives, converted from the claim
	// (a JSON string's content; with array_claims: postgres, an array's
	// Postgres literal).
	Value string
}

// hasuraClaims is what a verified token grants: its roles and its session
// variables, already converted to header values.
type hasuraClaims struct {
	allowedRoles []string
	defaultRole  string
	vars         []Var
	// varsErr is a session-variable problem found while parsing. Hasura
	// reports it only after role selection, so it is held until then.
	varsErr *Error
}

// claimsRules is the claims part of one secret's configuration.
type claimsRules struct {
	namespace   string   // literal key, when path is nil and claimsMap is nil
	path        jsonPath // claims_namespace_path, or nil
	stringified bool     // claims_format: stringified_json
	claimsMap   []claimsMapRule
	postgres    bool // array_claims: postgres
}

type claimsMapRule struct {
	name    string // lower-case session variable
	literal json.RawMessage
	path    jsonPath
	def     json.RawMessage
}

func newClaimsRules(s *JWTSecret, postgres bool) (claimsRules, error) {
	r := claimsRules{namespace: s.ClaimsNamespace, stringified: s.ClaimsFormat == "stringified_json", postgres: postgres}
	if r.namespace == "" {
		r.namespace = DefaultClaimsNamespace
	}
	if s.ClaimsNamespacePath != "" {
		p, err := parseJSONPath(s.ClaimsNamespacePath)
		if err != nil {
			return r, err
		}
		r.path = p
	}
	if s.ClaimsMap != nil {
		names := make([]string, 0, len(s.ClaimsMap))
		for k := range s.ClaimsMap {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			e := s.ClaimsMap[k]
			rule := claimsMapRule{name: strings.ToLower(k), literal: e.Literal, def: e.Default}
			if e.Path != "" {
				p, err := parseJSONPath(e.Path)
				if err != nil {
					return r, err
				}
				rule.path = p
			}
			r.claimsMap = append(r.claimsMap, rule)
		}
	}
	return r, nil
}

// extract applies the rules to a verified payload: locate the claims, read
// the role claims, convert the session variables, in the order of Hasura's
// parseClaimsMap and parseHasuraClaims (server/src-lib/Hasura/Server/Auth/JWT.hs).
func (r *claimsRules) extract(c *claimSet) (*hasuraClaims, *Error) {
	if r.claimsMap != nil {
		return r.extractMap(c)
	}
	obj, err := r.locate(c)
	if err != nil {
		return nil, err
	}
	// Keep only x-hasura-* keys, case-insensitively, reported lower-case.
	// Keys differing only in case are ambiguous: Hasura's result is
	// undefined, this proxy refuses the token.
	lowered := make(map[string]json.RawMessage, len(obj))
	for k, v := range obj {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-hasura-") {
			continue
		}
		if _, dup := lowered[lk]; dup {
			return nil, claimsErr(ReasonBadClaimValue, fmt.Sprintf("x-hasura-* claims: %s appears more than once with different case", lk))
		}
		lowered[lk] = v
	}
	hc := &hasuraClaims{}
	raw, ok := lowered[varAllowedRoles]
	if !ok {
		return nil, ErrAllowedRolesClaim
	}
	if hc.allowedRoles, err = parseAllowedRoles(raw); err != nil {
		return nil, err
	}
	raw, ok = lowered[varDefaultRole]
	if !ok {
		return nil, ErrDefaultRoleClaim
	}
	if hc.defaultRole, err = parseDefaultRole(raw, "should be a single role name"); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(lowered))
	for k := range lowered {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		r.addVar(hc, k, lowered[k])
	}
	return hc, nil
}

// locate finds the claims object in namespace mode (catalogue rows 15-19).
func (r *claimsRules) locate(c *claimSet) (map[string]json.RawMessage, *Error) {
	var raw json.RawMessage
	var where string
	if r.path != nil {
		top := make(map[string]json.RawMessage, len(c.raw))
		for k, v := range c.raw {
			if !slices.Contains(registeredClaims[:], k) {
				top[k] = v
			}
		}
		v, ok := r.path.lookupIn(top)
		if !ok {
			return nil, claimsErr(ReasonClaimsInvalid, fmt.Sprintf("claims not found at claims_namespace_path: '%s'", r.path))
		}
		raw, where = v, "claims_namespace_path "+r.path.String()
	} else {
		v, ok := c.raw[r.namespace]
		if !ok {
			return nil, claimsErr(ReasonClaimsInvalid, fmt.Sprintf("claims key: '%s' not found", r.namespace))
		}
		raw, where = v, "claims_namespace "+r.namespace
	}
	raw = bytes.TrimSpace(raw)
	if r.stringified {
		if len(raw) == 0 || raw[0] != '"' {
			return nil, claimsErr(ReasonClaimsInvalid, "expecting a string when claims_format is stringified_json")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, claimsErr(ReasonClaimsInvalid, "expecting a string when claims_format is stringified_json")
		}
		var obj map[string]json.RawMessage
		t := strings.TrimSpace(s)
		if !strings.HasPrefix(t, "{") || json.Unmarshal([]byte(t), &obj) != nil {
			return nil, claimsErr(ReasonClaimsInvalid, fmt.Sprintf("expecting stringified json at: '%s', but found: %s", where, truncate(s, 200)))
		}
		return obj, nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, claimsErr(ReasonClaimsInvalid, "expecting a json object when claims_format is json")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, claimsErr(ReasonClaimsInvalid, "expecting a json object when claims_format is json")
	}
	return obj, nil
}

// extractMap applies claims_map as Hasura's parseClaimsMap does: allowed
// roles, then the default role, then the other variables.
func (r *claimsRules) extractMap(c *claimSet) (*hasuraClaims, *Error) {
	hc := &hasuraClaims{}
	find := func(name string) (claimsMapRule, bool) {
		for _, rule := range r.claimsMap {
			if rule.name == name {
				return rule, true
			}
		}
		return claimsMapRule{}, false
	}
	resolve := func(rule claimsMapRule) (json.RawMessage, bool) {
		if rule.path == nil {
			return rule.literal, true
		}
		if v, ok := rule.path.lookupIn(c.raw); ok {
			return v, true
		}
		if rule.def != nil {
			return rule.def, true
		}
		return nil, false
	}
	rule, _ := find(varAllowedRoles)
	raw, ok := resolve(rule)
	if !ok {
		return nil, ErrAllowedRolesClaim
	}
	var err *Error
	if hc.allowedRoles, err = parseAllowedRoles(raw); err != nil {
		return nil, err
	}
	rule, _ = find(varDefaultRole)
	if raw, ok = resolve(rule); !ok {
		return nil, ErrDefaultRoleClaim
	}
	if hc.defaultRole, err = parseDefaultRole(raw, "should be a role"); err != nil {
		return nil, err
	}
	for _, rule := range r.claimsMap {
		if rule.name == varAllowedRoles || rule.name == varDefaultRole {
			continue
		}
		v, ok := resolve(rule)
		if !ok {
			return nil, claimsErr(ReasonClaimsInvalid, fmt.Sprintf("JWT claim from claims_map, %s not found", rule.name))
		}
		r.addVar(hc, rule.name, v)
	}
	return hc, nil
}

// addVar converts one session claim to a header value. Problems are held in
// hc.varsErr (the first one wins) because Hasura reports them after role
// selection.
func (r *claimsRules) addVar(hc *hasuraClaims, name string, raw json.RawMessage) {
	switch name {
	case varAllowedRoles, varDefaultRole:
		// Roles are not session variables.
		return
	}
	switch strings.ReplaceAll(name, "_", "-") {
	case varRole:
		// x-hasura-role is chosen by the proxy and a claim of that name is
		// overridden, as in Hasura.
		return
	case varAdminSecret, varAccessKey, varBackendOnly:
		// Hasura drops the secrets from a JWT session, and backend-only
		// permissions never apply in JWT mode. Forwarded next to the admin
		// secret they would be honoured, so they are never forwarded; nor
		// are their "_" spellings, which the proxy's last check before
		// Hasura treats as the same headers (and refuses).
		return
	}
	if hc.varsErr != nil {
		return
	}
	if !isToken(name) {
		hc.varsErr = claimsErr(ReasonBadClaimValue, fmt.Sprintf("x-hasura-* claims: %q is not a valid header name", truncate(name, 64)))
		return
	}
	v, err := r.claimValue(raw)
	if err != nil {
		hc.varsErr = err
		return
	}
	if !validHeaderValue(v) {
		hc.varsErr = claimsErr(ReasonBadClaimValue, fmt.Sprintf("x-hasura-* claims: the value of %s contains a control character (CR, LF, NUL, ...)", name))
		return
	}
	hc.vars = append(hc.vars, Var{Name: name, Value: v})
}

// claimValue turns a session claim into a string: strings as they are, and
// with array_claims: postgres, arrays of scalars as Postgres array literals.
func (r *claimsRules) claimValue(raw json.RawMessage) (string, *Error) {
	raw = bytes.TrimSpace(raw)
	kind := jsonKind(raw)
	if kind == "String" {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, nil
		}
	}
	if kind == "Array" && r.postgres {
		if s, ok := postgresArray(raw); ok {
			return s, nil
		}
		return "", claimsErr(ReasonClaimsInvalid, "x-hasura-* claims: arrays must hold only strings, numbers, booleans or nulls to become Postgres arrays")
	}
	return "", claimsErr(ReasonClaimsInvalid, "x-hasura-* claims: parsing Text failed, expected String, but encountered "+kind)
}

// postgresArray renders a JSON array of scalars as a Postgres array literal,
// quoting elements that need it: {a,"b c","x\"y",NULL}.
func postgresArray(raw json.RawMessage) (string, bool) {
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) != nil {
		return "", false
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		switch jsonKind(e) {
		case "String":
			var s string
			if json.Unmarshal(e, &s) != nil {
				return "", false
			}
			writePostgresElem(&b, s)
		case "Number", "Boolean":
			b.Write(bytes.TrimSpace(e))
		case "Null":
			b.WriteString("NULL")
		default:
			return "", false
		}
	}
	b.WriteByte('}')
	return b.String(), true
}

func writePostgresElem(b *strings.Builder, s string) {
	needQuote := s == "" || strings.EqualFold(s, "null")
	for i := 0; i < len(s) && !needQuote; i++ {
		switch s[i] {
		case '{', '}', ',', '"', '\\', ' ', '\t', '\n', '\r', '\v', '\f':
			needQuote = true
		}
	}
	if !needQuote {
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// jsonKind names the JSON type of raw the way aeson's errors do.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "Null"
	}
	switch raw[0] {
	case '"':
		return "String"
	case '[':
		return "Array"
	case '{':
		return "Object"
	case 't', 'f':
		return "Boolean"
	case 'n':
		return "Null"
	default:
		return "Number"
	}
}

func parseAllowedRoles(raw json.RawMessage) ([]string, *Error) {
	const prefix = "invalid x-hasura-allowed-roles; should be a list of roles: "
	if k := jsonKind(raw); k != "Array" {
		return nil, claimsErr(ReasonClaimsInvalid, prefix+"parsing [] failed, expected Array, but encountered "+k)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, claimsErr(ReasonClaimsInvalid, prefix+"parsing [] failed, expected Array, but encountered Array")
	}
	roles := make([]string, 0, len(elems))
	for _, e := range elems {
		if k := jsonKind(e); k != "String" {
			// Hasura's RoleName parses as NonEmptyText, withText "String"
			// (server/src-lib/Data/Text/NonEmpty.hs).
			return nil, claimsErr(ReasonClaimsInvalid, prefix+"parsing String failed, expected String, but encountered "+k)
		}
		var s string
		if err := json.Unmarshal(e, &s); err != nil {
			return nil, claimsErr(ReasonClaimsInvalid, prefix+"parsing String failed, expected String, but encountered String")
		}
		if s == "" {
			return nil, claimsErr(ReasonClaimsInvalid, prefix+"empty string not allowed")
		}
		if err := checkRoleName(varAllowedRoles, s); err != nil {
			return nil, err
		}
		roles = append(roles, s)
	}
	return roles, nil
}

func parseDefaultRole(raw json.RawMessage, should string) (string, *Error) {
	prefix := "invalid x-hasura-default-role; " + should + ": "
	if k := jsonKind(raw); k != "String" {
		return "", claimsErr(ReasonClaimsInvalid, prefix+"parsing String failed, expected String, but encountered "+k)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", claimsErr(ReasonClaimsInvalid, prefix+"parsing String failed, expected String, but encountered String")
	}
	if s == "" {
		return "", claimsErr(ReasonClaimsInvalid, prefix+"empty string not allowed")
	}
	if err := checkRoleName(varDefaultRole, s); err != nil {
		return "", err
	}
	return s, nil
}

// checkRoleName refuses a role that cannot travel as an X-Hasura-Role value
// unchanged (stricter than Hasura): a control character would make the
// request fail on its way to Hasura, and surrounding spaces or tabs are
// trimmed by every HTTP hop, so " admin" would arrive as "admin".
func checkRoleName(claim, role string) *Error {
	if !validHeaderValue(role) {
		return claimsErr(ReasonBadClaimValue, claim+": a role contains a control character (CR, LF, NUL, ...)")
	}
	if strings.Trim(role, " \t") != role {
		return claimsErr(ReasonBadClaimValue, claim+": a role starts or ends with a space or tab")
	}
	return nil
}

// selectRole applies the x-hasura-role request header as Hasura's
// processJwt_ does (server/src-lib/Hasura/Server/Auth/JWT.hs):
// empty or absent means the default role; the role must be allowed,
// case-sensitively.
func selectRole(hc *hasuraClaims, requested string) (string, *Error) {
	role := requested
	if role == "" {
		role = hc.defaultRole
	}
	if !slices.Contains(hc.allowedRoles, role) {
		return "", ErrRoleNotAllowed
	}
	return role, nil
}
