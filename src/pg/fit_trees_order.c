/*
 * fit_trees_order.c: the tree models' rows in the canonical order
 * (src/core/roworder.h), so that the same rows in any arrival order (a
 * Citus distributed table, a view, a query with ORDER BY, a table after
 * UPDATEs) give the same bin edges, test split, bootstraps, sums and
 * artifact. Pass 1's sample is ordered by the content hashes it was drawn
 * by; when it holds every row, the targets (and split values) follow their
 * rows. Pass 2's binned rows are ordered by the hashes pass 2 computed.
 */
#include "fit_trees_int.h"

/* Orders two bit patterns of doubles. */
static inline int
cmp_bits(double a, double b)
{
	uint64		x = ml_double_bits(a),
				y = ml_double_bits(b);

	return (x > y) - (x < y);
}

/* Orders the targets (and split values) of loaded rows ia and ib; -1: no target. */
static int
target_cmp(const TreeLoad *L, int64 ia, int64 ib)
{
	int			c;

	if (ia < 0 || ib < 0)
		return (ia >= 0) - (ib >= 0);
	c = L->classify_by_type ? strcmp(L->labels[L->yl[ia]], L->labels[L->yl[ib]])
		: cmp_bits(L->yv[ia], L->yv[ib]);
	if (c == 0 && L->sv)
		c = cmp_bits(L->sv[ia], L->sv[ib]);
	return c;
}

/* Tie comparison of two sample slots: features, then (every row kept) targets. */
static int
sample_tie(void *arg, int64_t a, int64_t b)
{
	const TreeLoad *L = arg;
	int			c = row_cmp_features(L->sample + (Size) a * L->d, L->sample + (Size) b * L->d, L->d,
									 L->info->any_categorical ? L->info->categorical : NULL,
									 L->info->dicts);

	if (c != 0 || !L->sample_is_all)
		return c;
	return target_cmp(L, L->sample_src[a], L->sample_src[b]);
}

/* Puts the per-row target arrays (those in use) in order. */
static void
permute_targets(TreeLoad *L, const int64 *order, int64 n)
{
	row_permute(L->pe, L->yv, sizeof(double), order, n);
	row_permute(L->pe, L->yl, sizeof(int32), order, n);
	row_permute(L->pe, L->sv, sizeof(double), order, n);
}

/*
 * Orders pass 1's sample by (content hash, content). When it holds every
 * row, the rows with a target are renumbered in the new order and their
 * targets and split values moved to match.
 */
void
trees_load_order_sample(TreeLoad *L)
{
	int64		ns = L->sample_is_all ? L->seen : L->sbuf.n;
	uint64	   *keys = row_keys_alloc(L->mcxt, ns,
									  (double) ns * (L->d * sizeof(double) + 2 * sizeof(int64)) +
									  (double) L->n * 2 * sizeof(double));
	int64	   *order;
	int64		s,
				k = 0;

	for (s = 0; s < ns; s++)
		keys[s] = ml_order_key(L->sample_prio[s], s);
	order = row_canonical_order(L->pe, keys, ns, sample_tie, L);
	row_permute(L->pe, L->sample, sizeof(double) * L->d, order, ns);
	row_permute(L->pe, L->sample_prio, sizeof(uint64), order, ns);
	if (L->sample_is_all)
	{
		row_permute(L->pe, L->sample_src, sizeof(int64), order, ns);
		/* order now becomes the targets' order: the k-th kept row takes its old target */
		for (s = 0; s < ns; s++)
			if (L->sample_src[s] >= 0)
			{
				order[k] = L->sample_src[s];
				L->sample_src[s] = k++;
			}
		permute_targets(L, order, k);
	}
	pfree(keys);
}

/* Tie comparison of two binned rows: bin codes, then targets and split values. */
static int
rows_tie(void *arg, int64_t a, int64_t b)
{
	const TreeLoad *L = arg;
	int			c = memcmp(L->B + (Size) a * L->d, L->B + (Size) b * L->d, L->d);

	return c != 0 ? c : target_cmp(L, a, b);
}

/*
 * Orders pass 2's binned rows by (content hash, content). Rows whose bin
 * codes, target and split value are all equal are interchangeable.
 */
void
trees_load_order_rows(TreeLoad *L)
{
	int64	   *order = row_canonical_order(L->pe, L->rh, L->n, rows_tie, L);
	void	   *arrays[4] = {L->B, L->yv, L->yl, L->sv};
	size_t		row_bytes[4] = {L->d, sizeof(double), sizeof(int32), sizeof(double)};
	MlError		err = {0};

	/* bin codes and targets in one walk along the cycles of order */
	ML_CHECK_STATUS(ml_permute_arrays(&L->pe->env, 4, arrays, row_bytes, (const int64_t *) order,
									  L->n, &err), &err);
	pfree(L->rh);
	L->rh = NULL;
}
