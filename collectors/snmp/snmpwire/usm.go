package snmpwire

import (
	"fmt"
	"strings"

	"github.com/gosnmp/gosnmp"
)

// AuthProtocol parses an SNMPv3 authentication protocol name as net-snmp
// spells them (case-insensitive): NONE, MD5, SHA (or SHA1), SHA224, SHA256,
// SHA384, SHA512. Empty means NONE.
func AuthProtocol(s string) (gosnmp.SnmpV3AuthProtocol, error) {
	switch strings.ToUpper(s) {
	case "", "NONE":
		return gosnmp.NoAuth, nil
	case "MD5":
		return gosnmp.MD5, nil
	case "SHA", "SHA1":
		return gosnmp.SHA, nil
	case "SHA224":
		return gosnmp.SHA224, nil
	case "SHA256":
		return gosnmp.SHA256, nil
	case "SHA384":
		return gosnmp.SHA384, nil
	case "SHA512":
		return gosnmp.SHA512, nil
	}
	return 0, fmt.Errorf("unknown authentication protocol %q (want MD5, SHA, SHA224, SHA256, SHA384 or SHA512)", s)
}

// PrivProtocol parses an SNMPv3 privacy protocol name (case-insensitive):
// NONE, DES, AES (or AES128), AES192, AES256, and the Cisco key
// extensions AES192C, AES256C. Empty means NONE.
func PrivProtocol(s string) (gosnmp.SnmpV3PrivProtocol, error) {
	switch strings.ToUpper(s) {
	case "", "NONE":
		return gosnmp.NoPriv, nil
	case "DES":
		return gosnmp.DES, nil
	case "AES", "AES128":
		return gosnmp.AES, nil
	case "AES192":
		return gosnmp.AES192, nil
	case "AES256":
		return gosnmp.AES256, nil
	case "AES192C":
		return gosnmp.AES192C, nil
	case "AES256C":
		return gosnmp.AES256C, nil
	}
	return 0, fmt.Errorf("unknown privacy protocol %q (want DES, AES, AES192, AES256, AES192C or AES256C)", s)
}
