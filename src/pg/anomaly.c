/*
 * anomaly.c: mlpipe.anomaly_score and mlpipe.is_anomaly, BigQuery's
 * ML.DETECT_ANOMALIES for k-means models (src/core/kmeans_anomaly.c holds
 * the definitions): by name or by artifact, features as float8[] or as a
 * row matched by name, through the same call-site caches as predict.
 */
#include "mlpipe.h"

#include "fmgr.h"
#include "utils/array.h"

PG_FUNCTION_INFO_V1(mlpipe_anomaly_score_ref);
PG_FUNCTION_INFO_V1(mlpipe_anomaly_score_bytea);
PG_FUNCTION_INFO_V1(mlpipe_anomaly_score_row_ref);
PG_FUNCTION_INFO_V1(mlpipe_anomaly_score_row_bytea);
PG_FUNCTION_INFO_V1(mlpipe_is_anomaly_ref);
PG_FUNCTION_INFO_V1(mlpipe_is_anomaly_bytea);
PG_FUNCTION_INFO_V1(mlpipe_is_anomaly_row_ref);
PG_FUNCTION_INFO_V1(mlpipe_is_anomaly_row_bytea);

/* 42809 unless a k-means model, 55000 unless trained with params.contamination. */
static void
require_anomaly_model(const MlModel *m, const char *fn)
{
	if (m->kind != ML_KIND_KMEANS)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("%s needs a k-means model; this one is a %s model", fn, ml_kind_name(m->kind))));
	if (!m->anomaly.present)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("%s needs a k-means model trained with params.contamination; this one has no anomaly threshold", fn),
						errhint("Train a new version with params.contamination, e.g. '{\"k\": 3, \"contamination\": 0.01}'.")));
}

/* The score of one row: float8[] argument 1 (row false) or a record (row true). */
static double
site_score(PredictSite *site, FunctionCallInfo fcinfo, bool row, const char *fn)
{
	const MlModel *m = site->model;
	const double *x;
	MlError		err = {0};
	double		out;

	require_anomaly_model(m, fn);
	x = row ? predict_row_features(site, fcinfo, PG_GETARG_HEAPTUPLEHEADER(1))
		: predict_array_features(m, PG_GETARG_ARRAYTYPE_P(1));
	if (ml_model_anomaly_score(m, x, site->scratch, &out, &err) != ML_OK)
		pg_report_ml_error(&err);
	return out;
}

/* Whether the row's score is above the threshold stored at training. */
static bool
site_is_anomaly(PredictSite *site, FunctionCallInfo fcinfo, bool row)
{
	return site_score(site, fcinfo, row, "is_anomaly") > site->model->anomaly.threshold;
}

/* mlpipe.anomaly_score(ref, float8[]). */
Datum
mlpipe_anomaly_score_ref(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(site_score(predict_site_ref(fcinfo, PG_GETARG_TEXT_PP(0)), fcinfo, false, "anomaly_score"));
}

/* mlpipe.anomaly_score(bytea, float8[]). */
Datum
mlpipe_anomaly_score_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(site_score(predict_site_blob(fcinfo, PG_GETARG_BYTEA_PP(0)), fcinfo, false, "anomaly_score"));
}

/* mlpipe.anomaly_score(ref, row). */
Datum
mlpipe_anomaly_score_row_ref(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(site_score(predict_site_ref(fcinfo, PG_GETARG_TEXT_PP(0)), fcinfo, true, "anomaly_score"));
}

/* mlpipe.anomaly_score(bytea, row). */
Datum
mlpipe_anomaly_score_row_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(site_score(predict_site_blob(fcinfo, PG_GETARG_BYTEA_PP(0)), fcinfo, true, "anomaly_score"));
}

/* mlpipe.is_anomaly(ref, float8[]). */
Datum
mlpipe_is_anomaly_ref(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(site_is_anomaly(predict_site_ref(fcinfo, PG_GETARG_TEXT_PP(0)), fcinfo, false));
}

/* mlpipe.is_anomaly(bytea, float8[]). */
Datum
mlpipe_is_anomaly_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(site_is_anomaly(predict_site_blob(fcinfo, PG_GETARG_BYTEA_PP(0)), fcinfo, false));
}

/* mlpipe.is_anomaly(ref, row). */
Datum
mlpipe_is_anomaly_row_ref(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(site_is_anomaly(predict_site_ref(fcinfo, PG_GETARG_TEXT_PP(0)), fcinfo, true));
}

/* mlpipe.is_anomaly(bytea, row). */
Datum
mlpipe_is_anomaly_row_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(site_is_anomaly(predict_site_blob(fcinfo, PG_GETARG_BYTEA_PP(0)), fcinfo, true));
}
