#!/usr/bin/env bash
# CPU profile of a running switchboard (bench/switchboard.yaml, the full
# pipeline) under SIPp load, with Linux perf (no code change, no pprof
# endpoint needed): prints CPU per call and the top functions.
#
#   bench/profile.sh [RATE] [SECONDS]     # default 500 calls/s for 30 s
#
# SCENARIO=ring profiles the ring scenario of bench/sidebyside.sh (180,
# 200 ms, half the calls ended by the PBX) instead of answer.
#
# Needs sipp and perf (Debian linux-perf). Bounded; kills what it starts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RATE=${1:-500}
SECS=${2:-30}
SIP_PORT=${SIP_PORT:-36060} PBX_PORT=${PBX_PORT:-36080} TRUNK_PORT=${TRUNK_PORT:-36090} HTTP_PORT=${HTTP_PORT:-38180}
need sipp; need perf "Debian linux-perf"; need curl
SCENARIO=${SCENARIO:-answer}
case $SCENARIO in
answer) UAC="$SIPP_DIR/uac_answer.xml" UAS="$HERE/scenarios/uas_answer_now.xml" ;;
ring) UAC="$HERE/scenarios/uac_ring.xml" UAS="$HERE/scenarios/uas_ring.xml" ;;
*) echo "SCENARIO: answer or ring, not $SCENARIO" >&2; exit 2 ;;
esac
bench_init profile
build_switchboard
start_switchboard
cd "$WORK"
spawn sipp -sf "$UAS" -i 127.0.0.1 -p "$PBX_PORT" -nostdin -timeout "$((SECS + 60))s" -d 1000 -max_socket 65000 >uas.log 2>&1
spawn timeout --signal=KILL "$((SECS + 60))" sipp -sf "$UAC" -i 127.0.0.1 -p "$TRUNK_PORT" -s +49301234560 \
	-r "$RATE" -m "$((RATE * SECS))" -d 1000 -nostdin -timeout "$((SECS + 40))s" -trace_stat -stf stats.csv -fd 1 \
	"127.0.0.1:$SIP_PORT" >uac.log 2>&1
UAC_PID=$LAST_PID
sleep 5
t0=$(cpu_ticks "$SB_PID")
timeout --signal=KILL "$((SECS + 10))" perf record -F 999 -g -p "$SB_PID" -o perf.data -- sleep "$((SECS - 10))" >perf.log 2>&1 || true
t1=$(cpu_ticks "$SB_PID")
wait "$UAC_PID" || true
echo "rate $RATE/s: successful $(stat_field stats.csv 'SuccessfulCall(C)'), failed $(stat_field stats.csv 'FailedCall(C)')"
awk -v t=$((t1 - t0)) -v k="$(getconf CLK_TCK)" -v r="$RATE" -v s="$((SECS - 10))" \
	'BEGIN { printf "switchboard CPU while profiled: %.2f s for ~%d calls = %.0f us per call\n", t / k, r * s, t / k * 1e6 / (r * s) }'
echo "== top functions (self)"
perf report -i perf.data --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 40 || true
echo "== top functions (with callees)"
perf report -i perf.data --children --sort symbol --stdio --percent-limit 2 2>/dev/null | grep -E '^ +[0-9]' | head -n 60 || true
echo "== self time by area (rough: by symbol name)"
perf report -i perf.data --no-children --sort symbol --stdio 2>/dev/null | awk '
	/^ +[0-9.]+%/ {
		pct = $1; sub(/%/, "", pct); kind = $2; sym = $3
		if (kind == "[k]") a = "kernel"
		else if (sym ~ /^runtime\.(gc|mark|scan|greyobject|findObject|sweep|bgsweep|bgscavenge|wbBuf|(\(\*gcWork)|(\(\*mspan\)\.(sweep|typePointersOf))|heapBits|tryDeferToSpanScan|spanOf|(\(\*gcBits)|pageIndexOf|memclrNoHeapPointers)/) a = "Go GC"
		else if (sym ~ /^runtime\.(mallocgc|(\(\*mcache)|(\(\*mcentral)|(\(\*mheap)|nextFreeFast|(\(\*mspan\)\.(writeHeapBits|nextFreeIndex|init))|makeslice|growslice|newobject|rawstring|concatstring|slicebytetostring)/) a = "Go allocation"
		else if (sym ~ /^runtime\./ || sym ~ /^internal\/runtime/ || sym ~ /^(sync|time)\./) a = "Go scheduler, maps, locks, timers"
		else if (sym ~ /^(sqlite3|walChecksum|pcache|btree|vdbe|balance)/) a = "SQLite (C)"
		else if (sym ~ /^github\.com\/switchboard-sip\/switchboard\//) { a = sym; sub(/^github\.com\/switchboard-sip\/switchboard\//, "", a); sub(/[.(].*/, "", a); a = "switchboard " a }
		else if (sym ~ /^github\.com\/emiago\/sipgo/) a = "sipgo"
		else if (sym ~ /^(encoding\/json|reflect)\./) a = "encoding/json, reflect"
		else if (sym ~ /^(text\/template|github\.com\/google\/cel-go)/) a = "templates, CEL"
		else if (sym ~ /^database\/sql/ || sym ~ /^github\.com\/mattn\/go-sqlite3/ || sym ~ /^_cgo_/) a = "database/sql, cgo"
		else if (sym ~ /^crypto\//) a = "crypto (HMAC, hashes)"
		else if (sym ~ /^(_int_malloc|_int_free|malloc|free|cfree|__mem|__str)/) a = "libc (malloc, mem*)"
		else a = "other (Go std, SQLite internals)"
		t[a] += pct
	}
	END { for (a in t) printf "%7.2f%%  %s\n", t[a], a }' | sort -rn | head -n 25 || true
