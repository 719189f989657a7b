/*-------------------------------------------------------------------------
 *
 * bingo_tune.h
 *		Declarations shared by the files of the bingo_tune extension.
 *
 * Each .c file owns one concern; this header is the only place where they
 * meet, and it declares each function under the banner of the file that
 * defines it, in this order: bingo_tune.c owns _PG_init, the GUCs, the
 * shared memory layout and the shared helpers; hooks.c the ProcessUtility
 * hook and the transaction callback; indexdef.c parses and judges index
 * definitions; catalog.c reads (alone) and checks the watch catalog;
 * queryid.c computes a watched statement's queryid; derive.c derives index
 * sets; builder.c runs CREATE INDEX CONCURRENTLY in dynamic background
 * workers; watcher.c runs the launcher and the watchers; stats.c keeps the
 * latency histograms; report.c the budget report and the catalog pass.
 * apply.c, the SQL face of the builder (advise, apply), exports nothing.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BINGO_TUNE_H
#define BINGO_TUNE_H

#include "postgres.h"

#include "access/xact.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "storage/lwlock.h"

#define BT_SCHEMA			"bingo_tune"

/* Longest canonical index definition we accept (it travels in shmem). */
#define BT_DEF_MAXLEN		1024
/* Longest failure detail kept for a build. */
#define BT_DETAIL_MAXLEN	256
/* Concurrent builds the builder can track at once. */
#define BT_MAX_BUILDS		8

/*
 * LWLock tranches, one per file that keeps state in shared memory, named
 * "bingo_tune_<file>": the name pg_stat_activity shows as wait_event while
 * a backend waits for that lock.
 */
#define BT_TRANCHE_BUILDER	"bingo_tune_builder"
#define BT_TRANCHE_WATCHER	"bingo_tune_watcher"
#define BT_TRANCHE_STATS	"bingo_tune_stats"

/* ---- bingo_tune.c: GUCs, shared state, shared helpers ---- */

/* GUCs: the builder's (builder.c) */
extern int	bt_build_lock_timeout;	/* ms, 0 = wait for ever */
extern int	bt_build_maintenance_work_mem;	/* kB, -1 = server's */
/* the watchers' (watcher.c) */
extern int	bt_naptime;			/* s, between watcher passes */
extern int	bt_min_running;		/* ms, a run in progress counts after this */
extern int	bt_mode;			/* BtMode (watcher.c) */
extern int	bt_events_max;		/* rows kept in bingo_tune.events */
/* the histograms' (stats.c) */
extern int	bt_max_watched;		/* statements tracked in shared memory */

/* true once shared memory was set up by shared_preload_libraries */
extern bool bt_shmem_ready(void);
/* raise a clear error when the module was not preloaded */
extern void bt_require_preload(const char *what);
/* set up a set-returning function's materialised result */
extern void bt_init_srf(FunctionCallInfo fcinfo);
/* run fn(arg) in a subtransaction; NULL, or the error it raised (caught) */
extern ErrorData *bt_run_caught(void (*fn) (void *arg), void *arg, bool keep);
/* the schema extension extname is installed in, NULL when it is not */
extern char *bt_extension_schema(const char *extname);

/* ---- hooks.c: the ProcessUtility hook and the transaction callback ---- */

/* from _PG_init: install them */
extern void bt_hooks_install(void);

/* ---- indexdef.c: index definitions ---- */

/*
 * One index as the watch catalog describes it: a plain btree column list.
 * Names are stored as the identifiers they denote (unquoted, case kept).
 */
typedef struct BtIndexDef
{
	char	   *schema;
	char	   *table;
	int			nkeys;
	char	  **keys;
	bool	   *desc;
	bool	   *nulls_first;
	int			ninclude;
	char	  **include;
} BtIndexDef;

