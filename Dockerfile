# Build: docker build -t switchboard .
# Run:   docker run --network host -v $PWD/switchboard.yaml:/etc/switchboard/switchboard.yaml switchboard
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# go-sqlite3 needs cgo; the binary is linked statically so the runtime image
# needs no C library.
RUN CGO_ENABLED=1 go build -trimpath -ldflags '-s -w -linkmode external -extldflags "-static"' \
    -tags 'sqlite_omit_load_extension osusergo netgo' -o /out/switchboard ./cmd/switchboard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* && useradd -r -u 10001 switchboard \
    && mkdir -p /var/lib/switchboard /etc/switchboard && chown switchboard /var/lib/switchboard
COPY --from=build /out/switchboard /usr/local/bin/switchboard
COPY configs/example.yaml /etc/switchboard/switchboard.yaml
USER switchboard
WORKDIR /var/lib/switchboard
EXPOSE 5060/udp 5060/tcp 8080/tcp
ENTRYPOINT ["switchboard"]
CMD ["run", "-c", "/etc/switchboard/switchboard.yaml"]
