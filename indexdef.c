/*-------------------------------------------------------------------------
 *
 * indexdef.c
 *		Index definitions of the watch catalog: parsing, naming, the SQL
 *		that builds them, and whether an equivalent index exists.
 *
 * The catalog steers what a superuser worker builds, so a definition is
 * never spliced into SQL.  It is parsed here, by hand, into identifiers and
 * sort directions; anything else (expressions, predicates, options,
 * statements) is rejected.  The SQL is then rebuilt from the parts with
 * quote_identifier, schema-qualified.
 *
 * Grammar (keywords case-insensitive, identifiers as in SQL: unquoted ones
 * are folded to lower case, "quoted" ones kept as written):
 *
 *		[schema .] table ( column [ASC|DESC] [NULLS {FIRST|LAST}] [, ...] )
 *			[ INCLUDE ( column [, ...] ) ]
 *
 * Whether an existing index can stand for a wanted one is decided in one
 * place, bt_index_matches(), and every caller (advise, apply, the watcher,
 * the builder, the report) goes through bt_index_state() to it.  An index
 * is equivalent when the planner can use it the same way: a plain btree
 * (not a partitioned index) on the same table, with the same key columns in
 * the same order, the same ASC/DESC and NULLS FIRST/LAST, each key column
 * under the column's own collation and an operator class of the same
 * family and input type as the column type's default btree class, no
 * expression and no predicate.  INCLUDE columns: ours must all be there,
 * more are fine (a wider covering index serves the same index-only scans).
 * Its name does not matter.  It is usable when valid, ready and live (not
 * being dropped); an equivalent that is not usable is either being built
 * right now by someone (a CREATE INDEX CONCURRENTLY or REINDEX
 * CONCURRENTLY in progress, as the creating backend reports it) or the
 * leftover of a build that failed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/relation.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "commands/progress.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "parser/scansup.h"
#include "pgstat.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "bingo_tune.h"

/*---- Parser state ----*/

typedef struct BtLexer
{
	const char *text;			/* whole definition, for messages */
	const char *p;				/* current position */
} BtLexer;

#if PG_VERSION_NUM >= 180000
pg_noreturn static void bt_def_error(BtLexer *lex, const char *expected);
#else
static void bt_def_error(BtLexer *lex, const char *expected) pg_attribute_noreturn();
#endif
static void bt_skip_space(BtLexer *lex);
static bool bt_accept_char(BtLexer *lex, char c);
static void bt_expect_char(BtLexer *lex, char c, const char *what);
static bool bt_accept_keyword(BtLexer *lex, const char *kw);
static char *bt_read_identifier(BtLexer *lex, const char *what);
static void bt_check_duplicate(BtLexer *lex, char **names, int n, const char *name);
static bool bt_index_matches(const BtIndexDef *def, Oid indexoid,
							 AttrNumber *keyatts, AttrNumber *incatts,
							 bool *valid);

/*
 * Raise the one error every malformed definition gets.
 */
static void
bt_def_error(BtLexer *lex, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid index definition \"%s\"", lex->text),
			 errdetail("Expected %s at character %d.", expected,
					   (int) (lex->p - lex->text) + 1),
			 errhint("Write an index as [schema.]table (column [ASC|DESC] [NULLS FIRST|LAST], ...) [INCLUDE (column, ...)]; "
					 "expressions, predicates and options are not accepted.")));
}

static void
bt_skip_space(BtLexer *lex)
{
	while (*lex->p && scanner_isspace(*lex->p))
		lex->p++;
}

static bool
bt_accept_char(BtLexer *lex, char c)
{
	bt_skip_space(lex);
	if (*lex->p == c)
	{
		lex->p++;
		return true;
	}
	return false;
}

static void
bt_expect_char(BtLexer *lex, char c, const char *what)
{
	if (!bt_accept_char(lex, c))
		bt_def_error(lex, what);
}

