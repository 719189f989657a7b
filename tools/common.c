/*-------------------------------------------------------------------------
 *
 * common.c
 *		Messages, the connection, queries and signals shared by every
 *		subcommand of the bingo_tune tool.
 *
 * Messages go to stderr through PostgreSQL's front-end logging
 * (common/logging.h: "bingo_tune: error: ...", with detail and hint lines),
 * results to stdout.  -q keeps only errors and warnings, -v adds what the
 * tool is doing (pg_log_debug) and the server's notices.
 *
 * The connection is given as to psql: -h, -p, -U and -d (a name, a
 * conninfo string or a URI, whose settings win over -h, -p and -U, as in
 * psql), or the PG* environment variables; every option is checked before
 * anything connects.  It follows the conventions of a well-behaved client:
 * PQconnectdbParams with expand_dbname, fallback_application_name, TCP
 * keepalives (the
 * prepare-db connection sits idle for the half hour prepare_db runs), a safe
 * search_path, and no statement, lock or idle timeouts inherited from the
 * role or database, since the tool waits on index builds and holds a
 * session lock on purpose.  It never prompts for a password and never
 * prints one: messages name host, port, database and user only.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP set bt_interrupted; every wait loop of
 * the tool checks it, so Ctrl-C cancels cleanly instead of killing the tool
 * mid-way.
 *
 * tools/common.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <limits.h>
#include <sys/select.h>
#include <time.h>

#include "common.h"

BtOptions	bt_opts = {NULL, NULL, NULL, NULL, 1};

volatile sig_atomic_t bt_interrupted = 0;

static bool bt_notices_on = false;


/* ----------------------------------------------------------------
 *		Messages
 * ----------------------------------------------------------------
 */

#if PG_VERSION_NUM < 150000
/*
 * PostgreSQL 14's front-end logging has no detail or hint lines: print
 * them as 15 does ("bingo_tune: hint: ...").
 */
void
bt_log_part(const char *part, const char *fmt,...)
{
	va_list		ap;

	fflush(stdout);
	fprintf(stderr, "%s: %s: ", BT_PROGNAME, part);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
#endif

/*
 * Report a failed query: our own words, then the server's message, detail
 * and hint.  res may be NULL when the query could not be sent.
 */
void
bt_server_error(PGconn *conn, const PGresult *res, const char *fmt,...)
{
	va_list		ap;
	const char *primary = NULL;
	const char *detail = NULL;
	const char *hint = NULL;
	char		what[512];

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);

	if (res)
	{
		primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	}
	if (primary)
		pg_log_error("%s: %s", what, primary);
	else
	{
		char	   *msg = pg_strdup(PQerrorMessage(conn));
		size_t		len = strlen(msg);

		while (len > 0 && msg[len - 1] == '\n')
			msg[--len] = '\0';
		pg_log_error("%s: %s", what, len > 0 ? msg : "unknown error");
		free(msg);
	}
	if (detail)
		pg_log_error_detail("%s", detail);
	if (hint)
		pg_log_error_hint("%s", hint);
}

/* Whether NOTICEs from the server are shown at normal verbosity. */
void
bt_show_notices(bool show)
{
	bt_notices_on = show;
}

static void
bt_notice_receiver(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	bool		is_warning = severity && strcmp(severity, "WARNING") == 0;

	if (!primary)
		return;
	if (bt_opts.verbosity < 1)
		return;
	if (is_warning)
		pg_log_warning("server: %s", primary);
	else if (bt_notices_on || bt_opts.verbosity >= 2)
		pg_log_info("%s", primary);
}


/* ----------------------------------------------------------------
 *		Connection and queries
 * ----------------------------------------------------------------
 */

/*
 * Connect the libpq way.  Defaults the user can override come before the
 * connection options in the keyword list (later entries win); -h, -p and
 * -U come before -d, whose conninfo wins over them, as in psql; what the
 * subcommand requires comes last.  DDL must go to the primary of a
 * multi-host list, so BT_TARGET_PRIMARY forces
 * target_session_attrs=read-write.  Returns NULL (after saying why, unless
 * quiet) when the connection or its setup fails.
 */
