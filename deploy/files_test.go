package deploy

// Parsers and types for the files in this folder. The YAML types model only the fields these files use and are
// decoded strictly (unknown keys are errors), so a misspelt key such as "readinesProbe" or "enviroment", which the
// real tools would silently ignore or reject only at deploy time, fails the tests here. Add a field to the type when
// a manifest starts using it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decodeStrict decodes every YAML document in data into a fresh T, rejecting unknown keys.
func decodeStrict[T any](data []byte) ([]T, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out []T
	for i := 0; ; i++ {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, v)
	}
}

// readStrict reads path and decodes it as exactly one YAML document into T, rejecting unknown keys.
func readStrict[T any](path string) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	docs, err := decodeStrict[T](data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	if len(docs) != 1 {
		return zero, fmt.Errorf("%s: %d YAML documents, want 1", path, len(docs))
	}
	return docs[0], nil
}

// yamlNodes splits data into its YAML documents, skipping empty ones.
func yamlNodes(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*yaml.Node
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		out = append(out, &n)
	}
}

// strictFromNode re-decodes one document node into T with unknown keys rejected (yaml.Node.Decode has no strict
// mode, so the node is encoded again and read by a strict decoder).
func strictFromNode[T any](n *yaml.Node) (T, error) {
	var zero T
	data, err := yaml.Marshal(n)
	if err != nil {
		return zero, err
	}
	docs, err := decodeStrict[T](data)
	if err != nil {
		return zero, err
	}
	if len(docs) != 1 {
		return zero, fmt.Errorf("%d documents, want 1", len(docs))
	}
	return docs[0], nil
}

// ---- docker-compose ----

type composeProject struct {
	Name     string                     `yaml:"name"`
	Services map[string]composeService  `yaml:"services"`
	Volumes  map[string]*composeVolume  `yaml:"volumes"`
	Networks map[string]*composeNetwork `yaml:"networks"`
}

type composeVolume struct {
	Driver string `yaml:"driver"`
}

type composeNetwork struct {
	Driver   string `yaml:"driver"`
	Internal bool   `yaml:"internal"`
}

type composeService struct {
	Image           string                       `yaml:"image"`
	Profiles        []string                     `yaml:"profiles"`
	Build           *composeBuild                `yaml:"build"`
	Restart         string                       `yaml:"restart"`
	User            string                       `yaml:"user"`
	DependsOn       map[string]composeDependency `yaml:"depends_on"`
	Environment     map[string]string            `yaml:"environment"`
	EnvFile         []string                     `yaml:"env_file"`
	Ports           []string                     `yaml:"ports"`
	Expose          []string                     `yaml:"expose"`
	Volumes         []string                     `yaml:"volumes"`
	Healthcheck     *composeHealthcheck          `yaml:"healthcheck"`
	Networks        []string                     `yaml:"networks"`
	NetworkMode     string                       `yaml:"network_mode"`
	Privileged      bool                         `yaml:"privileged"`
	ReadOnly        bool                         `yaml:"read_only"`
	CapDrop         []string                     `yaml:"cap_drop"`
	SecurityOpt     []string                     `yaml:"security_opt"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
	Command         []string                     `yaml:"command"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
	Disable     bool     `yaml:"disable"`
}

// composeRef is one ${...} or $NAME reference in a compose value.
type composeRef struct {
	Name string
	// Op is "", ":-", "-", ":?" or "?".
	Op  string
	Arg string
}

var composeRefPattern = regexp.MustCompile(`\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))`)

