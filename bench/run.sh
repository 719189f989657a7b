#!/usr/bin/env bash
#
# bench/run.sh: the benchmark behind the figures in bench/README.md, in one command.
#
# usage: bench/run.sh [--scale N] [--rounds N] [--rate-seconds S]
#                     [--overhead-rounds N] [--out DIR] [--no-results]
#
#   --scale N            dataset size (bench/dataset.sh; 1 = 5M sessions;
#                        default 1)
#   --rounds N           timed rounds of the session list per index set
#                        (default 5, after one warm-up round)
#   --rate-seconds S     length of each 120 RPS pgbench run (default 30)
#   --overhead-rounds N  alternated rounds of bench/overhead.sh (default 7)
#   --out DIR            raw output (default bench/out/run)
#   --no-results         leave bench/RESULTS.md and bench/session_list.png
#                        alone: write them into DIR only (for trial runs)
#   --report-only        measure nothing: write RESULTS.md and the chart
#                        again from the raw output of the last run in DIR
#   --overhead-only      redo step 6 only (after it failed), then write the
#                        results from DIR as --report-only does
#
# Run as an ordinary user (initdb refuses root), after "make test" or
# "make tmp_install" so that ./tmp_install holds this build (bench/lib.sh).
# On one throwaway server (port $BENCH_PORT, default 5471) and one dataset:
#
#  1. the by-id statements at 120 requests/s (pgbench --rate, extended
#     protocol, --latency-limit 400 ms) with no index: p50/p90/p99 counted
#     from each request's scheduled start, skipped requests counted as over;
#  2. the watcher (naptime 10 s, mode auto): from the first session list run
#     to all of its indexes valid;
#  3. CALL bingo_tune.apply() builds the rest of bingo_tune's set; the usual
#     write-up's set is built beside it (plain CREATE INDEX);
#  4. the session list with no index / the usual set / bingo_tune's set, the
#     three variants alternated in each round (the other variants' indexes
#     dropped in a transaction that is rolled back), EXPLAIN ANALYZE
#     execution time;
#  5. the by-id statements at 120 requests/s again, with bingo_tune's set;
#  6. bench/overhead.sh on its own server (port $BENCH_PORT + 1): pgbench -S
#     with and without the module, alternated.
#
# Writes bench/RESULTS.md and bench/session_list.png (gnuplot), and keeps
# the raw output in DIR.  About 12-15 minutes at scale 1 on 2 cores.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")
die() { echo "$prog: $*" >&2; exit 1; }

scale=1
rounds=5
rate_seconds=30
overhead_rounds=7
out=$here/out/run
results=1
report_only=0
overhead_only=0
ov_rerun=

while [ $# -gt 0 ]; do
	case "$1" in
		--scale) scale=$2; shift 2 ;;
		--scale=*) scale=${1#--scale=}; shift ;;
		--rounds) rounds=$2; shift 2 ;;
		--rate-seconds) rate_seconds=$2; shift 2 ;;
		--overhead-rounds) overhead_rounds=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		--no-results) results=0; shift ;;
		--report-only) report_only=1; shift ;;
		--overhead-only) overhead_only=1; shift ;;
		-h|--help) sed -n '3,41p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument \"$1\" (try --help)" ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $rate_seconds =~ ^[1-9][0-9]*$ ]] || die "--rate-seconds must be a positive integer"
[ "$(id -u)" -ne 0 ] || die "run as an ordinary user (initdb refuses root)"
command -v gnuplot >/dev/null || echo "$prog: gnuplot not found (apt-get install gnuplot-nox): no chart" >&2

export BENCH_PORT=${BENCH_PORT:-5471}
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ $results -eq 1 ]; then
	results_md=$here/RESULTS.md
	chart=$here/session_list.png
else
	results_md=$out/RESULTS.md
	chart=$out/session_list.png
