// The `store:` configuration section, its defaults and validation. Plain
// values: no goroutine owns them; the Store keeps its own copy.

package featurestore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/schema"
)

// FSyncPolicy says when the write-ahead log is flushed to stable storage.
type FSyncPolicy string

// WAL fsync policies.
const (
	// FSyncAlways commits and fsyncs every Append batch on its own: the
	// slowest policy, with no grouping across appenders.
	FSyncAlways FSyncPolicy = "always"
	// FSyncBatch groups the batches of concurrent appenders that queue up
	// while a commit is in flight (plus GroupCommitDelay) into one commit
	// with one fsync. Every acknowledged batch is on stable storage.
	FSyncBatch FSyncPolicy = "batch"
	// FSyncInterval group-commits without fsync and syncs every
	// FSyncInterval. Acknowledged batches survive a process crash (kill -9);
	// a power loss may lose up to one interval.
	FSyncInterval FSyncPolicy = "interval"
)

// RecoveryMode says what Start does with a damaged entry in the data
// directory.
type RecoveryMode string

// Recovery modes.
const (
	// RecoveryFail refuses to open a store with a damaged entry and names it
	// in the error. This is the default: nothing is ever dropped silently.
	RecoveryFail RecoveryMode = "fail"
	// RecoveryQuarantine moves each damaged entry under the quarantine
	// prefix (kept, not deleted), logs and counts it, and opens the store
	// without it. Use it after reading docs/featurestore.md.
	RecoveryQuarantine RecoveryMode = "quarantine"
)

// ByteSize is a size in bytes that YAML may write as an integer or with a
// unit suffix: "512MiB", "2GiB", "64MB", "1048576".
type ByteSize int64

// UnmarshalYAML accepts an integer or a size string.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes the size in bytes.
func (b ByteSize) MarshalYAML() (any, error) { return int64(b), nil }

// ParseByteSize parses "123", "64KiB", "512MiB", "2GiB", "10MB", "1GB".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want a non-negative integer with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: over 8 EiB", s)
	}
	return ByteSize(n * mult), nil
}

// Maxima of the sizes Validate checks.
const (
	maxStoreQueue       = 65536
	maxMemoryBudget     = 1 << 40
	maxBadgerMemTable   = 1 << 30
	maxBadgerBlockCache = 16 << 30
)

// Config is the `store:` section of the configuration.
type Config struct {
	// SealRows seals the open hot-tier chunk when it holds this many rows.
	SealRows int `yaml:"seal_rows"`
	// SealAge seals the open chunk when its first row is this old (wall
	// clock), so that small feeds still reach durable chunks.
	SealAge time.Duration `yaml:"seal_age"`
	// RetentionAge drops sealed chunks from the hot tier when their newest
	// sample is older than this (event time against wall clock). They stay
	// in Badger until ChunkTTL.
	RetentionAge time.Duration `yaml:"retention_age"`
	// MemoryBudget bounds the bytes of sample data in the hot tier; over it,
	// the oldest sealed chunk is dropped from memory first.
	MemoryBudget ByteSize `yaml:"memory_budget"`
	// FSync is the WAL fsync policy: always, batch or interval.
	FSync FSyncPolicy `yaml:"fsync"`
	// FSyncInterval is the sync period of the interval policy.
	FSyncInterval time.Duration `yaml:"fsync_interval"`
	// GroupCommitDelay makes the batch policy wait this long after the first
	// queued batch for more appenders to join the commit; 0 groups only what
	// queued while the previous commit ran.
	GroupCommitDelay time.Duration `yaml:"group_commit_delay"`
	// ChunkTTL is how long sealed chunks and closed feature rows are kept
	// in Badger; 0 keeps them until deleted.
	ChunkTTL time.Duration `yaml:"chunk_ttl"`
	// Recovery is what Start does with damaged entries: fail or quarantine.
	Recovery RecoveryMode `yaml:"recovery"`
	// CommitQueue is how many Append batches may wait for the WAL commit
	// before Append blocks (back-pressure).
	CommitQueue int `yaml:"commit_queue"`
	// WindowQueue is how many committed batches may wait for the window
	// engine before the committer blocks.
	WindowQueue int `yaml:"window_queue"`
	// BadgerMemTable is the size of one Badger memtable (Badger keeps two,
	// allocated on the Go heap). Badger holds series definitions, chunk
	// locations, feature rows and the online view; the WAL and the chunks
	// are in segment files beside it.
	BadgerMemTable ByteSize `yaml:"badger_memtable"`
	// BadgerBlockCache is the size of Badger's block cache.
	BadgerBlockCache ByteSize `yaml:"badger_block_cache"`
	// MaxClockSkew is how far a sample's event time may be ahead of both
	// its ingest time and the store's clock and still move the views'
	// watermarks. A sample further ahead (a device clock in the future) is
	// stored and windowed for its own entity, but never closes another
	// entity's windows. The normalizer restamps such samples first
	// (normalize.max_clock_skew); this is the store's own guard.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// MaxSeries bounds the number of series (device, component, metric)
	// the store knows. A sample of a new series beyond it is refused and
	// counted (reason "series_limit").
	MaxSeries int `yaml:"max_series"`
}

