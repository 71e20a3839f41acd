/*
 * predict_support.c: scoring by name anywhere (prototype for issue #11).
 *
 * The name forms of the scorers (mlpipe.predict, predict_label,
 * predict_proba and the _score_* accessors of predict_table, with a text
 * model_ref) resolve the reference through the registry when they run.
 * On Citus they run inside the shard queries, on workers whose registry is
 * empty, and fail with 'model "m" does not exist'. Here a constant reference
 * is resolved once, while the query is planned on the node that has the
 * registry, and the call is replaced by the artifact (bytea) form with the
 * artifact as a constant: the shard query then carries the model itself.
 *
 * Only queries that touch a Citus table are rewritten: elsewhere the name
 * forms resolve fine, and their backend-wide decoded-model cache is faster
 * than the artifact form (which decodes once per statement).
 *
 * Two entry points do the same rewrite:
 *   - mlpipe_internal._predict_support, a planner support function
 *     (SupportRequestSimplify) attached to the name forms. On Citus it
 *     reaches multi-shard SELECTs, whose shard queries are deparsed after
 *     standard_planner simplified them;
 *   - a planner hook (predict_support_init, to be called from _PG_init)
 *     that rewrites the Query before the next planner in the chain sees it.
 *     Citus deparses fast-path router queries and INSERT ... SELECT from a
 *     copy taken before standard_planner, and keeps its own plan cache, so
 *     those need the hook. It needs mlpipe loaded before the first query
 *     is planned (shared_preload_libraries = 'citus,mlpipe' or
 *     session_preload_libraries = 'mlpipe' on the coordinator).
 * test/citus/DESIGN.md has the measurements.
 *
 * A plan that embeds an artifact depends on the registry: the plan lists
 * mlpipe.model_versions and mlpipe.aliases in its relation OIDs, and the
 * trigger mlpipe_internal._registry_changed() sends a relcache invalidation for the
 * table it fires on, so that a moved alias or a deleted version replans
 * cached plans (prepared statements, plpgsql) instead of scoring with the
 * old artifact.
 *
 * A reference that is a column (per-row model names) is refused with a
 * HINT in a query over a Citus table (refuse_column_reference). A
 * parameter is resolved with its value when the plan is a custom plan
 * (bound_reference). What is not rewritten: a parameter of a generic plan,
 * a reference that does not resolve (the
 * function then raises its usual error when it runs), and calls by a user
 * without EXECUTE on the name form (the executor raises the usual
 * permission error).
 */
#include "mlpipe.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "predict_support.h"

PG_FUNCTION_INFO_V1(mlpipe_predict_support);
PG_FUNCTION_INFO_V1(mlpipe_registry_changed);

/* A name-form scorer and the artifact-form function that replaces it. */
typedef struct NameForm
{
	const char *name;
	const char *artifact_form;
} NameForm;

static const NameForm name_forms[] = {
	{"predict", "predict"},
	{"predict_label", "predict_label"},
	{"predict_proba", "predict_proba"},
	{"_score_class", "predict"},
	{"_score_label", "predict_label"},
	{"_score_proba", "predict_proba"},
	{"anomaly_score", "anomaly_score"},
	{"is_anomaly", "is_anomaly"},
	{NULL, NULL}
};

static planner_hook_type prev_planner_hook = NULL;

/*
 * The schema of an mlpipe function: the internal ones (_score_*) live in
 * mlpipe_internal, the public ones in mlpipe.
 */
static const char *
schema_of(const char *proname)
{
	return proname[0] == '_' ? mlpipe_internal_schema() : "mlpipe";
}

/*
 * The OID of the artifact (bytea) form that replaces funcid, or InvalidOid
 * when funcid is not one of mlpipe's name-form scorers.
 */
static Oid
artifact_form_of(Oid funcid)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	const NameForm *nf;
	Oid			result = InvalidOid;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (proc->pronargs == 2 && proc->proargtypes.values[0] == TEXTOID &&
		proc->pronamespace == get_namespace_oid(schema_of(NameStr(proc->proname)), true))
	{
		for (nf = name_forms; nf->name; nf++)
		{
			if (strcmp(NameStr(proc->proname), nf->name) == 0)
			{
				Oid			argtypes[2] = {BYTEAOID, proc->proargtypes.values[1]};

				result = LookupFuncName(list_make2(makeString("mlpipe"),
												   makeString((char *) nf->artifact_form)),
										2, argtypes, true);
				break;
			}
		}
	}
	ReleaseSysCache(tup);
	return result;
}

