#!/usr/bin/env bash
#
# bench/bench_fast_load.sh: measure what `bingo_tune prepare-db --fast-load`
# buys, in one run, on a throwaway server (bench/lib.sh).
#
# usage: bench/bench_fast_load.sh [--sessions N] [--rounds R] [DIR]
#
#   --sessions N  rows the stand-in loads into sessions per run (default
#                 20000; movies and customers get N/172 and N/10 on top)
#   --rounds R    pairs of runs, one without and one with --fast-load, the
#                 order alternating per round (default 3)
#   DIR           where the throwaway server lives (default
#                 ${TMPDIR:-/tmp}/bingo_tune_fast_load, wiped first)
#
# Each run is `bingo_tune prepare-db --force --no-apply -- \
# t/fake_prepare_db.sh`, which loads the way bingo's prepare_db does: one
# prepared single-row INSERT per transaction.  Reported: the stand-in's
# sessions rows/s per run, the medians and their ratio.  Run as an ordinary
# user after `make test` (or set PG_BINDIR): initdb refuses root.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

sessions=20000
rounds=3
dir=${TMPDIR:-/tmp}/bingo_tune_fast_load

while [ $# -gt 0 ]; do
	case "$1" in
		--sessions) sessions=$2; shift 2 ;;
		--rounds) rounds=$2; shift 2 ;;
		-h|--help) sed -n '7,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		-*) echo "bench_fast_load: unknown option \"$1\"" >&2; exit 2 ;;
		*) dir=$1; shift ;;
	esac
done

bench_start "$dir"
trap bench_stop EXIT
command -v bingo_tune >/dev/null || { echo "bench_fast_load: bingo_tune not on PATH (run make test, or set PG_BINDIR)" >&2; exit 1; }

bingo_tune install -q
echo "server: $(psql -X -At -c "SELECT 'PostgreSQL ' || current_setting('server_version') || ', fsync ' || current_setting('fsync') || ', synchronous_commit ' || current_setting('synchronous_commit') || ', wal_sync_method ' || current_setting('wal_sync_method')")"
echo "load: $sessions sessions per run, one prepared single-row INSERT per transaction"
echo

# run MODE: one prepare-db run; prints the stand-in's sessions rows/s
run() {
	local opts=(--force --no-apply -q)
	[ "$1" = fast ] && opts+=(--fast-load)
	bingo_tune prepare-db "${opts[@]}" -- "$here/../t/fake_prepare_db.sh" --sessions "$sessions" |
		sed -n 's/^rows_per_second //p'
}

plain=()
fast=()
printf '%-6s %16s %16s\n' round "plain rows/s" "--fast-load"
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then
		p=$(run plain); f=$(run fast)
	else
		f=$(run fast); p=$(run plain)
	fi
	plain+=("$p"); fast+=("$f")
	printf '%-6s %16.0f %16.0f\n' "$r" "$p" "$f"
done

mp=$(printf '%s\n' "${plain[@]}" | bench_median)
mf=$(printf '%s\n' "${fast[@]}" | bench_median)
printf '%-6s %16.0f %16.0f\n' median "$mp" "$mf"
awk -v p="$mp" -v f="$mf" -v n=5000000 'BEGIN {
	printf "ratio  %.1fx; 5,000,000 sessions: %.1f min plain, %.1f min with --fast-load\n",
		f / p, n / p / 60, n / f / 60 }'
