package swarm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// taskAnswer packs an answer to "tasks.app." qtype holding addrs in the
// given order, as dnsmasq (compress: owner names point to the question;
// edns: an OPT record) or Docker's embedded DNS (neither) would.
func taskAnswer(t testing.TB, id uint16, qtype uint16, ttl uint32, compress, edns bool, addrs ...string) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion("tasks.app.", qtype)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Id, m.Compress = id, compress
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: "tasks.app.", Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
		if qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: netip.MustParseAddr(a).AsSlice()})
		} else {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: netip.MustParseAddr(a).AsSlice()})
		}
	}
	if edns {
		m.SetEdns0(ednsUDPSize, false)
	}
	packed, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return packed
}

// taskAddrs returns n addresses of the given family.
func taskAddrs(n int, v6 bool) []string {
	addrs := make([]string, n)
	for i := range addrs {
		if v6 {
			addrs[i] = fmt.Sprintf("fd00::%x", i+1)
		} else {
			addrs[i] = fmt.Sprintf("10.0.%d.%d", i/200, i%200+1)
		}
	}
	return addrs
}

// canonical returns canonicalizeAnswer's form of a copy of msg.
func canonical(msg []byte) ([]byte, bool) {
	c := bytes.Clone(msg)
	plain := canonicalizeAnswer(c)
	return c, plain
}

func TestSwarmCanonicalAnswerIgnoresOrderTTLAndID(t *testing.T) {
	for _, tc := range []struct {
		name           string
		qtype          uint16
		compress, edns bool
	}{
		{"dnsmasq A", dns.TypeA, true, true},
		{"dnsmasq AAAA", dns.TypeAAAA, true, true},
		{"Docker A", dns.TypeA, false, false},
		{"Docker AAAA", dns.TypeAAAA, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for _, n := range []int{1, 2, 20, 70} {
				addrs := taskAddrs(n, tc.qtype == dns.TypeAAAA)
				want, plain := canonical(taskAnswer(t, 1, tc.qtype, 600, tc.compress, tc.edns, addrs...))
				if !plain {
					t.Fatalf("%d records: not recognised as plain", n)
				}
				for round := range 20 {
					shuffled := slices.Clone(addrs)
					if round%2 == 0 {
						shuffled = append(shuffled[round%n:], shuffled[:round%n]...) // rotated, as dnsmasq does
					} else {
						rng.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
					}
					got, _ := canonical(taskAnswer(t, uint16(rng.Uint32()), tc.qtype, rng.Uint32(), tc.compress, tc.edns, shuffled...))
					if !bytes.Equal(got[2:], want[2:]) {
						t.Fatalf("%d records %v: canonical form\n%x\nwant\n%x", n, shuffled, got, want)
					}
				}
				changed := slices.Clone(addrs)
				changed[n-1] = taskAddrs(n+1, tc.qtype == dns.TypeAAAA)[n]
				if got, _ := canonical(taskAnswer(t, 1, tc.qtype, 600, tc.compress, tc.edns, changed...)); bytes.Equal(got, want) {
					t.Fatalf("%d records: a changed address has the same canonical form", n)
				}
				if got, _ := canonical(taskAnswer(t, 1, tc.qtype, 600, tc.compress, tc.edns, addrs[:n-1]...)); bytes.Equal(got, want) {
					t.Fatalf("%d records: one record fewer has the same canonical form", n)
				}
			}
		})
	}
}

// TestSwarmCanonicalAnswerLeavesOtherAnswersInOrder checks that answers
// whose records could mean something else in another order (or that do
// not even unpack) are left as they are.
func TestSwarmCanonicalAnswerLeavesOtherAnswersInOrder(t *testing.T) {
	const qname = "tasks.app."
	a := func(name, ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 600}, A: netip.MustParseAddr(ip).AsSlice()}
	}
	aaaa := func(name, ip string) dns.RR {
		return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 600}, AAAA: netip.MustParseAddr(ip).AsSlice()}
	}
	cname := func(name, target string) dns.RR {
		return &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 600}, Target: target}
	}
	reply := func(edit func(m *dns.Msg)) []byte {
		q := new(dns.Msg)
		q.SetQuestion(qname, dns.TypeA)
		m := new(dns.Msg)
		m.SetReply(q)
		m.Id, m.Compress = 0x1234, true
		edit(m)
		packed, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return packed
	}
	plain := reply(func(m *dns.Msg) { m.Answer = []dns.RR{a(qname, "10.0.0.2"), a(qname, "10.0.0.1")} })
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"cname chain", reply(func(m *dns.Msg) {
			m.Answer = []dns.RR{cname(qname, "b.example."), a("b.example.", "10.0.0.2"), a("b.example.", "10.0.0.1")}
		})},
		{"records of another name", reply(func(m *dns.Msg) {
			m.Answer = []dns.RR{a(qname, "10.0.0.2"), a("other.example.", "10.0.0.1")}
		})},
		{"owner names in two forms", reply(func(m *dns.Msg) {
			m.Compress = false
			m.Answer = []dns.RR{a(qname, "10.0.0.2"), a("TASKS.APP.", "10.0.0.1")}
		})},
		{"A and AAAA records", reply(func(m *dns.Msg) { m.Answer = []dns.RR{a(qname, "10.0.0.2"), aaaa(qname, "fd00::1")} })},
		{"AAAA records to an A question", reply(func(m *dns.Msg) { m.Answer = []dns.RR{aaaa(qname, "fd00::2"), aaaa(qname, "fd00::1")} })},
		{"authority section", reply(func(m *dns.Msg) {
			m.Answer = []dns.RR{a(qname, "10.0.0.2"), a(qname, "10.0.0.1")}
			m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeNS, Class: dns.ClassINET}, Ns: "ns.example."}}
		})},
		{"additional record other than OPT", reply(func(m *dns.Msg) {
			m.Answer = []dns.RR{a(qname, "10.0.0.2"), a(qname, "10.0.0.1")}
			m.Extra = []dns.RR{a("ns.example.", "10.9.9.9")}
		})},
		{"cut mid-record", plain[:len(plain)-2]},
		{"bytes after the last record", append(bytes.Clone(plain), 0)},
		{"no answer", reply(func(m *dns.Msg) {})},
		{"header only", plain[:headerLen]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, isPlain := canonical(tc.msg)
			if isPlain {
				t.Fatal("taken as plain")
			}
			if !bytes.Equal(got, tc.msg) {
				t.Fatalf("changed:\n%x\nwas\n%x", got, tc.msg)
			}
		})
	}
}

