#!/usr/bin/env bash
# shellcheck disable=SC2016  # backquotes in single quotes: literal Markdown
#
# bench/insert_cost.sh: what an index set adds to an INSERT into sessions.
# pgbench inserts into sessions with no index, with the single-column set
# (the usual write-up) and with the set bingo_tune.derive() gives bingo's
# six statements, side by side in one run.
#
# usage: bench/insert_cost.sh [--scale N] [--rounds N] [--inserts N]
#                             [--clients N] [--out DIR] [--no-results]
#
#   --scale N     dataset size (bench/dataset.sh; 1 = 5M sessions; default 1)
#   --rounds N    timed rounds (default 5, after one warm-up round); at
#                 scale 1 the whole run takes about 2.5 minutes
#   --inserts N   inserts per pgbench run (default 50000): every copy gets
#                 the same rows, so all grow alike
#   --clients N   pgbench clients (default 1)
#   --out DIR     raw output (default bench/out/insert_cost)
#   --no-results  write the results into DIR/RESULTS_insert_cost.md only,
#                 and leave bench/RESULTS.md alone
#
# Run as an ordinary user (initdb refuses root), after "make test" or
# "make tmp_install" so that ./tmp_install holds this build (bench/lib.sh).
# derive() ranks its sets with HypoPG when the machine has it
# (postgresql-15-hypopg), else by its rules alone; the table says which.
# On a throwaway server (port $BENCH_PORT, default 5474):
#
#  1. bench/dataset.sh fills the tables; VACUUM ANALYZE.
#  2. The sets: single-column (movies (year), movies (name), sessions
#     (movie_id), sessions (customer_id), sessions (id), customers (id),
#     movies (id)); derived (every index derive() gives one of bingo's six
#     statements, each distinct index once).
#  3. Three copies of sessions, one per set, each in a schema of its own
#     (bench_none, bench_single, bench_derived) with the set's indexes on
#     sessions built on it; VACUUM ANALYZE.  The other tables' indexes do
#     not touch an INSERT into sessions and are not built.
#  4. Each round runs pgbench on each copy in turn (order rotated): one
#     INSERT INTO sessions (start_time, customer_id, movie_id) per
#     transaction, random customer and movie, search_path set to the copy's
#     schema.  Inserts per second and WAL bytes per insert are taken from
#     each run; the table shows the medians.
#
# synchronous_commit is off on the bench server: with it on, the wait for
# the WAL flush dominates a one-row transaction and hides what the indexes
# cost.  Writes a section between marker lines into bench/RESULTS.md (run
# after bench/run.sh, which rewrites that file), keeps the raw output in DIR.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")
die() { echo "$prog: $*" >&2; exit 1; }

scale=1
rounds=5
inserts=50000
clients=1
out=$here/out/insert_cost
results=1
while [ $# -gt 0 ]; do
	case "$1" in
		--scale) [ $# -ge 2 ] || die "--scale needs a value"; scale=$2; shift 2 ;;
		--scale=*) scale=${1#--scale=}; shift ;;
		--rounds) [ $# -ge 2 ] || die "--rounds needs a value"; rounds=$2; shift 2 ;;
		--rounds=*) rounds=${1#--rounds=}; shift ;;
		--inserts) [ $# -ge 2 ] || die "--inserts needs a value"; inserts=$2; shift 2 ;;
		--inserts=*) inserts=${1#--inserts=}; shift ;;
		--clients) [ $# -ge 2 ] || die "--clients needs a value"; clients=$2; shift 2 ;;
		--clients=*) clients=${1#--clients=}; shift ;;
		--out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
		--out=*) out=${1#--out=}; shift ;;
		--no-results) results=0; shift ;;
		-h|--help) sed -n '4,46p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument \"$1\" (try --help)" ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ $inserts =~ ^[1-9][0-9]*$ ]] || die "--inserts must be a positive integer"
