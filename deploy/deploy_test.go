package deploy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
)

// The facts every file here must agree on.
const (
	proxyService  = "proxy"  // compose service and Kubernetes container of the proxy
	hasuraService = "hasura" // compose service and Kubernetes container of Hasura
	clientPort    = 8000     // server.listen: the only port clients may reach
	opsPort       = 9090     // server.ops_listen: /metrics, /healthz, /readyz
	hasuraPort    = 8080     // Hasura's port, never published
	scrapeJob     = "hasura-auth-proxy"
	configPath    = "/etc/hasura-auth-proxy/config.yaml"
	binaryName    = "hasura-auth-proxy"

	composeFile   = "docker-compose.yml"
	envExample    = ".env.example"
	dockerfile    = "Dockerfile"
	k8sDir        = "kubernetes"
	promDir       = "prometheus"
	alertsFile    = "prometheus/alerts.yml"
	promConfig    = "prometheus/prometheus.yml"
	exampleConfig = "../config.yaml" // the repository's example config, baked into the image
)

// secretEnvName matches environment variable names that carry credentials.
var secretEnvName = regexp.MustCompile(`(?i)(SECRET|PASSWORD|TOKEN|DATABASE_URL|PRIVATE_KEY)`)

// hasuraAuthEnv are the Hasura settings that would let Hasura authenticate requests on its own; with the proxy in
// front, Hasura must trust only the admin secret.
var hasuraAuthEnv = []string{
	"HASURA_GRAPHQL_JWT_SECRET", "HASURA_GRAPHQL_JWT_SECRETS", "HASURA_GRAPHQL_AUTH_HOOK",
	"HASURA_GRAPHQL_AUTH_HOOK_MODE", "HASURA_GRAPHQL_UNAUTHORIZED_ROLE",
}

// requiredAlerts are the alerts operators rely on (docs/deployment.md describes each).
var requiredAlerts = []string{
	"HasuraAuthProxyDown", "HasuraAuthProxyAbsent", "HasuraAuthProxyNotReady", "HasuraAuthProxyNoKeys",
	"HasuraAuthProxyNoFreshKeys", "HasuraAuthProxyKeysStale", "HasuraAuthProxyDenialRatioHigh",
	"HasuraAuthProxyUpstreamErrors",
}

// ---- loading ----

// exportedSeries maps every series name the proxy exports to its labels, read from the metrics package itself (with
// one configured issuer, so that the per-issuer series exist). Histograms appear as their _bucket, _sum and _count
// series; "up" is Prometheus' own. Target labels (job, instance) come on top.
func exportedSeries(t *testing.T) map[string][]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics.New(reg).InitIssuer("clerk")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{"up": nil}
	for _, mf := range families {
		var labels []string
		if ms := mf.GetMetric(); len(ms) > 0 {
			for _, lp := range ms[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		name := mf.GetName()
		switch mf.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			out[name+"_bucket"] = append(slices.Clone(labels), "le")
			out[name+"_sum"], out[name+"_count"] = labels, labels
		case "SUMMARY":
			out[name] = append(slices.Clone(labels), "quantile")
			out[name+"_sum"], out[name+"_count"] = labels, labels
		default:
			out[name] = labels
		}
	}
	for _, want := range []string{"hasura_auth_proxy_jwks_last_success_timestamp_seconds", "hasura_auth_proxy_auth_decisions_total"} {
		if _, ok := out[want]; !ok {
			t.Fatalf("the metrics package does not export %s", want)
		}
	}
	return out
}

