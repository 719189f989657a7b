/*-------------------------------------------------------------------------
 *
 * prepare.c
 *		bingo_tune prepare-db: run bingo's prepare_db exactly once across all
 *		nodes, then build the indexes; and bingo_tune apply.
 *
 * The sequence, on one connection to the primary:
 *
 *	1. install (install.c): the extension at the tool's version.
 *	2. Take the prepare lock: a session-level advisory lock on a fixed key
 *	   (BT_LOCK_PREPARE) in the target database.  A session lock is released
 *	   when the connection closes, so a tool that is killed, or a node that
 *	   dies, never leaves it behind.  We poll pg_try_advisory_lock() once a
 *	   second rather than block in pg_advisory_lock(): a backend blocked in a
 *	   SELECT holds a snapshot, and the node that holds the lock may be in
 *	   apply(), whose CREATE INDEX CONCURRENTLY waits for every older
 *	   snapshot in the database -- ours included -- while we wait for it: a
 *	   hang no deadlock detector sees (DESIGN.md, section 3).
 *	3. Restore a --fast-load setting a killed run left behind.
 *	4. Read the marker (bingo_tune.prepared).  If a run already finished,
 *	   say by whom and when and skip the command (unless --force).
 *	5. Otherwise run the command as a child, streaming its output, while
 *	   holding the lock: poll the child, and send a trivial query every
 *	   --keepalive seconds (TCP keepalives are on too) so that a dead
 *	   connection -- which means the lock is gone -- is noticed; the child is
 *	   then stopped, because another node may now start prepare_db.  The
 *	   lock's socket is close-on-exec, so the child cannot keep the session
 *	   (and the lock) alive after we die; on Linux the child also gets
 *	   SIGTERM when we die (PR_SET_PDEATHSIG).
 *	6. Restore the --fast-load setting, whatever happened.
 *	7. Write the marker only if the command exited 0 and the bingo tables
 *	   exist and have rows.
 *	8. CALL bingo_tune.apply() so the first request finds its indexes; this
 *	   runs after a skipped command too (it does nothing when all are there).
 *
 * --fast-load sets synchronous_commit = off for the target database (ALTER
 * DATABASE ... SET, which new sessions -- the command's -- pick up) while
 * the command runs.  The previous database-level value is recorded in
 * bingo_tune.fast_load in the same transaction, so a run that is killed
 * leaves a record the next run restores from.
 *
 * Ctrl-C (SIGINT), SIGTERM or SIGHUP: while waiting for the lock, stop
 * waiting; while the command runs, pass the signal on (unless it came from
 * the terminal, which signals the command itself), give it 10 s to exit,
 * then SIGKILL; restore the setting, write no marker, close the connection
 * (which releases the lock) and exit with 128 + the signal number.
 *
 * tools/prepare.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "common.h"
#include "getopt_long.h"

/* how long a signalled command may take to exit before SIGKILL */
#define BT_CHILD_GRACE_SECS		10

typedef struct PrepareOptions
{
	bool		force;
	bool		fast_load;
	bool		apply;
	const char *schema;
	const char *tables;
	int			keepalive_secs;
} PrepareOptions;

static PrepareOptions popts = {false, false, true, "public",
	"sessions,customers,movies", 30};

