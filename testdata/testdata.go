// Package testdata embeds the few recordings `netfeat demo` replays, so
// that the demo runs from any directory and from the image: the Nokia
// 7210 SAS and Ericsson MINI-LINK 6352 SNMP walks (README.md: from
// LibreNMS, GPL-3.0). The gNMI simulator embeds its own capture. The
// other recordings stay out of the binary; tests read them from disk.
package testdata

import "embed"

// Demo holds snmp/timos.snmprec and snmp/ericsson-ml.snmprec.
//
//go:embed snmp/timos.snmprec snmp/ericsson-ml.snmprec
var Demo embed.FS
