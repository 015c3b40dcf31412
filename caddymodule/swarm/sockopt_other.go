//go:build !linux

package swarm

import (
	"net"
	"time"
)

// tuneTCP does nothing here: TCP_USER_TIMEOUT is Linux's (the edge runs in
// Linux containers); the pooled-connection handling still applies.
func tuneTCP(net.Conn, time.Duration, time.Duration) error { return nil }
