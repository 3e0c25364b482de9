package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeLinks keeps the README true: every relative link points at a
// file or folder in the repository, and CI runs the README's test command.
func TestReadmeLinks(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	links := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`).FindAllStringSubmatch(string(b), -1)
	if len(links) < 10 {
		t.Fatalf("found only %d links", len(links))
	}
	for _, l := range links {
		target := l[1]
		if strings.Contains(target, "://") {
			continue
		}
		if _, err := os.Stat(filepath.FromSlash(target)); err != nil {
			t.Errorf("README links to %s, which does not exist", target)
		}
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatalf("CI script: %v", err)
	}
	if !strings.Contains(string(b), "make check") || !strings.Contains(string(ci), "make check") {
		t.Error("README and .ci/run must both use `make check`")
	}
}
