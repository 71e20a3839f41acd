/*
 * profile.c: the training profile that mlpipe.drift and predict_table
 * compare against, computed in C while the training source is read.
 *
 * source_scan hands every row it decodes (the rows the fit reads, before
 * any train/test split) to profile_add_row, which keeps the rows with the
 * smallest content hashes seeded from params.seed (a bottom-k sample,
 * src/core/roworder.h): the same rows and seed give the same sample in any
 * order they arrive in, so the same profile and the same PSI (issue #12). profile_finish turns the sample into the JSON the SQL
 * consumers read (sql/src/30-scoring.sql, _drift_figures), in the shape
 * the former SQL _profile_compute wrote:
 *
 *	{"rows": sampled rows, "sample": requested, "fraction": rows / seen,
 *	 "seed": seed, "features": [
 *	   {"feature", "kind": "numeric", "column", "element", "nonnull",
 *		"null_rate", "edges": min, deciles, max (percentile_disc, duplicates
 *		removed), "counts": per _bin_of bin},
 *	   {"feature", "kind": "categorical", "column", "element": null,
 *		"nonnull", "null_rate", "categories": the 20 most frequent values
 *		(count descending, then value), "counts": [others, one per category]}]}
 *
 * Every matrix column is profiled (no cap on the number of features); text
 * columns are categorical through the source's dictionary (code -> text),
 * booleans are categorical with the values 'true' and 'false' as ::text gives
 * them. NULL and NaN both count as missing. Rows k-means skips for NULLs
 * (on_null = skip) are in the sample too (source_decode.c decodes them again for
 * the profile alone), so the null rates describe the source. The sample holds at most
 * PROFILE_MAX_VALUES doubles, so wide sources get fewer rows than
 * params.profile_sample asks (the JSON's "rows" says how many).
 */
#include "mlpipe.h"

#include "catalog/pg_collation.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include <math.h>

#define PROFILE_MAX_VALUES (4 * 1024 * 1024)	/* 32 MB of sampled values */
#define PROFILE_TOP_CATEGORIES 20

struct ProfileSampler
{
	MemoryContext mcxt;
	int			requested;		/* params.profile_sample */
	uint64		seed;
	uint64		h0;				/* content hash state for the seed */
	MlSample	sample;			/* the bottom-k heap over rows and prio */
	int64		cap;			/* rows the sample may hold */
	int64		alloc;			/* rows allocated */
	int64		kept;
	int64		seen;
	int			d;				/* 0 until profile_plan */
	double	   *rows;			/* kept * d, row-major */
	const char **column;		/* d: source column */
	int		   *element;		/* d: 1-based array element, 0 for a scalar */
	ProfileKind *kind;			/* d */
	bool	   *categorical;	/* d: kind is PROFILE_CATEGORY (hashed by text) */
	const SourceDict *dicts;	/* d entries, used for PROFILE_CATEGORY */
	/* without categorical columns, rows are hashed a block at a time */
	double	   *block;			/* block_cap x d, column-major, or NULL */
	uint64	   *block_h;
	int			block_cap;
	int			block_n;
};

/* A sampler for up to `requested` rows, seeded; memory in mcxt. */
ProfileSampler *
profile_create(MemoryContext mcxt, int requested, uint64 seed)
{
	ProfileSampler *ps = MemoryContextAllocZero(mcxt, sizeof(ProfileSampler));

	ps->mcxt = mcxt;
	ps->requested = requested;
	ps->seed = seed;
	ps->h0 = ml_hash_start(seed ^ UINT64CONST(0x6D6C706970652070));	/* "mlpipe p" */
	return ps;
}

/*
 * The layout, once source_scan knows it: d matrix columns, each with its
 * source column, array element (0 for a scalar) and kind; dicts are the
 * scan's category dictionaries (they grow during the scan, in place).
 */