func loadCompose(t *testing.T) composeProject {
	t.Helper()
	p, err := readStrict[composeProject](composeFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{proxyService, hasuraService} {
		if _, ok := p.Services[name]; !ok {
			t.Fatalf("%s: no service %q", composeFile, name)
		}
	}
	return p
}

func loadEnvExample(t *testing.T) []envEntry {
	t.Helper()
	f, err := os.Open(envExample)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	entries, err := parseEnvFile(f)
	if err != nil {
		t.Fatalf("%s: %v", envExample, err)
	}
	return entries
}

// sampleEnv is what an operator's .env could hold: the example's values, and made-up ones where it has none.
func sampleEnv(entries []envEntry) map[string]string {
	env := map[string]string{}
	for _, e := range entries {
		switch {
		case e.Value != "":
			env[e.Name] = e.Value
		case e.Name == "CLERK_FRONTEND_API":
			env[e.Name] = "sample-app-00.clerk.accounts.dev"
		case strings.HasSuffix(e.Name, "_REDIS_URL"):
			env[e.Name] = "redis://redis:6379/0"
		default:
			env[e.Name] = "sample-" + strings.ToLower(strings.ReplaceAll(e.Name, "_", "-")) + "-0123456789abcdef0123456789abcdef"
		}
	}
	return env
}

// k8sObjects are the manifests of deploy/kubernetes and of its opt-in components (components/*), decoded by kind.
type k8sObjects struct {
	files          []string // the base's manifests
	deployments    []deployment
	services       []service
	secrets        []secret
	configMaps     []configMap
	networkPols    []networkPolicy
	podMonitors    []podMonitor
	rules          []prometheusRule
	kustomization  kustomization
	count          int      // objects of the base (what kubectl apply -k deploy/kubernetes applies)
	base           []string // "apiVersion kind/name" of each base object
	components     map[string]k8sComponent
	namespaceNames []string // "file: kind/name" of objects that set metadata.namespace
}

// k8sComponent is one kustomize Component under components/.
type k8sComponent struct {
	kustomization kustomization
	files         []string
	objects       []string // "apiVersion kind/name"
}

func loadK8s(t *testing.T) k8sObjects {
	t.Helper()
	objs := k8sObjects{components: map[string]k8sComponent{}}
	kust, err := readStrict[kustomization](filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs.kustomization = kust
	objs.files, objs.base = loadK8sDir(t, &objs, k8sDir)
	objs.count = len(objs.base)
	dirs, err := os.ReadDir(filepath.Join(k8sDir, "components"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			t.Errorf("components/%s: only component folders belong in components/", d.Name())
			continue
		}
		dir := filepath.Join(k8sDir, "components", d.Name())
		var c k8sComponent
		if c.kustomization, err = readStrict[kustomization](filepath.Join(dir, "kustomization.yaml")); err != nil {
			t.Fatal(err)
		}
		c.files, c.objects = loadK8sDir(t, &objs, dir)
		objs.components[d.Name()] = c
	}
	return objs
}

// loadK8sDir decodes the manifests of dir (not its subfolders) into objs and returns the file names and the
// "apiVersion kind/name" of each object.
func loadK8sDir(t *testing.T, objs *k8sObjects, dir string) (files, objects []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "kustomization.yaml" || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		files = append(files, name)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := yamlNodes(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range nodes {
			var head struct {
				typeMeta `yaml:",inline"`
				Metadata objectMeta `yaml:"metadata"`
			}
			if err := n.Decode(&head); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if head.Metadata.Name == "" {
				t.Errorf("%s: %s without metadata.name", name, head.Kind)
			}
			if head.Metadata.Namespace != "" {
				objs.namespaceNames = append(objs.namespaceNames, fmt.Sprintf("%s: %s/%s", name, head.Kind, head.Metadata.Name))
			}
			objects = append(objects, head.APIVersion+" "+head.Kind+"/"+head.Metadata.Name)
			if err := objs.add(head.Kind, n); err != nil {
				t.Fatalf("%s: %s %s: %v", name, head.Kind, head.Metadata.Name, err)
			}
		}
	}
	return files, objects
}

func (o *k8sObjects) add(kind string, n *yaml.Node) error {
	var err error
	switch kind {
	case "Deployment":
		var v deployment
		if v, err = strictFromNode[deployment](n); err == nil {
			o.deployments = append(o.deployments, v)
		}
	case "Service":
		var v service
		if v, err = strictFromNode[service](n); err == nil {
			o.services = append(o.services, v)
		}
	case "Secret":
		var v secret
		if v, err = strictFromNode[secret](n); err == nil {
			o.secrets = append(o.secrets, v)
		}
	case "ConfigMap":
		var v configMap
		if v, err = strictFromNode[configMap](n); err == nil {
			o.configMaps = append(o.configMaps, v)
		}
	case "NetworkPolicy":
		var v networkPolicy
		if v, err = strictFromNode[networkPolicy](n); err == nil {
			o.networkPols = append(o.networkPols, v)
		}
	case "PodMonitor":
		var v podMonitor
		if v, err = strictFromNode[podMonitor](n); err == nil {
			o.podMonitors = append(o.podMonitors, v)
		}
	case "PrometheusRule":
		var v prometheusRule
		if v, err = strictFromNode[prometheusRule](n); err == nil {
			o.rules = append(o.rules, v)
		}
	default:
		return fmt.Errorf("no checks for kind %q in deploy_test.go: add them", kind)
	}
	return err
}

// deployment returns the one Deployment and its proxy and Hasura containers.
func (o *k8sObjects) deployment(t *testing.T) (deployment, container, container) {
	t.Helper()
	if len(o.deployments) != 1 {
		t.Fatalf("%d Deployments, want 1", len(o.deployments))
	}
	d := o.deployments[0]
	var proxy, hasura *container
	for i, c := range d.Spec.Template.Spec.Containers {
		switch c.Name {
		case proxyService:
			proxy = &d.Spec.Template.Spec.Containers[i]
		case hasuraService:
			hasura = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if proxy == nil || hasura == nil {
		t.Fatalf("Deployment %s: want containers %q and %q in the same pod", d.Metadata.Name, proxyService, hasuraService)
	}
	return d, *proxy, *hasura
}

func loadAlerts(t *testing.T) ruleFile {
	t.Helper()
	rf, err := readStrict[ruleFile](alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	return rf
}

// loadYAMLMap reads one YAML document as a generic map (the proxy's config format).
func loadYAMLMap(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ---- small helpers ----

func envValue(c container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// containerPort resolves a probe or Service port (number or name) against a container's declared ports.
func containerPort(c container, p intOrString) (int, bool) {
	for _, cp := range c.Ports {
		if (p.IsStr && cp.Name == p.Str) || (!p.IsStr && cp.ContainerPort == p.Int) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// selects reports whether every label of sel is on the pod.
func selects(sel, pod map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if pod[k] != v {
			return false
		}
	}
	return true
}

// listenPort returns the port of a Go listen address such as ":8000".
func listenPort(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return n
}

// lookup walks a generic YAML map along a dotted path.
func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// keyPaths lists the dotted paths of every mapping key in m (lists are leaves).
func keyPaths(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		p := prefix + k
		out = append(out, p)
		if sub, ok := v.(map[string]any); ok {
			out = append(out, keyPaths(sub, p+".")...)
		}
	}
	sort.Strings(out)
	return out
}

func mustDuration(t *testing.T, what, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// checkSecretValue reports why a compose environment value for a credential is not safe: it must come from the
// environment (.env), without a default that would put a usable credential in the file.
func checkSecretValue(name, value string, env map[string]string) error {
	refs, err := composeRefs(value)
	if err != nil {
		return err
	}
	if len(refs) == 0 {
		return fmt.Errorf("%s is written inline; take it from .env with ${%s}", name, name)
	}
	for _, r := range refs {
		if r.Op == ":-" || r.Op == "-" {
			return fmt.Errorf("%s: ${%s%s...} has a default; use ${%s} or ${%s:?message}", name, r.Name, r.Op, r.Name, r.Name)
		}
	}
	literal := composeRefPattern.ReplaceAllString(value, "")
	switch {
	case literal == "":
		return nil // exactly one reference
	case strings.HasPrefix(strings.TrimSpace(value), "{"):
		// A Hasura JWT secret object: a JWKS URL only, never an inline key.
		resolved, err := interpolate(value, env)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(resolved), &obj); err != nil {
			return fmt.Errorf("%s is not a JSON object: %w", name, err)
		}
		if _, ok := obj["key"]; ok {
			return fmt.Errorf("%s has an inline key; take the whole value from .env", name)
		}
		if _, ok := obj["jwk_url"]; !ok {
			return fmt.Errorf("%s has neither key nor jwk_url", name)
		}
		return nil
	case strings.Contains(value, "://"):
		// A URL: the password in its user info must be a reference.
		m := regexp.MustCompile(`^[a-z][a-z0-9+.-]*://[^:@/]*:(\$\{[^}]*\})@`).FindStringSubmatch(value)
		if m == nil {
			return fmt.Errorf("%s: the URL's password must be a ${VAR} reference", name)
		}
		return nil
	default:
		return fmt.Errorf("%s mixes literal text %q with references", name, literal)
	}
}

// scalarValues lists every scalar (keys and values) of a YAML tree: what docker compose interpolates.
func scalarValues(n *yaml.Node) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, scalarValues(c)...)
	}
	return out
}

// ---- tests ----

// TestEveryFileIsChecked parses every file in this folder, so that a new file gets a parser (and its checks) here.
func TestEveryFileIsChecked(t *testing.T) {
	var seen []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if name == ".env" {
			return nil // the operator's own copy of .env.example; never committed
		}
		seen = append(seen, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml"):
			nodes, err := yamlNodes(data)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(nodes) == 0 {
				return fmt.Errorf("%s: no YAML document", path)
			}
		case name == dockerfile:
			stages, err := parseDockerfile(strings.NewReader(string(data)))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(stages) == 0 {
				return fmt.Errorf("%s: no FROM", path)
			}
		case name == envExample:
			if _, err := parseEnvFile(strings.NewReader(string(data))); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		case strings.HasSuffix(name, ".go") || strings.HasSuffix(name, ".md"):
		default:
			return fmt.Errorf("%s: no parser for this file in deploy_test.go; add one and its checks", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{dockerfile, composeFile, envExample, alertsFile, promConfig, "prometheus/alerts_test.yml",
		"kubernetes/kustomization.yaml", "kubernetes/README.md"} {
		if !slices.Contains(seen, filepath.FromSlash(want)) {
			t.Errorf("%s is missing", want)
		}
	}
}

func TestCompose(t *testing.T) {
	p := loadCompose(t)
	entries := loadEnvExample(t)
	env := sampleEnv(entries)
	proxy, hasura := p.Services[proxyService], p.Services[hasuraService]

	t.Run("hasura publishes no port and trusts only the admin secret", func(t *testing.T) {
		if len(hasura.Ports) != 0 {
			t.Errorf("hasura publishes %v; it must be reachable only through the proxy", hasura.Ports)
		}
		if hasura.NetworkMode != "" {
			t.Errorf("hasura network_mode %q; it must stay on the compose network", hasura.NetworkMode)
		}
		for _, name := range hasuraAuthEnv {
			if _, ok := hasura.Environment[name]; ok {
				t.Errorf("hasura sets %s; the proxy authenticates and Hasura must trust only the admin secret", name)
			}
		}
		if hasura.Environment["HASURA_GRAPHQL_ADMIN_SECRET"] == "" {
			t.Error("hasura has no HASURA_GRAPHQL_ADMIN_SECRET: anyone on its network would be admin")
		}
		if got := hasura.Environment["HASURA_GRAPHQL_ENABLE_CONSOLE"]; got != "false" {
			t.Errorf("hasura HASURA_GRAPHQL_ENABLE_CONSOLE = %q, want \"false\"", got)
		}
		if hasura.Healthcheck == nil || hasura.Healthcheck.Disable || len(hasura.Healthcheck.Test) == 0 {
			t.Error("hasura has no healthcheck; the proxy's depends_on needs it")
		}
	})

	t.Run("only the proxy publishes a client port", func(t *testing.T) {
		for name, s := range p.Services {
			for _, raw := range s.Ports {
				resolved, err := interpolate(raw, env)
				if err != nil {
					t.Fatalf("%s port %q: %v", name, raw, err)
				}
				port, err := parsePort(resolved)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				switch {
				case name == proxyService && port.ContainerPort != clientPort:
					t.Errorf("proxy publishes container port %d; only the client port %d may be published", port.ContainerPort, clientPort)
				case name != proxyService && port.HostIP != "127.0.0.1":
					t.Errorf("%s publishes %q beyond loopback; only the proxy may publish a port to clients", name, raw)
				}
			}
		}
		if len(proxy.Ports) != 1 {
			t.Errorf("proxy publishes %v, want exactly its client port %d", proxy.Ports, clientPort)
		}
	})

	t.Run("proxy in front of hasura", func(t *testing.T) {
		if proxy.Build == nil {
			t.Fatal("proxy has no build section")
		}
		if got := filepath.Clean(filepath.Join(proxy.Build.Context, proxy.Build.Dockerfile)); got != filepath.Join("..", "deploy", dockerfile) {
			t.Errorf("proxy builds %s, want ../deploy/%s (context: the repository root)", got, dockerfile)
		}
		if _, err := os.Stat(filepath.Join(proxy.Build.Context, "go.mod")); err != nil {
			t.Errorf("proxy build context %q is not the module root: %v", proxy.Build.Context, err)
		}
		if got := proxy.DependsOn[hasuraService].Condition; got != "service_healthy" {
			t.Errorf("proxy depends_on hasura condition %q, want service_healthy", got)
		}
		if got, want := proxy.Environment["HASURA_GRAPHQL_URL"], fmt.Sprintf("http://%s:%d", hasuraService, hasuraPort); got != want {
			t.Errorf("proxy HASURA_GRAPHQL_URL = %q, want %q", got, want)
		}
		if got := proxy.Environment["PROXY_LISTEN"]; got != "" && listenPort(t, got) != clientPort {
			t.Errorf("proxy PROXY_LISTEN = %q, want port %d", got, clientPort)
		}
		if got := proxy.Environment["PROXY_OPS_LISTEN"]; got != "" && listenPort(t, got) != opsPort {
			t.Errorf("proxy PROXY_OPS_LISTEN = %q, want port %d", got, opsPort)
		}
		if proxy.Environment["HASURA_GRAPHQL_ADMIN_SECRET"] == "" {
			t.Error("proxy has no HASURA_GRAPHQL_ADMIN_SECRET to forward to Hasura")
		}
		jwt, err := interpolate(proxy.Environment["HASURA_GRAPHQL_JWT_SECRET"], env)
		if err != nil {
			t.Fatal(err)
		}
		var secretObj struct {
			JWKURL string `json:"jwk_url"`
			Issuer string `json:"issuer"`
		}
		if err := json.Unmarshal([]byte(jwt), &secretObj); err != nil {
			t.Fatalf("proxy HASURA_GRAPHQL_JWT_SECRET %q: %v", jwt, err)
		}
		fapi := env["CLERK_FRONTEND_API"]
		if want := "https://" + fapi + "/.well-known/jwks.json"; secretObj.JWKURL != want {
			t.Errorf("jwk_url = %q, want %q", secretObj.JWKURL, want)
		}
		if want := "https://" + fapi; secretObj.Issuer != want {
			t.Errorf("issuer = %q, want %q (Clerk's iss is its Frontend API URL)", secretObj.Issuer, want)
		}
		if !proxy.ReadOnly || !slices.Contains(proxy.CapDrop, "ALL") {
			t.Error("proxy should run read_only with cap_drop: [ALL]")
		}
		cfg := loadYAMLMap(t, mustRead(t, exampleConfig))
		grace, _ := lookup(cfg, "server.shutdown_grace")
		graceStr, _ := grace.(string)
		if proxy.StopGracePeriod == "" || mustDuration(t, "stop_grace_period", proxy.StopGracePeriod) <= mustDuration(t, "server.shutdown_grace", graceStr) {
			t.Errorf("proxy stop_grace_period %q must exceed server.shutdown_grace %q, or docker kills in-flight requests", proxy.StopGracePeriod, graceStr)
		}
	})

	t.Run("no secret written inline", func(t *testing.T) {
		for name, s := range p.Services {
			for k, v := range s.Environment {
				if !secretEnvName.MatchString(k) {
					continue
				}
				if err := checkSecretValue(k, v, env); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
			if len(s.EnvFile) > 0 {
				t.Errorf("%s: env_file hands every variable of a file to the container; list what it needs in environment", name)
			}
		}
	})

	t.Run("every variable is in .env.example", func(t *testing.T) {
		data := mustRead(t, composeFile)
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			t.Fatal(err)
		}
		used := map[string]bool{}
		for _, s := range scalarValues(&root) {
			refs, err := composeRefs(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range refs {
				used[r.Name] = true
			}
			if _, err := interpolate(s, env); err != nil {
				t.Errorf("with every .env.example variable set: %v", err)
			}
		}
		listed := map[string]bool{}
		for _, e := range entries {
			listed[e.Name] = true
			if !used[e.Name] {
				t.Errorf("%s lists %s, which %s does not use", envExample, e.Name, composeFile)
			}
		}
		for name := range used {
			if !listed[name] {
				t.Errorf("%s uses ${%s}, which %s does not list", composeFile, name, envExample)
			}
		}
	})

	t.Run("prometheus scrapes the ops port with the alert rules", func(t *testing.T) {
		prom, ok := p.Services["prometheus"]
		if !ok {
			t.Fatal("no prometheus service")
		}
		mounts := map[string]string{}
		for _, v := range prom.Volumes {
			parts := strings.Split(v, ":")
			if !strings.HasPrefix(parts[0], ".") {
				continue // a named volume
			}
			if _, err := os.Stat(parts[0]); err != nil {
				t.Errorf("prometheus mounts %s: %v", parts[0], err)
			}
			mounts[filepath.Clean(parts[0])] = parts[1]
		}
		for _, f := range []string{promConfig, alertsFile} {
			if got, want := mounts[filepath.Clean(f)], "/etc/prometheus/"+filepath.Base(f); got != want {
				t.Errorf("prometheus mounts %s at %q, want %q", f, got, want)
			}
		}
		shared := false
		for _, n := range prom.Networks {
			shared = shared || slices.Contains(proxy.Networks, n)
		}
		if !shared {
			t.Error("prometheus shares no network with the proxy, so it cannot scrape it")
		}
		cfg, err := readStrict[prometheusConfig](promConfig)
		if err != nil {
			t.Fatal(err)
		}
		target := fmt.Sprintf("%s:%d", proxyService, opsPort)
		found := false
		for _, sc := range cfg.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				if slices.Contains(st.Targets, target) {
					found = true
					if sc.JobName != scrapeJob {
						t.Errorf("job scraping %s is %q, want %q (the alerts select on it)", target, sc.JobName, scrapeJob)
					}
					if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
						t.Errorf("metrics_path %q, want /metrics", sc.MetricsPath)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s does not scrape %s", promConfig, target)
		}
	})

	t.Run("hasura version matches kubernetes", func(t *testing.T) {
		image, err := interpolate(hasura.Image, env)
		if err != nil {
			t.Fatal(err)
		}
		defaultImage, err := interpolate(hasura.Image, map[string]string{})
		if err != nil {
			t.Fatal(err)
		}
		objs := loadK8s(t)
		_, _, k8sHasura := objs.deployment(t)
		if image != k8sHasura.Image || defaultImage != k8sHasura.Image {
			t.Errorf("hasura image: compose %q (default %q), kubernetes %q; keep them on the same version", image, defaultImage, k8sHasura.Image)
		}
	})
}

func TestEnvExample(t *testing.T) {
	for _, e := range loadEnvExample(t) {
		if e.Comment == "" {
			t.Errorf("%s:%d: %s has no comment above it saying what it is", envExample, e.Line, e.Name)
		}
		if secretEnvName.MatchString(e.Name) && e.Value != "" {
			t.Errorf("%s:%d: %s has a value; leave credentials empty so nobody runs with a published one", envExample, e.Line, e.Name)
		}
	}
}

func TestDockerfile(t *testing.T) {
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages, err := parseDockerfile(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build (builder + minimal runtime)", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	t.Run("static build", func(t *testing.T) {
		if !strings.HasPrefix(build.Image, "golang:1.26") || build.Name == "" {
			t.Errorf("build stage FROM %s AS %q, want golang:1.26 AS <name>", build.Image, build.Name)
		}
		cgoOff, built := false, false
		for _, in := range build.Instructions {
			if in.Cmd == "ENV" && regexp.MustCompile(`\bCGO_ENABLED[= ]0\b`).MatchString(in.Args) {
				cgoOff = true
			}
			if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
				continue
			}
			built = true
			if strings.Contains(in.Args, "CGO_ENABLED=0 go build") {
				cgoOff = true
			}
			for _, flag := range []string{"-trimpath", `-ldflags "-s -w"`, "-o /out/" + binaryName} {
				if !strings.Contains(in.Args, flag) {
					t.Errorf("line %d: go build without %s", in.Line, flag)
				}
			}
			if !cgoOff {
				t.Errorf("line %d: go build without CGO_ENABLED=0: the binary would need libc", in.Line)
			}
		}
		if !built {
			t.Error("the build stage runs no go build")
		}
		for _, in := range build.Instructions {
			if in.Cmd != "COPY" || strings.Contains(in.Args, "--from") {
				continue
			}
			f := strings.Fields(in.Args)
			for _, src := range f[:len(f)-1] {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("line %d: COPY %s: not in the build context (the repository root): %v", in.Line, src, err)
				}
			}
		}
	})

	t.Run("minimal non-root runtime", func(t *testing.T) {
		if final.Image != "gcr.io/distroless/static-debian12:nonroot" && final.Image != "scratch" {
			t.Errorf("runtime FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.Image)
		}
		var (
			user              string
			exposed           []string
			entrypoint, cmd   []string
			binCopied, config bool
		)
		bin := "/usr/local/bin/" + binaryName
		for _, in := range final.Instructions {
			switch in.Cmd {
			case "USER":
				user = in.Args
			case "EXPOSE":
				for _, p := range strings.Fields(in.Args) {
					p, _, _ = strings.Cut(p, "/")
					exposed = append(exposed, p)
				}
			case "COPY":
				switch in.Args {
				case fmt.Sprintf("--from=%s /out/%s %s", build.Name, binaryName, bin):
					binCopied = true
				case "config.yaml " + configPath:
					config = true
				}
			case "ENTRYPOINT", "CMD":
				args, err := execForm(in.Args)
				if err != nil {
					t.Fatalf("line %d: %s: %v", in.Line, in.Cmd, err)
				}
				if in.Cmd == "ENTRYPOINT" {
					entrypoint = args
				} else {
					cmd = args
				}
			case "RUN":
				t.Errorf("line %d: RUN in the runtime stage (it has no shell)", in.Line)
			case "ENV", "ARG":
				if secretEnvName.MatchString(in.Args) {
					t.Errorf("line %d: %s %s: secrets do not belong in the image", in.Line, in.Cmd, in.Args)
				}
			}
		}
		uid, _, _ := strings.Cut(user, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			t.Errorf("USER %q, want a numeric non-root uid (Kubernetes' runAsNonRoot cannot verify a name)", user)
		}
		for _, p := range []int{clientPort, opsPort} {
			if !slices.Contains(exposed, strconv.Itoa(p)) {
				t.Errorf("EXPOSE %v lacks %d", exposed, p)
			}
		}
		if !binCopied {
			t.Errorf("the runtime stage does not copy /out/%s from the %s stage to %s", binaryName, build.Name, bin)
		}
		if !config {
			t.Errorf("the runtime stage does not copy the example config.yaml to %s", configPath)
		}
		if _, err := os.Stat(exampleConfig); err != nil {
			t.Error(err)
		}
		if len(entrypoint) == 0 || entrypoint[0] != bin {
			t.Errorf("ENTRYPOINT %q, want the binary %s", entrypoint, bin)
		}
		if run := append(slices.Clone(entrypoint), cmd...); !slices.Equal(run[1:], []string{"-config", configPath}) {
			t.Errorf("the container runs %q, want %s -config %s", run, bin, configPath)
		}
	})
}

func TestKubernetes(t *testing.T) {
	objs := loadK8s(t)
	d, proxy, hasura := objs.deployment(t)
	pod := d.Spec.Template.Spec
	podLabels := d.Spec.Template.Metadata.Labels

	t.Run("namespace-agnostic and complete kustomization", func(t *testing.T) {
		if len(objs.namespaceNames) > 0 || objs.kustomization.Namespace != "" {
			t.Errorf("objects pin a namespace (%v, kustomization %q); choose it with -n or an overlay", objs.namespaceNames, objs.kustomization.Namespace)
		}
		got := slices.Clone(objs.kustomization.Resources)
		sort.Strings(got)
		if !slices.Equal(got, objs.files) {
			t.Errorf("kustomization resources %v, want every manifest in the folder %v", got, objs.files)
		}
		for name, c := range objs.components {
			got := slices.Clone(c.kustomization.Resources)
			sort.Strings(got)
			if !slices.Equal(got, c.files) {
				t.Errorf("components/%s resources %v, want every manifest in its folder %v", name, got, c.files)
			}
			if c.kustomization.Kind != "Component" || c.kustomization.APIVersion != "kustomize.config.k8s.io/v1alpha1" {
				t.Errorf("components/%s is %s %s, want a kustomize.config.k8s.io/v1alpha1 Component", name, c.kustomization.APIVersion, c.kustomization.Kind)
			}
		}
		if !selects(d.Spec.Selector.MatchLabels, podLabels) {
			t.Errorf("Deployment selector %v does not match its pod labels %v", d.Spec.Selector.MatchLabels, podLabels)
		}
	})

	t.Run("hasura listens on loopback only", func(t *testing.T) {
		if host, _ := envValue(hasura, "HASURA_GRAPHQL_SERVER_HOST"); host != "127.0.0.1" {
			t.Errorf("hasura HASURA_GRAPHQL_SERVER_HOST = %q, want 127.0.0.1 so that only the proxy in the pod reaches it", host)
		}
		if port, ok := envValue(hasura, "HASURA_GRAPHQL_SERVER_PORT"); ok && port != strconv.Itoa(hasuraPort) {
			t.Errorf("hasura HASURA_GRAPHQL_SERVER_PORT = %q, want %d", port, hasuraPort)
		}
		if len(hasura.Ports) > 0 {
			t.Errorf("hasura declares ports %v; it listens on loopback and nothing may target it", hasura.Ports)
		}
		if pod.HostNetwork {
			t.Error("hostNetwork would put Hasura's loopback port on the node")
		}
		if got, want := mustEnv(t, proxy, "HASURA_GRAPHQL_URL"), fmt.Sprintf("http://127.0.0.1:%d", hasuraPort); got != want {
			t.Errorf("proxy HASURA_GRAPHQL_URL = %q, want %q", got, want)
		}
	})

	t.Run("hasura trusts only the admin secret", func(t *testing.T) {
		for _, name := range hasuraAuthEnv {
			if _, ok := envValue(hasura, name); ok {
				t.Errorf("hasura sets %s; the proxy authenticates", name)
			}
		}
		if _, ok := envValue(hasura, "HASURA_GRAPHQL_ADMIN_SECRET"); !ok {
			t.Error("hasura has no HASURA_GRAPHQL_ADMIN_SECRET")
		}
		if v, _ := envValue(hasura, "HASURA_GRAPHQL_ENABLE_CONSOLE"); v != "false" {
			t.Errorf("hasura HASURA_GRAPHQL_ENABLE_CONSOLE = %q, want \"false\"", v)
		}
		for _, p := range []*probe{hasura.LivenessProbe, hasura.ReadinessProbe, hasura.StartupProbe} {
			if p != nil && (p.HTTPGet != nil || p.TCPSocket != nil) {
				t.Error("hasura has a network probe; the kubelet probes the pod IP, where Hasura does not listen")
			}
		}
	})

	t.Run("the service targets only the proxy client port", func(t *testing.T) {
		if len(objs.services) == 0 {
			t.Fatal("no Service")
		}
		for _, s := range objs.services {
			if !selects(s.Spec.Selector, podLabels) {
				t.Errorf("Service %s selector %v does not select the pod %v", s.Metadata.Name, s.Spec.Selector, podLabels)
			}
			if s.Spec.Type != "" && s.Spec.Type != "ClusterIP" {
				t.Errorf("Service %s type %s; expose it with an Ingress/Gateway of your choice", s.Metadata.Name, s.Spec.Type)
			}
			if len(s.Spec.ExternalIPs) > 0 {
				t.Errorf("Service %s has externalIPs", s.Metadata.Name)
			}
			for _, p := range s.Spec.Ports {
				target := p.TargetPort
				if target == (intOrString{}) {
					target = intOrString{Int: p.Port}
				}
				if port, ok := containerPort(proxy, target); !ok || port != clientPort {
					t.Errorf("Service %s port %d targets %s, want the proxy's client port %d", s.Metadata.Name, p.Port, target, clientPort)
				}
			}
		}
	})

	t.Run("probes are on the ops port", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			probe *probe
			path  string
		}{
			{"liveness", proxy.LivenessProbe, "/healthz"},
			{"readiness", proxy.ReadinessProbe, "/readyz"},
		} {
			if tt.probe == nil || tt.probe.HTTPGet == nil {
				t.Errorf("proxy has no HTTP %s probe", tt.name)
				continue
			}
			if tt.probe.HTTPGet.Path != tt.path {
				t.Errorf("proxy %s probe path %q, want %q", tt.name, tt.probe.HTTPGet.Path, tt.path)
			}
			if port, ok := containerPort(proxy, tt.probe.HTTPGet.Port); !ok || port != opsPort {
				t.Errorf("proxy %s probe port %s, want the ops port %d (the client port is Hasura's namespace)", tt.name, tt.probe.HTTPGet.Port, opsPort)
			}
		}
		if p := proxy.StartupProbe; p != nil && p.HTTPGet != nil {
			if port, _ := containerPort(proxy, p.HTTPGet.Port); port != opsPort {
				t.Errorf("proxy startup probe port %s, want %d", p.HTTPGet.Port, opsPort)
			}
		}
	})

	t.Run("containers run as non-root with a read-only root", func(t *testing.T) {
		psc := pod.SecurityContext
		for _, c := range pod.Containers {
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", c.Name)
				continue
			}
			nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
			if !nonRoot {
				t.Errorf("%s: runAsNonRoot is not true", c.Name)
			}
			uid := sc.RunAsUser
			if uid == nil && psc != nil {
				uid = psc.RunAsUser
			}
			if uid == nil || *uid == 0 {
				t.Errorf("%s: runAsUser unset or 0", c.Name)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", c.Name)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop ALL and add none", c.Name)
			}
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: want cpu and memory requests and a memory limit, got %+v", c.Name, c.Resources)
			}
		}
	})

	t.Run("secrets come from the Secret", func(t *testing.T) {
		keys := map[string]map[string]bool{}
		for _, s := range objs.secrets {
			keys[s.Metadata.Name] = map[string]bool{}
			for k := range s.StringData {
				keys[s.Metadata.Name][k] = true
			}
		}
		used := map[string]bool{}
		for _, c := range pod.Containers {
			for _, e := range c.Env {
				if !secretEnvName.MatchString(e.Name) {
					continue
				}
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%s: %s must come from a secretKeyRef", c.Name, e.Name)
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if !keys[ref.Name][ref.Key] {
					t.Errorf("%s: %s refers to Secret %s key %s, which the example Secret does not have", c.Name, e.Name, ref.Name, ref.Key)
				}
				used[ref.Name+"/"+ref.Key] = true
			}
		}
		for _, want := range []string{"HASURA_GRAPHQL_ADMIN_SECRET", "HASURA_GRAPHQL_JWT_SECRET"} {
			if _, ok := envValue(proxy, want); !ok {
				t.Errorf("proxy has no %s", want)
			}
		}
		if _, ok := envValue(hasura, "HASURA_GRAPHQL_DATABASE_URL"); !ok {
			t.Error("hasura has no HASURA_GRAPHQL_DATABASE_URL")
		}
		for _, s := range objs.secrets {
			if len(s.Data) > 0 {
				t.Errorf("Secret %s uses data; write the example with stringData", s.Metadata.Name)
			}
			for k, v := range s.StringData {
				if !strings.Contains(v, "change-me") {
					t.Errorf("Secret %s key %s = %q: example values must be obvious placeholders (change-me)", s.Metadata.Name, k, v)
				}
				if !used[s.Metadata.Name+"/"+k] {
					t.Errorf("Secret %s key %s is used by no container", s.Metadata.Name, k)
				}
			}
		}
	})

	t.Run("the config map holds a valid proxy config", func(t *testing.T) {
		cfg, mounted := proxyConfig(t, objs, d, proxy)
		if !mounted {
			t.Fatalf("the proxy config is not mounted so that %s exists", configPath)
		}
		if i := slices.Index(proxy.Args, "-config"); i < 0 || i+1 >= len(proxy.Args) || proxy.Args[i+1] != configPath {
			t.Errorf("proxy args %q, want -config %s", proxy.Args, configPath)
		}
		example := keyPaths(loadYAMLMap(t, mustRead(t, exampleConfig)), "")
		for _, k := range keyPaths(cfg, "") {
			if !slices.Contains(example, k) {
				t.Errorf("config key %s is not in %s (misspelt?)", k, exampleConfig)
			}
		}
		for _, tt := range []struct {
			key  string
			port string
			want int
		}{
			{"server.listen", "http", clientPort},
			{"server.ops_listen", "metrics", opsPort},
		} {
			v, _ := lookup(cfg, tt.key)
			s, _ := v.(string)
			if got := listenPort(t, s); got != tt.want {
				t.Errorf("%s = %q, want port %d", tt.key, s, tt.want)
			}
			if got, _ := containerPort(proxy, intOrString{Str: tt.port, IsStr: true}); got != tt.want {
				t.Errorf("proxy container port %q = %d, want %d", tt.port, got, tt.want)
			}
		}
		if v, _ := lookup(cfg, "upstream.admin_secret"); v != "${HASURA_GRAPHQL_ADMIN_SECRET}" {
			t.Errorf("upstream.admin_secret = %q, want it read from the environment (the Secret)", v)
		}
		if _, ok := lookup(cfg, "auth.jwt_secret.key"); ok {
			t.Error("auth.jwt_secret.key is inline; HASURA_GRAPHQL_JWT_SECRET from the Secret supplies it")
		}
	})

	t.Run("shutdown drains before the pod is killed", func(t *testing.T) {
		cfg, _ := proxyConfig(t, objs, d, proxy)
		v, _ := lookup(cfg, "server.shutdown_grace")
		s, _ := v.(string)
		grace := mustDuration(t, "server.shutdown_grace", s)
		sleep := func(c container) time.Duration {
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
				return 0
			}
			return time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if pod.TerminationGracePeriodSeconds == nil {
			t.Fatal("terminationGracePeriodSeconds unset (default 30s)")
		}
		total := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		if total <= sleep(proxy)+grace {
			t.Errorf("terminationGracePeriodSeconds %v must exceed the proxy's preStop %v + shutdown_grace %v", total, sleep(proxy), grace)
		}
		if sleep(hasura) < sleep(proxy)+grace {
			t.Errorf("hasura preStop %v must cover the proxy's preStop %v + shutdown_grace %v, or draining requests lose Hasura", sleep(hasura), sleep(proxy), grace)
		}
		if total <= sleep(hasura) {
			t.Errorf("terminationGracePeriodSeconds %v must exceed hasura's preStop %v", total, sleep(hasura))
		}
	})

	t.Run("network policy admits clients to the proxy port and monitoring to the ops port", func(t *testing.T) {
		if len(objs.networkPols) == 0 {
			t.Fatal("no NetworkPolicy")
		}
		clientsOpen, monitoringOpen := false, false
		for _, np := range objs.networkPols {
			if !selects(np.Spec.PodSelector.MatchLabels, podLabels) {
				t.Errorf("NetworkPolicy %s does not select the pod", np.Metadata.Name)
			}
			if !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
				t.Errorf("NetworkPolicy %s policyTypes %v lacks Ingress", np.Metadata.Name, np.Spec.PolicyTypes)
			}
			for i, r := range np.Spec.Ingress {
				if len(r.Ports) == 0 {
					t.Errorf("NetworkPolicy %s ingress[%d] allows every port", np.Metadata.Name, i)
				}
				for _, p := range r.Ports {
					port, ok := containerPort(proxy, p.Port)
					switch {
					case !ok:
						t.Errorf("NetworkPolicy %s ingress[%d] allows port %s, which is not a proxy port", np.Metadata.Name, i, p.Port)
					case port == clientPort && len(r.From) == 0:
						clientsOpen = true
					case port == opsPort:
						if len(r.From) == 0 {
							t.Errorf("NetworkPolicy %s ingress[%d] opens the ops port to everyone", np.Metadata.Name, i)
						}
						for _, peer := range r.From {
							if peer.NamespaceSelector == nil || len(peer.NamespaceSelector.MatchLabels) == 0 || peer.IPBlock != nil {
								t.Errorf("NetworkPolicy %s ingress[%d] opens the ops port beyond a namespace", np.Metadata.Name, i)
							}
						}
						monitoringOpen = true
					}
				}
			}
		}
		if !clientsOpen {
			t.Errorf("no ingress rule admits clients to port %d", clientPort)
		}
		if !monitoringOpen {
			t.Errorf("no ingress rule admits the monitoring namespace to port %d", opsPort)
		}
	})

	t.Run("pod monitor scrapes the ops port as the alert rules expect", func(t *testing.T) {
		if len(objs.podMonitors) != 1 {
			t.Fatalf("%d PodMonitors, want 1", len(objs.podMonitors))
		}
		pm := objs.podMonitors[0]
		if !selects(pm.Spec.Selector.MatchLabels, podLabels) {
			t.Errorf("PodMonitor selector %v does not select the pod", pm.Spec.Selector.MatchLabels)
		}
		if len(pm.Spec.PodMetricsEndpoints) != 1 {
			t.Fatalf("%d endpoints, want 1", len(pm.Spec.PodMetricsEndpoints))
		}
		ep := pm.Spec.PodMetricsEndpoints[0]
		if port, ok := containerPort(proxy, intOrString{Str: ep.Port, IsStr: true}); !ok || port != opsPort {
			t.Errorf("PodMetricsEndpoint port %q, want the proxy port named for %d", ep.Port, opsPort)
		}
		if ep.Path != "/metrics" {
			t.Errorf("PodMetricsEndpoint path %q, want /metrics", ep.Path)
		}
		job := ""
		for _, r := range ep.Relabelings {
			if r.TargetLabel == "job" && (r.Action == "" || r.Action == "replace") && len(r.SourceLabels) == 0 {
				job = r.Replacement
			}
		}
		if job != scrapeJob {
			t.Errorf("PodMonitor sets job=%q, want %q (the alert rules select on it)", job, scrapeJob)
		}
	})

	t.Run("prometheus rule equals alerts.yml", func(t *testing.T) {
		if len(objs.rules) != 1 {
			t.Fatalf("%d PrometheusRules, want 1", len(objs.rules))
		}
		if want := loadAlerts(t).Groups; !reflect.DeepEqual(objs.rules[0].Spec.Groups, want) {
			t.Errorf("PrometheusRule spec.groups differ from %s; copy them over", alertsFile)
		}
	})

	t.Run("kustomize builds it", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl is not installed (Debian package kubectl); kustomize rendering not checked")
		}
		out, err := exec.CommandContext(t.Context(), kubectl, "kustomize", k8sDir).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize: %v", stderrOf(err))
		}
		nodes, err := yamlNodes(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != objs.count {
			t.Errorf("kustomize rendered %d objects, want %d", len(nodes), objs.count)
		}

		for _, n := range nodes {
			var head typeMeta
			if err := n.Decode(&head); err != nil {
				t.Fatal(err)
			}
			if head.Kind == "Secret" || strings.Contains(head.APIVersion, "monitoring.coreos.com") {
				t.Errorf("kubectl kustomize %s renders a %s %s; it must be opt-in", k8sDir, head.APIVersion, head.Kind)
			}
		}

		// Overlays as docs/deployment.md shows them: production (the operator's objects, the Secret made out of
		// band) and a throwaway test cluster (both components).
		abs, err := filepath.Abs(k8sDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name       string
			components []string
		}{
			{"production", []string{"prometheus-operator"}},
			{"test cluster", []string{"prometheus-operator", "example-secret"}},
		} {
			overlay := t.TempDir()
			base, err := filepath.Rel(overlay, abs)
			if err != nil {
				t.Fatal(err)
			}
			kust := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + filepath.ToSlash(base) + "\ncomponents:\n"
			want := objs.count
			for _, c := range tt.components {
				kust += "  - " + filepath.ToSlash(filepath.Join(base, "components", c)) + "\n"
				want += len(objs.components[c].objects)
			}
			if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err = exec.CommandContext(t.Context(), kubectl, "kustomize", overlay).Output()
			if err != nil {
				t.Fatalf("%s: kubectl kustomize overlay: %v", tt.name, stderrOf(err))
			}
			nodes, err = yamlNodes(out)
			if err != nil {
				t.Fatal(err)
			}
			secrets := 0
			for _, n := range nodes {
				var head struct {
					typeMeta `yaml:",inline"`
					Metadata objectMeta `yaml:"metadata"`
				}
				if err := n.Decode(&head); err != nil {
					t.Fatal(err)
				}
				if head.Kind == "Secret" {
					secrets++
				}
				if head.Metadata.Labels["app.kubernetes.io/part-of"] != "hasura-auth-proxy" {
					t.Errorf("%s: %s %s lacks the part-of label", tt.name, head.Kind, head.Metadata.Name)
				}
			}
			if len(nodes) != want {
				t.Errorf("%s: the overlay rendered %d objects, want %d", tt.name, len(nodes), want)
			}
			if wantSecrets := len(tt.components) - 1; secrets != wantSecrets {
				t.Errorf("%s: the overlay rendered %d Secrets, want %d", tt.name, secrets, wantSecrets)
			}
		}
	})
}

