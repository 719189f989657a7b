/*-------------------------------------------------------------------------
 *
 * builder.c
 *		CREATE INDEX CONCURRENTLY from inside the server.
 *
 * CREATE INDEX CONCURRENTLY refuses to run inside a transaction block, so
 * neither SPI nor a SQL function can issue it.  The builder is a dynamic
 * background worker that runs it as a top-level statement through an
 * unnamed portal, the way the server runs a simple query, letting the
 * command manage its own transactions.
 *
 * Whoever starts a build waits for it in bt_build_index().  The build waits
 * for every transaction holding a snapshot older than its own, so the
 * waiter must hold none (DESIGN.md, "two traps"); callers are the watcher's
 * loop (outside any transaction) and the apply() procedure (right after a
 * commit).  lock_timeout bounds those waits too, so the worker sets it from
 * bingo_tune.build_lock_timeout, which is generous by default.
 *
 * Shared state: BT_MAX_BUILDS slots, one per build in flight or recently
 * finished, under one LWLock.  A slot is claimed by the waiter (STARTING),
 * taken over by the worker (RUNNING) and closed by the worker (DONE) with
 * the outcome.  Only one build of a given index in a given database runs at
 * a time: a second caller waits on the first one's slot.  A generation
 * counter tells a waiter that a slot it was watching was reused.
 *
 * A build that fails leaves an invalid index behind; the worker drops it
 * (DROP INDEX CONCURRENTLY) before reporting the failure, and any build
 * first drops invalid leftovers equivalent to the index it builds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bingo_tune.h"

typedef enum BtSlotState
{
	BT_SLOT_FREE = 0,
	BT_SLOT_STARTING,			/* claimed, worker not yet running */
	BT_SLOT_RUNNING,			/* worker is building */
	BT_SLOT_DONE				/* outcome is final */
} BtSlotState;

typedef struct BtBuildSlot
{
	BtSlotState state;
	uint32		generation;
	Oid			dboid;
	int			pid;			/* worker's pid while RUNNING */
	TimestampTz started;
	TimestampTz finished;
	BtBuildOutcome outcome;
	char		index_name[NAMEDATALEN];
	char		canonical[BT_DEF_MAXLEN];
	char		detail[BT_DETAIL_MAXLEN];
} BtBuildSlot;

typedef struct BtBuilderShared
{
	LWLock	   *lock;
	BtBuildSlot slots[BT_MAX_BUILDS];
} BtBuilderShared;

/*---- Local state ----*/

static BtBuilderShared *bt_builder = NULL;

/* in the worker: which slot and generation it serves */
static int	bt_my_slot = -1;
static uint32 bt_my_generation = 0;

static void bt_run_toplevel(const char *sql, MemoryContext cxt);
static void bt_drop_leftovers(const BtIndexDef *def, MemoryContext cxt);
static void bt_builder_finish(BtBuildOutcome outcome, const char *detail);
static void bt_builder_on_exit(int code, Datum arg);

Size
bt_builder_shmem_size(void)
{
	return MAXALIGN(sizeof(BtBuilderShared));
}

void
bt_builder_shmem_init(void)
{
	bool		found;

	bt_builder = ShmemInitStruct("bingo_tune builder", bt_builder_shmem_size(), &found);
	if (!found)
	{
		memset(bt_builder, 0, sizeof(BtBuilderShared));
		bt_builder->lock = &(GetNamedLWLockTranche("bingo_tune"))->lock;
	}
}

const char *
bt_build_outcome_name(BtBuildOutcome outcome)
{
	switch (outcome)
	{
		case BT_BUILD_CREATED:
			return "created";
		case BT_BUILD_REBUILT:
			return "rebuilt";
		case BT_BUILD_PRESENT:
			return "already present";
		case BT_BUILD_NO_TABLE:
			return "skipped";
		case BT_BUILD_FAILED:
			return "failed";
	}
	return "unknown";
}

/*
 * Claim a slot for (dboid, name), or find the build of it already running.
 * Returns the slot index, or -1 if every slot is busy.  *joined tells
 * whether we found someone else's build.
 */
