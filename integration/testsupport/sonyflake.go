package testsupport

import (
	"testing"
	"time"

	"github.com/sony/sonyflake/v2"
)

// DefaultStartTime is the plugin's default start_time (the v1 and
// titpetric/sonyflake epoch); the library's own default is 2025.
var DefaultStartTime = time.Date(2014, 9, 1, 0, 0, 0, 0, time.UTC)

// ReferenceFlake is the library's generator for a layout, the reference
// that IDs are decoded with: its Decompose and ToTime. Zero fields take the
// plugin's defaults.
func ReferenceFlake(t testing.TB, st sonyflake.Settings, machineID int) *sonyflake.Sonyflake {
	t.Helper()
	if st.StartTime.IsZero() {
		st.StartTime = DefaultStartTime
	}
	st.MachineID = func() (int, error) { return machineID, nil }
	flake, err := sonyflake.New(st)
	if err != nil {
		t.Fatal(err)
	}
	return flake
}
