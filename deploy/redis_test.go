package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The optional Redis of the shared rate limiter: off by default, never
// published, reachable only by the proxies.
func TestOptionalRedis(t *testing.T) {
	t.Run("compose", func(t *testing.T) {
		p := loadCompose(t)
		r, ok := p.Services["redis"]
		if !ok {
			t.Fatal("no redis service")
		}
		if !slices.Equal(r.Profiles, []string{"redis"}) {
			t.Errorf("redis profiles = %v; want [redis] so it runs only when asked for", r.Profiles)
		}
		if len(r.Ports) != 0 {
			t.Errorf("redis publishes %v; it must stay on the compose network", r.Ports)
		}
		if !slices.Contains(r.Networks, "backend") || !slices.Contains(p.Services[proxyService].Networks, "backend") {
			t.Errorf("redis networks %v; want the proxy's backend network", r.Networks)
		}
		if !r.ReadOnly || !slices.Contains(r.CapDrop, "ALL") {
			t.Error("redis should run read_only with cap_drop: [ALL]")
		}
		if cmd := strings.Join(r.Command, " "); !strings.Contains(cmd, `--save  --appendonly no`) {
			t.Errorf("redis command %q; want persistence off (--save \"\" --appendonly no)", cmd)
		}
		if got := p.Services[proxyService].Environment["HASURA_GRAPHQL_RATE_LIMIT_REDIS_URL"]; got != "${HASURA_GRAPHQL_RATE_LIMIT_REDIS_URL:-}" {
			t.Errorf("proxy HASURA_GRAPHQL_RATE_LIMIT_REDIS_URL = %q; want it from .env, empty by default", got)
		}
	})

	t.Run("kubernetes component", func(t *testing.T) {
		dir := filepath.Join(k8sDir, "redis")
		kust := loadYAMLMap(t, mustRead(t, filepath.Join(dir, "kustomization.yaml")))
		if kust["kind"] != "Component" {
			t.Errorf("redis/kustomization.yaml kind %v; want Component (opt-in from an overlay)", kust["kind"])
		}
		patches, _ := kust["patches"].([]any)
		if len(patches) != 1 {
			t.Fatalf("patches = %v; want the one adding the proxy's Redis URL", patches)
		}
		patch, _ := patches[0].(map[string]any)["patch"].(string)
		if !strings.Contains(patch, "HASURA_GRAPHQL_RATE_LIMIT_REDIS_URL") || !strings.Contains(patch, "redis://hasura-redis:6379/0") {
			t.Errorf("patch %q; want HASURA_GRAPHQL_RATE_LIMIT_REDIS_URL=redis://hasura-redis:6379/0", patch)
		}
		// The proxy is the Deployment's first container, where the patch adds the variable.
		objs := loadK8s(t)
		d, _, _ := objs.deployment(t)
		if c := d.Spec.Template.Spec.Containers; len(c) == 0 || c[0].Name != "proxy" {
			t.Errorf("the patch adds to containers/0, which is not the proxy")
		}
		nodes, err := yamlNodes(mustRead(t, filepath.Join(dir, "redis.yaml")))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]map[string]any{}
		for _, n := range nodes {
			var m map[string]any
			if err := n.Decode(&m); err != nil {
				t.Fatal(err)
			}
			kinds[m["kind"].(string)] = m
		}
		if v, _ := lookup(kinds["Service"], "metadata.name"); v != "hasura-redis" {
			t.Errorf("Service name %v; want hasura-redis (the URL the patch sets)", v)
		}
		if v, _ := lookup(kinds["Service"], "spec.type"); v != nil && v != "ClusterIP" {
			t.Errorf("Service type %v; want ClusterIP", v)
		}
		ingress, _ := lookup(kinds["NetworkPolicy"], "spec.ingress")
		rules, _ := ingress.([]any)
		onlyHasura := len(rules) == 1
		for _, r := range rules {
			from, _ := r.(map[string]any)["from"].([]any)
			if len(from) != 1 {
				onlyHasura = false
				continue
			}
			labels, _ := lookup(from[0].(map[string]any), "podSelector.matchLabels")
			lm, _ := labels.(map[string]any)
			onlyHasura = onlyHasura && len(lm) == 1 && lm["app.kubernetes.io/name"] == "hasura"
		}
		if !onlyHasura {
			t.Errorf("NetworkPolicy ingress %v; want one rule admitting only the hasura pods", ingress)
		}
		sc, _ := lookup(kinds["Deployment"], "spec.template.spec.securityContext.runAsNonRoot")
		if sc != true {
			t.Errorf("redis runAsNonRoot = %v; want true", sc)
		}
	})
}
