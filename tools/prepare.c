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
 *	   hang no deadlock detector sees.  Any role can take an advisory lock,
 *	   so the waiting message says who holds it from pg_locks and
 *	   pg_stat_activity (role, superuser or not, client, since when), names
 *	   a holder that is no superuser as not being this tool, and shows the
 *	   application_name only as a sanitized claim; --lock-timeout bounds the
 *	   wait.
 *	3. Restore a --fast-load setting a killed run left behind.
 *	4. Read the marker (bingo_tune.prepared): one row per run, its start
 *	   committed before the command runs and its end written when it stops.
 *	   The newest row decides: "prepared" or "adopted" skips the command
 *	   (unless --force); a start without an end (a killed run) or any other
 *	   outcome runs it again.  No row at all while the tables already hold
 *	   data means the data came from elsewhere (a dropped and re-created
 *	   extension, a restore): the command is not run, the tool exits with
 *	   BT_EXIT_UNMARKED_DATA and offers --adopt and --force.
 *	5. Otherwise record the start, and run the command in a session and
 *	   process group of its own, streaming its output, while holding the
 *	   lock.  The tool is the group's subreaper (Linux), so the command's
 *	   orphans stay its children and it can tell when the whole group is
 *	   gone.  Every way of stopping the command -- a signal to the tool, a
 *	   lost connection (which means a lost lock), processes left behind by
 *	   a command that exited -- sends SIGTERM to the whole group, then
 *	   SIGKILL after BT_CHILD_GRACE_SECS, and waits until no process of the
 *	   group is left before the lock is released (the tool's connection is
 *	   closed only then).  The lock's socket is close-on-exec, so the
 *	   command cannot keep the session alive; on Linux the group's leader
 *	   gets SIGTERM when the tool dies (PR_SET_PDEATHSIG).
 *	6. Restore the --fast-load setting, whatever happened; after a lost
 *	   connection reconnect (bounded retries) to do it, and say so plainly
 *	   when that is impossible.
 *	7. Record the end: the exit status, and the tables' row counts from
 *	   ANALYZE.  The outcome is "prepared" only if the command exited 0 and
 *	   every table exists and has rows.
 *	8. CALL bingo_tune.apply() so the first request finds its indexes; this
 *	   runs after a skipped command too (it does nothing when all are there).
 *
 * The tables are looked at through the catalog and statistics only
 * (pg_class, pg_relation_size, ANALYZE, which runs as each table's owner
 * inside a security-restricted operation), never by reading them as the
 * superuser the tool connects as: a "table" the app role replaced by a view
 * over its own function would otherwise run that function with superuser
 * rights.  Only ordinary and partitioned tables are accepted.  Row counts
 * are therefore ANALYZE's: exact up to about 30,000 rows, estimates above.
 *
 * --fast-load sets synchronous_commit = off for the target database (ALTER
 * DATABASE ... SET, which new sessions -- the command's -- pick up) while
 * the command runs.  The previous database-level value is recorded in
 * bingo_tune.fast_load in the same transaction, so a run that is killed
 * leaves a record the next run restores from.
 *
 * tools/prepare.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <fcntl.h>
#include <poll.h>
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
/* how often a lock wait says it is still waiting */
#define BT_LOCK_PROGRESS_SECS	30
/* reconnect attempts after a lost connection, to restore --fast-load */
#define BT_RECONNECT_TRIES		5
/* longest name of a table (NAMEDATALEN - 1) */
#define BT_MAX_NAME_LEN			63

typedef struct PrepareOptions
{
	bool		force;
	bool		adopt;
	bool		fast_load;
	bool		apply;
	const char *schema;
	const char *tables;
	char	   *tables_literal; /* tables as a text[] literal */
	int			keepalive_secs;
	int			lock_timeout_ms;	/* 0: wait for ever */
} PrepareOptions;

static PrepareOptions popts = {false, false, false, true, "public",
	"sessions,customers,movies", NULL, 30, 0};

/* whether this run took the prepare lock (and so releases it at the end) */
static bool lock_taken = false;

/* What the newest row of bingo_tune.prepared says. */
typedef enum PrepState
{
	PREP_NONE,					/* no run recorded */
	PREP_DONE,					/* prepared or adopted */
	PREP_UNFINISHED,			/* started, never finished: killed */
	PREP_NOT_DONE				/* finished without preparing */
} PrepState;

/* How the command ended (run_command). */
typedef struct RunResult
{
	int			rc;				/* the exit code the tool should end with */
	int			status;			/* exit status, 128+N for signal N; -1 none */
	bool		interrupted;	/* the tool got a signal */
	bool		lost;			/* the connection (and so the lock) was lost */
} RunResult;

static void
prepare_help(void)
{
	printf("Usage:\n  %s prepare-db [OPTION]... [DBNAME [USERNAME]] -- COMMAND [ARG]...\n"
		   "  %s prepare-db --adopt [OPTION]... [DBNAME [USERNAME]]\n\n",
		   BT_PROGNAME, BT_PROGNAME);
	printf("Runs \"install\", then runs COMMAND (bingo's \"prepare_db\") once across all\n"
		   "nodes: it takes a lock in the database and reads the record of earlier\n"
		   "runs (bingo_tune.prepared).  If a run prepared the data it says by whom\n"
		   "and when and does not run COMMAND again; if the last run was interrupted\n"
		   "or failed, it runs COMMAND again; if nothing was recorded but the tables\n"
		   "already hold data, it does not run COMMAND and exits 9 (see --adopt and\n"
		   "--force).  COMMAND runs in a process group of its own while the tool\n"
		   "holds the lock; its start is recorded before it runs and its end (exit\n"
		   "status, row counts) after; it counts as prepared only if it exited 0 and\n"
		   "left the tables with rows.  Then the missing indexes are built (CALL\n"
		   "bingo_tune.apply()).\n\n");
	printf("Options:\n");
	bt_print_connection_help();
	printf("  -f, --force              run COMMAND even if a run prepared the data, or\n"
		   "                           the tables hold data no run recorded\n"
		   "      --adopt              record the data already in the tables as prepared,\n"
		   "                           without running anything (no COMMAND)\n"
		   "      --fast-load          set synchronous_commit = off for the database while\n"
		   "                           COMMAND runs and restore it afterwards: several\n"
		   "                           times faster for prepare_db's one-row transactions;\n"
		   "                           a server crash may lose the last moments of the\n"
		   "                           load, which the next run repeats\n"
		   "      --schema=NAME        schema of the tables COMMAND fills (default public)\n"
		   "      --tables=LIST        tables COMMAND must leave with rows, comma-separated\n"
		   "                           (default sessions,customers,movies)\n"
		   "      --no-apply           do not build the indexes afterwards\n"
		   "      --lock-timeout=TIME  give up waiting for the prepare lock after TIME\n"
		   "                           (e.g. 90s, 10min; default 0: wait for ever)\n"
		   "      --keepalive=SECS     check the lock this often while COMMAND runs\n"
		   "                           (default 30)\n"
		   "  -q, --quiet              print errors and warnings only\n"
		   "  -v, --verbose            also print the queries and server notices\n"
		   "  -?, --help               show this help, then exit\n\n");
	printf("COMMAND's arguments are not printed or recorded: they may hold secrets.\n\n");
	printf("Exit codes: 0 prepared (now or before) and indexes built, 1 error, 2 usage,\n"
		   "3 could not connect, 4 server not prepared, 5 version mismatch, 7 COMMAND\n"
		   "exited 0 but left a table missing or empty, 8 --lock-timeout expired,\n"
		   "9 the tables hold data no run recorded (COMMAND not run); COMMAND's own\n"
		   "status when it fails (128+N when signal N ended it); 128+N when the tool\n"
		   "gets signal N.\n");
}

/*
 * Check --tables and turn it into a text[] literal (each element quoted):
 * comma-separated names, none empty, none longer than a PostgreSQL name.
 */
static bool
parse_tables(const char *list)
{
	PQExpBufferData buf;
	const char *p = list;

	initPQExpBuffer(&buf);
	appendPQExpBufferChar(&buf, '{');
	for (;;)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		size_t		i;

		while (len > 0 && *p == ' ')
			p++, len--;
		while (len > 0 && p[len - 1] == ' ')
			len--;
		if (len == 0)
		{
			pg_log_error("--tables must be a comma-separated list of table names, with no empty name: \"%s\"",
						 list);
			termPQExpBuffer(&buf);
			return false;
		}
		if (len > BT_MAX_NAME_LEN)
		{
			pg_log_error("--tables: \"%.*s\" is longer than a table name can be (%d bytes)",
						 (int) len, p, BT_MAX_NAME_LEN);
			termPQExpBuffer(&buf);
			return false;
		}
		if (buf.len > 1)
			appendPQExpBufferChar(&buf, ',');
		appendPQExpBufferChar(&buf, '"');
		for (i = 0; i < len; i++)
		{
			if (p[i] == '"' || p[i] == '\\')
				appendPQExpBufferChar(&buf, '\\');
			appendPQExpBufferChar(&buf, p[i]);
		}
		appendPQExpBufferChar(&buf, '"');
		if (end == NULL)
			break;
		p = end + 1;
	}
	appendPQExpBufferChar(&buf, '}');
	popts.tables_literal = buf.data;
	return true;
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
			if (arg[0] == '\0' || strlen(arg) > BT_MAX_NAME_LEN)
			{
				pg_log_error("--schema must be a schema name of 1 to %d bytes, not \"%s\"",
							 BT_MAX_NAME_LEN, arg);
				exit(BT_EXIT_USAGE);
			}
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
				pg_log_error("--keepalive must be a number of seconds from 1 to 3600, not \"%s\"", arg);
				exit(BT_EXIT_USAGE);
			}
			return true;
		case 6:
			popts.adopt = true;
			return true;
		case 7:
			if (!bt_parse_duration(arg, &popts.lock_timeout_ms))
			{
				pg_log_error("--lock-timeout must be a duration such as 90s, 500ms, 10min or 1h (0: wait for ever), not \"%s\"",
							 arg);
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

/* Whether the connection is gone (the server ended it, the network broke). */
static bool
conn_lost(PGconn *conn)
{
	return conn == NULL || PQstatus(conn) != CONNECTION_OK;
}


/* ----------------------------------------------------------------
 *		The prepare lock
 * ----------------------------------------------------------------
 */

/*
 * Say who holds the prepare lock, from pg_locks and pg_stat_activity: the
 * role, whether it is a superuser, the client, since when.  Only a
 * superuser can run this tool, so a holder that is not one is plainly some
 * other session that took the key.  application_name is whatever the
 * holder chose: it is shown sanitized, as a claim.
 */
static void
describe_lock_holder(PGconn *conn, bool still)
{
	const char *params[1] = {BT_LOCK_PREPARE};
	PGresult   *res;
	char		app[80];

	res = bt_query(conn,
				   "SELECT l.pid, r.rolname, r.rolsuper, "
				   "       COALESCE(pg_catalog.host(a.client_addr), "
				   "                           CASE WHEN a.pid IS NULL THEN NULL ELSE 'local socket' END), "
				   "       pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), "
				   "       a.application_name "
				   "FROM pg_catalog.pg_locks l "
				   "LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
				   "LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid "
				   "WHERE l.locktype = 'advisory' AND l.granted "
				   "  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d "
				   "                    WHERE d.datname = pg_catalog.current_database()) "
				   "  AND l.classid = ($1::pg_catalog.int8 >> 32)::pg_catalog.oid "
				   "  AND l.objid = ($1::pg_catalog.int8 & 4294967295)::pg_catalog.oid "
				   "  AND l.objsubid = 1",
				   1, params, PGRES_TUPLES_OK);
	if (res == NULL || PQntuples(res) == 0 || PQgetisnull(res, 0, 1))
	{
		pg_log_info("%s for the prepare lock, held by a session this tool cannot see (pid %s)",
					still ? "still waiting" : "waiting",
					res && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "unknown");
		PQclear(res);
		return;
	}
	bt_sanitize(PQgetvalue(res, 0, 5), app, sizeof(app));
	if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
	{
		pg_log_warning("%s for the prepare lock, held by role \"%s\", which is NOT a superuser, so this is not the bingo_tune tool (pid %s, from %s, connected since %s; it calls itself \"%s\")",
					   still ? "still waiting" : "waiting",
					   PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0),
					   PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), app);
		pg_log_warning_hint("Some session took the prepare lock's advisory key (%s). If it should not hold it, end it: SELECT pg_terminate_backend(%s);",
							BT_LOCK_PREPARE, PQgetvalue(res, 0, 0));
	}
	else
		pg_log_info("%s for the prepare lock, held by superuser role \"%s\" (pid %s, from %s, connected since %s; it calls itself \"%s\")",
					still ? "still waiting" : "waiting",
					PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0),
					PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), app);
	PQclear(res);
}

