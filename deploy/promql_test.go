package deploy

// A small PromQL scanner that finds the series selectors (metric name and label matchers) of an expression, so the
// alert rules can be checked against the metrics the proxy really exports. It is not a PromQL parser: promtool,
// when installed, checks the syntax; this only has to find names reliably in well-formed expressions.

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// matcher is one label matcher of a selector.
type matcher struct {
	Label, Op, Value string
}

// selector is one series selector of an expression.
type selector struct {
	Metric   string
	Matchers []matcher
}

// promqlAggregations are the aggregation operators, which may be followed by "by"/"without" instead of "(".
var promqlAggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true,
	"limit_ratio": true,
}

// promqlKeywords are the words that are never metric names; the grouping ones take a parenthesised label list.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

var promqlGrouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// skipString returns the index just past the string literal that starts at s[i].
func skipString(s string, i int) (int, error) {
	quote := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && quote != '`':
			j++
		case s[j] == quote:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at offset %d", i)
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(s string, i int) int {
	for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
		i++
	}
	return i
}

// parseMatchers parses the label matchers of the "{...}" that starts at s[i]; it returns them and the index past "}".
func parseMatchers(s string, i int) ([]matcher, int, error) {
	var out []matcher
	i++ // '{'
	for {
		i = skipSpace(s, i)
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unterminated matchers")
		}
		if s[i] == '}' {
			return out, i + 1, nil
		}
		start := i
		for i < len(s) && isIdentChar(s[i]) {
			i++
		}
		label := s[start:i]
		if label == "" {
			return nil, 0, fmt.Errorf("want a label name at offset %d", start)
		}
		i = skipSpace(s, i)
		var op string
		for _, candidate := range []string{"!=", "=~", "!~", "="} {
			if strings.HasPrefix(s[i:], candidate) {
				op = candidate
				break
			}
		}
		if op == "" {
			return nil, 0, fmt.Errorf("want a matcher operator after %q", label)
		}
		i = skipSpace(s, i+len(op))
		if i >= len(s) || !strings.ContainsRune("\"'`", rune(s[i])) {
			return nil, 0, fmt.Errorf("want a quoted value for %q", label)
		}
		end, err := skipString(s, i)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, matcher{Label: label, Op: op, Value: s[i+1 : end-1]})
		i = skipSpace(s, end)
		if i < len(s) && s[i] == ',' {
			i++
		}
	}
}

// selectors returns the series selectors of a PromQL expression in order of appearance.
func selectors(expr string) ([]selector, error) {
	var out []selector
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unterminated range at offset %d", i)
			}
			i += end + 1
		case c == '{':
			ms, end, err := parseMatchers(expr, i)
			if err != nil {
				return nil, err
			}
			sel := selector{Matchers: ms}
			for _, m := range ms {
				if m.Label == "__name__" && m.Op == "=" {
					sel.Metric = m.Value
				}
			}
			out = append(out, sel)
			i = end
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := skipSpace(expr, i)
			switch {
			case promqlGrouping[word]:
				if next < len(expr) && expr[next] == '(' {
					end := strings.IndexByte(expr[next:], ')')
					if end < 0 {
						return nil, fmt.Errorf("unterminated label list after %q", word)
					}
					i = next + end + 1
				}
			case promqlKeywords[word] || promqlAggregations[word]:
			case next < len(expr) && expr[next] == '(':
				// A function call.
			default:
				sel := selector{Metric: word}
				if next < len(expr) && expr[next] == '{' {
					ms, end, err := parseMatchers(expr, next)
					if err != nil {
						return nil, err
					}
					sel.Matchers = ms
					i = end
				}
				out = append(out, sel)
			}
		default:
			i++
		}
	}
	return out, nil
}

func TestSelectors(t *testing.T) {
	tests := []struct {
		name    string
		expr    string
		want    []selector
		wantErr bool
	}{
		{
			name: "comparison",
			expr: `up{job="hasura-auth-proxy"} == 0`,
			want: []selector{{Metric: "up", Matchers: []matcher{{"job", "=", "hasura-auth-proxy"}}}},
		},
		{
			name: "function around a selector",
			expr: `absent(up{job="x"})`,
			want: []selector{{Metric: "up", Matchers: []matcher{{"job", "=", "x"}}}},
		},
		{
			name: "arithmetic with a function without arguments",
			expr: `time() - m_seconds > 600`,
			want: []selector{{Metric: "m_seconds"}},
		},
		{
			name: "aggregations with by and without, ranges, and",
			expr: "sum by (job, le) (rate(a_total{result=\"denied\", reason!~'x|y'}[5m]))\n/ sum without (instance) (rate(a_total[5m:1m])) > 0.25\nand sum(rate(b_total[1h])) by (job) > 1e3",
			want: []selector{
				{Metric: "a_total", Matchers: []matcher{{"result", "=", "denied"}, {"reason", "!~", "x|y"}}},
				{Metric: "a_total"},
				{Metric: "b_total"},
			},
		},
		{
			name: "vector matching keywords",
			expr: `a / on (instance) group_left (issuer) b unless ignoring (kind) c or bool_metric`,
			want: []selector{{Metric: "a"}, {Metric: "b"}, {Metric: "c"}, {Metric: "bool_metric"}},
		},
		{
			name: "string arguments are not names",
			expr: `label_replace(x, "dst", "$1", "src", "(up)")`,
			want: []selector{{Metric: "x"}},
		},
		{
			name: "histogram quantile and offset",
			expr: `histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m] offset 1h)))`,
			want: []selector{{Metric: "h_bucket"}},
		},
		{
			name: "name in a matcher",
			expr: `count({__name__="x", job="j"})`,
			want: []selector{{Metric: "x", Matchers: []matcher{{"__name__", "=", "x"}, {"job", "=", "j"}}}},
		},
		{
			name: "space before the matchers",
			expr: `x {a="b"}`,
			want: []selector{{Metric: "x", Matchers: []matcher{{"a", "=", "b"}}}},
		},
		{name: "unterminated matchers", expr: `x{a="b"`, wantErr: true},
		{name: "unterminated string", expr: `x{a="b}`, wantErr: true},
		{name: "matcher without a value", expr: `x{a=}`, wantErr: true},
		{name: "unterminated range", expr: `rate(x[5m)`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectors(tt.expr)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("selectors(%q) = %v, want an error", tt.expr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("selectors(%q): %v", tt.expr, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("selectors(%q)\n got %+v\nwant %+v", tt.expr, got, tt.want)
			}
		})
	}
}
