// Command demo shows swarmedge on one machine with nothing but Go: it runs
// a local stand-in for a Docker Swarm service (tasks, Docker-like DNS, an
// IPVS-like VIP and a control API; see integration/swarmsim) and, in the
// same process, the edge with Caddyfile.example pointed at it, then prints
// commands to try. Ctrl-C stops both.
//
//	go run ./cmd/demo
//
// The edge reads its settings from the SWARMEDGE_* environment variables
// of Caddyfile.example, which the demo sets for itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/swarmedge/swarmedge"
	_ "github.com/swarmedge/swarmedge/caddymodule"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

// options are where the demo's parts listen.
type options struct {
	edge    netip.AddrPort // the edge's HTTP site
	admin   netip.AddrPort // the edge's admin API
	metrics netip.AddrPort // the edge's metrics site
	control netip.AddrPort // the stand-in's control API; port 0 picks one
	service swarmsim.Config
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("demo: ")

	var opts options
	var edgePort, adminPort, metricsPort, controlPort, taskPort uint
	flag.UintVar(&edgePort, "http", 8080, "the edge's HTTP `port`")
	flag.UintVar(&adminPort, "admin", 2019, "the edge's admin API `port`")
	flag.UintVar(&metricsPort, "metrics", 9180, "the `port` of the edge's /metrics and /healthz")
	flag.UintVar(&controlPort, "control", 7070, "the stand-in's control API `port`")
	flag.UintVar(&taskPort, "task-port", 0, "`port` of the tasks and the VIP (0: a free one)")
	flag.IntVar(&opts.service.Replicas, "replicas", 5, "number of tasks to start")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected arguments: %v", flag.Args())
	}
	for _, p := range []uint{edgePort, adminPort, metricsPort, controlPort, taskPort} {
		if p > 65535 {
			log.Fatalf("port %d out of range", p)
		}
	}
	loopback := netip.MustParseAddr("127.0.0.1")
	opts.edge = netip.AddrPortFrom(loopback, uint16(edgePort))
	opts.admin = netip.AddrPortFrom(loopback, uint16(adminPort))
	opts.metrics = netip.AddrPortFrom(loopback, uint16(metricsPort))
	opts.control = netip.AddrPortFrom(loopback, uint16(controlPort))
	opts.service.Port = uint16(taskPort)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run starts the stand-in, its control API and the edge, prints what to
// try on out, and serves until ctx ends.
func run(ctx context.Context, opts options, out io.Writer) error {
	service, err := swarmsim.Start(opts.service)
	if err != nil {
		return fmt.Errorf("starting the stand-in: %w", err)
	}
	defer service.Close()

	ln, err := net.Listen("tcp", opts.control.String())
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	control := &http.Server{Handler: service.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- control.Serve(ln) }()
	defer control.Close()

	if err := startEdge(service, opts); err != nil {
		return err
	}
	defer stopEdge()

	printBanner(out, service, opts, "http://"+ln.Addr().String())
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping")
		return nil
	case err := <-served:
		return fmt.Errorf("control API: %w", err)
	}
}

// startEdge runs the edge in this process: Caddyfile.example, its
// variables set to point at service and to listen on loopback.
func startEdge(service *swarmsim.Service, opts options) error {
	for name, value := range map[string]string{
		"SWARMEDGE_SERVICE":      service.Name(),
		"SWARMEDGE_SERVICE_PORT": strconv.Itoa(int(service.Port())),
		"SWARMEDGE_RESOLVERS":    service.DNS().String(),
		// machine IDs from the edge's "overlay" address, 127.0.0.1; a /16
		// because the ID has 16 bits for it
		"SWARMEDGE_OVERLAY_CIDR": "127.0.0.0/16",
		"SWARMEDGE_HTTP_PORT":    strconv.Itoa(int(opts.edge.Port())),
		"SWARMEDGE_ADMIN":        opts.admin.String(),
		"SWARMEDGE_BIND":         opts.edge.Addr().String(),
		"SWARMEDGE_METRICS_PORT": strconv.Itoa(int(opts.metrics.Port())),
	} {
		os.Setenv(name, value)
	}
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(swarmedge.ExampleCaddyfile), map[string]any{"filename": "Caddyfile.example"})
	if err != nil {
		return fmt.Errorf("adapting Caddyfile.example: %w", err)
	}
	for _, w := range warnings {
		log.Printf("Caddyfile.example:%d: %s", w.Line, w.Message)
	}
	// a demo leaves no autosaved config behind for a later `caddy run --resume`
	var cfg caddy.Config
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		return err
	}
	persist := false
	if cfg.Admin == nil {
		cfg.Admin = new(caddy.AdminConfig)
	}
	cfg.Admin.Config = &caddy.ConfigSettings{Persist: &persist}
	if adapted, err = json.Marshal(cfg); err != nil {
		return err
	}
	if err := caddy.Load(adapted, true); err != nil {
		stopEdge() // whatever started before the failure (the admin API)
		return fmt.Errorf("starting the edge: %w", err)
	}
	return nil
}

