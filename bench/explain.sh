#!/usr/bin/env bash
# shellcheck disable=SC2016  # $1 in single quotes: literal SQL parameters
#
# bench/explain.sh: time bingo's six watched statements under several index
# sets with EXPLAIN (ANALYZE, BUFFERS), on a database filled by
# bench/dataset.sh.  The evidence behind the index set in
# bingo_tune--1.0.sql; results are written up in bench/EXPLAIN.md.
#
# usage: bench/explain.sh [--runs N] [--sets LIST] [--out DIR] [CONNINFO]
#
#   --runs N     timed runs per statement and set (default 3; the median is
#                reported).  Each statement also gets one untimed warm-up run.
#   --sets LIST  comma-separated index sets to measure, in order (default
#                none,usual,chosen,chosen_movies2,chosen_sess3,
#                chosen_no_movies_id); see below.
#   --out DIR    where the plans and the raw results go (default
#                ./explain-out); DIR/results.tsv has one line per run,
#                DIR/<set>.<statement>.txt the plan of the median run.
#                Besides EXPLAIN's times, each run records the backend's CPU
#                time and run-queue wait (Linux schedstat; needs superuser),
#                as the machine may be busy with other work.
#   CONNINFO     libpq connection string; else the PG* environment variables.
#
# For each set the script drops the indexes it made before (names bench_*),
# creates the set's indexes with plain CREATE INDEX (printing build time and
# size), then runs the statements.  It refuses to run if the bingo tables
# carry any other index, since that would change the plans.  It never
# re-ANALYZEs, so every set sees the same statistics.  At the end it drops
# its indexes again, leaving the tables as dataset.sh left them.
#
# $1 is replaced by 1 (the sample value in the watch catalog).  bingo's
# driver sends $1 as a parameter of an unnamed prepared statement, which
# PostgreSQL plans with the value known (a custom plan), so a literal gives
# the same plan.  EXPLAIN ANALYZE executes the statement but sends no rows,
# so the times exclude sending up to 100,000 rows to the client.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")

die() {
	echo "$prog: $*" >&2
	exit 1
}

runs=3
sets=none,usual,chosen,chosen_movies2,chosen_sess3,chosen_no_movies_id
out=./explain-out
conninfo=
have_conninfo=0

while [ $# -gt 0 ]; do
	case "$1" in
		--runs) [ $# -ge 2 ] || die "--runs needs a value"; runs=$2; shift 2 ;;
		--runs=*) runs=${1#--runs=}; shift ;;
		--sets) [ $# -ge 2 ] || die "--sets needs a value"; sets=$2; shift 2 ;;
		--sets=*) sets=${1#--sets=}; shift ;;
		--out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
		--out=*) out=${1#--out=}; shift ;;
		-h|--help) sed -n '9,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		-*) die "unknown option \"$1\" (try --help)" ;;
		*)
			[ $have_conninfo -eq 0 ] || die "more than one connection string given"
			conninfo=$1; have_conninfo=1; shift ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"

psql_cmd=(psql -X -q -v ON_ERROR_STOP=1)
[ $have_conninfo -eq 0 ] || psql_cmd+=(-d "$conninfo")

#
# The statements: copies of the watch catalog's texts in bingo_tune--1.0.sql
# (checked below), with $1 -> 1.
#
declare -A stmt
stmt[session_list]='SELECT sessions.id, sessions.start_time, customers.id, customers.name, customers.surname, customers.birthday, customers.email, movies.id, movies.name, movies.year, movies.duration FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id INNER JOIN movies ON sessions.movie_id = movies.id ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC LIMIT 100000'
stmt[session_by_id]='SELECT sessions.id, sessions.start_time, customers.id, customers.name, customers.surname, customers.birthday, customers.email, movies.id, movies.name, movies.year, movies.duration FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id INNER JOIN movies ON sessions.movie_id = movies.id WHERE sessions.id IN ($1) ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC LIMIT 100000'
stmt[customer_by_id]='SELECT customers.id, customers.name, customers.surname, customers.birthday, customers.email FROM customers WHERE customers.id IN ($1) ORDER BY customers.surname ASC, customers.name ASC, customers.birthday DESC, customers.id DESC LIMIT 100000'
stmt[movie_by_id]='SELECT movies.id, movies.name, movies.year, movies.duration FROM movies WHERE movies.id IN ($1) ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000'
stmt[customer_list]='SELECT customers.id, customers.name, customers.surname, customers.birthday, customers.email FROM customers ORDER BY customers.surname ASC, customers.name ASC, customers.birthday DESC, customers.id DESC LIMIT 100000'
stmt[movie_list]='SELECT movies.id, movies.name, movies.year, movies.duration FROM movies ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000'
all_statements="session_list session_by_id customer_by_id movie_by_id customer_list movie_list"

