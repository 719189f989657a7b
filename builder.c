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
 * waiter must hold none (DESIGN.md, "two traps"); the one caller is the
 * build loop, bt_build_each(), of the watcher and its discovery (outside
 * any transaction) and of the apply() procedure (right after a commit).  lock_timeout
 * bounds those waits too, so the worker sets it from
 * bingo_tune.build_lock_timeout, which is generous by default.
 *
 * Shared state: BT_MAX_BUILDS slots, one per build in flight or recently
 * finished, under one LWLock.  A slot is claimed by the waiter (STARTING),
 * taken over by the worker (RUNNING) and closed by the worker (DONE) with
 * the outcome.  A build is identified by its database and its canonical
 * definition (schema-qualified table and columns), never by the index
 * name: only one build of a given index in a given database runs at a
 * time, and a second caller waits on the first one's slot.  Builds on the
 * same table run one after the other (two concurrent builds on one table
 * can deadlock each other).  A generation counter tells a waiter that a
 * slot it was watching was reused.  The index name is chosen by the worker
 * and is unique in the table's schema: the deterministic name, or, when a
 * relation that is not an equivalent index already has it (or another
 * build uses it), the same cut short with a hash of the definition.
 *
 * A build that fails leaves an invalid index behind; the worker drops it
 * (DROP INDEX CONCURRENTLY) before reporting the failure, and any build
 * first drops invalid leftovers equivalent to the index it builds.  An
 * invalid equivalent that someone is still building (a DBA's own CREATE
 * INDEX CONCURRENTLY) is not a leftover: the worker waits for that build
 * and reports the index present if it succeeds.
 *
 * Builds yield to the application's DDL, as autovacuum does.  The build
 * holds a ShareUpdateExclusiveLock on its table for as long as it runs, and
 * waits for older transactions; DDL waiting for the table's lock while the
 * build waits for the DDL's transaction is a deadlock the server would
 * break by cancelling either side.  So (1) the utility hook calls
 * bt_builder_yield_for() before DROP / ALTER / TRUNCATE / REINDEX of a
 * table runs: it cancels a running build on that table and waits for the
 * worker to let go of its lock; and (2) whoever waits for a build looks in
 * the lock manager, every BT_YIELD_CHECK_MS, for a process waiting for a
 * lock on the build's table that conflicts with the build's (DDL the hook
 * cannot see: DROP SCHEMA ... CASCADE, DROP OWNED, LOCK TABLE, VACUUM
 * FULL), and cancels the build likewise.  A build cancelled that way ends
 * as "yielded": the worker waits (briefly, BT_YIELD_CLEANUP_MS) for the
 * DDL's transaction to end and for the table to be free, drops its invalid
 * leftover then (if the table is still there), else leaves it to the next
 * attempt, which drops leftovers first; the watcher retries after its
 * backoff, apply() reports it.
 *
 * A caller that stops waiting (CALL apply() cancelled, the watcher stopped)
 * cancels the build it started; the worker drops what it left, and the
 * caller gives it up to BT_CANCEL_WAIT_MS to do so before it returns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "bingo_tune.h"

/* How often a waiter looks for lock requests its build must yield to. */
#define BT_YIELD_CHECK_MS		200
/* How long the utility hook waits for a cancelled build to let go. */
#define BT_YIELD_WAIT_MS		5000
/* How long a yielded worker waits for the DDL to end to drop its leftover. */
#define BT_YIELD_CLEANUP_MS		10000
/* How long a cancelled caller waits for the worker to clean up. */
#define BT_CANCEL_WAIT_MS		5000
/* How often a worker looks again at someone else's build it waits for. */
#define BT_OTHER_BUILD_POLL_MS	500

#define BT_WHY_MAXLEN			64

typedef enum BtSlotState
{
	BT_SLOT_FREE = 0,
	BT_SLOT_STARTING,			/* claimed, worker not yet running */
	BT_SLOT_RUNNING,			/* worker is building */
	BT_SLOT_DONE				/* outcome is final */
} BtSlotState;

typedef enum BtCancel
{
	BT_CANCEL_NONE = 0,
	BT_CANCEL_STOP,				/* the caller stopped waiting */
	BT_CANCEL_YIELD				/* a session needs the table */
} BtCancel;

