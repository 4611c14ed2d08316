package snmp

import (
	"strings"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/schema"
)

// toObservation converts a decoded varbind. It returns false for types
// that carry no value an observation can hold (gosnmp's UnknownType).
func toObservation(dev string, proto schema.Protocol, v *gosnmp.SnmpPDU, recv int64) (schema.Observation, bool) {
	o := schema.Observation{Device: dev, Protocol: proto, Path: strings.TrimPrefix(v.Name, "."), RecvTime: recv}
	switch v.Type {
	case gosnmp.Integer:
		o.Kind = schema.KindInteger
		o.Int = toInt(v.Value)
	case gosnmp.Counter32:
		o.Kind, o.Uint = schema.KindCounter32, toUint(v.Value)
	case gosnmp.Counter64:
		o.Kind, o.Uint = schema.KindCounter64, toUint(v.Value)
	case gosnmp.Gauge32, gosnmp.Uinteger32:
		o.Kind, o.Uint = schema.KindGauge, toUint(v.Value)
	case gosnmp.TimeTicks:
		o.Kind, o.Uint = schema.KindTimeTicks, toUint(v.Value)
	case gosnmp.OctetString:
		// Like recording.SNMPRecord.Observation: every OCTET STRING is a
		// string; binary contents (MAC addresses) keep their raw bytes.
		b, _ := v.Value.([]byte)
		o.Kind, o.Str = schema.KindString, string(b)
	case gosnmp.IPAddress:
		s, _ := v.Value.(string)
		o.Kind, o.Str = schema.KindString, s
	case gosnmp.ObjectIdentifier:
		s, _ := v.Value.(string)
		o.Kind, o.Str = schema.KindOID, strings.TrimPrefix(s, ".")
	case gosnmp.Opaque, gosnmp.BitString:
		b, _ := v.Value.([]byte)
		o.Kind, o.Str = schema.KindBytes, string(b)
	case gosnmp.OpaqueFloat:
		f, _ := v.Value.(float32)
		o.Kind, o.Float = schema.KindFloat, float64(f)
	case gosnmp.OpaqueDouble:
		f, _ := v.Value.(float64)
		o.Kind, o.Float = schema.KindFloat, f
	case gosnmp.Null:
		o.Kind = schema.KindNull
	case gosnmp.NoSuchObject:
		o.Kind = schema.KindNoSuchObject
	case gosnmp.NoSuchInstance:
		o.Kind = schema.KindNoSuchInstance
	case gosnmp.EndOfMibView:
		o.Kind = schema.KindEndOfMibView
	default:
		return o, false
	}
	return o, true
}

func toUint(v any) uint64 {
	switch x := v.(type) {
	case uint:
		return uint64(x)
	case uint32:
		return uint64(x)
	case uint64:
		return x
	case int:
		return uint64(x)
	}
	return 0
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	case uint32:
		return int64(x)
	}
	return 0
}

// Observation converts a decoded varbind of device dev, received at recv
// (Unix ns), exactly as the poller does. It returns false for types that
// carry no value an observation can hold. The digital twin (netfeat twin)
// uses it for the values it reads from simulated devices without the
// network.
func Observation(dev string, v *gosnmp.SnmpPDU, recv int64) (schema.Observation, bool) {
	return toObservation(dev, schema.ProtocolSNMP, v, recv)
}