// composeRefs lists the variable references in s, as docker compose interpolates them ("$$" is a literal "$").
// Nested references inside a default are not supported (none is used); a "${" that does not parse is an error.
func composeRefs(s string) ([]composeRef, error) {
	var refs []composeRef
	for _, m := range composeRefPattern.FindAllStringSubmatch(s, -1) {
		switch {
		case m[1] == "$":
		case m[2] != "":
			if strings.Contains(m[4], "${") {
				return nil, fmt.Errorf("nested reference in %q", m[0])
			}
			refs = append(refs, composeRef{Name: m[2], Op: m[3], Arg: m[4]})
		default:
			refs = append(refs, composeRef{Name: m[5]})
		}
	}
	rest := composeRefPattern.ReplaceAllString(s, "")
	if strings.Contains(rest, "$") {
		return nil, fmt.Errorf("unparsed $ in %q", s)
	}
	return refs, nil
}

// interpolate resolves s like docker compose does with the variables in env.
func interpolate(s string, env map[string]string) (string, error) {
	if _, err := composeRefs(s); err != nil {
		return "", err
	}
	var firstErr error
	out := composeRefPattern.ReplaceAllStringFunc(s, func(tok string) string {
		m := composeRefPattern.FindStringSubmatch(tok)
		if m[1] == "$" {
			return "$"
		}
		name, op, arg := m[2], m[3], m[4]
		if name == "" {
			name = m[5]
		}
		v, set := env[name]
		switch op {
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?":
			if v == "" && firstErr == nil {
				firstErr = fmt.Errorf("required variable %s is missing a value: %s", name, arg)
			}
		case "?":
			if !set && firstErr == nil {
				firstErr = fmt.Errorf("required variable %s is missing: %s", name, arg)
			}
		}
		return v
	})
	return out, firstErr
}

// publishedPort is one entry of a compose service's short-syntax "ports".
type publishedPort struct {
	HostIP        string
	HostPort      string
	ContainerPort int
}

// parsePort parses "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]" (after interpolation; no IPv6 literals).
func parsePort(s string) (publishedPort, error) {
	s, _, _ = strings.Cut(s, "/")
	parts := strings.Split(s, ":")
	var p publishedPort
	switch len(parts) {
	case 1:
	case 2:
		p.HostPort = parts[0]
	case 3:
		p.HostIP, p.HostPort = parts[0], parts[1]
	default:
		return p, fmt.Errorf("port %q: want [HOST_IP:][HOST_PORT:]CONTAINER_PORT", s)
	}
	n, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return p, fmt.Errorf("port %q: container port: %w", s, err)
	}
	p.ContainerPort = n
	return p, nil
}

// ---- .env.example ----

// envEntry is one NAME=value line of an env file with the comment lines right above it.
type envEntry struct {
	Name, Value, Comment string
	Line                 int
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseEnvFile parses the KEY=value format docker compose reads for .env (no quoting or export is used here).
func parseEnvFile(r io.Reader) ([]envEntry, error) {
	var (
		out     []envEntry
		comment []string
		seen    = map[string]bool{}
	)
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == "":
			comment = nil
		case strings.HasPrefix(text, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(text, "#")))
		default:
			name, value, ok := strings.Cut(text, "=")
			if !ok || !envNamePattern.MatchString(name) {
				return nil, fmt.Errorf("line %d: want NAME=value, got %q", line, text)
			}
			if seen[name] {
				return nil, fmt.Errorf("line %d: %s set twice", line, name)
			}
			seen[name] = true
			out = append(out, envEntry{Name: name, Value: value, Comment: strings.Join(comment, " "), Line: line})
			comment = nil
		}
	}
	return out, sc.Err()
}

// ---- Dockerfile ----

// instruction is one Dockerfile instruction after line continuations are joined.
type instruction struct {
	Cmd  string // upper case
	Args string
	Line int
}

// stage is one FROM ... section of a multi-stage Dockerfile.
type stage struct {
	Image, Name  string
	Instructions []instruction
}

