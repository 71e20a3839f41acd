/*
 * test_preprocess.c: unit tests of src/core/preprocess.c: fitting and
 * applying imputation (mean, median, mode, zero, error) and scaling
 * (standard, min-max, robust) of numbers, encoding of categories (one-hot,
 * ordinal, target, native) with NULL and unknown levels, and the PREPROCESS
 * codec round trip (and its rejection of truncated sections). Prints TAP;
 * exits non-zero on failure.
 *
 * The library does not free what a fit allocates piece by piece (the server
 * frees a memory context), so the tests allocate from an arena that is
 * emptied after each test, which keeps AddressSanitizer's leak check quiet.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mltest.h"
#include "mlbuf.h"
#include "preprocess.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

/* The arena: every live allocation, freed together by arena_reset. */
static void **arena;
static size_t arena_n,
			arena_cap;

static void *
arena_alloc(void *ctx, size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (arena_n == arena_cap)
	{
		arena_cap = arena_cap ? arena_cap * 2 : 256;
		arena = realloc(arena, sizeof(void *) * arena_cap);
	}
	arena[arena_n++] = p;
	return p;
}

static void
arena_free(void *ctx, void *p)
{
	size_t		i;

	for (i = arena_n; i-- > 0;)
		if (arena[i] == p)
		{
			arena[i] = arena[--arena_n];
			free(p);
			return;
		}
}

static void
arena_reset(void)
{
	while (arena_n > 0)
		free(arena[--arena_n]);
}

static MlEnv
arena_env(void)
{
	MlEnv		env = mlt_env(1);

	env.alloc = arena_alloc;
	env.free = arena_free;
	return env;
}

/* One numeric column x fitted with a spec; is_train may be NULL. */
static MlStatus
fit_numbers(const double *x, int64_t n, const uint8_t *is_train, int impute, int scale,
			MlPrep *p, MlError *err)
{
	MlEnv		env = arena_env();
	const char *names[] = {"x"};
	const bool	categorical[] = {false};
	PpSpec		spec = {impute, scale, -1};
	PpFitData	d = {0};
	uint32_t  **code_level;

	d.n = n;
	d.n_in = 1;
	d.X = x;
	d.is_train = is_train;
	d.names = names;
	d.categorical = categorical;
	return prep_fit(&env, &d, &spec, p, &code_level, err);
}

/* Transforms one number through a one-column prep. */
static double
apply_number(const MlPrep *p, double v)
{
	MlError		err = {0};
	double		out = -999;

	if (prep_transform_row(p, &v, NULL, &out, &err) != ML_OK)
		return -999;
	return out;
}

