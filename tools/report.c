/*-------------------------------------------------------------------------
 *
 * report.c
 *		bingo_tune report and bingo_tune check: the budget report, and the
 *		deploy gate.
 *
 * Both print whatever columns the extension's function returns -- as an
 * aligned table, or with --json as a JSON array of objects that the server
 * builds (row_to_json), so the tool needs no change when a column is added.
 * check exits with BT_EXIT_OVER_BUDGET when any row's within_budget column
 * is false (or NULL: not measured); the column is looked up by name.
 *
 * The functions come with the extension's budget report (report() and
 * check(text, integer)); an extension without them gets a clear message.
 * Neither changes anything, so they may run on a standby when the
 * connection string asks for one (target_session_attrs); by default they
 * go to the primary like every other subcommand.
 *
 * tools/report.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "common.h"
#include "getopt_long.h"

/* type OIDs of the columns shown right-aligned (catalog/pg_type_d.h) */
#define INT8OID		20
#define INT2OID		21
#define INT4OID		23
#define OIDOID		26
#define FLOAT4OID	700
#define FLOAT8OID	701
#define NUMERICOID	1700

/* table cells wider than this are cut (with "...") unless --verbose */
#define BT_MAX_CELL_WIDTH	60

static bool ropt_json = false;
static const char *ropt_name = NULL;
static int	ropt_runs = 3;

static void
report_help(void)
{
	printf("Usage:\n  %s report [OPTION]... [CONNINFO]\n\n", BT_PROGNAME);
	printf("Prints bingo_tune.report(): per watched statement its calls, failures,\n"
		   "latency percentiles, budget, headroom, indexes and status.\n\n");
	printf("Options:\n"
		   "  -d, --dbname=CONNINFO  database (or the PG* variables)\n"
		   "      --json             print a JSON array of objects instead of a table\n"
		   "  -q, --quiet            print errors and warnings only\n"
		   "  -v, --verbose          print long texts in full; also print the queries\n"
		   "  -h, --help             show this help, then exit\n\n");
	printf("Exit codes: 0 printed, 1 error, 2 usage, 3 could not connect, 4 extension\n"
		   "not installed, 5 the installed extension has no report().\n");
}

static void
check_help(void)
{
	printf("Usage:\n  %s check [OPTION]... [CONNINFO]\n\n", BT_PROGNAME);
	printf("Runs the watched statements now (bingo_tune.check()) and prints, per\n"
		   "statement, the measured times, whether it is within its budget and which\n"
		   "indexes its plan used.  Exits 6 when any statement is over budget: use it\n"
		   "as the go/no-go gate of a deploy.\n\n");
	printf("Options:\n"
		   "  -d, --dbname=CONNINFO  database (or the PG* variables)\n"
		   "  -n, --name=NAME        check this watched statement only\n"
		   "  -r, --runs=N           run each statement N times (default 3)\n"
		   "      --json             print a JSON array of objects instead of a table\n"
		   "  -q, --quiet            print nothing but errors and the over-budget list\n"
		   "  -v, --verbose          print long texts in full; also print the queries\n"
		   "  -h, --help             show this help, then exit\n\n");
	printf("Exit codes: 0 every statement within budget, 1 error, 2 usage, 3 could not\n"
		   "connect, 4 extension not installed, 5 the installed extension has no\n"
		   "check(), 6 a statement is over budget.\n");
}

static bool
report_option(int c, const char *arg)
{
	switch (c)
	{
		case 1:
			ropt_json = true;
			return true;
		case 'n':
			ropt_name = arg;
			return true;
		case 'r':
			if (!bt_parse_int(arg, 1, 1000, &ropt_runs))
			{
				bt_error("--runs must be a number from 1 to 1000, not \"%s\"", arg);
				exit(BT_EXIT_USAGE);
			}
			return true;
		default:
			return false;
	}
}

/* Display width of a UTF-8 string: count the bytes that start a character. */
static int
text_width(const char *s)
{
	int			w = 0;

	for (; *s; s++)
		if ((*s & 0xC0) != 0x80)
			w++;
	return w;
}

