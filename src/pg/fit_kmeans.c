/*
 * fit_kmeans.c: k-means and mini-batch k-means training for mlpipe_internal._fit
 * (fit.c dispatches here). It validates params before touching data, loads
 * the source as the caller, runs the core algorithm in a private memory
 * context and fills a FitOutput with the artifact and metrics.
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include <limits.h>
#include <math.h>

static const char *const kmeans_keys[] = {
	"k", "init", "centroids", "n_init", "max_iter", "tol", "distance", "seed",
	"standardize", "on_null", "exclude", "sample_size", "warm_start", "preprocess",
	"contamination", "k_criterion", NULL
};
static const char *const minibatch_keys[] = {
	"k", "init", "centroids", "n_init", "max_iter", "tol", "distance", "seed",
	"standardize", "on_null", "exclude", "sample_size", "warm_start", "batch_size", "preprocess",
	"contamination", "k_criterion", NULL
};
/* The params keys k-means (or mini-batch k-means) accepts, for pipeline checks. */
const char *const *
kmeans_param_keys(bool minibatch)
{
	return minibatch ? minibatch_keys : kmeans_keys;
}

static const char *const init_names[] = {"kmeans++", "random", "given", NULL};
static const char *const distance_names[] = {"l2", "cosine", NULL};
static const char *const on_null_names[] = {"error", "skip", NULL};
static const char *const criterion_names[] = {"silhouette", "davies_bouldin", "elbow", NULL};

/*
 * params.k as candidates: [lo, hi] is every k from lo to hi, a longer
 * array the values listed (ascending), and params.k_criterion. Returns how
 * many (0 when k is a number or absent).
 */
static int
params_k_candidates(cJSON *params, int **ks_out, KmCriterion *crit)
{
	cJSON	   *kj = cJSON_GetObjectItemCaseSensitive(params, "k");
	cJSON	   *v;
	int			m = 0,
				i = 0,
			   *ks;
	double		vals[KM_MAX_CANDIDATES];
	const char *cn = params_choice(params, "k_criterion", "silhouette", criterion_names);

	*crit = strcmp(cn, "elbow") == 0 ? KM_CRIT_ELBOW :
		strcmp(cn, "davies_bouldin") == 0 ? KM_CRIT_DAVIES_BOULDIN : KM_CRIT_SILHOUETTE;
	if (!cJSON_IsArray(kj) && cJSON_GetObjectItemCaseSensitive(params, "k_criterion"))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"k_criterion\" is only used when \"k\" is a range or a list"),
						errhint("For example '{\"k\": [2, 12], \"k_criterion\": \"silhouette\"}'.")));
	if (!cJSON_IsArray(kj))
		return 0;
	m = cJSON_GetArraySize(kj);
	if (m < 2 || m > KM_MAX_CANDIDATES)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"k\" as an array needs 2 to %d numbers, not %d", KM_MAX_CANDIDATES, m),
						errhint("[lo, hi] tries every k from lo to hi; a longer array lists the candidates.")));
	cJSON_ArrayForEach(v, kj)
	{
		if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
			v->valuedouble < 1 || v->valuedouble > 1000000)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("parameter \"k\"[%d] must be an integer from 1 to 1000000", i)));
		vals[i++] = v->valuedouble;
	}
	if (m == 2)
	{
		if (vals[1] - vals[0] + 1 > KM_MAX_CANDIDATES || vals[1] <= vals[0])
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("parameter \"k\" = [%g, %g] must be a range lo < hi of at most %d values",
								   vals[0], vals[1], KM_MAX_CANDIDATES)));
		m = (int) (vals[1] - vals[0]) + 1;
	}
	ks = palloc(sizeof(int) * m);
	for (i = 0; i < m; i++)
	{
		ks[i] = cJSON_GetArraySize(kj) == 2 ? (int) vals[0] + i : (int) vals[i];
		if (i > 0 && ks[i] <= ks[i - 1])
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("the candidates in parameter \"k\" must be ascending")));
	}
	*ks_out = ks;
	return m;
}

/* Every candidate's figures as metrics named "figure@k=K", besides the chosen model's. */
static void
candidate_metrics(cJSON *metrics, const int *ks, const KmResult *each, int m)
{
	int			i;
	char		name[64];

	for (i = 0; i < m; i++)
	{
		snprintf(name, sizeof(name), "inertia@k=%d", ks[i]);
		params_json_number(metrics, name, each[i].inertia);
		snprintf(name, sizeof(name), "silhouette@k=%d", ks[i]);
		params_json_number(metrics, name, each[i].silhouette);
		snprintf(name, sizeof(name), "calinski_harabasz@k=%d", ks[i]);
		params_json_number(metrics, name, each[i].calinski_harabasz);
		snprintf(name, sizeof(name), "davies_bouldin@k=%d", ks[i]);
		params_json_number(metrics, name, each[i].davies_bouldin);
	}
}

