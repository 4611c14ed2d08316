// Package models embeds the model files netfeat ships, so that the binary
// carries them (`netfeat demo` runs congestion.json without the source
// tree). train_congestion.py writes them; docs/inference.md describes them.
package models

import _ "embed"

// Congestion is congestion.json: the XGBoost link-congestion model that
// scores windows of the interface_1m view.
//
//go:embed congestion.json
var Congestion []byte
