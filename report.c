/*-------------------------------------------------------------------------
 *
 * report.c
 *		The budget report: report(), reset(), check(), before_after(), and
 *		the catalog pass that tells stats.c which statements to track.
 *
 * The catalog pass (bt_watch_sync) reads bingo_tune.watch (through
 * catalog.c's bt_catalog_read, the catalog's one reader), computes each
 * statement's queryid in this database (queryid.c), registers it with
 * stats.c and forgets entries whose statement left the catalog or whose
 * tables were recreated (new queryid).  It runs in report(), reset(),
 * check(), in a statement trigger on the catalog, and in each watcher pass
 * (bt_stats_sync), so runs are tracked as soon as the app's tables exist.
 * A statement whose id cannot be computed right now (its table is gone,
 * or locked for more than a second: the pass never waits longer) keeps
 * its figures.
 *
 * Privileges.  The catalog is read (with a fixed search_path), and the
 * statements' names resolved, as the catalog's owner, so that a role granted
 * EXECUTE on report() without being a member of pg_read_all_stats sees the
 * figures; the statement texts are shown only to those who may see them in
 * pg_stat_statements: superusers and members of pg_read_all_stats.  Each
 * statement is analysed as the owner of its tables (queryid.c), never as
 * the catalog's owner: analysis runs the column types' code.  The
 * install script grants report(), check() and before_after() to
 * pg_read_all_stats and leaves reset() to superusers.
 *
 * check() runs each statement in the caller's session, but not as the
 * caller: as the owner of the statement's tables, inside a
 * security-restricted operation, as PostgreSQL runs ANALYZE and CREATE
 * INDEX (bt_check_role says who, and refuses views and tables of different
 * owners), with the application's search path (bt_app_search_path), `runs`
 * times.  Each run gets its own subtransaction, always rolled back
 * (a watched DELETE changes nothing), and its own timer just above the
 * budget: a statement_timeout set inside a function would not be armed for
 * the statements it runs, so check() arms a timeout of its own, and a run
 * cut off by it comes back as a row instead of aborting the call.  A cancel
 * from the client, or the caller's own statement_timeout, still aborts it.
 * Any of these is a query cancel, which code the statement reaches (an RLS
 * policy's plpgsql function) can catch and ignore; the tool's `check`
 * keeps a deadline of its own and ends the session past it.
 * Rows go to a discarding receiver.  Which indexes the plan uses is read
 * from the plan the planner makes for the sample values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_node.h"
#include "parser/parse_param.h"
#include "parser/parser.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

#include "bingo_tune.h"

PG_FUNCTION_INFO_V1(bt_report);
PG_FUNCTION_INFO_V1(bt_reset);
PG_FUNCTION_INFO_V1(bt_check);
PG_FUNCTION_INFO_V1(bt_before_after);
PG_FUNCTION_INFO_V1(bt_watch_changed);

/* the catalog pass waits this long (ms) at most for a table's lock */
#define BT_SYNC_LOCK_TIMEOUT_MS 1000

/* columns of the rows of report(), before_after() and check() */
#define BT_REPORT_COLS		18
#define BT_BEFORE_AFTER_COLS 19
#define BT_CHECK_COLS		12

/* One watched statement's check() in progress. */
typedef struct BtCheck
{
	BtWatched  *w;
	int			runs;			/* runs asked for */
	int			timeout_ms;		/* check()'s own timer, per run */
	Oid		   *types;			/* of $1, $2, ... */
	int			ntypes;
	ParamListInfo params;		/* the sample values */
	SPIPlanPtr	plan;
	double		run_ms;			/* how long the last run ran */
	double	   *times;			/* ms, of the runs done */
	int			ndone;
	int			ntimeouts;		/* runs cut off by the timer */
	char	   *error;			/* the error that ended the check, or NULL */
	List	   *plan_oids;		/* indexes the plan uses */
} BtCheck;

/*---- Local state ----*/

/* check()'s own timeout, registered on first use */
static TimeoutId bt_check_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t bt_check_timed_out = false;

/*---- Function declarations ----*/

static List *bt_watch_sync(const char *only, bool prune);

/*
 * A sync whose catalog read may predate another session's change keeps
 * entries registered in the last BT_SYNC_GRACE_MS (see bt_stats_prune);
 * the catalog trigger's sync, in the transaction that made the change,
 * prunes at once, so a statement removed from a full table frees its slot
 * right away.
 */
