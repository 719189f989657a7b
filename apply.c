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

/*
 * Store one outcome in bingo_tune.events.
 */
static void
bt_apply_record(int64 run, BtWantedIndex *want, const char *action,
				const char *index_name, double seconds, const char *detail)
{
	Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID, TEXTOID, INT8OID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			ret;

	args[0] = CStringGetTextDatum(bt_join_names(want->statements));
	args[1] = CStringGetTextDatum(action);
	args[2] = CStringGetTextDatum(index_name);
	args[3] = Float8GetDatum(seconds);
	if (seconds < 0)
		nulls[3] = 'n';
	args[4] = CStringGetTextDatum(detail ? detail : "");
	if (detail == NULL || detail[0] == '\0')
		nulls[4] = 'n';
	args[5] = Int64GetDatum(run);

	ret = SPI_execute_with_args("INSERT INTO bingo_tune.events"
								" (statement, action, index_name, duration, detail, source, run)"
								" VALUES ($1, $2, $3, $4 OPERATOR(pg_catalog.*) interval '1 second', $5, 'apply', $6)",
								6, argtypes, args, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record in bingo_tune.events: %s", SPI_result_code_string(ret));
}

/*
 * CALL apply(statement text DEFAULT NULL)
 */
Datum
bt_apply(PG_FUNCTION_ARGS)
{
	char	   *only = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *wanted;
	ListCell   *lc;
	int64		run;
	bool		isnull;
	int			counts[BT_BUILD_YIELDED + 1] = {0};

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
	run = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	/* allocated in the SPI procedure context, which outlives our commits */
	wanted = bt_catalog_wanted_indexes(only);

	foreach(lc, wanted)
	{
		BtWantedIndex *want = lfirst(lc);
		char	   *table = bt_indexdef_qualified_table(want->def);
		Oid			relid;
		Oid			found;
		BtIndexState state = bt_index_state(want->def, &relid, &found);
		BtBuildResult res;

		if (state == BT_INDEX_PRESENT || state == BT_INDEX_NO_TABLE)
		{
			const char *name = OidIsValid(found) ? get_rel_name(found) : want->name;
			BtBuildOutcome outcome = state == BT_INDEX_PRESENT ? BT_BUILD_PRESENT : BT_BUILD_NO_TABLE;

			counts[outcome]++;
			ereport(NOTICE,
					(errmsg("%s on %s: %s", name, table,
							state == BT_INDEX_PRESENT ? "already present" : "skipped: no table")));
			bt_apply_record(run, want, bt_build_outcome_name(outcome), name, -1,
							state == BT_INDEX_PRESENT ? NULL : "no table");
			continue;
		}

		/* hold no snapshot while the build runs: commit, forget the catalog one */
		SPI_commit();
		InvalidateCatalogSnapshot();

		bt_build_index(MyDatabaseId, want->canonical, &res);
		counts[res.outcome]++;

		if (res.outcome == BT_BUILD_FAILED || res.outcome == BT_BUILD_NO_TABLE ||
			res.outcome == BT_BUILD_YIELDED)
			ereport(NOTICE,
					(errmsg("%s on %s: %s: %s", res.index_name, table,
							res.outcome == BT_BUILD_NO_TABLE ? "skipped" :
							bt_build_outcome_name(res.outcome),
							res.detail)));
		else
			ereport(NOTICE,
					(errmsg("%s on %s: %s in %.2f s", res.index_name, table,
							bt_build_outcome_name(res.outcome), res.seconds)));
		bt_apply_record(run, want, bt_build_outcome_name(res.outcome), res.index_name,
						res.outcome == BT_BUILD_PRESENT || res.outcome == BT_BUILD_NO_TABLE ? -1 : res.seconds,
						res.detail);
	}

	SPI_finish();

	ereport(NOTICE,
			(errmsg("apply: %d created, %d rebuilt, %d already present, %d skipped, %d failed%s",
					counts[BT_BUILD_CREATED], counts[BT_BUILD_REBUILT], counts[BT_BUILD_PRESENT],
					counts[BT_BUILD_NO_TABLE], counts[BT_BUILD_FAILED],
					counts[BT_BUILD_YIELDED] > 0 ?
					psprintf(", %d yielded to the application's DDL (run apply again)",
							 counts[BT_BUILD_YIELDED]) : ""),
			 errhint("SELECT * FROM bingo_tune.last_apply shows each index's outcome.")));
	PG_RETURN_VOID();
}