typedef struct BtBuildSlot
{
	BtSlotState state;
	uint32		generation;
	Oid			dboid;
	Oid			relid;			/* the table, once the worker found it */
	int			pid;			/* worker's pid while RUNNING */
	bool		locked;			/* worker runs a statement locking the table */
	bool		cleaning;		/* worker drops its leftover after yielding */
	BtCancel	cancel;
	int			yield_pid;		/* the process the build yields to */
	VirtualTransactionId yield_vxid;	/* and its transaction */
	char		yield_why[BT_WHY_MAXLEN];
	TimestampTz started;
	TimestampTz finished;
	BtBuildOutcome outcome;
	char		schema[NAMEDATALEN];
	char		table[NAMEDATALEN];
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

/* in a waiter: the build it started and waits for, cancelled on exit */
static int	bt_waited_slot = -1;
static uint32 bt_waited_generation = 0;
static bool bt_waiter_exit_registered = false;

static void bt_run_toplevel(const char *sql, MemoryContext cxt);
static void bt_drop_leftovers(const BtIndexDef *def, MemoryContext cxt);
static void bt_builder_finish(BtBuildOutcome outcome, const char *detail);
static void bt_builder_on_exit(int code, Datum arg);
static void bt_waiter_on_exit(int code, Datum arg);
static void bt_cancel_build(int idx, uint32 generation, BtCancel why);
static bool bt_request_yield(int idx, uint32 generation, int pid, const char *why);
static int	bt_table_lock_waiter(Oid dboid, Oid relid, LOCKMODE *mode);
static void bt_set_locked(bool locked);
static void bt_yield_cleanup(const BtIndexDef *def, Oid relid,
							 VirtualTransactionId vxid, MemoryContext cxt);
static void bt_failure_cleanup(const BtIndexDef *def, MemoryContext cxt);
static bool bt_build_over(Oid dboid, int idx, uint32 generation,
						  BackgroundWorkerHandle *handle, BtBuildResult *result);

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
		bt_builder->lock = &(GetNamedLWLockTranche(BT_TRANCHE_BUILDER))->lock;
	}
}

/*
 * The wait event of a wait of ours: named in pg_stat_activity on PostgreSQL
 * 17 and later, "Extension" before.
 */
uint32
bt_wait_event(BtWait which)
{
#if PG_VERSION_NUM >= 170000
	static uint32 events[BT_WAIT_YIELD + 1];
	static const char *const names[BT_WAIT_YIELD + 1] = {
		"BingoTuneNap", "BingoTuneBuild", "BingoTuneYield"
	};

	if (events[which] == 0)
		events[which] = WaitEventExtensionNew(names[which]);
	return events[which];
#else
	return PG_WAIT_EXTENSION;
#endif
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
		case BT_BUILD_YIELDED:
			return "yielded";
	}
	return "unknown";
}

static bool
bt_slot_busy(const BtBuildSlot *s)
{
	return s->state == BT_SLOT_STARTING || s->state == BT_SLOT_RUNNING;
}

/*
 * Claim a slot for (dboid, canonical), or find the build of it already
 * running.  Returns the slot index, or -1 if every slot is busy or another
 * index of the same table is being built (the caller waits and tries
 * again).  *joined tells whether we found someone else's build.
 */
