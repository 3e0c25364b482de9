package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// builtinAPIVersions are the API groups every Kubernetes cluster serves; anything else needs a CRD.
var builtinAPIVersions = []string{"v1", "apps/v1", "networking.k8s.io/v1", "policy/v1", "autoscaling/v2"}

// TestKubernetesDefaultIsSafe: `kubectl apply -k deploy/kubernetes`, as the kustomization's header says, applies no
// placeholder Secret and nothing that needs a CRD; the Prometheus Operator objects and the example Secret are
// opt-in components, which docs/deployment.md and the folder's README name.
func TestKubernetesDefaultIsSafe(t *testing.T) {
	objs := loadK8s(t)
	for _, o := range objs.base {
		apiVersion, kind, _ := strings.Cut(o, " ")
		if !slices.Contains(builtinAPIVersions, apiVersion) {
			t.Errorf("the default build applies %s, which needs a CRD; move it to a component", o)
		}
		if strings.HasPrefix(kind, "Secret/") {
			t.Errorf("the default build applies %s; it would overwrite the Secret made out of band", o)
		}
	}
	for _, f := range objs.files {
		b, err := os.ReadFile(filepath.Join(k8sDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "change-me") {
			t.Errorf("%s holds a change-me placeholder; the default build must apply none", f)
		}
	}
	want := map[string][]string{
		"prometheus-operator": {"monitoring.coreos.com/v1 PodMonitor/hasura-auth-proxy", "monitoring.coreos.com/v1 PrometheusRule/hasura-auth-proxy"},
		"example-secret":      {"v1 Secret/hasura"},
	}
	for name, objects := range want {
		c, ok := objs.components[name]
		if !ok {
			t.Errorf("no component %s", name)
			continue
		}
		got := slices.Clone(c.objects)
		slices.Sort(got)
		if !slices.Equal(got, objects) {
			t.Errorf("components/%s holds %v; want %v", name, got, objects)
		}
	}
	if len(objs.components) != len(want) {
		t.Errorf("components %v; want exactly %v (document a new one here and in docs/deployment.md)", keys(objs.components), keys(want))
	}
	if len(objs.kustomization.Components) > 0 {
		t.Errorf("the default kustomization enables components %v; they are opt-in", objs.kustomization.Components)
	}
	for _, doc := range []string{"../docs/deployment.md", "kubernetes/README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for name := range want {
			if !strings.Contains(string(b), "components/"+name) {
				t.Errorf("%s does not mention components/%s", doc, name)
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