static int
bt_claim_slot(Oid dboid, const char *name, const char *canonical, bool *joined)
{
	int			best = -1;

	*joined = false;
	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	for (int i = 0; i < BT_MAX_BUILDS; i++)
	{
		BtBuildSlot *s = &bt_builder->slots[i];

		if ((s->state == BT_SLOT_STARTING || s->state == BT_SLOT_RUNNING) &&
			s->dboid == dboid && strcmp(s->index_name, name) == 0)
		{
			*joined = true;
			LWLockRelease(bt_builder->lock);
			return i;
		}
		if (s->state == BT_SLOT_FREE)
		{
			if (best < 0 || bt_builder->slots[best].state != BT_SLOT_FREE)
				best = i;
		}
		else if (s->state == BT_SLOT_DONE &&
				 (best < 0 || (bt_builder->slots[best].state == BT_SLOT_DONE &&
							   s->finished < bt_builder->slots[best].finished)))
			best = i;
	}
	if (best >= 0)
	{
		BtBuildSlot *s = &bt_builder->slots[best];

		s->state = BT_SLOT_STARTING;
		s->generation++;
		s->dboid = dboid;
		s->pid = 0;
		s->started = GetCurrentTimestamp();
		s->finished = 0;
		s->outcome = BT_BUILD_FAILED;
		strlcpy(s->index_name, name, NAMEDATALEN);
		strlcpy(s->canonical, canonical, BT_DEF_MAXLEN);
		s->detail[0] = '\0';
	}
	LWLockRelease(bt_builder->lock);
	return best;
}

/*
 * Close a slot from the waiter's side (worker never started or vanished).
 */
static void
bt_fail_slot(int idx, uint32 generation, const char *detail)
{
	BtBuildSlot *s = &bt_builder->slots[idx];

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	if (s->generation == generation && s->state != BT_SLOT_DONE)
	{
		s->state = BT_SLOT_DONE;
		s->outcome = BT_BUILD_FAILED;
		s->finished = GetCurrentTimestamp();
		strlcpy(s->detail, detail, BT_DETAIL_MAXLEN);
	}
	LWLockRelease(bt_builder->lock);
}

static BackgroundWorkerHandle *
bt_launch_worker(int idx, uint32 generation)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "bingo_tune", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "bt_builder_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "bingo_tune builder");
	snprintf(worker.bgw_type, BGW_MAXLEN, "bingo_tune builder");
	worker.bgw_main_arg = Int32GetDatum(idx);
	memcpy(worker.bgw_extra, &generation, sizeof(generation));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