/*
 * The artifact a reference resolves to, read as the current user through
 * the same registry functions the name forms use at run time; NULL when it
 * does not resolve (unknown model, alias or version, no privilege). Runs in
 * a subtransaction so that a failed lookup leaves the planning intact.
 */
static bytea *
resolve_artifact(text *ref)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bytea	   *volatile artifact = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller);
	PG_TRY();
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {PointerGetDatum(ref)};
		bool		isnull = true;
		Datum		d;
		const char *nsp = mlpipe_internal_schema();

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args(psprintf("SELECT %s._artifact_at(k.model, k.version)"
										   " FROM %s._resolve_key($1) k", nsp, nsp),
								  1, argtypes, args, NULL, true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
			{
				MemoryContext spi = MemoryContextSwitchTo(caller);

				artifact = DatumGetByteaPCopy(d);
				MemoryContextSwitchTo(spi);
			}
		}
		SPI_finish();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller);
		CurrentResourceOwner = owner;
		artifact = NULL;
	}
	PG_END_TRY();
	return artifact;
}

/*
 * The artifact-form call that replaces a name-form call with a constant
 * reference, or NULL to leave the call as it is.
 */
static Node *
name_form_to_artifact(FuncExpr *call)
{
	Oid			artifact_form;
	Node	   *ref;
	bytea	   *artifact;
	FuncExpr   *replaced;
	Const	   *model;

	if (list_length(call->args) != 2)
		return NULL;
	ref = linitial(call->args);
	if (!IsA(ref, Const) || ((Const *) ref)->constisnull ||
		((Const *) ref)->consttype != TEXTOID)
		return NULL;
	artifact_form = artifact_form_of(call->funcid);
	if (!OidIsValid(artifact_form))
		return NULL;
	if (pg_proc_aclcheck(call->funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		return NULL;
	artifact = resolve_artifact(DatumGetTextPP(((Const *) ref)->constvalue));
	if (artifact == NULL)
		return NULL;
	model = makeConst(BYTEAOID, -1, InvalidOid, -1, PointerGetDatum(artifact), false, false);
	replaced = makeFuncExpr(artifact_form, call->funcresulttype,
							list_make2(model, lsecond(call->args)),
							call->funccollid, call->inputcollid, call->funcformat);
	replaced->location = call->location;
	return (Node *) replaced;
}

/*
 * True when relid is a Citus table (a row in pg_dist_partition). Read with
 * a catalog scan, so that mlpipe does not link against Citus.
 */
static bool
is_citus_table(Oid relid, Oid dist_partition)
{
	Relation	rel = table_open(dist_partition, AccessShareLock);
	SysScanDesc scan;
	ScanKeyData key;
	bool		found;

	/* logicalrelid is the first column of pg_dist_partition */
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* Walker: does a query tree read or write a Citus table? */
static bool
citus_table_walker(Node *node, Oid *dist_partition)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->rtekind == RTE_RELATION && is_citus_table(rte->relid, *dist_partition);
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, citus_table_walker, dist_partition,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, citus_table_walker, dist_partition);
}

/*
 * True when the query touches a Citus table, the only case where the name
 * forms cannot resolve their reference when they run. Everywhere else the
 * rewrite would cost more than it saves: the name forms keep decoded models
 * in a backend-wide cache, the artifact form decodes once per statement
 * (a 242 KB forest: 0.48 ms -> 11 ms per one-row predict).
 */
static bool
touches_citus_table(Query *parse)
{
	Oid			dist_partition;

	if (!OidIsValid(get_extension_oid("citus", true)))
		return false;
	dist_partition = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(dist_partition))
		return false;
	return citus_table_walker((Node *) parse, &dist_partition);
}

/* The registry tables a plan with an embedded artifact depends on. */
static List *
registry_relations(void)
{
	Oid			ns = get_namespace_oid("mlpipe", true);
	List	   *oids = NIL;
	Oid			rel;

	if (!OidIsValid(ns))
		return NIL;
	if (OidIsValid(rel = get_relname_relid("model_versions", ns)))
		oids = lappend_oid(oids, rel);
	if (OidIsValid(rel = get_relname_relid("aliases", ns)))
		oids = lappend_oid(oids, rel);
	return oids;
}

