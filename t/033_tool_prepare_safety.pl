# t/033_tool_prepare_safety.pl: prepare-db never reloads, loses or
# half-loads data, and never leaves its command running without the lock.
#
# Covered: a failed --force run makes the next run run the command; data no
# run recorded is kept (exit 9) and can be adopted (--adopt); a view in
# place of a table is refused without running its function; no process of
# the command's group survives SIGTERM to the tool (a grandchild that
# ignores SIGTERM is killed after the grace period), a lost connection
# (pg_terminate_backend of the tool's session), or a command that exits
# and leaves a process behind; --fast-load is restored after the lost
# connection, by reconnecting; --lock-timeout gives up with exit 8 and the
# waiting message names a holder that is not a superuser as not the tool.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use BingoTune;

my $fake = "$ENV{TESTDIR}/t/fake_prepare_db.sh";
my $tmp = PostgreSQL::Test::Utils::tempdir();

my $node = preloaded_node('primary', extension => 0);

# A stand-in that loads, then leaves a grandchild behind in its process
# group: it touches a file every 0.1 s and, with "stubborn", ignores
# SIGTERM.  "exit" makes the wrapper exit 0 at once instead of waiting.
my $wrapper = "$tmp/wrapper.sh";
open my $fh, '>', $wrapper or die $!;
print $fh <<'SH';
#!/bin/sh
# wrapper.sh CONNINFO BEATFILE MODE(stubborn|plain|exit)
conn=$1; beat=$2; mode=$3
psql -X -q -d "$conn" -c 'CREATE TABLE IF NOT EXISTS sessions (id int); CREATE TABLE IF NOT EXISTS customers (id int); CREATE TABLE IF NOT EXISTS movies (id int)'
(
	[ "$mode" = stubborn ] && trap '' TERM
	while :; do date +%s%N > "$beat"; sleep 0.1; done
) &
echo "wrapper: grandchild $!"
[ "$mode" = exit ] && exit 0
wait
SH
close $fh;
chmod 0755, $wrapper;

# whether a process is gone, waiting up to 5 s for it
sub gone
{
	my $pid = shift;
	for (1 .. 50)
	{
		return 1 if !kill(0, $pid);
		usleep(100_000);
	}
	return 0;
}

# whether the beat file stopped changing
sub beat_stopped
{
	my $file = shift;
	my $before = slurp_file($file);
	usleep(600_000);
	return slurp_file($file) eq $before;
}

my ($rc, $out, $err, $h, $hout, $herr);

# --- a failed --force run makes the next run run the command ---

my $c = newdb($node, 'forcefail');
($rc, $out, $err) = tool('prepare-db', '--no-apply', $c, '--', $fake, '--sessions', '200', $c);
is($rc, 0, 'force/fail: prepared once');
is(last_run($node, 'forcefail'), 'prepared 0', 'force/fail: recorded as prepared');
# the forced run re-creates the tables, loads a tenth, then fails
($rc, $out, $err) = tool('prepare-db', '--no-apply', '--force', $c, '--', $fake, '--sessions', '20', '--fail', '3', $c);
is($rc, 3, 'force/fail: the forced run fails with its status');
is(last_run($node, 'forcefail'), 'failed 3', 'force/fail: the forced run is recorded as failed');
($rc, $out, $err) = tool('prepare-db', '--no-apply', $c, '--', $fake, '--sessions', '200', $c);
is($rc, 0, 'force/fail: the next run exits 0');
like($err, qr/the last run, "fake_prepare_db\.sh" on \S+ at .*, ended failed \(exit status 3\): running the command again/,
	'force/fail: the next run says why it runs the command');