static void
prepare_help(void)
{
	printf("Usage:\n  %s prepare-db [OPTION]... [CONNINFO] -- COMMAND [ARG]...\n\n", BT_PROGNAME);
	printf("Runs \"install\", then runs COMMAND (bingo's \"prepare_db\") once across all\n"
		   "nodes: it takes a lock in the database, and if a previous run of COMMAND\n"
		   "finished it says by whom and when and does not run it again.  Otherwise it\n"
		   "runs COMMAND, streaming its output and holding the lock for as long as it\n"
		   "runs, records that it finished only if it exited 0 and left the tables\n"
		   "filled, and then builds the missing indexes (CALL bingo_tune.apply()).\n"
		   "Other nodes started at the same time wait for the lock, then skip.\n\n");
	printf("Options:\n"
		   "  -d, --dbname=CONNINFO  database to prepare (or the PG* variables)\n"
		   "  -f, --force            run COMMAND even if it finished before\n"
		   "      --fast-load        set synchronous_commit = off for the database while\n"
		   "                         COMMAND runs and restore it afterwards: several\n"
		   "                         times faster for prepare_db's one-row transactions;\n"
		   "                         a server crash may lose the last moments of the\n"
		   "                         load, which the next run repeats (no marker)\n"
		   "      --schema=NAME      schema of the tables COMMAND fills (default public)\n"
		   "      --tables=LIST      tables COMMAND must leave with rows, comma-separated\n"
		   "                         (default sessions,customers,movies)\n"
		   "      --no-apply         do not build the indexes afterwards\n"
		   "      --keepalive=SECS   query the server this often while COMMAND runs\n"
		   "                         (default 30)\n"
		   "  -q, --quiet            print errors and warnings only\n"
		   "  -v, --verbose          also print the queries and server notices\n"
		   "  -h, --help             show this help, then exit\n\n");
	printf("COMMAND's arguments are not printed or recorded: they may hold secrets.\n\n");
	printf("Exit codes: 0 prepared (now or before) and indexes built, 1 error, 2 usage,\n"
		   "3 could not connect, 4 server not prepared, 5 version mismatch, 7 COMMAND\n"
		   "exited 0 but left a table missing or empty; COMMAND's own status when it\n"
		   "fails (128+N when signal N ended it); 128+N when the tool gets signal N.\n");
}

static bool
prepare_option(int c, const char *arg)
{
	switch (c)
	{
		case 'f':
			popts.force = true;
			return true;
		case 1:
			popts.fast_load = true;
			return true;
		case 2:
			popts.schema = arg;
			return true;
		case 3:
			popts.tables = arg;
			return true;
		case 4:
			popts.apply = false;
			return true;
		case 5:
			if (!bt_parse_int(arg, 1, 3600, &popts.keepalive_secs))
			{
				bt_error("--keepalive must be a number of seconds from 1 to 3600, not \"%s\"", arg);
				exit(BT_EXIT_USAGE);
			}
			return true;
		default:
			return false;
	}
}

/* This machine's name, for the marker and the lock holder's description. */
static const char *
node_name(void)
{
	static char name[256];

	if (name[0] == '\0')
	{
		if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0')
			strlcpy(name, "unknown host", sizeof(name));
	}
	return name;
}

static double
now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The program name of a command, without its directory. */
static const char *
command_name(char *const *cmd)
{
	const char *slash = strrchr(cmd[0], '/');

	return slash ? slash + 1 : cmd[0];
}

/*
 * Build a text[] literal from a comma-separated list, each element quoted,
 * for passing as one parameter.
 */
static char *
list_to_array_literal(const char *list)
{
	PQExpBufferData buf;
	const char *p;
	bool		first = true;

	initPQExpBuffer(&buf);
	appendPQExpBufferChar(&buf, '{');
	p = list;
	while (*p)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		size_t		i;

		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len > 0)
		{
			if (!first)
				appendPQExpBufferChar(&buf, ',');
			appendPQExpBufferChar(&buf, '"');
			for (i = 0; i < len; i++)
			{
				if (p[i] == '"' || p[i] == '\\')
					appendPQExpBufferChar(&buf, '\\');
				appendPQExpBufferChar(&buf, p[i]);
			}
			appendPQExpBufferChar(&buf, '"');
			first = false;
		}
		p = end ? end + 1 : p + strlen(p);
	}
	appendPQExpBufferChar(&buf, '}');
	return buf.data;
}


/* ----------------------------------------------------------------
 *		The prepare lock
 * ----------------------------------------------------------------
 */

