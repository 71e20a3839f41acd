/*
 * model.h: a decoded artifact of any kind, and scoring one row with it.
 * The glue decodes once (per statement or from the backend cache) and then
 * calls ml_model_predict per row.
 */
#ifndef MODEL_H
#define MODEL_H

#include "artifact.h"
#include "kmeans.h"

typedef struct MlModel
{
	MlKind		kind;
	uint16_t	format;
	uint32_t	crc;
	MlMeta		meta;
	KmModel		km;				/* kind == ML_KIND_KMEANS */
	size_t		scratch_len;	/* doubles of scratch predict needs */
} MlModel;

/* Decodes and validates an artifact; ML_ERR_CORRUPT on any inconsistency. */
MlStatus	ml_model_read(const MlEnv *env, const uint8_t *data, size_t len,
						  MlModel *m, MlError *err);

/*
 * Scores one row of meta.n_features values (validated by the caller for
 * count). Writes the prediction (cluster, class index or value) to *out.
 * ML_ERR_DATA when a value the model cannot use (NaN for k-means) is given.
 */
MlStatus	ml_model_predict(const MlModel *m, const double *x, double *scratch,
							 double *out, MlError *err);

/* Writes a complete k-means artifact (meta + model) into b. */
MlStatus	ml_model_write_kmeans(MlBuf *b, const MlEnv *env, const MlMeta *meta,
								  const KmModel *km, MlError *err);

#endif
