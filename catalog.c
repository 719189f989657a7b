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
 * bt_catalog_wanted_indexes() turns the rows into the list of distinct
 * indexes they want: one entry per canonical definition, listing every
 * statement it serves, so an index that serves two statements is built
 * once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/keywords.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
/* after scanner.h, whose types it uses */
#include "parser/gram.h"
#include "utils/array.h"
#include "utils/builtins.h"

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

		if (tok != PARAM)
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

/*
 * Read the catalog and return its distinct wanted indexes, most urgent
 * first (lowest priority, then catalog name order).
 */
List *
bt_catalog_wanted_indexes(const char *only_statement)
{
	MemoryContext callercxt = CurrentMemoryContext;
	List	   *result = NIL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char		nulls[1] = {' '};
	int			ret;
	SPITupleTable *tuptable;
	uint64		nrows;

	args[0] = only_statement ? CStringGetTextDatum(only_statement) : (Datum) 0;
	if (only_statement == NULL)
		nulls[0] = 'n';

	/*
	 * Runs with the caller's search_path (advise(), apply()): the operator
	 * is named with its schema, so that none the caller's path reaches
	 * first can stand in for it.
	 */
	SPI_connect();
	ret = SPI_execute_with_args("SELECT name, schema, indexes, priority, statement"
								" FROM bingo_tune.watch"
								" WHERE $1 IS NULL OR name OPERATOR(pg_catalog.=) $1"
								" ORDER BY priority, name",
								1, argtypes, args, nulls, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read bingo_tune.watch: %s", SPI_result_code_string(ret));

	if (only_statement != NULL && SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no watched statement named \"%s\"", only_statement),
				 errhint("SELECT name FROM bingo_tune.watch lists them.")));

	/* kept apart: deriving a row below uses SPI too */
	tuptable = SPI_tuptable;
	nrows = SPI_processed;
	for (uint64 row = 0; row < nrows; row++)
	{
		HeapTuple	tup = tuptable->vals[row];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		char	   *name = SPI_getvalue(tup, desc, 1);
		char	   *schema = SPI_getvalue(tup, desc, 2);
		bool		derived;
		Datum		arr = SPI_getbinval(tup, desc, 3, &derived);
		int			priority = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		List	   *defs = NIL;
		ListCell   *lc2;
		MemoryContext oldcxt;

		if (!derived)
		{
			Datum	   *elems;
			bool	   *elemnulls;
			int			nelems;

			deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &elemnulls, &nelems);
			for (int i = 0; i < nelems; i++)
				if (!elemnulls[i])
					defs = lappend(defs, TextDatumGetCString(elems[i]));
		}

		oldcxt = MemoryContextSwitchTo(callercxt);
		/* indexes NULL: derived from the live tables, now (not from derive()) */
		if (derived && !bt_derive_in_progress())
			defs = bt_derive_indexes(SPI_getvalue(tup, desc, 5), schema, NULL);
		foreach(lc2, defs)
		{
			BtIndexDef *def;
			char	   *canonical;
			BtWantedIndex *want = NULL;
			ListCell   *lc;

			def = bt_indexdef_parse((char *) lfirst(lc2), schema);
			canonical = bt_indexdef_canonical(def);
			foreach(lc, result)
			{
				BtWantedIndex *w = lfirst(lc);

				if (strcmp(w->canonical, canonical) == 0)
					want = w;
			}
			if (want == NULL)
			{
				want = palloc0(sizeof(BtWantedIndex));
				want->def = def;
				want->canonical = canonical;
				want->name = bt_indexdef_name(def);
				want->priority = priority;
				result = lappend(result, want);
			}
			want->statements = lappend(want->statements, pstrdup(name));
		}
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();

	/* rows come in priority order, so first-seen order is most urgent first */
	return result;
}