#define BT_SYNC_GRACE_MS	10000
static bool bt_sync_sees_latest = false;
static char *bt_index_summary(BtWatched *w, List **present_oids);
static char *bt_fmt_ms(double ms);
static void bt_check_timeout_handler(void);
static Oid *bt_param_types(const char *sql, int *nparams);
static ParamListInfo bt_param_values(BtWatched *w, Oid *types, int ntypes);
static void bt_plan_indexes(Plan *plan, List **oids);
static Query *bt_analyse_caught(BtWatched *w, Oid owner, char **why);
static Oid	bt_check_role(BtWatched *w, char **why);
static char *bt_check_error(ErrorData *edata);
static void bt_check_prepare(void *arg);
static void bt_check_runs(BtCheck *c);
static void bt_check_plan(void *arg);
static void bt_check_step(BtCheck *c, void (*step) (void *arg), bool keep);
static void bt_check_put_row(ReturnSetInfo *rsinfo, BtCheck *c);
static void bt_check_one(ReturnSetInfo *rsinfo, BtWatched *w, int runs);

/*
 * Does another row of rows have w's queryid?  From 18 the queryid hashes
 * table names, not schemas or OIDs: statements on same-named tables in two
 * schemas share it, and their runs are counted together (as in
 * pg_stat_statements).  Their relations differ, which must not be taken
 * for a re-created table (bt_stats_relations) at every sync.
 */
static bool
bt_queryid_shared(List *rows, BtWatched *w)
{
	ListCell   *lc;

	foreach(lc, rows)
	{
		BtWatched  *other = lfirst(lc);

		if (other != w && other->matched && other->queryid == w->queryid)
			return true;
	}
	return false;
}

/*
 * The catalog pass: read every row, compute its queryid here, register it
 * for tracking and forget what left the catalog.  Returns the rows (only
 * the one named, if only is not NULL).  The names are resolved as the
 * catalog's owner, so that the ids do not depend on who asks (a caller
 * without USAGE on the app's schema would not find its tables); each
 * statement is then analysed as the owner of its tables (queryid.c).
 */
