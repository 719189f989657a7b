# t/032_tool_check.pl: "bingo_tune report" and "bingo_tune check", the
# deploy gate.
#
# On a database prepared by the tool (stand-in prepare_db, indexes built):
# check exits 0 when every statement is within budget and 6 when one is
# over (a statement added to the catalog that sleeps past its budget), both
# print aligned tables or JSON; report prints the extension's report; a
# database without the extension gives exit 4, an extension without
# check() exit 5.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;
use JSON::PP;

my $fake = "$ENV{TESTDIR}/t/fake_prepare_db.sh";

my $node = preloaded_node('primary', extension => 0);
$node->safe_psql('postgres', 'CREATE DATABASE bingo');
my $c = $node->connstr('bingo');
my ($rc, $out, $err);

# a database without the extension
($rc, $out, $err) = tool('check', $c);
is($rc, 4, 'check without the extension: exit 4');
like($err, qr/extension bingo_tune is not installed in database "bingo"/,
	'check without the extension: says so');
like($err, qr/Run "bingo_tune install" first/, 'check without the extension: says what to do');

($rc, $out, $err) = tool('prepare-db', '-q', $c, '--', $fake, '--sessions', '2000', $c);
is($rc, 0, 'database prepared by the tool');

# --- every statement within budget ---

($rc, $out, $err) = tool('check', $c);
is($rc, 0, 'check: all within budget, exit 0');
like($out, qr/^ name\s+\|.*\| within_budget \|/m, 'check prints a table with a header');
like($out, qr/^ session_list\s+\|/m, 'check lists session_list');
like($out, qr/\(6 rows\)/, 'check lists the six bingo statements');
is((grep { length($_) > 120 } split /\n/, $out), 0, 'check: every line fits 120 columns');
unlike($out, qr/times_ms|plan_indexes/, 'check: the other columns only with --wide');
($rc, $out, $err) = tool('check', '--wide', '--runs', '1', $c);
like($out, qr/\| times_ms \|.*\| plan_indexes/, 'check --wide shows every column');
like($err, qr/all 6 statements within budget/, 'check says the verdict');

($rc, $out, $err) = tool('check', '--json', '--runs', '2', $c);
is($rc, 0, 'check --json: exit 0');
my $rows = decode_json($out);
is(scalar @$rows, 6, 'check --json: an array of six objects');
is_deeply([ sort map { $_->{name} } @$rows ],
	[qw(customer_by_id customer_list movie_by_id movie_list session_by_id session_list)],
	'check --json: the six bingo statements');
ok((!grep { !$_->{within_budget} } @$rows), 'check --json: all within budget');
is($rows->[0]{runs}, 2, 'check --runs is passed on');

# --- one statement over budget ---

$node->safe_psql('bingo', q{
INSERT INTO bingo_tune.watch (name, statement, budget, percentile)
VALUES ('slow_one', 'SELECT pg_sleep(0.3)', '50 ms', 100)});

($rc, $out, $err) = tool('check', '--name', 'slow_one', '--runs', '1', $c);
is($rc, 6, 'check: a statement over budget, exit 6');
like($err, qr/1 of 1 statements over budget: slow_one/, 'check names the statement over budget');

($rc, $out, $err) = tool('check', '-q', '--runs', '1', $c);
is($rc, 6, 'check of all statements with one over budget: exit 6');
is($out, '', 'check -q prints no table');
like($err, qr/1 of 7 statements over budget: slow_one$/m, 'only the slow one is over budget');

($rc, $out, $err) = tool('check', '--name', 'session_by_id', $c);
is($rc, 0, 'check --name of a statement within budget: exit 0');
like($out, qr/\(1 row\)/, 'check --name checks that one only');

($rc, $out, $err) = tool('check', '--name', 'no_such_statement', $c);
isnt($rc, 0, 'check of an unknown statement fails');
isnt($rc, 6, 'check of an unknown statement is not reported as over budget');

# --- report ---

($rc, $out, $err) = tool('report', $c);
is($rc, 0, 'report: exit 0');
like($out, qr/^ name\s+\|.*\| status\b/m, 'report prints a table with a header');
like($out, qr/^ slow_one\s+\|/m, 'report lists the added statement');
my @lines = split /\n/, $out;
is((grep { length($_) > 120 } @lines), 0, 'report: every line fits 120 columns');
like($out, qr/^ name\s+\| calls \| failed \| p50_ms \| p90_ms \| p99_ms \| budget_ms \| headroom_pct \| indexes\s+\| status\s*$/m,
	'report: the default columns, in order');
unlike($out, qr/queryid|statement|since/, 'report: the other columns only with --wide');
($rc, $out, $err) = tool('report', '--wide', $c);
like($out, qr/\| queryid\s+\|/, 'report --wide shows every column');
like($out, qr/\| SELECT sessions\.id, sessions\.start_time, customers\.id, cu\.\.\.\s/,
	'report --wide cuts long texts in the table');

# psql's options reach the same server: -h socket directory, -p, -U
($rc, $out, $err) = tool('report', '-h', $node->host, '-p', $node->port, '-U', scalar(getpwuid($>)), '-d', 'bingo');
is($rc, 0, 'report -h -p -U -d: exit 0');
like($out, qr/^ slow_one\s+\|/m, 'report -h -p -U -d: the same report');
($rc, $out, $err) = tool('report', '-v', $c);
like($out, qr/sessions\.id DESC LIMIT 100000/, 'report -v shows long texts in full');
($rc, $out, $err) = tool('report', '--json', $c);
is($rc, 0, 'report --json: exit 0');
$rows = decode_json($out);
is(scalar @$rows, 7, 'report --json: one object per watched statement');
ok((grep { $_->{name} eq 'slow_one' && exists $_->{status} } @$rows),
	'report --json: objects carry the columns by name');

# --- an extension without check() ---

$node->safe_psql('bingo', q{
ALTER EXTENSION bingo_tune DROP FUNCTION bingo_tune."check"(text, integer);
DROP FUNCTION bingo_tune."check"(text, integer)});
($rc, $out, $err) = tool('check', $c);
is($rc, 5, 'check against an extension without check(): exit 5');
like($err, qr/has no bingo_tune\.check\(text,integer\)/, 'missing check(): clear message');

done_testing();
