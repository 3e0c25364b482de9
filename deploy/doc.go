// Package deploy holds no Go code of its own. The folder carries what runs hasura-auth-proxy next to Hasura:
//
//   - Dockerfile: the static, non-root container image (build context: the repository root);
//   - docker-compose.yml and .env.example: Postgres, Hasura, the proxy and Prometheus on one host;
//   - kubernetes/: Hasura with the proxy as a sidecar in one pod, and the Prometheus Operator objects;
//   - prometheus/: the scrape configuration, the alert rules and their promtool unit tests.
//
// The package's tests parse every one of those files and check the invariants the deployment depends on: Hasura is
// reachable only through the proxy, Hasura trusts nothing but the admin secret, the probes and the scrape target are
// on the ops port, no secret is written inline, and every alert names a metric the proxy exports. The operator's
// guide is docs/deployment.md.
package deploy
