package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/config"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files from the current output")

// goldenEnv is the environment of the golden tests: SET_BUT_EMPTY is set to
// "", nothing else is set.
func goldenEnv(k string) (string, bool) {
	if k == "SET_BUT_EMPTY" {
		return "", true
	}
	return "", false
}

// TestConfigGolden runs -check-config's reporting on every testdata/invalid-*.yml
// and testdata/warn-*.yml and compares what it prints, exactly, with the
// fixture's .golden file (go test -run TestConfigGolden -update rewrites them).
func TestConfigGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	warn, err := filepath.Glob("testdata/warn-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, warn...)
	if len(files) < 20 {
		t.Fatalf("found %d fixtures; want the 20 or more of testdata", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errOut bytes.Buffer
			cfg, src, err := config.Resolve(f, goldenEnv)
			code := 0
			if rerr := reportCheck(cfg, src, err, &out, &errOut); rerr != nil {
				code = 1
			}
			if strings.HasPrefix(filepath.Base(f), "invalid-") && code != 1 {
				t.Errorf("exit status %d; want 1 for an invalid configuration", code)
			}
			got := "stdout:\n" + out.String() + "stderr:\n" + errOut.String()
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (create it with: go test -run TestConfigGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
