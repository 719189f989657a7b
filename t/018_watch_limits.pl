# Limits that must not mislead: watched() lists every watched statement
# (not the first 32), the catalog refuses a statement whose parameter
# numbers no client could send (and whose analysis would allocate an
# array that long), and report() says "no run since build", not "not
# seen", for a statement right after the build its runs led to.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('watch_limits', conf => q{
bingo_tune.naptime = 1
});

$node->safe_psql('postgres', items_sql(20000, 100));

# --- watched() shows every statement ------------------------------------

$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget, indexes)
	SELECT 'extra_' || g, 'SELECT id FROM bt_items WHERE id = ' || g, '1 s', '{}'
	FROM generate_series(1, 40) g});
is($node->safe_psql('postgres', 'SELECT count(*) FROM bingo_tune.watch'), '46',
	'46 statements in the catalog');
is($node->safe_psql('postgres', 'SELECT count(*) FROM bingo_tune.watched()'), '46',
	'watched() lists all 46');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM bingo_tune.watched() w JOIN bingo_tune.watch c ON c.name = w.statement
	WHERE w.queryid = bingo_tune.queryid(c.statement, c.schema)}),
	'40', 'with the queryid of each whose table exists');
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name LIKE 'extra\_%'});

# --- the parameter limit -------------------------------------------------

my ($ret, $stdout, $stderr) = $node->psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget)
	VALUES ('huge', 'SELECT id FROM bt_items WHERE id = $200000000', '1 s')});
isnt($ret, 0, '$200000000 is refused');
like($stderr, qr/watched statement uses parameter \$200000000, above \$65535/,
	'the error names the parameter and the limit');
like($stderr, qr/HINT:  Number the statement's parameters \$1, \$2/, 'with a hint');
($ret, $stdout, $stderr) = $node->psql('postgres', q{
	UPDATE bingo_tune.watch SET statement = statement || ' OFFSET $65536'
	WHERE name = 'movie_list'});
like($stderr, qr/parameter \$65536, above \$65535/, 'an update is checked too');
($ret, $stdout, $stderr) = $node->psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget)
	VALUES ('wraps', 'SELECT id FROM bt_items WHERE id = $4294967301', '1 s')});
# from 18 the parser itself refuses a number too large for an int
like($stderr,
	$node->pg_version >= 18
	? qr/parameter number too large at or near "\$4294967301"/
	: qr/parameter \$4294967301, above \$65535/,
	'a number that wraps around in an int is refused too');
$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget)
	VALUES ('many', 'SELECT id FROM bt_items WHERE id = $65535', '1 s');
	DELETE FROM bingo_tune.watch WHERE name = 'many'});
pass('$65535 is accepted');

# --- report(): no run since build ----------------------------------------

$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, params)
	VALUES ('item_by_id', 'SELECT id, payload FROM bt_items WHERE id = $1', '1 s', 90,
			ARRAY['bt_items (id)'], '{42}')});
is(report($node, 'item_by_id', 'status'),
	'not seen', 'before any run: not seen');
$node->safe_psql('postgres', q{
	PREPARE item(integer) AS SELECT id, payload FROM bt_items WHERE id = $1;
	EXECUTE item(1); EXECUTE item(2);});
ok($node->poll_query_until('postgres', q{
	SELECT state = 'present' FROM bingo_tune.advise() WHERE 'item_by_id' = ANY (statements)}),
	'the watcher builds the index the runs need');
is(report($node, 'item_by_id', q{status || ' ' || calls}),
	'no run since build 0', 'right after the build: no run since build');
$node->safe_psql('postgres', q{
	PREPARE item(integer) AS SELECT id, payload FROM bt_items WHERE id = $1;
	EXECUTE item(3);});
is(report($node, 'item_by_id', q{status || ' ' || calls}),
	'ok 1', 'after a run: its status');
$node->safe_psql('postgres', q{SELECT bingo_tune.reset('item_by_id')});
is(report($node, 'item_by_id', 'status'),
	'not seen', 'after reset(): not seen');

# a build that comes before any run: the statement was never seen
$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget, indexes)
	VALUES ('item_by_payload', 'SELECT id FROM bt_items WHERE payload = $1', '1 s',
			ARRAY['bt_items (payload)'])});
$node->safe_psql('postgres', q{CALL bingo_tune.apply('item_by_payload')});
is(report($node, 'item_by_payload', q{status || ' ' || indexes}),
	'not seen 1/1 present', 'built before any run: not seen');

$node->stop;
done_testing();
