/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		The watch catalog: checking what goes into it and reading what it
 *		wants.
 *
 * bingo_tune.watch holds one row per watched statement.  Its validation
 * trigger (in the install script) calls the SQL functions defined here to
 * check statements and index definitions with the same parser the builder
 * uses, so a row that is stored is a row the builder can act on.
 *
 * This file is the only reader of the catalog: bt_catalog_read() returns
 * its rows (and bt_catalog_statements() discovery's view of them), read as
 * the catalog's owner (the extension's owner) with search_path
 * pg_catalog, pg_temp, so that no look-alike operator or function the
 * caller put on its path stands in for ours, and so that a role granted
 * EXECUTE on report() without being a member of pg_read_all_stats sees the
 * figures.
 * A row whose indexes are NULL gets the set derive() gives its statement
 * from the live tables, derived as the caller (derive() plans as the
 * tables' owner).
 *
 * bt_catalog_wanted_indexes() turns the rows into the list of distinct
 * indexes they want: one entry per canonical definition, listing every
 * statement it serves, so an index that serves two statements is built
 * once.  Its callers (advise(), apply(), the watcher, derive()) must be
 * allowed to read the catalog themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/keywords.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "bingo_tune.h"

/*
 * Highest parameter number a watched statement may use: a client cannot
 * send more (the protocol counts parameters in 16 bits), and analysis
 * allocates an array as long as the highest number ($200000000: 800 MB).
 */
#define BT_MAX_PARAM		65535

PG_FUNCTION_INFO_V1(bt_index_parse);
PG_FUNCTION_INFO_V1(bt_index_name);
PG_FUNCTION_INFO_V1(bt_statement_check);

/*
 * index_parse(definition text, default_schema name) returns text
 */
Datum
bt_index_parse(PG_FUNCTION_ARGS)
{
	char	   *deftext = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *schema = NameStr(*PG_GETARG_NAME(1));

	PG_RETURN_TEXT_P(cstring_to_text(bt_indexdef_canonical(bt_indexdef_parse(deftext, schema))));
}

/*
 * index_name(definition text, default_schema name) returns name
 */
Datum
bt_index_name(PG_FUNCTION_ARGS)
{
	char	   *deftext = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *schema = NameStr(*PG_GETARG_NAME(1));
	Name		result = palloc0(NAMEDATALEN);

	namestrcpy(result, bt_indexdef_name(bt_indexdef_parse(deftext, schema)));
	PG_RETURN_NAME(result);
}

/*
 * Refuse a statement that uses a parameter above $BT_MAX_PARAM.  Scans the
 * tokens, so that every parameter is found whatever the syntax around it;
 * sql has parsed already.
 */
static void
bt_check_param_numbers(const char *sql)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int			tok;

	yyscanner = scanner_init(sql, &yyextra, &ScanKeywords, ScanKeywordTokens);
	while ((tok = core_yylex(&yylval, &yylloc, yyscanner)) != 0)
	{
		const char *digits;
		size_t		ndigits;

		/*
		 * A parameter: the scanner's PARAM token, "$" and digits.  Told by
		 * its text, since gram.h, which numbers the tokens, is not installed
		 * from PostgreSQL 16 on; no other token starts so (a dollar quote's
		 * tag cannot start with a digit).
		 */
		if (sql[yylloc] != '$' || !isdigit((unsigned char) sql[yylloc + 1]))
			continue;
		/* from the text: a number too long for an int wraps in ival */
		digits = sql + yylloc + 1;
		ndigits = strspn(digits, "0123456789");
		while (ndigits > 1 && digits[0] == '0')
		{
			digits++;
			ndigits--;
		}
		if (ndigits > 5 || atoi(pnstrdup(digits, ndigits)) > BT_MAX_PARAM)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("watched statement uses parameter $%s, above $%d",
							pnstrdup(digits, ndigits), BT_MAX_PARAM),
					 errdetail("A client can send at most %d parameters with a statement.", BT_MAX_PARAM),
					 errhint("Number the statement's parameters $1, $2, ... as the application sends them.")));
	}
	scanner_finish(yyscanner);
}

/*
 * statement_check(statement text) returns void
 *
 * Only parses: the tables need not exist yet, and nothing is executed.
 */
