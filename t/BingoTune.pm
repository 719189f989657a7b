# t/BingoTune.pm: what the TAP tests of bingo_tune share.
#
# A server with bingo_tune preloaded, the bingo-shaped data the tests
# load, builds held in their wait for older snapshots, the watchers and
# their passes, SQL run as a given role, report() lookups, and the tool
# run in the foreground or the background, with prepare-db's traces.  The tests find this module through
# the "-I $(srcdir)/t" the Makefile passes to prove.

package BingoTune;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(
  preloaded_node
  $movies_sql $movie_list bingo_data $bingo_dataset $session_list items_sql
  hold_snapshot start_apply waiting_builds
  passes wait_passes wait_present watchers wait_watchers
  sql_as psql_as report
  tool tool_start tool_finish wait_output pg_env
  $prepare_lock_key newdb last_run lock_holders db_sync_commit
);

# --- the server -----------------------------------------------------------

# A new node with pg_stat_statements and bingo_tune preloaded and query ids
# on, started.  Options: conf (more postgresql.conf lines), streaming (init
# it so that standbys can follow it), extension (CREATE EXTENSION bingo_tune
# in postgres; the default, 0 leaves that to the test).
sub preloaded_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init($opts{streaming} ? (allows_streaming => 1) : ());
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,bingo_tune'
compute_query_id = on
max_worker_processes = 16
} . ($opts{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION bingo_tune CASCADE')
	  if $opts{extension} // 1;
	return $node;
}

# --- data and statements --------------------------------------------------

# bingo's movies table, filled: movie_list and movie_by_id have their
# tables, and a concurrent build on it takes long enough to be seen.
our $movies_sql = q{
CREATE TABLE movies (id integer, name text, year integer, duration integer);
INSERT INTO movies SELECT g, 'movie ' || g % 700, 1950 + g % 75, 90 FROM generate_series(1, 29000) g;
};

# bingo's movie_list statement, as the app sends it
our $movie_list = q{
SELECT movies.id, movies.name, movies.year, movies.duration FROM movies
ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000};

# bingo's three tables, filled as prepare_db leaves them: no indexes.  The
# sizes (movie_names, names, surnames: distinct values; customers,
# sessions: rows) default to the small bingo-shaped dataset below.
sub bingo_data
{
	my %n = (movie_names => 700, names => 500, surnames => 900,
		customers => 20000, sessions => 100000, @_);
	return qq{
CREATE TABLE sessions (id bigint, start_time timestamp NOT NULL,
	customer_id integer NOT NULL, movie_id integer NOT NULL);
CREATE TABLE customers (id integer, name text, surname text, birthday date, email text);
CREATE TABLE movies (id integer, name text, year integer, duration integer);
INSERT INTO movies SELECT g, 'movie ' || g % $n{movie_names}, 1950 + g % 75, 90 + g % 60
	FROM generate_series(1, 2000) g;
INSERT INTO customers SELECT g, 'name ' || g % $n{names}, 'surname ' || g % $n{surnames},
	date '1950-01-01' + g % 20000, 'c' || g || '\@example.com'
	FROM generate_series(1, $n{customers}) g;
INSERT INTO sessions SELECT g, timestamp '2020-01-01' + g * interval '1 minute',
	1 + g % $n{customers}, 1 + g % 2000
	FROM generate_series(1, $n{sessions}) g;
};
}

# A small bingo-shaped dataset, analysed.
our $bingo_dataset = bingo_data() . "ANALYZE;\n";

# bingo's session_list statement, as the app sends it
our $session_list = q{
SELECT sessions.id, sessions.start_time, customers.id, customers.name,
       customers.surname, customers.birthday, customers.email, movies.id,
       movies.name, movies.year, movies.duration
FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id
              INNER JOIN movies ON sessions.movie_id = movies.id
ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC
LIMIT 100000};

# A table bt_items of n rows with a payload of w bytes each, analysed.
sub items_sql
{
	my ($n, $w) = @_;
	return qq{
CREATE TABLE bt_items (id integer, payload text);
INSERT INTO bt_items SELECT g, repeat('x', $w) FROM generate_series(1, $n) g;
ANALYZE bt_items;
};
}

# --- builds held in their wait for older snapshots ------------------------

# A session in postgres that holds a REPEATABLE READ snapshot (and no lock):
# every concurrent build waits for it until it commits.
sub hold_snapshot
{
	my ($node, %psql_opts) = @_;
	my $old = $node->background_psql('postgres', %psql_opts);
	$old->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	$old->query_safe('SELECT 1');
	return $old;
}

# CALL bingo_tune.apply(statement) in a background session of postgres;
# returns the session, which prints "$done" once the CALL has returned.
sub start_apply
{
	my ($node, $statement, $done) = @_;
	$done //= 'apply-done';
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_until(qr/started/, qq{
\\echo started
CALL bingo_tune.apply('$statement');
\\echo $done
});
	return $caller;
}

# Wait until n builds wait for older snapshots; false after the timeout.
sub waiting_builds
{
	my ($node, $n) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT count(*) = $n FROM pg_stat_progress_create_index
		WHERE phase = 'waiting for old snapshots'});
}

