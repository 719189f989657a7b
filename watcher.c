/*-------------------------------------------------------------------------
 *
 * watcher.c
 *		The launcher and the per-database watchers: background workers that
 *		see the watched statements run and build the indexes they need.
 *
 * One static worker, the launcher, starts at consistent state (so also on a
 * hot standby).  It connects to no database, reads pg_database every
 * naptime and starts one dynamic worker, a watcher, per connectable
 * non-template database.  A watcher whose database has no bingo_tune
 * extension says so in shared memory and exits; the launcher gives its
 * slot back and tries that database again only every BT_NOEXT_RETRY
 * naptimes, or as soon as a CREATE EXTENSION bingo_tune commits anywhere
 * (the ProcessUtility hook and the commit callback wake it; on a standby,
 * where no hook sees the replayed command, the retry finds it).
 *
 * Every naptime a watcher, in one transaction: reads the catalog and the
 * queryid of each watched statement through the report's catalog pass
 * (bt_stats_sync, which also keeps latency tracking in step; recomputed
 * every pass, which is a handful of parse + analyse and follows dropped
 * and recreated tables without any cache to invalidate); takes every run
 * bingo_tune knows of (bt_watched_runs): the completed and failed runs
 * stats.c counted, the completed calls in pg_stat_statements, and runs in
 * progress for longer than bingo_tune.min_running in pg_stat_activity (a
 * run that is cancelled or times out never reaches pg_stat_statements, and
 * one shorter than min_running is only in stats.c's figures); judges the
 * indexes of the statements it saw;
 * records events; commits.  Then, outside any transaction and so holding
 * no snapshot (DESIGN.md, "two traps"), it builds the missing indexes one
 * at a time, most urgent first, through bt_build_index(), and records each
 * outcome.  A failed build is retried after naptime * 2^failures, capped at
 * BT_BACKOFF_MAX.  On a standby, or with bingo_tune.mode = advise, nothing
 * is built: the recommendation is logged, kept in a small ring in shared
 * memory (bingo_tune.recommendations(), readable on a standby) and, on a
 * primary, stored in bingo_tune.events.
 *
 * A backend connected to a database blocks DROP DATABASE, ALTER DATABASE
 * RENAME / SET TABLESPACE and its use as a CREATE DATABASE template.  So
 * the ProcessUtility hook, seeing such a statement, pauses that database's
 * watcher for a while: it marks the slot paused and cancels the watcher
 * (SIGINT), which stops any build it waits for and exits; the launcher
 * starts no watcher there until the pause is over.  The server waits up to
 * 5 s for other backends to leave, which is plenty.
 *
 * Shared state (BtWatcherShared) is protected by one LWLock of our own
 * tranche "bingo_tune_watcher": the launcher assigns slots (one per
 * database, so at most one watcher per database; at most BT_MAX_WATCHERS
 * databases with a watcher at once); a watcher claims its slot
 * by writing its pid (refusing if another live watcher has it) and clears
 * it on exit; the hook sets pause marks; SQL functions read.  Nobody holds
 * the lock for more than a copy of a slot.  Crash restarts reinitialise it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "bingo_tune.h"

/* Databases that can have a watcher at once. */
#define BT_MAX_WATCHERS			32
/* Recent recommendations kept in shmem (all databases). */
#define BT_RECO_RING			64
/* A database without the extension is tried again every this many naptimes. */
#define BT_NOEXT_RETRY			6
/* Longest wait before retrying a failed build, in seconds. */
#define BT_BACKOFF_MAX			3600
/* How long DROP/RENAME/... DATABASE keeps a database's watcher away, in s. */
#define BT_PAUSE_SECS			30

typedef enum BtStmtState
{
	BT_STMT_WAITING,			/* cannot be analysed yet (no table) */
	BT_STMT_IDLE,				/* analysed, not seen running */
	BT_STMT_SEEN,				/* runs counted (pg_stat_statements, or ours) */
	BT_STMT_RUNNING				/* a run in progress longer than min_running */
} BtStmtState;

typedef struct BtWatcherSlot
{
	Oid			dboid;			/* InvalidOid: free */
	pid_t		pid;			/* live watcher, 0 if none */
	bool		no_extension;	/* its watcher found no bingo_tune */
	TimestampTz paused_until;	/* hook: no watcher before */
	uint64		passes;
	TimestampTz last_pass;
} BtWatcherSlot;

typedef struct BtReco
{
	TimestampTz at;
	Oid			dboid;
	char		statements[128];
	char		index_name[NAMEDATALEN];
	char		definition[256];
	char		reason[64];
} BtReco;

typedef struct BtWatcherShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	uint32		ext_created;	/* CREATE EXTENSION bingo_tune commits */
	BtWatcherSlot slots[BT_MAX_WATCHERS];
	uint64		nrecos;			/* recommendations ever made */
	BtReco		recos[BT_RECO_RING];
} BtWatcherShared;

/* A watched statement and its runs, during a pass or in watched(). */
typedef struct BtStmtRuns
{
	BtWatched  *w;
	int64		calls;			/* completed, in pg_stat_statements */
	int64		counted;		/* runs stats.c counted since reset */
	int64		failed;			/* of which failed */
	bool		running;		/* in progress for longer than min_running */
} BtStmtRuns;

/* Backoff of a failing index build (watcher-local). */
typedef struct BtBackoff
{
	char	   *canonical;
	int			failures;
	TimestampTz next_try;
} BtBackoff;

/*---- Local state ----*/

static BtWatcherShared *bt_watcher = NULL;

static bool bt_wake_at_commit = false;

/* in a watcher */
static int	bt_my_slot = -1;
static MemoryContext bt_long_cxt = NULL;	/* lives as long as the watcher */
static List *bt_backoffs = NIL;		/* of BtBackoff * */
static List *bt_announced = NIL;	/* "seen" statements: "name/queryid" */
static List *bt_known_present = NIL;	/* canonical defs found present */
static List *bt_recommended = NIL;	/* canonical defs recommended */
static bool bt_warned_no_pgss = false;

/*---- Function declarations ----*/

PGDLLEXPORT void bt_launcher_main(Datum main_arg);
PGDLLEXPORT void bt_watcher_main(Datum main_arg);

PG_FUNCTION_INFO_V1(bt_watcher_info);
PG_FUNCTION_INFO_V1(bt_watched);
PG_FUNCTION_INFO_V1(bt_recommendations);

static void bt_pause_database(const char *dbname);
static int	bt_find_slot(Oid dboid, bool create);
static void bt_watcher_on_exit(int code, Datum arg);
static bool bt_stop_requested(void);
static void bt_watcher_pass(MemoryContext passcxt);
static void bt_run_builds(List *jobs);
static void bt_add_reco(const char *statements, const char *index_name,
						const char *definition, const char *reason);