[[ $clients =~ ^[1-9][0-9]*$ ]] || die "--clients must be a positive integer"
[ "$(id -u)" -ne 0 ] || die "run as an ordinary user (initdb refuses root)"

export BENCH_PORT=${BENCH_PORT:-5474}
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ $results -eq 1 ]; then results_md=$here/RESULTS.md; else results_md=$out/RESULTS_insert_cost.md; fi
exec > >(tee "$out/run.log") 2>&1
say() { printf '\n== %s (%s, load %s)\n' "$*" "$(date -u +%H:%M:%S)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

trap bench_stop EXIT
say "server on port $BENCH_PORT in $out/server"
bench_start "$out/server" "bingo_tune.mode = off" "maintenance_work_mem = 512MB" \
	"synchronous_commit = off"
pg_version=$(q -c 'SHOW server_version')
q -c 'CREATE EXTENSION bingo_tune CASCADE'
q -c 'CREATE EXTENSION hypopg' 2>/dev/null || echo "(no HypoPG: derive() uses its rules alone)"

say "dataset, scale $scale"
"$here/dataset.sh" --scale "$scale"
q -c 'VACUUM ANALYZE sessions, customers, movies'
n_sessions=$(q -c 'SELECT count(*) FROM sessions')
n_customers=$(q -c 'SELECT count(*) FROM customers')
n_movies=$(q -c 'SELECT count(*) FROM movies')

# --- the sets -----------------------------------------------------------------

say "sets"
single='movies (year);movies (name);sessions (movie_id);sessions (customer_id);sessions (id);customers (id);movies (id)'
derived=$(q -c "SET client_min_messages = warning; SELECT string_agg(DISTINCT bingo_tune.index_parse(d.definition), ';')
	FROM bingo_tune.watch w, LATERAL bingo_tune.derive(w.statement, w.schema) d WHERE w.builtin")
ranked_by=$(q -c "SET client_min_messages = warning; SELECT DISTINCT d.ranked_by FROM bingo_tune.watch w,
	LATERAL bingo_tune.derive(w.statement, w.schema) d WHERE w.builtin")
[ -n "$derived" ] || die "derive() gave no index for bingo's statements"
echo "single:  $single"
echo "derived: $derived ($ranked_by)"
# sessions_defs SET: the set's definitions on sessions, one a line, as
# CREATE INDEX takes them after ON (table name unqualified)
sessions_defs() {
	tr ';' '\n' <<<"$1" | sed -n 's/^\(public\.\)\{0,1\}sessions \(.*\)$/sessions \2/p'
}

# --- one copy of sessions per set -----------------------------------------------

say "copies of sessions"
configs="none single derived"
for c in $configs; do
	q <<EOF
DROP SCHEMA IF EXISTS bench_$c CASCADE;
CREATE SCHEMA bench_$c;
CREATE TABLE bench_$c.sessions (LIKE public.sessions INCLUDING DEFAULTS);
INSERT INTO bench_$c.sessions SELECT * FROM public.sessions;
EOF
	case $c in
		none) defs='' ;;
		single) defs=$(sessions_defs "$single") ;;
		derived) defs=$(sessions_defs "$derived") ;;
	esac
	while IFS= read -r d; do
		[ -n "$d" ] || continue
		t0=$(date +%s.%N)
		q -c "SET search_path = bench_$c; CREATE INDEX ON $d"
		awk -v a="$t0" -v b="$(date +%s.%N)" -v c="$c" -v d="$d" \
			'BEGIN { printf "%-8s %-70s %6.1f s\n", c, d, b - a }'
	done <<<"$defs"
	q -c "VACUUM ANALYZE bench_$c.sessions"
done
# derive()'s size estimate of every derived index, against its size once
# built (on the public tables, which the timed rounds do not touch)
say "derive()'s size estimates against the built indexes"
while IFS= read -r d; do
	[ -n "$d" ] || continue
	q -c "CREATE INDEX ON $d"
