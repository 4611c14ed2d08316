package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/netfeat/netfeat/schema"
)

// DeviceStateSchemaVersion is the version of the device state JSON
// document.
const DeviceStateSchemaVersion = 1

// StateRemoved is DeviceState.State of a device the edge no longer
// collects from (its target was removed from the configuration): the edge
// publishes it once, so that the hub stops showing the last state it had.
const StateRemoved = "removed"

// DeviceState is one collector target's health as an edge forwards it to
// the hub: the row of the standalone `devices` table (schema.DeviceState)
// with the time the edge read it. The edge publishes a device's state when
// it changes and, as a heartbeat, every fleet.edge.device_heartbeat; the
// hub keeps the state with the latest TS of each (site, device), so a late
// older state never replaces a newer one.
type DeviceState struct {
	// SchemaVersion is DeviceStateSchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// TS is when the edge read the state (Unix ns).
	TS int64 `json:"ts"`
	// Heartbeat is true when the state was published because the
	// heartbeat was due, not because it changed.
	Heartbeat bool `json:"heartbeat,omitempty"`
	schema.DeviceState
}

// EncodeDeviceState returns the JSON document of d, with schema_version
// DeviceStateSchemaVersion and a non-finite last_duration_ms written as 0.
func EncodeDeviceState(d *DeviceState) ([]byte, error) {
	return appendDeviceStateDoc(nil, d)
}

// appendDeviceStateDoc appends the JSON document of d to dst. Device
// states are rare (a change or a heartbeat per device), so encoding/json
// is cheap enough.
func appendDeviceStateDoc(dst []byte, d *DeviceState) ([]byte, error) {
	c := *d
	c.SchemaVersion = DeviceStateSchemaVersion
	if math.IsNaN(c.LastDurationMS) || math.IsInf(c.LastDurationMS, 0) {
		c.LastDurationMS = 0
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return dst, fmt.Errorf("fleet: device state %s: %w", d.Device, err)
	}
	return append(dst, b...), nil
}

// DecodeDeviceState parses a device state document.
func DecodeDeviceState(data []byte) (*DeviceState, error) {
	var d DeviceState
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: device state: %v", ErrCorrupt, err)
	}
	switch {
	case d.SchemaVersion != DeviceStateSchemaVersion:
		return nil, fmt.Errorf("%w: device state schema_version %d, want %d", ErrCorrupt, d.SchemaVersion, DeviceStateSchemaVersion)
	case d.Device == "" || d.State == "":
		return nil, fmt.Errorf("%w: device state without device or state", ErrCorrupt)
	case d.TS <= 0:
		return nil, fmt.Errorf("%w: device state of %s without ts", ErrCorrupt, d.Device)
	}
	return &d, nil
}

// PublishDeviceState stores a device state for the hub. Its message id is
// DeviceStateID.
func (e *Edge) PublishDeviceState(ctx context.Context, d *DeviceState) error {
	return e.PublishDeviceStates(ctx, []*DeviceState{d})
}

// PublishDeviceStates stores device states for the hub in one message.
func (e *Edge) PublishDeviceStates(ctx context.Context, ds []*DeviceState) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = DeviceStateID(e.cfg.Site, d)
	}
	return e.publishItems(ctx, KindDevices, deviceStateSubject(e.cfg.Site, ds[0]), ids, func(b []byte, i int) ([]byte, error) {
		return appendDeviceStateDoc(b, ds[i])
	})
}

// deviceStateSubject is netfeat.fleet.<site>.devices.state.<device>: the
// extra token keeps a device named "batch" clear of the batch subject.
func deviceStateSubject(site string, d *DeviceState) string {
	return subjectPrefix(site, KindDevices) + ".state." + schema.SubjectToken(d.Device)
}
