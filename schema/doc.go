// Package schema is netfeat's canonical vocabulary: the raw Observation a
// collector emits, the normalized Sample, the Entity a sample describes, the
// metric catalog, feature-view definitions, feature rows, decisions and the
// Arrow schema of every SQL table.
//
// Every other netfeat package imports schema; schema imports none of them.
// The types here are the contracts between pipeline stages, so they are kept
// small, allocation-free on the hot path (times are int64 Unix nanoseconds,
// values are unboxed) and documented field by field.
package schema
