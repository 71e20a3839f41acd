/*
 * test_roworder.c: the canonical row order and the bottom-k sample
 * (src/core/roworder.c): the same rows in any arrival order come out in
 * one order, identical rows stay tied harmlessly, colliding hashes are
 * ordered by content, a cancel stops the sort, and the sampled set does
 * not depend on the order rows are offered in.
 */
#include "mltest.h"
#include "roworder.h"

#include <math.h>

#define N 5000
#define D 3

/* Rows for a tie comparison: row-major doubles. */
typedef struct Rows
{
	const double *x;
	int			d;
} Rows;

/* Tie comparison over row-major doubles. */
static int
tie_rows(void *arg, int64_t a, int64_t b)
{
	Rows	   *r = arg;

	return ml_cmp_double_rows(r->x + a * r->d, r->x + b * r->d, r->d);
}

/* A row's sort-key hash bits for canonicalise and test_placed. */
static uint64_t
row_hash_bits(const double *x, bool collide)
{
	return collide ? (uint64_t) (x[0] > 0.5) << 63	/* every tie path */
		: ml_hash_finish(ml_hash_doubles(ml_hash_start(7), x, D));
}

/* The canonical order of x (n x D), applied in place (collide: two hashes for all rows). */
static void
canonicalise(double *x, int64_t n, bool collide)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	uint64_t   *keys = malloc(sizeof(uint64_t) * n);
	Rows		r = {x, D};
	int64_t		i;

	for (i = 0; i < n; i++)
		keys[i] = ml_order_key(row_hash_bits(x + i * D, collide), i);
	if (ml_canonical_order(&env, keys, n, tie_rows, &r, &err) != ML_OK ||
		ml_permute_rows(&env, x, sizeof(double) * D, ml_order_from_keys(keys, n), n, &err) != ML_OK)
		printf("# %s\n", err.msg);
	free(keys);
}

/* Shuffles n rows of D doubles (Fisher-Yates with a seeded RNG). */
static void
shuffle(double *x, int64_t n, uint64_t seed)
{
	MlRng		rng;
	int64_t		i;
	double		t[D];

	ml_rng_seed(&rng, seed);
	for (i = n - 1; i > 0; i--)
	{
		int64_t		j = (int64_t) ml_rng_below(&rng, (uint64_t) i + 1);

		memcpy(t, x + i * D, sizeof(t));
		memcpy(x + i * D, x + j * D, sizeof(t));
		memcpy(x + j * D, t, sizeof(t));
	}
}

/* Test rows: random values, duplicates, NaN of two payloads, -0 and 0. */
static void
make_rows(double *x, int64_t n)
{
	MlRng		rng;
	int64_t		i;

	ml_rng_seed(&rng, 42);
	for (i = 0; i < n * D; i++)
		x[i] = floor(ml_rng_uniform(&rng) * 4) / 4;	/* few values: many identical rows */
	x[3] = NAN;
	x[4] = -NAN;
	x[5] = -0.0;
	x[6] = 0.0;
}

/*
 * Rows placed before they are ordered (fit_trees_load.c's pass 2): the
 * keys sorted without a tie give each row's slot; the rows written to
 * their slots and keyed by slot ascend already, so the canonical order
 * keeps them but for runs of equal hash bits: the rows of canonicalise,
 * and an order that is mostly the identity permutes them alike.
 */