static List *
bt_watch_sync(const char *only, bool prune)
{
	/*
	 * A client's re-registration needs the queryids, not derived sets:
	 * planning candidate sets does not belong in the app's statement (the
	 * registration keeps the index list an earlier pass gave the entry).
	 */
	List	   *rows = bt_catalog_read(NULL, prune);
	List	   *result = NIL;
	uint64	   *keep = palloc(sizeof(uint64) * Max(list_length(rows), 1));
	int			nkeep = 0;
	List	   *unknown = NIL;
	bool		tracking = bt_shmem_ready();
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	ListCell   *lc;

	/*
	 * Analysis locks the app's tables: behind a long DDL, give up on that
	 * statement for now rather than hang a report() for as long.
	 */
	nestlevel = NewGUCNestLevel();
	if (LockTimeout == 0 || LockTimeout > BT_SYNC_LOCK_TIMEOUT_MS)
		(void) set_config_option("lock_timeout", CppAsString2(BT_SYNC_LOCK_TIMEOUT_MS),
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(bt_catalog_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	foreach(lc, rows)
	{
		BtWatched  *w = lfirst(lc);

		w->matched = bt_statement_identity(w->statement, w->schema, &w->queryid,
										   &w->relations, &w->why);
		if (w->matched)
			keep[nkeep++] = w->queryid;
		else
			unknown = lappend(unknown, w->name);
		if (only == NULL || strcmp(w->name, only) == 0)
			result = lappend(result, w);
	}
	SetUserIdAndSecContext(save_userid, save_sec);
	AtEOXact_GUC(false, nestlevel);

	/* forget first, so that what left the catalog makes room */
	if (tracking && prune)
		bt_stats_prune(MyDatabaseId, keep, nkeep, unknown,
					   bt_sync_sees_latest ? 0 : BT_SYNC_GRACE_MS);
	if (tracking)
	{
		foreach(lc, rows)
		{
			BtWatched  *w = lfirst(lc);
			List	   *canon = NIL;

			if (!w->matched)
				continue;
			for (int i = 0; i < w->nindexes; i++)
				canon = lappend(canon,
								bt_indexdef_canonical(bt_indexdef_parse(w->indexes[i], w->schema)));
			if (bt_stats_register(MyDatabaseId, w->queryid, w->name, canon) &&
				!bt_queryid_shared(rows, w))
				(void) bt_stats_relations(MyDatabaseId, w->queryid, w->relations);
		}
	}

	if (only != NULL && result == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("watched statement \"%s\" does not exist", only),
				 errhint("SELECT name FROM bingo_tune.watch lists the watched statements.")));
	return result;
}

List *
bt_stats_sync(void)
{
	return bt_watch_sync(NULL, true);
}

/*
 * The catalog pass as run inside a client's statement (stats.c): register
 * what the catalog names now, but forget nothing.  That statement's
 * transaction may hold uncommitted DDL that it later rolls back, or an
 * old snapshot of the catalog, and neither may cost anyone their figures;
 * the watcher's and report()'s passes prune.
 */
List *
bt_stats_sync_register(void)
{
	return bt_watch_sync(NULL, false);
}

/*
 * "2/3 present"; *present_oids (if not NULL) gets the OIDs of the valid
 * indexes that match the statement's definitions.
 */
static char *
bt_index_summary(BtWatched *w, List **present_oids)
{
	int			present = 0;

	for (int i = 0; i < w->nindexes; i++)
	{
		BtIndexDef *def = bt_indexdef_parse(w->indexes[i], w->schema);
		Oid			relid;
		Oid			found;

		if (bt_index_state(def, &relid, &found) == BT_INDEX_PRESENT)
		{
			present++;
			if (present_oids)
				*present_oids = lappend_oid(*present_oids, found);
		}
	}
	return psprintf("%d/%d present", present, w->nindexes);
}

/* "9.8 s", "450 ms", "0.14 ms" */
static char *
bt_fmt_ms(double ms)
{
	if (ms < 0)
		return pstrdup("-");
	if (ms >= 1000)
		return psprintf("%.3g s", ms / 1000);
	return psprintf("%.3g ms", ms);
}

/*
 * Milliseconds to the microsecond: the histograms are only good to 5 %, and
 * fifteen digits of a percentile say nothing an operator can use.
 */
static inline double
bt_round_ms(double ms)
{
	return rint(ms * 1000.0) / 1000.0;
}

/* the next column of a row: ms, or NULL when there is none (-1) */
static inline void
bt_put_ms(Datum *values, bool *nulls, int *i, double ms)
{
	nulls[*i] = (ms < 0);
	values[(*i)++] = Float8GetDatum(ms < 0 ? 0 : bt_round_ms(ms));
}

/*
 * The next seven columns of a before_after() row: one period's calls,
 * failed, p50_ms, p90_ms, p99_ms, mean_ms and max_ms.
 */
static void
bt_put_period(Datum *values, bool *nulls, int *i, const BtLatencySummary *sum)
{
	values[(*i)++] = Int64GetDatum(sum->calls);
	values[(*i)++] = Int64GetDatum(sum->failed);
	bt_put_ms(values, nulls, i, sum->p50_ms);
	bt_put_ms(values, nulls, i, sum->p90_ms);
	bt_put_ms(values, nulls, i, sum->p99_ms);
	bt_put_ms(values, nulls, i, sum->mean_ms);
	bt_put_ms(values, nulls, i, sum->max_ms);
}

/*
 * A watched statement's status in report(): observed is the budgeted
 * percentile over every run, -1 when there was none.
 */
static const char *
bt_report_status(BtWatched *w, bool tracked, BtStatsSnapshot *snap,
				 BtLatencySummary *sum, double observed)
{
	if (w->matched && !tracked)
		return "not tracked";
	if (sum->calls + sum->failed == 0 && tracked && snap->has_before)
		return "no run since build";	/* it ran before, see before_after */
	if (sum->calls + sum->failed == 0)
		return "not seen";
	if (observed > w->budget_ms)
		return "over budget";
	if (observed > w->budget_ms / 2 || sum->failed > 0)
		return "at risk";
	return "ok";
}

/*
 * Add w's row to report(): (name, queryid, calls, failed, mean_ms, p50_ms,
 * p90_ms, p99_ms, max_ms, failed_max_ms, budget_ms, percentile,
 * observed_ms, headroom_pct, indexes, status, since, statement).
 */
static void
bt_report_put_row(ReturnSetInfo *rsinfo, BtWatched *w, bool see_text)
{
	Datum		values[BT_REPORT_COLS];
	bool		nulls[BT_REPORT_COLS];
	BtStatsSnapshot *snap = palloc(sizeof(BtStatsSnapshot));
	bool		tracked = w->matched && bt_stats_fetch(MyDatabaseId, w->queryid, snap);
	BtLatencySummary sum;
	BtHistogram *all;
	double		observed = -1;
	int			i = 0;

	if (tracked)
	{
		bt_hist_summarize(&snap->done, &snap->failed, &sum);
		/* the budgeted percentile over every run, failed ones at how long they ran */
		all = palloc(sizeof(BtHistogram));
		memcpy(all, &snap->done, sizeof(BtHistogram));
		bt_hist_merge(all, &snap->failed);
		observed = bt_hist_percentile(all, w->percentile);
	}
	else
	{
		memset(&sum, 0, sizeof(sum));
		sum.mean_ms = sum.p50_ms = sum.p90_ms = sum.p99_ms = -1;
		sum.max_ms = sum.failed_max_ms = -1;
	}

	memset(nulls, 0, sizeof(nulls));
	values[i++] = CStringGetTextDatum(w->name);
	nulls[i] = !w->matched;
	values[i++] = Int64GetDatum((int64) w->queryid);
	values[i++] = Int64GetDatum(sum.calls);
	values[i++] = Int64GetDatum(sum.failed);
	bt_put_ms(values, nulls, &i, sum.mean_ms);
	bt_put_ms(values, nulls, &i, sum.p50_ms);
	bt_put_ms(values, nulls, &i, sum.p90_ms);
	bt_put_ms(values, nulls, &i, sum.p99_ms);
	bt_put_ms(values, nulls, &i, sum.max_ms);
	bt_put_ms(values, nulls, &i, sum.failed_max_ms);
	values[i++] = Float8GetDatum(w->budget_ms);
	values[i++] = Float8GetDatum(w->percentile);
	bt_put_ms(values, nulls, &i, observed);
	nulls[i] = (observed < 0);
	values[i++] = Float8GetDatum(rint(1000.0 * (w->budget_ms - observed) / w->budget_ms) / 10.0);
	values[i++] = CStringGetTextDatum(bt_index_summary(w, NULL));
	values[i++] = CStringGetTextDatum(bt_report_status(w, tracked, snap, &sum, observed));
	nulls[i] = !tracked;
	values[i++] = TimestampTzGetDatum(snap->since);
	nulls[i] = !see_text;
	values[i++] = CStringGetTextDatum(w->statement);
	Assert(i == BT_REPORT_COLS);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * report() returns setof (name, queryid, calls, failed, mean_ms, p50_ms,
 * p90_ms, p99_ms, max_ms, failed_max_ms, budget_ms, percentile,
 * observed_ms, headroom_pct, indexes, status, since, statement)
 */
Datum
bt_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			caller = GetUserId();
	bool		see_text = superuser() || has_privs_of_role(caller, ROLE_PG_READ_ALL_STATS);
	List	   *rows;
	ListCell   *lc;

	bt_require_preload("bingo_tune.report()");
	bt_init_srf(fcinfo);

	/* without query ids the hooks cannot tell one statement from another */
	if (!IsQueryIdEnabled())
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("query identifiers are not computed in this session, so its runs are not timed"),
				 errhint("Set compute_query_id to on, or to auto with pg_stat_statements in shared_preload_libraries.")));

	rows = bt_watch_sync(NULL, true);
	foreach(lc, rows)
		bt_report_put_row(rsinfo, lfirst(lc), see_text);
	return (Datum) 0;
}

