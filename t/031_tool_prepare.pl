# t/031_tool_prepare.pl: "bingo_tune prepare-db" with a stand-in prepare_db.
#
# The stand-in (t/fake_prepare_db.sh) creates bingo's tables and fills
# them one prepared INSERT per transaction, like prepare_db.  Each scenario
# uses its own database, since the lock and the marker are per database.
#
# Covered: two copies started at once run the command exactly once and both
# exit 0; the indexes exist afterwards; a failing command propagates its
# status and leaves no marker, and the next run does the work; a command
# that leaves a table empty writes no marker (exit 7); --force; a tool
# killed mid-command (SIGKILL) leaves no marker and the lock free, its
# command stops, and the next run does the work and restores the
# --fast-load setting the killed run left; SIGTERM while the command runs
# and SIGINT while waiting on the lock cancel cleanly (exit 128+N, no
# marker, lock released); --fast-load really turns synchronous_commit off
# for the command and restores the database's own value after success and
# after failure.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use BingoTune;

my $fake = "$ENV{TESTDIR}/t/fake_prepare_db.sh";
my $node = preloaded_node('primary', extension => 0);

# runs recorded as having prepared the data
sub markers
{
	my $db = shift;
	return $node->safe_psql($db,
		"SELECT count(*) FROM bingo_tune.prepared WHERE outcome IN ('prepared', 'adopted')");
}

my ($rc, $out, $err);

# --- two nodes at once: the command runs exactly once ---

my $c = newdb($node, 'twice');
my @a = tool_start('prepare-db', $c, '--', $fake, '--sessions', '300', '--pause', '2', $c);
my @b = tool_start('prepare-db', $c, '--', $fake, '--sessions', '300', '--pause', '2', $c);
my $rc_a = tool_finish(@a);
my $rc_b = tool_finish(@b);
is($rc_a, 0, 'first of two concurrent runs exits 0');
is($rc_b, 0, 'second of two concurrent runs exits 0');
my $all = ${ $a[1] } . ${ $a[2] } . ${ $b[1] } . ${ $b[2] };
my @ran = $all =~ /creating bingo's tables/g;
is(scalar @ran, 1, 'the command ran exactly once');
like($all, qr/waiting for the prepare lock, held by superuser role "[^"]+" \(pid \d+, from local socket, connected since [^;]+; it calls itself "[^"]*"\)/,
	'the waiting node says who holds the lock: role, superuser, client, since when, claimed name');
like($all, qr/data already prepared by \S+ \(user \S+\) at .*: not running the command/,
	'the other node says by whom and when it was prepared');
is(markers('twice'), '1', 'one marker');
is($node->safe_psql('twice', 'SELECT count(*) FROM sessions'), '300',
	'the data is there once');
is( $node->safe_psql('twice',
		"SELECT string_agg(DISTINCT state, ',') FROM bingo_tune.advise()"),
	'present', 'after prepare-db every index the catalog wants is present');
is($node->safe_psql('twice', "SELECT rows->>'sessions' FROM bingo_tune.prepared"),
	'300', 'the marker records the row counts');
is(lock_holders($node), '0', 'the lock is released');

