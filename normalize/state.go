package normalize

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// stateVersion is the version of the MarshalState format.
const stateVersion = 1

type stateDoc struct {
	Version int           `json:"version"`
	Devices []deviceState `json:"devices"`
}

type deviceState struct {
	Device    string        `json:"device"`
	Uptime    uint64        `json:"uptime,omitempty"`
	UptimeSet bool          `json:"uptime_set,omitempty"`
	Series    []seriesState `json:"series"`
}

type seriesState struct {
	Component string `json:"component"`
	Metric    string `json:"metric"`
	Raw       uint64 `json:"raw"`
	TS        int64  `json:"ts"`
}

// MarshalState returns the counter state needed to continue rates across a
// restart: per device its last sysUpTime and per counter series the last
// raw value and time. The format is versioned JSON.
func (n *Normalizer) MarshalState() ([]byte, error) {
	n.mu.RLock()
	devs := make([]*device, 0, len(n.devices))
	for _, d := range n.devices {
		devs = append(devs, d)
	}
	n.mu.RUnlock()
	doc := stateDoc{Version: stateVersion}
	for _, d := range devs {
		d.mu.Lock()
		ds := deviceState{Device: d.name, Uptime: d.uptime, UptimeSet: d.uptimeSet}
		for k, s := range d.series {
			if s.has {
				ds.Series = append(ds.Series, seriesState{Component: k.comp, Metric: k.metric, Raw: s.raw, TS: s.ts})
			}
		}
		d.mu.Unlock()
		sort.Slice(ds.Series, func(i, j int) bool {
			if ds.Series[i].Component != ds.Series[j].Component {
				return ds.Series[i].Component < ds.Series[j].Component
			}
			return ds.Series[i].Metric < ds.Series[j].Metric
		})
		doc.Devices = append(doc.Devices, ds)
	}
	sort.Slice(doc.Devices, func(i, j int) bool { return doc.Devices[i].Device < doc.Devices[j].Device })
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("normalize: marshal state: %w", err)
	}
	return b, nil
}

// UnmarshalState restores state written by MarshalState. The first sample of
// a restored series after a restart yields a rate against the saved value,
// unless sysUpTime shows the device restarted meanwhile. Call it before the
// first Observe; series already present are overwritten.
func (n *Normalizer) UnmarshalState(b []byte) error {
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("normalize: unmarshal state: %w", err)
	}
	if doc.Version != stateVersion {
		return fmt.Errorf("normalize: unmarshal state: version %d, want %d", doc.Version, stateVersion)
	}
	for _, ds := range doc.Devices {
		d := n.device(ds.Device)
		d.mu.Lock()
		d.uptime, d.uptimeSet = ds.Uptime, ds.UptimeSet
		for _, ss := range ds.Series {
			if ss.TS > time.Now().UnixNano()+int64(n.cfg.MaxClockSkew) {
				// Saved from a device clock in the future (before
				// restamping): a baseline no later value could follow.
				continue
			}
			k := seriesKey{ss.Component, ss.Metric}
			if d.series[k] == nil {
				if d.nseries >= n.cfg.MaxSeriesPerDevice {
					continue
				}
				d.nseries++
			}
			c := d.comps[ss.Component]
			if c == nil {
				c = &component{name: ss.Component}
				d.comps[c.name] = c
			}
			d.series[k] = &series{
				comp: c, has: true, raw: ss.Raw, ts: ss.TS,
				devEpoch: d.epoch, epoch: c.epoch, mapID: -1,
			}
		}
		d.mu.Unlock()
	}
	return nil
}
