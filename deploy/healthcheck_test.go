package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestProxyHealthcheck: the image health-checks itself with the binary's healthcheck subcommand (it has no shell
// or curl), compose runs the same probe and makes Prometheus wait for a healthy proxy.
func TestProxyHealthcheck(t *testing.T) {
	want := []string{"/usr/local/bin/" + binaryName, "healthcheck"}
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages, err := parseDockerfile(f)
	if err != nil {
		t.Fatal(err)
	}
	final := stages[len(stages)-1]
	var found bool
	for _, in := range final.Instructions {
		if in.Cmd != "HEALTHCHECK" {
			continue
		}
		found = true
		_, cmd, ok := strings.Cut(in.Args, "CMD ")
		if !ok {
			t.Fatalf("line %d: HEALTHCHECK %s: want HEALTHCHECK [OPTIONS] CMD [...]", in.Line, in.Args)
		}
		args, err := execForm(cmd)
		if err != nil {
			t.Fatalf("line %d: HEALTHCHECK CMD: %v", in.Line, err)
		}
		if !slices.Equal(args, want) {
			t.Errorf("HEALTHCHECK CMD %q; want %q", args, want)
		}
		if !strings.Contains(in.Args, "--timeout=") {
			t.Errorf("HEALTHCHECK without --timeout")
		}
	}
	if !found {
		t.Error("the runtime stage has no HEALTHCHECK")
	}

	p := loadCompose(t)
	hc := p.Services[proxyService].Healthcheck
	if hc == nil || hc.Disable || !slices.Equal(hc.Test, append([]string{"CMD"}, want...)) {
		t.Errorf("proxy healthcheck %+v; want test [CMD %s]", hc, strings.Join(want, " "))
	}
	for name, s := range p.Services {
		if d, ok := s.DependsOn[proxyService]; ok && d.Condition != "service_healthy" {
			t.Errorf("%s depends_on proxy with condition %q; want service_healthy", name, d.Condition)
		}
	}
	if _, ok := p.Services["prometheus"].DependsOn[proxyService]; !ok {
		t.Error("prometheus does not depend on the proxy")
	}
}