static int
bt_claim_slot(Oid dboid, const BtIndexDef *def, const char *canonical, bool *joined)
{
	int			best = -1;

	*joined = false;
	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	for (int i = 0; i < BT_MAX_BUILDS; i++)
	{
		BtBuildSlot *s = &bt_builder->slots[i];

		if (bt_slot_busy(s) && s->dboid == dboid)
		{
			if (strcmp(s->canonical, canonical) == 0)
			{
				*joined = true;
				LWLockRelease(bt_builder->lock);
				return i;
			}
			if (strcmp(s->schema, def->schema) == 0 && strcmp(s->table, def->table) == 0)
			{
				/* one build per table at a time */
				LWLockRelease(bt_builder->lock);
				return -1;
			}
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
		s->relid = InvalidOid;
		s->pid = 0;
		s->locked = false;
		s->cleaning = false;
		s->cancel = BT_CANCEL_NONE;
		s->yield_pid = 0;
		SetInvalidVirtualTransactionId(s->yield_vxid);
		s->yield_why[0] = '\0';
		s->started = GetCurrentTimestamp();
		s->finished = 0;
		s->outcome = BT_BUILD_FAILED;
		strlcpy(s->schema, def->schema, NAMEDATALEN);
		strlcpy(s->table, def->table, NAMEDATALEN);
		strlcpy(s->index_name, bt_indexdef_name(def), NAMEDATALEN);
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

/*
 * Cancel the build in slot idx (if it is still that generation's): a worker
 * not yet running is told not to start, a running one gets a query cancel
 * and, in its error path, drops what it left.
 */
static void
bt_cancel_build(int idx, uint32 generation, BtCancel why)
{
	BtBuildSlot *s = &bt_builder->slots[idx];
	int			pid = 0;

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	if (s->generation == generation)
	{
		if (s->state == BT_SLOT_STARTING)
		{
			/* the worker sees this and exits without building */
			s->state = BT_SLOT_DONE;
			s->outcome = BT_BUILD_FAILED;
			s->finished = GetCurrentTimestamp();
			strlcpy(s->detail, "cancelled before it started", BT_DETAIL_MAXLEN);
		}
		else if (s->state == BT_SLOT_RUNNING && s->cancel == BT_CANCEL_NONE)
		{
			s->cancel = why;
			pid = s->pid;
		}
	}
	LWLockRelease(bt_builder->lock);
	if (pid != 0)
		(void) kill(pid, SIGINT);
}

/*
 * Ask the build in slot idx to yield to process pid (why says what it
 * runs or waits for).  Returns true if the worker was signalled.  Also
 * interrupts the drop of a leftover after a failure or an earlier yield,
 * which must not hold up new DDL either.
 */
static bool
bt_request_yield(int idx, uint32 generation, int pid, const char *why)
{
	BtBuildSlot *s = &bt_builder->slots[idx];
	VirtualTransactionId vxid;
	PGPROC	   *proc = BackendPidGetProc(pid);
	int			worker = 0;
	bool		cleaning = false;

	SetInvalidVirtualTransactionId(vxid);
	if (proc != NULL)
		GET_VXID_FROM_PGPROC(vxid, *proc);

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	if (s->generation == generation && s->state == BT_SLOT_RUNNING)
	{
		if (s->cancel == BT_CANCEL_NONE)
		{
			s->cancel = BT_CANCEL_YIELD;
			s->yield_pid = pid;
			s->yield_vxid = vxid;
			strlcpy(s->yield_why, why, BT_WHY_MAXLEN);
			worker = s->pid;
		}
		else if (s->cleaning && s->locked)
		{
			s->yield_pid = pid;
			s->yield_vxid = vxid;
			worker = s->pid;
			cleaning = true;
		}
	}
	LWLockRelease(bt_builder->lock);

	if (worker == 0)
		return false;
	ereport(LOG,
			(errmsg("bingo_tune: cancelling the %s of index \"%s\" to let process %d (%s) have its table",
					cleaning ? "drop of the leftover" : "build",
					s->index_name, pid, why)));
	(void) kill(worker, SIGINT);
	return true;
}

/*
 * A process (not a builder) waiting for a lock on table relid of database
 * dboid that conflicts with a build's ShareUpdateExclusiveLock: its pid
 * (and the mode it waits for), or 0.  Reads the lock manager like
 * pg_locks does.
 */
static int
bt_table_lock_waiter(Oid dboid, Oid relid, LOCKMODE *mode)
{
	LockData   *data = GetLockStatusData();
	int			found = 0;

	for (int i = 0; i < data->nelements && found == 0; i++)
	{
		LockInstanceData *inst = &data->locks[i];
		bool		builder = false;

		if (inst->waitLockMode == NoLock ||
			inst->locktag.locktag_type != LOCKTAG_RELATION ||
			inst->locktag.locktag_field1 != dboid ||
			inst->locktag.locktag_field2 != relid ||
			!DoLockModesConflict(inst->waitLockMode, ShareUpdateExclusiveLock))
			continue;
		/* builds on one table wait for each other; they never yield to one */
		LWLockAcquire(bt_builder->lock, LW_SHARED);
		for (int j = 0; j < BT_MAX_BUILDS; j++)
			if (bt_slot_busy(&bt_builder->slots[j]) && bt_builder->slots[j].pid == inst->pid)
				builder = true;
		LWLockRelease(bt_builder->lock);
		if (!builder)
		{
			found = inst->pid;
			*mode = inst->waitLockMode;
		}
	}
	pfree(data->locks);
	pfree(data);
	return found;
}

/*
 * The tables that parsetree, a utility statement, does DDL on: as names
 * (*rels, RangeVars, resolved only if needed) or as OIDs (*relids).
 * *truncate says whether it is a TRUNCATE.  false for any other statement.
 */
static bool
bt_ddl_tables(Node *parsetree, List **rels, List **relids, bool *truncate)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropStmt:
			{
				DropStmt   *stmt = (DropStmt *) parsetree;

				if (stmt->removeType != OBJECT_TABLE)
					return false;
				foreach(lc, stmt->objects)
					*rels = lappend(*rels, makeRangeVarFromNameList(castNode(List, lfirst(lc))));
				return true;
			}
		case T_TruncateStmt:
			*rels = list_copy(((TruncateStmt *) parsetree)->relations);
			*truncate = true;
			return true;
		case T_AlterTableStmt:
			*rels = list_make1(((AlterTableStmt *) parsetree)->relation);
			return true;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->relation == NULL ||
				((RenameStmt *) parsetree)->renameType == OBJECT_INDEX)
				return false;
			*rels = list_make1(((RenameStmt *) parsetree)->relation);
			return true;
		case T_ReindexStmt:
			{
				ReindexStmt *stmt = (ReindexStmt *) parsetree;

				if (stmt->kind == REINDEX_OBJECT_TABLE)
					*rels = list_make1(stmt->relation);
				else if (stmt->kind == REINDEX_OBJECT_INDEX)
				{
					Oid			indoid = RangeVarGetRelid(stmt->relation, NoLock, true);

					if (OidIsValid(indoid))
						*relids = list_make1_oid(IndexGetRelation(indoid, true));
				}
				else
					return false;
				return true;
			}
		default:
			return false;
	}
}

