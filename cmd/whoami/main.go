// Command whoami is a tiny HTTP app for trying the edge in Docker Swarm:
// every answer says which task served it and echoes the X-Request-ID it
// received. Built CGO_ENABLED=0, it runs in a FROM scratch image.
//
//	GET /health  → 200 "ok" (also `whoami health` for a HEALTHCHECK)
//	GET /…       → 200 "Hostname: <hostname>\nX-Request-Id: <id>\n"
//
// In Swarm, give the service --hostname '{{.Task.Name}}' so the hostname
// names the task. On SIGTERM it stops accepting connections and finishes
// the requests in flight.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("whoami: ")
	addr := flag.String("listen", ":80", "listen `address`")
	flag.Parse()
	if flag.Arg(0) == "health" {
		_, port, err := net.SplitHostPort(*addr)
		if err == nil {
			err = checkHealth("http://127.0.0.1:" + port + "/health")
		}
		if err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := serve(*addr); err != nil {
		log.Fatal(err)
	}
}

func serve(addr string) error {
	hostname, err := os.Hostname()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hostname: %s\nX-Request-Id: %s\n", hostname, r.Header.Get("X-Request-Id"))
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	log.Printf("%s listening on %s", hostname, addr)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Swarm waits stop_grace_period (10 s by default) before SIGKILL.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func checkHealth(url string) error {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