/* Print who holds the prepare lock, as far as pg_stat_activity tells. */
static void
describe_lock_holder(PGconn *conn)
{
	const char *params[1] = {BT_LOCK_PREPARE};
	PGresult   *res;

	res = bt_query(conn,
				   "SELECT a.pid, a.application_name, "
				   "       coalesce(host(a.client_addr), 'local socket'), "
				   "       to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ') "
				   "FROM pg_catalog.pg_locks l "
				   "JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
				   "WHERE l.locktype = 'advisory' AND l.granted "
				   "  AND l.database = (SELECT oid FROM pg_catalog.pg_database "
				   "                    WHERE datname = pg_catalog.current_database()) "
				   "  AND l.classid = ($1::bigint >> 32)::oid "
				   "  AND l.objid = ($1::bigint & 4294967295)::oid "
				   "  AND l.objsubid = 1",
				   1, params, PGRES_TUPLES_OK);
	if (res != NULL && PQntuples(res) > 0)
		bt_info("waiting for the prepare lock, held by \"%s\" (pid %s, from %s, connected since %s)",
				PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0),
				PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
	else
		bt_info("waiting for the prepare lock, held by another session");
	PQclear(res);
}

/*
 * Take the prepare lock, waiting as long as it takes.  Returns BT_EXIT_OK,
 * an error code, or the interrupt code.
 */
static int
take_prepare_lock(PGconn *conn)
{
	const char *params[1] = {BT_LOCK_PREPARE};
	double		start = now_secs();
	double		last_note = start;
	bool		announced = false;

	for (;;)
	{
		PGresult   *res;
		bool		got;

		res = bt_query(conn, "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)",
					   1, params, PGRES_TUPLES_OK);
		if (res == NULL)
			return BT_EXIT_ERROR;
		got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (got)
		{
			if (announced)
				bt_info("got the prepare lock after %.0f s", now_secs() - start);
			else
				bt_verbose("got the prepare lock");
			return BT_EXIT_OK;
		}
		if (!announced)
		{
			describe_lock_holder(conn);
			announced = true;
		}
		else if (now_secs() - last_note >= 60)
		{
			bt_info("still waiting for the prepare lock (%.0f s)", now_secs() - start);
			last_note = now_secs();
		}
		if (!bt_sleep_ms(1000))
		{
			bt_info("interrupted while waiting for the prepare lock; nothing was done");
			return bt_interrupt_exit_code();
		}
	}
}

/*
 * Name the session after the node while it holds the lock, so that a
 * waiting node can say who it waits for -- unless the user named it.
 */
static void
name_session(PGconn *conn)
{
	const char *app = PQparameterStatus(conn, "application_name");
	char		name[300];
	const char *params[1] = {name};
	PGresult   *res;

	if (app == NULL || strcmp(app, BT_PROGNAME) != 0)
		return;
	snprintf(name, sizeof(name), "%s prepare-db on %s", BT_PROGNAME, node_name());
	res = bt_query(conn, "SELECT pg_catalog.set_config('application_name', $1, false)",
				   1, params, PGRES_TUPLES_OK);
	PQclear(res);
}


/* ----------------------------------------------------------------
 *		--fast-load
 * ----------------------------------------------------------------
 */

/*
 * Set (or reset) synchronous_commit for the database and update the record,
 * in one transaction.  value NULL means RESET.
 */
static bool
alter_database_sync_commit(PGconn *conn, const char *value, const char *record_sql,
						   int nparams, const char *const *params)
{
	char	   *ident;
	char	   *literal = NULL;
	PQExpBufferData sql;
	bool		ok;
	PGresult   *res;

	ident = PQescapeIdentifier(conn, PQdb(conn), strlen(PQdb(conn)));
	if (value)
		literal = PQescapeLiteral(conn, value, strlen(value));
	if (ident == NULL || (value && literal == NULL))
	{
		bt_server_error(conn, NULL, "could not quote the database name");
		return false;
	}
	initPQExpBuffer(&sql);
	if (value)
		appendPQExpBuffer(&sql, "ALTER DATABASE %s SET synchronous_commit TO %s", ident, literal);
	else
		appendPQExpBuffer(&sql, "ALTER DATABASE %s RESET synchronous_commit", ident);
	PQfreemem(ident);
	if (literal)
		PQfreemem(literal);

	ok = bt_command(conn, "BEGIN");
	if (ok)
	{
		res = bt_query(conn, record_sql, nparams, params, PGRES_COMMAND_OK);
		ok = res != NULL;
		PQclear(res);
	}
	ok = ok && bt_command(conn, sql.data);
	ok = ok && bt_command(conn, "COMMIT");
	if (!ok)
	{
		res = PQexec(conn, "ROLLBACK");
		PQclear(res);
	}
	termPQExpBuffer(&sql);
	return ok;
}