static bool
is_numeric_type(Oid type)
{
	return type == INT8OID || type == INT2OID || type == INT4OID ||
		type == OIDOID || type == FLOAT4OID || type == FLOAT8OID ||
		type == NUMERICOID;
}

/*
 * The text of a cell as shown in a table: cut to BT_MAX_CELL_WIDTH
 * characters unless --verbose.  Returns a malloc'd string.
 */
static char *
cell_text(const PGresult *res, int r, int c)
{
	const char *s = PQgetvalue(res, r, c);
	const char *p;
	int			chars = 0;
	char	   *cut;

	if (bt_opts.verbosity >= 2 || text_width(s) <= BT_MAX_CELL_WIDTH)
		return pg_strdup(s);
	for (p = s; *p; p++)
	{
		if ((*p & 0xC0) != 0x80 && chars++ == BT_MAX_CELL_WIDTH - 3)
			break;
	}
	cut = pg_malloc(p - s + 4);
	memcpy(cut, s, p - s);
	strcpy(cut + (p - s), "...");
	return cut;
}

static void
print_padded(const char *s, int width, bool right)
{
	int			pad = width - text_width(s);

	if (right)
		printf("%*s%s", pad > 0 ? pad : 0, "", s);
	else
		printf("%s%*s", s, pad > 0 ? pad : 0, "");
}

/*
 * Print columns first..n-1 of a result as an aligned table, like psql's
 * (header, rule, rows, row count); numbers right-aligned, long texts cut.
 */
static void
print_table(const PGresult *res, int first)
{
	int			ncols = PQnfields(res);
	int			nrows = PQntuples(res);
	int		   *width = pg_malloc0(sizeof(int) * ncols);
	int			r,
				c;

	for (c = first; c < ncols; c++)
	{
		width[c] = text_width(PQfname(res, c));
		for (r = 0; r < nrows; r++)
		{
			char	   *cell = cell_text(res, r, c);
			int			w = text_width(cell);

			if (w > width[c])
				width[c] = w;
			free(cell);
		}
	}
	for (c = first; c < ncols; c++)
	{
		printf(c > first ? " | " : " ");
		print_padded(PQfname(res, c), width[c], false);
	}
	printf("\n");
	for (c = first; c < ncols; c++)
	{
		int			i;

		printf(c > first ? "-+-" : "-");
		for (i = 0; i < width[c]; i++)
			putchar('-');
	}
	printf("-\n");
	for (r = 0; r < nrows; r++)
	{
		for (c = first; c < ncols; c++)
		{
			char	   *cell = cell_text(res, r, c);

			printf(c > first ? " | " : " ");
			print_padded(cell, width[c], is_numeric_type(PQftype(res, c)));
			free(cell);
		}
		printf("\n");
	}
	printf("(%d %s)\n", nrows, nrows == 1 ? "row" : "rows");
	free(width);
}

/* Column 0 of the result holds each row as JSON. */
static void
print_json(const PGresult *res)
{
	int			r;

	printf("[");
	for (r = 0; r < PQntuples(res); r++)
		printf("%s\n  %s", r > 0 ? "," : "", PQgetvalue(res, r, 0));
	printf("%s]\n", PQntuples(res) > 0 ? "\n" : "");
}

/*
 * Connect and make sure the extension and its function are there.  Returns
 * NULL and sets *rc otherwise.
 */
static PGconn *
connect_for(const char *signature, int *rc)
{
	PGconn	   *conn = bt_connect(BT_TARGET_ANY);
	char	   *version = NULL;

	if (!bt_extension_installed(conn, &version))
	{
		bt_error("extension bingo_tune is not installed in database \"%s\"", PQdb(conn));
		bt_hint("Run \"%s install\" first.", BT_PROGNAME);
		*rc = BT_EXIT_NOT_PREPARED;
		PQfinish(conn);
		return NULL;
	}
	if (!bt_function_exists(conn, signature))
	{
		bt_error("the installed extension bingo_tune %s has no %s", version, signature);
		bt_hint("Update the extension (\"%s install\" with a newer tool) to get it.", BT_PROGNAME);
		*rc = BT_EXIT_VERSION;
		PQfinish(conn);
		return NULL;
	}
	free(version);
	return conn;
}

