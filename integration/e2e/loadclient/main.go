// Command loadclient sends bounded keep-alive GET load to a URL and prints
// the result as JSON (e2e.LoadResult): it runs in a FROM scratch container
// on the overlay network, where the edge's name resolves. It stops after
// -requests, on SIGTERM (docker stop) or after -max-duration.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/swarmedge/swarmedge/integration/e2e"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("loadclient: ")
	cfg := e2e.LoadConfig{}
	flag.StringVar(&cfg.URL, "url", "http://edge/", "`URL` to GET")
	flag.IntVar(&cfg.Connections, "connections", 8, "concurrent keep-alive connections")
	flag.IntVar(&cfg.Requests, "requests", 0, "stop after this many requests (0: until stopped)")
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&cfg.MachineIDBits, "machine-id-bits", 16, "Sonyflake machine ID bits of the X-Request-IDs")
	maxDuration := flag.Duration("max-duration", 2*time.Minute, "stop after this long")
	flag.Parse()
	if cfg.Connections < 1 || cfg.Requests < 0 || cfg.MachineIDBits < 1 || cfg.MachineIDBits > 30 {
		log.Fatal("need -connections ≥ 1, -requests ≥ 0, 1 ≤ -machine-id-bits ≤ 30")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxDuration)
	defer cancel()

	res := e2e.Load(ctx, cfg)
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		log.Fatal(err)
	}
}
