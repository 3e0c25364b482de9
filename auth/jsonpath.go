package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonPath is a parsed path in Hasura's JSONPath subset (Data/Parser/JSONPath.hs):
// "$" alone is the root; otherwise an optional "$" then elements, each
// "name" or ".name" (a letter or "_" then letters, digits, "_" or "-"),
// "[N]", or ["key"] / ['key'] (optionally written .[...]). It is immutable.
type jsonPath []pathElem

type pathElem struct {
	key   string
	index int
	isIdx bool
}

// parseJSONPath parses s or explains, in Hasura's terms, why it is not a path.
func parseJSONPath(s string) (jsonPath, error) {
	if s == "$" {
		return jsonPath{}, nil
	}
	rest := strings.TrimPrefix(s, "$")
	if rest == "" {
		return nil, errors.New("empty path")
	}
	var p jsonPath
	first := true
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, ".["):
			rest = rest[1:]
			continue
		case rest[0] == '[':
			e, n, err := parseBracket(rest)
			if err != nil {
				return nil, err
			}
			p = append(p, e)
			rest = rest[n:]
		case rest[0] == '.' || (first && isNameStart(rest[0])):
			if rest[0] == '.' {
				rest = rest[1:]
			}
			n := nameLen(rest)
			if n == 0 {
				return nil, fmt.Errorf("expected a key name at %q", truncate(rest, 20))
			}
			p = append(p, pathElem{key: rest[:n]})
			rest = rest[n:]
		default:
			return nil, fmt.Errorf("unexpected %q", truncate(rest, 20))
		}
		first = false
	}
	return p, nil
}

func isNameStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func nameLen(s string) int {
	if s == "" || !isNameStart(s[0]) {
		return 0
	}
	i := 1
	for i < len(s) {
		c := s[i]
		if isNameStart(c) || ('0' <= c && c <= '9') || c == '-' {
			i++
			continue
		}
		break
	}
	return i
}

// parseBracket parses "[N]", `["key"]` or "['key']" at the start of s and
// returns the element and how many bytes it used.
func parseBracket(s string) (pathElem, int, error) {
	if len(s) < 3 {
		return pathElem{}, 0, fmt.Errorf("unterminated %q", s)
	}
	switch q := s[1]; q {
	case '"', '\'':
		// Find the closing quote, honouring backslash escapes.
		i := 2
		for i < len(s) && s[i] != q {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		if i+1 >= len(s) || s[i+1] != ']' {
			return pathElem{}, 0, fmt.Errorf("unterminated key in %q", truncate(s, 20))
		}
		body := s[2:i]
		var key string
		if q == '"' {
			k, err := strconv.Unquote(`"` + body + `"`)
			if err != nil {
				return pathElem{}, 0, fmt.Errorf("bad escape in key %q", truncate(body, 20))
			}
			key = k
		} else {
			// JSON string escapes are allowed in single-quoted keys too.
			k, err := strconv.Unquote(`"` + strings.ReplaceAll(strings.ReplaceAll(body, `\'`, `'`), `"`, `\"`) + `"`)
			if err != nil {
				return pathElem{}, 0, fmt.Errorf("bad escape in key %q", truncate(body, 20))
			}
			key = k
		}
		if !utf8.ValidString(key) {
			// An escape such as \200 makes a byte no JSON key can hold
			// (decoders turn invalid UTF-8 into U+FFFD): the path could
			// never match.
			return pathElem{}, 0, fmt.Errorf("key %q is not valid UTF-8", truncate(body, 20))
		}
		return pathElem{key: key}, i + 2, nil
	default:
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return pathElem{}, 0, fmt.Errorf("unterminated %q", truncate(s, 20))
		}
		n, err := strconv.Atoi(s[1:end])
		if err != nil || n < 0 || strings.HasPrefix(s[1:end], "+") {
			return pathElem{}, 0, fmt.Errorf("bad index %q", truncate(s[1:end], 20))
		}
		return pathElem{index: n, isIdx: true}, end + 1, nil
	}
}

// String encodes the path the way Hasura prints it in error messages
// (encodeJSONPath in server/src-lib/Data/Parser/JSONPath.hs): "$", then
// ".name" for a name that starts with an ASCII letter or "_" and goes on with
// ASCII letters, digits, "_" or "-", "[N]" for an index, and ["key"] for any
// other key, the key written as aeson writes a JSON string. The result parses
// back to the same path.
func (p jsonPath) String() string {
	var b strings.Builder
	b.WriteByte('$')
	for _, e := range p {
		switch {
		case e.isIdx:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
		case isPlainName(e.key):
			b.WriteByte('.')
			b.WriteString(e.key)
		default:
			b.WriteString(`["`)
			writeAesonString(&b, e.key)
			b.WriteString(`"]`)
		}
	}
	return b.String()
}

// writeAesonString writes s escaped as aeson's encoder does
// (Data/Aeson/Encoding/Builder.hs escapeAscii): backslash, double quote,
// \n, \r and \t, other bytes below 0x20 as \u00xx; everything else,
// DEL and non-ASCII included, as it is.
func writeAesonString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
}

func isPlainName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isNameStart(c) || ('0' <= c && c <= '9') || c == '-') {
			return false
		}
	}
	return true
}

// lookup follows p through raw JSON. A missing key, a wrong container type or
// an index out of range all mean "not found" (ok false), as in Hasura.
func (p jsonPath) lookup(raw json.RawMessage) (json.RawMessage, bool) {
	cur := raw
	for _, e := range p {
		cur = bytes.TrimSpace(cur)
		if len(cur) == 0 {
			return nil, false
		}
		if e.isIdx {
			if cur[0] != '[' {
				return nil, false
			}
			var arr []json.RawMessage
			if json.Unmarshal(cur, &arr) != nil || e.index >= len(arr) {
				return nil, false
			}
			cur = arr[e.index]
			continue
		}
		if cur[0] != '{' {
			return nil, false
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil, false
		}
		v, ok := obj[e.key]
		if !ok {
			return nil, false
		}
		cur = v
	}
	return cur, true
}

// lookupIn follows p starting from an already decoded top-level object.
func (p jsonPath) lookupIn(top map[string]json.RawMessage) (json.RawMessage, bool) {
	if len(p) == 0 {
		b, err := json.Marshal(top)
		return b, err == nil
	}
	if p[0].isIdx {
		return nil, false
	}
	v, ok := top[p[0].key]
	if !ok {
		return nil, false
	}
	return p[1:].lookup(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