static void
test_impute_scale(void)
{
	const double x[] = {1, 2, 3, 4, NAN};
	const double skew[] = {1, 2, 10, NAN};
	const double modal[] = {3, 1, 3, 1, 2};
	const double five[] = {1, 2, 3, 4, 5};
	const double constant[] = {7, 7, 7};
	MlPrep		p;
	MlError		err = {0};
	double		sd = sqrt(1.25);

	CHECK(fit_numbers(x, 5, NULL, PP_IMPUTE_MEAN, PP_SCALE_STANDARD, &p, &err) == ML_OK,
		  "fit mean imputation and standard scaling");
	CHECK(p.n_in == 1 && p.n_out == 1 && NEAR(p.cols[0].fill, 2.5), "mean fill 2.5 (%g)", p.cols[0].fill);
	CHECK(NEAR(p.cols[0].center, 2.5) && NEAR(p.cols[0].scale_by, sd),
		  "standard: centre 2.5, population std sqrt(1.25) (%g, %g)", p.cols[0].center, p.cols[0].scale_by);
	CHECK(NEAR(apply_number(&p, 4), 1.5 / sd), "4 becomes 1.5 / std");
	CHECK(NEAR(apply_number(&p, NAN), 0), "NaN is imputed with the mean, then scaled: 0");
	arena_reset();

	CHECK(fit_numbers(skew, 4, NULL, PP_IMPUTE_MEDIAN, PP_SCALE_MINMAX, &p, &err) == ML_OK &&
		  NEAR(p.cols[0].fill, 2) && NEAR(p.cols[0].center, 1) && NEAR(p.cols[0].scale_by, 9),
		  "median fill 2, min-max centre 1 and range 9");
	CHECK(NEAR(apply_number(&p, 10), 1) && NEAR(apply_number(&p, NAN), 1.0 / 9),
		  "10 becomes 1, NaN becomes (2 - 1) / 9");
	arena_reset();

	CHECK(fit_numbers(modal, 5, NULL, PP_IMPUTE_MODE, PP_SCALE_ROBUST, &p, &err) == ML_OK &&
		  NEAR(p.cols[0].fill, 1), "mode fill: 1 and 3 tie, the smallest wins (%g)", p.cols[0].fill);
	arena_reset();
	CHECK(fit_numbers(five, 5, NULL, PP_IMPUTE_ZERO, PP_SCALE_ROBUST, &p, &err) == ML_OK &&
		  NEAR(p.cols[0].center, 3) && NEAR(p.cols[0].scale_by, 2) && NEAR(p.cols[0].fill, 0),
		  "robust: median 3, IQR 4 - 2 = 2; zero fill");
	CHECK(NEAR(apply_number(&p, NAN), -1.5), "NaN becomes (0 - 3) / 2");
	arena_reset();

	CHECK(fit_numbers(constant, 3, NULL, PP_IMPUTE_NONE, PP_SCALE_STANDARD, &p, &err) == ML_OK &&
		  p.cols[0].scale_by == 1 && NEAR(apply_number(&p, 8), 1), "a constant column scales by 1, not 0");
	CHECK(isnan(apply_number(&p, NAN)), "impute none: NaN stays NaN");
	arena_reset();

	{
		/* rows 3 and 4 are test rows: only 1, 2, 3 are fitted */
		const uint8_t train[] = {1, 1, 1, 0, 0};
		const double with_outlier[] = {1, 2, 3, 1000, NAN};

		CHECK(fit_numbers(with_outlier, 5, train, PP_IMPUTE_MEAN, PP_SCALE_MINMAX, &p, &err) == ML_OK &&
			  NEAR(p.cols[0].fill, 2) && NEAR(p.cols[0].scale_by, 2),
			  "only training rows are fitted (fill 2, range 2; the test row 1000 ignored)");
		arena_reset();
	}
}

static void
test_impute_error(void)
{
	const double x[] = {1, NAN, 3};
	const double clean[] = {1, 2, 3};
	const double inf[] = {1, INFINITY, 3};
	const uint8_t train[] = {1, 0, 1};
	MlPrep		p;
	MlError		err = {0};
	double		v = NAN,
				out;

	CHECK(fit_numbers(x, 3, NULL, PP_IMPUTE_ERROR, PP_SCALE_NONE, &p, &err) == ML_ERR_DATA &&
		  strstr(err.msg, "\"x\"") != NULL, "impute = error and a NaN training row: ML_ERR_DATA naming x (%s)",
		  err.msg);
	arena_reset();
	memset(&err, 0, sizeof(err));
	CHECK(fit_numbers(x, 3, train, PP_IMPUTE_ERROR, PP_SCALE_NONE, &p, &err) == ML_OK,
		  "impute = error: a NaN in a test row does not stop the fit");
	arena_reset();
	memset(&err, 0, sizeof(err));
	CHECK(fit_numbers(clean, 3, NULL, PP_IMPUTE_ERROR, PP_SCALE_NONE, &p, &err) == ML_OK &&
		  prep_transform_row(&p, &v, NULL, &out, &err) == ML_ERR_DATA,
		  "impute = error: scoring a NaN is ML_ERR_DATA (%s)", err.msg);
	arena_reset();
	memset(&err, 0, sizeof(err));
	CHECK(fit_numbers(inf, 3, NULL, PP_IMPUTE_MEAN, PP_SCALE_NONE, &p, &err) == ML_ERR_DATA,
		  "an infinite training value is ML_ERR_DATA (%s)", err.msg);
	arena_reset();
}

/*
 * One categorical column c over the dictionary {"b", "a", NULL, "c"} (codes
 * 0..3); rows give codes. y_class / y_value may be NULL (unsupervised).
 */
static char *dict_texts[] = {"b", "a", NULL, "c"};

static MlStatus
fit_category(const double *codes, int64_t n, int encode, int impute, const int32_t *y_class,
			 uint32_t n_classes, const double *y_value, MlPrep *p, uint32_t ***code_level,
			 MlError *err)
{
	MlEnv		env = arena_env();
	static char **const dicts[] = {dict_texts};
	static const uint32_t dict_n[] = {4};
	const char *names[] = {"c"};
	const bool	categorical[] = {true};
	PpSpec		spec = {impute, -1, encode};
	PpFitData	d = {0};

	d.n = n;
	d.n_in = 1;
	d.X = codes;
	d.dict = dicts;
	d.dict_n = dict_n;
	d.names = names;
	d.categorical = categorical;
	d.y_class = y_class;
	d.n_classes = n_classes;
	d.y_value = y_value;
	return prep_fit(&env, &d, &spec, p, code_level, err);
}