# a third run skips, and --force runs again
($rc, $out, $err) = tool('prepare-db', $c, '--', $fake, '--sessions', '100', $c);
is($rc, 0, 'a later run exits 0');
unlike($out, qr/creating bingo's tables/, 'a later run does not run the command');
($rc, $out, $err) = tool('prepare-db', '--force', $c, '--', $fake, '--sessions', '100', $c);
is($rc, 0, '--force exits 0');
like($out, qr/creating bingo's tables/, '--force runs the command again');
is(markers('twice'), '2', '--force records a second marker');

# --- a failing command: its status, no marker; then the next run works ---

$c = newdb($node, 'failing');
$node->safe_psql('postgres', 'ALTER DATABASE failing SET synchronous_commit = local');
($rc, $out, $err) =
  tool('prepare-db', '--fast-load', $c, '--', $fake, '--sessions', '50', '--fail', '3', $c);
is($rc, 3, 'a failing command: its exit status is passed on');
like($err, qr/the command failed with exit status 3/, 'a failing command: says so');
like($err, qr/the run is recorded as failed, so the next run runs the command again/,
	'a failing command: says what the next run does');
is(last_run($node, 'failing'), 'failed 3', 'a failing command: its run is recorded as failed, with its status');
like($out, qr/synchronous_commit off\)/, '--fast-load: the command runs with synchronous_commit off');
is(markers('failing'), '0', 'a failing command: no marker');
is(db_sync_commit($node, 'failing'), 'synchronous_commit=local',
	'--fast-load after a failure: the database setting is restored');
is($node->safe_psql('failing', 'SELECT count(*) FROM bingo_tune.fast_load'), '0',
	'--fast-load after a failure: no leftover record');

($rc, $out, $err) = tool('prepare-db', '--fast-load', $c, '--', $fake, '--sessions', '50', $c);
is($rc, 0, 'after a failure the next run does the work');
like($out, qr/creating bingo's tables/, 'the next run runs the command');
is(markers('failing'), '1', 'the next run writes the marker');
is(db_sync_commit($node, 'failing'), 'synchronous_commit=local',
	'--fast-load after success: the database setting is restored');

# a command that cannot be found
$c = newdb($node, 'notfound');
($rc, $out, $err) = tool('prepare-db', $c, '--', '/no/such/prepare_db');
is($rc, 127, 'a command that does not exist: 127');
is(markers('notfound'), '0', 'a command that does not exist: no marker');

# --- a command that exits 0 but leaves a table empty ---

$c = newdb($node, 'empty');
($rc, $out, $err) = tool('prepare-db', $c, '--', $fake, '--empty', $c);
is($rc, 7, 'tables left empty: exit 7');
like($err, qr/the command exited 0 but left table public\.\S+ empty/, 'tables left empty: says which');
is(last_run($node, 'empty'), 'not filled 0', 'tables left empty: recorded as not filled');
is(markers('empty'), '0', 'tables left empty: no marker');

# --- killed mid-command with --fast-load on: the next run repairs ---

$c = newdb($node, 'killed');
my ($h, $hout, $herr) =
  tool_start('prepare-db', '--fast-load', $c, '--', $fake, '--sessions', '50', '--pause', '60', $c);
wait_output($h, $hout, qr/pausing 60 s/, 'the command to start');
my ($child) = $$hout =~ /creating bingo's tables \(pid (\d+)/;
is(db_sync_commit($node, 'killed'), 'synchronous_commit=off', '--fast-load: the setting is off while the command runs');
$h->signal('KILL');
$rc = tool_finish($h, $hout, $herr);
is($rc, 128 + 9, 'the tool was killed');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory'
		   AND objid = (${prepare_lock_key}::bigint & 4294967295)::oid"),
	'a killed tool leaves the lock free');
my $gone = 0;
for (1 .. 100)
{
	if (!kill(0, $child)) { $gone = 1; last; }
	usleep(100_000);
}
ok($gone, 'the command of a killed tool is stopped too');
is(markers('killed'), '0', 'a killed run leaves no marker');
is(last_run($node, 'killed'), 'running -', 'a killed run leaves its start without an end');
is($node->safe_psql('killed', 'SELECT count(*) FROM bingo_tune.fast_load'), '1',
	'a killed --fast-load run leaves its record');

($rc, $out, $err) = tool('prepare-db', $c, '--', $fake, '--sessions', '50', $c);
is($rc, 0, 'after a killed run the next run does the work');
like($err, qr/restored synchronous_commit for database "killed" \(no database setting\), left off by a --fast-load run on \S+ at /,
	'the next run restores the setting the killed run left, and says so');
like($err, qr/the last run, "fake_prepare_db\.sh" on \S+ \(tool pid \d+, user \S+\) started at .*, never finished: it was interrupted; running the command again/,
	'the next run says the last run was interrupted');
like($out, qr/synchronous_commit on\)/, 'the next run loads with synchronous_commit back on');
is(db_sync_commit($node, 'killed'), '', 'the killed run\'s setting is gone');
is(markers('killed'), '1', 'the next run writes the marker');

# --- SIGTERM while the command runs ---

$c = newdb($node, 'termed');
($h, $hout, $herr) =
  tool_start('prepare-db', '--fast-load', $c, '--', $fake, '--sessions', '50', '--pause', '60', $c);
wait_output($h, $hout, qr/pausing 60 s/, 'the command to start');
($child) = $$hout =~ /creating bingo's tables \(pid (\d+)/;
$h->signal('TERM');
$rc = tool_finish($h, $hout, $herr);
is($rc, 128 + 15, 'SIGTERM: exit 143');
like($$herr, qr/interrupted: the run is recorded as interrupted.*\n.*the prepare lock is released/,
	'SIGTERM: says what it did, the lock last');
# the whole group gets SIGTERM, so the status is whichever of the
# script's processes ended it first
like(last_run($node, 'termed'), qr/^interrupted \d+$/,
	'SIGTERM: the run is recorded as interrupted, with the command\'s status');
ok(!kill(0, $child), 'SIGTERM: the command was stopped before the tool exited');
is(markers('termed'), '0', 'SIGTERM: no marker');
is(lock_holders($node), '0', 'SIGTERM: the lock is released');
is(db_sync_commit($node, 'termed'), '', 'SIGTERM: the --fast-load setting is restored at once');

# --- Ctrl-C while waiting on the lock ---

$c = newdb($node, 'waiting');
my $holder = $node->background_psql('waiting');
$holder->query_safe("SELECT pg_advisory_lock(${prepare_lock_key})");
($h, $hout, $herr) = tool_start('prepare-db', $c, '--', $fake, '--sessions', '50', $c);
wait_output($h, $herr, qr/waiting for the prepare lock/, 'the tool to wait for the lock');
$h->signal('INT');
$rc = tool_finish($h, $hout, $herr);
is($rc, 128 + 2, 'SIGINT while waiting: exit 130');
like($$herr, qr/interrupted while waiting for the prepare lock; nothing was done/,
	'SIGINT while waiting: says so');
unlike($$hout, qr/creating bingo's tables/, 'SIGINT while waiting: the command never ran');
is(markers('waiting'), '0', 'SIGINT while waiting: no marker');

# once the holder lets go, a waiting tool goes ahead
($h, $hout, $herr) = tool_start('prepare-db', $c, '--', $fake, '--sessions', '50', $c);
wait_output($h, $herr, qr/waiting for the prepare lock/, 'the tool to wait for the lock');
$holder->query_safe("SELECT pg_advisory_unlock(${prepare_lock_key})");
$rc = tool_finish($h, $hout, $herr);
is($rc, 0, 'the waiting tool goes ahead when the lock is free');
like($$herr, qr/got the prepare lock after \d+ s/, 'it says it waited');
is(markers('waiting'), '1', 'and writes the marker');
$holder->quit;

done_testing();