/*
 * reset(name text DEFAULT NULL): clear one watched statement's figures, or
 * all of this database's.
 */
Datum
bt_reset(PG_FUNCTION_ARGS)
{
	char	   *only = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *rows;

	bt_require_preload("bingo_tune.reset()");
	rows = bt_watch_sync(only, true);
	if (only == NULL)
		(void) bt_stats_reset(MyDatabaseId, UINT64CONST(0));
	else
	{
		BtWatched  *w = linitial(rows);

		if (w->matched)
			(void) bt_stats_reset(MyDatabaseId, w->queryid);
	}
	PG_RETURN_VOID();
}

/*
 * before_after() returns, for each watched statement an index build served,
 * its figures before the first build (since the last reset) and since then.
 */
Datum
bt_before_after(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *rows;
	ListCell   *lc;

	bt_require_preload("bingo_tune.before_after()");
	bt_init_srf(fcinfo);

	rows = bt_watch_sync(NULL, true);
	foreach(lc, rows)
	{
		BtWatched  *w = lfirst(lc);
		BtStatsSnapshot *snap = palloc(sizeof(BtStatsSnapshot));
		BtLatencySummary after;
		BtLatencySummary *before;
		Datum		values[BT_BEFORE_AFTER_COLS];
		bool		nulls[BT_BEFORE_AFTER_COLS];
		int			i = 0;

		if (!w->matched || !bt_stats_fetch(MyDatabaseId, w->queryid, snap) ||
			!snap->has_before)
			continue;
		before = &snap->before;
		bt_hist_summarize(&snap->done, &snap->failed, &after);

		memset(nulls, 0, sizeof(nulls));
		values[i++] = CStringGetTextDatum(w->name);
		values[i++] = CStringGetTextDatum(snap->built);
		values[i++] = TimestampTzGetDatum(snap->built_at);
		bt_put_period(values, nulls, &i, before);
		values[i++] = TimestampTzGetDatum(before->since);
		bt_put_period(values, nulls, &i, &after);
		values[i++] = CStringGetTextDatum(psprintf("%s: p50 %s -> %s, p90 %s -> %s, failed %lld -> %lld",
												   w->name,
												   bt_fmt_ms(before->p50_ms), bt_fmt_ms(after.p50_ms),
												   bt_fmt_ms(before->p90_ms), bt_fmt_ms(after.p90_ms),
												   (long long) before->failed, (long long) after.failed));
		Assert(i == BT_BEFORE_AFTER_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Statement trigger on bingo_tune.watch: track what the catalog now says.
 */
Datum
bt_watch_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("bingo_tune.watch_changed() must be called as a trigger")));
	if (bt_shmem_ready())
	{
		/* this transaction made the latest change: it may prune at once */
		bt_sync_sees_latest = true;
		PG_TRY();
		{
			bt_stats_sync();
		}
		PG_FINALLY();
		{
			bt_sync_sees_latest = false;
		}
		PG_END_TRY();
	}
	return PointerGetDatum(NULL);
}

