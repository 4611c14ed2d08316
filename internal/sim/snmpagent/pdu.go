package snmpagent

import (
	"fmt"

	"github.com/gosnmp/gosnmp"
)

// process answers a decoded request PDU (RFC 3416 4.2). It returns nil for
// PDUs an agent does not answer. budget is the room left for varbinds.
func (d *Device) process(req *gosnmp.SnmpPacket, c clock, budget int) (*gosnmp.SnmpPacket, error) {
	resp := &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse, RequestID: req.RequestID}
	names := make([][]uint32, len(req.Variables))
	for i, v := range req.Variables {
		oid, err := parseOID(v.Name)
		if err != nil {
			d.st.malformed.Add(1)
			return nil, fmt.Errorf("varbind %d: %w", i+1, err)
		}
		names[i] = oid
	}
	switch req.PDUType {
	case gosnmp.GetRequest:
		vars := make([]gosnmp.SnmpPDU, len(names))
		for i, oid := range names {
			vars[i] = d.get(oid, c)
		}
		return d.fit(resp, vars, budget), nil
	case gosnmp.GetNextRequest:
		vars := make([]gosnmp.SnmpPDU, len(names))
		for i, oid := range names {
			vars[i], _ = d.getNext(oid, c)
		}
		return d.fit(resp, vars, budget), nil
	case gosnmp.GetBulkRequest:
		resp.Variables = d.getBulk(names, int(req.NonRepeaters), int(req.MaxRepetitions), c, budget)
		return resp, nil
	case gosnmp.SetRequest:
		// The simulator is read-only: notWritable on the first varbind
		// (RFC 3416 4.2.5), echoing the request's bindings.
		resp.Error, resp.ErrorIndex = gosnmp.NotWritable, 1
		resp.Variables = req.Variables
		if len(req.Variables) == 0 {
			resp.ErrorIndex = 0
		}
		return d.fit(resp, resp.Variables, budget), nil
	}
	return nil, fmt.Errorf("PDU type %v is not a request an agent answers", req.PDUType)
}

// fit sets vars on resp, or answers tooBig with no varbinds when they do
// not fit in budget (RFC 3416 4.2.1).
func (d *Device) fit(resp *gosnmp.SnmpPacket, vars []gosnmp.SnmpPDU, budget int) *gosnmp.SnmpPacket {
	size := 0
	for i := range vars {
		size += varbindSize(&vars[i])
	}
	if size > budget {
		resp.Error, resp.ErrorIndex, resp.Variables = gosnmp.TooBig, 0, nil
		return resp
	}
	resp.Variables = vars
	return resp
}

func (d *Device) get(oid []uint32, c clock) gosnmp.SnmpPDU {
	if i := d.mib.exact(oid); i >= 0 {
		return d.value(&d.mib.entries[i], c)
	}
	if d.mib.missingIsInstance(oid) {
		return gosnmp.SnmpPDU{Name: formatOID(oid), Type: gosnmp.NoSuchInstance}
	}
	return gosnmp.SnmpPDU{Name: formatOID(oid), Type: gosnmp.NoSuchObject}
}

// getNext returns the lexicographic successor of oid, or endOfMibView
// named oid; the second result is the successor's OID (nil at the end).
func (d *Device) getNext(oid []uint32, c clock) (gosnmp.SnmpPDU, []uint32) {
	i := d.mib.next(oid)
	if i < 0 {
		return gosnmp.SnmpPDU{Name: formatOID(oid), Type: gosnmp.EndOfMibView}, nil
	}
	e := &d.mib.entries[i]
	return d.value(e, c), e.oid
}

// getBulk implements RFC 3416 4.2.3: N non-repeaters answered as GETNEXT,
// then up to M repetitions of GETNEXT for the R remaining varbinds. A
// variable that reached the end of the MIB view keeps answering
// endOfMibView; when every repeater has, the repetitions stop early. The
// response is cut, at a varbind boundary, to fit budget.
func (d *Device) getBulk(names [][]uint32, nonRep, maxRep int, c clock, budget int) []gosnmp.SnmpPDU {
	n := max(0, min(nonRep, len(names)))
	m := max(0, min(maxRep, d.opt.MaxRepetitions))
	r := len(names) - n
	out := make([]gosnmp.SnmpPDU, 0, n+min(m*r, 4096))
	size := 0
	add := func(p gosnmp.SnmpPDU) bool {
		s := varbindSize(&p)
		if size+s > budget {
			return false
		}
		size += s
		out = append(out, p)
		return true
	}
	for i := range n {
		p, _ := d.getNext(names[i], c)
		if !add(p) {
			return out
		}
	}
	if r == 0 {
		return out
	}
	cur := make([][]uint32, r)
	copy(cur, names[n:])
	ended := make([]bool, r)
	for range m {
		allEnded := true
		for j := range r {
			var p gosnmp.SnmpPDU
			if ended[j] {
				p = gosnmp.SnmpPDU{Name: formatOID(cur[j]), Type: gosnmp.EndOfMibView}
			} else {
				var next []uint32
				p, next = d.getNext(cur[j], c)
				if next == nil {
					ended[j] = true
				} else {
					cur[j] = next
					allEnded = false
				}
			}
			if !add(p) {
				return out
			}
		}
		if allEnded {
			break
		}
	}
	return out
}

// berLenSize is the size of a BER length field for n content bytes.
func berLenSize(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n < 0x100:
		return 2
	case n < 0x10000:
		return 3
	}
	return 4
}

func tlvSize(n int) int { return 1 + berLenSize(n) + n }

// oidContentSize is the BER content size of a dotted OID (leading dot
// optional): the first two arcs share one sub-identifier (X.690 8.19).
func oidContentSize(s string) int {
	n, arc := 0, 0
	var v, first uint64
	digits := false
	end := func() {
		if !digits {
			return
		}
		switch arc {
		case 0:
			first = v
		case 1:
			n += base128Size(first*40 + v)
		default:
			n += base128Size(v)
		}
		arc++
		v, digits = 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			end()
			continue
		}
		v = v*10 + uint64(s[i]-'0')
		digits = true
	}
	end()
	if arc == 1 {
		n++
	}
	return n
}

func base128Size(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// intContentSize is the size of a BER INTEGER holding v (unsigned types
// may need a leading zero byte).
func intContentSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 8
		n++
	}
	return n
}

// varbindSize is the encoded size of one varbind (an upper bound for the
// value part where the encoding is data-dependent).
func varbindSize(p *gosnmp.SnmpPDU) int {
	val := 0
	switch v := p.Value.(type) {
	case []byte:
		val = len(v)
	case string:
		if p.Type == gosnmp.ObjectIdentifier {
			val = oidContentSize(v)
		} else {
			val = len(v)
		}
	case uint32:
		val = intContentSize(uint64(v)) + 1
	case uint64:
		val = intContentSize(v) + 1
	case int:
		val = 5
	}
	return tlvSize(tlvSize(oidContentSize(p.Name)) + tlvSize(val))
}
