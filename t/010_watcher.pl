# The watchers: with the module preloaded and the extension created, a
# watcher sees the session list statement run (completed, or cancelled by
# statement_timeout while it runs) and builds its indexes; advise mode only
# recommends, off does nothing; dropped and recreated tables are followed;
# one watcher per database with the extension, none elsewhere; DROP
# EXTENSION and DROP DATABASE are not held up; a restart brings them back.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('watcher', conf => q{
bingo_tune.naptime = 1
bingo_tune.min_running = 500
});
sub session_list_states
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT string_agg(state, ',' ORDER BY definition) FROM bingo_tune.advise()
		WHERE 'session_list' = ANY (statements)});
}

# --- the watcher shows up; statements wait for their tables ------------

ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'bingo_tune watcher' AND datname = 'postgres'
	  AND application_name = 'bingo_tune watcher'}),
	'a watcher runs in the database with the extension');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'bingo_tune launcher'}),
	'1', 'one launcher');
ok(wait_passes($node, 'postgres', 1), 'the watcher makes passes');

# between passes the launcher and the watcher nap on a wait event of their
# own where the server can name one (PostgreSQL 17+), else on "Extension"
my $nap = $node->safe_psql('postgres', 'SHOW server_version_num') >= 170000
  ? 'BingoTuneNap' : 'Extension';
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) = 2 FROM pg_stat_activity
	WHERE backend_type IN ('bingo_tune launcher', 'bingo_tune watcher')
	  AND datname IS NOT DISTINCT FROM CASE backend_type
		WHEN 'bingo_tune watcher' THEN 'postgres' END
	  AND wait_event_type = 'Extension' AND wait_event = '$nap'}),
	"the launcher and the watcher nap on wait event $nap");
is($node->safe_psql('postgres', q{
	SELECT state || ':' || (detail LIKE '%does not exist%') FROM bingo_tune.watched()
	WHERE statement = 'session_list'}),
	'waiting:true', 'a statement whose tables do not exist yet is waiting');

# --- run once: the watcher builds its indexes --------------------------

$node->safe_psql('postgres', $bingo_dataset);
ok($node->poll_query_until('postgres', q{
	SELECT state = 'not seen' FROM bingo_tune.watched() WHERE statement = 'session_list'}),
	'once the tables exist the statement has a queryid');
my $qid = $node->safe_psql('postgres', q{
	SELECT queryid FROM bingo_tune.watched() WHERE statement = 'session_list'});
is($qid, $node->safe_psql('postgres', q{
	SELECT bingo_tune.queryid(statement, schema) FROM bingo_tune.watch WHERE name = 'session_list'}),
	'the watcher computes the same queryid as queryid()');

is(session_list_states('postgres'), 'missing,missing,missing', 'no indexes yet');
$node->safe_psql('postgres', $session_list);
ok(wait_present($node, 'session_list'),
	'after one run of the session list, the watcher builds its indexes');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT action, ',' ORDER BY action) FROM bingo_tune.events
	WHERE source = 'watcher' AND statement LIKE '%session_list%'}),
	'created,seen,started', 'events: seen, started, created');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM bingo_tune.events WHERE action = 'seen'
	AND statement = 'session_list' AND queryid = $qid}),
	'1', 'seen is recorded once, with the queryid');
my $log = slurp_file($node->logfile);
like($log, qr/bingo_tune: statement "session_list": index "\S+" created in/,
	'the log names statement and index');
# the by-id statements were not run: their own indexes are not built
is($node->safe_psql('postgres', q{
	SELECT state FROM bingo_tune.advise() WHERE definition LIKE '%sessions (id)%'}),
	'missing', 'indexes of statements not seen are not built');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_index WHERE NOT indisvalid}), '0', 'no invalid index');

# --- off does nothing; advise only recommends ---------------------------

sub drop_session_list_indexes
{
	my ($db) = @_;
	$node->safe_psql($db, q{
		DO $$DECLARE r record; BEGIN
		FOR r IN SELECT index_name FROM bingo_tune.advise()
			WHERE 'session_list' = ANY (statements) AND state <> 'missing' LOOP
			EXECUTE format('DROP INDEX public.%I', r.index_name);
		END LOOP; END$$;
		SELECT pg_stat_statements_reset();
		SELECT bingo_tune.reset();});
}