/*
 * Take the prepare lock, waiting up to --lock-timeout (for ever by
 * default).  Returns BT_EXIT_OK, an error code, BT_EXIT_LOCK_TIMEOUT or the
 * interrupt code.
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

		res = bt_query(conn, "SELECT pg_catalog.pg_try_advisory_lock($1::pg_catalog.int8)",
					   1, params, PGRES_TUPLES_OK);
		if (res == NULL)
			return BT_EXIT_ERROR;
		got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (got)
		{
			if (announced)
				pg_log_info("got the prepare lock after %.0f s", now_secs() - start);
			else
				pg_log_debug("got the prepare lock");
			return BT_EXIT_OK;
		}
		if (!announced)
		{
			describe_lock_holder(conn, false);
			announced = true;
		}
		else if (now_secs() - last_note >= BT_LOCK_PROGRESS_SECS)
		{
			pg_log_info("still waiting for the prepare lock (%.0f s)", now_secs() - start);
			describe_lock_holder(conn, true);
			last_note = now_secs();
		}
		if (popts.lock_timeout_ms > 0 &&
			(now_secs() - start) * 1000 >= popts.lock_timeout_ms)
		{
			pg_log_error("gave up waiting for the prepare lock after %.0f s (--lock-timeout); nothing was done",
						 now_secs() - start);
			return BT_EXIT_LOCK_TIMEOUT;
		}
		if (!bt_sleep_ms(popts.lock_timeout_ms > 0 && popts.lock_timeout_ms < 1000 ?
						 popts.lock_timeout_ms : 1000))
		{
			pg_log_info("interrupted while waiting for the prepare lock; nothing was done");
			return bt_interrupt_exit_code();
		}
	}
}

/* Whether this session still holds the prepare lock. */
static bool
still_holds_lock(PGconn *conn)
{
	const char *params[1] = {BT_LOCK_PREPARE};
	PGresult   *res;
	bool		held;

	res = PQexecParams(conn,
					   "SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks l "
					   "WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'advisory' "
					   "  AND l.granted AND l.objsubid = 1 "
					   "  AND l.classid = ($1::pg_catalog.int8 >> 32)::pg_catalog.oid "
					   "  AND l.objid = ($1::pg_catalog.int8 & 4294967295)::pg_catalog.oid",
					   1, NULL, params, NULL, NULL, 0);
	held = PQresultStatus(res) == PGRES_TUPLES_OK &&
		strcmp(PQgetvalue(res, 0, 0), "0") != 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		bt_server_error(conn, res, "could not check the prepare lock while the command ran");
	else if (!held)
		pg_log_error("this session no longer holds the prepare lock");
	PQclear(res);
	return held;
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
		pg_log_error("could not turn on --fast-load; the command was not run");
		return false;
	}
	pg_log_info("fast load: synchronous_commit = off for database \"%s\" while the command runs",
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
		pg_log_warning("roles %s have their own synchronous_commit, which wins over the database's: --fast-load does not speed up their sessions",
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
				   "SELECT previous, node, pg_catalog.to_char(set_at, 'YYYY-MM-DD HH24:MI:SS TZ') "
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
		pg_log_error("could not restore synchronous_commit for database \"%s\"; restore it by hand: ALTER DATABASE ... %s",
					 PQdb(conn), previous ? "SET synchronous_commit TO <previous>" : "RESET synchronous_commit");
	else if (ours)
		pg_log_info("fast load: synchronous_commit for database \"%s\" restored (%s)",
					PQdb(conn), previous ? previous : "no database setting");
	else
		pg_log_warning("restored synchronous_commit for database \"%s\" (%s), left off by a --fast-load run on %s at %s that did not finish",
					   PQdb(conn), previous ? previous : "no database setting", node, set_at);
	free(previous);
	free(node);
	free(set_at);
	return ok;
}



/* ----------------------------------------------------------------
 *		The tables
 * ----------------------------------------------------------------
 */

/* columns of survey_tables()'s result */
#define TBL_NAME	0
#define TBL_KIND	1
#define TBL_BYTES	2
#define TBL_ROWS	3
#define TBL_LIVE	4

/*
 * What the catalog and the statistics say about each table of --tables:
 * its relkind (NULL: missing), the bytes of its (leaf partitions') main
 * forks (a partitioned table's leaves), ANALYZE's row count (reltuples, -1 before any ANALYZE counted as 0)
 * and the statistics' live rows.  Nothing here reads a table or calls a
 * function its owner wrote.
 */
static PGresult *
survey_tables(PGconn *conn)
{
	const char *params[2] = {popts.schema, popts.tables_literal};

	return bt_query(conn,
					"SELECT u.t, c.relkind, "
					"       COALESCE(s.bytes, 0), COALESCE(s.nrows, 0), "
					"       COALESCE(s.live, 0) "
					"FROM pg_catalog.unnest($2::pg_catalog.text[]) WITH ORDINALITY AS u(t, i) "
					"LEFT JOIN (pg_catalog.pg_class c "
					"           JOIN pg_catalog.pg_namespace n "
					"             ON n.oid = c.relnamespace AND n.nspname = $1::pg_catalog.text) "
					"  ON c.relname = u.t "
					"LEFT JOIN LATERAL ("
					"  SELECT pg_catalog.sum(pg_catalog.pg_relation_size(l.oid))::pg_catalog.int8 AS bytes, "
					"         pg_catalog.sum(GREATEST(l.reltuples, 0))::pg_catalog.int8 AS nrows, "
					"         pg_catalog.sum(pg_catalog.pg_stat_get_live_tuples(l.oid))::pg_catalog.int8 AS live "
					"  FROM pg_catalog.pg_class l "
					"  WHERE l.relkind = 'r' "
					"    AND (l.oid = c.oid OR l.oid IN (SELECT p.relid "
					"         FROM pg_catalog.pg_partition_tree(c.oid) p WHERE p.isleaf))) s "
					"  ON c.relkind IN ('r', 'p') "
					"ORDER BY u.i",
					2, params, PGRES_TUPLES_OK);
}

/*
 * Refuse anything but ordinary and partitioned tables (a view could run its
 * owner's code); missing tables are fine here.  Says which and returns
 * false.
 */
static bool
only_tables(const PGresult *res)
{
	int			i;

	for (i = 0; i < PQntuples(res); i++)
	{
		const char *kind = PQgetvalue(res, i, TBL_KIND);

		if (PQgetisnull(res, i, TBL_KIND) || strcmp(kind, "r") == 0 ||
			strcmp(kind, "p") == 0)
			continue;
		pg_log_error("%s.%s is not a table (relkind '%s'): the tool accepts only ordinary and partitioned tables",
					 popts.schema, PQgetvalue(res, i, TBL_NAME), kind);
		pg_log_error_hint("A view or foreign table in place of a table the command fills is not what prepare_db leaves; check who created it.");
		return false;
	}
	return true;
}

/* Whether any table holds data: pages on disk, or rows by the statistics. */
static bool
tables_hold_data(const PGresult *res)
{
	int			i;
	bool		any = false;

	for (i = 0; i < PQntuples(res); i++)
	{
		if (PQgetisnull(res, i, TBL_KIND))
			continue;
		if (strcmp(PQgetvalue(res, i, TBL_BYTES), "0") != 0 ||
			strcmp(PQgetvalue(res, i, TBL_ROWS), "0") != 0 ||
			strcmp(PQgetvalue(res, i, TBL_LIVE), "0") != 0)
		{
			pg_log_info("table %s.%s holds data: %s bytes, about %s rows",
						popts.schema, PQgetvalue(res, i, TBL_NAME),
						PQgetvalue(res, i, TBL_BYTES),
						strcmp(PQgetvalue(res, i, TBL_ROWS), "0") != 0 ?
						PQgetvalue(res, i, TBL_ROWS) : PQgetvalue(res, i, TBL_LIVE));
			any = true;
		}
	}
	return any;
}

/*
 * ANALYZE the tables that exist (as their owners: the server switches to
 * each table's owner in a security-restricted operation), then survey them
 * again.  Returns the new survey, or NULL on error.
 */
static PGresult *
analyze_tables(PGconn *conn)
{
	PGresult   *res = survey_tables(conn);
	int			i;

	if (res == NULL || !only_tables(res))
	{
		PQclear(res);
		return NULL;
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *table = PQgetvalue(res, i, TBL_NAME);
		char	   *qschema;
		char	   *qtable;
		PQExpBufferData sql;
		bool		ok;

		if (PQgetisnull(res, i, TBL_KIND))
			continue;
		qschema = PQescapeIdentifier(conn, popts.schema, strlen(popts.schema));
		qtable = PQescapeIdentifier(conn, table, strlen(table));
		if (qschema == NULL || qtable == NULL)
		{
			bt_server_error(conn, NULL, "could not quote a table name");
			PQclear(res);
			return NULL;
		}
		initPQExpBuffer(&sql);
		appendPQExpBuffer(&sql, "ANALYZE %s.%s", qschema, qtable);
		PQfreemem(qschema);
		PQfreemem(qtable);
		ok = bt_command(conn, sql.data);
		termPQExpBuffer(&sql);
		if (!ok)
		{
			PQclear(res);
			return NULL;
		}
	}
	PQclear(res);
	res = survey_tables(conn);
	if (res != NULL && !only_tables(res))
	{
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Whether every table exists and has rows (after analyze_tables()); says
 * which one does not.  counts receives a bigint[] literal of the row
 * counts in the tables' order.
 */
static bool
tables_filled(const PGresult *res, char **counts, const char *who)
{
	PQExpBufferData acc;
	int			i;
	bool		filled = true;

	initPQExpBuffer(&acc);
	appendPQExpBufferChar(&acc, '{');
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *table = PQgetvalue(res, i, TBL_NAME);
		bool		missing = PQgetisnull(res, i, TBL_KIND);

		appendPQExpBuffer(&acc, "%s%s", i > 0 ? "," : "",
						  missing ? "NULL" : PQgetvalue(res, i, TBL_ROWS));
		if (!filled)
			continue;
		if (missing)
		{
			pg_log_error("%s table %s.%s does not exist", who, popts.schema, table);
			filled = false;
		}
		else if (strcmp(PQgetvalue(res, i, TBL_ROWS), "0") == 0)
		{
			pg_log_error("%s table %s.%s empty", who, popts.schema, table);
			filled = false;
		}
		else
			pg_log_info("table %s.%s: %s rows", popts.schema, table,
						PQgetvalue(res, i, TBL_ROWS));
	}
	appendPQExpBufferChar(&acc, '}');
	*counts = acc.data;
	return filled;
}


/* ----------------------------------------------------------------
 *		The marker
 * ----------------------------------------------------------------
 */

/* Read the newest run recorded, say what it means, and return its state. */
static bool
read_state(PGconn *conn, PrepState *state)
{
	PGresult   *res;
	const char *outcome;

	res = bt_query(conn,
				   "SELECT node, pid, db_user, command, "
				   "       pg_catalog.to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), "
				   "       pg_catalog.to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS TZ'), "
				   "       outcome, exit_status, "
				   "       pg_catalog.round(EXTRACT(epoch FROM finished_at - started_at)) "
				   "FROM bingo_tune.prepared ORDER BY started_at DESC LIMIT 1",
				   0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return false;
	if (PQntuples(res) == 0)
	{
		*state = PREP_NONE;
		PQclear(res);
		return true;
	}
	outcome = PQgetvalue(res, 0, 6);
	if (PQgetisnull(res, 0, 5))
	{
		*state = PREP_UNFINISHED;
		pg_log_warning("the last run, \"%s\" on %s (tool pid %s, user %s) started at %s, never finished: it was interrupted; %s",
					   PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
					   PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 4),
					   popts.adopt ? "adopting the data in the tables instead (--adopt)" :
					   "running the command again");
	}
	else if (strcmp(outcome, "prepared") == 0 || strcmp(outcome, "adopted") == 0)
	{
		*state = PREP_DONE;
		if (popts.adopt)
			pg_log_info("data already %s by %s (user %s) at %s: nothing to adopt",
						outcome, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 5));
		else if (popts.force)
			pg_log_info("data was %s by %s (user %s) at %s; running the command again (--force)",
						outcome, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 5));
		else
		{
			pg_log_info("data already %s by %s (user %s) at %s, %s s with \"%s\": not running the command",
						outcome, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2),
						PQgetvalue(res, 0, 5), PQgetvalue(res, 0, 8), PQgetvalue(res, 0, 3));
			pg_log_info("use --force to run it again");
		}
	}
	else
	{
		*state = PREP_NOT_DONE;
		pg_log_info("the last run, \"%s\" on %s at %s, ended %s (exit status %s): %s",
					PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 4),
					outcome, PQgetisnull(res, 0, 7) ? "none" : PQgetvalue(res, 0, 7),
					popts.adopt ? "adopting the data in the tables instead (--adopt)" :
					"running the command again");
	}
	PQclear(res);
	return true;
}

