# t/030_tool_install.pl: "bingo_tune install" and the command line.
#
# Against real temporary servers: install on a fresh server and again
# (idempotent), on a server without the preload (exit 4 and what to set), a
# version mismatch either way (exit 5), a non-superuser, bad input
# (unknown command or option, missing "--", unreachable host, wrong
# password: the documented codes, clear messages, no password echoed), and a
# multi-host connection string with a standby first, where the DDL must
# still go to the primary.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BingoTune;

# never read a password file of the user running the tests
$ENV{PGPASSFILE} = PostgreSQL::Test::Utils::tempdir() . '/no-such-pgpass';
delete $ENV{PGPASSWORD};

my ($rc, $out, $err);

# --- the command line, no server needed ---

program_help_ok('bingo_tune');
program_version_ok('bingo_tune');
($rc, $out) = tool('--version');
like($out, qr/^bingo_tune 1\.0$/m, '--version names the tool and its version');
for my $cmd (qw(install prepare-db apply report check))
{
	($rc, $out, $err) = tool($cmd, '--help');
	is($rc, 0, "$cmd --help exits 0");
	like($out, qr/Usage:\n  bingo_tune $cmd /, "$cmd --help shows its usage");
	like($out, qr/Exit codes/, "$cmd --help documents its exit codes");
	is($err, '', "$cmd --help writes nothing to stderr");
}

($rc, $out, $err) = tool();
is($rc, 2, 'no command: usage error');
($rc, $out, $err) = tool('frobnicate');
is($rc, 2, 'unknown command: usage error');
like($err, qr/unknown command "frobnicate"/, 'unknown command is named');
($rc, $out, $err) = tool('install', '--frobnicate');
is($rc, 2, 'unknown option: usage error');
like($err, qr/unknown or incomplete option "--frobnicate" for install/,
	'unknown option is named');
like($err, qr/Try "bingo_tune install --help"/, 'unknown option points to --help');
($rc, $out, $err) = tool('prepare-db', 'dbname=x', 'true');
is($rc, 2, 'prepare-db without "--": usage error');
like($err, qr/no command given: put "--" and the command after the options/,
	'missing "--" is explained (the second argument is a USERNAME, as in psql)');
($rc, $out, $err) = tool('prepare-db', 'dbname=x', 'bingo', 'prepare_db');
is($rc, 2, 'prepare-db with a command but no "--": usage error');
like($err, qr/"--" before its command/, 'a command without "--" is explained');
($rc, $out, $err) = tool('prepare-db', 'dbname=x');
is($rc, 2, 'prepare-db without a command: usage error');
like($err, qr/no command given: put "--"/, 'missing command is explained');
($rc, $out, $err) = tool('prepare-db', '--', );
is($rc, 2, 'prepare-db with nothing after "--": usage error');
($rc, $out, $err) = tool('check', '--runs', '0');
is($rc, 2, 'check --runs 0: usage error');

# psql's options: -? is help, -h is the host; help never needs a server
for my $cmd (qw(install prepare-db apply report check))
{
	($rc, $out, $err) = tool($cmd, '-?');
	is($rc, 0, "$cmd -? exits 0");
	like($out, qr/Usage:\n  bingo_tune $cmd /, "$cmd -? shows its usage");
	like($out, qr/-h, --host=HOSTNAME .*\n.*-p, --port=PORT .*\n.*-U, --username=USERNAME .*\n.*-d, --dbname=DBNAME /,
		"$cmd -? lists -h, -p, -U and -d");
	like($out, qr/-w, --no-password/, "$cmd -? lists -w");
}
($rc, $out, $err) = tool('-?');
is($rc, 0, 'bingo_tune -? shows help');
($rc, $out, $err) = tool('-h', 'localhost', 'report');
is($rc, 2, 'an option before the command: usage error');
like($err, qr/options come after the command/, 'an option before the command: says where they go');

# every argument is checked before anything connects or runs: nothing
# listens on port 1, so reaching the connection would give exit 3
my $ran = PostgreSQL::Test::Utils::tempdir() . '/ran';
($rc, $out, $err) = tool('prepare-db', '--tables', ',', '-h', '127.0.0.1', '-p', '1', '--', 'touch', $ran);
is($rc, 2, '--tables ",": usage error before connecting');
like($err, qr/--tables must be a comma-separated list of table names, with no empty name: ","/,
	'--tables ",": says why');
