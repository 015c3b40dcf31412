package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// debianTools are the load generator, the peer proxy and the DNS server
// of the cost-per-service figure, by command, with their Debian packages.
var debianTools = []struct{ command, pkg string }{{"wrk", "wrk"}, {"haproxy", "haproxy"}, {"dnsmasq", "dnsmasq-base"}}

// installMissingTools installs the tools with apt-get when any is not on
// PATH; nothing is downloaded when all are.
func installMissingTools() error {
	var missing []string
	for _, tool := range debianTools {
		if _, err := exec.LookPath(tool.command); err != nil {
			missing = append(missing, tool.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Printf("installing %s with apt-get\n", strings.Join(missing, " "))
	for _, args := range [][]string{{"update", "-q"}, append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w (install %s yourself)", strings.Join(args, " "), err, strings.Join(missing, " "))
		}
	}
	return nil
}

// machine describes where and with what the benchmark ran.
type machine struct {
	CPUs         int
	CPUModel     string
	Kernel       string
	Go, Caddy    string
	HAProxy, Wrk string
	LoadBefore   float64 // 1-minute load average when the run started
	LoadAfter    float64 // and when it ended (the run itself adds about 2)
	Start        time.Time
	Elapsed      time.Duration
	Command      string
}

// describeMachine collects the machine's facts and the tools' versions.
func describeMachine(edgeBinary, command string) machine {
	m := machine{
		CPUs:     runtime.NumCPU(), // the CPUs this process may use, as nproc counts them
		CPUModel: "unknown",
		Kernel:   "unknown",
		Go:       runtime.Version(),
		Caddy:    versionLine(edgeBinary, "version"),
		HAProxy:  versionLine("haproxy", "-v"),
		Wrk:      versionLine("wrk", "-v"),
		Start:    time.Now(),
		Command:  command,
	}
	if cpuinfo, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(cpuinfo), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if release, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(release))
	}
	m.LoadBefore = loadAverage()
	return m
}

// loadAverage is the 1-minute load average, or -1 when unknown.
func loadAverage() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	first, _, _ := strings.Cut(string(raw), " ")
	load, err := strconv.ParseFloat(first, 64)
	if err != nil {
		return -1
	}
	return load
}

// versionLine returns the first line that a tool prints for its version.
func versionLine(name string, args ...string) string {
	out, _ := exec.Command(name, args...).CombinedOutput() // wrk -v exits 1 after printing
	first, _, _ := strings.Cut(string(out), "\n")
	if first = strings.TrimSpace(first); first == "" {
		return "unknown"
	}
	return first
}

// clockTicksPerSecond is USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every Linux architecture Go supports (sysconf would need cgo).
const clockTicksPerSecond = 100

// processCPU is the user plus system CPU time that process pid has used.
func processCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	stat := string(raw)
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicksPerSecond, nil
}
