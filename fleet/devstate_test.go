package fleet

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

// TestDeviceStateCodec: a device state survives its document and a batch
// with its item id; bad documents are ErrCorrupt.
func TestDeviceStateCodec(t *testing.T) {
	d := testDeviceState(4) // down, with a last error
	d.Heartbeat = true
	doc, err := EncodeDeviceState(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDeviceState(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := *d
	want.SchemaVersion = DeviceStateSchemaVersion
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
	}
	// A non-finite duration is written as 0.
	nan := *d
	nan.LastDurationMS = math.NaN()
	if doc, err := EncodeDeviceState(&nan); err != nil {
		t.Fatal(err)
	} else if got, err := DecodeDeviceState(doc); err != nil || got.LastDurationMS != 0 {
		t.Errorf("NaN duration: %+v, %v", got, err)
	}

	// Two states in a batch: each keeps its own id.
	ds := []*DeviceState{testDeviceState(1), testDeviceState(2)}
	body, err := appendDocs(nil, len(ds), func(b []byte, i int) ([]byte, error) { return appendDeviceStateDoc(b, ds[i]) })
	if err != nil {
		t.Fatal(err)
	}
	data, err := compressBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	items, err := DecodeItems("paris", KindDevices, data, EncodingZstd, "batch-id")
	if err != nil || len(items) != 2 {
		t.Fatalf("batch: %d items, %v", len(items), err)
	}
	for i, it := range items {
		if it.ID != DeviceStateID("paris", ds[i]) || it.Device.Device != ds[i].Device || it.Device.TS != ds[i].TS {
			t.Errorf("item %d: %s %+v", i, it.ID, it.Device)
		}
	}
	// Ids: the same state, the same id; another time or state, another.
	a, b := testDeviceState(1), testDeviceState(1)
	if DeviceStateID("paris", a) != DeviceStateID("paris", b) || DeviceStateID("paris", a) == DeviceStateID("lyon", a) {
		t.Error("DeviceStateID is not a function of site and state")
	}
	b.TS++
	if DeviceStateID("paris", a) == DeviceStateID("paris", b) {
		t.Error("two times of a device share an id")
	}

	for _, tc := range []struct{ name, doc string }{
		{"not json", `{"schema_version":1,`},
		{"wrong version", `{"schema_version":2,"ts":1,"device":"pe1","state":"up"}`},
		{"no device", `{"schema_version":1,"ts":1,"state":"up"}`},
		{"no state", `{"schema_version":1,"ts":1,"device":"pe1"}`},
		{"no ts", `{"schema_version":1,"device":"pe1","state":"up"}`},
		{"wrong type", `{"schema_version":1,"ts":1,"device":"pe1","state":"up","errors":"many"}`},
	} {
		if _, err := DecodeDeviceState([]byte(tc.doc)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
		}
	}
}
