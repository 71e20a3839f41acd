/*
 * test_kmeans_codec.c: unit tests of the k-means model codec
 * (src/core/kmeans_codec.c): exact round trips of fitted models, every
 * truncation, byte flip and trailing byte rejected, raw MODEL flips never
 * crash, and hand-made hostile payloads. Prints TAP; exits non-zero on any
 * failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "kmeans.h"
#include "kmeans_fixtures.h"
#include "mltest.h"

/* Bare payload: exact round trip, every truncation and a trailing byte rejected. */
static void
codec_payload_checks(MlEnv *env, const KmModel *m, int variant)
{
	MlError		err = {0};
	MlBuf		b;
	MlReader	rd;
	KmModel		back;
	size_t		i,
				rejected = 0;
	bool		ok;

	ml_buf_init(&b, env);
	kmeans_write(&b, m);
	ml_rd_init(&rd, b.data, b.len, env, &err);
	ok = kmeans_read(&rd, &back);
	CHECK(ok && same_model(m, &back), "variant %d: write -> read round trip is exact", variant);
	if (ok)
		kmeans_model_free(env, &back);
	/* every truncation of the bare payload fails cleanly */
	for (i = 0; i < b.len; i++)
	{
		memset(&err, 0, sizeof(err));
		ml_rd_init(&rd, b.data, i, env, &err);
		if (!kmeans_read(&rd, &back) && err.code == ML_ERR_CORRUPT && back.centroids == NULL)
			rejected++;
		else if (back.centroids)
			kmeans_model_free(env, &back);
	}
	CHECK(rejected == b.len, "variant %d: all %zu payload truncations rejected", variant, b.len);
	/* a trailing byte too */
	ml_buf_put_u8(&b, 0);
	memset(&err, 0, sizeof(err));
	ml_rd_init(&rd, b.data, b.len, env, &err);
	CHECK(!kmeans_read(&rd, &back) && strstr(err.msg, "trailing"), "trailing byte rejected: %s",
		  err.msg);
	ml_free(env, b.data);
}

/* m wrapped in a k-means artifact into b; *model_at is where its MODEL section starts. */
static void
codec_artifact(MlEnv *env, const KmModel *m, MlBuf *b, size_t *model_at)
{
	MlMeta		meta;
	char	   *names[4] = {"a", "b", "c", "d"};
	MlError		err = {0};
	size_t		at;

	memset(&meta, 0, sizeof(meta));
	meta.task = ML_TASK_CLUSTER;
	meta.n_features = 4;
	meta.feature_names = names;
	artifact_begin(b, env, ML_KIND_KMEANS);
	artifact_write_meta(b, &meta);
	*model_at = b->len;
	at = artifact_section_begin(b, ML_SEC_MODEL);
	kmeans_write(b, m);
	artifact_section_end(b, at);
	CHECK(artifact_finish(b, &err) == ML_OK, "artifact written");
}

/* Whether the artifact in buf[0..len) opens and its META and MODEL sections read. */
static bool
codec_artifact_reads(MlEnv *env, const uint8_t *buf, size_t len)
{
	MlError		err = {0};
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	KmModel		back;
	MlMeta		mm;
	bool		accepted = false;

	memset(&mm, 0, sizeof(mm));
	if (artifact_open(buf, len, env, &a, &err) != ML_OK)
		return false;
	if (artifact_next_section(&a, &tag, &sec, &err) && tag == ML_SEC_META &&
		artifact_read_meta(&sec, &mm) &&
		artifact_next_section(&a, &tag, &sec, &err) && tag == ML_SEC_MODEL &&
		kmeans_read(&sec, &back))
	{
		accepted = true;
		kmeans_model_free(env, &back);
	}
	if (mm.feature_names)
	{
		uint32_t	f;

		for (f = 0; f < mm.n_features; f++)
			ml_free(env, mm.feature_names[f]);
		ml_free(env, mm.feature_names);
		ml_free(env, mm.class_labels);
	}
	return accepted;
}

/* In an artifact: the intact one reads back, every byte flip and truncation is rejected. */
static void
codec_artifact_flips(MlEnv *env, const MlBuf *b, uint8_t *copy, int variant)
{
	size_t		i,
				rejected = 0,
				total = 0;

	for (i = 0; i <= b->len; i++)
	{
		int			flip;

		for (flip = 0; flip < (i < b->len ? 2 : 1); flip++)
		{
			size_t		len = b->len;
			bool		accepted;

			memcpy(copy, b->data, b->len);
			if (i == b->len)
				len = b->len;	/* the intact artifact, as a control */
			else if (flip == 0)
				copy[i] ^= (uint8_t) (1u << (i % 8));
			else
				len = i;		/* truncated to i bytes */
			accepted = codec_artifact_reads(env, copy, len);
			if (i == b->len)
				CHECK(accepted, "variant %d: the intact artifact reads back", variant);
			else
			{
				total++;
				rejected += !accepted;
			}
		}
	}
	CHECK(rejected == total, "variant %d: %zu/%zu byte flips and truncations rejected",
		  variant, rejected, total);
}