// parseDockerfile splits a Dockerfile into stages. It understands comments, blank lines and backslash
// continuations (comment lines inside a continuation are dropped, as Docker does); heredocs are not used here and
// are rejected.
func parseDockerfile(r io.Reader) ([]stage, error) {
	var (
		stages  []stage
		pending strings.Builder
		start   int
	)
	flush := func() error {
		text := strings.TrimSpace(pending.String())
		pending.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if strings.Contains(in.Args, "<<") && (in.Cmd == "RUN" || in.Cmd == "COPY") {
			return fmt.Errorf("line %d: heredocs are not supported by this parser", start)
		}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := stage{}
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			switch {
			case len(f) == 1:
				st.Image = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.Image, st.Name = f[0], f[2]
			default:
				return fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", start, in.Args)
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" {
				return nil
			}
			return fmt.Errorf("line %d: %s before the first FROM", start, in.Cmd)
		}
		last := &stages[len(stages)-1]
		last.Instructions = append(last.Instructions, in)
		return nil
	}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending.Len() == 0) {
			continue
		}
		if pending.Len() == 0 {
			start = line
		}
		if body, ok := strings.CutSuffix(strings.TrimRight(text, " \t"), `\`); ok {
			pending.WriteString(body)
			pending.WriteString(" ")
			continue
		}
		pending.WriteString(text)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pending.Len() > 0 {
		return nil, errors.New("file ends inside a line continuation")
	}
	return stages, nil
}

// execForm decodes the JSON array form of CMD/ENTRYPOINT; the shell form is an error (it needs a shell, which the
// runtime image does not have, and it does not forward signals).
func execForm(args string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		return nil, fmt.Errorf("want the exec (JSON array) form, got %q: %w", args, err)
	}
	return out, nil
}

// ---- Kubernetes ----

type typeMeta struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// intOrString is Kubernetes' IntOrString (ports by number or by name).
type intOrString struct {
	Int   int
	Str   string
	IsStr bool
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (v *intOrString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a number or a name", n.Line)
	}
	if n.Tag == "!!int" {
		i, err := strconv.Atoi(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		*v = intOrString{Int: i}
		return nil
	}
	*v = intOrString{Str: n.Value, IsStr: true}
	return nil
}

func (v intOrString) String() string {
	if v.IsStr {
		return v.Str
	}
	return strconv.Itoa(v.Int)
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type deployment struct {
	typeMeta `yaml:",inline"`
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Replicas             *int          `yaml:"replicas"`
		RevisionHistoryLimit *int          `yaml:"revisionHistoryLimit"`
		Selector             labelSelector `yaml:"selector"`
		Strategy             struct {
			Type          string `yaml:"type"`
			RollingUpdate *struct {
				MaxUnavailable intOrString `yaml:"maxUnavailable"`
				MaxSurge       intOrString `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata objectMeta `yaml:"metadata"`
			Spec     podSpec    `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
	EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
	TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
	HostNetwork                   bool  `yaml:"hostNetwork"`
	SecurityContext               *struct {
		RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
		RunAsUser      *int  `yaml:"runAsUser"`
		RunAsGroup     *int  `yaml:"runAsGroup"`
		FSGroup        *int  `yaml:"fsGroup"`
		SeccompProfile *struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	TopologySpreadConstraints []struct {
		MaxSkew           int           `yaml:"maxSkew"`
		TopologyKey       string        `yaml:"topologyKey"`
		WhenUnsatisfiable string        `yaml:"whenUnsatisfiable"`
		LabelSelector     labelSelector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		EmptyDir *struct {
			SizeLimit string `yaml:"sizeLimit"`
			Medium    string `yaml:"medium"`
		} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef     *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef  *keyRef `yaml:"configMapKeyRef"`
			ResourceFieldRef *struct {
				ContainerName string `yaml:"containerName"`
				Resource      string `yaml:"resource"`
				Divisor       string `yaml:"divisor"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	StartupProbe   *probe `yaml:"startupProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec *struct {
				Command []string `yaml:"command"`
			} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *struct {
		RunAsUser                *int  `yaml:"runAsUser"`
		RunAsGroup               *int  `yaml:"runAsGroup"`
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Privileged               *bool `yaml:"privileged"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path   string      `yaml:"path"`
		Port   intOrString `yaml:"port"`
		Scheme string      `yaml:"scheme"`
	} `yaml:"httpGet"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	TCPSocket *struct {
		Port intOrString `yaml:"port"`
	} `yaml:"tcpSocket"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	TimeoutSeconds      int `yaml:"timeoutSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
	SuccessThreshold    int `yaml:"successThreshold"`
}

type service struct {
	typeMeta `yaml:",inline"`
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Type        string            `yaml:"type"`
		Selector    map[string]string `yaml:"selector"`
		ExternalIPs []string          `yaml:"externalIPs"`
		Ports       []struct {
			Name        string      `yaml:"name"`
			Port        int         `yaml:"port"`
			TargetPort  intOrString `yaml:"targetPort"`
			NodePort    int         `yaml:"nodePort"`
			Protocol    string      `yaml:"protocol"`
			AppProtocol string      `yaml:"appProtocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type secret struct {
	typeMeta   `yaml:",inline"`
	Metadata   objectMeta        `yaml:"metadata"`
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

