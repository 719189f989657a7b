# What a build is and what it may touch: an equivalent index a DBA is
# building right now is waited for, never dropped, and then counted
# present; two schemas' tables of the same name get a build each; index
# names stay unique in a schema; a cancelled CALL apply() leaves nothing
# invalid behind.
#
# Builds are held in their wait for older snapshots by a session that
# keeps a REPEATABLE READ snapshot open, as in t/001_apply.pl: no sleeps.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('identity', conf => q{
bingo_tune.mode = off
});

my $movies = q{(id integer, name text, year integer, duration integer);
INSERT INTO %s SELECT g, 'movie ' || g % 700, 1950 + g % 75, 90 FROM generate_series(1, 29000) g;};
$node->safe_psql('postgres', 'CREATE SCHEMA s2;'
	. 'CREATE TABLE movies ' . sprintf($movies, 'movies')
	. 'CREATE TABLE s2.movies ' . sprintf($movies, 's2.movies'));

sub movie_list_state
{
	return $node->safe_psql('postgres', q{
		SELECT index_name || ' ' || state FROM bingo_tune.advise()
		WHERE 'movie_list' = ANY (statements)});
}

# --- a DBA's own CREATE INDEX CONCURRENTLY of an equivalent index --------

my $old = hold_snapshot($node);
my $dba = $node->background_psql('postgres');
$dba->query_until(qr/started/, q{
\echo started
CREATE INDEX CONCURRENTLY dba_movies ON movies (year DESC, name, id DESC) INCLUDE (duration);
\echo cic-done
});
ok(waiting_builds($node, 1), 'the DBA\'s build waits for the old snapshot');
is(movie_list_state(), 'dba_movies building', 'advise shows the DBA\'s index being built');

my $log_offset = -s $node->logfile;
my $caller = start_apply($node, 'movie_list');
ok($node->wait_for_log(qr/bingo_tune: waiting for process \d+, which is building an index equivalent to public\.movies/,
		$log_offset),
	'apply waits for the DBA\'s build');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_class WHERE relname = 'dba_movies'}),
	'1', 'the DBA\'s index is not dropped as a leftover');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_progress_create_index}),
	'1', 'and apply started no build of its own');

$old->query_safe('COMMIT');
$old->quit;
like($dba->query_until(qr/cic-done/, ''), qr/cic-done/, 'the DBA\'s build completes');
$dba->quit;
like($caller->query_until(qr/apply-done/, ''), qr/apply-done/, 'apply returns');
$caller->quit;
is($node->safe_psql('postgres', q{SELECT action FROM bingo_tune.last_apply}),
	'already present', 'apply counts the DBA\'s index present');
is(movie_list_state(), 'dba_movies present', 'advise too');
is($node->safe_psql('postgres', q{
	SELECT string_agg(indexrelid::regclass::text, ',') FROM pg_index
	WHERE indrelid = 'public.movies'::regclass}),
	'dba_movies', 'the only index on movies is the DBA\'s');
$node->safe_psql('postgres', 'DROP INDEX dba_movies');

# --- public.movies and s2.movies built at once --------------------------
#
# Both indexes are named bingo_tune_movies_year_desc_name_id_desc_incl_duration;
# each table gets its own build.

$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, schema)
	SELECT 'movie_list_s2', statement, budget, percentile, indexes, 's2'
	FROM bingo_tune.watch WHERE name = 'movie_list'});
$old = hold_snapshot($node);
my $first = start_apply($node, 'movie_list');
ok(waiting_builds($node, 1), 'the public build waits');
my $second = start_apply($node, 'movie_list_s2');
ok(waiting_builds($node, 2), 'the s2 build runs alongside it, not shared');
$old->query_safe('COMMIT');
$old->quit;
like($first->query_until(qr/apply-done/, ''), qr/apply-done/, 'the first apply returns');
like($second->query_until(qr/apply-done/, ''), qr/apply-done/, 'the second apply returns');
$first->quit;
$second->quit;
is($node->safe_psql('postgres', q{
	SELECT string_agg(schemaname || ':' || (SELECT indisvalid FROM pg_index
		WHERE indexrelid = format('%I.%I', schemaname, indexname)::regclass), ',' ORDER BY schemaname)
	FROM pg_indexes WHERE indexname = 'bingo_tune_movies_year_desc_name_id_desc_incl_duration'}),
	'public:true,s2:true', 'each schema has its valid index');
is($node->safe_psql('postgres', q{
	SELECT string_agg(action, ',') FROM bingo_tune.events
	WHERE source = 'apply' AND action = 'created'}),
	'created,created', 'both applies report created');

# --- index names unique in a schema -------------------------------------
#
# a_b (c) and a (b_c) would both be bingo_tune_a_b_c.

$node->safe_psql('postgres', q{
	CREATE TABLE a_b (c integer);
	CREATE TABLE a (b_c integer);
	INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes) VALUES
		('by_c', 'SELECT c FROM a_b WHERE c = $1', '1 s', 100, ARRAY['a_b (c)']),
		('by_b_c', 'SELECT b_c FROM a WHERE b_c = $1', '1 s', 100, ARRAY['a (b_c)']);
	CALL bingo_tune.apply('by_c');
	CALL bingo_tune.apply('by_b_c');
});
is($node->safe_psql('postgres', q{
	SELECT string_agg(tablename || ':' || (indexname ~ '^bingo_tune_a_b_c(_[0-9a-f]{8})?$'), ',' ORDER BY tablename)
	FROM pg_indexes WHERE tablename IN ('a', 'a_b')}),
	'a:true,a_b:true', 'both tables get an index');
is($node->safe_psql('postgres', q{
	SELECT count(DISTINCT indexname) FROM pg_indexes WHERE tablename IN ('a', 'a_b')}),
	'2', 'under two names');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT state, ',') FROM bingo_tune.advise() WHERE table_name IN ('public.a', 'public.a_b')}),
	'present', 'advise finds both present');

# --- a cancelled CALL apply() leaves nothing invalid ---------------------

$node->safe_psql('postgres', 'DROP INDEX bingo_tune_movies_year_desc_name_id_desc_incl_duration');
$old = hold_snapshot($node);
$caller = start_apply($node, 'movie_list', 'apply-ended');
ok(waiting_builds($node, 1), 'the build waits for the old snapshot');
$node->safe_psql('postgres', q{
	SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	WHERE query LIKE 'CALL bingo_tune.apply%' AND pid <> pg_backend_pid()});
like($caller->query_until(qr/apply-ended/, ''), qr/apply-ended/, 'the cancelled apply returns');
like($caller->{stderr}, qr/canceling statement due to user request/, 'with the cancel error');
$caller->quit;
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_index WHERE NOT indisvalid}),
	'the cancelled build leaves no invalid index');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_stat_progress_create_index}),
	'0', 'and no build goes on');
$old->query_safe('COMMIT');
$old->quit;

$node->stop;
done_testing();