sub set_mode
{
	my ($mode) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET bingo_tune.mode = '$mode'");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT mode = '$mode' FROM bingo_tune.watcher()")
	  or die "mode $mode not taken";
	# let the watcher itself reload too
	wait_passes($node, 'postgres', 2);
}

set_mode('off');
drop_session_list_indexes('postgres');
my $nevents = $node->safe_psql('postgres', 'SELECT count(*) FROM bingo_tune.events');
$node->safe_psql('postgres', $session_list);
ok(wait_passes($node, 'postgres', 3), 'the watcher passes in off mode');
is(session_list_states('postgres'), 'missing,missing,missing', 'off: nothing is built');
is($node->safe_psql('postgres', 'SELECT count(*) FROM bingo_tune.events'), $nevents,
	'off: nothing is recorded');

set_mode('advise');
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 3 FROM bingo_tune.events
	WHERE action = 'recommended' AND statement = 'session_list'}),
	'advise: the three indexes are recommended');
ok(wait_passes($node, 'postgres', 3), 'more passes in advise mode');
is(session_list_states('postgres'), 'missing,missing,missing', 'advise: nothing is built');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM bingo_tune.events
	WHERE action = 'recommended' AND statement = 'session_list'}),
	'3', 'advise: each recommendation is recorded once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM bingo_tune.recommendations() WHERE statements = 'session_list'}),
	'3', 'recommendations() lists them');
like(slurp_file($node->logfile), qr/bingo_tune: statement "session_list" needs index/,
	'advise: the recommendation is logged');

set_mode('auto');
ok(wait_present($node, 'session_list'),
	'back to auto: the indexes are built');

# --- drop and recreate the tables: followed -----------------------------

$node->safe_psql('postgres', 'DROP TABLE sessions, customers, movies');
ok($node->poll_query_until('postgres', q{
	SELECT state = 'waiting' FROM bingo_tune.watched() WHERE statement = 'session_list'}),
	'tables dropped: waiting');
$node->safe_psql('postgres', $bingo_dataset);
# Before 18 the new tables give the statement a new queryid.  From 18 the
# queryid hashes table names, not OIDs, and stays: pg_stat_statements keeps
# the old tables' runs under it, and the watcher must not count them.
if ($node->pg_version >= 18)
{
	ok($node->poll_query_until('postgres', qq{
		SELECT state = 'not seen' AND queryid = $qid AND calls = 0 FROM bingo_tune.watched()
		WHERE statement = 'session_list'}),
		'tables recreated: the same queryid (18), not seen yet');
	cmp_ok($node->safe_psql('postgres', qq{
		SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE queryid = $qid}),
		'>', 0, 'pg_stat_statements still has the old tables\' runs under that queryid');
}
else
{
	ok($node->poll_query_until('postgres', qq{
		SELECT state = 'not seen' AND queryid <> $qid FROM bingo_tune.watched()
		WHERE statement = 'session_list'}),
		'tables recreated: a new queryid, not seen yet');
}
is(session_list_states('postgres'), 'missing,missing,missing', 'new tables have no indexes');
$node->safe_psql('postgres', $session_list);
ok(wait_present($node, 'session_list'),
	'the watcher follows the new tables and rebuilds');

# --- a run cancelled by statement_timeout still triggers the build -------

drop_session_list_indexes('postgres');
# Without hash and merge joins the statement runs for a long time on this
# data; statement_timeout cancels it, so it never reaches pg_stat_statements.
my ($stdout, $stderr);
$node->psql('postgres', qq{
SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;
SET statement_timeout = '4s';
$session_list}, stdout => \$stdout, stderr => \$stderr);
like($stderr, qr/canceling statement due to statement timeout/, 'the run was cancelled');
is($node->safe_psql('postgres', q{
	SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s, bingo_tune.watched() w
	WHERE w.statement = 'session_list' AND s.queryid = w.queryid}),
	'0', 'pg_stat_statements has no completed call');
ok(wait_present($node, 'session_list'),
	'the cancelled run, seen while in progress, triggered the build');
