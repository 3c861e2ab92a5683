#!/usr/bin/env bash
# Soak: a steady call rate through switchboard for a long time, to show
# that memory stays flat and calls keep completing (issue 11: 10 minutes at
# 1,000 calls/s, 1 s hold, >= 99.9 % completed, RSS flat and under 200 MiB).
# SIPp UAC (trunk, callers cycling through CALLERS numbers, so that the
# contact stage finds and creates contacts) -> switchboard
# (bench/switchboard.yaml, the full pipeline) -> SIPp UAS (PBX).
#
#   bench/soak.sh
#
# Every SAMPLE_S seconds it prints elapsed time, RSS, heap in use, live heap
# at the last GC, goroutines, CPU use and SIPp's successful/failed calls so
# far; at the end the completion percentage and whether RSS stayed flat
# (largest RSS of the second half within 10 % of the first half's) and
# under the limit.
#
# Environment: RATE (1000), DURATION_S (600), HOLD_MS (1000), SAMPLE_S (30),
# CALLERS (5000), FAST_PATH (true: sip.fast_path on; false: the sipgo path),
# RSS_LIMIT_MIB (200), KEEP=1. Bounded: SIPp has a hard time limit; every
# process it starts is killed by pid on exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RATE=${RATE:-1000}
DURATION_S=${DURATION_S:-600}
HOLD_MS=${HOLD_MS:-1000}
SAMPLE_S=${SAMPLE_S:-30}
CALLERS=${CALLERS:-5000}
RSS_LIMIT_MIB=${RSS_LIMIT_MIB:-200}
export FAST_PATH=${FAST_PATH:-true}
SIP_PORT=${SIP_PORT:-37060}
PBX_PORT=${PBX_PORT:-37080}
TRUNK_PORT=${TRUNK_PORT:-37090}
HTTP_PORT=${HTTP_PORT:-38280}
CLK_TCK=$(getconf CLK_TCK)
need sipp "Debian package sip-tester"
need curl
bench_init soak

CALLS=$((RATE * DURATION_S))
LIMIT_S=$((DURATION_S + HOLD_MS / 1000 + 60))
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(nproc) cores, $(uname -r)"
echo "command: RATE=$RATE DURATION_S=$DURATION_S HOLD_MS=$HOLD_MS CALLERS=$CALLERS FAST_PATH=$FAST_PATH $0"

build_switchboard
start_switchboard
cd "$WORK"
{
	echo SEQUENTIAL
	for i in $(seq 0 $((CALLERS - 1))); do printf '+49170%07d\n' "$i"; done
} >callers.csv
sed 's/+4930111222/[field0]/g' "$SIPP_DIR/uac_answer.xml" >uac_soak.xml

spawn sipp -sf "$HERE/scenarios/uas_answer_now.xml" -i 127.0.0.1 -p "$PBX_PORT" -nostdin \
	-timeout "$((LIMIT_S + 30))s" -max_socket 65000 >uas.log 2>&1
sleep 0.3
spawn timeout --signal=KILL "$((LIMIT_S + 15))" sipp -sf uac_soak.xml -inf callers.csv -i 127.0.0.1 -p "$TRUNK_PORT" \
	-s +49301234560 -r "$RATE" -m "$CALLS" -d "$HOLD_MS" -nostdin \
	-timeout "${LIMIT_S}s" -timeout_error -recv_timeout 10000 -max_socket 65000 \
	-trace_stat -stf stats.csv -fd 5 "127.0.0.1:$SIP_PORT" >uac.log 2>&1
UAC_PID=$LAST_PID

metric() { awk -v n="$1" '$1 == n { v = $2 } END { printf "%.0f", v }' <<<"$METRICS"; }
printf '%7s %9s %9s %9s %10s %6s %9s %7s\n' elapsed rss_mib heap_mib live_mib goroutines cpu% ok failed | tee samples.txt
start=$(date +%s)
ticks0=$(cpu_ticks "$SB_PID")
while kill -0 "$UAC_PID" 2>/dev/null; do
	sleep "$SAMPLE_S"
	kill -0 "$SB_PID" 2>/dev/null || { echo "SWITCHBOARD DIED"; exit 1; }
	METRICS=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" || true)
	ticks=$(cpu_ticks "$SB_PID")
	live=$(awk -v n="$(metric go_memstats_next_gc_bytes)" -v g="$(metric go_gc_gogc_percent)" \
		'BEGIN { printf "%.1f", n / (1 + (g ? g : 100) / 100) / 1048576 }')
	printf '%7d %9.1f %9.1f %9s %10d %6.1f %9s %7s\n' "$(($(date +%s) - start))" \
		"$(awk -v k="$(rss_kb "$SB_PID")" 'BEGIN { print k / 1024 }')" \
		"$(awk -v b="$(metric go_memstats_heap_inuse_bytes)" 'BEGIN { print b / 1048576 }')" "$live" \
		"$(metric go_goroutines)" \
		"$(awk -v t="$((ticks - ticks0))" -v k="$CLK_TCK" -v s="$SAMPLE_S" 'BEGIN { print 100 * t / k / s }')" \
		"$(stat_field stats.csv 'SuccessfulCall(C)' || echo 0)" "$(stat_field stats.csv 'FailedCall(C)' || echo 0)" | tee -a samples.txt
	ticks0=$ticks
done
created=$(stat_field stats.csv 'OutgoingCall(C)')
ok=$(stat_field stats.csv 'SuccessfulCall(C)')
failed=$(stat_field stats.csv 'FailedCall(C)')
echo "calls: $CALLS offered at $RATE/s for $DURATION_S s, created ${created:-0}, successful ${ok:-0}, failed ${failed:-0}"
awk -v ok="${ok:-0}" -v n="$CALLS" -v lim="$RSS_LIMIT_MIB" 'NR > 1 { rss[++k] = $2 }
	END {
		h = int(k / 2); m1 = 0; m2 = 0; top = 0
		for (i = 1; i <= k; i++) { if (i <= h && rss[i] > m1) m1 = rss[i]; if (i > h && rss[i] > m2) m2 = rss[i]; if (rss[i] > top) top = rss[i] }
		pct = 100 * ok / n
		printf "completed: %.3f %% (target >= 99.9: %s)\n", pct, (pct >= 99.9 ? "pass" : "FAIL")
		printf "RSS: largest %.1f MiB (first half %.1f, second half %.1f); flat: %s; under %d MiB: %s\n",
			top, m1, m2, (m2 <= 1.1 * m1 ? "yes" : "NO"), lim, (top < lim ? "yes" : "NO")
	}' samples.txt
