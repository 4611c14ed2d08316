package inference_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/schema"
)

// A runtime with one rule scores a closed window. Without a NATS
// connection the decision waits in the outbox; RecentDecisions shows it.
func Example() {
	dir, _ := os.MkdirTemp("", "netfeat-example")
	defer os.RemoveAll(dir)

	cfg := inference.DefaultConfig()
	cfg.Rules = []inference.RuleConfig{{
		Name: "cpu_high", View: "device_1m", Feature: "system_cpu_utilization__mean_1m",
		Op: ">", Threshold: 0.9, Action: "alert",
	}}
	rt, err := inference.New(cfg, nil, dir, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	_ = rt.Start(ctx)

	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rt.HandleRow(&schema.FeatureRow{
		View: "device_1m", Entity: schema.Entity{Device: "pe1.lab"},
		WindowStart: end.Add(-time.Minute).UnixNano(), WindowEnd: end.UnixNano(),
		Names:  []string{"system_cpu_utilization__mean_1m"},
		Values: []float64{0.97},
	})
	var ds []schema.Decision
	for len(ds) == 0 {
		time.Sleep(time.Millisecond)
		ds, _ = rt.RecentDecisions(1)
	}
	d := ds[0]
	fmt.Println(schema.DecisionSubject(d.Model, d.Entity.Device))
	fmt.Println(d.Action, d.Score, d.Reason)
	_ = rt.Stop(ctx)
	// Output:
	// netfeat.decisions.cpu_high.pe1_lab
	// alert 1 system_cpu_utilization__mean_1m=0.97 > 0.9
}
