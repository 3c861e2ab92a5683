# Shared helpers for the bench scripts (sourced, not run). Every process a
# script starts goes through `spawn`, which records its pid; `cleanup`
# (installed as the EXIT trap by `bench_init`) kills exactly those pids.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SIPP_DIR="$ROOT/sipp"
PIDS=()

bench_init() { # name
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-$1.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

cleanup() {
	local rc=$?
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "${KEEP:-}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
	exit "$rc"
}

# spawn CMD... : start in the background, remember the pid in LAST_PID.
spawn() {
	"$@" &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# stop PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop() {
	local pid=$1
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

need() { command -v "$1" >/dev/null || { echo "$1 not found${2:+ ($2)}" >&2; exit 2; }; }

build_switchboard() {
	echo "building switchboard..." >&2
	(cd "$ROOT" && go build -o "$WORK/switchboard" ./cmd/switchboard)
}

# switchboard_config FILE: bench/switchboard.yaml with the ports filled in;
# MEMORY_LIMIT (e.g. 150MiB) adds runtime.memory_limit.
switchboard_config() {
	sed -e "s/@SIP_PORT@/$SIP_PORT/g" -e "s/@PBX_PORT@/$PBX_PORT/g" -e "s/@TRUNK_PORT@/$TRUNK_PORT/g" \
		-e "s/@HTTP_PORT@/$HTTP_PORT/g" -e "s|@WORK@|$WORK|g" -e "s/@FAST_PATH@/${FAST_PATH:-true}/g" \
		"$HERE/switchboard.yaml" >"$1"
	if [ -n "${MEMORY_LIMIT:-}" ]; then
		printf 'runtime:\n  memory_limit: %s\n' "$MEMORY_LIMIT" >>"$1"
	fi
}

# start_switchboard: starts it (pid in SB_PID) and waits for /healthz.
start_switchboard() {
	rm -f "$WORK/switchboard.db"*
	switchboard_config "$WORK/switchboard.yaml"
	spawn "$WORK/switchboard" run -c "$WORK/switchboard.yaml" 2>"$WORK/switchboard.log"
	SB_PID=$LAST_PID
	for _ in $(seq 1 300); do
		kill -0 "$SB_PID" 2>/dev/null || break
		curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "switchboard did not become healthy; its log:" >&2
	tail -n 30 "$WORK/switchboard.log" >&2
	exit 1
}

# cpu_ticks PID: utime+stime of PID and every descendant, in clock ticks.
cpu_ticks() {
	# cat skips processes that exit between the glob and the read.
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '
		{
			p = $1; s = $0; sub(/^[^)]*\) /, "", s); split(s, f, " ")
			# after "pid (comm) ": f[1] state, f[2] ppid, f[12] utime, f[13] stime
			ppid[p] = f[2]; ticks[p] = f[12] + f[13]
		}
		END {
			keep[root] = 1; changed = 1
			while (changed) { changed = 0
				for (k in ppid) if (!(k in keep) && (ppid[k] in keep)) { keep[k] = 1; changed = 1 } }
			for (k in keep) t += ticks[k]
			print t + 0
		}' || echo 0
}

# rss_kb PID: resident set of PID and its descendants, in KiB.
rss_kb() {
	local root=$1 total=0 p
	for p in $root $(descendants "$root"); do
		total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$total"
}

descendants() {
	local p c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do echo "$c"; descendants "$c"; done
}

# stat_field CSV NAME [LINE]: a column of a SIPp -trace_stat file (last line by default).
stat_field() {
	awk -F';' -v n="$2" -v want="${3:-0}" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next }
		{ last = $c; if (want == NR) { print $c; exit } }
		END { if (!want) print last }' "$1"
}
