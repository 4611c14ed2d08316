// Package featurestore is netfeat's feature store: it makes normalized
// sample batches durable, keeps them in an Arrow-ready in-memory hot tier,
// computes the feature views' windowed aggregates as event time advances,
// and serves the latest feature row of every entity.
//
// A Store is opened on a directory (one Badger database) with the views it
// runs:
//
//	s, err := featurestore.Open(ctx, dir, cfg, views, reg, log)
//	s.Subscribe(func(row *schema.FeatureRow) { /* hand to inference */ })
//	err = s.Start(ctx)            // rebuilds open windows, starts the goroutines
//	err = s.Append(ctx, samples)  // nil: in the WAL, survives kill -9
//	row, ok := s.Latest("if_traffic", schema.Entity{Device: "r1", Component: "Gi0/0/0/0"})
//	recs := s.SnapshotSamples()   // zero-copy Arrow batches for SQL
//	err = s.Stop(ctx); err = s.Close()
//
// docs/featurestore.md describes the design, configuration, recovery from a
// damaged directory and the measured performance; docs/format/*.md the
// on-disk formats.
package featurestore