Datum
bt_statement_check(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	MemoryContext cxt = CurrentMemoryContext;
	List	   *stmts = NIL;
	Node	   *stmt;

	/*
	 * A syntax error's position would point into the caller's query, not
	 * into the statement; say plainly which text failed instead.
	 */
	PG_TRY();
	{
		stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("watched statement does not parse: %s", edata->message),
				 errdetail("Statement: %s", sql)));
	}
	PG_END_TRY();

	if (list_length(stmts) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a watched statement must be exactly one statement, not %d",
						list_length(stmts)),
				 errhint("Store each statement the application sends in its own row.")));

	stmt = linitial_node(RawStmt, stmts)->stmt;
	if (!IsA(stmt, SelectStmt) && !IsA(stmt, InsertStmt) &&
		!IsA(stmt, UpdateStmt) && !IsA(stmt, DeleteStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a watched statement must be a SELECT, INSERT, UPDATE or DELETE"),
				 errhint("Utility statements have no plan that an index could serve.")));
	bt_check_param_numbers(sql);
	PG_RETURN_VOID();
}

/* C strings of a text[] (nulls become empty strings; the trigger refuses them) */
static char **
bt_text_array(Datum arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
	return out;
}

/*
 * The owner of bingo_tune.watch (the extension's owner).
 */
