/*-------------------------------------------------------------------------
 *
 * derive.c
 *		derive(): the index set bingo_tune would build for one SELECT.
 *
 * The statement is parsed and analysed in its database, as the application
 * sends it ($n parameters get the types the server infers).  From the
 * analysed Query tree we collect, per base table: its equality, IN and
 * range predicates against constants or parameters, the equi-join clauses
 * that link it to the other tables, the ORDER BY keys that are its plain
 * columns (with their directions and NULLS placement), and every column the
 * statement reads from it.
 *
 * Rules turn these into candidate sets.  Every table is tried as the one
 * that drives the plan: its index puts the equality columns first, then
 * either the ORDER BY keys it owns (so rows come out in order and a LIMIT
 * stops early) or the IN and range columns (so only the wanted rows are
 * read).  Each other table, reached through the join graph, gets an index
 * on its equality and join columns: the inner side of a nested loop, one
 * lookup per driving row.  One more set gives every table its predicate
 * index alone, for plans that hash-join filtered scans.  Each index covers
 * the other columns the statement reads from its table through INCLUDE, as
 * long as their average width stays within bingo_tune.max_include_width.
 *
 * The planner ranks the sets: with HypoPG installed in the database, each
 * set is created as hypothetical indexes (hypopg_create_index through SPI)
 * and the statement is planned by EXPLAIN through SPI (HypoPG shows its
 * indexes to EXPLAIN only): a generic plan, as for a prepared statement
 * whose parameters are not known yet.  The cheapest plan wins; costs within
 * BTD_TIE of each other are ties, won by the smaller set.  An index of the
 * winner that its plan does not need (the cost rises by less than BTD_TIE
 * without it) goes; INCLUDE lists are kept (see btd_rank).  Where the watch
 * catalog already wants a wider index that serves as well, the derived one
 * is widened to it (btd_share), so that one index serves both statements.
 * The set is kept only if it lowers the statement's cost by at least
 * BTD_MIN_DROP.  Without HypoPG the rules alone choose (ranked_by =
 * 'rules'): the table of the first ORDER BY key drives, else the one with
 * the most predicates.
 *
 * Trust: the planner may evaluate the application's functions (constant
 * folding of immutable and stable calls).  So the statement is analysed
 * and planned as the owner of its tables, inside a security-restricted
 * operation with a fresh GUC nest level and a search_path of the given
 * schema and pg_temp (pg_catalog first implicitly), as ANALYZE and CREATE
 * INDEX do.  Only superusers and members of that owner role may call
 * derive(), so it never lends anybody rights they lack.  Everything runs in
 * a subtransaction; on error the hypothetical indexes made so far are
 * dropped before the error goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/htup_details.h"
#include "access/itup.h"
#include "access/nbtree.h"
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/plancat.h"
#include "optimizer/tlist.h"
#include "parser/parse_coerce.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif

#include "bingo_tune.h"

PG_FUNCTION_INFO_V1(bt_derive);

/*---- GUC variables ----*/

int			bt_max_include_width = 128;

/*---- Local state ----*/

/*
 * True while a derivation runs in this backend.  derive() reads the watch
 * catalog (to share indexes with its rows), and reading the catalog
 * derives the rows whose indexes are NULL: while this is set, those rows
 * are skipped instead, so the two never recurse.
 */
static bool btd_busy = false;

/*
 * While a derivation plans, the statement's tables show the planner only
 * the hypothetical indexes of the set being costed (btd_hypo_oids): the
 * indexes that exist are set aside, so that the set derived does not
 * depend on what was built before (a catalog row whose indexes are NULL
 * derives the same set once the watcher has built it).
 */
static bool btd_hiding = false;
static List *btd_hypo_oids = NIL;
static get_relation_info_hook_type prev_get_relation_info_hook = NULL;

/*---- Tuning constants ----*/

/* plans whose costs differ by less than this fraction are ties */
#define BTD_TIE			0.01
/* a set is kept only if it lowers the statement's cost by this fraction */
#define BTD_MIN_DROP	0.05

#define BTD_NCOLS		13

/*---- Local types ----*/

/* a column predicate against a constant or parameter */
typedef enum BtdPredKind
{
	BTD_EQ,						/* col = value */
	BTD_IN,						/* col IN (...), col = ANY (...) */
	BTD_RANGE					/* col <, <=, >, >= value */
} BtdPredKind;

typedef struct BtdPred
{
	BtdPredKind kind;
	AttrNumber	attno;
	char	   *text;			/* "movies.year = $1" */
} BtdPred;

/* one base table of the statement */
typedef struct BtdRel
{
	Index		rti;
	Oid			relid;
	Oid			owner;
	char	   *alias;			/* as the statement names it */
	char	   *relname;
	char	   *nspname;
	Bitmapset  *read;			/* attnums read (user columns) */
	bool		uncoverable;	/* reads a whole row or a system column */
	List	   *preds;			/* BtdPred * */
} BtdRel;

/* an equi-join clause between two base tables */
typedef struct BtdJoin
{
	BtdRel	   *r1;
	AttrNumber	a1;
	BtdRel	   *r2;
	AttrNumber	a2;
	char	   *text;
} BtdJoin;

/* one ORDER BY key on a plain column */
typedef struct BtdSortKey
{
	BtdRel	   *rel;
	AttrNumber	attno;
	bool		desc;
	bool		nulls_first;
	char	   *text;
} BtdSortKey;

typedef struct BtdCol
{
	AttrNumber	attno;
	bool		desc;
	bool		nulls_first;
} BtdCol;

/* one index of a candidate set */
typedef struct BtdIndex
{
	BtdRel	   *rel;
	int			nkeys;
	BtdCol		keys[INDEX_MAX_KEYS];
	List	   *include;		/* attnums (int) */
	char	   *serves;
	char	   *why;			/* role; covering is said at the end */
	char	   *cover_note;		/* what INCLUDE does or why there is none */
	double		without_it;		/* set's cost without this index (-1 unknown) */
} BtdIndex;

typedef struct BtdState
{
	char	   *sql;
	char	   *schema;
	bool		internal;		/* for a catalog row: no caller check */
	int			ncandidates;	/* candidate sets the rules made */
	Oid			owner;
	Query	   *query;			/* rewritten, analysed as the owner */
	Oid		   *paramtypes;		/* of $1, $2, ... as analysis inferred them */
	int			nparams;
	SPIPlanPtr	explain;		/* EXPLAIN of the statement (until SPI_finish) */
	List	   *rels;			/* BtdRel * */
	List	   *joins;			/* BtdJoin * */
	List	   *sort;			/* BtdSortKey *, the usable prefix */
	char	   *sort_rest;		/* ORDER BY keys after that prefix, or NULL */
	char	   *limit_text;		/* "LIMIT 100000", or NULL */
	char	   *hypopg;			/* HypoPG's schema, NULL when absent */
	List	   *wanted;			/* BtWantedIndex *: what the catalog wants */
	List	   *self_names;		/* String: catalog rows of this very text */
	List	   *hypo_oids;		/* hypothetical indexes alive now (Oid) */
	/* the outcome */
	List	   *chosen;			/* BtdIndex * */
	double		cost_before;
	double		cost_after;		/* -1 for rules */
	double		best_drop;		/* of the best set, even when not kept */
} BtdState;

/*---- Function declarations ----*/

static Query *btd_analyse(BtdState *st);
static void btd_check_caller(BtdState *st, Query *query);
static void btd_derive_as_owner(void *arg);
static void btd_run_as_owner(BtdState *st);
static void btd_derive(BtdState *st);
static void btd_extract(BtdState *st);
static void btd_walk_jointree(BtdState *st, Node *node);
static void btd_add_qual(BtdState *st, Node *qual);
static BtdRel *btd_var_rel(BtdState *st, Node *node, AttrNumber *attno, Oid *type);
static BtdRel *btd_find_rel(BtdState *st, Index rti);
static char *btd_col_text(BtdRel *rel, AttrNumber attno);
static char *btd_value_text(Node *node);
static int	btd_strategy(Oid opno, Oid coltype);
static void btd_extract_sort(BtdState *st);
static List *btd_candidate_sets(BtdState *st);
static BtdIndex *btd_driver_index(BtdState *st, BtdRel *rel, bool by_sort);
static BtdIndex *btd_inner_index(BtdState *st, BtdRel *rel, List *visited);
static void btd_append_preds(StringInfo buf, BtdRel *rel, BtdPredKind kind,
							 AttrNumber only_attno);
