#!/usr/bin/env bash
# Mutation testing of the packages whose logic decides what users see:
# missed-call exceptions, statistics, the call pipeline, number reading and
# the proxy rules. Each mutant (a flipped condition, a changed boundary or
# operator) is built and the package's own tests are run against it; a
# mutant that no test notices "lived". Prints the kill rate per package.
#
#   bench/mutate.sh                 # all packages below
#   bench/mutate.sh ./missed        # one package
#
# Uses gremlins (github.com/go-gremlins/gremlins), installed into .bin/.
# Results of a run are written down in docs/mutation.md.
set -euo pipefail
cd "$(dirname "$0")/.."
GREMLINS_VERSION=v0.6.0
bin="$PWD/.bin"
if [ ! -x "$bin/gremlins" ]; then
  GOBIN="$bin" go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION"
fi
# Files that are not logic (I/O glue, SQL text, web handlers) would only
# dilute the rate; each package lists what is left out and why in
# docs/mutation.md.
declare -A exclude=(
  [./contacts]='(store|cache|import|trace|vcard|csv|find)[^/]*\.go$'
  [./sip]='(fast_mmsg|fast_conn|announce|wav|rtpports|sdp|tls|keepalive|reuse)[^/]*\.go$'
)
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./missed ./stats ./callctl ./contacts ./sip)
out=$(mktemp -d)
for p in "${pkgs[@]}"; do
  args=(unleash --workers "${WORKERS:-2}" --timeout-coefficient 10 -S klt)
  [ -n "${exclude[$p]:-}" ] && args+=(-E "${exclude[$p]}")
  echo "== $p"
  "$bin/gremlins" "${args[@]}" "$p" | tee "$out/$(basename "$p").txt" | grep -E 'LIVED|Killed:|efficacy' || true
done
echo
echo "kill rate per package (killed / (killed + lived)):"
for f in "$out"/*.txt; do
  printf '  %-10s %s\n' "$(basename "$f" .txt)" "$(grep -o 'Test efficacy: [0-9.]*%' "$f" | cut -d' ' -f3)"
done