like($out, qr/creating bingo's tables/, 'force/fail: the next run ran the command');
is(last_run($node, 'forcefail'), 'prepared 0', 'force/fail: prepared again');

# --- data no run recorded is kept; --adopt records it ---

$c = newdb($node, 'unmarked');
($rc, $out, $err) = tool('prepare-db', '--no-apply', $c, '--', $fake, '--sessions', '300', $c);
is($rc, 0, 'unmarked: prepared');
$node->safe_psql('unmarked', 'DROP EXTENSION bingo_tune; CREATE EXTENSION bingo_tune');
my $touched = "$tmp/unmarked-ran";
($rc, $out, $err) = tool('prepare-db', $c, '--', 'touch', $touched);
is($rc, 9, 'unmarked: exit 9');
like($err, qr/table public\.sessions holds data: \d+ bytes/, 'unmarked: says which table holds data');
like($err, qr/the tables already hold data, but no run of prepare-db is recorded: not running the command/,
	'unmarked: says it does not run the command');
like($err, qr/add --adopt\. To replace it, run the command anyway: add --force/,
	'unmarked: offers --adopt and --force');
ok(!-e $touched, 'unmarked: the command did not run');
is($node->safe_psql('unmarked', 'SELECT count(*) FROM sessions'), '300', 'unmarked: the data is kept');
is($node->safe_psql('unmarked', 'SELECT count(*) FROM bingo_tune.prepared'), '0',
	'unmarked: nothing recorded');

($rc, $out, $err) = tool('prepare-db', '--adopt', '--no-apply', $c);
is($rc, 0, '--adopt: exit 0');
like($err, qr/adopted the data in the tables as prepared/, '--adopt: says so');
is( $node->safe_psql('unmarked',
		"SELECT command, outcome, rows->>'sessions' FROM bingo_tune.prepared"),
	'(adopted)|adopted|300', '--adopt: recorded with the row counts');
($rc, $out, $err) = tool('prepare-db', '--no-apply', $c, '--', 'touch', $touched);
is($rc, 0, 'after --adopt: exit 0');
like($err, qr/data already adopted by \S+/, 'after --adopt: the data counts as prepared');
ok(!-e $touched, 'after --adopt: the command did not run');

# a view over an app-owned function in place of a table: refused, not read
$c = newdb($node, 'viewtrap');
$node->safe_psql('viewtrap', q{
CREATE ROLE app LOGIN;
CREATE TABLE public.trap_log (who text);
ALTER TABLE public.trap_log OWNER TO app;
CREATE FUNCTION public.trap() RETURNS SETOF integer LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.trap_log VALUES (current_user); RETURN NEXT 1; END$$;
ALTER FUNCTION public.trap() OWNER TO app;
CREATE TABLE sessions (id int); INSERT INTO sessions VALUES (1);
CREATE TABLE customers (id int); INSERT INTO customers VALUES (1);
CREATE VIEW movies AS SELECT t AS id FROM public.trap() t;
ALTER VIEW movies OWNER TO app;
});
($rc, $out, $err) = tool('prepare-db', '--adopt', '--no-apply', $c);
is($rc, 1, 'a view as a table: --adopt refused');
like($err, qr/public\.movies is not a table \(relkind 'v'\): the tool accepts only ordinary and partitioned tables/,
	'a view as a table: says so');
($rc, $out, $err) = tool('prepare-db', '--no-apply', $c, '--', 'touch', $touched);
is($rc, 1, 'a view as a table: prepare-db refused');
ok(!-e $touched, 'a view as a table: the command did not run');
is($node->safe_psql('viewtrap', 'SELECT count(*) FROM public.trap_log'), '0',
	'a view as a table: the app\'s function never ran');

# --- SIGTERM: the whole group goes, a stubborn grandchild by SIGKILL ---

$c = newdb($node, 'groupterm');
my $beat = "$tmp/beat-term";
($h, $hout, $herr) = tool_start('prepare-db', '--no-apply', $c, '--', $wrapper, $c, $beat, 'stubborn');
wait_output($h, $hout, qr/grandchild (\d+)/, 'the grandchild to start');
my ($grandchild) = $$hout =~ /grandchild (\d+)/;
ok(kill(0, $grandchild), 'SIGTERM: the grandchild runs');
$h->signal('TERM');
$rc = tool_finish($h, $hout, $herr);
is($rc, 143, 'SIGTERM: exit 143');
ok(!kill(0, $grandchild), 'SIGTERM: the grandchild that ignores SIGTERM is gone when the tool exits');
ok(beat_stopped($beat), 'SIGTERM: nothing writes any more');
like($$herr, qr/did not exit within 10 s of SIGTERM; killing it/, 'SIGTERM: says it had to kill');
like($$herr, qr/killing it\n(.*\n)*.*the prepare lock is released/, 'SIGTERM: the lock is released after the group is gone');
is(lock_holders($node), '0', 'SIGTERM: the lock is free');
like(last_run($node, 'groupterm'), qr/^interrupted \d+$/, 'SIGTERM: recorded as interrupted');

# --- a command that exits 0 and leaves a process behind ---

$c = newdb($node, 'groupexit');
$beat = "$tmp/beat-exit";
($rc, $out, $err) = tool('prepare-db', '--no-apply', $c, '--', $wrapper, $c, $beat, 'exit');
($grandchild) = $out =~ /grandchild (\d+)/;
is($rc, 1, 'left-behind process: exit 1');
like($err, qr/the command exited but left processes of its group running; stopping them/,
	'left-behind process: says so');
ok(!kill(0, $grandchild), 'left-behind process: gone when the tool exits');
ok(beat_stopped($beat), 'left-behind process: nothing writes any more');
is(last_run($node, 'groupexit'), 'failed 0', 'left-behind process: not recorded as prepared');

# --- lost connection (and so lost lock): group stopped, setting restored ---

$c = newdb($node, 'lostconn');
$beat = "$tmp/beat-lost";
($h, $hout, $herr) = tool_start('prepare-db', '--no-apply', '--fast-load', $c, '--', $wrapper, $c, $beat, 'plain');
wait_output($h, $hout, qr/grandchild (\d+)/, 'the grandchild to start');
($grandchild) = $$hout =~ /grandchild (\d+)/;
is(db_sync_commit($node, 'lostconn'), 'synchronous_commit=off', 'lost connection: --fast-load is on');
my $terminated = $node->safe_psql('postgres', q{
SELECT pg_terminate_backend(l.pid) FROM pg_locks l
 WHERE l.locktype = 'advisory' AND l.objid = (27700470620291074::bigint & 4294967295)::oid});
is($terminated, 't', "lost connection: the tool's session was terminated");
$rc = tool_finish($h, $hout, $herr);
is($rc, 1, 'lost connection: exit 1');
like($$herr, qr/the prepare lock is gone, so another node may start the command: stopping the command's process group/,
	'lost connection: says the lock is gone');
ok(!kill(0, $grandchild), 'lost connection: the grandchild is gone');
ok(beat_stopped($beat), 'lost connection: nothing writes any more');
like($$herr, qr/fast load: synchronous_commit for database "lostconn" restored/,
	'lost connection: the tool reconnected and restored the setting');
is(db_sync_commit($node, 'lostconn'), '', 'lost connection: the database setting is restored');
is($node->safe_psql('lostconn', 'SELECT count(*) FROM bingo_tune.fast_load'), '0',
	'lost connection: no leftover record');
is(last_run($node, 'lostconn'), 'interrupted -', 'lost connection: the run is recorded as interrupted');

# --- --lock-timeout, with the key taken by a role that is not a superuser ---

$c = newdb($node, 'locktimeout');
$node->safe_psql('postgres', 'CREATE ROLE squatter LOGIN');
my $holder = $node->background_psql('locktimeout', extra_params => [ '-U', 'squatter' ]);
$holder->query_safe("SET application_name = 'bingo_tune prepare-db on node9'");
$holder->query_safe("SELECT pg_advisory_lock(${prepare_lock_key})");
($rc, $out, $err) = tool('prepare-db', '--lock-timeout', '2s', $c, '--', 'touch', $touched);
is($rc, 8, '--lock-timeout: exit 8');
like($err, qr/held by role "squatter", which is NOT a superuser, so this is not the bingo_tune tool \(pid \d+, from local socket, connected since [^;]+; it calls itself "bingo_tune prepare-db on node9"\)/,
	'--lock-timeout: the holder is named as not the tool, its name only a claim');
like($err, qr/pg_terminate_backend\(\d+\)/, '--lock-timeout: says how to end the holder');
like($err, qr/gave up waiting for the prepare lock after \d+ s \(--lock-timeout\); nothing was done/,
	'--lock-timeout: says it gave up');
ok(!-e $touched, '--lock-timeout: the command did not run');
$holder->quit;

done_testing();