// Limits of the store's input guards.
const (
	// MaxMaxSeries is the largest allowed MaxSeries (series ids are int32).
	MaxMaxSeries = 1 << 30
	// MaxNameBytes is the longest device, component or metric name the
	// store accepts, in bytes; a longer one is refused (reason
	// "name_too_long"). The normalizer's own limit is lower.
	MaxNameBytes = 4096
)

// DefaultConfig returns the defaults every unset field takes.
func DefaultConfig() Config {
	return Config{
		SealRows:         65536,
		SealAge:          10 * time.Second,
		RetentionAge:     time.Hour,
		MemoryBudget:     512 << 20,
		FSync:            FSyncInterval,
		FSyncInterval:    100 * time.Millisecond,
		GroupCommitDelay: 0,
		ChunkTTL:         7 * 24 * time.Hour,
		Recovery:         RecoveryFail,
		CommitQueue:      1024,
		WindowQueue:      1024,
		BadgerMemTable:   8 << 20,
		BadgerBlockCache: 8 << 20,
		MaxClockSkew:     time.Minute,
		MaxSeries:        2_000_000,
	}
}

// WithDefaults returns c with every zero field set from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.SealRows == 0 {
		c.SealRows = d.SealRows
	}
	if c.SealAge == 0 {
		c.SealAge = d.SealAge
	}
	if c.RetentionAge == 0 {
		c.RetentionAge = d.RetentionAge
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = d.MemoryBudget
	}
	if c.FSync == "" {
		c.FSync = d.FSync
	}
	if c.FSyncInterval == 0 {
		c.FSyncInterval = d.FSyncInterval
	}
	if c.Recovery == "" {
		c.Recovery = d.Recovery
	}
	if c.CommitQueue == 0 {
		c.CommitQueue = d.CommitQueue
	}
	if c.WindowQueue == 0 {
		c.WindowQueue = d.WindowQueue
	}
	if c.BadgerMemTable == 0 {
		c.BadgerMemTable = d.BadgerMemTable
	}
	if c.BadgerBlockCache == 0 {
		c.BadgerBlockCache = d.BadgerBlockCache
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = d.MaxClockSkew
	}
	if c.MaxSeries == 0 {
		c.MaxSeries = d.MaxSeries
	}
	return c
}

