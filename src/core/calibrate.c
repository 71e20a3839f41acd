/*
 * calibrate.c: Platt and isotonic calibration of binary scores
 * (scikit-learn's _sigmoid_calibration and IsotonicRegression).
 */
#include "calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* -(t log p + (1 - t) log(1 - p)) with p = 1 / (1 + exp(z)), without overflow. */
static double
platt_loss(double t, double z)
{
	return z >= 0 ? t * z + log1p(exp(-z)) : (t - 1) * z + log1p(exp(z));
}

/* 1 / (1 + exp(z)), without overflow. */
static double
platt_p(double z)
{
	return z >= 0 ? exp(-z) / (1 + exp(-z)) : 1 / (1 + exp(z));
}

/* The objective of (a, b) over the rows, with Platt's smoothed targets. */
static double
platt_objective(const uint8_t *truth, const double *score, int64_t n, double t1, double t0,
				double a, double b)
{
	double		f = 0;
	int64_t		i;

	for (i = 0; i < n; i++)
		f += platt_loss(truth[i] ? t1 : t0, a * score[i] + b);
	return f;
}

/* Newton's method with a backtracking line search from scikit-learn's start. */
MlStatus
calib_fit_platt(const MlEnv *env, const uint8_t *truth, const double *score, int64_t n,
				double *a, double *b, MlError *err)
{
	double		prior1 = 0,
				prior0,
				t1,
				t0,
				f;
	int64_t		i;
	int			it;

	(void) env;
	if (n <= 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to calibrate on");
	for (i = 0; i < n; i++)
		prior1 += truth[i] ? 1 : 0;
	prior0 = (double) n - prior1;
	t1 = (prior1 + 1) / (prior1 + 2);
	t0 = 1 / (prior0 + 2);
	*a = 0;
	*b = log((prior0 + 1) / (prior1 + 1));
	f = platt_objective(truth, score, n, t1, t0, *a, *b);
	for (it = 0; it < 200; it++)
	{
		double		ga = 0,
					gb = 0,
					haa = 1e-12,
					hab = 0,
					hbb = 1e-12,
					det,
					da,
					db,
					step = 1;

		for (i = 0; i < n; i++)
		{
			double		p = platt_p(*a * score[i] + *b),
						g = (truth[i] ? t1 : t0) - p,
						h = p * (1 - p);

			ga += g * score[i];
			gb += g;
			haa += h * score[i] * score[i];
			hab += h * score[i];
			hbb += h;
		}
		if (fabs(ga) + fabs(gb) < 1e-13 * (double) n)
			break;
		det = haa * hbb - hab * hab;
		if (!(det > 0))
			break;
		da = -(hbb * ga - hab * gb) / det;
		db = -(haa * gb - hab * ga) / det;
		/* halve the step until the objective does not rise */
		while (step > 1e-10)
		{
			double		fn = platt_objective(truth, score, n, t1, t0, *a + step * da, *b + step * db);

			if (fn <= f)
			{
				*a += step * da;
				*b += step * db;
				f = fn;
				break;
			}
			step /= 2;
		}
		if (step <= 1e-10 || (fabs(step * da) < 1e-15 * (1 + fabs(*a)) && fabs(step * db) < 1e-15 * (1 + fabs(*b))))
			break;
	}
	if (!isfinite(*a) || !isfinite(*b))
		return ml_fail(err, ML_ERR_DATA, "the Platt calibration did not converge");
	return ML_OK;
}

typedef struct CalRow
{
	double		score;
	uint8_t		pos;
} CalRow;

/* Orders by score, then truth (numpy's lexsort((y, X))). */
static int
cmp_cal(const void *a, const void *b)
{
	const CalRow *x = a,
			   *y = b;

	if (x->score != y->score)
		return (x->score > y->score) - (x->score < y->score);
	return (int) x->pos - (int) y->pos;
}

/* scikit-learn's in-place PAVA (weighted, non-decreasing) over y[n]. */
static void
pava(double *y, double *w, int64_t *target, int64_t n)
{
	int64_t		i = 0,
				k;

	for (i = 0; i < n; i++)
		target[i] = i;
	i = 0;
	while (i < n)
	{
		double		sum_wy,
					sum_w;

		k = target[i] + 1;
		if (k == n)
			break;
		if (y[i] < y[k])
		{
			i = k;
			continue;
		}
		sum_wy = w[i] * y[i];
		sum_w = w[i];
		for (;;)
		{
			/* within a decreasing run: pool it */
			double		prev_y = y[k];

			sum_wy += w[k] * y[k];
			sum_w += w[k];
			k = target[k] + 1;
			if (k == n || prev_y < y[k])
			{
				y[i] = sum_wy / sum_w;
				w[i] = sum_w;
				target[i] = k - 1;
				target[k - 1] = i;
				if (i > 0)
					i = target[i - 1];	/* backtrack */
				break;
			}
		}
	}
	for (i = 0; i < n; i = k)
	{
		int64_t		j;

		k = target[i] + 1;
		for (j = i + 1; j < k; j++)
			y[j] = y[i];
	}
}

/* Sorted, merged (within 1e-15), pooled, trimmed: the isotonic knots. */
MlStatus
calib_fit_isotonic(const MlEnv *env, const uint8_t *truth, const double *score, int64_t n,
				   MlDecision *d, MlError *err)
{
	CalRow	   *rows;
	double	   *x,
			   *y,
			   *w;
	int64_t    *target;
	int64_t		i,
				u = 0,
				kept = 0;

	if (n <= 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to calibrate on");
	rows = ml_alloc(env, sizeof(CalRow) * (size_t) n);
	x = ml_alloc(env, sizeof(double) * (size_t) n);
	y = ml_alloc(env, sizeof(double) * (size_t) n);
	w = ml_alloc(env, sizeof(double) * (size_t) n);
	target = ml_alloc(env, sizeof(int64_t) * (size_t) n);
	if (!rows || !x || !y || !w || !target)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting an isotonic calibration");
	for (i = 0; i < n; i++)
	{
		rows[i].score = score[i];
		rows[i].pos = truth[i] ? 1 : 0;
	}
	qsort(rows, (size_t) n, sizeof(CalRow), cmp_cal);
	/* _make_unique: a new knot when the score is at least 1e-15 above the group's first */
	x[0] = rows[0].score;
	y[0] = 0;
	w[0] = 0;
	for (i = 0; i < n; i++)
	{
		if (rows[i].score - x[u] >= 1e-15)
		{
			y[u] /= w[u];
			u++;
			x[u] = rows[i].score;
			y[u] = 0;
			w[u] = 0;
		}
		y[u] += rows[i].pos;
		w[u] += 1;
	}
	y[u] /= w[u];
	u++;
	pava(y, w, target, u);
	/* keep the ends and every knot whose y differs from a neighbour's */
	for (i = 0; i < u; i++)
		if (i == 0 || i == u - 1 || y[i] != y[i - 1] || y[i] != y[i + 1])
		{
			x[kept] = x[i];
			y[kept] = y[i];
			kept++;
		}
	ml_free(env, rows);
	ml_free(env, w);
	ml_free(env, target);
	d->method = CAL_ISOTONIC;
	d->n_knots = (uint32_t) kept;
	d->knot_x = x;
	d->knot_y = y;
	return ML_OK;
}
