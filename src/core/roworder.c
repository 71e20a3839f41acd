/*
 * roworder.c: the canonical row order and the bottom-k sample (roworder.h).
 *
 * The order is an LSD radix sort of (hash, row) pairs, eight passes of one
 * byte each (a pass whose byte is the same in every key is skipped), then
 * each run of equal hashes sorted by the caller's comparison with a merge
 * sort (a run is one row unless rows are identical or, about once in 2^64
 * pairs, hashes collide). The rows themselves are then permuted in place
 * by following cycles.
 */
#include "roworder.h"

#include <math.h>
#include <string.h>

/* One (hash, row) pair of the sort. */
typedef struct HashRow
{
	uint64_t	h;
	int64_t		row;
} HashRow;

/* Cancel checks: every this many pairs of tie-run sorting. */
#define TIE_CHECK_EVERY (1 << 16)

/* splitmix64's finaliser: every input bit moves every output bit. */
static inline uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* The hash state for a seed. */
uint64_t
ml_hash_start(uint64_t seed)
{
	return mix64(seed ^ UINT64_C(0x726f776f72646572));	/* "roworder" */
}

/* Mixes one 64-bit word into h. */
uint64_t
ml_hash_u64(uint64_t h, uint64_t v)
{
	return mix64(h ^ mix64(v + UINT64_C(0x9E3779B97F4A7C15)));
}

/* A double's bit pattern, with every NaN (NULL is NaN in the matrix) one pattern. */
uint64_t
ml_double_bits(double v)
{
	uint64_t	b;

	if (isnan(v))
		return UINT64_C(0x7FF8000000000000);
	memcpy(&b, &v, sizeof(b));
	return b;
}

/* Mixes one double into h by its bit pattern. */
uint64_t
ml_hash_double(uint64_t h, double v)
{
	return ml_hash_u64(h, ml_double_bits(v));
}

/* Mixes d doubles into h. */
uint64_t
ml_hash_doubles(uint64_t h, const double *x, int d)
{
	int			j;

	for (j = 0; j < d; j++)
		h = ml_hash_u64(h, ml_double_bits(x[j]));
	return h;
}

/* Mixes a string into h (FNV-1a over its bytes); NULL differs from every string. */
uint64_t
ml_hash_text(uint64_t h, const char *s)
{
	uint64_t	f = UINT64_C(0xcbf29ce484222325);
	size_t		len = 0;

	if (s == NULL)
		return ml_hash_u64(h, UINT64_C(0x6e756c6c6e756c6c));	/* "nullnull" */
	for (; s[len]; len++)
		f = (f ^ (unsigned char) s[len]) * UINT64_C(0x100000001b3);
	return ml_hash_u64(ml_hash_u64(h, f), len);
}

/* The final hash. */
uint64_t
ml_hash_finish(uint64_t h)
{
	return mix64(h);
}

