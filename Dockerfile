# netfeat service image. DuckDB links statically through cgo, so the build
# stage needs gcc; the runtime stage needs only libc and CA certificates.
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
COPY examples/netfeat.yaml /etc/netfeat/netfeat.yaml
USER netfeat
WORKDIR /var/lib/netfeat
# 9464: HTTP API and /metrics; 4222: embedded NATS (when nats.url is unset);
# 8815: Arrow Flight SQL; 162/udp: SNMP traps (needs a high port or CAP_NET_BIND_SERVICE).
EXPOSE 9464 4222 8815 1162/udp
ENTRYPOINT ["/usr/local/bin/netfeat"]
CMD ["serve", "-c", "/etc/netfeat/netfeat.yaml", "--http-listen", "0.0.0.0:9464"]
