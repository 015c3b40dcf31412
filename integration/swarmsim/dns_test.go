package swarmsim

import (
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

func TestDNSAnswers(t *testing.T) {
	s := startService(t, Config{Replicas: 5})
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"tasks.app", taskIPs(s, 5)},
		{"TASKS.App", taskIPs(s, 5)}, // names are case-insensitive
		{"app", []string{s.VIP().Addr().String()}},
	} {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+network, func(t *testing.T) {
				r := mustExchange(t, s, network, tc.name, 0)
				if r.Rcode != dns.RcodeSuccess {
					t.Fatalf("rcode %s, want NOERROR", dns.RcodeToString[r.Rcode])
				}
				if got := sortedAnswerAddrs(r); !slices.Equal(got, tc.want) {
					t.Errorf("answers %v, want %v", got, tc.want)
				}
				for _, rr := range r.Answer {
					if rr.Header().Ttl != 600 {
						t.Errorf("TTL %d, want 600", rr.Header().Ttl)
					}
				}
			})
		}
	}
}

func TestDNSShufflesEachAnswer(t *testing.T) {
	s := startService(t, Config{Replicas: 10})
	orders := map[string]bool{}
	for range 10 {
		orders[strings.Join(answerAddrs(mustExchange(t, s, "udp", "tasks.app", 0)), ",")] = true
	}
	// 10 answers of 10 records in one order by chance: odds of 1 in (10!)^9.
	if len(orders) < 2 {
		t.Errorf("10 answers, all in the same order: %v", orders)
	}
}

func TestDNSTruncation(t *testing.T) {
	s := startService(t, Config{Replicas: 100})
	for _, tc := range []struct {
		name          string
		network       string
		ednsSize      uint16
		wantTruncated bool
		maxSize       int
	}{
		{"UDP", "udp", 0, true, 512},
		{"UDP with EDNS0 1232", "udp", 1232, true, 1232},
		{"UDP with EDNS0 below 512", "udp", 300, true, 512},
		{"TCP", "tcp", 0, false, dns.MaxMsgSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, r := rawExchange(t, s, tc.network, "tasks.app", tc.ednsSize)
			if r.Truncated != tc.wantTruncated {
				t.Errorf("TC %v, want %v", r.Truncated, tc.wantTruncated)
			}
			if len(raw) > tc.maxSize {
				t.Errorf("answer of %d bytes, want at most %d", len(raw), tc.maxSize)
			}
			r.Compress = false
			if r.Len() != len(raw) {
				t.Errorf("answer of %d bytes, %d uncompressed: want it sent uncompressed", len(raw), r.Len())
			}
			if !tc.wantTruncated {
				if len(r.Answer) != 100 {
					t.Errorf("%d answers, want all 100", len(r.Answer))
				}
				return
			}
			// Truncated, yet as full as the size allows.
			if len(raw)+dns.Len(r.Answer[0]) <= tc.maxSize {
				t.Errorf("%d answers in %d bytes: another fits in %d", len(r.Answer), len(raw), tc.maxSize)
			}
		})
	}
}

func TestDNSSmallAnswerNotTruncated(t *testing.T) {
	s := startService(t, Config{Replicas: 10})
	r := mustExchange(t, s, "udp", "tasks.app", 0)
	if r.Truncated || len(r.Answer) != 10 {
		t.Errorf("TC %v with %d answers, want no TC and 10", r.Truncated, len(r.Answer))
	}
}

// rawExchange sends an A query and returns the answer's bytes as they
// came over the wire, and the answer.
func rawExchange(t *testing.T, s *Service, network, name string, ednsSize uint16) ([]byte, *dns.Msg) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	if ednsSize > 0 {
		q.SetEdns0(ednsSize, false)
	}
	c := dns.Client{Net: network, Timeout: 2 * time.Second}
	conn, err := c.Dial(s.DNS().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.UDPSize = dns.MaxMsgSize // read whatever the server sends, to see its size
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	raw, err := conn.ReadMsgHeader(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(raw); err != nil {
		t.Fatal(err)
	}
	return raw, r
}

// TestDNSNXDomain: a name with no task is answered NXDOMAIN only after the
// delay, as Docker forwards it first; the VIP is answered at once, while
// those queries still wait.
func TestDNSNXDomain(t *testing.T) {
	const delay = 3 * time.Second
	s := startService(t, Config{Replicas: 0, NXDomainDelay: delay})
	type answer struct {
		name  string
		rcode int
		took  time.Duration
		err   error
	}
	delayed := make(chan answer, 2)
	start := time.Now()
	for _, name := range []string{"tasks.app", "tasks.other"} { // no task; another name
		go func() {
			r, err := exchange(s, "udp", name, 0, delay+30*time.Second)
			a := answer{name: name, took: time.Since(start), err: err}
			if err == nil {
				a.rcode = r.Rcode
			}
			delayed <- a
		}()
	}
	// The VIP exists with no task: NOERROR, before the delayed answers.
	if r := mustExchange(t, s, "udp", "app", 0); r.Rcode != dns.RcodeSuccess {
		t.Errorf("app: rcode %s, want NOERROR", dns.RcodeToString[r.Rcode])
	}
	if len(delayed) > 0 {
		t.Errorf("a delayed NXDOMAIN came before the VIP's answer: %+v", <-delayed)
	}
	for range 2 {
		a := <-delayed
		if a.err != nil || a.rcode != dns.RcodeNameError || a.took < delay {
			t.Errorf("%s: rcode %s after %v (%v), want NXDOMAIN after at least the %v delay", a.name, dns.RcodeToString[a.rcode], a.took, a.err, delay)
		}
	}
}

func TestDNSFaults(t *testing.T) {
	s := startService(t, Config{Replicas: 3})
	for _, tc := range []struct {
		fault       DNSFault
		wantTimeout bool
		wantRcode   int
	}{
		{FaultDrop, true, 0},
		{FaultServFail, false, dns.RcodeServerFailure},
		{FaultNone, false, dns.RcodeSuccess},
	} {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.fault.String()+"/"+network, func(t *testing.T) {
				s.SetDNSFault(tc.fault)
				// A dropped query shows as a timeout, however short; an
				// answer may take long on a loaded machine.
				timeout := 10 * time.Second
				if tc.wantTimeout {
					timeout = 300 * time.Millisecond
				}
				r, err := exchange(s, network, "tasks.app", 0, timeout)
				if tc.wantTimeout {
					if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
						t.Errorf("got %v, %v; want a timeout", r, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != tc.wantRcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
				}
			})
		}
	}
}

func TestDNSCloseCutsNXDomainDelay(t *testing.T) {
	s := startService(t, Config{NXDomainDelay: time.Hour})
	answered := make(chan error, 1)
	go func() {
		_, err := exchange(s, "tcp", "tasks.app", 0, 5*time.Second)
		answered <- err
	}()
	testsupport.WaitFor(t, "the query waits out its NXDOMAIN delay", 30*time.Second, func() bool { return goroutineIn("(*dnsServer).wait") })
	// Close cuts the hour's wait: well within the bound on any machine.
	start := time.Now()
	s.Close()
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("Close took %s with a query waiting out its NXDOMAIN delay of an hour", took)
	}
	if err := <-answered; err == nil {
		t.Error("query answered, want the connection closed unanswered")
	}
}

// goroutineIn reports whether some goroutine is in function fn.
func goroutineIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "swarmsim."+fn)
}
