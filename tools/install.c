/*-------------------------------------------------------------------------
 *
 * install.c
 *		bingo_tune install: check that the server can run the extension,
 *		then create or update it to the tool's version.
 *
 * Checks, in order, each with its own advice: a superuser connection (the
 * extension is superuser-only), server version 14 or newer,
 * shared_preload_libraries holding pg_stat_statements and bingo_tune (a
 * restart is needed to change it, so this exits with BT_EXIT_NOT_PREPARED
 * and says exactly what to set), compute_query_id not off, and the
 * extension's files present on the server.  Then, under a transaction-level
 * advisory lock so two nodes installing at once do not race, it creates the
 * extension at the tool's version (CASCADE brings pg_stat_statements) or
 * updates an older one, and finally compares the installed version with the
 * tool's.  Idempotent: a second run changes nothing.
 *
 * tools/install.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "common.h"
#include "getopt_long.h"

static void
install_help(void)
{
	printf("Usage:\n  %s install [OPTION]... [DBNAME [USERNAME]]\n\n", BT_PROGNAME);
	printf("Checks that the server can run bingo_tune (version 14 or newer,\n"
		   "shared_preload_libraries with pg_stat_statements and bingo_tune,\n"
		   "compute_query_id not off, extension files installed), then creates the\n"
		   "extension (with pg_stat_statements) or updates it to version %s, this\n"
		   "tool's version.  Safe to run again and from several nodes at once.  Needs\n"
		   "a superuser; always runs on the primary of a multi-host list.\n\n",
		   BT_TOOL_VERSION);
	printf("Options:\n");
	bt_print_connection_help();
	printf("  -q, --quiet              print errors and warnings only\n"
		   "  -v, --verbose            also print the queries and server notices\n"
		   "  -?, --help               show this help, then exit\n\n");
	printf("Exit codes: 0 installed or up to date, 1 error, 2 usage, 3 could not\n"
		   "connect, 4 server not prepared (the message says what to set), 5 version\n"
		   "mismatch between the extension and the tool.\n");
}

int
bt_install_main(int argc, char **argv)
{
	int			rc;
	PGconn	   *conn;

	rc = bt_parse_simple_args(argc, argv, NULL, NULL, NULL, install_help);
	if (rc >= 0)
		return rc;

	conn = bt_connect(BT_TARGET_PRIMARY);
	rc = bt_install(conn);
	PQfinish(conn);
	return rc;
}

/*
 * Compare dotted version strings numerically ("1.10" > "1.9"); returns <0,
 * 0 or >0.
 */
int
bt_compare_versions(const char *a, const char *b)
{
	while (*a || *b)
	{
		long		x = strtol(a, (char **) &a, 10);
		long		y = strtol(b, (char **) &b, 10);

		if (x != y)
			return x < y ? -1 : 1;
		/* skip the separator, or anything that is not a number */
		while (*a && (*a < '0' || *a > '9'))
			a++;
		while (*b && (*b < '0' || *b > '9'))
			b++;
	}
	return 0;
}

/*
 * Whether a shared_preload_libraries value lists the library.  Entries may
 * be quoted, padded, carry a directory ($libdir/...) or a .so suffix.
 */
static bool
preload_has(const char *list, const char *lib)
{
	char	   *copy = pg_strdup(list);
	char	   *tok;
	char	   *save = NULL;
	bool		found = false;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char	   *end;
		char	   *slash;
		size_t		len;

		while (*tok == ' ' || *tok == '\t' || *tok == '"')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '"'))
			*--end = '\0';
		slash = strrchr(tok, '/');
		if (slash)
			tok = slash + 1;
		len = strlen(tok);
		if (len > 3 && strcmp(tok + len - 3, ".so") == 0)
			tok[len - 3] = '\0';
		if (strcmp(tok, lib) == 0)
			found = true;
	}
	free(copy);
	return found;
}

/*
 * Check that the server is prepared for the extension.  Returns an exit
 * code, BT_EXIT_OK when everything is in place.
 */
