package fleet

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Discard policies of StreamLimits.Discard.
const (
	// DiscardOld removes the oldest messages when a limit is reached: the
	// edge keeps deciding and keeps the newest data.
	DiscardOld = "old"
	// DiscardNew refuses new messages when a limit is reached: the edge
	// keeps the oldest data and its publishes fail.
	DiscardNew = "new"
)

// StreamLimits bound one stream. A zero field means no limit of that kind.
type StreamLimits struct {
	// MaxBytes is the stream's size limit.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxMsgs is the stream's message-count limit.
	MaxMsgs int64 `yaml:"max_msgs"`
	// MaxAge removes messages older than this.
	MaxAge time.Duration `yaml:"max_age"`
	// Discard is DiscardOld (default) or DiscardNew.
	Discard string `yaml:"discard"`
}

func (l StreamLimits) validate(what string) error {
	if l.MaxBytes < 0 || l.MaxMsgs < 0 || l.MaxAge < 0 {
		return fmt.Errorf("fleet: %s: negative limit", what)
	}
	if l.Discard != "" && l.Discard != DiscardOld && l.Discard != DiscardNew {
		return fmt.Errorf("fleet: %s: discard %q: want %q or %q", what, l.Discard, DiscardOld, DiscardNew)
	}
	return nil
}

// apply sets the limits on a stream configuration.
func (l StreamLimits) apply(c *jetstream.StreamConfig) {
	c.MaxBytes, c.MaxMsgs, c.MaxAge = -1, -1, l.MaxAge
	if l.MaxBytes > 0 {
		c.MaxBytes = l.MaxBytes
	}
	if l.MaxMsgs > 0 {
		c.MaxMsgs = l.MaxMsgs
	}
	c.Discard = jetstream.DiscardOld
	if l.Discard == DiscardNew {
		c.Discard = jetstream.DiscardNew
	}
}

// SampleMode says which raw samples an edge forwards.
type SampleMode string

// Sample forwarding modes.
const (
	// SamplesOff forwards no raw samples (windows, decisions and actions
	// still go).
	SamplesOff SampleMode = "off"
	// SamplesSampled forwards one sample in SampleConfig.Every, chosen by
	// a hash of series and time, so the choice is the same on a retry.
	SamplesSampled SampleMode = "sampled"
	// SamplesAll forwards every sample.
	SamplesAll SampleMode = "all"
)

func (m SampleMode) valid() bool {
	return m == SamplesOff || m == SamplesSampled || m == SamplesAll
}

// SampleConfig says which raw samples an edge forwards.
type SampleConfig struct {
	// Mode applies to devices not in Devices. Default SamplesOff.
	Mode SampleMode `yaml:"mode"`
	// Devices overrides Mode per device name.
	Devices map[string]SampleMode `yaml:"devices"`
	// Every is the sampling ratio of SamplesSampled: one in Every. Default 10.
	Every int `yaml:"every"`
	// MaxPerMessage caps the samples of one message; a bigger batch is
	// split. Default 8192.
	MaxPerMessage int `yaml:"max_per_message"`
	// Linger is how long the forwarder gathers the collectors' batches
	// into one message before storing it: every message carries its own
	// Arrow schema and dictionaries, so a message per poll of one device
	// would cost several times the bytes per sample of a full one. A
	// message goes when it would exceed MaxPerMessage or its first batch
	// waited Linger. Default 1s.
	Linger time.Duration `yaml:"linger"`
	// Compression is CompressionZstd (default) or CompressionLZ4.
	Compression Compression `yaml:"compression"`
}

