/*-------------------------------------------------------------------------
 *
 * queryid.c
 *		The queryid of a watched statement, as pg_stat_statements keys it.
 *
 * pg_stat_statements identifies a statement by the hash of its analysed
 * parse tree: case, whitespace and constants do not change it, but the
 * OIDs of the tables it reads do (a table dropped and created again gives
 * a new id).  So the id of a watched text can only be known in its
 * database, now: we parse and analyse it there, finding its names the way
 * the application finds them (bt_app_search_path), and hash the tree with
 * the server's own JumbleQuery().  Nothing is planned, and the statement
 * is not executed (but see "As whom").
 *
 * As whom.  Parse analysis is not free of other roles' code: coercing a
 * literal to a column's type runs that type's input function, and for a
 * domain (or an array, range or composite over one) its CHECK
 * constraints, which may call any function the domain's owner wrote.  The
 * owner of the application's tables controls those types.  So a watched
 * statement is analysed with the rights of the owner of the tables it
 * names, inside a security-restricted operation with a GUC nest level of
 * its own, as PostgreSQL runs ANALYZE and CREATE INDEX, never with the
 * rights of the superuser or the monitoring role that asked.
 * bt_statement_owner() finds that owner before anything is analysed: it
 * collects the relation names of the raw parse tree (FROM items, joins,
 * subqueries, CTEs, DML targets), resolves them with the application's
 * path without locking or opening them, and requires one owner
 * (relations built in at initdb, such as the system catalogs, are
 * trusted and left out); a statement that names no table is analysed as
 * the owner of its schema.  A name it cannot resolve (a table not created
 * yet, a CTE) is skipped; a CTE named like a table counts that table too,
 * which errs on the side of refusing.  After analysis,
 * bt_statement_analyse_as() checks that every relation in the analysed
 * range table has that owner.
 *
 * Names.  The application's session searches pg_catalog first (implicitly:
 * it is not on its search_path), then its schema.  bt_app_search_path() sets
 * exactly that: "<schema>", pg_temp.  Listing pg_catalog after the schema
 * would let an operator or function the schema's owner planted there (an
 * "=" for integers, say) win over the built-in one: the queryid would no
 * longer be the application's, and whoever then runs the statement would
 * run the planted code.  pg_temp is listed last so that a temporary table
 * named like an application table (in check()'s or report()'s caller's
 * session) never stands in for it, and a statement whose names resolve to
 * a temporary relation anyway (the application's table is missing, in the
 * middle of a migration) is treated as one whose table is missing.  Every
 * place that resolves a watched statement's names goes through this one
 * function: the queryid (catalog trigger, report()'s catalog pass, the
 * watcher, queryid()) and check().
 *
 * Parameters ($1, ...) get the types the server infers from their context,
 * which is what happens when a driver sends them untyped.
 *
 * Analysis fails while a table does not exist (before prepare_db ran);
 * that error is caught in a subtransaction and reported to the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parse_node.h"
#include "parser/parse_param.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

#include "bingo_tune.h"

PG_FUNCTION_INFO_V1(bt_queryid);

/* The owner a statement's relations agree on, while they are collected. */
typedef struct BtOwnerState
{
	const char *name;			/* the watched statement's name, or NULL */
	Oid			owner;			/* InvalidOid until the first relation */
	Oid			first_relid;	/* the relation owner was taken from */
} BtOwnerState;

static RawStmt *bt_raw_statement(const char *sql);
static bool bt_rangevar_walker(Node *node, void *context);
static bool bt_rte_walker(Node *node, void *context);
static char *bt_owner_note(BtOwnerState *st, Oid relid);
static void bt_analyse_and_jumble(void *arg);
static uint64 bt_relations_hash(Query *query);
static bool bt_statement_queryid_for(const char *sql, const char *schema, Oid member,
									 uint64 *queryid, uint64 *relations, char **why);

/* The one raw statement sql holds; more or fewer raise an error. */
static RawStmt *
bt_raw_statement(const char *sql)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);

	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a watched statement must be exactly one statement")));
	return linitial_node(RawStmt, raw);
}