typedef enum BtIndexState
{
	BT_INDEX_PRESENT,			/* an equivalent valid index exists */
	BT_INDEX_MISSING,			/* table exists, no equivalent index */
	BT_INDEX_INVALID,			/* only invalid equivalents, none being built */
	BT_INDEX_NO_TABLE,			/* the table does not exist (yet) */
	BT_INDEX_BUILDING			/* an equivalent is being built by someone */
} BtIndexState;

extern BtIndexDef *bt_indexdef_parse(const char *text, const char *default_schema);
extern char *bt_indexdef_canonical(const BtIndexDef *def);
extern char *bt_indexdef_name(const BtIndexDef *def);
extern char *bt_indexdef_name_ext(const BtIndexDef *def, bool hashed);
extern char *bt_indexdef_create_sql(const BtIndexDef *def);
extern char *bt_indexdef_create_sql_named(const BtIndexDef *def, const char *name);
extern char *bt_indexdef_qualified_table(const BtIndexDef *def);
extern const char *bt_index_state_name(BtIndexState state);

/*
 * Judge the catalog state of def.  Needs a transaction.  *relid gets the
 * table's OID (InvalidOid if none); *found gets the equivalent index (the
 * valid one for PRESENT, the one being built for BUILDING, the invalid one
 * for INVALID), else InvalidOid.  Every judgement of an existing index goes
 * through here (indexdef.c, bt_index_matches).
 */
extern BtIndexState bt_index_state(const BtIndexDef *def, Oid *relid, Oid *found);

/*
 * All invalid indexes on relid equivalent to def whose build is not in
 * progress: the leftovers of failed builds, safe to drop.
 */
extern List *bt_invalid_equivalents(const BtIndexDef *def, Oid relid);
/* pid of the backend building index indexoid now, or 0 */
extern int	bt_index_builder_pid(Oid indexoid);

/* ---- catalog.c: the watch catalog ---- */

/* One distinct index the catalog wants, with the statements it serves. */
typedef struct BtWantedIndex
{
	BtIndexDef *def;
	char	   *canonical;		/* bt_indexdef_canonical(def) */
	char	   *name;			/* bt_indexdef_name(def) */
	List	   *statements;		/* watch names (char *), catalog order */
	int			priority;		/* lowest priority of those statements */
} BtWantedIndex;

/*
 * One row of bingo_tune.watch (bt_catalog_read); the catalog pass
 * (report.c) fills in its queryid here and now.
 */
typedef struct BtWatched
{
	char	   *name;
	char	   *statement;
	char	   *schema;
	double		budget_ms;
	double		percentile;
	int			nindexes;
	char	  **indexes;		/* definitions as stored */
	int			nparams;
	char	  **params;			/* sample values for $1, $2, ... */
	int			priority;
	bool		matched;		/* queryid computed */
	uint64		queryid;
	uint64		relations;		/* hash of its relations' OIDs, see queryid.c */
	char	   *why;			/* why not, if not */
} BtWatched;

/*
 * Read the catalog in the current database and return its distinct wanted
 * indexes (List of BtWantedIndex *), most urgent first, allocated in the
 * current memory context.  If only_statement is not NULL, only the indexes
 * of that watched statement.  Needs a transaction; uses SPI.
 */
extern List *bt_catalog_wanted_indexes(const char *only_statement);

/*
 * The distinct indexes rows (List of BtWatched *, as bt_catalog_read
 * returns them) want, as bt_catalog_wanted_indexes lists them.  The caller
 * has checked that whoever asked may read the catalog.
 */
extern List *bt_catalog_wanted_of(List *rows);

/* the owner of bingo_tune.watch (the extension's owner) */
extern Oid	bt_catalog_owner(void);

/*
 * The only reader of bingo_tune.watch: its rows (List of BtWatched *, in
 * priority then name order; only the one named only, if not NULL, an
 * error if there is none), read as the catalog's owner with search_path
 * pg_catalog, pg_temp, in the current memory context.  Rows whose indexes
 * are NULL get the set derived from the live tables now.  Uses SPI.
 */
