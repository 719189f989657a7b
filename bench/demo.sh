#!/usr/bin/env bash
#
# bench/demo.sh: bingo_tune end to end on a throwaway server, narrated.
# "make demo" runs it; "make demo-clean" runs it with --clean.
#
# usage: bench/demo.sh [--scale N] [--keep] [--port P]
#        bench/demo.sh --clean
#
#   --scale N   size of the bingo dataset (default 1 = 5,000,000 sessions,
#               a few minutes; 0.1 for a quick look); or SCALE=N
#   --keep      leave the demo server running at the end (psql line shown);
#               or KEEP=1
#   --port P    the server's port (default 5470; or DEMO_PORT=P).  It
#               listens only on a unix socket in its own folder, so the port
#               only names that socket and cannot clash with another server.
#   --clean     stop the demo server if it runs and remove its folder
#
# What it does:
#   1. checks for what it needs: as root, installs what is missing with
#      apt-get (postgresql-15 postgresql-server-dev-15 libpq-dev make gcc
#      gnuplot-nox), then continues as the unprivileged user bingo_demo
#      (DEMO_USER) on a copy of the checkout it owns; as anyone else, says
#      which packages to install;
#   2. builds the extension and the tool and installs them into a private
#      copy of the server's installation (./tmp_install, no root needed);
#   3. starts a throwaway server in demo_run/ (DEMO_DIR) in the checkout,
#      preloading pg_stat_statements and bingo_tune, watcher naptime 2 s;
#   4. runs the pre-deploy tool, `bingo_tune prepare-db --no-apply -- <a
#      stand-in for bingo prepare_db that loads the dataset>`, skipping the
#      index builds prepare-db would normally do right after the load, so
#      that you can see what happens without them;
#   5. runs the session list the way the app does (20 s timeout) and
#      narrates: its time with no index, the watcher seeing it and building
#      its indexes (events and build progress), its time after;
#   6. the app's other endpoints: the same for the by-id and list statements;
#   7. `bingo_tune report` (the budget report), the before/after summary and
#      `bingo_tune check` (the deploy gate);
#   8. stops its server (unless --keep).  It never touches a server it did
#      not start: it stops only the one in its own folder, which it marks.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
prog=demo
die() { echo "$prog: $*" >&2; exit 1; }

scale=${SCALE:-1}
keep=${KEEP:-0}
port=${DEMO_PORT:-5470}
clean=0
inner=0
src=$root
while [ $# -gt 0 ]; do
	case "$1" in
		--scale) scale=$2; shift 2 ;;
		--scale=*) scale=${1#--scale=}; shift ;;
		--keep) keep=1; shift ;;
		--port) port=$2; shift 2 ;;
		--clean) clean=1; shift ;;
		--inner) inner=1; shift ;;		# internal: the unprivileged part
		--src) src=$2; shift 2 ;;		# internal: the checkout to build
		-h|--help) sed -n '3,39p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument \"$1\" (try --help)" ;;
	esac
done
[ -n "$scale" ] || scale=1
[[ $scale =~ ^([0-9]+([.][0-9]*)?|[.][0-9]+)$ ]] && awk -v s="$scale" 'BEGIN { exit !(s > 0) }' ||
	die "--scale must be a positive number, not \"$scale\""
[[ $port =~ ^[0-9]+$ ]] || die "--port must be a number"

demo_dir=${DEMO_DIR:-$root/demo_run}
demo_user=${DEMO_USER:-bingo_demo}
marker=.bingo_tune_demo
packages=(postgresql-15 postgresql-server-dev-15 libpq-dev make gcc gnuplot-nox)

