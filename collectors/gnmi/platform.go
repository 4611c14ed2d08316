package gnmi

import "sort"

// Platforms a target can declare. The platform chooses the subscription set
// used when a target lists no subscriptions of its own, and names the
// normalizer profile ("cisco-<platform>").
const (
	PlatformIOSXR = "iosxr"
	PlatformNXOS  = "nxos"
	PlatformIOSXE = "iosxe"
)

// openconfigPaths are subscribed on every Cisco platform. port-speed
// (openconfig-if-ethernet) gives interface.speed, without which the
// normalizer cannot turn octet rates into utilisation.
var openconfigPaths = []string{
	"openconfig-interfaces:interfaces/interface/state/counters",
	"openconfig-interfaces:interfaces/interface/state/oper-status",
	"openconfig-interfaces:interfaces/interface/state/admin-status",
	"openconfig-interfaces:interfaces/interface/ethernet/state/port-speed",
	"openconfig-platform:components/component/state/temperature",
	"openconfig-platform:components/component/cpu/utilization/state",
	"openconfig-system:system/memory/state",
}

// platformPaths holds the subscription set shipped for each platform. The
// normalizer's Cisco profiles map every leaf below these paths; change them
// together.
var platformPaths = map[string][]string{
	PlatformIOSXR: append(append([]string(nil), openconfigPaths...),
		"Cisco-IOS-XR-infra-statsd-oper:infra-statistics/interfaces/interface/latest/generic-counters",
		"Cisco-IOS-XR-wdsysmon-fd-oper:system-monitoring/cpu-utilization",
	),
	PlatformNXOS: append(append([]string(nil), openconfigPaths...),
		"DME:sys/intf",
	),
	PlatformIOSXE: append(append([]string(nil), openconfigPaths...),
		"Cisco-IOS-XE-interfaces-oper:interfaces/interface/statistics",
		"Cisco-IOS-XE-interfaces-oper:interfaces/interface/oper-status",
	),
}

// PlatformPaths returns the subscription paths shipped for platform, or nil
// for an unknown platform. The caller may modify the returned slice.
func PlatformPaths(platform string) []string {
	p := platformPaths[platform]
	if p == nil {
		return nil
	}
	return append([]string(nil), p...)
}

// Platforms returns the names of the platforms with a shipped subscription
// set, sorted.
func Platforms() []string {
	names := make([]string, 0, len(platformPaths))
	for n := range platformPaths {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
