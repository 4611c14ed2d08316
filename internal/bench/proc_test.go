package bench

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
)

func TestParseProcStat(t *testing.T) {
	// Field 2 is the command in parentheses and may itself hold spaces and
	// ')'; utime=1234 and stime=66 ticks are fields 14 and 15.
	tail := " S 1 2 3 4 5 6 7 8 9 10 1234 66 0 0 20 0 9 0 100 2000 300"
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
		bad  bool
	}{
		{"plain", "4242 (netfeat)" + tail, 13 * time.Second, false},
		{"spaces and parens in comm", "4242 (a b) (c))" + tail, 13 * time.Second, false},
		{"no comm", "4242 netfeat S 1 2", 0, true},
		{"truncated", "4242 (netfeat) S 1 2 3", 0, true},
		{"bad utime", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x 66", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if tc.bad {
				if err == nil {
					t.Fatalf("parseProcStat(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("CPU = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseProcStatus(t *testing.T) {
	for _, tc := range []struct {
		name              string
		in                string
		rss, hwm, threads int64
		bad               bool
	}{
		{"full", "Name:\tnetfeat\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n", 100 << 20, 200 << 20, 12, false},
		{"zombie", "Name:\tnetfeat\nState:\tZ (zombie)\nThreads:\t1\n", 0, 0, 0, true},
		{"bad unit", "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", 0, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps ProcStat
			err := parseProcStatus([]byte(tc.in), &ps)
			if tc.bad {
				if err == nil {
					t.Fatalf("want an error, got %+v", ps)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ps.RSS != tc.rss || ps.HWM != tc.hwm || int64(ps.Threads) != tc.threads {
				t.Fatalf("got %+v, want RSS %d HWM %d threads %d", ps, tc.rss, tc.hwm, tc.threads)
			}
		})
	}
}

// TestReadProcSelf checks the readers against this process: CPU grows while
// it spins, and the resident set is at least the buffer it touched.
func TestReadProcSelf(t *testing.T) {
	before, err := ReadProc(0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	x := spinCPU(200 * time.Millisecond)
	after, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in 10ms ticks.
	if after.CPU-before.CPU < 180*time.Millisecond {
		t.Errorf("CPU grew by %v while spinning for 200ms of CPU", after.CPU-before.CPU)
	}
	if after.RSS < 64<<20 || after.HWM < after.RSS {
		t.Errorf("RSS %d, HWM %d after touching 64 MiB", after.RSS, after.HWM)
	}
	if after.Threads < 1 {
		t.Errorf("Threads = %d", after.Threads)
	}
	_ = buf[x%len(buf)]
	if _, err := ReadProc(1 << 30); err == nil || !strings.Contains(err.Error(), "stat") {
		t.Errorf("ReadProc(no such pid) error = %v", err)
	}
}

// spinCPU burns d of this process's CPU time (not wall time: the machine
// may be busy) and returns a value the compiler cannot drop.
func spinCPU(d time.Duration) int {
	x := 0
	for t0 := testkit.ProcessCPU(); testkit.ProcessCPU()-t0 < d; {
		for range 100000 {
			x++
		}
	}
	return x
}

func TestMeasureThreadCPU(t *testing.T) {
	busy := measureThreadCPU(func() { _ = spinCPU(200 * time.Millisecond) })
	idle := measureThreadCPU(func() { time.Sleep(200 * time.Millisecond) })
	// The process's other threads (GC, the runtime) take little of it.
	if busy < 150*time.Millisecond {
		t.Errorf("spinning for 200ms of process CPU measured %v of thread CPU", busy)
	}
	if idle > 50*time.Millisecond {
		t.Errorf("sleeping 200ms measured %v of thread CPU", idle)
	}
}
