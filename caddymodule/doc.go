// Package caddymodule holds the swarmedge Caddy modules: the process-wide
// Sonyflake generator (app "sonyflake"), the ID endpoint
// (http.handlers.sonyflake), request stamping (http.handlers.request_id) and
// Swarm task discovery (http.reverse_proxy.upstreams.swarm).
package caddymodule
