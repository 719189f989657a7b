# Trust: nothing the application's role controls runs with superuser
# rights, and no other role can forge or wipe the figures.
#
# An unprivileged role "app" owns bingo's tables and plants in its schema:
# an "=" for integers, functions shadowing built-ins the statements (and
# apply()'s own statements) call, and later a view over a function in place
# of a table.  Every planted function calls trap(), which writes a file
# only when it runs with superuser rights (COPY ... TO a server file), and
# says as whom it ran.  check(), report(), the catalog trigger, the watcher,
# CALL apply() and the tool's commands are run by a superuser against these
# traps: no file may appear, the app's runs must still be matched, and the
# figures must not change.  A monitoring role's temporary tables named like
# the app's must not change them either; a role without SELECT that sends a
# watched statement makes no run; a watched statement behind a sleep in one
# simple-query message is timed from its own start.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use BingoTune;

my $node = preloaded_node('security', extension => 0, conf => q{
bingo_tune.naptime = 1
bingo_tune.mode = off
});

my $trapdir = $node->basedir . '/traps';
mkdir $trapdir or die "mkdir $trapdir: $!";

# the trap files that appeared, as a sorted comma-separated list
sub fired
{
	opendir(my $dh, $trapdir) or die "opendir $trapdir: $!";
	my @f = sort grep { !/^\./ } readdir($dh);
	closedir($dh);
	return join(',', @f);
}

# --- roles, bingo's tables owned by app, the extension -------------------

$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE ROLE monitor LOGIN IN ROLE pg_read_all_stats;
CREATE ROLE stranger LOGIN;
GRANT CREATE ON SCHEMA public TO app;
CREATE EXTENSION bingo_tune CASCADE;
});

sql_as($node, 'app', bingo_data(movie_names => 70, names => 50, surnames => 90,
		customers => 2000, sessions => 5000) . q{
ANALYZE sessions, customers, movies;
GRANT SELECT ON sessions, customers, movies TO monitor;
});

# --- the traps ---------------------------------------------------------

# trap(what): says as whom it ran; writes traps/<what> only with superuser
# rights (a non-superuser's COPY to a server file is refused, and the
# refusal is swallowed so the app's own statements keep working).
my $trap = qq{
CREATE FUNCTION public.trap(what text) RETURNS boolean
LANGUAGE plpgsql AS \$\$
BEGIN
	RAISE NOTICE 'trap % ran as %', what, current_user;
	BEGIN
		EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L',
			'$trapdir/' OPERATOR(pg_catalog.||) what);
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	RETURN true;
END \$\$;
};
sql_as($node, 'app', $trap);

# the trap is live: run by a superuser, it writes its file
$node->safe_psql('postgres', q{SELECT public.trap('live')});
is(fired(), 'live', 'the trap writes its file when a superuser runs it');
unlink "$trapdir/live" or die;
my ($ret, $out, $err) = psql_as($node, 'app', q{SELECT public.trap('live')});
is(fired(), '', 'and not when its owner runs it');