static void btd_add_pred_keys(BtdIndex *idx, BtdPredKind kind, int max);
static BtdIndex *btd_new_index(BtdRel *rel);
static void btd_add_in_range(BtdIndex *idx, AttrNumber range, StringInfo serves);
static AttrNumber btd_first_range(BtdRel *rel);
static int	btd_width(BtdRel *rel, AttrNumber attno);
static int	btd_width_of(Oid relid, AttrNumber attno);
static void btd_cover(BtdIndex *idx);
static bool btd_has_key(BtdIndex *idx, AttrNumber attno);
static void btd_add_key(BtdIndex *idx, AttrNumber attno, bool desc, bool nulls_first);
static BtIndexDef *btd_indexdef(BtdIndex *idx, bool with_include);
static char *btd_definition(BtdState *st, BtdIndex *idx);
static char *btd_canonical(BtdIndex *idx);
static bool btd_same_set(List *a, List *b);
static int	btd_set_width(List *set);
static double btd_plan_cost(BtdState *st);
static double btd_cost_set(BtdState *st, List *set);
static bool btd_cheaper(double a, double b);
static void btd_rank(BtdState *st, List *sets);
static void btd_share(BtdState *st, List *set, double *cost);
static char *btd_join_list(List *names);
static List *btd_rules_pick(BtdState *st, List *sets);
static List *btd_catalog_wanted(BtdState *st);
static void btd_hypo_create(BtdState *st, BtdIndex *idx);
static void btd_hypo_drop_all(BtdState *st);
static int	btd_table_indexes(Oid relid);
static void btd_emit(FunctionCallInfo fcinfo, BtdState *st);
static void btd_compute(BtdState *st);
static void btd_get_relation_info(PlannerInfo *root, Oid relationObjectId,
								  bool inhparent, RelOptInfo *rel);

/*
 * Keep only the hypothetical indexes of the set being costed (see
 * btd_hiding).  Chained: the previous hook (HypoPG's, when it was loaded
 * before us) runs first.
 */
static void
btd_get_relation_info(PlannerInfo *root, Oid relationObjectId, bool inhparent,
					  RelOptInfo *rel)
{
	ListCell   *lc;

	if (prev_get_relation_info_hook)
		prev_get_relation_info_hook(root, relationObjectId, inhparent, rel);
	if (!btd_hiding)
		return;
	foreach(lc, rel->indexlist)
	{
		IndexOptInfo *info = (IndexOptInfo *) lfirst(lc);

		if (!list_member_oid(btd_hypo_oids, info->indexoid))
			rel->indexlist = foreach_delete_current(rel->indexlist, lc);
	}
}

/*
 * Define derive()'s setting and install its planner hook.  Called from
 * _PG_init however the module is loaded: derive() works without
 * shared_preload_libraries.
 */
void
bt_derive_init(void)
{
	prev_get_relation_info_hook = get_relation_info_hook;
	get_relation_info_hook = btd_get_relation_info;

	DefineCustomIntVariable("bingo_tune.max_include_width",
							"Widest INCLUDE list derive() proposes, in bytes of average column width.",
							"An index covers the other columns a statement reads from its table "
							"(so that the plan reads the index alone) only when their average "
							"widths add up to no more than this.  0 never covers.",
							&bt_max_include_width,
							128,
							0, 2000,
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}

/*
 * Parse and analyse st->sql under the restricted search_path, as the
 * owner of its tables (queryid.c: analysis runs the code of the column
 * types, a domain's CHECK say, which is the owner's), after checking that
 * the caller has that owner's rights.  Only a plain SELECT is accepted.
 */
static Query *
btd_analyse(BtdState *st)
{
	Oid			owner = bt_statement_owner_required(st->sql, st->schema);
	Query	   *query;

	if (!st->internal && !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to derive indexes for the tables of role \"%s\"",
						GetUserNameFromId(owner, false)),
				 errdetail("derive() analyses and plans the statement as the owner of its tables."),
				 errhint("Call it as a superuser or as a member of the table's owner role.")));
	query = bt_statement_analyse_as(st->sql, st->schema, owner, NULL,
									&st->paramtypes, &st->nparams);

	if (!bt_query_is_plain_select(query))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("derive() works on a SELECT statement"),
				 errhint("Give the SELECT as the application sends it, with $1, $2, ... for its parameters.")));
	if (query->setOperations != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("derive() does not handle UNION, INTERSECT or EXCEPT"),
				 errhint("Derive the index set of each branch on its own.")));
	return query;
}

/*
 * Check the caller may derive for query's tables, and find the role to
 * plan as: the tables' owner.  Planning as the owner lends the caller the
 * owner's rights for whatever the planner evaluates, so the caller must
 * already have them (superuser, or a member of the owner role).
 */
static void
btd_check_caller(BtdState *st, Query *query)
{
	ListCell   *lc;

	st->owner = InvalidOid;
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		HeapTuple	tup;
		Form_pg_class cls;

		if (rte->rtekind == RTE_JOIN)
			continue;
		if (rte->rtekind != RTE_RELATION)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("derive() works on statements that read tables only"),
					 errdetail("The statement reads a subquery, a function, a VALUES list or a CTE."),
					 errhint("Derive the index set of the inner query on its own.")));
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rte->relid));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", rte->relid);
		cls = (Form_pg_class) GETSTRUCT(tup);
		if (cls->relkind != RELKIND_RELATION && cls->relkind != RELKIND_MATVIEW)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("derive() cannot index \"%s\": it is not a table", NameStr(cls->relname)),
					 errhint("Give the statement over the tables themselves, not views, partitioned or foreign tables.")));
		if (!st->internal && !superuser() && !has_privs_of_role(GetUserId(), cls->relowner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to derive indexes for table \"%s\"", NameStr(cls->relname)),
					 errdetail("derive() plans the statement as the owner of its tables."),
					 errhint("Call it as a superuser or as a member of the table's owner role.")));
		if (OidIsValid(st->owner) && st->owner != cls->relowner)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the tables of the statement have different owners"),
					 errdetail("derive() plans the statement as the one owner of its tables."),
					 errhint("Give the tables one owner, or derive a statement over one owner's tables.")));
		st->owner = cls->relowner;
		ReleaseSysCache(tup);
	}
	if (!OidIsValid(st->owner))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the statement reads no table"),
				 errhint("Only the tables a statement reads can be indexed.")));
}

/*
 * btd_derive() as the tables' owner, in a security-restricted operation
 * with a GUC nest level of its own and the application's search_path for
 * the statement's schema (queryid.c: bt_app_search_path): nothing the
 * caller put on their own path can stand in for a table or a function.
 */