/* The outputs of one text (NULL for SQL NULL) through a one-column prep. */
static bool
apply_text(const MlPrep *p, const char *s, double *out)
{
	MlError		err = {0};
	double		raw = 0;
	const char *strs[] = {s};

	return prep_transform_row(p, &raw, strs, out, &err) == ML_OK;
}

static void
test_onehot(void)
{
	/* b, a, b, NULL: levels a, b, NULL; "c" is in the dictionary but unseen */
	const double codes[] = {0, 1, 0, 2};
	MlPrep		p;
	MlError		err = {0};
	uint32_t  **cl;
	double		o[3];
	MlEnv		env = arena_env();
	char	   *name;

	CHECK(fit_category(codes, 4, -1, -1, NULL, 0, NULL, &p, &cl, &err) == ML_OK,
		  "unsupervised default encoding fits");
	CHECK(p.cols[0].encode == PP_ENCODE_ONEHOT && p.n_out == 3 && p.cols[0].n_cats == 2 &&
		  p.cols[0].has_null && strcmp(p.cols[0].cats[0], "a") == 0 && strcmp(p.cols[0].cats[1], "b") == 0,
		  "one-hot over a, b (sorted) and NULL: 3 outputs");
	CHECK(apply_text(&p, "a", o) && o[0] == 1 && o[1] == 0 && o[2] == 0, "a is (1, 0, 0)");
	CHECK(apply_text(&p, "b", o) && o[0] == 0 && o[1] == 1 && o[2] == 0, "b is (0, 1, 0)");
	CHECK(apply_text(&p, NULL, o) && o[0] == 0 && o[1] == 0 && o[2] == 1, "NULL is its own level (0, 0, 1)");
	CHECK(apply_text(&p, "zzz", o) && o[0] == 0 && o[1] == 0 && o[2] == 0, "an unknown text is all zeros");
	CHECK(apply_text(&p, "c", o) && o[0] == 0 && o[1] == 0 && o[2] == 0,
		  "a dictionary text no training row had is unknown too");
	CHECK(cl[0][0] == 1 && cl[0][1] == 0 && cl[0][2] == 2 && cl[0][3] == 3,
		  "code to level map: b -> 1, a -> 0, NULL -> 2, unseen c -> 3 (unknown)");
	name = prep_output_name(&env, &p.cols[0], 1);
	CHECK(name && strcmp(name, "c=b") == 0, "output 1 is named c=b (%s)", name ? name : "NULL");
	name = prep_output_name(&env, &p.cols[0], 2);
	CHECK(name && strcmp(name, "c IS NULL") == 0, "output 2 is named c IS NULL (%s)", name ? name : "NULL");
	{
		double		lv = 0,
					row[3];

		CHECK(prep_transform_levels(&p, &lv, row, &err) == ML_OK && row[0] == 1 && row[1] == 0,
			  "prep_transform_levels: level 0 is a");
	}
	arena_reset();
}

static void
test_ordinal_and_mode(void)
{
	/* b, a, b, b, NULL */
	const double codes[] = {0, 1, 0, 0, 2};
	const double no_null[] = {0, 1, 0};
	MlPrep		p;
	MlError		err = {0};
	uint32_t  **cl;
	double		o;

	CHECK(fit_category(no_null, 3, PP_ENCODE_ORDINAL, -1, NULL, 0, NULL, &p, &cl, &err) == ML_OK &&
		  p.n_out == 1 && !p.cols[0].has_null, "ordinal without NULL in training");
	CHECK(apply_text(&p, "a", &o) && o == 0 && apply_text(&p, "b", &o) && o == 1,
		  "ordinal codes in text order: a 0, b 1");
	CHECK(apply_text(&p, "zzz", &o) && o == 2 && apply_text(&p, NULL, &o) && o == 2,
		  "unknown text and an unseen NULL both get the code levels = 2");
	arena_reset();

	CHECK(fit_category(codes, 5, PP_ENCODE_ORDINAL, PP_IMPUTE_MODE, NULL, 0, NULL, &p, &cl, &err) == ML_OK &&
		  !p.cols[0].has_null && p.cols[0].null_to == 1, "impute = mode: NULL maps to the most frequent level b");
	CHECK(apply_text(&p, NULL, &o) && o == 1, "NULL is scored as b (1)");
	arena_reset();

	CHECK(fit_category(codes, 5, PP_ENCODE_ORDINAL, PP_IMPUTE_ERROR, NULL, 0, NULL, &p, &cl, &err) == ML_ERR_DATA,
		  "impute = error and a NULL training row: ML_ERR_DATA (%s)", err.msg);
	arena_reset();
	memset(&err, 0, sizeof(err));
	CHECK(fit_category(codes, 5, PP_ENCODE_ORDINAL, PP_IMPUTE_MEAN, NULL, 0, NULL, &p, &cl, &err) == ML_ERR_PARAM,
		  "impute = mean on a text column: ML_ERR_PARAM (%s)", err.msg);
	arena_reset();
	memset(&err, 0, sizeof(err));
	CHECK(fit_category(codes, 5, PP_ENCODE_TARGET, -1, NULL, 0, NULL, &p, &cl, &err) == ML_ERR_PARAM,
		  "target encoding without a target: ML_ERR_PARAM (%s)", err.msg);
	arena_reset();
}

