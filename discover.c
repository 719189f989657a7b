/*-------------------------------------------------------------------------
 *
 * discover.c
 *		Discovery: index sets for slow statements the catalog does not watch.
 *
 * Off by default.  With bingo_tune.discover = advise or auto, each watcher
 * pass ends here (bt_discover_pass, outside any transaction).  It reads
 * pg_stat_statements for this database's top-level SELECTs whose mean
 * execution time exceeds bingo_tune.discover_min_time (those never derived
 * first, then the slowest in total), and skips those the watch catalog
 * holds (by queryid, or by text for a statement the application sends
 * with literals).  Each remaining one is derived (derive.c) as its
 * tables' owner, as for a catalog row whose indexes are NULL.  The outcome
 * goes to bingo_tune.discovered (one row per queryid, which
 * bingo_tune.accept() turns into a catalog row) and to bingo_tune.events
 * (source 'discover'): the set found, then per missing index a
 * recommendation (advise) or a build (auto, through the watchers' build
 * loop, bt_build_each(), after the pass's commit and so holding no
 * snapshot).
 * auto builds only while bingo_tune.mode is auto too; with mode = advise
 * discovery only recommends, and with mode = off (or on a standby) it does
 * nothing.
 *
 * The work per pass is bounded: one read of pg_stat_statements (at most
 * BT_DISCOVER_SCAN statements), a parse and analysis of each, and at most
 * BT_DISCOVER_PER_PASS derivations.  A statement is derived again only when
 * its basis changed: the watch catalog (a new row, a changed set), its
 * tables (recreated, rewritten, columns added or dropped, or their row
 * count changed by half or more), or the mode (advise to auto builds what
 * was only recommended).  A build that failed is tried again only then.
 * The basis is kept in bingo_tune.discovered, so a restarted watcher does
 * not derive again.
 *
 * Trust: the text comes from pg_stat_statements, so from any role that ran
 * a statement here.  It is parsed, analysed as the owner of its tables
 * (queryid.c: analysis may run the code of its column types, never with
 * the watcher's rights), and taken only if it is exactly one plain SELECT
 * (no locking clause, no INTO, no data-modifying WITH) over tables (not
 * views) outside the system schemas, that calls built-in functions and
 * operators only.  So planning it as the tables' owner (derive.c) runs no
 * function anyone but a superuser wrote.  Anything else is skipped with a
 * DEBUG1 line, once per queryid.  Names are looked up as the
 * statement's role finds them: along the search_path configured for it
 * (ALTER ROLE / DATABASE ... SET search_path, else "$user", public), the
 * first schema where the text analyses to the queryid pg_stat_statements
 * shows, else the first where it analyses at all.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "bingo_tune.h"

/* statements derived per pass, at most */
#define BT_DISCOVER_PER_PASS	3
/* statements read from pg_stat_statements per pass, at most */
#define BT_DISCOVER_SCAN		50
/* queryids remembered as not derivable (not a plain SELECT, ...) */
#define BT_DISCOVER_REJECTS		1000

/*---- GUC variables ----*/

int			bt_discover = BT_DISCOVER_OFF;
int			bt_discover_min_time = 1000;

static const struct config_enum_entry bt_discover_options[] = {
	{"off", BT_DISCOVER_OFF, false},
	{"advise", BT_DISCOVER_ADVISE, false},
	{"auto", BT_DISCOVER_AUTO, false},
	{NULL, 0, false}
};

/*---- Local state (the watcher's) ----*/

static MemoryContext btdc_long_cxt = NULL;
static List *btdc_rejected = NIL;	/* queryids skipped, as int64 in a List */
static MemoryContext btdc_pass_cxt = NULL;

/*---- Local types ----*/

/* one slow statement from pg_stat_statements */
typedef struct BtdcCandidate
{
	uint64		queryid;
	char	   *sql;
	Oid			roleid;
	double		mean_ms;
	int64		calls;
} BtdcCandidate;

/* one index to build after the commit, for the statement of queryid */
typedef struct BtdcJob
{
	BtBuildJob	build;			/* first: a BtdcJob is bt_build_each's job */
	uint64		queryid;
} BtdcJob;

/*---- Function declarations ----*/

static List *btdc_discover(bool build);
static char *btdc_pgss_schema(void);
static bool btdc_is_watched(BtdcCandidate *c, List *watched_ids, List *watched_texts);
static char *btdc_new_basis(BtdcCandidate *c, bool build, const char *fingerprint,
							char **schema);