/* ---------------------------------------------------------------------
 * check()
 * ---------------------------------------------------------------------
 */

/* SIGALRM context: ask for a cancel, and say it was ours */
static void
bt_check_timeout_handler(void)
{
	bt_check_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/*
 * The types the server infers for sql's $n, as for an untyped driver
 * parameter (unresolved ones become text).  search_path must be set.
 */
static Oid *
bt_param_types(const char *sql, int *nparams)
{
	Oid		   *types;

	(void) bt_statement_analyse(sql, &types, nparams);
	for (int i = 0; i < *nparams; i++)
		if (!OidIsValid(types[i]) || types[i] == UNKNOWNOID)
			types[i] = TEXTOID;
	return types;
}

/* The catalog's sample values, converted to the parameters' types. */
static ParamListInfo
bt_param_values(BtWatched *w, Oid *types, int ntypes)
{
	ParamListInfo params;

	if (ntypes == 0)
		return NULL;
	if (w->nparams < ntypes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("watched statement \"%s\" needs %d sample values, has %d",
						w->name, ntypes, w->nparams),
				 errhint("Set bingo_tune.watch.params to one value for each of $1 .. $%d.", ntypes)));
	params = makeParamList(ntypes);
	for (int i = 0; i < ntypes; i++)
	{
		ParamExternData *prm = &params->params[i];
		Oid			typinput;
		Oid			typioparam;

		getTypeInputInfo(types[i], &typinput, &typioparam);
		prm->value = OidInputFunctionCall(typinput, w->params[i], typioparam, -1);
		prm->isnull = false;
		prm->pflags = PARAM_FLAG_CONST;
		prm->ptype = types[i];
	}
	return params;
}

/* Collect the OIDs of the indexes a plan tree scans. */
static void
bt_plan_indexes(Plan *plan, List **oids)
{
	ListCell   *lc;

	if (plan == NULL)
		return;
	switch (nodeTag(plan))
	{
		case T_IndexScan:
			*oids = list_append_unique_oid(*oids, ((IndexScan *) plan)->indexid);
			break;
		case T_IndexOnlyScan:
			*oids = list_append_unique_oid(*oids, ((IndexOnlyScan *) plan)->indexid);
			break;
		case T_BitmapIndexScan:
			*oids = list_append_unique_oid(*oids, ((BitmapIndexScan *) plan)->indexid);
			break;
		case T_Append:
			foreach(lc, ((Append *) plan)->appendplans)
				bt_plan_indexes(lfirst(lc), oids);
			break;
		case T_MergeAppend:
			foreach(lc, ((MergeAppend *) plan)->mergeplans)
				bt_plan_indexes(lfirst(lc), oids);
			break;
		case T_BitmapAnd:
			foreach(lc, ((BitmapAnd *) plan)->bitmapplans)
				bt_plan_indexes(lfirst(lc), oids);
			break;
		case T_BitmapOr:
			foreach(lc, ((BitmapOr *) plan)->bitmapplans)
				bt_plan_indexes(lfirst(lc), oids);
			break;
		case T_SubqueryScan:
			bt_plan_indexes(((SubqueryScan *) plan)->subplan, oids);
			break;
		case T_CustomScan:
			foreach(lc, ((CustomScan *) plan)->custom_plans)
				bt_plan_indexes(lfirst(lc), oids);
			break;
		default:
			break;
	}
	bt_plan_indexes(plan->lefttree, oids);
	bt_plan_indexes(plan->righttree, oids);
}