static void
test_placed(bool collide)
{
	double	   *a = malloc(sizeof(double) * N * D),
			   *b = malloc(sizeof(double) * N * D),
			   *placed = malloc(sizeof(double) * N * D);
	uint64_t   *keys = malloc(sizeof(uint64_t) * N);
	int64_t    *slot_of = malloc(sizeof(int64_t) * N);
	int64_t    *order;
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	Rows		r = {placed, D};
	int64_t		i,
				moved = 0;
	int			ok;

	make_rows(a, N);
	canonicalise(a, N, collide);
	make_rows(b, N);
	shuffle(b, N, 11);
	for (i = 0; i < N; i++)
		keys[i] = ml_order_key(row_hash_bits(b + i * D, collide), i);
	ok = ml_canonical_order(&env, keys, N, NULL, NULL, &err) == ML_OK;
	for (i = 0; i < N; i++)
		slot_of[keys[i] & ML_ORDER_ROW_MASK] = i;
	for (i = 0; i < N; i++)
	{
		memcpy(placed + slot_of[i] * D, b + i * D, sizeof(double) * D);
		keys[slot_of[i]] = ml_order_key(row_hash_bits(b + i * D, collide), slot_of[i]);
	}
	ok = ok && ml_canonical_order(&env, keys, N, tie_rows, &r, &err) == ML_OK;
	order = ml_order_from_keys(keys, N);
	for (i = 0; i < N; i++)
		moved += order[i] != i;
	ok = ok && ml_permute_rows(&env, placed, sizeof(double) * D, order, N, &err) == ML_OK;
	for (i = 0; i < N && ok; i++)
		ok = ml_cmp_double_rows(a + i * D, placed + i * D, D) == 0;
	CHECK(ok && (collide || moved < N / 10),
		  "rows placed by their sorted keys order as the arrival order does (%s, %lld moved)",
		  collide ? "every hash colliding" : "real hashes", (long long) moved);
	free(a);
	free(b);
	free(placed);
	free(keys);
	free(slot_of);
}

/* Same rows in several arrival orders, with and without hash collisions. */
static void
test_order_independent(bool collide)
{
	double	   *a = malloc(sizeof(double) * N * D),
			   *b = malloc(sizeof(double) * N * D);
	int			s,
				same = 1;

	make_rows(a, N);
	canonicalise(a, N, collide);
	for (s = 1; s <= 5; s++)
	{
		int64_t		i;

		make_rows(b, N);
		shuffle(b, N, (uint64_t) s);
		canonicalise(b, N, collide);
		for (i = 0; i < N; i++)
			if (ml_cmp_double_rows(a + i * D, b + i * D, D) != 0)
				same = 0;
	}
	CHECK(same, "five shuffles give one canonical order (%s)", collide ? "every hash colliding" : "real hashes");
	free(a);
	free(b);
}

/* NaN payloads hash and compare alike; -0 and 0 do not. */
static void
test_bits(void)
{
	double		n1 = NAN,
				n2 = -NAN,
				z = 0.0,
				nz = -0.0;

	CHECK(ml_hash_double(1, n1) == ml_hash_double(1, n2), "every NaN hashes alike");
	CHECK(ml_cmp_double_rows(&n1, &n2, 1) == 0, "every NaN compares equal");
	CHECK(ml_cmp_double_rows(&z, &nz, 1) != 0, "-0 and 0 are different content");
	CHECK(ml_hash_text(1, NULL) != ml_hash_text(1, ""), "NULL text differs from ''");
	CHECK(ml_hash_text(1, "ab") != ml_hash_text(1, "ba"), "text hash sees the order of bytes");
}

/*
 * ml_hash_doubles (which spells the mixing out inline) gives the bits of
 * the value-by-value chain of ml_hash_double it replaced, NaN payloads,
 * signed zeros and odd widths included.
 */
static void
test_hash_doubles_chain(void)
{
	double		x[785];
	uint64_t	s = 12345;
	int			i,
				d,
				bad = 0;

	for (i = 0; i < 785; i++)
	{
		s = s * UINT64_C(6364136223846793005) + 1442695040888963407;
		x[i] = i % 97 == 5 ? (i % 2 ? NAN : -NAN) : i % 89 == 3 ? -0.0
			: (double) (int64_t) (s >> 11) / 1e6;
	}
	for (d = 0; d <= 785; d += d < 9 ? 1 : 97)
	{
		uint64_t	h = ml_hash_start(42);

		for (i = 0; i < d; i++)
			h = ml_hash_double(h, x[i]);
		bad += h != ml_hash_doubles(ml_hash_start(42), x, d);
	}
	CHECK(bad == 0, "ml_hash_doubles equals the ml_hash_double chain bit for bit");
}

