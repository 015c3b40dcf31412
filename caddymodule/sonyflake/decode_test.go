package sonyflake

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runDecode runs `caddy sonyflake decode` with args and returns its output.
func runDecode(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newDecodeCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestDecodeDefaultLayout(t *testing.T) {
	// From titpetric/sonyflake's README: time 7962703203, machine 11, sequence 5.
	out, err := runDecode(t, "133591991580950539", "134164003092955146")
	if err != nil {
		t.Fatal(err)
	}
	want := "133591991580950539 time=2017-03-10T14:37:12.03Z machine-id=11 sequence=5\n" +
		"134164003092955146 time=2017-03-14T13:19:37.46Z machine-id=10 sequence=0\n"
	if out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
	lib := librarySonyflake(t, defaultLayout, 11)
	if got := lib.ToTime(133591991580950539).UTC().Format(rfc3339At(defaultTimeUnit)); !strings.Contains(out, got) {
		t.Errorf("the library dates it %s", got)
	}
}

func TestDecodeLayoutFromFlags(t *testing.T) {
	l := newLayout(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Second, 12, 10)
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	id, err := librarySonyflake(t, l, 513).Compose(at, 77, 513)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runDecode(t, "--start-time", "2025-01-01T00:00:00Z", "--time-unit", "1s", "--sequence-bits", "12", "--machine-id-bits", "10", "--", strconv.FormatInt(id, 10))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(id, 10) + " time=2026-05-06T07:08:09Z machine-id=513 sequence=77\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

func TestDecodePrecisionFollowsTheUnit(t *testing.T) {
	for unit, want := range map[time.Duration]string{
		time.Second:            "2006-01-02T15:04:05Z07:00",
		100 * time.Millisecond: "2006-01-02T15:04:05.0Z07:00",
		10 * time.Millisecond:  "2006-01-02T15:04:05.00Z07:00",
		7 * time.Millisecond:   "2006-01-02T15:04:05.000Z07:00",
		time.Minute:            "2006-01-02T15:04:05Z07:00",
	} {
		if got := rfc3339At(unit); got != want {
			t.Errorf("rfc3339At(%s) = %q, want %q", unit, got, want)
		}
	}
}

func TestDecodeRefusesBadIDs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"abc"}, `ID "abc": not a decimal number`},
		{[]string{"12e3"}, `ID "12e3": not a decimal number`},
		{[]string{"--", "-5"}, `ID "-5": negative`},
		{[]string{"9223372036854775808"}, `ID "9223372036854775808": larger than 9223372036854775807`},
		// 2^34 one-second units overflow what a date from start can reach.
		{[]string{"--time-unit", "1s", "--sequence-bits", "13", "9223372036854775807"}, `ID "9223372036854775807": its time field 17179869183 is beyond this layout's time range`},
	} {
		out, err := runDecode(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
		if out != "" {
			t.Errorf("%v: printed %q for a bad ID", tc.args, out)
		}
	}
}

func TestDecodePrintsGoodIDsAndReportsEveryBadOne(t *testing.T) {
	out, err := runDecode(t, "x", "134164003092955146", "y")
	if !strings.HasPrefix(out, "134164003092955146 ") || strings.Count(out, "\n") != 1 {
		t.Errorf("output %q, want the good ID's line", out)
	}
	if err == nil || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("error %v, want one naming both bad IDs", err)
	}
}

func TestDecodeRefusesBadLayoutFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--start-time", "2025-01-01", "1"}, "--start-time"},
		{[]string{"--time-unit", "ten", "1"}, "--time-unit"},
		{[]string{"--time-unit", "100us", "1"}, "time_unit 100µs: must be at least 1ms"},
		{[]string{"--sequence-bits", "20", "--machine-id-bits", "20", "1"}, "together they must be at most 31"},
		{[]string{"--sequence-bits", "0", "1"}, "--sequence-bits 0: must not be 0"},
		{[]string{"--machine-id-bits", "0", "1"}, "--machine-id-bits 0: must not be 0"},
		{[]string{"--time-unit", "0s", "1"}, "--time-unit 0: must not be 0"},
		{[]string{}, "requires at least 1 arg"},
	} {
		_, err := runDecode(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
