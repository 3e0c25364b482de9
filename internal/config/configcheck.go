package config

// Shape checks of the configuration document, before decoding.
//
// go.yaml.in/yaml/v3 stops at the first unknown key and names Go types
// ("field listn not found in type proxy.ServerConfig"); its type errors name
// no field. checkShape walks the parsed document against the Go types of
// File instead (reflection over their yaml tags, so a key added to any
// section's struct is known here without a list to update) and reports every
// unknown key and every wrongly typed value at once, by YAML path, with what
// to write instead. The offending entries are then removed from the document
// so that the rest decodes and is validated in the same run.

import (
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// shapeProblem is one unknown key or wrongly typed value.
type shapeProblem struct {
	path string // YAML path, e.g. server.read_timeout or auth.jwt_secrets[0].issuer
	line int
	msg  string
}

func (p shapeProblem) Error() string {
	if p.line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", p.path, p.msg, p.line)
	}
	return fmt.Sprintf("%s: %s", p.path, p.msg)
}

// shapeChecker collects problems of one document.
type shapeChecker struct {
	problems []shapeProblem
	// expanded are the scalars whose text came from the environment: their
	// value is never quoted, whatever it looks like.
	expanded map[*yaml.Node]bool
}

func (c *shapeChecker) add(path string, n *yaml.Node, format string, args ...any) {
	c.problems = append(c.problems, shapeProblem{path: path, line: n.Line, msg: fmt.Sprintf(format, args...)})
}

var (
	yamlErrorPrefix = regexp.MustCompile(`^(yaml: )?(line \d+: )?`)
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	// textUnmarshalerType: go.yaml.in/yaml/v3 decodes a scalar into such a
	// type with UnmarshalText.
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkShape checks the document root against the type of defaults and
// removes what cannot be decoded. defaults supplies the examples in the
// messages ("write a duration such as 10s"). The values of expanded nodes
// (from ${...}) are never quoted.
func checkShape(root *yaml.Node, defaults any, expanded map[*yaml.Node]bool) []shapeProblem {
	c := &shapeChecker{expanded: expanded}
	v := reflect.ValueOf(defaults)
	if root.Kind != yaml.MappingNode {
		c.add("(top level)", root, "the configuration must be a mapping of sections: %s", strings.Join(yamlKeys(v.Type()), ", "))
		return c.problems
	}
	c.check(root, v.Type(), v, "")
	return c.problems
}

// check reports whether n can be decoded into a value of type t; a mapping
// for a struct is pruned of its bad entries and then counts as decodable.
func (c *shapeChecker) check(n *yaml.Node, t reflect.Type, def reflect.Value, path string) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return true // the decoder leaves the default in place
	}
	if t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		// Types that decode themselves: let them say what is wrong.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			// The line is added once, at the end, like every problem's.
			c.add(path, n, "%s", yamlErrorPrefix.ReplaceAllString(hideYAMLValues(err).Error(), ""))
			return false
		}
		return true
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		// Scalars parsed by the type itself (netip.Prefix, for example).
		if n.Kind == yaml.ScalarNode {
			err := n.Decode(reflect.New(t).Interface())
			if err == nil {
				return true
			}
			msg := yamlErrorPrefix.ReplaceAllString(hideYAMLValues(err).Error(), "")
			if n.Value != "" {
				msg = strings.ReplaceAll(msg, n.Value, "(value)")
			}
			c.add(path, n, "%s", msg)
			return false
		}
		c.add(path, n, "%s; write it as one text value", c.describe(n, "a single value"))
		return false
	}
	switch t.Kind() {
	case reflect.Pointer:
		var elem reflect.Value
		if def.IsValid() && !def.IsNil() {
			elem = def.Elem()
		}
		return c.check(n, t.Elem(), elem, path)
	case reflect.Struct:
		if t == durationType {
			break
		}
		if n.Kind != yaml.MappingNode {
			c.add(path, n, "%s; write a mapping with the keys %s", c.describe(n, "a mapping"), strings.Join(yamlKeys(t), ", "))
			return false
		}
		c.checkStruct(n, t, def, path)
		return true
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			c.add(path, n, "%s; write a list: [a, b], or one \"- item\" line each", c.describe(n, "a list"))
			return false
		}
		ok := true
		for i, e := range n.Content {
			ok = c.check(e, t.Elem(), reflect.Value{}, fmt.Sprintf("%s[%d]", path, i)) && ok
		}
		return ok
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(path, n, "%s; write a mapping", c.describe(n, "a mapping"))
			return false
		}
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			ok = c.check(n.Content[i+1], t.Elem(), reflect.Value{}, joinPath(path, n.Content[i].Value)) && ok
		}
		return ok
	}
	return c.checkScalar(n, t, def, path)
}

// checkStruct checks each key of mapping n against the fields of t and
// removes the entries that are unknown or cannot be decoded.
func (c *shapeChecker) checkStruct(n *yaml.Node, t reflect.Type, def reflect.Value, path string) {
	fields := yamlFields(t)
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			kept = append(kept, k, v)
			continue
		}
		f, known := fields[k.Value]
		if !known {
			if elem := inlineMapElem(t); elem != nil {
				// An ",inline" map takes every other key.
				if c.check(v, elem, reflect.Value{}, joinPath(path, k.Value)) {
					kept = append(kept, k, v)
				}
				continue
			}
			c.add(joinPath(path, k.Value), k, "%s", unknownKeyMessage(k.Value, path, yamlKeys(t)))
			continue
		}
		var fdef reflect.Value
		if def.IsValid() {
			fdef = def.FieldByIndex(f.Index)
		}
		if !c.check(v, f.Type, fdef, joinPath(path, k.Value)) {
			continue
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}