void
profile_plan(ProfileSampler *ps, int d, const char *const *column, const int *element,
			 const ProfileKind *kind, const SourceDict *dicts)
{
	MemoryContext old = MemoryContextSwitchTo(ps->mcxt);
	int			j;

	ps->d = d;
	ps->column = palloc(sizeof(char *) * d);
	ps->element = palloc(sizeof(int) * d);
	ps->kind = palloc(sizeof(ProfileKind) * d);
	ps->categorical = palloc(sizeof(bool) * Max(d, 1));
	for (j = 0; j < d; j++)
	{
		ps->column[j] = pstrdup(column[j]);
		ps->element[j] = element[j];
		ps->kind[j] = kind[j];
		ps->categorical[j] = kind[j] == PROFILE_CATEGORY;
	}
	ps->dicts = dicts;
	ps->cap = Max(1, Min((int64) ps->requested, PROFILE_MAX_VALUES / Max(d, 1)));
	ps->sample.row_bytes = sizeof(double) * d;
	ps->sample.cap = ps->cap;
	ps->sample.tmp = palloc(sizeof(double) * Max(d, 1));
	for (j = 0; j < d && !ps->categorical[j]; j++)
		;
	if (j == d)
	{
		/* about 1 MB of doubles, a multiple of 32 rows */
		ps->block_cap = Max(32, Min(1024, (131072 / Max(d, 1)) & ~31));
		ps->block = MemoryContextAllocHuge(ps->mcxt, sizeof(double) * ps->block_cap * Max(d, 1));
		ps->block_h = palloc(sizeof(uint64) * ps->block_cap);
	}
	MemoryContextSwitchTo(old);
}

/* Grows the sample's buffers to n rows (at most cap). */
static void
profile_grow(ProfileSampler *ps, int64 n)
{
	MlSample   *smp = &ps->sample;
	Size		bytes = (Size) n * ps->d * sizeof(double);

	ps->rows = ps->rows ? repalloc_huge(ps->rows, bytes)
		: MemoryContextAllocHuge(ps->mcxt, bytes);
	smp->prio = smp->prio ? repalloc_huge(smp->prio, sizeof(uint64) * n)
		: MemoryContextAllocHuge(ps->mcxt, sizeof(uint64) * n);
	/* the heap moves slot numbers, not rows (profile_finish orders them) */
	smp->slot_of = smp->slot_of ? repalloc_huge(smp->slot_of, sizeof(int64) * n)
		: MemoryContextAllocHuge(ps->mcxt, sizeof(int64) * n);
	smp->rows = ps->rows;
	/* the new rows are written next, in order: fault them in in one call */
	ml_populate(ps->rows + (Size) ps->alloc * ps->d, (Size) (n - ps->alloc) * ps->d * sizeof(double));
	ps->alloc = n;
}

/*
 * Offers row x with content hash p to the sample (the bottom-k heap).
 * Allocates only while the sample has fewer than cap rows allocated.
 */
static void
profile_offer(ProfileSampler *ps, const double *x, size_t stride, uint64 p)
{
	MlSample   *smp = &ps->sample;
	int64		slot = ml_sample_slot(smp, p);
	double	   *dst;
	int			j;

	if (slot < 0)
		return;
	if (slot == ps->alloc)
		profile_grow(ps, Min(ps->cap, Max(1024, ps->alloc * 2)));
	dst = ps->rows + (Size) slot * ps->d;
	for (j = 0; j < ps->d; j++)
		dst[j] = x[(Size) j * stride];
	ml_sample_commit(smp, slot, p);
	ps->kept = smp->kept;
}

/*
 * Offers the n rows of a column-major block (row i's value j at
 * X[j * ld + i]) in order: their content hashes side by side in h (n
 * words), then each row to the sample. Plain C, no allocation once the
 * sample is allocated (profile_block_ready).
 */
static void
offer_columns(ProfileSampler *ps, const double *X, size_t ld, int n, uint64 *h)
{
	int			i;

	for (i = 0; i < n; i++)
		h[i] = ps->h0;
	ml_hash_columns(h, X, ld, ps->d, n);
	for (i = 0; i < n; i++)
		profile_offer(ps, X + i, ld, ml_hash_finish(h[i]));
}

