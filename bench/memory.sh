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
# second while ramping up, default 500), SETTLE_S (wait after the warm-up,
# default 40), AFTER_S (wait after the last BYE for transaction timers and
# a forced GC, default 130), FAST_PATH (true, the default: sip.fast_path on; false: UDP through sipgo
# alone), KEEP=1.
# Bounded: every SIPp run has
# a hard limit; every process it starts is killed by pid on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CALLS=${CALLS:-20000}
RATE=${RATE:-500}
SETTLE_S=${SETTLE_S:-40}
AFTER_S=${AFTER_S:-130} # > 2 min: the Go runtime forces a GC at least every 2 minutes
SIP_PORT=${SIP_PORT:-55060}
PBX_PORT=${PBX_PORT:-55080}
TRUNK_PORT=${TRUNK_PORT:-55090}
HTTP_PORT=${HTTP_PORT:-58080}
need sipp "Debian package sip-tester"
need curl
bench_init memory

RAMP_S=$(((CALLS + RATE - 1) / RATE))
# Every call is still up 50 s after the last one started; the peak is read
# 40 s after it, once the set-up transactions of every call have ended
# (RFC 3261 Timer M/J: 32 s), so it shows what an established call costs.
HOLD_MS=$(((RAMP_S + 50) * 1000))
LIMIT_S=$((RAMP_S + HOLD_MS / 1000 + 60))

build_switchboard
start_switchboard

METRICS=""
metric() { # NAME -> value from the last scrape of /metrics
	awk -v n="$1" '$1 == n { v = $2 } END { printf "%.0f", v }' <<<"$METRICS"
}
snapshot() { # label
	local heap rss gor
	METRICS=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" || true)
	heap=$(metric go_memstats_heap_inuse_bytes)
	# Live heap at the last GC: the runtime sets the next GC target to
	# live * (1 + GOGC/100); in-use bytes also count garbage not yet swept.
	live=$(awk -v n="$(metric go_memstats_next_gc_bytes)" -v g="$(metric go_gc_gogc_percent)" 'BEGIN { printf "%.0f", n / (1 + (g ? g : 100) / 100) }')
	rss=$(rss_kb "$SB_PID")
	gor=$(metric go_goroutines)
	echo "$1 heap_inuse=$heap live_heap_at_last_gc=$live rss_kb=$rss goroutines=$gor active_calls=$(metric switchboard_active_calls)"
	eval "HEAP_$1=$heap LIVE_$1=$live RSS_$1=$rss GOR_$1=$gor"
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  command: CALLS=$CALLS RATE=$RATE FAST_PATH=${FAST_PATH:-true} $0"
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
sleep "$((RAMP_S + 40))"
snapshot peak
wait "$UAC_PID" || true
ok=$(stat_field "$WORK/stats.csv" 'SuccessfulCall(C)')
failed=$(stat_field "$WORK/stats.csv" 'FailedCall(C)')
echo "calls: $CALLS offered at $RATE/s, held $((HOLD_MS / 1000)) s: successful ${ok:-?}, failed ${failed:-?}"
sleep "$AFTER_S"
snapshot after

awk -v lb="$LIVE_base" -v lp="$LIVE_peak" -v la="$LIVE_after" -v hb="$HEAP_base" -v hp="$HEAP_peak" -v ha="$HEAP_after" -v rb="$RSS_base" -v rp="$RSS_peak" -v ra="$RSS_after" \
	-v gb="$GOR_base" -v gp="$GOR_peak" -v ga="$GOR_after" -v n="$CALLS" 'BEGIN {
	printf "per active call: live heap %.0f B (%.2f KiB); ", (lp - lb) / n, (lp - lb) / n / 1024
	printf "in-use heap %.0f B (%.2f KiB), RSS %.0f B (%.2f KiB), goroutines %.2f\n",
		(hp - hb) / n, (hp - hb) / n / 1024, (rp - rb) * 1024 / n, (rp - rb) / n, (gp - gb) / n
	printf "after the calls ended: live heap %+.1f MiB vs baseline; ", (la - lb) / 1048576
	printf "in-use heap %+.1f MiB vs baseline (%.0f%% of the peak growth), RSS %+.1f MiB, goroutines %+d\n",
		(ha - hb) / 1048576, (hp > hb ? 100 * (ha - hb) / (hp - hb) : 0), (ra - rb) / 1024, ga - gb
}'