static bool bt_str_member(List *list, const char *s);
static List *bt_str_add(List *list, const char *s);
static List *bt_str_remove(List *list, const char *s);

/* ================================================================
 * Shared memory and registration
 * ================================================================
 */

Size
bt_watcher_shmem_size(void)
{
	return MAXALIGN(sizeof(BtWatcherShared));
}

void
bt_watcher_shmem_request(void)
{
	RequestNamedLWLockTranche(BT_TRANCHE_WATCHER, 1);
}

void
bt_watcher_shmem_init(void)
{
	bool		found;

	bt_watcher = ShmemInitStruct("bingo_tune watcher", bt_watcher_shmem_size(), &found);
	if (!found)
	{
		memset(bt_watcher, 0, sizeof(BtWatcherShared));
		bt_watcher->lock = &(GetNamedLWLockTranche(BT_TRANCHE_WATCHER))->lock;
	}
}

/*
 * Called from _PG_init during the preload: register the launcher.
 */
void
bt_watcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* consistent state, not recovery finished: standbys get a watcher too */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "bingo_tune", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "bt_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "bingo_tune launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "bingo_tune launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * Slot of dboid, or -1; with create, take a free slot for it if it has
 * none (-1 if all are taken).  Caller holds the lock exclusively when
 * create is true.
 */
static int
bt_find_slot(Oid dboid, bool create)
{
	int			free_slot = -1;

	for (int i = 0; i < BT_MAX_WATCHERS; i++)
	{
		if (bt_watcher->slots[i].dboid == dboid)
			return i;
		if (free_slot < 0 && !OidIsValid(bt_watcher->slots[i].dboid))
			free_slot = i;
	}
	if (create && free_slot >= 0)
	{
		BtWatcherSlot *s = &bt_watcher->slots[free_slot];

		memset(s, 0, sizeof(BtWatcherSlot));
		s->dboid = dboid;
		return free_slot;
	}
	return -1;
}

/* ================================================================
 * The utility hook: keep watchers out of the way of database commands
 * ================================================================
 */

/*
 * Before a utility statement runs (the ProcessUtility hook in hooks.c).
 */
void
bt_watcher_utility(Node *parsetree)
{
	if (bt_watcher != NULL)
	{
		ListCell   *lc;

		switch (nodeTag(parsetree))
		{
			case T_DropdbStmt:
				bt_pause_database(((DropdbStmt *) parsetree)->dbname);
				break;
			case T_RenameStmt:
				if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
					bt_pause_database(((RenameStmt *) parsetree)->subname);
				break;
			case T_CreatedbStmt:
				foreach(lc, ((CreatedbStmt *) parsetree)->options)
				{
					DefElem    *opt = lfirst(lc);

					if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
						bt_pause_database(defGetString(opt));
				}
				break;
			case T_AlterDatabaseStmt:
				foreach(lc, ((AlterDatabaseStmt *) parsetree)->options)
				{
					DefElem    *opt = lfirst(lc);

					if (strcmp(opt->defname, "tablespace") == 0)
						bt_pause_database(((AlterDatabaseStmt *) parsetree)->dbname);
				}
				break;
			case T_CreateExtensionStmt:
				if (strcmp(((CreateExtensionStmt *) parsetree)->extname, "bingo_tune") == 0)
				{
					/* once it commits, have the launcher look at once */
					bt_wake_at_commit = true;
				}
				break;
			default:
				break;
		}
	}
}

/*
 * A transaction ends (the transaction callback in hooks.c).
 */
void
bt_watcher_xact_end(XactEvent event)
{
	if (event == XACT_EVENT_COMMIT && bt_wake_at_commit && bt_watcher != NULL)
	{
		/* the launcher then tries every database without a watcher again */
		LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
		bt_watcher->ext_created++;
		if (bt_watcher->launcher_latch != NULL)
			SetLatch(bt_watcher->launcher_latch);
		LWLockRelease(bt_watcher->lock);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		bt_wake_at_commit = false;
}

/*
 * Keep the watcher out of dbname for BT_PAUSE_SECS: mark its slot and
 * cancel the watcher, which then exits (stopping a build it waits for).
 */
static void
bt_pause_database(const char *dbname)
{
	Oid			dboid = get_database_oid(dbname, true);
	pid_t		pid = 0;
	int			i;

	if (!OidIsValid(dboid))
		return;

	/*
	 * Only for someone who may run the command (its owner, or a
	 * superuser): anyone else fails anyway and must not get to stop our
	 * watcher.
	 */
#if PG_VERSION_NUM >= 160000
	if (!object_ownercheck(DatabaseRelationId, dboid, GetUserId()))
		return;
#else
	if (!pg_database_ownercheck(dboid, GetUserId()))
		return;
#endif
	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	i = bt_find_slot(dboid, true);
	if (i >= 0)
	{
		bt_watcher->slots[i].paused_until =
			TimestampTzPlusMilliseconds(GetCurrentTimestamp(), BT_PAUSE_SECS * 1000);
		pid = bt_watcher->slots[i].pid;
	}
	LWLockRelease(bt_watcher->lock);

	if (pid != 0)
	{
		ereport(DEBUG1,
				(errmsg("bingo_tune: stopping the watcher of database \"%s\" for %d s",
						dbname, BT_PAUSE_SECS)));
		/* a cancel: it stops a build the watcher waits for, then exits */
		(void) kill(pid, SIGINT);
	}
}

/* ================================================================
 * The launcher
 * ================================================================
 */

typedef struct BtLaunched
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
} BtLaunched;

/* A database found without the extension, and when to try it again. */
typedef struct BtNoExt
{
	Oid			dboid;
	TimestampTz retry_at;
} BtNoExt;

static void
bt_launcher_on_exit(int code, Datum arg)
{
	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	if (bt_watcher->launcher_pid == MyProcPid)
	{
		bt_watcher->launcher_pid = 0;
		bt_watcher->launcher_latch = NULL;
	}
	LWLockRelease(bt_watcher->lock);
}

/*
 * Connectable, non-template, valid databases (List of Oid).
 */
