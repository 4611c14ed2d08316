package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports (the kernel fixes it for the
// user ABI regardless of CONFIG_HZ).
const clockTicks = 100

// ProcStat is a snapshot of one process's CPU time and memory, read from
// /proc.
type ProcStat struct {
	// CPU is user plus system time consumed so far (10 ms resolution).
	CPU time.Duration
	// RSS is the resident set size now, HWM its peak so far (VmHWM), in
	// bytes.
	RSS, HWM int64
	// Threads is the number of OS threads.
	Threads int
}

// ReadProc reads /proc/PID/stat and /proc/PID/status; pid 0 means this
// process.
func ReadProc(pid int) (ProcStat, error) {
	dir := "/proc/self"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ProcStat{}, fmt.Errorf("read process stat: %w", err)
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ProcStat{}, fmt.Errorf("read process status: %w", err)
	}
	var ps ProcStat
	if ps.CPU, err = parseProcStat(stat); err != nil {
		return ProcStat{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	if err := parseProcStatus(status, &ps); err != nil {
		return ProcStat{}, fmt.Errorf("%s/status: %w", dir, err)
	}
	return ps, nil
}

// parseProcStat returns utime + stime from the contents of /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	// After ") " come field 3 (state) onwards; utime and stime are fields
	// 14 and 15, so indexes 11 and 12 here.
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	ut, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	st, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return time.Duration(ut+st) * (time.Second / clockTicks), nil
}

// parseProcStatus fills RSS, HWM and Threads from /proc/PID/status.
func parseProcStatus(b []byte, ps *ProcStat) error {
	var seen int
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "VmRSS", "VmHWM":
			f := bytes.Fields(v)
			if len(f) != 2 || string(f[1]) != "kB" {
				return fmt.Errorf("%s: unexpected value %q", k, bytes.TrimSpace(v))
			}
			n, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			if string(k) == "VmRSS" {
				ps.RSS = n << 10
			} else {
				ps.HWM = n << 10
			}
			seen++
		case "Threads":
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return fmt.Errorf("field Threads: %w", err)
			}
			ps.Threads = n
		}
	}
	if seen != 2 {
		return errors.New("VmRSS or VmHWM missing (a zombie process has neither)")
	}
	return nil
}

// threadCPU returns the CPU time of the calling OS thread. The caller must
// hold runtime.LockOSThread for the result to mean anything.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureThreadCPU runs fn on a locked OS thread and returns the CPU time
// it consumed.
func measureThreadCPU(fn func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadCPU()
	fn()
	return threadCPU() - t0
}