fi
now() { date +%s.%N; }
say() { printf '\n== %s (%s, load %s)\n' "$*" "$(date -u +%H:%M:%S)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
# what the results need besides the files in DIR (for --report-only)
vars=$out/vars.sh

if [ $report_only -eq 1 ] || [ $overhead_only -eq 1 ]; then
	[ -f "$vars" ] || die "no $vars: run the benchmark first"
	# shellcheck disable=SC1090
	. "$vars"
fi
if [ $report_only -eq 0 ] && [ $overhead_only -eq 0 ]; then
log=$out/run.log
exec > >(tee "$log") 2>&1
t_start=$(now)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

trap bench_stop EXIT
say "server on port $BENCH_PORT in $out/server"
bench_start "$out/server" "bingo_tune.mode = off" "bingo_tune.naptime = 10s" \
	"maintenance_work_mem = 512MB"
pg_version=$(q -c 'SHOW server_version')
q -c 'CREATE EXTENSION bingo_tune CASCADE'

say "dataset, scale $scale"
"$here/dataset.sh" --scale "$scale"
n_sessions=$(q -c 'SELECT max(id) FROM sessions')
n_customers=$(q -c 'SELECT max(id) FROM customers')
n_movies=$(q -c 'SELECT max(id) FROM movies')

stmt() { q -c "SELECT statement FROM bingo_tune.watch WHERE name = '$1'"; }
session_list=$(stmt session_list)

# --- by-id statements at 120 requests/s --------------------------------------

# rate_run LABEL NAME MAX: NAME at 120 requests/s for rate_seconds, ids
# uniform in 1..MAX; appends "label name n skipped late p50 p90 p99 p90min
# p90max tps" to $out/rate.tsv
rate_run() {
	local label=$1 name=$2 max=$3 script=$out/$2.sql prefix=$out/rate_$1_$2
	{
		echo "\\set id random(1, $max)"
		stmt "$name" | sed 's/\$1/:id/'
	} >"$script"
	rm -f "$prefix".*
	pgbench -n -M extended -c 8 -j 2 -R 120 -T "$rate_seconds" --latency-limit 400 \
		-l --log-prefix="$prefix" -f "$script" >"$prefix.txt" 2>&1 ||
		{ cat "$prefix.txt"; die "pgbench failed"; }
	# log: client tx time_us|skipped script epoch us lag_us; with --rate,
	# time counts from the scheduled start (schedule lag included)
	cat "$prefix".[0-9]* | awk -v label="$label" -v name="$name" -v secs="$rate_seconds" '
		function pct(arr, n, total, q,   r) {
			# nearest rank over every scheduled request; skipped ones rank last
			r = int(q * total); if (r < q * total) r++
			if (r > n) return "skipped"
			return sprintf("%.1f", arr[r])
		}
		function sort(arr, n,   i, j, t) {
			for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
		}
		{
			total++
			if (min_epoch == "" || $5 < min_epoch) min_epoch = $5
			if ($3 == "skipped") { skipped++; sk[total] = 1; ep[total] = $5; next }
			ms = $3 / 1000; done++; v[done] = ms; if (ms > 400) late++
			ep[total] = $5; lat[total] = ms
		}
		END {
			# p90 per third of the run, for the spread
			for (i = 1; i <= total; i++) {
				w = int((ep[i] - min_epoch) * 3 / secs); if (w > 2) w = 2; if (w < 0) w = 0
				wt[w]++
				if (!(i in sk)) { wn[w]++; wv[w, wn[w]] = lat[i] }
			}
			lo = ""; hi = ""
			for (w = 0; w < 3; w++) {
				delete a; for (k = 1; k <= wn[w]; k++) a[k] = wv[w, k]
				sort(a, wn[w]); p = pct(a, wn[w], wt[w], 0.9)
				x = (p == "skipped") ? 1e12 : p + 0
				if (lo == "" || x < lo) lo = x
				if (hi == "" || x > hi) hi = x
			}
			sort(v, done)
			printf "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\n", label, name, total, skipped, late,
				pct(v, done, total, 0.5), pct(v, done, total, 0.9), pct(v, done, total, 0.99),
				(lo == 1e12 ? "skipped" : lo), (hi == 1e12 ? "skipped" : hi), done / secs
		}' >>"$out/rate.tsv"
	tail -n 1 "$out/rate.tsv" | awk -F'\t' '{ printf "  %-15s %-8s requests %5d  skipped %5d  over 400 ms %5d  p50 %s  p90 %s  p99 %s ms  (%s req/s done)\n", $2, $1, $3, $4, $5, $6, $7, $8, $11 }'
}

printf 'label\tname\tscheduled\tskipped\tlate\tp50\tp90\tp99\tp90_min\tp90_max\tdone_tps\n' >"$out/rate.tsv"
say "by-id statements at 120 requests/s for $rate_seconds s each, no index"
rate_run none session_by_id "$n_sessions"
rate_run none customer_by_id "$n_customers"
rate_run none movie_by_id "$n_movies"

# --- the watcher: first session list run -> its indexes valid ----------------

say "watcher, naptime 10 s: first session list run -> all its indexes valid"
q -c 'SELECT pg_stat_statements_reset()' >/dev/null
q -c 'SELECT bingo_tune.reset()' >/dev/null
q -c "ALTER SYSTEM SET bingo_tune.mode = 'auto'" -c 'SELECT pg_reload_conf()' >/dev/null
p0=$(q -c 'SELECT passes FROM bingo_tune.watcher()')
until [ "$(q -c "SELECT passes > $p0 FROM bingo_tune.watcher()")" = t ]; do sleep 0.2; done
w_first_id=$(q -c 'SELECT coalesce(max(id), 0) FROM bingo_tune.events')
t0=$(now)
# the app's way: the rows travel to the client (psql discards them)
first_ms=$(printf '\\timing on\n\\o /dev/null\n%s;\n' "$session_list" | psql -X -v ON_ERROR_STOP=1 |
	sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
echo "  first run: $first_ms ms"
until [ "$(q -c "SELECT bool_and(state = 'present') FROM bingo_tune.advise() WHERE 'session_list' = ANY (statements)")" = t ]; do
	sleep 0.2
	awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 900) }' && die "session list indexes not valid after 900 s"
