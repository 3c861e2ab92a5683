#!/usr/bin/env bash
# Soak: a steady call rate through switchboard for a long time, to show
# that memory stays flat and calls keep completing (SPEC 9: 10 minutes at
# 1,000 calls/s, 1 s hold, >= 99.9 % completed, RSS flat and under
# 200 MiB). SIPp UAC (trunk, callers cycling through CALLERS numbers, so
# that the contact stage finds and creates contacts) -> switchboard
# (bench/switchboard.yaml, the full pipeline) -> SIPp UAS (PBX).
#
#   bench/soak.sh
#
# SCENARIO picks the calls, as in bench/sidebyside.sh: answer (the PBX
# answers at once, the caller hangs up) or ring (the PBX rings 200 ms with
# a 180, then answers; half of the calls are ended by the PBX).
#
# Every SAMPLE_S seconds it prints elapsed time, RSS, heap in use, live heap
# at the last GC, goroutines, CPU use and SIPp's successful/failed calls so
# far; at the end the completion percentage and whether RSS stayed flat
# (largest RSS of the second half within 10 % of the first half's) and
# under the limit. Then, for AFTER_S seconds after the load stopped, every
# 5 s the live heap after a forced GC (Go's profiler endpoint, heap?gc=1),
# against the same figure taken before the load began: does what the calls
# left behind go away?
#
# Environment: SCENARIO (answer), RATE (1000), DURATION_S (600), HOLD_MS
# (1000), SAMPLE_S (30), AFTER_S (40), CALLERS (5000), FAST_PATH (true:
# sip.fast_path on; false: the sipgo path), MEMORY_LIMIT (unset: none; e.g.
# 150MiB sets runtime.memory_limit), RSS_LIMIT_MIB (200), KEEP=1. Bounded:
# SIPp has a hard time limit; every process it starts is killed by pid on
# exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SCENARIO=${SCENARIO:-answer}
RATE=${RATE:-1000}
DURATION_S=${DURATION_S:-600}
HOLD_MS=${HOLD_MS:-1000}
SAMPLE_S=${SAMPLE_S:-30}
AFTER_S=${AFTER_S:-40}
CALLERS=${CALLERS:-5000}
RSS_LIMIT_MIB=${RSS_LIMIT_MIB:-200}
export FAST_PATH=${FAST_PATH:-true}
SIP_PORT=${SIP_PORT:-37060}
PBX_PORT=${PBX_PORT:-37080}
TRUNK_PORT=${TRUNK_PORT:-37090}
HTTP_PORT=${HTTP_PORT:-38280}
PPROF_PORT=${PPROF_PORT:-38281}
export SWITCHBOARD_PPROF=127.0.0.1:$PPROF_PORT
CLK_TCK=$(getconf CLK_TCK)
case $SCENARIO in
answer) UAC="$SIPP_DIR/uac_answer.xml" UAS="$HERE/scenarios/uas_answer_now.xml" ;;
ring) UAC="$HERE/scenarios/uac_ring.xml" UAS="$HERE/scenarios/uas_ring.xml" ;;
*) echo "SCENARIO: answer or ring, not $SCENARIO" >&2; exit 2 ;;
esac
need sipp "Debian package sip-tester"
need curl
bench_init soak

CALLS=$((RATE * DURATION_S))
LIMIT_S=$((DURATION_S + HOLD_MS / 1000 + 60))
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(nproc) cores, $(uname -r); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: SCENARIO=$SCENARIO RATE=$RATE DURATION_S=$DURATION_S HOLD_MS=$HOLD_MS CALLERS=$CALLERS FAST_PATH=$FAST_PATH MEMORY_LIMIT=${MEMORY_LIMIT:-} $0"
echo "runtime.memory_limit: ${MEMORY_LIMIT:-none set}; GOGC: ${GOGC:-default (100)}"

build_switchboard
start_switchboard
cd "$WORK"
{
	echo SEQUENTIAL
	for i in $(seq 0 $((CALLERS - 1))); do printf '+49170%07d\n' "$i"; done
} >callers.csv
sed 's/+4930111222/[field0]/g' "$UAC" >uac_soak.xml

metric() { awk -v n="$1" '$1 == n { v = $2 } END { printf "%.0f", v }' <<<"$METRICS"; }

# live_after_gc: the heap still reachable, in MiB, right after a forced GC.
live_after_gc() {
	curl -fsS "http://$SWITCHBOARD_PPROF/debug/pprof/heap?gc=1&debug=1" 2>/dev/null |
		awk '/^# HeapAlloc = / { printf "%.1f", $4 / 1048576; found = 1 } END { if (!found) printf "-" }' || echo -
}

sleep 2
BASE_LIVE=$(live_after_gc)
echo "before the load: live heap after a forced GC $BASE_LIVE MiB, RSS $(awk -v k="$(rss_kb "$SB_PID")" 'BEGIN { printf "%.1f", k / 1024 }') MiB"

spawn sipp -sf "$UAS" -i 127.0.0.1 -p "$PBX_PORT" -nostdin \
	-timeout "$((LIMIT_S + 30))s" -d "$HOLD_MS" -max_socket 65000 >uas.log 2>&1