extern List *bt_catalog_read(const char *only, bool derive);

/*
 * Discovery's view of the catalog: every row's name, statement and schema
 * (List of BtWatched *, in name order; indexes neither read nor derived),
 * read as bt_catalog_read reads, and in *fingerprint an md5 of the whole
 * catalog ("empty" when it has no row).  Uses SPI.
 */
extern List *bt_catalog_statements(char **fingerprint);

/* ---- queryid.c: matching statements the way pg_stat_statements does ---- */

/*
 * Set search_path as the application has it for a statement of schema:
 * pg_catalog first (implicitly), then schema, then pg_temp.  Returns the
 * GUC nest level it opened, for AtEOXact_GUC(false, nestlevel).  The one
 * place that decides how a watched statement's names resolve.
 */
extern int	bt_app_search_path(const char *schema);

/*
 * Compute the queryid pg_stat_statements gives the statement text sql when
 * its unqualified names are looked up as the application looks them up
 * (bt_app_search_path).  $n
 * parameters get the types the server infers, as when a driver sends them
 * untyped.  Parses and analyses only, as the owner of the statement's tables
 * (bt_statement_owner): analysis runs no planner or executor, but coercing
 * a literal runs type input functions and domain CHECKs, which may be that
 * owner's code.  Needs a transaction;
 * errors (a table that does not exist yet, say) are caught in a
 * subtransaction: returns false and, if why is not NULL, sets *why to the
 * error message.
 */
extern bool bt_statement_queryid(const char *sql, const char *schema,
								 uint64 *queryid, char **why);
/*
 * The same, and in *relations a hash of the OIDs of the relations the
 * statement reads (0 when it reads none): it changes when a table is
 * dropped and created again, which from PostgreSQL 18 keeps the queryid.
 */
extern bool bt_statement_identity(const char *sql, const char *schema,
								  uint64 *queryid, uint64 *relations, char **why);

/*
 * The role whose rights analyse a watched statement, and run it in check():
 * the one owner of the relations its raw parse tree names, resolved as the
 * application resolves them (or the owner of the schema when it names
 * none).  InvalidOid with *why set when a name resolves to a temporary
 * relation (the application's table is missing) or the schema does not
 * exist; tables of different owners raise an error.  name: the watched
 * statement's name for messages, or NULL.
 */
extern Oid	bt_statement_owner(const char *sql, const char *schema, const char *name,
							   char **why);

/* bt_statement_owner, with an error (undefined_table) where it has *why */
extern Oid	bt_statement_owner_required(const char *sql, const char *schema);

/* the relations an analysed query reads (List of Oid, each once) */
extern List *bt_query_relids(Query *query);

/* one plain SELECT: no locking clause, no data-modifying WITH */
extern bool bt_query_is_plain_select(Query *query);

/*
 * Parse and analyse sql as owner, security-restricted, with the
 * application's search path, and check that every relation the analysed
 * tree reads belongs to owner and is not temporary.  Errors propagate.
 */
extern Query *bt_statement_analyse_as(const char *sql, const char *schema, Oid owner,
									  const char *name, Oid **paramtypes, int *nparams);

/*
 * Parse and analyse sql (exactly one statement) with the current
 * search_path, inferring the types of its $n parameters as the server
 * does for a driver's untyped ones.  Errors propagate.
 */
extern Query *bt_statement_analyse(const char *sql, Oid **paramtypes, int *nparams);

/* ---- derive.c: the index set for any SELECT ---- */

extern int	bt_max_include_width;	/* GUC, bytes */
extern void bt_derive_init(void);

/*
 * The index set derive() gives sql (its names looked up in schema), as
 * canonical definitions (List of char *) in the current memory context, for
 * a catalog row whose indexes are NULL.  NIL when no set lowers the
 * statement's cost, or on error (caught: *why says it).  Needs a
 * transaction; uses SPI.
 */