/*
 * Consume an unquoted keyword if it comes next (case-insensitive, and only
 * as a whole word).
 */
static bool
bt_accept_keyword(BtLexer *lex, const char *kw)
{
	size_t		len = strlen(kw);

	bt_skip_space(lex);
	if (pg_strncasecmp(lex->p, kw, len) == 0 &&
		!(isalnum((unsigned char) lex->p[len]) || lex->p[len] == '_' ||
		  lex->p[len] == '$' || IS_HIGHBIT_SET(lex->p[len])))
	{
		lex->p += len;
		return true;
	}
	return false;
}

static bool
bt_ident_start(char c)
{
	return isalpha((unsigned char) c) || c == '_' || IS_HIGHBIT_SET(c);
}

static bool
bt_ident_cont(char c)
{
	return bt_ident_start(c) || isdigit((unsigned char) c) || c == '$';
}

/*
 * Read one SQL identifier, unquoted (folded to lower case) or quoted.
 */
static char *
bt_read_identifier(BtLexer *lex, const char *what)
{
	StringInfoData buf;

	bt_skip_space(lex);
	initStringInfo(&buf);

	if (*lex->p == '"')
	{
		lex->p++;
		for (;;)
		{
			if (*lex->p == '\0')
				bt_def_error(lex, "a closing double quote");
			if (*lex->p == '"')
			{
				if (lex->p[1] == '"')
				{
					appendStringInfoChar(&buf, '"');
					lex->p += 2;
					continue;
				}
				lex->p++;
				break;
			}
			appendStringInfoChar(&buf, *lex->p++);
		}
		if (buf.len == 0)
			bt_def_error(lex, what);
	}
	else if (bt_ident_start(*lex->p))
	{
		const char *start = lex->p;
		char	   *folded;

		while (bt_ident_cont(*lex->p))
			lex->p++;
		folded = downcase_identifier(start, lex->p - start, false, false);
		appendStringInfoString(&buf, folded);
	}
	else
		bt_def_error(lex, what);

	if (buf.len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("identifier \"%s\" in index definition \"%s\" is too long",
						buf.data, lex->text),
				 errdetail("Identifiers are at most %d bytes long.", NAMEDATALEN - 1)));
	return buf.data;
}

static void
bt_check_duplicate(BtLexer *lex, char **names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" appears twice in index definition \"%s\"",
							name, lex->text)));
}

/*
 * Parse a definition; unqualified tables are taken to live in
 * default_schema.  Raises an error on anything but a plain column list.
 */