/*
 * ml_hash_columns + ml_hash_tails (many rows side by side, AVX-512 or the
 * portable lanes) give each row the bits of ml_hash_doubles, the words'
 * ml_hash_u64 chain and ml_hash_finish: random rows with NaN payloads,
 * signed zeros and infinities, widths 1..64, row counts that leave every
 * kind of remainder, tails of 0 to 4 words.
 */
static void
test_hash_columns(void)
{
	enum
	{
		ROWS = 77, MAXD = 64, MAXW = 4
	};
	double	   *X = malloc(sizeof(double) * ROWS * MAXD);
	double		row[MAXD];
	uint64_t	h[ROWS],
				w[ROWS * MAXW],
				s = 99;
	uint8_t		cnt[ROWS];
	int			d,
				i,
				j,
				k,
				simd,
				bad = 0,
				cases = 0;

	for (i = 0; i < ROWS * MAXD; i++)
	{
		s = s * UINT64_C(6364136223846793005) + 1442695040888963407;
		X[i] = i % 31 == 5 ? (i % 2 ? NAN : -NAN) : i % 29 == 3 ? -0.0 : i % 37 == 1 ? 0.0
			: i % 41 == 7 ? -INFINITY : (double) (int64_t) (s >> 11) / 1e6;
	}
	for (i = 0; i < ROWS * MAXW; i++)
		w[i] = ml_hash_u64(5, (uint64_t) i);
	for (i = 0; i < ROWS; i++)
		cnt[i] = (uint8_t) (i % (MAXW + 1));
	for (simd = 0; simd <= 1; simd++)
		for (d = 1; d <= MAXD; d++)
		{
			int			n = d % 2 ? ROWS : ROWS - d % 40;

			ml_hash_simd = simd;
			for (i = 0; i < n; i++)
				h[i] = ml_hash_start((uint64_t) d + i);
			ml_hash_columns(h, X, n, d, n);	/* column j of row i at X[j * n + i] */
			ml_hash_tails(h, w, MAXW, cnt, n);
			for (i = 0; i < n; i++)
			{
				uint64_t	e;

				for (j = 0; j < d; j++)
					row[j] = X[(size_t) j * n + i];
				e = ml_hash_doubles(ml_hash_start((uint64_t) d + i), row, d);
				for (k = 0; k < cnt[i]; k++)
					e = ml_hash_u64(e, w[i * MAXW + k]);
				bad += h[i] != ml_hash_finish(e);
				cases++;
			}
		}
	ml_hash_simd = true;
	CHECK(bad == 0, "ml_hash_columns + ml_hash_tails equal the row-by-row hash (%d rows)", cases);
	free(X);
}

/* A check that cancels at once. */
static int
cancel_now(void *ctx, const char *s, int i, int m, double v)
{
	return 1;
}

/* A cancel during the sort returns "cancelled" (ASan: nothing leaks). */
static void
test_cancel(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	uint64_t   *keys = malloc(sizeof(uint64_t) * N);
	int64_t		i;

	for (i = 0; i < N; i++)
		keys[i] = ml_order_key(ml_hash_finish(ml_hash_u64(1, (uint64_t) i)), i);
	env.check = cancel_now;
	CHECK(ml_canonical_order(&env, keys, N, tie_rows, NULL, &err) == ML_ERR_INTERNAL &&
		  strcmp(err.msg, "cancelled") == 0, "a cancel stops the order");
	free(keys);
}

