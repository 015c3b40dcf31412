package sonyflake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// FuzzParseIDRequest: any query and Accept header give either a reason or
// a request within the limits; text only when the query or Accept asks for
// it; an exact application/json range added to Accept always wins over
// text/plain (equal or higher q).
func FuzzParseIDRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, rawQuery, accept string) {
		r := httptest.NewRequest(http.MethodGet, "/id", nil)
		r.URL.RawQuery = rawQuery
		r.Header["Accept"] = []string{accept}
		req, reason := parseIDRequest(r)
		if reason != "" {
			if strings.ContainsAny(reason, "\r\n") {
				t.Fatalf("reason %q is not one line", reason)
			}
			return
		}
		if req.count < 1 || req.count > maxCount || !req.batch && req.count != 1 {
			t.Fatalf("query %q: %+v out of limits", rawQuery, req)
		}
		query, _ := url.ParseQuery(rawQuery)
		format, formatGiven := query["format"]
		if req.text && !formatGiven && !strings.Contains(strings.ToLower(accept), "text/") {
			t.Fatalf("Accept %q gave text without naming a text type", accept)
		}
		if formatGiven && req.text != (format[0] == "text") {
			t.Fatalf("format %q, text %v", format, req.text)
		}
		if prefersText([]string{accept + ", application/json"}) {
			t.Fatalf("Accept %q plus application/json (q=1) still prefers text", accept)
		}
	})
}

// FuzzDecodeID: for any layout the flags allow and any argument, decodeID
// either names the argument in its error or returns fields that compose back
// to the ID the argument spells, and the whole command does not fail.
func FuzzDecodeID(f *testing.F) {
	f.Fuzz(func(t *testing.T, arg, startTime, timeUnit string, sequenceBits, machineIDBits int) {
		flags := newDecodeCommand().Flags()
		for name, value := range map[string]string{
			"start-time": startTime, "time-unit": timeUnit,
			"sequence-bits": strconv.Itoa(sequenceBits), "machine-id-bits": strconv.Itoa(machineIDBits),
		} {
			if err := flags.Set(name, value); err != nil {
				t.Fatal(err)
			}
		}
		l, err := layoutFromFlags(flags)
		if err != nil {
			return
		}
		parts, err := decodeID(l, arg)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(arg)) {
				t.Fatalf("error %q does not name the ID %q", err, arg)
			}
			return
		}
		id, perr := strconv.ParseInt(arg, 10, 64)
		if perr != nil || id != parts.ID || id < 0 {
			t.Fatalf("%q decoded as %d", arg, parts.ID)
		}
		if l.compose(parts.Time, parts.Sequence, parts.MachineID) != id || parts.MSB != 0 ||
			parts.Sequence > l.maxSequence() || parts.MachineID >= 1<<l.machineIDBits || parts.Time > l.maxUnits() {
			t.Fatalf("%d in %+v: fields %+v do not compose back", id, l, parts)
		}
		var out strings.Builder
		if err := decodeIDs(&out, flags, []string{arg}); err != nil || strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("decodeIDs(%q): %v, output %q", arg, err, out.String())
		}
	})
}

var incomingIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// FuzzValidIncomingID: an incoming ID is kept exactly when it is 1 to 128
// characters of [A-Za-z0-9._:-], and a kept one is a valid header value.
func FuzzValidIncomingID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		valid := validIncomingID(id)
		if valid != incomingIDPattern.MatchString(id) {
			t.Fatalf("validIncomingID(%q) = %v, the pattern says otherwise", id, valid)
		}
		if valid && !httpguts.ValidHeaderFieldValue(id) {
			t.Fatalf("%q kept but not a valid header value", id)
		}
	})
}
