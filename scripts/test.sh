#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls `make test`, which
# calls this script). It installs the test peers it needs when it can (root or
# passwordless sudo with apt-get), then checks gofmt, runs go vet and the tests: with the
# race detector on every package that runs goroutines, and without it on the
# few whose cgo DuckDB link makes -race too slow for CI.
set -euo pipefail
cd "$(dirname "$0")/.."

TAGS=${TAGS:-duckdb_arrow}
export GOFLAGS="${GOFLAGS:-} -tags=${TAGS}"

# Debian packages the integration tests use as independent peers.
PKGS=(snmp snmpd snmpsim python3-xgboost chromium)
need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "== installing test peers: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "== cannot install ${need[*]} (not root, no sudo): the tests that need them will skip" >&2
  fi
fi
# The tests start their own snmpd instances on free loopback ports and stop
# only those: a system snmpd (which the package may start on install) is
# left alone.

# The fleet tests run a real 3-node JetStream cluster of nats-server
# processes (pinned by go.mod, built from the module proxy into bin/).
./scripts/install-nats-server.sh
export NETFEAT_REQUIRE_FLEET=1
# The console's browser tests drive Debian's chromium (installed above).
export NETFEAT_REQUIRE_BROWSER=1

echo "== gofmt"
unformatted=$(git ls-files '*.go' 2>/dev/null | xargs -r gofmt -l)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

./scripts/lint.sh

# Packages that link DuckDB (cgo, ~130 MB static library) run without -race.
mapfile -t all < <(go list ./...)
race=() plain=()
for p in "${all[@]}"; do
  case "$p" in
    */query|*/query/*|*/cmd/netfeat|*/integration|*/integration/*) plain+=("$p") ;;
    *) race+=("$p") ;;
  esac
done

echo "== go test -race (${#race[@]} packages)"
go test -race -count=1 -timeout 15m "${race[@]}"
if ((${#plain[@]})); then
  echo "== go test (${#plain[@]} packages with DuckDB or built binaries)"
  go test -count=1 -timeout 20m "${plain[@]}"
fi
