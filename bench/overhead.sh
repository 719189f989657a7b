#!/usr/bin/env bash
#
# bench/overhead.sh: what the budget report costs, and whether it measures
# what the client sees.
#
# usage: bench/overhead.sh [--rounds N] [--seconds S] [--clients C]
#                          [--scale S] [--rate-seconds S]
#
#   1. Throughput: pgbench -S (prepared) on a server that preloads only
#      pg_stat_statements, and on the same server preloading bingo_tune too
#      and tracking bingo's six statements.  The two alternate (the order
#      flips every round), each after a restart and a warm-up; the result
#      is the median of the per-round ratios with/without.  Done when it is
#      at least 0.98.
#   2. Agreement: movie_by_id (no index, so a 29,000-row scan: a few ms) at
#      120 transactions per second (pgbench --rate, extended protocol, so
#      $1 stays a parameter and the queryid is the watched one).  report()'s
#      p90 is compared with the p90 of pgbench's own per-transaction
#      latencies (its log, schedule lag taken out), and its mean with
#      pgbench's per-statement average (-r).  Done when the p90s are within
#      10 % of each other.
#
# Runs a throwaway server (bench/lib.sh) as the current, non-root user;
# options default to 5 rounds of 20 s, 4 clients, pgbench scale 10, 30 s at
# 120 tps.  Needs about 5 minutes with the defaults.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

rounds=5
seconds=20
clients=4
scale=10
rate=120
rate_seconds=30

while [ $# -gt 0 ]; do
	case $1 in
		--rounds) rounds=$2; shift 2 ;;
		--seconds) seconds=$2; shift 2 ;;
		--clients) clients=$2; shift 2 ;;
		--scale) scale=$2; shift 2 ;;
		--rate-seconds) rate_seconds=$2; shift 2 ;;
		-h|--help) sed -n '6,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "overhead.sh: unknown option $1" >&2; exit 1 ;;
	esac
done

jobs=$(( clients < 2 ? clients : 2 ))
dir=${BENCH_OVERHEAD_DIR:-${TMPDIR:-/tmp}/bingo_tune_overhead}

trap bench_stop EXIT
# the watchers only advise here: nothing is built behind the benchmark's back
bench_start "$dir" "bingo_tune.mode = advise"

# restart_with LIB,LIB...: restart the server preloading those libraries
restart_with() {
	psql -X -q -c "ALTER SYSTEM SET shared_preload_libraries = '${1//,/\', \'}'"
	pg_ctl -D "$BENCH_DIR/data" -l "$BENCH_DIR/server.log" -m fast -w restart >/dev/null
}

echo "== setting up (pgbench scale $scale, bingo's tables, movies filled)"
psql -X -q -v ON_ERROR_STOP=1 -f "$here/schema.sql"
psql -X -q -v ON_ERROR_STOP=1 <<'EOF'
CREATE EXTENSION bingo_tune CASCADE;
INSERT INTO movies (id, name, year, duration)
SELECT g, 'movie ' || (g % 17400), 1950 + g % 75, 80 + g % 90
FROM generate_series(1, 29000) g;
VACUUM ANALYZE movies;
EOF
pgbench -q -i -s "$scale" >/dev/null 2>&1

tps() {
	pgbench -n -S -M prepared -c "$clients" -j "$jobs" -T "$1" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p'
}

# --- 1. throughput ---------------------------------------------------------

echo "== pgbench -S -M prepared, $clients clients, ${seconds} s per run, $rounds rounds"
printf '%-6s %12s %12s %8s\n' round without with ratio
ratios=()
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
	for mode in $order; do
		if [ "$mode" = on ]; then
			restart_with 'pg_stat_statements,bingo_tune'
			# track bingo's six statements (report() registers them)
			tracked=$(psql -X -At -c "SELECT count(*) FROM bingo_tune.report() WHERE status <> 'not tracked' AND queryid IS NOT NULL")
			[ "$tracked" = 6 ] || { echo "overhead.sh: expected 6 tracked statements, got $tracked" >&2; exit 1; }
		else
			restart_with 'pg_stat_statements'
		fi
		tps 5 >/dev/null		# warm-up
		t=$(tps "$seconds")
		if [ "$mode" = on ]; then with=$t; else without=$t; fi
	done
	ratio=$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.4f", a / b }')
	ratios+=("$ratio")
	printf '%-6s %12s %12s %8s\n' "$r" "$without" "$with" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | bench_median)
echo "median ratio with/without: $median (done when >= 0.98)"

# --- 2. report()'s p90 against pgbench's ------------------------------------

echo "== movie_by_id at $rate tps for ${rate_seconds} s (no index: a scan of 29,000 rows)"
restart_with 'pg_stat_statements,bingo_tune'
psql -X -q -c "SELECT bingo_tune.reset('movie_by_id')"
script="$BENCH_DIR/movie_by_id.sql"
cat >"$script" <<'EOF'
\set id random(1, 29000)
SELECT movies.id, movies.name, movies.year, movies.duration FROM movies WHERE movies.id IN (:id) ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000;
EOF
rm -f "$BENCH_DIR"/rate.*
out=$(cd "$BENCH_DIR" && pgbench -n -M extended -c "$clients" -j "$jobs" -R "$rate" \
	-T "$rate_seconds" -r -l --log-prefix=rate -f "$script" 2>/dev/null)
pgbench_avg=$(echo "$out" | awk '/SELECT movies.id/ { print $1; exit }')
# log lines: client tx latency_us script epoch us lag_us; latency counts from the schedule
pgbench_p90=$(cat "$BENCH_DIR"/rate.* |
	awk '{ print ($3 - $7) / 1000 }' | sort -g |
	awk '{ v[NR] = $1 } END { r = int(0.9 * NR); if (r < 0.9 * NR) r++; print v[r] }')
pgbench_n=$(cat "$BENCH_DIR"/rate.* | wc -l)
read -r calls mean p90 <<<"$(psql -X -At -F ' ' -c \
	"SELECT calls, round(mean_ms::numeric, 3), round(p90_ms::numeric, 3) FROM bingo_tune.report() WHERE name = 'movie_by_id'")"
printf '%-24s %10s %10s %10s\n' '' runs 'mean ms' 'p90 ms'
printf '%-24s %10s %10s %10s\n' 'pgbench (client side)' "$pgbench_n" "$pgbench_avg" "$pgbench_p90"
printf '%-24s %10s %10s %10s\n' 'bingo_tune.report()' "$calls" "$mean" "$p90"
awk -v a="$p90" -v b="$pgbench_p90" 'BEGIN { d = (a - b) / b * 100; printf "p90 difference: %+.1f %% (done when within 10 %%)\n", d }'