// EdgeConfig configures an Edge.
type EdgeConfig struct {
	// Site names the edge: its JetStream domain, the hub streams that
	// source it, the `site` of everything it forwards. Required.
	Site string `yaml:"site"`
	// HubDomain is the hub's JetStream domain. Default DefaultHubDomain.
	HubDomain string `yaml:"hub_domain"`
	// RegistryBucket is the hub's KV bucket of edges. Default
	// DefaultRegistryBucket.
	RegistryBucket string `yaml:"registry_bucket"`
	// Windows, Decisions, Actions, Samples and Devices bound the local
	// streams; during a cut they are what the edge keeps. Defaults: 1 GiB
	// and 7 days each, discard old.
	Windows   StreamLimits `yaml:"windows"`
	Decisions StreamLimits `yaml:"decisions"`
	Actions   StreamLimits `yaml:"actions"`
	Samples   StreamLimits `yaml:"samples"`
	Devices   StreamLimits `yaml:"devices"`
	// SampleForwarding says which raw samples are forwarded.
	SampleForwarding SampleConfig `yaml:"sample_forwarding"`
	// ItemsPerMessage caps the windows, decisions or action transitions
	// the service's forwarder gathers into one message (PublishWindows and
	// friends). Default 512.
	ItemsPerMessage int `yaml:"items_per_message"`
	// ItemLinger is how long the forwarder gathers them before it stores
	// what it has. Default 250ms.
	ItemLinger time.Duration `yaml:"item_linger"`
	// DeviceCheck is how often the service's forwarder reads its
	// collectors' device states to publish those that changed (state,
	// address, protocol, profile or last error). Default 1s.
	DeviceCheck time.Duration `yaml:"device_check"`
	// DeviceHeartbeat is how often the forwarder publishes every device's
	// state, changed or not, so that a hub that started late or lost its
	// streams' retention still learns every device, and last_success and
	// the counters stay current. Default 60s.
	DeviceHeartbeat time.Duration `yaml:"device_heartbeat"`
	// DuplicateWindow is the local streams' de-duplication window. Default
	// 2m.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// WarnRatio is the fill ratio (of max bytes, max messages or max age)
	// above which the edge logs and counts that a stream is about to drop
	// data. Default 0.8.
	WarnRatio float64 `yaml:"warn_ratio"`
	// CheckInterval is how often stream fill is checked. Default 10s.
	CheckInterval time.Duration `yaml:"check_interval"`
	// RegisterRetry is how often registration with the hub is retried
	// while the hub is unreachable. Default 2s.
	RegisterRetry time.Duration `yaml:"register_retry"`
	// PublishTimeout bounds one publish to the local stream. Default 5s.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
}

