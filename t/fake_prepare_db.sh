#!/usr/bin/env bash
#
# t/fake_prepare_db.sh: a stand-in for `bingo prepare_db`, for the tests
# of the bingo_tune tool and for measuring `prepare-db --fast-load`.
#
# usage: t/fake_prepare_db.sh [OPTION]... [CONNINFO]
#
#   --sessions N    rows to load into sessions (default 2000); movies get
#                   N/172 and customers N/10 (at least 1 each), the ratios of
#                   bingo's 5,000,000 / 29,000 / 500,000
#   --pause SECS    sleep after creating the tables, before loading
#   --fail CODE     load, then exit with CODE (a prepare_db that dies late)
#   --empty         create the tables, load nothing, exit 0
#   CONNINFO        a libpq connection string or URI; without it the PG*
#                   environment variables apply
#
# Like prepare_db it (re)creates bingo's tables (bench/schema.sql: no keys,
# no indexes) and fills them one row at a time, each INSERT a prepared
# statement in its own transaction (pgbench -M prepared, one INSERT per
# pgbench transaction, one client), so the load waits for a WAL flush per
# row exactly as prepare_db does.  It prints rows/s per table; the last line
# is machine-readable: "rows_per_second <sessions rows/s>".

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")

die() {
	echo "$prog: $*" >&2
	exit 1
}

sessions=2000
pause=0
fail=
empty=0
conninfo=
have_conninfo=0

while [ $# -gt 0 ]; do
	case "$1" in
		--sessions) [ $# -ge 2 ] || die "--sessions needs a value"; sessions=$2; shift 2 ;;
		--pause) [ $# -ge 2 ] || die "--pause needs a value"; pause=$2; shift 2 ;;
		--fail) [ $# -ge 2 ] || die "--fail needs a value"; fail=$2; shift 2 ;;
		--empty) empty=1; shift ;;
		-h|--help) sed -n '7,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		-*) die "unknown option \"$1\" (try --help)" ;;
		*)
			[ $have_conninfo -eq 0 ] || die "more than one connection string given"
			conninfo=$1; have_conninfo=1; shift ;;
	esac
done
[[ $sessions =~ ^[1-9][0-9]*$ ]] || die "--sessions must be a positive integer, not \"$sessions\""
[[ $pause =~ ^[0-9]+$ ]] || die "--pause must be a number of seconds, not \"$pause\""
[ -z "$fail" ] || [[ $fail =~ ^[0-9]+$ ]] || die "--fail must be an exit status, not \"$fail\""

movies=$(( sessions / 172 > 0 ? sessions / 172 : 1 ))
customers=$(( sessions / 10 > 0 ? sessions / 10 : 1 ))

# pgbench and psql both take a conninfo string or URI as the database name
db=()
[ $have_conninfo -eq 0 ] || db=("$conninfo")
psql_cmd=(psql -X -q -v ON_ERROR_STOP=1 ${db[@]+-d "${db[@]}"})

echo "$prog: creating bingo's tables (pid $$, synchronous_commit" \
	"$("${psql_cmd[@]}" -At -c 'SHOW synchronous_commit'))"
"${psql_cmd[@]}" --single-transaction -o /dev/null <<SQL
SET client_min_messages TO warning;
DROP TABLE IF EXISTS sessions, customers, movies, schema_migrations;
DROP SEQUENCE IF EXISTS sessions_id_seq, fake_prepare_movie_id, fake_prepare_customer_id;
\i $here/../bench/schema.sql
CREATE SEQUENCE fake_prepare_movie_id;
CREATE SEQUENCE fake_prepare_customer_id;
SQL

if [ "$pause" -gt 0 ]; then
	echo "$prog: pausing $pause s before loading"
	# stop at once on SIGTERM/SIGINT, taking the sleep along (a plain
	# foreground sleep would outlive us and hold our stdout open)
	sleep "$pause" &
	sleeper=$!
	trap 'kill $sleeper 2>/dev/null; exit 143' TERM
	trap 'kill $sleeper 2>/dev/null; exit 130' INT
	wait $sleeper
	trap - TERM INT
fi

if [ $empty -eq 1 ]; then
	echo "$prog: --empty: loading nothing"
	exit 0
fi

script=$(mktemp)
trap 'rm -f "$script"' EXIT

# load TABLE ROWS SQL: run SQL ROWS times, one prepared INSERT per
# transaction; prints and remembers rows/s (pgbench's tps)
rate=0
load() {
	local table=$1 rows=$2 out
	printf '%s\n' "$3" > "$script"
	out=$(pgbench -n -M prepared -c 1 -j 1 -t "$rows" -f "$script" "${db[@]}" 2>&1) ||
		{ echo "$out" >&2; die "loading $table failed"; }
	rate=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*without initial.*/\1/p')
	printf '%s: %-10s %8d rows, %9.0f rows/s\n' "$prog" "$table" "$rows" "$rate"
}

load movies "$movies" "\set year random(1950, 2025)
\set duration random(75, 180)
INSERT INTO movies (id, name, year, duration) VALUES (nextval('fake_prepare_movie_id'), 'Movie ' || :year::integer || '-' || :duration::integer, :year, :duration);"

load customers "$customers" "\set day random(0, 23740)
INSERT INTO customers (id, name, surname, birthday, email) SELECT n, 'Name' || n % 60, 'Surname' || n % 750, date '1940-01-01' + :day::integer, 'c' || n || '@example.com' FROM nextval('fake_prepare_customer_id') AS n;"

load sessions "$sessions" "\set customer random(1, $customers)
\set movie random(1, $movies)
\set second random(0, 126230399)
INSERT INTO sessions (start_time, customer_id, movie_id) VALUES (timestamp '2021-01-01' + :second::integer * interval '1 second', :customer, :movie);"
sessions_rate=$rate

"${psql_cmd[@]}" -c "DROP SEQUENCE fake_prepare_movie_id, fake_prepare_customer_id"

if [ -n "$fail" ]; then
	echo "$prog: --fail: exiting with status $fail" >&2
	exit "$fail"
fi
echo "rows_per_second $sessions_rate"