static List *
bt_list_databases(MemoryContext cxt)
{
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		/* templates: a connection there would block CREATE DATABASE */
		if (!db->datallowconn || db->datistemplate || db->datconnlimit == -2)
			continue;
		old = MemoryContextSwitchTo(cxt);
		result = lappend_oid(result, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	CommitTransactionCommand();
	return result;
}

/* Is a watcher we launched for dboid still starting or running? */
static bool
bt_launched_in(List *launched, Oid dboid)
{
	ListCell   *lc;

	foreach(lc, launched)
		if (((BtLaunched *) lfirst(lc))->dboid == dboid)
			return true;
	return false;
}

static BackgroundWorkerHandle *
bt_launch_watcher(int slot, Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "bingo_tune", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "bt_watcher_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "bingo_tune watcher %u", dboid);
	strlcpy(worker.bgw_type, "bingo_tune watcher", BGW_MAXLEN);
	worker.bgw_main_arg = Int32GetDatum(slot);
	memcpy(worker.bgw_extra, &dboid, sizeof(Oid));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

/* The launcher's own state, from one naptime to the next. */
typedef struct BtLauncherState
{
	List	   *launched;		/* BtLaunched *: watchers started, not stopped */
	List	   *noext;			/* BtNoExt *: databases to try again later */
	uint32		ext_created;	/* bt_watcher->ext_created last seen */
	bool		warned_full;
	bool		warned_workers;
} BtLauncherState;

/* Forget the watchers we launched that have stopped. */
static void
bt_forget_stopped(BtLauncherState *ls)
{
	List	   *still = NIL;
	ListCell   *lc;

	foreach(lc, ls->launched)
	{
		BtLaunched *l = lfirst(lc);
		pid_t		pid;

		if (GetBackgroundWorkerPid(l->handle, &pid) != BGWH_STOPPED)
		{
			still = lappend(still, l);
			continue;
		}
		pfree(l->handle);
		pfree(l);
	}
	list_free(ls->launched);
	ls->launched = still;
}

/* Free slot i if it still serves dboid, with no watcher and no pause. */
static void
bt_free_slot(int i, Oid dboid, TimestampTz now)
{
	BtWatcherSlot *s = &bt_watcher->slots[i];

	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	if (s->dboid == dboid && s->pid == 0 && s->paused_until <= now)
		memset(s, 0, sizeof(BtWatcherSlot));
	LWLockRelease(bt_watcher->lock);
}

/*
 * Give back the slots of databases without a watcher that are gone or have
 * no extension (those are tried again later, or as soon as a CREATE
 * EXTENSION bingo_tune commits anywhere).  The lock is held only to copy
 * the slots, and to free each one.
 */
static void
bt_reclaim_slots(BtLauncherState *ls, List *dbs, TimestampTz now)
{
	BtWatcherSlot *copy = palloc(sizeof(BtWatcherSlot) * BT_MAX_WATCHERS);
	uint32		ext_created;

	LWLockAcquire(bt_watcher->lock, LW_SHARED);
	ext_created = bt_watcher->ext_created;
	memcpy(copy, bt_watcher->slots, sizeof(BtWatcherSlot) * BT_MAX_WATCHERS);
	LWLockRelease(bt_watcher->lock);

	/* CREATE EXTENSION somewhere: try every database again */
	if (ext_created != ls->ext_created)
	{
		ls->ext_created = ext_created;
		list_free_deep(ls->noext);
		ls->noext = NIL;
	}

	for (int i = 0; i < BT_MAX_WATCHERS; i++)
	{
		BtWatcherSlot *s = &copy[i];

		if (!OidIsValid(s->dboid) || s->pid != 0 || s->paused_until > now ||
			bt_launched_in(ls->launched, s->dboid))
			continue;
		if (s->no_extension && list_member_oid(dbs, s->dboid))
		{
			BtNoExt    *ne = palloc(sizeof(BtNoExt));

			ne->dboid = s->dboid;
			ne->retry_at = TimestampTzPlusMilliseconds(now, (int64) bt_naptime * 1000 * BT_NOEXT_RETRY);
			ls->noext = lappend(ls->noext, ne);
			bt_free_slot(i, s->dboid, now);
		}
		else if (!list_member_oid(dbs, s->dboid))
			bt_free_slot(i, s->dboid, now);
	}
	pfree(copy);
}

/* Drop from the retry list the databases gone or due for a new try. */
static void
bt_prune_noext(BtLauncherState *ls, List *dbs, TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, ls->noext)
	{
		BtNoExt    *ne = lfirst(lc);

		if (!list_member_oid(dbs, ne->dboid) || ne->retry_at <= now)
		{
			ls->noext = foreach_delete_current(ls->noext, lc);
			pfree(ne);
		}
	}
}

/* Is dboid on the retry list? */
static bool
bt_noext_in(List *noext, Oid dboid)
{
	ListCell   *lc;

	foreach(lc, noext)
		if (((BtNoExt *) lfirst(lc))->dboid == dboid)
			return true;
	return false;
}

/*
 * The slot of dboid, assigned if it has none, if a watcher may start
 * there now; else -1 (*full: because every slot is taken).
 */
static int
bt_slot_to_launch(Oid dboid, TimestampTz now, bool *full)
{
	int			i;

	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	i = bt_find_slot(dboid, true);
	*full = i < 0;
	if (i >= 0)
	{
		BtWatcherSlot *s = &bt_watcher->slots[i];

		if (s->pid != 0 || s->paused_until > now)
			i = -1;
		else
			s->no_extension = false;
	}
	LWLockRelease(bt_watcher->lock);
	return i;
}

/*
 * Start a watcher in dboid, warning once when a slot or a worker is
 * lacking.
 */
static void
bt_launch_in(BtLauncherState *ls, Oid dboid, TimestampTz now)
{
	bool		full;
	int			i = bt_slot_to_launch(dboid, now, &full);
	BackgroundWorkerHandle *handle;
	BtLaunched *l;

	if (full)
	{
		if (!ls->warned_full)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("bingo_tune watches at most %d databases at once", BT_MAX_WATCHERS),
					 errdetail("Database with OID %u gets no watcher for now.", dboid)));
		ls->warned_full = true;
		return;
	}
	if (i < 0)
		return;

	handle = bt_launch_watcher(i, dboid);
	if (handle == NULL)
	{
		if (!ls->warned_workers)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("bingo_tune could not start a watcher: no background worker slot free"),
					 errhint("Raise max_worker_processes: bingo_tune needs one worker per database with the extension, plus one launcher and one per index build.")));
		ls->warned_workers = true;
		return;
	}
	ls->warned_workers = false;
	l = palloc(sizeof(BtLaunched));
	l->dboid = dboid;
	l->handle = handle;
	ls->launched = lappend(ls->launched, l);
}

/* A watcher for each database of dbs that has none and may have one. */
static void
bt_launch_missing(BtLauncherState *ls, List *dbs, TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, dbs)
	{
		Oid			dboid = lfirst_oid(lc);

		if (bt_noext_in(ls->noext, dboid) || bt_launched_in(ls->launched, dboid))
			continue;
		bt_launch_in(ls, dboid, now);
	}
}

/* Say who we are in shared memory, so that watchers and the hook wake us. */
static void
bt_launcher_attach(void)
{
	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	bt_watcher->launcher_pid = MyProcPid;
	bt_watcher->launcher_latch = MyLatch;
	LWLockRelease(bt_watcher->lock);
	before_shmem_exit(bt_launcher_on_exit, (Datum) 0);
}

