# kill -9 of a watcher while it waits for a build: the postmaster restarts
# every backend, the launcher comes back, and the next pass drops the
# invalid index the interrupted build left and builds it again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('crash', conf => q{
bingo_tune.naptime = 1
restart_after_crash = on
});
$node->safe_psql('postgres', $movies_sql);

# Hold a snapshot so that the concurrent build waits for it.
my $old = hold_snapshot($node);

# movie_list wants one index; run the statement so the watcher sees it.
$node->safe_psql('postgres', $movie_list);

ok(waiting_builds($node, 1), 'the watcher\'s build waits for the old snapshot');
is($node->safe_psql('postgres', q{
	SELECT state FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'building', 'the index shows as being built while it is');

my $pid = $node->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'bingo_tune watcher' AND datname = 'postgres'});
like($pid, qr/^\d+$/, 'found the watcher');
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;

# The postmaster restarts everything, the old snapshot's session included.
# Only then let go of that session: ending it earlier would let the build
# finish before the crash reaches the builder.
ok($node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset),
	'the postmaster did a crash restart');
eval { $old->quit; };
ok(wait_watchers($node, 'postgres', 1),
	'after the crash restart a watcher runs again');

my $after = $node->safe_psql('postgres', q{
	SELECT string_agg(indexrelid::regclass || ':' || indisvalid, ',') FROM pg_index
	WHERE indrelid = 'movies'::regclass});
diag("indexes on movies after the crash: $after");
like($after, qr/^bingo_tune_movies_year_desc_name_id_desc_incl_duration:false$/,
	'the interrupted build left an invalid index');

# pg_stat_statements forgets its counts in a crash; the app runs the
# statement again, and the watcher sees it again.
$node->safe_psql('postgres', $movie_list);
ok($node->poll_query_until('postgres', q{
	SELECT state = 'present' FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'the next pass completes the build');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'no invalid index is left behind');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_indexes WHERE tablename = 'movies'}),
	'1', 'exactly one index on movies');
is($node->safe_psql('postgres', q{
	SELECT action FROM bingo_tune.events WHERE source = 'watcher'
	AND action NOT IN ('seen', 'started') ORDER BY id DESC LIMIT 1}),
	'rebuilt', 'the outcome is recorded as rebuilt');

$node->stop;
done_testing();
