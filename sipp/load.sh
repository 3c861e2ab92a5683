#!/usr/bin/env bash
# Bounded load run on loopback: SIPp UAC (trunk) -> switchboard -> SIPp UAS (PBX).
#
#   sipp/load.sh [RATE] [CALLS]
#
# RATE   calls per second offered by the UAC (default 100)
# CALLS  number of calls to place (default 1000)
#
# Environment (all optional):
#   HOLD_MS     talk time of each call in ms (sipp -d, default 100)
#   LIMIT       maximum simultaneous calls (sipp -l, default: SIPp's own)
#   TRANSPORT   udp or tcp (default udp)
#   SIP_PORT PBX_PORT TRUNK_PORT HTTP_PORT   loopback ports (defaults 25060
#               25080 25090 28080)
#   MAX_CPS     switchboard's sip.max_cps (load shedding with 503; default 0, off)
#   STORAGE_DRIVER STORAGE_DSN   storage.driver and storage.dsn (default a
#               SQLite file in the work directory; postgres needs a DSN)
#   KEEP=1      keep the work directory (config, logs, SIPp traces)
#
# It builds switchboard, writes a config into a temporary directory, starts
# switchboard and a SIPp UAS as the PBX, runs the UAC with a hard time limit,
# prints the achieved call rate, failed calls and INVITE->200 response times
# (through switchboard and the UAS), and kills every process it started by
# pid on exit.
set -euo pipefail

RATE=${1:-100}
CALLS=${2:-1000}
HOLD_MS=${HOLD_MS:-100}
TRANSPORT=${TRANSPORT:-udp}
SIP_PORT=${SIP_PORT:-25060}
PBX_PORT=${PBX_PORT:-25080}
TRUNK_PORT=${TRUNK_PORT:-25090}
HTTP_PORT=${HTTP_PORT:-28080}

case "$RATE$CALLS$HOLD_MS" in
*[!0-9]*) echo "usage: $0 [RATE] [CALLS]   (whole numbers)" >&2; exit 2 ;;
esac
case "$TRANSPORT" in
udp) MODE=u1; PARAM="" ;;
tcp) MODE=t1; PARAM=";transport=tcp" ;;
*) echo "TRANSPORT must be udp or tcp" >&2; exit 2 ;;
esac
command -v sipp >/dev/null || { echo "sipp not found (Debian package sip-tester)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-load.XXXXXX")
PIDS=()

cleanup() {
	local rc=$?
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ "${KEEP:-}" = 1 ]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Hard limit for the whole UAC run: the offered calls, the last call's hold
# time and a margin.
LIMIT_S=$(( CALLS / (RATE > 0 ? RATE : 1) + HOLD_MS / 1000 + 30 ))

echo "building switchboard..."
(cd "$ROOT" && go build -o "$WORK/switchboard" ./cmd/switchboard)