static int
check_server(PGconn *conn)
{
	PGresult   *res;
	const char *preload;
	bool		has_pgss;
	bool		has_bt;
	bool		pending;

	if (PQserverVersion(conn) < BT_MIN_SERVER_VERSION)
	{
		pg_log_error("server version %s is too old: bingo_tune needs PostgreSQL 14 or newer",
					 PQparameterStatus(conn, "server_version"));
		return BT_EXIT_NOT_PREPARED;
	}

	res = bt_query(conn, "SELECT pg_catalog.current_setting('is_superuser')",
				   0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return BT_EXIT_ERROR;
	if (strcmp(PQgetvalue(res, 0, 0), "on") != 0)
	{
		PQclear(res);
		pg_log_error("user \"%s\" is not a superuser; installing bingo_tune and building its indexes needs one",
					 PQuser(conn));
		pg_log_error_hint("Run the tool as a superuser, for example with user=postgres in the connection string.");
		return BT_EXIT_ERROR;
	}
	PQclear(res);

	res = bt_query(conn,
				   "SELECT s.setting, s.pending_restart, "
				   "       pg_catalog.current_setting('compute_query_id') "
				   "FROM pg_catalog.pg_settings s WHERE s.name = 'shared_preload_libraries'",
				   0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return BT_EXIT_ERROR;
	preload = PQgetvalue(res, 0, 0);
	pending = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	has_pgss = preload_has(preload, "pg_stat_statements");
	has_bt = preload_has(preload, "bingo_tune");

	if (!has_pgss || !has_bt)
	{
		PQExpBufferData want;

		initPQExpBuffer(&want);
		appendPQExpBufferStr(&want, preload);
		if (!has_pgss)
			appendPQExpBuffer(&want, "%spg_stat_statements", want.len > 0 ? "," : "");
		if (!has_bt)
			appendPQExpBuffer(&want, "%sbingo_tune", want.len > 0 ? "," : "");

		pg_log_error("the server does not preload %s (shared_preload_libraries = '%s')",
					 !has_pgss && !has_bt ? "pg_stat_statements and bingo_tune" :
					 !has_pgss ? "pg_stat_statements" : "bingo_tune",
					 preload);
		pg_log_error_hint("Set shared_preload_libraries = '%s' in postgresql.conf, or run\n"
						  "    ALTER SYSTEM SET shared_preload_libraries = '%s';\n"
						  "  then restart the server (a reload is not enough) and run this again.",
						  want.data, want.data);
		if (pending)
			pg_log_error_hint("The server has a changed shared_preload_libraries waiting for a restart.");
		termPQExpBuffer(&want);
		PQclear(res);
		return BT_EXIT_NOT_PREPARED;
	}
	if (strcmp(PQgetvalue(res, 0, 2), "off") == 0)
	{
		pg_log_error("compute_query_id is off, so statements have no query id to watch");
		pg_log_error_hint("Set compute_query_id = auto (or on), for example ALTER SYSTEM SET compute_query_id = auto; then reload the server.");
		PQclear(res);
		return BT_EXIT_NOT_PREPARED;
	}
	PQclear(res);
	return BT_EXIT_OK;
}

/* What the server has of the extension, read under the install lock. */
typedef struct BtAvailable
{
	char	   *installed;		/* the installed version; NULL: none */
	char	   *default_version;	/* the default of the server's files */
	bool		has_tool_version;	/* the files have BT_TOOL_VERSION */
} BtAvailable;

/*
 * Take the install lock (until the transaction ends) and read what the
 * server has of the extension.  Returns an exit code; BT_EXIT_NOT_PREPARED
 * when the server has no extension files at all.
 */
static int
read_available(PGconn *conn, BtAvailable *av)
{
	const char *params[2] = {"bingo_tune", BT_TOOL_VERSION};
	const char *lock_params[1] = {BT_LOCK_INSTALL};
	PGresult   *res;

	res = bt_query(conn, "SELECT pg_catalog.pg_advisory_xact_lock($1::bigint)",
				   1, lock_params, PGRES_TUPLES_OK);
	if (res == NULL)
		return BT_EXIT_ERROR;
	PQclear(res);

	res = bt_query(conn,
				   "SELECT a.default_version, a.installed_version, "
				   "       EXISTS (SELECT FROM pg_catalog.pg_available_extension_versions v "
				   "               WHERE v.name = a.name AND v.version = $2) "
				   "FROM pg_catalog.pg_available_extensions a WHERE a.name = $1",
				   2, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return BT_EXIT_ERROR;
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		pg_log_error("the server has no bingo_tune extension files");
		pg_log_error_hint("Install the extension on the server host (make install, or the package), restart it with bingo_tune preloaded, and run this again.");
		return BT_EXIT_NOT_PREPARED;
	}
	av->default_version = pg_strdup(PQgetvalue(res, 0, 0));
	if (!PQgetisnull(res, 0, 1))
		av->installed = pg_strdup(PQgetvalue(res, 0, 1));
	av->has_tool_version = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	PQclear(res);
	return BT_EXIT_OK;
}

/*
 * Whether the tool can bring the extension to its version: not when the
 * installed one is newer, nor when the server's files lack the tool's
 * version.  Returns an exit code; *up_to_date when there is nothing to do.
 */
static int
check_versions(PGconn *conn, const BtAvailable *av, bool *up_to_date)
{
	*up_to_date = false;
	if (av->installed && bt_compare_versions(av->installed, BT_TOOL_VERSION) > 0)
	{
		pg_log_error("the installed extension bingo_tune %s is newer than this tool (%s)",
					 av->installed, BT_TOOL_VERSION);
		pg_log_error_hint("Use the bingo_tune tool that ships with extension version %s.", av->installed);
		return BT_EXIT_VERSION;
	}
	if (av->installed && strcmp(av->installed, BT_TOOL_VERSION) == 0)
	{
		pg_log_info("extension bingo_tune %s is already installed in database \"%s\"",
					av->installed, PQdb(conn));
		*up_to_date = true;
		return BT_EXIT_OK;
	}
	if (!av->has_tool_version)
	{
		pg_log_error("the server's extension files do not have bingo_tune version %s (their default is %s)",
					 BT_TOOL_VERSION, av->default_version);
		pg_log_error_hint("Install the extension files that match this tool on the server host, or use the tool that matches version %s.",
						  av->default_version);
		return BT_EXIT_VERSION;
	}
	return BT_EXIT_OK;
}

/*
 * CREATE EXTENSION at the tool's version (pg_stat_statements first), or
 * ALTER EXTENSION ... UPDATE from installed.  Returns an exit code.
 */
static int
create_or_alter(PGconn *conn, const char *installed)
{
	PGresult   *res;
	char	   *literal;
	PQExpBufferData sql;

	/* DDL takes no parameters: the version is a constant, quoted anyway */
	literal = PQescapeLiteral(conn, BT_TOOL_VERSION, strlen(BT_TOOL_VERSION));
	if (literal == NULL)
	{
		bt_server_error(conn, NULL, "could not quote the version");
		return BT_EXIT_ERROR;
	}

	/*
	 * pg_stat_statements first, into public as an operator would create it:
	 * CASCADE would put it in the first schema of our search_path,
	 * pg_catalog.
	 */
	if (!installed &&
		!bt_command(conn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA public"))
	{
		pg_log_error_hint("Create pg_stat_statements yourself (CREATE EXTENSION pg_stat_statements) and run this again.");
		PQfreemem(literal);
		return BT_EXIT_ERROR;
	}
	initPQExpBuffer(&sql);
	if (installed)
		appendPQExpBuffer(&sql, "ALTER EXTENSION bingo_tune UPDATE TO %s", literal);
	else
		appendPQExpBuffer(&sql, "CREATE EXTENSION bingo_tune WITH VERSION %s CASCADE", literal);
	PQfreemem(literal);

	pg_log_debug("%s", sql.data);
	res = PQexec(conn, sql.data);
	termPQExpBuffer(&sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		if (installed)
			bt_server_error(conn, res, "could not update extension bingo_tune from %s to %s",
							installed, BT_TOOL_VERSION);
		else
			bt_server_error(conn, res, "could not create extension bingo_tune");
		PQclear(res);
		return installed ? BT_EXIT_VERSION : BT_EXIT_ERROR;
	}
	PQclear(res);
	return BT_EXIT_OK;
}

/*
 * Create or update the extension in one transaction under the install lock.
 * Returns an exit code.
 */
static int
create_or_update(PGconn *conn)
{
	BtAvailable av = {NULL, NULL, false};
	bool		up_to_date = false;
	int			rc;

	if (!bt_command(conn, "BEGIN"))
		return BT_EXIT_ERROR;
	rc = read_available(conn, &av);
	if (rc == BT_EXIT_OK)
		rc = check_versions(conn, &av, &up_to_date);
	if (rc == BT_EXIT_OK && !up_to_date)
		rc = create_or_alter(conn, av.installed);
	if (rc != BT_EXIT_OK)
	{
		PGresult   *res = PQexec(conn, "ROLLBACK");

		PQclear(res);
	}
	else if (!bt_command(conn, "COMMIT"))
		rc = BT_EXIT_ERROR;
	else if (!up_to_date && av.installed)
		pg_log_info("extension bingo_tune updated from %s to %s in database \"%s\"",
					av.installed, BT_TOOL_VERSION, PQdb(conn));
	else if (!up_to_date)
		pg_log_info("extension bingo_tune %s created in database \"%s\"",
					BT_TOOL_VERSION, PQdb(conn));
	free(av.installed);
	free(av.default_version);
	return rc;
}

/*
 * The install subcommand's work on an open connection; prepare-db runs it
 * first.  Returns an exit code.
 */
int
bt_install(PGconn *conn)
{
	int			rc;
	char	   *version = NULL;

	rc = check_server(conn);
	if (rc != BT_EXIT_OK)
		return rc;
	rc = create_or_update(conn);
	if (rc != BT_EXIT_OK)
		return rc;

	/* the handshake: what is installed now must be what the tool speaks */
	if (!bt_extension_installed(conn, &version))
	{
		pg_log_error("extension bingo_tune is not installed after CREATE EXTENSION");
		return BT_EXIT_ERROR;
	}
	if (strcmp(version, BT_TOOL_VERSION) != 0)
	{
		pg_log_error("the installed extension bingo_tune %s does not match this tool (%s)",
					 version, BT_TOOL_VERSION);
		return BT_EXIT_VERSION;
	}
	free(version);
	return BT_EXIT_OK;
}