/* Is any build running in this database? */
static bool
bt_any_build_here(void)
{
	bool		any = false;

	LWLockAcquire(bt_builder->lock, LW_SHARED);
	for (int i = 0; i < BT_MAX_BUILDS; i++)
		if (bt_builder->slots[i].state == BT_SLOT_RUNNING &&
			bt_builder->slots[i].dboid == MyDatabaseId)
			any = true;
	LWLockRelease(bt_builder->lock);
	return any;
}

/*
 * May the current user run that DDL on relid: its owner, or for TRUNCATE
 * whoever has the privilege?
 */
static bool
bt_may_ddl(Oid relid, bool truncate)
{
	bool		allowed;

#if PG_VERSION_NUM >= 160000
	allowed = object_ownercheck(RelationRelationId, relid, GetUserId());
#else
	allowed = pg_class_ownercheck(relid, GetUserId());
#endif
	if (!allowed && truncate)
		allowed = pg_class_aclcheck(relid, GetUserId(), ACL_TRUNCATE) == ACLCHECK_OK;
	return allowed;
}

/*
 * Ask every running build on relid in this database to yield to us, for
 * command; adds each one's slot and generation to idxs / gens (*n of them).
 */
static void
bt_yield_builds_on(Oid relid, const char *command, int *idxs, uint32 *gens, int *n)
{
	for (int i = 0; i < BT_MAX_BUILDS; i++)
	{
		BtBuildSlot *s = &bt_builder->slots[i];
		uint32		gen;
		bool		match;

		LWLockAcquire(bt_builder->lock, LW_SHARED);
		match = s->state == BT_SLOT_RUNNING && s->dboid == MyDatabaseId && s->relid == relid;
		gen = s->generation;
		LWLockRelease(bt_builder->lock);
		if (match && *n < BT_MAX_BUILDS)
		{
			(void) bt_request_yield(i, gen, MyProcPid, command);
			idxs[*n] = i;
			gens[*n] = gen;
			(*n)++;
		}
	}
}

/*
 * Wait, at most BT_YIELD_WAIT_MS, until the workers of the n builds asked
 * to yield no longer hold their tables' locks.
 */
static void
bt_wait_let_go(const int *idxs, const uint32 *gens, int n)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), BT_YIELD_WAIT_MS);

	while (n > 0 && GetCurrentTimestamp() < deadline)
	{
		bool		holding = false;

		LWLockAcquire(bt_builder->lock, LW_SHARED);
		for (int k = 0; k < n; k++)
		{
			BtBuildSlot *s = &bt_builder->slots[idxs[k]];

			if (s->generation == gens[k] && s->state == BT_SLOT_RUNNING && s->locked)
				holding = true;
		}
		LWLockRelease(bt_builder->lock);
		if (!holding)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, bt_wait_event(BT_WAIT_YIELD));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Called by the utility hook before a utility statement runs: if it is DDL
 * on tables (DROP TABLE, ALTER TABLE, TRUNCATE, REINDEX) that bingo_tune is
 * building an index on in this database, cancel those builds and wait (at
 * most BT_YIELD_WAIT_MS) until their workers no longer hold the tables'
 * locks, so that the statement neither waits for a build nor deadlocks
 * with one.  Only for a user who may run that statement on the table (its
 * owner; for TRUNCATE, whoever has the privilege): others will get a
 * permission error anyway and cancel nothing.
 */
void
bt_builder_yield_for(Node *parsetree)
{
	List	   *rels = NIL;		/* RangeVars */
	List	   *relids = NIL;
	bool		truncate = false;
	int			idxs[BT_MAX_BUILDS];
	uint32		gens[BT_MAX_BUILDS];
	int			n = 0;
	ListCell   *lc;

	if (bt_builder == NULL || parsetree == NULL || !IsTransactionState())
		return;
	if (!bt_ddl_tables(parsetree, &rels, &relids, &truncate))
		return;

	/* most DDL finds nothing being built: look before resolving names */
	if (!bt_any_build_here())
		return;

	foreach(lc, rels)
	{
		Oid			relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);

		if (OidIsValid(relid))
			relids = lappend_oid(relids, relid);
	}
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);

		if (OidIsValid(relid) && bt_may_ddl(relid, truncate))
			bt_yield_builds_on(relid, CreateCommandName(parsetree), idxs, gens, &n);
	}

	bt_wait_let_go(idxs, gens, n);
}

/*
 * on_exit of a backend that started a build and waits for it: a waiter
 * that is terminated (FATAL skips PG_CATCH) cancels its build too.
 */
static void
bt_waiter_on_exit(int code, Datum arg)
{
	if (bt_waited_slot >= 0 && bt_builder != NULL)
		bt_cancel_build(bt_waited_slot, bt_waited_generation, BT_CANCEL_STOP);
	bt_waited_slot = -1;
}

/*
 * A slot for the build of canonical in dboid: ours, or the one of the same
 * build already running (*joined).  Waits while every slot is busy or the
 * table has another build; builds are few and short compared to this.
 */