static List *btdc_derive(BtdcCandidate *c, const char *schema, const char *basis,
						 bool build);
static char *btdc_detail(BtdcCandidate *c, const char *schema, List *set, const char *why);
static List *btdc_candidates(const char *pgss_schema);
static void btdc_watched(List **queryids, List **texts, char **fingerprint);
static bool btdc_rejected_before(uint64 queryid);
static void btdc_reject(uint64 queryid, const char *why);
static Query *btdc_check(BtdcCandidate *c, const char *schema, char **why);
static void btdc_check_step(void *arg);
static char *btdc_refusal(Query *query);
static bool btdc_user_function(Oid funcid, void *context);
static bool btdc_user_code_walker(Node *node, void *context);
static char *btdc_schema(BtdcCandidate *c, char **why);
static char *btdc_tables_basis(Query *query);
static char *btdc_stored_basis(uint64 queryid);
static void btdc_store(BtdcCandidate *c, const char *schema, List *set,
					   const char *why, const char *basis);
static void btdc_build(List *jobs);
static BtJobStep btdc_build_prepare(BtBuildJob *build, BtBuildResult *res, void *arg);
static void btdc_build_done(BtBuildJob *build, const BtBuildResult *res, bool built,
							double seconds, void *arg);

/*
 * Define the discovery settings.  Called from _PG_init when preloaded:
 * only the watchers discover.
 */
