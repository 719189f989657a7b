# CALL bingo_tune.apply() against a real server: it waits for an old
# snapshot instead of hanging, a short build_lock_timeout makes a build
# fail cleanly, a standby refuses, and a server without the preload says
# what to do.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('primary', streaming => 1);
$node->safe_psql('postgres', $movies_sql);

# The standby is taken now, so it gets the extension but no indexes yet.
$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->start;

# --- apply waits for an old snapshot, holding none itself ---------------

# A transaction that holds a snapshot (and no lock on movies).
my $old = hold_snapshot($node);
my $caller = start_apply($node, 'movie_list');

# The build reaches its wait for older snapshots, and stays there.
ok(waiting_builds($node, 1), 'the build waits for the transaction holding an old snapshot');

# While it waits, the caller holds no snapshot and no transaction id, so it
# cannot be what the build waits for.
my $caller_xmin = $node->safe_psql('postgres', q{
	SELECT coalesce(backend_xmin::text, 'none') FROM pg_stat_activity
	WHERE query LIKE 'CALL bingo_tune.apply%' AND pid <> pg_backend_pid()});
is($caller_xmin, 'none', 'the waiting caller holds no snapshot');

is($node->safe_psql('postgres', q{
	SELECT state FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'building', 'advise shows the index being built while the build waits');

unlike($caller->{stdout}, qr/apply-done/, 'apply has not returned while the snapshot is held');

# The old transaction ends: the build and the CALL finish.  (query_until
# dies, failing the test, if apply does not return within the timeout.)
$old->query_safe('COMMIT');
$old->quit;
my $done = $caller->query_until(qr/apply-done/, '');
like($done, qr/apply-done/, 'apply returns once the old snapshot is gone');
$caller->quit;

is($node->safe_psql('postgres', q{
	SELECT string_agg(action, ',') FROM bingo_tune.last_apply}),
	'created', 'apply reports the index created');
is($node->safe_psql('postgres', q{
	SELECT state FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'present', 'advise shows it present');

# --- a short build_lock_timeout fails the build and leaves nothing -------

$node->safe_psql('postgres', q{
	ALTER SYSTEM SET bingo_tune.build_lock_timeout = '1s';
	SELECT pg_reload_conf();
});
$old = hold_snapshot($node);

my ($stdout, $stderr);
$node->psql('postgres', q{CALL bingo_tune.apply('movie_by_id')},
	stdout => \$stdout, stderr => \$stderr);
like($stderr, qr/bingo_tune_movies_id_incl_name_year_duration on public\.movies: failed: canceling statement due to lock timeout/,
	'a build that waits past build_lock_timeout fails and says why');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'the failed build left no invalid index');
$old->query_safe('COMMIT');
$old->quit;

$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET bingo_tune.build_lock_timeout;
	SELECT pg_reload_conf();
});
$node->psql('postgres', q{CALL bingo_tune.apply('movie_by_id')},
	stderr => \$stderr);
like($stderr, qr/movie_by_id|created in/, 'the retry builds it');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT state, ',') FROM bingo_tune.advise() WHERE table_name = 'public.movies'}),
	'present', 'both movies indexes present');

# --- the standby refuses, and sees the indexes once they replicate -------

$node->wait_for_catchup($standby);
my ($ret, $out, $err) = $standby->psql('postgres', 'CALL bingo_tune.apply()');
isnt($ret, 0, 'apply fails on a standby');
like($err, qr/cannot build indexes on a standby/, 'with a clear message');
like($err, qr/HINT:.*primary/, 'and a hint to run it on the primary');
is($standby->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT state, ',') FROM bingo_tune.advise() WHERE table_name = 'public.movies'}),
	'present', 'the standby sees the replicated indexes as present');

# --- without the preload --------------------------------------------------

my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION bingo_tune CASCADE');
($ret, $out, $err) = $plain->psql('postgres', 'CALL bingo_tune.apply()');
isnt($ret, 0, 'apply fails when bingo_tune is not preloaded');
like($err, qr/requires bingo_tune to be loaded via shared_preload_libraries/, 'and says why');
like($err, qr/HINT:.*shared_preload_libraries.*restart/, 'and how to fix it');
is($plain->safe_psql('postgres', 'SELECT count(*) FROM bingo_tune.advise()'),
	'6', 'advise() still works without the preload');

$plain->stop;
$standby->stop;
$node->stop;
done_testing();
