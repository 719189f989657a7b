# The watcher acts on every run bingo_tune counted.  On freshly re-created
# tables, one session list run cut off by statement_timeout after 300 ms
# (far shorter than min_running, so pg_stat_activity sampling never shows
# it, and pg_stat_statements never records a cancelled run) is counted by
# bingo_tune's executor hooks as failed, and that is enough for the
# watcher to build the statement's indexes at its next pass.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cancelled_run');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,bingo_tune'
compute_query_id = on
max_worker_processes = 16
bingo_tune.naptime = 1
bingo_tune.min_running = 600s
});
$node->start;

my $dataset = q{
CREATE TABLE sessions (id bigint, start_time timestamp NOT NULL,
	customer_id integer NOT NULL, movie_id integer NOT NULL);
CREATE TABLE customers (id integer, name text, surname text, birthday date, email text);
CREATE TABLE movies (id integer, name text, year integer, duration integer);
INSERT INTO movies SELECT g, 'movie ' || g % 700, 1950 + g % 75, 90 + g % 60
	FROM generate_series(1, 2000) g;
INSERT INTO customers SELECT g, 'name ' || g % 500, 'surname ' || g % 900,
	date '1950-01-01' + g % 20000, 'c' || g || '@example.com'
	FROM generate_series(1, 20000) g;
INSERT INTO sessions SELECT g, timestamp '2020-01-01' + g * interval '1 minute',
	1 + g % 20000, 1 + g % 2000
	FROM generate_series(1, 100000) g;
ANALYZE;
};

my $session_list = q{
SELECT sessions.id, sessions.start_time, customers.id, customers.name,
       customers.surname, customers.birthday, customers.email, movies.id,
       movies.name, movies.year, movies.duration
FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id
              INNER JOIN movies ON sessions.movie_id = movies.id
ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC
LIMIT 100000};

$node->safe_psql('postgres', 'CREATE EXTENSION bingo_tune CASCADE');
$node->safe_psql('postgres', $dataset);
my $old_qid = $node->safe_psql('postgres', q{
	SELECT bingo_tune.queryid(statement, schema) FROM bingo_tune.watch WHERE name = 'session_list'});

# A second prepare_db: the tables are dropped and created again (new
# queryid), and the app's first request comes at once.  Without hash and
# merge joins the statement runs for a long time on this data: the 300 ms
# statement_timeout cuts it off.
$node->safe_psql('postgres', 'DROP TABLE sessions, customers, movies');
my ($stdout, $stderr);
$node->psql('postgres', $dataset . qq{
SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;
SET statement_timeout = '300ms';
$session_list}, stdout => \$stdout, stderr => \$stderr);
like($stderr, qr/canceling statement due to statement timeout/, 'the run was cut off after 300 ms');

my $qid = $node->safe_psql('postgres', q{
	SELECT bingo_tune.queryid(statement, schema) FROM bingo_tune.watch WHERE name = 'session_list'});
# from 18 the queryid hashes table names, not OIDs: it stays
if ($node->pg_version >= 18)
{
	is($qid, $old_qid, 'the re-created tables keep their queryid (18)');
}
else
{
	isnt($qid, $old_qid, 'the re-created tables give a new queryid');
}
is($node->safe_psql('postgres', qq{
	SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE queryid = $qid}),
	'0', 'pg_stat_statements has no call of it');

ok($node->poll_query_until('postgres', q{
	SELECT bool_and(state = 'present') FROM bingo_tune.advise()
	WHERE 'session_list' = ANY (statements)}),
	'the cancelled run leads to the build of the session list indexes');
is($node->safe_psql('postgres', qq{
	SELECT detail FROM bingo_tune.events
	WHERE action = 'seen' AND statement = 'session_list' AND queryid = $qid}),
	'1 runs counted by bingo_tune, 1 failed',
	'the watcher saw it through bingo_tune\'s own figures');
is($node->safe_psql('postgres', q{
	SELECT state || ' ' || calls || ' ' || detail FROM bingo_tune.watched()
	WHERE statement = 'session_list'}),
	'seen 0 1 runs counted by bingo_tune, 1 failed',
	'watched() shows it seen, with no completed call');
is($node->safe_psql('postgres', q{
	SELECT before_calls || '/' || before_failed FROM bingo_tune.before_after
	WHERE name = 'session_list'}),
	'0/1', 'before_after keeps the failed run as "before"');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE NOT indisvalid}),
	'0', 'no invalid index');

$node->stop;
done_testing();
