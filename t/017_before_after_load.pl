# before/after under load: pgbench runs the session by id lookup (as the
# app sends it, $1 a parameter) while the watcher builds its three indexes
# one after the other.  "before" is the state with none of them, later
# builds do not move it, and every run is counted exactly once:
# before + after = every run pgbench made = pg_stat_statements' calls.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('before_after_load', conf => q{
bingo_tune.naptime = 1
});
$node->safe_psql('postgres', $bingo_dataset);

my $statement = $node->safe_psql('postgres', q{
	SELECT statement FROM bingo_tune.watch WHERE name = 'session_by_id'});
my $script = "${PostgreSQL::Test::Utils::tmp_check}/session_by_id.sql";
$statement =~ s/\$1/:id/;
PostgreSQL::Test::Utils::append_to_file($script,
	"\\set id random(1, 100000)\n$statement;\n");

# One round of load: two clients for a second; returns the runs made.
sub load
{
	my ($out, $err) = run_command([
		'pgbench', '-n', '-M', 'prepared', '-c', '2', '-T', '1',
		'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ]);
	$out =~ /number of transactions actually processed: (\d+)/
	  or die "unexpected pgbench output: $out $err";
	return $1;
}

my $runs = 0;
my $rounds = 0;
my $built_all = q{
	SELECT count(*) = 3 FROM bingo_tune.advise()
	WHERE 'session_by_id' = ANY (statements) AND state = 'present'};
# load until all three indexes are built (bounded: the watcher needs a
# pass or two, the builds take well under a second each at this size)
while ($node->safe_psql('postgres', $built_all) ne 't')
{
	$runs += load();
	die "the indexes were not built" if ++$rounds > 120;
}
# and some more after the last build
$runs += load();
note "pgbench made $runs runs in $rounds + 1 rounds of 1 s";

cmp_ok($runs, '>', 0, 'pgbench ran the lookup');
my $qid = $node->safe_psql('postgres', q{
	SELECT queryid FROM bingo_tune.watched() WHERE statement = 'session_by_id'});
is($node->safe_psql('postgres', qq{
	SELECT sum(calls) FROM pg_stat_statements WHERE queryid = $qid}),
	$runs, 'pg_stat_statements counted every pgbench run');

my ($bc, $bf, $ac, $af, $nbuilt) = split /\|/, $node->safe_psql('postgres', q{
	SELECT before_calls, before_failed, after_calls, after_failed,
		   array_length(string_to_array(built, ', '), 1)
	FROM bingo_tune.before_after WHERE name = 'session_by_id'});
note "before $bc (+$bf failed), after $ac (+$af failed)";
is($bc + $bf + $ac + $af, $runs,
	'before + after = every run: none lost, none counted twice');
cmp_ok($bc, '>', 0, 'the runs before the first build are "before"');
is($nbuilt, 3, 'built lists the three indexes, built one by one');

# "before" ends at the first build, not at a later one: its end lies
# between the first build's start and its outcome
is($node->safe_psql('postgres', q{
	SELECT b.built_at >= (SELECT min(at) FROM bingo_tune.events
						  WHERE action = 'started' AND statement LIKE '%session_by_id%')
	   AND b.built_at <= (SELECT min(at) FROM bingo_tune.events
						  WHERE action = 'created' AND statement LIKE '%session_by_id%')
	FROM bingo_tune.before_after b WHERE name = 'session_by_id'}),
	't', '"before" is the state before the first of the builds');
is($node->safe_psql('postgres', q{
	SELECT r.calls = b.after_calls AND r.since = b.built_at
	FROM bingo_tune.report() r JOIN bingo_tune.before_after b USING (name)
	WHERE name = 'session_by_id'}),
	't', 'report() shows the "after" period');

$node->stop;
done_testing();
