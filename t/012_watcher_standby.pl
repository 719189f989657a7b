# A streaming standby has its own watcher.  It sees the statement run on
# the standby but builds nothing: it logs the recommendation and lists it in
# bingo_tune.recommendations() (the events table is read-only there).  The
# index built on the primary replicates and then shows present.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $primary = preloaded_node('primary', streaming => 1, conf => q{
bingo_tune.naptime = 1
});
$primary->safe_psql('postgres', $movies_sql);

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;

ok(wait_watchers($standby, 'postgres', 1),
	'the standby has a watcher');
ok($standby->poll_query_until('postgres', q{
	SELECT passes > 0 FROM bingo_tune.watcher()}),
	'it makes passes on the standby');

# The app reads from the standby.
$standby->safe_psql('postgres', $movie_list);
ok($standby->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM bingo_tune.recommendations()
	WHERE statements = 'movie_list' AND reason LIKE 'standby%'}),
	'the standby watcher recommends the index');
like(slurp_file($standby->logfile),
	qr/bingo_tune: statement "movie_list" needs index "bingo_tune_movies_year_desc_name_id_desc_incl_duration"/,
	'and logs the recommendation');
ok(wait_passes($standby, 'postgres', 3), 'more passes on the standby');
is($standby->safe_psql('postgres', q{
	SELECT state FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'missing', 'the standby built nothing');
is($standby->safe_psql('postgres', q{
	SELECT count(*) FROM bingo_tune.recommendations() WHERE statements = 'movie_list'}),
	'1', 'the recommendation is made once');
is($primary->safe_psql('postgres', q{
	SELECT count(*) FROM bingo_tune.events WHERE source = 'watcher'}),
	'0', 'the primary, which did not see the statement, did nothing');

# The statement runs on the primary: its watcher builds, and it replicates.
$primary->safe_psql('postgres', $movie_list);
ok($primary->poll_query_until('postgres', q{
	SELECT state = 'present' FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'the primary builds the index');
$primary->wait_for_catchup($standby);
ok($standby->poll_query_until('postgres', q{
	SELECT state = 'present' FROM bingo_tune.advise() WHERE 'movie_list' = ANY (statements)}),
	'the index replicates and shows present on the standby');
ok($standby->wait_for_log(
	qr/bingo_tune: statement "movie_list": index "\S+" already present/),
	'the standby watcher notes it present');

$standby->stop;
$primary->stop;
done_testing();