static void
btd_derive_as_owner(void *arg)
{
	BtdState   *st = (BtdState *) arg;
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(st->owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nestlevel = bt_app_search_path(st->schema);

	btd_derive(st);

	/*
	 * Discard every setting changed at this level: the owner's code (a
	 * domain's CHECK, a function the planner folds) may have run a
	 * session-wide SET, which must not outlive its rights.
	 */
	AtEOXact_GUC(false, nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * Run btd_derive_as_owner() in a subtransaction (bt_run_caught).  On
 * error, whose abort restores the user, the security context and the
 * GUCs, the hypothetical indexes made so far are dropped (as the caller)
 * before the error goes on.
 */
static void
btd_run_as_owner(BtdState *st)
{
	ErrorData  *edata = bt_run_caught(btd_derive_as_owner, st, true);

	if (edata != NULL)
	{
		btd_hypo_drop_all(st);
		ReThrowError(edata);
	}
}

/*
 * The work itself, as the owner: analyse, rewrite, collect, rank.
 */
static void
btd_derive(BtdState *st)
{
	Query	   *query;
	List	   *rewritten;
	List	   *sets;

	query = btd_analyse(st);
	rewritten = QueryRewrite(query);
	if (list_length(rewritten) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("derive() cannot handle a statement that rules rewrite into several")));
	st->query = linitial_node(Query, rewritten);

	btd_extract(st);
	btd_hiding = true;
	st->cost_before = btd_plan_cost(st);
	sets = btd_candidate_sets(st);
	st->ncandidates = list_length(sets);

	if (sets == NIL)
		return;
	if (st->hypopg != NULL)
		btd_rank(st, sets);
	else
	{
		st->chosen = btd_rules_pick(st, sets);
		st->cost_after = -1;
	}
}

/* ---- what the statement reads ---- */

static BtdRel *
btd_find_rel(BtdState *st, Index rti)
{
	ListCell   *lc;

	foreach(lc, st->rels)
	{
		BtdRel	   *rel = (BtdRel *) lfirst(lc);

		if (rel->rti == rti)
			return rel;
	}
	return NULL;
}

/*
 * If node (under any relabelling) is a column of a base table of the
 * statement, return that table and set *attno and *type.  A column of a
 * join (USING, NATURAL) is followed to the table column it stands for.
 */
static BtdRel *
btd_var_rel(BtdState *st, Node *node, AttrNumber *attno, Oid *type)
{
	Var		   *var;
	RangeTblEntry *rte;

	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node == NULL || !IsA(node, Var))
		return NULL;
	var = (Var *) node;
	if (var->varlevelsup != 0 || var->varattno <= 0)
		return NULL;
	rte = rt_fetch(var->varno, st->query->rtable);
	if (rte->rtekind == RTE_JOIN)
	{
		if (var->varattno > list_length(rte->joinaliasvars))
			return NULL;
		return btd_var_rel(st, list_nth(rte->joinaliasvars, var->varattno - 1),
						   attno, type);
	}
	if (rte->rtekind != RTE_RELATION)
		return NULL;
	*attno = var->varattno;
	*type = var->vartype;
	return btd_find_rel(st, var->varno);
}

static char *
btd_col_text(BtdRel *rel, AttrNumber attno)
{
	return psprintf("%s.%s", quote_identifier(rel->alias),
					quote_identifier(get_attname(rel->relid, attno, false)));
}

/*
 * How a value reads in the statement: $n, a constant, a list.
 */
static char *
btd_value_text(Node *node)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node == NULL)
		return pstrdup("NULL");
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN)
		return psprintf("$%d", ((Param *) node)->paramid);
	if (IsA(node, Const))
	{
		Const	   *c = (Const *) node;
		Oid			outfunc;
		bool		isvarlena;
		char	   *val;

		if (c->constisnull)
			return pstrdup("NULL");
		getTypeOutputInfo(c->consttype, &outfunc, &isvarlena);
		val = OidOutputFunctionCall(outfunc, c->constvalue);
		if (TypeCategory(c->consttype) == TYPCATEGORY_NUMERIC)
			return val;
		return quote_literal_cstr(val);
	}
	if (IsA(node, ArrayExpr))
	{
		StringInfoData buf;
		ListCell   *lc;

		initStringInfo(&buf);
		foreach(lc, ((ArrayExpr *) node)->elements)
		{
			if (buf.len > 0)
				appendStringInfoString(&buf, ", ");
			appendStringInfoString(&buf, btd_value_text(lfirst(lc)));
		}
		return buf.data;
	}
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcformat != COERCE_EXPLICIT_CALL &&
		list_length(((FuncExpr *) node)->args) >= 1)
		return btd_value_text(linitial(((FuncExpr *) node)->args));
	return pstrdup("(expression)");
}

/*
 * The btree strategy of opno for a column of type coltype, in the
 * column's default btree operator family (the one a plain index uses);
 * 0 when that family does not know the operator.
 */
static int
btd_strategy(Oid opno, Oid coltype)
{
	Oid			opclass = GetDefaultOpClass(coltype, BTREE_AM_OID);

	if (!OidIsValid(opclass))
		return 0;
	return get_op_opfamily_strategy(opno, get_opclass_family(opclass));
}

/*
 * Classify one conjunct of a WHERE or ON clause.  Anything we do not
 * recognise stays a filter the plan applies; its columns still count as
 * read (they are in the tables' read sets).
 */
static void
btd_add_qual(BtdState *st, Node *qual)
{
	if (qual == NULL)
		return;
	if (IsA(qual, List))
	{
		ListCell   *lc;

		foreach(lc, (List *) qual)
			btd_add_qual(st, lfirst(lc));
		return;
	}
	if (is_andclause(qual))
	{
		btd_add_qual(st, (Node *) ((BoolExpr *) qual)->args);
		return;
	}
	if (IsA(qual, OpExpr) && list_length(((OpExpr *) qual)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) qual;
		Node	   *l = linitial(op->args);
		Node	   *r = lsecond(op->args);
		AttrNumber	la = 0,
					ra = 0;
		Oid			lt = InvalidOid,
					rtyp = InvalidOid;
		BtdRel	   *lrel = btd_var_rel(st, l, &la, &lt);
		BtdRel	   *rrel = btd_var_rel(st, r, &ra, &rtyp);
		Oid			opno = op->opno;

		if (lrel && rrel)
		{
			BtdJoin    *j;

			if (lrel == rrel || btd_strategy(opno, lt) != BTEqualStrategyNumber)
				return;
			j = palloc0(sizeof(BtdJoin));
			j->r1 = lrel;
			j->a1 = la;
			j->r2 = rrel;
			j->a2 = ra;
			j->text = psprintf("%s = %s", btd_col_text(lrel, la), btd_col_text(rrel, ra));
			st->joins = lappend(st->joins, j);
			return;
		}
		if (lrel == NULL && rrel != NULL)
		{
			/* value op column: read it as column commuted-op value */
			opno = get_commutator(opno);
			if (!OidIsValid(opno))
				return;
			lrel = rrel;
			la = ra;
			lt = rtyp;
			r = l;
		}
		if (lrel != NULL && !contain_var_clause(r) &&
			!contain_volatile_functions(r))
		{
			int			strategy = btd_strategy(opno, lt);
			BtdPred    *p;

			if (strategy == 0 || strategy > BTMaxStrategyNumber)
				return;
			p = palloc0(sizeof(BtdPred));
			p->kind = strategy == BTEqualStrategyNumber ? BTD_EQ : BTD_RANGE;
			p->attno = la;
			p->text = psprintf("%s %s %s", btd_col_text(lrel, la),
							   get_opname(opno), btd_value_text(r));
			lrel->preds = lappend(lrel->preds, p);
		}
		return;
	}
	if (IsA(qual, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) qual;
		AttrNumber	attno;
		Oid			type;
		BtdRel	   *rel;
		Node	   *arr;

		if (!saop->useOr || list_length(saop->args) != 2)
			return;
		rel = btd_var_rel(st, linitial(saop->args), &attno, &type);
		arr = lsecond(saop->args);
		if (rel == NULL || contain_var_clause(arr) || contain_volatile_functions(arr))
			return;
		if (btd_strategy(saop->opno, type) == BTEqualStrategyNumber)
		{
			BtdPred    *p = palloc0(sizeof(BtdPred));

			p->kind = BTD_IN;
			p->attno = attno;
			if (IsA(arr, ArrayExpr))
				p->text = psprintf("%s IN (%s)", btd_col_text(rel, attno), btd_value_text(arr));
			else
				p->text = psprintf("%s = ANY (%s)", btd_col_text(rel, attno), btd_value_text(arr));
			rel->preds = lappend(rel->preds, p);
		}
	}
}

/*
 * FROM and ON: inner joins only (their ON clauses are ordinary conditions).
 */
static void
btd_walk_jointree(BtdState *st, Node *node)
{
	if (node == NULL || IsA(node, RangeTblRef))
		return;
	if (IsA(node, FromExpr))
	{
		FromExpr   *f = (FromExpr *) node;
		ListCell   *lc;

		foreach(lc, f->fromlist)
			btd_walk_jointree(st, lfirst(lc));
		btd_add_qual(st, f->quals);
	}
	else if (IsA(node, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) node;

		if (j->jointype != JOIN_INNER)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("derive() handles inner joins only"),
					 errhint("Write the statement with inner joins, or give its index set by hand.")));
		btd_walk_jointree(st, j->larg);
		btd_walk_jointree(st, j->rarg);
		btd_add_qual(st, j->quals);
	}
}

