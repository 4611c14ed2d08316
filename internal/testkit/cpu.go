package testkit

import (
	"fmt"
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time (user plus system) the whole process has
// used, at microsecond resolution. Benchmarks divide work by the difference
// of two readings: on a shared machine wall-clock rates understate what a
// core does, and per-CPU-second figures divide by the CPU actually got.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		// RUSAGE_SELF with a valid pointer cannot fail; a zero would
		// silently turn every rate into +Inf.
		panic(fmt.Errorf("getrusage(RUSAGE_SELF): %w", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