// Validate checks the section after defaults are applied and returns every
// problem as a *schema.FieldError (Field relative to `store:`), joined.
func (c *Config) Validate() error {
	d := c.WithDefaults()
	c = &d
	var errs []error
	if c.SealRows < 1 || c.SealRows > 1<<24 {
		errs = append(errs, schema.Errorf("seal_rows", "%d: must be between 1 and %d", c.SealRows, 1<<24))
	}
	if c.SealAge < 0 {
		errs = append(errs, schema.Errorf("seal_age", "%v: must not be negative", c.SealAge))
	}
	if c.RetentionAge < 0 {
		errs = append(errs, schema.Errorf("retention_age", "%v: must not be negative", c.RetentionAge))
	}
	if c.MemoryBudget < 1<<20 || c.MemoryBudget > maxMemoryBudget {
		errs = append(errs, schema.Errorf("memory_budget", "%d bytes: must be 1MiB–1TiB", c.MemoryBudget))
	}
	switch c.FSync {
	case FSyncAlways, FSyncBatch, FSyncInterval:
	default:
		errs = append(errs, schema.Errorf("fsync", "%q: must be always, batch or interval", c.FSync))
	}
	if c.FSyncInterval < 0 {
		errs = append(errs, schema.Errorf("fsync_interval", "%v: must not be negative", c.FSyncInterval))
	}
	if c.GroupCommitDelay < 0 || c.GroupCommitDelay > time.Second {
		errs = append(errs, schema.Errorf("group_commit_delay", "%v: must be between 0 and 1s", c.GroupCommitDelay))
	}
	if c.ChunkTTL < 0 {
		errs = append(errs, schema.Errorf("chunk_ttl", "%v: must not be negative", c.ChunkTTL))
	}
	switch c.Recovery {
	case RecoveryFail, RecoveryQuarantine:
	default:
		errs = append(errs, schema.Errorf("recovery", "%q: must be fail or quarantine", c.Recovery))
	}
	// The queues and Badger's memtables and cache are allocated at start:
	// their maxima keep a typo from exhausting memory (#20).
	if c.CommitQueue < 1 || c.CommitQueue > maxStoreQueue {
		errs = append(errs, schema.Errorf("commit_queue", "%d: must be 1–%d", c.CommitQueue, maxStoreQueue))
	}
	if c.WindowQueue < 1 || c.WindowQueue > maxStoreQueue {
		errs = append(errs, schema.Errorf("window_queue", "%d: must be 1–%d", c.WindowQueue, maxStoreQueue))
	}
	if c.BadgerMemTable < 4<<20 || c.BadgerMemTable > maxBadgerMemTable {
		errs = append(errs, schema.Errorf("badger_memtable", "%d bytes: must be 4MiB–1GiB", c.BadgerMemTable))
	}
	if c.BadgerBlockCache < 0 || c.BadgerBlockCache > maxBadgerBlockCache {
		errs = append(errs, schema.Errorf("badger_block_cache", "%d bytes: must be 0–16GiB", c.BadgerBlockCache))
	}
	if c.MaxClockSkew < time.Second || c.MaxClockSkew > 24*time.Hour {
		errs = append(errs, schema.Errorf("max_clock_skew", "%v: must be between 1s and 24h", c.MaxClockSkew))
	}
	if c.MaxSeries < 1 || c.MaxSeries > MaxMaxSeries {
		errs = append(errs, schema.Errorf("max_series", "%d: must be between 1 and %d", c.MaxSeries, MaxMaxSeries))
	}
	return errors.Join(errs...)
}

// validateViews checks the views and that their names are unique.
func validateViews(views []schema.FeatureView) error {
	var errs []error
	seen := map[string]bool{}
	for i, v := range views {
		if err := v.Validate(); err != nil {
			errs = append(errs, &schema.FieldError{Field: fmt.Sprintf("views[%d]", i), Err: err})
		}
		if seen[v.Name] {
			errs = append(errs, schema.Errorf(fmt.Sprintf("views[%d].name", i), "%q: duplicate view name", v.Name))
		}
		seen[v.Name] = true
	}
	return errors.Join(errs...)
}
