package featurestore

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
)

// memReport is the process's memory, broken down by where it lives
// (Linux: /proc/self/status and /proc/self/smaps).
type memReport struct {
	rss, hwm, anon int64            // VmRSS, VmHWM, RssAnon
	byKind         map[string]int64 // resident bytes of mappings: anon, vlog, mem, sst, file (other files)
	goHeap         int64            // live and not-yet-swept heap objects (/memory/classes/heap/objects:bytes)
	goGoal         int64            // the GC's heap goal
	goMapped       int64            // memory the Go runtime holds from the OS, minus what it released
}

// file is the resident part of mapped Badger files.
func (m memReport) file() int64 { return m.byKind["vlog"] + m.byKind["mem"] + m.byKind["sst"] }

func (m memReport) String() string {
	mib := func(v int64) string { return fmt.Sprintf("%.1fMiB", float64(v)/(1<<20)) }
	return fmt.Sprintf("rss %s hwm %s anon %s badger-files %s (vlog %s mem %s sst %s) go: heap %s goal %s mapped %s",
		mib(m.rss), mib(m.hwm), mib(m.anon), mib(m.file()), mib(m.byKind["vlog"]), mib(m.byKind["mem"]), mib(m.byKind["sst"]),
		mib(m.goHeap), mib(m.goGoal), mib(m.goMapped))
}

func readMem() memReport {
	r := memReport{byKind: map[string]int64{}}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				r.rss = kb << 10
			case "VmHWM:":
				r.hwm = kb << 10
			case "RssAnon:":
				r.anon = kb << 10
			}
		}
	}
	if f, err := os.Open("/proc/self/smaps"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		kind := "anon"
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 0 {
				continue
			}
			if !strings.HasSuffix(fs[0], ":") { // a mapping's header line
				kind = "anon"
				if len(fs) >= 6 && strings.HasPrefix(fs[5], "/") {
					switch filepath.Ext(fs[5]) {
					case ".vlog", ".mem", ".sst":
						kind = filepath.Ext(fs[5])[1:]
					default:
						kind = "file"
					}
				}
				continue
			}
			if fs[0] == "Rss:" && len(fs) >= 2 {
				kb, _ := strconv.ParseInt(fs[1], 10, 64)
				r.byKind[kind] += kb << 10
			}
		}
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/goal:bytes"},
		{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	r.goHeap = int64(s[0].Value.Uint64())
	r.goGoal = int64(s[1].Value.Uint64())
	r.goMapped = int64(s[2].Value.Uint64()) - int64(s[3].Value.Uint64())
	return r
}
