// Package swarmedge holds the recommended edge configuration,
// Caddyfile.example, for programs that run the edge in-process (cmd/demo)
// and the tests that check it. The Caddy modules live in package
// github.com/swarmedge/swarmedge/caddymodule and the packages below it.
package swarmedge

import _ "embed"

// ExampleCaddyfile is the text of Caddyfile.example: the recommended edge,
// with {$SWARMEDGE_…} placeholders that Caddy fills in from the
// environment when it adapts the file. ExampleEnv lists them.
//
//go:embed Caddyfile.example
var ExampleCaddyfile string

// ExampleEnv names the environment variables that ExampleCaddyfile reads.
var ExampleEnv = []string{
	"SWARMEDGE_SERVICE",
	"SWARMEDGE_SERVICE_PORT",
	"SWARMEDGE_RESOLVERS",
	"SWARMEDGE_OVERLAY_CIDR",
	"SWARMEDGE_HTTP_PORT",
	"SWARMEDGE_ADMIN",
	"SWARMEDGE_BIND",
	"SWARMEDGE_METRICS_PORT",
	"SWARMEDGE_WAIT_FOR_TASKS",
}