/* bt_analyse_caught's arguments and result */
typedef struct BtAnalyseArgs
{
	BtWatched  *w;
	Oid			owner;
	Query	   *query;
} BtAnalyseArgs;

static void
bt_analyse_step(void *arg)
{
	BtAnalyseArgs *a = (BtAnalyseArgs *) arg;
	Oid		   *types;
	int			n;

	a->query = bt_statement_analyse_as(a->w->statement, a->w->schema, a->owner,
									   a->w->name, &types, &n);
}

/*
 * Analyse sql as owner (bt_statement_analyse_as) in a subtransaction: NULL,
 * with *why set, when it fails (a cancel still propagates).
 */
static Query *
bt_analyse_caught(BtWatched *w, Oid owner, char **why)
{
	BtAnalyseArgs a = {w, owner, NULL};
	ErrorData  *edata = bt_run_caught(bt_analyse_step, &a, true);

	if (edata == NULL)
		return a.query;
	if (edata->sqlerrcode == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE)
		ReThrowError(edata);
	*why = bt_check_error(edata);
	return NULL;
}

/*
 * The role check() runs w's statement as: the owner of the tables it names
 * (bt_statement_owner, found as the catalog's owner like the catalog pass,
 * whatever the caller may see; tables of different owners raise an error),
 * or of the row's schema when it names none.  The statement is analysed
 * as that owner; every relation it reads must be an ordinary or
 * partitioned table: a view (one the schema's owner put in a table's
 * place, say) or a foreign table would run code of whoever made it, so
 * check() refuses it rather than judge whose rights that code should get.
 * When the statement cannot be analysed here (its tables do not exist
 * yet), returns InvalidOid with *why set, and the caller reports that as
 * the row's error.
 */
static Oid
bt_check_role(BtWatched *w, char **why)
{
	Query	   *query;
	Oid			role;
	Oid			save_userid;
	int			save_sec;
	ListCell   *lc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(bt_catalog_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	role = bt_statement_owner(w->statement, w->schema, w->name, why);
	SetUserIdAndSecContext(save_userid, save_sec);
	if (!OidIsValid(role))
		return InvalidOid;

	query = bt_analyse_caught(w, role, why);
	if (query == NULL)
		return InvalidOid;

	foreach(lc, bt_query_relids(query))
	{
		Oid			relid = lfirst_oid(lc);
		HeapTuple	tup;
		Form_pg_class rel;

		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", relid);
		rel = (Form_pg_class) GETSTRUCT(tup);
		if (rel->relkind != RELKIND_RELATION && rel->relkind != RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("check() does not run watched statement \"%s\": \"%s.%s\" is not a table",
							w->name, get_namespace_name(rel->relnamespace), NameStr(rel->relname)),
					 errdetail("check() runs only statements that read ordinary or partitioned tables: "
							   "a view or a foreign table runs code check() cannot vouch for."),
					 errhint("Make the row's schema the one that holds the application's tables, "
							 "or judge this statement by its runs in bingo_tune.report().")));
		ReleaseSysCache(tup);
	}
	return role;
}

/*
 * A caught error's message, for the row's outcome.  A cancel (the client's,
 * the caller's statement_timeout) is rethrown: it stops check().
 */
static char *
bt_check_error(ErrorData *edata)
{
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	return edata->message;
}

/* in a subtransaction: infer the parameter types, convert the sample values */
static void
bt_check_prepare(void *arg)
{
	BtCheck    *c = (BtCheck *) arg;

	c->types = bt_param_types(c->w->statement, &c->ntypes);
	c->params = bt_param_values(c->w, c->types, c->ntypes);
	c->plan = SPI_prepare(c->w->statement, c->ntypes, c->types);
	if (c->plan == NULL)
		elog(ERROR, "could not prepare watched statement \"%s\": %s",
			 c->w->name, SPI_result_code_string(SPI_result));
}

/* stop check()'s timer and the clock of the run started at start */
static void
bt_check_run_stop(BtCheck *c, instr_time start)
{
	instr_time	elapsed;

	disable_timeout(bt_check_timeout_id, false);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	c->run_ms = INSTR_TIME_GET_MILLISEC(elapsed);
}

/*
 * In a subtransaction (the caller's, always rolled back: a check changes
 * nothing): one run under check()'s own timer; c->run_ms gets how long it
 * ran, however it ended.
 */