/*
 * The ORDER BY keys that a plain btree index can produce: a leading run of
 * plain columns sorted by their type's default ordering.  The rest (an
 * expression, a COLLATE, USING another operator) is kept as text only.
 * Nothing applies when the statement groups, aggregates or uses DISTINCT:
 * then ORDER BY sorts groups, not rows of a table.
 */
static void
btd_extract_sort(BtdState *st)
{
	Query	   *q = st->query;
	ListCell   *lc;
	StringInfoData rest;
	bool		usable = true;

	if (q->hasAggs || q->groupClause != NIL || q->distinctClause != NIL ||
		q->hasWindowFuncs || q->groupingSets != NIL)
		return;
	initStringInfo(&rest);
	foreach(lc, q->sortClause)
	{
		SortGroupClause *sgc = lfirst_node(SortGroupClause, lc);
		TargetEntry *tle = get_sortgroupclause_tle(sgc, q->targetList);
		AttrNumber	attno = 0;
		Oid			type = InvalidOid;
		BtdRel	   *rel = btd_var_rel(st, (Node *) tle->expr, &attno, &type);
		Oid			opfamily,
					opcintype;
#if PG_VERSION_NUM >= 180000
		CompareType strategy;	/* 18: the comparison, not the strategy */
#else
		int16		strategy;
#endif
		BtdSortKey *k;

		if (usable && rel != NULL &&
			get_ordering_op_properties(sgc->sortop, &opfamily, &opcintype, &strategy) &&
			opfamily == get_opclass_family(GetDefaultOpClass(type, BTREE_AM_OID)))
		{
			k = palloc0(sizeof(BtdSortKey));
			k->rel = rel;
			k->attno = attno;
#if PG_VERSION_NUM >= 180000
			k->desc = (strategy == COMPARE_GT);
#else
			k->desc = (strategy == BTGreaterStrategyNumber);
#endif
			k->nulls_first = sgc->nulls_first;
			k->text = btd_col_text(rel, attno);
			if (k->desc)
				k->text = psprintf("%s DESC", k->text);
			if (k->nulls_first != k->desc)
				k->text = psprintf("%s NULLS %s", k->text, k->nulls_first ? "FIRST" : "LAST");
			st->sort = lappend(st->sort, k);
			continue;
		}
		usable = false;
		if (rest.len > 0)
			appendStringInfoString(&rest, ", ");
		appendStringInfoString(&rest, rel ? btd_col_text(rel, attno) : "(expression)");
	}
	if (rest.len > 0)
		st->sort_rest = rest.data;
}

/*
 * Collect tables, read columns, predicates, joins, ORDER BY and LIMIT.
 */
static void
btd_extract(BtdState *st)
{
	Query	   *q = st->query;
	ListCell   *lc;
	Index		rti = 0;

	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		BtdRel	   *rel;
		Bitmapset  *cols;
		int			x = -1;

		rti++;
		if (rte->rtekind != RTE_RELATION)
			continue;
		rel = palloc0(sizeof(BtdRel));
		rel->rti = rti;
		rel->relid = rte->relid;
		rel->alias = pstrdup(rte->eref->aliasname);
		rel->relname = get_rel_name(rte->relid);
		rel->nspname = get_namespace_name(get_rel_namespace(rte->relid));
#if PG_VERSION_NUM >= 160000
		cols = getRTEPermissionInfo(q->rteperminfos, rte)->selectedCols;
#else
		cols = rte->selectedCols;
#endif
		while ((x = bms_next_member(cols, x)) >= 0)
		{
			AttrNumber	attno = x + FirstLowInvalidHeapAttributeNumber;

			if (attno > 0)
				rel->read = bms_add_member(rel->read, attno);
			else
				rel->uncoverable = true;
		}
		st->rels = lappend(st->rels, rel);
	}

	btd_walk_jointree(st, (Node *) q->jointree);
	btd_extract_sort(st);
	if (q->limitCount != NULL &&
		!(IsA(q->limitCount, Const) && ((Const *) q->limitCount)->constisnull))
		st->limit_text = psprintf("LIMIT %s", btd_value_text(q->limitCount));
}

/* ---- candidate sets ---- */

static bool
btd_has_key(BtdIndex *idx, AttrNumber attno)
{
	for (int i = 0; i < idx->nkeys; i++)
		if (idx->keys[i].attno == attno)
			return true;
	return false;
}

static void
btd_add_key(BtdIndex *idx, AttrNumber attno, bool desc, bool nulls_first)
{
	if (btd_has_key(idx, attno) || idx->nkeys >= INDEX_MAX_KEYS)
		return;
	idx->keys[idx->nkeys].attno = attno;
	idx->keys[idx->nkeys].desc = desc;
	idx->keys[idx->nkeys].nulls_first = nulls_first;
	idx->nkeys++;
}

/*
 * Append to buf the texts of rel's predicates of one kind; only those on
 * column only_attno unless that is 0.
 */
static void
btd_append_preds(StringInfo buf, BtdRel *rel, BtdPredKind kind, AttrNumber only_attno)
{
	ListCell   *lc;

	foreach(lc, rel->preds)
	{
		BtdPred    *p = (BtdPred *) lfirst(lc);

		if (p->kind != kind || (only_attno != 0 && p->attno != only_attno))
			continue;
		appendStringInfoString(buf, buf->len > 0 ? " AND " : "WHERE ");
		appendStringInfoString(buf, p->text);
	}
}

/* add rel's predicate columns of one kind as keys (at most max, 0 = all) */
static void
btd_add_pred_keys(BtdIndex *idx, BtdPredKind kind, int max)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, idx->rel->preds)
	{
		BtdPred    *p = (BtdPred *) lfirst(lc);

		if (p->kind != kind || (max > 0 && n >= max))
			continue;
		btd_add_key(idx, p->attno, false, false);
		n++;
	}
}

/* first range column of rel, 0 if none */
static AttrNumber
btd_first_range(BtdRel *rel)
{
	ListCell   *lc;

	foreach(lc, rel->preds)
	{
		BtdPred    *p = (BtdPred *) lfirst(lc);

		if (p->kind == BTD_RANGE)
			return p->attno;
	}
	return 0;
}

/* a new index on rel: its equality columns first */
static BtdIndex *
btd_new_index(BtdRel *rel)
{
	BtdIndex   *idx = palloc0(sizeof(BtdIndex));

	idx->rel = rel;
	idx->without_it = -1;
	btd_add_pred_keys(idx, BTD_EQ, 0);
	return idx;
}

/*
 * Then the IN columns of idx's table and its first range column (range,
 * or 0); their predicates go to serves, if not NULL.
 */
static void
btd_add_in_range(BtdIndex *idx, AttrNumber range, StringInfo serves)
{
	btd_add_pred_keys(idx, BTD_IN, 0);
	if (range)
		btd_add_key(idx, range, false, false);
	if (serves != NULL)
	{
		btd_append_preds(serves, idx->rel, BTD_IN, 0);
		btd_append_preds(serves, idx->rel, BTD_RANGE, range);
	}
}

/*
 * The index of the table that drives the plan.  by_sort: equality columns,
 * then the leading ORDER BY keys that are rel's columns (keys fixed by an
 * equality are skipped), then IN and range columns; NULL when the ORDER BY
 * does not start on rel.  Otherwise: equality, IN, then one range column;
 * NULL when rel has no predicate.
 */