extern List *bt_derive_indexes(const char *sql, const char *schema, char **why);
/* true while a derivation runs: catalog readers skip NULL rows then */
extern bool bt_derive_in_progress(void);
/*
 * The size in bytes the index def would have on table relid once built,
 * estimated from the table's statistics; -1 when they are missing.
 */
extern double bt_index_estimate_size(const BtIndexDef *def, Oid relid);

/* ---- builder.c: CREATE INDEX CONCURRENTLY in a dynamic worker ---- */

typedef enum BtBuildOutcome
{
	BT_BUILD_CREATED,			/* built from nothing */
	BT_BUILD_REBUILT,			/* dropped an invalid leftover, then built */
	BT_BUILD_PRESENT,			/* an equivalent valid index already existed */
	BT_BUILD_NO_TABLE,			/* the table does not exist */
	BT_BUILD_FAILED,			/* see detail */
	BT_BUILD_YIELDED			/* cancelled for the app's DDL; try later */
} BtBuildOutcome;

typedef struct BtBuildResult
{
	BtBuildOutcome outcome;
	char		index_name[NAMEDATALEN];
	char		detail[BT_DETAIL_MAXLEN];
	double		seconds;		/* wall time of the build */
} BtBuildResult;

extern Size bt_builder_shmem_size(void);
extern void bt_builder_shmem_init(void);

/* Our waits, each with its own wait event on PostgreSQL 17 and later. */
typedef enum BtWait
{
	BT_WAIT_NAP,				/* the launcher or a watcher between passes */
	BT_WAIT_BUILD,				/* waiting for an index build to end */
	BT_WAIT_YIELD				/* a build giving way to the app's DDL */
} BtWait;

extern uint32 bt_wait_event(BtWait which);
extern const char *bt_build_outcome_name(BtBuildOutcome outcome);

/*
 * Build one index (given by its canonical definition) in database dboid
 * through a dynamic background worker, and wait for it.  The caller must
 * hold no snapshot while this waits (see DESIGN.md, "two traps"): call it
 * outside any transaction, or right after committing with the catalog
 * snapshot invalidated.  If a build of the same index in the same database
 * is already running (started by someone else), waits for that one instead.
 * Interrupts are honoured while waiting; on error the worker we started is
 * told to stop.
 */
extern void bt_build_index(Oid dboid, const char *canonical, BtBuildResult *result);

/*
 * From the utility hook, before a utility statement runs: DDL on a table
 * being built cancels that build and waits for it to let go (builder.c).
 */
extern void bt_builder_yield_for(Node *parsetree);

/* The worker's entry point (named in BackgroundWorker.bgw_function_name). */
extern PGDLLEXPORT void bt_builder_main(Datum main_arg);

/*
 * The duration an outcome is recorded with: that of a build that ran
 * (created, rebuilt, failed, yielded); -1 (none) for an index found
 * present or a table not found.
 */
extern double bt_build_seconds(const BtBuildResult *res);

/* One index to build, for the statements (watch names, "a, b") it serves. */
typedef struct BtBuildJob
{
	BtWantedIndex *want;
	char	   *statements;
} BtBuildJob;

/* What a caller of bt_build_each() does before a job's build. */
typedef enum BtJobStep
{
	BT_JOB_BUILD,				/* build it (prepare left no transaction open) */
	BT_JOB_SKIP,				/* no build: prepare filled in the outcome */
	BT_JOB_STOP					/* no more builds */
} BtJobStep;

typedef struct BtBuildLoop
{
	/* before each build; may fill *res and skip the build */
	BtJobStep	(*prepare) (BtBuildJob *job, BtBuildResult *res, void *arg);
	/* after it, or after a skip (built = false); seconds from bt_build_seconds */
	void		(*done) (BtBuildJob *job, const BtBuildResult *res, bool built,
						 double seconds, void *arg);
	void	   *arg;
} BtBuildLoop;

