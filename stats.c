/*-------------------------------------------------------------------------
 *
 * stats.c
 *		Per-statement latency histograms in shared memory, and the executor
 *		hooks that fill them.
 *
 * What is kept.  One entry per watched statement and database, keyed by
 * (database OID, queryid), at most bingo_tune.max_watched entries in all.
 * An entry holds two histograms: completed runs, and runs that ended in an
 * error (cancel, statement_timeout, client gone) by how long they ran.  A
 * histogram has fixed log-spaced buckets (ratio BT_HIST_RATIO from
 * BT_HIST_MIN_MS to BT_HIST_MAX_MS, plus one bucket below and one above),
 * and the exact count, sum, min and max; a percentile is interpolated
 * geometrically inside its bucket and clamped to [min, max], so it is
 * within 5 % of the true value.  An entry also keeps a summary of the
 * figures from before the first index build that served it (see
 * bt_stats_index_built), so the report can show what the builds bought.
 *
 * Who fills the table.  Entries are created by bt_stats_register(), which
 * report.c's catalog pass (report(), reset(), check(), the catalog trigger,
 * and the watcher through bt_stats_sync()) calls for each watched statement
 * whose queryid it could compute.
 *
 * Registration is never late.  A statement's queryid changes only when the
 * names in it resolve differently: a table created, dropped, renamed,
 * altered.  So the utility hook notes every such statement
 * (bt_ddl_changes_names), and such a transaction publishes, per database, a
 * generation counter in shared memory: bumped once before its commit
 * becomes visible (with a "commit in flight" count raised) and once after
 * its invalidation messages are sent and its locks released (count
 * lowered).  The executor
 * hook of a client's top-level statement compares the counter with the
 * generation this backend (or anyone in this database) last synced at, two
 * memory reads, and when they differ, or a commit is in flight, or this
 * backend ran such DDL itself, it runs the catalog pass itself before the
 * run is noted (bt_sync_if_stale).  Any run whose plan was made from the
 * new tables therefore finds its queryid registered, in every mode,
 * whatever the watcher's naptime.  That pass runs in a subtransaction that
 * is always rolled back (so the locks it took are released, and an error
 * in it never fails the client's statement), with the nesting level raised
 * (so its own queries are neither synced nor counted), and with a short
 * lock_timeout: a table locked by someone else leaves this backend stale,
 * to retry at its next statement.  On a hot standby no hook sees the DDL,
 * which arrives by replay; there each backend marks itself stale when it
 * processes an invalidation of pg_class's name cache.
 *
 * What the hooks time.  Only top-level runs (nesting level 0, as in
 * pg_stat_statements: statements run by functions, procedures, DO blocks,
 * EXPLAIN ANALYZE or check() are not counted), in regular backends, and
 * only runs that passed their permission checks: a run is noted once the
 * executor has started, and ExecutorStart is where the table, column and
 * function privileges are checked, so a role without SELECT that sends the
 * statement makes no failed run; and never runs that read a temporary table
 * (bt_reads_temp_table).  A run counts from the arrival of the
 * client's message (the statement timestamp, as statement_timeout does), so
 * parsing and planning are included, up to ExecutorEnd: what the
 * application waits for, less the network.  When one simple-query message
 * holds several statements they share that timestamp, so a watched
 * statement that is not the first counts from the end of the top-level
 * statement before it (see bt_note_statement_end).  ExecutorEnd is skipped
 * when a run fails, so ExecutorStart notes the running statement in
 * bt_running, and the transaction / subtransaction abort callbacks count it
 * as failed, with how long it ran.
 *
 * Locking.  bt_stats->lock (an LWLock of tranche "bingo_tune_stats")
 * protects the hash table: shared to look an entry up and update its
 * counters, exclusive to add, remove or reset entries.  The counters of an
 * entry are updated under its spinlock (mutex), so concurrent backends
 * holding the shared lock do not lose increments.  Before taking any lock
 * the hook tests a 4096-bit filter of the registered queryids, read without
 * a lock: an unwatched statement almost always costs that one memory read;
 * a false positive costs one hash lookup.  Bits are only set under the
 * exclusive lock, and a rebuild after removals never clears the bit of an
 * entry that remains, so a watched statement is never missed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "bingo_tune.h"

/* Bits in the lock-free pre-filter of registered queryids. */
#define BT_FILTER_WORDS		64
#define BT_FILTER_BITS		(BT_FILTER_WORDS * 64)

/*
 * Catalog-change generations, one per database hashed into this many slots
 * (two databases sharing a slot only cost each other an extra sync).
 */
#define BT_DDL_SLOTS		64
/* lock_timeout (ms) of the catalog pass run from a client's statement */
#define BT_LAZY_LOCK_TIMEOUT_MS	10

/* hashed as bytes: no implicit padding, every byte is set */
typedef struct BtStatsKey
{
	uint64		queryid;
	Oid			dboid;
	uint32		pad;			/* always 0 */
} BtStatsKey;

