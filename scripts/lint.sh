#!/usr/bin/env bash
# The lint gate: staticcheck, pinned, with the checks in staticcheck.conf.
# Installs the pinned staticcheck from the Go module proxy into bin/ on first
# use; `make lint` runs it and `make test` runs it after go vet.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2
TAGS=${TAGS:-duckdb_arrow}
bin="$PWD/bin/staticcheck"
if ! { [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; }; then
  echo "== installing staticcheck ${STATICCHECK_VERSION} into bin/"
  GOBIN="$PWD/bin" GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
echo "== staticcheck"
"$bin" -tags "$TAGS" ./...
