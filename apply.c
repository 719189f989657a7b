/*-------------------------------------------------------------------------
 *
 * apply.c
 *		The SQL face of the builder: advise() and CALL apply().
 *
 * advise() is a plain set-returning function: it only reads the catalogs.
 *
 * apply() is a procedure because it must wait for concurrent index builds,
 * and such a build waits for every transaction holding a snapshot older
 * than its own, the caller's included.  A function called from SELECT
 * holds the statement's snapshot for as long as it runs, so it could only
 * deadlock (DESIGN.md, "two traps").  The procedure instead connects to SPI
 * in non-atomic mode, commits before each build, drops the catalog
 * snapshot, and waits holding none.  Inside a transaction block (or a
 * function) it cannot commit, so it refuses at once with an error rather
 * than hang.
 *
 * Each outcome is reported as a NOTICE when it is known and stored in
 * bingo_tune.events under one run number, which the last_apply view shows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "bingo_tune.h"

PG_FUNCTION_INFO_V1(bt_advise);
PG_FUNCTION_INFO_V1(bt_apply);

static char *bt_join_names(List *names);

/*
 * "a, b, c" from a List of C strings.
 */
static char *
bt_join_names(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, (char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * advise() returns setof (statements text[], table_name text,
 *						   definition text, index_name text, state text,
 *						   est_size_bytes bigint, size_bytes bigint)
 */
Datum
bt_advise(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *wanted;
	ListCell   *lc;

	bt_init_srf(fcinfo);

	wanted = bt_catalog_wanted_indexes(NULL);
	foreach(lc, wanted)
	{
		BtWantedIndex *want = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};
		double		est;
		Datum	   *names;
		int			n = 0;
		ListCell   *lc2;
		Oid			relid;
		Oid			found;
		BtIndexState state;
		char	   *found_name = NULL;

		names = palloc(sizeof(Datum) * list_length(want->statements));
		foreach(lc2, want->statements)
			names[n++] = CStringGetTextDatum((char *) lfirst(lc2));

		state = bt_index_state(want->def, &relid, &found);
		if (OidIsValid(found))
			found_name = get_rel_name(found);

		values[0] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
		values[1] = CStringGetTextDatum(bt_indexdef_qualified_table(want->def));
		values[2] = CStringGetTextDatum(want->canonical);
		values[3] = CStringGetTextDatum(found_name ? found_name : want->name);
		values[4] = CStringGetTextDatum(bt_index_state_name(state));
		/* its size: estimated from the statistics, measured once present */
		est = OidIsValid(relid) ? bt_index_estimate_size(want->def, relid) : -1;
		if (est >= 0)
			values[5] = Int64GetDatum((int64) est);
		else
			nulls[5] = true;
		if (state == BT_INDEX_PRESENT && OidIsValid(found))
			values[6] = DirectFunctionCall2(pg_relation_size, ObjectIdGetDatum(found),
											CStringGetTextDatum("main"));
		else
			nulls[6] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* One apply() run: its number and how many indexes ended each way. */
typedef struct BtApplyRun
{
	int64		run;
	int			counts[BT_BUILD_YIELDED + 1];
} BtApplyRun;

/*
 * Before a build: an index present or a table not found needs none; else
 * commit, so that the build waits holding no snapshot.
 */
static BtJobStep
bt_apply_prepare(BtBuildJob *job, BtBuildResult *res, void *arg)
{
	Oid			relid;
	Oid			found;
	BtIndexState state = bt_index_state(job->want->def, &relid, &found);

	if (state == BT_INDEX_PRESENT || state == BT_INDEX_NO_TABLE)
	{
		const char *name = OidIsValid(found) ? get_rel_name(found) : NULL;

		res->outcome = state == BT_INDEX_PRESENT ? BT_BUILD_PRESENT : BT_BUILD_NO_TABLE;
		strlcpy(res->index_name, name ? name : job->want->name, NAMEDATALEN);
		if (state == BT_INDEX_NO_TABLE)
			strlcpy(res->detail, "no table", BT_DETAIL_MAXLEN);
		return BT_JOB_SKIP;
	}
	SPI_commit();
	return BT_JOB_BUILD;
}

/*
 * After a build (or a skip): count it, report it as a NOTICE and store it
 * under the run's number.
 */
static void
bt_apply_done(BtBuildJob *job, const BtBuildResult *res, bool built,
			  double seconds, void *arg)
{
	BtApplyRun *ar = arg;
	char	   *table = bt_indexdef_qualified_table(job->want->def);
	const char *outcome = bt_build_outcome_name(res->outcome);

	ar->counts[res->outcome]++;
	if (res->outcome == BT_BUILD_FAILED || res->outcome == BT_BUILD_NO_TABLE ||
		res->outcome == BT_BUILD_YIELDED)
		ereport(NOTICE,
				(errmsg("%s on %s: %s: %s", res->index_name, table, outcome, res->detail)));
	else if (!built)
		ereport(NOTICE,
				(errmsg("%s on %s: %s", res->index_name, table, outcome)));
	else
		ereport(NOTICE,
				(errmsg("%s on %s: %s in %.2f s", res->index_name, table, outcome,
						res->seconds)));
	bt_record_event("apply", job->statements, outcome, res->index_name, seconds,
					res->detail, NULL, &ar->run);
}

/*
 * CALL apply(statement text DEFAULT NULL)
 */
Datum
bt_apply(PG_FUNCTION_ARGS)
{
	char	   *only = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *jobs = NIL;
	ListCell   *lc;
	bool		isnull;
	BtApplyRun	ar = {0};
	BtBuildLoop loop = {bt_apply_prepare, bt_apply_done, &ar};

	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("bingo_tune.apply() cannot run inside a transaction block"),
				 errdetail("A concurrent index build waits for every older snapshot, the caller's included, "
						   "so apply() commits before each build and waits holding none."),
				 errhint("Run CALL bingo_tune.apply(); on its own, outside BEGIN ... COMMIT and not from a function.")));

	bt_require_preload("bingo_tune.apply()");

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot build indexes on a standby"),
				 errhint("Run CALL bingo_tune.apply() on the primary; the indexes it builds replicate to the standbys.")));

	SPI_connect_ext(SPI_OPT_NONATOMIC);

	/*
	 * These statements run with the caller's search_path: every function
	 * and operator is named with its schema, so that one the caller's path
	 * reaches first (a nextval(text) in the application's schema) cannot
	 * stand in for it.
	 */
	if (SPI_execute("SELECT pg_catalog.nextval('bingo_tune.apply_run'::pg_catalog.regclass)",
					false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not get an apply run number");
	ar.run = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/* allocated in the SPI procedure context, which outlives our commits */
	foreach(lc, bt_catalog_wanted_indexes(only))
	{
		BtBuildJob *job = palloc(sizeof(BtBuildJob));

		job->want = lfirst(lc);
		job->statements = bt_join_names(job->want->statements);
		jobs = lappend(jobs, job);
	}
	bt_build_each(jobs, &loop);

	SPI_finish();

	ereport(NOTICE,
			(errmsg("apply: %d created, %d rebuilt, %d already present, %d skipped, %d failed%s",
					ar.counts[BT_BUILD_CREATED], ar.counts[BT_BUILD_REBUILT], ar.counts[BT_BUILD_PRESENT],
					ar.counts[BT_BUILD_NO_TABLE], ar.counts[BT_BUILD_FAILED],
					ar.counts[BT_BUILD_YIELDED] > 0 ?
					psprintf(", %d yielded to the application's DDL (run apply again)",
							 ar.counts[BT_BUILD_YIELDED]) : ""),
			 errhint("SELECT * FROM bingo_tune.last_apply shows each index's outcome.")));
	PG_RETURN_VOID();
}