typedef struct BtStatsEntry
{
	BtStatsKey	key;			/* hash key: must be first */
	slock_t		mutex;			/* protects everything below */
	char		name[NAMEDATALEN];	/* watch name, for messages */
	int			nindexes;
	uint64		index_hash[BT_STATS_MAX_INDEXES];	/* hashes of canonical defs */
	TimestampTz since;			/* counters start here */
	TimestampTz registered;		/* last time a sync saw it in the catalog */
	BtHistogram done;			/* completed runs */
	BtHistogram failed;			/* failed runs, by how long they ran */
	bool		has_before;
	BtLatencySummary before;	/* figures before the first build */
	TimestampTz built_at;		/* when that build finished */
	char		built[BT_BUILT_MAXLEN]; /* index(es) built then */
	uint64		relations;		/* its relations' OIDs when last synced, 0 unknown */
	bool		pgss_rebase;	/* relations changed: take pgss_base anew */
	int64		pgss_base;		/* pg_stat_statements calls of the old tables */
} BtStatsEntry;

typedef struct BtStatsShared
{
	LWLock	   *lock;
	bool		full_warned;	/* said once that the table is full */
	pg_atomic_uint64 filter[BT_FILTER_WORDS];
	/* see "Registration is never late" above; slot = database OID % slots */
	pg_atomic_uint64 ddl_gen[BT_DDL_SLOTS]; /* catalog changes published */
	pg_atomic_uint32 ddl_inflight[BT_DDL_SLOTS];	/* their commits in flight */
	pg_atomic_uint64 ddl_synced[BT_DDL_SLOTS];	/* (database << 32) | gen of
												 * the last complete sync */
} BtStatsShared;

/* The run of a watched statement this backend has in flight, if any. */
typedef struct BtRunning
{
	bool		active;
	QueryDesc  *queryDesc;
	BtStatsKey	key;
	SubTransactionId subid;
	TimestampTz start;
} BtRunning;

/*---- GUC variables: bt_max_watched, defined in bingo_tune.c ----*/

/*---- Local state ----*/

static BtStatsShared *bt_stats = NULL;
static HTAB *bt_stats_hash = NULL;

static int	bt_nesting_level = 0;
static BtRunning bt_running;

/*
 * The last top-level statement that may have had another after it in its
 * client message: its statement timestamp and when it ended (see
 * bt_note_statement_end).
 */
static TimestampTz bt_prev_stmt_start = 0;
static TimestampTz bt_prev_end = 0;

/* registration state of this backend, see bt_sync_if_stale */
static uint64 bt_synced_gen = 0;	/* generation of our last complete sync */
static bool bt_sync_stale = false;	/* we changed names, or a sync was cut short */
static bool bt_ddl_in_xact = false; /* this transaction changed names */
static bool bt_ddl_publishing = false;	/* its commit (or abort) is in flight */

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;

/*---- Function declarations ----*/

static void bt_ExecutorStart(QueryDesc *queryDesc, int eflags);
#if PG_VERSION_NUM >= 180000
static void bt_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
						   uint64 count);
#else
static void bt_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
						   uint64 count, bool execute_once);
#endif
static void bt_ExecutorFinish(QueryDesc *queryDesc);
static void bt_ExecutorEnd(QueryDesc *queryDesc);
static void bt_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);
static void bt_release_callback(ResourceReleasePhase phase, bool isCommit,
								bool isTopLevel, void *arg);
static void bt_relname_changed(Datum arg, int cacheid, uint32 hashvalue);
static bool bt_ddl_changes_names(Node *stmt);
static void bt_ddl_publish_begin(void);
static void bt_ddl_publish_end(void);
static bool bt_sync_needed(void);
static void bt_sync_if_stale(void);

static int	bt_bucket_of(double ms);
static void bt_hist_reset(BtHistogram *h);
static void bt_hist_add(BtHistogram *h, int bucket, double ms);
static void bt_stats_record(const BtStatsKey *key, double ms, bool failed);
static void bt_filter_rebuild(void);
static BtStatsKey bt_make_key(Oid dboid, uint64 queryid);

/* ---------------------------------------------------------------------
 * Histograms
 * ---------------------------------------------------------------------
 */

/* lower bound of bucket i (1 .. BT_HIST_NBUCKETS - 2) */
static inline double
bt_bucket_lower(int i)
{
	return BT_HIST_MIN_MS * pow(BT_HIST_RATIO, i - 1);
}

static int
bt_bucket_of(double ms)
{
	int			i;

	if (!(ms >= BT_HIST_MIN_MS))	/* also catches NaN */
		return 0;
	i = 1 + (int) floor(log(ms / BT_HIST_MIN_MS) / log(BT_HIST_RATIO));
	if (i > BT_HIST_NBUCKETS - 2)
		return BT_HIST_NBUCKETS - 1;
	return i;
}

static void
bt_hist_reset(BtHistogram *h)
{
	memset(h, 0, sizeof(*h));
}

static void
bt_hist_add(BtHistogram *h, int bucket, double ms)
{
	if (h->count == 0 || ms < h->min_ms)
		h->min_ms = ms;
	if (h->count == 0 || ms > h->max_ms)
		h->max_ms = ms;
	h->count++;
	h->sum_ms += ms;
	h->buckets[bucket]++;
}