/*
 * Parse and analyse sql with the current search_path; $n get the types
 * the server infers from their context.
 */
Query *
bt_statement_analyse(const char *sql, Oid **paramtypes, int *nparams)
{
	RawStmt    *raw = bt_raw_statement(sql);
	ParseState *pstate;
	Query	   *query;

	*paramtypes = NULL;
	*nparams = 0;

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = sql;
#if PG_VERSION_NUM >= 150000
	setup_parse_variable_parameters(pstate, paramtypes, nparams);
#else
	parse_variable_parameters(pstate, paramtypes, nparams);
#endif
	query = transformTopLevelStmt(pstate, raw);
	check_variable_parameters(pstate, query);
	free_parsestate(pstate);
	return query;
}

/*
 * Resolve names as the application does: pg_catalog first (implicitly),
 * then schema, then pg_temp.  Opens a GUC nest level and returns it; the
 * caller ends it with AtEOXact_GUC(false, nestlevel), and an error that
 * aborts the (sub)transaction ends it too.
 */
int
bt_app_search_path(const char *schema)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path",
							 psprintf("%s, pg_temp", quote_identifier(schema)),
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/* Collect the RangeVars of a raw (unanalysed) parse tree. */
static bool
bt_rangevar_walker(Node *node, void *context)
{
	List	  **rvs = (List **) context;

	if (node == NULL)
		return false;
	if (IsA(node, RangeVar))
	{
		*rvs = lappend(*rvs, node);
		return false;
	}
	return raw_expression_tree_walker(node, bt_rangevar_walker, context);
}

/* Collect the relation OIDs of an analysed query, subqueries and CTEs included. */
static bool
bt_rte_walker(Node *node, void *context)
{
	List	  **relids = (List **) context;

	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			*relids = list_append_unique_oid(*relids, rte->relid);
		return false;			/* range_table_walker goes on into subqueries */
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, bt_rte_walker, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, bt_rte_walker, context);
}

/*
 * The OIDs of the relations an analysed query reads, subqueries and CTEs
 * included, each once, in the order they are first met.
 */
List *
bt_query_relids(Query *query)
{
	List	   *relids = NIL;

	(void) query_tree_walker(query, bt_rte_walker, &relids, QTW_EXAMINE_RTES_BEFORE);
	return relids;
}

/*
 * Is query one plain SELECT (no locking clause, no data-modifying WITH)?
 * derive() and discovery take nothing else.
 */
bool
bt_query_is_plain_select(Query *query)
{
	return query->commandType == CMD_SELECT && query->utilityStmt == NULL &&
		!query->hasModifyingCTE && query->rowMarks == NIL;
}

/*
 * Note relid as a relation the statement reads.  Relations built in at
 * initdb (system catalogs and views) are left out: their owner is the
 * bootstrap superuser and their column types are built in.  Returns NULL,
 * or why the statement's names do not resolve as the application's: a
 * temporary relation (its own table is missing).  Relations of different
 * owners raise an error.
 */
static char *
bt_owner_note(BtOwnerState *st, Oid relid)
{
	HeapTuple	tup;
	Form_pg_class rel;
	Oid			relowner;

	if (relid < FirstNormalObjectId)
		return NULL;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return NULL;			/* dropped since it was looked up unlocked */
	rel = (Form_pg_class) GETSTRUCT(tup);
	relowner = rel->relowner;
	if (rel->relpersistence == RELPERSISTENCE_TEMP || isAnyTempNamespace(rel->relnamespace))
	{
		char	   *why = psprintf("relation \"%s\" is missing: the name resolves to a temporary relation",
								   NameStr(rel->relname));

		ReleaseSysCache(tup);
		return why;
	}
	ReleaseSysCache(tup);

	if (!OidIsValid(st->owner))
	{
		st->owner = relowner;
		st->first_relid = relid;
	}
	else if (relowner != st->owner)
	{
		char	   *first = OidIsValid(st->first_relid) ? get_rel_name(st->first_relid) : NULL;

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 st->name ?
				 errmsg("watched statement \"%s\" is not analysed: its tables have different owners",
						st->name) :
				 errmsg("the tables of the statement have different owners"),
				 first ?
				 errdetail("Tables \"%s\" and \"%s\" belong to different roles.",
						   first, get_rel_name(relid)) :
				 errdetail("Table \"%s\" does not belong to the role the statement was analysed as.",
						   get_rel_name(relid)),
				 errhint("bingo_tune analyses a statement, and check() runs it, as the owner of its tables; "
						 "give them one owner with ALTER TABLE ... OWNER TO.")));
	}
	return NULL;
}

