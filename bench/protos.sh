#!/usr/bin/env bash
# Sends all 4,527 PROTOS c07-sip INVITE cases (read in place from
# $SWITCHBOARD_SIP_CORPUS/protos-c07-sip, default ../shared/sip-corpus; the
# tar.gz is read in memory, nothing is extracted into the repo) to a running
# switchboard on loopback, group by group. After each group it checks that a
# normal call still completes (SIPp's built-in -sn uac through switchboard
# to -sn uas as the PBX) and that switchboard's process is alive, and it
# reports cases answered, dropped, and any crash or stall.
#
#   bench/protos.sh [GROUP]
#
# "unsendable" counts cases larger than a UDP datagram can carry (64 KiB).
#
# Environment: WAIT (per case, default 300ms), WORKERS (16), SIP_PORT
# PBX_PORT TRUNK_PORT HTTP_PORT (45060 45080 45090 48080), KEEP=1.
# Exit status 0 when switchboard survived every group and every check call.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

GROUP=${1:-}
WAIT=${WAIT:-300ms}
WORKERS=${WORKERS:-16}
SIP_PORT=${SIP_PORT:-45060}
PBX_PORT=${PBX_PORT:-45080}
TRUNK_PORT=${TRUNK_PORT:-45090}
HTTP_PORT=${HTTP_PORT:-48080}
need sipp "Debian package sip-tester"
need curl
bench_init protos

build_switchboard
(cd "$ROOT" && go build -o "$WORK/protos-send" ./bench/protos/cmd/protos-send)
CORPUS=${SWITCHBOARD_SIP_CORPUS:+$SWITCHBOARD_SIP_CORPUS/protos-c07-sip}
CORPUS=${CORPUS:-$ROOT/../shared/sip-corpus/protos-c07-sip}
[ -f "$CORPUS/GROUPS.tsv" ] || { echo "PROTOS corpus not found at $CORPUS (set SWITCHBOARD_SIP_CORPUS)" >&2; exit 2; }
start_switchboard

# The PBX: SIPp's built-in UAS answers the check calls and whatever PROTOS
# INVITE switchboard forwards.
cd "$WORK"
start_pbx() {
	spawn sipp -sn uas -i 127.0.0.1 -p "$PBX_PORT" -nostdin -timeout 3600s -max_socket 10000 >>"$WORK/uas.log" 2>&1
	UAS_PID=$LAST_PID
}
start_pbx

check_call() { # a normal call through switchboard: INVITE, 180, 200, ACK, BYE
	timeout --signal=KILL 40 sipp -sn uac -i 127.0.0.1 -p "$TRUNK_PORT" -s +49301234560 -m 3 -r 10 \
		-nostdin -timeout 30s -timeout_error -recv_timeout 5000 "127.0.0.1:$SIP_PORT" >"$WORK/check.log" 2>&1
}

echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  command: $0 $GROUP"
check_call || { echo "a normal call fails before PROTOS; see $WORK/check.log" >&2; exit 1; }
groups=$(awk -F'\t' 'NR > 1 { print $1 }' "$CORPUS/GROUPS.tsv")
[ -n "$GROUP" ] && groups=$GROUP
bad=0
total_ans=0 total_drop=0 total_unsent=0
for g in $groups; do
	line=$(timeout --signal=KILL 600 "$WORK/protos-send" -target "127.0.0.1:$SIP_PORT" -corpus "$CORPUS" \
		-group "$g" -wait "$WAIT" -workers "$WORKERS" -timeout 500s 2>&1) || bad=1
	if ! kill -0 "$SB_PID" 2>/dev/null; then
		echo "$line"
		echo "CRASH: switchboard exited during group $g; last log lines:"
		tail -n 40 "$WORK/switchboard.log"
		exit 1
	fi
	pbx=""
	if ! kill -0 "$UAS_PID" 2>/dev/null; then
		# SIPp playing the PBX died on an INVITE switchboard forwarded (a
		# proxy passes Via, From, To, SDP... on unchanged). Not a
		# switchboard failure; note it and start a new PBX.
		wait "$UAS_PID" 2>/dev/null || true
		pbx="  (the SIPp PBX crashed on a forwarded case; restarted)"
		start_pbx
		sleep 0.5
	fi
	if check_call; then call=ok; else call="CALL FAILED"; bad=1; fi
	echo "$line  call: $call$pbx"
	total_ans=$((total_ans + $(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($i == "answered") print $(i + 1)}' | head -n 1)))
	total_drop=$((total_drop + $(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($i == "dropped") print $(i + 1)}' | head -n 1)))
	total_unsent=$((total_unsent + $(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($i ~ /^unsendable/) print $(i + 1)}' | head -n 1)))
done
echo "total: answered $total_ans, dropped $total_drop, unsendable over UDP $total_unsent"
echo "switchboard: pid $SB_PID alive, RSS $(rss_kb "$SB_PID") KiB, log lines at error level: $(grep -c '"level":"error"' "$WORK/switchboard.log" || true)"
exit "$bad"
