// Package metrics holds what both module families need to export
// Prometheus metrics: the common namespace and registration into a config's
// registry.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric this plugin exports.
const Namespace = "swarmedge"

// Register registers process-wide collectors into a config's registry.
// Caddy 2.11 gives each config load its own registry, so the collectors are
// created once and registered again on every Provision; a second
// registration into the same registry (two handlers in one config) is not an
// error.
func Register(reg *prometheus.Registry, collectors ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		var already prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &already) {
			return err
		}
	}
	return nil
}