done < <(tr ';' '\n' <<<"$derived")
q -c 'VACUUM ANALYZE sessions, customers, movies'
q -F '|' -c "SET client_min_messages = warning;
	SELECT DISTINCT ON (1) bingo_tune.index_parse(d.definition),
		round(d.est_size_bytes / 1048576.0, 1), round(d.size_bytes / 1048576.0, 1),
		round(d.est_size_bytes::numeric / nullif(d.size_bytes, 0), 2)
	FROM bingo_tune.watch w, LATERAL bingo_tune.derive(w.statement, w.schema) d
	WHERE w.builtin AND bingo_tune.index_parse(d.definition) = ANY (string_to_array('$derived', ';'))
	ORDER BY 1" >"$out/sizes.txt"
sed 's/|/  /g' "$out/sizes.txt"
# each copy's indexes as built, before the rounds add rows
for c in $configs; do
	q -c "SELECT round(coalesce(sum(pg_relation_size(indexrelid)), 0) / 1048576.0, 1)
		FROM pg_index WHERE indrelid = 'bench_$c.sessions'::regclass" >"$out/built_size_$c.txt"
done

# sessions_id_seq is shared by the copies (their DEFAULT): ids stay unique
q -c "SELECT setval('public.sessions_id_seq', (SELECT max(id) FROM public.sessions))" >/dev/null

cat >"$out/insert.sql" <<EOF
\\set c random(1, $n_customers)
\\set m random(1, $n_movies)
INSERT INTO sessions (start_time, customer_id, movie_id)
	VALUES (timestamp '2020-01-01' + random() * interval '3 years', :c, :m);
EOF

# --- timed rounds ---------------------------------------------------------------------

runs=$out/runs.tsv
: >"$runs"
# run_one CONFIG ROUND: one pgbench run into bench_CONFIG.sessions
run_one() {
	local lsn0 lsn1 log tps n wal
	log=$out/pgbench_$1_$2.log
	lsn0=$(q -c 'SELECT pg_current_wal_insert_lsn()')
	PGOPTIONS="-c search_path=bench_$1" pgbench -n -M prepared -c "$clients" -j "$clients" \
		-t "$(( (inserts + clients - 1) / clients ))" -f "$out/insert.sql" >"$log" 2>&1 || die "pgbench failed: $(tail -5 "$log")"
	lsn1=$(q -c 'SELECT pg_current_wal_insert_lsn()')
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log" | head -1)
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	wal=$(q -c "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / greatest($n, 1))")
	printf '%-8s %10.0f inserts/s %6.0f WAL bytes/insert\n' "$1" "$tps" "$wal"
	[ "$2" -eq 0 ] || printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$tps" "$wal" >>"$runs"
}

read -ra cl <<<"$configs"
for round in $(seq 0 "$rounds"); do
	say "round $round of $rounds$([ "$round" -gt 0 ] || echo ' (warm-up)')"
	for i in 0 1 2; do
		run_one "${cl[$(((i + round) % 3))]}" "$round"
	done
	q -c 'CHECKPOINT'
done

# --- results --------------------------------------------------------------------------

median_of() { awk -F'\t' -v c="$1" -v k="$2" '$1 == c { print $k }' "$runs" | bench_median; }
# paired_ratio CONFIG: median over the rounds of CONFIG's inserts/s over no
# index's in the same round (rounds drift on a shared machine; pairs less)
paired_ratio() {
	awk -F'\t' -v c="$1" '$1 == "none" { n[$2] = $3 } $1 == c { t[$2] = $3 }
		END { for (r in t) if (n[r] > 0) print t[r] / n[r] }' "$runs" | bench_median |
		awk '{ printf "%.2f×", $1 }'
}

