# The test suite needs SIPp (Debian sip-tester), baresip and PostgreSQL
# (postgresql). `make test` installs them when it can (root with apt-get),
# then vets and runs every test with the race detector.
GO ?= go
DEB_PACKAGES := sip-tester chromium baresip postgresql kamailio linphone-cli

.PHONY: build test deps vet bench run cover mutate

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

# cover measures the coverage of every package by all tests together: the
# unit tests, and the switchboard binaries the end-to-end tests start (built
# with -cover, writing to GOCOVERDIR). It prints the total per package and
# leaves cover.out for `go tool cover -html=cover.out`.
COVERDIR ?= $(CURDIR)/.cover
cover: deps
	rm -rf $(COVERDIR) && mkdir -p $(COVERDIR)/unit $(COVERDIR)/e2e
	$(GO) test -count=1 -timeout 30m -cover -coverpkg=./... $$($(GO) list ./... | grep -v /e2e) -args -test.gocoverdir=$(COVERDIR)/unit
	SWITCHBOARD_COVERDIR=$(COVERDIR)/e2e $(GO) test -count=1 -timeout 30m ./e2e
	$(GO) tool covdata percent -i=$(COVERDIR)/unit,$(COVERDIR)/e2e
	$(GO) tool covdata textfmt -i=$(COVERDIR)/unit,$(COVERDIR)/e2e -o cover.out
	$(GO) tool cover -func=cover.out | tail -1

# mutate runs mutation testing (gremlins) over the packages that decide
# what users see and prints the kill rate per package; see docs/mutation.md.
mutate:
	bench/mutate.sh