Oid
bt_catalog_owner(void)
{
	Oid			nsp = get_namespace_oid(BT_SCHEMA, false);
	Oid			relid = get_relname_relid("watch", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table bingo_tune.watch does not exist"),
				 errhint("Run CREATE EXTENSION bingo_tune CASCADE in this database.")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * A row whose indexes are NULL: its set is derived from the live tables,
 * now, as the caller (derive() plans as the tables' owner); none while a
 * derivation runs.
 */
static void
bt_catalog_derive(BtWatched *w)
{
	List	   *defs = NIL;
	ListCell   *lc;
	int			i = 0;

	if (!bt_derive_in_progress())
		defs = bt_derive_indexes(w->statement, w->schema, NULL);
	w->nindexes = list_length(defs);
	w->indexes = palloc(sizeof(char *) * Max(w->nindexes, 1));
	foreach(lc, defs)
		w->indexes[i++] = (char *) lfirst(lc);
}

/* the caller's role and settings while the catalog is read as its owner */
typedef struct BtCatalogReader
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
} BtCatalogReader;

/*
 * Become the catalog's owner, in a security-restricted operation with a
 * search_path the caller cannot fill with look-alike operators or
 * functions, in a GUC nest level of its own; bt_catalog_reader_end() ends
 * it.
 */
static void
bt_catalog_reader_begin(BtCatalogReader *r)
{
	Oid			owner = bt_catalog_owner();

	GetUserIdAndSecContext(&r->save_userid, &r->save_sec);
	SetUserIdAndSecContext(owner, r->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	r->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

static void
bt_catalog_reader_end(BtCatalogReader *r)
{
	AtEOXact_GUC(false, r->nestlevel);
	SetUserIdAndSecContext(r->save_userid, r->save_sec);
}

/*
 * Read the watch catalog (one row, or all in priority order) as the
 * catalog's owner.  The result is allocated in the caller's context.
 * Rows whose indexes are NULL get their derived set when derive is true,
 * and no indexes otherwise (a reader that needs only the statements).
 */
List *
bt_catalog_read(const char *only, bool derive)
{
	MemoryContext outer = CurrentMemoryContext;
	BtCatalogReader reader;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char		nulls[1] = {' '};
	int			ret;
	List	   *rows = NIL;
	List	   *derived = NIL;
	ListCell   *lc;

	args[0] = only ? CStringGetTextDatum(only) : (Datum) 0;
	if (only == NULL)
		nulls[0] = 'n';

	bt_catalog_reader_begin(&reader);

	/* not read-only: from the catalog's trigger, see the rows just written */
	SPI_connect();
	ret = SPI_execute_with_args("SELECT name, statement, schema,"
								" extract(epoch FROM budget) * 1000, percentile,"
								" indexes, params, priority"
								" FROM bingo_tune.watch"
								" WHERE $1 IS NULL OR name = $1"
								" ORDER BY priority, name",
								1, argtypes, args, nulls, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read bingo_tune.watch: %s", SPI_result_code_string(ret));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		arr;
		MemoryContext spicxt = MemoryContextSwitchTo(outer);
		BtWatched  *w = palloc0(sizeof(BtWatched));

		w->name = SPI_getvalue(row, desc, 1);
		w->statement = SPI_getvalue(row, desc, 2);
		w->schema = SPI_getvalue(row, desc, 3);
		w->budget_ms = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
														  SPI_getbinval(row, desc, 4, &isnull)));
		w->percentile = DatumGetFloat8(SPI_getbinval(row, desc, 5, &isnull));
		arr = SPI_getbinval(row, desc, 6, &isnull);
		if (isnull)
			derived = lappend(derived, w);
		else
			w->indexes = bt_text_array(arr, &w->nindexes);
		w->params = bt_text_array(SPI_getbinval(row, desc, 7, &isnull), &w->nparams);
		w->priority = DatumGetInt32(SPI_getbinval(row, desc, 8, &isnull));
		rows = lappend(rows, w);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();

	bt_catalog_reader_end(&reader);

	if (derive)
		foreach(lc, derived)
			bt_catalog_derive(lfirst(lc));

	if (only != NULL && rows == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("watched statement \"%s\" does not exist", only),
				 errhint("SELECT name FROM bingo_tune.watch lists the watched statements.")));
	return rows;
}

/*
 * Every row's name, statement and schema (BtWatched, in name order; its
 * indexes are neither read nor derived), read as bt_catalog_read reads,
 * and in *fingerprint the md5 of every row's name, statement, schema and
 * indexes ("empty" when there is no row): any change to the catalog
 * changes it.  Discovery skips these statements.  The result is allocated
 * in the caller's context.
 */
List *
bt_catalog_statements(char **fingerprint)
{
	MemoryContext outer = CurrentMemoryContext;
	BtCatalogReader reader;
	List	   *rows = NIL;

	bt_catalog_reader_begin(&reader);
	SPI_connect();
	if (SPI_execute("SELECT name, statement, schema::text, (SELECT pg_catalog.md5(pg_catalog.string_agg("
					"pg_catalog.concat_ws('|', name, statement, schema, indexes::text), '|' ORDER BY name))"
					" FROM bingo_tune.watch) FROM bingo_tune.watch ORDER BY name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read bingo_tune.watch");
	*fingerprint = "empty";
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spicxt = MemoryContextSwitchTo(outer);
		BtWatched  *w = palloc0(sizeof(BtWatched));

		w->name = SPI_getvalue(row, desc, 1);
		w->statement = SPI_getvalue(row, desc, 2);
		w->schema = SPI_getvalue(row, desc, 3);
		*fingerprint = SPI_getvalue(row, desc, 4);
		rows = lappend(rows, w);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();
	bt_catalog_reader_end(&reader);
	return rows;
}

/*
 * The entry of canonical in wanted (List of BtWantedIndex *), added (with
 * the given priority) if it is not there yet.
 */
static BtWantedIndex *
bt_wanted_entry(List **wanted, BtIndexDef *def, int priority)
{
	char	   *canonical = bt_indexdef_canonical(def);
	BtWantedIndex *want;
	ListCell   *lc;

	foreach(lc, *wanted)
	{
		want = lfirst(lc);
		if (strcmp(want->canonical, canonical) == 0)
			return want;
	}
	want = palloc0(sizeof(BtWantedIndex));
	want->def = def;
	want->canonical = canonical;
	want->name = bt_indexdef_name(def);
	want->priority = priority;
	*wanted = lappend(*wanted, want);
	return want;
}

/*
 * Read the catalog and return its distinct wanted indexes, most urgent
 * first (lowest priority, then catalog name order).
 *
 * The rows are read as the catalog's owner (bt_catalog_read), but only for
 * a caller who may read the catalog itself: advise() is granted to whoever
 * may read it, and that grant, not EXECUTE alone, decides.
 */
List *
bt_catalog_wanted_indexes(const char *only_statement)
{
	Oid			relid = get_relname_relid("watch", get_namespace_oid(BT_SCHEMA, false));

	if (OidIsValid(relid) &&
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT, ACLMASK_ALL) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, "watch");

	return bt_catalog_wanted_of(bt_catalog_read(only_statement, true));
}

/*
 * The distinct indexes rows (BtWatched *, from bt_catalog_read) want, in
 * the rows' order.  derive() reads the rows once for these and for the
 * rows of its own statement.
 */
List *
bt_catalog_wanted_of(List *rows)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, rows)
	{
		BtWatched  *w = lfirst(lc);

		for (int i = 0; i < w->nindexes; i++)
		{
			BtIndexDef *def = bt_indexdef_parse(w->indexes[i], w->schema);
			BtWantedIndex *want = bt_wanted_entry(&result, def, w->priority);

			want->statements = lappend(want->statements, pstrdup(w->name));
		}
	}

	/* rows come in priority order, so first-seen order is most urgent first */
	return result;
}
