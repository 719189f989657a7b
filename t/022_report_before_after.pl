# before_after: when the watcher builds the index a watched statement needs,
# the report keeps the statement's figures from before the build beside
# those since, and the build shows in them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('main', conf => q{
bingo_tune.naptime = 1
});

$node->safe_psql('postgres', items_sql(50000, 200));
$node->safe_psql('postgres', q{
INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, params)
VALUES ('item_by_id', 'SELECT id, payload FROM bt_items WHERE id = $1', '1 s', 90,
		ARRAY['bt_items (id)'], '{42}');
});

# Runs as the application sends them: a prepared statement, $1 a parameter.
sub run_items
{
	my ($n) = @_;
	my $sql = "PREPARE item(integer) AS SELECT id, payload FROM bt_items WHERE id = \$1;\n";
	$sql .= "EXECUTE item($_);\n" for (1 .. $n);
	$node->safe_psql('postgres', $sql);
}

run_items(5);

# The watcher sees the runs and builds the index.
ok( $node->poll_query_until('postgres', q{
	SELECT state = 'present' FROM bingo_tune.advise() WHERE 'item_by_id' = ANY (statements)}),
	'the watcher builds the index item_by_id needs');

run_items(3);

is($node->safe_psql('postgres', q{
	SELECT built = bingo_tune.index_name('bt_items (id)') FROM bingo_tune.before_after
	WHERE name = 'item_by_id'}),
	't', 'before_after names the index the watcher built');
is($node->safe_psql('postgres', q{
	SELECT before_calls + after_calls = 8 AND before_calls >= 1 AND after_calls >= 3
	FROM bingo_tune.before_after WHERE name = 'item_by_id'}),
	't', 'every run is counted once, before or after the build');
is($node->safe_psql('postgres', q{
	SELECT before_p50_ms > after_p50_ms FROM bingo_tune.before_after WHERE name = 'item_by_id'}),
	't', 'the figures show what the build bought');
is($node->safe_psql('postgres', q{
	SELECT calls >= 3 AND since >= (SELECT built_at FROM bingo_tune.before_after WHERE name = 'item_by_id')
	FROM bingo_tune.report() WHERE name = 'item_by_id'}),
	't', 'report() counts from the build');

$node->safe_psql('postgres', q{SELECT bingo_tune.reset('item_by_id')});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM bingo_tune.before_after WHERE name = 'item_by_id'}),
	'0', 'reset() clears the before/after too');

$node->stop;
done_testing();
