// Command swarmsim runs a loopback stand-in for one Docker Swarm service:
// tasks on 127.0.10.x, a DNS server answering like Docker's embedded one,
// an IPVS-like VIP and an HTTP control API. See package
// github.com/swarmedge/swarmedge/integration/swarmsim.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("swarmsim: ")

	var cfg swarmsim.Config
	var port uint
	flag.StringVar(&cfg.Name, "service", swarmsim.DefaultName, "service `name`: DNS answers tasks.<name> and <name>")
	flag.IntVar(&cfg.Replicas, "replicas", 5, "number of tasks to start")
	flag.UintVar(&port, "port", 8080, "`port` of every task and of the VIP")
	flag.TextVar(&cfg.TaskBase, "task-base", swarmsim.DefaultTaskBase, "address of task 1; task k listens on base+k-1")
	flag.TextVar(&cfg.VIP, "vip", swarmsim.DefaultVIP, "virtual IP `address` (per-connection round robin)")
	dnsAddr := netip.MustParseAddrPort("127.0.0.11:1053")
	flag.TextVar(&cfg.DNS, "dns", dnsAddr, "DNS listen `address` (UDP and TCP)")
	flag.DurationVar(&cfg.NXDomainDelay, "nxdomain-delay", 0, "delay before NXDOMAIN answers (Docker: up to 12s)")
	controlAddr := netip.MustParseAddrPort("127.0.0.1:7070")
	flag.TextVar(&controlAddr, "control", controlAddr, "control API listen `address`")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments: %v", flag.Args())
	}
	if port > 65535 {
		log.Fatalf("port %d out of range", port)
	}
	cfg.Port = uint16(port)
	if !controlAddr.Addr().Is4() || !controlAddr.Addr().IsLoopback() {
		log.Fatalf("control address %s is not in 127.0.0.0/8", controlAddr)
	}

	if err := run(cfg, controlAddr); err != nil {
		log.Fatal(err)
	}
}

// run starts the service and its control API and serves until SIGINT or
// SIGTERM.
func run(cfg swarmsim.Config, controlAddr netip.AddrPort) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := swarmsim.Start(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", controlAddr.String())
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	control := &http.Server{Handler: s.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- control.Serve(ln) }()

	printBanner(s, "http://"+ln.Addr().String())

	select {
	case <-ctx.Done():
		log.Print("stopping")
	case err := <-served:
		return fmt.Errorf("control API: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := control.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return s.Close()
}

// printBanner says what runs where and how to poke at it.
func printBanner(s *swarmsim.Service, controlURL string) {
	tasks := s.Tasks()
	fmt.Printf("swarmsim: service %q, %d tasks on port %d\n", s.Name(), len(tasks), s.Port())
	for _, t := range tasks {
		fmt.Printf("  task     %-8s http://%s\n", t.Name, t.Addr)
	}
	dnsHost, dnsPort := s.DNS().Addr(), s.DNS().Port()
	fmt.Printf("  VIP      http://%s (one task per TCP connection, like IPVS)\n", s.VIP())
	fmt.Printf("  DNS      %s udp+tcp: tasks.%s (tasks), %s (VIP)\n", s.DNS(), s.Name(), s.Name())
	fmt.Printf("  control  %s\n", controlURL)
	fmt.Println("try:")
	fmt.Printf("  dig @%s -p %d tasks.%s +short\n", dnsHost, dnsPort, s.Name())
	fmt.Printf("  curl -s http://%s/ -H 'X-Request-ID: 42'\n", s.VIP())
	fmt.Printf("  curl -s -X POST '%s/scale?n=8'\n", controlURL)
	fmt.Printf("  curl -s -X POST '%s/kill?task=2&dns=keep'\n", controlURL)
	fmt.Printf("  curl -s -X POST '%s/health?task=3&state=fail'\n", controlURL)
	fmt.Printf("  curl -s -X POST '%s/dns?fault=drop'   # or servfail, none; nxdomain_delay=12s\n", controlURL)
	fmt.Printf("  curl -s %s/counts; curl -s -X POST %s/reset\n", controlURL, controlURL)
}
