// Package swarmedge is the module root that xcaddy's `--with
// github.com/swarmedge/swarmedge` imports: it plugs the swarmedge Caddy
// modules into the build.
package swarmedge

import _ "github.com/swarmedge/swarmedge/caddymodule"