/* Turn synchronous_commit off for the database, recording what it was. */
static bool
fast_load_on(PGconn *conn)
{
	const char *params[1] = {node_name()};
	PGresult   *res;

	if (!alter_database_sync_commit(conn, "off",
									"INSERT INTO bingo_tune.fast_load (database, previous, node) "
									"SELECT pg_catalog.current_database(), "
									"       (SELECT pg_catalog.substr(c, 20) "
									"        FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c "
									"        WHERE s.setrole = 0 AND c LIKE 'synchronous\\_commit=%' "
									"          AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database "
									"                               WHERE datname = pg_catalog.current_database())), "
									"       $1",
									1, params))
	{
		bt_error("could not turn on --fast-load; the command was not run");
		return false;
	}
	bt_info("fast load: synchronous_commit = off for database \"%s\" while the command runs",
			PQdb(conn));

	/* a role-level setting overrides the database's: say so */
	res = bt_query(conn,
				   "SELECT pg_catalog.string_agg(r.rolname, ', ') "
				   "FROM pg_catalog.pg_db_role_setting s "
				   "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole, "
				   "     pg_catalog.unnest(s.setconfig) c "
				   "WHERE c LIKE 'synchronous\\_commit=%'",
				   0, NULL, PGRES_TUPLES_OK);
	if (res != NULL && !PQgetisnull(res, 0, 0))
		bt_warning("roles %s have their own synchronous_commit, which wins over the database's: --fast-load does not speed up their sessions",
				   PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

/*
 * Restore what a --fast-load run recorded, ours or a killed run's.  Returns
 * false only on error; leftover says whether there was a record.
 */
static bool
fast_load_restore(PGconn *conn, bool ours)
{
	PGresult   *res;
	char	   *previous = NULL;
	char	   *node;
	char	   *set_at;
	bool		ok;

	res = bt_query(conn,
				   "SELECT previous, node, to_char(set_at, 'YYYY-MM-DD HH24:MI:SS TZ') "
				   "FROM bingo_tune.fast_load WHERE database = pg_catalog.current_database()",
				   0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return false;
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		return true;
	}
	if (!PQgetisnull(res, 0, 0))
		previous = pg_strdup(PQgetvalue(res, 0, 0));
	node = pg_strdup(PQgetvalue(res, 0, 1));
	set_at = pg_strdup(PQgetvalue(res, 0, 2));
	PQclear(res);

	ok = alter_database_sync_commit(conn, previous,
									"DELETE FROM bingo_tune.fast_load "
									"WHERE database = pg_catalog.current_database()",
									0, NULL);
	if (!ok)
		bt_error("could not restore synchronous_commit for database \"%s\"; restore it by hand: ALTER DATABASE ... %s",
				 PQdb(conn), previous ? "SET synchronous_commit TO <previous>" : "RESET synchronous_commit");
	else if (ours)
		bt_info("fast load: synchronous_commit for database \"%s\" restored (%s)",
				PQdb(conn), previous ? previous : "no database setting");
	else
		bt_warning("restored synchronous_commit for database \"%s\" (%s), left off by a --fast-load run on %s at %s that did not finish",
				   PQdb(conn), previous ? previous : "no database setting", node, set_at);
	free(previous);
	free(node);
	free(set_at);
	return ok;
}


/* ----------------------------------------------------------------
 *		The marker
 * ----------------------------------------------------------------
 */

/* True (and says so) if a previous run finished. */
static bool
already_prepared(PGconn *conn, bool *error)
{
	PGresult   *res;

	*error = false;
	res = bt_query(conn,
				   "SELECT node, db_user, command, "
				   "       to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS TZ'), "
				   "       round(extract(epoch FROM finished_at - started_at)) "
				   "FROM bingo_tune.prepared ORDER BY finished_at DESC LIMIT 1",
				   0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
	{
		*error = true;
		return false;
	}
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		return false;
	}
	if (popts.force)
		bt_info("data was prepared by %s (user %s) at %s; running the command again (--force)",
				PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3));
	else
	{
		bt_info("data already prepared by %s (user %s) at %s, %s s with \"%s\": not running the command",
				PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3),
				PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 2));
		bt_info("use --force to run it again");
	}
	PQclear(res);
	return !popts.force;
}