# ---------------------------------------------------------------------------
# --clean: stop our server (only if the folder carries our marker), remove it
# ---------------------------------------------------------------------------
if [ $clean -eq 1 ]; then
	if [ ! -e "$demo_dir" ]; then
		echo "demo-clean: nothing to do ($demo_dir does not exist)"
		exit 0
	fi
	[ -e "$demo_dir/$marker" ] || die "$demo_dir has no $marker file: not a demo folder, left alone"
	if [ -f "$demo_dir/data/postmaster.pid" ]; then
		bindir=$(cat "$demo_dir/bindir" 2>/dev/null || pg_config --bindir)
		owner=$(stat -c %U "$demo_dir/data")
		echo "demo-clean: stopping the demo server in $demo_dir/data"
		if [ "$(id -u)" -eq 0 ]; then
			runuser -u "$owner" -- "$bindir/pg_ctl" -D "$demo_dir/data" -m fast -w stop || true
		else
			"$bindir/pg_ctl" -D "$demo_dir/data" -m fast -w stop || true
		fi
	fi
	if [ -f "$demo_dir/socket_dir" ]; then
		sd=$(cat "$demo_dir/socket_dir")
		case $sd in /tmp/bingo_tune_demo.*) rm -rf "$sd" ;; esac
	fi
	rm -rf "$demo_dir"
	echo "demo-clean: removed $demo_dir"
	exit 0
fi

# ---------------------------------------------------------------------------
# 1. what the demo needs
# ---------------------------------------------------------------------------
if [ $inner -eq 0 ]; then
	echo "bingo_tune demo: scale $scale, in $demo_dir"
	echo
	echo "== 1. packages"
	missing=()
	if command -v dpkg-query >/dev/null; then
		for p in "${packages[@]}"; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
		done
	else
		command -v pg_config >/dev/null || missing+=("PostgreSQL 15 server, its development files (pg_config, PGXS) and libpq")
		command -v make >/dev/null || missing+=(make)
		command -v gcc >/dev/null || missing+=(gcc)
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
			echo "installing: ${missing[*]}"
			echo "(Debian's postgresql-15 package creates and starts its own cluster, 15/main on port"
			echo " 5432; the demo does not use or touch it)"
			apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		else
			echo "missing: ${missing[*]}"
			echo "install them first, e.g. as root on Debian or Ubuntu (with the PGDG repository for 15):"
			echo "    apt-get install ${packages[*]}"
			echo "or run \"make demo\" as root, which does that and then runs the demo as an unprivileged user."
			exit 1
		fi
	else
		echo "all there: ${packages[*]}"
	fi
	pg_config --version >/dev/null 2>&1 || die "pg_config not found in PATH"

	if [ "$(id -u)" -eq 0 ]; then
		# initdb refuses root: continue as an unprivileged user, on a copy
		# of the checkout that it owns
		if ! id "$demo_user" >/dev/null 2>&1; then
			echo "creating the unprivileged user $demo_user (initdb refuses root)"
			useradd --system --user-group --no-create-home --home-dir "$demo_dir" \
				--shell /usr/sbin/nologin "$demo_user"
		fi
		if [ -e "$demo_dir" ] && [ ! -e "$demo_dir/$marker" ]; then
			die "$demo_dir exists and is not a demo folder; remove it or set DEMO_DIR"
		fi
		mkdir -p "$demo_dir"
		touch "$demo_dir/$marker"
		chown "$demo_user:" "$demo_dir" "$demo_dir/$marker"
		runuser -u "$demo_user" -- test -w "$demo_dir" -a -x "$demo_dir" ||
			die "the user $demo_user cannot reach $demo_dir (a parent folder is private); run with DEMO_DIR=/var/tmp/bingo_tune_demo (for make demo and make demo-clean alike)"
		echo "copying the checkout to $demo_dir/src for $demo_user"
		rm -rf "$demo_dir/src"
		mkdir "$demo_dir/src"
		(cd "$root" && tar -c --exclude=./demo_run --exclude=./tmp_install --exclude=./tmp_check \
			--exclude=./tmp_regress --exclude=./.git --exclude=./bench/out \
			--exclude="./${demo_dir#"$root"/}" .) | tar -x -C "$demo_dir/src"
		chown -R "$demo_user:" "$demo_dir/src"
		args=(--inner --src "$demo_dir/src" --scale "$scale" --port "$port")
		[ "$keep" = 1 ] && args+=(--keep)
		exec runuser -u "$demo_user" -- env HOME="$demo_dir" DEMO_DIR="$demo_dir" \
			PATH="$PATH" LANG=C.UTF-8 bash "$demo_dir/src/bench/demo.sh" "${args[@]}"
	fi
fi