/* Tie comparison by row number (test_sorted's rows have no content). */
static int
tie_index(void *arg, int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

/* The radix sort orders random and adversarial hashes (shared prefixes, one bucket). */
static void
test_sorted(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	uint64_t   *keys = malloc(sizeof(uint64_t) * N);
	int			pattern,
				ok = 1;

	for (pattern = 0; pattern < 3; pattern++)
	{
		int64_t		i;

		for (i = 0; i < N; i++)
		{
			uint64_t	r = ml_hash_finish(ml_hash_u64(9, (uint64_t) i));

			keys[i] = ml_order_key(pattern == 0 ? r : pattern == 1 ? (r & (UINT64_C(0xFF) << 32))
								   : (UINT64_C(0xAB) << 56) | (r >> 40 << 32), i);
		}
		if (ml_canonical_order(&env, keys, N, tie_index, NULL, &err) != ML_OK)
			ok = 0;
		for (i = 1; i < N; i++)
			if (keys[i - 1] > keys[i])	/* hash bits, then (tie_index) row */
				ok = 0;
	}
	CHECK(ok, "ascending hashes, ties by the comparison, for random, one-byte and one-top-bucket keys");
	CHECK(ml_canonical_order(&env, keys, (int64_t) 1 << 33, tie_index, NULL, &err) == ML_ERR_DATA,
		  "more than 2^32 rows is refused: %s", err.msg);
	free(keys);
}

/* Bottom-k sampling keeps the same set of rows whatever the offering order. */
static void
test_sample(void)
{
	enum
	{
	K = 100
	};
	double	   *x = malloc(sizeof(double) * N * D);
	uint64_t	ref[K],
				prio[K];
	double		rows[K * D],
				tmp[D];
	int			s,
				same = 1;

	make_rows(x, N);
	for (s = 0; s < 4; s++)
	{
		MlSample	smp = {prio, rows, sizeof(double) * D, 0, K, tmp, NULL};
		int64_t		i;
		uint64_t	max = 0;
		int			k;

		if (s > 0)
			shuffle(x, N, (uint64_t) s + 100);
		for (i = 0; i < N; i++)
		{
			uint64_t	p = ml_hash_finish(ml_hash_doubles(ml_hash_start(3), x + i * D, D));
			int64_t		slot = ml_sample_slot(&smp, p);

			if (slot >= 0)
			{
				memcpy(rows + slot * D, x + i * D, sizeof(double) * D);
				ml_sample_commit(&smp, slot, p);
			}
		}
		/* the set of priorities, in ascending order */
		for (k = 0; k < K; k++)
		{
			int			m,
						best = -1;

			for (m = 0; m < K; m++)
				if (prio[m] != UINT64_MAX && (best < 0 || prio[m] < prio[best]))
					best = m;
			if (s == 0)
				ref[k] = prio[best];
			else if (ref[k] != prio[best])
				same = 0;
			if (prio[best] < max)
				same = 0;
			max = prio[best];
			prio[best] = UINT64_MAX;
		}
	}
	CHECK(same, "the bottom-k sample is the same set in four orders");
	free(x);
}

/*
 * The slot-number heap (slot_of) keeps the same rows as the row-moving
 * heap, and ml_sample_heap_order leaves rows and priorities byte for byte
 * as the row-moving heap does.
 */
static void
test_sample_slots(void)
{
	enum
	{
	K = 100
	};
	double	   *x = malloc(sizeof(double) * N * D);
	uint64_t	prio_a[K],
				prio_b[K];
	double		rows_a[K * D],
				rows_b[K * D],
				tmp_a[D],
				tmp_b[D];
	int64_t		slot_of[K];
	MlSample	a = {prio_a, rows_a, sizeof(double) * D, 0, K, tmp_a, NULL};
	MlSample	b = {prio_b, rows_b, sizeof(double) * D, 0, K, tmp_b, slot_of};
	int64_t		i,
				moved = 0;
	int			k,
				same_choice = 1;

	make_rows(x, N);
	shuffle(x, N, 7);
	for (i = 0; i < N; i++)
	{
		uint64_t	p = ml_hash_finish(ml_hash_doubles(ml_hash_start(5), x + i * D, D));
		int64_t		sa = ml_sample_slot(&a, p),
					sb = ml_sample_slot(&b, p);

		if ((sa < 0) != (sb < 0))
			same_choice = 0;
		if (sa >= 0)
		{
			memcpy(rows_a + sa * D, x + i * D, sizeof(double) * D);
			ml_sample_commit(&a, sa, p);
		}
		if (sb >= 0)
		{
			memcpy(rows_b + sb * D, x + i * D, sizeof(double) * D);
			ml_sample_commit(&b, sb, p);
		}
	}
	for (k = 0; k < K; k++)
		moved += slot_of[k] != k;
	ml_sample_heap_order(&b);
	for (k = 0; k < K; k++)
		if (slot_of[k] != k)
			same_choice = 0;
	CHECK(a.kept == K && b.kept == K && same_choice && moved > 0 &&
		  memcmp(prio_a, prio_b, sizeof(prio_a)) == 0 &&
		  memcmp(rows_a, rows_b, sizeof(rows_a)) == 0,
		  "the slot heap in heap order equals the row heap byte for byte (%lld slots moved)",
		  (long long) moved);
	free(x);
}

/* Orders (priority, D doubles) records: priority, then content. */
static int
cmp_prio_rows(const void *a, const void *b)
{
	const uint64_t *x = a,
			   *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return ml_cmp_double_rows((const double *) (x + 1), (const double *) (y + 1), D);
}

/* The kept (priority, row) records of a sample, sorted: n x (1 + D) words. */
static uint64_t *
sorted_records(const uint64_t *prio, const double *rows, int64_t n)
{
	uint64_t   *r = malloc(sizeof(uint64_t) * (1 + D) * (n > 0 ? n : 1));
	int64_t		i;

	for (i = 0; i < n; i++)
	{
		r[i * (1 + D)] = prio[i];
		memcpy(r + i * (1 + D) + 1, rows + i * D, sizeof(double) * D);
	}
	qsort(r, n, sizeof(uint64_t) * (1 + D), cmp_prio_rows);
	return r;
}

/*
 * The buffered sample keeps what the heap keeps: the same priorities and,
 * where equal priorities mean equal rows (content hashes), the same rows;
 * with many rows of one priority (ties at the cut), the same priorities.
 * Buffers from k + 1 to 2k rows; rows offered in another order give the
 * same records. Priorities (prio_kind): content hashes, 37 values in high
 * bits, small values (the cut's histogram at shift 0), or hashes under one
 * long common prefix (one histogram bucket for most of them).
 */
enum
{
	PRIO_HASH, PRIO_37, PRIO_SMALL, PRIO_PREFIX
};

static void
test_sample_buf(int64_t k, int64_t cap, int prio_kind)
{
	bool		ties = prio_kind != PRIO_HASH;
	static const char *const kind_name[] = {"content hashes", "37 priorities", "small priorities",
	"prefixed hashes"};
	double	   *x = malloc(sizeof(double) * N * D),
			   *rows_a = malloc(sizeof(double) * k * D),
			   *rows_b = malloc(sizeof(double) * cap * D);
	uint64_t   *prio_a = malloc(sizeof(uint64_t) * k),
			   *prio_b = malloc(sizeof(uint64_t) * cap),
			   *scratch = malloc(sizeof(uint64_t) * cap),
			   *ra,
			   *rb;
	double		tmp[D];
	MlSample	a = {prio_a, rows_a, sizeof(double) * D, 0, k, tmp, NULL};
	MlSampleBuf b = {prio_b, rows_b, sizeof(double) * D, k, cap, 0, scratch, 0, false};
	int64_t		i,
				offered = 0;
	int			same;

	make_rows(x, N);
	shuffle(x, N, 3);
	for (i = 0; i < N; i++)
	{
		uint64_t	h = ml_hash_finish(ml_hash_doubles(ml_hash_start(5), x + i * D, D)),
					p = prio_kind == PRIO_HASH ? h
			: prio_kind == PRIO_37 ? (uint64_t) (i % 37) << 40
			: prio_kind == PRIO_SMALL ? (uint64_t) (h % 3001)
			: (UINT64_C(0xF0F0F0F0F) << 28) | (h >> 36);
		int64_t		sa = ml_sample_slot(&a, p),
					sb = ml_sample_buf_slot(&b, p);

		if (sa >= 0)
		{
			memcpy(rows_a + sa * D, x + i * D, sizeof(double) * D);
			ml_sample_commit(&a, sa, p);
		}
		if (sb >= 0)
		{
			memcpy(rows_b + sb * D, x + i * D, sizeof(double) * D);
			ml_sample_buf_commit(&b, sb, p);
			offered++;
		}
	}
	ml_sample_buf_reduce(&b);
	ra = sorted_records(prio_a, rows_a, a.kept);
	rb = sorted_records(prio_b, rows_b, b.n);
	same = a.kept == b.n;
	for (i = 0; same && i < a.kept; i++)
		same = ra[i * (1 + D)] == rb[i * (1 + D)] &&
			(ties || memcmp(ra + i * (1 + D), rb + i * (1 + D), sizeof(uint64_t) * (1 + D)) == 0);
	CHECK(same, "buffered sample (k %lld, buffer %lld, %s) keeps the heap's %s (%lld rows appended)",
		  (long long) k, (long long) cap, kind_name[prio_kind],
		  ties ? "priorities" : "rows", (long long) offered);
	free(ra);
	free(rb);
	free(x);
	free(rows_a);
	free(rows_b);
	free(prio_a);
	free(prio_b);
	free(scratch);
}

/* Several arrays permuted in one walk equal each permuted on its own. */
static void
test_permute_arrays(void)
{
	enum
	{
	M = 1000
	};
	int64_t    *order = malloc(sizeof(int64_t) * M);
	uint8_t    *b1 = malloc(M * 5),
			   *b2 = malloc(M * 5);
	double	   *y1 = malloc(sizeof(double) * M),
			   *y2 = malloc(sizeof(double) * M);
	void	   *arrays[3] = {b2, NULL, y2};
	size_t		bytes[3] = {5, 4, sizeof(double)};
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	int64_t		i;
	uint64_t	r = 99;

	for (i = 0; i < M; i++)
	{
		order[i] = i;
		y1[i] = y2[i] = (double) i * 0.5;
		memset(b1 + i * 5, (int) (i & 0xFF), 5);
		b1[i * 5 + 4] = (uint8_t) (i >> 8);
	}
	memcpy(b2, b1, M * 5);
	for (i = M - 1; i > 0; i--)
	{
		int64_t		j,
					t;

		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		j = (int64_t) ((r >> 33) % (uint64_t) (i + 1));
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	CHECK(ml_permute_rows(&env, b1, 5, order, M, &err) == ML_OK &&
		  ml_permute_rows(&env, y1, sizeof(double), order, M, &err) == ML_OK &&
		  ml_permute_arrays(&env, 3, arrays, bytes, order, M, &err) == ML_OK &&
		  memcmp(b1, b2, M * 5) == 0 && memcmp(y1, y2, sizeof(double) * M) == 0 &&
		  y1[0] == (double) order[0] * 0.5,
		  "arrays permuted in one walk equal each permuted alone");
	free(order);
	free(b1);
	free(b2);
	free(y1);
	free(y2);
}

int
main(void)
{
	test_bits();
	test_hash_doubles_chain();
	test_hash_columns();
	test_order_independent(false);
	test_order_independent(true);
	test_placed(false);
	test_placed(true);
	test_cancel();
	test_sorted();
	test_sample();
	test_sample_slots();
	test_sample_buf(100, 125, PRIO_HASH);
	test_sample_buf(100, 101, PRIO_HASH);
	test_sample_buf(1000, 2000, PRIO_HASH);
	test_sample_buf(100, 125, PRIO_37);
	test_sample_buf(N + 10, N + 20, PRIO_HASH);
	test_sample_buf(1000, 1063, PRIO_SMALL);
	test_sample_buf(1000, 1063, PRIO_PREFIX);
	test_sample_buf(100, 106, PRIO_PREFIX);
	test_permute_arrays();
	return mlt_done();
}
