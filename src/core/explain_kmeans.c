/*
 * explain_kmeans.c: why a row lands in its k-means cluster: the squared
 * distance to the assigned centroid and each feature's part of it, in the
 * space the model clusters in (standardised and/or unit-normalised).
 */
#include "explain.h"

#include <string.h>

/*
 * The working-space row, computed as kmeans.c's km_transform_row does (same
 * operations in the same order, so the same bits): (x - mean) / scale, then
 * division by the L2 norm for cosine. false for a zero row under cosine.
 */
static bool
working_row(const KmModel *m, const double *x, double *out)
{
	int			j,
				d = m->d;

	if (m->standardize)
		for (j = 0; j < d; j++)
			out[j] = (x[j] - m->mean[j]) / m->scale[j];
	else
		memcpy(out, x, sizeof(double) * d);
	if (m->distance == KM_DIST_COSINE)
	{
		double		s = 0.0,
					norm;

		for (j = 0; j < d; j++)
			s += out[j] * out[j];
		norm = sqrt(s);
		if (!(norm > 0.0) || !isfinite(norm))
			return false;
		for (j = 0; j < d; j++)
			out[j] = out[j] / norm;
	}
	return true;
}

int
kmeans_explain_row(const KmModel *m, const double *x, double *dist2, double *term,
				   double *share, double *scratch)
{
	int			c = kmeans_predict(m, x, scratch),
				j;
	const double *cen;
	double		total = 0;

	if (c < 0)
		return -1;
	if (!working_row(m, x, scratch))
		return -1;
	cen = m->centroids + (size_t) c * m->d;
	for (j = 0; j < m->d; j++)
	{
		double		diff = scratch[j] - cen[j];

		term[j] = diff * diff;
		total += term[j];
	}
	*dist2 = total;
	if (share)
		for (j = 0; j < m->d; j++)
			share[j] = total > 0 ? term[j] / total : 0.0;
	return c;
}
