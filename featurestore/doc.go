// Package featurestore is netfeat's feature store: it makes normalized
// sample batches durable, keeps them in an Arrow-ready in-memory hot tier,
// computes the feature views' windowed aggregates as event time advances,
// and serves the latest feature row of every entity.
//
// A Store is built for a directory (one Badger database beside the WAL and
// chunk segment files) with the views it runs; New does no I/O, Start opens
// and recovers the directory:
//
//	s, err := featurestore.New(cfg, views, dir, reg, log)
//	s.Subscribe(func(row *schema.FeatureRow) { /* hand to inference */ })
//	err = s.Start(ctx)            // opens, recovers, rebuilds open windows, starts the goroutines
//	err = s.Append(ctx, samples)  // nil: in the WAL, survives kill -9
//	row, ok := s.Latest("if_traffic", schema.Entity{Device: "r1", Component: "Gi0/0/0/0"})
//	recs := s.SnapshotSamples()   // zero-copy Arrow batches for SQL
//	err = s.Stop(ctx)             // drains, syncs the WAL, closes everything
//
// docs/featurestore.md describes the design, configuration, recovery from a
// damaged directory and the measured performance; docs/format/*.md the
// on-disk formats.
package featurestore