static PGconn *
bt_connect_internal(BtTarget target, bool quiet)
{
	const char *keywords[20];
	const char *values[20];
	int			n = 0;
	PGconn	   *conn;
	PGresult   *res;
	char		where[256];

#define BT_KW(k, v) (keywords[n] = (k), values[n] = (v), n++)
	BT_KW("keepalives", "1");
	BT_KW("keepalives_idle", "30");
	BT_KW("keepalives_interval", "10");
	BT_KW("keepalives_count", "6");
	if (getenv("PGCONNECT_TIMEOUT") == NULL)
		BT_KW("connect_timeout", "10");
	if (target == BT_TARGET_ANY && getenv("PGTARGETSESSIONATTRS") == NULL)
		BT_KW("target_session_attrs", "read-write");
	BT_KW("host", bt_opts.host);
	BT_KW("port", bt_opts.port);
	BT_KW("user", bt_opts.username);
	BT_KW("dbname", bt_opts.dbname);
	if (target == BT_TARGET_PRIMARY)
		BT_KW("target_session_attrs", "read-write");
	BT_KW("fallback_application_name", BT_PROGNAME);
	keywords[n] = NULL;
	values[n] = NULL;
#undef BT_KW

	conn = PQconnectdbParams(keywords, values, true);
	if (conn == NULL)
	{
		pg_log_error("out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = pg_strdup(PQerrorMessage(conn));
		size_t		len = strlen(msg);

		while (len > 0 && msg[len - 1] == '\n')
			msg[--len] = '\0';
		if (!quiet)
		{
			pg_log_error("could not connect: %s", msg);
			if (PQconnectionNeedsPassword(conn))
				pg_log_error_hint("The server wants a password and this tool never prompts: set PGPASSWORD or use a password file (~/.pgpass).");
			else if (target == BT_TARGET_PRIMARY && strstr(msg, "read-write"))
				pg_log_error_hint("This subcommand changes the database and needs the primary; list it among the hosts of the connection string.");
		}
		free(msg);
		PQfinish(conn);
		return NULL;
	}

	PQsetNoticeReceiver(conn, bt_notice_receiver, NULL);

	/*
	 * A safe search_path: everything the tool runs is schema-qualified, and
	 * nothing a user created may shadow pg_catalog (the temporary schema,
	 * last, is never searched for functions or operators).  No timeouts
	 * from the role or database: the tool waits for index builds and holds
	 * the prepare lock on an idle session on purpose.
	 */
	res = PQexec(conn,
				 PQserverVersion(conn) >= 140000 ?
				 "SET search_path TO pg_catalog, pg_temp; "
				 "SET statement_timeout TO 0; SET lock_timeout TO 0; "
				 "SET idle_in_transaction_session_timeout TO 0; "
				 "SET idle_session_timeout TO 0" :
				 "SET search_path TO pg_catalog, pg_temp; "
				 "SET statement_timeout TO 0; SET lock_timeout TO 0; "
				 "SET idle_in_transaction_session_timeout TO 0");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		if (!quiet)
			bt_server_error(conn, res, "could not set up the session");
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);

	bt_describe_conn(conn, where, sizeof(where));
	pg_log_debug("connected to %s", where);
	return conn;
}

/* Connect, or exit the tool with BT_EXIT_CONNECT. */
PGconn *
bt_connect(BtTarget target)
{
	PGconn	   *conn = bt_connect_internal(target, false);

	if (conn == NULL)
		exit(BT_EXIT_CONNECT);
	return conn;
}

/* Connect once more (after a lost connection); NULL when that fails. */
PGconn *
bt_connect_quietly(BtTarget target)
{
	return bt_connect_internal(target, true);
}

/* The connection options' lines of every subcommand's --help. */
void
bt_print_connection_help(void)
{
	printf("  -h, --host=HOSTNAME      database server host or socket directory\n"
		   "  -p, --port=PORT          database server port\n"
		   "  -U, --username=USERNAME  database user name (the tool needs a superuser)\n"
		   "  -d, --dbname=DBNAME      database name, or a connection string or URI\n"
		   "                           (multi-host lists work; its settings win over\n"
		   "                           -h, -p and -U); also the first argument DBNAME\n"
		   "  -w, --no-password        never prompt for a password (always the case)\n"
		   "  Unset ones come from the PG* environment variables, as for psql.\n");
}

/* "database "x" on host h port p as user u": never the password. */
void
bt_describe_conn(PGconn *conn, char *buf, size_t len)
{
	const char *host = PQhost(conn);

	snprintf(buf, len, "database \"%s\" on %s%s port %s as user \"%s\"",
			 PQdb(conn),
			 host && host[0] == '/' ? "socket " : "host ",
			 host ? host : "(default)", PQport(conn), PQuser(conn));
}

/*
 * Run one query, with parameters when nparams > 0.  Returns the result when
 * its status is the expected one; otherwise reports the error and returns
 * NULL.
 */