void
bt_launcher_main(Datum main_arg)
{
	MemoryContext cxt;
	BtLauncherState ls = {0};

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (bt_watcher == NULL)
		proc_exit(0);

	/* no database: only the shared catalogs, pg_database among them */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("bingo_tune launcher");
	bt_launcher_attach();

	cxt = AllocSetContextCreate(TopMemoryContext, "bingo_tune launcher",
								ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		List	   *dbs;
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(cxt);
		pgstat_report_activity(STATE_RUNNING, "listing databases");
		dbs = bt_list_databases(cxt);
		/* the launcher's lists live as long as it does */
		MemoryContextSwitchTo(TopMemoryContext);
		now = GetCurrentTimestamp();

		bt_forget_stopped(&ls);
		bt_reclaim_slots(&ls, dbs, now);
		bt_prune_noext(&ls, dbs, now);
		bt_launch_missing(&ls, dbs, now);

		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) bt_naptime * 1000L, bt_wait_event(BT_WAIT_NAP));
		ResetLatch(MyLatch);
	}
}

/* ================================================================
 * The watcher
 * ================================================================
 */

static void
bt_watcher_on_exit(int code, Datum arg)
{
	if (bt_my_slot < 0)
		return;
	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	if (bt_watcher->slots[bt_my_slot].pid == MyProcPid)
		bt_watcher->slots[bt_my_slot].pid = 0;
	if (bt_watcher->launcher_latch != NULL)
		SetLatch(bt_watcher->launcher_latch);
	LWLockRelease(bt_watcher->lock);
	bt_my_slot = -1;
}

/* Has a database command asked us to leave? */
static bool
bt_stop_requested(void)
{
	bool		stop;

	LWLockAcquire(bt_watcher->lock, LW_SHARED);
	stop = bt_watcher->slots[bt_my_slot].paused_until > GetCurrentTimestamp();
	LWLockRelease(bt_watcher->lock);
	return stop;
}

/* Exit quietly, telling the launcher this database has no extension. */
static void
bt_exit_no_extension(void)
{
	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	bt_watcher->slots[bt_my_slot].no_extension = true;
	LWLockRelease(bt_watcher->lock);
	proc_exit(0);
}

/*
 * Claim the slot the launcher gave us (main_arg; the database in
 * bgw_extra): one watcher per database.  Exits if another live watcher
 * has it, or the database is paused.  Returns the database.
 */
static Oid
bt_watcher_claim(Datum main_arg)
{
	int			slot = DatumGetInt32(main_arg);
	Oid			dboid;
	bool		claimed = false;

	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	if (bt_watcher == NULL || slot < 0 || slot >= BT_MAX_WATCHERS)
		proc_exit(0);

	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	if (bt_watcher->slots[slot].dboid == dboid &&
		(bt_watcher->slots[slot].pid == 0 ||
		 BackendPidGetProc(bt_watcher->slots[slot].pid) == NULL) &&
		bt_watcher->slots[slot].paused_until <= GetCurrentTimestamp())
	{
		bt_watcher->slots[slot].pid = MyProcPid;
		claimed = true;
	}
	LWLockRelease(bt_watcher->lock);
	if (!claimed)
		proc_exit(0);
	bt_my_slot = slot;
	before_shmem_exit(bt_watcher_on_exit, (Datum) 0);
	return dboid;
}

/* The watcher's session settings. */
static void
bt_watcher_settings(void)
{
	SetConfigOption("application_name", "bingo_tune watcher", PGC_USERSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	/* never queue for long behind DDL on the app's tables */
	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * A pass failed: log it (unless we were asked to leave, then exit), clean
 * up, and let the next pass try again.
 */
static void
bt_pass_failed(MemoryContext passcxt)
{
	bool		stop;

	MemoryContextSwitchTo(passcxt);
	stop = bt_stop_requested();
	if (!stop)
		EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();
	if (stop)
		proc_exit(0);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
bt_watcher_main(Datum main_arg)
{
	Oid			dboid;
	MemoryContext passcxt;
	char	   *dbname;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	/* SIGINT stays the statement cancel handler: a pause cancels our waits */
	BackgroundWorkerUnblockSignals();

	dboid = bt_watcher_claim(main_arg);
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/* paused while we were connecting? */
	if (bt_stop_requested())
		proc_exit(0);
	bt_watcher_settings();

	bt_long_cxt = AllocSetContextCreate(TopMemoryContext, "bingo_tune watcher",
										ALLOCSET_DEFAULT_SIZES);
	passcxt = AllocSetContextCreate(TopMemoryContext, "bingo_tune watcher pass",
									ALLOCSET_DEFAULT_SIZES);

	StartTransactionCommand();
	dbname = MemoryContextStrdup(bt_long_cxt, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	ereport(DEBUG1, (errmsg("bingo_tune: watcher started in database \"%s\"", dbname)));

	for (;;)
	{
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (bt_stop_requested())
			proc_exit(0);

		MemoryContextReset(passcxt);
		PG_TRY();
		{
			/* a cancel (pg_cancel_backend) ends this pass, not the watcher */
			CHECK_FOR_INTERRUPTS();
			bt_watcher_pass(passcxt);
		}
		PG_CATCH();
		{
			bt_pass_failed(passcxt);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);

		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) bt_naptime * 1000L, bt_wait_event(BT_WAIT_NAP));
		ResetLatch(MyLatch);
		if (bt_stop_requested())
			proc_exit(0);
	}
}

/*
 * The statements of stmts (BtStmtRuns *) that have queryid qid.
 */
static List *
bt_stmts_with_queryid(List *stmts, int64 qid)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, stmts)
	{
		BtStmtRuns *st = lfirst(lc);

		if (st->w->matched && (int64) st->w->queryid == qid)
			result = lappend(result, st);
	}
	return result;
}

/*
 * pg_stat_statements: fill calls of stmts (dbid = ours).  The function
 * form with showtext = false reads no query texts.
 */
static void
bt_read_pgss(List *stmts, Datum qids, const char *pgss_schema)
{
	Oid			argtypes[2] = {OIDOID, INT8ARRAYOID};
	Datum		args[2];
	char	   *sql;
	int			ret;

	args[0] = ObjectIdGetDatum(MyDatabaseId);
	args[1] = qids;
	sql = psprintf("SELECT queryid, sum(calls)::int8 FROM %s.pg_stat_statements(false)"
				   " WHERE dbid = $1 AND queryid = ANY ($2) GROUP BY queryid",
				   quote_identifier(pgss_schema));
	SPI_connect();
	ret = SPI_execute_with_args(sql, 2, argtypes, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_statements: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		qid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		int64		calls = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
		ListCell   *lc;

		foreach(lc, bt_stmts_with_queryid(stmts, qid))
			((BtStmtRuns *) lfirst(lc))->calls += calls;
	}
	SPI_finish();
}