/* Orders two rows of doubles by their bit patterns, column by column. */
int
ml_cmp_double_rows(const double *a, const double *b, int d)
{
	int			j;

	for (j = 0; j < d; j++)
	{
		uint64_t	x = ml_double_bits(a[j]),
					y = ml_double_bits(b[j]);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

/* Peak bytes of ml_canonical_order: two pair arrays, then the order. */
size_t
ml_canonical_order_bytes(int64_t n)
{
	return (size_t) (n > 0 ? n : 1) * (2 * sizeof(HashRow) + sizeof(int64_t));
}

/* LSD radix sort of a[0..n) by h, one byte a pass; returns the sorted array (a or tmp). */
static HashRow *
radix_sort(const MlEnv *env, HashRow *a, HashRow *tmp, int64_t n, bool *cancelled)
{
	int			pass;

	for (pass = 0; pass < 8; pass++)
	{
		int64_t		count[256] = {0};
		int64_t		pos = 0,
					i;
		int			shift = pass * 8,
					b;

		for (i = 0; i < n; i++)
			count[(a[i].h >> shift) & 0xFF]++;
		if (count[(a[0].h >> shift) & 0xFF] == n)
			continue;			/* every key has this byte: nothing moves */
		for (b = 0; b < 256; b++)
		{
			int64_t		c = count[b];

			count[b] = pos;
			pos += c;
		}
		for (i = 0; i < n; i++)
			tmp[count[(a[i].h >> shift) & 0xFF]++] = a[i];
		{
			HashRow    *t = a;

			a = tmp;
			tmp = t;
		}
		if (ml_check(env, "canonical row order", pass + 1, 8, 0))
		{
			*cancelled = true;
			return a;
		}
	}
	return a;
}

/* Stable merge sort of run[0..n) by tie() (tmp: n pairs of scratch). */
static void
sort_tied(HashRow *run, HashRow *tmp, int64_t n, MlRowTieFn tie, void *arg)
{
	int64_t		h = n / 2,
				i,
				j,
				k;

	if (n < 2)
		return;
	sort_tied(run, tmp, h, tie, arg);
	sort_tied(run + h, tmp, n - h, tie, arg);
	if (tie(arg, run[h - 1].row, run[h].row) <= 0)
		return;					/* already in order (identical rows end here) */
	memcpy(tmp, run, sizeof(HashRow) * (size_t) n);
	for (i = 0, j = h, k = 0; i < h && j < n; k++)
		run[k] = tie(arg, tmp[j].row, tmp[i].row) < 0 ? tmp[j++] : tmp[i++];
	while (i < h)
		run[k++] = tmp[i++];
	while (j < n)
		run[k++] = tmp[j++];
}

/* Sorts every run of equal hashes in a[0..n) by tie(); false when cancelled. */
static bool
sort_runs(const MlEnv *env, HashRow *a, HashRow *tmp, int64_t n, MlRowTieFn tie, void *arg)
{
	int64_t		i = 0,
				since_check = 0;

	while (i < n)
	{
		int64_t		j = i + 1;

		while (j < n && a[j].h == a[i].h)
			j++;
		if (j - i > 1)
		{
			sort_tied(a + i, tmp, j - i, tie, arg);
			since_check += j - i;
			if (since_check >= TIE_CHECK_EVERY)
			{
				since_check = 0;
				if (ml_check(env, "canonical row order", 8, 8, 0))
					return false;
			}
		}
		i = j;
	}
	return true;
}

/* The canonical order of n rows (roworder.h). */
MlStatus
ml_canonical_order(const MlEnv *env, const uint64_t *hash, int64_t n,
				   MlRowTieFn tie, void *arg, int64_t **order_out, MlError *err)
{
	HashRow    *a,
			   *tmp,
			   *sorted;
	int64_t    *order;
	int64_t		i;
	bool		cancelled = false;
	size_t		pairs;

	*order_out = NULL;
	if (n < 0 || !ml_mul_size((size_t) (n > 0 ? n : 1), sizeof(HashRow), &pairs))
		return ml_fail(err, ML_ERR_MEMORY, "too many rows to order (%lld)", (long long) n);
	a = ml_alloc(env, pairs);
	tmp = ml_alloc(env, pairs);
	if (a == NULL || tmp == NULL)
	{
		ml_free(env, a);
		ml_free(env, tmp);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory ordering %lld rows", (long long) n);
	}
	for (i = 0; i < n; i++)
	{
		a[i].h = hash[i];
		a[i].row = i;
	}
	sorted = n > 0 ? radix_sort(env, a, tmp, n, &cancelled) : a;
	if (!cancelled && !sort_runs(env, sorted, sorted == a ? tmp : a, n, tie, arg))
		cancelled = true;
	order = cancelled ? NULL : ml_alloc(env, sizeof(int64_t) * (size_t) (n > 0 ? n : 1));
	if (order)
		for (i = 0; i < n; i++)
			order[i] = sorted[i].row;
	ml_free(env, a);
	ml_free(env, tmp);
	if (cancelled)
		return ml_fail_cancelled(err);
	if (order == NULL)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory ordering %lld rows", (long long) n);
	*order_out = order;
	return ML_OK;
}

/* Permutes rows in place along the cycles of order (roworder.h). */
MlStatus
ml_permute_rows(const MlEnv *env, void *rows, size_t row_bytes, const int64_t *order,
				int64_t n, MlError *err)
{
	uint8_t    *base = rows;
	uint8_t    *done = ml_calloc(env, (size_t) (n > 0 ? n : 1) / 8 + 1, 1);
	uint8_t    *held = ml_alloc(env, row_bytes > 0 ? row_bytes : 1);
	int64_t		start;

	if (done == NULL || held == NULL)
	{
		ml_free(env, done);
		ml_free(env, held);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory reordering %lld rows", (long long) n);
	}
	for (start = 0; start < n; start++)
	{
		int64_t		i = start;

		if (done[start >> 3] & (1 << (start & 7)))
			continue;
		memcpy(held, base + (size_t) start * row_bytes, row_bytes);
		for (;;)
		{
			int64_t		from = order[i];

			done[i >> 3] |= (uint8_t) (1 << (i & 7));
			if (from == start)
			{
				memcpy(base + (size_t) i * row_bytes, held, row_bytes);
				break;
			}
			memcpy(base + (size_t) i * row_bytes, base + (size_t) from * row_bytes, row_bytes);
			i = from;
		}
	}
	ml_free(env, done);
	ml_free(env, held);
	return ML_OK;
}

/* Swaps heap entries i and j: priorities and rows. */
static void
heap_swap(MlSample *s, int64_t i, int64_t j)
{
	uint8_t    *rows = s->rows;
	uint64_t	p = s->prio[i];

	s->prio[i] = s->prio[j];
	s->prio[j] = p;
	if (s->row_bytes == 0)
		return;
	memcpy(s->tmp, rows + (size_t) i * s->row_bytes, s->row_bytes);
	memcpy(rows + (size_t) i * s->row_bytes, rows + (size_t) j * s->row_bytes, s->row_bytes);
	memcpy(rows + (size_t) j * s->row_bytes, s->tmp, s->row_bytes);
}

/* Where a row of priority p goes in the sample, or -1 (roworder.h). */
int64_t
ml_sample_slot(const MlSample *s, uint64_t p)
{
	if (s->kept < s->cap)
		return s->kept;
	return p < s->prio[0] ? 0 : -1;
}

/* Records the row just written to slot with priority p and restores the max-heap. */
void
ml_sample_commit(MlSample *s, int64_t slot, uint64_t p)
{
	int64_t		i = slot;

	s->prio[slot] = p;
	if (slot == s->kept)
	{
		/* filling: sift the new row up */
		s->kept++;
		while (i > 0 && s->prio[(i - 1) / 2] < s->prio[i])
		{
			heap_swap(s, i, (i - 1) / 2);
			i = (i - 1) / 2;
		}
		return;
	}
	/* replacing the largest: sift it down */
	for (;;)
	{
		int64_t		l = 2 * i + 1,
					r = l + 1,
					m = i;

		if (l < s->kept && s->prio[l] > s->prio[m])
			m = l;
		if (r < s->kept && s->prio[r] > s->prio[m])
			m = r;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}