/*
 * Record a run's start, committed before the command runs: node, tool pid,
 * command name, time.  A newer start supersedes every earlier end, so from
 * here on the database no longer reads as prepared (this is how --force
 * clears the finished mark).  Returns the run's id (malloc'd) or NULL.
 */
static char *
start_run(PGconn *conn, const char *command)
{
	char		pid[16];
	const char *params[5] = {node_name(), pid, command, popts.tables_literal,
	BT_TOOL_VERSION};
	PGresult   *res;
	char	   *run;

	snprintf(pid, sizeof(pid), "%d", (int) getpid());
	res = bt_query(conn,
				   "INSERT INTO bingo_tune.prepared (node, pid, command, tables, tool_version) "
				   "VALUES ($1, $2::pg_catalog.int4, $3, $4::pg_catalog.text[], $5) "
				   "RETURNING run",
				   5, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return NULL;
	run = pg_strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return run;
}

/*
 * Record a run's end: its outcome, the command's exit status (-1: none) and
 * the row counts (a bigint[] literal in the tables' order, or NULL).
 */
static bool
end_run(PGconn *conn, const char *run, const char *outcome, int status,
		const char *counts)
{
	char		st[16];
	const char *params[4] = {run, outcome, status >= 0 ? st : NULL, counts};
	PGresult   *res;

	snprintf(st, sizeof(st), "%d", status);
	res = bt_query(conn,
				   "UPDATE bingo_tune.prepared "
				   "SET finished_at = pg_catalog.clock_timestamp(), outcome = $2, "
				   "    exit_status = $3::pg_catalog.int4, "
				   "    rows = CASE WHEN $4::pg_catalog.int8[] IS NULL THEN NULL ELSE "
				   "      (SELECT pg_catalog.jsonb_object_agg(u.t, u.n) "
				   "       FROM ROWS FROM (pg_catalog.unnest(tables), "
				   "                       pg_catalog.unnest($4::pg_catalog.int8[])) AS u(t, n)) END "
				   "WHERE run = $1::pg_catalog.uuid",
				   4, params, PGRES_COMMAND_OK);
	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

/* --adopt: record the data in the tables as prepared, running nothing. */
static int
adopt(PGconn *conn)
{
	PGresult   *res;
	char	   *counts;
	char	   *run;
	bool		filled;

	res = analyze_tables(conn);
	if (res == NULL)
		return BT_EXIT_ERROR;
	filled = tables_filled(res, &counts, "cannot adopt:");
	PQclear(res);
	if (!filled)
	{
		free(counts);
		pg_log_error_hint("--adopt records data that is already there; run the command instead (without --adopt).");
		return BT_EXIT_NOT_FILLED;
	}
	run = start_run(conn, "(adopted)");
	if (run == NULL || !end_run(conn, run, "adopted", -1, counts))
		return BT_EXIT_ERROR;
	free(counts);
	free(run);
	pg_log_info("adopted the data in the tables as prepared: later runs on any node skip the command");
	return BT_EXIT_OK;
}


/* ----------------------------------------------------------------
 *		Running the command
 * ----------------------------------------------------------------
 */

/* Signal every process of the command's group. */
static void
signal_group(pid_t pgid, int sig)
{
	/* before the child's setsid() the group does not exist yet */
	if (kill(-pgid, sig) < 0 && errno == ESRCH)
		(void) kill(pgid, sig);
}

/* Whether any process of the group is alive (zombies we reap first). */
static bool
group_alive(pid_t pgid, pid_t leader, int *leader_status, bool *leader_done)
{
	pid_t		r;
	int			st;

	/* reap the leader and, as subreaper, the group's orphans */
	while ((r = waitpid(-1, &st, WNOHANG)) > 0)
	{
		if (r == leader)
		{
			*leader_status = st;
			*leader_done = true;
		}
	}
	if (!*leader_done)
		return true;
	return kill(-pgid, 0) == 0 || errno != ESRCH;
}

/*
 * Stop the whole group: SIGTERM, SIGKILL after the grace period, and wait
 * until no process of it is left.  Never returns while one lives.
 */
static void
stop_group(pid_t pgid, int *leader_status, bool *leader_done)
{
	double		kill_at = now_secs() + BT_CHILD_GRACE_SECS;
	double		last_note = 0;
	bool		killed = false;

	signal_group(pgid, SIGTERM);
	while (group_alive(pgid, pgid, leader_status, leader_done))
	{
		if (!killed && now_secs() >= kill_at)
		{
			pg_log_warning("the command's process group did not exit within %d s of SIGTERM; killing it",
						   BT_CHILD_GRACE_SECS);
			signal_group(pgid, SIGKILL);
			killed = true;
			last_note = now_secs();
		}
		else if (killed && now_secs() - last_note >= 10)
		{
			pg_log_warning("a process of the command's group (%d) is still alive after SIGKILL; waiting, holding the lock",
						   (int) pgid);
			signal_group(pgid, SIGKILL);
			last_note = now_secs();
		}
		{
			struct timespec ts = {0, 50 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
	}
}

/*
 * Wait up to ms for the connection's socket to become readable, and read
 * what came; false when the connection is gone (the server ended the
 * session: the lock is gone with it).
 */
static bool
watch_connection(PGconn *conn, int ms)
{
	struct pollfd pfd;

	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0)
		return false;
	if (poll(&pfd, 1, ms) > 0)
	{
		PGnotify   *notify;

		if (!PQconsumeInput(conn) || conn_lost(conn))
			return false;
		while ((notify = PQnotifies(conn)) != NULL)
			PQfreemem(notify);
	}
	return !conn_lost(conn);
}

/*
 * In the forked child: become a session and process group of our own, with
 * the default signal handlers, and exec the command.  Never returns.
 */
static void
exec_command(char *const *cmd, pid_t parent)
{
	struct sigaction dfl;
	int			exec_errno;

	/* a session of its own: its own process group, no terminal */
	(void) setsid();
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
	exec_errno = errno;
	pg_log_error("could not run \"%s\": %s", cmd[0], strerror(exec_errno));
	_exit(exec_errno == ENOENT ? 127 : 126);
}

/*
 * Wait until no process of the command's group (pid) is left, keeping the
 * connection (and the lock) alive and watched.  A leader that leaves
 * processes behind, a signal to the tool and a lost lock each stop the
 * whole group, and say so in result.  Returns the leader's wait status.
 */
static int
wait_for_group(PGconn *conn, pid_t pid, RunResult *result)
{
	int			status = 0;
	bool		done = false;
	double		last_ping = now_secs();

	for (;;)
	{
		if (!group_alive(pid, pid, &status, &done))
			break;
		if (done)
		{
			/* the leader exited, but processes of its group live on */
			pg_log_error("the command exited but left processes of its group running; stopping them");
			stop_group(pid, &status, &done);
			result->rc = BT_EXIT_ERROR;
			break;
		}
		if (bt_interrupted)
		{
			result->interrupted = true;
			pg_log_info("interrupted (signal %d): stopping the command's process group",
						(int) bt_interrupted);
			stop_group(pid, &status, &done);
			break;
		}

		/* keep the session alive, and notice at once when it is gone */
		if (!watch_connection(conn, 100) ||
			(now_secs() - last_ping >= popts.keepalive_secs &&
			 !still_holds_lock(conn)))
		{
			if (conn_lost(conn))
				bt_server_error(conn, NULL, "lost the connection while the command ran");
			pg_log_error("the prepare lock is gone, so another node may start the command: stopping the command's process group");
			result->lost = true;
			stop_group(pid, &status, &done);
			break;
		}
		if (now_secs() - last_ping >= popts.keepalive_secs)
			last_ping = now_secs();
	}
	pg_log_debug("no process of the command's group is left");
	return status;
}

/*
 * Run the command in a session and process group of its own and wait for
 * it, keeping the connection (and the lock) alive and watched.  Every way
 * out stops the whole group first; this returns only when no process of
 * the group is left.
 */
static void
run_command(PGconn *conn, char *const *cmd, RunResult *result)
{
	pid_t		parent = getpid();
	pid_t		pid;
	int			status;
	int			sock = PQsocket(conn);

	memset(result, 0, sizeof(*result));
	result->status = -1;

	/* the child must not inherit the session that holds the lock */
	if (sock >= 0)
		(void) fcntl(sock, F_SETFD, fcntl(sock, F_GETFD) | FD_CLOEXEC);
#ifdef __linux__
	/* the group's orphans become our children: we can tell when all are gone */
	(void) prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
	{
		pg_log_error("could not start the command: %s", strerror(errno));
		result->rc = BT_EXIT_ERROR;
		return;
	}
	if (pid == 0)
		exec_command(cmd, parent);	/* does not return */

	/* the group is the child's pid; make it so now, whoever runs first */
	(void) setpgid(pid, pid);
	pg_log_debug("the command runs as pid %d, in process group %d", (int) pid, (int) pid);
	status = wait_for_group(conn, pid, result);

	if (WIFEXITED(status))
		result->status = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		result->status = 128 + WTERMSIG(status);
	if (result->interrupted || result->lost || result->rc != 0)
	{
		if (result->rc == 0)
			result->rc = BT_EXIT_ERROR;
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		pg_log_error("the command failed with exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		pg_log_error("the command was ended by signal %d", WTERMSIG(status));
	result->rc = result->status;
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
bt_call_apply(PGconn *conn)
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
		pg_log_error("this server's bingo_tune has no apply() procedure");
		return BT_EXIT_VERSION;
	}
	pg_log_info("building missing indexes (CALL bingo_tune.apply())");
	bt_show_notices(true);
	res = bt_query_interruptible(conn, "CALL bingo_tune.apply()", 0, NULL, PGRES_COMMAND_OK);
	bt_show_notices(false);
	if (res == NULL)
	{
		if (bt_interrupted)
		{
			pg_log_info("interrupted: index builds cancelled");
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
		else if (strncmp(action, "failed", 6) == 0 ||
				 strcmp(action, "yielded") == 0)
		{
			/* a build that gave way to the app's DDL is not built either */
			failed++;
			pg_log_error("index %s could not be built: %s", PQgetvalue(res, i, 0),
						 PQgetisnull(res, i, 2) ? action : PQgetvalue(res, i, 2));
		}
		else
		{
			skipped++;
			pg_log_debug("index %s %s%s%s", PQgetvalue(res, i, 0), action,
						 PQgetisnull(res, i, 2) ? "" : ": ",
						 PQgetisnull(res, i, 2) ? "" : PQgetvalue(res, i, 2));
		}
	}
	PQclear(res);
	pg_log_debug("indexes: %d built, %d already present, %d skipped, %d failed",
			  created, present, skipped, failed);
	if (failed > 0)
	{
		pg_log_error_hint("Run \"%s apply\" again once the cause is fixed; the data itself is in place.",
						  BT_PROGNAME);
		return BT_EXIT_ERROR;
	}
	return BT_EXIT_OK;
}

static void
apply_help(void)
{
	printf("Usage:\n  %s apply [OPTION]... [DBNAME [USERNAME]]\n\n", BT_PROGNAME);
	printf("Builds every index the watched statements need and the database lacks\n"
		   "(CALL bingo_tune.apply(): CREATE INDEX CONCURRENTLY, one at a time, without\n"
		   "blocking the app's reads and writes) and prints what was done.  Always runs\n"
		   "on the primary of a multi-host list.\n\n");
	printf("Options:\n");
	bt_print_connection_help();
	printf("  -q, --quiet              print errors and warnings only\n"
		   "  -v, --verbose            also print the queries and skipped indexes\n"
		   "  -?, --help               show this help, then exit\n\n");
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
	if (!bt_require_extension(conn, NULL))
	{
		PQfinish(conn);
		return BT_EXIT_NOT_PREPARED;
	}
	rc = bt_call_apply(conn);
	PQfinish(conn);
	return rc;
}



/* ----------------------------------------------------------------
 *		prepare-db
 * ----------------------------------------------------------------
 */

/*
 * After a lost connection: the group is gone; reconnect (a bounded number
 * of times) to restore --fast-load and record the run's end.  The lock is
 * taken again first: if another session holds it now, its run owns the
 * record, and we touch nothing.  Says plainly what could not be done.
 */
static void
recover_after_lost_connection(const char *run, bool fast_load)
{
	const char *params[1] = {BT_LOCK_PREPARE};
	int			attempt;
	int			delay = 1;

	for (attempt = 1; attempt <= BT_RECONNECT_TRIES; attempt++)
	{
		PGconn	   *conn = bt_connect_quietly(BT_TARGET_PRIMARY);
		PGresult   *res;
		bool		got;

		if (conn == NULL)
		{
			pg_log_warning("could not reconnect (attempt %d of %d)%s", attempt,
						   BT_RECONNECT_TRIES, attempt < BT_RECONNECT_TRIES ? "; retrying" : "");
			if (attempt < BT_RECONNECT_TRIES)
			{
				sleep(delay);
				delay *= 2;
			}
			continue;
		}
		res = bt_query(conn, "SELECT pg_catalog.pg_try_advisory_lock($1::pg_catalog.int8)",
					   1, params, PGRES_TUPLES_OK);
		got = res != NULL && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (!got)
		{
			pg_log_error("reconnected, but another session holds the prepare lock now: %s",
						 fast_load ? "synchronous_commit was NOT restored here; the run holding the lock restores it (bingo_tune.fast_load keeps the record)" :
						 "leaving the record to it");
			PQfinish(conn);
			return;
		}
		if (fast_load && fast_load_restore(conn, true))
			fast_load = false;
		(void) end_run(conn, run, "interrupted", -1, NULL);
		PQfinish(conn);
		if (fast_load)
			pg_log_error("reconnected, but could not restore synchronous_commit; the next prepare-db run restores it (bingo_tune.fast_load keeps the record)");
		else
			pg_log_info("reconnected: the run is recorded as interrupted; the prepare lock is released");
		return;
	}
	pg_log_error("could not reconnect after %d attempts: %s", BT_RECONNECT_TRIES,
				 fast_load ?
				 "synchronous_commit is still off for the database; the next prepare-db run restores it, or run ALTER DATABASE ... RESET synchronous_commit (or SET it to its previous value, recorded in bingo_tune.fast_load)" :
				 "the run stays recorded as started, so the next run runs the command again");
}

/*
 * Run the command with the marker around it.  Returns the exit code; *lost
 * tells the caller that the connection is gone.
 */
static int
run_and_record(PGconn *conn, char *const *cmd, bool *lost)
{
	RunResult	result;
	char	   *run;
	char	   *counts = NULL;
	PGresult   *res;
	double		t0;
	bool		filled;
	bool		fast_load_set = false;

	run = start_run(conn, command_name(cmd));
	if (run == NULL)
		return BT_EXIT_ERROR;
	pg_log_debug("run %s recorded as started", run);

	if (popts.fast_load)
	{
		if (!fast_load_on(conn))
		{
			(void) end_run(conn, run, "failed", -1, NULL);
			return BT_EXIT_ERROR;
		}
		fast_load_set = true;
	}
	if (bt_interrupted)
	{
		if (fast_load_set)
			(void) fast_load_restore(conn, true);
		(void) end_run(conn, run, "interrupted", -1, NULL);
		pg_log_info("interrupted before the command started; nothing was run");
		return bt_interrupt_exit_code();
	}

	pg_log_info("running \"%s\" (holding the prepare lock)", command_name(cmd));
	t0 = now_secs();
	run_command(conn, cmd, &result);

	if (result.lost || conn_lost(conn))
	{
		*lost = true;
		recover_after_lost_connection(run, fast_load_set);
		return result.interrupted ? bt_interrupt_exit_code() : BT_EXIT_ERROR;
	}

	/* whatever happened, put the setting back before anything else */
	if (fast_load_set && !fast_load_restore(conn, true))
	{
		if (conn_lost(conn))
		{
			*lost = true;
			recover_after_lost_connection(run, true);
			return BT_EXIT_ERROR;
		}
		if (result.rc == BT_EXIT_OK)
			result.rc = BT_EXIT_ERROR;
	}

	if (result.interrupted)
	{
		(void) end_run(conn, run, "interrupted", result.status, NULL);
		pg_log_info("interrupted: the run is recorded as interrupted, so the next run runs the command again");
		return bt_interrupt_exit_code();
	}

	/* the row counts, from ANALYZE (as the tables' owners) */
	res = analyze_tables(conn);
	if (res == NULL)
	{
		(void) end_run(conn, run, "failed", result.status, NULL);
		return result.rc != BT_EXIT_OK ? result.rc : BT_EXIT_ERROR;
	}
	if (result.rc != BT_EXIT_OK)
	{
		(void) tables_filled(res, &counts, "after the failure,");
		PQclear(res);
		(void) end_run(conn, run, "failed", result.status, counts);
		pg_log_info("the run is recorded as failed, so the next run runs the command again");
		return result.rc;
	}
	pg_log_info("\"%s\" finished in %.1f s", command_name(cmd), now_secs() - t0);
	filled = tables_filled(res, &counts, "the command exited 0 but left");
	PQclear(res);
	if (!filled)
	{
		(void) end_run(conn, run, "not filled", result.status, counts);
		pg_log_info("the run is recorded as not filled, so the next run runs the command again");
		return BT_EXIT_NOT_FILLED;
	}
	if (!end_run(conn, run, "prepared", result.status, counts))
		return BT_EXIT_ERROR;
	pg_log_info("recorded as prepared: later runs on any node skip the command");
	free(counts);
	free(run);
	return BT_EXIT_OK;
}

static int
prepare(PGconn *conn, char *const *cmd, bool *lost)
{
	int			rc;
	PrepState	state;
	PGresult   *res;

	rc = bt_install(conn);
	if (rc != BT_EXIT_OK)
		return rc;

	rc = take_prepare_lock(conn);
	if (rc != BT_EXIT_OK)
		return rc;
	lock_taken = true;
	name_session(conn);
	if (bt_interrupted)
	{
		/* a signal that came during install or the last poll */
		pg_log_info("interrupted before the command started; nothing was done");
		return bt_interrupt_exit_code();
	}

	if (!fast_load_restore(conn, false))
		return BT_EXIT_ERROR;

	if (!read_state(conn, &state))
		return BT_EXIT_ERROR;
	res = survey_tables(conn);
	if (res == NULL)
		return BT_EXIT_ERROR;
	if (!only_tables(res))
	{
		PQclear(res);
		return BT_EXIT_ERROR;
	}

	if (state == PREP_DONE && (popts.adopt || !popts.force))
	{
		PQclear(res);
		return popts.apply ? bt_call_apply(conn) : BT_EXIT_OK;
	}
	if (popts.adopt)
	{
		PQclear(res);
		rc = adopt(conn);
	}
	else if (state == PREP_NONE && tables_hold_data(res) && !popts.force)
	{
		PQclear(res);
		pg_log_error("the tables already hold data, but no run of prepare-db is recorded: not running the command");
		pg_log_error_hint("The data came from elsewhere (a restore, or the extension was dropped and created again). "
						  "To keep it, record it as prepared: add --adopt. To replace it, run the command anyway: add --force.");
		return BT_EXIT_UNMARKED_DATA;
	}
	else
	{
		PQclear(res);
		if (state == PREP_NONE && popts.force)
			pg_log_info("running the command over the data in the tables (--force)");
		rc = run_and_record(conn, cmd, lost);
	}
	if (rc != BT_EXIT_OK || *lost)
		return rc;
	return popts.apply ? bt_call_apply(conn) : BT_EXIT_OK;
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
		{"adopt", no_argument, NULL, 6},
		{"lock-timeout", required_argument, NULL, 7},
		{NULL, 0, NULL, 0}
	};
	int			dashdash;
	int			rc;
	PGconn	   *conn;
	bool		lost = false;

	/* the command starts after "--"; only what is before it is ours */
	for (dashdash = 1; dashdash < argc; dashdash++)
		if (strcmp(argv[dashdash], "--") == 0)
			break;

	/* every argument is checked before anything connects or runs */
	rc = bt_parse_simple_args(dashdash, argv, longopts, "f", prepare_option, prepare_help);
	if (rc >= 0)
		return rc;
	if (!parse_tables(popts.tables))
		return BT_EXIT_USAGE;
	if (popts.adopt)
	{
		if (popts.force || popts.fast_load)
		{
			pg_log_error("--adopt runs nothing, so it does not go with %s",
						 popts.force ? "--force" : "--fast-load");
			return BT_EXIT_USAGE;
		}
		if (dashdash < argc)
		{
			pg_log_error("--adopt runs no command: leave out \"--\" and what follows");
			return BT_EXIT_USAGE;
		}
	}
	else if (dashdash >= argc)
	{
		pg_log_error("no command given: put \"--\" and the command after the options");
		pg_log_error_hint("For example: %s prepare-db -h db1,db2 -d bingo -- bingo prepare_db",
						  BT_PROGNAME);
		return BT_EXIT_USAGE;
	}
	else if (dashdash + 1 >= argc)
	{
		pg_log_error("no command after \"--\"");
		pg_log_error_hint("For example: %s prepare-db -- bingo prepare_db", BT_PROGNAME);
		return BT_EXIT_USAGE;
	}

	conn = bt_connect(BT_TARGET_PRIMARY);
	rc = prepare(conn, popts.adopt ? NULL : argv + dashdash + 1, &lost);
	/*
	 * Closing the session releases the prepare lock.  Every path above has
	 * waited until no process of the command's group was left.
	 */
	PQfinish(conn);
	if (lock_taken && !lost && rc != BT_EXIT_OK)
		pg_log_info("the prepare lock is released");
	return rc;
}
