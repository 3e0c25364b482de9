package main

// -check-config's report: the problems, or "valid" with the warnings.

import (
	"fmt"
	"io"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

// reportCheck prints the outcome of -check-config: every problem (exit 1),
// or "valid" with the warnings (exit 0).
func reportCheck(cfg *config.File, src config.Source, err error, stdout, stderr io.Writer) error {
	if err != nil {
		fmt.Fprintf(stderr, "configuration %s is invalid:\n", src)
		for _, line := range splitErrors(err) {
			fmt.Fprintln(stderr, "  -", line)
		}
		return exitCode(1)
	}
	warnings := config.Warnings(cfg)
	if len(warnings) > 0 {
		fmt.Fprintf(stderr, "warnings:\n")
		for _, w := range warnings {
			fmt.Fprintln(stderr, "  -", w)
		}
	}
	fmt.Fprintf(stdout, "configuration %s is valid", src)
	if n := len(warnings); n > 0 {
		fmt.Fprintf(stdout, " (%d warning%s)", n, map[bool]string{true: "", false: "s"}[n == 1])
	}
	fmt.Fprintln(stdout)
	return nil
}

// splitErrors flattens joined errors into one line each.
func splitErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}