# an "=" for integers, and functions shadowing what statements call
sql_as($node, 'app', q{
CREATE FUNCTION public.evil_eq(integer, integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.trap('eq');
	RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer,
	FUNCTION = public.evil_eq);
CREATE FUNCTION public.upper(text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.trap('upper');
	RETURN pg_catalog.upper($1);
END $$;
-- an untyped literal prefers text: nextval('x') would pick this one over
-- pg_catalog.nextval(regclass) for a caller whose path reaches public
CREATE FUNCTION public.nextval(text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.trap('nextval');
	RETURN 1;
END $$;
CREATE FUNCTION public.evil_mul(double precision, interval) RETURNS interval
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.trap('mul');
	RETURN $2;
END $$;
CREATE OPERATOR public.* (LEFTARG = double precision, RIGHTARG = interval,
	FUNCTION = public.evil_mul);
-- the app's own function, which a watched statement calls
CREATE FUNCTION public.rating(integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.trap('rating');
	RETURN $1 % 5;
END $$;
});

# the shadowing is real: a caller whose path lists public before
# pg_catalog gets the planted operator
$node->safe_psql('postgres', q{SET search_path = public, pg_catalog; SELECT 1 = 1});
is(fired(), 'eq', 'a superuser with public before pg_catalog runs the planted "="');
unlink "$trapdir/eq" or die;
$node->safe_psql('postgres', q{SELECT nextval('bingo_tune.apply_run')});
is(fired(), 'nextval', 'an untyped nextval() call reaches the planted nextval(text)');
unlink "$trapdir/nextval" or die;

# statements of the operator's own: one calling a function the app shadows,
# one calling the app's own function (added with the traps in place: the
# catalog trigger analyses them)
$node->safe_psql('postgres', q{
INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, params) VALUES
	('movie_by_name', 'SELECT movies.id FROM movies WHERE movies.name = upper($1) LIMIT 10',
	 '400 ms', 90, '{}', '{"movie 1"}'),
	('movie_rating', 'SELECT movies.id, rating(movies.id) FROM movies WHERE movies.id = $1',
	 '400 ms', 90, '{}', '{7}');
});
is(fired(), '', 'the catalog trigger ran nothing');

# --- the app's runs are matched ------------------------------------------

$node->safe_psql('postgres', q{
SELECT pg_stat_statements_reset();
SELECT bingo_tune.reset();
});
my $movie_by_id = $node->safe_psql('postgres',
	q{SELECT statement FROM bingo_tune.watch WHERE name = 'movie_by_id'});
my $movie_list = $node->safe_psql('postgres',
	q{SELECT statement FROM bingo_tune.watch WHERE name = 'movie_list'});
my $runs = "PREPARE movie_by_id AS $movie_by_id;\n"
  . join('', map { "EXECUTE movie_by_id($_);\n" } 1 .. 20);
sql_as($node, 'app', $runs);

my $app_qid = $node->safe_psql('postgres', q{
	SELECT queryid FROM pg_stat_statements
	WHERE userid = 'app'::regrole AND query LIKE 'PREPARE movie_by_id%'});
isnt($app_qid, '', 'pg_stat_statements has the app\'s runs');
is(report($node, 'movie_by_id', 'queryid'), $app_qid,
	'report() computes the app\'s queryid despite the planted "="');
is($node->safe_psql('postgres', q{
	SELECT bingo_tune.queryid(statement, schema) FROM bingo_tune.watch WHERE name = 'movie_by_id'}),
	$app_qid, 'and so does queryid()');
is(report($node, 'movie_by_id', 'calls || \',\' || failed'), '20,0', 'report() counts the app\'s 20 runs');
is(fired(), '', 'nothing ran as a superuser');

# --- check(): as the tables' owner, restricted ----------------------------

($ret, $out, $err) = psql_as($node, undef, q{
	SELECT name, outcome FROM bingo_tune.check(NULL, 1) ORDER BY name});
is($ret, 0, 'check() runs every statement');
like($out, qr/^movie_rating\|ok$/m, 'check(): the statement calling the app\'s function is ok');
like($out, qr/^movie_by_name\|ok$/m, 'check(): the statement whose function is shadowed is ok');
like($err, qr/trap rating ran as app/, 'check() runs the app\'s function as the app');
unlike($err, qr/trap (eq|upper)/, 'check() never reaches the planted "=" or upper()');
is(fired(), '', 'check() ran nothing as a superuser');
is(report($node, 'movie_by_id', 'calls || \',\' || failed'), '20,0', 'check() runs are not counted');

# the same from a session that set a hostile search_path of its own
($ret, $out, $err) = psql_as($node, undef, q{
	SET search_path = public, pg_catalog;
	SELECT name, outcome FROM bingo_tune.check('movie_by_id', 1)});
like($out, qr/^movie_by_id\|ok$/m, 'check() with the caller\'s path set to public first');
is(fired(), '', 'still nothing ran as a superuser');

# tables of different owners: refused, with a hint
$node->safe_psql('postgres', q{
	CREATE ROLE other;
	CREATE TABLE public.extra (id integer);
	ALTER TABLE public.extra OWNER TO other;
	INSERT INTO bingo_tune.watch (name, statement, budget) VALUES
		('mixed_owners', 'SELECT movies.id FROM movies JOIN extra ON extra.id = movies.id', '1 s');
});
($ret, $out, $err) = psql_as($node, undef,
	q{SELECT outcome FROM bingo_tune.check('mixed_owners', 1)});
isnt($ret, 0, 'check() refuses a statement whose tables have different owners');
like($err, qr/its tables have different owners/, 'and says why');
like($err, qr/HINT:  bingo_tune analyses a statement, and check\(\) runs it, as the owner of its tables/,
	'with a hint');

# the caller's role and settings are back after a check, and after one
# that failed inside the caller's exception block
is($node->safe_psql('postgres', q{
	SET search_path = "$user", public;
	SELECT count(*) FROM bingo_tune.check('movie_rating', 1);
	DO $$BEGIN
		PERFORM * FROM bingo_tune.check('mixed_owners', 1);
	EXCEPTION WHEN object_not_in_prerequisite_state THEN
		NULL;
	END$$;
	SELECT session_user = current_user, current_setting('search_path');
}), "1\nt|\"\$user\", public", 'the caller\'s role and search_path are restored');
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name = 'mixed_owners'});

