# kill -9 of a watcher while it waits for a build: the postmaster restarts
# every backend, the launcher comes back, and the next pass drops the
# invalid index the interrupted build left and builds it again.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,bingo_tune'
compute_query_id = on
max_worker_processes = 16
bingo_tune.naptime = 1
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION bingo_tune CASCADE;
CREATE TABLE movies (id integer, name text, year integer, duration integer);
INSERT INTO movies SELECT g, 'movie ' || g % 700, 1950 + g % 75, 90
	FROM generate_series(1, 29000) g;
});

# Hold a snapshot so that the concurrent build waits for it.
my $old = $node->background_psql('postgres');
$old->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$old->query_safe('SELECT 1');

# movie_list wants one index; run the statement so the watcher sees it.
$node->safe_psql('postgres', q{
SELECT movies.id, movies.name, movies.year, movies.duration FROM movies
ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000});

ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_progress_create_index
	WHERE phase = 'waiting for old snapshots'}),
	'the watcher\'s build waits for the old snapshot');
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
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'bingo_tune watcher' AND datname = 'postgres'}),
	'after the crash restart a watcher runs again');

my $after = $node->safe_psql('postgres', q{
	SELECT string_agg(indexrelid::regclass || ':' || indisvalid, ',') FROM pg_index
	WHERE indrelid = 'movies'::regclass});
diag("indexes on movies after the crash: $after");
like($after, qr/^bingo_tune_movies_year_desc_name_id_desc_incl_duration:false$/,
	'the interrupted build left an invalid index');

# pg_stat_statements forgets its counts in a crash; the app runs the
# statement again, and the watcher sees it again.
$node->safe_psql('postgres', q{
SELECT movies.id, movies.name, movies.year, movies.duration FROM movies
ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000});
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
