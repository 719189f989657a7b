#!/usr/bin/env bash
#
# bench/watcher_bench.sh: what the watcher does for bingo, measured on a
# private server with the full-size dataset.
#
# usage: bench/watcher_bench.sh [--scale N] [--port P] [--dir D] [--bindir B]
#                               [--idle-cycles N] [--skip-idle] [--skip-build]
#
#   --scale N        dataset size (bench/dataset.sh; 1 = 5M sessions; default 1)
#   --port P         port of the private server (default 5497)
#   --dir D          its data directory, recreated (default /tmp/bt_watcher_bench)
#   --bindir B       server binaries with bingo_tune installed (default: the
#                    tree's tmp_install from "make test", else pg_config's)
#   --idle-cycles N  idle passes to measure (default 100)
#
# Run as an unprivileged user (initdb refuses root).  Two measurements:
#
# 1. Build: bingo_tune.naptime = 10 s, mode auto, no indexes.  The session
#    list statement is run twice with the watcher off to warm the cache (the
#    second run is "before"), pg_stat_statements is reset, the watcher is
#    switched to auto, and the statement is run once more, as the app would.
#    Reported: the time from the start of that run to all of the session
#    list's indexes valid (advise() says present), and the statement's time
#    before and after (median of 3 runs), side by side.
# 2. Idle cost: naptime 1 s, nothing running; CPU time (utime + stime from
#    /proc/PID/stat) and memory (VmRSS, RssAnon) of the watcher and the
#    launcher over --idle-cycles passes of the watcher.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=$(basename "$0")
die() { echo "$prog: $*" >&2; exit 1; }

scale=1
port=5497
dir=/tmp/bt_watcher_bench
bindir=
idle_cycles=100
skip_idle=0
skip_build=0

while [ $# -gt 0 ]; do
	case "$1" in
		--scale) scale=$2; shift 2 ;;
		--port) port=$2; shift 2 ;;
		--dir) dir=$2; shift 2 ;;
		--bindir) bindir=$2; shift 2 ;;
		--idle-cycles) idle_cycles=$2; shift 2 ;;
		--skip-idle) skip_idle=1; shift ;;
		--skip-build) skip_build=1; shift ;;
		-h|--help) sed -n '7,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument \"$1\" (try --help)" ;;
	esac
done

