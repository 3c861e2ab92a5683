#!/usr/bin/env bash
# Side-by-side load benchmark on loopback: SIPp UAC (trunk) -> proxy -> SIPp
# UAS (PBX), the same scenarios for Kamailio (bench/kamailio/kamailio.cfg)
# and switchboard (bench/switchboard.yaml, the full pipeline).
#
#   bench/sidebyside.sh
#
# Two call scenarios (SPEC 9), chosen with SCENARIO:
#   answer  the PBX answers at once, the caller hangs up after HOLD_MS
#           (sipp/uac_answer.xml + bench/scenarios/uas_answer_now.xml);
#   ring    the PBX rings 200 ms with a 180, then answers; after HOLD_MS
#           half of the calls are ended by the PBX (its BYE passes the
#           proxy the other way, with switchboard's display-name swap to
#           undo) and half by the caller (bench/scenarios/uac_ring.xml +
#           bench/scenarios/uas_ring.xml).
# For each scenario and proxy it
#   1. steps the call rate through RATES, STEP_S seconds per step, until a
#      step fails, and reports the highest rate with >= 99.9 % of the calls
#      completed and >= 97 % of the requested rate achieved;
#   2. at half that rate, the response-time distribution (SIPp, whole
#      milliseconds; INVITE->200 in answer, INVITE->180 in ring) and, in
#      answer with CANCEL=1, ringing-then-CANCEL calls
#      (sipp/uac_cancel.xml + sipp/uas_ring_forever.xml);
#   3. at CPU_RATE calls per second, the proxy's CPU time per call (utime +
#      stime of the proxy and its child processes, from /proc/PID/stat);
#   4. at 2x its capacity (OVERLOAD=0 skips), the completed calls per second;
# then prints the ratios switchboard/Kamailio per scenario. For switchboard
# every run also prints how many datagrams its fast path passed to the
# sipgo path (switchboard_sip_fallback_total on /metrics; 0 expected).
#
# Environment: SCENARIO ("answer"; "answer ring" runs both), RATES (default
# "1000 2000 3000 4000 5000 6000 7000"), STEP_S (30, at least 30), HOLD_MS
# (1000), CPU_RATE (2000), CANCEL (1), OVERLOAD (1), CHILDREN (Kamailio UDP
# workers, 4), PROXIES ("kamailio switchboard switchboard-fast";
# switchboard-fast is switchboard with sip.fast_path on), KEEP=1 keeps the
# work directory. Needs sipp (Debian sip-tester) and kamailio (installed
# with apt-get when missing and run as root). Every process it starts is
# killed by pid on exit; every SIPp run has a hard time limit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RATES=${RATES:-"1000 2000 3000 4000 5000 6000 7000"}
STEP_S=${STEP_S:-30}
HOLD_MS=${HOLD_MS:-1000}
CPU_RATE=${CPU_RATE:-2000}
CHILDREN=${CHILDREN:-4}
PROXIES=${PROXIES:-"kamailio switchboard switchboard-fast"}
OVERLOAD=${OVERLOAD:-1}
CANCEL=${CANCEL:-1}
SCENARIO=${SCENARIO:-answer}
SIP_PORT=${SIP_PORT:-35060}
PBX_PORT=${PBX_PORT:-35080}
TRUNK_PORT=${TRUNK_PORT:-35090}
HTTP_PORT=${HTTP_PORT:-38080}
CLK_TCK=$(getconf CLK_TCK)

for s in $SCENARIO; do
	case $s in answer | ring) ;; *) echo "SCENARIO: answer or ring, not $s" >&2; exit 2 ;; esac
done
if [ "$STEP_S" -lt 30 ] && [ -z "${ALLOW_SHORT:-}" ]; then echo "STEP_S must be at least 30" >&2; exit 2; fi
need sipp "Debian package sip-tester"
need curl
if ! command -v kamailio >/dev/null && [[ " $PROXIES " == *" kamailio "* ]]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing kamailio (Debian package)..." >&2
		apt-cache policy kamailio | head -n 3 >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kamailio >/dev/null
	fi
	need kamailio "Debian package kamailio"
fi
bench_init sidebyside
RESULTS="$WORK/results.txt"
: >"$RESULTS"

