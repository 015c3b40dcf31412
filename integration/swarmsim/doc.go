// Package swarmsim is a loopback stand-in for one Docker Swarm service: the
// parts of Swarm that an edge proxy sees, built to behave the way Docker's do.
//
//   - Tasks: HTTP servers on their own loopback addresses (127.0.10.1,
//     127.0.10.2, …) and one shared port, like a service's task IPs. Each
//     says which task answered, echoes X-Request-ID, serves /healthz and
//     counts requests.
//   - DNS: Docker's embedded resolver for tasks.<service> (one A record per
//     advertised task, shuffled, TTL 600, uncompressed, truncated to 512 bytes
//     or the EDNS0 size with TC over UDP) and <service> (the VIP), with the
//     slow NXDOMAIN and the faults seen in real clusters.
//   - VIP: IPVS-like balancing per TCP connection, so keep-alive clients stay
//     pinned to one task.
//   - Control: scaling, killing tasks, health and DNS faults, from Go through
//     [Service] or over HTTP through [Service.ControlHandler].
//
// Everything binds to 127.0.0.0/8 only; Linux answers on the whole range
// with no setup.
package swarmsim