# ---------------------------------------------------------------------------
# from here on: an unprivileged user
# ---------------------------------------------------------------------------
[ "$(id -u)" -ne 0 ] || die "internal: still root"
t_demo=$(date +%s.%N)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
hms() { awk -v a="$t_demo" -v b="$(now)" 'BEGIN { s = int(b - a); printf "%d:%02d", s / 60, s % 60 }'; }
step() { printf '\n== [%s] %s\n' "$(hms)" "$*"; }
say() { printf '   %s\n' "$*"; }

if [ -e "$demo_dir" ] && [ ! -e "$demo_dir/$marker" ]; then
	die "$demo_dir exists and is not a demo folder; remove it or set DEMO_DIR"
fi
mkdir -p "$demo_dir"
touch "$demo_dir/$marker"
demo_dir=$(cd "$demo_dir" && pwd)

# ---------------------------------------------------------------------------
# 2. build and install into ./tmp_install
# ---------------------------------------------------------------------------
step "2. build, and install into a private copy of the server ($src/tmp_install)"
t0=$(now)
if ! { make -s -C "$src" && make -s -C "$src" "$src/tmp_install/.done"; } >"$demo_dir/build.log" 2>&1; then
	tail -n 30 "$demo_dir/build.log"
	die "build failed (whole log: $demo_dir/build.log)"
fi
bindir=$src/tmp_install$(pg_config --bindir)
[ -x "$bindir/postgres" ] && [ -x "$bindir/bingo_tune" ] || die "no postgres or bingo_tune in $bindir"
echo "$bindir" >"$demo_dir/bindir"
export PATH="$bindir:$PATH"
say "built and installed in $(since "$t0") s ($(pg_config --version), log: $demo_dir/build.log)"

