// Package deploy holds valora's deployment files (the container image,
// Kubernetes manifests, the Compose setup, the Prometheus rules and the
// Grafana dashboard) and no code: its tests check those files against the
// valora binary (its flags, the metrics it exports, how it is built).
package deploy
