/*
 * row_order.c: the glue for training that depends only on the rows
 * (src/core/roworder.h): content hashes and comparisons of decoded source
 * rows, where a categorical value counts by its text (its code is only the
 * order the text first arrived in), the canonical order within
 * mlpipe.max_memory, and k-means' use of it.
 */
#include "mlpipe.h"

#include "miscadmin.h"

#include <math.h>

/* The text behind a categorical code, or NULL for a code that has none. */
static inline const char *
category_text(const SourceDict *dict, double v, bool *has_text)
{
	*has_text = !isnan(v) && v >= 0 && v < dict->n;
	return *has_text ? dict->labels[(uint32) v] : NULL;
}

/*
 * Mixes the d values of a decoded row into h: numbers by bit pattern (every
 * NaN alike), categorical values by their text. Runs of numeric columns go
 * to ml_hash_doubles in one call (the same mixing, value by value, but
 * inlined there, so a wide row does not pay a call per value).
 */
uint64
row_hash_features(uint64 h, const double *x, int d, const bool *categorical,
				  const SourceDict *dicts)
{
	int			j = 0;

	while (j < d)
	{
		int			end = j;

		if (categorical && categorical[j])
		{
			bool		has_text = false;
			const char *text = category_text(&dicts[j], x[j], &has_text);

			h = has_text ? ml_hash_text(h, text) : ml_hash_double(h, x[j]);
			j++;
			continue;
		}
		while (end < d && !(categorical && categorical[end]))
			end++;
		h = ml_hash_doubles(h, x + j, end - j);
		j = end;
	}
	return h;
}

/* Orders two decoded rows like row_hash_features sees them (0: the same content). */
int
row_cmp_features(const double *a, const double *b, int d, const bool *categorical,
				 const SourceDict *dicts)
{
	int			j;

	for (j = 0; j < d; j++)
	{
		int			c;

		if (categorical && categorical[j])
		{
			bool		ha,
						hb;
			const char *ta = category_text(&dicts[j], a[j], &ha);
			const char *tb = category_text(&dicts[j], b[j], &hb);

			if (ha && hb)
			{
				c = ta == NULL || tb == NULL ? (ta != NULL) - (tb != NULL) : strcmp(ta, tb);
				if (c != 0)
					return c;
				continue;
			}
			if (ha != hb)
				return ha ? -1 : 1;
		}
		c = ml_cmp_double_rows(a + j, b + j, 1);
		if (c != 0)
			return c;
	}
	return 0;
}

/*
 * Sorts n keys (ml_order_key) into the canonical order (ties: tie) and
 * returns the order, written over the keys (pfree the keys when done).
 */
int64 *
row_canonical_order(PgEnv *pe, uint64 *keys, int64 n, MlRowTieFn tie, void *arg)
{
	MlError		err = {0};

	ML_CHECK_STATUS(ml_canonical_order(&pe->env, (uint64_t *) keys, n, tie, arg, &err), &err);
	return (int64 *) ml_order_from_keys((uint64_t *) keys, n);
}

/* Sort keys for n rows (8 bytes a row), within mlpipe.max_memory beside held_bytes. */
uint64 *
row_keys_alloc(MemoryContext mcxt, int64 n, double held_bytes)
{
	pg_memory_check(held_bytes + (double) Max(n, 1) * sizeof(uint64),
					"Raise mlpipe.max_memory, or train on a sample of the source.",
					"ordering " INT64_FORMAT " training rows by content", n);
	return MemoryContextAllocHuge(mcxt, sizeof(uint64) * Max(n, 1));
}

/* Puts n rows of row_bytes each into order, in place. */
void
row_permute(PgEnv *pe, void *rows, size_t row_bytes, const int64 *order, int64 n)
{
	MlError		err = {0};

	if (rows == NULL)
		return;
	ML_CHECK_STATUS(ml_permute_rows(&pe->env, rows, row_bytes, (const int64_t *) order, n, &err), &err);
}

/* Tie comparison of two rows of a SourceData. */
static int
source_tie(void *arg, int64_t a, int64_t b)
{
	const SourceData *data = arg;

	return row_cmp_features(data->X + (Size) a * data->d, data->X + (Size) b * data->d,
							data->d, data->any_categorical ? data->categorical : NULL,
							data->dicts);
}

/*
 * Puts the rows of a loaded source (k-means) into the canonical order for
 * this seed: ascending by content hash, ties by content.
 */
void
source_canonical_order(PgEnv *pe, SourceData *data, uint64 seed)
{
	uint64	   *keys = row_keys_alloc(pe->mcxt, data->n, (double) data->n * data->d * sizeof(double));
	uint64		h0 = ml_hash_start(seed);
	int64	   *order;
	int64		r;

	for (r = 0; r < data->n; r++)
	{
		keys[r] = ml_order_key(ml_hash_finish(row_hash_features(h0, data->X + (Size) r * data->d, data->d,
																data->any_categorical ? data->categorical : NULL,
																data->dicts)), r);
		if ((r & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	order = row_canonical_order(pe, keys, data->n, source_tie, data);
	row_permute(pe, data->X, sizeof(double) * data->d, order, data->n);
	pfree(keys);
}
