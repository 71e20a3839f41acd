/*
 * kmeans_codec.c: the k-means MODEL section (layout in kmeans.h):
 * kmeans_write and its validating reader kmeans_read.
 */
#include "kmeans_int.h"

/* Appends the model section payload of m to b. */
void
kmeans_write(MlBuf *b, const KmModel *m)
{
	size_t		kd = (size_t) m->k * m->d;

	ml_buf_put_u32(b, (uint32_t) m->k);
	ml_buf_put_u32(b, (uint32_t) m->d);
	ml_buf_put_u8(b, (uint8_t) m->distance);
	ml_buf_put_u8(b, m->standardize ? 1 : 0);
	if (m->standardize)
	{
		ml_buf_put_f64s(b, m->mean, m->d);
		ml_buf_put_f64s(b, m->scale, m->d);
	}
	ml_buf_put_f64s(b, m->centroids, kd);
	ml_buf_put_f64s(b, m->counts, m->k);
}

/* Reads and checks the payload into m; false (r->err set) on anything malformed. */
static bool
km_read_inner(MlReader *r, KmModel *m)
{
	uint32_t	k,
				d;
	uint8_t		dist,
				stdz;
	size_t		kd,
				need;
	int			j;

	/* each centroid takes at least 8 bytes per feature plus its count */
	if (!ml_rd_count(r, 1, KM_MAX_K, 16, &k, "k-means cluster count"))
		return false;
	if (!ml_rd_count(r, 1, ML_MAX_FEATURES, 8, &d, "k-means feature count"))
		return false;
	if (!ml_rd_u8(r, &dist, "k-means distance") || !ml_rd_u8(r, &stdz, "k-means standardize"))
		return false;
	if (dist != KM_DIST_L2 && dist != KM_DIST_COSINE)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: unknown k-means distance %u", dist);
		return false;
	}
	if (stdz > 1)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: k-means standardize flag is %u", stdz);
		return false;
	}
	/* k * (d + 1) + (standardize ? 2d : 0) doubles must be present */
	if (!ml_mul_size(k, (size_t) d + 1, &kd) ||
		!ml_add_size(kd, stdz ? 2 * (size_t) d : 0, &need) ||
		!ml_mul_size(need, 8, &need) || need > ml_rd_left(r))
	{
		ml_fail(r->err, ML_ERR_CORRUPT,
				"artifact corrupt: %u k-means centroids of %u features need more than the %zu bytes left",
				k, d, ml_rd_left(r));
		return false;
	}
	m->k = (int) k;
	m->d = (int) d;
	m->distance = (KmDistance) dist;
	m->standardize = stdz == 1;
	if (m->standardize)
	{
		if (!ml_rd_f64s(r, d, &m->mean, "k-means mean") ||
			!ml_rd_f64s(r, d, &m->scale, "k-means scale"))
			return false;
		for (j = 0; j < (int) d; j++)
			if (!(m->scale[j] > 0.0))
			{
				ml_fail(r->err, ML_ERR_CORRUPT,
						"artifact corrupt: k-means scale of feature %d is not positive", j + 1);
				return false;
			}
	}
	if (!ml_rd_f64s(r, (size_t) k * d, &m->centroids, "k-means centroids") ||
		!ml_rd_f64s(r, k, &m->counts, "k-means counts"))
		return false;
	for (j = 0; j < (int) k; j++)
		if (m->counts[j] < 0.0)
		{
			ml_fail(r->err, ML_ERR_CORRUPT,
					"artifact corrupt: k-means count of cluster %d is negative", j + 1);
			return false;
		}
	if (m->distance == KM_DIST_COSINE)
		for (j = 0; j < (int) k; j++)
		{
			double		s = 0.0;
			int			e;

			for (e = 0; e < (int) d; e++)
				s += m->centroids[(size_t) j * d + e] * m->centroids[(size_t) j * d + e];
			if (!(fabs(s - 1.0) < 1e-6))
			{
				ml_fail(r->err, ML_ERR_CORRUPT,
						"artifact corrupt: cosine k-means centroid %d is not a unit vector", j + 1);
				return false;
			}
		}
	return ml_rd_end(r, "k-means model section");
}

/* km_read_inner, leaving *m zeroed and owning nothing on failure. */
bool
kmeans_read(MlReader *r, KmModel *m)
{
	memset(m, 0, sizeof(*m));
	if (km_read_inner(r, m))
		return true;
	kmeans_model_free(r->env, m);
	memset(m, 0, sizeof(*m));
	return false;
}