/*
 * Count the rows of each table the command must fill; returns false (and
 * says which) when one is missing or empty.  counts receives a bigint[]
 * literal matching the tables' order.
 */
static int
check_tables_filled(PGconn *conn, const char *tables_literal, char **counts)
{
	const char *params[2] = {popts.schema, tables_literal};
	PGresult   *res;
	PQExpBufferData acc;
	int			i;
	int			rc = BT_EXIT_OK;

	res = bt_query(conn,
				   "SELECT t, pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, t)) IS NOT NULL "
				   "FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i",
				   2, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return BT_EXIT_ERROR;

	initPQExpBuffer(&acc);
	appendPQExpBufferChar(&acc, '{');
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *table = PQgetvalue(res, i, 0);
		char	   *qschema;
		char	   *qtable;
		PQExpBufferData sql;
		PGresult   *cres;

		if (strcmp(PQgetvalue(res, i, 1), "t") != 0)
		{
			bt_error("the command exited 0 but table %s.%s does not exist; no marker written",
					 popts.schema, table);
			rc = BT_EXIT_NOT_FILLED;
			break;
		}
		qschema = PQescapeIdentifier(conn, popts.schema, strlen(popts.schema));
		qtable = PQescapeIdentifier(conn, table, strlen(table));
		if (qschema == NULL || qtable == NULL)
		{
			bt_server_error(conn, NULL, "could not quote a table name");
			rc = BT_EXIT_ERROR;
			break;
		}
		initPQExpBuffer(&sql);
		appendPQExpBuffer(&sql, "SELECT pg_catalog.count(*) FROM %s.%s", qschema, qtable);
		PQfreemem(qschema);
		PQfreemem(qtable);
		cres = bt_query(conn, sql.data, 0, NULL, PGRES_TUPLES_OK);
		termPQExpBuffer(&sql);
		if (cres == NULL)
		{
			rc = BT_EXIT_ERROR;
			break;
		}
		if (strcmp(PQgetvalue(cres, 0, 0), "0") == 0)
		{
			bt_error("the command exited 0 but left table %s.%s empty; no marker written",
					 popts.schema, table);
			PQclear(cres);
			rc = BT_EXIT_NOT_FILLED;
			break;
		}
		bt_info("table %s.%s: %s rows", popts.schema, table, PQgetvalue(cres, 0, 0));
		appendPQExpBuffer(&acc, "%s%s", i > 0 ? "," : "", PQgetvalue(cres, 0, 0));
		PQclear(cres);
	}
	PQclear(res);
	appendPQExpBufferChar(&acc, '}');
	if (rc == BT_EXIT_OK && i == 0)
	{
		bt_error("--tables names no table");
		rc = BT_EXIT_USAGE;
	}
	if (rc == BT_EXIT_OK)
		*counts = acc.data;
	else
		termPQExpBuffer(&acc);
	return rc;
}

static bool
write_marker(PGconn *conn, const char *command, const char *started_at,
			 const char *tables_literal, const char *counts)
{
	const char *params[6] = {node_name(), command, started_at, tables_literal,
	counts, BT_TOOL_VERSION};
	PGresult   *res;

	res = bt_query(conn,
				   "INSERT INTO bingo_tune.prepared "
				   "  (node, command, started_at, rows, tool_version) "
				   "SELECT $1, $2, $3::timestamptz, "
				   "       pg_catalog.jsonb_object_agg(t, n), $6 "
				   "FROM unnest($4::text[], $5::bigint[]) AS u(t, n)",
				   6, params, PGRES_COMMAND_OK);
	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}