int
bt_report_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 1},
		{NULL, 0, NULL, 0}
	};
	int			rc;
	PGconn	   *conn;
	PGresult   *res;

	rc = bt_parse_simple_args(argc, argv, longopts, "", report_option, report_help);
	if (rc >= 0)
		return rc;
	conn = connect_for("bingo_tune.report()", &rc);
	if (conn == NULL)
		return rc;

	res = bt_query_interruptible(conn,
								 "SELECT pg_catalog.row_to_json(r)::text AS \"?json\", r.* "
								 "FROM bingo_tune.report() AS r",
								 0, NULL, PGRES_TUPLES_OK);
	if (res == NULL)
	{
		PQfinish(conn);
		return bt_interrupted ? bt_interrupt_exit_code() : BT_EXIT_ERROR;
	}
	if (ropt_json)
		print_json(res);
	else
		print_table(res, 1);
	PQclear(res);
	PQfinish(conn);
	return BT_EXIT_OK;
}

int
bt_check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 1},
		{"name", required_argument, NULL, 'n'},
		{"runs", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0}
	};
	int			rc;
	PGconn	   *conn;
	PGresult   *res;
	char		runs[16];
	const char *params[2];
	int			col_ok;
	int			col_name;
	int			r;
	int			over = 0;
	PQExpBufferData names;

	rc = bt_parse_simple_args(argc, argv, longopts, "n:r:", report_option, check_help);
	if (rc >= 0)
		return rc;
	conn = connect_for("bingo_tune.check(text,integer)", &rc);
	if (conn == NULL)
		return rc;

	snprintf(runs, sizeof(runs), "%d", ropt_runs);
	params[0] = ropt_name;		/* NULL: every watched statement */
	params[1] = runs;
	res = bt_query_interruptible(conn,
								 "SELECT pg_catalog.row_to_json(r)::text AS \"?json\", r.* "
								 "FROM bingo_tune.check($1, $2::integer) AS r",
								 2, params, PGRES_TUPLES_OK);
	if (res == NULL)
	{
		PQfinish(conn);
		return bt_interrupted ? bt_interrupt_exit_code() : BT_EXIT_ERROR;
	}

	col_ok = PQfnumber(res, "within_budget");
	col_name = PQfnumber(res, "name");
	if (col_ok < 1)
	{
		bt_error("bingo_tune.check() returned no within_budget column; this tool cannot tell go from no-go");
		PQclear(res);
		PQfinish(conn);
		return BT_EXIT_VERSION;
	}
	if (ropt_json)
		print_json(res);
	else if (bt_opts.verbosity > 0)
		print_table(res, 1);

	initPQExpBuffer(&names);
	for (r = 0; r < PQntuples(res); r++)
	{
		if (!PQgetisnull(res, r, col_ok) && strcmp(PQgetvalue(res, r, col_ok), "t") == 0)
			continue;
		over++;
		appendPQExpBuffer(&names, "%s%s%s", names.len > 0 ? ", " : "",
						  col_name >= 1 ? PQgetvalue(res, r, col_name) : "?",
						  PQgetisnull(res, r, col_ok) ? " (not measured)" : "");
	}
	if (PQntuples(res) == 0)
	{
		bt_error("no watched statement %s%s%s", ropt_name ? "named \"" : "",
				 ropt_name ? ropt_name : "to check", ropt_name ? "\"" : "");
		rc = BT_EXIT_ERROR;
	}
	else if (over > 0)
	{
		bt_error("%d of %d statements over budget: %s", over, PQntuples(res), names.data);
		rc = BT_EXIT_OVER_BUDGET;
	}
	else
	{
		bt_info("all %d statements within budget", PQntuples(res));
		rc = BT_EXIT_OK;
	}
	termPQExpBuffer(&names);
	PQclear(res);
	PQfinish(conn);
	return rc;
}
