/*-------------------------------------------------------------------------
 *
 * bingo_tune.c
 *		Module entry point: GUC variables, shared memory, preload checks,
 *		and the helpers every file uses.
 *
 * bingo_tune must be loaded through shared_preload_libraries: the index
 * builder keeps its slots in shared memory, so that a build started by
 * apply() can be seen and waited for by everyone.  SQL functions that need
 * that state call bt_require_preload(), which raises a clear error with a
 * hint when the module was loaded any other way.
 *
 * Shared memory is one fixed-size block, sized in _PG_init; each concern
 * (the builder, the watchers, the histograms) says how much it needs and
 * initialises its part in the shmem_startup hook, under AddinShmemInitLock.
 *
 * Helpers every file may use live here too: bt_init_srf sets up a
 * set-returning function's result, bt_run_caught runs a step in a
 * subtransaction and hands back its error, the one place that writes that
 * try/catch, and bt_extension_schema finds where an extension lives.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "bingo_tune.h"

PG_MODULE_MAGIC;

/*---- GUC variables ----*/

int			bt_build_lock_timeout = 30 * 60 * 1000;
int			bt_build_maintenance_work_mem = -1;

/* watcher.c's settings */
int			bt_naptime = 10;
int			bt_min_running = 1000;
int			bt_mode = BT_MODE_AUTO;
int			bt_events_max = 10000;

/* stats.c's settings */
int			bt_max_watched = 64;

static const struct config_enum_entry bt_mode_options[] = {
	{"auto", BT_MODE_AUTO, false},
	{"advise", BT_MODE_ADVISE, false},
	{"off", BT_MODE_OFF, false},
	{NULL, 0, false}
};

/*---- Local state ----*/

static bool bt_preloaded = false;
static bool bt_shmem_initialized = false;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

/*---- Function declarations ----*/

void		_PG_init(void);

static bool bt_check_build_mwm(int *newval, void **extra, GucSource source);
static Size bt_shmem_size(void);
static void bt_shmem_request(void);
static void bt_shmem_startup(void);

/*
 * Module load callback.
 */
void
_PG_init(void)
{
	/* derive() needs no preload: its setting and hook, however we are loaded */
	bt_derive_init();

	/*
	 * Only a preload can reserve shared memory and start workers.  Loaded
	 * any other way (LOAD, or a function call in a backend), define nothing:
	 * functions that need shared state will say what is missing.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("bingo_tune.build_lock_timeout",
							"How long an index build may wait for locks and for older snapshots.",
							"CREATE INDEX CONCURRENTLY waits for every transaction older than "
							"the build; bingo's own statements run for seconds to minutes, so "
							"keep this generous.  0 waits for ever.",
							&bt_build_lock_timeout,
							30 * 60 * 1000,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("bingo_tune.build_maintenance_work_mem",
							"maintenance_work_mem for index builds; -1 uses the server's setting.",
							"Otherwise at least 1MB, the server's own floor for maintenance_work_mem.",
							&bt_build_maintenance_work_mem,
							-1,
							-1, MAX_KILOBYTES,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							bt_check_build_mwm, NULL, NULL);

	DefineCustomIntVariable("bingo_tune.naptime",
							"Time between two passes of each database's watcher.",
							NULL,
							&bt_naptime,
							10,
							1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("bingo_tune.min_running",
							"How long a run of a watched statement must have been in progress for the watcher to act on it.",
							"Runs that are cancelled or time out never reach pg_stat_statements; "
							"the watcher sees them in pg_stat_activity once they ran this long.",
							&bt_min_running,
							1000,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("bingo_tune.mode",
							 "What the watchers do: auto builds the missing indexes, advise only records and logs them, off does nothing.",
							 NULL,
							 &bt_mode,
							 BT_MODE_AUTO,
							 bt_mode_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("bingo_tune.events_max",
							"Rows the watchers keep in bingo_tune.events; older ones are deleted.",
							NULL,
							&bt_events_max,
							10000,
							100, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("bingo_tune.max_watched",
							"How many watched statements' latencies are tracked in shared memory, each database's counted apart.",
							"Each takes about 6 kB.  When full, further statements are not tracked and a warning says so once.",
							&bt_max_watched,
							64,
							1, 10000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	bt_discover_init();

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("bingo_tune");
#else
	EmitWarningsOnPlaceholders("bingo_tune");
#endif

	bt_preloaded = true;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = bt_shmem_request;
#else
	bt_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = bt_shmem_startup;

	bt_watcher_register();
	bt_stats_install_hooks();
	bt_hooks_install();
}

/*
 * bingo_tune.build_maintenance_work_mem: -1, or a value maintenance_work_mem
 * itself accepts (1MB and up); anything else would only make every build
 * fail when the worker sets it.
 */
static bool
bt_check_build_mwm(int *newval, void **extra, GucSource source)
{
	if (*newval == -1 || *newval >= 1024)
		return true;
	GUC_check_errdetail("bingo_tune.build_maintenance_work_mem must be -1 (the server's maintenance_work_mem) or at least 1MB (1024 kB), the smallest maintenance_work_mem the server accepts.");
	return false;
}

/*
 * Total size of our shared memory block.
 */
static Size
bt_shmem_size(void)
{
	return add_size(add_size(bt_builder_shmem_size(), bt_watcher_shmem_size()),
					bt_stats_shmem_size());
}

/*
 * Ask for our shared memory and our LWLock tranches.
 */
static void
bt_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(bt_shmem_size());
	RequestNamedLWLockTranche(BT_TRANCHE_BUILDER, 1);
	bt_watcher_shmem_request();
	bt_stats_shmem_request();
}

/*
 * Attach to (or create) our shared memory at postmaster start and in every
 * EXEC_BACKEND child.
 */
static void
bt_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bt_builder_shmem_init();
	bt_watcher_shmem_init();
	bt_stats_shmem_init();
	LWLockRelease(AddinShmemInitLock);

	bt_shmem_initialized = true;
}

bool
bt_shmem_ready(void)
{
	return bt_preloaded && bt_shmem_initialized;
}

void
bt_require_preload(const char *what)
{
	if (!bt_shmem_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires bingo_tune to be loaded via shared_preload_libraries", what),
				 errhint("Add bingo_tune to shared_preload_libraries in postgresql.conf (after pg_stat_statements) and restart the server.")));
}

/*
 * Set up a set-returning function's result as a tuplestore, materialised
 * (InitMaterializedSRF from PostgreSQL 15 on).
 */
void
bt_init_srf(FunctionCallInfo fcinfo)
{
#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	tupdesc;
	MemoryContext oldcxt;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->setDesc = CreateTupleDescCopy(tupdesc);
	MemoryContextSwitchTo(oldcxt);
#endif
}

/*
 * Run fn(arg) in a subtransaction of its own.  When fn returns, the
 * subtransaction is committed if keep is true and rolled back otherwise,
 * and the result is NULL.  When fn raises an error, the subtransaction is
 * rolled back and the error is returned, copied into the caller's memory
 * context: the caller decides which errors it reports and which it
 * rethrows (ReThrowError).  Either way the caller's memory context and
 * resource owner are current again on return.
 */
ErrorData *
bt_run_caught(void (*fn) (void *arg), void *arg, bool keep)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		if (keep)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * The schema extension extname is installed in, in this database (palloc'd),
 * or NULL when it is not installed.  Reads pg_extension directly, as
 * get_extension_oid() does.
 */
char *
bt_extension_schema(const char *extname)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *schema = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(extname));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		schema = get_namespace_name(((Form_pg_extension) GETSTRUCT(tup))->extnamespace);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return schema;
}