/*
 * Hashes the block's rows side by side (ml_hash_columns: the bits of
 * row_hash_features on numbers) and offers them in arrival order: the
 * same sample as a row at a time.
 */
static void
profile_flush(ProfileSampler *ps)
{
	offer_columns(ps, ps->block, ps->block_cap, ps->block_n, ps->block_h);
	ps->block_n = 0;
}

/*
 * Offers one decoded row (d doubles) to the sample: kept when its content
 * hash is among the cap smallest so far (categorical values by their text).
 */
void
profile_add_row(ProfileSampler *ps, const double *x)
{
	int			j;

	ps->seen++;
	if (ps->block == NULL)
	{
		profile_offer(ps, x, 1,
					  ml_hash_finish(row_hash_features(ps->h0, x, ps->d, ps->categorical, ps->dicts)));
		return;
	}
	for (j = 0; j < ps->d; j++)
		ps->block[(Size) j * ps->block_cap + ps->block_n] = x[j];
	if (++ps->block_n == ps->block_cap)
		profile_flush(ps);
}

/*
 * Readies the sampler for profile_offer_block: offers the rows waiting in
 * its own block and allocates the whole sample, so that offering never
 * allocates again. False when rows must come one at a time (categorical
 * columns, hashed by their text).
 */
bool
profile_block_ready(ProfileSampler *ps)
{
	if (ps->block == NULL)
		return false;
	if (ps->block_n > 0)
		profile_flush(ps);
	if (ps->alloc < ps->cap)
		profile_grow(ps, ps->cap);
	return true;
}

/*
 * Offers the n rows of a column-major block (row i's value j at
 * X[j * ld + i]) in order, as profile_add_row would one at a time (the
 * same hashes and heap operations). After profile_block_ready: plain C, no
 * allocation, so a pool worker may run it while the caller reads on. h: n
 * words of scratch.
 */
void
profile_offer_block(ProfileSampler *ps, const double *X, size_t ld, int n, uint64 *h)
{
	offer_columns(ps, X, ld, n, h);
	ps->seen += n;
}

/*
 * Puts the values of ranks[0..nr) (ascending, 0-based, within [lo, hi)) of
 * v at their sorted positions, as a full sort would (v holds no NaN): a
 * quickselect that recurses only into the sides holding a wanted rank, so
 * the deciles of m values cost about 3m comparisons instead of m log m.
 */
static void
select_ranks(double *v, int64 lo, int64 hi, const int64 *ranks, int nr)
{
	while (nr > 0 && hi - lo > 1)
	{
		double		p0 = v[lo],
					p1 = v[lo + (hi - lo) / 2],
					p2 = v[hi - 1],
					pivot = p0 < p1 ? (p1 < p2 ? p1 : p0 < p2 ? p2 : p0)
					: (p0 < p2 ? p0 : p1 < p2 ? p2 : p1);	/* median of 3 */
		int64		lt = lo,
					gt = hi,
					i = lo;
		int			a = 0,
					b;

		/* three-way partition: [lo, lt) < pivot, [lt, gt) == pivot, [gt, hi) > */
		while (i < gt)
		{
			double		x = v[i];

			if (x < pivot)
			{
				v[i++] = v[lt];
				v[lt++] = x;
			}
			else if (x > pivot)
			{
				v[i] = v[--gt];
				v[gt] = x;
			}
			else
				i++;
		}
		while (a < nr && ranks[a] < lt)
			a++;
		b = a;
		while (b < nr && ranks[b] < gt)
			b++;
		/* recurse into the smaller side, loop on the other: depth <= log2 m */
		if (lt - lo < hi - gt)
		{
			select_ranks(v, lo, lt, ranks, a);
			ranks += b;
			nr -= b;
			lo = gt;
		}
		else
		{
			select_ranks(v, gt, hi, ranks + b, nr - b);
			nr = a;
			hi = lt;
		}
	}
}