done
t1=$(now)
watcher_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
q -c "ALTER SYSTEM SET bingo_tune.mode = 'off'" -c 'SELECT pg_reload_conf()' >/dev/null
q -F ' ' -c "SELECT to_char(at, 'HH24:MI:SS'), action, coalesce(index_name, statement, ''),
		coalesce(round(extract(epoch FROM duration)::numeric, 1) || ' s', '')
	FROM bingo_tune.events WHERE id > $w_first_id AND source = 'watcher' ORDER BY id" | sed 's/^/  /' |
	tee "$out/watcher_events.txt"
watcher_builds=$(q -c "SELECT string_agg(round(extract(epoch FROM duration)::numeric, 1)::text || ' s', ' + ' ORDER BY id)
	FROM bingo_tune.events WHERE id > $w_first_id AND source = 'watcher' AND action IN ('created', 'rebuilt')")
echo "  first session list run -> all its indexes valid: $watcher_s s (builds: $watcher_builds)"

# --- the rest of bingo_tune's set, and the usual set -------------------------

say "CALL bingo_tune.apply() (the rest of bingo_tune's set)"
t0=$(now)
psql -X -q -c 'CALL bingo_tune.apply()' 2>&1 | sed 's/^NOTICE:  /  /'
apply_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
echo "  apply: $apply_s s"

say "the usual write-up's set (plain CREATE INDEX)"
usual_defs=('sessions (customer_id)' 'sessions (movie_id)' 'movies (year)' 'movies (name)' 'customers (id)' 'movies (id)')
i=0
for def in "${usual_defs[@]}"; do
	i=$((i + 1))
	t0=$(now)
	q -c "CREATE INDEX bench_usual_$i ON $def"
	awk -v a="$t0" -v b="$(now)" -v d="$def" 'BEGIN { printf "  %-28s %6.1f s\n", d, b - a }'
done
q -c 'ANALYZE sessions, customers, movies'

idx_list() {	# the indexes of the bingo tables whose name matches (or not) bench_usual_
	q -c "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.indrelid IN ('sessions'::regclass, 'customers'::regclass, 'movies'::regclass)
		  AND (c.relname LIKE 'bench\\_usual\\_%') = $1"
}
usual_idx=$(idx_list true)
bingo_idx=$(idx_list false)
echo "  usual set:       $usual_idx"
echo "  bingo_tune's set: $bingo_idx"

# --- session list per index set, alternated ------------------------------------

# explain_ms DROPS: execution time (ms) and JIT use of the session list with
# the indexes DROPS dropped in a transaction that is rolled back
explain_ms() {
	local json
	json=$(psql -X -q -At -v ON_ERROR_STOP=1 <<EOF
BEGIN;
${1:+DROP INDEX $1;}
EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF) $session_list;
ROLLBACK;
EOF
)
	local ms jit idx
	ms=$(sed -n 's/.*"Execution Time": \([0-9.]*\).*/\1/p' <<<"$json")
	if grep -q '"JIT"' <<<"$json"; then jit=jit; else jit=-; fi
	idx=$(grep -o '"Index Name": "[^"]*"' <<<"$json" | sed 's/.*: "//; s/"$//' | sort -u | paste -sd, -)
	printf '%s\t%s\t%s\n' "$ms" "$jit" "${idx:--}"
}

