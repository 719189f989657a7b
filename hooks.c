/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		The one ProcessUtility hook and the one transaction callback of
 *		bingo_tune, each dispatching to the files that own the work.
 *
 * Several files act on utility statements and on transaction ends.  Each
 * keeps its own state and exports what it does; only this file installs
 * the hook and the callback (from _PG_init, during the preload), so the
 * order in which they act is written down once:
 *
 * A utility statement: stats.c notes it first (the nesting level that
 * keeps what a CALL or a DO block runs from counting as a client's run,
 * DDL that changes what names resolve to, COMMIT / ROLLBACK PREPARED).
 * Then, before the statement runs, watcher.c pauses the watcher of a
 * database that DROP / RENAME / ALTER DATABASE or CREATE DATABASE's
 * template needs free, and notes a CREATE EXTENSION bingo_tune; builder.c
 * has a build on a table the statement changes give way.  After the
 * statement, failed or not, stats.c closes what it noted.
 *
 * A transaction end: watcher.c wakes the launcher when a CREATE EXTENSION
 * bingo_tune commits; stats.c publishes a change of names and counts a
 * watched run still in flight at an abort as failed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "tcop/utility.h"

#include "bingo_tune.h"

/*---- Local state ----*/

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*---- Function declarations ----*/

static void bt_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree,
							  ProcessUtilityContext context, ParamListInfo params,
							  QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);
static void bt_xact_callback(XactEvent event, void *arg);

/*
 * From _PG_init, during the preload: install the hook and the callback.
 */
void
bt_hooks_install(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = bt_ProcessUtility;
	RegisterXactCallback(bt_xact_callback, NULL);
}

static void
bt_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree,
				  ProcessUtilityContext context, ParamListInfo params,
				  QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	BtStatsUtility note;

	bt_stats_utility_start(parsetree, &note);
	PG_TRY();
	{
		bt_watcher_utility(parsetree);
		/* DDL on a table being built: the build gives way first */
		bt_builder_yield_for(parsetree);

		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		bt_stats_utility_end(pstmt, &note, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	bt_stats_utility_end(pstmt, &note, true);
}

static void
bt_xact_callback(XactEvent event, void *arg)
{
	bt_watcher_xact_end(event);
	bt_stats_xact_end(event);
}
