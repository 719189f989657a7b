/*-------------------------------------------------------------------------
 *
 * common.h
 *		Shared declarations of the bingo_tune pre-deploy tool: exit codes,
 *		messages, the connection and the subcommands.
 *
 * The tool is a plain libpq client.  Every subcommand connects with
 * connect_db(), which applies the conventions every PostgreSQL client
 * should follow (fallback_application_name, expand_dbname, a safe
 * search_path); queries with values go through PQexecParams.
 *
 * tools/common.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef BINGO_TUNE_TOOL_COMMON_H
#define BINGO_TUNE_TOOL_COMMON_H

#include <signal.h>

#include "common/logging.h"
#include "libpq-fe.h"
#include "pqexpbuffer.h"

/*
 * BT_TOOL_VERSION, the extension version this tool belongs to, is
 * bingo_tune.control's default_version: tools/Makefile passes it with -D.
 */
#ifndef BT_TOOL_VERSION
#error "BT_TOOL_VERSION is set by tools/Makefile from bingo_tune.control"
#endif
#define BT_PROGNAME			"bingo_tune"

/*
 * Advisory lock keys: "bingo" in ASCII, then 1 for install and 2 for
 * prepare-db.  Session locks on these keys in the target database are what
 * makes concurrent runs on several nodes safe.
 */
#define BT_LOCK_INSTALL		"27700470620291073"	/* 0x62696e676f0001 */
#define BT_LOCK_PREPARE		"27700470620291074"	/* 0x62696e676f0002 */

/* Oldest server the extension supports (pg_stat_activity.query_id). */
#define BT_MIN_SERVER_VERSION	140000

/*
 * Exit codes; documented in README.md ("The pre-deploy tool") and in --help.  prepare-db exits
 * with its command's own status when the command fails.
 */
#define BT_EXIT_OK				0	/* done */
#define BT_EXIT_ERROR			1	/* a query failed, or another error */
#define BT_EXIT_USAGE			2	/* bad command line */
#define BT_EXIT_CONNECT			3	/* could not connect */
#define BT_EXIT_NOT_PREPARED	4	/* server not prepared for the extension */
#define BT_EXIT_VERSION			5	/* extension version does not match the tool */
#define BT_EXIT_OVER_BUDGET		6	/* check: a statement is over budget */
#define BT_EXIT_NOT_FILLED		7	/* prepare-db: command left tables empty */
#define BT_EXIT_LOCK_TIMEOUT	8	/* prepare-db: --lock-timeout expired */
#define BT_EXIT_UNMARKED_DATA	9	/* prepare-db: tables hold rows no run recorded */

/*
 * bt_query_deadline: how long a statement past its deadline gets to stop
 * after a cancel, and its session to end after pg_terminate_backend().
 */
#define BT_CANCEL_GRACE_MS	10000

/* Which server a subcommand must talk to. */
typedef enum BtTarget
{
	BT_TARGET_PRIMARY,			/* forced target_session_attrs=read-write */
	BT_TARGET_ANY				/* read-write unless the user says otherwise */
} BtTarget;

/*
 * Options every subcommand shares: the connection as psql takes it, and how
 * much to say.  NULL leaves a setting to the PG* environment variables.
 */
typedef struct BtOptions
{
	const char *dbname;			/* -d or DBNAME: a name, conninfo or URI */
	const char *host;			/* -h */
	const char *port;			/* -p */
	const char *username;		/* -U or the second positional argument */
	int			verbosity;		/* 0 quiet, 1 normal, 2 verbose */
} BtOptions;

extern BtOptions bt_opts;

/* Set by the signal handler; checked by every wait loop. */
extern volatile sig_atomic_t bt_interrupted;

/* messages (common.c); the rest is pg_log_*() of common/logging.h */
#if PG_VERSION_NUM < 150000
/* 14's front-end logging has no detail or hint lines */
extern void bt_log_part(const char *part, const char *fmt,...) pg_attribute_printf(2, 3);
#define pg_log_error_detail(...)	bt_log_part("detail", __VA_ARGS__)
#define pg_log_error_hint(...)		bt_log_part("hint", __VA_ARGS__)
#define pg_log_warning_hint(...)	bt_log_part("hint", __VA_ARGS__)
#endif
extern void bt_server_error(PGconn *conn, const PGresult *res,
							const char *fmt,...) pg_attribute_printf(3, 4);
extern void bt_show_notices(bool show);

/* connection and queries (common.c) */
extern PGconn *bt_connect(BtTarget target);
extern PGconn *bt_connect_quietly(BtTarget target);
extern void bt_print_connection_help(void);
extern void bt_describe_conn(PGconn *conn, char *buf, size_t len);
extern PGresult *bt_query(PGconn *conn, const char *sql, int nparams,
						  const char *const *params, ExecStatusType expect);
extern bool bt_command(PGconn *conn, const char *sql);
extern PGresult *bt_query_interruptible(PGconn *conn, const char *sql, int nparams,
										const char *const *params,
										ExecStatusType expect);
extern PGresult *bt_query_deadline(PGconn *conn, const char *sql, int nparams,
								   const char *const *params, ExecStatusType expect,
								   int deadline_ms, bool *overran);
extern void bt_install_signal_handlers(void);
extern bool bt_sleep_ms(int ms);
extern int	bt_interrupt_exit_code(void);
extern bool bt_extension_installed(PGconn *conn, char **version);
extern bool bt_require_extension(PGconn *conn, char **version);
extern bool bt_function_exists(PGconn *conn, const char *signature);
extern bool bt_parse_common_option(int c, const char *arg);
extern bool bt_check_connection_options(void);
extern bool bt_parse_int(const char *arg, int min, int max, int *result);
extern bool bt_parse_duration(const char *arg, int *ms);
extern void bt_sanitize(const char *in, char *out, size_t len);

/* main.c */
struct option;
extern int	bt_parse_simple_args(int argc, char **argv, const struct option *extra,
								 const char *extra_short,
								 bool (*handle) (int c, const char *arg),
								 void (*help) (void));

/* subcommands */
extern int	bt_install_main(int argc, char **argv);
extern int	bt_install(PGconn *conn);
extern int	bt_compare_versions(const char *a, const char *b);
extern int	bt_prepare_main(int argc, char **argv);
extern int	bt_apply_main(int argc, char **argv);
extern int	bt_call_apply(PGconn *conn);
extern int	bt_report_main(int argc, char **argv);
extern int	bt_check_main(int argc, char **argv);

#endif							/* BINGO_TUNE_TOOL_COMMON_H */