void
bt_hist_merge(BtHistogram *dst, const BtHistogram *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0 || src->min_ms < dst->min_ms)
		dst->min_ms = src->min_ms;
	if (dst->count == 0 || src->max_ms > dst->max_ms)
		dst->max_ms = src->max_ms;
	dst->count += src->count;
	dst->sum_ms += src->sum_ms;
	for (int i = 0; i < BT_HIST_NBUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

/*
 * The pct-th percentile (nearest rank) of h, in ms; -1 when h is empty.
 * Inside its bucket the value is interpolated geometrically by rank, then
 * clamped to the exact [min, max].
 */
double
bt_hist_percentile(const BtHistogram *h, double pct)
{
	uint64		rank;
	uint64		cum = 0;

	if (h->count == 0)
		return -1;
	rank = (uint64) ceil(pct / 100.0 * (double) h->count);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;

	for (int i = 0; i < BT_HIST_NBUCKETS; i++)
	{
		uint64		n = h->buckets[i];

		if (n > 0 && cum + n >= rank)
		{
			double		frac = ((double) (rank - cum) - 0.5) / (double) n;
			double		v;

			if (i == 0)
				v = BT_HIST_MIN_MS * frac;
			else if (i == BT_HIST_NBUCKETS - 1)
				v = h->max_ms;
			else
				v = bt_bucket_lower(i) * pow(BT_HIST_RATIO, frac);
			return Max(h->min_ms, Min(h->max_ms, v));
		}
		cum += n;
	}
	return h->max_ms;
}

void
bt_hist_summarize(const BtHistogram *done, const BtHistogram *failed,
				  BtLatencySummary *sum)
{
	memset(sum, 0, sizeof(*sum));
	sum->calls = done->count;
	sum->failed = failed->count;
	sum->mean_ms = done->count > 0 ? done->sum_ms / done->count : -1;
	sum->p50_ms = bt_hist_percentile(done, 50);
	sum->p90_ms = bt_hist_percentile(done, 90);
	sum->p99_ms = bt_hist_percentile(done, 99);
	sum->max_ms = done->count > 0 ? done->max_ms : -1;
	sum->failed_max_ms = failed->count > 0 ? failed->max_ms : -1;
}

/* ---------------------------------------------------------------------
 * Shared memory
 * ---------------------------------------------------------------------
 */

Size
bt_stats_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(BtStatsShared)),
					hash_estimate_size(bt_max_watched, sizeof(BtStatsEntry)));
}

void
bt_stats_shmem_request(void)
{
	RequestNamedLWLockTranche(BT_TRANCHE_STATS, 1);
}

/*
 * Called under AddinShmemInitLock from bingo_tune.c's shmem_startup hook.
 */
void
bt_stats_shmem_init(void)
{
	bool		found;
	HASHCTL		info;

	bt_stats = ShmemInitStruct("bingo_tune stats", sizeof(BtStatsShared), &found);
	if (!found)
	{
		bt_stats->lock = &(GetNamedLWLockTranche(BT_TRANCHE_STATS))->lock;
		bt_stats->full_warned = false;
		for (int i = 0; i < BT_FILTER_WORDS; i++)
			pg_atomic_init_u64(&bt_stats->filter[i], 0);
		/* generation 1: every backend syncs once, before its first run */
		for (int i = 0; i < BT_DDL_SLOTS; i++)
		{
			pg_atomic_init_u64(&bt_stats->ddl_gen[i], 1);
			pg_atomic_init_u32(&bt_stats->ddl_inflight[i], 0);
			pg_atomic_init_u64(&bt_stats->ddl_synced[i], 0);
		}
		elog(DEBUG1, "bingo_tune: %zu bytes of shared memory for %d watched statements (%zu bytes each)",
			 bt_stats_shmem_size(), bt_max_watched, sizeof(BtStatsEntry));
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(BtStatsKey);
	info.entrysize = sizeof(BtStatsEntry);
	bt_stats_hash = ShmemInitHash("bingo_tune stats hash",
								  bt_max_watched, bt_max_watched,
								  &info, HASH_ELEM | HASH_BLOBS);
}

static BtStatsKey
bt_make_key(Oid dboid, uint64 queryid)
{
	BtStatsKey	key;

	key.queryid = queryid;
	key.dboid = dboid;
	key.pad = 0;
	return key;
}

static inline bool
bt_filter_test(uint64 queryid)
{
	uint32		bit = (uint32) (queryid % BT_FILTER_BITS);

	return (pg_atomic_read_u64(&bt_stats->filter[bit / 64]) & (UINT64CONST(1) << (bit % 64))) != 0;
}

/* under the exclusive lock */
static void
bt_filter_set(uint64 queryid)
{
	uint32		bit = (uint32) (queryid % BT_FILTER_BITS);

	pg_atomic_fetch_or_u64(&bt_stats->filter[bit / 64], UINT64CONST(1) << (bit % 64));
}

/*
 * Recompute the filter from the remaining entries, under the exclusive
 * lock.  Each word is written once with a superset of the bits the
 * remaining entries need, so lock-free readers never miss one of them.
 */
static void
bt_filter_rebuild(void)
{
	uint64		words[BT_FILTER_WORDS];
	HASH_SEQ_STATUS status;
	BtStatsEntry *e;

	memset(words, 0, sizeof(words));
	hash_seq_init(&status, bt_stats_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		uint32		bit = (uint32) (e->key.queryid % BT_FILTER_BITS);

		words[bit / 64] |= UINT64CONST(1) << (bit % 64);
	}
	for (int i = 0; i < BT_FILTER_WORDS; i++)
		pg_atomic_write_u64(&bt_stats->filter[i], words[i]);
}

static void
bt_entry_clear_counters(BtStatsEntry *e, bool also_before)
{
	e->since = GetCurrentTimestamp();
	bt_hist_reset(&e->done);
	bt_hist_reset(&e->failed);
	if (also_before)
	{
		e->has_before = false;
		memset(&e->before, 0, sizeof(e->before));
		e->built_at = 0;
		e->built[0] = '\0';
	}
}

/*
 * Start tracking (dboid, queryid) as the watched statement name, or update
 * the name and index list of an entry that exists (its counters are kept).
 * index_canonicals is a List of canonical index definitions (char *) that
 * serve the statement; NIL keeps what an earlier call said.  Returns false,
 * with a warning the first time, when the table is full.
 */
bool
bt_stats_register(Oid dboid, uint64 queryid, const char *name, List *index_canonicals)
{
	BtStatsKey	key = bt_make_key(dboid, queryid);
	BtStatsEntry *e;
	bool		found;
	bool		warn = false;
	uint64		hashes[BT_STATS_MAX_INDEXES];
	int			nhashes = 0;
	ListCell   *lc;
	TimestampTz now;

	if (bt_stats == NULL || queryid == UINT64CONST(0))
		return false;
	now = GetCurrentTimestamp();

	foreach(lc, index_canonicals)
	{
		const char *def = lfirst(lc);

		if (nhashes < BT_STATS_MAX_INDEXES)
			hashes[nhashes++] = hash_bytes_extended((const unsigned char *) def, strlen(def), 0);
	}

	/* the common case: already there, nothing to change */
	LWLockAcquire(bt_stats->lock, LW_SHARED);
	e = hash_search(bt_stats_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		e->registered = now;
		if (strcmp(e->name, name) != 0)
			strlcpy(e->name, name, NAMEDATALEN);
		if (index_canonicals != NIL)
		{
			e->nindexes = nhashes;
			memcpy(e->index_hash, hashes, sizeof(uint64) * nhashes);
		}
		SpinLockRelease(&e->mutex);
		LWLockRelease(bt_stats->lock);
		return true;
	}
	LWLockRelease(bt_stats->lock);

	LWLockAcquire(bt_stats->lock, LW_EXCLUSIVE);
	if (hash_get_num_entries(bt_stats_hash) >= bt_max_watched &&
		hash_search(bt_stats_hash, &key, HASH_FIND, NULL) == NULL)
	{
		if (!bt_stats->full_warned)
		{
			bt_stats->full_warned = true;
			warn = true;
		}
		LWLockRelease(bt_stats->lock);
		if (warn)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("bingo_tune is already tracking %d statements; \"%s\" is not tracked",
							bt_max_watched, name),
					 errhint("Raise bingo_tune.max_watched and restart the server, or remove rows from bingo_tune.watch.")));
		return false;
	}
	e = hash_search(bt_stats_hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		LWLockRelease(bt_stats->lock);
		return false;
	}
	if (!found)
	{
		SpinLockInit(&e->mutex);
		e->nindexes = 0;
		e->relations = 0;
		e->pgss_rebase = false;
		e->pgss_base = 0;
		bt_entry_clear_counters(e, true);
		bt_filter_set(queryid);
	}
	strlcpy(e->name, name, NAMEDATALEN);
	e->registered = now;
	if (index_canonicals != NIL || !found)
	{
		e->nindexes = nhashes;
		memcpy(e->index_hash, hashes, sizeof(uint64) * nhashes);
	}
	LWLockRelease(bt_stats->lock);
	return true;
}