sleep 0.3
spawn timeout --signal=KILL "$((LIMIT_S + 15))" sipp -sf uac_soak.xml -inf callers.csv -i 127.0.0.1 -p "$TRUNK_PORT" \
	-s +49301234560 -r "$RATE" -m "$CALLS" -d "$HOLD_MS" -nostdin \
	-timeout "${LIMIT_S}s" -timeout_error -recv_timeout 10000 -max_socket 65000 \
	-trace_stat -stf stats.csv -fd 5 "127.0.0.1:$SIP_PORT" >uac.log 2>&1
UAC_PID=$LAST_PID

printf '%7s %9s %9s %9s %10s %6s %9s %7s\n' elapsed rss_mib heap_mib live_mib goroutines cpu% ok failed | tee samples.txt
start=$(date +%s)
ticks0=$(cpu_ticks "$SB_PID")
last=$start
while kill -0 "$UAC_PID" 2>/dev/null; do
	sleep 1
	now=$(date +%s)
	[ $((now - last)) -ge "$SAMPLE_S" ] || continue
	kill -0 "$SB_PID" 2>/dev/null || { echo "SWITCHBOARD DIED"; exit 1; }
	METRICS=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" || true)
	ticks=$(cpu_ticks "$SB_PID")
	live=$(awk -v n="$(metric go_memstats_next_gc_bytes)" -v g="$(metric go_gc_gogc_percent)" \
		'BEGIN { printf "%.1f", n / (1 + (g ? g : 100) / 100) / 1048576 }')
	printf '%7d %9.1f %9.1f %9s %10d %6.1f %9s %7s\n' "$((now - start))" \
		"$(awk -v k="$(rss_kb "$SB_PID")" 'BEGIN { print k / 1024 }')" \
		"$(awk -v b="$(metric go_memstats_heap_inuse_bytes)" 'BEGIN { print b / 1048576 }')" "$live" \
		"$(metric go_goroutines)" \
		"$(awk -v t="$((ticks - ticks0))" -v k="$CLK_TCK" -v s="$((now - last))" 'BEGIN { print 100 * t / k / s }')" \
		"$(stat_field stats.csv 'SuccessfulCall(C)' || echo 0)" "$(stat_field stats.csv 'FailedCall(C)' || echo 0)" | tee -a samples.txt
	ticks0=$ticks last=$now
done
created=$(stat_field stats.csv 'OutgoingCall(C)')
ok=$(stat_field stats.csv 'SuccessfulCall(C)')
failed=$(stat_field stats.csv 'FailedCall(C)')
echo "calls: $CALLS offered at $RATE/s for $DURATION_S s ($SCENARIO), created ${created:-0}, successful ${ok:-0}, failed ${failed:-0}"
awk -v ok="${ok:-0}" -v n="$CALLS" -v lim="$RSS_LIMIT_MIB" 'NR > 1 { rss[++k] = $2 }
	END {
		h = int(k / 2); m1 = 0; m2 = 0; top = 0
		for (i = 1; i <= k; i++) { if (i <= h && rss[i] > m1) m1 = rss[i]; if (i > h && rss[i] > m2) m2 = rss[i]; if (rss[i] > top) top = rss[i] }
		pct = 100 * ok / n
		printf "completed: %.3f %% (target >= 99.9: %s)\n", pct, (pct >= 99.9 ? "pass" : "FAIL")
		printf "RSS: largest %.1f MiB (first half %.1f, second half %.1f); flat: %s; under %d MiB: %s\n",
			top, m1, m2, (m2 <= 1.1 * m1 ? "yes" : "NO"), lim, (top < lim ? "yes" : "NO")
	}' samples.txt
METRICS=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" || true)
echo "switchboard_sip_fallback_total: $(awk '/^switchboard_sip_fallback_total/ { t += $NF } END { printf "%.0f", t }' <<<"$METRICS")"

echo "after the load stopped (live heap after a forced GC; before the load: $BASE_LIVE MiB):"
printf '%7s %9s %9s %10s\n' after_s rss_mib live_mib goroutines | tee after.txt
end=$(date +%s)
while [ $(($(date +%s) - end)) -le "$AFTER_S" ]; do
	live=$(live_after_gc)
	METRICS=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" || true)
	printf '%7d %9.1f %9s %10d\n' "$(($(date +%s) - end))" "$(awk -v k="$(rss_kb "$SB_PID")" 'BEGIN { print k / 1024 }')" \
		"$live" "$(metric go_goroutines)" | tee -a after.txt
	sleep 5
done
# Back to baseline: within 1 MiB or 10 % of the figure before the load.
awk -v b="$BASE_LIVE" 'NR > 1 && $3 != "-" { if (!t && $3 <= b + (b * 0.1 > 1 ? b * 0.1 : 1)) t = $1 " s"; last = $3 }
	END { printf "live heap: %s MiB before the load, %s MiB %d s after it; back to baseline (within 1 MiB or 10 %%): %s\n",
		b, last, '"$AFTER_S"', (t ? "yes, after " t : "NO") }' after.txt
