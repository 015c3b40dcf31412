package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/swarmedge/swarmedge/caddymodule/sonyflake"
)

const (
	// doctorDeadline bounds a whole run, also with DNS black-holed.
	doctorDeadline = 10 * time.Second
	// doctorCheckTimeout bounds one query or admin request.
	doctorCheckTimeout = 2 * time.Second
)

// newDoctorCommand is `caddy swarm doctor`.
func newDoctorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor [--admin <addr>] [--json] [--resolv-conf <file>] [<service>...]",
		Short: "Checks the edge's view of the Swarm: DNS, tasks, machine ID, sockets, clock",
		Long: `Runs, from inside an edge container with no shell, the network checks one
does by hand with cat /etc/resolv.conf, nslookup, netstat and strace:

  resolv.conf     the nameservers, ndots and search domains in use, and
                  whether Docker's embedded DNS (127.0.0.11) is among them
  dns             per service: tasks.<service> over UDP and over TCP (latency,
                  answer count, TC bit, TTL), whether the two agree, and the
                  plain <service> name (a VIP, or the tasks: endpoint mode)
  edge            what the running edge serves per service (admin endpoint
                  /swarm/upstreams) against what DNS says now
  machine-id      the machine ID the config picks here, from which address,
                  and whether another node could pick the same
  listen          the config's ports (HTTP servers, admin) in LISTEN state
  clock           the wall clock against the time of the last minted ID

The services default to those of the running config; give names to check
others (or when no admin API answers). Each finding is one line: ok, warn or
fail, and for the last two what to do. Exit code: 0 all ok, 1 a warning,
2 a failure. The whole run ends within about 10 s.`,
		Example: `docker exec <edge container> /usr/bin/caddy swarm doctor
docker exec <edge container> /usr/bin/caddy swarm doctor --json app`,
		RunE: caddycmd.WrapCommandFuncForCobra(func(fl caddycmd.Flags) (int, error) {
			env := doctorEnv{
				admin:      fl.String("admin"),
				resolvConf: fl.String("resolv-conf"),
				procNet:    []string{"/proc/net/tcp", "/proc/net/tcp6"},
				client:     &http.Client{Timeout: doctorCheckTimeout},
				now:        time.Now,
				machineID:  sonyflake.ExplainMachineID,
			}
			ctx, cancel := context.WithTimeout(context.Background(), doctorDeadline)
			defer cancel()
			findings := env.run(ctx, fl.Args())
			if err := writeFindings(os.Stdout, findings, fl.Bool("json")); err != nil {
				return caddy.ExitCodeFailedQuit, err
			}
			return exitStatus(findings)
		}),
	}
	cmd.Flags().String("admin", caddy.DefaultAdminListen, "the edge's admin API address; empty: none")
	cmd.Flags().Bool("json", false, "print one JSON object per finding")
	cmd.Flags().String("resolv-conf", resolvConfPath, "the resolv.conf to check")
	return cmd
}

// exitStatus is 0 with every finding ok, 1 with a warning, 2 with a
// failure; the error says how many (Caddy's command runner needs one
// for a non-zero status).
func exitStatus(findings []finding) (int, error) {
	var counts [3]int
	for _, f := range findings {
		counts[f.Verdict]++
	}
	switch {
	case counts[verdictFail] > 0:
		return 2, fmt.Errorf("doctor: %d failed, %d warnings", counts[verdictFail], counts[verdictWarn])
	case counts[verdictWarn] > 0:
		return 1, fmt.Errorf("doctor: %d warnings", counts[verdictWarn])
	}
	return 0, nil
}

// writeFindings prints one line per finding, with the fix indented
// below it; asJSON prints one JSON object per line instead.
func writeFindings(w io.Writer, findings []finding, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, f := range findings {
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
		return nil
	}
	var b strings.Builder
	for _, f := range findings {
		fmt.Fprintf(&b, "%-4s  %s: %s\n", f.Verdict, f.Check, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(&b, "      -> %s\n", f.Fix)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// doctorEnv is where the doctor reads from; tests point it at fakes.
type doctorEnv struct {
	admin      string // the admin API's address; empty: none
	resolvConf string
	procNet    []string
	client     *http.Client
	now        func() time.Time
	machineID  func(appJSON []byte) (sonyflake.MachineIDExplanation, error)
}

// edgeConfig is what the doctor reads of the running config.
type edgeConfig struct {
	Admin struct {
		Listen string `json:"listen"`
	} `json:"admin"`
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string `json:"listen"`
			} `json:"servers"`
		} `json:"http"`
		Sonyflake json.RawMessage `json:"sonyflake"`
	} `json:"apps"`
}