/*
 * pg_stat_activity: runs in progress for longer than min_running.
 */
static void
bt_read_activity(List *stmts, Datum qids)
{
	Oid			argtypes[3] = {OIDOID, INT8ARRAYOID, INT4OID};
	Datum		args[3];
	int			ret;

	args[0] = ObjectIdGetDatum(MyDatabaseId);
	args[1] = qids;
	args[2] = Int32GetDatum(bt_min_running);
	SPI_connect();
	ret = SPI_execute_with_args("SELECT DISTINCT query_id FROM pg_catalog.pg_stat_activity"
								" WHERE datid = $1 AND state = 'active' AND query_id = ANY ($2)"
								" AND query_start < pg_catalog.clock_timestamp() - $3 * interval '1 ms'",
								3, argtypes, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity: %s", SPI_result_code_string(ret));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		qid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		ListCell   *lc;

		foreach(lc, bt_stmts_with_queryid(stmts, qid))
			((BtStmtRuns *) lfirst(lc))->running = true;
	}
	SPI_finish();
}

/*
 * Has bingo_tune.events a "seen" row for this statement and queryid?
 */
static bool
bt_seen_recorded(const char *name, uint64 queryid)
{
	Oid			argtypes[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	bool		found;

	args[0] = CStringGetTextDatum(name);
	args[1] = Int64GetDatum((int64) queryid);
	SPI_connect();
	if (SPI_execute_with_args("SELECT 1 FROM bingo_tune.events"
							  " WHERE action = 'seen' AND statement = $1 AND queryid = $2 LIMIT 1",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read bingo_tune.events");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

static const char *
bt_stmt_state_name(BtStmtState state)
{
	switch (state)
	{
		case BT_STMT_WAITING:
			return "waiting";
		case BT_STMT_IDLE:
			return "not seen";
		case BT_STMT_SEEN:
			return "seen";
		case BT_STMT_RUNNING:
			return "running";
	}
	return "unknown";
}

/*
 * The catalog's statements with their queryid here and now, through the
 * report's catalog pass (bt_stats_sync, which also registers them for
 * counting), each with no run counted yet (List of BtStmtRuns *).
 * Allocated in the current memory context.
 */
static List *
bt_watched_statements(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *watched = bt_stats_sync();
	List	   *stmts = NIL;
	ListCell   *lc;

	MemoryContextSwitchTo(cxt);
	foreach(lc, watched)
	{
		BtStmtRuns *st = palloc0(sizeof(BtStmtRuns));

		st->w = lfirst(lc);
		stmts = lappend(stmts, st);
	}
	return stmts;
}

/*
 * The queryids of the analysed statements of stmts, as an int8[] Datum,
 * with stats.c's counts of each (before and after a build) filled in.
 * (Datum) 0 if none is analysed.
 */
static Datum
bt_count_own_runs(List *stmts)
{
	BtStatsSnapshot *snap = palloc(sizeof(BtStatsSnapshot));
	Datum	   *qidvals = palloc(sizeof(Datum) * (list_length(stmts) + 1));
	int			nqids = 0;
	ListCell   *lc;

	foreach(lc, stmts)
	{
		BtStmtRuns *st = lfirst(lc);

		if (!st->w->matched)
			continue;
		qidvals[nqids++] = Int64GetDatum((int64) st->w->queryid);
		if (bt_stats_fetch(MyDatabaseId, st->w->queryid, snap))
		{
			st->failed = (int64) snap->failed.count;
			st->counted = (int64) (snap->done.count + snap->failed.count);
			if (snap->has_before)
			{
				st->failed += snap->before.failed;
				st->counted += snap->before.calls + snap->before.failed;
			}
		}
	}
	if (nqids == 0)
		return (Datum) 0;
	return PointerGetDatum(construct_array(qidvals, nqids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * The schema of pg_stat_statements, if it is preloaded (its GUCs exist
 * then) and created in this database; else NULL, and, if warn, say once
 * that the watcher does without it.  Allocated in the current memory
 * context.
 */
static char *
bt_find_pgss(bool warn)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *pgss_schema = NULL;
	int			ret;

	SPI_connect();
	if (GetConfigOption("pg_stat_statements.max", true, false) != NULL)
	{
		ret = SPI_execute("SELECT n.nspname FROM pg_catalog.pg_extension e"
						  " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
						  " WHERE e.extname = 'pg_stat_statements'", true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_extension: %s", SPI_result_code_string(ret));
		if (SPI_processed > 0)
			pgss_schema = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	}
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	if (pgss_schema == NULL && warn && !bt_warned_no_pgss)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("bingo_tune watcher cannot read pg_stat_statements; it sees only the runs bingo_tune counted and runs in progress"),
				 errhint("Add pg_stat_statements to shared_preload_libraries before bingo_tune, restart the server, and create the extension pg_stat_statements.")));
		bt_warned_no_pgss = true;
	}
	return pgss_schema;
}

/*
 * Every run of stmts bingo_tune knows of, wherever it was counted: the
 * completed and failed runs stats.c's hooks counted since the last reset
 * (before and after a build), the completed calls in pg_stat_statements,
 * and runs in progress for longer than min_running in pg_stat_activity.
 * This is the one place that decides what the watcher (and watched())
 * counts as seen: a run cancelled after 300 ms, which neither of the other
 * two ever sees, is in the first.  warn: say once when pg_stat_statements
 * cannot be read.
 */
static void
bt_watched_runs(List *stmts, bool warn)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		qids = bt_count_own_runs(stmts);
	char	   *pgss_schema;

	if (qids == (Datum) 0)
		return;
	pgss_schema = bt_find_pgss(warn);
	if (pgss_schema != NULL)
	{
		ListCell   *lc;

		bt_read_pgss(stmts, qids, pgss_schema);
		/* from 18, a re-created table's statement keeps the old calls */
		foreach(lc, stmts)
		{
			BtStmtRuns *st = lfirst(lc);

			if (st->w->matched)
				st->calls = bt_stats_pgss_calls(MyDatabaseId, st->w->queryid, st->calls);
		}
	}
	bt_read_activity(stmts, qids);
	MemoryContextSwitchTo(cxt);
}

static BtStmtState
bt_stmt_state(const BtStmtRuns *st)
{
	if (!st->w->matched)
		return BT_STMT_WAITING;
	if (st->running)
		return BT_STMT_RUNNING;
	if (st->calls > 0 || st->counted > 0)
		return BT_STMT_SEEN;
	return BT_STMT_IDLE;
}

/* how a statement was seen, for events, the log and watched() */
static char *
bt_stmt_seen_detail(const BtStmtRuns *st)
{
	if (st->running)
		return psprintf("running for longer than %d ms", bt_min_running);
	if (st->calls > 0)
		return psprintf(INT64_FORMAT " completed calls", st->calls);
	if (st->failed > 0)
		return psprintf(INT64_FORMAT " runs counted by bingo_tune, " INT64_FORMAT " failed",
						st->counted, st->failed);
	return psprintf(INT64_FORMAT " runs counted by bingo_tune", st->counted);
}

/*
 * Is any statement of want seen or running?  Returns the names of those
 * that are, "a, b".
 */
static char *
bt_seen_statements(BtWantedIndex *want, List *stmts)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, want->statements)
	{
		const char *name = lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, stmts)
		{
			BtStmtRuns *st = lfirst(lc2);

			if (strcmp(st->w->name, name) == 0 && bt_stmt_state(st) >= BT_STMT_SEEN)
			{
				if (buf.len > 0)
					appendStringInfoString(&buf, ", ");
				appendStringInfoString(&buf, name);
				break;
			}
		}
	}
	if (buf.len == 0)
		return NULL;
	return buf.data;
}