catalog=$here/../bingo_tune--1.0.sql
if [ -f "$catalog" ]; then
	for s in $all_statements; do
		grep -qF "'${stmt[$s]}'" "$catalog" ||
			echo "$prog: warning: statement $s differs from the one in bingo_tune--1.0.sql" >&2
	done
fi

#
# Index sets: "statements to run|index definition;index definition;..."
#
declare -A set_stmts set_defs
set_stmts[none]=$all_statements
set_defs[none]=
# what the usual write-up creates: single-column year, name, ids, FKs
set_stmts[usual]=$all_statements
set_defs[usual]='sessions (customer_id);sessions (movie_id);movies (year);movies (name);customers (id);movies (id)'
# the set in the watch catalog
set_stmts[chosen]=$all_statements
set_defs[chosen]='movies (year DESC, name, id DESC) INCLUDE (duration);sessions (movie_id) INCLUDE (customer_id, id, start_time);customers (id) INCLUDE (name, surname, birthday, email);sessions (id);movies (id) INCLUDE (name, year, duration);customers (surname, name, birthday DESC, id DESC) INCLUDE (email)'
# variant: the plain movies (year DESC, name), the shorter key that serves the session list alone
set_stmts[chosen_movies2]="session_list movie_list"
set_defs[chosen_movies2]='movies (year DESC, name);sessions (movie_id) INCLUDE (customer_id, id, start_time);customers (id) INCLUDE (name, surname, birthday, email);sessions (id);movies (id) INCLUDE (name, year, duration);customers (surname, name, birthday DESC, id DESC) INCLUDE (email)'
# variant: sessions index keyed on the rest of the ORDER BY too
set_stmts[chosen_sess3]="session_list"
set_defs[chosen_sess3]='movies (year DESC, name, id DESC) INCLUDE (duration);sessions (movie_id, customer_id, id DESC) INCLUDE (start_time);customers (id) INCLUDE (name, surname, birthday, email);sessions (id);movies (id) INCLUDE (name, year, duration);customers (surname, name, birthday DESC, id DESC) INCLUDE (email)'
# variant: chosen without the movies (id) index (is it needed by session_by_id?)
set_stmts[chosen_no_movies_id]="session_list session_by_id movie_by_id"
set_defs[chosen_no_movies_id]='movies (year DESC, name, id DESC) INCLUDE (duration);sessions (movie_id) INCLUDE (customer_id, id, start_time);customers (id) INCLUDE (name, surname, birthday, email);sessions (id);customers (surname, name, birthday DESC, id DESC) INCLUDE (email)'

IFS=, read -r -a set_list <<<"$sets"
for set in "${set_list[@]}"; do
	[ -n "${set_stmts[$set]+x}" ] || die "unknown index set \"$set\" (known: ${!set_stmts[*]})"
done

mkdir -p "$out"
results=$out/results.tsv
printf 'set\tstatement\trun\texec_ms\tplan_ms\tjit\tindexes\tcpu_ms\trunq_wait_ms\n' >"$results"

q() { "${psql_cmd[@]}" -At "$@"; }

drop_bench_indexes() {
	q -o /dev/null <<'EOF'
SELECT format('DROP INDEX %s', c.oid::regclass)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('sessions'::regclass, 'customers'::regclass, 'movies'::regclass)
  AND c.relname LIKE 'bench\_%' \gexec
EOF
}

others=$(q -c "SELECT string_agg(c.relname, ', ')
	FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE i.indrelid IN ('sessions'::regclass, 'customers'::regclass, 'movies'::regclass)
	  AND c.relname NOT LIKE 'bench\_%'") || die "cannot read the bingo tables (run bench/dataset.sh first)"
[ -z "$others" ] || die "the bingo tables have other indexes ($others); drop them or use a fresh dataset"

echo "server: $(q -c "SELECT version()")"
echo "settings: $(q -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name)
	FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'jit', 'jit_above_cost',
		'max_parallel_workers_per_gather', 'random_page_cost', 'effective_cache_size')")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
echo "tables: $(q -c "SELECT string_agg(relname || '=' || reltuples::bigint, ' ' ORDER BY relname)
	FROM pg_class WHERE oid IN ('sessions'::regclass, 'customers'::regclass, 'movies'::regclass)")"