declare -A drops=([none]="$usual_idx, $bingo_idx" [usual]="$bingo_idx" [bingo]="$usual_idx")
variants=(none usual bingo)
say "session list: no index / usual set / bingo_tune's set, $rounds rounds (+1 warm-up), alternated"
printf 'round\tset\texec_ms\tjit\tindexes\n' >"$out/session_list.tsv"
for r in $(seq 0 "$rounds"); do
	for k in 0 1 2; do
		v=${variants[$(( (k + r) % 3 ))]}
		res=$(explain_ms "${drops[$v]}")
		if [ "$r" -gt 0 ]; then
			printf '%s\t%s\t%s\n' "$r" "$v" "$res" >>"$out/session_list.tsv"
		fi
		printf '  round %s%-9s %-6s %10s ms  %s\n' "$r" "$([ "$r" -eq 0 ] && echo ' (warm)')" "$v" \
			"$(cut -f1 <<<"$res")" "$(cut -f2,3 <<<"$res" | tr '\t' ' ')"
	done
done

# --- by-id with the indexes -----------------------------------------------------

say "by-id statements at 120 requests/s for $rate_seconds s each, bingo_tune's set"
q -c "DROP INDEX $usual_idx"
rate_run indexed session_by_id "$n_sessions"
rate_run indexed customer_by_id "$n_customers"
rate_run indexed movie_by_id "$n_movies"
advise_state=$(q -c "SELECT count(*) FILTER (WHERE state = 'present') || '/' || count(*) FROM bingo_tune.advise()")
echo "  advise(): $advise_state indexes present"
declare -p scale rounds rate_seconds overhead_rounds t_start load_start pg_version n_sessions n_customers \
	n_movies first_ms watcher_s watcher_builds apply_s advise_state >"$vars"
bench_stop
BENCH_DIR=
t_main_end=$(now)
declare -p t_main_end >>"$vars"
fi	# end of steps 1-5

# --- module overhead -----------------------------------------------------------