func TestAlertRules(t *testing.T) {
	rf := loadAlerts(t)
	exported := exportedSeries(t)
	results := metrics.Results()
	if len(rf.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	names := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			t.Run(r.Alert, func(t *testing.T) {
				if r.Alert == "" || r.Record != "" {
					t.Fatalf("group %s: want alerting rules only, got %+v", g.Name, r)
				}
				if names[r.Alert] {
					t.Errorf("%s defined twice", r.Alert)
				}
				names[r.Alert] = true
				if strings.TrimSpace(r.Expr) == "" {
					t.Error("no expr")
				}
				if !promDuration.MatchString(r.For) {
					t.Errorf("for %q, want a Prometheus duration", r.For)
				}
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("labels.severity %q, want warning or critical", s)
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("no annotations.%s", a)
					}
				}
				sels, err := selectors(r.Expr)
				if err != nil {
					t.Fatalf("expr: %v", err)
				}
				if len(sels) == 0 {
					t.Error("expr selects no series")
				}
				for _, s := range sels {
					labels, ok := exported[s.Metric]
					if !ok {
						t.Errorf("expr uses %q, which the proxy does not export", s.Metric)
						continue
					}
					for _, m := range s.Matchers {
						switch {
						case m.Label == "job":
							if m.Op != "=" || m.Value != scrapeJob {
								t.Errorf("%s{job%s%q}, want job=%q", s.Metric, m.Op, m.Value, scrapeJob)
							}
						case m.Label == "instance" || m.Label == "__name__":
						case !slices.Contains(labels, m.Label):
							t.Errorf("%s has no label %q (labels: %v)", s.Metric, m.Label, labels)
						case s.Metric == "hasura_auth_proxy_auth_decisions_total" && m.Label == "result" && m.Op == "=" && !slices.Contains(results, m.Value):
							t.Errorf("%s{result=%q}: result is one of %v", s.Metric, m.Value, results)
						}
					}
					if s.Metric == "up" && !slices.ContainsFunc(s.Matchers, func(m matcher) bool { return m.Label == "job" }) {
						t.Error("up without a job matcher would alert on every target of the Prometheus")
					}
				}
			})
		}
	}
	for _, want := range requiredAlerts {
		if !names[want] {
			t.Errorf("alert %s is missing", want)
		}
	}

	t.Run("prometheus.yml loads alerts.yml", func(t *testing.T) {
		cfg, err := readStrict[prometheusConfig](promConfig)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range cfg.RuleFiles {
			if filepath.Join(promDir, f) == filepath.Clean(alertsFile) {
				found = true
			}
		}
		if !found {
			t.Errorf("rule_files %v do not load %s (paths are relative to prometheus.yml)", cfg.RuleFiles, filepath.Base(alertsFile))
		}
	})

	t.Run("promtool", func(t *testing.T) {
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Skip("promtool is not installed (Debian package prometheus: apt-get install --no-install-recommends prometheus); rules not checked by Prometheus itself")
		}
		for _, args := range [][]string{
			{"check", "rules", "alerts.yml"},
			{"check", "config", "prometheus.yml"},
			{"test", "rules", "alerts_test.yml"},
		} {
			cmd := exec.CommandContext(t.Context(), promtool, args...)
			cmd.Dir = promDir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
}

// TestHasuraHealthcheck runs the bash /dev/tcp probe that compose and Kubernetes use for Hasura (whose image has
// bash but no curl) against a stand-in /healthz.
func TestHasuraHealthcheck(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	p := loadCompose(t)
	hc := p.Services[hasuraService].Healthcheck
	if hc == nil || len(hc.Test) != 4 || hc.Test[0] != "CMD" || hc.Test[1] != "bash" || hc.Test[2] != "-c" {
		t.Fatalf("hasura healthcheck %q, want [CMD bash -c SCRIPT]", hc.Test)
	}
	script := strings.ReplaceAll(hc.Test[3], "$$", "$") // compose's escape for a literal $
	objs := loadK8s(t)
	_, _, hasura := objs.deployment(t)
	for _, pr := range []*probe{hasura.StartupProbe, hasura.LivenessProbe} {
		if pr == nil || pr.Exec == nil {
			t.Fatal("hasura needs exec startup and liveness probes")
		}
		if want := []string{"bash", "-c", script}; !slices.Equal(pr.Exec.Command, want) {
			t.Errorf("kubernetes probe %q differs from the compose healthcheck %q", pr.Exec.Command, want)
		}
	}
	target := fmt.Sprintf("/dev/tcp/127.0.0.1/%d", hasuraPort)
	if !strings.Contains(script, target) {
		t.Fatalf("the script does not connect to %s: %s", target, script)
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name    string
		status  int // 0: nothing listens
		wantErr bool
	}{
		{"healthy", http.StatusOK, false},
		{"unhealthy", http.StatusInternalServerError, true},
		{"not listening", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := closedAddr
			paths := make(chan string, 1)
			if tt.status != 0 {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case paths <- r.URL.Path:
					default:
					}
					if r.URL.Path != "/healthz" {
						http.NotFound(w, r)
						return
					}
					w.WriteHeader(tt.status)
					fmt.Fprint(w, "OK")
				}))
				t.Cleanup(srv.Close)
				addr = srv.Listener.Addr().String()
			}
			host, port, _ := net.SplitHostPort(addr)
			s := strings.Replace(script, target, "/dev/tcp/"+host+"/"+port, 1)
			cmd := exec.CommandContext(t.Context(), bash, "-c", s)
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("probe error %v (output %q), want error: %v", err, out, tt.wantErr)
			}
			if tt.status != 0 {
				select {
				case p := <-paths:
					if p != "/healthz" {
						t.Errorf("probe requested %q, want /healthz", p)
					}
				default:
					t.Error("the probe sent no request")
				}
			}
		})
	}
}