BtIndexDef *
bt_indexdef_parse(const char *text, const char *default_schema)
{
	BtLexer		lex;
	BtIndexDef *def = palloc0(sizeof(BtIndexDef));
	char	   *first;
	char	  **all = palloc(sizeof(char *) * INDEX_MAX_KEYS);
	int			nall = 0;

	lex.text = text;
	lex.p = text;

	def->keys = palloc(sizeof(char *) * INDEX_MAX_KEYS);
	def->desc = palloc(sizeof(bool) * INDEX_MAX_KEYS);
	def->nulls_first = palloc(sizeof(bool) * INDEX_MAX_KEYS);
	def->include = palloc(sizeof(char *) * INDEX_MAX_KEYS);

	first = bt_read_identifier(&lex, "a table name");
	if (bt_accept_char(&lex, '.'))
	{
		def->schema = first;
		def->table = bt_read_identifier(&lex, "a table name after the schema");
	}
	else
	{
		if (default_schema == NULL || default_schema[0] == '\0')
			bt_def_error(&lex, "a schema-qualified table name");
		def->schema = pstrdup(default_schema);
		def->table = first;
	}

	bt_expect_char(&lex, '(', "\"(\" opening the key column list");
	do
	{
		char	   *col;
		bool		desc = false;
		bool		nulls_first;

		if (nall >= INDEX_MAX_KEYS)
			bt_def_error(&lex, psprintf("at most %d columns", INDEX_MAX_KEYS));
		col = bt_read_identifier(&lex, "a column name");
		bt_check_duplicate(&lex, all, nall, col);

		if (bt_accept_keyword(&lex, "DESC"))
			desc = true;
		else
			(void) bt_accept_keyword(&lex, "ASC");
		nulls_first = desc;
		if (bt_accept_keyword(&lex, "NULLS"))
		{
			if (bt_accept_keyword(&lex, "FIRST"))
				nulls_first = true;
			else if (bt_accept_keyword(&lex, "LAST"))
				nulls_first = false;
			else
				bt_def_error(&lex, "FIRST or LAST after NULLS");
		}
		def->keys[def->nkeys] = col;
		def->desc[def->nkeys] = desc;
		def->nulls_first[def->nkeys] = nulls_first;
		def->nkeys++;
		all[nall++] = col;
	} while (bt_accept_char(&lex, ','));
	bt_expect_char(&lex, ')', "\",\" or \")\" after a key column");

	if (bt_accept_keyword(&lex, "INCLUDE"))
	{
		bt_expect_char(&lex, '(', "\"(\" opening the INCLUDE column list");
		do
		{
			char	   *col;

			if (nall >= INDEX_MAX_KEYS)
				bt_def_error(&lex, psprintf("at most %d columns", INDEX_MAX_KEYS));
			col = bt_read_identifier(&lex, "a column name");
			bt_check_duplicate(&lex, all, nall, col);
			def->include[def->ninclude++] = col;
			all[nall++] = col;
		} while (bt_accept_char(&lex, ','));
		bt_expect_char(&lex, ')', "\",\" or \")\" after an INCLUDE column");
	}

	bt_skip_space(&lex);
	if (*lex.p != '\0')
		bt_def_error(&lex, "the end of the definition");

	if (strlen(bt_indexdef_create_sql(def)) >= BT_DEF_MAXLEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("index definition \"%s\" is too long", text),
				 errdetail("The statement that builds it must be shorter than %d bytes.",
						   BT_DEF_MAXLEN)));
	return def;
}

/*
 * Append the column lists, quoted: "(a DESC, b) INCLUDE (c)".
 */
static void
bt_append_columns(StringInfo buf, const BtIndexDef *def)
{
	appendStringInfoChar(buf, '(');
	for (int i = 0; i < def->nkeys; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		appendStringInfoString(buf, quote_identifier(def->keys[i]));
		if (def->desc[i])
			appendStringInfoString(buf, " DESC");
		if (def->nulls_first[i] != def->desc[i])
			appendStringInfoString(buf, def->nulls_first[i] ? " NULLS FIRST" : " NULLS LAST");
	}
	appendStringInfoChar(buf, ')');
	if (def->ninclude > 0)
	{
		appendStringInfoString(buf, " INCLUDE (");
		for (int i = 0; i < def->ninclude; i++)
		{
			if (i > 0)
				appendStringInfoString(buf, ", ");
			appendStringInfoString(buf, quote_identifier(def->include[i]));
		}
		appendStringInfoChar(buf, ')');
	}
}

char *
bt_indexdef_qualified_table(const BtIndexDef *def)
{
	return quote_qualified_identifier(def->schema, def->table);
}

/*
 * The canonical text: schema-qualified, quoted where needed, default sort
 * options left out.  Two definitions that mean the same index have the same
 * canonical text.
 */
char *
bt_indexdef_canonical(const BtIndexDef *def)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, bt_indexdef_qualified_table(def));
	appendStringInfoChar(&buf, ' ');
	bt_append_columns(&buf, def);
	return buf.data;
}

/*
 * Append name to buf in lower case with anything but [a-z0-9_] folded to
 * '_'; returns true if that changed anything.
 */
