/* model.c: decoding artifacts of every kind and per-row scoring. */
#include "model.h"

#include <float.h>
#include <math.h>
#include <string.h>

MlStatus
ml_model_read(const MlEnv *env, const uint8_t *data, size_t len, MlModel *m, MlError *err)
{
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	bool		have_meta = false,
				have_model = false;
	MlStatus	st;

	memset(m, 0, sizeof(*m));
	st = artifact_open(data, len, env, &a, err);
	if (st != ML_OK)
		return st;
	m->kind = a.kind;
	m->format = a.format;
	m->crc = a.crc;
	while (artifact_next_section(&a, &tag, &sec, err))
	{
		switch (tag)
		{
			case ML_SEC_META:
				if (!artifact_read_meta(&sec, &m->meta))
					return err->code;
				have_meta = true;
				break;
			case ML_SEC_MODEL:
				if (!have_meta)
					return ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: model before meta");
				if (m->kind == ML_KIND_KMEANS)
				{
					if (!kmeans_read(&sec, &m->km))
						return err->code ? err->code : ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: k-means model");
				}
				else
				{
					if (!trees_read(&sec, env, &m->tm))
						return err->code ? err->code : ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: tree model");
					if (trees_kind(&m->tm) != m->kind)
						return ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: header kind %s but a %s model",
									   ml_kind_name(m->kind), ml_kind_name(trees_kind(&m->tm)));
				}
				have_model = true;
				break;
			case ML_SEC_PREPROCESS:
				if (!have_model)
					return ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: preprocessing before the model");
				if (!prep_read(&sec, &m->prep))
					return err->code ? err->code : ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: preprocessing");
				if (m->prep.n_out != m->meta.n_features)
					return ml_fail(err, ML_ERR_CORRUPT,
								   "artifact corrupt: preprocessing makes %u features but meta lists %u",
								   m->prep.n_out, m->meta.n_features);
				break;
			case ML_SEC_DECISION:
				if (!have_model)
					return ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: decision before the model");
				if (!decision_read(&sec, &m->dec))
					return err->code ? err->code : ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: decision section");
				if (m->meta.task != ML_TASK_CLASSIFY || m->meta.n_classes != 2)
					return ml_fail(err, ML_ERR_CORRUPT,
								   "artifact corrupt: a decision section on a model that is not a binary classifier");
				break;
			case ML_SEC_ANOMALY:
				if (!have_model || m->kind != ML_KIND_KMEANS)
					return ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: anomaly section without a k-means model");
				if (!kmeans_anomaly_read(&sec, m->km.k, &m->anomaly))
					return err->code ? err->code : ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: anomaly section");
				break;
			default:
				return ml_fail(err, ML_ERR_CORRUPT, "artifact has unsupported section %d", (int) tag);
		}
	}
	if (err->code != ML_OK)
		return err->code;
	if (!have_meta || !have_model)
		return ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: missing %s section",
					   have_meta ? "model" : "meta");
	if (m->kind == ML_KIND_KMEANS)
	{
		if ((uint32_t) m->km.d != m->meta.n_features || m->meta.task != ML_TASK_CLUSTER)
			return ml_fail(err, ML_ERR_CORRUPT,
						   "artifact corrupt: k-means model has %d dimensions but %u feature names",
						   m->km.d, m->meta.n_features);
		m->scratch_len = (size_t) m->km.d;
	}
	else
	{
		const TreeModel *t = &m->tm;

		if (t->n_features != m->meta.n_features || t->task != m->meta.task ||
			(t->task == ML_TASK_CLASSIFY && t->n_classes != m->meta.n_classes))
			return ml_fail(err, ML_ERR_CORRUPT,
						   "artifact corrupt: tree model has %u features and %u classes but meta says %u and %u",
						   t->n_features, t->n_classes, m->meta.n_features, m->meta.n_classes);
		/* outputs, then a copy of the row for clamping +Inf */
		m->scratch_len = (size_t) t->n_outputs + t->n_features;
	}
	return ML_OK;
}

bool
ml_model_handles_missing(const MlModel *m)
{
	return m->kind != ML_KIND_KMEANS;
}