// TestConfigsPassCheckConfig runs the real binary's -check-config on the configs the deployments use, with the
// environment each deployment gives it.
func TestConfigsPassCheckConfig(t *testing.T) {
	if _, err := os.Stat("../main.go"); err != nil {
		t.Skip("the repository root has no main.go yet")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), binaryName)
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	entries := loadEnvExample(t)
	env := sampleEnv(entries)
	compose := loadCompose(t)
	composeEnv := map[string]string{}
	for k, v := range compose.Services[proxyService].Environment {
		resolved, err := interpolate(v, env)
		if err != nil {
			t.Fatal(err)
		}
		composeEnv[k] = resolved
	}

	objs := loadK8s(t)
	d, proxy, _ := objs.deployment(t)
	k8sConfig := filepath.Join(t.TempDir(), "config.yaml")
	cm, _ := proxyConfigMap(t, objs, d, proxy)
	if err := os.WriteFile(k8sConfig, []byte(cm), 0o600); err != nil {
		t.Fatal(err)
	}
	k8sEnv := map[string]string{}
	for _, e := range proxy.Env {
		switch {
		case e.ValueFrom == nil:
			k8sEnv[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			for _, s := range objs.secrets {
				if s.Metadata.Name == e.ValueFrom.SecretKeyRef.Name {
					k8sEnv[e.Name] = s.StringData[e.ValueFrom.SecretKeyRef.Key]
				}
			}
		}
	}

	tests := []struct {
		name, config string
		env          map[string]string
	}{
		{"image config with the compose environment", exampleConfig, composeEnv},
		{"config map with the pod environment", k8sConfig, k8sEnv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, "-check-config", "-config", tt.config)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -check-config -config %s: %v\n%s", binaryName, tt.config, err, out)
			}
		})
	}
}

