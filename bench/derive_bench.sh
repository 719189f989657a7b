#!/usr/bin/env bash
# shellcheck disable=SC2016  # $1 in single quotes: literal SQL parameters
#
# bench/derive_bench.sh: bingo_tune.derive()'s index sets against the
# hand-picked ones, Dexter's recommendations and no index, side by side in
# one run on one bingo-shaped dataset.
#
# usage: bench/derive_bench.sh [--scale N] [--rounds N] [--out DIR]
#                              [--no-results]
#
#   --scale N     dataset size (bench/dataset.sh; 1 = 5M sessions; default 1)
#   --rounds N    timed rounds (default 5, after one warm-up round)
#                 At scale 1 a round takes about a minute on a shared
#                 2-core machine (the session list with no index and under
#                 Dexter's sets, 14-18 s each, dominate it) and everything
#                 else about 1.5 min: about 7 minutes in all with 5 rounds
#                 (measured: 2.6 min with --rounds 1).
#   --out DIR     raw output (default bench/out/derive)
#   --no-results  write the results into DIR/RESULTS_derive.md only, and
#                 leave bench/RESULTS.md alone
#
# Run as an ordinary user (initdb refuses root), after "make test" or
# "make tmp_install" so that ./tmp_install holds this build (bench/lib.sh),
# with HypoPG installed on the machine (postgresql-15-hypopg): derive()
# ranks its sets with it.  On a throwaway server (port $BENCH_PORT, default
# 5473):
#
#  1. bench/dataset.sh fills the tables; VACUUM ANALYZE.
#  2. derive() gives the set of each statement: bingo's six (from the watch
#     catalog) and statements bingo_tune has never seen (below), with no
#     index present.
#  3. Every index of every set is built once (plain CREATE INDEX), sizes
#     recorded, then VACUUM ANALYZE (index-only scans need the visibility
#     map).
#  4. Each statement runs under each of its sets: no index, Dexter's
#     recommendation (built by hand: Dexter itself does not run), the
#     hand-picked set (bingo's statements), the derived set.  In every
#     round the sets run one after the other (order rotated), each with
#     every other bench index dropped in a transaction that is rolled back,
#     so all see the same data and statistics.  Time: EXPLAIN (ANALYZE)
#     execution time, rows not sent to the client; the median of the rounds.
#
# $1, $2 are replaced by literals (a custom plan, as bingo's driver gets for
# an unnamed prepared statement).  Writes a section between marker lines
# into bench/RESULTS.md (bench/run.sh rewrites that file: run this script
# after it), keeps the raw output in DIR.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")
die() { echo "$prog: $*" >&2; exit 1; }

scale=1
rounds=5
out=$here/out/derive
results=1
while [ $# -gt 0 ]; do
	case "$1" in
		--scale) [ $# -ge 2 ] || die "--scale needs a value"; scale=$2; shift 2 ;;
		--scale=*) scale=${1#--scale=}; shift ;;
		--rounds) [ $# -ge 2 ] || die "--rounds needs a value"; rounds=$2; shift 2 ;;
		--rounds=*) rounds=${1#--rounds=}; shift ;;
		--out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
		--out=*) out=${1#--out=}; shift ;;
		--no-results) results=0; shift ;;
		-h|--help) sed -n '3,47p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument \"$1\" (try --help)" ;;
	esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[ "$(id -u)" -ne 0 ] || die "run as an ordinary user (initdb refuses root)"