static int
bt_wait_for_slot(Oid dboid, const BtIndexDef *def, const char *canonical, bool *joined)
{
	for (;;)
	{
		int			idx = bt_claim_slot(dboid, def, canonical, joined);

		if (idx >= 0)
			return idx;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, bt_wait_event(BT_WAIT_BUILD));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Start the worker of the slot we claimed, and make sure it is cancelled if
 * we stop waiting for it.  Returns its handle, or NULL (the slot is closed
 * as failed) when no worker could start.
 */
static BackgroundWorkerHandle *
bt_start_build(int idx, uint32 generation)
{
	BackgroundWorkerHandle *handle = bt_launch_worker(idx, generation);

	if (handle == NULL)
	{
		bt_fail_slot(idx, generation,
					 "no background worker slot free: raise max_worker_processes");
		return NULL;
	}
	if (!bt_waiter_exit_registered)
	{
		before_shmem_exit(bt_waiter_on_exit, (Datum) 0);
		bt_waiter_exit_registered = true;
	}
	bt_waited_slot = idx;
	bt_waited_generation = generation;
	return handle;
}

/*
 * Look once at the build in slot idx: true, with *result filled in, when it
 * is over.  Notices a worker gone without closing its slot, and, while the
 * build holds its table, asks it to yield to whoever waits for that table.
 */
static bool
bt_build_over(Oid dboid, int idx, uint32 generation,
			  BackgroundWorkerHandle *handle, BtBuildResult *result)
{
	BtBuildSlot *s = &bt_builder->slots[idx];
	bool		done = false;
	int			pid;
	BtSlotState state;
	bool		check_yield;
	Oid			relid;

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
		strlcpy(result->index_name, s->index_name, NAMEDATALEN);
		result->seconds = (double) (s->finished - s->started) / USECS_PER_SEC;
		done = true;
	}
	state = s->state;
	pid = s->pid;
	relid = s->relid;
	check_yield = state == BT_SLOT_RUNNING && s->locked && OidIsValid(relid) &&
		(s->cancel == BT_CANCEL_NONE || s->cleaning);
	LWLockRelease(bt_builder->lock);
	if (done)
		return true;

	if (handle != NULL)
	{
		pid_t		wpid;

		if (GetBackgroundWorkerPid(handle, &wpid) == BGWH_STOPPED)
		{
			/* it may have closed the slot just before exiting */
			bt_fail_slot(idx, generation, "the builder exited before finishing");
			/* the slot is closed now: read its outcome */
			return bt_build_over(dboid, idx, generation, handle, result);
		}
	}
	else if (state == BT_SLOT_RUNNING && pid != 0 && BackendPidGetProc(pid) == NULL)
	{
		bt_fail_slot(idx, generation, "the builder exited before finishing");
		return bt_build_over(dboid, idx, generation, handle, result);
	}

	/* someone waits for the table: the build gives way */
	if (check_yield)
	{
		LOCKMODE	mode = NoLock;
		int			waiter = bt_table_lock_waiter(dboid, relid, &mode);

		if (waiter != 0)
			(void) bt_request_yield(idx, generation, waiter,
									psprintf("waiting for %s",
											 GetLockmodeName(DEFAULT_LOCKMETHOD, mode)));
	}
	return false;
}

/*
 * Cancelled while waiting: cancel the build we started, and give its
 * worker a moment (BT_CANCEL_WAIT_MS) to drop what it left, so that
 * nothing invalid outlives the caller.
 */
static void
bt_stop_build(int idx, uint32 generation, BackgroundWorkerHandle *handle)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   BT_CANCEL_WAIT_MS);

	bt_cancel_build(idx, generation, BT_CANCEL_STOP);
	while (GetCurrentTimestamp() < deadline)
	{
		pid_t		wpid;
		bool		over;

		LWLockAcquire(bt_builder->lock, LW_SHARED);
		over = bt_builder->slots[idx].generation != generation ||
			bt_builder->slots[idx].state == BT_SLOT_DONE;
		LWLockRelease(bt_builder->lock);
		if (over || GetBackgroundWorkerPid(handle, &wpid) == BGWH_STOPPED)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50L, bt_wait_event(BT_WAIT_BUILD));
		ResetLatch(MyLatch);
	}
}

void
bt_build_index(Oid dboid, const char *canonical, BtBuildResult *result)
{
	BtIndexDef *def = bt_indexdef_parse(canonical, NULL);
	BackgroundWorkerHandle *volatile handle = NULL;
	/* set before PG_TRY and read inside it (-Wclobbered, gcc 14) */
	volatile int idx;
	uint32		generation;
	bool		joined;

	bt_require_preload("building an index");

	memset(result, 0, sizeof(*result));
	strlcpy(result->index_name, bt_indexdef_name(def), NAMEDATALEN);

	idx = bt_wait_for_slot(dboid, def, canonical, &joined);
	generation = bt_builder->slots[idx].generation;
	if (!joined)
		handle = bt_start_build(idx, generation);

	PG_TRY();
	{
		while (!bt_build_over(dboid, idx, generation, handle, result))
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 BT_YIELD_CHECK_MS, bt_wait_event(BT_WAIT_BUILD));
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		/* someone else's build we only joined goes on */
		if (handle != NULL)
			bt_stop_build(idx, generation, handle);
		bt_waited_slot = -1;
		PG_RE_THROW();
	}
	PG_END_TRY();
	bt_waited_slot = -1;

	/* the report keeps the served statements' figures from before the build */
	if (result->outcome == BT_BUILD_CREATED || result->outcome == BT_BUILD_REBUILT)
		bt_stats_index_built(dboid, canonical, result->index_name);
}

