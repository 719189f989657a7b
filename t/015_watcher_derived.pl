# A catalog row with NULL indexes: the watcher derives its set from the
# live tables when it sees the statement run, builds it, and the next
# passes derive the same set, now present (the built indexes do not change
# what derive() proposes).  Ranked by HypoPG when it is installed in the
# database, by the rules alone otherwise: both are run here.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('derived', extension => 0, conf => q{
bingo_tune.naptime = 1
});

my $dataset = q{
CREATE TABLE sessions (id bigint, start_time timestamp NOT NULL,
	customer_id integer NOT NULL, movie_id integer NOT NULL);
CREATE TABLE movies (id integer, name text, year integer, duration integer);
INSERT INTO movies SELECT g, 'movie ' || g % 700, 1950 + g % 75, 90 + g % 60
	FROM generate_series(1, 2000) g;
INSERT INTO sessions SELECT g, timestamp '2020-01-01' + g * interval '1 minute',
	1 + g % 2000, 1 + g % 2000
	FROM generate_series(1, 100000) g;
VACUUM ANALYZE;
};

# a customer's sessions, newest first: bingo_tune has no hand-picked set
my $stmt = 'SELECT sessions.id, sessions.start_time, movies.name FROM sessions '
  . 'JOIN movies ON movies.id = sessions.movie_id WHERE sessions.customer_id = $1 '
  . 'ORDER BY sessions.start_time DESC LIMIT 20';

for my $ranking ('hypopg', 'rules')
{
	my $db = "db_$ranking";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, $dataset);
	$node->safe_psql($db, 'CREATE EXTENSION bingo_tune CASCADE');
	$node->safe_psql($db, 'CREATE EXTENSION hypopg') if $ranking eq 'hypopg';
	# only the new row: bingo's own would be built too once their tables exist
	$node->safe_psql($db, "DELETE FROM bingo_tune.watch");
	$node->safe_psql($db, qq{
		INSERT INTO bingo_tune.watch (name, statement, budget, indexes, params)
		VALUES ('customer_sessions', \$q\$$stmt\$q\$, '50 ms', NULL, '{42}')});

	my $derived = $node->safe_psql($db, qq{
		SELECT string_agg(definition || ' ' || ranked_by, '; ' ORDER BY definition)
		FROM bingo_tune.derive(\$q\$$stmt\$q\$)});
	like($derived, qr/sessions \(customer_id.*\) .*$ranking/,
		"$ranking: derive() gives an index on sessions.customer_id");
	is( $node->safe_psql($db, q{
			SELECT string_agg(state, ',') FROM bingo_tune.advise()
			WHERE 'customer_sessions' = ANY (statements)}),
		join(',', map { 'missing' } split /; /, $derived),
		"$ranking: advise() lists the derived set, missing");

	ok(wait_passes($node, $db, 1), "$ranking: the watcher makes passes");
	$node->safe_psql($db, "PREPARE s(int) AS $stmt; EXECUTE s(42);");
	ok( $node->poll_query_until($db, q{
			SELECT count(*) > 0 AND bool_and(state = 'present') FROM bingo_tune.advise()
			WHERE 'customer_sessions' = ANY (statements)}),
		"$ranking: the watcher builds the derived set once the statement runs");
	ok(wait_passes($node, $db, 2), "$ranking: two more passes");
	is( $node->safe_psql($db, qq{
			SELECT string_agg(definition || ' ' || ranked_by, '; ' ORDER BY definition)
			FROM bingo_tune.derive(\$q\$$stmt\$q\$)}),
		$derived, "$ranking: with its indexes built, the same set is derived");
	is( $node->safe_psql($db, q{
			SELECT indexes FROM bingo_tune.report() WHERE name = 'customer_sessions'}),
		scalar(split /; /, $derived) . '/' . scalar(split /; /, $derived) . ' present',
		"$ranking: report() counts the derived set, present");
	is( $node->safe_psql($db, q{
			SELECT count(*) FROM bingo_tune.events
			WHERE action = 'failed' OR (action = 'created' AND statement <> 'customer_sessions')}),
		'0', "$ranking: nothing failed, nothing else built");
}

$node->stop;
done_testing();