// proxyConfigMap returns the text of the config file the proxy container reads, and whether it is mounted at
// configPath.
func proxyConfigMap(t *testing.T, objs k8sObjects, d deployment, proxy container) (string, bool) {
	t.Helper()
	dir, file := filepath.Dir(configPath), filepath.Base(configPath)
	for _, m := range proxy.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			for _, cm := range objs.configMaps {
				if cm.Metadata.Name == v.ConfigMap.Name {
					text, ok := cm.Data[file]
					return text, ok && m.ReadOnly
				}
			}
		}
	}
	return "", false
}

// proxyConfig is proxyConfigMap decoded.
func proxyConfig(t *testing.T, objs k8sObjects, d deployment, proxy container) (map[string]any, bool) {
	t.Helper()
	text, ok := proxyConfigMap(t, objs, d, proxy)
	if !ok {
		return map[string]any{}, false
	}
	return loadYAMLMap(t, []byte(text)), true
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustEnv(t *testing.T, c container, name string) string {
	t.Helper()
	v, ok := envValue(c, name)
	if !ok {
		t.Fatalf("%s: no env %s", c.Name, name)
	}
	return v
}

// stderrOf adds a command's stderr to its error.
func stderrOf(err error) error {
	if ee, ok := err.(*exec.ExitError); ok {
		return fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return err
}