start_kamailio() {
	mkdir -p "$WORK/kamrun"
	sed -e "s/@CHILDREN@/$CHILDREN/g" -e "s/@SIP_PORT@/$SIP_PORT/g" -e "s/@PBX_PORT@/$PBX_PORT/g" \
		"$HERE/kamailio/kamailio.cfg" >"$WORK/kamailio.cfg"
	spawn kamailio -f "$WORK/kamailio.cfg" -DD -E -x tlsf -m 1024 -M 16 \
		-P "$WORK/kamrun/kamailio.pid" -Y "$WORK/kamrun" 2>"$WORK/kamailio.log"
	PROXY_PID=$LAST_PID
	local hex
	hex=$(printf '%04X' "$SIP_PORT")
	for _ in $(seq 1 100); do
		kill -0 "$PROXY_PID" 2>/dev/null || break
		grep -q "0100007F:$hex " /proc/net/udp && { sleep 0.5; return 0; }
		sleep 0.1
	done
	echo "kamailio did not start; its log:" >&2
	tail -n 30 "$WORK/kamailio.log" >&2
	exit 1
}

start_proxy() {
	case $1 in
	kamailio) start_kamailio ;;
	switchboard) FAST_PATH=false start_switchboard; PROXY_PID=$SB_PID ;;
	switchboard-fast) FAST_PATH=true start_switchboard; PROXY_PID=$SB_PID ;;
	esac
}

# run NAME RATE SECONDS UAC UAS HOLD: one bounded SIPp run in $WORK/NAME;
# sets R_CREATED R_OK R_FAILED R_GEN (seconds to create the calls) and
# R_TICKS (proxy CPU ticks during the run).
run() {
	local name=$1 rate=$2 secs=$3 uac=$4 uas=$5 hold=$6
	local dir="$WORK/$name" calls=$(($2 * $3))
	local limit=$((secs + hold / 1000 + 40))
	mkdir -p "$dir"
	cd "$dir"
	local uas_file="$SIPP_DIR/$uas" uac_file="$SIPP_DIR/$uac"
	[ -f "$HERE/scenarios/$uas" ] && uas_file="$HERE/scenarios/$uas"
	[ -f "$HERE/scenarios/$uac" ] && uac_file="$HERE/scenarios/$uac"
	local fb0
	fb0=$(fallbacks)
	spawn sipp -sf "$uas_file" -i 127.0.0.1 -p "$PBX_PORT" -nostdin \
		-timeout "$((limit + 10))s" -d "$hold" -max_socket 65000 >uas.log 2>&1
	local uas_pid=$LAST_PID
	sleep 0.3
	local t0 t1
	t0=$(cpu_ticks "$PROXY_PID")
	timeout --signal=KILL "$((limit + 15))" sipp -sf "$uac_file" -i 127.0.0.1 -p "$TRUNK_PORT" \
		-s +49301234560 -r "$rate" -m "$calls" -d "$hold" -nostdin \
		-timeout "${limit}s" -timeout_error -recv_timeout 10000 -max_socket 65000 \
		-trace_stat -stf stats.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_err -error_file errors.log \
		"127.0.0.1:$SIP_PORT" >uac.log 2>&1 || true
	t1=$(cpu_ticks "$PROXY_PID")
	stop "$uas_pid"
	cd "$WORK"
	R_CREATED=$(stat_field "$dir/stats.csv" 'OutgoingCall(C)')
	R_OK=$(stat_field "$dir/stats.csv" 'SuccessfulCall(C)')
	R_FAILED=$(stat_field "$dir/stats.csv" 'FailedCall(C)')
	R_CREATED=${R_CREATED:-0} R_OK=${R_OK:-0} R_FAILED=${R_FAILED:-0}
	R_TICKS=$((t1 - t0))
	R_FALLBACK=""
	[ -z "$fb0" ] || R_FALLBACK=" fallback $(($(fallbacks) - fb0))"
	# When the last call was created: interpolate between the two stats
	# lines (1 s apart) around the moment OutgoingCall(C) reached its total.
	R_GEN=$(awk -F';' -v total="$R_CREATED" '
		NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "OutgoingCall(C)") o = i; if ($i == "CurrentTime") c = i; if ($i == "StartTime") s = i }; next }
		{ n = split($c, ct, "\t"); now = ct[n]; n = split($s, st, "\t"); start = st[n]
		  if ($o + 0 >= total && total > 0) { t = pt + (total - po) / ($o - po) * (now - pt); if (pt == 0) t = now; printf "%.3f", t - start; exit }
		  pt = now; po = $o + 0 }' "$dir/stats.csv")
	R_GEN=${R_GEN:-0}
}