PGresult *
bt_query(PGconn *conn, const char *sql, int nparams,
		 const char *const *params, ExecStatusType expect)
{
	PGresult   *res;

	pg_log_debug("query: %s", sql);
	res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != expect)
	{
		bt_server_error(conn, res, "query failed");
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Like bt_query, for statements that may run for minutes (CALL apply(),
 * check()): waits on the socket so that Ctrl-C cancels the statement on the
 * server instead of leaving it running.  On interrupt, reports nothing and
 * returns NULL with bt_interrupted set.
 */
PGresult *
bt_query_interruptible(PGconn *conn, const char *sql, int nparams,
					   const char *const *params, ExecStatusType expect)
{
	return bt_query_deadline(conn, sql, nparams, params, expect, 0, NULL);
}

/* milliseconds on a clock that never goes back */
static int64
bt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * End the session behind conn from a second connection to the same server
 * as the same role: pg_terminate_backend(), which code running in that
 * session cannot catch, unlike a cancel.
 */
static void
bt_terminate_backend(PGconn *conn)
{
	PQconninfoOption *opts = PQconninfo(conn);
	const char *keywords[64];
	const char *values[64];
	int			n = 0;
	char		pid[16];
	const char *params[1] = {pid};
	PGconn	   *other;
	PGresult   *res;

	if (opts == NULL)
		return;
	for (PQconninfoOption *o = opts; o->keyword != NULL && n < 60; o++)
	{
		/* the server this session is on, whatever the list offered */
		if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
			strcmp(o->keyword, "port") == 0 || strcmp(o->keyword, "target_session_attrs") == 0 ||
			o->val == NULL)
			continue;
		keywords[n] = o->keyword;
		values[n++] = o->val;
	}
	keywords[n] = "host";
	values[n++] = PQhost(conn);
	if (PQhostaddr(conn) != NULL && PQhostaddr(conn)[0] != '\0')
	{
		keywords[n] = "hostaddr";
		values[n++] = PQhostaddr(conn);
	}
	keywords[n] = "port";
	values[n++] = PQport(conn);
	keywords[n] = NULL;
	values[n] = NULL;

	other = PQconnectdbParams(keywords, values, 0);
	PQconninfoFree(opts);
	if (PQstatus(other) != CONNECTION_OK)
	{
		pg_log_error("could not connect to end the session: %s", PQerrorMessage(other));
		PQfinish(other);
		return;
	}
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(conn));
	res = PQexecParams(other, "SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		bt_server_error(other, res, "could not end the session (pid %s)", pid);
	PQclear(res);
	PQfinish(other);
}

/* Where a statement sent by bt_query_deadline() stands. */
typedef struct BtDeadline
{
	int			deadline_ms;	/* 0: none, only Ctrl-C cancels */
	int64		start;			/* when it was sent */
	bool		late;			/* past its deadline */
	bool		cancelled;		/* a cancel was sent */
	int64		cancelled_at;
	int64		terminated_at;	/* 0: its session was not ended */
} BtDeadline;

/*
 * One step of bt_query_deadline()'s escalation: cancel the statement on an
 * interrupt or once it is late; end its session when a late statement
 * ignored the cancel for BT_CANCEL_GRACE_MS.  Returns false when the
 * session did not end either, BT_CANCEL_GRACE_MS later: stop waiting.
 */