# --- the watcher ----------------------------------------------------------

# The passes the watcher of the database has made (0 without a watcher).
sub passes
{
	my ($node, $db) = @_;
	return $node->safe_psql($db // 'postgres',
		'SELECT coalesce(passes, 0) FROM bingo_tune.watcher()');
}

# Wait until the watcher of the database has made n more passes.
sub wait_passes
{
	my ($node, $db, $n) = @_;
	my $target = passes($node, $db) + $n;
	return $node->poll_query_until($db,
		"SELECT coalesce(passes, 0) >= $target FROM bingo_tune.watcher()");
}

# How many watchers run in the database.
sub watchers
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'bingo_tune watcher' AND datname = '$db'});
}

# Wait until n watchers run in the database; false after the timeout.
sub wait_watchers
{
	my ($node, $db, $n) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT count(*) = $n FROM pg_stat_activity
		WHERE backend_type = 'bingo_tune watcher' AND datname = '$db'});
}

# Wait until every index a watched statement needs is present in the
# database; false after the timeout.
sub wait_present
{
	my ($node, $statement, $db) = @_;
	return $node->poll_query_until($db // 'postgres', qq{
		SELECT bool_and(state = 'present') FROM bingo_tune.advise()
		WHERE '$statement' = ANY (statements)});
}

# --- SQL as a role --------------------------------------------------------

# Run SQL in postgres as a role (undef: the bootstrap superuser); dies on
# an error, returns stdout.
sub sql_as
{
	my ($node, $user, $sql) = @_;
	return $node->safe_psql('postgres', $sql,
		extra_params => [ defined $user ? ('-U', $user) : () ]);
}

# The same, for a statement that may fail or whose notices matter:
# returns (exit code, stdout, stderr).
sub psql_as
{
	my ($node, $user, $sql) = @_;
	my ($out, $err);
	my $ret = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => [ defined $user ? ('-U', $user) : () ]);
	return ($ret, $out, $err);
}

# Columns of a statement's row of bingo_tune.report(), read as a role.
sub report
{
	my ($node, $name, $cols, $user) = @_;
	return sql_as($node, $user,
		"SELECT $cols FROM bingo_tune.report() WHERE name = '$name'");
}

# --- the tool -------------------------------------------------------------

# Run the tool to the end; returns (exit code, stdout, stderr).
sub tool
{
	my @args = @_;
	my ($out, $err) = ('', '');
	print "# Running: bingo_tune @args\n";
	IPC::Run::run([ 'bingo_tune', @args ], '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	print "# exit $rc\n# stdout: $out\n# stderr: $err\n";
	return ($rc, $out, $err);
}

# Start the tool in the background; returns the harness and output refs.
sub tool_start
{
	my @args = @_;
	my ($out, $err) = ('', '');
	print "# Starting: bingo_tune @args\n";
	my $h = IPC::Run::start([ 'bingo_tune', @args ], '>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# Wait for a background tool; returns its exit code (128+N if signalled).
sub tool_finish
{
	my ($h, $out, $err) = @_;
	$h->finish;
	my $status = $h->full_result(0);
	my $rc = ($status & 127) ? 128 + ($status & 127) : $status >> 8;
	print "# exit $rc\n# stdout: $$out\n# stderr: $$err\n";
	return $rc;
}

# Wait until a background tool's output matches, or fail the test after
# the timeout.
sub wait_output
{
	my ($h, $ref, $re, $what) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$h->pump_nb;
		return 1 if $$ref =~ $re;
		usleep(100_000);
	}
	fail("timed out waiting for $what");
	return 0;
}

# The environment that points the tool at a node's postgres database, for
# a test of the tool without a CONNINFO:
#	local %ENV = (%ENV, pg_env($node));
sub pg_env
{
	my ($node) = @_;
	return (PGHOST => $node->host, PGPORT => $node->port, PGDATABASE => 'postgres');
}

# --- prepare-db's traces --------------------------------------------------

our $prepare_lock_key = '27700470620291074';    # BT_LOCK_PREPARE in tools/common.h

# A new database; returns its connection string.
sub newdb
{
	my ($node, $db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	return $node->connstr($db);
}

# The newest run's outcome and exit status ('running' when it has no end).
sub last_run
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		"SELECT coalesce(outcome, 'running') || ' ' || coalesce(exit_status::text, '-')
		   FROM bingo_tune.prepared ORDER BY started_at DESC LIMIT 1");
}

# How many sessions hold the prepare lock.
sub lock_holders
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		   AND classid = (${prepare_lock_key}::bigint >> 32)::oid
		   AND objid = (${prepare_lock_key}::bigint & 4294967295)::oid");
}

# The database's own synchronous_commit setting ('' when it has none).
sub db_sync_commit
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(c, ','), '') FROM pg_db_role_setting s, unnest(s.setconfig) c
		  WHERE s.setrole = 0 AND c LIKE 'synchronous_commit=%'
		    AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = '$db')");
}

1;