if [ $report_only -eq 0 ]; then
	if [ $overhead_only -eq 1 ]; then
		exec > >(tee "$out/run_overhead.log") 2>&1
		ov_rerun="$(date -u '+%H:%M UTC')"
	fi
	t_ov=$(now)
	# bench/overhead.sh restarts its server between rounds; on a busy machine
	# that has failed once in a while: try a second time before giving up
	for attempt in 1 2; do
		say "module overhead: bench/overhead.sh, $overhead_rounds rounds of 10 s (attempt $attempt)"
		if BENCH_PORT=$((BENCH_PORT + 1)) BENCH_OVERHEAD_DIR=$out/overhead \
			"$here/overhead.sh" --rounds "$overhead_rounds" --seconds 10 --rate-seconds 10 | tee "$out/overhead.txt"; then
			break
		fi
		echo "$prog: bench/overhead.sh failed (attempt $attempt)"
	done
	ov_seconds=$(awk -v a="$t_ov" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
	load_end=$(cut -d' ' -f1-3 /proc/loadavg)
	declare -p ov_seconds load_end ov_rerun >>"$vars"
fi

# rows: round, tps without, tps with, ratio[, CPU per transaction columns]
ov_median=$(sed -En 's/^median (throughput )?ratio with\/without: ([0-9.]+).*/\2/p' "$out/overhead.txt")
ov_rows() { sed -n '/^== pgbench -S/,/^median/p' "$out/overhead.txt" | awk '$1 ~ /^[0-9]+$/ && NF >= 4'; }
ov_range=$(ov_rows | awk '{ print $4 }' | sort -g | sed -n '1p;$p' | paste -sd'|' -)
ov_tps=$(ov_rows | awk '{ print $2 }' | bench_median)
ov_cpu=$(sed -En 's/^median server CPU per transaction, with\/without: ([0-9.]+).*/\1/p' "$out/overhead.txt")
ov_cpu_range=$(ov_rows | awk 'NF >= 7 { print $7 }' | sort -g | sed -n '1p;$p' | paste -sd'|' -)
# newer overhead.sh: both servers at once, side by side
ov_side=$(sed -En 's/^median side-by-side throughput ratio with\/without: ([0-9.]+).*/\1/p' "$out/overhead.txt")
ov_side_range=$(sed -n '/^== side by side/,/^median side/p' "$out/overhead.txt" |
	awk '$1 ~ /^[0-9]+$/ && NF == 5 { print $5 }' | sort -g | sed -n '1p;$p' | paste -sd'|' -)

# --- results -------------------------------------------------------------------

total_min=$(awk -v a="$t_start" -v b="$t_main_end" -v o="$ov_seconds" 'BEGIN { printf "%.1f", (b - a + o) / 60 }')
tsv=$out/session_list.tsv

# stats SET: median min max of the set's execution times, in ms
stats() { awk -F'\t' -v s="$1" '$2 == s { print $3 }' "$tsv" | sort -g |
	awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f %.1f", m, v[1], v[NR] }'; }
# ratio A B: median, min, max of the per-round ratios A/B
ratio() { awk -F'\t' -v a="$1" -v b="$2" 'NR > 1 { t[$1, $2] = $3; r[$1] = 1 }
	END { for (k in r) print t[k, a] / t[k, b] }' "$tsv" | sort -g |
	awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f %.1f", m, v[1], v[NR] }'; }
jit_of() { awk -F'\t' -v s="$1" '$2 == s { print $4 }' "$tsv" | sort -u | paste -sd/ -; }

read -r none_m none_lo none_hi <<<"$(stats none)"
read -r usual_m usual_lo usual_hi <<<"$(stats usual)"
read -r bingo_m bingo_lo bingo_hi <<<"$(stats bingo)"
read -r r_nb r_nb_lo r_nb_hi <<<"$(ratio none bingo)"
read -r r_ub r_ub_lo r_ub_hi <<<"$(ratio usual bingo)"
read -r r_nu r_nu_lo r_nu_hi <<<"$(ratio none usual)"

# the chart
{
	printf 'no index\t%s\t%s\t%s\t%.2f s (%s× slower)\n' "$none_m" "$none_lo" "$none_hi" "$(awk -v m="$none_m" 'BEGIN { print m / 1000 }')" "$r_nb"
	printf 'usual write-up set\t%s\t%s\t%s\t%.2f s (%s× slower)\n' "$usual_m" "$usual_lo" "$usual_hi" "$(awk -v m="$usual_m" 'BEGIN { print m / 1000 }')" "$r_ub"
	printf 'bingo_tune set\t%s\t%s\t%s\t%.2f s\n' "$bingo_m" "$bingo_lo" "$bingo_hi" "$(awk -v m="$bingo_m" 'BEGIN { print m / 1000 }')"
} >"$out/session_list.dat"
if command -v gnuplot >/dev/null; then
	gnuplot -e "datafile='$out/session_list.dat'; outfile='$chart'; subtitle='scale $scale ($n_sessions sessions), PostgreSQL ${pg_version%% *}, $(nproc) cores, shared machine; median of $rounds alternated runs, bars: min-max'" \
		"$here/session_list.gp"
	echo "chart: $chart"
fi

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem_gb=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)

rate_row() {	# label name -> markdown cells
	awk -F'\t' -v l="$1" -v n="$2" '$1 == l && $2 == n {
		p90 = ms($7); p99 = ms($8)
		sp = ($9 == $10) ? ms($9) : ($10 == "skipped" ? ms($9) " – skipped" : $9 "–" $10 " ms")
		printf "%s | %s | %s | %s / %s (%.0f %%) | %d / %d (%.0f %%) | %.1f", p90, sp, p99,
			$4, $3, 100 * $4 / $3, $5, $3, 100 * $5 / $3, $11 }
		function ms(x) { return x == "skipped" ? "> 400 ms (skipped)" : x " ms" }' "$out/rate.tsv"
}

{
	cat <<EOF
# bingo_tune benchmark results

Produced by \`bench/run.sh --scale $scale\` (one command, one dataset, one
run; $total_min minutes). Raw output: \`bench/out/run/\` (not committed).

| | |
|---|---|
| date | $(date -u -d "@${t_start%.*}" '+%Y-%m-%d %H:%M UTC') |
| machine | $(nproc) cores ($cpu_model), $mem_gb GB memory |
| PostgreSQL | $pg_version (Debian packages), shared_buffers 1 GB, other settings default |
| scale | $scale: $n_sessions sessions, $n_movies movies, $n_customers customers (bench/dataset.sh) |
| load average | $load_start at the start, $load_end at the end |

**The machine is shared and noisy**: other people's builds and tests ran on
the same $(nproc) cores during the run (see the load averages), so absolute
times are higher and more spread than on an idle machine. The comparisons
are made side by side to cancel that out: the three index sets alternate
within each round, and the overhead rounds alternate with and without the
module. Trust the ratios more than the absolute times.

## Session list (\`GET /api/session\`)

EXPLAIN ANALYZE execution time of the session list statement (100,000 rows,
not sent to the client), median of $rounds rounds after a warm-up round; in
each round the three index sets run one after the other (order rotated),
each with the other sets' indexes dropped in a transaction that is rolled
back, so every set sees the same data and statistics.

| index set | median | min–max | ratio to bingo_tune's set (per round: median, min–max) | JIT |
|---|---:|---:|---:|---|
| none (as prepare_db leaves it) | $none_m ms | $none_lo–$none_hi ms | ${r_nb}× ($r_nb_lo–$r_nb_hi) | $(jit_of none) |
| the usual write-up's: sessions(customer_id), sessions(movie_id), movies(year), movies(name), customers(id), movies(id) | $usual_m ms | $usual_lo–$usual_hi ms | ${r_ub}× ($r_ub_lo–$r_ub_hi) | $(jit_of usual) |
| bingo_tune's (\`CALL bingo_tune.apply()\`) | $bingo_m ms | $bingo_lo–$bingo_hi ms | 1 | $(jit_of bingo) |

The usual set against none: ${r_nu}× faster ($r_nu_lo–$r_nu_hi).
bingo_tune's set against none: ${r_nb}× faster.

![session list time per index set](session_list.png)

## By-id statements at 120 requests/s

pgbench \`--rate 120\` for $rate_seconds s per statement, 8 clients, extended
protocol (\`\$1\` sent as a parameter, as bingo's driver does), random ids,
\`--latency-limit 400\` (the budget: 400 ms for 90 % of requests). A request's
latency counts from its *scheduled* start, so queueing when the server
cannot keep up is included; a request still waiting when it is already
400 ms late is *skipped* by pgbench, and counts as over the budget
(percentiles rank every scheduled request, skipped ones last: "skipped"
means that percentile fell among them). The spread is the p90 of each third
of the run (min–max). "No index" runs first, right after the load; "with"
runs last, with bingo_tune's set.

"done req/s" is what the server actually completed: with no index it is
its capacity for that statement on this machine, far below the 120 asked.

| statement | indexes | p90 | p90 per third | p99 | skipped | over 400 ms (done) | done req/s |
|---|---|---:|---:|---:|---:|---:|---:|
EOF
	for n in session_by_id customer_by_id movie_by_id; do
		echo "| $n | none | $(rate_row none "$n") |"
		echo "| $n | bingo_tune's | $(rate_row indexed "$n") |"
	done
	cat <<EOF

## The watcher: first run to indexes valid

With \`bingo_tune.naptime = 10s\` and \`bingo_tune.mode = auto\` on the dataset
with no index: from the start of the first session list run (psql, rows sent
to the client; it took $(awk -v m="$first_ms" 'BEGIN { printf "%.1f s", m / 1000 }')) to all three of its indexes valid
(\`advise()\` says present): **$watcher_s s** (one measurement). The watcher sees the
run in progress at its next pass; the first concurrent build waits for that
run to end (it holds an older snapshot); the builds took $watcher_builds.

\`\`\`
$(cat "$out/watcher_events.txt")
\`\`\`

After \`CALL bingo_tune.apply()\` (the by-id and list indexes, $apply_s s), advise() showed $advise_state indexes present.

## Module overhead on pgbench -S

${ov_rerun:+(Re-run on its own at $ov_rerun with \`bench/run.sh --overhead-only\`, after
bench/overhead.sh failed in the full run: its server did not come back from a
restart between rounds.)

}\`bench/overhead.sh --rounds $overhead_rounds --seconds 10\`: pgbench \`-S -M prepared\`, 4
clients, pgbench scale 10, on a server that preloads pg_stat_statements
only, and on the same server preloading bingo_tune too (watching bingo's six
statements), alternated round by round after a restart and a warm-up.
On this shared machine the throughput of two back-to-back 10 s runs varies
by up to 2× whatever the module does (see the rounds below), so the
throughput ratio's spread is wide; the server's CPU time per transaction
(from /proc, also measured by overhead.sh) is the steadier figure.

| | median | min–max |
|---|---:|---:|
| throughput with / without bingo_tune (per-round ratio) | $ov_median | ${ov_range/|/–} |
${ov_cpu:+| server CPU per transaction with / without (per-round ratio) | $ov_cpu | ${ov_cpu_range/|/–} |
}${ov_side:+| throughput with / without, both servers running at once (per-round ratio) | $ov_side | ${ov_side_range/|/–} |
}| pgbench -S without bingo_tune | $(printf '%.0f' "$ov_tps") tps | |

\`\`\`
$(sed -n '/^== pgbench -S/,$p' "$out/overhead.txt" | grep -v -e '^ *reset *$' -e '^-*$' -e '^ *$' -e '^(1 row)$')
\`\`\`

## Reproduce

    make bench SCALE=$scale      # as an ordinary user: builds into ./tmp_install, runs bench/run.sh
EOF
} >"$results_md"
echo
echo "results: $results_md ($total_min min)"
