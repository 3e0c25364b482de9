package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterBuildInfo(reg, "v1.2.3", "0123abcd", "go1.26.1")
	want := `# HELP hasura_auth_proxy_build_info Always 1; the labels say which build runs: module version, VCS revision and Go version.
# TYPE hasura_auth_proxy_build_info gauge
hasura_auth_proxy_build_info{goversion="go1.26.1",revision="0123abcd",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hasura_auth_proxy_build_info"); err != nil {
		t.Error(err)
	}
	// Registering the same build again (a second serve in one process, as
	// tests do) is not an error.
	RegisterBuildInfo(reg, "v1.2.3", "0123abcd", "go1.26.1")
	if n, err := testutil.GatherAndCount(reg, "hasura_auth_proxy_build_info"); err != nil || n != 1 {
		t.Errorf("series after registering twice = %d, %v; want 1", n, err)
	}
}