// DefaultEdgeConfig returns the defaults for site.
func DefaultEdgeConfig(site string) EdgeConfig {
	lim := StreamLimits{MaxBytes: 1 << 30, MaxAge: 7 * 24 * time.Hour, Discard: DiscardOld}
	return EdgeConfig{
		Site: site, HubDomain: DefaultHubDomain, RegistryBucket: DefaultRegistryBucket,
		Windows: lim, Decisions: lim, Actions: lim, Samples: lim, Devices: lim,
		SampleForwarding: SampleConfig{Mode: SamplesOff, Every: 10, MaxPerMessage: 8192, Linger: time.Second, Compression: CompressionZstd},
		ItemsPerMessage:  512, ItemLinger: 250 * time.Millisecond,
		DeviceCheck: time.Second, DeviceHeartbeat: time.Minute,
		DuplicateWindow: 2 * time.Minute, WarnRatio: 0.8, CheckInterval: 10 * time.Second,
		RegisterRetry: 2 * time.Second, PublishTimeout: 5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultEdgeConfig.
func (c EdgeConfig) withDefaults() EdgeConfig {
	d := DefaultEdgeConfig(c.Site)
	if c.HubDomain == "" {
		c.HubDomain = d.HubDomain
	}
	if c.RegistryBucket == "" {
		c.RegistryBucket = d.RegistryBucket
	}
	for _, l := range []*StreamLimits{&c.Windows, &c.Decisions, &c.Actions, &c.Samples, &c.Devices} {
		if *l == (StreamLimits{}) {
			*l = d.Windows
		}
	}
	sf := &c.SampleForwarding
	if sf.Mode == "" {
		sf.Mode = SamplesOff
	}
	if sf.Every == 0 {
		sf.Every = d.SampleForwarding.Every
	}
	if sf.MaxPerMessage == 0 {
		sf.MaxPerMessage = d.SampleForwarding.MaxPerMessage
	}
	if sf.Linger == 0 {
		sf.Linger = d.SampleForwarding.Linger
	}
	if sf.Compression == "" {
		sf.Compression = CompressionZstd
	}
	if c.ItemsPerMessage == 0 {
		c.ItemsPerMessage = d.ItemsPerMessage
	}
	if c.ItemLinger == 0 {
		c.ItemLinger = d.ItemLinger
	}
	if c.DeviceCheck == 0 {
		c.DeviceCheck = d.DeviceCheck
	}
	if c.DeviceHeartbeat == 0 {
		c.DeviceHeartbeat = d.DeviceHeartbeat
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = d.DuplicateWindow
	}
	if c.WarnRatio == 0 {
		c.WarnRatio = d.WarnRatio
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = d.CheckInterval
	}
	if c.RegisterRetry == 0 {
		c.RegisterRetry = d.RegisterRetry
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = d.PublishTimeout
	}
	return c
}

// limits returns the limits of kind's stream.
func (c *EdgeConfig) limits(k Kind) StreamLimits {
	switch k {
	case KindWindows:
		return c.Windows
	case KindDecisions:
		return c.Decisions
	case KindActions:
		return c.Actions
	case KindDevices:
		return c.Devices
	default:
		return c.Samples
	}
}

// Validate checks c after defaults are applied.
func (c *EdgeConfig) Validate() error {
	d := c.withDefaults()
	c = &d
	if err := ValidateSite(c.Site, c.HubDomain); err != nil {
		return err
	}
	for _, k := range Kinds {
		if err := c.limits(k).validate(string(k)); err != nil {
			return err
		}
	}
	sf := c.SampleForwarding
	if !sf.Mode.valid() {
		return fmt.Errorf("fleet: sample_forwarding.mode %q: want off, sampled or all", sf.Mode)
	}
	for dev, m := range sf.Devices {
		if !m.valid() {
			return fmt.Errorf("fleet: sample_forwarding.devices[%s] %q: want off, sampled or all", dev, m)
		}
	}
	if sf.Every < 1 || sf.MaxPerMessage < 1 {
		return fmt.Errorf("fleet: sample_forwarding: every and max_per_message must be positive")
	}
	if c.ItemsPerMessage < 1 || c.ItemsPerMessage > 100_000 {
		return fmt.Errorf("fleet: items_per_message %d: must be 1–100000", c.ItemsPerMessage)
	}
	if c.ItemLinger < 0 || c.ItemLinger > time.Minute {
		return fmt.Errorf("fleet: item_linger %v: must be 0–1m", c.ItemLinger)
	}
	if sf.Linger < 0 || sf.Linger > time.Minute {
		return fmt.Errorf("fleet: sample_forwarding: linger %v: must be 0–1m", sf.Linger)
	}
	if sf.Compression != CompressionZstd && sf.Compression != CompressionLZ4 {
		return fmt.Errorf("fleet: sample_forwarding.compression %q: want zstd or lz4", sf.Compression)
	}
	if c.DeviceCheck < 100*time.Millisecond || c.DeviceCheck > time.Minute {
		return fmt.Errorf("fleet: device_check %v: must be 100ms–1m", c.DeviceCheck)
	}
	if c.DeviceHeartbeat < c.DeviceCheck || c.DeviceHeartbeat > 24*time.Hour {
		return fmt.Errorf("fleet: device_heartbeat %v: must be device_check (%v) to 24h", c.DeviceHeartbeat, c.DeviceCheck)
	}
	if c.DuplicateWindow < 0 || c.CheckInterval < 0 || c.RegisterRetry < 0 || c.PublishTimeout < 0 {
		return fmt.Errorf("fleet: negative duration")
	}
	if c.WarnRatio <= 0 || c.WarnRatio > 1 {
		return fmt.Errorf("fleet: warn_ratio %v: want (0, 1]", c.WarnRatio)
	}
	return nil
}

// HubConfig configures a Hub.
type HubConfig struct {
	// RegistryBucket is the KV bucket of edges. Default
	// DefaultRegistryBucket.
	RegistryBucket string `yaml:"registry_bucket"`
	// Replicas of every hub stream, consumer and the registry. Default 3.
	Replicas int `yaml:"replicas"`
	// DuplicateWindow is the hub streams' de-duplication window: a message
	// sourced twice within it is stored once. Default 10m.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// Limits bound each hub stream. Default: 30 days, no size limit.
	Limits StreamLimits `yaml:"limits"`
	// MaxMessageBytes is the largest message handed to the sink; a bigger
	// one is counted as oversized and skipped. Default 4 MiB.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Consumer is the durable name of the hub's pull consumer on each hub
	// stream. Default "netfeat-hub".
	Consumer string `yaml:"consumer"`
	// AckWait is how long a message handed to the sink may stay unacked
	// before JetStream redelivers it. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
	// RetryDelay is how long a message the sink failed on waits before
	// redelivery. Default 1s.
	RetryDelay time.Duration `yaml:"retry_delay"`
	// PullBatch is how many messages one pull asks for. Default 256.
	PullBatch int `yaml:"pull_batch"`
	// PullExpiry is how long one pull request of a hub consumer lasts;
	// the client expects a heartbeat every half of it, and after two
	// missed heartbeats (a consumer leader died) it pulls again. Default
	// 5s.
	PullExpiry time.Duration `yaml:"pull_expiry"`
	// SourceCheck is how often the hub checks that each stream hears from
	// its edge. Default 1s.
	SourceCheck time.Duration `yaml:"source_check"`
	// SourceQuiet is how long a source may be silent (JetStream's source
	// heartbeat is 1 s) while its edge answers before the hub restarts
	// it. Default 3s.
	SourceQuiet time.Duration `yaml:"source_quiet"`
}

// DefaultHubConfig returns the defaults.
func DefaultHubConfig() HubConfig {
	return HubConfig{
		RegistryBucket: DefaultRegistryBucket, Replicas: 3, DuplicateWindow: 10 * time.Minute,
		Limits: StreamLimits{MaxAge: 30 * 24 * time.Hour, Discard: DiscardOld}, MaxMessageBytes: 4 << 20,
		Consumer: "netfeat-hub", AckWait: 30 * time.Second, RetryDelay: time.Second, PullBatch: 256,
		PullExpiry: 5 * time.Second, SourceCheck: time.Second, SourceQuiet: 3 * time.Second,
	}
}

func (c HubConfig) withDefaults() HubConfig {
	d := DefaultHubConfig()
	if c.RegistryBucket == "" {
		c.RegistryBucket = d.RegistryBucket
	}
	if c.Replicas == 0 {
		c.Replicas = d.Replicas
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = d.DuplicateWindow
	}
	if c.Limits == (StreamLimits{}) {
		c.Limits = d.Limits
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.Consumer == "" {
		c.Consumer = d.Consumer
	}
	if c.AckWait == 0 {
		c.AckWait = d.AckWait
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = d.RetryDelay
	}
	if c.PullBatch == 0 {
		c.PullBatch = d.PullBatch
	}
	if c.PullExpiry == 0 {
		c.PullExpiry = d.PullExpiry
	}
	if c.SourceCheck == 0 {
		c.SourceCheck = d.SourceCheck
	}
	if c.SourceQuiet == 0 {
		c.SourceQuiet = d.SourceQuiet
	}
	return c
}

// Validate checks c after defaults are applied.
func (c *HubConfig) Validate() error {
	d := c.withDefaults()
	c = &d
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("fleet: hub replicas %d: want 1 to 5", c.Replicas)
	}
	if err := c.Limits.validate("hub limits"); err != nil {
		return err
	}
	if c.MaxMessageBytes < 1 || c.PullBatch < 1 {
		return fmt.Errorf("fleet: hub max_message_bytes and pull_batch must be positive")
	}
	if c.DuplicateWindow < 0 || c.AckWait < 0 || c.RetryDelay < 0 || c.SourceCheck < 0 || c.SourceQuiet < 0 {
		return fmt.Errorf("fleet: hub: negative duration")
	}
	if c.PullExpiry < time.Second {
		return fmt.Errorf("fleet: hub pull_expiry %v: want at least 1s", c.PullExpiry)
	}
	return nil
}
