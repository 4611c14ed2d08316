#!/usr/bin/env bash
# Installs the nats-server binary the fleet tests run as a real 3-node
# JetStream cluster: github.com/nats-io/nats-server/v2 at the version go.mod
# pins, built by `go install` from the Go module proxy into the repository's
# bin/ (GOBIN). Idempotent: a bin/nats-server that already reports that
# version is left alone. Prints one line.
set -euo pipefail
cd "$(dirname "$0")/.."

mod=github.com/nats-io/nats-server/v2
version=$(go list -m -f '{{.Version}}' "$mod")
bin="$PWD/bin/nats-server"

if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "nats-server: $version" ]; then
  echo "install-nats-server: $bin is $version already"
  exit 0
fi

mkdir -p bin
# GOFLAGS is cleared: the repository's build tags mean nothing to nats-server,
# and `go install pkg@version` builds outside this module.
GOBIN="$PWD/bin" GOFLAGS= go install "$mod@$version"
got=$("$bin" --version 2>/dev/null || true)
if [ "$got" != "nats-server: $version" ]; then
  echo "install-nats-server: $bin reports '$got', want $version" >&2
  exit 1
fi
echo "install-nats-server: installed $bin $version"