static BtdIndex *
btd_driver_index(BtdState *st, BtdRel *rel, bool by_sort)
{
	BtdIndex   *idx = btd_new_index(rel);
	AttrNumber	range = btd_first_range(rel);
	StringInfoData serves;
	StringInfoData why;
	ListCell   *lc;

	initStringInfo(&serves);
	btd_append_preds(&serves, rel, BTD_EQ, 0);
	initStringInfo(&why);

	if (by_sort)
	{
		int			nsort = 0;
		StringInfoData order;
		StringInfoData rest;

		initStringInfo(&order);
		initStringInfo(&rest);
		foreach(lc, st->sort)
		{
			BtdSortKey *k = (BtdSortKey *) lfirst(lc);

			if (rest.len == 0 && k->rel == rel)
			{
				if (!btd_has_key(idx, k->attno))
				{
					btd_add_key(idx, k->attno, k->desc, k->nulls_first);
					nsort++;
				}
				appendStringInfoString(&order, order.len > 0 ? ", " : "");
				appendStringInfoString(&order, k->text);
			}
			else
			{
				appendStringInfoString(&rest, rest.len > 0 ? ", " : "");
				appendStringInfoString(&rest, k->text);
			}
		}
		if (nsort == 0)
			return NULL;
		btd_add_in_range(idx, range, &serves);
		appendStringInfo(&serves, "%sORDER BY %s", serves.len > 0 ? " " : "", order.data);
		if (st->limit_text)
			appendStringInfo(&serves, " %s", st->limit_text);
		appendStringInfo(&why, "drives ORDER BY %s%s", order.data,
						 st->limit_text ? ", then LIMIT" : "");
		if (rest.len > 0 || st->sort_rest)
			appendStringInfo(&why, "; rows with equal keys are then sorted by %s%s%s",
							 rest.data, rest.len > 0 && st->sort_rest ? ", " : "",
							 st->sort_rest ? st->sort_rest : "");
		if (rel->preds != NIL)
			appendStringInfoString(&why, ", after the equality columns");
	}
	else
	{
		if (rel->preds == NIL)
			return NULL;
		btd_add_in_range(idx, range, &serves);
		appendStringInfo(&why, "finds the rows of %s%s", serves.data,
						 range && idx->nkeys > 1 ? " (equality columns first, the range last)" : "");
	}
	if (idx->nkeys == 0)
		return NULL;
	idx->serves = serves.data;
	idx->why = why.data;
	btd_cover(idx);
	return idx;
}

/*
 * The inner side of a nested loop: rel's equality columns, then its join
 * columns to the tables already in the plan (visited), then IN and range
 * columns.  NULL when rel joins none of them and has no predicate.
 */
static BtdIndex *
btd_inner_index(BtdState *st, BtdRel *rel, List *visited)
{
	BtdIndex   *idx = btd_new_index(rel);
	AttrNumber	range = btd_first_range(rel);
	StringInfoData joins;
	StringInfoData serves;
	ListCell   *lc;

	initStringInfo(&joins);
	foreach(lc, st->joins)
	{
		BtdJoin    *j = (BtdJoin *) lfirst(lc);
		AttrNumber	mine;

		if (j->r1 == rel && list_member_ptr(visited, j->r2))
			mine = j->a1;
		else if (j->r2 == rel && list_member_ptr(visited, j->r1))
			mine = j->a2;
		else
			continue;
		btd_add_key(idx, mine, false, false);
		appendStringInfoString(&joins, joins.len > 0 ? " AND " : "");
		appendStringInfoString(&joins, j->text);
	}
	btd_add_in_range(idx, range, NULL);
	if (idx->nkeys == 0)
		return NULL;
	initStringInfo(&serves);
	if (joins.len > 0)
	{
		appendStringInfo(&serves, "JOIN ON %s", joins.data);
		idx->why = psprintf("inner side of the join %s", joins.data);
	}
	{
		StringInfoData preds;

		initStringInfo(&preds);
		btd_append_preds(&preds, rel, BTD_EQ, 0);
		btd_append_preds(&preds, rel, BTD_IN, 0);
		btd_append_preds(&preds, rel, BTD_RANGE, range);
		if (preds.len > 0)
		{
			appendStringInfo(&serves, "%s%s", serves.len > 0 ? " " : "", preds.data);
			idx->why = idx->why ? psprintf("%s, %s", idx->why, preds.data)
				: psprintf("finds the rows of %s", preds.data);
		}
	}
	idx->serves = serves.data;
	btd_cover(idx);
	return idx;
}

/* average width of a column: from the statistics, else from its type */
static int
btd_width_of(Oid relid, AttrNumber attno)
{
	Oid			typid;
	int32		typmod;
	Oid			collid;
	int32		w = get_attavgwidth(relid, attno);

	if (w > 0)
		return w;
	get_atttypetypmodcoll(relid, attno, &typid, &typmod, &collid);
	return get_typavgwidth(typid, typmod);
}

static int
btd_width(BtdRel *rel, AttrNumber attno)
{
	return btd_width_of(rel->relid, attno);
}

/*
 * INCLUDE the other columns the statement reads from the table, so that
 * the plan can read the index alone, if their average width fits the
 * budget bingo_tune.max_include_width.
 */
static void
btd_cover(BtdIndex *idx)
{
	BtdRel	   *rel = idx->rel;
	int			x = -1;
	int			width = 0;
	int			nread = bms_num_members(rel->read);
	List	   *include = NIL;

	while ((x = bms_next_member(rel->read, x)) >= 0)
	{
		if (btd_has_key(idx, (AttrNumber) x))
			continue;
		width += btd_width(rel, (AttrNumber) x);
		include = lappend_int(include, x);
	}
	if (rel->uncoverable)
		idx->cover_note = psprintf("does not cover %s: the statement reads a whole row or a system column",
								   quote_identifier(rel->alias));
	else if (include == NIL)
		idx->cover_note = psprintf("covers the %d column%s read from %s", nread,
								   nread == 1 ? "" : "s", quote_identifier(rel->alias));
	else if (width <= bt_max_include_width)
	{
		idx->include = include;
		idx->cover_note = psprintf("covers the %d column%s read from %s (INCLUDE: %d bytes on average)",
								   nread, nread == 1 ? "" : "s",
								   quote_identifier(rel->alias), width);
	}
	else
		idx->cover_note = psprintf("does not cover %s: the %d other column%s read average %d bytes, over bingo_tune.max_include_width (%d)",
								   quote_identifier(rel->alias), list_length(include),
								   list_length(include) == 1 ? "" : "s",
								   width, bt_max_include_width);
}

/*
 * Candidate sets: each table as the driving one (by ORDER BY, by its
 * predicates), the others reached through the joins as inner sides; and
 * every table's predicate index alone.
 */
static List *
btd_candidate_sets(BtdState *st)
{
	List	   *sets = NIL;
	List	   *filters = NIL;
	ListCell   *lc;

	foreach(lc, st->rels)
	{
		BtdRel	   *driver = (BtdRel *) lfirst(lc);

		for (int by_sort = 1; by_sort >= 0; by_sort--)
		{
			BtdIndex   *first = btd_driver_index(st, driver, by_sort);
			List	   *set = NIL;
			List	   *visited = list_make1(driver);
			bool		grew = true;
			ListCell   *lc2;

			if (first == NULL && !by_sort)
				continue;		/* same as by_sort without a driver index */
			if (first)
				set = lappend(set, first);
			/* breadth first over the join graph */
			while (grew)
			{
				List	   *next = NIL;

				grew = false;
				foreach(lc2, st->joins)
				{
					BtdJoin    *j = (BtdJoin *) lfirst(lc2);
					BtdRel	   *other = NULL;

					if (list_member_ptr(visited, j->r1) && !list_member_ptr(visited, j->r2))
						other = j->r2;
					else if (list_member_ptr(visited, j->r2) && !list_member_ptr(visited, j->r1))
						other = j->r1;
					if (other && !list_member_ptr(next, other))
						next = lappend(next, other);
				}
				foreach(lc2, next)
				{
					BtdIndex   *inner = btd_inner_index(st, (BtdRel *) lfirst(lc2), visited);

					if (inner)
						set = lappend(set, inner);
				}
				if (next != NIL)
				{
					visited = list_concat(visited, next);
					grew = true;
				}
			}
			/* tables no join reaches: their predicates */
			foreach(lc2, st->rels)
			{
				BtdRel	   *r = (BtdRel *) lfirst(lc2);
				BtdIndex   *f;

				if (list_member_ptr(visited, r))
					continue;
				f = btd_driver_index(st, r, false);
				if (f)
					set = lappend(set, f);
			}
			if (first && list_length(st->rels) > 1)
				first->why = psprintf("%s; %s drives the plan", first->why,
									  quote_identifier(driver->alias));
			if (set != NIL)
				sets = lappend(sets, set);
		}
		{
			BtdIndex   *f = btd_driver_index(st, driver, false);

			if (f)
				filters = lappend(filters, f);
		}
	}
	if (filters != NIL)
		sets = lappend(sets, filters);

	/* drop duplicates */
	{
		List	   *unique = NIL;

		foreach(lc, sets)
		{
			List	   *set = (List *) lfirst(lc);
			ListCell   *lc2;
			bool		dup = false;

			foreach(lc2, unique)
				if (btd_same_set(set, (List *) lfirst(lc2)))
					dup = true;
			if (!dup)
				unique = lappend(unique, set);
		}
		sets = unique;
	}
	return sets;
}