type configMap struct {
	typeMeta `yaml:",inline"`
	Metadata objectMeta        `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type networkPolicyPeer struct {
	NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
	PodSelector       *labelSelector `yaml:"podSelector"`
	IPBlock           *struct {
		CIDR   string   `yaml:"cidr"`
		Except []string `yaml:"except"`
	} `yaml:"ipBlock"`
}

type networkPolicyPort struct {
	Port     intOrString `yaml:"port"`
	EndPort  int         `yaml:"endPort"`
	Protocol string      `yaml:"protocol"`
}

type networkPolicy struct {
	typeMeta `yaml:",inline"`
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			From  []networkPolicyPeer `yaml:"from"`
			Ports []networkPolicyPort `yaml:"ports"`
		} `yaml:"ingress"`
		Egress []struct {
			To    []networkPolicyPeer `yaml:"to"`
			Ports []networkPolicyPort `yaml:"ports"`
		} `yaml:"egress"`
	} `yaml:"spec"`
}

type podMonitor struct {
	typeMeta `yaml:",inline"`
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		JobLabel          string        `yaml:"jobLabel"`
		Selector          labelSelector `yaml:"selector"`
		NamespaceSelector *struct {
			MatchNames []string `yaml:"matchNames"`
			Any        bool     `yaml:"any"`
		} `yaml:"namespaceSelector"`
		PodMetricsEndpoints []struct {
			Port        string `yaml:"port"`
			Path        string `yaml:"path"`
			Scheme      string `yaml:"scheme"`
			Interval    string `yaml:"interval"`
			Relabelings []struct {
				Action       string   `yaml:"action"`
				SourceLabels []string `yaml:"sourceLabels"`
				Regex        string   `yaml:"regex"`
				TargetLabel  string   `yaml:"targetLabel"`
				Replacement  string   `yaml:"replacement"`
			} `yaml:"relabelings"`
		} `yaml:"podMetricsEndpoints"`
	} `yaml:"spec"`
}

type prometheusRule struct {
	typeMeta `yaml:",inline"`
	Metadata objectMeta `yaml:"metadata"`
	Spec     ruleFile   `yaml:"spec"`
}

type kustomization struct {
	typeMeta   `yaml:",inline"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Components []string `yaml:"components"`
	Labels     []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
		IncludeTemplates bool              `yaml:"includeTemplates"`
	} `yaml:"labels"`
}

// ---- Prometheus ----

type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []rule `yaml:"rules"`
}

type rule struct {
	Alert         string            `yaml:"alert,omitempty"`
	Record        string            `yaml:"record,omitempty"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for,omitempty"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName        string `yaml:"job_name"`
		MetricsPath    string `yaml:"metrics_path"`
		Scheme         string `yaml:"scheme"`
		ScrapeInterval string `yaml:"scrape_interval"`
		StaticConfigs  []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// promDuration matches Prometheus' duration syntax (e.g. 90s, 1h30m).
var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