/*
 * mlpipe_internal._predict_support(internal): SupportRequestSimplify for the name
 * forms. Rewrites only while a planner runs (root set), because only then
 * can the plan record its dependency on the registry, and only in queries
 * that touch a Citus table.
 */
Datum
mlpipe_predict_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);
	SupportRequestSimplify *req;
	PlannerInfo *top;
	Node	   *replaced;

	if (!IsA(rawreq, SupportRequestSimplify))
		PG_RETURN_POINTER(NULL);
	req = (SupportRequestSimplify *) rawreq;
	if (req->root == NULL || req->root->glob == NULL)
		PG_RETURN_POINTER(NULL);
	top = req->root;
	while (top->parent_root != NULL)
		top = top->parent_root;
	if (!touches_citus_table(top->parse))
		PG_RETURN_POINTER(NULL);
	replaced = name_form_to_artifact(req->fcall);
	if (replaced != NULL)
		req->root->glob->relationOids = list_concat(req->root->glob->relationOids,
													registry_relations());
	PG_RETURN_POINTER(replaced);
}

/* Walker state of the planner hook's rewrite. */
typedef struct RewriteContext
{
	bool		changed;
	ParamListInfo bound_params; /* a custom plan's parameter values, or NULL */
	List	   *queries;		/* the Query nodes around the current node, innermost last */
} RewriteContext;

/*
 * A row-form name call whose row is the whole row of a subquery or view in
 * a query over a Citus table. Citus deparses such a whole-row reference as
 * an anonymous ROW(a, b, ...), whose columns are named f1, f2, ...: the row
 * form would match the model's features against those names and score the
 * wrong columns (or miss them). A table's whole row keeps its type. Refused.
 */
static void
refuse_anonymous_row(FuncExpr *call, RewriteContext *ctx)
{
	Var		   *row;
	Query	   *q;
	RangeTblEntry *rte;

	if (list_length(call->args) != 2 || !IsA(lsecond(call->args), Var) ||
		!OidIsValid(artifact_form_of(call->funcid)))
		return;
	row = (Var *) lsecond(call->args);
	if (row->varattno != 0 || row->varlevelsup >= list_length(ctx->queries))
		return;
	q = (Query *) list_nth(ctx->queries, list_length(ctx->queries) - 1 - row->varlevelsup);
	if (row->varno < 1 || row->varno > list_length(q->rtable))
		return;
	rte = rt_fetch(row->varno, q->rtable);
	if (rte->rtekind == RTE_RELATION)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("the row form of %s cannot take the whole row of a subquery or view in a query over a Citus table",
					get_func_name(call->funcid)),
			 errdetail("Citus sends that row to the shards without its column names."),
			 errhint("Score the distributed table itself (FROM t ... predict('m', t)), or use the float8[] form.")));
}

/*
 * The value of an external text parameter as a Const, when the plan being
 * made is a custom plan for that value (the caller passed bound parameters
 * marked constant); else the node itself. Citus deparses router queries
 * with the parameter and substitutes its value only when it sends them, so
 * the name would otherwise reach a worker.
 */
static Node *
bound_reference(Node *ref, ParamListInfo params)
{
	Param	   *param = (Param *) ref;
	ParamExternData workspace;
	ParamExternData *prm;

	if (params == NULL || !IsA(ref, Param) || param->paramkind != PARAM_EXTERN ||
		param->paramtype != TEXTOID || param->paramid <= 0 || param->paramid > params->numParams)
		return ref;
	if (params->paramFetch != NULL)
		prm = params->paramFetch(params, param->paramid, false, &workspace);
	else
		prm = &params->params[param->paramid - 1];
	if (prm == NULL || prm->isnull || prm->ptype != TEXTOID || !(prm->pflags & PARAM_FLAG_CONST))
		return ref;
	return (Node *) makeConst(TEXTOID, -1, param->paramcollid, -1,
							  datumCopy(prm->value, false, -1), false, false);
}

/* True when a node holds a name-form scorer call (a text model reference). */
static bool
has_candidate_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, has_candidate_walker, context, 0);
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) node;

		if (list_length(f->args) == 2 && exprType(linitial(f->args)) == TEXTOID &&
			OidIsValid(artifact_form_of(f->funcid)))
			return true;
	}
	return expression_tree_walker(node, has_candidate_walker, context);
}