/*
 * The role whose rights analyse sql (and check() runs it): the owner of the
 * relations it names, found as the application finds them, without
 * analysing the text.  A statement that names no table: the owner of its
 * schema.  name is the watched statement's name for messages (or NULL).
 * Returns InvalidOid with *why set when the names do not resolve as the
 * application's (a temporary relation) or the schema does not exist; tables
 * of different owners raise an error.  The caller's role decides which
 * schemas are visible; the catalog pass calls this as the catalog's owner.
 */
Oid
bt_statement_owner(const char *sql, const char *schema, const char *name, char **why)
{
	List	   *rvs = NIL;
	BtOwnerState st = {name, InvalidOid, InvalidOid};
	int			nestlevel;
	ListCell   *lc;

	(void) bt_rangevar_walker(bt_raw_statement(sql)->stmt, &rvs);

	nestlevel = bt_app_search_path(schema);
	foreach(lc, rvs)
	{
		Oid			relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);
		char	   *msg;

		if (!OidIsValid(relid))
			continue;			/* not created yet, or a CTE's name */
		msg = bt_owner_note(&st, relid);
		if (msg != NULL)
		{
			AtEOXact_GUC(false, nestlevel);
			*why = msg;
			return InvalidOid;
		}
	}
	AtEOXact_GUC(false, nestlevel);

	if (!OidIsValid(st.owner))
	{
		Oid			nsp = get_namespace_oid(schema, true);
		HeapTuple	tup;

		if (!OidIsValid(nsp))
		{
			*why = psprintf("schema \"%s\" does not exist", schema);
			return InvalidOid;
		}
		tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for schema %u", nsp);
		st.owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
		ReleaseSysCache(tup);
	}
	return st.owner;
}

/*
 * bt_statement_owner's answer for sql, or an error with its *why: analysis
 * cannot go on without the owner.
 */
Oid
bt_statement_owner_required(const char *sql, const char *schema)
{
	char	   *why = NULL;
	Oid			owner = bt_statement_owner(sql, schema, NULL, &why);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg_internal("%s", why)));
	return owner;
}

/*
 * Parse and analyse sql as owner (bt_statement_owner's answer), inside a
 * security-restricted operation and a GUC nest level of its own, with the
 * application's search path; then check that every relation the analysed
 * tree reads belongs to owner and none is temporary.  Errors propagate;
 * the (sub)transaction's abort restores the caller's role and settings.
 */
Query *
bt_statement_analyse_as(const char *sql, const char *schema, Oid owner, const char *name,
						Oid **paramtypes, int *nparams)
{
	Query	   *query;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	BtOwnerState st = {name, owner, InvalidOid};
	ListCell   *lc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nestlevel = bt_app_search_path(schema);

	query = bt_statement_analyse(sql, paramtypes, nparams);

	foreach(lc, bt_query_relids(query))
	{
		char	   *msg = bt_owner_note(&st, lfirst_oid(lc));

		if (msg != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg_internal("%s", msg)));
	}

	AtEOXact_GUC(false, nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec);
	return query;
}

/* bt_analyse_and_jumble's arguments and result */
typedef struct BtJumbleArgs
{
	const char *sql;
	const char *schema;
	Oid			member;
	uint64	   *relations;
	uint64		queryid;
} BtJumbleArgs;

/*
 * A hash of the OIDs of the relations query reads (0: none, or unknown).
 * From PostgreSQL 18 the jumble hashes relation names, not OIDs, so a
 * table dropped and created again keeps the queryid, and only this hash
 * tells the new table from the old one (stats.c, bt_stats_relations).
 */
