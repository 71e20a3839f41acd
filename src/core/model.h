/*
 * model.h: a decoded artifact of any kind, and scoring one row with it.
 * The glue decodes once (per statement or from the backend cache) and then
 * calls ml_model_predict per row.
 */
#ifndef MODEL_H
#define MODEL_H

#include "artifact.h"
#include "decision.h"
#include "kmeans.h"
#include "preprocess.h"
#include "trees.h"

typedef struct MlModel
{
	MlKind		kind;
	uint16_t	format;
	uint32_t	crc;
	MlMeta		meta;
	KmModel		km;				/* kind == ML_KIND_KMEANS */
	TreeModel	tm;				/* tree kinds */
	MlPrep		prep;			/* n_in == 0: no preprocessing (format 1) */
	MlDecision	dec;			/* !present: argmax, uncalibrated (formats 1, 2) */
	KmAnomaly	anomaly;		/* k-means: present when trained with contamination */
	size_t		scratch_len;	/* doubles of scratch predict needs */
} MlModel;

/* Decodes and validates an artifact; ML_ERR_CORRUPT on any inconsistency. */
MlStatus	ml_model_read(const MlEnv *env, const uint8_t *data, size_t len,
						  MlModel *m, MlError *err);

/* True when the model routes NaN features itself (trees). */
bool		ml_model_handles_missing(const MlModel *m);

/*
 * Scores one row of meta.n_features values (validated by the caller for
 * count). Writes the prediction (cluster, class index or value) to *out,
 * and, for classifiers, the class probabilities to proba (n_classes values;
 * may be NULL). scratch holds scratch_len doubles. ML_ERR_DATA when a value
 * the model cannot use (NaN for k-means) is given.
 */
MlStatus	ml_model_predict(const MlModel *m, const double *x, double *scratch,
							 double *out, double *proba, MlError *err);

/*
 * The anomaly score of one row of a k-means model with an ANOMALY section
 * (kmeans.h): ML_ERR_DATA for a non-finite value or a row that cannot be
 * placed; ML_ERR_PARAM when the model has no anomaly section.
 */
MlStatus	ml_model_anomaly_score(const MlModel *m, const double *x, double *scratch,
								   double *out, MlError *err);

/*
 * Writes a complete k-means artifact (meta + model, + preprocessing when
 * prep is not NULL and has columns: then the format is 2, + the anomaly
 * section when anomaly is not NULL and present: then the format is 3) into b.
 */
MlStatus	ml_model_write_kmeans(MlBuf *b, const MlEnv *env, const MlMeta *meta,
								  const KmModel *km, const MlPrep *prep,
								  const KmAnomaly *anomaly, MlError *err);

/*
 * Writes a complete tree-model artifact, the same way; with dec (binary
 * classifiers only, may be NULL) present, a DECISION section and format 3.
 */
MlStatus	ml_model_write_trees(MlBuf *b, const MlEnv *env, const MlMeta *meta,
								 const TreeModel *tm, const MlPrep *prep,
								 const MlDecision *dec, MlError *err);

#endif