# --- a domain whose CHECK runs during parse analysis -----------------------

# Coercing a literal to an array of a domain runs the domain's CHECK while
# the statement is analysed: no plan, no execution.  The app's CHECK tries
# to make the app a superuser and fires the trap.  Every place that
# analyses watched text must do so as the tables' owner.
sub app_is_superuser
{
	return $node->safe_psql('postgres',
		q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app'});
}

# is the app still no superuser, and no trap fired?  Then undo either, so
# that each place is judged on its own.
sub not_escaped
{
	my ($label) = @_;
	my $got = app_is_superuser() . fired();
	$node->safe_psql('postgres', q{ALTER ROLE app NOSUPERUSER});
	unlink glob("$trapdir/*");
	return is($got, 'f', $label);
}

my $tagged = q{SELECT movies.id FROM movies WHERE movies.tags @> '{x}'};
(my $tagged_lit = $tagged) =~ s/'/''/g;

# the row goes in first, while the column it needs does not exist yet
$node->safe_psql('postgres', qq{
	INSERT INTO bingo_tune.watch (name, statement, budget) VALUES
		('tagged', '$tagged_lit', '1 s');
});
# esc(): fires the trap, runs what it is given, and tries to make the app
# a superuser
my $esc = q{
CREATE OR REPLACE FUNCTION public.esc() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.trap('domain');%s
	BEGIN
		ALTER ROLE app SUPERUSER;
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END;
	RETURN true;
END $$;
};
sql_as($node, 'app', sprintf($esc, '') . q{
CREATE DOMAIN public.tagdom AS text CHECK (public.esc());
ALTER TABLE movies ADD COLUMN tags public.tagdom[];
});
($ret, $out, $err) = psql_as($node, undef, q{SELECT '{x}'::public.tagdom[]});
like($err, qr/trap domain ran as/, 'the domain\'s CHECK runs when a literal is coerced to it');
is(app_is_superuser(), 't', 'and a superuser running it makes the app a superuser');
$node->safe_psql('postgres', q{ALTER ROLE app NOSUPERUSER});
unlink "$trapdir/domain" or die;

ok(wait_passes($node, 'postgres', 2), 'the watcher makes passes over the domain');
not_escaped('the watcher alone: the app is no superuser, no trap fired');

($ret, $out, $err) = psql_as($node, 'monitor',
	q{SELECT queryid IS NOT NULL FROM bingo_tune.report() WHERE name = 'tagged'});
is($out, 't', 'report() by a monitoring role computes the queryid');
like($err, qr/trap domain ran as app/, 'as the app');
not_escaped('report(): the app is no superuser, no trap fired');

$node->safe_psql('postgres', q{
	UPDATE bingo_tune.watch SET budget = '2 s' WHERE name = 'tagged'});
not_escaped('the catalog trigger: the app is no superuser, no trap fired');

($ret, $out, $err) = psql_as($node, undef,
	q{SELECT outcome FROM bingo_tune.check('tagged', 1)});
is($out, 'ok', 'check() runs the statement');
not_escaped('check(): the app is no superuser, no trap fired');

my $tagged_qid = $node->safe_psql('postgres',
	q{SELECT bingo_tune.queryid(statement, schema) FROM bingo_tune.watch WHERE name = 'tagged'});
is($tagged_qid, report($node, 'tagged', 'queryid'), 'queryid() by a superuser gives the same id');
not_escaped('queryid(): the app is no superuser, no trap fired');
is(sql_as($node, 'app', "SELECT bingo_tune.queryid('$tagged_lit')"),
	$tagged_qid, 'queryid() by the tables\' owner');
($ret, $out, $err) = psql_as($node, 'stranger', "SELECT bingo_tune.queryid('$tagged_lit')");
isnt($ret, 0, 'queryid() refuses a caller who is not the tables\' owner');
like($err, qr/permission denied to analyse the statement as role "app"/,
	'and says as whom it would analyse');
unlike($err, qr/trap domain/, 'before analysing anything');

# a row that leaves its indexes NULL has its set derived from the live
# tables whenever the catalog is read: derive() analyses and plans the text
$node->safe_psql('postgres', qq{
	INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES
		('tagged_derived', '$tagged_lit', '1 s', NULL);
});
not_escaped('a derived row through the catalog trigger: the app is no superuser, no trap fired');
$node->safe_psql('postgres', q{SELECT count(*) FROM bingo_tune.advise()});
not_escaped('advise() deriving its set: the app is no superuser, no trap fired');
($ret, $out, $err) = psql_as($node, undef, "SELECT count(*) FROM bingo_tune.derive('$tagged_lit')");
is($ret, 0, 'derive() by a superuser derives');
not_escaped('derive(): the app is no superuser, no trap fired');
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name = 'tagged_derived'});

