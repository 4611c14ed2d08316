package backtest

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestReadExport(t *testing.T) {
	const csv = `ts,device,component,congested,incident,v__window_end,v__a,v__b
T60,r,x,0,,T55,1,2
T60,r,y,1,congestion,T55,3,
T65,r,y,1,congestion,T60,4,5
T70,r,y,,congestion-ended,T65,6,7
T75,r,y,1,congestion,T70,8,9
T75,r,x,0,,,,
`
	rep := strings.NewReplacer("T55", ns(55), "T60", ns(60), "T65", ns(65), "T70", ns(70), "T75", ns(75))
	exp, err := ReadExport(strings.NewReader(rep.Replace(csv)))
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Labels) != 1 || exp.Labels[0] != "congested" {
		t.Fatalf("labels %v, want [congested] (incident is text)", exp.Labels)
	}
	if !exp.From.Equal(at(60)) || !exp.To.Equal(at(75)) {
		t.Fatalf("span %v–%v", exp.From, exp.To)
	}
	// The empty label ends the first episode; a second starts at 75 s.
	want := []Episode{
		{Kind: "congested", Device: "r", Component: "y", Start: at(60), End: at(65)},
		{Kind: "congested", Device: "r", Component: "y", Start: at(75), End: at(75)},
	}
	if len(exp.Episodes) != len(want) {
		t.Fatalf("episodes %+v", exp.Episodes)
	}
	for i := range want {
		if exp.Episodes[i] != want[i] {
			t.Errorf("episode %d = %+v, want %+v", i, exp.Episodes[i], want[i])
		}
	}
	// Five distinct windows (the last x row has none), by window end.
	if len(exp.Rows) != 5 {
		t.Fatalf("%d rows, want 5", len(exp.Rows))
	}
	r := exp.Rows[1]
	if r.View != "v" || r.Device != "r" || r.Component != "y" || r.WindowEnd != at(55).UnixNano() || len(r.Names) != 2 || r.Names[1] != "b" ||
		r.Values[0] != 3 || !math.IsNaN(r.Values[1]) {
		t.Fatalf("row %+v %v %v", r, r.Names, r.Values)
	}
	for i := 1; i < len(exp.Rows); i++ {
		if exp.Rows[i].WindowEnd < exp.Rows[i-1].WindowEnd {
			t.Fatal("rows not in window order")
		}
	}
}

func ns(s int) string { return strconv.FormatInt(at(s).UnixNano(), 10) }

func TestReadExportBad(t *testing.T) {
	tests := []struct{ name, csv, want string }{
		{"no ts", "device,v__a\nr,1\n", "want the columns ts and device"},
		{"no view", "ts,device,label\n1,r,1\n", "no <view>__<feature> column"},
		{"bad ts", "ts,device,v__window_end,v__a\nyesterday,r,1,1\n", "row 2: ts"},
		{"bad feature", "ts,device,v__window_end,v__a\n1,r,1,x\n", "v__a"},
	}
	for _, tc := range tests {
		_, err := ReadExport(strings.NewReader(tc.csv))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
