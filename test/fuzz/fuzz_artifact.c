/*
 * fuzz_artifact.c: libFuzzer target for the model artifact reader.
 *
 * Each input goes through the readers twice: as given (exercising the header
 * checks), and with its payload length and CRC32C patched to match (so that
 * mutations reach the section and model readers instead of dying at the
 * checksum). Each pass walks every section by hand (META to
 * artifact_read_meta, MODEL to the reader of the artifact's kind), then
 * decodes the input as the scoring path does (ml_model_read) and scores a
 * row of zeros with every model a reader accepted. All allocations go
 * through a tracking MlEnv and are freed after each input, as the PostgreSQL
 * glue does with its memory context, so leaks on error paths are not
 * reported but use-after-free and overreads are.
 *
 * The tree readers are weak symbols: the target links without trees.c and
 * uses them once it lands in src/core.
 */
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "kmeans.h"
#include "model.h"
#include "trees.h"

#pragma weak trees_read
#pragma weak trees_predict_row

/* Allocation failures beyond this many bytes per input, like a memory budget. */
#define FUZZ_ALLOC_BUDGET ((size_t) 256 << 20)

typedef union FuzzBlock
{
	struct
	{
		union FuzzBlock *prev;
		union FuzzBlock *next;
		size_t		size;
	}			h;
	long double align;			/* keeps the payload malloc-aligned */
} FuzzBlock;

typedef struct FuzzPool
{
	FuzzBlock	head;			/* circular list of live blocks */
	size_t		used;
} FuzzPool;

static void *
fuzz_alloc(void *ctx, size_t size)
{
	FuzzPool   *pool = ctx;
	FuzzBlock  *b;

	if (size > FUZZ_ALLOC_BUDGET - pool->used)
		return NULL;
	b = malloc(sizeof(FuzzBlock) + size);
	if (b == NULL)
		return NULL;
	b->h.size = size;
	b->h.prev = &pool->head;
	b->h.next = pool->head.h.next;
	pool->head.h.next->h.prev = b;
	pool->head.h.next = b;
	pool->used += size;
	return b + 1;
}

static void
fuzz_free(void *ctx, void *ptr)
{
	FuzzPool   *pool = ctx;
	FuzzBlock  *b = (FuzzBlock *) ptr - 1;

	b->h.prev->h.next = b->h.next;
	b->h.next->h.prev = b->h.prev;
	pool->used -= b->h.size;
	free(b);
}

static void
fuzz_free_all(FuzzPool *pool)
{
	while (pool->head.h.next != &pool->head)
		fuzz_free(pool, pool->head.h.next + 1);
}

static int
fuzz_check(void *ctx, const char *stage, int iter, int max_iter, double value)
{
	return 0;
}

/* Reads one MODEL section with the reader for kind and scores zeros. */
static void
read_model(const MlEnv *env, MlKind kind, MlReader *sec)
{
	KmModel		km;
	TreeModel	tm;
	double	   *x;
	double	   *out;

	memset(&km, 0, sizeof(km));
	memset(&tm, 0, sizeof(tm));
	if (kind == ML_KIND_KMEANS)
	{
		if (!kmeans_read(sec, &km))
			return;
		x = ml_calloc(env, (size_t) km.d, sizeof(double));
		out = ml_calloc(env, (size_t) km.d, sizeof(double));	/* scratch */
		if (x && out)
		{
			int			c = kmeans_predict(&km, x, out);

			/* in range, or -1 for a row cosine cannot place */
			if (c < -1 || c >= km.k)
				abort();
		}
	}
	else if (trees_read && trees_predict_row)
	{
		if (!trees_read(sec, env, &tm))
			return;
		x = ml_calloc(env, tm.n_features, sizeof(double));
		out = ml_calloc(env, tm.n_outputs, sizeof(double));
		if (x && out)
			trees_predict_row(&tm, x, out);
	}
}

/* ml_model_read, as the scoring path decodes, then one row of zeros (and its anomaly score). */
static void
decode_model(const MlEnv *env, const uint8_t *data, size_t len)
{
	MlModel		m;
	MlError		err;
	double	   *x;
	double	   *scratch;
	double		out;

	memset(&err, 0, sizeof(err));
	if (ml_model_read(env, data, len, &m, &err) != ML_OK)
		return;
	x = ml_calloc(env, m.meta.n_features, sizeof(double));
	scratch = ml_calloc(env, m.scratch_len, sizeof(double));
	if (x && scratch)
		ml_model_predict(&m, x, scratch, &out, NULL, &err);
	if (x && scratch && m.anomaly.present)
		ml_model_anomaly_score(&m, x, scratch, &out, &err);
	if (m.prep.n_in > 0 && x)
	{
		/* raw inputs: zeros and NULL texts, then zeros and a text */
		double	   *raw = ml_calloc(env, m.prep.n_in, sizeof(double));
		const char **strs = ml_calloc(env, m.prep.n_in, sizeof(char *));
		uint32_t	i;

		if (raw && strs)
		{
			prep_transform_row(&m.prep, raw, strs, x, &err);
			for (i = 0; i < m.prep.n_in; i++)
				strs[i] = "red";
			prep_transform_row(&m.prep, raw, strs, x, &err);
		}
	}
}

/* artifact_open and a walk over every section, as the scoring path does. */
static void
read_artifact(const uint8_t *data, size_t len)
{
	FuzzPool	pool;
	MlEnv		env = {fuzz_alloc, fuzz_free, fuzz_check, NULL, 1};
	MlError		err;
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	MlMeta		meta;

	pool.head.h.prev = pool.head.h.next = &pool.head;
	pool.used = 0;
	env.ctx = &pool;
	memset(&err, 0, sizeof(err));
	if (artifact_open(data, len, &env, &a, &err) == ML_OK)
	{
		while (artifact_next_section(&a, &tag, &sec, &err))
		{
			if (tag == ML_SEC_META)
			{
				if (!artifact_read_meta(&sec, &meta))
					break;
			}
			else if (tag == ML_SEC_MODEL)
				read_model(&env, a.kind, &sec);
		}
	}
	if (err.code != ML_OK && memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
		abort();				/* message not terminated */
	decode_model(&env, data, len);
	fuzz_free_all(&pool);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t    *copy;

	read_artifact(data, size);
	if (size < ML_ARTIFACT_HEADER_SIZE || size > ML_ARTIFACT_MAX_SIZE)
		return 0;
	/* An exact-size copy, so that ASan catches any read past the end. */
	copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	put_le32(copy + 12, (uint32_t) (size - ML_ARTIFACT_HEADER_SIZE));
	put_le32(copy + 16, ml_crc32c(ml_crc32c(0, copy, 16), copy + ML_ARTIFACT_HEADER_SIZE,
								  size - ML_ARTIFACT_HEADER_SIZE));
	read_artifact(copy, size);
	free(copy);
	return 0;
}