void
bt_build_index(Oid dboid, const char *canonical, BtBuildResult *result)
{
	BtIndexDef *def = bt_indexdef_parse(canonical, NULL);
	char	   *name = bt_indexdef_name(def);
	BackgroundWorkerHandle *volatile handle = NULL;
	int			idx;
	uint32		generation;
	bool		joined;

	bt_require_preload("building an index");

	memset(result, 0, sizeof(*result));
	strlcpy(result->index_name, name, NAMEDATALEN);

	/* wait for a free slot; builds are few and short compared to this */
	for (;;)
	{
		idx = bt_claim_slot(dboid, name, canonical, &joined);
		if (idx >= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	generation = bt_builder->slots[idx].generation;

	if (!joined)
	{
		handle = bt_launch_worker(idx, generation);
		if (handle == NULL)
		{
			bt_fail_slot(idx, generation,
						 "no background worker slot free: raise max_worker_processes");
		}
	}

	PG_TRY();
	{
		for (;;)
		{
			BtBuildSlot *s = &bt_builder->slots[idx];
			bool		done = false;
			int			pid = 0;
			BtSlotState state;

			LWLockAcquire(bt_builder->lock, LW_SHARED);
			if (s->generation != generation)
			{
				/* reused: the build we watched is long over */
				result->outcome = BT_BUILD_FAILED;
				strlcpy(result->detail, "lost track of the build; run again to see its outcome",
						BT_DETAIL_MAXLEN);
				done = true;
			}
			else if (s->state == BT_SLOT_DONE)
			{
				result->outcome = s->outcome;
				strlcpy(result->detail, s->detail, BT_DETAIL_MAXLEN);
				result->seconds = (double) (s->finished - s->started) / USECS_PER_SEC;
				done = true;
			}
			state = s->state;
			pid = s->pid;
			LWLockRelease(bt_builder->lock);
			if (done)
				break;

			if (handle != NULL)
			{
				pid_t		wpid;

				if (GetBackgroundWorkerPid(handle, &wpid) == BGWH_STOPPED)
				{
					/* it may have closed the slot just before exiting */
					bt_fail_slot(idx, generation, "the builder exited before finishing");
					continue;
				}
			}
			else if (state == BT_SLOT_RUNNING && pid != 0 && BackendPidGetProc(pid) == NULL)
			{
				bt_fail_slot(idx, generation, "the builder exited before finishing");
				continue;
			}

			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 200L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		/* cancelled while waiting: stop the build we started */
		if (handle != NULL)
			TerminateBackgroundWorker(handle);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* the report keeps the served statements' figures from before the build */
	if (result->outcome == BT_BUILD_CREATED || result->outcome == BT_BUILD_REBUILT)
		bt_stats_index_built(dboid, canonical, result->index_name);
}

/*
 * Run one utility statement the way a client's simple query would run it:
 * parsed, wrapped in an unnamed portal and run as a top-level statement,
 * in a transaction of its own.  Allocations go to cxt, which survives the
 * commits CREATE/DROP INDEX CONCURRENTLY make along the way.
 */
static void
bt_run_toplevel(const char *sql, MemoryContext cxt)
{
	List	   *parsetrees;
	RawStmt    *raw;
	List	   *querytrees;
	List	   *plantrees;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;
	int16		format = 0;
	MemoryContext oldcxt;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, sql);
	oldcxt = MemoryContextSwitchTo(cxt);

	parsetrees = pg_parse_query(sql);
	if (list_length(parsetrees) != 1)
		elog(ERROR, "builder expected one statement, got %d", list_length(parsetrees));
	raw = linitial_node(RawStmt, parsetrees);
#if PG_VERSION_NUM >= 150000
	querytrees = pg_analyze_and_rewrite_fixedparams(raw, sql, NULL, 0, NULL);
#else
	querytrees = pg_analyze_and_rewrite(raw, sql, NULL, 0, NULL);
#endif
	plantrees = pg_plan_queries(querytrees, sql, CURSOR_OPT_PARALLEL_OK, NULL);

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, CreateCommandTag(raw->stmt), plantrees, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	PortalSetResultFormat(portal, 1, &format);
	receiver = CreateDestReceiver(DestNone);
	(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);

	MemoryContextSwitchTo(oldcxt);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Drop every invalid index equivalent to def, concurrently.  Returns with
 * no transaction open.
 */
static void
bt_drop_leftovers(const BtIndexDef *def, MemoryContext cxt)
{
	List	   *names = NIL;
	ListCell   *lc;
	Oid			relid;
	Oid			found;

	StartTransactionCommand();
	if (bt_index_state(def, &relid, &found) == BT_INDEX_INVALID)
	{
		List	   *oids = bt_invalid_equivalents(def, relid);

		foreach(lc, oids)
		{
			Oid			ioid = lfirst_oid(lc);
			char	   *nsp = get_namespace_name(get_rel_namespace(ioid));
			char	   *rel = get_rel_name(ioid);
			MemoryContext old;

			if (nsp == NULL || rel == NULL)
				continue;
			old = MemoryContextSwitchTo(cxt);
			names = lappend(names, psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
											quote_qualified_identifier(nsp, rel)));
			MemoryContextSwitchTo(old);
		}
	}
	CommitTransactionCommand();

	foreach(lc, names)
	{
		const char *sql = lfirst(lc);

		ereport(LOG,
				(errmsg("bingo_tune: dropping invalid index left by a failed build: %s", sql)));
		bt_run_toplevel(sql, cxt);
	}
}

/*
 * Close our slot with the outcome and wake whoever waits.
 */
static void
bt_builder_finish(BtBuildOutcome outcome, const char *detail)
{
	BtBuildSlot *s = &bt_builder->slots[bt_my_slot];

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	if (s->generation == bt_my_generation && s->state != BT_SLOT_DONE)
	{
		s->state = BT_SLOT_DONE;
		s->outcome = outcome;
		s->finished = GetCurrentTimestamp();
		strlcpy(s->detail, detail ? detail : "", BT_DETAIL_MAXLEN);
	}
	LWLockRelease(bt_builder->lock);
}

static void
bt_builder_on_exit(int code, Datum arg)
{
	if (bt_my_slot >= 0)
		bt_builder_finish(BT_BUILD_FAILED, "the builder was stopped before finishing");
}

/*
 * Entry point of a builder worker.
 */
void
bt_builder_main(Datum main_arg)
{
	BtBuildSlot *s;
	Oid			dboid;
	char		canonical[BT_DEF_MAXLEN];
	MemoryContext cxt;
	BtIndexDef *def;
	BtIndexState state;
	Oid			relid;
	Oid			found;
	BtBuildOutcome outcome;
	char	   *create_sql;
	char		buf[32];

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	bt_my_slot = DatumGetInt32(main_arg);
	memcpy(&bt_my_generation, MyBgworkerEntry->bgw_extra, sizeof(uint32));
	if (bt_builder == NULL || bt_my_slot < 0 || bt_my_slot >= BT_MAX_BUILDS)
		proc_exit(0);

	s = &bt_builder->slots[bt_my_slot];
	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	if (s->generation != bt_my_generation || s->state != BT_SLOT_STARTING)
	{
		LWLockRelease(bt_builder->lock);
		bt_my_slot = -1;
		proc_exit(0);
	}
	s->state = BT_SLOT_RUNNING;
	s->pid = MyProcPid;
	dboid = s->dboid;
	strlcpy(canonical, s->canonical, BT_DEF_MAXLEN);
	LWLockRelease(bt_builder->lock);

	before_shmem_exit(bt_builder_on_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/* a safe search_path, and waits bounded only as the operator chose */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	snprintf(buf, sizeof(buf), "%d", bt_build_lock_timeout);
	SetConfigOption("lock_timeout", buf, PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	if (bt_build_maintenance_work_mem >= 0)
	{
		snprintf(buf, sizeof(buf), "%d", bt_build_maintenance_work_mem);
		SetConfigOption("maintenance_work_mem", buf, PGC_SUSET, PGC_S_OVERRIDE);
	}

	cxt = AllocSetContextCreate(TopMemoryContext, "bingo_tune builder",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	def = bt_indexdef_parse(canonical, NULL);
	create_sql = bt_indexdef_create_sql(def);

	StartTransactionCommand();
	state = bt_index_state(def, &relid, &found);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	if (state == BT_INDEX_PRESENT || state == BT_INDEX_NO_TABLE)
	{
		bt_builder_finish(state == BT_INDEX_PRESENT ? BT_BUILD_PRESENT : BT_BUILD_NO_TABLE,
						  state == BT_INDEX_PRESENT ? "" : "no table");
		bt_my_slot = -1;
		proc_exit(0);
	}

	outcome = (state == BT_INDEX_INVALID) ? BT_BUILD_REBUILT : BT_BUILD_CREATED;

	PG_TRY();
	{
		if (state == BT_INDEX_INVALID)
			bt_drop_leftovers(def, cxt);
		ereport(LOG, (errmsg("bingo_tune: building index: %s", create_sql)));
		bt_run_toplevel(create_sql, cxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char		detail[BT_DETAIL_MAXLEN];

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		strlcpy(detail, edata->message, sizeof(detail));
		ereport(LOG,
				(errmsg("bingo_tune: index build failed: %s", create_sql),
				 errdetail("%s", edata->message)));

		/* leave no invalid index behind; the next attempt rebuilds anyway */
		PG_TRY();
		{
			bt_drop_leftovers(def, cxt);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			AbortCurrentTransaction();
			ereport(LOG,
					(errmsg("bingo_tune: could not drop the invalid index left by the failed build of \"%s\"",
							bt_indexdef_name(def))));
		}
		PG_END_TRY();

		bt_builder_finish(BT_BUILD_FAILED, detail);
		bt_my_slot = -1;
		proc_exit(0);
	}
	PG_END_TRY();

	bt_builder_finish(outcome, "");
	bt_my_slot = -1;
	proc_exit(0);
}