[ "$(id -u)" -ne 0 ] || die "run as an unprivileged user (initdb refuses root)"
if [ -z "$bindir" ]; then
	for b in "$here"/../tmp_install/usr/lib/postgresql/*/bin; do
		[ -x "$b/postgres" ] && bindir=$b
	done
	[ -n "$bindir" ] || bindir=$(pg_config --bindir)
fi
[ -x "$bindir/postgres" ] || die "no postgres in $bindir"
export PATH="$bindir:$PATH"
export PGHOST=/tmp PGPORT=$port PGDATABASE=postgres
unset PGUSER PGSERVICE || true

psql_q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }

session_list='SELECT sessions.id, sessions.start_time, customers.id, customers.name, customers.surname, customers.birthday, customers.email, movies.id, movies.name, movies.year, movies.duration FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id INNER JOIN movies ON sessions.movie_id = movies.id ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC LIMIT 100000'

# run_ms: run the session list once, print its time in ms (psql's \timing:
# execution plus transfer of the 100,000 rows, output discarded)
run_ms() {
	psql -X -v ON_ERROR_STOP=1 -f - <<EOF | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
\\timing on
\\o /dev/null
$session_list;
EOF
}

median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

stop_server() {
	pg_ctl -D "$dir" -m fast stop >/dev/null 2>&1 || true
}
trap stop_server EXIT

echo "== server: $bindir, port $port, data $dir"
stop_server
rm -rf "$dir"
initdb -D "$dir" -A trust -N >/dev/null
cat >> "$dir/postgresql.conf" <<EOF
port = $port
unix_socket_directories = '/tmp'
listen_addresses = ''
shared_preload_libraries = 'pg_stat_statements,bingo_tune'
compute_query_id = on
max_worker_processes = 16
shared_buffers = 2GB
maintenance_work_mem = 512MB
synchronous_commit = off
bingo_tune.naptime = 10
bingo_tune.mode = off
log_min_messages = log
EOF
pg_ctl -D "$dir" -l "$dir/server.log" -w start >/dev/null
psql_q -c 'CREATE EXTENSION bingo_tune CASCADE'

watcher_pid() {
	psql_q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'bingo_tune watcher' AND datname = 'postgres'"
}

if [ $skip_build -eq 0 ]; then
	echo "== dataset, scale $scale"
	"$here/dataset.sh" --scale "$scale" >/dev/null
	psql_q -c 'VACUUM ANALYZE'

	echo "== before: watcher off, two warm-up runs"
	b1=$(run_ms); b2=$(run_ms)
	echo "   runs: $b1 ms, $b2 ms"
	psql_q -c 'SELECT pg_stat_statements_reset()' >/dev/null
	psql_q -c "ALTER SYSTEM SET bingo_tune.mode = 'auto'" -c 'SELECT pg_reload_conf()' >/dev/null
	# wait for one pass in auto mode
	p0=$(psql_q -c 'SELECT passes FROM bingo_tune.watcher()')
	until [ "$(psql_q -c "SELECT passes > $p0 FROM bingo_tune.watcher()")" = t ]; do sleep 0.2; done

	echo "== first run with the watcher on (naptime 10 s)"
	t0=$(now)
	b3=$(run_ms)
	echo "   first run: $b3 ms"
	until [ "$(psql_q -c "SELECT bool_and(state = 'present') FROM bingo_tune.advise() WHERE 'session_list' = ANY (statements)")" = t ]; do
		sleep 0.2
		awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 600) }' && die "indexes not valid after 600 s"
	done
	t1=$(now)
	psql_q -c "SELECT '   ' || action || ' ' || coalesce(index_name, '') || coalesce(' in ' || duration, '') || ' at ' || to_char(at, 'HH24:MI:SS.MS')
	           FROM bingo_tune.events WHERE source = 'watcher' ORDER BY id"
	a1=$(run_ms); a2=$(run_ms); a3=$(run_ms)
	before=$(median3 "$b2" "$b3" "$b1")
	after=$(median3 "$a1" "$a2" "$a3")
	echo
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "first session_list run -> all its indexes valid: %.1f s\n", b - a }'
	echo "session_list before (no indexes):  runs $b1, $b2, $b3 ms; median $before ms"
	echo "session_list after (indexes):      runs $a1, $a2, $a3 ms; median $after ms"
	awk -v b="$before" -v a="$after" 'BEGIN { printf "speed-up: %.1fx\n", b / a }'
	psql_q -c "EXPLAIN (COSTS OFF) $session_list" | sed 's/^/   /'
fi

if [ $skip_idle -eq 0 ]; then
	echo
	echo "== idle cost: naptime 1 s, $idle_cycles passes, nothing running"
	psql_q -c "ALTER SYSTEM SET bingo_tune.naptime = 1" -c "ALTER SYSTEM SET bingo_tune.mode = 'auto'" \
		-c 'SELECT pg_reload_conf()' >/dev/null
	sleep 2
	wpid=$(watcher_pid)
	lpid=$(psql_q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'bingo_tune launcher'")
	[ -n "$wpid" ] && [ -n "$lpid" ] || die "no watcher or launcher"
	tck=$(getconf CLK_TCK)
	cpu() { awk -v t="$tck" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
	mem() { awk '/^(VmRSS|RssAnon):/ { printf "%s %s kB  ", $1, $2 }' "/proc/$1/status"; }
	p0=$(psql_q -c 'SELECT passes FROM bingo_tune.watcher()')
	w0=$(cpu "$wpid"); l0=$(cpu "$lpid"); m0=$(mem "$wpid"); s0=$(now)
	until [ "$(psql_q -c "SELECT passes >= $p0 + $idle_cycles FROM bingo_tune.watcher()")" = t ]; do sleep 1; done
	w1=$(cpu "$wpid"); l1=$(cpu "$lpid"); m1=$(mem "$wpid"); s1=$(now)
	[ "$(watcher_pid)" = "$wpid" ] || die "the watcher changed during the measurement"
	awk -v a="$w0" -v b="$w1" -v n="$idle_cycles" -v s="$s0" -v e="$s1" \
		'BEGIN { printf "watcher CPU over %d passes (%.0f s): %.3f s (%.2f ms per pass, %.3f %% of one core)\n", n, e - s, b - a, (b - a) * 1000 / n, (b - a) * 100 / (e - s) }'
	awk -v a="$l0" -v b="$l1" 'BEGIN { printf "launcher CPU over the same time: %.3f s\n", b - a }'
	echo "watcher memory before: $m0"
	echo "watcher memory after:  $m1"
fi
