package gnmi

import (
	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/netfeat/netfeat/schema"
)

// Decoder turns the notifications of one target into observations exactly
// as the collector does (paths rendered with keys in name order, origins
// filled in from the subscriptions, JSON values flattened), for callers
// that have notifications without a Subscribe stream: the digital twin
// (netfeat twin). It is for one goroutine at a time.
type Decoder struct {
	d        *decoder
	rejected int
}

// NewDecoder returns a decoder for target device subscribed to subs
// (their origins are accepted; none: any origin).
func NewDecoder(device string, subs []*gpb.Path) *Decoder {
	x := &Decoder{}
	x.d = newDecoder(device, subs, func(string) { x.rejected++ })
	return x
}

// Decode appends the observations of n, received at recv (Unix ns), to
// out and returns it.
func (x *Decoder) Decode(out []schema.Observation, n *gpb.Notification, recv int64) []schema.Observation {
	x.d.out = out
	x.d.notification(n, recv)
	out = x.d.out
	x.d.out = nil
	return out
}

// Rejected counts the updates the decoder could not turn into observations.
func (x *Decoder) Rejected() int { return x.rejected }
