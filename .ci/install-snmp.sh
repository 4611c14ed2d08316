#!/usr/bin/env bash
# Installs the SNMP test peers the integration tests use: net-snmp's agent
# (snmpd) and tools (snmpwalk, snmpbulkwalk, snmpget), and Debian's snmpsim
# (snmpsimd; Debian's 0.4 package names the responder so). Idempotent: installs only what is missing.
# The tests run their own snmpd instances on free loopback ports, so a system
# snmpd (which Debian may start on install) is left alone.
set -euo pipefail

PKGS=(snmp snmpd snmpsim)
need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done

if ((${#need[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    else
      echo "install-snmp: need root or passwordless sudo to install ${need[*]}" >&2
      exit 1
    fi
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "install-snmp: installed ${need[*]}"
fi

for c in snmpd snmpwalk snmpbulkwalk snmpsimd; do
  command -v "$c" >/dev/null || { echo "install-snmp: $c missing after install" >&2; exit 1; }
done
echo "install-snmp: snmpd, snmpwalk, snmpbulkwalk and snmpsimd are present"
