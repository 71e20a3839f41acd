/*
 * roworder.c: the canonical row order and the bottom-k sample (roworder.h).
 *
 * The order is an in-place MSD radix sort of 8-byte keys (32 hash bits
 * above the row number), one byte a level (American flag sort: each level
 * permutes its buckets in place, so the sort needs no memory beyond the
 * keys), small buckets by insertion sort; then each run of equal hash bits
 * is put in order by the caller's comparison with an insertion sort, which
 * costs one comparison a row for identical rows (the usual run). The rows
 * themselves are then permuted in place by following cycles.
 */
#include "roworder.h"

#include <math.h>
#include <string.h>

/* Buckets of the radix sort below this size are insertion-sorted. */
#define SMALL_BUCKET 32
/* The top-level buckets between two cancel checks. */
#define CHECK_BUCKETS 64

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

/*
 * The word mix and the bit pattern, static so that ml_hash_doubles inlines
 * them: exported functions of a shared library are not inlined (-fPIC), and
 * a call per value would serialise what the processor can overlap.
 */
static inline uint64_t
hash_u64(uint64_t h, uint64_t v)
{
	return mix64(h ^ mix64(v + UINT64_C(0x9E3779B97F4A7C15)));
}

static inline uint64_t
double_bits(double v)
{
	uint64_t	b;

	if (isnan(v))
		return UINT64_C(0x7FF8000000000000);
	memcpy(&b, &v, sizeof(b));
	return b;
}

/* Mixes one 64-bit word into h. */
uint64_t
ml_hash_u64(uint64_t h, uint64_t v)
{
	return hash_u64(h, v);
}

/* A double's bit pattern, with every NaN (NULL is NaN in the matrix) one pattern. */
uint64_t
ml_double_bits(double v)
{
	return double_bits(v);
}

/* Mixes one double into h by its bit pattern. */
uint64_t
ml_hash_double(uint64_t h, double v)
{
	return hash_u64(h, double_bits(v));
}

/* Mixes d doubles into h, value by value as ml_hash_double. */
uint64_t
ml_hash_doubles(uint64_t h, const double *x, int d)
{
	int			j;

	for (j = 0; j < d; j++)
		h = hash_u64(h, double_bits(x[j]));
	return h;
}

/*
 * The words ml_hash_text mixes in for a string: its FNV-1a over the bytes
 * and its length, or for NULL the one word "nullnull". Returns how many.
 */
int
ml_hash_text_words(const char *s, uint64_t *w)
{
	uint64_t	f = UINT64_C(0xcbf29ce484222325);
	size_t		len = 0;

	if (s == NULL)
	{
		w[0] = UINT64_C(0x6e756c6c6e756c6c);	/* "nullnull" */
		return 1;
	}
	for (; s[len]; len++)
		f = (f ^ (unsigned char) s[len]) * UINT64_C(0x100000001b3);
	w[0] = f;
	w[1] = len;
	return 2;
}

/* Mixes a string into h (FNV-1a over its bytes); NULL differs from every string. */
uint64_t
ml_hash_text(uint64_t h, const char *s)
{
	uint64_t	w[2];
	int			nw = ml_hash_text_words(s, w),
				k;

	for (k = 0; k < nw; k++)
		h = hash_u64(h, w[k]);
	return h;
}

/*
 * Many rows at once. One row's hash is a chain of dependent multiplies (four
 * a value), so a row at a time runs at the multiplier's latency; rows are
 * independent, so HASH_LANES of them side by side run at its throughput.
 * The same mixing per row, value by value: the same bits as
 * ml_hash_doubles.
 */
#define HASH_LANES 8

bool		ml_hash_simd = true;

