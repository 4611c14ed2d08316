package snmpagent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gosnmp/gosnmp"
)

// Errors of SetOperStatus.
var (
	// ErrUnknownInterface is returned for an ifIndex the recording lacks.
	ErrUnknownInterface = errors.New("snmpagent: no such ifIndex")
	// ErrNotServing is returned when a trap is due but the device is not
	// served on a socket yet (Simulator.Start or Serve), so it cannot be
	// sent. The link state has changed all the same.
	ErrNotServing = errors.New("snmpagent: device not serving, trap not sent")
)

// IF-MIB and SNMPv2-MIB objects of a linkDown/linkUp notification.
const (
	oidSnmpTrapOID = ".1.3.6.1.6.3.1.1.4.1.0"
	// OIDLinkDown and OIDLinkUp are the snmpTrapOID.0 values of IF-MIB's
	// linkDown and linkUp notifications (RFC 2863).
	OIDLinkDown = ".1.3.6.1.6.3.1.1.5.3"
	OIDLinkUp   = ".1.3.6.1.6.3.1.1.5.4"
)

// SetOperStatus takes the interface with this ifIndex down (up false) or
// brings it back up now, on top of the recording and the scenario: while
// down, ifOperStatus reads down(2) and its counters stop. It cannot bring
// up an interface recorded down or held down by the scenario; it only ends
// the outages it started. When the interface's state changes and TrapsTo
// is set, a linkDown or linkUp notification is sent at once.
//
// It returns the instant of the change on the device's clock, which is
// the notification's send time; the zero Time when the state did not
// change (nothing sent). The error is ErrUnknownInterface, ErrNotServing,
// or a failure to send the trap.
func (d *Device) SetOperStatus(ifIndex int, up bool) (time.Time, error) {
	i := -1
	for j, idx := range d.mib.ifIndex {
		if int64(idx) == int64(ifIndex) {
			i = j
			break
		}
	}
	if i < 0 {
		return time.Time{}, fmt.Errorf("%w: %d on device %s", ErrUnknownInterface, ifIndex, d.opt.Name)
	}
	now := d.opt.Now()
	c := d.clockAt(now)
	before := d.down(i, c.elapsed)
	d.mu.Lock()
	changed := d.outages[i].Set(c.elapsed, up)
	d.mu.Unlock()
	if changed && !up {
		d.flapped.Store(true)
	}
	after := d.down(i, c.elapsed)
	if before == after {
		return time.Time{}, nil
	}
	d.mu.Lock()
	d.linkDown[i] = after
	d.mu.Unlock()
	if d.opt.TrapsTo == "" {
		return now, nil
	}
	return now, d.sendLinkTrap(i, after, c)
}

// sendLinkTrap sends linkDown or linkUp for interface i at c.
func (d *Device) sendLinkTrap(i int, down bool, c clock) error {
	err := d.trySendLinkTrap(i, down, c)
	if err != nil {
		d.st.trapErrors.Add(1)
		return err
	}
	d.st.traps.Add(1)
	return nil
}

func (d *Device) trySendLinkTrap(i int, down bool, c clock) error {
	connp := d.conn.Load()
	if connp == nil {
		return ErrNotServing
	}
	d.mu.Lock()
	to := d.trapTo
	d.mu.Unlock()
	if to == nil {
		a, err := net.ResolveUDPAddr("udp", d.opt.TrapsTo)
		if err != nil {
			return fmt.Errorf("snmpagent: device %s: traps to %s: %w", d.opt.Name, d.opt.TrapsTo, err)
		}
		d.mu.Lock()
		d.trapTo, to = a, a
		d.mu.Unlock()
	}
	b, err := d.linkTrap(i, down, c)
	if err != nil {
		return err
	}
	if _, err := (*connp).WriteTo(b, to); err != nil {
		return fmt.Errorf("snmpagent: device %s: send trap: %w", d.opt.Name, err)
	}
	return nil
}

