package snmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/schema"
)

// tlv encodes one BER element (definite length, short or long form).
func tlv(tag byte, content ...[]byte) []byte {
	c := bytes.Join(content, nil)
	return append(appendLength([]byte{tag}, len(c)), c...)
}

func appendLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 0x100:
		return append(dst, 0x81, byte(n))
	default:
		return append(dst, 0x82, byte(n>>8), byte(n))
	}
}

func berOID(s string) []byte {
	b := appendOID(nil, mustOID(s))
	return b[2:] // content only (short form in these tests)
}

func berUintBytes(u uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, u)
	for len(b) > 1 && b[0] == 0 && b[1]&0x80 == 0 {
		b = b[1:]
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// rawResponse wraps varbinds (each a SEQUENCE) in an SNMPv2c GetResponse.
func rawResponse(reqID int32, errStatus int, varbinds ...[]byte) []byte {
	pdu := tlv(pduGetResponse, appendInt(nil, int64(reqID)), appendInt(nil, int64(errStatus)), appendInt(nil, 0),
		tlv(tagSequence, varbinds...))
	return tlv(tagSequence, appendInt(nil, snmpV2c), tlv(tagOctetString, []byte("public")), pdu)
}

func vb(oid string, tag byte, content []byte) []byte {
	return tlv(tagSequence, tlv(tagOID, berOID(oid)), tlv(tag, content))
}

// decodeBoth decodes msg with gosnmp (and toObservation, as the poller did
// before it had its own decoder) and with response.decode and pollBuf.
func decodeBoth(t *testing.T, msg []byte) (want, got []schema.Observation, wantErr, gotErr error) {
	t.Helper()
	g := &gosnmp.GoSNMP{Version: gosnmp.Version2c}
	if p, err := g.SnmpDecodePacket(append([]byte(nil), msg...)); err != nil {
		wantErr = err
	} else {
		for i := range p.Variables {
			if o, ok := toObservation("dev", schema.ProtocolSNMP, &p.Variables[i], 7); ok {
				want = append(want, o)
			}
		}
	}
	var r response
	if err := r.decode(msg); err != nil {
		return want, nil, wantErr, err
	}
	var b pollBuf
	for i := range r.vbs {
		if v := &r.vbs[i]; v.hold {
			b.add("dev", v, 7, nil, v.name)
		}
	}
	b.finish()
	return want, b.batch, wantErr, nil
}

// TestDecodeMatchesGosnmp checks that the v2c decoder turns every SNMP
// value type into the observation gosnmp's decoding gave, including the
// edge cases gosnmp handles in its own way.
func TestDecodeMatchesGosnmp(t *testing.T) {
	f32 := binary.BigEndian.AppendUint32([]byte{0x9f, tagOpaqueFloat, 4}, math.Float32bits(1.5))
	f64 := binary.BigEndian.AppendUint64([]byte{0x9f, tagOpaqueDouble, 8}, math.Float64bits(-2.25))
	cases := []struct {
		name string
		vbs  [][]byte
	}{
		{"integers", [][]byte{
			vb("1.3.6.1.2.1.2.2.1.7.1", tagInteger, []byte{1}),
			vb("1.3.6.1.2.1.2.2.1.7.2", tagInteger, []byte{0xff}),                      // -1
			vb("1.3.6.1.2.1.2.2.1.7.3", tagInteger, []byte{0x80, 0, 0, 0}),             // -2^31
			vb("1.3.6.1.2.1.2.2.1.7.4", tagInteger, []byte{0x7f, 1, 2, 3, 4, 5, 6, 7}), // 8 bytes
			vb("1.3.6.1.2.1.2.2.1.7.5", tagUinteger32, []byte{0, 0xff, 0xff, 0xff, 0xff}),
		}},
		{"unsigned", [][]byte{
			vb("1.3.6.1.2.1.2.2.1.10.1", tagCounter32, berUintBytes(math.MaxUint32)),
			vb("1.3.6.1.2.1.2.2.1.10.2", tagCounter32, nil), // empty: 0, as gosnmp reads it
			vb("1.3.6.1.2.1.2.2.1.5.1", tagGauge32, berUintBytes(1e9)),
			vb("1.3.6.1.2.1.1.3.0", tagTimeTicks, berUintBytes(123456)),
			vb("1.3.6.1.2.1.1.3.0", tagTimeTicks, berUintBytes(1<<33+5)), // cut to 32 bits
			vb("1.3.6.1.2.1.31.1.1.1.6.1", tagCounter64, berUintBytes(math.MaxUint64)),
			vb("1.3.6.1.2.1.31.1.1.1.6.2", tagCounter64, berUintBytes(1)),
			vb("1.3.6.1.2.1.31.1.1.1.6.3", tagCounter64, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}), // too wide: no value
		}},
		{"strings", [][]byte{
			vb("1.3.6.1.2.1.2.2.1.2.1", tagOctetString, []byte("port 1/1/1, 100-Gig Ethernet")),
			vb("1.3.6.1.2.1.2.2.1.6.1", tagOctetString, []byte{0, 0x1b, 0x21, 0xff, 0x80, 0}), // MAC
			vb("1.3.6.1.2.1.2.2.1.2.2", tagOctetString, nil),
			vb("1.3.6.1.2.1.2.2.1.2.3", tagOctetString, bytes.Repeat([]byte("x"), 300)), // long length form
			vb("1.3.6.1.2.1.1.2.0", tagOID, berOID("1.3.6.1.4.1.6527.1.3.17")),
			vb("1.3.6.1.2.1.1.2.0", tagOID, nil), // net-snmp and gosnmp: 0.0
			vb("1.3.6.1.2.1.4.20.1.1.10.0.0.1", tagIPAddress, []byte{10, 0, 0, 1}),
			vb("1.3.6.1.2.1.4.20.1.1.0", tagIPAddress, nil),
			vb("1.3.6.1.2.1.4.20.1.1.6", tagIPAddress, net.ParseIP("2001:db8::1")),
			vb("1.3.6.1.2.1.4.20.1.1.7", tagIPAddress, net.ParseIP("192.0.2.7")), // v4-mapped, 16 bytes
		}},
		{"opaque", [][]byte{
			vb("1.3.6.1.4.1.2021.10.1.6.1", tagOpaque, f32),
			vb("1.3.6.1.4.1.2021.10.1.6.2", tagOpaque, f64),
			vb("1.3.6.1.4.1.2021.10.1.6.3", tagOpaque, []byte{1, 2, 3}),
		}},
		{"exceptions and others", [][]byte{
			vb("1.3.6.1.2.1.1.99.0", tagNoSuchObject, nil),
			vb("1.3.6.1.2.1.1.3.0.1", tagNoSuchInstance, nil),
			vb("1.3.6.1.2.1.99", tagEndOfMibView, nil),
			vb("1.3.6.1.2.1.1.8.0", tagNull, nil),
			vb("1.3.6.1.2.1.1.9.0", tagBitString, []byte{0, 0xf0}), // gosnmp: unknown type, no observation
			vb("2.999.4294967295.128.16384", tagInteger, []byte{5}),
			vb("1.39.0", tagInteger, []byte{6}),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, got, wantErr, gotErr := decodeBoth(t, rawResponse(42, 0, tc.vbs...))
			if wantErr != nil || gotErr != nil {
				t.Fatalf("gosnmp: %v; ours: %v", wantErr, gotErr)
			}
			if len(got) != len(want) {
				t.Fatalf("%d observations, gosnmp %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("observation %d:\n got %+v\nwant %+v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestDecodeRefusesMalformed checks that broken answers are errors (the
// poll's bad_response) where gosnmp refused them too.
func TestDecodeRefusesMalformed(t *testing.T) {
	good := rawResponse(1, 0, vb("1.3.6.1.2.1.1.3.0", tagTimeTicks, []byte{1}))
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"truncated", good[:len(good)-3]},
		{"empty INTEGER", rawResponse(1, 0, vb("1.3.6.1.2.1.2.2.1.7.1", tagInteger, nil))},
		{"INTEGER of 9 bytes", rawResponse(1, 0, vb("1.3.6.1.2.1.2.2.1.7.1", tagInteger, make([]byte, 9)))},
		{"IpAddress of 5 bytes", rawResponse(1, 0, vb("1.3.6.1.2.1.4.20.1.1.0", tagIPAddress, make([]byte, 5)))},
		{"truncated OID arc", rawResponse(1, 0, tlv(tagSequence, tlv(tagOID, []byte{0x2b, 0x86}), tlv(tagNull)))},
		{"OID arc beyond 32 bits", rawResponse(1, 0, tlv(tagSequence, tlv(tagOID, []byte{0x2b, 0x90, 0x80, 0x80, 0x80, 0}), tlv(tagNull)))},
		{"short Opaque float", rawResponse(1, 0, vb("1.3.6.1.4.1.2021.10.1.6.1", tagOpaque, []byte{0x9f, tagOpaqueFloat, 2, 1, 2}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, wantErr, gotErr := decodeBoth(t, tc.msg)
			if gotErr == nil {
				t.Fatalf("decoded a malformed answer (gosnmp: %v)", wantErr)
			}
			if wantErr == nil {
				t.Fatalf("gosnmp accepted what we refuse: %v", gotErr)
			}
		})
	}
	var r response
	for _, msg := range [][]byte{
		tlv(tagSequence, appendInt(nil, 0), tlv(tagOctetString, []byte("public")), tlv(pduGetResponse)), // v1
		bytes.Replace(good, []byte{pduGetResponse}, []byte{0xa8}, 1),                                    // Report
	} {
		if err := r.decode(msg); err == nil {
			t.Errorf("decoded % x", msg)
		}
	}
}

// TestRequestEncoding decodes the requests we encode with gosnmp.
func TestRequestEncoding(t *testing.T) {
	long := "1.3.6.1.4.1.99999"
	for i := range 60 {
		long += "." + strconv.Itoa(200+i) // two bytes each: a 120+ byte OID, long length form
	}
	oids := []string{"1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.31.1.1.1.6.4294967295", "2.999.3", "0.0", long}
	var arcs [][]uint32
	for _, o := range oids {
		arcs = append(arcs, mustOID(o))
	}
	dec := &gosnmp.GoSNMP{Version: gosnmp.Version2c}
	for _, tc := range []struct {
		pdu    byte
		typ    gosnmp.PDUType
		reqID  int32
		maxRep uint32
	}{{pduGet, gosnmp.GetRequest, 1, 0}, {pduGetBulk, gosnmp.GetBulkRequest, math.MaxInt32, 25}, {pduGetBulk, gosnmp.GetBulkRequest, 300, 1000}} {
		msg := appendRequest(nil, "s3cr#t", tc.pdu, tc.reqID, tc.maxRep, arcs)
		p, err := dec.SnmpDecodePacket(msg)
		if err != nil {
			t.Fatalf("gosnmp cannot decode our %v: %v\n% x", tc.typ, err, msg)
		}
		if p.Version != gosnmp.Version2c || p.Community != "s3cr#t" || p.PDUType != tc.typ || p.RequestID != uint32(tc.reqID) {
			t.Fatalf("decoded %v %q %v id %d", p.Version, p.Community, p.PDUType, p.RequestID)
		}
		if tc.pdu == pduGetBulk && (p.NonRepeaters != 0 || p.MaxRepetitions != tc.maxRep) {
			t.Fatalf("non-repeaters %d, max-repetitions %d; want 0, %d", p.NonRepeaters, p.MaxRepetitions, tc.maxRep)
		}
		if len(p.Variables) != len(oids) {
			t.Fatalf("%d varbinds, want %d", len(p.Variables), len(oids))
		}
		for i, v := range p.Variables {
			if v.Name != "."+oids[i] || v.Type != gosnmp.Null {
				t.Fatalf("varbind %d: %s %v, want .%s Null", i, v.Name, v.Type, oids[i])
			}
		}
	}
}

// FuzzDecode checks that no input makes the decoder panic or hand out
// names outside its arena.
func FuzzDecode(f *testing.F) {
	f.Add(rawResponse(1, 0, vb("1.3.6.1.2.1.1.3.0", tagTimeTicks, []byte{1}), vb("1.3.6.1.2.1.1.2.0", tagOID, berOID("1.3.6.1.4.1.9"))))
	f.Add(rawResponse(7, 1, vb("1.3.6.1.2.1.4.20.1.1.0", tagIPAddress, []byte{1, 2, 3, 4}), vb("1.3.6.1.2.1.1.9.0", tagOpaque, []byte{0x9f, 0x78, 4, 1, 2, 3, 4})))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var r response
		if err := r.decode(msg); err != nil {
			return
		}
		var b pollBuf
		for i := range r.vbs {
			v := &r.vbs[i]
			if len(v.name) < 2 {
				t.Fatalf("varbind %d: name of %d arcs", i, len(v.name))
			}
			if v.hold {
				b.add("d", v, 0, nil, v.name)
			}
		}
		b.finish()
	})
}

// tableAgent is an SNMPv2c agent with real GETBULK semantics over a table
// of rows × columns (Counter32 cells) and the identity scalars; it records
// every GETBULK's max-repetitions.
type tableAgent struct {
	mu      sync.Mutex
	oids    [][]uint32 // sorted
	maxReps []uint32
}

func (a *tableAgent) setRows(cols []string, rows int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.oids = a.oids[:0]
	for _, c := range cols {
		for r := 1; r <= rows; r++ {
			a.oids = append(a.oids, mustOID(c+"."+strconv.Itoa(r)))
		}
	}
	a.oids = append(a.oids, mustOID("1.3.6.1.2.1.99.1")) // something after the table
	slices.SortFunc(a.oids, compareOID)
}

func (a *tableAgent) reps() []uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.maxReps
	a.maxReps = nil
	return out
}

func (a *tableAgent) reply(req *gosnmp.SnmpPacket, _ []byte) []byte {
	if req.PDUType != gosnmp.GetBulkRequest {
		return respond(req, identityVars(req))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.maxReps = append(a.maxReps, req.MaxRepetitions)
	cur := make([][]uint32, len(req.Variables))
	for i, v := range req.Variables {
		cur[i] = mustOID(v.Name)
	}
	var vars []gosnmp.SnmpPDU
	for range req.MaxRepetitions {
		for i := range cur {
			j, _ := slices.BinarySearchFunc(a.oids, cur[i], compareOID)
			for j < len(a.oids) && compareOID(a.oids[j], cur[i]) <= 0 {
				j++
			}
			name := "." + string(appendDotted(nil, cur[i]))
			if j == len(a.oids) {
				vars = append(vars, gosnmp.SnmpPDU{Name: name, Type: gosnmp.EndOfMibView})
				continue
			}
			cur[i] = a.oids[j]
			vars = append(vars, gosnmp.SnmpPDU{Name: "." + string(appendDotted(nil, cur[i])), Type: gosnmp.Counter32, Value: uint32(j)})
		}
	}
	return respond(req, vars)
}

// TestWalkSizesRepetitions checks that a poll asks for no more rows than
// the previous poll found (plus one to see the end), and that a table that
// grew or shrank is still walked whole.
func TestWalkSizesRepetitions(t *testing.T) {
	cols := []string{"1.3.6.1.2.1.2.2.1.10", "1.3.6.1.2.1.2.2.1.16"}
	agent := &tableAgent{}
	agent.setRows(cols, 50)
	addr := fakeAgent(t, agent.reply)
	cfg := DefaultConfig()
	cfg.Targets = []Target{{Name: "t", Address: addr}}
	sink := &collect{}
	p, err := New(cfg, StaticPlan{Columns: cols}, sink, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	poll := func(rows int, wantReps []uint32) {
		t.Helper()
		sink.batches = nil
		if err := p.PollOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := agent.reps(); !slices.Equal(got, wantReps) {
			t.Errorf("%d rows: GETBULK max-repetitions %v, want %v", rows, got, wantReps)
		}
		n := 0
		for _, o := range sink.byDevice()["t"] {
			if strings.HasPrefix(o.Path, "1.3.6.1.2.1.2.2.1.") {
				n++
			}
		}
		if n != rows*len(cols) {
			t.Errorf("%d rows: %d table observations, want %d", rows, n, rows*len(cols))
		}
	}
	poll(50, []uint32{25, 25, 25}) // nothing known: max_repetitions
	poll(50, []uint32{25, 25, 1})  // 50 rows last time: 25 + 25, then 1 to see the end
	poll(50, []uint32{25, 25, 1})
	agent.setRows(cols, 60) // grew: the end check finds more, then max_repetitions again
	poll(60, []uint32{25, 25, 1, 25})
	agent.setRows(cols, 10) // shrank: the first request already ends it
	poll(10, []uint32{25})
	poll(10, []uint32{11})
	agent.setRows(cols, 0)
	poll(0, []uint32{11})
	poll(0, []uint32{1})
}
