/*
 * kmeans_select.c: choosing k. kmeans_fit_select fits one model per
 * candidate k on the same rows (the matrix is read once, by the caller)
 * and keeps the one the criterion prefers: the largest silhouette, the
 * smallest Davies-Bouldin index, or the elbow of the inertia curve.
 */
#include "kmeans_int.h"

/* A criterion's name, for messages and the registry. */
const char *
kmeans_criterion_name(KmCriterion c)
{
	return c == KM_CRIT_DAVIES_BOULDIN ? "davies_bouldin" : c == KM_CRIT_ELBOW ? "elbow" : "silhouette";
}

/*
 * The elbow of the inertia curve (the "kneedle" rule): with k and inertia
 * both scaled to [0, 1] over the candidates, the candidate farthest below
 * the chord from the first to the last; the smallest k on ties. ks ascend.
 */
static int
km_elbow(const int *ks, const KmResult *each, int m)
{
	double		k0 = ks[0],
				kr = ks[m - 1] - ks[0],
				i1 = each[m - 1].inertia,
				ir = each[0].inertia - each[m - 1].inertia,
				best = -INFINITY;
	int			i,
				at = 0;

	if (!(ir > 0.0))
		return 0;
	for (i = 0; i < m; i++)
	{
		double		x = (ks[i] - k0) / kr,
					y = (each[i].inertia - i1) / ir,
					below = (1.0 - x) - y;

		if (below > best)
		{
			best = below;
			at = i;
		}
	}
	return at;
}

/* The index of the candidate the criterion prefers; -1 when no candidate has the figure. */
static int
km_pick(KmCriterion crit, const int *ks, const KmResult *each, int m)
{
	int			i,
				at = -1;

	if (crit == KM_CRIT_ELBOW)
		return km_elbow(ks, each, m);
	for (i = 0; i < m; i++)
	{
		double		v = crit == KM_CRIT_SILHOUETTE ? each[i].silhouette : each[i].davies_bouldin;
		double		b = at < 0 ? NAN : crit == KM_CRIT_SILHOUETTE ? each[at].silhouette : each[at].davies_bouldin;

		if (isnan(v))
			continue;
		if (at < 0 || (crit == KM_CRIT_SILHOUETTE ? v > b : v < b))
			at = i;
	}
	return at;
}

/* Checks the candidates: 1..n each, strictly ascending, at most KM_MAX_CANDIDATES. */
static MlStatus
km_check_candidates(const int *ks, int m, int64_t n, KmCriterion crit, MlError *err)
{
	int			i;

	if (m < 2 || m > KM_MAX_CANDIDATES)
		return ml_fail(err, ML_ERR_PARAM, "choosing k needs 2 to %d candidates, not %d",
					   KM_MAX_CANDIDATES, m);
	if (crit == KM_CRIT_ELBOW && m < 3)
		return ml_fail(err, ML_ERR_PARAM, "the elbow criterion needs at least 3 candidates for k");
	for (i = 0; i < m; i++)
	{
		if (ks[i] < 1 || (i > 0 && ks[i] <= ks[i - 1]))
			return ml_fail(err, ML_ERR_PARAM, "candidates for k must be positive and ascending");
		if (ks[i] > n)
			return ml_fail(err, ML_ERR_DATA, "k = %d exceeds the %lld rows", ks[i], (long long) n);
	}
	return ML_OK;
}

/*
 * Fits every candidate (kmeans.h). The models of the candidates not chosen
 * are freed as soon as they lose; for the elbow every model waits for the
 * last one.
 */
MlStatus
kmeans_fit_select(const MlEnv *env, const double *X, int64_t n, int d, const KmParams *p,
				  const int *ks, int m, KmCriterion crit, KmModel *out, KmResult *each,
				  int *chosen, MlError *err)
{
	KmModel    *models;
	MlTrace    *traces;
	KmParams	q = *p;
	int			i,
				at;
	MlStatus	st;

	memset(out, 0, sizeof(*out));
	*chosen = -1;
	st = km_check_candidates(ks, m, n, crit, err);
	if (st != ML_OK)
		return st;
	models = ml_calloc(env, (size_t) m, sizeof(KmModel));
	traces = ml_calloc(env, (size_t) m, sizeof(MlTrace));
	if (!models || !traces)
	{
		ml_free(env, models);
		ml_free(env, traces);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory choosing k");
	}
	for (i = 0; i < m && st == ML_OK; i++)
	{
		q.k = ks[i];
		q.trace = p->trace ? &traces[i] : NULL;
		st = kmeans_fit(env, X, n, d, &q, &models[i], &each[i], err);
	}
	at = st == ML_OK ? km_pick(crit, ks, each, m) : -1;
	if (st == ML_OK && at < 0)
		st = ml_fail(err, ML_ERR_DATA, "no candidate k has a defined %s", kmeans_criterion_name(crit));
	for (i = 0; i < m; i++)
	{
		if (i == at && st == ML_OK)
			continue;
		kmeans_model_free(env, &models[i]);
		ml_trace_free(env, &traces[i]);
	}
	if (st == ML_OK)
	{
		*out = models[at];
		*chosen = at;
		if (p->trace)
		{
			ml_trace_free(env, p->trace);
			*p->trace = traces[at];
		}
	}
	ml_free(env, models);
	ml_free(env, traces);
	return st;
}