# the owner's code may also run a session-wide SET while the text is
# analysed and planned: it must not outlive that, in the session of
# whoever read the catalog
sql_as($node, 'app', sprintf($esc, q{
	PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog', false);
	PERFORM pg_catalog.set_config('bingo_trap.mark', 'set by the app', false);}));
my $settings = q{SELECT current_setting('search_path') || ' / ' ||
	coalesce(nullif(current_setting('bingo_trap.mark', true), ''), 'unset')};
$out = $node->safe_psql('postgres', qq{
	INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES
		('tagged_derived', '$tagged_lit', '1 s', NULL);
	$settings;
	SELECT count(*) > 0 FROM bingo_tune.report();
	$settings;
	SELECT count(*) > 0 FROM bingo_tune.advise();
	$settings;
});
is($out, join("\n", ('"$user", public / unset', 't') x 2, '"$user", public / unset'),
	'a SET run by the owner\'s code does not outlive the catalog trigger, report() or advise()');
not_escaped('nor does the app become superuser');
$out = sql_as($node, 'monitor', qq{SELECT count(*) > 0 FROM bingo_tune.report();\n$settings;});
is($out, "t\n\"\$user\", public / unset", 'nor in a monitoring role\'s session');
not_escaped('still no superuser app, no trap fired');
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name = 'tagged_derived'});

# a cancel or statement_timeout that lands while a client's statement
# re-registers the watched statements (after DDL) is the client's: the
# owner's slow code must not swallow it
sql_as($node, 'app', q{
CREATE FUNCTION public.slow() RETURNS boolean LANGUAGE sql AS
	$$ SELECT pg_catalog.pg_sleep(0.5) IS NOT NULL $$;
CREATE DOMAIN public.slowdom AS text CHECK (public.slow());
ALTER TABLE customers ADD COLUMN slowtags public.slowdom[];
});
$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES
		('slow_tagged', 'SELECT customers.id FROM customers WHERE customers.slowtags @> ''{x}''', '1 s', NULL);
});
($ret, $out, $err) = psql_as($node, 'app', q{
ALTER TABLE customers ADD COLUMN more integer;
SET statement_timeout = '150ms';
SELECT count(*) FROM sessions;
});
like($err, qr/canceling statement due to statement timeout/,
	'a statement_timeout during the re-registration cancels the client\'s statement');
unlike($out // '', qr/^\d+$/m, 'which returns no rows');
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name = 'slow_tagged'});
sql_as($node, 'app', q{ALTER TABLE customers DROP COLUMN more, DROP COLUMN slowtags});
not_escaped('still no superuser app, no trap fired');

# a CTE named like a table is not that table; the statement still resolves
is($node->safe_psql('postgres', q{
	SELECT bingo_tune.queryid('WITH customers AS (SELECT movies.id FROM movies) SELECT id FROM customers') IS NOT NULL}),
	't', 'a CTE named like a table resolves');
not_escaped('still no superuser app, no trap fired');
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name = 'tagged'});

# --- a monitoring role's temporary tables ----------------------------------

my $temps = q{
CREATE TEMP TABLE sessions (id bigint, start_time timestamp, customer_id integer, movie_id integer);
CREATE TEMP TABLE customers (id integer, name text, surname text, birthday date, email text);
CREATE TEMP TABLE movies (id integer, name text, year integer, duration integer);
};
$out = sql_as($node, 'monitor', $temps . q{
SELECT queryid || ',' || calls || ',' || failed FROM bingo_tune.report() WHERE name = 'movie_by_id';
SELECT name || ':' || runs FROM bingo_tune.check('movie_by_id', 1);
});
is($out, "$app_qid,20,0\nmovie_by_id:1",
	'temp tables named like the app\'s change neither queryid nor figures');
