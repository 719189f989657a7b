/*-------------------------------------------------------------------------
 *
 * budget.c
 *		bingo_tune report and bingo_tune check: the budget report, and the
 *		deploy gate.
 *
 * Both print the extension's function's rows as an aligned table that fits
 * a 120-column terminal: the columns an operator reads first (name, calls,
 * failures, percentiles, budget, headroom, indexes, status), numbers
 * rounded and long texts cut.  --wide (or -v) shows every column the
 * function returns; --json prints a JSON array of objects that the server
 * builds (row_to_json) with every column, so the tool needs no change when
 * a column is added.
 * check exits with BT_EXIT_OVER_BUDGET when any row's within_budget column
 * is false (or NULL: not measured); the column is looked up by name.
 *
 * The functions come with the extension's budget report (report() and
 * check(text, integer)); an extension without them gets a clear message.
 * Neither changes anything, so they may run on a standby when the
 * connection string asks for one (target_session_attrs); by default they
 * go to the primary like every other subcommand.
 *
 * tools/budget.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <limits.h>
#include <math.h>

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
/* the default table is cut to fit a terminal this wide */
#define BT_TABLE_WIDTH		120
/* ... but no text column narrower than this */
#define BT_MIN_CELL_WIDTH	8

/* the columns of the default (narrow) tables, in this order, if present */
static const char *const report_columns[] = {
	"name", "calls", "failed", "p50_ms", "p90_ms", "p99_ms", "budget_ms",
	"headroom_pct", "indexes", "status", NULL
};
static const char *const check_columns[] = {
	"name", "runs", "observed_ms", "budget_ms", "percentile", "timeouts",
	"within_budget", "outcome", "indexes", NULL
};

static bool ropt_json = false;
static bool ropt_wide = false;
static const char *ropt_name = NULL;
static int	ropt_runs = 3;

static void
report_help(void)
{
	printf("Usage:\n  %s report [OPTION]... [DBNAME [USERNAME]]\n\n", BT_PROGNAME);
	printf("Prints bingo_tune.report(): per watched statement its calls, failures,\n"
		   "latency percentiles, budget, headroom, indexes and status, in a table that\n"
		   "fits 120 columns.\n\n");
	printf("Options:\n");
	bt_print_connection_help();
	printf("      --wide               show every column the function returns\n"
		   "      --json               print a JSON array of objects (every column)\n"
		   "  -q, --quiet              print errors and warnings only\n"
		   "  -v, --verbose            every column, long texts in full, and the queries\n"
		   "  -?, --help               show this help, then exit\n\n");
	printf("Exit codes: 0 printed, 1 error, 2 usage, 3 could not connect, 4 extension\n"
		   "not installed, 5 the installed extension has no report().\n");
}

static void
check_help(void)
{
	printf("Usage:\n  %s check [OPTION]... [DBNAME [USERNAME]]\n\n", BT_PROGNAME);
	printf("Runs the watched statements now (bingo_tune.check()) and prints, per\n"
		   "statement, the measured times, whether it is within its budget and which\n"
		   "indexes its plan used.  Exits 6 when any statement is over budget: use it\n"
		   "as the go/no-go gate of a deploy.\n\n");
	printf("Options:\n");
	bt_print_connection_help();
	printf("  -n, --name=NAME          check this watched statement only\n"
		   "  -r, --runs=N             run each statement N times (default 3)\n"
		   "      --wide               show every column the function returns\n"
		   "      --json               print a JSON array of objects (every column)\n"
		   "  -q, --quiet              print nothing but errors and the over-budget list\n"
		   "  -v, --verbose            every column, long texts in full, and the queries\n"
		   "  -?, --help               show this help, then exit\n\n");
	printf("A check() still running once every run's cut-off has passed (plus 10 s and\n"
		   "a second per statement) is cancelled, and its session ended 10 s later if\n"
		   "the cancel did not stop it.\n\n");
	printf("Exit codes: 0 every statement within budget, 1 error, 2 usage, 3 could not\n"
		   "connect, 4 extension not installed, 5 the installed extension has no\n"
		   "check(), 6 a statement is over budget, or check() did not finish in time.\n");
}