static bool
bt_append_name_part(StringInfo buf, const char *name)
{
	bool		changed = false;

	for (const char *c = name; *c; c++)
	{
		if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')
			appendStringInfoChar(buf, *c);
		else
		{
			appendStringInfoChar(buf, '_');
			changed = true;
		}
	}
	return changed;
}

/*
 * The deterministic name of the index bingo_tune builds for def:
 * bingo_tune_<table>_<key>[_desc]..._incl_<col>...  When that does not fit
 * in NAMEDATALEN, or the identifiers needed folding, it is cut short and a
 * hash of the canonical definition keeps it unique.
 */
char *
bt_indexdef_name(const BtIndexDef *def)
{
	return bt_indexdef_name_ext(def, false);
}

/*
 * The same, with the hash of the canonical definition always added: the
 * name the builder falls back to when the plain one is taken in the schema
 * by something that is not an equivalent index (table "a_b" column "c" and
 * table "a" column "b_c" would both be bingo_tune_a_b_c).
 */
char *
bt_indexdef_name_ext(const BtIndexDef *def, bool hashed)
{
	StringInfoData buf;
	bool		changed;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "bingo_tune_");
	changed = bt_append_name_part(&buf, def->table);
	for (int i = 0; i < def->nkeys; i++)
	{
		appendStringInfoChar(&buf, '_');
		changed |= bt_append_name_part(&buf, def->keys[i]);
		if (def->desc[i])
			appendStringInfoString(&buf, "_desc");
		if (def->nulls_first[i] != def->desc[i])
			appendStringInfoString(&buf, def->nulls_first[i] ? "_nf" : "_nl");
	}
	if (def->ninclude > 0)
		appendStringInfoString(&buf, "_incl");
	for (int i = 0; i < def->ninclude; i++)
	{
		appendStringInfoChar(&buf, '_');
		changed |= bt_append_name_part(&buf, def->include[i]);
	}

	if (changed || hashed || buf.len >= NAMEDATALEN)
	{
		char	   *canonical = bt_indexdef_canonical(def);
		uint32		h = hash_bytes((const unsigned char *) canonical, strlen(canonical));
		char		suffix[10];

		snprintf(suffix, sizeof(suffix), "_%08x", h);
		if (buf.len > NAMEDATALEN - 1 - 9)
			buf.len = NAMEDATALEN - 1 - 9;
		buf.data[buf.len] = '\0';
		appendStringInfoString(&buf, suffix);
	}
	return buf.data;
}

/*
 * CREATE INDEX CONCURRENTLY for def, every identifier quoted.
 */
char *
bt_indexdef_create_sql(const BtIndexDef *def)
{
	return bt_indexdef_create_sql_named(def, bt_indexdef_name(def));
}

char *
bt_indexdef_create_sql_named(const BtIndexDef *def, const char *name)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE INDEX CONCURRENTLY %s ON %s USING btree ",
					 quote_identifier(name),
					 bt_indexdef_qualified_table(def));
	bt_append_columns(&buf, def);
	return buf.data;
}

const char *
bt_index_state_name(BtIndexState state)
{
	switch (state)
	{
		case BT_INDEX_PRESENT:
			return "present";
		case BT_INDEX_MISSING:
			return "missing";
		case BT_INDEX_INVALID:
			return "invalid";
		case BT_INDEX_BUILDING:
			return "building";
		case BT_INDEX_NO_TABLE:
			return "no table";
	}
	return "unknown";
}

/*
 * Is the operator class opclass, on a key column of type atttype, one the
 * planner uses as it would the type's default btree class?  The same class,
 * or another of the same family and input type (the family is what orders
 * and what the planner matches quals and pathkeys against);
 * text_pattern_ops and the like are other families.
 */
static bool
bt_opclass_is_default(Oid opclass, Oid atttype)
{
	Oid			dflt = GetDefaultOpClass(atttype, BTREE_AM_OID);

	if (!OidIsValid(dflt))
		return false;
	if (opclass == dflt)
		return true;
	return get_opclass_family(opclass) == get_opclass_family(dflt) &&
		get_opclass_input_type(opclass) == get_opclass_input_type(dflt);
}