// run performs every check and returns the findings in report order.
func (e doctorEnv) run(ctx context.Context, services []string) []finding {
	resolv, systemServers := e.readResolvConf()
	findings := []finding{resolv}

	cfg, edge, adminFinding := e.readEdge(ctx, len(services) > 0)
	findings = append(findings, adminFinding)
	if len(services) == 0 {
		for _, s := range edge {
			services = append(services, s.Name)
		}
	}
	findings = append(findings, e.checkServices(ctx, services, edge, systemServers)...)
	findings = append(findings, e.checkMachineID(cfg))
	if cfg != nil {
		findings = append(findings, e.checkListening(cfg)...)
		findings = append(findings, e.checkIDClock(ctx))
	}
	return findings
}

// readResolvConf checks the resolv.conf in use and returns its servers
// as host:port.
func (e doctorEnv) readResolvConf() (finding, []string) {
	text, err := os.ReadFile(e.resolvConf)
	if err != nil {
		return finding{Check: "resolv.conf", Verdict: verdictFail, Detail: err.Error(),
			Fix: "the system resolver is unknown: set `resolvers` in dynamic swarm"}, nil
	}
	return checkResolvConf(string(text))
}

// readEdge reads the running config and the discovery state from the
// admin API. servicesGiven makes an unreachable admin API a warning
// rather than a failure: the doctor still has services to check.
func (e doctorEnv) readEdge(ctx context.Context, servicesGiven bool) (*edgeConfig, []edgeService, finding) {
	f := finding{Check: "admin " + e.admin}
	if e.admin == "" {
		f.Verdict = verdictWarn
		f.Detail = "no admin API given: the running edge's state is not checked"
		f.Fix = "give --admin <addr> (the edge's admin listen address)"
		return nil, nil, f
	}
	var cfg edgeConfig
	if err := e.getJSON(ctx, "/config/", &cfg); err != nil {
		f.Verdict = verdictWarn
		f.Detail = err.Error()
		f.Fix = "the running edge's state is not checked: is the edge up, and is its admin API at this address (--admin)?"
		if !servicesGiven {
			f.Verdict = verdictFail
			f.Fix += " With no admin API, name the services to check: caddy swarm doctor <service>..."
		}
		return nil, nil, f
	}
	var edge []edgeService
	if err := e.getJSON(ctx, "/swarm/upstreams", &edge); err != nil {
		f.Verdict = verdictWarn
		f.Detail = "config read, but /swarm/upstreams: " + err.Error()
		f.Fix = "this edge has no swarm module: build it with the swarmedge plugin"
		return &cfg, nil, f
	}
	f.Detail = fmt.Sprintf("answers; the config has %d swarm upstream sources", len(edge))
	return &cfg, edge, f
}

// getJSON GETs path from the admin API and decodes the answer into v.
func (e doctorEnv) getJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, doctorCheckTimeout)
	defer cancel()
	url := "http://" + strings.TrimPrefix(e.admin, "tcp/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %v", url, err)
	}
	return nil
}

// checkServices runs the DNS and edge checks of every service at once,
// so that a black-holed resolver costs one timeout, not one per service.
func (e doctorEnv) checkServices(ctx context.Context, services []string, edge []edgeService, systemServers []string) []finding {
	results := make([][]finding, len(services))
	var wg sync.WaitGroup
	for i, svc := range services {
		wg.Go(func() {
			n := namesFor(svc)
			pools := poolsNamed(edge, n.tasks)
			servers := systemServers
			if len(pools) > 0 && len(pools[0].Resolvers) > 0 {
				servers = pools[0].Resolvers
			}
			results[i] = e.checkService(ctx, n, servers, pools)
		})
	}
	wg.Wait()
	return slices.Concat(results...)
}

