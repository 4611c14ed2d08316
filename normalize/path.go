package normalize

import (
	"strings"
)

// originClass folds the ways a device names OpenConfig models ("",
// "openconfig", "openconfig-interfaces", "openconfig-platform") into one
// class, since OpenConfig paths are unique without their origin. Any other
// origin (a native model such as "Cisco-IOS-XR-infra-statsd-oper", or "DME")
// is its own class.
func originClass(origin string) string {
	if origin == "" || origin == "openconfig" || origin == "rfc7951" || strings.HasPrefix(origin, "openconfig-") {
		return "openconfig"
	}
	return origin
}
