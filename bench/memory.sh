#!/usr/bin/env bash
# Memory per active call: SIPp UAC -> switchboard (bench/switchboard.yaml,
# full pipeline) -> SIPp UAS on loopback, with long holds so that CALLS
# calls are up at once. Reports heap (go_memstats_heap_inuse_bytes from
# /metrics) and RSS at baseline, with every call up, and after the calls
# ended and their transactions expired, per active call; then whether memory
# went back near the baseline (no leak of transactions, dialogs, timers).
#
#   bench/memory.sh
#
# Environment: CALLS (concurrent calls, default 20000), RATE (calls per
# second while ramping up, default 500), SETTLE_S (wait after the last BYE
# for transaction timers, default 40), KEEP=1. Bounded: every SIPp run has
# a hard limit; every process it starts is killed by pid on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CALLS=${CALLS:-20000}
RATE=${RATE:-500}
SETTLE_S=${SETTLE_S:-40}
SIP_PORT=${SIP_PORT:-55060}
PBX_PORT=${PBX_PORT:-55080}
TRUNK_PORT=${TRUNK_PORT:-55090}
HTTP_PORT=${HTTP_PORT:-58080}
need sipp "Debian package sip-tester"
need curl
bench_init memory

RAMP_S=$(((CALLS + RATE - 1) / RATE))
HOLD_MS=$(((RAMP_S + 15) * 1000)) # every call is still up 15 s after the last one started
LIMIT_S=$((RAMP_S + HOLD_MS / 1000 + 60))

build_switchboard
start_switchboard

metric() { # NAME -> value from /metrics
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" '$1 == n { printf "%.0f", $2; exit }'
}
active() { curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^switchboard_active_calls / { printf "%.0f", $2; exit }'; }
snapshot() { # label
	local heap rss gor
	heap=$(metric go_memstats_heap_inuse_bytes)
	rss=$(rss_kb "$SB_PID")
	gor=$(metric go_goroutines)
	echo "$1 heap_inuse=$heap rss_kb=$rss goroutines=$gor active=$(active || echo ?)"
	eval "HEAP_$1=$heap RSS_$1=$rss GOR_$1=$gor"
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  command: CALLS=$CALLS RATE=$RATE $0"
# Warm up (one short run) so that the baseline includes the pipeline's
# caches, pools and the database connection.
cd "$WORK"
spawn sipp -sf "$HERE/scenarios/uas_answer_now.xml" -i 127.0.0.1 -p "$PBX_PORT" -nostdin \
	-timeout "$((LIMIT_S + 120))s" -max_socket 65000 >"$WORK/uas.log" 2>&1
UAS_PID=$LAST_PID
timeout --signal=KILL 60 sipp -sf "$SIPP_DIR/uac_answer.xml" -i 127.0.0.1 -p "$TRUNK_PORT" -s +49301234560 \
	-r 100 -m 200 -d 100 -nostdin -timeout 40s "127.0.0.1:$SIP_PORT" >"$WORK/warmup.log" 2>&1 || true
sleep "$SETTLE_S"
snapshot base

spawn timeout --signal=KILL "$((LIMIT_S + 15))" sipp -sf "$SIPP_DIR/uac_answer.xml" -i 127.0.0.1 -p "$TRUNK_PORT" \
	-s +49301234560 -r "$RATE" -m "$CALLS" -l "$((CALLS + 100))" -d "$HOLD_MS" -nostdin \
	-timeout "${LIMIT_S}s" -timeout_error -recv_timeout 20000 -max_socket 65000 \
	-trace_stat -stf "$WORK/stats.csv" -fd 5 "127.0.0.1:$SIP_PORT" >"$WORK/uac.log" 2>&1
UAC_PID=$LAST_PID
# Peak: every call created and still up (the first calls end HOLD_MS after they started).
sleep "$((RAMP_S + 8))"
snapshot peak
wait "$UAC_PID" || true
ok=$(stat_field "$WORK/stats.csv" 'SuccessfulCall(C)')
failed=$(stat_field "$WORK/stats.csv" 'FailedCall(C)')
echo "calls: $CALLS offered at $RATE/s, held $((HOLD_MS / 1000)) s: successful ${ok:-?}, failed ${failed:-?}"
sleep "$SETTLE_S"
snapshot after

awk -v hb="$HEAP_base" -v hp="$HEAP_peak" -v ha="$HEAP_after" -v rb="$RSS_base" -v rp="$RSS_peak" -v ra="$RSS_after" \
	-v gb="$GOR_base" -v gp="$GOR_peak" -v ga="$GOR_after" -v n="$CALLS" 'BEGIN {
	printf "per active call: heap %.0f B (%.2f KiB), RSS %.0f B (%.2f KiB), goroutines %.2f\n",
		(hp - hb) / n, (hp - hb) / n / 1024, (rp - rb) * 1024 / n, (rp - rb) / n, (gp - gb) / n
	printf "after the calls ended: heap %+.1f MiB vs baseline (%.0f%% of the peak growth), RSS %+.1f MiB, goroutines %+d\n",
		(ha - hb) / 1048576, (hp > hb ? 100 * (ha - hb) / (hp - hb) : 0), (ra - rb) / 1024, ga - gb
}'
