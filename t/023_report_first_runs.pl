# Runs of a watched statement are counted from the very first, in every
# mode, however long the watcher's naptime: made 0 s after the tables are
# created, in the transaction that creates them, in the session that
# created them, in a session that was already open, and in a new one.
# Nothing registers the statement meanwhile: the watcher makes no pass
# (naptime 1 h) and report() is called only afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('first_runs', conf => q{
bingo_tune.naptime = 3600
});

# n runs as the application sends them: prepared, $1 a parameter.  Each
# schema's table has a name of its own: from 18 the queryid hashes table
# names, not schemas or OIDs, so same-named tables would share one.
sub runs
{
	my ($schema, $n) = @_;
	my $sql = "PREPARE item(integer) AS SELECT id, payload FROM $schema.items_$schema WHERE id = \$1;\n";
	$sql .= "EXECUTE item($_);\n" for (1 .. $n);
	return $sql;
}

# A session open from before the tables exist, which has run statements
# already (so it has synced at an older state of the catalog).
my $old = $node->background_psql('postgres');
$old->query_safe('SELECT 1');

foreach my $mode ('auto', 'advise', 'off')
{
	my $schema = "s_$mode";

	$node->safe_psql('postgres', "ALTER SYSTEM SET bingo_tune.mode = '$mode'");
	$node->reload;
	ok( $node->poll_query_until('postgres',
			"SELECT mode = '$mode' FROM bingo_tune.watcher()"),
		"$mode: mode set");

	# the catalog row comes first, its tables later (as with bingo)
	$node->safe_psql('postgres', qq{
		CREATE SCHEMA $schema;
		INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, params, schema)
		VALUES ('first_$mode', 'SELECT id, payload FROM items_$schema WHERE id = \$1', '1 s', 90,
				ARRAY['items_$schema (id)'], '{1}', '$schema');});
	# a reload wakes the watcher for a pass: let it finish, then no more
	ok($node->poll_query_until('postgres', q{
		SELECT state = 'waiting' FROM bingo_tune.watched() WHERE statement = 'first_} . $mode . q{'}),
		"$mode: the statement waits for its table");
	my $passes = passes($node);
	# watched() above registered nothing: the table did not exist

	# create, load and run in one transaction; run again right after the commit
	$node->safe_psql('postgres', qq{
		BEGIN;
		CREATE TABLE $schema.items_$schema (id integer, payload text);
		INSERT INTO $schema.items_$schema SELECT g, 'x' FROM generate_series(1, 1000) g;
		} . runs($schema, 5) . qq{
		COMMIT;
		EXECUTE item(6); EXECUTE item(7); EXECUTE item(8);});
	# a new session, and the session that was open all along
	$node->safe_psql('postgres', runs($schema, 100));
	$old->query_safe(runs($schema, 50));
	$old->query_safe('DEALLOCATE item');

	is(passes($node), $passes, "$mode: the watcher made no pass meanwhile");
	my $qid = $node->safe_psql('postgres', qq{
		SELECT bingo_tune.queryid('SELECT id, payload FROM items_$schema WHERE id = \$1', '$schema')});
	is($node->safe_psql('postgres', qq{
		SELECT sum(calls) FROM pg_stat_statements WHERE queryid = $qid}),
		'158', "$mode: pg_stat_statements has the 158 runs");
	is($node->safe_psql('postgres', qq{
		SELECT calls || '/' || failed || ' ' || status FROM bingo_tune.report()
		WHERE name = 'first_$mode'}),
		'158/0 ok', "$mode: report() counted every run, the first ones included");
}

# DROP and CREATE again in one transaction (a second prepare_db): the new
# table's runs are counted under its new queryid right away.
my $passes = passes($node);
$node->safe_psql('postgres', q{
	BEGIN;
	DROP TABLE s_off.items_s_off;
	CREATE TABLE s_off.items_s_off (id integer, payload text);
	INSERT INTO s_off.items_s_off SELECT g, 'y' FROM generate_series(1, 1000) g;
	COMMIT;} . runs('s_off', 20));
is(passes($node), $passes, 'recreated: the watcher made no pass meanwhile');
is(report($node, 'first_off', 'calls'),
	'20', 'recreated: the runs on the new table are counted');

# The re-sync happens in the client's statement: it must never fail it,
# nor leave locks behind in the client's transaction.
is($node->safe_psql('postgres', q{
	BEGIN;
	CREATE TABLE s_off.third (a integer);
	SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	WHERE l.pid = pg_backend_pid() AND c.relname = 'items_s_off';
	COMMIT;}),
	'0', 'the re-sync leaves no lock on the watched tables in the client transaction');

# DDL the client rolls back, seen by the re-registration its own statement
# makes, costs nobody their figures: only the watcher's and report()'s
# passes forget statements.  Wait out the grace that keeps what any sync
# registered in the last 10 s, which would hide a forgotten entry here.
sleep(11);
$node->safe_psql('postgres', q{
	BEGIN;
	ALTER TABLE s_off.items_s_off RENAME TO items_old;
	CREATE TABLE s_off.items_s_off (id integer, payload text);
	SELECT count(*) FROM s_off.third;
	ROLLBACK;});
is(report($node, 'first_off', 'calls'),
	'20', 'DDL rolled back: the figures are still there');

$old->quit;
$node->stop;
done_testing();
