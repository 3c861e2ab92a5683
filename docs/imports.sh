#!/bin/sh
# Prints the package map of docs/architecture.md as a mermaid graph, drawn
# from the imports `go list` reports (tests, benchmarks and test helpers
# left out). Run from the repository root: sh docs/imports.sh
set -eu
m=github.com/switchboard-sip/switchboard/
echo 'graph TD'
go list -f '{{.ImportPath}}{{range .Imports}} {{.}}{{end}}' ./... |
	grep -v "^${m}\(e2e\|bench\|internal/pgtest\|internal/mailtest\|internal/layers\|storage/storagetest\)" |
	awk -v m="$m" '{
		from = $1; sub(m, "", from)
		for (i = 2; i <= NF; i++) if (index($i, m) == 1) {
			to = $i; sub(m, "", to)
			printf "  %s --> %s\n", from, to
		}
	}' | sed 's#\([a-z]\)/\([a-z]\)#\1_\2#g' | sort