// TestSwarmReadTakesARotatedAnswerAsUnchanged checks the client's
// shortcut end to end: a rotated answer is served from the last answer
// without allocating, and any change is read afresh, CNAME chains and
// truncated answers included.
func TestSwarmReadTakesARotatedAnswerAsUnchanged(t *testing.T) {
	c := newDNSClient("tasks.app", []uint16{dns.TypeA}, []string{"127.0.0.1:53"})
	key := answerKey{0, dns.TypeA}
	addrs := taskAddrs(20, false)
	first, result, err := c.read(taskAnswer(t, 1, dns.TypeA, 0, true, true, addrs...), key)
	if result != resultOK || err != nil || len(first) != 20 {
		t.Fatalf("first answer: %q %v, %d addresses", result, err, len(first))
	}
	rotated := taskAnswer(t, 2, dns.TypeA, 0, true, true, append(addrs[7:], addrs[:7]...)...)
	buf := make([]byte, len(rotated))
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, rotated)
		again, _, _ := c.read(buf, key)
		if &again[0] != &first[0] {
			t.Fatal("a rotated answer was read afresh")
		}
	})
	if allocs != 0 {
		t.Fatalf("a rotated answer cost %v allocations", allocs)
	}

	changed, _, _ := c.read(taskAnswer(t, 3, dns.TypeA, 0, true, true, append(addrs[1:], "10.0.9.9")...), key)
	if len(changed) != 20 || changed[len(changed)-1] != netip.MustParseAddr("10.0.9.9") || changed[0] != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("a changed answer read as %v", changed)
	}

	// a CNAME chain whose records change places: read afresh each time,
	// and right each time
	chain := func(order ...int) []byte {
		rrs := []dns.RR{
			&dns.CNAME{Hdr: dns.RR_Header{Name: "tasks.app.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "b.example."},
			&dns.A{Hdr: dns.RR_Header{Name: "b.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: netip.MustParseAddr("10.0.0.7").AsSlice()},
			&dns.A{Hdr: dns.RR_Header{Name: "c.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: netip.MustParseAddr("10.0.0.8").AsSlice()},
		}
		m := new(dns.Msg)
		m.SetQuestion("tasks.app.", dns.TypeA)
		m.Response, m.Compress = true, true
		for _, i := range order {
			m.Answer = append(m.Answer, rrs[i])
		}
		packed, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return packed
	}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}} {
		got, result, err := c.read(chain(order...), key)
		if result != resultOK || err != nil || !slices.Equal(got, []netip.Addr{netip.MustParseAddr("10.0.0.7")}) {
			t.Fatalf("CNAME chain in order %v: %q %v %v", order, result, err, got)
		}
	}
}

// BenchmarkReadRotatedAnswer is the client's reading of an unchanged
// 20-task answer that dnsmasq rotated: the part of an idle refresh that
// grows with the tasks.
func BenchmarkReadRotatedAnswer(b *testing.B) {
	c := newDNSClient("tasks.app", []uint16{dns.TypeA}, []string{"127.0.0.1:53"})
	key := answerKey{0, dns.TypeA}
	addrs := taskAddrs(20, false)
	answers := make([][]byte, len(addrs))
	for i := range answers {
		answers[i] = taskAnswer(b, uint16(i), dns.TypeA, 0, true, true, append(addrs[i:], addrs[:i]...)...)
	}
	buf := make([]byte, len(answers[0]))
	c.read(bytes.Clone(answers[0]), key)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		copy(buf, answers[i%len(answers)])
		i++
		if _, result, _ := c.read(buf, key); result != resultOK {
			b.Fatal(result)
		}
	}
}
