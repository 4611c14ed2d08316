package normalize

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// Config is the `normalize:` section of the netfeat configuration.
type Config struct {
	// ProfilesDir is a directory of *.yaml profiles that override embedded
	// profiles of the same name or add new ones. Empty means embedded
	// profiles only.
	ProfilesDir string `yaml:"profiles_dir"`
	// ReloadInterval is how often ProfilesDir is checked for changes
	// (default 10s; the service also calls Reload on SIGHUP).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// Inventory holds per-device facts, keyed by the device name the
	// collectors use.
	Inventory map[string]DeviceInfo `yaml:"inventory"`
	// Devices, when not nil, are the devices the service is configured to
	// collect from (its SNMP and gNMI targets): only they and inventory
	// devices get their own label on per-device metrics, every other
	// device counts under "(other)". The service fills it; it is not read
	// from the file. Nil labels the first 10,000 devices seen.
	Devices []string `yaml:"-"`

	// MaxClockSkew is how far a device timestamp (gNMI) may be ahead of
	// the receive time; default 5s.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// MaxSampleAge is how far a device timestamp may be behind the
	// receive time; default 1h.
	MaxSampleAge time.Duration `yaml:"max_sample_age"`
	// ClockSkewAction is what happens to a value whose device timestamp is
	// outside those bounds: restamp (with the receive time, the default)
	// or drop.
	ClockSkewAction ClockSkewAction `yaml:"clock_skew_action"`
	// MaxSeriesPerDevice bounds the series (component × metric, derived
	// rates included) one device may create; default 20000.
	MaxSeriesPerDevice int `yaml:"max_series_per_device"`
	// MaxNameLength bounds a component name in bytes; default 256. A value
	// whose component name is longer is refused.
	MaxNameLength int `yaml:"max_name_length"`
}

// ClockSkewAction says what the normalizer does with a value whose device
// timestamp is implausible.
type ClockSkewAction string

// Clock skew actions.
const (
	// ClockRestamp keeps the value with the receive time as its event time.
	ClockRestamp ClockSkewAction = "restamp"
	// ClockDrop refuses the value.
	ClockDrop ClockSkewAction = "drop"
)

// Defaults and bounds of the input limits.
const (
	DefaultMaxClockSkew       = 5 * time.Second
	DefaultMaxSampleAge       = time.Hour
	DefaultMaxSeriesPerDevice = 20000
	DefaultMaxNameLength      = 256

	MaxMaxClockSkew       = time.Hour
	MaxMaxSampleAge       = 7 * 24 * time.Hour
	MaxMaxSeriesPerDevice = 10_000_000
	// MaxMaxNameLength is the store's own limit (featurestore.MaxNameBytes).
	MaxMaxNameLength = 4096
)

// DefaultConfig returns the defaults applied to keys the file leaves out.
func DefaultConfig() Config {
	return Config{
		ReloadInterval:     DefaultReloadInterval,
		MaxClockSkew:       DefaultMaxClockSkew,
		MaxSampleAge:       DefaultMaxSampleAge,
		ClockSkewAction:    ClockRestamp,
		MaxSeriesPerDevice: DefaultMaxSeriesPerDevice,
		MaxNameLength:      DefaultMaxNameLength,
	}
}

// withDefaults returns c with every zero field that has a default set to
// it from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ReloadInterval == 0 {
		c.ReloadInterval = d.ReloadInterval
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = d.MaxClockSkew
	}
	if c.MaxSampleAge == 0 {
		c.MaxSampleAge = d.MaxSampleAge
	}
	if c.ClockSkewAction == "" {
		c.ClockSkewAction = d.ClockSkewAction
	}
	if c.MaxSeriesPerDevice == 0 {
		c.MaxSeriesPerDevice = d.MaxSeriesPerDevice
	}
	if c.MaxNameLength == 0 {
		c.MaxNameLength = d.MaxNameLength
	}
	return c
}

// DeviceInfo is what the operator states about one device.
type DeviceInfo struct {
	// Site and Role enrich the device (site "ams1", role "pe").
	Site string `yaml:"site"`
	Role string `yaml:"role"`
	// Profile forces a profile, bypassing sysObjectID/sysDescr/origin
	// matching.
	Profile string `yaml:"profile"`
}

// DefaultReloadInterval is the profiles directory poll interval used when
// Config.ReloadInterval is zero.
const DefaultReloadInterval = 10 * time.Second

// Validate checks the section. It loads the profiles (embedded and
// ProfilesDir) so that a bad profile file or an unknown profile named in the
// inventory is reported before anything starts. Field paths are relative to
// the section.
func (c *Config) Validate() error {
	var errs []error
	if c.ReloadInterval < 0 {
		errs = append(errs, schema.Errorf("reload_interval", "must not be negative, got %s", c.ReloadInterval))
	}
	l := c.withDefaults()
	if l.MaxClockSkew < 0 || l.MaxClockSkew > MaxMaxClockSkew {
		errs = append(errs, schema.Errorf("max_clock_skew", "%s: must be between 0 and %s", c.MaxClockSkew, MaxMaxClockSkew))
	}
	if l.MaxSampleAge < 0 || l.MaxSampleAge > MaxMaxSampleAge {
		errs = append(errs, schema.Errorf("max_sample_age", "%s: must be between 0 and %s", c.MaxSampleAge, MaxMaxSampleAge))
	}
	if l.ClockSkewAction != ClockRestamp && l.ClockSkewAction != ClockDrop {
		errs = append(errs, schema.Errorf("clock_skew_action", "%q: must be restamp or drop", c.ClockSkewAction))
	}
	if l.MaxSeriesPerDevice < 0 || l.MaxSeriesPerDevice > MaxMaxSeriesPerDevice {
		errs = append(errs, schema.Errorf("max_series_per_device", "%d: must be between 0 and %d", c.MaxSeriesPerDevice, MaxMaxSeriesPerDevice))
	}
	if l.MaxNameLength < 0 || l.MaxNameLength > MaxMaxNameLength {
		errs = append(errs, schema.Errorf("max_name_length", "%d: must be between 0 and %d", c.MaxNameLength, MaxMaxNameLength))
	}
	var known map[string]bool
	if c.ProfilesDir != "" {
		if st, err := os.Stat(c.ProfilesDir); err != nil {
			errs = append(errs, schema.Errorf("profiles_dir", "%v", err))
		} else if !st.IsDir() {
			errs = append(errs, schema.Errorf("profiles_dir", "%s is not a directory", c.ProfilesDir))
		}
	}
	if len(errs) == 0 {
		ps, err := LoadProfiles(c.ProfilesDir)
		if err != nil {
			errs = append(errs, &schema.FieldError{Field: "profiles_dir", Err: err})
		} else {
			known = map[string]bool{}
			for _, p := range ps {
				known[p.Name] = true
			}
		}
	}
	devs := make([]string, 0, len(c.Inventory))
	for d := range c.Inventory {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	for _, d := range devs {
		info := c.Inventory[d]
		if d == "" {
			errs = append(errs, schema.Errorf("inventory", "empty device name"))
		}
		if info.Profile != "" && known != nil && !known[info.Profile] {
			errs = append(errs, &schema.FieldError{Field: fmt.Sprintf("inventory.%s.profile", d),
				Err: fmt.Errorf("%w %q", ErrUnknownProfile, info.Profile)})
		}
	}
	return errors.Join(errs...)
}