/*
 * THE equivalence rule (see the head of this file): does index indexoid
 * serve def the way the index bingo_tune would build does?  keyatts and
 * incatts are def's columns as attribute numbers of the table.  *valid
 * tells whether it can be used now (valid, ready and live).
 */
static bool
bt_index_matches(const BtIndexDef *def, Oid indexoid,
				 AttrNumber *keyatts, AttrNumber *incatts, bool *valid)
{
	HeapTuple	indtup;
	HeapTuple	reltup;
	Form_pg_class relform;
	Form_pg_index ind;
	bool		isnull;
	Datum		d;
	int2vector *indoption;
	oidvector  *indclass;
	oidvector  *indcollation;
	bool		match = false;

	reltup = SearchSysCache1(RELOID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(reltup))
		return false;
	relform = (Form_pg_class) GETSTRUCT(reltup);
	if (relform->relam != BTREE_AM_OID || relform->relkind != RELKIND_INDEX)
	{
		ReleaseSysCache(reltup);
		return false;
	}
	ReleaseSysCache(reltup);

	indtup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(indtup))
		return false;
	ind = (Form_pg_index) GETSTRUCT(indtup);

	if (ind->indnkeyatts != def->nkeys ||
		!heap_attisnull(indtup, Anum_pg_index_indexprs, NULL) ||
		!heap_attisnull(indtup, Anum_pg_index_indpred, NULL))
		goto done;

	d = SysCacheGetAttr(INDEXRELID, indtup, Anum_pg_index_indoption, &isnull);
	Assert(!isnull);
	indoption = (int2vector *) DatumGetPointer(d);
	d = SysCacheGetAttr(INDEXRELID, indtup, Anum_pg_index_indclass, &isnull);
	Assert(!isnull);
	indclass = (oidvector *) DatumGetPointer(d);
	d = SysCacheGetAttr(INDEXRELID, indtup, Anum_pg_index_indcollation, &isnull);
	Assert(!isnull);
	indcollation = (oidvector *) DatumGetPointer(d);

	for (int i = 0; i < def->nkeys; i++)
	{
		int16		opt = indoption->values[i];
		Oid			atttype;
		int32		atttypmod;
		Oid			attcollation;

		if (keyatts[i] == InvalidAttrNumber ||
			ind->indkey.values[i] != keyatts[i] ||
			((opt & INDOPTION_DESC) != 0) != def->desc[i] ||
			((opt & INDOPTION_NULLS_FIRST) != 0) != def->nulls_first[i])
			goto done;
		get_atttypetypmodcoll(ind->indrelid, keyatts[i], &atttype, &atttypmod, &attcollation);
		/* COLLATE "C" on a column of another collation sorts otherwise */
		if (indcollation->values[i] != attcollation)
			goto done;
		if (!bt_opclass_is_default(indclass->values[i], atttype))
			goto done;
	}
	for (int j = 0; j < def->ninclude; j++)
	{
		bool		covered = false;

		for (int i = 0; i < ind->indnatts; i++)
			if (incatts[j] != InvalidAttrNumber && ind->indkey.values[i] == incatts[j])
				covered = true;
		if (!covered)
			goto done;
	}
	match = true;
	*valid = ind->indisvalid && ind->indisready && ind->indislive;

done:
	ReleaseSysCache(indtup);
	return match;
}

/*
 * The pid of the backend building index indexoid right now (CREATE INDEX
 * CONCURRENTLY or REINDEX CONCURRENTLY, which report the index they build
 * from the moment it is visible), or 0.  Reads the backends' progress
 * reports, so it sees builds of backends with track_activities on (the
 * default).  The status snapshot is the transaction's: call it in a fresh
 * transaction to see a change.
 */
