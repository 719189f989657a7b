# report(): runs that never reach ExecutorEnd -- cut off by
# statement_timeout, cancelled from another backend, terminated, or whose
# client went away -- are counted as failed, with how long they ran.  A
# PL/pgSQL exception block inside a watched statement is not a failure,
# concurrent backends lose no run, and report() does not hang behind a
# lock on a watched statement's table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('main', conf => q{
bingo_tune.mode = off
});

$node->safe_psql('postgres', q{
CREATE FUNCTION catcher() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		PERFORM 1 / 0;
	EXCEPTION WHEN division_by_zero THEN
		NULL;
	END;
	RETURN 1;
END $$;
INSERT INTO bingo_tune.watch (name, statement, budget, percentile) VALUES
	('slow', 'SELECT pg_sleep(30)', '1 s', 100),
	('catcher', 'SELECT catcher()', '1 s', 100),
	('quick', 'SELECT pg_sleep(0.001)', '1 s', 90);
});

# Start "SELECT pg_sleep(30)" in a background session and wait until it runs.
sub start_slow
{
	my (%opts) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	$bg->query_safe($opts{setup}) if $opts{setup};
	$bg->query_until(qr/started/, "\\echo started\nSELECT pg_sleep(30);\n");
	$node->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE query = 'SELECT pg_sleep(30);' AND state = 'active'})
	  or die "the slow statement did not start";
	my $pid = $node->safe_psql('postgres', q{
		SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30);'});
	return ($bg, $pid);
}

# --- statement_timeout ---------------------------------------------------

my ($stdout, $stderr);
$node->psql('postgres', "SET statement_timeout = '300ms'; SELECT pg_sleep(30);",
	stdout => \$stdout, stderr => \$stderr);
like($stderr, qr/canceling statement due to statement timeout/, 'statement_timeout cut the run off');
is(report($node, 'slow', q{calls || '/' || failed || '/' || (failed_max_ms BETWEEN 250 AND 3000)::int}),
	'0/1/1', 'the timed-out run is counted as failed, with how long it ran');
is(report($node, 'slow', 'status'), 'at risk', 'a failed run puts the statement at risk');

# --- cancel from another backend -----------------------------------------

my ($bg, $pid) = start_slow();
sleep 1;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$node->poll_query_until('postgres', q{
	SELECT failed = 2 FROM bingo_tune.report() WHERE name = 'slow'})
  or die "the cancelled run was not counted";
is(report($node, 'slow', q{failed_max_ms BETWEEN 1000 AND 10000}), 't',
	'the cancelled run is counted with how long it ran');
is(report($node, 'slow', 'status'), 'over budget',
	'a failed run that ran longer than the budget puts it over budget');
$bg->quit;

# --- terminated ----------------------------------------------------------

($bg, $pid) = start_slow();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres', q{
	SELECT failed = 3 FROM bingo_tune.report() WHERE name = 'slow'})
  or die "the terminated run was not counted";
pass('a run whose backend is terminated is counted as failed');
# psql lost its server: stop it however it goes
eval { $bg->quit; };
$bg->{run}->kill_kill if $@;

# --- the client goes away --------------------------------------------------

($bg, $pid) = start_slow(setup => "SET client_connection_check_interval = '100ms';");
$bg->{run}->kill_kill;
$node->poll_query_until('postgres', q{
	SELECT failed = 4 FROM bingo_tune.report() WHERE name = 'slow'})
  or die "the run of a client that went away was not counted";
pass('a run whose client went away is counted as failed');
is(report($node, 'slow', 'calls'), '0', 'no failed run was counted as completed');

# --- an exception caught inside the statement is not a failure ------------

$node->safe_psql('postgres', 'SELECT catcher(); SELECT catcher();');
is(report($node, 'catcher', q{calls || '/' || failed}), '2/0',
	'a subtransaction aborted inside a watched statement does not fail it');

# --- concurrent backends lose no run ----------------------------------------

$node->pgbench(
	'--no-vacuum --client=4 --transactions=50',
	0,
	[qr{processed: 200/200}],
	[qr{^$}],
	'four clients run the watched statement',
	{ '020_quick' => 'SELECT pg_sleep(0.001);' });
is(report($node, 'quick', q{calls || '/' || failed || '/' || (p50_ms BETWEEN 0.95 AND 50)::int}),
	'200/0/1', 'every concurrent run is counted once');

# --- report() does not hang behind a lock on a watched statement's table ---

$node->safe_psql('postgres', q{
CREATE TABLE bt_locked (id integer);
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES
	('on_locked', 'SELECT count(*) FROM bt_locked', '1 s');
SELECT count(*) FROM bt_locked;
});
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE bt_locked IN ACCESS EXCLUSIVE MODE;');
my $t0 = time;
is(report($node, 'on_locked', q{(queryid IS NULL)::int}), '1',
	'report() gives up on a statement whose table is locked');
ok(time - $t0 < 30, 'and answers without waiting for the lock');
$locker->query_safe('COMMIT');
$locker->quit;
is(report($node, 'on_locked', 'calls'), '1', 'the figures are kept meanwhile');

$node->stop;
done_testing();
