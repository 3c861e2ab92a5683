# The test suite needs SIPp (Debian sip-tester), baresip and PostgreSQL
# (postgresql). `make test` installs them when it can (root with apt-get),
# then vets and runs every test with the race detector.
GO ?= go
DEB_PACKAGES := sip-tester chromium baresip postgresql

.PHONY: build test deps vet bench run

build:
	$(GO) build -o bin/switchboard ./cmd/switchboard

run: build
	./bin/switchboard run

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not installing$$missing (need root and apt-get); tests that need them will skip"; fi; \
	fi
	$(GO) mod download

vet:
	$(GO) mod tidy -diff
	test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
