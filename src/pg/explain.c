/*
 * explain.c: mlpipe.explain and mlpipe.explain_values, per-row explanations
 * by model reference. Tree models (decision_tree, random_forest, gbt) are
 * explained with exact TreeSHAP (src/core/treeshap.c) on their raw output
 * (gbt: the margin; forests: the class probability or the value), using
 * the node covers stored in the artifact (tree codec version 2). k-means
 * rows are explained by each feature's part of the squared distance to the
 * assigned centroid. The decoded model comes from predict.c's cache; the
 * TreeSHAP explainer built from it is kept per backend for the last model.
 * A model with stored preprocessing is explained, in the row form, per
 * original column: the contributions of a column's encoded outputs (one-hot
 * indicators, array elements) are summed (src/core/explain_groups.c).
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include <math.h>

#include "explain.h"

PG_FUNCTION_INFO_V1(mlpipe_explain_array);
PG_FUNCTION_INFO_V1(mlpipe_explain_row);
PG_FUNCTION_INFO_V1(mlpipe_explain_values);

/* The explainer of the last model explained in this backend. */
static struct
{
	const MlModel *model;
	uint64		gen;
	MemoryContext cxt;
	PgEnv		pe;
	TreeExplainer *ex;
	ExplainGroups groups;		/* n_groups 0 until groups_for builds them */
}			cached;

/* The explainer for a decoded tree model; 22023 when it has no covers. */
static TreeExplainer *
explainer_for(const MlModel *m, uint64 gen)
{
	MlError		err = {0};

	if (cached.ex != NULL && cached.model == m && cached.gen == gen)
		return cached.ex;
	if (m->tm.cover == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("this model was stored without node covers, so it cannot be explained"),
						errhint("Retrain it (models trained by mlpipe 0.4.0 or imported store covers).")));
	if (cached.cxt != NULL)
		MemoryContextDelete(cached.cxt);
	cached.ex = NULL;
	cached.model = NULL;
	memset(&cached.groups, 0, sizeof(cached.groups));
	cached.cxt = AllocSetContextCreate(TopMemoryContext, "mlpipe explainer", ALLOCSET_DEFAULT_SIZES);
	pg_env_init(&cached.pe, cached.cxt, "explain", false);
	if (tree_explainer_build(&cached.pe.env, &m->tm, m->tm.cover, &cached.ex, &err) != ML_OK)
	{
		MemoryContextDelete(cached.cxt);
		cached.cxt = NULL;
		cached.ex = NULL;
		pg_report_ml_error(&err);
	}
	cached.model = m;
	cached.gen = gen;
	return cached.ex;
}

/* The original-column groups of the cached model's preprocessing (after explainer_for). */
static const ExplainGroups *
groups_for(const MlModel *m)
{
	MlError		err = {0};

	Assert(cached.model == m);
	if (cached.groups.n_groups == 0 &&
		explain_groups_build(&cached.pe.env, &m->prep, &cached.groups, &err) != ML_OK)
		pg_report_ml_error(&err);
	return &cached.groups;
}

/*
 * 0A000 for the float8[] forms on a model with stored preprocessing: they
 * take the model's encoded features, which the row form builds.
 */
static void
require_plain_inputs(const MlModel *m, const char *fn)
{
	if (m->kind != ML_KIND_KMEANS && m->prep.n_in != 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("%s(model_ref, float8[]) does not explain a model trained with params.preprocess", fn),
						errhint("Pass the row: mlpipe.explain(model_ref, t) with the raw columns explains it per original column.")));
}

/* The float8[] argument as the model's feature vector (NULL elements: NaN for trees). */
static double *
array_features(const MlModel *m, ArrayType *a)
{
	Datum	   *ev;
	bool	   *en;
	int			ne,
				i;
	double	   *x;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("features must be a one-dimensional array")));
	deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &ev, &en, &ne);
	if (ne != (int) m->meta.n_features)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("model expects %u features, got %d", m->meta.n_features, ne)));
	x = palloc(sizeof(double) * Max(ne, 1));
	for (i = 0; i < ne; i++)
	{
		if (en[i] && m->kind == ML_KIND_KMEANS)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("features contains a NULL element"),
							errhint("A k-means model cannot place a row with missing values.")));
		x[i] = en[i] ? NAN : DatumGetFloat8(ev[i]);
	}
	return x;
}

