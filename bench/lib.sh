# bench/lib.sh: start and stop a throwaway PostgreSQL server for the
# benchmark scripts.  Sourced, not run.
#
# The server lives in a folder of its own (data, socket and log), listens
# only on its unix socket, and preloads pg_stat_statements and bingo_tune.
# Binaries come from $PG_BINDIR, else from ./tmp_install (left by
# "make test", which holds this build), else from pg_config --bindir (after
# "sudo make install").  Run as an ordinary user: initdb refuses root.

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
	elif [ -x "$bench_root/tmp_install$(pg_config --bindir)/postgres" ]; then
		echo "$bench_root/tmp_install$(pg_config --bindir)"
	else
		pg_config --bindir
	fi
}

# bench_start DIR [extra postgresql.conf lines...]
# Starts a fresh server in DIR (wiped first) and exports PGHOST, PGPORT,
# PGDATABASE and PATH so that psql and pgbench talk to it.
bench_start() {
	local dir=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		echo "bench: run as an ordinary user (initdb refuses root)" >&2
		return 1
	fi
	local bindir
	bindir=$(bench_bindir)
	export PATH="$bindir:$PATH"
	rm -rf "$dir"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	initdb -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = ${BENCH_PORT:-5488}
shared_preload_libraries = 'pg_stat_statements,bingo_tune'
compute_query_id = on
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
max_worker_processes = 16
CONF
	local line
	for line in "$@"; do
		echo "$line" >>"$dir/data/postgresql.conf"
	done
	pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
	export PGHOST=$dir PGPORT=${BENCH_PORT:-5488} PGUSER=postgres PGDATABASE=postgres
	BENCH_DIR=$dir
}

bench_stop() {
	[ -n "${BENCH_DIR:-}" ] && pg_ctl -D "$BENCH_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

# median of the numbers on stdin, one per line
bench_median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_time_ms SQL: run SQL once in a fresh session, print its execution
# time in ms (from EXPLAIN ANALYZE, so no rows travel to the client)
bench_time_ms() {
	psql -X -At -c "EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF) $1" |
		sed -n 's/.*"Execution Time": \([0-9.]*\).*/\1/p'
}
