// Package swarm balances requests across the tasks of Docker Swarm
// services (http.reverse_proxy.upstreams.swarm), with the admin endpoint,
// metrics and `caddy swarm` commands around it.
//
// Its files form layers, each using only those before it: answer.go
// (reading a DNS answer), servers.go (resolver addresses), udp.go and
// udpwrites.go (the shared UDP sockets), query.go (the DNS client),
// loop.go and schedule.go (the resolver loops and the one schedule that
// starts their lookups), health.go (task pools and probes), registry.go (the process-wide
// loops and pools), then the Caddy modules: upstreams.go, caddyfile.go,
// admin.go, command.go. metrics.go stands aside: it holds the counters
// the loops and pools count in, and a collector that reads the registry
// only when scraped.
package swarm