/*
 * Start a pass's transaction, with a snapshot, allocating in passcxt.
 */
static void
bt_pass_begin(MemoryContext passcxt)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(passcxt);
	pgstat_report_activity(STATE_RUNNING, "bingo_tune watcher: checking watched statements");
}

static void
bt_pass_commit(MemoryContext passcxt)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(passcxt);
}

/*
 * No bingo_tune here (any more): end the pass and the watcher.
 */
static void
bt_exit_if_no_extension(void)
{
	if (OidIsValid(get_extension_oid("bingo_tune", true)))
		return;
	PopActiveSnapshot();
	CommitTransactionCommand();
	ereport(DEBUG1, (errmsg("bingo_tune: no extension in this database, watcher exits")));
	bt_exit_no_extension();
}

/* Our slot's figures, for watcher(). */
static void
bt_publish_pass(TimestampTz now)
{
	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	bt_watcher->slots[bt_my_slot].no_extension = false;
	bt_watcher->slots[bt_my_slot].passes++;
	bt_watcher->slots[bt_my_slot].last_pass = now;
	LWLockRelease(bt_watcher->lock);
}

/*
 * Log, and on a primary record, the statements seen for the first time
 * (with this queryid).  Returns whether it inserted an event.
 */
static bool
bt_announce_seen(List *stmts, bool standby)
{
	bool		inserted = false;
	ListCell   *lc;

	foreach(lc, stmts)
	{
		BtStmtRuns *st = lfirst(lc);
		char	   *key;

		if (bt_stmt_state(st) < BT_STMT_SEEN)
			continue;
		key = psprintf("%s/" UINT64_FORMAT, st->w->name, st->w->queryid);
		if (bt_str_member(bt_announced, key))
			continue;
		if (standby || !bt_seen_recorded(st->w->name, st->w->queryid))
		{
			char	   *detail = bt_stmt_seen_detail(st);

			/* one line per event, so no errdetail */
			ereport(LOG,
					(errmsg("bingo_tune: statement \"%s\" seen in database \"%s\" (queryid " INT64_FORMAT ", %s)",
							st->w->name, get_database_name(MyDatabaseId), (int64) st->w->queryid,
							detail)));
			if (!standby)
			{
				bt_record_event("watcher", st->w->name, "seen", NULL, -1, detail,
								&st->w->queryid, NULL);
				inserted = true;
			}
		}
		bt_announced = bt_str_add(bt_announced, key);
	}
	return inserted;
}

/*
 * want's index is present: say so once.  Returns whether it inserted an
 * event.
 */
static bool
bt_note_present(BtWantedIndex *want, Oid found, const char *seen_by, bool standby)
{
	char	   *name;
	bool		inserted = false;

	bt_recommended = bt_str_remove(bt_recommended, want->canonical);
	if (bt_str_member(bt_known_present, want->canonical))
		return false;
	name = get_rel_name(found);
	ereport(LOG,
			(errmsg("bingo_tune: statement \"%s\": index \"%s\" already present",
					seen_by, name ? name : want->name)));
	if (!standby)
	{
		bt_record_event("watcher", seen_by, "already present", name ? name : want->name,
						-1, NULL, NULL, NULL);
		inserted = true;
	}
	bt_known_present = bt_str_add(bt_known_present, want->canonical);
	return inserted;
}

/*
 * want's index is missing or invalid and is not to be built here (a
 * standby, or advise mode): recommend it once.  Returns whether it
 * inserted an event.
 */
static bool
bt_recommend(BtWantedIndex *want, BtIndexState state, const char *seen_by, bool standby)
{
	const char *reason = standby ?
		"standby: build it on the primary, it replicates" :
		"advise mode: not building";
	bool		inserted = false;

	if (bt_str_member(bt_recommended, want->canonical))
		return false;
	ereport(LOG,
			(errmsg("bingo_tune: statement \"%s\" needs index \"%s\" (%s; %s): %s",
					seen_by, want->name, bt_index_state_name(state), reason,
					bt_indexdef_create_sql(want->def))));
	bt_add_reco(seen_by, want->name, want->canonical, reason);
	if (!standby)
	{
		bt_record_event("watcher", seen_by, "recommended", want->name, -1, reason,
						NULL, NULL);
		inserted = true;
	}
	bt_recommended = bt_str_add(bt_recommended, want->canonical);
	return inserted;
}

/* The backoff of a failing build of canonical, or NULL. */
static BtBackoff *
bt_find_backoff(const char *canonical)
{
	BtBackoff  *bo = NULL;
	ListCell   *lc;

	foreach(lc, bt_backoffs)
		if (strcmp(((BtBackoff *) lfirst(lc))->canonical, canonical) == 0)
			bo = lfirst(lc);
	return bo;
}

/*
 * A build of want's index for the statements seen_by, unless a failed one
 * waits for its backoff.
 */
static BtBuildJob *
bt_build_job(BtWantedIndex *want, const char *seen_by, TimestampTz now)
{
	BtBackoff  *bo = bt_find_backoff(want->canonical);
	BtBuildJob *job;

	if (bo != NULL && bo->next_try > now)
		return NULL;
	job = palloc(sizeof(BtBuildJob));
	job->want = want;
	job->statements = pstrdup(seen_by);
	return job;
}

/*
 * Judge the indexes of the statements seen, most urgent first: note the
 * present ones, recommend or return as build jobs the missing ones.
 * *inserted is set when an event was recorded.
 */