($rc, $out, $err) = tool('prepare-db', '--tables', 'sessions,,movies', '-p', '1', '--', 'touch', $ran);
is($rc, 2, '--tables with an empty name: usage error');
($rc, $out, $err) = tool('prepare-db', '--lock-timeout', '5 parsecs', '-p', '1', '--', 'touch', $ran);
is($rc, 2, '--lock-timeout with a bad unit: usage error');
like($err, qr/--lock-timeout must be a duration/, '--lock-timeout: says what it takes');
($rc, $out, $err) = tool('prepare-db', '--adopt', '-p', '1', '--', 'touch', $ran);
is($rc, 2, '--adopt with a command: usage error');
($rc, $out, $err) = tool('prepare-db', '--adopt', '--force', '-p', '1');
is($rc, 2, '--adopt with --force: usage error');
ok(!-e $ran, 'no bad command line ran the command');
($rc, $out, $err) = tool('report', '-p', 'fivefourthreetwo');
is($rc, 2, 'a port that is not a number: usage error');
like($err, qr/-p\/--port must be a port number/, 'a bad port: says so');
($rc, $out, $err) = tool('report', '-p', '1', 'host=x port');
is($rc, 2, 'a connection string that does not parse: usage error');
like($err, qr/invalid connection string: missing "=" after "port"/, 'a bad connection string: libpq says why');
($rc, $out, $err) = tool('report', '-p', '1', 'db1', 'user1', 'extra');
is($rc, 2, 'a third argument: usage error');
like($err, qr/too many arguments for report, starting with "extra"/, 'a third argument is named');
($rc, $out, $err) = tool('report', '-p', '1', '-d', 'db1', 'db2');
is($rc, 2, 'a database given twice: usage error');

# unreachable: nothing listens on port 1
($rc, $out, $err) = tool('install', 'host=127.0.0.1 port=1 connect_timeout=3');
is($rc, 3, 'unreachable host: cannot connect');
like($err, qr/could not connect: .*(Connection refused|timeout)/s,
	'unreachable host: libpq says why');

# --- a fresh server with the preload ---

my $node = preloaded_node('primary', streaming => 1, extension => 0);
my $connstr = $node->connstr('postgres');

($rc, $out, $err) = tool('install', $connstr);
is($rc, 0, 'install on a fresh server');
like($err, qr/extension bingo_tune 1\.0 created in database "postgres"/,
	'install says what it did');
