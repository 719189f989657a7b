#!/usr/bin/env bash
#
# bench/dataset.sh: create and fill a bingo-shaped database, as
# `bingo prepare_db` leaves it (no primary keys, no indexes on the data
# tables), in seconds instead of prepare_db's 10-30 minutes.
#
# usage: bench/dataset.sh [--scale N] [--drop] [CONNINFO]
#
#   --scale N   size factor, a positive number, fractions allowed (default 1).
#               Scale 1 = 5,000,000 sessions, 29,000 movies, 500,000
#               customers; every count is multiplied and is at least 1.
#   --drop      drop existing bingo tables (sessions, customers, movies,
#               schema_migrations) first; without it the script refuses to
#               touch a database that has any of them.
#   CONNINFO    a libpq connection string or URI; without it the usual PG*
#               environment variables (PGHOST, PGPORT, PGDATABASE, ...) apply.
#
# The tables go into the first schema of the connection's search_path.  The
# DDL is in bench/schema.sql (the only copy).  The data is deterministic: the
# same scale always gives the same rows.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")

usage() {
	sed -n '7,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

scale=1
drop=0
conninfo=
have_conninfo=0

while [ $# -gt 0 ]; do
	case "$1" in
		--scale)
			[ $# -ge 2 ] || die "--scale needs a value"
			scale=$2
			shift 2 ;;
		--scale=*)
			scale=${1#--scale=}
			shift ;;
		--drop)
			drop=1
			shift ;;
		-h|--help)
			usage
			exit 0 ;;
		-*)
			die "unknown option \"$1\" (try --help)" ;;
		*)
			[ $have_conninfo -eq 0 ] || die "more than one connection string given"
			conninfo=$1
			have_conninfo=1
			shift ;;
	esac
done