export BENCH_PORT=${BENCH_PORT:-5473}
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ $results -eq 1 ]; then results_md=$here/RESULTS.md; else results_md=$out/RESULTS_derive.md; fi
exec > >(tee "$out/run.log") 2>&1
say() { printf '\n== %s (%s, load %s)\n' "$*" "$(date -u +%H:%M:%S)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

trap bench_stop EXIT
say "server on port $BENCH_PORT in $out/server"
bench_start "$out/server" "bingo_tune.mode = off" "maintenance_work_mem = 512MB"
pg_version=$(q -c 'SHOW server_version')
q -c 'CREATE EXTENSION bingo_tune CASCADE'
q -c 'CREATE EXTENSION hypopg' || die "HypoPG is not installed (apt-get install postgresql-15-hypopg)"

say "dataset, scale $scale"
"$here/dataset.sh" --scale "$scale"
q -c 'VACUUM ANALYZE sessions, customers, movies'
# a definition's canonical form with its INCLUDE columns sorted: two
# definitions that differ only in that order are one index, built once
q <<'EOF'
CREATE FUNCTION public.bench_norm(def text) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN c LIKE '% INCLUDE (%' THEN
			split_part(c, ' INCLUDE (', 1) || ' INCLUDE (' ||
			(SELECT string_agg(x, ', ' ORDER BY x)
			 FROM unnest(string_to_array(rtrim(split_part(c, ' INCLUDE (', 2), ')'), ', ')) x) || ')'
		   ELSE c END
	FROM bingo_tune.index_parse(def) c
$$;
EOF
n_sessions=$(q -c 'SELECT count(*) FROM sessions')
n_customers=$(q -c 'SELECT count(*) FROM customers')
n_movies=$(q -c 'SELECT count(*) FROM movies')

# --- the statements ----------------------------------------------------------
#
# name|kind|statement|literal for $1|literal for $2
# kind: bingo (hand-picked set in the catalog) or new (never seen)
stmts=$out/statements.txt
surname=$(q -c 'SELECT surname FROM customers WHERE id = 1')
mid=$(q -c "SELECT min(start_time) + (max(start_time) - min(start_time)) / 2 FROM sessions")
mid2=$(q -c "SELECT timestamp '$mid' + (max(start_time) - min(start_time)) / 2000 FROM sessions")
{
	q -F '|' -c "SELECT name, 'bingo', statement, '1', '' FROM bingo_tune.watch WHERE builtin ORDER BY priority, name"
	cat <<EOF
customer_sessions|new|SELECT sessions.id, sessions.start_time, movies.name, movies.year FROM sessions JOIN movies ON movies.id = sessions.movie_id WHERE sessions.customer_id = \$1 ORDER BY sessions.start_time DESC LIMIT 20|42|
movies_of_year|new|SELECT id, name, duration FROM movies WHERE year = \$1 ORDER BY name|2000|
customers_by_surname|new|SELECT id, name, surname, birthday FROM customers WHERE surname = \$1 ORDER BY birthday|'$surname'|
sessions_in_range|new|SELECT id, customer_id, movie_id FROM sessions WHERE start_time >= \$1 AND start_time < \$2|'$mid'|'$mid2'
movie_audience|new|SELECT sessions.start_time, customers.name, customers.email FROM sessions JOIN customers ON customers.id = sessions.customer_id WHERE sessions.movie_id = \$1 ORDER BY sessions.start_time LIMIT 50|7|
EOF
} >"$stmts"

# Dexter 0.6.3's recommendations for bingo's statements, built by hand:
# nothing on its first pass for the session list and sessions (movie_id) on
# its second; customers (surname); movies (year); single-column id indexes
# for the by-id statements.  For the new statements: none measured.
dexter_sets() {
	case "$1" in
		session_list) echo "dexter1:"; echo "dexter2:sessions (movie_id)" ;;
		customer_list) echo "dexter1:customers (surname)" ;;
		movie_list) echo "dexter1:movies (year)" ;;
		session_by_id) echo "dexter1:sessions (id);customers (id);movies (id)" ;;
		customer_by_id) echo "dexter1:customers (id)" ;;
		movie_by_id) echo "dexter1:movies (id)" ;;
	esac
}

# --- derive() with no index present ---------------------------------------------

say "derive()"
sets=$out/sets.txt     # name|set|definition;definition;...
: >"$sets"
while IFS='|' read -r name kind sql v1 v2; do
	derived=$(q -c "SELECT string_agg(definition, ';') FROM bingo_tune.derive(\$q\$$sql\$q\$)")
	q -c "SELECT definition, why, cost_before, cost_after, cost_drop_pct FROM bingo_tune.derive(\$q\$$sql\$q\$)" \
		>"$out/derive_$name.txt"
	echo "$name: $derived"
	echo "$name|none|" >>"$sets"
	echo "$name|derived|$derived" >>"$sets"
	if [ "$kind" = bingo ]; then
		echo "$name|hand|$(q -c "SELECT array_to_string(indexes, ';') FROM bingo_tune.watch WHERE name = '$name'")" >>"$sets"
		dexter_sets "$name" | sed "s/^\([a-z0-9]*\):/$name|\1|/" >>"$sets"
	fi
done <"$stmts"

# --- build every index once --------------------------------------------------------