/* HASH_LANES rows side by side (h, X already offset to the first). */
static inline void
hash_lanes_doubles(uint64_t *h, const double *X, size_t ld, int d)
{
	uint64_t	s[HASH_LANES];
	int			j,
				l;

	for (l = 0; l < HASH_LANES; l++)
		s[l] = h[l];
	for (j = 0; j < d; j++)
		for (l = 0; l < HASH_LANES; l++)
			s[l] = hash_u64(s[l], double_bits(X[(size_t) j * ld + l]));
	for (l = 0; l < HASH_LANES; l++)
		h[l] = s[l];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HASH_HAVE_AVX512 1
/* Rows an AVX-512 group hashes: four independent 8-lane chains. */
#define HASH_AVX512_ROWS 32

/* mix64 on 8 lanes. */
__attribute__((target("avx512f,avx512dq")))
static inline __m512i
mix64_x8(__m512i z)
{
	z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)),
						   _mm512_set1_epi64((long long) UINT64_C(0xBF58476D1CE4E5B9)));
	z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)),
						   _mm512_set1_epi64((long long) UINT64_C(0x94D049BB133111EB)));
	return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

/* hash_u64(h, double_bits(x)) on 8 lanes. */
__attribute__((target("avx512f,avx512dq")))
static inline __m512i
hash_double_x8(__m512i h, __m512d x)
{
	__mmask8	nan = _mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q);
	__m512i		v = _mm512_mask_blend_epi64(nan, _mm512_castpd_si512(x),
											_mm512_set1_epi64((long long) UINT64_C(0x7FF8000000000000)));

	v = _mm512_add_epi64(v, _mm512_set1_epi64((long long) UINT64_C(0x9E3779B97F4A7C15)));
	return mix64_x8(_mm512_xor_si512(h, mix64_x8(v)));
}

/* HASH_AVX512_ROWS rows from row i0 on (h, X already offset to it). */
__attribute__((target("avx512f,avx512dq")))
static void
hash_rows_avx512(uint64_t *h, const double *X, size_t ld, int d)
{
	__m512i		s0 = _mm512_loadu_si512(h),
				s1 = _mm512_loadu_si512(h + 8),
				s2 = _mm512_loadu_si512(h + 16),
				s3 = _mm512_loadu_si512(h + 24);
	int			j;

	for (j = 0; j < d; j++)
	{
		const double *c = X + (size_t) j * ld;

		s0 = hash_double_x8(s0, _mm512_loadu_pd(c));
		s1 = hash_double_x8(s1, _mm512_loadu_pd(c + 8));
		s2 = hash_double_x8(s2, _mm512_loadu_pd(c + 16));
		s3 = hash_double_x8(s3, _mm512_loadu_pd(c + 24));
	}
	_mm512_storeu_si512(h, s0);
	_mm512_storeu_si512(h + 8, s1);
	_mm512_storeu_si512(h + 16, s2);
	_mm512_storeu_si512(h + 24, s3);
}
#endif