/* params.centroids: k rows of d finite numbers, checked once d is known. */
static double *
params_centroids(cJSON *root, int *k_out, int d)
{
	cJSON	   *cs = cJSON_GetObjectItemCaseSensitive(root, "centroids");
	cJSON	   *row,
			   *v;
	int			k,
				i = 0,
				j;
	double	   *out;

	if (!cJSON_IsArray(cs) || cJSON_GetArraySize(cs) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("init = 'given' needs params.centroids, an array of k arrays of numbers")));
	k = cJSON_GetArraySize(cs);
	out = palloc(sizeof(double) * k * d);
	cJSON_ArrayForEach(row, cs)
	{
		if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != d)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.centroids[%d] must be an array of %d numbers, one per feature", i, d)));
		j = 0;
		cJSON_ArrayForEach(v, row)
		{
			if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("params.centroids[%d][%d] is not a finite number", i, j)));
			out[i * d + j] = v->valuedouble;
			j++;
		}
		i++;
	}
	*k_out = k;
	return out;
}

/*
 * Preprocessing for k-means: fitted on every row (there is no split), text
 * columns one-hot by default. Rows left with a missing value (numbers
 * without impute) are skipped under on_null = 'skip', else 22000.
 */
static void
kmeans_preprocess(PgEnv *pe, cJSON *params, SourceData *data, MlPrep *prep, bool skip_invalid)
{
	SourceInfo	info;
	double	   *X;
	int			d,
				j;
	char	  **names;
	int64		r,
				kept = 0;

	memset(&info, 0, sizeof(info));
	info.n = data->n;
	info.d = data->d;
	info.feature_names = data->feature_names;
	info.categorical = data->categorical;
	info.dicts = data->dicts;
	info.any_categorical = data->any_categorical;
	X = prep_fit_transform(pe, params, &info, data->X, data->n, NULL, NULL, 0, NULL, prep, &d, &names);
	for (r = 0; r < data->n; r++)
	{
		double	   *x = X + (Size) r * d;

		for (j = 0; j < d; j++)
			if (!isfinite(x[j]))
				break;
		if (j < d)
		{
			if (!skip_invalid)
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("feature \"%s\" is NULL, NaN or infinite after preprocessing", names[j]),
								errhint("Impute it with params.preprocess, or set params.on_null = 'skip'.")));
			data->skipped++;
			continue;
		}
		if (kept != r)
			memcpy(X + (Size) kept * d, x, sizeof(double) * d);
		kept++;
	}
	if (kept == 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("all " INT64_FORMAT " rows were skipped for missing values", data->n)));
	data->X = X;
	data->n = kept;
	data->d = d;
	data->feature_names = names;
}

/*
 * Reads and checks every k-means parameter that needs no data (the keys,
 * the target, k, init, restarts, limits, distance, on_null, exclude) into
 * kp, before any data is read; also what create_pipeline runs
 * (kmeans_check_params), so both say the same.
 */
static void
read_params(const char *algorithm, cJSON *params, const char *target, bool warm,
			KmParams *kp, int **ks, int *n_ks, KmCriterion *crit, double *contamination)
{
	bool		minibatch = strcmp(algorithm, "minibatch_kmeans") == 0;
	const char *init;

	params_check_keys(params, algorithm, minibatch ? minibatch_keys : kmeans_keys);
	if (target != NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s is unsupervised: target must be NULL, not \"%s\"", algorithm, target)));
	memset(kp, 0, sizeof(*kp));
	*n_ks = params_k_candidates(params, ks, crit);
	kp->k = *n_ks > 0 ? (*ks)[0] : params_int(params, "k", 8, INT_MIN, INT_MAX);
	if (kp->k <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"k\" = %d must be at least 1", kp->k)));
	init = params_choice(params, "init", "kmeans++", init_names);
	kp->init = strcmp(init, "given") == 0 ? KM_INIT_GIVEN :
		strcmp(init, "random") == 0 ? KM_INIT_RANDOM : KM_INIT_KMEANSPP;
	if (kp->init != KM_INIT_GIVEN && cJSON_GetObjectItemCaseSensitive(params, "centroids"))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"centroids\" is only used with init = 'given'")));
	if (*n_ks > 0 && (warm || kp->init == KM_INIT_GIVEN))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"k\" as a range or list cannot be combined with %s",
							   warm ? "warm_start" : "init = 'given'"),
						errhint("Choose k first, then warm-start or give centroids with that k.")));
	kp->n_init = params_int(params, "n_init", kp->init == KM_INIT_RANDOM ? 10 : 1, 1, 1000);
	kp->max_iter = params_int(params, "max_iter", minibatch ? 100 : 300, 1, 1000000);
	kp->tol = params_number(params, "tol", 1e-4, 0, 1e300);
	kp->distance = strcmp(params_choice(params, "distance", "l2", distance_names), "cosine") == 0
		? KM_DIST_COSINE : KM_DIST_L2;
	kp->seed = params_seed(params);
	kp->standardize = params_bool(params, "standardize", false);
	kp->minibatch = minibatch;
	kp->batch_size = params_int(params, "batch_size", 1024, 1, INT_MAX);
	kp->sample_size = (int64) params_number(params, "sample_size", KM_SAMPLE_AUTO, 0, 1e12);
	/* 0: no anomaly threshold (the artifact stays as without the param) */
	*contamination = params_number(params, "contamination", 0, 0, 0.5);
	if (cJSON_GetObjectItemCaseSensitive(params, "contamination") && !(*contamination > 0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"contamination\" must be in (0, 0.5], not 0"),
						errhint("It is the fraction of the training rows is_anomaly flags; 0.01 is usual.")));

	(void) params_choice(params, "on_null", "error", on_null_names);	/* read again for the load */
	(void) params_exclude(params);
}

