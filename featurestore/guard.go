// Input guards: per-device labels and rate-limited logs for samples the
// store refuses. inputGuard is shared by the appending goroutines (the
// callers of Append) and guarded by its mutex.

package featurestore

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Bounds on what one misbehaving device can add to the store's metrics and
// logs.
const (
	// maxLabelDevices is how many distinct devices get their own value of
	// a metric's device label; later ones share otherDevice.
	maxLabelDevices = 10000
	otherDevice     = "(other)"
	// guardLogEvery is how often a (device, reason) is logged again after
	// its first line.
	guardLogEvery = time.Minute
)

// inputGuard keeps the device label set of the store's per-device metrics
// bounded and rate-limits the log lines about refused input: the first
// refusal of a device for a reason is logged, then at most one a minute.
type inputGuard struct {
	mu     sync.Mutex
	labels map[string]string
	logged map[[2]string]time.Time
}

// label returns the device label value for device: the device name
// (made valid UTF-8, as Prometheus requires) for the first
// maxLabelDevices devices, otherDevice after them.
func (g *inputGuard) label(device string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if l, ok := g.labels[device]; ok {
		return l
	}
	if g.labels == nil {
		g.labels = map[string]string{}
	}
	if len(g.labels) >= maxLabelDevices {
		return otherDevice
	}
	l := clip(device)
	g.labels[strings.Clone(device)] = l
	return l
}

// shouldLog reports whether a refusal of device (a label value) for
// reason is to be logged now.
func (g *inputGuard) shouldLog(device, reason string) bool {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.logged == nil {
		g.logged = map[[2]string]time.Time{}
	}
	k := [2]string{device, reason}
	if t, ok := g.logged[k]; ok && now.Sub(t) < guardLogEvery {
		return false
	}
	g.logged[k] = now
	return true
}

// clip returns s as valid UTF-8 of at most 128 bytes, for logs and labels.
func clip(s string) string {
	const n = 128
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) && !utf8.RuneStart(s[len(s)-1]) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