/*
 * Which explained output to report: tree_explain_n_outputs is 1 for gbt
 * binary and regression models; otherwise one per class, chosen by label
 * (class_label), else the positive class of a binary model, else the
 * class with the largest raw output for this row.
 */
static uint32
output_index(const MlModel *m, const double *x, const char *class_label)
{
	uint32		k = tree_explain_n_outputs(&m->tm);
	uint32		c,
				best = 0;
	double	   *raw;

	if (class_label != NULL)
	{
		if (m->meta.task != ML_TASK_CLASSIFY)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("class is given for a regression model")));
		for (c = 0; c < m->meta.n_classes; c++)
			if (strcmp(m->meta.class_labels[c], class_label) == 0)
				break;
		if (c == m->meta.n_classes)
		{
			StringInfoData s;

			initStringInfo(&s);
			for (c = 0; c < m->meta.n_classes && c < 20; c++)
				appendStringInfo(&s, "%s%s", c ? ", " : "", m->meta.class_labels[c]);
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("the model has no class \"%s\"", class_label),
							errhint("Classes: %s%s.", s.data, m->meta.n_classes > 20 ? ", ..." : "")));
		}
		if (k == 1)
		{
			if (c != 1)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("a binary gbt model is explained on the margin of class \"%s\"",
									   m->meta.class_labels[1])));
			return 0;
		}
		return c;
	}
	if (k == 1)
		return 0;
	if (k == 2)
		return 1;
	raw = palloc(sizeof(double) * k);
	tree_explain_raw(&m->tm, x, raw);
	for (c = 1; c < k; c++)
		if (raw[c] > raw[best])
			best = c;
	return best;
}

/* One output row of the set. */
static void
put_row(ReturnSetInfo *rsi, const char *feature, double value, double contribution)
{
	Datum		v[3];
	bool		n[3] = {feature == NULL, isnan(value), false};

	v[0] = feature ? CStringGetTextDatum(feature) : (Datum) 0;
	v[1] = Float8GetDatum(value);
	v[2] = Float8GetDatum(contribution);
	tuplestore_putvalues(rsi->setResult, rsi->setDesc, v, n);
}

/* Sort support: larger |contribution| first, then feature order. */
static const double *sort_contrib;

static int
cmp_abs_desc(const void *a, const void *b)
{
	int			i = *(const int *) a,
				j = *(const int *) b;
	double		x = fabs(sort_contrib[i]),
				y = fabs(sort_contrib[j]);

	if (x != y)
		return x > y ? -1 : 1;
	return i - j;
}

/*
 * Emits (feature, value, contribution) rows for d features: every feature
 * in training order, or the top_k by |contribution|, then the row with
 * feature NULL whose contribution is `last` (expected value, or k-means
 * distance). A NaN value is NULL.
 */
static void
emit_rows(FunctionCallInfo fcinfo, int d, char *const *names, const double *x,
		  const double *contrib, double last_value, double last)
{
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	int			top_k = PG_ARGISNULL(2) ? d : PG_GETARG_INT32(2);
	int		   *order = palloc(sizeof(int) * Max(d, 1));
	int			i;

	if (top_k < 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("top_k must not be negative")));
	for (i = 0; i < d; i++)
		order[i] = i;
	if (top_k < d)
	{
		sort_contrib = contrib;
		qsort(order, d, sizeof(int), cmp_abs_desc);
	}
	for (i = 0; i < d && i < top_k; i++)
		put_row(rsi, names[order[i]], x[order[i]], contrib[order[i]]);
	put_row(rsi, NULL, last_value, last);
}

/*
 * Emits a preprocessed model's contributions phi (one per encoded feature)
 * per original column, with the raw value of a numeric column (NULL for
 * categories and arrays).
 */
static void
emit_groups(FunctionCallInfo fcinfo, const MlModel *m, const double *raw, const double *phi,
			double expected)
{
	const ExplainGroups *g = groups_for(m);
	double	   *sums = palloc(sizeof(double) * g->n_groups);
	double	   *values = palloc(sizeof(double) * g->n_groups);
	uint32		i;

	explain_groups_sum(g, phi, m->meta.n_features, sums);
	for (i = 0; i < g->n_groups; i++)
		values[i] = g->input[i] >= 0 ? raw[g->input[i]] : NAN;
	emit_rows(fcinfo, (int) g->n_groups, g->names, values, sums, NAN, expected);
}