static List *
bt_judge_indexes(List *stmts, bool standby, TimestampTz now,
				 MemoryContext passcxt, bool *inserted)
{
	List	   *wanted = bt_catalog_wanted_indexes(NULL);
	List	   *jobs = NIL;
	ListCell   *lc;

	MemoryContextSwitchTo(passcxt);
	foreach(lc, wanted)
	{
		BtWantedIndex *want = lfirst(lc);
		char	   *seen_by = bt_seen_statements(want, stmts);
		Oid			relid;
		Oid			found;
		BtIndexState state;
		BtBuildJob *job;

		if (seen_by == NULL)
			continue;
		state = bt_index_state(want->def, &relid, &found);
		MemoryContextSwitchTo(passcxt);

		if (state == BT_INDEX_NO_TABLE)
			continue;
		if (state == BT_INDEX_PRESENT)
		{
			*inserted |= bt_note_present(want, found, seen_by, standby);
			continue;
		}
		/* missing or invalid */
		bt_known_present = bt_str_remove(bt_known_present, want->canonical);
		if (standby || bt_mode == BT_MODE_ADVISE)
			*inserted |= bt_recommend(want, state, seen_by, standby);
		else if ((job = bt_build_job(want, seen_by, now)) != NULL)
			jobs = lappend(jobs, job);
	}
	return jobs;
}

/*
 * One pass: see, decide, record; then build, outside the transaction.
 */
static void
bt_watcher_pass(MemoryContext passcxt)
{
	bool		standby;
	TimestampTz now;
	List	   *stmts;
	List	   *jobs;
	bool		inserted;

	bt_pass_begin(passcxt);
	standby = RecoveryInProgress();
	now = GetCurrentTimestamp();
	bt_exit_if_no_extension();
	bt_publish_pass(now);

	/*
	 * The catalog, and each statement's queryid here and now.  The same
	 * pass keeps the report's latency tracking in step with them, whatever
	 * the mode: measuring is not acting.
	 */
	stmts = bt_watched_statements();
	if (bt_mode == BT_MODE_OFF)
	{
		bt_pass_commit(passcxt);
		return;
	}

	/* every run counted: ours, pg_stat_statements', those in progress */
	bt_watched_runs(stmts, true);
	MemoryContextSwitchTo(passcxt);

	inserted = bt_announce_seen(stmts, standby);
	jobs = bt_judge_indexes(stmts, standby, now, passcxt, &inserted);
	if (inserted)
		bt_prune_events();
	bt_pass_commit(passcxt);

	if (jobs != NIL)
		bt_run_builds(jobs);
	bt_discover_pass();
}

/*
 * Before a build: stop if the mode or a pause says so; else log and
 * record that it starts, and commit.
 */
static BtJobStep
bt_watcher_build_prepare(BtBuildJob *job, BtBuildResult *res, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;

	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	if (bt_mode != BT_MODE_AUTO || bt_stop_requested())
		return BT_JOB_STOP;

	ereport(LOG,
			(errmsg("bingo_tune: statement \"%s\": building index \"%s\"",
					job->statements, job->want->name)));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	bt_record_event("watcher", job->statements, "started", job->want->name, -1, NULL,
					NULL, NULL);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("bingo_tune watcher: building index %s", job->want->name));
	return BT_JOB_BUILD;
}

/*
 * A failed or yielded build of canonical: wait longer before the next
 * try.  Returns the wait, in seconds.
 */
static int64
bt_backoff_failed(const char *canonical)
{
	BtBackoff  *bo = bt_find_backoff(canonical);
	int64		wait_s;

	if (bo == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(bt_long_cxt);

		bo = palloc0(sizeof(BtBackoff));
		bo->canonical = pstrdup(canonical);
		bt_backoffs = lappend(bt_backoffs, bo);
		MemoryContextSwitchTo(old);
	}
	bo->failures++;
	wait_s = (int64) bt_naptime << Min(bo->failures, 20);
	wait_s = Min(wait_s, BT_BACKOFF_MAX);
	bo->next_try = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_s * 1000);
	return wait_s;
}

/* A build of canonical that did not fail: no more backoff. */
static void
bt_backoff_clear(const char *canonical)
{
	BtBackoff  *bo = bt_find_backoff(canonical);

	if (bo == NULL)
		return;
	bt_backoffs = list_delete_ptr(bt_backoffs, bo);
	pfree(bo->canonical);
	pfree(bo);
}

/*
 * After a build: back off or remember the index, log the outcome, and
 * record it (if the extension is still there).
 */