// linkTrap encodes the RFC 2863 notification for interface i: sysUpTime.0,
// snmpTrapOID.0, then ifIndex, ifAdminStatus and ifOperStatus of the
// interface.
func (d *Device) linkTrap(i int, down bool, c clock) ([]byte, error) {
	idx := d.mib.ifIndex[i]
	trapOID, oper := OIDLinkUp, 1
	if down {
		trapOID, oper = OIDLinkDown, 2
	}
	admin := 1
	if j := d.mib.exact(append(append([]uint32(nil), oidIfEntry...), colIfAdminStatus, idx)); j >= 0 {
		admin = int(d.mib.entries[j].rec.Int)
	}
	upTime := uint32(c.sinceBoot / (10 * time.Millisecond))
	if j := d.mib.exact(oidSysUpTime); j >= 0 && c.reboots == 0 {
		upTime += uint32(d.mib.entries[j].rec.Uint)
	}
	suffix := fmt.Sprintf(".%d", idx)
	pkt := &gosnmp.SnmpPacket{
		PDUType:   gosnmp.SNMPv2Trap,
		RequestID: uint32(d.salt.Add(1) & 0x7fffffff),
		Variables: []gosnmp.SnmpPDU{
			{Name: formatOID(oidSysUpTime), Type: gosnmp.TimeTicks, Value: upTime},
			{Name: oidSnmpTrapOID, Type: gosnmp.ObjectIdentifier, Value: trapOID},
			{Name: formatOID(oidIfEntry) + fmt.Sprintf(".%d", colIfIndex) + suffix, Type: gosnmp.Integer, Value: int(idx)},
			{Name: formatOID(oidIfEntry) + fmt.Sprintf(".%d", colIfAdminStatus) + suffix, Type: gosnmp.Integer, Value: admin},
			{Name: formatOID(oidIfEntry) + fmt.Sprintf(".%d", colIfOperStatus) + suffix, Type: gosnmp.Integer, Value: oper},
		},
	}
	if u := d.trapUser; u != nil {
		pkt.Version = gosnmp.Version3
		pkt.MsgID = pkt.RequestID
		pkt.MsgFlags = u.level
		pkt.SecurityModel = gosnmp.UserSecurityModel
		pkt.ContextEngineID = d.engineID
		pkt.SecurityParameters = d.usmFor(u, c)
	} else {
		pkt.Version = gosnmp.Version2c
		pkt.Community = d.opt.Community
	}
	b, err := pkt.MarshalMsg()
	if err != nil {
		return nil, fmt.Errorf("snmpagent: device %s: marshal trap: %w", d.opt.Name, err)
	}
	return b, nil
}

// hasLinkEvents reports whether the device's scenario takes any interface
// down or up over time.
func (d *Device) hasLinkEvents() bool {
	for _, p := range d.plans {
		if p == nil {
			continue
		}
		if _, ok := p.NextLinkChange(0); ok {
			return true
		}
	}
	return false
}

// runLinkTraps sends a linkDown or linkUp notification whenever the
// scenario takes an interface down or up, at the scenario's instant (on
// the wall clock, from Start), until ctx ends. Send errors go to onErr.
func (d *Device) runLinkTraps(ctx context.Context, onErr func(error)) {
	el := time.Duration(0)
	for {
		next, found := time.Duration(0), false
		for _, p := range d.plans {
			if p == nil {
				continue
			}
			if t, ok := p.NextLinkChange(el); ok && (!found || t < next) {
				next, found = t, true
			}
		}
		if !found {
			return
		}
		timer := time.NewTimer(time.Until(d.start.Add(next)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		el = next
		c := d.clockAt(d.start.Add(next))
		for i := range d.plans {
			if d.plans[i] == nil {
				continue
			}
			down := d.down(i, next)
			d.mu.Lock()
			changed := d.linkDown[i] != down
			d.linkDown[i] = down
			d.mu.Unlock()
			if changed {
				if err := d.sendLinkTrap(i, down, c); err != nil {
					onErr(err)
				}
			}
		}
	}
}
