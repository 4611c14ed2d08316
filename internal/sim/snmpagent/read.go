package snmpagent

import (
	"fmt"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Read returns, without the network, what a poll at instant now would
// fetch: the value of each scalar OID (noSuchObject or noSuchInstance
// when the MIB has none) and of every instance under each column OID, in
// MIB order. It is how the digital twin (netfeat twin) polls a device on a
// virtual clock: the device's scenario is evaluated at now, whatever
// DeviceOptions.Now says. Like Handle, it is for one goroutine at a time.
func (d *Device) Read(scalars, columns []string, now time.Time) ([]gosnmp.SnmpPDU, error) {
	c := d.clockAt(now)
	out := make([]gosnmp.SnmpPDU, 0, len(scalars)+8*len(columns))
	for _, s := range scalars {
		oid, err := parseOID(s)
		if err != nil {
			return nil, fmt.Errorf("snmpagent: scalar %q: %w", s, err)
		}
		out = append(out, d.get(oid, c))
	}
	for _, col := range columns {
		prefix, err := parseOID(col)
		if err != nil {
			return nil, fmt.Errorf("snmpagent: column %q: %w", col, err)
		}
		for i := d.mib.next(prefix); i >= 0 && i < len(d.mib.entries); i++ {
			e := &d.mib.entries[i]
			if !hasOIDPrefix(e.oid, prefix) {
				break
			}
			out = append(out, d.value(e, c))
		}
	}
	return out, nil
}

// SysObjectID and SysDescr return the recorded sysObjectID.0 (dotted,
// without a leading dot) and sysDescr.0, for choosing the profile a poll
// would use.
func (d *Device) SysObjectID() string {
	if i := d.mib.exact([]uint32{1, 3, 6, 1, 2, 1, 1, 2, 0}); i >= 0 {
		return string(d.mib.entries[i].rec.Bytes)
	}
	return ""
}

// SysDescr returns the recorded sysDescr.0.
func (d *Device) SysDescr() string {
	if i := d.mib.exact([]uint32{1, 3, 6, 1, 2, 1, 1, 1, 0}); i >= 0 {
		return string(d.mib.entries[i].rec.Bytes)
	}
	return ""
}

func hasOIDPrefix(oid, prefix []uint32) bool {
	if len(oid) < len(prefix) {
		return false
	}
	for i, p := range prefix {
		if oid[i] != p {
			return false
		}
	}
	return true
}
