// Package examples holds netfeat's example configuration files and embeds
// the demo's, so that `netfeat demo` runs exactly what demo.yaml and
// demo-scenarios/ document.
package examples

import "embed"

// Demo holds demo.yaml (the service configuration of `netfeat demo`) and
// demo-scenarios/<target>.yaml (each simulated device's scenario).
//
//go:embed demo.yaml demo-scenarios/*.yaml
var Demo embed.FS