# One psql session per run: define the helper, run EXPLAIN, print a summary
# line followed by the plan.
explain_run() {
	local sql=${1//\$1/1}
	q -v "stmt=$sql" <<'EOF'
-- This backend's CPU time and run-queue wait so far, in ns, from Linux's
-- /proc/self/schedstat (NULLs where that cannot be read).  The machine is
-- shared, so wall time includes waiting for a CPU; these separate the two.
-- Parallel workers' CPU time is not included.
CREATE FUNCTION pg_temp.bench_schedstat() RETURNS bigint[]
LANGUAGE plpgsql AS $f$
BEGIN
	RETURN (string_to_array(btrim(pg_read_file('/proc/self/schedstat')), ' '))[1:2]::bigint[];
EXCEPTION WHEN OTHERS THEN
	RETURN ARRAY[NULL, NULL]::bigint[];
END
$f$;
CREATE FUNCTION pg_temp.bench_explain(q text, OUT summary text, OUT plan text)
LANGUAGE plpgsql AS $f$
DECLARE
	l text;
	lines text[] := '{}';
	idx text;
	s0 bigint[];
	s1 bigint[];
BEGIN
	s0 := pg_temp.bench_schedstat();
	FOR l IN EXECUTE 'EXPLAIN (ANALYZE, BUFFERS) ' || q LOOP
		lines := lines || l;
	END LOOP;
	s1 := pg_temp.bench_schedstat();
	plan := array_to_string(lines, E'\n');
	SELECT string_agg(DISTINCT m[1], ',') INTO idx
	FROM regexp_matches(plan, '(?:Scan using|Scan Backward using|Bitmap Index Scan on) (\S+)', 'g') AS m;
	summary := concat_ws(E'\t',
		substring(plan FROM 'Execution Time: ([0-9.]+) ms'),
		substring(plan FROM 'Planning Time: ([0-9.]+) ms'),
		CASE WHEN plan ~ '(^|\n)JIT:' THEN 'jit' ELSE '-' END,
		coalesce(idx, '-'),
		coalesce(round((s1[1] - s0[1]) / 1e6, 1)::text, '-'),
		coalesce(round((s1[2] - s0[2]) / 1e6, 1)::text, '-'));
END
$f$;
SELECT summary || E'\n' || plan FROM pg_temp.bench_explain(:'stmt');
EOF
}

for set in "${set_list[@]}"; do
	echo
	echo "== index set: $set (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	drop_bench_indexes
	i=0
	IFS=';' read -r -a defs <<<"${set_defs[$set]}"
	for def in "${defs[@]}"; do
		[ -n "$def" ] || continue
		i=$((i + 1))
		name=bench_${set}_$i
		t0=$(date +%s.%N)
		q -c "CREATE INDEX $name ON $def"
		t1=$(date +%s.%N)
		size=$(q -c "SELECT pg_size_pretty(pg_relation_size('$name'))")
		awk -v a="$t0" -v b="$t1" -v n="$name" -v d="$def" -v s="$size" \
			'BEGIN { printf "  %-24s %-62s %6.2f s %8s\n", n, d, b - a, s }'
	done
	for s in ${set_stmts[$set]}; do
		explain_run "${stmt[$s]}" >/dev/null		# warm-up, not counted
		times=()
		for r in $(seq 1 "$runs"); do
			explain_run "${stmt[$s]}" >"$out/$set.$s.run$r.txt"
			summary=$(head -n 1 "$out/$set.$s.run$r.txt")
			printf '%s\t%s\t%s\t%s\n' "$set" "$s" "$r" "$summary" >>"$results"
			times+=("$(cut -f1 <<<"$summary") $r")
		done
		median=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (runs + 1) / 2 ))p")
		mr=${median#* }
		tail -n +2 "$out/$set.$s.run$mr.txt" >"$out/$set.$s.txt"
		rm -f "$out/$set.$s".run*.txt
		line=$(awk -F'\t' -v set="$set" -v s="$s" -v r="$mr" '$1 == set && $2 == s && $3 == r' "$results")
		all=$(awk -F'\t' -v set="$set" -v s="$s" '$1 == set && $2 == s { printf "%s%s", sep, $4; sep = "/" }' "$results")
		cpu=$(awk -F'\t' -v set="$set" -v s="$s" '$1 == set && $2 == s { print $8 }' "$results" | sort -g | sed -n "$(( (runs + 1) / 2 ))p")
		printf '  %-15s median %10s ms  (runs %s ms)  cpu %s ms  plan %s ms  %s  indexes: %s\n' \
			"$s" "$(cut -f4 <<<"$line")" "$all" "$cpu" "$(cut -f5 <<<"$line")" \
			"$(cut -f6 <<<"$line")" "$(cut -f7 <<<"$line")"
	done
done

drop_bench_indexes
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "raw results: $results; median plans: $out/<set>.<statement>.txt"
