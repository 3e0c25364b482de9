package config

import (
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestExpandEnv(t *testing.T) {
	env := envMap(map[string]string{"A": "1", "EMPTY": ""})
	tests := []struct{ in, want, err string }{
		{"${A}", "1", ""},
		{"x${A}y${A}", "x1y1", ""},
		{"${MISSING}", "", ""},
		{"${MISSING:-dflt}", "dflt", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"$$A and $A", "$A and $A", ""},
		{"${A", "", "unterminated"},
		{"${1A}", "", "invalid variable name"},
		{"${my-secret-value}", "", "invalid variable name in ${...}: use letters"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, env)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expandEnv(%q) err %v; want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
