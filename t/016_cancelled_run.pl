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
use BingoTune;

my $node = preloaded_node('cancelled_run', conf => q{
bingo_tune.naptime = 1
bingo_tune.min_running = 600s
});
$node->safe_psql('postgres', $bingo_dataset);
my $old_qid = $node->safe_psql('postgres', q{
	SELECT bingo_tune.queryid(statement, schema) FROM bingo_tune.watch WHERE name = 'session_list'});

# A second prepare_db: the tables are dropped and created again (new
# queryid), and the app's first request comes at once.  Without hash and
# merge joins the statement runs for a long time on this data: the 300 ms
# statement_timeout cuts it off.
$node->safe_psql('postgres', 'DROP TABLE sessions, customers, movies');
my ($stdout, $stderr);
$node->psql('postgres', $bingo_dataset . qq{
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

ok(wait_present($node, 'session_list'),
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