/*
 * The one build loop of apply(), the watcher and discovery: for each job
 * (List of BtBuildJob *), in order, prepare, build holding no snapshot (the
 * catalog snapshot is dropped before each build), then done.
 */
extern void bt_build_each(List *jobs, const BtBuildLoop *loop);

/* ---- watcher.c: launcher and per-database watchers ---- */

typedef enum BtMode
{
	BT_MODE_AUTO,				/* build what the statements seen need */
	BT_MODE_ADVISE,				/* only record and log recommendations */
	BT_MODE_OFF					/* do nothing */
} BtMode;

extern Size bt_watcher_shmem_size(void);
extern void bt_watcher_shmem_request(void);
extern void bt_watcher_shmem_init(void);
/* from _PG_init: register the launcher */
extern void bt_watcher_register(void);
/* before a utility statement runs: pause watchers in the way of database commands */
extern void bt_watcher_utility(Node *parsetree);
/* at a transaction's end: wake the launcher after CREATE EXTENSION commits */
extern void bt_watcher_xact_end(XactEvent event);

extern PGDLLEXPORT void bt_launcher_main(Datum main_arg);
extern PGDLLEXPORT void bt_watcher_main(Datum main_arg);

/*
 * The one writer of bingo_tune.events: store one event from source
 * ("watcher", "apply", "discover").  statement, index_name, detail (also when empty),
 * queryid and run may be NULL, seconds < 0 for no duration.  Needs a
 * transaction; primary only.
 */
extern void bt_record_event(const char *source, const char *statement,
							const char *action, const char *index_name,
							double seconds, const char *detail,
							const uint64 *queryid, const int64 *run);
/* keep at most bingo_tune.events_max rows of bingo_tune.events (newest kept) */
extern void bt_prune_events(void);

/* ---- discover.c: index sets for slow statements the catalog lacks ---- */

typedef enum BtDiscover
{
	BT_DISCOVER_OFF,			/* discover nothing */
	BT_DISCOVER_ADVISE,			/* record the sets found */
	BT_DISCOVER_AUTO			/* and build them (when bingo_tune.mode is auto) */
} BtDiscover;

extern int	bt_discover;		/* GUC, BtDiscover */
extern int	bt_discover_min_time;	/* GUC, ms */
/* from _PG_init (preloaded): define the discovery settings */
extern void bt_discover_init(void);
/* the end of a watcher pass, outside any transaction */
extern void bt_discover_pass(void);

/* ---- stats.c: latency histograms in shared memory, executor hooks ---- */

/*
 * Latency histogram: bucket 0 holds runs under BT_HIST_MIN_MS, buckets 1 ..
 * NBUCKETS-2 grow by BT_HIST_RATIO from there up to BT_HIST_MAX_MS, the
 * last one holds longer runs.  ceil(ln(MAX/MIN) / ln(RATIO)) = 320.
 */
#define BT_HIST_MIN_MS		0.1
#define BT_HIST_MAX_MS		600000.0
#define BT_HIST_RATIO		1.05
#define BT_HIST_NBUCKETS	322
/* indexes of one statement whose builds are tracked for before/after */
#define BT_STATS_MAX_INDEXES	8
#define BT_BUILT_MAXLEN		256

typedef struct BtHistogram
{
	uint64		count;
	double		sum_ms;
	double		min_ms;
	double		max_ms;
	uint64		buckets[BT_HIST_NBUCKETS];
} BtHistogram;

/* Figures of one period; -1 where there was nothing to measure. */
typedef struct BtLatencySummary
{
	int64		calls;
	int64		failed;
	double		mean_ms;
	double		p50_ms;
	double		p90_ms;
	double		p99_ms;
	double		max_ms;
	double		failed_max_ms;
	TimestampTz since;
	TimestampTz until;
} BtLatencySummary;