void
ml_hash_columns(uint64_t *h, const double *X, size_t ld, int d, int64_t n)
{
	int64_t		i = 0;

#ifdef HASH_HAVE_AVX512
	if (ml_hash_simd && n >= HASH_AVX512_ROWS &&
		__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
		for (; i + HASH_AVX512_ROWS <= n; i += HASH_AVX512_ROWS)
			hash_rows_avx512(h + i, X + i, ld, d);
#endif
	for (; i + HASH_LANES <= n; i += HASH_LANES)
		hash_lanes_doubles(h + i, X + i, ld, d);
	for (; i < n; i++)
	{
		int			j;

		for (j = 0; j < d; j++)
			h[i] = hash_u64(h[i], double_bits(X[(size_t) j * ld + i]));
	}
}

void
ml_hash_tails(uint64_t *h, const uint64_t *w, int maxw, const uint8_t *cnt, int64_t n)
{
	int64_t		i;

	/* rows are independent and short here: out-of-order execution overlaps them */
	for (i = 0; i < n; i++)
	{
		const uint64_t *wi = w + (size_t) i * maxw;
		uint64_t	s = h[i];
		int			k;

		for (k = 0; k < cnt[i]; k++)
			s = hash_u64(s, wi[k]);
		h[i] = mix64(s);
	}
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

/* Insertion sort of a[0..n). */
static void
insertion_sort_keys(uint64_t *a, int64_t n)
{
	int64_t		i,
				j;

	for (i = 1; i < n; i++)
	{
		uint64_t	v = a[i];

		for (j = i; j > 0 && a[j - 1] > v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

/* The byte of a key a radix level sorts by. */
static inline int
digit(uint64_t k, int shift)
{
	return (int) ((k >> shift) & 0xFF);
}

/*
 * Permutes a[0..n) in place so that the keys are grouped by the byte at
 * shift, ascending; start[b] and count[b] give each bucket.
 */
static void
flag_pass(uint64_t *a, int64_t n, int shift, int64_t *start, int64_t *count)
{
	int64_t		next[256];
	int64_t		pos = 0,
				i;
	int			b;

	memset(count, 0, sizeof(int64_t) * 256);
	for (i = 0; i < n; i++)
		count[digit(a[i], shift)]++;
	for (b = 0; b < 256; b++)
	{
		start[b] = next[b] = pos;
		pos += count[b];
	}
	for (b = 0; b < 256; b++)
		while (next[b] < start[b] + count[b])
		{
			uint64_t	v = a[next[b]];
			int			vb = digit(v, shift);

			while (vb != b)
			{
				uint64_t	t = a[next[vb]];

				a[next[vb]++] = v;
				v = t;
				vb = digit(v, shift);
			}
			a[next[b]++] = v;
		}
}

/* Sorts a[0..n) from the byte at shift down. */
static void
radix_sort(uint64_t *a, int64_t n, int shift)
{
	int64_t		start[256],
				count[256];
	int			b;

	if (n < SMALL_BUCKET)
	{
		insertion_sort_keys(a, n);
		return;
	}
	flag_pass(a, n, shift, start, count);
	if (shift == 0)
		return;
	for (b = 0; b < 256; b++)
		if (count[b] > 1)
			radix_sort(a + start[b], count[b], shift - 8);
}

/* Insertion sort of a run of equal hash bits by tie(): one comparison a row when identical. */
static void
sort_tied(uint64_t *run, int64_t n, MlRowTieFn tie, void *arg)
{
	int64_t		i,
				j;

	for (i = 1; i < n; i++)
	{
		uint64_t	v = run[i];

		for (j = i; j > 0 && tie(arg, (int64_t) (run[j - 1] & ML_ORDER_ROW_MASK),
								 (int64_t) (v & ML_ORDER_ROW_MASK)) > 0; j--)
			run[j] = run[j - 1];
		run[j] = v;
	}
}

/* Sorts every run of equal hash bits in a[0..n) by tie(); false when cancelled. */
static bool
sort_runs(const MlEnv *env, uint64_t *a, int64_t n, MlRowTieFn tie, void *arg)
{
	int64_t		i = 0,
				since_check = 0;

	while (i < n)
	{
		int64_t		j = i + 1;

		while (j < n && (a[j] >> ML_ORDER_ROW_BITS) == (a[i] >> ML_ORDER_ROW_BITS))
			j++;
		if (j - i > 1)
		{
			sort_tied(a + i, j - i, tie, arg);
			since_check += j - i;
			if (since_check >= (1 << 16))
			{
				since_check = 0;
				if (ml_check(env, "canonical row order (equal hashes)", -1, 0, 0))
					return false;
			}
		}
		i = j;
	}
	return true;
}

/*
 * True when keys[0..n) ascend already (keys are distinct: their low bits
 * are row numbers): rows written to the slots their pass-1 hashes
 * predicted (fit_trees_load.c) need no sort and, but for equal hash bits,
 * no move.
 */
static bool
keys_ascending(const uint64_t *keys, int64_t n)
{
	int64_t		i;

	for (i = 1; i < n; i++)
		if (keys[i - 1] > keys[i])
			return false;
	return true;
}

/* Sorts the keys into the canonical order, in place (roworder.h). */
MlStatus
ml_canonical_order(const MlEnv *env, uint64_t *keys, int64_t n,
				   MlRowTieFn tie, void *arg, MlError *err)
{
	int64_t		start[256],
				count[256];
	int			b;

	if (n < 0 || (uint64_t) n > ML_ORDER_ROW_MASK)
		return ml_fail(err, ML_ERR_DATA, "cannot order %lld rows: at most %llu",
					   (long long) n, (unsigned long long) ML_ORDER_ROW_MASK);
	if (keys_ascending(keys, n))
		;						/* placed in order already: only the runs are left */
	else if (n < SMALL_BUCKET)
		insertion_sort_keys(keys, n);
	else
	{
		/* the top level here, so that a cancel is seen between its buckets */
		flag_pass(keys, n, 56, start, count);
		for (b = 0; b < 256; b++)
		{
			if (count[b] > 1)
				radix_sort(keys + start[b], count[b], 48);
			if (b % CHECK_BUCKETS == CHECK_BUCKETS - 1 &&
				ml_check(env, "canonical row order", b + 1, 256, 0))
				return ml_fail_cancelled(err);
		}
	}
	if (tie != NULL && !sort_runs(env, keys, n, tie, arg))
		return ml_fail_cancelled(err);
	return ML_OK;
}

/* The rows of sorted keys as an order, written over the keys (roworder.h). */
int64_t *
ml_order_from_keys(uint64_t *keys, int64_t n)
{
	int64_t    *order = (int64_t *) keys;
	int64_t		i;

	for (i = 0; i < n; i++)
		order[i] = (int64_t) (keys[i] & ML_ORDER_ROW_MASK);
	return order;
}

/* Permutes rows in place along the cycles of order (roworder.h). */
MlStatus
ml_permute_rows(const MlEnv *env, void *rows, size_t row_bytes, const int64_t *order,
				int64_t n, MlError *err)
{
	return ml_permute_arrays(env, 1, &rows, &row_bytes, order, n, err);
}

/*
 * Moves row from (or the held rows, when from < 0) of every array to row i.
 * held holds one row of each array, back to back.
 */
static inline void
permute_move(int narr, void *const *arrays, const size_t *row_bytes, uint8_t *held,
			 int64_t i, int64_t from)
{
	int			a;

	for (a = 0; a < narr; a++)
	{
		uint8_t    *base = arrays[a];
		size_t		rb = row_bytes[a];

		if (base == NULL)
			continue;
		memcpy(base + (size_t) i * rb, from < 0 ? held : base + (size_t) from * rb, rb);
		held += rb;
	}
}

/*
 * Permutes the rows of narr arrays of n rows each (arrays[a] NULL: none)
 * in place along the cycles of order, all in one walk (roworder.h).
 */
MlStatus
ml_permute_arrays(const MlEnv *env, int narr, void *const *arrays, const size_t *row_bytes,
				  const int64_t *order, int64_t n, MlError *err)
{
	uint8_t    *done = ml_calloc(env, (size_t) (n > 0 ? n : 1) / 8 + 1, 1);
	uint8_t    *held;
	size_t		held_bytes = 1;
	int64_t		start,
				moved = 0;
	int			a;

	for (a = 0; a < narr; a++)
		if (arrays[a] != NULL)
			held_bytes += row_bytes[a];
	held = ml_alloc(env, held_bytes);
	if (done == NULL || held == NULL)
	{
		ml_free(env, done);
		ml_free(env, held);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory reordering %lld rows", (long long) n);
	}
	for (start = 0; start < n; start++)
	{
		int64_t		i = start;
		uint8_t    *h = held;

		if (done[start >> 3] & (1 << (start & 7)))
			continue;
		if (order[start] == start)
			continue;			/* a row that stays: nothing to move */
		for (a = 0; a < narr; a++)
			if (arrays[a] != NULL)
			{
				memcpy(h, (uint8_t *) arrays[a] + (size_t) start * row_bytes[a], row_bytes[a]);
				h += row_bytes[a];
			}
		for (;;)
		{
			int64_t		from = order[i];

			/* a cycle can hold every row: check for a cancel inside it */
			if ((++moved & 0xFFFF) == 0 &&
				ml_check(env, "canonical row order (moving rows)", -1, 0, 0))
			{
				ml_free(env, done);
				ml_free(env, held);
				return ml_fail_cancelled(err);
			}
			done[i >> 3] |= (uint8_t) (1 << (i & 7));
			if (from == start)
			{
				permute_move(narr, arrays, row_bytes, held, i, -1);
				break;
			}
			permute_move(narr, arrays, row_bytes, held, i, from);
			i = from;
		}
	}
	ml_free(env, done);
	ml_free(env, held);
	return ML_OK;
}

/* Swaps heap entries i and j: priorities and rows (or their slot numbers). */
static void
heap_swap(MlSample *s, int64_t i, int64_t j)
{
	uint8_t    *rows = s->rows;
	uint64_t	p = s->prio[i];

	s->prio[i] = s->prio[j];
	s->prio[j] = p;
	if (s->slot_of)
	{
		int64_t		slot = s->slot_of[i];

		s->slot_of[i] = s->slot_of[j];
		s->slot_of[j] = slot;
		return;
	}
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
	if (p >= s->prio[0])
		return -1;
	return s->slot_of ? s->slot_of[0] : 0;
}

/*
 * Records the row just written to slot with priority p and restores the
 * max-heap: while filling, the row enters at the end (slot == kept) and
 * sifts up; otherwise it replaces the root, the largest, and sifts down.
 */
void
ml_sample_commit(MlSample *s, int64_t slot, uint64_t p)
{
	int64_t		i = slot;

	if (s->slot_of)
	{
		if (slot != s->kept)
			i = 0;
		s->slot_of[i] = slot;
	}
	s->prio[i] = p;
	if (i == s->kept)
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
	if (s->slot_of)
	{
		/*
		 * Replacing the largest, slot numbers only: the hole moves down and
		 * the larger child (the left one on a tie) up while it is larger
		 * than p, as the swaps below would move them, with half the writes
		 * and the child chosen without a branch.
		 */
		for (;;)
		{
			int64_t		c = 2 * i + 1;

			if (c >= s->kept)
				break;
			if (c + 1 < s->kept && s->prio[c + 1] > s->prio[c])
				c++;
			if (s->prio[c] <= p)
				break;
			s->prio[i] = s->prio[c];
			s->slot_of[i] = s->slot_of[c];
			i = c;
		}
		s->prio[i] = p;
		s->slot_of[i] = slot;
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

/*
 * With slot_of: moves the rows into heap order (row i becomes heap entry
 * i's row, whose priority is prio[i]), in place, cycle by cycle through
 * tmp, so that rows and prio are what the row-moving heap leaves, byte for
 * byte; slot_of ends as the identity.
 */
void
ml_sample_heap_order(MlSample *s)
{
	uint8_t    *rows = s->rows;
	size_t		rb = s->row_bytes;
	int64_t		i;

	if (s->slot_of == NULL)
		return;
	for (i = 0; i < s->kept; i++)
	{
		int64_t		j = i;

		if (s->slot_of[i] == i)
			continue;
		memcpy(s->tmp, rows + (size_t) i * rb, rb);
		for (;;)
		{
			int64_t		k = s->slot_of[j];

			s->slot_of[j] = j;
			if (k == i)
			{
				memcpy(rows + (size_t) j * rb, s->tmp, rb);
				break;
			}
			memcpy(rows + (size_t) j * rb, rows + (size_t) k * rb, rb);
			j = k;
		}
	}
}

/*
 * The value of rank k (0-based) of a[0..n), moving a's values (Hoare's
 * selection with the middle value as pivot: priorities are hashes, so no
 * input order is adversarial; equal values split evenly).
 */
static uint64_t
select_rank(uint64_t *a, int64_t n, int64_t k)
{
	int64_t		lo = 0,
				hi = n - 1;

	while (lo < hi)
	{
		uint64_t	pivot = a[lo + (hi - lo) / 2];
		int64_t		i = lo,
					j = hi;

		while (i <= j)
		{
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j)
			{
				uint64_t	t = a[i];

				a[i++] = a[j];
				a[j--] = t;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return a[k];
	}
	return a[k];
}

/* Buckets of rank_value's histogram pass (11 bits). */
#define RANK_BUCKETS 2048

/*
 * The value of rank k (0-based) of a[0..n), a left as it is: a histogram
 * of the top 11 bits that the values use finds the bucket holding rank k,
 * whose values (about n / 2,048 for hashes) are copied to scratch (n
 * words) for select_rank. Two reads of a instead of select_rank's copy
 * and about three passes of swaps; the same value, as any selection gives.
 */
static uint64_t
rank_value(const uint64_t *a, int64_t n, int64_t k, uint64_t *scratch)
{
	int64_t		count[RANK_BUCKETS];
	uint64_t	any = 0;
	int64_t		i,
				below = 0,
				m = 0;
	int			shift = 0,
				b;

	for (i = 0; i < n; i++)
		any |= a[i];
	while (shift < 64 && (any >> shift) >= RANK_BUCKETS)
		shift++;
	memset(count, 0, sizeof(count));
	for (i = 0; i < n; i++)
		count[a[i] >> shift]++;
	for (b = 0; below + count[b] <= k; b++)
		below += count[b];
	for (i = 0; i < n; i++)
		if ((a[i] >> shift) == (uint64_t) b)
			scratch[m++] = a[i];
	return select_rank(scratch, m, k - below);
}

/* Where a row of priority p goes in the buffered sample, or -1 (roworder.h). */
int64_t
ml_sample_buf_slot(MlSampleBuf *s, uint64_t p)
{
	if (s->reduced && p >= s->bound)
		return -1;
	if (s->n == s->cap)
	{
		ml_sample_buf_reduce(s);
		if (p >= s->bound)
			return -1;
	}
	return s->n;
}

/* Records the row just written to slot (the next) with priority p. */
void
ml_sample_buf_commit(MlSampleBuf *s, int64_t slot, uint64_t p)
{
	s->prio[slot] = p;
	s->n = slot + 1;
}

/*
 * Keeps the k smallest priorities of the n rows (when n > k): the rank-k
 * value T, every row below it and the first rows equal to it that make k;
 * kept rows past k fill the gaps before k, from the end. bound becomes T.
 */
void
ml_sample_buf_reduce(MlSampleBuf *s)
{
	uint8_t    *rows = s->rows;
	size_t		rb = s->row_bytes;
	uint8_t    *keep = (uint8_t *) s->scratch;
	uint64_t	t;
	int64_t		i,
				lo,
				hi,
				equal_left;

	if (s->n <= s->k)
		return;
	t = rank_value(s->prio, s->n, s->k - 1, s->scratch);
	equal_left = s->k;
	for (i = 0; i < s->n; i++)
		equal_left -= s->prio[i] < t;
	/* keep flags over the scratch (its values are done with) */
	for (i = 0; i < s->n; i++)
		keep[i] = s->prio[i] < t || (s->prio[i] == t && equal_left-- > 0);
	lo = 0;
	hi = s->n - 1;
	for (;;)
	{
		while (lo < hi && keep[lo])
			lo++;
		while (hi > lo && !keep[hi])
			hi--;
		if (lo >= hi)
			break;
		s->prio[lo] = s->prio[hi];
		if (rb > 0)
			memcpy(rows + (size_t) lo * rb, rows + (size_t) hi * rb, rb);
		keep[lo] = 1;
		keep[hi] = 0;
	}
	s->n = s->k;
	s->bound = t;
	s->reduced = true;
}
