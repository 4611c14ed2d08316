# netfeat service image. DuckDB links statically through cgo, so the build
# stage needs gcc; the runtime stage needs only libc and CA certificates.
# integration/image_test.go runs this file's CMD with the config it copies
# (paths mapped to a temporary directory): keep the two in step.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -tags duckdb_arrow -trimpath -ldflags '-s -w' -o /out/netfeat ./cmd/netfeat

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/netfeat --create-home netfeat
COPY --from=build /out/netfeat /usr/local/bin/netfeat
COPY deploy/netfeat.yaml /etc/netfeat/netfeat.yaml
# The model file of deploy/netfeat-compose.yaml, and the recordings and
# scenarios the compose file's simulated devices replay.
COPY models/congestion.json /usr/share/netfeat/models/congestion.json
COPY testdata/snmp/timos.snmprec testdata/snmp/ericsson-ml.snmprec /usr/share/netfeat/recordings/
COPY examples/demo-scenarios /usr/share/netfeat/scenarios
USER netfeat
WORKDIR /var/lib/netfeat
VOLUME /var/lib/netfeat
# 9464: HTTP API and /metrics; 4222: embedded NATS (when nats.url is unset);
# 8815: Arrow Flight SQL when query.flight_listen is set (deploy/netfeat-compose.yaml);
# 1162/udp: SNMP traps when snmp.trap_listen is set (a high port: no CAP_NET_BIND_SERVICE).
EXPOSE 9464 4222 8815 1162/udp
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/netfeat", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/netfeat"]
CMD ["serve", "-c", "/etc/netfeat/netfeat.yaml", "--http-listen", "0.0.0.0:9464", "--nats-listen", "0.0.0.0:4222", "--data-dir", "/var/lib/netfeat"]
