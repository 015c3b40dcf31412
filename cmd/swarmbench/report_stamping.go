package main

import "fmt"

// reportStamping prints one stamping run as progress.
func reportStamping(s stampingSample) {
	fmt.Printf("  %-17s %-44s %7.0f req/s  stamped %s  failed %d  batches %.0f/s (%s IDs/s), %d shed\n", "stamping",
		ridOn+" + batches", s.ProxiedPerSec, fmtPercent(s.StampedShare), s.Failed, s.BatchesPerSec, fmtRate(s.BatchIDsPerSec), s.BatchShed)
}

func stampedShare(s stampingSample) float64   { return s.StampedShare }
func proxiedPerSec(s stampingSample) float64  { return s.ProxiedPerSec }
func batchIDsPerSec(s stampingSample) float64 { return s.BatchIDsPerSec }
func batchShed(s stampingSample) float64      { return float64(s.BatchShed) }

func writeStamping(w writer, res *results) {
	w("## 7. Stamping beside batch clients\n\n")
	w("The `request_id on` site of section 3 under %d keep-alive clients while %d more clients ask the\n", proxyConns, stampBatchClients)
	w("ID endpoint for `count=%d` in a loop on the same edge (the starvation case of issue 11). Stamped =\n", idBatch)
	w("proxied answers whose request reached the task with an `X-Request-ID` (the stand-in echoes it).\n\n")
	w("| proxied requests/s | stamped | batch IDs/s | batch answers shed (503) per run |\n| --- | --- | --- | --- |\n")
	w("| %s | %s | %s | %s |\n\n", cell(summarizeBy(res.Stamping, proxiedPerSec), fmtRate), cell(summarizeBy(res.Stamping, stampedShare), fmtPercent),
		cell(summarizeBy(res.Stamping, batchIDsPerSec), fmtRate), cell(summarizeBy(res.Stamping, batchShed), fmtRate))
	if off := res.RequestID[ridOn]; len(off) > 0 {
		w("Without the batch clients (section 3) the same site served %s requests/s.\n\n", fmtRate(summarizeBy(off, rps).Median))
	}
}
