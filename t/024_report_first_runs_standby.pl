# On a hot standby the app's DDL arrives by replay, where no hook sees it:
# the first runs on the standby after the primary created the tables are
# counted all the same, in a new session and in one that was open before,
# while the standby's watcher makes no pass (naptime 1 h) and report() is
# called only afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $primary = preloaded_node('primary', streaming => 1, conf => q{
bingo_tune.naptime = 1
});

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->append_conf('postgresql.conf', 'bingo_tune.naptime = 3600');
$standby->start;

ok($standby->poll_query_until('postgres', q{
	SELECT passes > 0 FROM bingo_tune.watcher()}),
	'the standby watcher made its first pass');
my $passes = passes($standby);

# a session of the app on the standby, open from before the tables exist
my $old = $standby->background_psql('postgres');
$old->query_safe('SELECT 1');

$primary->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, params)
	VALUES ('item_by_id', 'SELECT id, payload FROM items WHERE id = $1', '1 s', 90,
			ARRAY['items (id)'], '{1}');
	CREATE TABLE items (id integer, payload text);
	INSERT INTO items SELECT g, 'x' FROM generate_series(1, 1000) g;});
$primary->wait_for_catchup($standby);

my $runs = "PREPARE item(integer) AS SELECT id, payload FROM items WHERE id = \$1;\n";
$runs .= "EXECUTE item($_);\n" for (1 .. 30);
# a new session first, then the one that was open all along
$standby->safe_psql('postgres', $runs);
$old->query_safe($runs);

is(passes($standby), $passes,
	'the standby watcher made no pass meanwhile');
is(report($standby, 'item_by_id', 'calls'),
	'60', 'the standby counted every run, the first ones included');

$old->quit;
$standby->stop;
$primary->stop;
done_testing();