/* What fit_kmeans checks before reading data, without data (fit.c's fit_check_params). */
void
kmeans_check_params(const char *algorithm, cJSON *params, const char *target)
{
	KmParams	kp;
	int		   *ks;
	int			n_ks;
	KmCriterion crit;
	double		contamination;

	read_params(algorithm, params, target, false, &kp, &ks, &n_ks, &crit, &contamination);
}

/*
 * Reads the warm-start artifact into *warm_model and points kp at it: the
 * training continues that model, with its k, scaling and distance unless
 * params give them.
 */
static void
warm_start_from(MlEnv *env, bytea *warm, cJSON *params, bool has_k,
				MlModel *warm_model, KmParams *kp)
{
	MlError		err = {0};
	MlStatus	st = ml_model_read(env, (uint8_t *) VARDATA_ANY(warm),
								   VARSIZE_ANY_EXHDR(warm), warm_model, &err);

	ML_CHECK_STATUS(st, &err);
	if (warm_model->kind != ML_KIND_KMEANS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.warm_start must name a k-means model, not a %s model",
							   ml_kind_name(warm_model->kind))));
	kp->warm_start = &warm_model->km;
	if (!has_k)
		kp->k = warm_model->km.k;
	if (!cJSON_GetObjectItemCaseSensitive(params, "standardize"))
		kp->standardize = warm_model->km.standardize;
	if (!cJSON_GetObjectItemCaseSensitive(params, "distance"))
		kp->distance = warm_model->km.distance;
}

/* The stored metrics of a fit (clustering figures, iterations, time, rows). */
static cJSON *
kmeans_metrics_json(const KmResult *res, double seconds, int64 n)
{
	cJSON	   *m = cJSON_CreateObject();

	params_json_number(m, "inertia", res->inertia);
	params_json_number(m, "silhouette", res->silhouette);
	params_json_number(m, "silhouette_sample_rows", (double) res->silhouette_rows);
	params_json_number(m, "calinski_harabasz", res->calinski_harabasz);
	params_json_number(m, "davies_bouldin", res->davies_bouldin);
	params_json_number(m, "iterations", res->iterations);
	params_json_number(m, "training_seconds", seconds);
	params_json_number(m, "rows", (double) n);
	return m;
}

