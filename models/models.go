// Package models embeds the model files netfeat ships, so that the binary
// carries them: a configuration names one as `file: builtin:<name>`
// (inference.ReadModelFile), and `netfeat demo` runs congestion.json
// without the source tree. train_congestion.py writes them;
// docs/inference.md describes them.
package models

import (
	_ "embed"
	"slices"
)

// Congestion is congestion.json: the XGBoost link-congestion model that
// scores windows of the interface_1m view.
//
//go:embed congestion.json
var Congestion []byte

// builtin maps the names a configuration may use after `builtin:` to the
// embedded files.
var builtin = map[string][]byte{
	"congestion": Congestion,
}

// Builtin returns the embedded model file called name ("congestion" for
// congestion.json), or false.
func Builtin(name string) ([]byte, bool) {
	b, ok := builtin[name]
	return b, ok
}

// Names lists the builtin model names, sorted.
func Names() []string {
	names := make([]string, 0, len(builtin))
	for n := range builtin {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
