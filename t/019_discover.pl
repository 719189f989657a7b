# Discovery: slow SELECTs in pg_stat_statements that the watch catalog does
# not hold get a derived set, recorded (advise) or built (auto).  Off by
# default; bingo_tune.discover_min_time is respected; only plain SELECTs
# over user tables that call built-in functions are taken; a statement is
# derived once until its basis changes; accept() puts one in the catalog,
# and discovery leaves it alone from then on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('discover', extension => 0, conf => q{
bingo_tune.naptime = 1
});

my $db = 'postgres';
$node->safe_psql($db, q{
CREATE TABLE sessions (id bigint, start_time timestamp NOT NULL,
	customer_id integer NOT NULL, movie_id integer NOT NULL);
INSERT INTO sessions SELECT g, timestamp '2020-01-01' + g * interval '1 minute',
	1 + g % 2000, 1 + g % 300
	FROM generate_series(1, 100000) g;
VACUUM ANALYZE sessions;
CREATE FUNCTION tst_id(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE EXTENSION bingo_tune CASCADE;
DELETE FROM bingo_tune.watch;
});
$node->safe_psql($db, 'CREATE EXTENSION hypopg')
  if $node->safe_psql($db,
	q{SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'}) eq '1';

# a customer's sessions newest first, sent with literals: pg_stat_statements
# shows it with $1, $2
my $slow = 'SELECT id, start_time FROM sessions WHERE customer_id = 42 '
  . 'ORDER BY start_time DESC LIMIT 20';
my $pattern = 'SELECT id, start_time FROM sessions WHERE customer_id = $1%';
# what discovery must not take: a user function, a write, a system table
my @others = (
	'SELECT id FROM sessions WHERE customer_id = tst_id(7)',
	'UPDATE sessions SET movie_id = movie_id WHERE customer_id = 7',
	"SELECT relname FROM pg_class WHERE relname = 'sessions'");

sub run_statements
{
	$node->safe_psql($db, join(";\n", ($slow) x 3, @others) . ';');
}

sub set_conf
{
	my ($name, $value) = @_;
	$node->safe_psql($db, "ALTER SYSTEM SET $name = '$value'");
	$node->reload;
	# a pass after the reload has seen it
	wait_passes($node, $db, 2);
}

sub discover_events
{
	my ($action) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) FROM bingo_tune.events WHERE source = 'discover'"
		  . ($action ? " AND action = '$action'" : ''));
}

is($node->safe_psql($db, 'SHOW bingo_tune.discover'), 'off', 'discovery is off by default');

# --- off: nothing ---
run_statements();
ok(wait_passes($node, $db, 3), 'the watcher makes passes');
is(discover_events(), '0', 'off: no discovery events');
is($node->safe_psql($db, 'SELECT count(*) FROM bingo_tune.discovered'),
	'0', 'off: nothing discovered');

# --- advise, but the statements are faster than discover_min_time ---
set_conf('bingo_tune.discover_min_time', '1h');
set_conf('bingo_tune.discover', 'advise');
run_statements();
ok(wait_passes($node, $db, 3), 'advise, min_time 1h: passes');
is(discover_events(), '0', 'advise: nothing faster than discover_min_time is discovered');

# --- advise, min_time 0: the slow statement is discovered and recommended ---
set_conf('bingo_tune.discover_min_time', '0');
run_statements();
ok( $node->poll_query_until($db, q{
		SELECT count(*) > 0 FROM bingo_tune.discovered
		WHERE statement LIKE 'SELECT id, start_time FROM sessions WHERE customer_id = $1%'}),
	'advise: the slow statement is discovered');
my $qid = $node->safe_psql($db, qq{
	SELECT queryid FROM pg_stat_statements WHERE query LIKE '$pattern'});
my ($schema, $set) = split /\|/, $node->safe_psql($db, qq{
	SELECT schema, array_to_string(indexes, ';') FROM bingo_tune.discovered WHERE queryid = $qid});
is($schema, 'public', 'advise: its names are found in public, its role\'s schema');
like($set, qr/^public\.sessions \(customer_id, start_time DESC\)/,
	'advise: the derived set drives its ORDER BY after the equality');
ok( $node->poll_query_until($db, qq{
		SELECT count(*) > 0 FROM bingo_tune.events
		WHERE source = 'discover' AND action = 'recommended' AND queryid = $qid}),
	'advise: its index is recommended in events');
is( $node->safe_psql($db, qq{
		SELECT count(*) FROM bingo_tune.events
		WHERE source = 'discover' AND action = 'discovered' AND queryid = $qid
		AND detail LIKE '%derived set public.sessions (customer_id, start_time DESC)%'}),
	'1', 'advise: events say what was derived');
is( $node->safe_psql($db,
		q{SELECT count(*) FROM pg_indexes WHERE tablename = 'sessions'}),
	'0', 'advise: nothing is built');
is( $node->safe_psql($db, q{
		SELECT count(*) FROM bingo_tune.discovered
		WHERE statement ~ 'tst_id|UPDATE|pg_class|bingo_tune'}),
	'0', 'advise: user functions, writes and system tables are not taken');
is( $node->safe_psql($db, q{
		SELECT string_agg(statement, ' | ') FROM bingo_tune.discovered WHERE statement !~ 'sessions'}),
	'', 'advise: statements that read no table are not taken');

# derived once: more runs and passes change nothing
run_statements();
ok(wait_passes($node, $db, 3), 'advise: more passes');
is( $node->safe_psql($db, qq{
		SELECT count(*) FROM bingo_tune.events
		WHERE source = 'discover' AND action = 'discovered' AND queryid = $qid}),
	'1', 'advise: derived once while nothing changes');

# --- auto: the mode is part of the basis, so the set is built now ---
set_conf('bingo_tune.discover', 'auto');
ok( $node->poll_query_until($db, qq{
		SELECT count(*) > 0 FROM bingo_tune.events
		WHERE source = 'discover' AND action = 'created' AND queryid = $qid}),
	'auto: the derived set is built');
is( $node->safe_psql($db, q{
		SELECT count(*) FROM pg_indexes WHERE tablename = 'sessions'
		AND indexdef LIKE '%(customer_id, start_time DESC)%'}),
	'1', 'auto: the index exists');
is( $node->safe_psql($db, qq{
		SELECT count(*) FROM bingo_tune.events
		WHERE source = 'discover' AND action = 'failed'}),
	'0', 'auto: no build failed');

# --- accept(): into the catalog, indexes derived; discovery leaves it ---
is( $node->safe_psql($db, qq{
		SELECT name || ' ' || (indexes IS NULL) || ' ' || schema
		FROM bingo_tune.accept($qid, 'customer_sessions', '50 ms')}),
	'customer_sessions true public', 'accept() adds the catalog row, indexes NULL');
is( $node->safe_psql($db, q{
		SELECT string_agg(state, ',') FROM bingo_tune.advise()
		WHERE 'customer_sessions' = ANY (statements)}),
	'present', 'the accepted row\'s derived set is the index discovery built');
my $before = $node->safe_psql($db, qq{
	SELECT count(*) FROM bingo_tune.events WHERE source = 'discover' AND queryid = $qid});
run_statements();
ok(wait_passes($node, $db, 3), 'after accept(): more passes');
is( $node->safe_psql($db, qq{
		SELECT count(*) FROM bingo_tune.events WHERE source = 'discover' AND queryid = $qid}),
	$before, 'after accept(): discovery leaves the watched statement alone');

$node->stop;
done_testing();