double
bt_build_seconds(const BtBuildResult *res)
{
	switch (res->outcome)
	{
		case BT_BUILD_CREATED:
		case BT_BUILD_REBUILT:
		case BT_BUILD_FAILED:
		case BT_BUILD_YIELDED:
			return res->seconds;
		case BT_BUILD_PRESENT:
		case BT_BUILD_NO_TABLE:
			break;
	}
	return -1;
}

void
bt_build_each(List *jobs, const BtBuildLoop *loop)
{
	MemoryContext cxt = CurrentMemoryContext;
	ListCell   *lc;

	foreach(lc, jobs)
	{
		BtBuildJob *job = lfirst(lc);
		BtBuildResult res;
		BtJobStep	step;

		memset(&res, 0, sizeof(res));
		step = loop->prepare(job, &res, loop->arg);
		MemoryContextSwitchTo(cxt);
		if (step == BT_JOB_STOP)
			break;
		if (step == BT_JOB_BUILD)
		{
			/* hold no snapshot while the build runs */
			InvalidateCatalogSnapshot();
			bt_build_index(MyDatabaseId, job->want->canonical, &res);
		}
		loop->done(job, &res, step == BT_JOB_BUILD, bt_build_seconds(&res), loop->arg);
		MemoryContextSwitchTo(cxt);
	}
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
#if PG_VERSION_NUM >= 180000
	(void) PortalRun(portal, FETCH_ALL, true, receiver, receiver, &qc);
#else
	(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
#endif
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);

	MemoryContextSwitchTo(oldcxt);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Drop every invalid index equivalent to def that nobody is building,
 * concurrently.  Returns with no transaction open.
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
 * The name our index gets: the deterministic one, unless a relation in the
 * table's schema that we would not drop as a leftover has it, or another
 * build in this database uses it for another definition; then the name
 * with the definition's hash.  Needs a transaction.
 */
static char *
bt_choose_name(const BtIndexDef *def, Oid relid)
{
	char	   *name = bt_indexdef_name(def);
	Oid			nsp = get_rel_namespace(relid);
	Oid			existing = get_relname_relid(name, nsp);
	bool		taken = false;

	if (OidIsValid(existing) &&
		!list_member_oid(bt_invalid_equivalents(def, relid), existing))
		taken = true;

	LWLockAcquire(bt_builder->lock, LW_SHARED);
	for (int i = 0; i < BT_MAX_BUILDS && !taken; i++)
	{
		BtBuildSlot *s = &bt_builder->slots[i];

		if (i != bt_my_slot && bt_slot_busy(s) && s->dboid == MyDatabaseId &&
			strcmp(s->schema, def->schema) == 0 &&
			strcmp(s->index_name, name) == 0)
			taken = true;
	}
	LWLockRelease(bt_builder->lock);

	return taken ? bt_indexdef_name_ext(def, true) : name;
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
		s->locked = false;
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
 * Say whether the worker is about to run (true) or is done running (false)
 * a statement that holds its table's lock: waiters look for DDL to yield to
 * only then.
 */
static void
bt_set_locked(bool locked)
{
	BtBuildSlot *s = &bt_builder->slots[bt_my_slot];

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	if (s->generation == bt_my_generation)
		s->locked = locked;
	LWLockRelease(bt_builder->lock);
}

/*
 * After a failed or cancelled build: drop the invalid index it left.
 */
static void
bt_failure_cleanup(const BtIndexDef *def, MemoryContext cxt)
{
	BtBuildSlot *s = &bt_builder->slots[bt_my_slot];

	/* from now on, new DDL on the table cancels the drop, not a build */
	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	s->cleaning = true;
	LWLockRelease(bt_builder->lock);

	PG_TRY();
	{
		bt_set_locked(true);
		bt_drop_leftovers(def, cxt);
		bt_set_locked(false);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		AbortCurrentTransaction();
		bt_set_locked(false);
		ereport(LOG,
				(errmsg("bingo_tune: could not drop the invalid index left by the failed build of \"%s\"; the next build drops it",
						bt_indexdef_name(def))));
	}
	PG_END_TRY();
}

/*
 * After yielding to process vxid's DDL on table relid: once its transaction
 * is over and the table is free (within BT_YIELD_CLEANUP_MS), drop our
 * leftover, unless the table went away with it.  Never queue behind the
 * DDL: a lock we would hold while the DROP INDEX CONCURRENTLY waits for the
 * DDL's transaction is the deadlock we just avoided.  A leftover we cannot
 * drop now is dropped by the next build, which drops leftovers first.
 */
static void
bt_yield_cleanup(const BtIndexDef *def, Oid relid, VirtualTransactionId vxid,
				 MemoryContext cxt)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   BT_YIELD_CLEANUP_MS);
	BtBuildSlot *s = &bt_builder->slots[bt_my_slot];

	if (!OidIsValid(relid))
		return;

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	s->cleaning = true;
	LWLockRelease(bt_builder->lock);

	for (;;)
	{
		bool		ready = false;
		bool		gone = false;

		StartTransactionCommand();
		if (!VirtualTransactionIdIsValid(vxid) || VirtualXactLock(vxid, false))
		{
			if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
				gone = true;
			else if (ConditionalLockRelationOid(relid, ShareUpdateExclusiveLock))
			{
				ready = true;
				UnlockRelationOid(relid, ShareUpdateExclusiveLock);
			}
		}
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);

		if (gone)
			return;
		if (ready)
			break;
		if (GetCurrentTimestamp() >= deadline)
		{
			ereport(LOG,
					(errmsg("bingo_tune: the table of index \"%s\" is still busy; the next build drops its invalid leftover",
							bt_indexdef_name(def))));
			return;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, bt_wait_event(BT_WAIT_YIELD));
		ResetLatch(MyLatch);
		/* we are in the error path: no error from here, just give up */
		if (ProcDiePending || QueryCancelPending)
		{
			QueryCancelPending = false;
			return;
		}
	}

	bt_failure_cleanup(def, cxt);
}