# ---------------------------------------------------------------------------
# 3. the throwaway server
# ---------------------------------------------------------------------------
data=$demo_dir/data
server_started=0
stop_server() {
	if [ $server_started -eq 1 ] && [ "$keep" != 1 ]; then
		pg_ctl -D "$data" -m fast -w stop >/dev/null 2>&1 || true
		server_started=0
	fi
}
on_exit() {
	local rc=$?
	[ -n "${ticker:-}" ] && kill "$ticker" 2>/dev/null
	[ -n "${app:-}" ] && kill "$app" 2>/dev/null
	stop_server
	if [ $rc -ne 0 ]; then
		echo
		echo "demo: stopped with an error (exit $rc); server log: $data/../server.log"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "3. a throwaway server in $data"
if [ -f "$data/postmaster.pid" ]; then
	say "a demo server from an earlier run is still there: stopping it"
	pg_ctl -D "$data" -m fast -w stop >/dev/null 2>&1 || true
fi
rm -rf "$data"
# the socket lives in the demo folder unless that path is too long for one
sockdir=$demo_dir
if [ ${#sockdir} -gt 90 ]; then
	sockdir=$(mktemp -d /tmp/bingo_tune_demo.XXXXXX)
	echo "$sockdir" >"$demo_dir/socket_dir"
fi
initdb -D "$data" -A trust -U postgres >"$demo_dir/initdb.log" 2>&1 ||
	{ cat "$demo_dir/initdb.log"; die "initdb failed"; }
cat >>"$data/postgresql.conf" <<CONF

# bingo_tune demo
listen_addresses = ''
unix_socket_directories = '$sockdir'
port = $port
shared_preload_libraries = 'pg_stat_statements,bingo_tune'
compute_query_id = on
bingo_tune.naptime = 2s
max_worker_processes = 16
shared_buffers = 1GB
maintenance_work_mem = 256MB
max_wal_size = 8GB
CONF
pg_ctl -D "$data" -l "$demo_dir/server.log" -w start >/dev/null ||
	{ tail -n 20 "$demo_dir/server.log"; die "the server did not start"; }
server_started=1
export PGHOST=$sockdir PGPORT=$port PGUSER=postgres PGDATABASE=bingo
unset PGSERVICE PGPASSWORD PGOPTIONS || true
createdb bingo
say "PostgreSQL $(psql -X -At -c 'SHOW server_version') on socket $sockdir, port $port"
say "shared_preload_libraries = 'pg_stat_statements,bingo_tune', bingo_tune.naptime = 2s (the default is 10s)"
say "connect: psql -h $sockdir -p $port -U postgres bingo"

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# ---------------------------------------------------------------------------
# 4. the pre-deploy tool and the stand-in prepare_db
# ---------------------------------------------------------------------------
step "4. the pre-deploy hook: bingo_tune prepare-db --fast-load --no-apply -- <stand-in prepare_db>"
say "bingo's own prepare_db loads 5M rows one INSERT at a time (10-30 minutes); the stand-in,"
say "bench/dataset.sh --scale $scale, loads the same shape in bulk.  --no-apply skips the index"
say "builds prepare-db normally runs right after the load, so that you can watch the app's"
say "first request meet no index, and the watcher fix it."
echo
# show the load's progress: while rows go into sessions, its size, inline,
# every 3 s
(
	last=0
	while sleep 3; do
		mb=$(q -c "SELECT pg_relation_size('public.sessions') / 1048576 FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active'
			  AND query ILIKE 'INSERT INTO sessions%' LIMIT 1" 2>/dev/null) || continue
		if [ "${mb:-0}" -gt "$last" ]; then
			printf ' [%s MB]' "$mb"
			last=$mb
		fi
	done
) &
ticker=$!
t0=$(now)
set +e
bingo_tune prepare-db --fast-load --no-apply -- bash "$src/bench/dataset.sh" --scale "$scale"
rc=$?
set -e
kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true; ticker=
[ $rc -eq 0 ] || die "bingo_tune prepare-db failed (exit $rc)"
echo
say "prepare-db done in $(since "$t0") s; indexes on the bingo tables now:" \
	"$(q -c "SELECT count(*) FROM pg_index WHERE indrelid IN ('sessions'::regclass, 'customers'::regclass, 'movies'::regclass)")"

# the budget report tracks a watched statement once its queryid can be
# computed, which needs the tables: register them now that they exist
q -c 'SELECT count(*) FROM bingo_tune.report()' >/dev/null

# ---------------------------------------------------------------------------
# the narrator: what the watcher did since, and builds in progress
# ---------------------------------------------------------------------------
last_event=$(q -c 'SELECT coalesce(max(id), 0) FROM bingo_tune.events')
last_progress=
narrate() {		# T0: print new events and build progress, times relative to T0
	local t0=$1 line
	while IFS='|' read -r id at action what dur detail; do
		[ -n "$id" ] || continue
		last_event=$id
		case $action in
			seen) line="watcher: saw statement $what${detail:+ ($detail)}" ;;
			started) line="watcher: CREATE INDEX CONCURRENTLY $what" ;;
			created|rebuilt) line="watcher: $what valid ($action in $dur)" ;;
			failed) line="watcher: building $what FAILED: $detail" ;;
			*) line="watcher: $action $what${detail:+: $detail}" ;;
		esac
		printf '   %6s s  %s\n' "$(awk -v a="$t0" -v b="$at" 'BEGIN { printf "+%.1f", b - a }')" "$line"
	done < <(q -F '|' -c "SELECT id, extract(epoch FROM at), action, coalesce(index_name, statement, ''),
			coalesce(round(extract(epoch FROM duration)::numeric, 1) || ' s', ''), coalesce(detail, '')
		FROM bingo_tune.events WHERE id > $last_event AND source = 'watcher' ORDER BY id")
	line=$(q -F '|' -c "SELECT coalesce(c.relname, '(new index)'), p.phase,
			CASE WHEN p.phase LIKE 'waiting%' THEN
					CASE WHEN p.lockers_total > 0 THEN (p.lockers_total - p.lockers_done) || ' of ' || p.lockers_total
						|| ' transaction(s) left' || coalesce(', pid ' || nullif(p.current_locker_pid, 0), '') ELSE '' END
				 WHEN p.blocks_total > 0 THEN round(100.0 * p.blocks_done / p.blocks_total) || ' % of blocks'
				 WHEN p.tuples_total > 0 THEN round(100.0 * p.tuples_done / p.tuples_total) || ' % of tuples'
				 ELSE '' END
		FROM pg_stat_progress_create_index p LEFT JOIN pg_class c ON c.oid = p.index_relid LIMIT 1")
	if [ -n "$line" ] && [ "$line" != "$last_progress" ]; then
		IFS='|' read -r idx phase pct <<<"$line"
		printf '   %6s s    building %s: %s%s\n' "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "+%.1f", b - a }')" \
			"$idx" "$phase" "${pct:+ ($pct)}"
	fi
	last_progress=$line
}
all_present() {	# STATEMENT...: all their indexes valid?
	local list
	list=$(printf "'%s'," "$@")
	[ "$(q -c "SELECT coalesce(bool_and(state = 'present'), false) FROM bingo_tune.advise()
		WHERE statements && ARRAY[${list%,}]")" = t ]
}
wait_present() {	# T0 STATEMENT...
	local t0=$1
	shift
	until all_present "$@"; do
		narrate "$t0"
		sleep 1
		awk -v a="$t0" -v b="$(now)" 'BEGIN { exit !(b - a > 1800) }' && die "indexes not valid after 30 minutes"
	done
	narrate "$t0"
}

stmt() { q -c "SELECT statement FROM bingo_tune.watch WHERE name = '$1'"; }
session_list=$(stmt session_list)
# run_app NAME: run the statement the way the app does (20 s timeout, rows
# sent to the client), print its time in ms or "timeout"
run_app() {
	local out
	out=$(printf '\\timing on\n\\o /dev/null\n%s;\n' "$1" |
		PGOPTIONS='-c statement_timeout=20s' psql -X 2>&1) || true
	if grep -q 'statement timeout' <<<"$out"; then
		echo timeout
	else
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -n 1
	fi
}
secs() { [ "$1" = timeout ] && echo "cut off by the app's 20 s timeout" || awk -v m="$1" 'BEGIN { printf "%.2f s", m / 1000 }'; }

# ---------------------------------------------------------------------------
# 5. the session list, as the app runs it
# ---------------------------------------------------------------------------
step "5. GET /api/session: the session list statement, as the app runs it (rows to the client, 20 s timeout)"
say "$(q -c "SELECT 'watcher: pid ' || pid || ', mode ' || mode || ', ' || passes || ' passes so far' FROM bingo_tune.watcher()")"
say "first request, no index (watcher events and build progress as they happen; a concurrent"
say "build first waits for every older transaction, here the request itself):"
tmp=$(mktemp -d)
t0=$(now)
( run_app "$session_list" >"$tmp/first" ) &
app=$!
while kill -0 "$app" 2>/dev/null; do narrate "$t0"; sleep 0.5; done
wait "$app" || true
app=
before=$(cat "$tmp/first")
if [ "$before" = timeout ]; then
	printf '   %6s s  the request: %s\n' "+$(since "$t0")" "$(secs "$before")"
else
	printf '   %6s s  the request returned after %s\n' "$(awk -v m="$before" 'BEGIN { printf "+%.1f", m / 1000 }')" "$(secs "$before")"
fi
wait_present "$t0" session_list
say "all of the session list's indexes valid $(since "$t0") s after the first request started"
say "the requests after that:"
after=()
for i in 1 2 3; do
	a=$(run_app "$session_list")
	after+=("$a")
	say "  request $i: $(secs "$a")"
done
a_med=$(printf '%s\n' "${after[@]}" | grep -v timeout | sort -g | sed -n 2p)
if [ "$before" != timeout ] && [ -n "$a_med" ]; then
	say "before $(secs "$before"), after $(secs "$a_med") (median): $(awk -v b="$before" -v a="$a_med" 'BEGIN { printf "%.0f", b / a }')x faster"
fi
q -c "EXPLAIN (COSTS OFF) $session_list" | sed 's/^/     /'

# ---------------------------------------------------------------------------
# 6. the other endpoints
# ---------------------------------------------------------------------------
step "6. the app's other endpoints: GET /api/session/{id}, /api/customer/{id}, /api/movie/{id} and the lists"
n_sessions=$(q -c 'SELECT max(id) FROM sessions')
n_customers=$(q -c 'SELECT max(id) FROM customers')
n_movies=$(q -c 'SELECT max(id) FROM movies')
# by_id LABEL SECONDS RATE: the three by-id statements at RATE requests/s
# each (pgbench, extended protocol: $1 is sent as a parameter, as the app does)
by_id() {
	local label=$1 secs=$2 rate=$3 name max out
	for name in session_by_id customer_by_id movie_by_id; do
		case $name in
			session_by_id) max=$n_sessions ;;
			customer_by_id) max=$n_customers ;;
			*) max=$n_movies ;;
		esac
		{ echo "\\set id random(1, $max)"; stmt "$name" | sed 's/\$1/:id/'; } >"$tmp/$name.sql"
		( pgbench -n -M extended -c 4 -j 2 -R "$rate" -T "$secs" -f "$tmp/$name.sql" >"$tmp/$name.$label" 2>&1 || true ) &
	done
	wait
	for name in session_by_id customer_by_id movie_by_id; do
		out=$tmp/$name.$label
		say "  $(printf '%-15s' "$name") $(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out") requests, latency average $(sed -n 's/^latency average = \(.*\)/\1/p' "$out")"
	done
}
say "$n_sessions sessions, $n_customers customers, $n_movies movies; by-id requests at 5/s each for 10 s:"
t0=$(now)
by_id before 10 5
say "and the customer and movie lists, once each:"
for name in customer_list movie_list; do
	say "  $(printf '%-15s' "$name") $(secs "$(run_app "$(stmt "$name")")")"