// stopEdge stops the edge's apps and its admin API: loading a config with
// neither is the only way in-process.
func stopEdge() {
	if err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`), true); err != nil {
		log.Printf("stopping the edge: %v", err)
	}
}

// printBanner says what runs where and what to try. The test runs every
// command that starts with curl, so keep to its flags (-s, -i, -X) and to
// `| grep <text>`.
func printBanner(out io.Writer, service *swarmsim.Service, opts options, controlURL string) {
	edgeURL := "http://" + opts.edge.String()
	adminURL := "http://" + opts.admin.String()
	metricsURL := "http://" + opts.metrics.String()
	vipURL := "http://" + service.VIP().String()
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	p("swarmedge demo: the edge and a Swarm stand-in in one process (Ctrl-C stops both)")
	p("  edge      %s   Caddyfile.example, service %q on port %d", edgeURL, service.Name(), service.Port())
	p("  admin     %s", adminURL)
	p("  metrics   %s/metrics", metricsURL)
	p("  tasks     %d on 127.0.10.x:%d, each answering with its name", len(service.Tasks()), service.Port())
	p("  VIP       %s   (like IPVS: one task per TCP connection)", vipURL)
	p("  DNS       %s   tasks.%s, like Docker's 127.0.0.11", service.DNS(), service.Name())
	p("  control   %s", controlURL)
	p("")
	p("Sonyflake IDs (JSON, text, several):")
	p("  curl -s %s/id", edgeURL)
	p("  curl -s '%s/id?format=text'", edgeURL)
	p("  curl -s '%s/id?count=3'", edgeURL)
	p("  go run ./cmd/caddy sonyflake decode $(curl -s '%s/id?format=text')", edgeURL)
	p("")
	p("One keep-alive connection through the edge: requests spread over the tasks")
	p("  curl -s %s", strings.TrimSpace(strings.Repeat(edgeURL+"/ ", 6)))
	p("The same through the VIP: every request on the connection hits one task")
	p("  curl -s %s", strings.TrimSpace(strings.Repeat(vipURL+"/ ", 6)))
	p("Requests per task so far, and what the edge knows:")
	p("  curl -s %s/counts", controlURL)
	p("  curl -s %s/swarm/upstreams", adminURL)
	p("The plugin's metrics (IDs minted, DNS refreshes, …), beside Caddy's on /metrics:")
	p("  curl -s %s/metrics | grep swarmedge_", metricsURL)
	p("")
	p("Change the service (then repeat the commands above; the edge logs what it sees):")
	p("  curl -s -X POST '%s/scale?n=8'", controlURL)
	p("  curl -s -X POST '%s/kill?task=2&dns=keep'    # dead, still in DNS: retried elsewhere", controlURL)
	p("  curl -s -X POST '%s/dns?fault=drop'          # DNS answers nothing: the last tasks are kept", controlURL)
	p("  curl -s -X POST '%s/dns?fault=none'", controlURL)
	p("  curl -s -X POST '%s/scale?n=0'               # once DNS confirms (2 answers): 503 at once", controlURL)
	p("  curl -s -i %s/", edgeURL)
	p("  curl -s -X POST '%s/scale?n=5'", controlURL)
	p("")
	p(bannerEnd)
}

// bannerEnd is the banner's last line.
const bannerEnd = "Ctrl-C stops the demo."
