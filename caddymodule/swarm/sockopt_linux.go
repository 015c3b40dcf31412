package swarm

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tuneTCP sets TCP_USER_TIMEOUT (when userTimeout > 0) and the keepalive
// idle time and probe interval (when keepAlive > 0) on a TCP connection;
// other connections are left alone. Go's dialer always waits 15 s before
// the first keepalive probe, too long to notice a dead peer while waiting
// for a response.
func tuneTCP(conn net.Conn, userTimeout, keepAlive time.Duration) error {
	if _, isTCP := conn.RemoteAddr().(*net.TCPAddr); !isTCP {
		return nil
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var optErr error
	err = raw.Control(func(fd uintptr) {
		if userTimeout > 0 {
			optErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout.Milliseconds()))
		}
		if optErr == nil && keepAlive > 0 {
			secs := max(1, int(keepAlive.Round(time.Second).Seconds()))
			optErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs)
			if optErr == nil {
				optErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs)
			}
		}
	})
	if err != nil {
		return err
	}
	return optErr
}