is(report($node, 'movie_by_id', 'calls || \',\' || failed'), '20,0',
	'the figures are still there after that session');

# while the app's table is missing (in the middle of a migration), the
# name resolves to the monitoring role's temporary table: that counts as
# missing, so neither the queryid nor the figures change
sql_as($node, 'app', q{ALTER TABLE movies RENAME TO movies_migrating});
$out = sql_as($node, 'monitor', $temps . q{
SELECT coalesce(queryid::text, 'none') || ',' || calls || ',' || failed FROM bingo_tune.report() WHERE name = 'movie_by_id';
SELECT outcome FROM bingo_tune.check('movie_by_id', 1);
SELECT coalesce(bingo_tune.queryid('SELECT movies.id FROM movies'), 0);
});
like($out, qr/^none,0,0\n/, 'a temp table standing in for a missing table gives no queryid');
like($out, qr/^error: relation "movies" is missing: the name resolves to a temporary relation$/m,
	'check() reports the table as missing');
like($out, qr/\n0$/, 'and so does queryid()');
sql_as($node, 'app', q{ALTER TABLE movies_migrating RENAME TO movies});
is(report($node, 'movie_by_id', 'queryid || \',\' || calls || \',\' || failed'), "$app_qid,20,0",
	'the table back, the queryid and the figures are the app\'s: none was pruned');

# the monitoring role running the text against its own temp tables: up to
# 17 the queryid differs (it hashes table OIDs); from 18 on it hashes names
# and matches, and the hooks refuse runs that read temporary tables
sql_as($node, 'monitor', $temps . "PREPARE m AS $movie_by_id;\nEXECUTE m(1);\nEXECUTE m(2);\n");
is(report($node, 'movie_by_id', 'calls'), '20', 'runs against temp tables are not counted');

# --- figures only from real runs -------------------------------------------

# a role without SELECT: permission denied at ExecutorStart, no run
($ret, $out, $err) = psql_as($node, 'stranger',
	"PREPARE denied AS $movie_by_id;\nEXECUTE denied(1);\n");
like($err, qr/permission denied for table movies/, 'a role without SELECT is refused');
is(report($node, 'movie_by_id', 'calls || \',\' || failed || \',\' || status'), '20,0,ok',
	'and the refused run is neither a run nor a failure');

# a watched statement behind a sleep in one simple-query message counts
# from its own start: timed from the message, it would have run >= 2 s
$node->safe_psql('postgres', q{SELECT bingo_tune.reset('movie_list')});
IPC::Run::run([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-U', 'app',
	'-c', "SELECT pg_sleep(2); $movie_list" ], '>', \$out, '2>', \$err)
  or die "psql: $err";
is(report($node, 'movie_list', 'calls'), '1', 'the watched statement of the message is counted');
ok(report($node, 'movie_list', 'max_ms') < 2000,
	'and timed from its own start, not from the message\'s arrival');

# --- the watcher and apply() -----------------------------------------------

$node->safe_psql('postgres', q{ALTER SYSTEM SET bingo_tune.mode = 'auto'});
$node->reload;
ok(wait_present($node, 'movie_by_id'),
	'the watcher sees the app\'s runs and builds their indexes');
is($node->safe_psql('postgres', q{
	SELECT queryid FROM bingo_tune.watched() WHERE statement = 'movie_by_id'}),
	$app_qid, 'the watcher matched the app\'s queryid');
is(fired(), '', 'the watcher ran nothing as a superuser');
$node->safe_psql('postgres', q{ALTER SYSTEM SET bingo_tune.mode = 'off'});
$node->reload;

# apply() from a session whose path reaches public first
($ret, $out, $err) = psql_as($node, undef, q{
	SET search_path = public, pg_catalog;
	CALL bingo_tune.apply('customer_by_id');});
is($ret, 0, 'apply() builds');
like($err, qr/apply: 1 created/, 'apply() built the missing index');
is(fired(), '', 'apply() ran nothing as a superuser');

# --- the tool, connected through the PG* variables ---------------------