done
say "the watcher (it saw them in pg_stat_statements):"
wait_present "$t0" session_by_id customer_by_id movie_by_id customer_list movie_list
say "all indexes valid; by-id requests again, 20/s each for 10 s:"
by_id after 10 20

# ---------------------------------------------------------------------------
# 7. the budget report and the deploy gate
# ---------------------------------------------------------------------------
# cols FIELDS: keep these '|'-separated columns of an aligned table (the
# tool's), numbers with long fractions shortened to 4 significant digits
cols() {
	awk -v keep="$1" '
		function short(x,   out, num) {
			out = ""
			while (match(x, /[0-9]+\.[0-9][0-9][0-9][0-9]+/)) {
				num = substr(x, RSTART, RLENGTH)
				out = out substr(x, 1, RSTART - 1) sprintf("%.4g", num)
				x = substr(x, RSTART + RLENGTH)
			}
			return out x
		}
		BEGIN { n = split(keep, k, ",") }
		{ if ($0 ~ /^-+\+/) { sep = "+"; m = split($0, f, "+") } else { sep = "|"; m = split($0, f, "|") }
		  if (m < 2) { plain[NR] = $0; kind[NR] = ""; rows = NR; next }
		  for (i = 1; i <= n; i++) {
			  c[i] = (sep == "|") ? short(f[k[i]]) : ""
			  gsub(/^ +| +$/, "", c[i])
			  if (length(c[i]) > w[i]) w[i] = length(c[i])
		  }
		  for (i = 1; i <= n; i++) cell[NR, i] = c[i]
		  kind[NR] = sep; rows = NR }
		END {
			for (r = 1; r <= rows; r++) {
				if (kind[r] == "") { print "   " plain[r]; continue }
				out = ""
				for (i = 1; i <= n; i++) {
					v = cell[r, i]
					if (kind[r] == "+") { v = ""; for (j = 0; j < w[i] + 2; j++) v = v "-" }
					else if (v ~ /^-?[0-9.]+$/) v = sprintf(" %" w[i] "s ", v)
					else v = sprintf(" %-" w[i] "s ", v)
					out = out (i > 1 ? kind[r] : "") v
				}
				print "   " out
			}
		}'
}
step "7. the budget report: bingo_tune report (--wide shows every column)"
bingo_tune report || true
echo
say "what each build bought (SELECT summary FROM bingo_tune.before_after):"
q -c 'SELECT summary FROM bingo_tune.before_after ORDER BY name' | sed 's/^/     /'

step "8. the deploy gate: bingo_tune check (runs each statement 3 times now, against its budget)"
set +e
bingo_tune check --wide >"$tmp/check.txt" 2>&1
rc=$?
cols 1,3,4,5,7,9,10,11 <"$tmp/check.txt"
set -e
case $rc in
	0) say "exit 0: every statement within its budget; a deploy would go ahead" ;;
	6) say "exit 6: a statement is over budget; a deploy would stop here" ;;
	*) say "exit $rc" ;;
esac
rm -rf "$tmp"

step "done in $(hms) (scale $scale)"
if [ "$keep" = 1 ]; then
	say "the server keeps running: psql -h $sockdir -p $port -U postgres bingo"
	say "stop it and remove everything with: make demo-clean"
else
	stop_server
	say "server stopped; make demo-clean removes $demo_dir"
fi