// checkService asks the first server for one service's names and
// compares the answer with what the edge serves.
func (e doctorEnv) checkService(ctx context.Context, n taskNames, servers []string, pools []edgeService) []finding {
	if len(servers) == 0 {
		return []finding{{Check: "dns " + n.tasks, Verdict: verdictFail, Detail: "no DNS server to ask",
			Fix: "resolv.conf has no nameserver and the edge names no resolvers"}}
	}
	server := servers[0]
	udp, udpErr := queryOnce(ctx, server, "udp", n.tasks, doctorCheckTimeout)
	tcp, tcpErr := queryOnce(ctx, server, "tcp", n.tasks, doctorCheckTimeout)
	findings := []finding{
		checkTaskName(n, "udp", server, udp, udpErr),
		checkTaskName(n, "tcp", server, tcp, tcpErr),
	}
	var dnsNow []netip.Addr
	if udpErr == nil && tcpErr == nil && udp.rcode == dns.RcodeSuccess && tcp.rcode == dns.RcodeSuccess {
		findings = append(findings, checkTransportsAgree(n, udp, tcp))
		dnsNow = tcp.addrs
	}
	plain, plainErr := queryOnce(ctx, server, "udp", n.service, doctorCheckTimeout)
	findings = append(findings, checkServiceName(n, server, plain, tcp, plainErr))
	for _, p := range pools {
		findings = append(findings, checkEdgeBelief(p, dnsNow, e.now()))
	}
	return findings
}

// poolsNamed returns the edge's pools that look name up.
func poolsNamed(edge []edgeService, name string) []edgeService {
	var out []edgeService
	for _, s := range edge {
		if strings.EqualFold(s.Name, name) {
			out = append(out, s)
		}
	}
	return out
}

// checkMachineID explains the machine ID that the running config (or,
// without one, the defaults) picks on this host.
func (e doctorEnv) checkMachineID(cfg *edgeConfig) finding {
	f := finding{Check: "machine-id"}
	var appJSON []byte
	if cfg != nil {
		appJSON = cfg.Apps.Sonyflake
	}
	exp, err := e.machineID(appJSON)
	if err != nil {
		f.Verdict = verdictFail
		f.Detail = err.Error()
		f.Fix = "the edge refuses to start without a machine ID: see the message"
		return f
	}
	f.Detail = fmt.Sprintf("%d from %s; private addresses here: %s", exp.ID, exp.Source, exp.Candidates)
	if cfg == nil {
		f.Detail += " (default settings: no running config read)"
	}
	if exp.Warning != "" {
		f.Verdict = verdictWarn
		f.Fix = exp.Warning
	}
	return f
}

// checkListening checks the config's HTTP and admin ports against the
// sockets in LISTEN state.
func (e doctorEnv) checkListening(cfg *edgeConfig) []finding {
	want := map[string]uint16{}
	var bad []string
	add := func(name, addr string) {
		if port, err := portOf(addr); err == nil {
			want[name] = port
		} else {
			bad = append(bad, err.Error())
		}
	}
	if e.admin != "" {
		add("admin", e.admin)
	}
	for name, srv := range cfg.Apps.HTTP.Servers {
		for _, addr := range srv.Listen {
			add(fmt.Sprintf("%s %s", name, addr), addr)
		}
	}
	listening := map[uint16]bool{}
	for _, path := range e.procNet {
		text, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return []finding{{Check: "listen", Verdict: verdictWarn, Detail: err.Error(), Fix: "sockets not checked"}}
		}
		ports, err := listeningPorts(string(text))
		if err != nil {
			return []finding{{Check: "listen", Verdict: verdictWarn, Detail: fmt.Sprintf("%s: %v", path, err), Fix: "sockets not checked"}}
		}
		for p := range ports {
			listening[p] = true
		}
	}
	findings := checkListeners(want, listening)
	for _, b := range bad {
		findings = append(findings, finding{Check: "listen", Verdict: verdictWarn, Detail: b, Fix: "a listen address the doctor cannot read: check it by hand"})
	}
	return findings
}

// checkIDClock reads the time of the newest ID any generator handed out
// from the admin API.
func (e doctorEnv) checkIDClock(ctx context.Context) finding {
	var generators []struct {
		LastIDTime time.Time `json:"last_id_time"`
	}
	if err := e.getJSON(ctx, "/sonyflake/state", &generators); err != nil {
		return finding{Check: "clock", Verdict: verdictWarn, Detail: err.Error(), Fix: "the IDs' time is unknown: this edge has no sonyflake admin endpoint"}
	}
	var newest time.Time
	for _, g := range generators {
		if g.LastIDTime.After(newest) {
			newest = g.LastIDTime
		}
	}
	return checkClock(e.now(), newest)
}
