package fleet

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/netfeat/netfeat/schema"
)

// Kind is one kind of data an edge forwards; each kind has its own stream on
// the edge and, per site, on the hub.
type Kind string

// The kinds of forwarded data.
const (
	// KindWindows are closed feature windows (schema.FeatureRow), JSON.
	KindWindows Kind = "windows"
	// KindDecisions are decisions (schema.Decision, JSON schema version 1).
	KindDecisions Kind = "decisions"
	// KindActions are action transitions (Action, JSON).
	KindActions Kind = "actions"
	// KindSamples are raw normalized samples as compressed Arrow IPC
	// record batches.
	KindSamples Kind = "samples"
	// KindDevices are the collectors' device states (DeviceState, JSON),
	// published when one changes and as a periodic heartbeat.
	KindDevices Kind = "devices"
)

// Kinds lists every kind, in a fixed order.
var Kinds = []Kind{KindWindows, KindDecisions, KindActions, KindSamples, KindDevices}

// Headers every forwarded message carries besides Nats-Msg-Id.
const (
	// HeaderSite is the site that published the message.
	HeaderSite = "Netfeat-Site"
	// HeaderInstance is the publishing edge's instance id (see
	// Edge.InstanceID): the hub refuses messages whose instance is not the
	// one registered for the site.
	HeaderInstance = "Netfeat-Instance"
)

// DefaultHubDomain is the JetStream domain of the hub cluster.
const DefaultHubDomain = "hub"

// DefaultRegistryBucket is the hub's KV bucket of registered edges: key the
// site, value a Registration.
const DefaultRegistryBucket = "NETFEAT_FLEET_EDGES"

// edgeSelfBucket is the edge's local KV bucket that keeps its instance id
// across restarts.
const edgeSelfBucket = "NETFEAT_FLEET_SELF"

// siteRE is what a site name may be: it is a JetStream domain, a subject
// token and part of stream names.
var siteRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateSite reports whether site can name an edge: 1 to 64 letters,
// digits, '-' or '_', and not the hub's domain.
func ValidateSite(site, hubDomain string) error {
	if !siteRE.MatchString(site) {
		return fmt.Errorf("fleet: site %q: want 1-64 letters, digits, '-' or '_'", site)
	}
	if strings.EqualFold(site, hubDomain) {
		return fmt.Errorf("fleet: site %q is the hub's JetStream domain", site)
	}
	return nil
}

// EdgeStream is the name of the edge's local stream of kind:
// NETFEAT_WINDOWS, NETFEAT_DECISIONS, NETFEAT_ACTIONS, NETFEAT_SAMPLES,
// NETFEAT_DEVICES.
func EdgeStream(k Kind) string { return "NETFEAT_" + strings.ToUpper(string(k)) }

// HubStream is the name of the hub's stream that sources kind from site:
// NETFEAT_<KIND>_<site>, for example NETFEAT_WINDOWS_paris.
func HubStream(site string, k Kind) string { return EdgeStream(k) + "_" + site }

// subjectPrefix is the subject prefix of site's kind:
// netfeat.fleet.<site>.<kind>. The site is part of the subject so that two
// edges behind one hub never capture each other's messages (interest
// crosses leaf connections).
func subjectPrefix(site string, k Kind) string {
	return "netfeat.fleet." + site + "." + string(k)
}

// EdgeSubjects returns the subject filter of the edge stream of kind:
// netfeat.fleet.<site>.<kind>.>.
func EdgeSubjects(site string, k Kind) string { return subjectPrefix(site, k) + ".>" }

// msgID is a message id: "<site>/<kind>/<32 hex digits>", the first 16
// bytes of the SHA-256 of the content's identity (NUL-separated fields and
// big-endian numbers). It is deterministic, bounded and safe as a header.
func msgID(site string, k Kind, h []byte) string {
	var b strings.Builder
	b.Grow(len(site) + len(k) + 34)
	b.WriteString(site)
	b.WriteByte('/')
	b.WriteString(string(k))
	b.WriteByte('/')
	b.WriteString(hex.EncodeToString(h[:16]))
	return b.String()
}

// identity accumulates the identity fields of a message for msgID.
type identity struct{ b []byte }

func (id *identity) str(s string) *identity {
	id.b = append(append(id.b, s...), 0)
	return id
}

func (id *identity) i64(v int64) *identity {
	id.b = binary.BigEndian.AppendUint64(id.b, uint64(v))
	return id
}

func (id *identity) sum() []byte {
	s := sha256.Sum256(id.b)
	return s[:]
}

// WindowID is the message id of a closed window: site, view, entity and
// window end identify it.
func WindowID(site string, row *schema.FeatureRow) string {
	var id identity
	id.str(row.View).str(row.Device).str(row.Component).i64(row.WindowEnd)
	return msgID(site, KindWindows, id.sum())
}

// DecisionID is the message id of a decision: site and the decision's own
// id, which inference derives from model, view, entity and window.
func DecisionID(site string, d *schema.Decision) string {
	var id identity
	id.str(d.ID)
	return msgID(site, KindDecisions, id.sum())
}

// ActionID is the message id of an action transition: site, the (model,
// entity) fingerprint, the new state and when it began.
func ActionID(site string, a *Action) string {
	var id identity
	id.str(a.Fingerprint).str(a.Model).str(a.Entity.Device).str(a.Entity.Component).str(a.State).i64(a.Since.UnixNano())
	return msgID(site, KindActions, id.sum())
}

// DeviceStateID is the message id of a device state: site, device, the
// time the edge read the state and the state itself. The same state
// published again (a retry, a batch sent again) is stored once; a
// heartbeat, read at another time, is a message of its own.
func DeviceStateID(site string, d *DeviceState) string {
	var id identity
	id.str(d.Device).i64(d.TS).str(d.State)
	return msgID(site, KindDevices, id.sum())
}