static bool
bt_deadline_step(PGconn *conn, BtDeadline *d)
{
	int64		now = bt_now_ms();

	if (d->deadline_ms > 0 && !d->late && now - d->start >= d->deadline_ms)
	{
		pg_log_warning("still running after %d s: cancelling it", d->deadline_ms / 1000);
		d->late = true;
	}
	if ((bt_interrupted || d->late) && !d->cancelled)
	{
		PGcancel   *cancel = PQgetCancel(conn);
		char		errbuf[256];

		if (cancel)
		{
			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
		d->cancelled = true;
		d->cancelled_at = now;
	}
	if (d->late && d->terminated_at == 0 && now - d->cancelled_at >= BT_CANCEL_GRACE_MS)
	{
		pg_log_warning("the cancel did not stop it within %d s: ending its session (pid %d)",
					   BT_CANCEL_GRACE_MS / 1000, PQbackendPID(conn));
		bt_terminate_backend(conn);
		d->terminated_at = bt_now_ms();
	}
	if (d->terminated_at != 0 && now - d->terminated_at >= BT_CANCEL_GRACE_MS)
	{
		pg_log_error("the session did not end: giving up waiting for it");
		return false;
	}
	return true;
}

/*
 * bt_query_interruptible with a deadline (deadline_ms > 0): a statement
 * still running deadline_ms after it was sent is cancelled; one that
 * ignores the cancel (code it runs may catch it) for BT_CANCEL_GRACE_MS
 * more has its session ended from a second connection, and the wait ends
 * another BT_CANCEL_GRACE_MS later whatever happened.  Then returns NULL
 * with *overran set, having reported nothing.
 */
PGresult *
bt_query_deadline(PGconn *conn, const char *sql, int nparams,
				  const char *const *params, ExecStatusType expect,
				  int deadline_ms, bool *overran)
{
	PGresult   *res;
	PGresult   *last = NULL;
	BtDeadline	d = {deadline_ms, bt_now_ms(), false, false, 0, 0};

	if (overran)
		*overran = false;
	pg_log_debug("query: %s", sql);
	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		bt_server_error(conn, NULL, "could not send query");
		return NULL;
	}
	while (bt_deadline_step(conn, &d))
	{
		fd_set		fds;
		struct timeval tv = {0, 200000};
		int			sock;

		if (!PQisBusy(conn))
		{
			res = PQgetResult(conn);
			if (res == NULL)
				break;
			PQclear(last);
			last = res;
			continue;
		}
		sock = PQsocket(conn);
		if (sock < 0)
			break;
		FD_ZERO(&fds);
		FD_SET(sock, &fds);
		if (select(sock + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(conn))
			break;
	}
	if (d.late)
	{
		PQclear(last);
		if (overran)
			*overran = true;
		return NULL;
	}
	if (d.cancelled)
	{
		PQclear(last);
		return NULL;
	}
	if (last == NULL || PQresultStatus(last) != expect)
	{
		bt_server_error(conn, last, "query failed");
		PQclear(last);
		return NULL;
	}
	return last;
}

/* Run a statement that returns no rows; report and return false on error. */
bool
bt_command(PGconn *conn, const char *sql)
{
	PGresult   *res = bt_query(conn, sql, 0, NULL, PGRES_COMMAND_OK);

	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

/* The installed version of the extension, if it is installed here. */
bool
bt_extension_installed(PGconn *conn, char **version)
{
	const char *params[1] = {"bingo_tune"};
	PGresult   *res;
	bool		found;

	res = bt_query(conn,
				   "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = $1",
				   1, params, PGRES_TUPLES_OK);
	if (res == NULL)
		exit(BT_EXIT_ERROR);
	found = PQntuples(res) == 1;
	if (version)
		*version = found ? pg_strdup(PQgetvalue(res, 0, 0)) : NULL;
	PQclear(res);
	return found;
}

/*
 * bt_extension_installed() for the subcommands that need the extension:
 * says that it is missing and how to install it, and returns false.
 */
bool
bt_require_extension(PGconn *conn, char **version)
{
	if (bt_extension_installed(conn, version))
		return true;
	pg_log_error("extension bingo_tune is not installed in database \"%s\"", PQdb(conn));
	pg_log_error_hint("Run \"%s install\" first.", BT_PROGNAME);
	return false;
}

/* Whether a function with this signature exists, e.g. 'bingo_tune.report()'. */
bool
bt_function_exists(PGconn *conn, const char *signature)
{
	const char *params[1] = {signature};
	PGresult   *res;
	bool		found;

	res = bt_query(conn, "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
				   1, params, PGRES_TUPLES_OK);
	if (res == NULL)
		exit(BT_EXIT_ERROR);
	found = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return found;
}


/* ----------------------------------------------------------------
 *		Signals and waiting
 * ----------------------------------------------------------------
 */

static void
bt_signal_handler(int signo, siginfo_t *info, void *context)
{
	bt_interrupted = signo;
}

void
bt_install_signal_handlers(void)
{
	struct sigaction act;

	memset(&act, 0, sizeof(act));
	act.sa_sigaction = bt_signal_handler;
	act.sa_flags = SA_SIGINFO;	/* no SA_RESTART: sleeps must wake up */
	sigemptyset(&act.sa_mask);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGHUP, &act, NULL);
}

/* Sleep; false when a signal asked us to stop. */
bool
bt_sleep_ms(int ms)
{
	struct timespec ts;

	if (bt_interrupted)
		return false;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long) (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
	return !bt_interrupted;
}

/* The shell's convention for "ended by signal N". */
int
bt_interrupt_exit_code(void)
{
	return 128 + (int) bt_interrupted;
}


/* ----------------------------------------------------------------
 *		Command-line helpers
 * ----------------------------------------------------------------
 */

/*
 * -q and -v: how much the tool says.  Front-end logging's level follows
 * (quiet: warnings and errors; verbose: pg_log_debug() too), and the
 * tables and notices read bt_opts.verbosity.
 */
static void
bt_set_verbosity(int verbosity)
{
	bt_opts.verbosity = verbosity;
	pg_logging_set_level(verbosity == 0 ? PG_LOG_WARNING :
						 verbosity == 1 ? PG_LOG_INFO : PG_LOG_DEBUG);
}

/* The options every subcommand takes; true if c was one of them. */
bool
bt_parse_common_option(int c, const char *arg)
{
	switch (c)
	{
		case 'h':
			bt_opts.host = arg;
			return true;
		case 'p':
			bt_opts.port = arg;
			return true;
		case 'U':
			bt_opts.username = arg;
			return true;
		case 'd':
			bt_opts.dbname = arg;
			return true;
		case 'w':
			/* never prompting is the only way this tool works */
			return true;
		case 'q':
			bt_set_verbosity(0);
			return true;
		case 'v':
			bt_set_verbosity(2);
			return true;
		default:
			return false;
	}
}

/*
 * Check the connection options before anything connects: a port (or a
 * comma-separated list of them, one per host) must be numbers, and a
 * connection string or URI must parse.  Says what is wrong and returns
 * false otherwise.
 */
bool
bt_check_connection_options(void)
{
	const char *d = bt_opts.dbname;

	if (bt_opts.host != NULL && bt_opts.host[0] == '\0')
	{
		pg_log_error("-h/--host must not be empty");
		return false;
	}
	if (bt_opts.username != NULL && bt_opts.username[0] == '\0')
	{
		pg_log_error("-U/--username must not be empty");
		return false;
	}
	if (bt_opts.port != NULL)
	{
		const char *p = bt_opts.port;

		for (;;)
		{
			const char *end = strchr(p, ',');
			size_t		len = end ? (size_t) (end - p) : strlen(p);
			char		one[16];
			int			port;

			if (len >= sizeof(one))
				len = sizeof(one) - 1;
			memcpy(one, p, len);
			one[len] = '\0';
			if (!bt_parse_int(one, 1, 65535, &port))
			{
				pg_log_error("-p/--port must be a port number from 1 to 65535 (or a comma-separated list of them), not \"%s\"",
							 bt_opts.port);
				return false;
			}
			if (end == NULL)
				break;
			p = end + 1;
		}
	}
	if (d != NULL && d[0] == '\0')
	{
		pg_log_error("the database name must not be empty");
		return false;
	}
	if (d != NULL && (strchr(d, '=') != NULL ||
					  strncmp(d, "postgresql://", 13) == 0 ||
					  strncmp(d, "postgres://", 11) == 0))
	{
		char	   *errmsg = NULL;
		PQconninfoOption *opts = PQconninfoParse(d, &errmsg);

		if (opts == NULL)
		{
			size_t		len = errmsg ? strlen(errmsg) : 0;

			while (len > 0 && errmsg[len - 1] == '\n')
				errmsg[--len] = '\0';
			pg_log_error("invalid connection string: %s", errmsg ? errmsg : "out of memory");
			if (errmsg)
				PQfreemem(errmsg);
			return false;
		}
		PQconninfoFree(opts);
	}
	return true;
}

/*
 * A duration as PostgreSQL writes them: a whole number with an optional
 * unit, ms, s, min, h or d (no unit: seconds).  0 is allowed.
 */
bool
bt_parse_duration(const char *arg, int *ms)
{
	static const struct
	{
		const char *unit;
		double		ms;
	}			units[] = {
		{"", 1000}, {"ms", 1}, {"s", 1000}, {"min", 60000},
		{"h", 3600000}, {"d", 86400000}
	};
	char	   *end;
	long		val;
	int			i;

	errno = 0;
	val = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || val < 0 || arg[0] == '-' || arg[0] == '+')
		return false;
	while (*end == ' ')
		end++;
	for (i = 0; i < lengthof(units); i++)
	{
		if (strcmp(end, units[i].unit) == 0)
		{
			double		v = val * units[i].ms;

			if (v > INT_MAX)
				return false;
			*ms = (int) v;
			return true;
		}
	}
	return false;
}

/*
 * Copy a text another session chose (application_name) for printing:
 * printable ASCII only, everything else as '?', cut to fit.
 */
void
bt_sanitize(const char *in, char *out, size_t len)
{
	size_t		i = 0;

	for (; *in && i + 1 < len; in++)
		out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
	out[i] = '\0';
}

bool
bt_parse_int(const char *arg, int min, int max, int *result)
{
	char	   *end;
	long		val;

	errno = 0;
	val = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || val < min || val > max)
		return false;
	*result = (int) val;
	return true;
}
