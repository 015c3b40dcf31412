// Command caddy is Caddy with its standard modules and the swarmedge plugin:
// the same binary that the line in xcaddy.txt builds.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/swarmedge/swarmedge/caddymodule"
)

func main() {
	caddycmd.Main()
}