/* ----------------------------------------------------------------
 *		Running the command
 * ----------------------------------------------------------------
 */

/*
 * Run the command and wait for it, keeping the connection (and the lock)
 * alive.  Returns the exit code the tool should end with for this command:
 * 0, its failing status, 128+N for a signal, or BT_EXIT_ERROR when the
 * connection was lost.  *interrupted tells whether we were signalled.
 */
static int
run_command(PGconn *conn, char *const *cmd, bool *interrupted)
{
	pid_t		parent = getpid();
	pid_t		pid;
	int			status;
	int			sock = PQsocket(conn);
	double		last_ping = now_secs();
	double		kill_at = 0;
	bool		forwarded = false;
	bool		lost = false;

	*interrupted = false;

	/* the child must not inherit the session that holds the lock */
	if (sock >= 0)
		(void) fcntl(sock, F_SETFD, fcntl(sock, F_GETFD) | FD_CLOEXEC);

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
	{
		bt_error("could not start the command: %s", strerror(errno));
		return BT_EXIT_ERROR;
	}
	if (pid == 0)
	{
		struct sigaction dfl;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGINT, &dfl, NULL);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGHUP, &dfl, NULL);
#ifdef __linux__
		/* if the tool dies, the lock is gone: the command must stop too */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(128 + SIGTERM);