void
bt_discover_init(void)
{
	DefineCustomEnumVariable("bingo_tune.discover",
							 "Whether the watchers derive index sets for slow statements the catalog does not watch: off, advise (record them) or auto (build them).",
							 "Statements are read from pg_stat_statements; see bingo_tune.discovered and bingo_tune.accept().",
							 &bt_discover,
							 BT_DISCOVER_OFF,
							 bt_discover_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("bingo_tune.discover_min_time",
							"Mean execution time above which discovery derives an index set for a statement.",
							NULL,
							&bt_discover_min_time,
							1000,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/*
 * The end of a watcher pass: discover, record, then build (auto) holding
 * no snapshot.  Called outside any transaction.
 */
void
bt_discover_pass(void)
{
	List	   *jobs;
	bool		build;

	if (bt_discover == BT_DISCOVER_OFF || bt_mode == BT_MODE_OFF || RecoveryInProgress())
		return;
	build = bt_discover == BT_DISCOVER_AUTO && bt_mode == BT_MODE_AUTO;

	if (btdc_long_cxt == NULL)
		btdc_long_cxt = AllocSetContextCreate(TopMemoryContext, "bingo_tune discovery",
											  ALLOCSET_SMALL_SIZES);
	/* a pass that failed left its memory: it goes now */
	if (btdc_pass_cxt != NULL)
		MemoryContextDelete(btdc_pass_cxt);
	btdc_pass_cxt = AllocSetContextCreate(TopMemoryContext, "bingo_tune discovery pass",
										  ALLOCSET_DEFAULT_SIZES);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(btdc_pass_cxt);
	pgstat_report_activity(STATE_RUNNING, "bingo_tune watcher: discovering statements");
	jobs = btdc_discover(build);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(btdc_pass_cxt);

	if (jobs != NIL)
		btdc_build(jobs);
	pgstat_report_activity(STATE_IDLE, NULL);

	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextDelete(btdc_pass_cxt);
	btdc_pass_cxt = NULL;
}

/*
 * One discovery pass in the current transaction; returns the builds to
 * run after the commit (auto).
 */
static List *
btdc_discover(bool build)
{
	char	   *pgss_schema;
	List	   *candidates;
	List	   *watched_ids = NIL;
	List	   *watched_texts = NIL;
	char	   *fingerprint = NULL;
	List	   *jobs = NIL;
	int			derived = 0;
	ListCell   *lc;

	pgss_schema = btdc_pgss_schema();
	if (pgss_schema == NULL)
		return NIL;
	candidates = btdc_candidates(pgss_schema);
	if (candidates == NIL)
		return NIL;
	btdc_watched(&watched_ids, &watched_texts, &fingerprint);

	foreach(lc, candidates)
	{
		BtdcCandidate *c = (BtdcCandidate *) lfirst(lc);
		char	   *schema;
		char	   *basis;

		if (derived >= BT_DISCOVER_PER_PASS)
			break;
		CHECK_FOR_INTERRUPTS();
		if (btdc_is_watched(c, watched_ids, watched_texts) ||
			btdc_rejected_before(c->queryid))
			continue;
		basis = btdc_new_basis(c, build, fingerprint, &schema);
		if (basis == NULL)
			continue;
		derived++;
		jobs = list_concat(jobs, btdc_derive(c, schema, basis, build));
	}

	if (derived > 0)
		bt_prune_events();
	return jobs;
}

/*
 * The schema of pg_stat_statements when discovery can read it here (this
 * database has bingo_tune and pg_stat_statements, and the latter is
 * preloaded), else NULL.
 */
static char *
btdc_pgss_schema(void)
{
	if (!OidIsValid(get_extension_oid("bingo_tune", true)))
		return NULL;
	/* pg_stat_statements is usable only when preloaded (its GUCs exist then) */
	if (GetConfigOption("pg_stat_statements.max", true, false) == NULL)
		return NULL;
	return bt_extension_schema("pg_stat_statements");
}

/* does the catalog hold c, by queryid or by text? */
static bool
btdc_is_watched(BtdcCandidate *c, List *watched_ids, List *watched_texts)
{
	ListCell   *lc;

	foreach(lc, watched_ids)
		if (*(uint64 *) lfirst(lc) == c->queryid)
			return true;
	foreach(lc, watched_texts)
		if (strcmp((char *) lfirst(lc), c->sql) == 0)
			return true;
	return false;
}

/*
 * The basis c would be derived on now, with *schema where its names are
 * found; NULL when discovery does not take c (remembered, see
 * btdc_reject) or its last derivation had the same basis.
 */
static char *
btdc_new_basis(BtdcCandidate *c, bool build, const char *fingerprint, char **schema)
{
	char	   *why = NULL;
	Query	   *query;
	char	   *basis;
	char	   *stored;

	*schema = btdc_schema(c, &why);
	query = *schema ? btdc_check(c, *schema, &why) : NULL;
	MemoryContextSwitchTo(btdc_pass_cxt);
	if (query == NULL)
	{
		btdc_reject(c->queryid, why);
		return NULL;
	}
	basis = psprintf("%s; catalog %s; tables %s", build ? "auto" : "advise",
					 fingerprint, btdc_tables_basis(query));
	stored = btdc_stored_basis(c->queryid);
	MemoryContextSwitchTo(btdc_pass_cxt);
	if (stored != NULL && strcmp(stored, basis) == 0)
		return NULL;
	return basis;
}

/*
 * Derive c's set as its tables' owner, record it (bingo_tune.discovered,
 * the server log, bingo_tune.events), then per missing index a
 * recommendation (advise) or a job to build after the commit (auto): the
 * jobs are returned.
 */
static List *
btdc_derive(BtdcCandidate *c, const char *schema, const char *basis, bool build)
{
	char	   *why = NULL;
	List	   *set;
	char	   *detail;
	List	   *jobs = NIL;
	ListCell   *lc;

	set = bt_derive_indexes(c->sql, schema, &why);
	MemoryContextSwitchTo(btdc_pass_cxt);
	btdc_store(c, schema, set, why, basis);

	detail = btdc_detail(c, schema, set, why);
	ereport(LOG,
			(errmsg("bingo_tune: discovered statement (queryid " INT64_FORMAT ") in database \"%s\": %s",
					(int64) c->queryid, get_database_name(MyDatabaseId), detail)));
	bt_record_event("discover", NULL, "discovered", NULL, -1, detail, &c->queryid, NULL);

	foreach(lc, set)
	{
		char	   *canonical = (char *) lfirst(lc);
		BtIndexDef *def = bt_indexdef_parse(canonical, schema);
		char	   *name = bt_indexdef_name(def);
		Oid			relid;
		Oid			found;
		BtIndexState state = bt_index_state(def, &relid, &found);

		MemoryContextSwitchTo(btdc_pass_cxt);
		if (state != BT_INDEX_MISSING && state != BT_INDEX_INVALID)
			continue;
		if (build)
		{
			BtdcJob    *job = palloc0(sizeof(BtdcJob));
			BtWantedIndex *want = palloc0(sizeof(BtWantedIndex));

			want->def = def;
			want->canonical = canonical;
			want->name = name;
			job->build.want = want;
			job->queryid = c->queryid;
			jobs = lappend(jobs, job);
		}
		else
		{
			ereport(LOG,
					(errmsg("bingo_tune: discovered statement (queryid " INT64_FORMAT ") needs index \"%s\" (%s; discovery advises): %s",
							(int64) c->queryid, name, bt_index_state_name(state),
							bt_indexdef_create_sql(def))));
			bt_record_event("discover", NULL, "recommended", name, -1,
							psprintf("discovery, advise mode: not building %s", canonical),
							&c->queryid, NULL);
		}
	}
	return jobs;
}

/* what the log and the "discovered" event say of c's derivation */
static char *
btdc_detail(BtdcCandidate *c, const char *schema, List *set, const char *why)
{
	StringInfoData detail;
	ListCell   *lc;

	initStringInfo(&detail);
	appendStringInfo(&detail, "mean %.1f ms over " INT64_FORMAT " calls, names in schema %s: ",
					 c->mean_ms, c->calls, schema);
	if (set != NIL)
	{
		appendStringInfoString(&detail, "derived set ");
		foreach(lc, set)
			appendStringInfo(&detail, "%s%s", foreach_current_index(lc) > 0 ? "; " : "",
							 (char *) lfirst(lc));
	}
	else if (why != NULL)
		appendStringInfo(&detail, "no set derived: %s", why);
	else
		appendStringInfoString(&detail, "no index set lowers its cost");
	return detail.data;
}

/*
 * This database's top-level SELECTs in pg_stat_statements whose mean time
 * exceeds discover_min_time: those never derived first, then the slowest
 * in total.  A queryid run by
 * several roles counts once, with the text and role of its most calls.
 */
static List *
btdc_candidates(const char *pgss_schema)
{
	Oid			argtypes[4] = {OIDOID, FLOAT8OID, INT4OID, INT8ARRAYOID};
	Datum		args[4];
	List	   *result = NIL;
	char	   *sql;
	Datum	   *skip = palloc(sizeof(Datum) * (list_length(btdc_rejected) + 1));
	int			nskip = 0;
	ListCell   *lc;

	/* those skipped before do not take the places of others */
	foreach(lc, btdc_rejected)
		skip[nskip++] = Int64GetDatum(*(int64 *) lfirst(lc));
	args[0] = ObjectIdGetDatum(MyDatabaseId);
	args[1] = Float8GetDatum((double) bt_discover_min_time);
	args[2] = Int32GetDatum(BT_DISCOVER_SCAN);
	args[3] = PointerGetDatum(construct_array(skip, nskip, INT8OID, 8, FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	sql = psprintf("SELECT queryid, (pg_catalog.array_agg(query ORDER BY calls DESC))[1],"
				   " (pg_catalog.array_agg(userid ORDER BY calls DESC))[1],"
				   " pg_catalog.sum(total_exec_time) / pg_catalog.sum(calls), pg_catalog.sum(calls)::int8"
				   " FROM %s.pg_stat_statements(true) s"
				   " WHERE dbid = $1 AND toplevel AND calls > 0 AND queryid IS NOT NULL"
				   " AND query OPERATOR(pg_catalog.~*) '^\\s*select\\M'"
				   " AND queryid OPERATOR(pg_catalog.<>) ALL ($4)"
				   " GROUP BY queryid"
				   " HAVING pg_catalog.sum(total_exec_time) / pg_catalog.sum(calls) > $2"
				   " ORDER BY EXISTS (SELECT FROM bingo_tune.discovered d WHERE d.queryid = s.queryid),"
				   " pg_catalog.sum(total_exec_time) DESC, queryid LIMIT $3",
				   quote_identifier(pgss_schema));
	SPI_connect();
	if (SPI_execute_with_args(sql, 4, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_statements");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(btdc_pass_cxt);
		BtdcCandidate *c = palloc0(sizeof(BtdcCandidate));

		c->queryid = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		c->sql = SPI_getvalue(tup, desc, 2);
		c->roleid = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		c->mean_ms = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		c->calls = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		if (c->sql != NULL)
			result = lappend(result, c);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	MemoryContextSwitchTo(btdc_pass_cxt);
	return result;
}

/*
 * The catalog's statements (catalog.c reads them: bt_catalog_statements):
 * their queryids here and now, their texts, and a fingerprint of the whole
 * catalog (any change to it changes the basis of every discovered
 * statement).
 */
static void
btdc_watched(List **queryids, List **texts, char **fingerprint)
{
	ListCell   *lc;

	foreach(lc, bt_catalog_statements(fingerprint))
	{
		BtWatched  *w = (BtWatched *) lfirst(lc);
		uint64		qid;

		*texts = lappend(*texts, w->statement);
		if (bt_statement_queryid(w->statement, w->schema, &qid, NULL))
		{
			uint64	   *p;

			MemoryContextSwitchTo(btdc_pass_cxt);
			p = palloc(sizeof(uint64));
			*p = qid;
			*queryids = lappend(*queryids, p);
		}
		MemoryContextSwitchTo(btdc_pass_cxt);
	}
}

static bool
btdc_rejected_before(uint64 queryid)
{
	ListCell   *lc;

	foreach(lc, btdc_rejected)
		if (*(uint64 *) lfirst(lc) == queryid)
			return true;
	return false;
}

/* remember a statement discovery does not take (said once, at DEBUG1) */
static void
btdc_reject(uint64 queryid, const char *why)
{
	MemoryContext old = MemoryContextSwitchTo(btdc_long_cxt);
	uint64	   *p = palloc(sizeof(uint64));

	ereport(DEBUG1,
			(errmsg("bingo_tune: discovery skips statement with queryid " INT64_FORMAT ": %s",
					(int64) queryid, why ? why : "not a plain SELECT")));
	*p = queryid;
	if (list_length(btdc_rejected) >= BT_DISCOVER_REJECTS)
	{
		pfree(linitial(btdc_rejected));
		btdc_rejected = list_delete_first(btdc_rejected);
	}
	btdc_rejected = lappend(btdc_rejected, p);
	MemoryContextSwitchTo(old);
}

/*
 * The schema the statement's names are found in, as its role finds them
 * (see the file header); NULL, with *why, when it analyses in none.
 */
static char *
btdc_schema(BtdcCandidate *c, char **why)
{
	Oid			argtypes[2] = {OIDOID, OIDOID};
	Datum		args[2];
	char	   *path = NULL;
	char	   *rolname = NULL;
	List	   *names = NIL;
	char	   *first = NULL;
	ListCell   *lc;

	args[0] = ObjectIdGetDatum(MyDatabaseId);
	args[1] = ObjectIdGetDatum(c->roleid);
	SPI_connect();
	if (SPI_execute_with_args("SELECT (SELECT pg_catalog.substr(cfg, 13)"
							  " FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) cfg"
							  " WHERE s.setdatabase IN (0, $1) AND s.setrole IN (0, $2)"
							  " AND cfg OPERATOR(pg_catalog.~~) 'search_path=%'"
							  " ORDER BY s.setrole = 0, s.setdatabase = 0 LIMIT 1),"
							  " (SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = $2)",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_db_role_setting");
	if (SPI_processed == 1)
	{
		MemoryContext old = MemoryContextSwitchTo(btdc_pass_cxt);

		path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		rolname = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	MemoryContextSwitchTo(btdc_pass_cxt);

	if (path == NULL)
		path = pstrdup("\"$user\", public");
	if (!SplitIdentifierString(path, ',', &names))
	{
		*why = psprintf("cannot read the search_path of its role: %s", path);
		return NULL;
	}
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		uint64		qid;

		if (strcmp(name, "$user") == 0)
		{
			if (rolname == NULL)
				continue;
			name = rolname;
		}
		if (strcmp(name, "pg_catalog") == 0 || strncmp(name, "pg_temp", 7) == 0 ||
			!OidIsValid(get_namespace_oid(name, true)))
			continue;
		if (!bt_statement_queryid(c->sql, name, &qid, why))
		{
			MemoryContextSwitchTo(btdc_pass_cxt);
			continue;
		}
		MemoryContextSwitchTo(btdc_pass_cxt);
		/* the application's own queryid: these are its tables */
		if (qid == c->queryid)
			return pstrdup(name);
		if (first == NULL)
			first = pstrdup(name);
	}
	if (first == NULL && *why == NULL)
		*why = psprintf("no schema of its role's search_path (%s) has its tables", path);
	return first;
}

/* btdc_check's arguments and result */
typedef struct BtdcCheckArgs
{
	BtdcCandidate *c;
	const char *schema;
	char	   *why;
	Query	   *query;
} BtdcCheckArgs;

/*
 * Is the statement one discovery may derive (see the file header)?  The
 * analysed Query, or NULL with *why.  Errors are caught.
 */
static Query *
btdc_check(BtdcCandidate *c, const char *schema, char **why)
{
	BtdcCheckArgs a = {c, schema, NULL, NULL};
	ErrorData  *edata = bt_run_caught(btdc_check_step, &a, true);

	if (edata != NULL)
	{
		*why = pstrdup(edata->message);
		FreeErrorData(edata);
		return NULL;
	}
	*why = a.why;
	return a.query;
}

/* btdc_check's step, in its subtransaction */
static void
btdc_check_step(void *arg)
{
	BtdcCheckArgs *a = (BtdcCheckArgs *) arg;
	List	   *raw = raw_parser(a->c->sql, RAW_PARSE_DEFAULT);
	Node	   *stmt;
	Oid		   *paramtypes;
	int			nparams;
	Oid			owner;
	Query	   *query = NULL;

	stmt = list_length(raw) == 1 ? linitial_node(RawStmt, raw)->stmt : NULL;
	if (stmt == NULL || !IsA(stmt, SelectStmt) ||
		((SelectStmt *) stmt)->lockingClause != NIL ||
		((SelectStmt *) stmt)->intoClause != NULL)
	{
		a->why = "not one plain SELECT";
		return;
	}
	/* analysis may run the column types' code: as their owner */
	owner = bt_statement_owner(a->c->sql, a->schema, NULL, &a->why);
	if (OidIsValid(owner))
		query = bt_statement_analyse_as(a->c->sql, a->schema, owner, NULL,
										&paramtypes, &nparams);
	if (query == NULL)
		return;
	a->why = btdc_refusal(query);
	if (a->why == NULL)
		a->query = query;
}

/* why discovery does not take an analysed query; NULL if it does */
static char *
btdc_refusal(Query *query)
{
	char	   *why = NULL;
	ListCell   *lc;
	int			ntables = 0;

	if (!bt_query_is_plain_select(query))
		why = "not one plain SELECT";
	else if (btdc_user_code_walker((Node *) query, NULL))
		why = "calls a function or operator that is not built in";
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		Oid			nsp;

		if (why != NULL || rte->rtekind != RTE_RELATION)
			continue;
		ntables++;
		nsp = get_rel_namespace(rte->relid);
		if (rte->relid < FirstNormalObjectId || IsCatalogNamespace(nsp) ||
			IsToastNamespace(nsp) ||
			nsp == get_namespace_oid(BT_SCHEMA, true) ||
			nsp == get_namespace_oid("information_schema", true))
			why = psprintf("reads \"%s\", a table of the system or of bingo_tune",
						   get_rel_name(rte->relid));
		else if (rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_MATVIEW)
			why = psprintf("reads \"%s\", which is not a table",
						   get_rel_name(rte->relid));
	}
	if (why == NULL && !ntables)
		why = "reads no table";
	return why;
}

static bool
btdc_user_function(Oid funcid, void *context)
{
	return funcid >= FirstNormalObjectId;
}

/* true if the tree calls a function that is not built in */
static bool
btdc_user_code_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, btdc_user_function, context))
		return true;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, btdc_user_code_walker, context, 0);
	return expression_tree_walker(node, btdc_user_code_walker, context);
}

/*
 * What the derived set depends on in the statement's tables: each one's
 * identity, storage, columns, and its row count to within a factor of 2.
 */
static char *
btdc_tables_basis(Query *query)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		HeapTuple	tup;
		Form_pg_class cls;

		if (rte->rtekind != RTE_RELATION)
			continue;
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rte->relid));
		if (!HeapTupleIsValid(tup))
			continue;
		cls = (Form_pg_class) GETSTRUCT(tup);
		appendStringInfo(&buf, "%s%u/%u/%d/%d", buf.len > 0 ? "," : "",
						 rte->relid, cls->relfilenode, cls->relnatts,
						 (int) floor(log2(Max(cls->reltuples, 0) + 1)));
		ReleaseSysCache(tup);
	}
	return buf.data;
}

