// Command loadclient runs in a FROM scratch container on the overlay
// network, where service names resolve:
//
//	loadclient [flags]    bounded keep-alive GET load; prints the result
//	                      as JSON (e2e.LoadResult) and progress on stderr.
//	                      Stops after -requests, on SIGTERM (docker stop)
//	                      or after -max-duration.
//	loadclient get <url>  prints the body of one GET; fails unless 200
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/swarmedge/swarmedge/integration/e2e"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("loadclient: ")
	cfg := e2e.LoadConfig{Progress: os.Stderr}
	flag.StringVar(&cfg.URL, "url", "http://edge/", "`URL` to GET")
	flag.IntVar(&cfg.Connections, "connections", 8, "concurrent keep-alive connections")
	flag.IntVar(&cfg.Requests, "requests", 0, "stop after this many requests (0: until stopped)")
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&cfg.MachineIDBits, "machine-id-bits", 16, "Sonyflake machine ID bits of the X-Request-IDs")
	maxDuration := flag.Duration("max-duration", 2*time.Minute, "stop after this long")
	flag.Parse()

	if flag.Arg(0) == "get" && flag.NArg() == 2 {
		if err := get(flag.Arg(1)); err != nil {
			log.Fatal(err)
		}
		return
	}
	if flag.NArg() > 0 || cfg.Connections < 1 || cfg.Requests < 0 || cfg.MachineIDBits < 1 || cfg.MachineIDBits > 30 {
		log.Fatal("usage: loadclient [flags] | loadclient get <url>; need -connections ≥ 1, -requests ≥ 0, 1 ≤ -machine-id-bits ≤ 30")
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

func get(url string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
