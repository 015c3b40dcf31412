package main

import (
	"bytes"
	"errors"
	"fmt"
	"text/template"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

// The two runs of the metrics figure.
const (
	metricsOff = "without `metrics`"
	metricsOn  = "with `metrics`"
)

// metricsCaddyfile is the edge's `dynamic swarm` proxy, with or without
// Caddy's per-request metrics (the global `metrics` option that
// Caddyfile.example turns on for the dashboard); rendered with [[ ]], then
// by the harness with {{ }}.
var metricsCaddyfile = template.Must(template.New("Caddyfile").Delims("[[", "]]").Parse(`{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	auto_https off[[if .Metrics]]
	metrics[[end]]
}

http://127.0.0.1:{{.HTTPPort}} {
	reverse_proxy {
		dynamic swarm [[.Service]] [[.TaskPort]] {
			resolvers [[.DNS]]
			refresh 1s
		}
		lb_retries 2
	}
}
`))

// metricsEdges are two edges that differ only in `metrics`.
type metricsEdges struct {
	off, on *edge.Edge
}

// launchMetricsEdges starts both edges in front of sim's tasks.
func launchMetricsEdges(sim *swarmsim.Service) (*metricsEdges, error) {
	m := &metricsEdges{}
	for _, variant := range []struct {
		metrics bool
		e       **edge.Edge
	}{{false, &m.off}, {true, &m.on}} {
		var caddyfile bytes.Buffer
		if err := metricsCaddyfile.Execute(&caddyfile, map[string]any{
			"Metrics": variant.metrics, "Service": sim.Name(), "TaskPort": sim.Port(), "DNS": sim.DNS(),
		}); err != nil {
			return nil, errors.Join(err, m.stop())
		}
		e, err := edge.Launch(edge.Options{Caddyfile: caddyfile.String(), Env: shippedEdgeEnv})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("edge (metrics %v): %w", variant.metrics, err), m.stop())
		}
		*variant.e = e
	}
	return m, nil
}

// targets are the two runs, off first.
func (m *metricsEdges) targets() []target {
	return []target{{metricsOff, m.off.URL("/"), m.off.PID()}, {metricsOn, m.on.URL("/"), m.on.PID()}}
}

// stop stops the edges that started.
func (m *metricsEdges) stop() error {
	var err error
	for _, e := range []*edge.Edge{m.off, m.on} {
		if e != nil {
			err = errors.Join(err, e.Stop())
		}
	}
	return err
}
