package schema

import "context"

// Entity is what a sample describes: a device and, optionally, one of its
// components (an interface "HundredGigE0/0/0/0", a port "1/1/1", a CPU
// "0/RP0/CPU0", a sensor). An empty Component means the device itself.
type Entity struct {
	Device    string `json:"device"`
	Component string `json:"component,omitempty"`
}

// String renders the entity as "device" or "device/component".
func (e Entity) String() string {
	if e.Component == "" {
		return e.Device
	}
	return e.Device + "/" + e.Component
}

// Sample is one normalized observation: a canonical metric of an entity at
// an instant, in the catalog's unit.
type Sample struct {
	// TS is the event time in Unix nanoseconds: the device's timestamp where
	// the protocol gives one, else the poll's receive time.
	TS int64 `json:"ts"`
	// IngestTS is when the collector received the bytes, in Unix
	// nanoseconds. It is what end-to-end latency is measured from.
	IngestTS int64 `json:"ingest_ts"`
	// Entity is the device and component the value belongs to.
	Entity
	// Metric is the canonical metric name from the catalog
	// ("interface.in.octets").
	Metric string `json:"metric"`
	// Value is the value in the catalog unit of Metric.
	Value float64 `json:"value"`
	// Source names where the value came from: "<vendor profile>/<protocol>",
	// such as "nokia-sros/snmp" or "cisco-iosxr/gnmi".
	Source string `json:"source,omitempty"`
}

// SampleAppender accepts batches of normalized samples.
//
// Append returns once the batch is accepted: for a durable store that means
// written to its write-ahead log under the configured fsync policy, so an
// accepted sample survives a crash. Append may block for back-pressure and
// returns ctx.Err() when ctx is cancelled first. The appender does not
// retain batch after it returns; the caller may reuse the slice. A non-nil
// error means none of the batch was accepted. Implementations are safe for
// concurrent use.
type SampleAppender interface {
	Append(ctx context.Context, batch []Sample) error
}

// SampleAppenderFunc adapts a function to SampleAppender.
type SampleAppenderFunc func(ctx context.Context, batch []Sample) error

// Append calls f(ctx, batch).
func (f SampleAppenderFunc) Append(ctx context.Context, batch []Sample) error {
	return f(ctx, batch)
}