/* A copy of one statement's shared entry. */
typedef struct BtStatsSnapshot
{
	TimestampTz since;			/* counters start here */
	BtHistogram done;			/* completed runs */
	BtHistogram failed;			/* failed runs, by how long they ran */
	bool		has_before;
	BtLatencySummary before;	/* before the first index build */
	TimestampTz built_at;
	char		built[BT_BUILT_MAXLEN]; /* the index(es) built then */
} BtStatsSnapshot;

extern Size bt_stats_shmem_size(void);
extern void bt_stats_shmem_request(void);
extern void bt_stats_shmem_init(void);
/* from _PG_init: executor hooks and abort callbacks */
extern void bt_stats_install_hooks(void);

/* What stats.c noted of a utility statement before it ran. */
typedef struct BtStatsUtility
{
	bool		nest;			/* raised the nesting level */
	bool		toplevel;		/* a client's statement */
	bool		changes_names;	/* DDL that may change queryids */
	bool		finish_prepared;	/* COMMIT / ROLLBACK PREPARED publishing */
} BtStatsUtility;

/* the ProcessUtility hook's steps: before the statement, and after it (or its error) */
extern void bt_stats_utility_start(Node *parsetree, BtStatsUtility *u);
extern void bt_stats_utility_end(PlannedStmt *pstmt, const BtStatsUtility *u,
								 bool completed);
/* at a transaction's end: publish name changes, count a failed run */
extern void bt_stats_xact_end(XactEvent event);

/*
 * Track (dboid, queryid) as watched statement name; index_canonicals lists
 * the canonical definitions of its indexes (NIL keeps the known ones).
 * Counters of an existing entry are kept.  false when the table is full.
 */
extern bool bt_stats_register(Oid dboid, uint64 queryid, const char *name,
							  List *index_canonicals);
/*
 * Forget dboid's entries whose queryid is not in keep[], except those of
 * the statements named in keep_names (char *): their id is unknown now,
 * and those registered less than grace_ms ago (see stats.c).
 */
extern void bt_stats_prune(Oid dboid, const uint64 *keep, int nkeep,
						   List *keep_names, int grace_ms);
/*
 * Note the relations hash of (dboid, queryid) at this sync: when it differs
 * from the one noted before, the tables were re-created under the same
 * queryid (PostgreSQL 18), and the entry's figures are cleared.  Returns
 * true then.
 */
extern bool bt_stats_relations(Oid dboid, uint64 queryid, uint64 relations);
/* pg_stat_statements' calls of (dboid, queryid) against its current tables */
extern int64 bt_stats_pgss_calls(Oid dboid, uint64 queryid, int64 calls);
/* clear one entry, or all of dboid when queryid is 0; returns how many */
extern int	bt_stats_reset(Oid dboid, uint64 queryid);
extern bool bt_stats_fetch(Oid dboid, uint64 queryid, BtStatsSnapshot *snap);
/*
 * An index was built in dboid: the statements it serves keep their figures
 * so far as "before" and count afresh, at the first build only (later ones
 * are added to what was built).  Called by bt_build_index().
 */
extern void bt_stats_index_built(Oid dboid, const char *canonical,
								 const char *index_name);

extern double bt_hist_percentile(const BtHistogram *h, double pct);
extern void bt_hist_merge(BtHistogram *dst, const BtHistogram *src);
extern void bt_hist_summarize(const BtHistogram *done, const BtHistogram *failed,
							  BtLatencySummary *sum);

/* ---- report.c: the budget report and the catalog pass ---- */

/*
 * Register every watched statement of the current database whose queryid
 * can be computed now, and forget the ones that left the catalog.  Returns
 * the catalog's rows (List of BtWatched *, priority order) with their
 * queryids, allocated in the current memory context.  Needs a transaction;
 * uses SPI.  The watcher calls this once per pass and works from the rows
 * it returns, so runs are tracked from the moment the app's tables exist.
 */
extern List *bt_stats_sync(void);
/* the same from a client's statement (stats.c): registers, forgets nothing */
extern List *bt_stats_sync_register(void);

#endif							/* BINGO_TUNE_H */
