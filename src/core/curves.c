/*
 * curves.c: threshold curves of a binary scorer (scikit-learn's
 * _binary_clf_curve, roc_curve, precision_recall_curve,
 * average_precision_score) and the threshold that maximises a metric.
 */
#include "curves.h"
#include "score_sort.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The n rows as (score, positive), highest score first; NULL when out of memory. */
static ScoreRow *
sorted_rows(const MlEnv *env, const uint8_t *truth, const double *score, int64_t n)
{
	ScoreRow   *rows = ml_alloc(env, sizeof(ScoreRow) * (size_t) n);
	int64_t		i;

	if (!rows)
		return NULL;
	for (i = 0; i < n; i++)
	{
		rows[i].score = score[i];
		rows[i].pos = truth[i] ? 1 : 0;
	}
	score_rows_sort(env, rows, n, true);
	return rows;
}

/* Counts at every distinct score, highest first. */
MlStatus
curve_binary(const MlEnv *env, const uint8_t *truth, const double *score, int64_t n,
			 BinaryCurve *out, MlError *err)
{
	ScoreRow   *rows;
	int64_t		i,
				tp = 0,
				fp = 0;

	memset(out, 0, sizeof(*out));
	if (n <= 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to build a curve from");
	rows = sorted_rows(env, truth, score, n);
	out->threshold = ml_alloc(env, sizeof(double) * (size_t) n);
	out->tps = ml_alloc(env, sizeof(int64_t) * (size_t) n);
	out->fps = ml_alloc(env, sizeof(int64_t) * (size_t) n);
	if (!rows || !out->threshold || !out->tps || !out->fps)
	{
		ml_free(env, rows);
		curve_free(env, out);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory building a curve of %lld rows",
					   (long long) n);
	}
	for (i = 0; i < n; i++)
	{
		tp += rows[i].pos;
		fp += 1 - rows[i].pos;
		/* a point at the last row of each run of equal scores */
		if (i == n - 1 || rows[i + 1].score != rows[i].score)
		{
			out->threshold[out->n] = rows[i].score;
			out->tps[out->n] = tp;
			out->fps[out->n] = fp;
			out->n++;
		}
	}
	out->npos = tp;
	out->nneg = fp;
	ml_free(env, rows);
	return ML_OK;
}

/* Frees what curve_binary allocated. */
void
curve_free(const MlEnv *env, BinaryCurve *c)
{
	ml_free(env, c->threshold);
	ml_free(env, c->tps);
	ml_free(env, c->fps);
	memset(c, 0, sizeof(*c));
}

/* roc_curve's drop_intermediate: first, last and corners. */
int64_t
curve_roc_keep(const BinaryCurve *c, bool drop_intermediate, bool *keep)
{
	int64_t		i,
				kept = 0;

	for (i = 0; i < c->n; i++)
	{
		keep[i] = true;
		/* scikit-learn drops only when there are more than 2 points */
		if (drop_intermediate && c->n > 2 && i > 0 && i < c->n - 1)
			keep[i] = (c->fps[i + 1] - 2 * c->fps[i] + c->fps[i - 1]) != 0 ||
				(c->tps[i + 1] - 2 * c->tps[i] + c->tps[i - 1]) != 0;
		kept += keep[i];
	}
	return kept;
}

/* tp / (tp + fp), 0 when nothing is called positive. */
double
curve_precision(const BinaryCurve *c, int64_t i)
{
	int64_t		called = c->tps[i] + c->fps[i];

	return called > 0 ? (double) c->tps[i] / (double) called : 0.0;
}

/* tp / positives; 1 without positives, as scikit-learn. */
double
curve_recall(const BinaryCurve *c, int64_t i)
{
	return c->npos > 0 ? (double) c->tps[i] / (double) c->npos : 1.0;
}