/* Trains kmeans or minibatch_kmeans (warm-started from warm when given) into fo. */
void
fit_kmeans(const char *algorithm, const char *source, const char *target,
		   ArrayType *features, cJSON *params, bytea *warm, FitOutput *fo)
{
	KmParams	kp;
	SourceSpec	spec;
	SourceData	data;
	PgEnv		pe;
	MemoryContext mcxt;
	KmModel		model;
	KmResult	res;
	MlError		err = {0};
	MlModel		warm_model;
	MlMeta		meta;
	MlBuf		buf;
	MlPrep		prep;
	MlTrace		trace = {0};
	KmAnomaly	anomaly = {0};
	double		contamination;
	bool		has_k = cJSON_GetObjectItemCaseSensitive(params, "k") != NULL;
	int		   *ks = NULL;
	int			n_ks;
	KmResult   *each = NULL;
	KmCriterion crit;
	int			chosen = -1;
	int64		t0 = pg_env_now_us();
	double		seconds;

	read_params(algorithm, params, target, warm != NULL, &kp, &ks, &n_ks, &crit, &contamination);

	mcxt = AllocSetContextCreate(CurrentMemoryContext, "mlpipe training", ALLOCSET_DEFAULT_SIZES);
	pg_env_init(&pe, mcxt, algorithm, true);
	pg_env_pool(&pe);

	if (warm != NULL)
		warm_start_from(&pe.env, warm, params, has_k, &warm_model, &kp);

	memset(&spec, 0, sizeof(spec));
	spec.source = source;
	spec.target = NULL;
	spec.features = features;
	spec.exclude = params_exclude(params);
	spec.skip_invalid = strcmp(params_choice(params, "on_null", "error", on_null_names), "skip") == 0;
	spec.algorithm = algorithm;
	/* With preprocessing, NULLs may be imputed: they are checked after it. */
	spec.missing_ok = prep_requested(params);
	if (fo->profile_sample > 0)
		spec.profile = profile_create(mcxt, fo->profile_sample, kp.seed);
	source_load(&spec, mcxt, &data);
	if (spec.profile)
		fo->profile = profile_finish(spec.profile);
	/* The same rows in any arrival order train the same model. */
	source_canonical_order(&pe, &data, kp.seed);
	memset(&prep, 0, sizeof(prep));
	if (data.any_categorical || prep_requested(params))
	{
		if (warm != NULL)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.warm_start cannot be combined with preprocessing (text columns or params.preprocess)")));
		kmeans_preprocess(&pe, params, &data, &prep, spec.skip_invalid);
	}

	if (kp.init == KM_INIT_GIVEN)
	{
		int			k;

		kp.given = params_centroids(params, &k, data.d);
		if (has_k && k != kp.k)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.centroids has %d rows but k = %d", k, kp.k)));
		kp.k = k;
	}
	if (kp.warm_start && kp.warm_start->d != data.d)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("params.warm_start model has %d features but the source has %d",
							   kp.warm_start->d, data.d)));

	kp.trace = &trace;
	if (n_ks > 0)
	{
		each = palloc0(sizeof(KmResult) * n_ks);
		ML_CHECK_STATUS(kmeans_fit_select(&pe.env, data.X, data.n, data.d, &kp, ks, n_ks, crit,
										  &model, each, &chosen, &err), &err);
		res = each[chosen];
		kp.k = ks[chosen];
	}
	else
		ML_CHECK_STATUS(kmeans_fit(&pe.env, data.X, data.n, data.d, &kp, &model, &res, &err), &err);
	if (contamination > 0)
	{
		ML_CHECK_STATUS(kmeans_anomaly_fit(&pe.env, &model, data.X, data.n, contamination,
										   &anomaly, &err), &err);
	}
	seconds = (pg_env_now_us() - t0) / 1e6;

	memset(&meta, 0, sizeof(meta));
	meta.task = ML_TASK_CLUSTER;
	meta.n_features = data.d;
	meta.feature_names = data.feature_names;
	ML_CHECK_STATUS(ml_model_write_kmeans(&buf, &pe.env, &meta, &model, &prep, &anomaly, &err), &err);

	fo->artifact = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(fo->artifact, VARHDRSZ + buf.len);
	memcpy(VARDATA(fo->artifact), buf.data, buf.len);
	fo->mcxt = mcxt;
	fo->task = "clustering";
	fo->features = data.feature_names;
	fo->n_features = data.d;

	fo->metrics = kmeans_metrics_json(&res, seconds, data.n);
	if (n_ks > 0)
	{
		params_json_number(fo->metrics, "k", kp.k);
		candidate_metrics(fo->metrics, ks, each, n_ks);
	}

	fo->info = cJSON_CreateObject();
	params_json_number(fo->info, "training_rows", (double) data.n);
	params_json_number(fo->info, "skipped_rows", (double) data.skipped);
	cJSON_AddStringToObject(fo->info, "metrics_split", "train");	/* read by _register */
	params_json_number(fo->info, "k", kp.k);
	if (n_ks > 0)
	{
		cJSON_AddStringToObject(fo->info, "k_criterion", kmeans_criterion_name(crit));
		params_json_number(fo->info, "k_candidates", n_ks);
	}
	params_json_number(fo->info, "best_init", res.best_init);
	params_json_number(fo->info, "threads", pe.env.n_threads);
	params_json_number(fo->info, "seed", (double) kp.seed);
	source_id_like_json(data.id_like, data.n_id_like, fo->info);
	if (warm != NULL)			/* lineage: the version this one continues */
	{
		cJSON	   *ws = cJSON_GetObjectItemCaseSensitive(params, "warm_start");

		cJSON_AddStringToObject(fo->info, "warm_start",
								cJSON_IsString(ws) ? ws->valuestring : "(artifact)");
	}
	if (anomaly.present)
	{
		params_json_number(fo->info, "contamination", anomaly.contamination);
		params_json_number(fo->info, "anomaly_threshold", anomaly.threshold);
	}
	params_json_trace(fo->info, &trace);
}