static void
bt_check_run_step(void *arg)
{
	BtCheck    *c = (BtCheck *) arg;
	SPIExecuteOptions opts;
	instr_time	start;
	volatile int ret = 0;

	memset(&opts, 0, sizeof(opts));
	opts.params = c->params;
	opts.read_only = false;
	opts.dest = None_Receiver;

	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		enable_timeout_after(bt_check_timeout_id, c->timeout_ms);
		ret = SPI_execute_plan_extended(c->plan, &opts);
	}
	PG_CATCH();
	{
		bt_check_run_stop(c, start);
		PG_RE_THROW();
	}
	PG_END_TRY();
	bt_check_run_stop(c, start);

	/* fired as the run ended: the run counts, our cancel must not */
	if (bt_check_timed_out)
		QueryCancelPending = false;
	if (ret < 0)
		elog(ERROR, "could not run watched statement \"%s\": %s",
			 c->w->name, SPI_result_code_string(ret));
}

/*
 * The timed runs, until the first error.  A run cut off by check()'s own
 * timer counts, with how long it ran, as a timeout.
 */
static void
bt_check_runs(BtCheck *c)
{
	if (bt_check_timeout_id == MAX_TIMEOUTS)
		bt_check_timeout_id = RegisterTimeout(USER_TIMEOUT, bt_check_timeout_handler);

	for (int run = 0; run < c->runs && c->error == NULL; run++)
	{
		ErrorData  *edata;

		CHECK_FOR_INTERRUPTS();
		bt_check_timed_out = false;
		edata = bt_run_caught(bt_check_run_step, c, false);
		if (edata == NULL)
			c->times[c->ndone++] = c->run_ms;
		else if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && bt_check_timed_out)
		{
			c->times[c->ndone++] = c->run_ms;
			c->ntimeouts++;
		}
		else
			c->error = bt_check_error(edata);
	}
}

/* in a subtransaction: plan for the sample values, note the indexes used */
static void
bt_check_plan(void *arg)
{
	BtCheck    *c = (BtCheck *) arg;
	const char *sql = c->w->statement;
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	List	   *queries;
	ListCell   *lq;
	List	   *oids = NIL;

#if PG_VERSION_NUM >= 150000
	queries = pg_analyze_and_rewrite_fixedparams(linitial_node(RawStmt, raw),
												 sql, c->types, c->ntypes, NULL);
#else
	queries = pg_analyze_and_rewrite(linitial_node(RawStmt, raw),
									 sql, c->types, c->ntypes, NULL);
#endif
	foreach(lq, queries)
	{
		Query	   *q = lfirst_node(Query, lq);
		PlannedStmt *pstmt;
		ListCell   *ls;

		if (q->commandType == CMD_UTILITY)
			continue;
		pstmt = pg_plan_query(q, sql, CURSOR_OPT_PARALLEL_OK, c->params);
		bt_plan_indexes(pstmt->planTree, &oids);
		foreach(ls, pstmt->subplans)
			bt_plan_indexes(lfirst(ls), &oids);
	}
	c->plan_oids = oids;
}

/*
 * Run one of check()'s steps (bt_check_prepare, bt_check_plan) in a
 * subtransaction, kept or rolled back; its error becomes the row's.
 */
static void
bt_check_step(BtCheck *c, void (*step) (void *arg), bool keep)
{
	ErrorData  *edata = bt_run_caught(step, c, keep);

	if (edata != NULL)
		c->error = bt_check_error(edata);
}

static int
bt_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * The budgeted percentile of the runs (nearest rank), -1 when none ran;
 * cut-off runs count as what they ran.
 */
static double
bt_check_observed(BtCheck *c)
{
	double	   *sorted;
	int			rank;

	if (c->ndone == 0)
		return -1;
	sorted = palloc(sizeof(double) * c->ndone);
	memcpy(sorted, c->times, sizeof(double) * c->ndone);
	qsort(sorted, c->ndone, sizeof(double), bt_cmp_double);
	rank = (int) ceil(c->w->percentile / 100.0 * c->ndone);
	rank = Max(1, Min(c->ndone, rank));
	return sorted[rank - 1];
}