static void
bt_watcher_build_done(BtBuildJob *job, const BtBuildResult *res, bool built,
					  double seconds, void *arg)
{
	pgstat_report_activity(STATE_IDLE, NULL);
	if (res->outcome == BT_BUILD_FAILED || res->outcome == BT_BUILD_YIELDED)
	{
		int64		wait_s = bt_backoff_failed(job->want->canonical);

		ereport(LOG,
				(errmsg("bingo_tune: statement \"%s\": build of index \"%s\" failed, retrying in " INT64_FORMAT " s: %s",
						job->statements, res->index_name, wait_s, res->detail)));
	}
	else
	{
		bt_backoff_clear(job->want->canonical);
		if (res->outcome != BT_BUILD_NO_TABLE)
			bt_known_present = bt_str_add(bt_known_present, job->want->canonical);
		ereport(LOG,
				(errmsg("bingo_tune: statement \"%s\": index \"%s\" %s in %.2f s",
						job->statements, res->index_name,
						bt_build_outcome_name(res->outcome), res->seconds)));
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("bingo_tune", true)))
	{
		bt_record_event("watcher", job->statements, bt_build_outcome_name(res->outcome),
						res->index_name, seconds, res->detail, NULL, NULL);
		bt_prune_events();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Build each job's index in turn, holding no snapshot, and record the
 * outcomes.
 */
static void
bt_run_builds(List *jobs)
{
	BtBuildLoop loop = {bt_watcher_build_prepare, bt_watcher_build_done, NULL};

	bt_build_each(jobs, &loop);
}

void
bt_record_event(const char *source, const char *statement, const char *action,
				const char *index_name, double seconds, const char *detail,
				const uint64 *queryid, const int64 *run)
{
	Oid			argtypes[8] = {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID,
							   TEXTOID, TEXTOID, INT8OID, INT8OID};
	Datum		args[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			ret;

	args[0] = statement ? CStringGetTextDatum(statement) : (Datum) 0;
	if (statement == NULL)
		nulls[0] = 'n';
	args[1] = CStringGetTextDatum(action);
	args[2] = index_name ? CStringGetTextDatum(index_name) : (Datum) 0;
	if (index_name == NULL)
		nulls[2] = 'n';
	args[3] = Float8GetDatum(seconds);
	if (seconds < 0)
		nulls[3] = 'n';
	args[4] = (detail && detail[0]) ? CStringGetTextDatum(detail) : (Datum) 0;
	if (detail == NULL || detail[0] == '\0')
		nulls[4] = 'n';
	args[5] = CStringGetTextDatum(source);
	args[6] = queryid ? Int64GetDatum((int64) *queryid) : (Datum) 0;
	if (queryid == NULL)
		nulls[6] = 'n';
	args[7] = run ? Int64GetDatum(*run) : (Datum) 0;
	if (run == NULL)
		nulls[7] = 'n';

	/*
	 * apply() runs this with the caller's search_path: the operator is
	 * named with its schema, so that none the caller's path reaches first
	 * can stand in for it.
	 */
	SPI_connect();
	ret = SPI_execute_with_args("INSERT INTO bingo_tune.events"
								" (statement, action, index_name, duration, detail, source, queryid, run)"
								" VALUES ($1, $2, $3, $4 OPERATOR(pg_catalog.*) interval '1 second', $5, $6, $7, $8)",
								8, argtypes, args, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record in bingo_tune.events: %s", SPI_result_code_string(ret));
	SPI_finish();
}

/*
 * Keep at most bingo_tune.events_max rows (by id: newest kept).
 */
void
bt_prune_events(void)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];

	args[0] = Int64GetDatum((int64) bt_events_max);
	SPI_connect();
	if (SPI_execute_with_args("DELETE FROM bingo_tune.events"
							  " WHERE id <= (SELECT max(id) FROM bingo_tune.events) - $1",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not prune bingo_tune.events");
	SPI_finish();
}

static void
bt_add_reco(const char *statements, const char *index_name,
			const char *definition, const char *reason)
{
	BtReco	   *r;

	LWLockAcquire(bt_watcher->lock, LW_EXCLUSIVE);
	r = &bt_watcher->recos[bt_watcher->nrecos % BT_RECO_RING];
	r->at = GetCurrentTimestamp();
	r->dboid = MyDatabaseId;
	strlcpy(r->statements, statements, sizeof(r->statements));
	strlcpy(r->index_name, index_name, sizeof(r->index_name));
	strlcpy(r->definition, definition, sizeof(r->definition));
	strlcpy(r->reason, reason, sizeof(r->reason));
	bt_watcher->nrecos++;
	LWLockRelease(bt_watcher->lock);
}

/* ---- small string sets in bt_long_cxt ---- */

static bool
bt_str_member(List *list, const char *s)
{
	ListCell   *lc;

	foreach(lc, list)
		if (strcmp((char *) lfirst(lc), s) == 0)
			return true;
	return false;
}

static List *
bt_str_add(List *list, const char *s)
{
	MemoryContext old;

	if (bt_str_member(list, s))
		return list;
	old = MemoryContextSwitchTo(bt_long_cxt);
	list = lappend(list, pstrdup(s));
	MemoryContextSwitchTo(old);
	return list;
}

static List *
bt_str_remove(List *list, const char *s)
{
	ListCell   *lc;

	foreach(lc, list)
	{
		char	   *item = lfirst(lc);

		if (strcmp(item, s) == 0)
		{
			list = foreach_delete_current(list, lc);
			pfree(item);
			return list;
		}
	}
	return list;
}

/* ================================================================
 * SQL functions
 * ================================================================
 */

static void
bt_require_watcher(void)
{
	bt_require_preload("the bingo_tune watcher");
	if (bt_watcher == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the bingo_tune watcher's shared memory is not set up")));
}

/*
 * watcher() returns (pid int, mode text, passes bigint, last_pass timestamptz)
 * for the current database; pid is NULL when no watcher runs.
 */
Datum
bt_watcher_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int			i;
	BtWatcherSlot copy;

	bt_require_watcher();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	memset(&copy, 0, sizeof(copy));
	LWLockAcquire(bt_watcher->lock, LW_SHARED);
	i = bt_find_slot(MyDatabaseId, false);
	if (i >= 0)
	{
		copy.pid = bt_watcher->slots[i].pid;
		copy.passes = bt_watcher->slots[i].passes;
		copy.last_pass = bt_watcher->slots[i].last_pass;
	}
	LWLockRelease(bt_watcher->lock);

	values[0] = Int32GetDatum(copy.pid);
	nulls[0] = copy.pid == 0;
	values[1] = CStringGetTextDatum(GetConfigOption("bingo_tune.mode", false, false));
	values[2] = Int64GetDatum((int64) copy.passes);
	values[3] = TimestampTzGetDatum(copy.last_pass);
	nulls[3] = copy.last_pass == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * watched() returns setof (statement text, queryid bigint, state text,
 *							calls bigint, detail text)
 * every watched statement of the current database, seen now exactly as the
 * watcher sees it in a pass (the same two functions): the state, the
 * completed calls in pg_stat_statements, and why it waits or how it was
 * seen.
 */
Datum
bt_watched(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *stmts;
	ListCell   *lc;

	bt_require_watcher();
	bt_init_srf(fcinfo);

	stmts = bt_watched_statements();
	bt_watched_runs(stmts, false);

	foreach(lc, stmts)
	{
		BtStmtRuns *st = lfirst(lc);
		BtStmtState state = bt_stmt_state(st);
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(st->w->name);
		values[1] = Int64GetDatum((int64) st->w->queryid);
		nulls[1] = state == BT_STMT_WAITING;
		values[2] = CStringGetTextDatum(bt_stmt_state_name(state));
		values[3] = Int64GetDatum(st->calls);
		if (state == BT_STMT_WAITING)
			values[4] = CStringGetTextDatum(st->w->why ? st->w->why : "");
		else if (state >= BT_STMT_SEEN)
			values[4] = CStringGetTextDatum(bt_stmt_seen_detail(st));
		else
			nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * recommendations() returns setof (at timestamptz, statements text,
 *									 index_name text, definition text,
 *									 reason text)
 * the recent recommendations in the current database, oldest first.  Kept
 * in shared memory, so readable on a standby; lost at restart.
 */
Datum
bt_recommendations(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BtReco	   *copy;
	uint64		nrecos;
	uint64		first;

	bt_require_watcher();
	bt_init_srf(fcinfo);

	copy = palloc(sizeof(BtReco) * BT_RECO_RING);
	LWLockAcquire(bt_watcher->lock, LW_SHARED);
	nrecos = bt_watcher->nrecos;
	memcpy(copy, bt_watcher->recos, sizeof(BtReco) * BT_RECO_RING);
	LWLockRelease(bt_watcher->lock);

	first = nrecos > BT_RECO_RING ? nrecos - BT_RECO_RING : 0;
	for (uint64 k = first; k < nrecos; k++)
	{
		BtReco	   *r = &copy[k % BT_RECO_RING];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		if (r->dboid != MyDatabaseId)
			continue;
		values[0] = TimestampTzGetDatum(r->at);
		values[1] = CStringGetTextDatum(r->statements);
		values[2] = CStringGetTextDatum(r->index_name);
		values[3] = CStringGetTextDatum(r->definition);
		values[4] = CStringGetTextDatum(r->reason);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
