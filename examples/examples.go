// Package examples holds netfeat's example configuration files and embeds
// the demo's, so that `netfeat demo` runs exactly what demo.yaml and
// demo-scenarios/ document.
package examples

import "embed"

// Demo holds demo.yaml (the service configuration of `netfeat demo`),
// demo-scenarios/<target>.yaml (each simulated device's scenario) and
// fl-demo/*.yaml (the scenarios `netfeat fl demo` adds to those).
//
//go:embed demo.yaml demo-scenarios/*.yaml fl-demo/*.yaml
var Demo embed.FS