int
bt_index_builder_pid(Oid indexoid)
{
	int			n = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local;
		PgBackendStatus *be;

#if PG_VERSION_NUM >= 160000
		local = pgstat_get_local_beentry_by_index(i);
#else
		local = pgstat_fetch_stat_local_beentry(i);
#endif
		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid != MyProcPid &&
			be->st_databaseid == MyDatabaseId &&
			be->st_progress_command == PROGRESS_COMMAND_CREATE_INDEX &&
			(Oid) be->st_progress_param[PROGRESS_CREATEIDX_INDEX_OID] == indexoid)
			return be->st_procpid;
	}
	return 0;
}

/*
 * Look up def's table and columns.  Returns false when the table does not
 * exist; a column that does not exist gets InvalidAttrNumber (no index can
 * match it).
 */
static bool
bt_resolve(const BtIndexDef *def, Oid *relid, AttrNumber *keyatts, AttrNumber *incatts)
{
	Oid			nsp = get_namespace_oid(def->schema, true);

	*relid = OidIsValid(nsp) ? get_relname_relid(def->table, nsp) : InvalidOid;
	if (!OidIsValid(*relid))
		return false;
	for (int i = 0; i < def->nkeys; i++)
		keyatts[i] = get_attnum(*relid, def->keys[i]);
	for (int i = 0; i < def->ninclude; i++)
		incatts[i] = get_attnum(*relid, def->include[i]);
	return true;
}

BtIndexState
bt_index_state(const BtIndexDef *def, Oid *relid, Oid *found)
{
	AttrNumber	keyatts[INDEX_MAX_KEYS];
	AttrNumber	incatts[INDEX_MAX_KEYS];
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	Oid			invalid = InvalidOid;
	Oid			building = InvalidOid;

	*found = InvalidOid;
	if (!bt_resolve(def, relid, keyatts, incatts))
		return BT_INDEX_NO_TABLE;

	rel = try_relation_open(*relid, AccessShareLock);
	if (rel == NULL)
	{
		*relid = InvalidOid;
		return BT_INDEX_NO_TABLE;
	}
	indexes = RelationGetIndexList(rel);
	relation_close(rel, AccessShareLock);

	foreach(lc, indexes)
	{
		Oid			indexoid = lfirst_oid(lc);
		bool		valid;

		if (!bt_index_matches(def, indexoid, keyatts, incatts, &valid))
			continue;
		if (valid)
		{
			*found = indexoid;
			return BT_INDEX_PRESENT;
		}
		if (!OidIsValid(building) && bt_index_builder_pid(indexoid) != 0)
			building = indexoid;
		else if (!OidIsValid(invalid))
			invalid = indexoid;
	}
	if (OidIsValid(building))
	{
		*found = building;
		return BT_INDEX_BUILDING;
	}
	if (OidIsValid(invalid))
	{
		*found = invalid;
		return BT_INDEX_INVALID;
	}
	return BT_INDEX_MISSING;
}

List *
bt_invalid_equivalents(const BtIndexDef *def, Oid relid)
{
	AttrNumber	keyatts[INDEX_MAX_KEYS];
	AttrNumber	incatts[INDEX_MAX_KEYS];
	Oid			check;
	Relation	rel;
	List	   *indexes;
	List	   *result = NIL;
	ListCell   *lc;

	if (!bt_resolve(def, &check, keyatts, incatts) || check != relid)
		return NIL;
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return NIL;
	indexes = RelationGetIndexList(rel);
	relation_close(rel, AccessShareLock);

	foreach(lc, indexes)
	{
		bool		valid;

		/* a build in progress is not a leftover: never drop it */
		if (bt_index_matches(def, lfirst_oid(lc), keyatts, incatts, &valid) && !valid &&
			bt_index_builder_pid(lfirst_oid(lc)) == 0)
			result = lappend_oid(result, lfirst_oid(lc));
	}
	return result;
}