MlStatus
ml_model_predict(const MlModel *m, const double *x, double *scratch, double *out,
				 double *proba, MlError *err)
{
	uint32_t	j;

	switch (m->kind)
	{
		case ML_KIND_DECISION_TREE:
		case ML_KIND_RANDOM_FOREST:
		case ML_KIND_GBT:
			/*
			 * +Inf fell in the last bin in training, which every split sends
			 * left of a DBL_MAX threshold; clamp it so scoring agrees.
			 */
			for (j = 0; j < m->meta.n_features; j++)
				if (x[j] == INFINITY)
					break;
			if (j < m->meta.n_features)
			{
				double	   *row = scratch + m->tm.n_outputs;

				for (j = 0; j < m->meta.n_features; j++)
					row[j] = x[j] == INFINITY ? DBL_MAX : x[j];
				x = row;
			}
			if (m->tm.task == ML_TASK_CLASSIFY)
			{
				double	   *p = proba ? proba : scratch;

				*out = trees_predict_class(&m->tm, x, p);
				/* a binary model's threshold and calibration */
				if (m->dec.present)
					*out = decision_apply(&m->dec, p[1], p);
			}
			else
			{
				trees_predict_row(&m->tm, x, scratch);
				*out = scratch[0];
			}
			return ML_OK;
		case ML_KIND_KMEANS:
			for (j = 0; j < m->meta.n_features; j++)
				if (!isfinite(x[j]))
					return ml_fail(err, ML_ERR_DATA,
								   "feature %u (\"%s\") is %s; k-means needs finite values",
								   j + 1, m->meta.feature_names[j], isnan(x[j]) ? "NaN" : "infinite");
			{
				int			c = kmeans_predict(&m->km, x, scratch);

				(void) proba;
				if (c < 0)
					return ml_fail(err, ML_ERR_DATA,
								   "a zero vector has no cosine distance to any centroid");
				*out = c;
			}
			return ML_OK;
		default:
			return ml_fail(err, ML_ERR_INTERNAL, "cannot score a %s model", ml_kind_name(m->kind));
	}
}

/* A k-means row's anomaly score (model.h). */
MlStatus
ml_model_anomaly_score(const MlModel *m, const double *x, double *scratch, double *out,
					   MlError *err)
{
	uint32_t	j;

	if (m->kind != ML_KIND_KMEANS || !m->anomaly.present)
		return ml_fail(err, ML_ERR_PARAM, "the model has no anomaly threshold");
	for (j = 0; j < m->meta.n_features; j++)
		if (!isfinite(x[j]))
			return ml_fail(err, ML_ERR_DATA,
						   "feature %u (\"%s\") is %s; k-means needs finite values",
						   j + 1, m->meta.feature_names[j], isnan(x[j]) ? "NaN" : "infinite");
	*out = kmeans_anomaly_score(&m->km, &m->anomaly, x, scratch);
	if (isnan(*out))
		return ml_fail(err, ML_ERR_DATA, "a zero vector has no cosine distance to any centroid");
	return ML_OK;
}

/* The PREPROCESS section, when there is one. */
static void
write_prep(MlBuf *b, const MlPrep *prep)
{
	if (prep && prep->n_in > 0)
	{
		size_t		at = artifact_section_begin(b, ML_SEC_PREPROCESS);

		prep_write(b, prep);
		artifact_section_end(b, at);
	}
}

/* The PREPROCESS and DECISION sections, when there are, and the artifact's end. */
static MlStatus
write_prep_and_finish(MlBuf *b, const MlPrep *prep, const MlDecision *dec, MlError *err)
{
	write_prep(b, prep);
	if (dec && dec->present)
	{
		size_t		at = artifact_section_begin(b, ML_SEC_DECISION);

		decision_write(b, dec);
		artifact_section_end(b, at);
	}
	return artifact_finish(b, err);
}

MlStatus
ml_model_write_kmeans(MlBuf *b, const MlEnv *env, const MlMeta *meta, const KmModel *km,
					  const MlPrep *prep, const KmAnomaly *anomaly, MlError *err)
{
	size_t		at;
	bool		has_anomaly = anomaly && anomaly->present;

	artifact_begin_format(b, env, ML_KIND_KMEANS,
						  has_anomaly ? 3 : prep && prep->n_in > 0 ? 2 : 1);
	artifact_write_meta(b, meta);
	at = artifact_section_begin(b, ML_SEC_MODEL);
	kmeans_write(b, km);
	artifact_section_end(b, at);
	write_prep(b, prep);
	if (has_anomaly)
	{
		at = artifact_section_begin(b, ML_SEC_ANOMALY);
		kmeans_anomaly_write(b, anomaly, km->k);
		artifact_section_end(b, at);
	}
	return artifact_finish(b, err);
}

MlStatus
ml_model_write_trees(MlBuf *b, const MlEnv *env, const MlMeta *meta, const TreeModel *tm,
					 const MlPrep *prep, const MlDecision *dec, MlError *err)
{
	size_t		at;

	artifact_begin_format(b, env, trees_kind(tm),
						  dec && dec->present ? 3 : prep && prep->n_in > 0 ? 2 : 1);
	artifact_write_meta(b, meta);
	at = artifact_section_begin(b, ML_SEC_MODEL);
	trees_write(b, tm);
	artifact_section_end(b, at);
	return write_prep_and_finish(b, prep, dec, err);
}
