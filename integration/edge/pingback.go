package edge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"time"
)

// pingback is the listener `caddy run --pingback <addr>` reports a started
// config to: the process reads its stdin (the token) and writes it back to
// the address once its initial config is running.
type pingback struct {
	net.Listener
	token []byte
}

func newPingback() (*pingback, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	token := make([]byte, 16)
	rand.Read(token)
	return &pingback{Listener: ln, token: []byte(hex.EncodeToString(token))}, nil
}

// address is what to pass to --pingback.
func (p *pingback) address() string {
	return p.Listener.Addr().String()
}

// wait accepts connections until one carries the token; closing the
// listener ends it with an error.
func (p *pingback) wait() error {
	for {
		conn, err := p.Accept()
		if err != nil {
			return fmt.Errorf("waiting for the start confirmation: %w", err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // a stray connection cannot hold the wait
		got, _ := io.ReadAll(io.LimitReader(conn, int64(len(p.token))+1))
		conn.Close()
		if bytes.Equal(got, p.token) {
			return nil
		}
	}
}
