# One place for the build and test commands: the Arrow interface of DuckDB
# needs -tags duckdb_arrow on every build and test.
GO      ?= go
TAGS    ?= duckdb_arrow
BIN     ?= bin/netfeat
LDFLAGS ?= -s -w

.PHONY: demo build test lint bench fuzz soak train-congestion screenshots clean

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

## lint: staticcheck (pinned, installed into bin/ on first use) with the checks in staticcheck.conf
lint:
	./scripts/lint.sh

## bench: Go benchmarks of every stage's hot path
bench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchmem ./...

## fuzz: run each fuzz test for FUZZTIME (default 30s): SNMP BER decoding, gNMI wire decoding, the
## decision log reader, the ONNX and LightGBM model loaders, the trap receiver, the snmprec and gNMI
## capture readers (not part of `make test`, which runs only their seed inputs)
fuzz:
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./collectors/snmp
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzWire$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./collectors/gnmi
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzDecisionLogRead$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./inference
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./inference/onnx
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzLightGBMLoad$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./inference
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzTrapReceive$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./collectors/snmp
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzReadSNMPRec$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./recording
	$(GO) test -tags $(TAGS) -run '^$$' -fuzz '^FuzzReadGNMICapture$$' -fuzztime $(or $(FUZZTIME),30s) -fuzzminimizetime 5s ./recording

## soak: run the real binary for SOAK (default 10m) against healthy simulated devices with hostile
## ones mixed in (a wrong clock, growing names, garbage and flooding traps, broken model uploads);
## fails if a healthy device's decisions stop for a minute or RSS passes SOAK_RSS_MIB (default 1024)
soak:
	$(GO) test -tags '$(TAGS) soak' -run '^TestSoak$$' -count=1 -timeout 30m -v ./integration \
		-soak.duration=$(or $(SOAK),10m) -soak.rss-mib=$(or $(SOAK_RSS_MIB),1024)

## train-congestion: retrain models/congestion.json on windows exported from the simulators
## (a 21-minute run of models/training/, then Debian's python3-xgboost, python3-onnx and python3-sklearn; models/README.md)
train-congestion: build
	$(BIN) demo --scenarios models/training --duration 21m --http-listen 127.0.0.1:19464 \
		--nats-listen 127.0.0.1:14222 --training-set models/training/windows.csv > bin/training-run.log
	/usr/bin/python3 models/train_congestion.py
	/usr/bin/python3 inference/onnx/testdata/gen.py

## screenshots: regenerate docs/img/console-*.png: runs the demo and drives its web console in
## headless chromium (apt-get install chromium), as the console's browser test does
screenshots:
	$(GO) test -tags $(TAGS) -count=1 -run '^TestConsole$$' ./integration -console.screenshots=$(CURDIR)/docs/img

clean:
	rm -rf bin
