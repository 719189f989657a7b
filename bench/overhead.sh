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
#      at least 0.98.  On a shared machine throughput swings with the
#      neighbours' load, so each run also reports the server's CPU time per
#      transaction (the backends' user + system time, which the postmaster
#      collects when they exit), and then the two run side by side: a
#      copy of the cluster without bingo_tune, both driven by pgbench at
#      the same time, so the neighbours' load weighs on both alike (median
#      of the per-round ratios again).
#   2. Agreement: movie_by_id (no index, so a 29,000-row scan: a few ms) at
#      120 transactions per second (pgbench --rate, prepared statements as
#      bingo's Go driver sends them, so $1 stays a parameter and the
#      queryid is the watched one).  report()'s p50 and p90 are compared
#      with those of pgbench's own per-transaction latencies (its log,
#      schedule lag taken out), and its mean with pgbench's per-statement
#      average (-r).  Done when the p90s are within 10 % of each other.
#      pgbench's figures include the round trip and the client's own
#      scheduling, which report() cannot see.
#
# Runs a throwaway server (bench/lib.sh) as the current, non-root user;
# options default to 9 rounds of 10 s, 4 clients, pgbench scale 10, 30 s at
# 120 tps with 2 clients.  Needs about 8 minutes with the defaults.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

rounds=9
seconds=10
clients=4
rate_clients=2
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
		-h|--help) sed -n '6,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
CREATE EXTENSION pg_prewarm;
INSERT INTO movies (id, name, year, duration)
SELECT g, 'movie ' || (g % 17400), 1950 + g % 75, 80 + g % 90
FROM generate_series(1, 29000) g;
VACUUM ANALYZE movies;
EOF
pgbench -q -i -s "$scale" >/dev/null 2>&1

# prewarm [PSQL OPTIONS]: pgbench's tables into shared_buffers
prewarm() {
	psql -X -q "$@" -c "SELECT pg_prewarm('pgbench_accounts'), pg_prewarm('pgbench_accounts_pkey')" >/dev/null
}

# CPU ticks of the postmaster's children that have exited (the backends)
server_ticks() {
	awk '{ print $16 + $17 }' "/proc/$(head -1 "$BENCH_DIR/data/postmaster.pid")/stat"
}

