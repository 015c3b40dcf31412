package swarm

import (
	"bytes"
	"encoding/binary"

	"github.com/miekg/dns"
)

// DNS wire-format sizes used by canonicalizeAnswer.
const (
	headerLen       = 12
	questionPointer = 0xc000 | headerLen // a compressed name: the question's
	rrFixedLen      = 2 + 2 + 4 + 2      // type, class, TTL, RDLENGTH: after the owner name
	maxNameLen      = 255
)

// canonicalizeAnswer rewrites a UDP answer in place into a form in which
// answers that mean the same compare equal byte for byte (but for the
// message ID, which it leaves): when the answer is plain, its records'
// TTLs are zeroed and the records sorted. Servers rotate or shuffle the
// records of a name on every answer (dnsmasq, Docker's embedded DNS), so
// without this every answer would look changed and be unpacked again. It
// allocates nothing and reports whether the answer was plain.
//
// Plain is the form those servers send: one question, for A or AAAA, with
// an uncompressed name; an answer section of records of that type only,
// each owned by the question's name in one form for all (a pointer to the
// question, as dnsmasq writes it, or the same bytes again, as Docker
// does), with an address-sized RDATA; no authority section; at most an
// OPT record (root name) in the additional section; nothing after. Such
// records hold no name the rest of the message points into, so neither
// their order nor their TTLs change the addresses and result readAnswer
// finds (only an error describing unusable records shows TTLs). Any other
// answer, a CNAME chain among them, is left as it is.
func canonicalizeAnswer(msg []byte) bool {
	recs, ok := findPlainRecords(msg)
	if !ok {
		return false
	}
	records := msg[recs.start : recs.start+recs.size*recs.count]
	for i := 0; i < len(records); i += recs.size {
		ttl := i + recs.ownerLen + 4
		clear(records[ttl : ttl+4])
	}
	sortRecords(records, recs.size)
	return true
}

// plainRecords locates a plain answer's records (see canonicalizeAnswer).
type plainRecords struct {
	start    int // offset of the first
	count    int
	size     int // of each, in bytes
	ownerLen int // of each one's owner name
}

// findPlainRecords finds the records of a plain answer; false means the
// answer is not plain.
func findPlainRecords(msg []byte) (plainRecords, bool) {
	var recs plainRecords
	if len(msg) < headerLen {
		return recs, false
	}
	qdcount := binary.BigEndian.Uint16(msg[4:])
	recs.count = int(binary.BigEndian.Uint16(msg[6:]))
	nscount := binary.BigEndian.Uint16(msg[8:])
	arcount := binary.BigEndian.Uint16(msg[10:])
	if qdcount != 1 || recs.count == 0 || nscount != 0 || arcount > 1 {
		return recs, false
	}
	qnameEnd, ok := skipUncompressedName(msg, headerLen)
	if !ok {
		return recs, false
	}
	qname := msg[headerLen:qnameEnd]
	recs.start = qnameEnd + 4 // QTYPE, QCLASS
	switch {
	case recs.start+2 <= len(msg) && binary.BigEndian.Uint16(msg[recs.start:]) == questionPointer:
		recs.ownerLen = 2
	case bytes.HasPrefix(msg[min(recs.start, len(msg)):], qname):
		recs.ownerLen = len(qname)
	default:
		return recs, false
	}
	typeAt := recs.start + recs.ownerLen
	if typeAt+rrFixedLen > len(msg) {
		return recs, false
	}
	rrtype := binary.BigEndian.Uint16(msg[typeAt:])
	if rrtype != binary.BigEndian.Uint16(msg[qnameEnd:]) { // QTYPE
		return recs, false
	}
	switch rrtype {
	case dns.TypeA:
		recs.size = recs.ownerLen + rrFixedLen + 4
	case dns.TypeAAAA:
		recs.size = recs.ownerLen + rrFixedLen + 16
	default:
		return recs, false
	}
	owner := msg[recs.start:typeAt]
	off := recs.start
	for range recs.count {
		if off+recs.size > len(msg) ||
			!bytes.Equal(msg[off:off+recs.ownerLen], owner) ||
			binary.BigEndian.Uint16(msg[off+recs.ownerLen:]) != rrtype ||
			int(binary.BigEndian.Uint16(msg[off+recs.ownerLen+rrFixedLen-2:])) != recs.size-recs.ownerLen-rrFixedLen {
			return recs, false
		}
		off += recs.size
	}
	if arcount == 1 && !isOPTRecordAt(msg, off) || arcount == 0 && off != len(msg) {
		return recs, false
	}
	return recs, true
}

// skipUncompressedName returns the offset after the name at off, which
// must be a sequence of labels without compression, of at most
// maxNameLen bytes.
func skipUncompressedName(msg []byte, off int) (int, bool) {
	for start := off; off < len(msg) && off-start < maxNameLen; {
		n := int(msg[off])
		switch {
		case n == 0:
			return off + 1, true
		case n > 63: // a pointer or a reserved label type
			return 0, false
		}
		off += 1 + n
	}
	return 0, false
}

// isOPTRecordAt reports whether msg ends with one OPT record (root name)
// at off. Its RDATA holds EDNS options, no names.
func isOPTRecordAt(msg []byte, off int) bool {
	const optFixedLen = 1 + 2 + 2 + 4 + 2 // root name, type, class, TTL, RDLENGTH
	if off+optFixedLen > len(msg) || msg[off] != 0 || binary.BigEndian.Uint16(msg[off+1:]) != dns.TypeOPT {
		return false
	}
	return off+optFixedLen+int(binary.BigEndian.Uint16(msg[off+optFixedLen-2:])) == len(msg)
}

// sortRecords sorts the equal-sized records in place by their bytes: an
// insertion sort that finds each place by binary search, allocation-free;
// a UDP answer holds at most about 70 records.
func sortRecords(records []byte, size int) {
	var tmp [maxNameLen + rrFixedLen + 16]byte
	for i := size; i < len(records); i += size {
		if bytes.Compare(records[i-size:i], records[i:i+size]) <= 0 {
			continue // in order: the common case for all but one record of a rotated answer
		}
		copy(tmp[:size], records[i:i+size])
		lo, hi := 0, i/size // the first sorted record greater than tmp is in [lo, hi]
		for lo < hi {
			mid := (lo + hi) / 2
			if bytes.Compare(records[mid*size:(mid+1)*size], tmp[:size]) > 0 {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		at := lo * size
		copy(records[at+size:i+size], records[at:i])
		copy(records[at:at+size], tmp[:size])
	}
}
