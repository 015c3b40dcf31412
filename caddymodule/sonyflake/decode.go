package sonyflake

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "sonyflake",
		Usage: "decode [--start-time <RFC3339>] [--time-unit <duration>] [--sequence-bits <n>] [--machine-id-bits <n>] <id>...",
		Short: "Works with the Sonyflake IDs that the sonyflake app mints",
		Long: `
Subcommands for Sonyflake IDs:

  decode <id>...   prints each ID's time (UTC), machine-id and sequence

The flags give the layout the IDs were minted in, as set in the global
option sonyflake; by default the layout of titpetric/sonyflake: start
2014-09-01T00:00:00Z, 10ms units, 8 sequence bits, 16 machine ID bits.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(newDecodeCommand())
		},
	})
}

// newDecodeCommand is `caddy sonyflake decode`.
func newDecodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "decode [--start-time <RFC3339>] [--time-unit <duration>] [--sequence-bits <n>] [--machine-id-bits <n>] <id>...",
		Short:   "Prints the time, machine-id and sequence of Sonyflake IDs",
		Example: "caddy sonyflake decode 134164003092955146",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true // the error is about the IDs, not the syntax
			return decodeIDs(cmd.OutOrStdout(), cmd.Flags(), args)
		},
	}
	cmd.Flags().String("start-time", defaultStartTime.Format(time.RFC3339), "the layout's start_time, RFC 3339")
	cmd.Flags().String("time-unit", defaultTimeUnit.String(), "the layout's time_unit")
	cmd.Flags().Int("sequence-bits", defaultSequenceBits, "the layout's sequence_bits")
	cmd.Flags().Int("machine-id-bits", defaultMachineIDBits, "the layout's machine_id_bits")
	return cmd
}

// decodeIDs writes one line per ID to out: the ID, its time at the unit's
// precision, its machine-id and sequence. Bad IDs are reported together in
// the error after the good ones are printed.
func decodeIDs(out io.Writer, flags *pflag.FlagSet, ids []string) error {
	l, err := layoutFromFlags(flags)
	if err != nil {
		return err
	}
	timeFormat := rfc3339At(l.unit)
	var bad []error
	for _, arg := range ids {
		parts, err := decodeID(l, arg)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		fmt.Fprintf(out, "%d time=%s machine-id=%d sequence=%d\n",
			parts.ID, l.timeOf(parts.Time).UTC().Format(timeFormat), parts.MachineID, parts.Sequence)
	}
	return errors.Join(bad...)
}

// decodeID parses and takes apart one ID, with an error that names it.
func decodeID(l layout, arg string) (idParts, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(arg, "-"):
		return idParts{}, fmt.Errorf("ID %q: larger than %d, the largest Sonyflake ID", arg, int64(math.MaxInt64))
	case err != nil:
		return idParts{}, fmt.Errorf("ID %q: not a decimal number", arg)
	case id < 0:
		return idParts{}, fmt.Errorf("ID %q: negative; Sonyflake IDs are 0 to %d", arg, int64(math.MaxInt64))
	}
	parts := l.decompose(id)
	if parts.Time > l.maxUnits() {
		return idParts{}, fmt.Errorf("ID %q: its time field %d is beyond this layout's time range (%d units of %s after %s)",
			arg, parts.Time, l.maxUnits(), l.unit, l.start.Format(time.RFC3339))
	}
	return parts, nil
}

// layoutFromFlags reads and checks the layout given by the flags.
func layoutFromFlags(flags *pflag.FlagSet) (layout, error) {
	startFlag, _ := flags.GetString("start-time")
	unitFlag, _ := flags.GetString("time-unit")
	sequenceBits, _ := flags.GetInt("sequence-bits")
	machineIDBits, _ := flags.GetInt("machine-id-bits")
	start, err := time.Parse(time.RFC3339, startFlag)
	if err != nil {
		return layout{}, fmt.Errorf("--start-time %q: want RFC 3339, e.g. 2014-09-01T00:00:00Z", startFlag)
	}
	unit, err := caddy.ParseDuration(unitFlag)
	if err != nil {
		return layout{}, fmt.Errorf("--time-unit %q: want a duration such as 10ms", unitFlag)
	}
	// newLayout would read a 0 as "the default".
	for flag, value := range map[string]int64{"--time-unit": int64(unit), "--sequence-bits": int64(sequenceBits), "--machine-id-bits": int64(machineIDBits)} {
		if value == 0 {
			return layout{}, fmt.Errorf("%s 0: must not be 0 (leave the flag out for the default)", flag)
		}
	}
	l := newLayout(start, unit, sequenceBits, machineIDBits)
	if err := l.check(0); err != nil {
		return layout{}, fmt.Errorf("the layout given by the flags: %w", err)
	}
	return l, nil
}

// rfc3339At is an RFC 3339 format with as many fractional digits as unit
// needs: none for whole seconds, two for 10ms, three for 7ms.
func rfc3339At(unit time.Duration) string {
	fraction := ""
	for step := time.Second; unit%step != 0; step /= 10 {
		fraction += "0"
	}
	if fraction != "" {
		fraction = "." + fraction
	}
	return "2006-01-02T15:04:05" + fraction + "Z07:00"
}
