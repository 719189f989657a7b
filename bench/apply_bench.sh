#!/usr/bin/env bash
#
# bench/apply_bench.sh: CALL bingo_tune.apply() on a bingo-shaped dataset
# while other sessions keep inserting into sessions.
#
# usage: bench/apply_bench.sh [--scale N]      (default 1 = 5M sessions)
#
# Starts a throwaway server in bench/out/apply (see bench/lib.sh), fills it
# with bench/dataset.sh, times the six statements with no index, then runs
# CALL bingo_tune.apply() while pgbench inserts into sessions at 100
# rows/s from 2 clients, and reports: apply's time per index, the inserts'
# latency during the builds (p50, p99, max: no insert waits for a build
# beyond brief lock waits), advise() afterwards, the indexes each
# statement's plan uses, and the statements' times after.  Results go to
# stdout and bench/out/apply_bench.txt.

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

scale=1
while [ $# -gt 0 ]; do
	case "$1" in
		--scale) scale=$2; shift 2 ;;
		--scale=*) scale=${1#--scale=}; shift ;;
		-h|--help) sed -n 3,16p "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "apply_bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

out=$here/out
mkdir -p "$out"
report=$out/apply_bench.txt
exec > >(tee "$report") 2>&1

# the watcher would build the indexes itself once it sees the timed runs
bench_start "$out/apply" "bingo_tune.mode = off"
trap bench_stop EXIT

echo "# apply_bench: scale $scale, $(nproc) cores, $(psql -XAtc 'SHOW server_version')"
psql -XqAt -c 'CREATE EXTENSION bingo_tune CASCADE'
"$here/dataset.sh" --scale "$scale"

times_for_all() {
	local label=$1
	psql -XAt -F '|' -c "SELECT name, replace(statement, '\$1', coalesce(params[1], '')) FROM bingo_tune.watch ORDER BY priority, name" |
	while IFS='|' read -r name stmt; do
		printf '%-16s %-8s %10.1f ms\n' "$name" "$label" "$(bench_time_ms "$stmt")"
	done
}

echo
echo "## statements with no index (one run each)"
times_for_all before

cat >"$out/insert.sql" <<'SQL'
\set c random(1, 500000)
\set m random(1, 29000)
INSERT INTO sessions (start_time, customer_id, movie_id) VALUES (now(), :c, :m);
SQL

echo
echo "## CALL bingo_tune.apply() with inserts running"
rm -f "$out"/insert_log* "$out/apply.done"
# pgbench in 5 s rounds, so that each round's log is complete when it ends
(
	i=0
	while [ ! -e "$out/apply.done" ]; do
		i=$((i + 1))
		pgbench -n -c 2 -j 2 -R 100 -T 5 -f "$out/insert.sql" -l \
			--log-prefix="$out/insert_log.$i" >>"$out/pgbench.txt" 2>&1 || true
	done
) &
loader=$!
sleep 5
start=$(date +%s.%N)
psql -X -c 'CALL bingo_tune.apply()' 2>&1 | sed 's/^NOTICE:  /  /'
end=$(date +%s.%N)
touch "$out/apply.done"
wait "$loader"
awk -v s="$start" -v e="$end" 'BEGIN { printf "apply total: %.1f s\n", e - s }'
psql -X -c 'SELECT index_name, action, duration FROM bingo_tune.last_apply'

# pgbench's per-transaction log: ... time(us) script epoch_s epoch_us [lag]
# Keep the inserts that started while apply ran.
cat "$out"/insert_log* 2>/dev/null |
	awk -v s="$start" -v e="$end" '{ t = $5 + $6 / 1e6 - $3 / 1e6; if (t >= s && t <= e) print $3 / 1000 }' |
	sort -g >"$out/insert_ms.txt"
n=$(wc -l <"$out/insert_ms.txt")
if [ "$n" -gt 0 ]; then
	awk -v n="$n" 'function at(q,  i) { i = int(n * q) + 1; if (i > n) i = n; return v[i] }
		{ v[NR] = $1 }
		END { printf "inserts during apply: %d, latency p50 %.2f ms, p99 %.2f ms, max %.1f ms\n",
			n, at(0.5), at(0.99), v[n] }' "$out/insert_ms.txt"
else
	echo "inserts during apply: none logged (pgbench output: $(tail -3 "$out/pgbench.txt"))"
fi

echo
echo "## advise() afterwards"
psql -X -c 'SELECT table_name, index_name, state FROM bingo_tune.advise()'

echo "## indexes each plan uses"
psql -XAt -F '|' -c "SELECT name, replace(statement, '\$1', coalesce(params[1], '')) FROM bingo_tune.watch ORDER BY priority, name" |
while IFS='|' read -r name stmt; do
	used=$(psql -XAt -c "EXPLAIN (FORMAT JSON, COSTS OFF) $stmt" |
		grep -o '"Index Name": "[^"]*"' | sed 's/"Index Name": //; s/"//g' | sort -u | tr '\n' ' ')
	seq=$(psql -XAt -c "EXPLAIN (FORMAT JSON, COSTS OFF) $stmt" | grep -c '"Seq Scan"' || true)
	printf '%-16s seq scans: %s  indexes: %s\n' "$name" "$seq" "$used"
done

echo
echo "## statements with the indexes (median of 3 runs)"
psql -XAt -F '|' -c "SELECT name, replace(statement, '\$1', coalesce(params[1], '')) FROM bingo_tune.watch ORDER BY priority, name" |
while IFS='|' read -r name stmt; do
	m=$(for i in 1 2 3; do bench_time_ms "$stmt"; done | bench_median)
	printf '%-16s %-8s %10.2f ms\n' "$name" after "$m"
done