# run_select SECONDS: pgbench -S; sets tps and cpu_us (server CPU per transaction)
run_select() {
	local before after out tx hz
	hz=$(getconf CLK_TCK)
	before=$(server_ticks)
	out=$(pgbench -n -S -M prepared -c "$clients" -j "$jobs" -T "$1" 2>"$BENCH_DIR/pgbench.err") ||
		{ echo "overhead.sh: pgbench failed:" >&2; cat "$BENCH_DIR/pgbench.err" >&2; exit 1; }
	sleep 1					# let the postmaster reap the backends
	after=$(server_ticks)
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p')
	tx=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
	cpu_us=$(awk -v t=$((after - before)) -v n="$tx" -v hz="$hz" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
}

# --- 1. throughput ---------------------------------------------------------

echo "== pgbench -S -M prepared, $clients clients, ${seconds} s per run, $rounds rounds"
printf '%-6s %12s %12s %8s   %14s %14s %8s\n' round 'tps without' 'tps with' ratio \
	'cpu us/tx w/o' 'cpu us/tx with' ratio
ratios=()
cpu_ratios=()
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
		prewarm
		run_select 3			# warm-up
		run_select "$seconds"
		if [ "$mode" = on ]; then with=$tps cpu_with=$cpu_us; else without=$tps cpu_without=$cpu_us; fi
	done
	ratio=$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.4f", a / b }')
	cpu_ratio=$(awk -v a="$cpu_with" -v b="$cpu_without" 'BEGIN { printf "%.4f", a / b }')
	ratios+=("$ratio")
	cpu_ratios+=("$cpu_ratio")
	printf '%-6s %12.0f %12.0f %8s   %14s %14s %8s\n' "$r" "$without" "$with" "$ratio" \
		"$cpu_without" "$cpu_with" "$cpu_ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | bench_median)
cpu_median=$(printf '%s\n' "${cpu_ratios[@]}" | bench_median)
echo "median throughput ratio with/without: $median (done when >= 0.98)"
echo "median server CPU per transaction, with/without: $cpu_median"

# --- 1b. side by side ----------------------------------------------------------
# Two copies of the cluster run at once, one preloading bingo_tune, and
# pgbench drives both at the same time, so whatever else loads the machine
# weighs on both alike.  The copies swap roles every round.

echo "== side by side: the same pgbench -S against two copies at once, $rounds rounds"
twin=$BENCH_DIR/twin
twin_port=$(( ${BENCH_PORT:-5488} - 1 ))
pg_ctl -D "$BENCH_DIR/data" -m fast -w stop >/dev/null
rm -rf "$twin"
mkdir -p "$twin"
cp -a "$BENCH_DIR/data" "$twin/data"
rm -f "$twin/data/postmaster.opts"
cat >>"$twin/data/postgresql.conf" <<CONF
port = $twin_port
unix_socket_directories = '$twin'
CONF
trap 'pg_ctl -D "$twin/data" -m fast -w stop >/dev/null 2>&1 || true; bench_stop' EXIT

# start_copy DIR PRELOAD (not "pg_ctl restart": it would reuse the options
# of the copied postmaster.opts, the original's data directory among them)
start_copy() {
	pg_ctl -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
	echo "shared_preload_libraries = '$2'" >"$1/data/postgresql.auto.conf"
	pg_ctl -D "$1/data" -l "$1/server.log" -w start >/dev/null
}
select_tps() {			# select_tps DIR PORT SECONDS
	local out
	out=$(pgbench -h "$1" -p "$2" -n -S -M prepared -c "$clients" -j "$jobs" -T "$3" 2>"$1/pgbench.err") ||
		{ echo "overhead.sh: pgbench failed:" >&2; cat "$1/pgbench.err" >&2; exit 1; }
	echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p'
}
printf '%-6s %-6s %12s %12s %8s\n' round with 'tps without' 'tps with' ratio
side_ratios=()
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then
		on_dir=$BENCH_DIR on_port=$PGPORT off_dir=$twin off_port=$twin_port on_name=a
	else
		on_dir=$twin on_port=$twin_port off_dir=$BENCH_DIR off_port=$PGPORT on_name=b
	fi
	start_copy "$on_dir" 'pg_stat_statements, bingo_tune'
	start_copy "$off_dir" 'pg_stat_statements'
	psql -X -At -h "$on_dir" -p "$on_port" -c "SELECT count(*) FROM bingo_tune.report()" >/dev/null
	prewarm -h "$on_dir" -p "$on_port"
	prewarm -h "$off_dir" -p "$off_port"
	select_tps "$off_dir" "$off_port" 3 >/dev/null &
	select_tps "$on_dir" "$on_port" 3 >/dev/null
	wait
	select_tps "$off_dir" "$off_port" "$seconds" >"$twin/tps" &
	with=$(select_tps "$on_dir" "$on_port" "$seconds")
	wait
	without=$(cat "$twin/tps")
	ratio=$(awk -v a="$with" -v b="$without" 'BEGIN { printf "%.4f", a / b }')
	side_ratios+=("$ratio")
	printf '%-6s %-6s %12.0f %12.0f %8s\n' "$r" "$on_name" "$without" "$with" "$ratio"
done
side_median=$(printf '%s\n' "${side_ratios[@]}" | bench_median)
echo "median side-by-side throughput ratio with/without: $side_median"
pg_ctl -D "$twin/data" -m fast -w stop >/dev/null

# --- 2. report()'s p90 against pgbench's ------------------------------------

echo "== movie_by_id at $rate tps for ${rate_seconds} s (no index: a scan of 29,000 rows)"
restart_with 'pg_stat_statements,bingo_tune'
psql -X -q -c "SELECT bingo_tune.reset('movie_by_id'), pg_stat_statements_reset()" >/dev/null
script="$BENCH_DIR/movie_by_id.sql"
cat >"$script" <<'EOF'
\set id random(1, 29000)
SELECT movies.id, movies.name, movies.year, movies.duration FROM movies WHERE movies.id IN (:id) ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000;
EOF
rm -f "$BENCH_DIR"/rate.*
out=$(cd "$BENCH_DIR" && pgbench -n -M prepared -c "$rate_clients" -j "$rate_clients" -R "$rate" \
	-T "$rate_seconds" -r -l --log-prefix=rate -f "$script" 2>/dev/null)
pgbench_avg=$(echo "$out" | awk '/SELECT movies.id/ { print $1; exit }')
# log lines: client tx latency_us script epoch us lag_us; latency counts from the schedule
# nearest-rank percentile P of the latencies in the log
pgbench_pct() {
	cat "$BENCH_DIR"/rate.* | awk '{ print ($3 - $7) / 1000 }' | sort -g |
		awk -v p="$1" '{ v[NR] = $1 } END { r = int(p / 100 * NR); if (r < p / 100 * NR) r++; printf "%.3f", v[r] }'
}
pgbench_p50=$(pgbench_pct 50)
pgbench_p90=$(pgbench_pct 90)
pgbench_n=$(cat "$BENCH_DIR"/rate.* | wc -l)
read -r calls mean p50 p90 <<<"$(psql -X -At -F ' ' -c \
	"SELECT calls, round(mean_ms::numeric, 3), round(p50_ms::numeric, 3), round(p90_ms::numeric, 3) FROM bingo_tune.report() WHERE name = 'movie_by_id'")"
printf '%-24s %10s %10s %10s %10s\n' '' runs 'mean ms' 'p50 ms' 'p90 ms'
printf '%-24s %10s %10s %10s %10s\n' 'pgbench (client side)' "$pgbench_n" "$pgbench_avg" "$pgbench_p50" "$pgbench_p90"
printf '%-24s %10s %10s %10s %10s\n' 'bingo_tune.report()' "$calls" "$mean" "$p50" "$p90"
awk -v a="$p90" -v b="$pgbench_p90" -v m="$mean" -v n="$pgbench_avg" 'BEGIN {
	printf "p90 difference: %+.1f %% (done when within 10 %%); mean against pgbench -r: %+.1f %%\n",
		(a - b) / b * 100, (m - n) / n * 100 }'
# the server's own view of the same runs: what is left is the client's side
psql -X -At -F ' ' -c "SELECT 'pg_stat_statements: ' || s.calls || ' calls, mean ' || round(s.mean_exec_time::numeric, 3) || ' ms (execution only)'
	FROM pg_stat_statements s JOIN bingo_tune.report() r USING (queryid)
	WHERE r.name = 'movie_by_id' AND s.toplevel"
