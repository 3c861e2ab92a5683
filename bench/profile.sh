#!/usr/bin/env bash
# CPU profile of a running switchboard (bench/switchboard.yaml, the full
# pipeline) under SIPp load, with Linux perf (no code change, no pprof
# endpoint needed): prints CPU per call and the top functions.
#
#   bench/profile.sh [RATE] [SECONDS]     # default 500 calls/s for 30 s
#
# Needs sipp and perf (Debian linux-perf). Bounded; kills what it starts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE=${1:-500}
SECS=${2:-30}
SIP_PORT=${SIP_PORT:-36060} PBX_PORT=${PBX_PORT:-36080} TRUNK_PORT=${TRUNK_PORT:-36090} HTTP_PORT=${HTTP_PORT:-38180}
need sipp; need perf "Debian linux-perf"; need curl
bench_init profile
build_switchboard
start_switchboard
cd "$WORK"
spawn sipp -sf "$HERE/scenarios/uas_answer_now.xml" -i 127.0.0.1 -p "$PBX_PORT" -nostdin -timeout "$((SECS + 60))s" -max_socket 65000 >uas.log 2>&1
spawn timeout --signal=KILL "$((SECS + 60))" sipp -sf "$SIPP_DIR/uac_answer.xml" -i 127.0.0.1 -p "$TRUNK_PORT" -s +49301234560 \
	-r "$RATE" -m "$((RATE * SECS))" -d 1000 -nostdin -timeout "$((SECS + 40))s" -trace_stat -stf stats.csv -fd 1 \
	"127.0.0.1:$SIP_PORT" >uac.log 2>&1
UAC=$LAST_PID
sleep 5
t0=$(cpu_ticks "$SB_PID")
timeout --signal=KILL "$((SECS + 10))" perf record -F 999 -g -p "$SB_PID" -o perf.data -- sleep "$((SECS - 10))" >perf.log 2>&1 || true
t1=$(cpu_ticks "$SB_PID")
wait "$UAC" || true
echo "rate $RATE/s: successful $(stat_field stats.csv 'SuccessfulCall(C)'), failed $(stat_field stats.csv 'FailedCall(C)')"
awk -v t=$((t1 - t0)) -v k="$(getconf CLK_TCK)" -v r="$RATE" -v s="$((SECS - 10))" \
	'BEGIN { printf "switchboard CPU while profiled: %.2f s for ~%d calls = %.0f us per call\n", t / k, r * s, t / k * 1e6 / (r * s) }'
echo "== top functions (self)"
perf report -i perf.data --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 40 || true
echo "== top functions (with callees)"
perf report -i perf.data --children --sort symbol --stdio --percent-limit 2 2>/dev/null | grep -E '^ +[0-9]' | head -n 60 || true