#endif
		execvp(cmd[0], cmd);
		fprintf(stderr, "%s: error: could not run \"%s\": %s\n",
				BT_PROGNAME, cmd[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	for (;;)
	{
		pid_t		r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
		{
			bt_error("could not wait for the command: %s", strerror(errno));
			return BT_EXIT_ERROR;
		}

		if (bt_interrupted && !forwarded)
		{
			*interrupted = true;
			if (!bt_interrupt_from_tty)
				kill(pid, bt_interrupted);
			bt_info("interrupted: stopping the command (signal %d)", (int) bt_interrupted);
			forwarded = true;
			kill_at = now_secs() + BT_CHILD_GRACE_SECS;
		}
		if (forwarded && kill_at > 0 && now_secs() >= kill_at)
		{
			bt_warning("the command did not exit within %d s; killing it", BT_CHILD_GRACE_SECS);
			kill(pid, SIGKILL);
			kill_at = 0;
		}

		/* keep the session alive, and notice when it is gone */
		if (!lost && !forwarded && now_secs() - last_ping >= popts.keepalive_secs)
		{
			PGresult   *res = PQexec(conn, "SELECT 1");

			if (PQresultStatus(res) != PGRES_TUPLES_OK)
			{
				bt_server_error(conn, res, "lost the connection while the command ran");
				bt_error("the prepare lock is gone, so another node may start the command: stopping it");
				kill(pid, SIGTERM);
				lost = true;
				forwarded = true;
				kill_at = now_secs() + BT_CHILD_GRACE_SECS;
			}
			PQclear(res);
			last_ping = now_secs();
		}
		/* a signal cuts the sleep short */
		{
			struct timespec ts = {0, 100 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}

	if (lost)
		return BT_EXIT_ERROR;
	if (WIFEXITED(status))
	{
		if (WEXITSTATUS(status) != 0)
			bt_error("the command failed with exit status %d; no marker written",
					 WEXITSTATUS(status));
		return WEXITSTATUS(status);
	}
	if (WIFSIGNALED(status))
	{
		bt_error("the command was ended by signal %d; no marker written",
				 WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return BT_EXIT_ERROR;
}


/* ----------------------------------------------------------------
 *		apply
 * ----------------------------------------------------------------
 */

/*
 * CALL bingo_tune.apply() and summarise bingo_tune.last_apply.  The per
 * index NOTICEs are shown as they arrive: builds of 5M-row tables take a
 * while.  Returns an exit code.
 */
int
bt_apply(PGconn *conn)
{
	PGresult   *res;
	int			i;
	int			created = 0,
				present = 0,
				skipped = 0,
				failed = 0;

	if (!bt_function_exists(conn, "bingo_tune.apply(text)") &&
		!bt_function_exists(conn, "bingo_tune.apply()"))
	{
		bt_error("this server's bingo_tune has no apply() procedure");
		return BT_EXIT_VERSION;
	}
	bt_info("building missing indexes (CALL bingo_tune.apply())");
	bt_show_notices(true);
	res = bt_query_interruptible(conn, "CALL bingo_tune.apply()", 0, NULL, PGRES_COMMAND_OK);
	bt_show_notices(false);
	if (res == NULL)
	{
		if (bt_interrupted)
		{
			bt_info("interrupted: index builds cancelled");
			return bt_interrupt_exit_code();
		}
		return BT_EXIT_ERROR;
	}
	PQclear(res);

	res = bt_query(conn,
				   "SELECT index_name, action, detail FROM bingo_tune.last_apply",
				   0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return BT_EXIT_ERROR;
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *action = PQgetvalue(res, i, 1);

		if (strcmp(action, "created") == 0 || strcmp(action, "rebuilt") == 0)
			created++;
		else if (strcmp(action, "already present") == 0)
			present++;
		else if (strncmp(action, "failed", 6) == 0)
		{
			failed++;
			bt_error("index %s could not be built: %s", PQgetvalue(res, i, 0),
					 PQgetisnull(res, i, 2) ? action : PQgetvalue(res, i, 2));
		}
		else
		{
			skipped++;
			bt_verbose("index %s %s%s%s", PQgetvalue(res, i, 0), action,
					   PQgetisnull(res, i, 2) ? "" : ": ",
					   PQgetisnull(res, i, 2) ? "" : PQgetvalue(res, i, 2));
		}
	}
	PQclear(res);
	bt_verbose("indexes: %d built, %d already present, %d skipped, %d failed",
			created, present, skipped, failed);
	if (failed > 0)
	{
		bt_hint("Run \"%s apply\" again once the cause is fixed; the data itself is in place.",
				BT_PROGNAME);
		return BT_EXIT_ERROR;
	}
	return BT_EXIT_OK;
}

static void
apply_help(void)
{
	printf("Usage:\n  %s apply [OPTION]... [CONNINFO]\n\n", BT_PROGNAME);
	printf("Builds every index the watched statements need and the database lacks\n"
		   "(CALL bingo_tune.apply(): CREATE INDEX CONCURRENTLY, one at a time, without\n"
		   "blocking the app's reads and writes) and prints what was done.  Always runs\n"
		   "on the primary of a multi-host list.\n\n");
	printf("Options:\n"
		   "  -d, --dbname=CONNINFO  database (or the PG* variables)\n"
		   "  -q, --quiet            print errors and warnings only\n"
		   "  -v, --verbose          also print the queries and skipped indexes\n"
		   "  -h, --help             show this help, then exit\n\n");
	printf("Exit codes: 0 every index present, 1 an index failed or another error,\n"
		   "2 usage, 3 could not connect, 4 extension not installed.\n");
}

int
bt_apply_main(int argc, char **argv)
{
	int			rc;
	PGconn	   *conn;

	rc = bt_parse_simple_args(argc, argv, NULL, NULL, NULL, apply_help);
	if (rc >= 0)
		return rc;
	conn = bt_connect(BT_TARGET_PRIMARY);
	if (!bt_extension_installed(conn, NULL))
	{
		bt_error("extension bingo_tune is not installed in database \"%s\"", PQdb(conn));
		bt_hint("Run \"%s install\" first.", BT_PROGNAME);
		PQfinish(conn);
		return BT_EXIT_NOT_PREPARED;
	}
	rc = bt_apply(conn);
	PQfinish(conn);
	return rc;
}


/* ----------------------------------------------------------------
 *		prepare-db
 * ----------------------------------------------------------------
 */

static int
prepare(PGconn *conn, char *const *cmd)
{
	int			rc;
	bool		error;
	bool		interrupted;
	char	   *tables_literal;
	char	   *counts = NULL;
	char	   *started_at;
	PGresult   *res;
	double		t0;

	rc = bt_install(conn);
	if (rc != BT_EXIT_OK)
		return rc;

	rc = take_prepare_lock(conn);
	if (rc != BT_EXIT_OK)
		return rc;
	name_session(conn);
	if (bt_interrupted)
	{
		/* a signal that came during install or the last poll */
		bt_info("interrupted before the command started; nothing was done");
		return bt_interrupt_exit_code();
	}

	if (!fast_load_restore(conn, false))
		return BT_EXIT_ERROR;

	if (already_prepared(conn, &error))
		return popts.apply ? bt_apply(conn) : BT_EXIT_OK;
	if (error)
		return BT_EXIT_ERROR;

	tables_literal = list_to_array_literal(popts.tables);

	res = bt_query(conn, "SELECT pg_catalog.clock_timestamp()", 0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return BT_EXIT_ERROR;
	started_at = pg_strdup(PQgetvalue(res, 0, 0));
	PQclear(res);

	if (popts.fast_load && !fast_load_on(conn))
		return BT_EXIT_ERROR;
	if (bt_interrupted)
	{
		if (popts.fast_load)
			(void) fast_load_restore(conn, true);
		bt_info("interrupted before the command started; nothing was done");
		return bt_interrupt_exit_code();
	}

	bt_info("running \"%s\" (holding the prepare lock)", command_name(cmd));
	t0 = now_secs();
	rc = run_command(conn, cmd, &interrupted);

	/* whatever happened, put the setting back before anything else */
	if (popts.fast_load && PQstatus(conn) == CONNECTION_OK &&
		!fast_load_restore(conn, true))
		rc = rc != BT_EXIT_OK ? rc : BT_EXIT_ERROR;

	if (interrupted)
	{
		bt_info("interrupted: no marker written; the lock is released");
		return bt_interrupt_exit_code();
	}
	if (rc != BT_EXIT_OK)
		return rc;
	bt_info("\"%s\" finished in %.1f s", command_name(cmd), now_secs() - t0);

	rc = check_tables_filled(conn, tables_literal, &counts);
	if (rc != BT_EXIT_OK)
		return rc;
	if (!write_marker(conn, command_name(cmd), started_at, tables_literal, counts))
		return BT_EXIT_ERROR;
	bt_info("marker written: later runs on any node skip the command");

	return popts.apply ? bt_apply(conn) : BT_EXIT_OK;
}

int
bt_prepare_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"force", no_argument, NULL, 'f'},
		{"fast-load", no_argument, NULL, 1},
		{"schema", required_argument, NULL, 2},
		{"tables", required_argument, NULL, 3},
		{"no-apply", no_argument, NULL, 4},
		{"keepalive", required_argument, NULL, 5},
		{NULL, 0, NULL, 0}
	};
	int			dashdash;
	int			rc;
	PGconn	   *conn;

	/* the command starts after "--"; only what is before it is ours */
	for (dashdash = 1; dashdash < argc; dashdash++)
		if (strcmp(argv[dashdash], "--") == 0)
			break;

	rc = bt_parse_simple_args(dashdash, argv, longopts, "f", prepare_option, prepare_help);
	if (rc >= 0)
		return rc;
	if (dashdash >= argc)
	{
		bt_error("no command given: put \"--\" and the command after the options");
		bt_hint("For example: %s prepare-db \"host=db1,db2 dbname=bingo\" -- bingo prepare_db",
				BT_PROGNAME);
		return BT_EXIT_USAGE;
	}
	if (dashdash + 1 >= argc)
	{
		bt_error("no command after \"--\"");
		bt_hint("For example: %s prepare-db -- bingo prepare_db", BT_PROGNAME);
		return BT_EXIT_USAGE;
	}

	conn = bt_connect(BT_TARGET_PRIMARY);
	rc = prepare(conn, argv + dashdash + 1);
	/* closing the session releases the prepare lock */
	PQfinish(conn);
	return rc;
}