/* the index as a catalog definition */
static BtIndexDef *
btd_indexdef(BtdIndex *idx, bool with_include)
{
	BtIndexDef *def = palloc0(sizeof(BtIndexDef));
	ListCell   *lc;
	int			i = 0;

	def->schema = idx->rel->nspname;
	def->table = idx->rel->relname;
	def->nkeys = idx->nkeys;
	def->keys = palloc(sizeof(char *) * idx->nkeys);
	def->desc = palloc(sizeof(bool) * idx->nkeys);
	def->nulls_first = palloc(sizeof(bool) * idx->nkeys);
	for (i = 0; i < idx->nkeys; i++)
	{
		def->keys[i] = get_attname(idx->rel->relid, idx->keys[i].attno, false);
		def->desc[i] = idx->keys[i].desc;
		def->nulls_first[i] = idx->keys[i].nulls_first;
	}
	if (with_include && idx->include != NIL)
	{
		def->ninclude = list_length(idx->include);
		def->include = palloc(sizeof(char *) * def->ninclude);
		i = 0;
		foreach(lc, idx->include)
			def->include[i++] = get_attname(idx->rel->relid, (AttrNumber) lfirst_int(lc), false);
	}
	return def;
}

/*
 * The definition in the catalog's grammar; the table is left unqualified
 * when it lives in the schema derive() was given, as the catalog's own
 * rows are written.
 */
static char *
btd_definition(BtdState *st, BtdIndex *idx)
{
	BtIndexDef *def = btd_indexdef(idx, true);
	char	   *canonical = bt_indexdef_canonical(def);

	if (strcmp(def->schema, st->schema) == 0)
		return psprintf("%s %s", quote_identifier(def->table),
						canonical + strlen(bt_indexdef_qualified_table(def)) + 1);
	return canonical;
}

static char *
btd_canonical(BtdIndex *idx)
{
	return bt_indexdef_canonical(btd_indexdef(idx, true));
}

static bool
btd_same_set(List *a, List *b)
{
	ListCell   *lc;

	if (list_length(a) != list_length(b))
		return false;
	foreach(lc, a)
	{
		char	   *def = btd_canonical((BtdIndex *) lfirst(lc));
		ListCell   *lc2;
		bool		found = false;

		foreach(lc2, b)
			if (strcmp(def, btd_canonical((BtdIndex *) lfirst(lc2))) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

/* columns in a set: the smaller set wins a tie */
static int
btd_set_width(List *set)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, set)
	{
		BtdIndex   *idx = (BtdIndex *) lfirst(lc);

		n += 100 + 10 * idx->nkeys + list_length(idx->include);
	}
	return n;
}

/* ---- ranking by the planner ---- */

/*
 * The planner's estimated total cost of the statement with the indexes
 * that exist now, real and hypothetical.  HypoPG shows its indexes to the
 * planner only under EXPLAIN, so the statement is planned by EXPLAIN
 * through SPI.  Its $n are declared with the types analysis gave them but
 * get no values: a generic plan, as for a prepared statement whose
 * parameter values are not known.
 */
static double
btd_plan_cost(BtdState *st)
{
	SPIExecuteOptions options;
	char	   *json;
	char	   *at;

	if (st->explain == NULL)
	{
		st->explain = SPI_prepare(psprintf("EXPLAIN (FORMAT JSON, COSTS) %s", st->sql),
								  st->nparams, st->paramtypes);
		if (st->explain == NULL)
			elog(ERROR, "SPI_prepare of EXPLAIN failed: %s",
				 SPI_result_code_string(SPI_result));
	}
	memset(&options, 0, sizeof(options));
	options.read_only = false;
	if (SPI_execute_plan_extended(st->explain, &options) != SPI_OK_UTILITY ||
		SPI_processed < 1)
		elog(ERROR, "EXPLAIN of the statement returned nothing");
	json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
	/* the top plan node's own "Total Cost" comes before its sub-plans */
	at = json ? strstr(json, "\"Total Cost\":") : NULL;
	if (at == NULL)
		elog(ERROR, "EXPLAIN output has no total cost");
	return strtod(at + strlen("\"Total Cost\":"), NULL);
}

static double
btd_cost_set(BtdState *st, List *set)
{
	ListCell   *lc;
	double		cost;

	foreach(lc, set)
		btd_hypo_create(st, (BtdIndex *) lfirst(lc));
	cost = btd_plan_cost(st);
	btd_hypo_drop_all(st);
	return cost;
}

static bool
btd_cheaper(double a, double b)
{
	return a < b * (1.0 - BTD_TIE);
}

/*
 * Cost every set, keep the cheapest (a tie goes to the smaller set), then
 * drop the indexes its plan does not need, and widen an index to one the
 * catalog already wants where that costs nothing (btd_share).
 *
 * INCLUDE lists are not pruned: the planner prices the heap visits of a
 * nested loop's inner side, or of a LIMIT, lightly against an index-only
 * scan, and what covering costs is bounded by bingo_tune.max_include_width.
 */
static void
btd_rank(BtdState *st, List *sets)
{
	ListCell   *lc;
	List	   *best = NIL;
	double		best_cost = DBL_MAX;

	foreach(lc, sets)
	{
		List	   *set = (List *) lfirst(lc);
		double		cost = btd_cost_set(st, set);

		if (message_level_is_interesting(DEBUG1))
		{
			StringInfoData buf;
			ListCell   *lc2;

			initStringInfo(&buf);
			foreach(lc2, set)
				appendStringInfo(&buf, "%s%s", buf.len > 0 ? "; " : "",
								 btd_canonical((BtdIndex *) lfirst(lc2)));
			elog(DEBUG1, "bingo_tune derive: cost %.2f with %s", cost, buf.data);
		}
		if (best == NIL || btd_cheaper(cost, best_cost) ||
			(!btd_cheaper(best_cost, cost) && btd_set_width(set) < btd_set_width(best)))
		{
			best = set;
			best_cost = cost;
		}
	}

	/* an index the plan does not need goes */
	foreach(lc, best)
	{
		BtdIndex   *idx = (BtdIndex *) lfirst(lc);
		List	   *without = list_copy(best);
		double		cost;

		without = list_delete_ptr(without, idx);
		cost = without != NIL ? btd_cost_set(st, without) : st->cost_before;
		if (!btd_cheaper(best_cost, cost))
		{
			best = foreach_delete_current(best, lc);
			best_cost = Min(best_cost, cost);
		}
		else
			idx->without_it = cost;
	}
	btd_share(st, best, &best_cost);

	st->best_drop = best != NIL && st->cost_before > 0 ?
		(st->cost_before - best_cost) / st->cost_before : 0;
	if (best == NIL || st->best_drop < BTD_MIN_DROP)
		return;
	st->chosen = best;
	st->cost_after = best_cost;
}

/*
 * Where the catalog already wants an index on the same table whose keys
 * start with ours (same directions) and which has every column ours has,
 * use that one instead, if the plan costs no more with it: one index then
 * serves both statements (the session list's movies index is the movie
 * list's).  An identical one is only noted.
 */
static void
btd_share(BtdState *st, List *set, double *cost)
{
	ListCell   *lc;

	foreach(lc, set)
	{
		BtdIndex   *idx = (BtdIndex *) lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, st->wanted)
		{
			BtWantedIndex *w = (BtWantedIndex *) lfirst(lc2);
			BtIndexDef *def = w->def;
			BtdIndex   *wide;
			bool		fits = true;
			int			x;
			double		wide_cost;
			List	   *cols = NIL;
			List	   *others = NIL;
			int			width = 0;
			ListCell   *lc3;

			if (strcmp(def->schema, idx->rel->nspname) != 0 ||
				strcmp(def->table, idx->rel->relname) != 0 ||
				def->nkeys < idx->nkeys || def->nkeys > INDEX_MAX_KEYS)
				continue;
			wide = palloc0(sizeof(BtdIndex));
			memcpy(wide, idx, sizeof(BtdIndex));
			wide->include = NIL;
			for (x = 0; x < def->nkeys && fits; x++)
			{
				AttrNumber	attno = get_attnum(idx->rel->relid, def->keys[x]);

				wide->keys[x].attno = attno;
				wide->keys[x].desc = def->desc[x];
				wide->keys[x].nulls_first = def->nulls_first[x];
				cols = lappend_int(cols, attno);
				if (attno == InvalidAttrNumber ||
					(x < idx->nkeys && (attno != idx->keys[x].attno ||
										def->desc[x] != idx->keys[x].desc ||
										def->nulls_first[x] != idx->keys[x].nulls_first)))
					fits = false;
			}
			wide->nkeys = def->nkeys;
			for (x = 0; x < def->ninclude && fits; x++)
			{
				AttrNumber	attno = get_attnum(idx->rel->relid, def->include[x]);

				if (attno == InvalidAttrNumber)
					fits = false;
				else
					width += btd_width(idx->rel, attno);
				wide->include = lappend_int(wide->include, attno);
				cols = lappend_int(cols, attno);
			}
			/* never wider than the covering budget allows */
			if (width > bt_max_include_width)
				fits = false;
			foreach(lc3, idx->include)
				if (!list_member_int(cols, lfirst_int(lc3)))
					fits = false;
			if (!fits)
				continue;
			/* the statement's own catalog row is not a reason */
			foreach(lc3, w->statements)
				if (!list_member(st->self_names, makeString(lfirst(lc3))))
					others = lappend(others, lfirst(lc3));
			if (others == NIL)
				continue;
			if (def->nkeys == idx->nkeys &&
				list_length(cols) == idx->nkeys + list_length(idx->include))
			{
				/* the same columns: the same index */
				idx->why = psprintf("%s; the catalog wants it for %s too", idx->why,
									btd_join_list(others));
				break;
			}
			lfirst(lc) = wide;
			wide_cost = btd_cost_set(st, set);
			if (btd_cheaper(*cost, wide_cost))
			{
				lfirst(lc) = idx;
				continue;
			}
			*cost = Min(*cost, wide_cost);
			wide->why = psprintf("%s; widened to the index the catalog wants for %s, so that one index serves both",
								 idx->why, btd_join_list(others));
			wide->cover_note = idx->include != NIL || strncmp(idx->cover_note, "covers", 6) == 0 ?
				psprintf("covers the %d column%s read from %s",
						 bms_num_members(idx->rel->read),
						 bms_num_members(idx->rel->read) == 1 ? "" : "s",
						 quote_identifier(idx->rel->alias)) :
				idx->cover_note;
			break;
		}
	}
}