is( $node->safe_psql('postgres',
		"SELECT string_agg(extname || ' ' || extnamespace::regnamespace, ', ' ORDER BY extname)
		 FROM pg_extension WHERE extname <> 'plpgsql'"),
	'bingo_tune bingo_tune, pg_stat_statements public',
	'both extensions created, pg_stat_statements in public');

($rc, $out, $err) = tool('install', '-d', $connstr);
is($rc, 0, 'second install');
like($err, qr/already installed/, 'second install changes nothing and says so');
($rc, $out, $err) = tool('install', '-q', $connstr);
is($rc, 0, 'quiet install');
is($err, '', 'quiet install prints nothing');

# psql's options: -h HOST -p PORT -U USER -d DBNAME, and DBNAME [USERNAME]
($rc, $out, $err) = tool('install', '-v', '-h', $node->host, '-p', $node->port, '-U', 'bingo_psql_style',
	'-d', 'postgres');
is($rc, 3, '-U names the user: an unknown one cannot connect');
like($err, qr/role "bingo_psql_style" does not exist/, '-U is passed on as the user');
$node->safe_psql('postgres', 'CREATE ROLE bingo_psql_style LOGIN SUPERUSER');
($rc, $out, $err) = tool('install', '-v', '-h', $node->host, '-p', $node->port, '-U', 'bingo_psql_style',
	'-d', 'postgres', '-w');
is($rc, 0, 'install -h -p -U -d -w');
like($err, qr/connected to database "postgres" on socket \S+ port ${\ $node->port } as user "bingo_psql_style"/,
	'-h -p -U -d reach that server as that user');
($rc, $out, $err) = tool('install', '-v', '-h', $node->host, '-p', $node->port, 'postgres', 'bingo_psql_style');
is($rc, 0, 'install with DBNAME USERNAME as arguments');
like($err, qr/connected to database "postgres" .* as user "bingo_psql_style"/,
	'DBNAME USERNAME: that database as that user');
($rc, $out, $err) = tool('install', '-v', '-h', '/nonexistent', '-p', '1',
	"postgresql://@{[ $node->host =~ s{/}{%2F}gr ]}:@{[ $node->port ]}/postgres");
is($rc, 0, 'a URI as DBNAME wins over -h and -p, as in psql');

# the PG* environment variables work without a CONNINFO
{
	local %ENV = (%ENV, pg_env($node));
	($rc, $out, $err) = tool('install');
	is($rc, 0, 'install with the PG* environment variables');
}

# --- version mismatch, both ways ---

$node->safe_psql('postgres',
	"UPDATE pg_extension SET extversion = '9.9' WHERE extname = 'bingo_tune'");
($rc, $out, $err) = tool('install', $connstr);
is($rc, 5, 'installed extension newer than the tool: version mismatch');
like($err, qr/installed extension bingo_tune 9\.9 is newer than this tool \(1\.0\)/,
	'newer extension: message names both versions');

$node->safe_psql('postgres',
	"UPDATE pg_extension SET extversion = '0.9' WHERE extname = 'bingo_tune'");
($rc, $out, $err) = tool('install', $connstr);
is($rc, 5, 'installed extension older without an update path: version mismatch');
like($err, qr/could not update extension bingo_tune from 0\.9 to 1\.0/,
	'older extension: the failed update is reported');
$node->safe_psql('postgres',
	"UPDATE pg_extension SET extversion = '1.0' WHERE extname = 'bingo_tune'");

# --- a role that is not a superuser, and passwords ---

$node->safe_psql('postgres', q{
CREATE ROLE plain LOGIN;
CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD 'right-pw-4711';
});
($rc, $out, $err) = tool('install', $node->connstr('postgres') . ' user=plain');
is($rc, 1, 'install as a non-superuser fails');
like($err, qr/user "plain" is not a superuser/, 'non-superuser: clear message');

# password authentication for pwuser over the socket, trust for the rest
my $hba = slurp_file($node->data_dir . '/pg_hba.conf');
open my $fh, '>', $node->data_dir . '/pg_hba.conf' or die $!;
print $fh "local all pwuser scram-sha-256\n" . $hba;
close $fh;
$node->reload;

($rc, $out, $err) =
  tool('install', $node->connstr('postgres') . ' user=pwuser password=wrong-pw-0815');
is($rc, 3, 'wrong password: cannot connect');
like($err, qr/password authentication failed for user "pwuser"/,
	'wrong password: the server says so');
unlike($out . $err, qr/wrong-pw-0815/, 'the password is never printed');

($rc, $out, $err) = tool('install', $node->connstr('postgres') . ' user=pwuser');
is($rc, 3, 'no password: cannot connect');
like($err, qr/never prompts: set PGPASSWORD or use a password file/,
	'no password: says how to give one');

($rc, $out, $err) = tool('install', '-v',
	$node->connstr('postgres') . ' user=pwuser password=right-pw-4711');
is($rc, 0, 'right password: install works');
unlike($out . $err, qr/right-pw-4711/, 'verbose output holds no password');

# --- a server without the preload ---

my $bare = PostgreSQL::Test::Cluster->new('bare');
$bare->init;
$bare->start;
($rc, $out, $err) = tool('install', $bare->connstr('postgres'));
is($rc, 4, 'no preload: server not prepared');
like($err, qr/does not preload pg_stat_statements and bingo_tune/,
	'no preload: says what is missing');
like($err,
	qr/ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements,bingo_tune';/,
	'no preload: says exactly what to set');
like($err, qr/restart the server \(a reload is not enough\)/,
	'no preload: says a restart is needed');
is($bare->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'bingo_tune'"),
	'0', 'no preload: nothing created');

# an existing entry is kept in the advice; half the preload is still missing
$bare->append_conf('postgresql.conf', "shared_preload_libraries = 'auto_explain,pg_stat_statements'");
$bare->restart;
($rc, $out, $err) = tool('install', $bare->connstr('postgres'));
is($rc, 4, 'bingo_tune not preloaded: server not prepared');
like($err, qr/shared_preload_libraries = 'auto_explain,pg_stat_statements,bingo_tune'/,
	'the advice keeps the libraries already preloaded');

# --- multi-host, standby first: DDL still goes to the primary ---

$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->start;
$node->safe_psql('postgres', 'CREATE DATABASE multi');
$node->wait_for_catchup($standby);

my $multi = sprintf('host=%s,%s port=%d,%d dbname=multi',
	$standby->host, $node->host, $standby->port, $node->port);
($rc, $out, $err) = tool('install', $multi);
is($rc, 0, 'install through a multi-host string with the standby first');
is($node->safe_psql('multi', "SELECT extversion FROM pg_extension WHERE extname = 'bingo_tune'"),
	'1.0', 'the extension was created on the primary');

# the same string with target_session_attrs=any still reaches the primary
($rc, $out, $err) = tool('install', '-v', "$multi target_session_attrs=any");
is($rc, 0, 'install with target_session_attrs=any in the string');
like($err, qr/connected to database "multi" on socket \S+ port ${\ $node->port }/,
	'install forces read-write and connects to the primary');

done_testing();