static void
test_target_and_native(void)
{
	/* b, a, a, a, c: binary target 0, 1, 1, 0, 1 */
	const double codes[] = {0, 1, 1, 1, 3};
	const int32_t y[] = {0, 1, 1, 0, 1};
	const double value[] = {2, 10, 10, 10, 5};
	const int32_t y3[] = {0, 1, 2, 2, 1};
	MlPrep		p;
	MlError		err = {0};
	uint32_t  **cl;
	double		o[3],
				prior = 3.0 / 5,
				m = PP_TARGET_SMOOTHING;

	CHECK(fit_category(codes, 5, PP_ENCODE_TARGET, -1, y, 2, NULL, &p, &cl, &err) == ML_OK &&
		  p.n_out == 1, "binary target encoding: one output");
	CHECK(apply_text(&p, "a", o) && NEAR(o[0], (2 + m * prior) / (3 + m)),
		  "a: (2 positives + m * prior) / (3 rows + m) (%.12g)", o[0]);
	CHECK(apply_text(&p, "b", o) && NEAR(o[0], (0 + m * prior) / (1 + m)), "b: (0 + m * prior) / (1 + m)");
	CHECK(apply_text(&p, "zzz", o) && NEAR(o[0], prior), "unknown: the prior 3/5");
	arena_reset();

	CHECK(fit_category(codes, 5, PP_ENCODE_TARGET, -1, y3, 3, NULL, &p, &cl, &err) == ML_OK &&
		  p.n_out == 3, "3-class target encoding: one output per class");
	CHECK(apply_text(&p, "c", o) && NEAR(o[0], (0 + m * 0.2) / (1 + m)) &&
		  NEAR(o[1], (1 + m * 0.4) / (1 + m)) && NEAR(o[2], (0 + m * 0.4) / (1 + m)),
		  "c (one row, class 1): smoothed class shares");
	arena_reset();

	CHECK(fit_category(codes, 5, -1, -1, NULL, 0, value, &p, &cl, &err) == ML_OK &&
		  p.cols[0].encode == PP_ENCODE_NATIVE, "supervised default encoding is native");
	/* target means: a 10, b 2, c 5 -> ranks b 0, c 1, a 2 */
	CHECK(apply_text(&p, "b", o) && o[0] == 0 && apply_text(&p, "c", o) && o[0] == 1 &&
		  apply_text(&p, "a", o) && o[0] == 2, "native codes rank the levels by target mean: b, c, a");
	CHECK(apply_text(&p, "zzz", o) && o[0] == 3, "unknown: code 3");
	arena_reset();
}

