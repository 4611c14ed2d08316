#!/usr/bin/env bash
# Installs the SNMP test peers the integration tests use: net-snmp's agent
# (snmpd) and tools (snmpwalk, snmpbulkwalk, snmpget), and Debian's snmpsim
# (snmpsimd; Debian's 0.4 package names the responder so). Idempotent: installs only what is missing.
# The snmpd system service that Debian starts on install is stopped, because
# the tests run their own snmpd instances on loopback ports.
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

# Debian starts snmpd as a service on install; our tests start their own.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop snmpd 2>/dev/null || true
fi
if [ -f /run/snmpd.pid ]; then
  kill "$(cat /run/snmpd.pid)" 2>/dev/null || true
fi

for c in snmpd snmpwalk snmpbulkwalk snmpsimd; do
  command -v "$c" >/dev/null || { echo "install-snmp: $c missing after install" >&2; exit 1; }
done
echo "install-snmp: snmpd, snmpwalk, snmpbulkwalk and snmpsimd are present"