is($node->safe_psql('postgres', q{
	SELECT calls FROM bingo_tune.watched() WHERE statement = 'session_list'}),
	'0', 'the watcher saw no completed call: it acted on the run in progress');

# --- a failing build is retried with backoff, never in a tight loop -----

drop_session_list_indexes('postgres');
$node->safe_psql('postgres', "ALTER SYSTEM SET bingo_tune.build_lock_timeout = '200ms'");
$node->reload;
# An old snapshot that the builds wait for, longer than their lock timeout.
my $old = hold_snapshot($node);
my $mark = $node->safe_psql('postgres', 'SELECT max(id) FROM bingo_tune.events');
my $movies_index = 'bingo_tune_movies_year_desc_name_id_desc_incl_duration';
$node->safe_psql('postgres', $session_list);
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) > 0 FROM bingo_tune.events
	WHERE id > $mark AND action = 'failed' AND index_name = '$movies_index'}),
	'the build fails on its lock timeout');
like(slurp_file($node->logfile), qr/build of index "$movies_index" failed, retrying in 2 s/,
	'the failure is logged with the time of the retry');
ok(wait_passes($node, 'postgres', 6), 'six more passes (naptime 1 s)');
my $attempts = $node->safe_psql('postgres', qq{
	SELECT count(*) FROM bingo_tune.events
	WHERE id > $mark AND action = 'started' AND index_name = '$movies_index'});
cmp_ok($attempts, '<=', 3, "backoff: $attempts attempts in six passes, not one per pass");
$old->query_safe('COMMIT');
$old->quit;
$node->safe_psql('postgres', 'ALTER SYSTEM RESET bingo_tune.build_lock_timeout');
$node->reload;
ok(wait_present($node, 'session_list'),
	'once the snapshot is gone, a retry builds the indexes');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'no invalid index is left behind');

# --- one watcher per database with the extension, none elsewhere -------

$node->safe_psql('postgres', 'CREATE DATABASE withext');
$node->safe_psql('postgres', 'CREATE DATABASE without');
$node->safe_psql('withext', 'CREATE EXTENSION bingo_tune CASCADE');
ok(wait_watchers($node, 'withext', 1),
	'a second database with the extension gets its own watcher');
ok(wait_passes($node, 'withext', 3), 'it makes passes');
is(watchers($node, 'without'),
	'0', 'a database without the extension has no watcher');
is(watchers($node, 'postgres'),
	'1', 'still exactly one watcher in postgres');

$node->safe_psql('withext', 'DROP EXTENSION bingo_tune');
ok(wait_watchers($node, 'withext', 0),
	'DROP EXTENSION stops its watcher');

$node->safe_psql('withext', 'CREATE EXTENSION bingo_tune');
ok(wait_watchers($node, 'withext', 1),
	'CREATE EXTENSION again: the watcher is back');
# A database with a watcher can serve as a template (the watcher steps
# aside), and the copy, which has the extension, gets its own watcher.
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE DATABASE copied TEMPLATE withext');
is($ret, 0, 'CREATE DATABASE ... TEMPLATE is not blocked by the watcher') or diag($err);
ok(wait_watchers($node, 'copied', 1),
	'the copy gets its own watcher');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE copied');
is($ret, 0, 'DROP DATABASE is not blocked by the watcher') or diag($err);
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE withext');
is($ret, 0, 'DROP DATABASE of the template') or diag($err);
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'bingo_tune watcher'
	AND datname IS DISTINCT FROM 'postgres'}),
	'no watcher left for the dropped database');

# --- restart: the watchers come back ------------------------------------

$node->restart;
ok(wait_watchers($node, 'postgres', 1),
	'after a restart the watcher is back');
ok(wait_passes($node, 'postgres', 2), 'and makes passes');
is(session_list_states('postgres'), 'present,present,present', 'indexes still present');

# A cancel ends the watcher's current pass (or wait), not the watcher.
my $wpid = $node->safe_psql('postgres', 'SELECT pid FROM bingo_tune.watcher()');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($wpid)");
ok(wait_passes($node, 'postgres', 2), 'the watcher goes on after a cancel');
is($node->safe_psql('postgres', 'SELECT pid FROM bingo_tune.watcher()'), $wpid,
	'same watcher');

$node->stop;
done_testing();
