package snmpagent

import (
	"fmt"
	"strconv"
	"strings"
)

// SyntheticSysObjectID is the sysObjectID of SyntheticRouter: an
// enterprise no vendor profile claims, so netfeat's generic IF-MIB
// profile applies.
const SyntheticSysObjectID = "1.3.6.1.4.1.99999.1"

// SyntheticRouter returns an snmprec recording of a router with the system
// group, ifaces IF-MIB interfaces (every ifTable and ifXTable column the
// generic profile polls, 32- and 64-bit counters, 100 Gbit/s each), UCD-SNMP
// memory and CPU scalars and one HOST-RESOURCES processor: nothing the
// generic profile's plan asks for is missing, so no poll returns an
// exception. `netfeat bench --snmp` serves it and the SNMP collector's
// load test polls it; testdata holds the real devices' recordings.
func SyntheticRouter(ifaces int) string {
	var b strings.Builder
	b.WriteString("1.3.6.1.2.1.1.1.0|4|netfeat bench simulated router\n")
	b.WriteString("1.3.6.1.2.1.1.2.0|6|" + SyntheticSysObjectID + "\n")
	b.WriteString("1.3.6.1.2.1.1.3.0|67|123456\n")
	b.WriteString("1.3.6.1.2.1.1.5.0|4|sim\n")
	b.WriteString("1.3.6.1.2.1.25.3.3.1.2.1|2|12\n")
	b.WriteString("1.3.6.1.4.1.2021.4.5.0|2|16777216\n")
	b.WriteString("1.3.6.1.4.1.2021.4.6.0|2|8388608\n")
	b.WriteString("1.3.6.1.4.1.2021.11.11.0|2|85\n")
	same := func(v string) func(int) string { return func(int) string { return v } }
	times := func(k int) func(int) string { return func(i int) string { return strconv.Itoa(i * k) } }
	cols := []struct {
		oid, tag string
		val      func(i int) string
	}{
		{"1.3.6.1.2.1.2.2.1.1", "2", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.2", "4", func(i int) string { return fmt.Sprintf("port 1/1/%d, 100-Gig Ethernet", i) }},
		{"1.3.6.1.2.1.2.2.1.3", "2", same("6")},
		{"1.3.6.1.2.1.2.2.1.5", "66", same("4294967295")},
		{"1.3.6.1.2.1.2.2.1.7", "2", same("1")},
		{"1.3.6.1.2.1.2.2.1.8", "2", same("1")},
		{"1.3.6.1.2.1.2.2.1.10", "65", times(1000003)},
		{"1.3.6.1.2.1.2.2.1.11", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.13", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.14", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.16", "65", times(999983)},
		{"1.3.6.1.2.1.2.2.1.17", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.19", "65", strconv.Itoa},
		{"1.3.6.1.2.1.2.2.1.20", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.1", "4", func(i int) string { return fmt.Sprintf("1/1/%d", i) }},
		{"1.3.6.1.2.1.31.1.1.1.2", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.3", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.4", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.5", "65", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.6", "70", times(1_000_000_007)},
		{"1.3.6.1.2.1.31.1.1.1.7", "70", times(1_000_003)},
		{"1.3.6.1.2.1.31.1.1.1.8", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.9", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.10", "70", times(999_999_937)},
		{"1.3.6.1.2.1.31.1.1.1.11", "70", times(999_983)},
		{"1.3.6.1.2.1.31.1.1.1.12", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.13", "70", strconv.Itoa},
		{"1.3.6.1.2.1.31.1.1.1.15", "66", same("100000")},
	}
	for _, c := range cols {
		for i := 1; i <= ifaces; i++ {
			fmt.Fprintf(&b, "%s.%d|%s|%s\n", c.oid, i, c.tag, c.val(i))
		}
	}
	return b.String()
}
