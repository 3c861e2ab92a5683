#!/usr/bin/env bash
# Flood: strangers (127.0.0.2-9) send INVITE, OPTIONS and REGISTER at RATE
# requests/s, a trunk (127.0.0.10) sends INVITEs at 5 times its max_cps
# (CPS), and SIPp places legitimate calls from the carrier trunk at CALLS/s,
# for DURATION_S (SPEC §1, §9). First the strangers alone for up to 5 s:
# switchboard's CPU per dropped request (utime+stime from /proc/PID/stat
# over the flood, minus the same span idle, divided by the requests).
# Checks: >= 99.9 % of the legitimate calls complete, strangers get no
# answer (sip.strangers: drop), the trunk's excess gets 503 with
# Retry-After and about max_cps calls a second get through; then with
# sip.strangers: reject, at most stranger_replies (5) 403s a second per
# stranger.
#
#   bench/flood.sh                        # RATE=20000 CALLS=200 DURATION_S=10 CPS=20
#
# It runs the e2e tests TestFloodWithCalls and TestFloodRejectLimited
# (which `make test` runs short, at a low rate) with these figures; every
# process they start is killed when they end. Exit status 0 when the
# checks hold.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-20000}
CALLS=${CALLS:-200}
DURATION_S=${DURATION_S:-10}
CPS=${CPS:-20}
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: RATE=$RATE CALLS=$CALLS DURATION_S=$DURATION_S CPS=$CPS bench/flood.sh"
FLOOD_RATE=$RATE FLOOD_CALLS=$CALLS FLOOD_SECONDS=$DURATION_S FLOOD_CPS=$CPS \
	go test -count=1 -timeout 10m -v -run 'TestFloodWithCalls$|TestFloodRejectLimited$' ./e2e 2>&1 |
	grep -E 'floodmix_test.go:[0-9]+: [^-]|^(--- |ok|FAIL|PASS)' | sed -E 's/^ +floodmix_test.go:[0-9]+: /  /'