/* A three-column prep (number, one-hot, target) written and read back. */
static void
test_codec(void)
{
	MlEnv		env = arena_env();
	const int64_t n = 6;
	/* columns: x (number), c (categorical, dict 0..3), d (categorical) */
	const double X[] = {
		1.5, 0, 1,
		NAN, 1, 0,
		3.0, 2, 1,
		4.0, 0, 3,
		2.0, 1, 0,
		8.0, 3, 1
	};
	char	  **const dicts[] = {NULL, dict_texts, dict_texts};
	const uint32_t dict_n[] = {0, 4, 4};
	const char *names[] = {"x", "c", "d"};
	const bool	categorical[] = {false, true, true};
	const int32_t y[] = {0, 1, 1, 0, 1, 0};
	PpSpec		spec[] = {{PP_IMPUTE_MEDIAN, PP_SCALE_STANDARD, -1}, {-1, -1, PP_ENCODE_ONEHOT},
	{-1, -1, PP_ENCODE_TARGET}};
	PpFitData	d = {0};
	MlPrep		p,
				q;
	MlError		err = {0};
	MlBuf		b;
	MlReader	r;
	uint32_t  **cl;
	uint32_t	i;
	size_t		len;
	int			bad = 0,
				accepted = 0;
	const char *rows[][2] = {{"a", "b"}, {NULL, "zzz"}, {"c", NULL}, {"b", "a"}};
	const double nums[] = {2.0, NAN, -1.0, 100.0};

	d.n = n;
	d.n_in = 3;
	d.X = X;
	d.dict = dicts;
	d.dict_n = dict_n;
	d.names = names;
	d.categorical = categorical;
	d.y_class = y;
	d.n_classes = 2;
	CHECK(prep_fit(&env, &d, spec, &p, &cl, &err) == ML_OK, "fit x, c and d (%s)", err.msg);
	CHECK(p.n_out == 1 + 4 + 1 && p.cols[1].offset == 1 && p.cols[2].offset == 5,
		  "layout: x at 0, c one-hot (a, b, c, NULL) at 1..4, d at 5 (n_out %u)", p.n_out);

	ml_buf_init(&b, &env);
	prep_write(&b, &p);
	CHECK(!b.failed && b.len > 0, "written: %zu bytes", b.len);
	ml_rd_init(&r, b.data, b.len, &env, &err);
	CHECK(prep_read(&r, &q), "read back (%s)", err.msg);
	CHECK(q.n_in == 3 && q.n_out == p.n_out && strcmp(q.in_names[2], "d") == 0 && q.in_categorical[1] &&
		  !q.in_categorical[0], "same columns, names, kinds and width");
	for (i = 0; i < 3; i++)
	{
		PpColumn   *a = &p.cols[i],
				   *c = &q.cols[i];
		uint32_t	k;

		if (a->impute != c->impute || a->encode != c->encode || a->scale != c->scale ||
			a->fill != c->fill || a->center != c->center || a->scale_by != c->scale_by ||
			a->n_cats != c->n_cats || a->has_null != c->has_null || a->null_to != c->null_to ||
			a->width != c->width || a->offset != c->offset)
			bad++;
		for (k = 0; k < a->n_cats && k < c->n_cats; k++)
			bad += strcmp(a->cats[k], c->cats[k]) != 0;
		if (a->table && (!c->table ||
						 memcmp(a->table, c->table, sizeof(double) * (prep_levels(a) + 1) * a->width)))
			bad++;
	}
	CHECK(bad == 0, "every fitted field survives the round trip (%d differ)", bad);
	for (i = 0; i < 4; i++)
	{
		double		o1[6],
					o2[6];
		const char *strs[] = {NULL, rows[i][0], rows[i][1]};
		double		raw[] = {nums[i], 0, 0};

		if (prep_transform_row(&p, raw, strs, o1, &err) != ML_OK ||
			prep_transform_row(&q, raw, strs, o2, &err) != ML_OK ||
			memcmp(o1, o2, sizeof(o1)) != 0)
			bad++;
	}
	CHECK(bad == 0, "the read prep transforms rows (unknown and NULL texts, NaN) exactly as the fitted one");

	/* every truncation is rejected, never read past the end */
	len = b.len;
	for (i = 0; i < len; i++)
	{
		MlError		e = {0};
		MlPrep		t;

		ml_rd_init(&r, b.data, i, &env, &e);
		if (prep_read(&r, &t))
			accepted++;
		else if (e.code == ML_OK)
			bad++;
	}
	CHECK(accepted == 0 && bad == 0, "all %zu truncations rejected with an error (%d accepted)", len, accepted);
	{
		MlError		e = {0};
		MlPrep		t;
		uint8_t    *copy = malloc(len + 1);

		memcpy(copy, b.data, len);
		copy[len] = 0;
		ml_rd_init(&r, copy, len + 1, &env, &e);
		CHECK(!prep_read(&r, &t) && e.code == ML_ERR_CORRUPT, "a trailing byte is corrupt (%s)", e.msg);
		free(copy);
	}
	arena_reset();
}

int
main(void)
{
	test_impute_scale();
	test_impute_error();
	test_onehot();
	test_ordinal_and_mode();
	test_target_and_native();
	test_codec();
	free(arena);
	return mlt_done();
}