if ! [[ $scale =~ ^([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$ ]] ||
   ! awk -v s="$scale" 'BEGIN { exit !(s + 0 > 0) }'; then
	die "--scale must be a positive number, not \"$scale\""
fi

# count BASE: BASE * scale, rounded, at least 1
count() {
	awk -v b="$1" -v s="$scale" 'BEGIN { n = int(b * s + 0.5); if (n < 1) n = 1; printf "%d", n }'
}
n_sessions=$(count 5000000)
n_movies=$(count 29000)
n_customers=$(count 500000)

psql_cmd=(psql -X -q -v ON_ERROR_STOP=1
		  -v n_sessions="$n_sessions" -v n_movies="$n_movies"
		  -v n_customers="$n_customers")
if [ $have_conninfo -eq 1 ]; then
	psql_cmd+=(-d "$conninfo")
fi

now() { date +%s.%N; }

# step LABEL COMMAND...: run COMMAND, print LABEL and how long it took
total_start=$(now)
step() {
	local label=$1 t0 t1
	shift
	printf '%-52s' "$label ..."
	t0=$(now)
	"$@"
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%7.2f s\n", b - a }'
}

# sql SCRIPT: run SCRIPT (from stdin) in one transaction, output discarded
sql() {
	"${psql_cmd[@]}" --single-transaction -o /dev/null -f -
}

target=$("${psql_cmd[@]}" -At -c \
	"SELECT current_database() || ' (schema ' || coalesce(current_schema(), '') || ', server ' || current_setting('server_version') || ')'") ||
	die "cannot connect"
if [[ $target == *"(schema ,"* ]]; then
	die "no schema to create the tables in (check search_path)"
fi

echo "bingo dataset, scale $scale: $n_sessions sessions, $n_movies movies, $n_customers customers"
echo "database: $target"

existing=$("${psql_cmd[@]}" -At -c \
	"SELECT string_agg(n, ', ') FROM unnest(ARRAY['sessions', 'customers', 'movies', 'schema_migrations', 'sessions_id_seq']) AS n
	  WHERE to_regclass(quote_ident(current_schema()) || '.' || n) IS NOT NULL")
if [ -n "$existing" ]; then
	if [ $drop -eq 0 ]; then
		die "already there: $existing; use --drop to replace them"
	fi
	step "drop $existing" sql <<'EOF'
SET LOCAL client_min_messages = warning;
SELECT format('DROP TABLE IF EXISTS %1$s.sessions, %1$s.customers, %1$s.movies, %1$s.schema_migrations',
              quote_ident(current_schema())) \gexec
SELECT format('DROP SEQUENCE IF EXISTS %s.sessions_id_seq', quote_ident(current_schema())) \gexec
EOF
fi

step "create tables (bench/schema.sql)" \
	"${psql_cmd[@]}" --single-transaction -o /dev/null -f "$here/schema.sql"

# Every fill is one INSERT ... SELECT FROM generate_series in its own
# transaction.  setseed() makes random() repeatable; the INSERT's SELECT never
# runs in parallel, so the row order and values are the same on every run.
# The subqueries carry OFFSET 0 so each random() is evaluated once per row.

# Movies: ~380 per year over 1950-2025, from ~150 in 1950 rising to ~600 in
# 2025 (40 % spread evenly, 60 % weighted to recent years); titles drawn
# from a pool of 0.6 * n_movies, so many titles occur more than once (remakes
# and namesakes), which gives the (year, name) ordering real ties.
step "fill movies ($n_movies rows)" sql <<'EOF'
SELECT setseed(0.29);
INSERT INTO movies (id, name, year, duration)
SELECT g,
	   (ARRAY['Dark','Silent','Lost','Last','Golden','Broken','Hidden','Wild',
			  'Red','Blue','Black','White','Little','Big','Secret','Burning',
			  'Frozen','Endless','Crimson','Final','First','Lonely','Brave',
			  'Quiet','Electric','Midnight','Summer','Winter','Savage','Gentle',
			  'Iron','Glass','Stolen','Forgotten','Distant','Sweet','Bitter',
			  'Deadly','Crazy','Holy'])[1 + k % 40]
	   || ' ' ||
	   (ARRAY['River','Night','City','Road','Heart','Dream','Storm','Garden',
			  'Empire','Shadow','Island','Mountain','Kingdom','Journey',
			  'Promise','Secrets','Sky','Sea','Fire','Star','Witness',
			  'Stranger','Hunter','Dancer','Soldier','Machine','House',
			  'Station','Train','Letter','Mirror','Game','Voice','Season',
			  'Harbor','Desert','Forest','Bridge','Angel','Planet','Legend',
			  'Valley','Window','Horizon','Circus','Detective','Prince','Wolf',
			  'Ocean','Symphony'])[1 + (k / 40) % 50]
	   || CASE WHEN k >= 2000 THEN ' ' || (k / 2000 + 1) ELSE '' END,
	   year, duration
FROM (SELECT g,
			 floor(random() * greatest(1, round(:n_movies * 0.6)))::int AS k,
			 1950 + floor(75.999 * CASE WHEN u < 0.4 THEN u / 0.4
										  ELSE sqrt((u - 0.4) / 0.6) END)::int AS year,
			 75 + floor(random() * 106)::int AS duration
	  FROM (SELECT g, random() AS u
			FROM generate_series(1, :n_movies) AS g
			OFFSET 0) AS r
	  OFFSET 0) AS m;
EOF

# Customers: ids 1..n, unique; 60 first names x 750 surnames, so the
# (surname, name) ordering has ties broken by birthday and id.
step "fill customers ($n_customers rows)" sql <<'EOF'
SELECT setseed(0.5);
INSERT INTO customers (id, name, surname, birthday, email)
SELECT g, name, surname, birthday,
	   lower(name || '.' || surname) || g || '@example.com'
FROM (SELECT g,
			 (ARRAY['James','Mary','John','Patricia','Robert','Jennifer',
					'Michael','Linda','William','Elizabeth','David','Barbara',
					'Richard','Susan','Joseph','Jessica','Thomas','Sarah',
					'Charles','Karen','Daniel','Nancy','Matthew','Lisa',
					'Anthony','Betty','Mark','Margaret','Paul','Sandra',
					'Steven','Ashley','Andrew','Emily','Kenneth','Donna',
					'Joshua','Michelle','Kevin','Carol','Brian','Amanda',
					'George','Melissa','Edward','Deborah','Ivan','Olga',
					'Sergey','Anna','Dmitry','Elena','Pierre','Marie','Hans',
					'Greta','Luca','Giulia','Kenji','Yuki'])[1 + floor(random() * 60)::int] AS name,
			 (ARRAY['And','Bar','Bel','Car','Dal','Ed','Fer','Gar','Hal',
					'Ing','Jo','Kel','Lar','Mar','Nor','Ol','Pet','Quin',
					'Ros','Sand','Tor','Ul','Val','Wil','Yor','Zim','Har',
					'Mor','Bran','Stan'])[1 + floor(random() * 30)::int]
			 ||
			 (ARRAY['son','sen','berg','man','ton','ley','ford','wood',
					'stein','ski','ov','er','ing','well','field','more',
					'ridge','dale','land','hurst','by','croft','ham','worth',
					'ers'])[1 + floor(random() * 25)::int] AS surname,
			 date '1940-01-01' + floor(random() * 23741)::int AS birthday
	  FROM generate_series(1, :n_customers) AS g
	  OFFSET 0) AS c;
EOF

# Sessions: ids 1..n in insertion order, like prepare_db's nextval(); the
# sequence is moved past them.  Customer and movie ids are uniform over the
# existing ids; start times spread over 2021-2024, to the second.
step "fill sessions ($n_sessions rows)" sql <<'EOF'
SELECT setseed(0.77);
INSERT INTO sessions (id, start_time, customer_id, movie_id)
SELECT g,
	   timestamp '2021-01-01' + floor(random() * 126230400) * interval '1 second',
	   1 + floor(random() * :n_customers)::int,
	   1 + floor(random() * :n_movies)::int
FROM generate_series(1, :n_sessions) AS g;
SELECT setval('sessions_id_seq', :n_sessions);
EOF

# VACUUM, not only ANALYZE: a freshly loaded table has no page marked
# all-visible in its visibility map, so an index-only scan would still fetch
# every heap tuple (and the planner, seeing relallvisible = 0, costs it that
# way and may not pick it).  VACUUM sets the all-visible bits (and the hint
# bits) once, now, instead of whenever autovacuum gets to it; ANALYZE gives
# the planner its statistics.
for t in movies customers sessions schema_migrations; do
	step "vacuum analyze $t" "${psql_cmd[@]}" -c "VACUUM (ANALYZE) $t"
done

echo
"${psql_cmd[@]}" -P footer=off -c \
	"SELECT c.relname AS \"table\", c.reltuples::bigint AS \"rows\",
			pg_size_pretty(pg_table_size(c.oid)) AS size,
			c.relallvisible = c.relpages AS all_visible
	 FROM pg_class c
	 WHERE c.oid IN ('sessions'::regclass, 'customers'::regclass, 'movies'::regclass)
	 ORDER BY pg_table_size(c.oid) DESC"
awk -v a="$total_start" -v b="$(now)" 'BEGIN { printf "total %.1f s\n", b - a }'
