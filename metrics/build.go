package metrics

import "github.com/prometheus/client_golang/prometheus"

// RegisterBuildInfo registers hasura_auth_proxy_build_info on reg: a gauge
// that is always 1, labelled with the binary's module version, VCS revision
// and Go version, so dashboards can join on it and a rollout shows which
// build each instance runs. The label values come from the build, never from
// a request.
func RegisterBuildInfo(reg prometheus.Registerer, version, revision, goVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   Namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels say which build runs: module version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	g.Set(1)
	register(reg, g)
}