/* Step-wise area under the precision-recall curve. */
double
curve_average_precision(const BinaryCurve *c)
{
	double		ap = 0.0,
				prev_recall = 0.0;
	int64_t		i;

	if (c->npos == 0)
		return NAN;
	/* thresholds descend, so recall rises from 0 */
	for (i = 0; i < c->n; i++)
	{
		double		r = curve_recall(c, i);

		ap += (r - prev_recall) * curve_precision(c, i);
		prev_recall = r;
	}
	return ap;
}

/*
 * curve_average_precision of the curve of n rows, without the curve: the
 * same points in the same order give the same bits, while the memory is
 * the sorted rows only (16 bytes a row, not 40).
 */
MlStatus
curve_average_precision_of(const MlEnv *env, const uint8_t *truth, const double *score,
						   int64_t n, double *ap_out, MlError *err)
{
	ScoreRow   *rows;
	double		ap = 0.0,
				prev_recall = 0.0;
	int64_t		i,
				tp = 0,
				fp = 0,
				npos = 0;

	if (n <= 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to build a curve from");
	for (i = 0; i < n; i++)
		npos += truth[i] ? 1 : 0;
	*ap_out = NAN;
	if (npos == 0)
		return ML_OK;
	rows = sorted_rows(env, truth, score, n);
	if (!rows)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory building a curve of %lld rows",
					   (long long) n);
	for (i = 0; i < n; i++)
	{
		tp += rows[i].pos;
		fp += 1 - rows[i].pos;
		/* curve_binary's points, curve_recall's and curve_precision's values */
		if (i == n - 1 || rows[i + 1].score != rows[i].score)
		{
			double		r = (double) tp / (double) npos;

			ap += (r - prev_recall) * (tp + fp > 0 ? (double) tp / (double) (tp + fp) : 0.0);
			prev_recall = r;
		}
	}
	ml_free(env, rows);
	*ap_out = ap;
	return ML_OK;
}

/* The metric for a name; 0 when unknown. */
ThresholdMetric
threshold_metric_from_name(const char *name)
{
	if (strcmp(name, "f1") == 0)
		return TM_F1;
	if (strcmp(name, "accuracy") == 0)
		return TM_ACCURACY;
	if (strcmp(name, "recall_macro") == 0 || strcmp(name, "balanced_accuracy") == 0)
		return TM_RECALL_MACRO;
	if (strcmp(name, "precision_macro") == 0)
		return TM_PRECISION_MACRO;
	if (strcmp(name, "f1_macro") == 0)
		return TM_F1_MACRO;
	return 0;
}

/* a / b, 0 when b is 0 (scikit-learn's zero_division default). */
static double
ratio(double a, double b)
{
	return b > 0 ? a / b : 0.0;
}

/* The metric at point i from the confusion counts there. */
double
curve_metric_at(const BinaryCurve *c, int64_t i, ThresholdMetric m)
{
	double		tp = (double) c->tps[i],
				fp = (double) c->fps[i],
				fn = (double) (c->npos - c->tps[i]),
				tn = (double) (c->nneg - c->fps[i]);
	double		f1_pos = ratio(2 * tp, 2 * tp + fp + fn),
				f1_neg = ratio(2 * tn, 2 * tn + fn + fp);

	switch (m)
	{
		case TM_F1:
			return f1_pos;
		case TM_ACCURACY:
			return (tp + tn) / (tp + fp + fn + tn);
		case TM_RECALL_MACRO:
			return (ratio(tp, tp + fn) + ratio(tn, tn + fp)) / 2;
		case TM_PRECISION_MACRO:
			return (ratio(tp, tp + fp) + ratio(tn, tn + fn)) / 2;
		case TM_F1_MACRO:
			return (f1_pos + f1_neg) / 2;
	}
	return NAN;
}

/* The highest threshold with the largest metric. */
int64_t
curve_best_threshold(const BinaryCurve *c, ThresholdMetric m, double *value)
{
	int64_t		i,
				best = -1;
	double		best_v = -INFINITY;

	for (i = 0; i < c->n; i++)
	{
		double		v = curve_metric_at(c, i, m);

		if (v > best_v)
		{
			best_v = v;
			best = i;
		}
	}
	*value = best_v;
	return best;
}