/* "a, b" from a List of C strings */
static char *
btd_join_list(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * Without hypothetical indexes, the rules alone: the set driven by the
 * table of the first ORDER BY key, else the one driven by the table with
 * the most predicates (sets come in the order btd_candidate_sets makes
 * them: per table, by ORDER BY first).
 */
static List *
btd_rules_pick(BtdState *st, List *sets)
{
	BtdRel	   *driver = NULL;
	ListCell   *lc;
	int			most = 0;

	if (st->sort != NIL)
		driver = ((BtdSortKey *) linitial(st->sort))->rel;
	else
		foreach(lc, st->rels)
		{
			BtdRel	   *rel = (BtdRel *) lfirst(lc);

			if (list_length(rel->preds) > most)
			{
				most = list_length(rel->preds);
				driver = rel;
			}
		}
	foreach(lc, sets)
	{
		List	   *set = (List *) lfirst(lc);

		if (driver == NULL || ((BtdIndex *) linitial(set))->rel == driver)
			return set;
	}
	return (List *) linitial(sets);
}

/*
 * The indexes the watch catalog wants (catalog.c reads it), for a caller
 * who may read the catalog (the tables' owner may not); NIL otherwise.
 * Also notes the names of the catalog rows whose text is this statement's,
 * which btd_share() does not count.
 */
static List *
btd_catalog_wanted(BtdState *st)
{
	Oid			nsp = get_namespace_oid(BT_SCHEMA, true);
	Oid			watch = OidIsValid(nsp) ? get_relname_relid("watch", nsp) : InvalidOid;
	List	   *rows;
	ListCell   *lc;

	if (!OidIsValid(watch) ||
		pg_class_aclcheck(watch, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		return NIL;
	rows = bt_catalog_read(NULL, true);
	foreach(lc, rows)
	{
		BtWatched  *w = (BtWatched *) lfirst(lc);

		if (strcmp(w->statement, st->sql) == 0)
			st->self_names = lappend(st->self_names, makeString(w->name));
	}
	return bt_catalog_wanted_of(rows);
}

/* ---- HypoPG ---- */

static void
btd_hypo_create(BtdState *st, BtdIndex *idx)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	Datum		oid;
	MemoryContext cxt = CurrentMemoryContext;

	values[0] = CStringGetTextDatum(psprintf("CREATE INDEX ON %s",
											 bt_indexdef_canonical(btd_indexdef(idx, true))));
	if (SPI_execute_with_args(psprintf("SELECT indexrelid FROM %s.hypopg_create_index($1)",
									   quote_identifier(st->hypopg)),
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("HypoPG did not create a hypothetical index for \"%s\"",
						btd_canonical(idx))));
	oid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_freetuptable(SPI_tuptable);
	MemoryContextSwitchTo(cxt);
	st->hypo_oids = lappend_oid(st->hypo_oids, DatumGetObjectId(oid));
	btd_hypo_oids = st->hypo_oids;
}

static void
btd_hypo_drop_all(BtdState *st)
{
	ListCell   *lc;

	foreach(lc, st->hypo_oids)
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1];

		values[0] = ObjectIdGetDatum(lfirst_oid(lc));
		(void) SPI_execute_with_args(psprintf("SELECT %s.hypopg_drop_index($1)",
											  quote_identifier(st->hypopg)),
									 1, argtypes, values, NULL, false, 1);
		SPI_freetuptable(SPI_tuptable);
	}
	list_free(st->hypo_oids);
	st->hypo_oids = NIL;
	btd_hypo_oids = NIL;
}

/* ---- what a set costs: its size, and the INSERTs into its tables ---- */

/*
 * The size the index of def on relid would have once built, in bytes,
 * from the table's reltuples and the average widths of the index's
 * columns: btree leaf pages filled to the default fillfactor, plus the
 * upper levels and the metapage.  -1 when the table was never vacuumed or
 * analysed, or a column is not there.
 */
double
bt_index_estimate_size(const BtIndexDef *def, Oid relid)
{
	HeapTuple	tup;
	double		reltuples;
	double		keywidth = 0;
	double		width;
	double		itemsz;
	double		usable;
	double		per_leaf;
	double		fanout;
	double		pages;
	double		level;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return -1;
	reltuples = ((Form_pg_class) GETSTRUCT(tup))->reltuples;
	ReleaseSysCache(tup);
	if (reltuples < 0)
		return -1;

	for (int k = 0; k < def->nkeys; k++)
	{
		AttrNumber	attno = get_attnum(relid, def->keys[k]);

		if (attno == InvalidAttrNumber)
			return -1;
		keywidth += btd_width_of(relid, attno);
	}
	width = keywidth;
	for (int k = 0; k < def->ninclude; k++)
	{
		AttrNumber	attno = get_attnum(relid, def->include[k]);

		if (attno == InvalidAttrNumber)
			return -1;
		width += btd_width_of(relid, attno);
	}
	/* an index tuple (header, data, alignment) and its line pointer */
	itemsz = MAXALIGN(sizeof(IndexTupleData) + (Size) width) + sizeof(ItemIdData);
	usable = BLCKSZ - SizeOfPageHeaderData - MAXALIGN(sizeof(BTPageOpaqueData));
	per_leaf = Max(1.0, floor(usable * BTREE_DEFAULT_FILLFACTOR / 100.0 / itemsz));
	/* upper pages hold the key columns only, filled about 70 % */
	fanout = Max(2.0, floor(usable * 0.7 /
							(MAXALIGN(sizeof(IndexTupleData) + (Size) keywidth) + sizeof(ItemIdData))));
	pages = level = Max(1.0, ceil(reltuples / per_leaf));
	while (level > 1)
	{
		level = ceil(level / fanout);
		pages += level;
	}
	return (pages + 1) * BLCKSZ;
}