/*
 * Explains one feature vector of model m and emits the rows; raw (the row
 * form's raw inputs) is given for a model with preprocessing.
 */
static void
explain_emit(FunctionCallInfo fcinfo, PredictSite *site, const double *x, const double *raw)
{
	const MlModel *m = site->model;
	const char *class_label = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));

	InitMaterializedSRF(fcinfo, 0);
	if (m->kind == ML_KIND_KMEANS)
	{
		int			d = m->km.d;
		double	   *term = palloc(sizeof(double) * d);
		double	   *scratch = palloc(sizeof(double) * d);
		double		dist2;
		int			c;

		if (class_label != NULL)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("class is given for a k-means model")));
		c = kmeans_explain_row(&m->km, x, &dist2, term, NULL, scratch);
		if (c < 0)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("the row cannot be assigned to a cluster")));
		/* The last row: value = the cluster, contribution = the squared distance. */
		emit_rows(fcinfo, d, m->meta.feature_names, x, term, (double) c, dist2);
		return;
	}
	{
		TreeExplainer *ex = explainer_for(m, site->model_gen);
		uint32		k = tree_explain_n_outputs(&m->tm);
		uint32		d = m->tm.n_features;
		double	   *phi = palloc(sizeof(double) * k * (d + 1));
		uint32		c = output_index(m, x, class_label);

		tree_explain_row(ex, x, phi);
		if (m->prep.n_in > 0)
			emit_groups(fcinfo, m, raw, phi + (size_t) c * (d + 1), phi[(size_t) c * (d + 1) + d]);
		else
			emit_rows(fcinfo, (int) d, m->meta.feature_names, x, phi + (size_t) c * (d + 1), NAN,
					  phi[(size_t) c * (d + 1) + d]);
	}
}

/* mlpipe.explain(model_ref, features float8[], top_k, class) -> rows. */
Datum
mlpipe_explain_array(PG_FUNCTION_ARGS)
{
	PredictSite *site;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
	{
		InitMaterializedSRF(fcinfo, 0);
		return (Datum) 0;
	}
	site = predict_site_ref(fcinfo, PG_GETARG_TEXT_PP(0));
	require_plain_inputs(site->model, "explain");
	explain_emit(fcinfo, site, array_features(site->model, PG_GETARG_ARRAYTYPE_P(1)), NULL);
	return (Datum) 0;
}

/* mlpipe.explain(model_ref, row record, top_k, class) -> rows. */
Datum
mlpipe_explain_row(PG_FUNCTION_ARGS)
{
	PredictSite *site;
	const double *x;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
	{
		InitMaterializedSRF(fcinfo, 0);
		return (Datum) 0;
	}
	site = predict_site_ref(fcinfo, PG_GETARG_TEXT_PP(0));
	x = predict_row_features(site, fcinfo, PG_GETARG_HEAPTUPLEHEADER(1));
	explain_emit(fcinfo, site, x, predict_row_raw(site));
	return (Datum) 0;
}

/*
 * mlpipe.explain_values(model_ref, features float8[]) -> float8[]: every
 * explained output's contributions in XGBoost's pred_contribs layout
 * (per output: one value per feature, then the expected value).
 */
Datum
mlpipe_explain_values(PG_FUNCTION_ARGS)
{
	PredictSite *site = predict_site_ref(fcinfo, PG_GETARG_TEXT_PP(0));
	const MlModel *m = site->model;
	const double *x;
	TreeExplainer *ex;
	uint32		k,
				n,
				i;
	double	   *phi;
	Datum	   *d;

	if (m->kind == ML_KIND_KMEANS)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("explain_values is for tree models; use mlpipe.explain for k-means")));
	require_plain_inputs(m, "explain_values");
	x = array_features(m, PG_GETARG_ARRAYTYPE_P(1));
	ex = explainer_for(m, site->model_gen);
	k = tree_explain_n_outputs(&m->tm);
	n = k * (m->tm.n_features + 1);
	phi = palloc(sizeof(double) * n);
	d = palloc(sizeof(Datum) * n);
	tree_explain_row(ex, x, phi);
	for (i = 0; i < n; i++)
		d[i] = Float8GetDatum(phi[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