// checkScalar decodes n into a fresh value of t, as the real decode will.
func (c *shapeChecker) checkScalar(n *yaml.Node, t reflect.Type, def reflect.Value, path string) bool {
	isString := t.Kind() == reflect.String
	isInt := reflect.Int <= t.Kind() && t.Kind() <= reflect.Uint64
	// The decoder truncates 1.5 into an int field; a fraction is a mistake.
	fraction := isInt && n.ShortTag() == "!!float" && strings.ContainsAny(n.Value, ".eE")
	if n.Kind == yaml.ScalarNode && !fraction && n.Decode(reflect.New(t).Interface()) == nil {
		return true
	}
	switch {
	case t == durationType:
		c.add(path, n, "%s; write a duration such as %s", c.describe(n, "a duration"), example(def, "5m"))
	case isString:
		c.add(path, n, "%s; write a string (quote it if it holds : or #)", c.describe(n, "a string"))
	case t.Kind() == reflect.Bool:
		c.add(path, n, "%s; write true or false", c.describe(n, "true or false"))
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		c.add(path, n, "%s; write a number such as %s", c.describe(n, "a number"), example(def, "5"))
	case fraction:
		c.add(path, n, "%s, not a whole number; write a whole number such as %s", c.describe(n, "a whole number"), example(def, "1024"))
	case isInt:
		c.add(path, n, "%s; write a whole number such as %s", c.describe(n, "a whole number"), example(def, "1024"))
	default:
		c.add(path, n, "%s", c.describe(n, "valid here"))
	}
	return false
}

// describe says what the document holds at n where want was expected,
// without quoting text, which may be a secret pasted under the wrong key.
// Short numbers and booleans are quoted: "300 is a number" says exactly what
// went wrong.
func (c *shapeChecker) describe(n *yaml.Node, want string) string {
	if c.expanded[n] && n.Kind == yaml.ScalarNode {
		return "this value (from the environment) is not " + want
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "this is a mapping, not " + want
	case yaml.SequenceNode:
		return "this is a list, not " + want
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		if len(n.Value) <= 8 {
			return n.Value + " is a number"
		}
		return "this is a number"
	case "!!bool":
		return n.Value + " is a boolean"
	}
	if want == "a duration" {
		return "this is not a duration"
	}
	return "this is text"
}

// example renders the default as a value to write, or fallback when the
// default is zero.
func example(def reflect.Value, fallback string) string {
	if !def.IsValid() || def.IsZero() {
		return fallback
	}
	if def.Type() == durationType {
		return shortDuration(time.Duration(def.Int()))
	}
	return fmt.Sprint(def.Interface())
}

// shortDuration writes d as a person would: 5m, not 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownKeyMessage suggests the closest known key of the section, or
// lists them all.
func unknownKeyMessage(key, section string, known []string) string {
	where := section
	if where == "" {
		where = "the top level"
	}
	if s := closest(key, known); s != "" {
		return fmt.Sprintf("unknown key; did you mean %s?", s)
	}
	return fmt.Sprintf("unknown key; %s takes %s", where, strings.Join(known, ", "))
}

// closest is the known key within a small edit distance of key (typos,
// a missing or doubled letter, swapped letters), or "".
func closest(key string, known []string) string {
	best, bestD := "", 0
	limit := 2
	if len(key) <= 4 {
		limit = 1
	}
	for _, k := range known {
		d := editDistance(strings.ToLower(key), k)
		if d <= limit && (best == "" || d < bestD) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment): insertions, deletions, substitutions and adjacent swaps.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// yamlFields maps each YAML key of struct t to its field, following
// go.yaml.in/yaml/v3's rules: the tag's name, else the lower-cased field
// name; "-" skips; ",inline" structs contribute their own keys.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, sub := range yamlFields(ft) {
					sub.Index = append(append([]int(nil), f.Index...), sub.Index...)
					out[k] = sub
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

// inlineMapElem is the value type of t's ",inline" map field, which
// collects the keys no field has, or nil.
func inlineMapElem(t reflect.Type) reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && f.Type.Kind() == reflect.Map && strings.Contains(","+opts+",", ",inline,") {
			return f.Type.Elem()
		}
	}
	return nil
}

// yamlKeys lists the keys of struct t in declaration order.
func yamlKeys(t reflect.Type) []string {
	fields := yamlFields(t)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := fields[keys[i]].Index, fields[keys[j]].Index
		for x := 0; x < len(a) && x < len(b); x++ {
			if a[x] != b[x] {
				return a[x] < b[x]
			}
		}
		return len(a) < len(b)
	})
	return keys
}

// problemPath is the YAML path an error message starts with ("a.b[0]: ...").
func problemPath(msg string) string {
	p, _, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(p, " ") {
		return ""
	}
	return p
}

// coveredBy reports whether path is at, under or directly above one of the
// removed paths: its validation error would only repeat (or follow from) the
// shape error ("auth.jwt_secret: key and jwk_url both cannot be empty" after
// auth.jwt_secret.jwk_url was refused).
func coveredBy(path string, removed []shapeProblem) bool {
	if path == "" {
		return false
	}
	for _, r := range removed {
		if path == r.path || strings.HasPrefix(path, r.path+".") || strings.HasPrefix(path, r.path+"[") {
			return true
		}
		if parent, _, ok := cutLast(r.path); ok && parent == path {
			return true
		}
	}
	return false
}

// cutLast splits a YAML path before its last element: "a.b[0]" is "a.b".
func cutLast(path string) (string, string, bool) {
	i := strings.LastIndexAny(path, ".[")
	if i <= 0 {
		return "", "", false
	}
	return path[:i], path[i:], true
}
