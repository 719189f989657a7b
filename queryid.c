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
 * the server's own JumbleQuery().  Nothing is planned or executed.
 *
 * Names.  The application's session searches pg_catalog first (implicitly:
 * it is not on its search_path), then its schema.  bt_app_search_path() sets
 * exactly that: "<schema>", pg_temp.  Listing pg_catalog after the schema
 * would let an operator or function the schema's owner planted there (an
 * "=" for integers, say) win over the built-in one: the queryid would no
 * longer be the application's, and whoever then runs the statement would
 * run the planted code.  pg_temp is listed last so that a temporary table
 * named like an application table (in check()'s or report()'s caller's
 * session) never stands in for it.  Every place that resolves a watched
 * statement's names goes through this one function: the queryid (catalog
 * trigger, report()'s catalog pass, the watcher) and check().
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

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parse_node.h"
#include "parser/parse_param.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

#include "bingo_tune.h"

PG_FUNCTION_INFO_V1(bt_queryid);

/*
 * Parse and analyse sql with the current search_path; $n get the types
 * the server infers from their context.
 */
Query *
bt_statement_analyse(const char *sql, Oid **paramtypes, int *nparams)
{
	List	   *raw;
	ParseState *pstate;
	Query	   *query;

	*paramtypes = NULL;
	*nparams = 0;
	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a watched statement must be exactly one statement")));

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = sql;
#if PG_VERSION_NUM >= 150000
	setup_parse_variable_parameters(pstate, paramtypes, nparams);
#else
	parse_variable_parameters(pstate, paramtypes, nparams);
#endif
	query = transformTopLevelStmt(pstate, linitial_node(RawStmt, raw));
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

/*
 * Analyse sql with the application's search path for schema and return its
 * queryid.  Runs inside the caller's subtransaction; errors propagate.
 */
static uint64
bt_analyse_and_jumble(const char *sql, const char *schema)
{
	Query	   *query;
	Oid		   *paramtypes;
	int			nparams;
	int			nestlevel;

	nestlevel = bt_app_search_path(schema);

	query = bt_statement_analyse(sql, &paramtypes, &nparams);
#if PG_VERSION_NUM >= 160000
	(void) JumbleQuery(query);
#else
	(void) JumbleQuery(query, sql);
#endif

	AtEOXact_GUC(false, nestlevel);
	return query->queryId;
}

bool
bt_statement_queryid(const char *sql, const char *schema, uint64 *queryid, char **why)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		*queryid = bt_analyse_and_jumble(sql, schema);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (why)
			*why = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();

	return ok;
}

/*
 * queryid(statement text, schema name) returns bigint
 *
 * NULL, with a notice saying why, when the statement cannot be analysed
 * here yet.
 */
Datum
bt_queryid(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *schema = NameStr(*PG_GETARG_NAME(1));
	uint64		queryid;
	char	   *why = NULL;

	if (!bt_statement_queryid(sql, schema, &queryid, &why))
	{
		ereport(NOTICE,
				(errmsg("statement cannot be analysed in database \"%s\" yet: %s",
						get_database_name(MyDatabaseId), why)));
		PG_RETURN_NULL();
	}
	PG_RETURN_INT64((int64) queryid);
}
