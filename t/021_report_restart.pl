# report() after a restart: the histograms live in shared memory, so they
# start empty and say since when.  bingo_tune.max_watched bounds them: past
# it, statements are not tracked and a warning says so once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

my $node = preloaded_node('main', conf => q{
bingo_tune.mode = off
bingo_tune.max_watched = 3
});

# Four statements (bingo's own cannot be matched: its tables do not exist),
# one more than there is room for.  They are taken in catalog order
# (priority, then name): four, one, three fit, two does not.
my ($stdout, $stderr);
$node->psql('postgres', q{
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES
	('one', 'SELECT 1', '1 s'),
	('two', 'SELECT 1, 2', '1 s'),
	('three', 'SELECT 1, 2, 3', '1 s'),
	('four', 'SELECT 1, 2, 3, 4', '1 s');
SELECT count(*) FROM bingo_tune.report();
SELECT count(*) FROM bingo_tune.report();
}, stdout => \$stdout, stderr => \$stderr);
my @warnings = ($stderr =~ /WARNING:  bingo_tune is already tracking 3 statements; "two" is not tracked/g);
is(scalar(@warnings), 1, 'a full table is reported once');
is($node->safe_psql('postgres', q{
	SELECT string_agg(name || ':' || status, ',' ORDER BY name)
	FROM bingo_tune.report() WHERE NOT name LIKE '%\_%'}),
	'four:not seen,one:not seen,three:not seen,two:not tracked',
	'the statement that did not fit is shown as not tracked');

# Room again once a statement leaves the catalog.
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name = 'one'});
is(report($node, 'two', 'status'),
	'not seen', 'a freed slot is used');

$node->safe_psql('postgres', 'SELECT 1, 2; SELECT 1, 2; SELECT 1, 2, 3, 4;');
is($node->safe_psql('postgres', q{
	SELECT string_agg(name || ':' || calls, ',' ORDER BY name)
	FROM bingo_tune.report() WHERE NOT name LIKE '%\_%'}),
	'four:1,three:0,two:2', 'runs are counted before the restart');

$node->restart;

is($node->safe_psql('postgres', q{
	SELECT string_agg(name || ':' || calls || ':' || status, ',' ORDER BY name)
	FROM bingo_tune.report() WHERE NOT name LIKE '%\_%'}),
	'four:0:not seen,three:0:not seen,two:0:not seen',
	'after a restart the histograms start empty');
is($node->safe_psql('postgres', q{
	SELECT bool_and(since >= pg_postmaster_start_time())
	FROM bingo_tune.report() WHERE NOT name LIKE '%\_%'}),
	't', 'and say since when: not before the restart');

# Tracking resumes without anyone touching the catalog: report() above
# registered the statements again.
$node->safe_psql('postgres', 'SELECT 1, 2;');
is(report($node, 'two', 'calls'),
	'1', 'runs after the restart are counted');

$node->stop;
done_testing();