static uint64
bt_relations_hash(Query *query)
{
	uint64		hash = 0;
	ListCell   *lc;

	foreach(lc, bt_query_relids(query))
	{
		Oid			relid = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		bool		mine = false;

		/*
		 * A relation this transaction created or renamed may yet be rolled
		 * back: no hash (0, unknown) until that commits, so that such DDL
		 * never costs the statement its figures.
		 */
		if (HeapTupleIsValid(tup))
		{
			mine = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
			ReleaseSysCache(tup);
		}
		if (mine)
			return 0;
		hash += hash_bytes_uint32_extended(relid, 0);
	}
	return hash;
}

/*
 * Analyse sql as the owner of its tables, with the application's search
 * path for schema, and set its queryid.  When member is valid, it must
 * have that owner's privileges.  When relations is not NULL, *relations
 * gets bt_relations_hash() of the statement.  Runs in
 * bt_statement_queryid_for's subtransaction; errors propagate.
 */
static void
bt_analyse_and_jumble(void *arg)
{
	BtJumbleArgs *a = (BtJumbleArgs *) arg;
	Oid			owner = bt_statement_owner_required(a->sql, a->schema);
	Query	   *query;
	Oid		   *paramtypes;
	int			nparams;

	if (OidIsValid(a->member) && !has_privs_of_role(a->member, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to analyse the statement as role \"%s\"",
						GetUserNameFromId(owner, false)),
				 errdetail("Analysing a statement may run code of the types of its tables' columns; "
						   "queryid() runs it with the rights of the tables' owner."),
				 errhint("Call queryid() as that role, a member of it or a superuser.")));

	query = bt_statement_analyse_as(a->sql, a->schema, owner, NULL, &paramtypes, &nparams);
#if PG_VERSION_NUM >= 160000
	(void) JumbleQuery(query);
#else
	(void) JumbleQuery(query, a->sql);
#endif
	if (a->relations != NULL)
		*a->relations = bt_relations_hash(query);
	a->queryid = query->queryId;
}

bool
bt_statement_queryid(const char *sql, const char *schema, uint64 *queryid, char **why)
{
	return bt_statement_queryid_for(sql, schema, InvalidOid, queryid, NULL, why);
}

bool
bt_statement_identity(const char *sql, const char *schema, uint64 *queryid,
					  uint64 *relations, char **why)
{
	return bt_statement_queryid_for(sql, schema, InvalidOid, queryid, relations, why);
}

/*
 * bt_statement_queryid, and when member is valid, a refusal (an error)
 * unless member has the privileges of the tables' owner.
 */
static bool
bt_statement_queryid_for(const char *sql, const char *schema, Oid member,
						 uint64 *queryid, uint64 *relations, char **why)
{
	BtJumbleArgs a = {sql, schema, member, relations, 0};
	ErrorData  *edata = bt_run_caught(bt_analyse_and_jumble, &a, true);

	if (edata == NULL)
	{
		*queryid = a.queryid;
		return true;
	}
	/* a cancel or timeout belongs to the caller's statement */
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	if (OidIsValid(member) &&
		(edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ||
		 edata->sqlerrcode == ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE))
		ReThrowError(edata);
	if (why)
		*why = pstrdup(edata->message);
	FreeErrorData(edata);
	return false;
}

/*
 * queryid(statement text, schema name) returns bigint
 *
 * NULL, with a notice saying why, when the statement cannot be analysed
 * here yet.  The text is analysed as the owner of its tables, like the
 * catalog's statements; a caller without that owner's privileges is
 * refused, since the text is the caller's own.
 */
Datum
bt_queryid(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *schema = NameStr(*PG_GETARG_NAME(1));
	uint64		queryid;
	char	   *why = NULL;

	if (!bt_statement_queryid_for(sql, schema, GetUserId(), &queryid, NULL, &why))
	{
		ereport(NOTICE,
				(errmsg("statement cannot be analysed in database \"%s\" yet: %s",
						get_database_name(MyDatabaseId), why)));
		PG_RETURN_NULL();
	}
	PG_RETURN_INT64((int64) queryid);
}