elapsed=$(awk -v s="$(( $(date +%s) - t_start ))" 'BEGIN { printf "%.1f", s / 60 }')
rel_out=${out#"$(cd "$here/.." && pwd)"/}
{
	echo "<!-- insert_cost begin: written by bench/insert_cost.sh, do not edit -->"
	echo "## What an index set adds to an INSERT into sessions"
	echo
	echo "Produced by \`bench/insert_cost.sh --scale $scale --rounds $rounds --inserts $inserts --clients $clients\`"
	echo "on $(date -u '+%Y-%m-%d %H:%M') UTC ($elapsed min; PostgreSQL $pg_version; $n_sessions sessions,"
	echo "$n_movies movies, $n_customers customers; load average $load_start at the start,"
	echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end; synchronous_commit off)."
	echo "pgbench, one \`INSERT INTO sessions (start_time, customer_id, movie_id)\` per transaction,"
	echo "random customer and movie, into three copies of sessions that differ only in their indexes;"
	echo "median of $rounds rounds of $inserts inserts per copy after a warm-up round, the copies taking turns in"
	echo "each round (order rotated). The derived set was ranked by: $ranked_by."
	echo
	echo "| set | indexes on sessions | their size MB, built | inserts/s | vs no index | WAL bytes per insert |"
	echo "|---|---|---:|---:|---:|---:|"
	for c in $configs; do
		ix=$(q -c "SELECT coalesce(string_agg(pg_get_indexdef(i.indexrelid), '<br>' ORDER BY 1), '–')
			FROM pg_index i WHERE i.indrelid = 'bench_$c.sessions'::regclass" |
			sed 's/^CREATE INDEX [a-z0-9_]* ON bench_[a-z]*\.sessions USING btree /`/; s/<br>CREATE INDEX [a-z0-9_]* ON bench_[a-z]*\.sessions USING btree /`<br>`/g; s/\([^–]\)$/\1`/')
		n_ix=$(q -c "SELECT count(*) FROM pg_index WHERE indrelid = 'bench_$c.sessions'::regclass")
		size=$(cat "$out/built_size_$c.txt")
		tps=$(median_of "$c" 3)
		wal=$(median_of "$c" 4)
		echo "| $c | $n_ix: $ix | $size | $(printf '%.0f' "$tps") | $(paired_ratio "$c") | $(printf '%.0f' "$wal") |"
	done
	echo
	echo "\"vs no index\" is the set's inserts per second over those with no index in the same round"
	echo "(median over the rounds): what is left of the INSERT rate once the set is maintained. WAL"
	echo "includes the full-page images written after the CHECKPOINT that ends each round. The"
	echo "single-column set also indexes movies and customers, and the derived set covers them;"
	echo "neither touches an INSERT into sessions."
	echo "Sizes are those of the indexes just built, before the rounds add $(( (rounds + 1) * inserts )) rows to each copy."
	echo
	echo "derive()'s size estimate (\`est_size_bytes\`, from the statistics, before the index exists)"
	echo "against the size of the index once built (\`size_bytes\`), for every index of the derived set:"
	echo
	echo "| derived index | estimated MB | built MB | estimate / built |"
	echo "|---|---:|---:|---:|"
	awk -F'|' '{ printf "| `%s` | %s | %s | %s |\n", $1, $2, $3, $4 }' "$out/sizes.txt"
	echo
	echo "Raw figures: \`$rel_out/runs.tsv\`, \`$rel_out/pgbench_*.log\` (not committed)."
	echo "<!-- insert_cost end -->"
} >"$out/section.md"

if [ -f "$results_md" ] && grep -q '^<!-- insert_cost begin' "$results_md"; then
	awk -v f="$out/section.md" '
		/^<!-- insert_cost begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
		/^<!-- insert_cost end/ { skip = 0; next }
		!skip { print }' "$results_md" >"$results_md.tmp"
	mv "$results_md.tmp" "$results_md"
else
	[ ! -f "$results_md" ] || echo >>"$results_md"
	cat "$out/section.md" >>"$results_md"
fi
say "done: $results_md"
cat "$out/section.md"