rtt_summary() { # DIR -> "n p50 p90 p99 p999 max" in ms
	local f
	f=$(ls "$1"/*_rtt.csv 2>/dev/null | head -n 1 || true)
	[ -n "$f" ] || { echo "0 - - - - -"; return; }
	awk -F';' 'NR > 1 && $2 != "" { print $2 }' "$f" | sort -g | awk '
		function pct(q,   i) { i = int(NR * q + 0.999999); if (i < 1) i = 1; return v[i] }
		{ v[NR] = $1 }
		END { if (NR == 0) { print "0 - - - - -"; exit }
		      printf "%d %s %s %s %s %s\n", NR, pct(0.5), pct(0.9), pct(0.99), pct(0.999), v[NR] }'
}

say() { echo "$*" | tee -a "$RESULTS"; }

# fallbacks: switchboard_sip_fallback_total summed over its reasons, or
# nothing when the proxy under test is not switchboard.
fallbacks() {
	[[ "${CUR_PROXY:-}" == switchboard* ]] || return 0
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null |
		awk '/^switchboard_sip_fallback_total/ { t += $NF } END { printf "%.0f\n", t }' || echo 0
}

# fallback_reasons: the same by reason, for the end of a switchboard run.
fallback_reasons() {
	curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" 2>/dev/null |
		awk '/^switchboard_sip_fallback_total/ { sub(/.*reason="/, "", $1); sub(/".*/, "", $1); printf "%s%s=%.0f", sep, $1, $2; sep = " " }' || true
}

# scenario_files SCENARIO: sets UAC and UAS (file names) and RTT_NAME.
scenario_files() {
	case $1 in
	answer) UAC=uac_answer.xml UAS=uas_answer_now.xml RTT_NAME="INVITE->200" ;;
	ring) UAC=uac_ring.xml UAS=uas_ring.xml RTT_NAME="INVITE->180" ;;
	esac
}

cpu_per_call() { # TICKS OK -> microseconds
	awk -v t="$1" -v k="$CLK_TCK" -v ok="$2" 'BEGIN { printf "%.1f", (ok > 0 ? t / k * 1e6 / ok : 0) }'
}

