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

my $node = PostgreSQL::Test::Cluster->new('watch_limits');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_stat_statements,bingo_tune'
compute_query_id = on
max_worker_processes = 16
bingo_tune.naptime = 1
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION bingo_tune CASCADE;
CREATE TABLE bt_items (id integer, payload text);
INSERT INTO bt_items SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
ANALYZE bt_items;
});

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
is($node->safe_psql('postgres', q{
	SELECT status FROM bingo_tune.report() WHERE name = 'item_by_id'}),
	'not seen', 'before any run: not seen');
$node->safe_psql('postgres', q{
	PREPARE item(integer) AS SELECT id, payload FROM bt_items WHERE id = $1;
	EXECUTE item(1); EXECUTE item(2);});
ok($node->poll_query_until('postgres', q{
	SELECT state = 'present' FROM bingo_tune.advise() WHERE 'item_by_id' = ANY (statements)}),
	'the watcher builds the index the runs need');
is($node->safe_psql('postgres', q{
	SELECT status || ' ' || calls FROM bingo_tune.report() WHERE name = 'item_by_id'}),
	'no run since build 0', 'right after the build: no run since build');
$node->safe_psql('postgres', q{
	PREPARE item(integer) AS SELECT id, payload FROM bt_items WHERE id = $1;
	EXECUTE item(3);});
is($node->safe_psql('postgres', q{
	SELECT status || ' ' || calls FROM bingo_tune.report() WHERE name = 'item_by_id'}),
	'ok 1', 'after a run: its status');
$node->safe_psql('postgres', q{SELECT bingo_tune.reset('item_by_id')});
is($node->safe_psql('postgres', q{
	SELECT status FROM bingo_tune.report() WHERE name = 'item_by_id'}),
	'not seen', 'after reset(): not seen');

# a build that comes before any run: the statement was never seen
$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget, indexes)
	VALUES ('item_by_payload', 'SELECT id FROM bt_items WHERE payload = $1', '1 s',
			ARRAY['bt_items (payload)'])});
$node->safe_psql('postgres', q{CALL bingo_tune.apply('item_by_payload')});
is($node->safe_psql('postgres', q{
	SELECT status || ' ' || indexes FROM bingo_tune.report() WHERE name = 'item_by_payload'}),
	'not seen 1/1 present', 'built before any run: not seen');

$node->stop;
done_testing();