cat >"$WORK/switchboard.yaml" <<EOF
node: load
sip:
  listen: [udp://127.0.0.1:$SIP_PORT, tcp://127.0.0.1:$SIP_PORT]
  pbx: sip:127.0.0.1:$PBX_PORT$PARAM
  trunks:
    - name: carrier
      match: [127.0.0.1/32]
      outbound: sip:127.0.0.1:$TRUNK_PORT$PARAM
      region: DE
      trust_identity: true
  drain_timeout: 5s
  max_cps: ${MAX_CPS:-0}
  keepalive: 0s   # SIPp's UAS does not answer OPTIONS: probing would mark the PBX down
numbers:
  region: DE
storage:
  driver: ${STORAGE_DRIVER:-sqlite}
  dsn: "${STORAGE_DSN:-$WORK/sb.db}"
http:
  listen: 127.0.0.1:$HTTP_PORT
log:
  level: warn
EOF

"$WORK/switchboard" run -c "$WORK/switchboard.yaml" 2>"$WORK/switchboard.log" &
PIDS+=($!)
SB_PID=$!

ok=
for _ in $(seq 1 300); do # up to 15 s
	if ! kill -0 "$SB_PID" 2>/dev/null; then break; fi
	if curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null; then ok=1; break; fi
	sleep 0.05
done
if [ -z "$ok" ]; then
	echo "switchboard did not become healthy; its log:" >&2
	tail -n 50 "$WORK/switchboard.log" >&2
	exit 1
fi

cd "$WORK"
sipp -sf "$HERE/uas_answer.xml" -t "$MODE" -i 127.0.0.1 -p "$PBX_PORT" -nostdin \
	-timeout "$((LIMIT_S + 10))s" -trace_err -error_file "$WORK/uas_errors.log" \
	>"$WORK/uas_screen.log" 2>&1 &
PIDS+=($!)

UAC_ARGS=(-sf "$HERE/uac_answer.xml" -t "$MODE" -i 127.0.0.1 -s +49301234560
	-r "$RATE" -m "$CALLS" -d "$HOLD_MS" -nostdin
	-timeout "${LIMIT_S}s" -timeout_error -recv_timeout 10000
	-trace_stat -stf "$WORK/uac_stats.csv" -fd 1
	-trace_rtt -rtt_freq 1
	-trace_err -error_file "$WORK/uac_errors.log")
if [ -n "${LIMIT:-}" ]; then UAC_ARGS+=(-l "$LIMIT"); fi

echo "offering $CALLS calls at $RATE/s over $TRANSPORT (hold ${HOLD_MS} ms, limit ${LIMIT_S} s)..."
start=$(date +%s.%N)
set +e
timeout --signal=KILL "$((LIMIT_S + 15))" sipp "${UAC_ARGS[@]}" "127.0.0.1:$SIP_PORT" >"$WORK/uac_screen.log" 2>&1 &
UAC_PID=$!
PIDS+=($UAC_PID)
wait "$UAC_PID"
uac_rc=$?
set -e
end=$(date +%s.%N)

# Last line of the cumulative statistics.
last=$(tail -n 1 "$WORK/uac_stats.csv" 2>/dev/null || true)
head=$(head -n 1 "$WORK/uac_stats.csv" 2>/dev/null || true)
field() { # name -> value from the last stats line
	awk -v h="$head" -v l="$last" -v n="$1" 'BEGIN {
		split(h, H, ";"); split(l, L, ";")
		for (i in H) if (H[i] == n) { print L[i]; exit }
	}'
}
created=$(field 'OutgoingCall(C)')
success=$(field 'SuccessfulCall(C)')
failed=$(field 'FailedCall(C)')
sipp_rate=$(field 'CallRate(C)')

# switchboard's CPU time so far (user + system), from /proc: the cost per
# call that decides how many calls one core carries.
sb_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$SB_PID/stat" 2>/dev/null || echo 0)

echo
echo "== result (sipp exit status $uac_rc)"
awk -v s="$start" -v e="$end" -v c="${created:-0}" -v ok="${success:-0}" -v f="${failed:-0}" \
	-v r="$RATE" -v sr="${sipp_rate:-0}" 'BEGIN {
	d = e - s
	printf "calls offered %d, successful %d, failed %d in %.2f s (wall, with start-up and hold)\n", c, ok, f, d
	printf "achieved call rate: %.1f calls/s (SIPp cumulative CallRate; target %d/s)\n", sr, r
	printf "completed calls per wall second: %.1f\n", (d > 0 ? ok / d : 0)
}'
awk -v cpu="$sb_cpu" -v ok="${success:-0}" 'BEGIN {
	printf "switchboard CPU: %.2f s, %.2f ms per successful call\n", cpu, (ok > 0 ? cpu * 1000 / ok : 0)
}'

rtt=$(ls "$WORK"/uac_answer_*_rtt.csv 2>/dev/null | head -n 1 || true)
if [ -n "$rtt" ]; then
	# Date_ms;response_time_ms;rtd_no: INVITE -> 200 through switchboard.
	awk -F';' 'NR > 1 && $2 != "" { print $2 }' "$rtt" | sort -g | awk '
		function pct(q,   i) { i = int(NR * q + 0.5); if (i < 1) i = 1; return v[i] }
		{ v[NR] = $1; sum += $1 }
		END {
			if (NR == 0) { print "no response times recorded"; exit }
			printf "INVITE->200 response time (ms): n=%d avg=%.3f p50=%.3f p90=%.3f p99=%.3f max=%.3f\n",
				NR, sum / NR, pct(0.50), pct(0.90), pct(0.99), v[NR]
		}'
fi
echo
echo "== sipp UAC final screen"
awk '/Start Time/ { keep = 1 } keep' "$WORK/uac_screen.log" | tail -n 40
if [ -s "$WORK/uac_errors.log" ]; then
	echo "== sipp UAC errors (first lines)"
	head -n 20 "$WORK/uac_errors.log"
fi
exit "$uac_rc"