/*
 * A name-form call whose model reference is a column (it contains a Var) in
 * a query over a Citus table: the reference cannot be resolved at plan time
 * and the shard queries would look it up in the workers' empty registry, so
 * refuse it here with a HINT instead of failing on a worker.
 */
static void
refuse_column_reference(FuncExpr *call)
{
	if (list_length(call->args) != 2 || !OidIsValid(artifact_form_of(call->funcid)) ||
		!contain_var_clause(linitial(call->args)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s needs a constant model reference in a query over a Citus table",
					get_func_name(call->funcid)),
			 errdetail("The registry lives on the coordinator; shard queries on the workers cannot look a model up by name."),
			 errhint("Pass the model name as a literal, or join mlpipe.model_versions and score with the artifact form, e.g. mlpipe.predict(v.artifact, ...).")));
}

/*
 * A name-form call whose model reference is still a parameter after
 * bound_reference: the plan is a generic plan, made without the value, and
 * the shard queries would look the name up on a worker. Refused with a HINT.
 */
static void
refuse_generic_parameter(FuncExpr *call)
{
	if (list_length(call->args) != 2 || !IsA(linitial(call->args), Param) ||
		!OidIsValid(artifact_form_of(call->funcid)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s cannot take its model reference from a parameter of a generic plan in a query over a Citus table",
					get_func_name(call->funcid)),
			 errdetail("The registry lives on the coordinator; the reference is resolved while the query is planned."),
			 errhint("SET plan_cache_mode = force_custom_plan, or pass the model name as a literal (in PL/pgSQL: EXECUTE format('... %%L ...', ref)).")));
}

/* Replaces every name-form call with a constant reference, at any depth. */
static Node *
rewrite_mutator(Node *node, RewriteContext *ctx)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Query))
	{
		Node	   *result;

		ctx->queries = lappend(ctx->queries, node);
		result = (Node *) query_tree_mutator((Query *) node, rewrite_mutator, ctx, 0);
		ctx->queries = list_delete_last(ctx->queries);
		return result;
	}
	if (IsA(node, FuncExpr))
	{
		Node	   *n = expression_tree_mutator(node, rewrite_mutator, ctx);
		Node	   *replaced;

		refuse_anonymous_row((FuncExpr *) n, ctx);

		refuse_column_reference((FuncExpr *) n);
		if (list_length(((FuncExpr *) n)->args) == 2 &&
			OidIsValid(artifact_form_of(((FuncExpr *) n)->funcid)))
			linitial(((FuncExpr *) n)->args) = bound_reference(linitial(((FuncExpr *) n)->args),
															  ctx->bound_params);
		refuse_generic_parameter((FuncExpr *) n);
		replaced = name_form_to_artifact((FuncExpr *) n);

		if (replaced != NULL)
		{
			ctx->changed = true;
			return replaced;
		}
		return n;
	}
	return expression_tree_mutator(node, rewrite_mutator, ctx);
}

/*
 * The planner hook: the rewrite before the next planner (Citus) sees the
 * query, and the registry dependency added to the finished plan.
 */
static PlannedStmt *
predict_support_planner(Query *parse, const char *query_string, int cursor_options,
						ParamListInfo bound_params)
{
	RewriteContext ctx = {false, bound_params, NIL};
	PlannedStmt *result;

	if (parse->commandType != CMD_UTILITY &&
		OidIsValid(get_namespace_oid("mlpipe", true)) &&
		query_tree_walker(parse, has_candidate_walker, NULL, 0) &&
		touches_citus_table(parse))
		parse = (Query *) rewrite_mutator((Node *) parse, &ctx);
	if (prev_planner_hook)
		result = prev_planner_hook(parse, query_string, cursor_options, bound_params);
	else
		result = standard_planner(parse, query_string, cursor_options, bound_params);
	if (ctx.changed)
		result->relationOids = list_concat(result->relationOids, registry_relations());
	return result;
}

/* Installs the planner hook; called once from _PG_init. */
void
predict_support_init(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = predict_support_planner;
}

/*
 * mlpipe_internal._registry_changed(): statement trigger on the registry tables.
 * Invalidates the table's relcache entry, which replans every cached plan
 * that embedded an artifact (they list the table in their relation OIDs).
 */
Datum
mlpipe_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("mlpipe_internal._registry_changed must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	PG_RETURN_POINTER(NULL);
}
