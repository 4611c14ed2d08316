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
func (c Config) Validate() error {
	var errs []error
	if c.ReloadInterval < 0 {
		errs = append(errs, schema.Errorf("reload_interval", "must not be negative, got %s", c.ReloadInterval))
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
