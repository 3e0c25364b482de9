package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestEditDistanceAndClosest(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"listen", "listen", 0},
		{"listn", "listen", 1},
		{"lisetn", "listen", 1}, // adjacent swap
		{"ops_lisen", "ops_listen", 1},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
	known := []string{"listen", "ops_listen", "read_timeout", "write_timeout", "log"}
	for key, want := range map[string]string{
		"listn": "listen", "Listen": "listen", "read_timout": "read_timeout", "logs": "log",
		"lgo": "log", "banana": "", "timeout": "",
	} {
		if got := closest(key, known); got != want {
			t.Errorf("closest(%q) = %q; want %q", key, got, want)
		}
	}
}

// TestShapeFollowsGoTypes: the known keys and their types come from the
// struct definitions, so a key added to a section's struct is accepted and
// type-checked without any list to update.
func TestShapeFollowsGoTypes(t *testing.T) {
	type inner struct {
		Origins []string       `yaml:"origins"`
		Proxies []netip.Prefix `yaml:"proxies"`
	}
	type section struct {
		Enabled  bool          `yaml:"enabled"`
		Interval time.Duration `yaml:"interval"`
		Limit    int           `yaml:"limit,omitempty"`
		Inner    inner         `yaml:"inner"`
		Skipped  string        `yaml:"-"`
		Plain    string
	}
	type embedded struct {
		Extra string `yaml:"extra"`
	}
	type doc struct {
		Section  section  `yaml:"new_section"`
		Embedded embedded `yaml:",inline"`
	}
	defaults := doc{Section: section{Interval: 30 * time.Second, Limit: 100}}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"valid", "new_section: {enabled: true, interval: 1m, limit: 3, inner: {origins: [a], proxies: [10.0.0.0/8]}, plain: x}\nextra: y\n", nil},
		{"text types", "new_section:\n  inner: {proxies: [10.0.0.0/33, {a: b}]}\n", []string{
			"new_section.inner.proxies[0]: netip.ParsePrefix(\"(value)\"): prefix length out of range (line 2)",
			"new_section.inner.proxies[1]: this is a mapping, not a single value; write it as one text value (line 2)",
		}},
		{"unknown keys", "new_section: {enabeld: true, skipped: x}\nextr: y\n", []string{
			"new_section.enabeld: unknown key; did you mean enabled? (line 1)",
			"new_section.skipped: unknown key; new_section takes enabled, interval, limit, inner, plain (line 1)",
			"extr: unknown key; did you mean extra? (line 2)",
		}},
		{"types", "new_section:\n  interval: 300\n  limit: lots\n  inner: {origins: a}\n", []string{
			"new_section.interval: 300 is a number; write a duration such as 30s (line 2)",
			"new_section.limit: this is text; write a whole number such as 100 (line 3)",
			"new_section.inner.origins: this is text; write a list: [a, b], or one \"- item\" line each (line 4)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(tt.yaml), &n); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range checkShape(n.Content[0], defaults, nil) {
				got = append(got, p.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			// What is left decodes strictly.
			b, err := yaml.Marshal(&n)
			if err != nil {
				t.Fatal(err)
			}
			dec := yaml.NewDecoder(strings.NewReader(string(b)))
			dec.KnownFields(true)
			var d doc
			if err := dec.Decode(&d); err != nil {
				t.Errorf("pruned document does not decode: %v\n%s", err, b)
			}
		})
	}
}

// TestEnvRequiredForms: ${VAR:?msg} fails when unset or empty, ${VAR?msg}
// only when unset; the message is the configuration's, the value never
// appears.
func TestEnvRequiredForms(t *testing.T) {
	env := map[string]string{"SET": "value-0123", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, err string }{
		{"${SET:?msg}", "value-0123", ""},
		{"${SET?msg}", "value-0123", ""},
		{"${EMPTY?msg}", "", ""},
		{"${EMPTY:?set EMPTY}", "", "environment variable EMPTY is not set or empty: set EMPTY"},
		{"${UNSET?set UNSET in .env}", "", "environment variable UNSET is not set: set UNSET in .env"},
		{"${UNSET:?}", "", "environment variable UNSET is not set or empty"},
		{"https://${UNSET:-x.test}/a", "https://x.test/a", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${SET:+alt}", "", "invalid variable name in ${...}"},
	}
	for _, tt := range tests {
		got, err := expandEnvLookup(tt.in, lookup)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err && !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("expandEnvLookup(%q) err = %v; want %q", tt.in, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "value-0123") {
				t.Errorf("expandEnvLookup(%q) err %q holds the value", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expandEnvLookup(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestShapeNeverQuotesEnvironmentJSON(t *testing.T) {
	doc := "upstream: {admin_secret: a}\nauth: {jwt_secret: \"${J}\"}\n"
	_, err := Parse([]byte(doc), envMap(map[string]string{"J": `{"jwk_url":"https://x.test/jwks","header":4711}`}))
	want := "auth.jwt_secret.header: this value (from the environment) is not a mapping; write a mapping with the keys type, name"
	if err == nil || strings.Contains(err.Error(), "4711") || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v; want %q and no 4711", err, want)
	}
}

// TestShapeInlineMap: a struct with an ",inline" map takes any other key,
// and its values are checked against the map's value type.
func TestShapeInlineMap(t *testing.T) {
	type limits struct {
		Default int            `yaml:"default"`
		PerRole map[string]int `yaml:",inline"`
	}
	type doc struct {
		Limits limits `yaml:"limits"`
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("limits: {default: 1, editor: 5, viewer: lots}\n"), &n); err != nil {
		t.Fatal(err)
	}
	got := checkShape(n.Content[0], doc{}, nil)
	if len(got) != 1 || got[0].Error() != "limits.viewer: this is text; write a whole number such as 1024 (line 1)" {
		t.Errorf("problems = %v; want only limits.viewer", got)
	}
}
