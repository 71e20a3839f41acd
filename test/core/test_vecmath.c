/*
 * test_vecmath.c: vecmath.c's exp and log against libm, bit for bit, on
 * tens of millions of inputs over the ranges gbt's gradient pass and
 * losses use (exp of margins in [-50, 50], log of p in [1e-15, 1] dense
 * near 1) and on random bit patterns (every special lane); then gbt's
 * gradient pass and loss sums with the vector kernels against the same
 * with vecmath_simd_max lowered to libm's loop (gh pairs, chunk loss sums
 * and the loss pass identical).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "mltest.h"
#include "trees_int.h"
#include "vecmath.h"

#define BLOCK 4099				/* not a multiple of 4: the scalar tail runs */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: the test's deterministic random bits. */
static uint64_t
next_u64(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

/* A uniform double in [0, 1). */
static double
next_unit(void)
{
	return (double) (next_u64() >> 11) * 0x1p-53;
}

/* A double of random bits (any sign, exponent, NaN payload). */
static double
next_bits(void)
{
	uint64_t	u = next_u64();
	double		d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

/* Same bits, NaNs of the same payload included. */
static bool
same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

/*
 * Runs f (vm_exp or vm_log) on blocks of n inputs drawn by gen against ref
 * (libm), counting the inputs whose bits differ; prints the first.
 */
static long
compare(void (*f) (const double *, double *, size_t), double (*ref) (double),
		double (*gen) (long), long n)
{
	static double x[BLOCK],
				y[BLOCK];
	long		bad = 0,
				k = 0;
	int			i,
				m;

	while (k < n)
	{
		m = n - k < BLOCK ? (int) (n - k) : BLOCK;
		for (i = 0; i < m; i++)
			x[i] = gen(k + i);
		f(x, y, (size_t) m);
		for (i = 0; i < m; i++)
			if (!same_bits(y[i], ref(x[i])))
			{
				if (bad++ == 0)
					printf("# first difference: f(%a) = %a, libm %a\n", x[i], y[i], ref(x[i]));
			}
		k += m;
	}
	return bad;
}

/* Margins as the pass sees them: -(double) of a float in [-50, 50]. */
static double
gen_margin(long k)
{
	return -(double) (float) (100.0 * next_unit() - 50.0);
}

/* Doubles in [-50, 50] (not only floats). */
static double
gen_wide(long k)
{
	return 100.0 * next_unit() - 50.0;
}

/* p log-uniform in [1e-15, 1]. */
static double
gen_p(long k)
{
	return pow(10.0, -15.0 * next_unit());
}

/* p in the near-1 band and its edges: 1 - u 2^-3, u in [0, 1), and up to 1 + 2^-4. */
static double
gen_near1(long k)
{
	return k & 3 ? 1.0 - 0x1p-3 * next_unit() : 1.0 + 0x1p-4 * next_unit();
}

/* p as the pass makes it: 1/(1+exp(-m)) and its complement for a float margin. */
static double
gen_sigmoid(long k)
{
	double		p = 1.0 / (1.0 + exp(-(double) (float) (60.0 * next_unit() - 30.0)));

	p = k & 1 ? p : 1.0 - p;
	return p < 1e-15 ? 1e-15 : p;
}

/* Random bit patterns (any double). */
static double
gen_bits(long k)
{
	return next_bits();
}

/* Positive random bit patterns (log's main path, subnormals, inf, NaN). */
static double
gen_pos_bits(long k)
{
	return fabs(next_bits());
}

#define PASS_N 70001			/* > 4 loss chunks, not a multiple of a block */

/* The outputs of one gradient pass and the loss passes over it. */
typedef struct PassOut
{
	float	   *gh;
	double		part[8];
	double		valid;
	double		train;
} PassOut;

/*
 * The gradient pass (with the loss trace), the validation loss and the
 * loss pass of objective obj over generated margins, at simd level lv.
 */
static void
run_pass(TreeObjective obj, int lv, const TreeData *data, const float *margin,
		 const uint32_t *rows, uint32_t n_rows, const double *cw, PassOut *o)
{
	GbtGrad		a;
	MlEnv		env = mlt_env(1);
	double		part2[8];

	vecmath_simd_max = lv;
	memset(&a, 0, sizeof(a));
	a.data = data;
	a.obj = obj;
	a.K = 1;
	a.rows = rows;
	a.n_rows = n_rows;
	a.margin = margin;
	a.gh = o->gh;
	a.cw = cw;
	a.loss_part = o->part;
	memset(o->part, 0, sizeof(o->part));
	gbt_grad_run(&env, 2, &a);
	o->valid = gbt_valid_loss(data, obj, 1, margin, rows, n_rows / 3);
	o->train = gbt_train_loss_of(&env, 1, data, obj, 1, margin, rows, n_rows, part2);
	vecmath_simd_max = VECMATH_SIMD_AVX2;
}

/*
 * gbt's binary-logistic and squared-error passes with vecmath's lanes
 * against libm's loop: every gh pair, chunk loss sum and loss the same bits,
 * over margins in [-40, 40] (some exactly 0, some large), weighted classes,
 * all rows and a scattered row subset.
 */
static void
check_passes(void)
{
	static float margin[PASS_N],
				gh0[2 * PASS_N],
				gh1[2 * PASS_N];
	static int32_t yc[PASS_N];
	static double yr[PASS_N];
	static uint32_t rows[PASS_N];
	double		cw[2] = {0.7, 2.5};
	TreeData	data;
	PassOut		o0 = {gh0},
				o1 = {gh1};
	uint32_t	i,
				nr = 0;
	int			obj,
				sub,
				w;

	for (i = 0; i < PASS_N; i++)
	{
		margin[i] = i % 97 == 0 ? 0.0f : i % 89 == 0 ? 700.0f * (i & 1 ? 1 : -1) :
			(float) (80.0 * next_unit() - 40.0);
		yc[i] = next_unit() < 0.5;
		yr[i] = 10.0 * next_unit() - 5.0;
		if (i % 3 != 1)
			rows[nr++] = i;
	}
	memset(&data, 0, sizeof(data));
	data.n = PASS_N;
	data.y_class = yc;
	data.n_classes = 2;
	data.y = yr;
	for (obj = 0; obj < 2; obj++)
		for (sub = 0; sub < 2; sub++)
			for (w = 0; w < 2; w++)
			{
				TreeObjective ob = obj ? TREE_OBJ_REG_SQUAREDERROR : TREE_OBJ_BINARY_LOGISTIC;

				memset(gh0, 0, sizeof(gh0));
				memset(gh1, 0, sizeof(gh1));
				run_pass(ob, VECMATH_SIMD_NONE, &data, margin, sub ? rows : NULL,
						 sub ? nr : PASS_N, w ? cw : NULL, &o0);
				run_pass(ob, VECMATH_SIMD_AVX2, &data, margin, sub ? rows : NULL,
						 sub ? nr : PASS_N, w ? cw : NULL, &o1);
				CHECK(memcmp(gh0, gh1, sizeof(gh0)) == 0 &&
					  memcmp(o0.part, o1.part, sizeof(o0.part)) == 0 &&
					  same_bits(o0.valid, o1.valid) && same_bits(o0.train, o1.train),
					  "%s pass%s%s: gh pairs, chunk sums, losses identical vector/libm (%.17g)",
					  obj ? "squared-error" : "logistic", sub ? " on a row subset" : "",
					  w ? " with class weights" : "", o1.train);
			}
}

int
main(void)
{
	long		bad;
	int			level;

	errno = 0;
	level = vm_simd_level();	/* the first call runs the self-check */
	CHECK(errno == 0, "the self-check leaves errno alone");
	printf("# vector level %d (0 none, 1 avx2)\n", level);
#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 28)
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		CHECK(vm_simd_level() == VECMATH_SIMD_AVX2,
			  "AVX2 + FMA CPU, glibc 2.28+: the self-check passed, the lanes run");
#endif
	bad = compare(vm_exp, exp, gen_margin, 10000000);
	CHECK(bad == 0, "exp of 10M float margins in [-50, 50]: %ld differ from libm", bad);
	bad = compare(vm_exp, exp, gen_wide, 4000000);
	CHECK(bad == 0, "exp of 4M doubles in [-50, 50]: %ld differ", bad);
	bad = compare(vm_exp, exp, gen_bits, 4000000);
	CHECK(bad == 0, "exp of 4M random doubles: %ld differ", bad);
	bad = compare(vm_log, log, gen_p, 8000000);
	CHECK(bad == 0, "log of 8M p in [1e-15, 1]: %ld differ from libm", bad);
	bad = compare(vm_log, log, gen_near1, 8000000);
	CHECK(bad == 0, "log of 8M p near 1: %ld differ", bad);
	bad = compare(vm_log, log, gen_sigmoid, 4000000);
	CHECK(bad == 0, "log of 4M sigmoid p: %ld differ", bad);
	bad = compare(vm_log, log, gen_pos_bits, 2000000) + compare(vm_log, log, gen_bits, 1000000);
	CHECK(bad == 0, "log of 3M random doubles: %ld differ", bad);
	check_passes();
	return mlt_done();
}
