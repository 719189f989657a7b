# Builds yield to the application's DDL.  A concurrent build holds a lock
# on its table and waits for older transactions; DDL that waits for that
# lock from such a transaction would deadlock with it.  bingo_tune cancels
# its build instead: DROP TABLE, ALTER TABLE and TRUNCATE (seen by the
# utility hook before they run) and LOCK TABLE (seen waiting in the lock
# manager) all succeed, the build reports "yielded", leaves no invalid
# index and is retried later.  Also: bingo_tune.build_maintenance_work_mem
# refuses values the server would refuse.
#
# Every build here is held in its wait for older snapshots by a session
# that keeps a REPEATABLE READ snapshot open, as in t/001_apply.pl: no
# sleeps.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('yield', conf => q{
bingo_tune.mode = off
bingo_tune.naptime = 1
# the builder's waiter looks for lock requests every 200 ms; leave the
# server's deadlock check a margin on a loaded test machine
deadlock_timeout = '3s'
});
$node->safe_psql('postgres', $movies_sql);

# Start CALL apply(statement) in the background with a snapshot held by
# $old, and return once its build waits for that snapshot.
sub start_held_apply
{
	my ($statement) = @_;
	my $old = hold_snapshot($node, on_error_stop => 0);
	my $caller = start_apply($node, $statement);
	ok(waiting_builds($node, 1), "$statement: the build waits for the old snapshot");
	return ($old, $caller);
}

# Run a statement that wants movies' lock from the transaction that a held
# apply's build waits for; it must get through, and apply return.
sub lock_from_old_transaction
{
	my ($what, $sql) = @_;
	my ($old, $caller) = start_held_apply('movie_list');
	$old->query_safe($sql);
	pass("$what from the old transaction succeeds");
	$old->query_safe('COMMIT');
	$old->quit;
	like($caller->query_until(qr/apply-done/, ''), qr/apply-done/, 'apply returns');
	$caller->quit;
}

sub last_apply
{
	return $node->safe_psql('postgres', q{
		SELECT action || ': ' || coalesce(detail, '') FROM bingo_tune.last_apply});
}

# --- DROP TABLE from the transaction the build waits for ----------------
#
# The issue's deadlock: the DROP waits for the build's lock while the build
# waits for the DROP's transaction.  The utility hook cancels the build
# before the DROP asks for its lock.

my $log_offset = -s $node->logfile;
lock_from_old_transaction('DROP TABLE', 'DROP TABLE movies');
like(last_apply(), qr/^yielded: yielded to process \d+ \(DROP TABLE\)/,
	'apply reports the build yielded to the DROP TABLE');
ok($node->log_contains(qr/cancelling the build of index "bingo_tune_movies_year_desc_name_id_desc_incl_duration" to let process \d+ \(DROP TABLE\)/,
	$log_offset), 'the utility hook cancelled the build before the DROP ran');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'nothing invalid is left');
unlike(slurp_file($node->logfile, $log_offset), qr/deadlock detected/,
	'no deadlock was detected');

# --- LOCK TABLE, which the hook does not look at ------------------------
#
# Same deadlock through a statement only the lock manager shows: the
# waiter's check sees the LOCK waiting and cancels the build.

$node->safe_psql('postgres', $movies_sql);
$log_offset = -s $node->logfile;
lock_from_old_transaction('LOCK TABLE', 'LOCK TABLE movies IN ACCESS EXCLUSIVE MODE');
like(last_apply(), qr/^yielded: yielded to process \d+ \(waiting for AccessExclusiveLock\)/,
	'apply reports the build yielded to the lock request');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_index WHERE NOT indisvalid}),
	'the yielded build drops its invalid leftover once the table is free');
unlike(slurp_file($node->logfile, $log_offset), qr/deadlock detected/,
	'no deadlock was detected');

# --- TRUNCATE from another session ----------------------------------------
#
# Without the yield the TRUNCATE would wait for the whole build, which waits
# for the old snapshot: here, for ever.

my ($old, $caller) = start_held_apply('movie_list');
$node->safe_psql('postgres', 'TRUNCATE movies');
pass('TRUNCATE does not wait for the build');
like($caller->query_until(qr/apply-done/, ''), qr/apply-done/, 'apply returns');
$caller->quit;
like(last_apply(), qr/^yielded: yielded to process \d+ \(TRUNCATE TABLE\)/,
	'apply reports the build yielded to the TRUNCATE');
# (TRUNCATE rebuilds every index of the table, the build's leftover too,
# which makes it valid; else the yielded worker drops it)
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_index WHERE NOT indisvalid}),
	'nothing invalid is left');
$old->query_safe('COMMIT');
$old->quit;
$node->safe_psql('postgres', q{
	DROP INDEX IF EXISTS bingo_tune_movies_year_desc_name_id_desc_incl_duration;
	INSERT INTO movies SELECT g, 'movie ' || g % 700, 1950 + g % 75, 90 FROM generate_series(1, 29000) g;
});

# --- ALTER TABLE during a watcher's build: yielded, then retried ---------

$node->safe_psql('postgres', q{
	ALTER SYSTEM SET bingo_tune.mode = 'auto';
	SELECT pg_reload_conf();
});
$old = hold_snapshot($node);
$node->safe_psql('postgres', $movie_list);
ok(waiting_builds($node, 1), 'the watcher\'s build waits for the old snapshot');
$node->safe_psql('postgres', 'ALTER TABLE movies ADD COLUMN extra integer');
pass('ALTER TABLE does not wait for the watcher\'s build');
ok( $node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM bingo_tune.events
	WHERE source = 'watcher' AND action = 'yielded' AND detail LIKE '%(ALTER TABLE)%'}),
	'the watcher records the build as yielded');
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_index WHERE NOT indisvalid}),
	'the yielded build drops its invalid leftover');
$old->query_safe('COMMIT');
$old->quit;
ok( $node->poll_query_until('postgres', q{
	SELECT state = 'present' FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'the watcher builds it again later');
is($node->safe_psql('postgres', q{
	SELECT string_agg(action, ',' ORDER BY id) FROM bingo_tune.events
	WHERE source = 'watcher' AND action IN ('yielded', 'created', 'rebuilt', 'failed')}),
	'yielded,created', 'yielded first, created on the retry');

# --- GUC floors -----------------------------------------------------------

my ($ret, $out, $err) = $node->psql('postgres',
	q{ALTER SYSTEM SET bingo_tune.build_maintenance_work_mem = '512kB'});
isnt($ret, 0, 'build_maintenance_work_mem below 1MB is refused');
like($err, qr/at least 1MB/, 'and the message says the floor');
$node->safe_psql('postgres', q{ALTER SYSTEM SET bingo_tune.build_maintenance_work_mem = '1MB'});
$node->safe_psql('postgres', q{ALTER SYSTEM RESET bingo_tune.build_maintenance_work_mem});
pass('1MB is accepted');

$node->stop;
done_testing();