/*
 * What a builder worker works on.  Allocated in its memory context, so
 * that its error path sees what the build got to.
 */
typedef struct BtBuildWork
{
	MemoryContext cxt;
	const char *canonical;
	BtIndexDef *def;
	BtIndexState state;			/* what exists, once judged */
	Oid			relid;			/* the table, once found */
	char	   *create_sql;		/* once a name is chosen */
} BtBuildWork;

/*
 * Take over the slot of main_arg (the generation in bgw_extra), which the
 * waiter claimed: its database and canonical definition.  Exits if the
 * slot was given up meanwhile.
 */
static Oid
bt_builder_attach(Datum main_arg, char *canonical)
{
	BtBuildSlot *s;
	Oid			dboid;

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
	return dboid;
}

/* A safe search_path, and waits bounded only as the operator chose. */
static void
bt_builder_settings(void)
{
	char		buf[32];

	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	snprintf(buf, sizeof(buf), "%d", bt_build_lock_timeout);
	SetConfigOption("lock_timeout", buf, PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	if (bt_build_maintenance_work_mem >= 0)
	{
		snprintf(buf, sizeof(buf), "%d", bt_build_maintenance_work_mem);
		SetConfigOption("maintenance_work_mem", buf, PGC_SUSET, PGC_S_OVERRIDE);
	}
}

/*
 * Look once at what exists (w->state, w->relid); for an index to build,
 * choose its name (w->create_sql) and publish both in our slot.  Returns
 * the pid of the process building an equivalent index, if one is.
 */
static int
bt_look_at_existing(BtBuildWork *w)
{
	BtBuildSlot *s = &bt_builder->slots[bt_my_slot];
	char	   *name = NULL;
	int			pid = 0;
	Oid			found;

	StartTransactionCommand();
	w->state = bt_index_state(w->def, &w->relid, &found);
	if (w->state == BT_INDEX_BUILDING)
		pid = bt_index_builder_pid(found);
	else if (w->state == BT_INDEX_MISSING || w->state == BT_INDEX_INVALID)
	{
		name = bt_choose_name(w->def, w->relid);
		MemoryContextSwitchTo(w->cxt);
		name = pstrdup(name);
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(w->cxt);

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	s->relid = w->relid;
	if (name != NULL)
		strlcpy(s->index_name, name, NAMEDATALEN);
	LWLockRelease(bt_builder->lock);

	if (name != NULL)
		w->create_sql = bt_indexdef_create_sql_named(w->def, name);
	return pid;
}

/*
 * Judge what exists.  An equivalent index someone is building now (a
 * DBA's own CREATE INDEX CONCURRENTLY) is waited for, never dropped: once
 * it is valid there is nothing to do.
 */
static void
bt_judge_existing(BtBuildWork *w)
{
	TimestampTz since = GetCurrentTimestamp();
	int			other = 0;

	for (;;)
	{
		int			pid = bt_look_at_existing(w);

		if (w->state != BT_INDEX_BUILDING)
			return;
		if (pid != other)
			ereport(LOG,
					(errmsg("bingo_tune: waiting for process %d, which is building an index equivalent to %s",
							pid, w->canonical)));
		other = pid;
		if (bt_build_lock_timeout > 0 &&
			TimestampDifferenceExceeds(since, GetCurrentTimestamp(), bt_build_lock_timeout))
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("gave up waiting for process %d building an equivalent index after bingo_tune.build_lock_timeout",
							pid)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 BT_OTHER_BUILD_POLL_MS, bt_wait_event(BT_WAIT_BUILD));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Drop an invalid leftover, then build, if the index is to be built. */
static void
bt_build_it(BtBuildWork *w)
{
	if (w->state == BT_INDEX_INVALID)
	{
		bt_set_locked(true);
		bt_drop_leftovers(w->def, w->cxt);
	}
	if (w->state == BT_INDEX_MISSING || w->state == BT_INDEX_INVALID)
	{
		ereport(LOG, (errmsg("bingo_tune: building index: %s", w->create_sql)));
		bt_set_locked(true);
		bt_run_toplevel(w->create_sql, w->cxt);
		bt_set_locked(false);
	}
}

/*
 * The build failed with the current error, or was cancelled: clean up
 * and close the slot as yielded (to the app's DDL, which includes the
 * deadlock detector picking us) or as failed.
 */
static void
bt_builder_failed(BtBuildWork *w)
{
	BtBuildSlot *s = &bt_builder->slots[bt_my_slot];
	const char *what = w->create_sql ? w->create_sql : w->canonical;
	ErrorData  *edata;
	char		detail[BT_DETAIL_MAXLEN];
	BtCancel	cancel;
	int			yield_pid;
	VirtualTransactionId yield_vxid;
	char		yield_why[BT_WHY_MAXLEN];

	MemoryContextSwitchTo(w->cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	pgstat_report_activity(STATE_IDLE, NULL);
	/* a second cancel for the same reason must not cut the cleanup short */
	QueryCancelPending = false;

	LWLockAcquire(bt_builder->lock, LW_EXCLUSIVE);
	s->locked = false;
	cancel = s->cancel;
	yield_pid = s->yield_pid;
	yield_vxid = s->yield_vxid;
	strlcpy(yield_why, s->yield_why, BT_WHY_MAXLEN);
	LWLockRelease(bt_builder->lock);

	if (cancel == BT_CANCEL_YIELD || edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED)
	{
		if (cancel == BT_CANCEL_YIELD)
			snprintf(detail, sizeof(detail), "yielded to process %d (%s); retried later",
					 yield_pid, yield_why);
		else
			snprintf(detail, sizeof(detail), "yielded: %s; retried later", edata->message);
		ereport(LOG,
				(errmsg("bingo_tune: index build yielded to the application: %s", what),
				 errdetail("%s", detail)));
		bt_yield_cleanup(w->def, w->relid, yield_vxid, w->cxt);
		bt_builder_finish(BT_BUILD_YIELDED, detail);
		return;
	}

	if (cancel == BT_CANCEL_STOP)
		strlcpy(detail, "cancelled: the caller stopped waiting", sizeof(detail));
	else
		strlcpy(detail, edata->message, sizeof(detail));
	ereport(LOG,
			(errmsg("bingo_tune: index build failed: %s", what),
			 errdetail("%s", detail)));
	/* leave no invalid index behind; the next attempt rebuilds anyway */
	bt_failure_cleanup(w->def, w->cxt);
	bt_builder_finish(BT_BUILD_FAILED, detail);
}

/* The outcome of a build that ran to its end, from what it found. */
static BtBuildOutcome
bt_outcome_of(BtIndexState state)
{
	switch (state)
	{
		case BT_INDEX_PRESENT:
			return BT_BUILD_PRESENT;
		case BT_INDEX_NO_TABLE:
			return BT_BUILD_NO_TABLE;
		case BT_INDEX_INVALID:
			return BT_BUILD_REBUILT;
		default:
			return BT_BUILD_CREATED;
	}
}

/*
 * Entry point of a builder worker.
 */
void
bt_builder_main(Datum main_arg)
{
	char		canonical[BT_DEF_MAXLEN];
	Oid			dboid;
	MemoryContext cxt;
	BtBuildWork *w;
	BtBuildOutcome outcome;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	dboid = bt_builder_attach(main_arg, canonical);
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	bt_builder_settings();

	cxt = AllocSetContextCreate(TopMemoryContext, "bingo_tune builder",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);
	w = palloc0(sizeof(BtBuildWork));
	w->cxt = cxt;
	w->canonical = pstrdup(canonical);
	w->def = bt_indexdef_parse(canonical, NULL);
	w->state = BT_INDEX_MISSING;
	w->relid = InvalidOid;

	PG_TRY();
	{
		bt_judge_existing(w);
		bt_build_it(w);
	}
	PG_CATCH();
	{
		bt_builder_failed(w);
		bt_my_slot = -1;
		proc_exit(0);
	}
	PG_END_TRY();

	outcome = bt_outcome_of(w->state);
	bt_builder_finish(outcome, outcome == BT_BUILD_NO_TABLE ? "no table" : "");
	bt_my_slot = -1;
	proc_exit(0);
}