/*
 * Flips inside the MODEL section with the CRC recomputed: kmeans_read
 * itself must never crash, and whatever it accepts must be sane.
 */
static void
codec_model_flips(MlEnv *env, const KmModel *m, const MlBuf *b, size_t model_at,
				  uint8_t *copy, int variant)
{
	MlError		err = {0};
	MlReader	rd;
	KmModel		back;
	size_t		payload0 = model_at + 6,
				i,
				rejected = 0,
				total = 0;
	bool		sane = true;

	for (i = payload0; i < b->len; i++)
	{
		int			bit;

		for (bit = 0; bit < 8; bit += 3)
		{
			memcpy(copy, b->data, b->len);
			copy[i] ^= (uint8_t) (1u << bit);
			memset(&err, 0, sizeof(err));
			ml_rd_init(&rd, copy + payload0, b->len - payload0, env, &err);
			total++;
			if (kmeans_read(&rd, &back))
			{
				int			c,
							j;

				for (c = 0; c < back.k; c++)
					for (j = 0; j < back.d; j++)
						sane &= isfinite(back.centroids[c * back.d + j]);
				sane &= back.k == m->k && back.d == m->d;
				kmeans_model_free(env, &back);
			}
			else
				rejected++;
		}
	}
	CHECK(sane, "variant %d: %zu of %zu raw MODEL flips rejected, the rest sane",
		  variant, rejected, total);
}

/* The codec on fitted models: plain, standardized, cosine. */
static void
test_codec(void)
{
	int64_t		n = 500;
	double	   *X = blobs(n, 4, 3, 1.0, 8, NULL);
	MlEnv		env = mlt_env(1);
	KmParams	p;
	KmModel		m;
	KmResult	r;
	MlError		err = {0};
	int			variant;

	for (variant = 0; variant < 3; variant++)
	{
		MlBuf		b;
		size_t		model_at = 0;
		uint8_t    *copy;

		p = params(3);
		p.standardize = variant >= 1;
		p.distance = variant == 2 ? KM_DIST_COSINE : KM_DIST_L2;
		if (kmeans_fit(&env, X, n, 4, &p, &m, &r, &err) != ML_OK)
		{
			CHECK(0, "codec fit: %s", err.msg);
			continue;
		}
		codec_payload_checks(&env, &m, variant);
		codec_artifact(&env, &m, &b, &model_at);
		copy = malloc(b.len);
		codec_artifact_flips(&env, &b, copy, variant);
		codec_model_flips(&env, &m, &b, model_at, copy, variant);
		free(copy);
		ml_free(&env, b.data);
		kmeans_model_free(&env, &m);
	}
	free(X);
}

/* Reads the payload in b (then frees it): false, with err, when rejected. */
static bool
codec_read_payload(MlEnv *env, MlBuf *b, MlError *err)
{
	MlReader	r2;
	KmModel		back;
	bool		ok;

	memset(err, 0, sizeof(*err));
	ml_rd_init(&r2, b->data, b->len, env, err);
	ok = kmeans_read(&r2, &back);
	if (ok)
		kmeans_model_free(env, &back);
	ml_free(env, b->data);
	return ok;
}

/* Hand-made hostile payloads. */
static void
test_codec_hostile(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	MlBuf		b;
	MlReader	r2;
	KmModel		back;
	uint8_t		bad[64];
	bool		ok;

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 0xFFFFFFFF);	/* k */
	ml_buf_put_u32(&b, 3);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && err.code == ML_ERR_CORRUPT, "huge k rejected: %s", err.msg);

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u8(&b, 9);		/* distance */
	ml_buf_put_u8(&b, 0);
	ml_buf_put_f64(&b, 1.0);
	ml_buf_put_f64(&b, 1.0);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && strstr(err.msg, "distance"), "unknown distance: %s", err.msg);

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u8(&b, 0);
	ml_buf_put_u8(&b, 1);		/* standardize */
	ml_buf_put_f64(&b, 0.0);	/* mean */
	ml_buf_put_f64(&b, 0.0);	/* scale 0 */
	ml_buf_put_f64(&b, 1.0);
	ml_buf_put_f64(&b, 1.0);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && strstr(err.msg, "scale"), "scale 0 rejected: %s", err.msg);

	ml_buf_init(&b, &env);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u32(&b, 1);
	ml_buf_put_u8(&b, 0);
	ml_buf_put_u8(&b, 0);
	ml_buf_put_f64(&b, NAN);
	ml_buf_put_f64(&b, 1.0);
	ok = codec_read_payload(&env, &b, &err);
	CHECK(!ok && strstr(err.msg, "finite"), "NaN centroid rejected: %s", err.msg);

	memset(bad, 0xFF, sizeof(bad));
	memset(&err, 0, sizeof(err));
	ml_rd_init(&r2, bad, sizeof(bad), &env, &err);
	CHECK(!kmeans_read(&r2, &back), "0xFF bytes rejected: %s", err.msg);
}

int
main(void)
{
	test_codec();
	test_codec_hostile();
	return mlt_done();
}