{
	local %ENV = (%ENV, pg_env($node));
	local $ENV{PGUSER} = $node->safe_psql('postgres', 'SELECT current_user');
	for my $cmd ([ 'report' ], [ 'check' ], [ 'apply' ], [ 'prepare-db', '--force', '--', 'true' ])
	{
		my $rc;
		($rc, $out, $err) = tool(@$cmd);
		ok($rc == 0 || ($cmd->[0] eq 'check' && $rc == 6), "bingo_tune $cmd->[0] runs (exit $rc)")
		  or diag($err);
	}
}
is(fired(), '', 'the tool\'s commands ran nothing as a superuser');

# --- a statement whose code swallows check()'s cut-off ---------------------

# check() cuts a run off with a query cancel, and plpgsql can catch that:
# an RLS policy function of the app's that does (bounded, so that a failing
# test still ends) must not hold the deploy gate.  The tool cancels check()
# once every budget has passed, then ends its session.
sql_as($node, 'app', q{
CREATE TABLE stubborn_t (id integer);
INSERT INTO stubborn_t VALUES (1);
CREATE FUNCTION public.stubborn() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	WHILE pg_catalog.clock_timestamp() OPERATOR(pg_catalog.<)
		(pg_catalog.statement_timestamp() OPERATOR(pg_catalog.+) interval '120 s') LOOP
		BEGIN
			PERFORM pg_catalog.pg_sleep(0.1);
		EXCEPTION WHEN query_canceled THEN
			NULL;
		END;
	END LOOP;
	RETURN true;
END $$;
ALTER TABLE stubborn_t ENABLE ROW LEVEL SECURITY;
ALTER TABLE stubborn_t FORCE ROW LEVEL SECURITY;
CREATE POLICY stubborn ON stubborn_t USING (public.stubborn());
});
$node->safe_psql('postgres', q{
	INSERT INTO bingo_tune.watch (name, statement, budget) VALUES
		('stubborn', 'SELECT stubborn_t.id FROM stubborn_t', '100 ms');
});
{
	local %ENV = (%ENV, pg_env($node));
	my $h = IPC::Run::start([ 'bingo_tune', 'check', '--json', '-n', 'stubborn', '-r', '1' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(100));
	my $finished = eval { $h->finish; 1 };
	ok($finished, 'bingo_tune check returns although the statement ignores the cut-off')
	  or $h->kill_kill;
	is($h->result(0), 6, 'and fails the gate as over budget') if $finished;
	like($err, qr/ending its session/, 'after ending the session the cancel could not stop') or diag($out);
	like($err, qr/did not finish within \d+ s/, 'and says so');
}
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE '%bingo_tune.check(%' AND pid <> pg_backend_pid()}),
	'the session running check() is gone');
$node->safe_psql('postgres', q{DELETE FROM bingo_tune.watch WHERE name = 'stubborn'});

# --- a view over a function in place of a table --------------------------

sql_as($node, 'app', q{
ALTER TABLE movies RENAME TO movies_data;
CREATE VIEW movies AS SELECT m.* FROM movies_data m WHERE public.trap('view');
});
($ret, $out, $err) = psql_as($node, undef,
	q{SELECT outcome FROM bingo_tune.check('movie_by_id', 1)});
isnt($ret, 0, 'check() refuses a statement over a view');
like($err, qr/"public.movies" is not a table/, 'and names the view');
unlike($err, qr/trap view/, 'without running it');
sql_as($node, 'app', "PREPARE v AS $movie_by_id;\nEXECUTE v(1);\nEXECUTE v(2);\n");
$out = report($node, 'movie_by_id', 'calls');
is($out, '2', 'the app\'s runs over its view are matched');
($ret, $out, $err) = psql_as($node, undef, q{CALL bingo_tune.apply('movie_by_id')});
unlike($err, qr/trap view/, 'apply() does not run the view');
{
	local %ENV = (%ENV, pg_env($node));
	($ret, $out, $err) = tool('prepare-db', '--force', '--', 'true');
	isnt($ret, 0, 'prepare-db refuses the view');
	like($err, qr/public\.movies is not a table/, 'and names it');
	unlike($err, qr/trap view/, 'without reading it');
}
$node->safe_psql('postgres', q{ALTER SYSTEM SET bingo_tune.mode = 'auto'});
$node->reload;
ok(wait_passes($node, 'postgres', 2), 'the watcher makes passes over the view');
is(fired(), '', 'neither check(), report(), apply() nor the watcher ran the view as a superuser');

$node->stop;
done_testing();