say "indexes"
# canonical definition -> bench index name
declare -A ixname
n=0
while IFS='|' read -r _name _set defs; do
	IFS=';' read -ra list <<<"$defs"
	for d in "${list[@]}"; do
		[ -n "$d" ] || continue
		c=$(q -c "SELECT bench_norm(\$q\$$d\$q\$)")
		if [ -z "${ixname[$c]:-}" ]; then
			n=$((n + 1))
			ixname[$c]=bench_ix_$n
			t0=$(date +%s.%N)
			q -c "CREATE INDEX ${ixname[$c]} ON $c"
			awk -v a="$t0" -v b="$(date +%s.%N)" -v n="${ixname[$c]}" -v c="$c" \
				'BEGIN { printf "%-12s %-80s %6.1f s\n", n, c, b - a }'
		fi
	done
done <"$sets"
q -c 'VACUUM ANALYZE sessions, customers, movies'
all_ix=$(printf '%s\n' "${ixname[@]}" | sort)

# set_indexes NAME SET: the bench index names of a set, one a line
set_indexes() {
	local defs d c
	local -a list
	defs=$(awk -F'|' -v n="$1" -v s="$2" '$1 == n && $2 == s { print $3 }' "$sets")
	IFS=';' read -ra list <<<"$defs"
	for d in "${list[@]}"; do
		[ -n "$d" ] || continue
		c=$(q -c "SELECT bench_norm(\$q\$$d\$q\$)")
		echo "${ixname[$c]}"
	done
}
# set_size NAME SET: the set's size on disk, MB
set_size() {
	local ix names=''
	for ix in $(set_indexes "$1" "$2"); do names="$names,'$ix'"; done
	[ -n "$names" ] || { echo 0; return; }
	q -c "SELECT round(sum(pg_relation_size(c.oid)) / 1048576.0, 1) FROM pg_class c WHERE relname IN (${names#,})"
}

# --- timed rounds -------------------------------------------------------------------

times=$out/times.tsv
: >"$times"
# time_one NAME SET SQL ROUND: one EXPLAIN ANALYZE with every other bench
# index dropped inside a transaction that is rolled back.  The tables are
# locked first, in one order, so that the watcher's look at them cannot
# deadlock with the drops; a run that fails anyway is retried.
time_one() {
	local keep drop='' ix ms='' try
	keep=$(set_indexes "$1" "$2")
	for ix in $all_ix; do
		grep -qx "$ix" <<<"$keep" || drop="$drop, $ix"
	done
	for try in 1 2 3; do
		ms=$({
			echo "BEGIN;"
			echo "LOCK TABLE sessions, customers, movies IN ACCESS EXCLUSIVE MODE;"
			[ -z "$drop" ] || echo "DROP INDEX ${drop#, };"
			echo "EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF) $3;"
			echo "ROLLBACK;"
		} | psql -X -q -At -v ON_ERROR_STOP=1 | sed -n 's/.*"Execution Time": \([0-9.]*\).*/\1/p') || true
		[ -z "$ms" ] || break
		echo "($1 under $2 failed, try $try)"
	done
	[ -n "$ms" ] || die "no time for $1 under $2"
	[ "$4" -eq 0 ] || printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$4" "$ms" >>"$times"
}

