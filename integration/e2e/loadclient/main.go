// Command loadclient runs in a FROM scratch container on the overlay
// network, where service names resolve:
//
//	loadclient [flags]    keep-alive GET load with the e2e checks; prints
//	                      the result as JSON (e2e.LoadResult) and progress
//	                      on stderr. Stops after -requests, on SIGTERM
//	                      (docker stop) or after -max-duration.
//	loadclient -rate N    open-loop GETs at N a second (integration/openload)
//	                      until SIGTERM or -max-duration; prints the
//	                      summary as JSON
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
	"github.com/swarmedge/swarmedge/integration/load"
	"github.com/swarmedge/swarmedge/integration/openload"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("loadclient: ")
	// The target is a service on the test's own overlay network, not loopback.
	cfg := load.Config{AllowAnyHost: true}
	flag.StringVar(&cfg.URL, "url", "http://edge/", "`URL` to GET")
	flag.IntVar(&cfg.Clients, "connections", 8, "concurrent keep-alive connections")
	flag.IntVar(&cfg.Requests, "requests", 0, "stop after this many requests (0: until stopped)")
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.DurationVar(&cfg.Duration, "max-duration", 2*time.Minute, "stop after this long")
	rate := flag.Int("rate", 0, "send open-loop at this many requests a second instead (-connections and -requests unused)")
	flag.Parse()

	if flag.Arg(0) == "get" && flag.NArg() == 2 {
		if err := get(flag.Arg(1)); err != nil {
			log.Fatal(err)
		}
		return
	}
	if flag.NArg() > 0 {
		log.Fatal("usage: loadclient [flags] | loadclient get <url>")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *rate > 0 {
		if err := openLoop(ctx, cfg, *rate); err != nil {
			log.Fatal(err)
		}
		return
	}
	run, err := e2e.StartCheckedLoad(cfg)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		<-ctx.Done()
		run.Stop()
	}()
	// The tests watch a detached client through these lines.
	go func() {
		for range time.Tick(time.Second) {
			requests, failed := run.Progress()
			fmt.Fprintf(os.Stderr, "progress requests=%d failed=%d\n", requests, failed)
		}
	}()

	if err := json.NewEncoder(os.Stdout).Encode(run.Result()); err != nil {
		log.Fatal(err)
	}
}

// openLoop sends rate requests a second until ctx ends or cfg.Duration
// passes, reporting progress on stderr, and prints the summary.
func openLoop(ctx context.Context, cfg load.Config, rate int) error {
	fmt.Fprintln(os.Stderr, "progress open-loop started")
	res, err := openload.Run(ctx, openload.Config{
		URL: cfg.URL, AllowAnyHost: true, Rate: rate, Duration: cfg.Duration, Timeout: cfg.Timeout,
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res.Summary())
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