static bool
report_option(int c, const char *arg)
{
	switch (c)
	{
		case 1:
			ropt_json = true;
			return true;
		case 2:
			ropt_wide = true;
			return true;
		case 'n':
			if (arg[0] == '\0')
			{
				pg_log_error("--name must not be empty");
				exit(BT_EXIT_USAGE);
			}
			ropt_name = arg;
			return true;
		case 'r':
			if (!bt_parse_int(arg, 1, 1000, &ropt_runs))
			{
				pg_log_error("--runs must be a number from 1 to 1000, not \"%s\"", arg);
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

/* The text of a cell cut to max characters (with "..."); malloc'd. */
static char *
cut_text(const char *s, int max)
{
	const char *p;
	int			chars = 0;
	char	   *cut;

	if (max <= 0 || text_width(s) <= max)
		return pg_strdup(s);
	if (max < 4)
		max = 4;
	for (p = s; *p; p++)
	{
		if ((*p & 0xC0) != 0x80 && chars++ == max - 3)
			break;
	}
	cut = pg_malloc(p - s + 4);
	memcpy(cut, s, p - s);
	strcpy(cut + (p - s), "...");
	return cut;
}

/*
 * The text of a cell as shown in a table.  In the narrow table, fractions
 * are rounded (0.01 ms is as fine as a budget is read); the full value is
 * in --wide and --json.  Returns a malloc'd string, not yet cut.
 */
static char *
cell_text(const PGresult *res, int r, int c, bool narrow)
{
	const char *s = PQgetvalue(res, r, c);
	Oid			type = PQftype(res, c);
	char		buf[64];

	if (narrow && !PQgetisnull(res, r, c) &&
		(type == FLOAT8OID || type == FLOAT4OID || type == NUMERICOID))
	{
		double		v = strtod(s, NULL);

		snprintf(buf, sizeof(buf), "%.*f", (v >= 100 || v <= -100) ? 0 : 2, v);
		return pg_strdup(buf);
	}
	return pg_strdup(s);
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
 * Print the result's columns cols[0..ncols-1] as an aligned table, like
 * psql's (header, rule, rows, row count); numbers right-aligned.  Texts are
 * cut to BT_MAX_CELL_WIDTH unless --verbose; when fit is set the widest text
 * columns are cut further until a line fits BT_TABLE_WIDTH.
 */
static void
print_table(const PGresult *res, const int *cols, int ncols, bool fit)
{
	int			nrows = PQntuples(res);
	int		   *width = pg_malloc0(sizeof(int) * ncols);
	int		   *limit = pg_malloc0(sizeof(int) * ncols);
	int			r,
				i;

	for (i = 0; i < ncols; i++)
	{
		int			c = cols[i];

		limit[i] = bt_opts.verbosity >= 2 ? 0 : BT_MAX_CELL_WIDTH;
		width[i] = text_width(PQfname(res, c));
		for (r = 0; r < nrows; r++)
		{
			char	   *cell = cell_text(res, r, c, fit);
			int			w = text_width(cell);

			if (limit[i] > 0 && w > limit[i])
				w = limit[i];
			if (w > width[i])
				width[i] = w;
			free(cell);
		}
	}

	/* a line is " a | b | c": 3 per column, less 1 */
	while (fit)
	{
		int			total = -1;
		int			widest = -1;

		for (i = 0; i < ncols; i++)
			total += width[i] + 3;
		if (total <= BT_TABLE_WIDTH)
			break;
		for (i = 0; i < ncols; i++)
		{
			if (is_numeric_type(PQftype(res, cols[i])) ||
				width[i] <= BT_MIN_CELL_WIDTH ||
				width[i] <= text_width(PQfname(res, cols[i])))
				continue;
			if (widest < 0 || width[i] > width[widest])
				widest = i;
		}
		if (widest < 0)
			break;				/* nothing left to cut */
		width[widest] -= Min(total - BT_TABLE_WIDTH,
							 width[widest] - Max(BT_MIN_CELL_WIDTH,
												 text_width(PQfname(res, cols[widest]))));
		limit[widest] = width[widest];
	}

	for (i = 0; i < ncols; i++)
	{
		printf(i > 0 ? " | " : " ");
		print_padded(PQfname(res, cols[i]), width[i], false);
	}
	printf("\n");
	for (i = 0; i < ncols; i++)
	{
		int			j;

		printf(i > 0 ? "-+-" : "-");
		for (j = 0; j < width[i]; j++)
			putchar('-');
	}
	printf("-\n");
	for (r = 0; r < nrows; r++)
	{
		for (i = 0; i < ncols; i++)
		{
			char	   *cell = cell_text(res, r, cols[i], fit);
			char	   *cut = cut_text(cell, limit[i]);

			printf(i > 0 ? " | " : " ");
			print_padded(cut, width[i], is_numeric_type(PQftype(res, cols[i])));
			free(cut);
			free(cell);
		}
		printf("\n");
	}
	printf("(%d %s)\n", nrows, nrows == 1 ? "row" : "rows");
	free(width);
	free(limit);
}

/*
 * Print the result (column 0 is the JSON, not shown) as a table: the named
 * columns that exist, fitted to BT_TABLE_WIDTH, or every column with --wide
 * or -v (or when none of the names exist: a newer function).
 */
static void
print_result_table(const PGresult *res, const char *const *names)
{
	int		   *cols = pg_malloc(sizeof(int) * (PQnfields(res) + 1));
	int			n = 0;
	int			i;

	if (!ropt_wide && bt_opts.verbosity < 2)
	{
		for (i = 0; names[i]; i++)
		{
			int			c = PQfnumber(res, names[i]);

			if (c >= 1)
				cols[n++] = c;
		}
	}
	if (n == 0)
	{
		for (i = 1; i < PQnfields(res); i++)
			cols[n++] = i;
		print_table(res, cols, n, false);
	}
	else
		print_table(res, cols, n, true);
	free(cols);
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

	if (!bt_require_extension(conn, &version))
	{
		*rc = BT_EXIT_NOT_PREPARED;
		PQfinish(conn);
		return NULL;
	}
	if (!bt_function_exists(conn, signature))
	{
		pg_log_error("the installed extension bingo_tune %s has no %s", version, signature);
		pg_log_error_hint("Update the extension (\"%s install\" with a newer tool) to get it.", BT_PROGNAME);
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
		{"wide", no_argument, NULL, 2},
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
		print_result_table(res, report_columns);
	PQclear(res);
	PQfinish(conn);
	return BT_EXIT_OK;
}

/*
 * How long check() may take before the tool stops it: what the server's
 * cut-offs allow (each run: its budget plus 10 %, at least 20 ms more),
 * plus BT_CHECK_MARGIN_MS and a second per statement for the catalog
 * pass and planning.  The server's cut-off is a query cancel, which code
 * the statement reaches can catch; this deadline is the tool's own.  0 (no
 * deadline) when the catalog cannot be read.
 */
#define BT_CHECK_MARGIN_MS	10000

static int
check_deadline_ms(PGconn *conn, const char *const *params)
{
	PGresult   *res;
	double		ms;

	res = bt_query(conn,
				   "SELECT pg_catalog.count(*) * 1000 + $2::pg_catalog.int4 * "
				   "       coalesce(pg_catalog.sum(b + GREATEST(b * 0.1, 20)), 0) "
				   "FROM (SELECT EXTRACT(epoch FROM budget) * 1000 AS b FROM bingo_tune.watch "
				   "      WHERE $1::pg_catalog.text IS NULL OR name = $1) AS w",
				   2, params, PGRES_TUPLES_OK);
	if (res == NULL)
	{
		pg_log_warning("check() runs without the tool's deadline");
		return 0;
	}
	ms = strtod(PQgetvalue(res, 0, 0), NULL) + BT_CHECK_MARGIN_MS;
	PQclear(res);
	return ms >= INT_MAX ? INT_MAX : (int) ceil(ms);
}

/*
 * The deploy gate: check()'s rows whose within_budget (column col_ok) is
 * not true -- false, or NULL: not measured -- are over budget, and named.
 * Returns the exit code.
 */
static int
check_verdict(const PGresult *res, int col_ok)
{
	int			col_name = PQfnumber(res, "name");
	int			over = 0;
	int			rc;
	int			r;
	PQExpBufferData names;

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
		pg_log_error("no watched statement %s%s%s", ropt_name ? "named \"" : "",
					 ropt_name ? ropt_name : "to check", ropt_name ? "\"" : "");
		rc = BT_EXIT_ERROR;
	}
	else if (over > 0)
	{
		pg_log_error("%d of %d statements over budget: %s", over, PQntuples(res), names.data);
		rc = BT_EXIT_OVER_BUDGET;
	}
	else
	{
		pg_log_info("all %d statements within budget", PQntuples(res));
		rc = BT_EXIT_OK;
	}
	termPQExpBuffer(&names);
	return rc;
}

int
bt_check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 1},
		{"wide", no_argument, NULL, 2},
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
	int			deadline_ms;
	bool		overran = false;

	rc = bt_parse_simple_args(argc, argv, longopts, "n:r:", report_option, check_help);
	if (rc >= 0)
		return rc;
	conn = connect_for("bingo_tune.check(text,integer)", &rc);
	if (conn == NULL)
		return rc;

	snprintf(runs, sizeof(runs), "%d", ropt_runs);
	params[0] = ropt_name;		/* NULL: every watched statement */
	params[1] = runs;
	deadline_ms = check_deadline_ms(conn, params);
	res = bt_query_deadline(conn,
							"SELECT pg_catalog.row_to_json(r)::text AS \"?json\", r.* "
							"FROM bingo_tune.check($1, $2::integer) AS r",
							2, params, PGRES_TUPLES_OK, deadline_ms, &overran);
	if (res == NULL && overran)
	{
		pg_log_error("bingo_tune.check() did not finish within %d s, the sum of the budgets of the runs plus a margin",
					 deadline_ms / 1000);
		pg_log_error_hint("Code the statements reach (a function of a row-level security policy, say) may ignore "
						  "the server's cut-off at each run's budget; such a statement counts as over budget.");
		PQfinish(conn);
		return BT_EXIT_OVER_BUDGET;
	}
	if (res == NULL)
	{
		PQfinish(conn);
		return bt_interrupted ? bt_interrupt_exit_code() : BT_EXIT_ERROR;
	}

	col_ok = PQfnumber(res, "within_budget");
	if (col_ok < 1)
	{
		pg_log_error("bingo_tune.check() returned no within_budget column; this tool cannot tell go from no-go");
		PQclear(res);
		PQfinish(conn);
		return BT_EXIT_VERSION;
	}
	if (ropt_json)
		print_json(res);
	else if (bt_opts.verbosity > 0)
		print_result_table(res, check_columns);

	rc = check_verdict(res, col_ok);
	PQclear(res);
	PQfinish(conn);
	return rc;
}