/*
 * A statement keeps its queryid when its tables are dropped and created
 * again from PostgreSQL 18 (the jumble hashes relation names, not OIDs),
 * so the key alone cannot tell the new tables' runs from the old ones'.
 * Each sync notes the hash of the OIDs the statement reads now; when it
 * changed, the figures so far were runs against tables that no longer
 * exist, and the entry starts afresh, as a new queryid would before 18.
 * The DDL that re-created the tables makes the next client statement sync
 * first (see "Registration is never late"), so no run against the new
 * tables is lost.  pg_stat_statements cannot be reset from here: the
 * pg_stat_statements calls read next (bt_stats_pgss_calls) become the
 * base that the watcher subtracts.
 */
bool
bt_stats_relations(Oid dboid, uint64 queryid, uint64 relations)
{
	BtStatsKey	key = bt_make_key(dboid, queryid);
	BtStatsEntry *e;
	bool		changed = false;

	if (bt_stats == NULL || relations == UINT64CONST(0))
		return false;

	LWLockAcquire(bt_stats->lock, LW_SHARED);
	e = hash_search(bt_stats_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		if (e->relations != UINT64CONST(0) && e->relations != relations)
		{
			bt_entry_clear_counters(e, true);
			e->pgss_rebase = true;
			changed = true;
		}
		e->relations = relations;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(bt_stats->lock);
	return changed;
}

/*
 * pg_stat_statements' calls of (dboid, queryid) that ran against the
 * statement's current tables, given all its calls: those since the first
 * read after bt_stats_relations saw the tables re-created under the same
 * queryid (PostgreSQL 18).  A base above calls means pg_stat_statements
 * was reset since, and is dropped.
 */
int64
bt_stats_pgss_calls(Oid dboid, uint64 queryid, int64 calls)
{
	BtStatsKey	key = bt_make_key(dboid, queryid);
	BtStatsEntry *e;

	if (bt_stats == NULL)
		return calls;

	LWLockAcquire(bt_stats->lock, LW_SHARED);
	e = hash_search(bt_stats_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		if (e->pgss_rebase)
		{
			e->pgss_base = calls;
			e->pgss_rebase = false;
		}
		else if (calls < e->pgss_base)
			e->pgss_base = 0;
		calls -= e->pgss_base;
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(bt_stats->lock);
	return calls;
}

/* whether prune keeps e: its queryid is current, or its name is one whose id is unknown now */
static bool
bt_entry_kept(BtStatsEntry *e, const uint64 *keep, int nkeep, List *keep_names)
{
	char		name[NAMEDATALEN];
	ListCell   *lc;

	for (int i = 0; i < nkeep; i++)
		if (keep[i] == e->key.queryid)
			return true;
	SpinLockAcquire(&e->mutex);
	strlcpy(name, e->name, NAMEDATALEN);
	SpinLockRelease(&e->mutex);
	foreach(lc, keep_names)
		if (strcmp((const char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * Forget every entry of database dboid whose queryid is not in keep[]: the
 * statements that left the catalog, or whose tables were recreated (a new
 * queryid).  Entries of the watched statements named in keep_names, whose
 * queryid cannot be computed right now, are kept: a passing failure must
 * not wipe their figures.
 */
void
bt_stats_prune(Oid dboid, const uint64 *keep, int nkeep, List *keep_names,
			   int grace_ms)
{
	HASH_SEQ_STATUS status;
	BtStatsEntry *e;
	bool		removed = false;
	TimestampTz fresh;

	if (bt_stats == NULL)
		return;

	/*
	 * Two syncs can overlap: one whose catalog read predates another
	 * session's change would forget the statement that change just
	 * registered, and the runs until the next sync would go unrecorded.
	 * Callers that may read a catalog older than someone else's change
	 * pass a grace period: an entry registered within it is kept, and goes
	 * at a later sync if it really left the catalog.
	 */
	fresh = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -grace_ms);

	/* look first under the shared lock: usually there is nothing to do */
	LWLockAcquire(bt_stats->lock, LW_SHARED);
	hash_seq_init(&status, bt_stats_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dboid == dboid && e->registered < fresh &&
			!bt_entry_kept(e, keep, nkeep, keep_names))
		{
			removed = true;
			hash_seq_term(&status);
			break;
		}
	}
	LWLockRelease(bt_stats->lock);
	if (!removed)
		return;

	LWLockAcquire(bt_stats->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, bt_stats_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dboid == dboid && e->registered < fresh &&
			!bt_entry_kept(e, keep, nkeep, keep_names))
			hash_search(bt_stats_hash, &e->key, HASH_REMOVE, NULL);
	}
	bt_filter_rebuild();
	bt_stats->full_warned = false;
	LWLockRelease(bt_stats->lock);
}

/*
 * Clear the counters (and the before-build figures) of one entry, or of
 * every entry of dboid when queryid is 0.  Returns how many were cleared.
 */
int
bt_stats_reset(Oid dboid, uint64 queryid)
{
	HASH_SEQ_STATUS status;
	BtStatsEntry *e;
	int			n = 0;

	if (bt_stats == NULL)
		return 0;

	LWLockAcquire(bt_stats->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, bt_stats_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dboid != dboid)
			continue;
		if (queryid != UINT64CONST(0) && e->key.queryid != queryid)
			continue;
		bt_entry_clear_counters(e, true);
		n++;
	}
	LWLockRelease(bt_stats->lock);
	return n;
}

/*
 * Copy out the figures of (dboid, queryid).  Returns false if not tracked.
 */
bool
bt_stats_fetch(Oid dboid, uint64 queryid, BtStatsSnapshot *snap)
{
	BtStatsKey	key = bt_make_key(dboid, queryid);
	BtStatsEntry *e;

	memset(snap, 0, sizeof(*snap));
	if (bt_stats == NULL)
		return false;

	LWLockAcquire(bt_stats->lock, LW_SHARED);
	e = hash_search(bt_stats_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		snap->since = e->since;
		snap->done = e->done;
		snap->failed = e->failed;
		snap->has_before = e->has_before;
		snap->before = e->before;
		snap->built_at = e->built_at;
		strlcpy(snap->built, e->built, BT_BUILT_MAXLEN);
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(bt_stats->lock);
	return e != NULL;
}

/*
 * An index (given by its canonical definition) was just built in dboid.
 *
 * "before" is the state before the first build, and every run is counted
 * once, before or after: so the first build (since the last reset) after
 * which the entry has runs to show keeps its figures so far as "before" and
 * starts counting afresh ("after"); later builds (its other indexes built
 * one by one while it runs, or apply() building three in a row) only add
 * their index to the list of what was built and never move a run from one
 * side to the other.  before.calls + after.calls is then every completed
 * run since the reset, and the same for failed runs.  built_at is when
 * "after" starts (a build with no run before it only sets built_at).
 */
void
bt_stats_index_built(Oid dboid, const char *canonical, const char *index_name)
{
	uint64		hash;
	HASH_SEQ_STATUS status;
	BtStatsEntry *e;
	TimestampTz now = GetCurrentTimestamp();

	if (bt_stats == NULL || canonical == NULL)
		return;
	hash = hash_bytes_extended((const unsigned char *) canonical, strlen(canonical), 0);

	LWLockAcquire(bt_stats->lock, LW_SHARED);
	hash_seq_init(&status, bt_stats_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		bool		serves = false;

		if (e->key.dboid != dboid)
			continue;
		SpinLockAcquire(&e->mutex);
		for (int i = 0; i < e->nindexes && !serves; i++)
			serves = (e->index_hash[i] == hash);
		if (serves && !e->has_before)
		{
			if (e->done.count + e->failed.count > 0)
			{
				bt_hist_summarize(&e->done, &e->failed, &e->before);
				e->before.since = e->since;
				e->before.until = now;
				e->has_before = true;
				e->built[0] = '\0';
				bt_entry_clear_counters(e, false);
				e->since = now;
			}
			e->built_at = now;
		}
		if (serves && e->has_before && strstr(e->built, index_name) == NULL)
		{
			if (e->built[0] != '\0')
				strlcat(e->built, ", ", BT_BUILT_MAXLEN);
			strlcat(e->built, index_name, BT_BUILT_MAXLEN);
		}
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(bt_stats->lock);
}

/*
 * Add one run to the entry of key, if it is tracked.
 */
static void
bt_stats_record(const BtStatsKey *key, double ms, bool failed)
{
	BtStatsEntry *e;
	int			bucket = bt_bucket_of(ms);

	LWLockAcquire(bt_stats->lock, LW_SHARED);
	e = hash_search(bt_stats_hash, key, HASH_FIND, NULL);
	if (e != NULL)
	{
		SpinLockAcquire(&e->mutex);
		bt_hist_add(failed ? &e->failed : &e->done, bucket, ms);
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(bt_stats->lock);
}

/* ---------------------------------------------------------------------
 * Registration on catalog change (see "Registration is never late")
 * ---------------------------------------------------------------------
 */

/*
 * Can stmt change what a watched statement's names resolve to, and so its
 * queryid?  Every DDL statement can (CREATE, DROP, ALTER, RENAME, SET
 * SCHEMA, CREATE EXTENSION, ...), except those that only add or remove
 * indexes, comments, privileges or roles, and temporary relations (the
 * watched statements never look in pg_temp first).
 */
static bool
bt_ddl_changes_names(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CreateStmt:
		case T_CreateForeignTableStmt:
			return ((CreateStmt *) stmt)->relation->relpersistence != RELPERSISTENCE_TEMP;
		case T_CreateTableAsStmt:
			return ((CreateTableAsStmt *) stmt)->into->rel->relpersistence != RELPERSISTENCE_TEMP;
		case T_ViewStmt:
			return ((ViewStmt *) stmt)->view->relpersistence != RELPERSISTENCE_TEMP;
		case T_DropStmt:
			return ((DropStmt *) stmt)->removeType != OBJECT_INDEX;
		case T_IndexStmt:
		case T_ReindexStmt:
		case T_CommentStmt:
		case T_SecLabelStmt:
		case T_GrantStmt:
		case T_GrantRoleStmt:
		case T_AlterDefaultPrivilegesStmt:
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:
		case T_AlterRoleSetStmt:
		case T_DropRoleStmt:
		case T_AlterSystemStmt:
		case T_RefreshMatViewStmt:
		case T_ClusterStmt:
			return false;
		default:
			return GetCommandLogLevel(stmt) == LOGSTMT_DDL;
	}
}

/*
 * A transaction that changed names is about to make that visible (commit,
 * or abort, which brings the old names back): bump the generation and
 * count it in flight, so that a backend that already sees the change also
 * sees that it must sync.
 */
static void
bt_ddl_publish_begin(void)
{
	int			slot = MyDatabaseId % BT_DDL_SLOTS;

	if (bt_stats == NULL || bt_ddl_publishing)
		return;
	pg_atomic_fetch_add_u32(&bt_stats->ddl_inflight[slot], 1);
	pg_atomic_fetch_add_u64(&bt_stats->ddl_gen[slot], 1);
	bt_ddl_publishing = true;
}

/*
 * Its invalidation messages are sent and its locks released: a sync from
 * now on resolves the names as they now are.  Bump again, and no longer
 * in flight.
 */
static void
bt_ddl_publish_end(void)
{
	int			slot = MyDatabaseId % BT_DDL_SLOTS;

	if (bt_stats == NULL || !bt_ddl_publishing)
		return;
	pg_atomic_fetch_add_u64(&bt_stats->ddl_gen[slot], 1);
	pg_atomic_fetch_sub_u32(&bt_stats->ddl_inflight[slot], 1);
	bt_ddl_publishing = false;
}

/*
 * A relation's name mapping changed (or the caches were reset).  On a hot
 * standby that is the only sign of replayed DDL: sync before the next run.
 */
static void
bt_relname_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	if (RecoveryInProgress())
		bt_sync_stale = true;
}

/* after the top-level transaction's locks are released (commit or abort) */
static void
bt_release_callback(ResourceReleasePhase phase, bool isCommit, bool isTopLevel,
					void *arg)
{
	if (phase == RESOURCE_RELEASE_AFTER_LOCKS && isTopLevel && bt_ddl_publishing)
		bt_ddl_publish_end();
}

/*
 * Must this backend sync before noting a run?  Lock-free: a read barrier
 * (this run's plan was made from catalogs read before: those reads must
 * not pass the ones below), then two or three reads of shared memory.
 */
static bool
bt_sync_needed(void)
{
	int			slot = MyDatabaseId % BT_DDL_SLOTS;
	uint64		gen;

	if (bt_sync_stale)
		return true;
	pg_read_barrier();
	if (pg_atomic_read_u32(&bt_stats->ddl_inflight[slot]) != 0)
		return true;
	gen = pg_atomic_read_u64(&bt_stats->ddl_gen[slot]);
	if (gen == bt_synced_gen)
		return false;
	/*
	 * Someone in this database synced at this generation: that will do.
	 * Not on a standby, where replayed DDL leaves the generation alone.
	 */
	if (pg_atomic_read_u64(&bt_stats->ddl_synced[slot]) ==
		(((uint64) MyDatabaseId) << 32 | (gen & 0xFFFFFFFF)) &&
		!RecoveryInProgress())
	{
		bt_synced_gen = gen;
		return false;
	}
	return true;
}

/*
 * In bt_sync_if_stale's subtransaction: the catalog pass, if bingo_tune is
 * installed here.  *complete is cleared when a table was locked.
 */
static void
bt_sync_step(void *arg)
{
	bool	   *complete = (bool *) arg;
	const char *lock_msg = _("canceling statement due to lock timeout");
	ListCell   *lc;

	/* catalog changes published up to gen are visible from here on */
	AcceptInvalidationMessages();
	if (!OidIsValid(get_extension_oid("bingo_tune", true)))
		return;

	/* never hold the client's statement up for long */
	(void) set_config_option("lock_timeout",
							 CppAsString2(BT_LAZY_LOCK_TIMEOUT_MS),
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	foreach(lc, bt_stats_sync_register())
	{
		BtWatched  *w = lfirst(lc);

		/* its table is locked right now: try again next time */
		if (!w->matched && w->why != NULL && strcmp(w->why, lock_msg) == 0)
			*complete = false;
	}
}

/*
 * Run the catalog pass from a client's top-level statement, before its run
 * is noted, when the names may have changed since this backend (or anyone
 * in this database) last did.  Safe in any statement: it runs in a
 * subtransaction that is always rolled back (releasing the locks analysis
 * took; the registrations live in shared memory and stay), as the
 * catalog's owner with the catalog pass's own search_path, with the
 * nesting level raised so that its own queries are neither synced nor
 * counted.  Its errors are logged, never raised, except a cancel, which
 * is the client's.
 */
static void
bt_sync_if_stale(void)
{
	int			slot = MyDatabaseId % BT_DDL_SLOTS;
	uint64		gen;
	bool		inflight;
	MemoryContext oldcxt = CurrentMemoryContext;
	MemoryContext cxt;
	bool		complete = true;
	ErrorData  *failure;

	pg_read_barrier();
	inflight = pg_atomic_read_u32(&bt_stats->ddl_inflight[slot]) != 0;
	gen = pg_atomic_read_u64(&bt_stats->ddl_gen[slot]);
	bt_sync_stale = false;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "bingo_tune sync",
								ALLOCSET_DEFAULT_SIZES);
	bt_nesting_level++;
	MemoryContextSwitchTo(cxt);
	/* rolled back: locks and GUCs go, the registrations in shmem stay */
	failure = bt_run_caught(bt_sync_step, &complete, false);
	MemoryContextSwitchTo(oldcxt);
	bt_nesting_level--;

	if (failure != NULL)
	{
		if (failure->sqlerrcode == ERRCODE_QUERY_CANCELED)
		{
			/* the client's cancel or statement_timeout: the run fails */
			bt_sync_stale = true;
			ReThrowError(failure);
		}
		if (failure->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			complete = false;
		else
			ereport(LOG,
					(errmsg("bingo_tune: could not register the watched statements before a run: %s",
							failure->message)));
	}
	MemoryContextDelete(cxt);

	if (!complete)
		bt_sync_stale = true;
	else if (!inflight)
	{
		bt_synced_gen = gen;
		pg_atomic_write_u64(&bt_stats->ddl_synced[slot],
							((uint64) MyDatabaseId) << 32 | (gen & 0xFFFFFFFF));
	}
}

/* ---------------------------------------------------------------------
 * Executor hooks
 * ---------------------------------------------------------------------
 */

void
bt_stats_install_hooks(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = bt_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = bt_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = bt_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = bt_ExecutorEnd;

	RegisterSubXactCallback(bt_subxact_callback, NULL);
	RegisterResourceReleaseCallback(bt_release_callback, NULL);
	CacheRegisterSyscacheCallback(RELNAMENSP, bt_relname_changed, (Datum) 0);
}

/*
 * A top-level statement ended.  If its message may hold another statement
 * after it (its text is followed by a semicolon: stmt_len is set), note
 * when it ended, so that a watched statement after it in the same message
 * counts from there rather than from the message's arrival.  Statements
 * sent on their own, as drivers send them, cost nothing here.
 */
static inline void
bt_note_statement_end(PlannedStmt *pstmt)
{
	if (pstmt->stmt_len != 0)
	{
		bt_prev_stmt_start = GetCurrentStatementStartTimestamp();
		bt_prev_end = GetCurrentTimestamp();
	}
}

/* the run in flight ended: count it with how long it ran */
static void
bt_running_done(bool failed)
{
	TimestampTz now = GetCurrentTimestamp();

	bt_running.active = false;
	bt_prev_stmt_start = GetCurrentStatementStartTimestamp();
	bt_prev_end = now;
	bt_stats_record(&bt_running.key, (double) (now - bt_running.start) / 1000.0, failed);
}

/*
 * Whether a plan reads a temporary table.  The catalog pass resolves a
 * watched statement's names with pg_temp last, so the application's runs
 * never read one; a run that does is another session's look-alike, which
 * from PostgreSQL 18 on (queryids hash relation names there, not OIDs)
 * would get the application's queryid.  Only watched runs get here.
 */
static bool
bt_reads_temp_table(PlannedStmt *pstmt)
{
	ListCell   *lc;

	foreach(lc, pstmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION &&
			get_rel_persistence(rte->relid) == RELPERSISTENCE_TEMP)
			return true;
	}
	return false;
}

static void
bt_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	uint64		queryid = queryDesc->plannedstmt->queryId;

	/* a client's statement after a catalog change: register first */
	if (bt_nesting_level == 0 && bt_stats != NULL &&
		queryid != UINT64CONST(0) && MyBackendType == B_BACKEND &&
		(eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && bt_sync_needed())
		bt_sync_if_stale();

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	/*
	 * Note a top-level run of a watched statement once the executor has
	 * started: its permission checks passed, so a run refused for lack of
	 * privileges is no run at all.  It counts from the arrival of the
	 * client's message (the statement timestamp, which statement_timeout
	 * counts from too), so parsing and planning are in; when an earlier
	 * statement of the same message ran, from the end of that one.
	 */
	if (bt_nesting_level == 0 && bt_stats != NULL &&
		queryid != UINT64CONST(0) && !IsParallelWorker() &&
		(eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		bt_filter_test(queryid) &&
		!bt_reads_temp_table(queryDesc->plannedstmt))
	{
		TimestampTz stmt_start = GetCurrentStatementStartTimestamp();

		bt_running.active = true;
		bt_running.queryDesc = queryDesc;
		bt_running.key = bt_make_key(MyDatabaseId, queryid);
		bt_running.subid = GetCurrentSubTransactionId();
		bt_running.start = stmt_start;
		if (stmt_start == bt_prev_stmt_start && bt_prev_end > stmt_start)
			bt_running.start = bt_prev_end;
	}
}

#if PG_VERSION_NUM >= 180000
static void
bt_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count)
#else
static void
bt_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
			   bool execute_once)
#endif
{
	bt_nesting_level++;
	PG_TRY();
	{
#if PG_VERSION_NUM >= 180000
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count);
		else
			standard_ExecutorRun(queryDesc, direction, count);
#else
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
#endif
	}
	PG_FINALLY();
	{
		bt_nesting_level--;
	}
	PG_END_TRY();
}

static void
bt_ExecutorFinish(QueryDesc *queryDesc)
{
	bt_nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		bt_nesting_level--;
	}
	PG_END_TRY();
}

