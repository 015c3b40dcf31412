// Package caddymodule registers the swarmedge Caddy modules; importing it
// (as xcaddy's --with does) plugs them into a build. Each family lives in a
// package of its own:
//   - sonyflake: the process-wide Sonyflake generator (app "sonyflake"), the
//     ID endpoint (http.handlers.sonyflake), request stamping
//     (http.handlers.request_id) and `caddy sonyflake decode`;
//   - swarm: Swarm task discovery (http.reverse_proxy.upstreams.swarm), its
//     admin endpoint and the `caddy swarm` commands.
package caddymodule

import (
	_ "github.com/swarmedge/swarmedge/caddymodule/sonyflake"
	_ "github.com/swarmedge/swarmedge/caddymodule/swarm"
)