bench_proxy() {
	local sc=$1 p=$2 v=${1}_${2//-/_} best=0 r created ok failed gen ticks achieved pass tag
	scenario_files "$sc"
	tag="$p/$sc"
	say "== $p, scenario $sc ($UAC + $UAS)"
	CUR_PROXY=$p
	start_proxy "$p"
	for r in $RATES; do
		run "$p-$sc-step-$r" "$r" "$STEP_S" "$UAC" "$UAS" "$HOLD_MS"
		created=$R_CREATED ok=$R_OK failed=$R_FAILED gen=$R_GEN ticks=$R_TICKS
		achieved=$(awk -v c="$created" -v g="$gen" 'BEGIN { printf "%.0f", (g > 0 ? c / g : 0) }')
		pass=$(awk -v r="$r" -v s="$STEP_S" -v ok="$ok" -v a="$achieved" 'BEGIN { print (ok >= 0.999 * r * s && a >= 0.97 * r) ? "pass" : "FAIL" }')
		say "$(printf '%-24s step %5d cps: created %6d ok %6d failed %5d achieved %5d cps cpu/call %6.1f us  %s%s' \
			"$tag" "$r" "$created" "$ok" "$failed" "$achieved" "$(cpu_per_call "$ticks" "$ok")" "$pass" "$R_FALLBACK")"
		if ! kill -0 "$PROXY_PID" 2>/dev/null; then say "$tag: PROXY DIED at $r cps"; break; fi
		[ "$pass" = pass ] || break
		best=$r
		sleep 3
	done
	say "$tag: highest passing rate $best cps"
	eval "BEST_$v=$best"
	if [ "$best" -gt 0 ]; then
		sleep 5
		local half=$((best / 2)) rt
		run "$p-$sc-half-$half" "$half" "$STEP_S" "$UAC" "$UAS" "$HOLD_MS"
		created=$R_CREATED ok=$R_OK failed=$R_FAILED
		rt=$(rtt_summary "$WORK/$p-$sc-half-$half")
		say "$tag: half rate $half cps: ok $ok/$created; $RTT_NAME ms (n p50 p90 p99 p99.9 max): $rt;$R_FALLBACK"
		eval "RTT_$v=\"$rt\""
		if [ "$CANCEL" = 1 ] && [ "$sc" = answer ]; then
			sleep 3
			run "$p-cancel-$half" "$half" "$STEP_S" uac_cancel.xml uas_ring_forever.xml 500
			say "$tag: half rate $half cps ring+CANCEL: ok $R_OK/$R_CREATED failed $R_FAILED;$R_FALLBACK"
		fi
	fi
	sleep 3
	run "$p-$sc-cpu-$CPU_RATE" "$CPU_RATE" "$STEP_S" "$UAC" "$UAS" "$HOLD_MS"
	created=$R_CREATED ok=$R_OK ticks=$R_TICKS
	local cpu
	cpu=$(cpu_per_call "$ticks" "$ok")
	say "$tag: at $CPU_RATE cps: ok $ok/$created, CPU $(awk -v t="$ticks" -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }') s = $cpu us per call;$R_FALLBACK"
	eval "CPU_$v=$cpu"
	if [ "$OVERLOAD" = 1 ] && [ "$best" -gt 0 ]; then
		sleep 3
		local over=$((best * 2))
		run "$p-$sc-over-$over" "$over" "$STEP_S" "$UAC" "$UAS" "$HOLD_MS"
		ok=$R_OK created=$R_CREATED
		say "$tag: overload $over cps offered: ok $ok of $created created, $(awk -v ok="$ok" -v s="$STEP_S" 'BEGIN { printf "%.0f", ok / s }') completed cps;$R_FALLBACK"
	fi
	if [ "$p" = kamailio ]; then
		say "$tag: CDR lines logged: $(grep -c 'CDR call_id' "$WORK/kamailio.log" || true)"
	else
		say "$tag: switchboard_sip_fallback_total by reason: $(fallback_reasons)"
	fi
	stop "$PROXY_PID"
	CUR_PROXY=
	sleep 2
}

if [[ " $PROXIES " == *" switchboard"* ]]; then build_switchboard; fi
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(nproc) cores, $(uname -r); load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RESULTS"
echo "command: SCENARIO=\"$SCENARIO\" PROXIES=\"$PROXIES\" RATES=\"$RATES\" STEP_S=$STEP_S HOLD_MS=$HOLD_MS CPU_RATE=$CPU_RATE CANCEL=$CANCEL OVERLOAD=$OVERLOAD CHILDREN=$CHILDREN $0" | tee -a "$RESULTS"
echo "kamailio: $(kamailio -v 2>/dev/null | head -n 1 || echo none); sipp: $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ]*' | head -n 1)" | tee -a "$RESULTS"
for sc in $SCENARIO; do
	for p in $PROXIES; do bench_proxy "$sc" "$p"; done
done

for sc in $SCENARIO; do
	for p in $PROXIES; do
		[ "$p" != kamailio ] && [[ " $PROXIES " == *" kamailio "* ]] || continue
		v=${sc}_${p//-/_}
		best=BEST_$v cpu=CPU_$v rtt=RTT_$v kbest=BEST_${sc}_kamailio kcpu=CPU_${sc}_kamailio krtt=RTT_${sc}_kamailio
		scenario_files "$sc"
		say "== ratios $p/kamailio, scenario $sc"
		say "$(awk -v a="${!best:-0}" -v b="${!kbest:-0}" 'BEGIN { printf "highest passing rate: %s / %s = %.2f (must >= 1.0, aim >= 1.25)", a, b, (b > 0 ? a / b : 0) }')"
		say "$(awk -v a="${!cpu:-0}" -v b="${!kcpu:-0}" -v r="$CPU_RATE" 'BEGIN { printf "CPU per call at %d cps: %s / %s us = %.2f (must <= 1.0, aim <= 0.5)", r, a, b, (b > 0 ? a / b : 0) }')"
		say "p99 $RTT_NAME at half rate (ms): $p $(echo "${!rtt:-0 - - -}" | awk '{print $4}'), kamailio $(echo "${!krtt:-0 - - -}" | awk '{print $4}') (must be no worse; SPEC: < 2)"
	done
done