/* A number for JSON: shortest round trip; infinities as strings, as to_jsonb. */
static void
append_number(StringInfo buf, double v)
{
	if (isinf(v))
		appendStringInfoString(buf, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
	else
		appendStringInfoString(buf, float8out_internal(v));
}

/* "feature", "kind", "column", "element", "nonnull", "null_rate" of column j. */
static void
append_feature_head(ProfileSampler *ps, StringInfo buf, int j, const char *kind, int64 nonnull)
{
	appendStringInfoString(buf, "{\"feature\": ");
	if (ps->element[j] > 0)
	{
		char	   *name = psprintf("%s[%d]", ps->column[j], ps->element[j]);

		escape_json(buf, name);
		pfree(name);
	}
	else
		escape_json(buf, ps->column[j]);
	appendStringInfo(buf, ", \"kind\": \"%s\", \"column\": ", kind);
	escape_json(buf, ps->column[j]);
	if (ps->element[j] > 0)
		appendStringInfo(buf, ", \"element\": %d", ps->element[j]);
	else
		appendStringInfoString(buf, ", \"element\": null");
	appendStringInfo(buf, ", \"nonnull\": " INT64_FORMAT ", \"null_rate\": ", nonnull);
	if (ps->kept > 0)
		append_number(buf, 1 - (double) nonnull / (double) ps->kept);
	else
		appendStringInfoString(buf, "null");
}

/*
 * A numeric column: edges at percentile_disc(0, 0.1, ..., 1) of the non-missing
 * sampled values, duplicates removed, and the count of each _bin_of bin
 * (the values are selected, not sorted: the counts need no order).
 */
static void
append_numeric(ProfileSampler *ps, StringInfo buf, int j, double *tmp)
{
	static const double pct[11] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1};
	double		edges[11];
	int			ne = 0,
				p;
	int64		m = 0,
				i,
				ranks[11],
			   *counts;

	for (i = 0; i < ps->kept; i++)
	{
		double		v = ps->rows[(Size) i * ps->d + j];

		if (!isnan(v))
			tmp[m++] = v;
	}
	/* percentile_disc: the first value whose cumulative share >= p. */
	for (p = 0; p < 11; p++)
		ranks[p] = Max((int64) ceil(pct[p] * (double) m), 1) - 1;
	if (m > 0)
		select_ranks(tmp, 0, m, ranks, 11);
	for (p = 0; p < 11 && m > 0; p++)
	{
		double		v = tmp[ranks[p]];

		if (ne == 0 || edges[ne - 1] != v)
			edges[ne++] = v;
	}
	counts = palloc0(sizeof(int64) * (2 * ne + 1));
	for (i = 0; i < m; i++)
	{
		int			lo = 0,
					hi = ne;

		/* As mlpipe_internal._bin_of: k = the number of edges <= x. */
		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (edges[mid] <= tmp[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		counts[lo == 0 ? 0 : edges[lo - 1] == tmp[i] ? 2 * lo - 1 : 2 * lo]++;
	}
	append_feature_head(ps, buf, j, "numeric", m);
	appendStringInfoString(buf, ", \"edges\": [");
	for (p = 0; p < ne; p++)
	{
		if (p > 0)
			appendStringInfoString(buf, ", ");
		append_number(buf, edges[p]);
	}
	appendStringInfoString(buf, "], \"counts\": [");
	for (p = 0; p < 2 * ne + 1; p++)
		appendStringInfo(buf, "%s" INT64_FORMAT, p > 0 ? ", " : "", counts[p]);
	appendStringInfoString(buf, "]}");
	pfree(counts);
}

/* One category value and its count in the sample. */
typedef struct CategoryCount
{
	const char *label;
	int64		count;
} CategoryCount;

/* Count descending, then the value in the database's default collation. */
static int
cmp_category(const void *a, const void *b)
{
	const CategoryCount *x = a,
			   *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return varstr_cmp(x->label, strlen(x->label), y->label, strlen(y->label),
					  DEFAULT_COLLATION_OID);
}

/*
 * A categorical column (text through its dictionary, or boolean 0/1): the
 * 20 most frequent values and counts [others, one per value].
 */
static void
append_categorical(ProfileSampler *ps, StringInfo buf, int j)
{
	static const char *const bool_labels[2] = {"false", "true"};
	bool		is_bool = ps->kind[j] == PROFILE_BOOL;
	const SourceDict *dict = is_bool ? NULL : &ps->dicts[j];
	int			nlabels = is_bool ? 2 : (int) dict->n;
	CategoryCount *cc = palloc0(sizeof(CategoryCount) * Max(nlabels, 1));
	int			k = 0,
				c;
	int64		i,
				nonnull = 0,
				top = 0;

	for (i = 0; i < ps->kept; i++)
	{
		double		v = ps->rows[(Size) i * ps->d + j];
		int			code;

		if (isnan(v))
			continue;
		if (v == PROFILE_UNKNOWN_CODE)
		{
			nonnull++;			/* a value only skipped rows had: "others" */
			continue;
		}
		code = (int) v;
		if (code < 0 || code >= nlabels || (!is_bool && code == dict->null_code))
			continue;
		cc[code].count++;
		nonnull++;
	}
	for (c = 0; c < nlabels; c++)
		if (cc[c].count > 0)
		{
			cc[k].count = cc[c].count;
			cc[k].label = is_bool ? bool_labels[c] : dict->labels[c];
			k++;
		}
	qsort(cc, k, sizeof(CategoryCount), cmp_category);
	k = Min(k, PROFILE_TOP_CATEGORIES);
	append_feature_head(ps, buf, j, "categorical", nonnull);
	appendStringInfoString(buf, ", \"categories\": [");
	for (c = 0; c < k; c++)
	{
		if (c > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, cc[c].label);
		top += cc[c].count;
	}
	appendStringInfo(buf, "], \"counts\": [" INT64_FORMAT, nonnull - top);
	for (c = 0; c < k; c++)
		appendStringInfo(buf, ", " INT64_FORMAT, cc[c].count);
	appendStringInfoString(buf, "]}");
	pfree(cc);
}

/* The profile as JSON text (see the file comment), in the sampler's context. */
char *
profile_finish(ProfileSampler *ps)
{
	MemoryContext old = MemoryContextSwitchTo(ps->mcxt);
	StringInfoData buf;
	double	   *tmp;
	int			j;

	if (ps->block)
		profile_flush(ps);
	tmp = ps->kept > 0 ? MemoryContextAllocHuge(ps->mcxt, sizeof(double) * ps->kept) : NULL;

	/* the rows where the row-moving heap would have left them: the same figures, bit for bit */
	ml_sample_heap_order(&ps->sample);
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"rows\": " INT64_FORMAT ", \"sample\": %d, \"fraction\": ",
					 ps->kept, ps->requested);
	append_number(&buf, ps->seen > ps->kept ? (double) ps->kept / (double) ps->seen : 1.0);
	appendStringInfo(&buf, ", \"seed\": " UINT64_FORMAT ", \"features\": [", ps->seed);
	for (j = 0; j < ps->d; j++)
	{
		if (ps->kind[j] == PROFILE_SKIP)
			continue;
		if (buf.data[buf.len - 1] != '[')
			appendStringInfoString(&buf, ", ");
		if (ps->kind[j] == PROFILE_NUMERIC)
			append_numeric(ps, &buf, j, tmp);
		else
			append_categorical(ps, &buf, j);
		CHECK_FOR_INTERRUPTS();
	}
	appendStringInfoString(&buf, "]}");
	if (tmp)
		pfree(tmp);
	if (ps->rows)
		pfree(ps->rows);
	ps->rows = NULL;
	MemoryContextSwitchTo(old);
	return buf.data;
}