/* the basis of the last derivation of queryid, NULL if none */
static char *
btdc_stored_basis(uint64 queryid)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	char	   *basis = NULL;

	args[0] = Int64GetDatum((int64) queryid);
	SPI_connect();
	if (SPI_execute_with_args("SELECT basis FROM bingo_tune.discovered WHERE queryid = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read bingo_tune.discovered");
	if (SPI_processed == 1)
	{
		MemoryContext old = MemoryContextSwitchTo(btdc_pass_cxt);

		basis = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return basis;
}

/* record (or update) the statement's row in bingo_tune.discovered */
static void
btdc_store(BtdcCandidate *c, const char *schema, List *set, const char *why,
		   const char *basis)
{
	Oid			argtypes[9] = {INT8OID, TEXTOID, TEXTOID, OIDOID, FLOAT8OID, INT8OID,
	TEXTARRAYOID, TEXTOID, TEXTOID};
	Datum		args[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum	   *elems = palloc(sizeof(Datum) * (list_length(set) + 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, set)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	args[0] = Int64GetDatum((int64) c->queryid);
	args[1] = CStringGetTextDatum(c->sql);
	args[2] = CStringGetTextDatum(schema);
	args[3] = ObjectIdGetDatum(c->roleid);
	args[4] = Float8GetDatum(c->mean_ms);
	args[5] = Int64GetDatum(c->calls);
	args[6] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[7] = why ? CStringGetTextDatum(why) : (Datum) 0;
	if (why == NULL)
		nulls[7] = 'n';
	args[8] = CStringGetTextDatum(basis);

	SPI_connect();
	if (SPI_execute_with_args("INSERT INTO bingo_tune.discovered AS d"
							  " (queryid, statement, schema, role, mean_ms, calls, indexes, detail, basis)"
							  " VALUES ($1, $2, $3, (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = $4),"
							  " $5, $6, $7, $8, $9)"
							  " ON CONFLICT (queryid) DO UPDATE SET statement = EXCLUDED.statement,"
							  " schema = EXCLUDED.schema, role = EXCLUDED.role, mean_ms = EXCLUDED.mean_ms,"
							  " calls = EXCLUDED.calls, indexes = EXCLUDED.indexes, detail = EXCLUDED.detail,"
							  " basis = EXCLUDED.basis, derived_at = pg_catalog.now()",
							  9, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record in bingo_tune.discovered");
	SPI_finish();
	MemoryContextSwitchTo(btdc_pass_cxt);
}

/*
 * auto: build each job's index in turn through the watchers' build loop
 * (bt_build_each: holding no snapshot), and record the outcomes.
 */
static void
btdc_build(List *jobs)
{
	BtBuildLoop loop = {btdc_build_prepare, btdc_build_done, NULL};

	bt_build_each(jobs, &loop);
}

/*
 * Before a build: stop once discovery or the mode no longer builds; else
 * log and record that it starts, and commit.
 */
static BtJobStep
btdc_build_prepare(BtBuildJob *build, BtBuildResult *res, void *arg)
{
	BtdcJob    *job = (BtdcJob *) build;
	const char *name = build->want->name;

	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	if (bt_discover != BT_DISCOVER_AUTO || bt_mode != BT_MODE_AUTO)
		return BT_JOB_STOP;

	ereport(LOG,
			(errmsg("bingo_tune: discovered statement (queryid " INT64_FORMAT "): building index \"%s\"",
					(int64) job->queryid, name)));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	bt_record_event("discover", NULL, "started", name, -1, NULL, &job->queryid, NULL);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(btdc_pass_cxt);

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("bingo_tune watcher: building index %s", name));
	return BT_JOB_BUILD;
}

/* After a build: log the outcome and record it (if the extension is still there). */
static void
btdc_build_done(BtBuildJob *build, const BtBuildResult *res, bool built,
				double seconds, void *arg)
{
	BtdcJob    *job = (BtdcJob *) build;
	const char *outcome = bt_build_outcome_name(res->outcome);

	ereport(LOG,
			(errmsg("bingo_tune: discovered statement (queryid " INT64_FORMAT "): index \"%s\" %s in %.2f s%s%s",
					(int64) job->queryid, res->index_name, outcome,
					res->seconds, res->detail[0] ? ": " : "", res->detail)));

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("bingo_tune", true)))
		bt_record_event("discover", NULL, outcome, res->index_name, seconds, res->detail,
						&job->queryid, NULL);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(btdc_pass_cxt);
}