/* the names of the indexes in oids (List of Oid) that still exist, as text[] */
static Datum
bt_index_names(List *oids)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(oids), 1));
	int			nelems = 0;
	ListCell   *lc;

	foreach(lc, oids)
	{
		char	   *name = get_rel_name(lfirst_oid(lc));

		if (name != NULL)
			elems[nelems++] = CStringGetTextDatum(name);
	}
	return PointerGetDatum(construct_array(elems, nelems, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Add c's row: (name, runs, times_ms, within_budget, budget_ms, percentile,
 * observed_ms, timeouts, outcome, indexes, indexes_used, plan_indexes).
 */
static void
bt_check_put_row(ReturnSetInfo *rsinfo, BtCheck *c)
{
	BtWatched  *w = c->w;
	double		observed = bt_check_observed(c);
	Datum		values[BT_CHECK_COLS];
	bool		nulls[BT_CHECK_COLS];
	Datum	   *times = palloc(sizeof(Datum) * Max(c->ndone, 1));
	List	   *present = NIL;
	List	   *used = NIL;
	char	   *summary;
	ListCell   *lc;
	int			i = 0;

	for (int r = 0; r < c->ndone; r++)
		times[r] = Float8GetDatum(bt_round_ms(c->times[r]));
	summary = bt_index_summary(w, &present);
	/* the statement's own indexes that the plan uses */
	foreach(lc, present)
		if (list_member_oid(c->plan_oids, lfirst_oid(lc)))
			used = lappend_oid(used, lfirst_oid(lc));

	memset(nulls, 0, sizeof(nulls));
	values[i++] = CStringGetTextDatum(w->name);
	values[i++] = Int32GetDatum(c->ndone);
	values[i++] = PointerGetDatum(construct_array(times, c->ndone, FLOAT8OID, sizeof(float8),
												  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[i++] = BoolGetDatum(c->error == NULL && c->ntimeouts == 0 && observed >= 0 &&
							   observed <= w->budget_ms);
	values[i++] = Float8GetDatum(w->budget_ms);
	values[i++] = Float8GetDatum(w->percentile);
	bt_put_ms(values, nulls, &i, observed);
	values[i++] = Int32GetDatum(c->ntimeouts);
	if (c->error != NULL)
		values[i++] = CStringGetTextDatum(psprintf("error: %s", c->error));
	else if (c->ntimeouts > 0)
		values[i++] = CStringGetTextDatum(psprintf("timeout: cut off after %d ms", c->timeout_ms));
	else if (observed > w->budget_ms)
		values[i++] = CStringGetTextDatum("over budget");
	else
		values[i++] = CStringGetTextDatum("ok");
	values[i++] = CStringGetTextDatum(summary);
	values[i++] = bt_index_names(used);
	values[i++] = bt_index_names(c->plan_oids);
	Assert(i == BT_CHECK_COLS);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}
/*
 * Run one watched statement `runs` times and add its row.  Connected to
 * SPI; CurrentMemoryContext is SPI's procedure context.
 */
static void
bt_check_one(ReturnSetInfo *rsinfo, BtWatched *w, int runs)
{
	BtCheck		c;
	double		slack = Max(w->budget_ms * 0.1, 20.0);
	int			nestlevel;
	Oid			runas;
	Oid			save_userid;
	int			save_sec;
	char	   *why = NULL;

	memset(&c, 0, sizeof(c));
	c.w = w;
	c.runs = runs;
	c.timeout_ms = (int) Min(ceil(w->budget_ms + slack), (double) INT_MAX);
	c.times = palloc(sizeof(double) * runs);

	/* names resolve as the application resolves them, as in queryid.c */
	nestlevel = bt_app_search_path(w->schema);

	/*
	 * From here on, as the owner of the statement's tables, restricted: code
	 * the statement reaches (its functions, operators, triggers) gets the
	 * owner's rights, never the caller's, and cannot change the session.
	 * An error that escapes restores the caller with the transaction's
	 * abort; the GUC nest level undoes any setting that code made.
	 */
	runas = bt_check_role(w, &why);
	if (!OidIsValid(runas))
		c.error = why;
	GetUserIdAndSecContext(&save_userid, &save_sec);
	if (OidIsValid(runas))
		SetUserIdAndSecContext(runas, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);

	/* prepared plan kept for the runs; the inspection's plan rolled back */
	if (c.error == NULL)
		bt_check_step(&c, bt_check_prepare, true);
	bt_check_runs(&c);
	if (c.error == NULL)
		bt_check_step(&c, bt_check_plan, false);

	SetUserIdAndSecContext(save_userid, save_sec);
	AtEOXact_GUC(false, nestlevel);

	bt_check_put_row(rsinfo, &c);
}

/*
 * check(name text DEFAULT NULL, runs integer DEFAULT 3) returns setof
 * (name, runs, times_ms, within_budget, budget_ms, percentile, observed_ms,
 * timeouts, outcome, indexes, indexes_used, plan_indexes)
 */
Datum
bt_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *only = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			runs = PG_ARGISNULL(1) ? 3 : PG_GETARG_INT32(1);
	List	   *rows;
	ListCell   *lc;

	if (runs < 1 || runs > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("runs must be between 1 and 1000, not %d", runs)));

	bt_init_srf(fcinfo);
	rows = bt_watch_sync(only, true);

	SPI_connect();
	foreach(lc, rows)
		bt_check_one(rsinfo, lfirst(lc), runs);
	SPI_finish();

	return (Datum) 0;
}