static void
bt_ExecutorEnd(QueryDesc *queryDesc)
{
	if (bt_running.active && bt_running.queryDesc == queryDesc)
		bt_running_done(false);
	else if (bt_nesting_level == 0)
		bt_note_statement_end(queryDesc->plannedstmt);

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * Before a utility statement runs (the ProcessUtility hook in hooks.c).
 * Utility statements raise the nesting level, so that what a CALL, a DO
 * block, EXPLAIN ANALYZE or CREATE TABLE AS runs is not a top-level run.
 * EXECUTE is the exception, as in pg_stat_statements: the prepared
 * statement it runs is the client's statement.
 */
void
bt_stats_utility_start(Node *parsetree, BtStatsUtility *u)
{
	u->nest = !IsA(parsetree, ExecuteStmt);
	u->toplevel = (bt_nesting_level == 0);
	u->changes_names = bt_ddl_changes_names(parsetree);
	u->finish_prepared = false;

	/* COMMIT / ROLLBACK PREPARED publish another transaction's changes */
	if (IsA(parsetree, TransactionStmt) &&
		(((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED ||
		 ((TransactionStmt *) parsetree)->kind == TRANS_STMT_ROLLBACK_PREPARED))
	{
		bt_ddl_publish_begin();
		u->finish_prepared = bt_ddl_publishing;
	}

	if (u->nest)
		bt_nesting_level++;
}

/*
 * After it ran (completed), or failed: undo what bt_stats_utility_start
 * did.
 */
void
bt_stats_utility_end(PlannedStmt *pstmt, const BtStatsUtility *u, bool completed)
{
	/* a watched statement may follow it in the same message */
	if (completed && u->toplevel)
		bt_note_statement_end(pstmt);
	if (u->nest)
		bt_nesting_level--;
	if (u->finish_prepared)
		bt_ddl_publish_end();

	/* names may resolve differently now: here at once, elsewhere at commit */
	if (completed && u->changes_names)
	{
		bt_sync_stale = true;
		bt_ddl_in_xact = true;
	}
}

/*
 * A transaction ends (the transaction callback in hooks.c).  On abort, the
 * watched run in flight failed.  On commit there should be none left
 * (portals end before commit), but never carry one over.
 */
void
bt_stats_xact_end(XactEvent event)
{
	/* publish a change of names: before it becomes visible, and after */
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_ABORT:
			if (bt_ddl_in_xact)
				bt_ddl_publish_begin();
			bt_ddl_in_xact = false;
			break;
		case XACT_EVENT_PREPARE:
			/* made visible by COMMIT PREPARED, see bt_stats_utility_start */
			bt_ddl_in_xact = false;
			break;
		default:
			break;
	}

	if (!bt_running.active)
		return;
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			bt_running_done(true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			bt_running.active = false;
			break;
		default:
			break;
	}
}

/*
 * A subtransaction aborts.  The watched run failed if it started in that
 * very subtransaction (a client's SAVEPOINT); a nested one aborting inside
 * the run (a PL/pgSQL exception block) does not end the run.
 */
static void
bt_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && bt_running.active &&
		bt_running.subid == mySubid)
		bt_running_done(true);
}