/* indexes an INSERT into relid maintains now (ready, not being dropped) */
static int
btd_table_indexes(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	int			n;

	values[0] = ObjectIdGetDatum(relid);
	if (SPI_execute_with_args("SELECT pg_catalog.count(*)::pg_catalog.int4 FROM pg_catalog.pg_index"
							  " WHERE indrelid OPERATOR(pg_catalog.=) $1 AND indisready AND indislive",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not count the indexes of relation %u", relid);
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/* ---- the result ---- */

static void
btd_emit(FunctionCallInfo fcinfo, BtdState *st)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n = list_length(st->chosen);
	BtIndexState *states = palloc0(sizeof(BtIndexState) * (n + 1));
	Oid		   *founds = palloc0(sizeof(Oid) * (n + 1));
	ListCell   *lc;
	int			x = 0;

	/* the state of each index first: the INSERT figures count the set's */
	foreach(lc, st->chosen)
	{
		Oid			relid;

		states[x] = bt_index_state(btd_indexdef((BtdIndex *) lfirst(lc), true),
								   &relid, &founds[x]);
		x++;
	}

	x = 0;
	foreach(lc, st->chosen)
	{
		BtdIndex   *idx = (BtdIndex *) lfirst(lc);
		Datum		values[BTD_NCOLS];
		bool		nulls[BTD_NCOLS];
		int			i = 0;
		int			now;
		int			added = 0;
		double		est;
		ListCell   *lc2;
		int			y = 0;

		memset(nulls, 0, sizeof(nulls));
		values[i++] = CStringGetTextDatum(btd_definition(st, idx));
		values[i++] = CStringGetTextDatum(idx->serves);
		values[i++] = CStringGetTextDatum(psprintf("%s; %s", idx->why, idx->cover_note));
		values[i++] = CStringGetTextDatum(bt_index_state_name(states[x]));
		values[i++] = CStringGetTextDatum(st->hypopg ? "hypopg" : "rules");
		values[i++] = Float8GetDatum(st->cost_before);
		if (st->cost_after >= 0)
		{
			values[i++] = Float8GetDatum(st->cost_after);
			values[i++] = Float8GetDatum(round(1000.0 * st->best_drop) / 10.0);
		}
		else
		{
			nulls[i++] = true;
			nulls[i++] = true;
		}
		if (idx->without_it >= 0)
			values[i++] = Float8GetDatum(idx->without_it);
		else
			nulls[i++] = true;
		/* its size: estimated, and measured once it exists */
		est = bt_index_estimate_size(btd_indexdef(idx, true), idx->rel->relid);
		if (est >= 0)
			values[i++] = Int64GetDatum((int64) est);
		else
			nulls[i++] = true;
		if (states[x] == BT_INDEX_PRESENT && OidIsValid(founds[x]))
			values[i++] = DirectFunctionCall2(pg_relation_size,
											  ObjectIdGetDatum(founds[x]),
											  CStringGetTextDatum("main"));
		else
			nulls[i++] = true;
		/* the indexes each INSERT into its table maintains, now and then */
		now = btd_table_indexes(idx->rel->relid);
		foreach(lc2, st->chosen)
		{
			BtdIndex   *other = (BtdIndex *) lfirst(lc2);

			if (other->rel->relid == idx->rel->relid &&
				states[y] != BT_INDEX_PRESENT && states[y] != BT_INDEX_BUILDING)
				added++;
			y++;
		}
		values[i++] = Int32GetDatum(now);
		values[i++] = Int32GetDatum(now + added);
		Assert(i == BTD_NCOLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		x++;
	}
}

/*
 * Everything but the output: check, rank, choose.  As the caller up to
 * btd_run_as_owner.
 */
static void
btd_compute(BtdState *st)
{
	bool		was_busy = btd_busy;
	bool		was_hiding = btd_hiding;

	btd_busy = true;
	PG_TRY();
	{
		btd_check_caller(st, btd_analyse(st));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		st->hypopg = bt_extension_schema("hypopg");
		st->wanted = btd_catalog_wanted(st);
		btd_run_as_owner(st);
	}
	PG_FINALLY();
	{
		btd_busy = was_busy;
		btd_hiding = was_hiding;
		btd_hypo_oids = NIL;
	}
	PG_END_TRY();
}

bool
bt_derive_in_progress(void)
{
	return btd_busy;
}

/* bt_derive_indexes' arguments and result */
typedef struct BtdIndexesArgs
{
	const char *sql;
	const char *schema;
	List	   *result;			/* canonical definitions (char *) */
} BtdIndexesArgs;

/*
 * bt_derive_indexes' step, in its subtransaction: derive without checking
 * the caller, and copy the chosen set's definitions into the caller's
 * memory context.
 */
static void
btd_indexes_step(void *arg)
{
	BtdIndexesArgs *a = (BtdIndexesArgs *) arg;
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext spicxt;
	BtdState	st;
	ListCell   *lc;

	memset(&st, 0, sizeof(st));
	st.sql = pstrdup(a->sql);
	st.schema = pstrdup(a->schema);
	st.internal = true;
	st.cost_after = -1;
	btd_compute(&st);
	spicxt = MemoryContextSwitchTo(callercxt);
	foreach(lc, st.chosen)
		a->result = lappend(a->result, btd_canonical((BtdIndex *) lfirst(lc)));
	MemoryContextSwitchTo(spicxt);
	SPI_finish();
}

/*
 * The set derived for a catalog row whose indexes are NULL: a List of
 * canonical definitions (char *), allocated in the caller's memory
 * context; NIL when no set lowers the statement's cost.  Unlike the SQL
 * function, the caller's rights are not checked: only superusers write the
 * catalog, and the statement is planned as its tables' owner all the same.
 * Errors (a table that does not exist yet, say) are caught in a
 * subtransaction: then NIL, and *why (if not NULL) says what happened.
 */
List *
bt_derive_indexes(const char *sql, const char *schema, char **why)
{
	BtdIndexesArgs a = {sql, schema, NIL};
	ErrorData  *edata;

	if (why)
		*why = NULL;
	edata = bt_run_caught(btd_indexes_step, &a, true);
	if (edata == NULL)
		return a.result;
	/* a cancel or timeout belongs to the caller's statement */
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	if (why)
		*why = pstrdup(edata->message);
	FreeErrorData(edata);
	return NIL;
}

/*
 * derive(statement text, schema name) returns setof (definition, serves,
 * why, state, ranked_by, cost_before, cost_after, cost_drop_pct,
 * cost_without_it)
 */
Datum
bt_derive(PG_FUNCTION_ARGS)
{
	BtdState	st;

	memset(&st, 0, sizeof(st));
	st.sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	st.schema = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	st.cost_after = -1;

	bt_init_srf(fcinfo);
	btd_compute(&st);

	if (st.ncandidates == 0)
		ereport(NOTICE,
				(errmsg("no index can serve this statement"),
				 errdetail("It compares no column of its tables with a value, joins none and orders by none.")));
	else if (st.chosen == NIL && st.hypopg != NULL)
	{
		if (st.best_drop > 0)
			ereport(NOTICE,
					(errmsg("no index set lowers the planner's cost of this statement by %d %% or more",
							(int) (BTD_MIN_DROP * 100)),
					 errdetail("The best set found lowers it by %.1f %%.", 100.0 * st.best_drop)));
		else
			ereport(NOTICE,
					(errmsg("no index set lowers the planner's cost of this statement"),
					 errdetail("Its plan costs %.0f without new indexes.", st.cost_before)));
	}
	btd_emit(fcinfo, &st);
	SPI_finish();
	PG_RETURN_VOID();
}
