# One place for the build and test commands: the Arrow interface of DuckDB
# needs -tags duckdb_arrow on every build and test.
GO      ?= go
TAGS    ?= duckdb_arrow
BIN     ?= bin/netfeat
LDFLAGS ?= -s -w

.PHONY: demo build test bench soak clean

## demo: run the live demo (embedded NATS, simulated Cisco/Nokia/Ericsson devices with a scripted
## congestion episode and link fault, decisions printed live); DURATION=2m (or 120) stops it, DEMOFLAGS adds flags
demo:
	@echo "== building $(BIN) (the first build compiles DuckDB's static library through cgo: a few minutes)"
	@$(MAKE) --no-print-directory build
	$(BIN) demo --duration $(or $(DURATION),0) $(DEMOFLAGS)

## build: build the netfeat binary into bin/
build:
	$(GO) build -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/netfeat

## test: the whole test suite (installs test peers, go vet, go test -race)
test:
	./scripts/test.sh

## bench: Go benchmarks of every stage's hot path
bench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