for round in $(seq 0 "$rounds"); do
	say "round $round of $rounds$([ "$round" -gt 0 ] || echo ' (warm-up)')"
	while IFS='|' read -r name kind sql v1 v2; do
		lit=${sql//\$2/$v2}
		lit=${lit//\$1/$v1}
		mapfile -t names < <(awk -F'|' -v n="$name" '$1 == n { print $2 }' "$sets")
		k=${#names[@]}
		for i in $(seq 0 $((k - 1))); do
			s=${names[$(((i + round) % k))]}
			time_one "$name" "$s" "$lit" "$round" </dev/null
		done
		printf '%-22s' "$name"
		awk -F'\t' -v n="$name" -v r="$round" '$1 == n && $3 == r { printf " %s %.1f ms", $2, $4 }' "$times"
		echo
	done <"$stmts"
done

# --- results ------------------------------------------------------------------------------

# median_of NAME SET: median time in ms, empty when the set was not measured
median_of() {
	local v
	v=$(awk -F'\t' -v n="$1" -v s="$2" '$1 == n && $2 == s { print $4 }' "$times")
	[ -z "$v" ] || bench_median <<<"$v"
}
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "") print "–"; else if (v >= 1000) printf "%.2f s", v / 1000; else if (v >= 10) printf "%.0f ms", v; else printf "%.2f ms", v }'; }
# vs_dexter NONE1 NONE2 DERIVED: "3.1× faster", "17.0× / 2.3× faster", or –
vs_dexter() {
	if [ -n "$2" ]; then
		echo "$(ratio "$1" "$3") / $(ratio "$2" "$3") faster"
	elif [ -n "$1" ]; then
		echo "$(ratio "$1" "$3") faster"
	else
		echo "–"
	fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "–"; else printf "%.1f×", a / b }'; }

elapsed=$(awk -v s="$(( $(date +%s) - t_start ))" 'BEGIN { printf "%.1f", s / 60 }')
rel_out=${out#"$(cd "$here/.." && pwd)"/}
{
	echo "<!-- derive_bench begin: written by bench/derive_bench.sh, do not edit -->"
	echo "## Derived index sets (\`bingo_tune.derive()\`)"
	echo
	echo "Produced by \`bench/derive_bench.sh --scale $scale --rounds $rounds\` on $(date -u '+%Y-%m-%d %H:%M') UTC"
	echo "($elapsed min; PostgreSQL $pg_version; $n_sessions sessions, $n_movies movies, $n_customers customers;"
	echo "load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end)."
	echo "EXPLAIN ANALYZE execution time, median of $rounds rounds after a warm-up round; in each round"
	echo "the sets of a statement run one after the other (order rotated), each with every other"
	echo "set's indexes dropped in a transaction that is rolled back. Dexter's recommendations are"
	echo "built by hand (Dexter itself does not run): the session list gets nothing on Dexter's first"
	echo "pass and \`sessions (movie_id)\` on its second. Sizes are the sets' indexes on disk."
	echo
	echo "| statement | no index | Dexter | Dexter, 2nd pass | hand-picked | derived | derived vs hand-picked | derived vs Dexter | derived vs no index | derived set | size MB (hand / derived) |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
	while IFS='|' read -r name kind sql v1 v2; do
		none=$(median_of "$name" none)
		d1=$(median_of "$name" dexter1)
		d2=$(median_of "$name" dexter2)
		hand=$(median_of "$name" hand)
		der=$(median_of "$name" derived)
		defs=$(awk -F'|' -v n="$name" '$1 == n && $2 == "derived" { print $3 }' "$sets" | sed 's/;/`<br>`/g')
		size_h=$([ "$kind" = bingo ] && set_size "$name" hand || echo "–")
		size_d=$(set_size "$name" derived)
		vs_hand=$(ratio "$der" "$hand")
		if [ "$kind" = bingo ] && [ "$(set_indexes "$name" hand | sort)" = "$(set_indexes "$name" derived | sort)" ]; then
			vs_hand="same indexes ($vs_hand)"
		fi
		echo "| $name | $(fmt_ms "$none") | $(fmt_ms "$d1") | $(fmt_ms "$d2") | $(fmt_ms "$hand") | $(fmt_ms "$der") | $vs_hand | $(vs_dexter "$d1" "$d2" "$der") | $(ratio "$none" "$der") faster | \`$defs\` | $size_h / $size_d |"
	done <"$stmts"
	echo
	echo "\"derived vs hand-picked\" is the derived set's time over the hand-picked set's (goal: at most"
	echo "1.25×); \"same indexes\" when the two sets are the same indexes (\`INCLUDE\` columns in"
	echo "another order are the same index: it is built once), so that any difference is noise, which"
	echo "dominates times under a millisecond. \"derived vs Dexter\" and \"derived vs no index\": how many"
	echo "times faster the derived set is. Raw times: \`$rel_out/times.tsv\` (not committed);"
	echo "derive()'s full output per statement: \`$rel_out/derive_<statement>.txt\`."
	echo "<!-- derive_bench end -->"
} >"$out/section.md"

if [ -f "$results_md" ] && grep -q '^<!-- derive_bench begin' "$results_md"; then
	awk -v f="$out/section.md" '
		/^<!-- derive_bench begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
		/^<!-- derive_bench end/ { skip = 0; next }
		!skip { print }' "$results_md" >"$results_md.tmp"
	mv "$results_md.tmp" "$results_md"
else
	[ ! -f "$results_md" ] || echo >>"$results_md"
	cat "$out/section.md" >>"$results_md"
fi
say "done: $results_md"
cat "$out/section.md"
