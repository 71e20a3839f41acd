/* metrics.c: classification and regression metrics (scikit-learn's definitions). */
#include "metrics.h"
#include "score_sort.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

MlStatus
metrics_roc_auc(const MlEnv *env, const uint8_t *truth, const double *score, int64_t n,
				double *out, MlError *err)
{
	ScoreRow   *rows;
	int64_t		i,
				j,
				npos = 0;
	double		rank_sum = 0.0;

	*out = NAN;
	rows = ml_alloc(env, sizeof(ScoreRow) * (size_t) (n ? n : 1));
	if (!rows)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory computing roc_auc");
	ml_populate(rows, sizeof(ScoreRow) * (size_t) n);
	for (i = 0; i < n; i++)
	{
		rows[i].score = score[i];
		rows[i].pos = truth[i] ? 1 : 0;
		npos += rows[i].pos;
	}
	if (npos == 0 || npos == n)
	{
		ml_free(env, rows);
		return ML_OK;
	}
	score_rows_sort(env, rows, n, false);
	/* Sum of the positives' ranks, ties sharing their average rank. */
	for (i = 0; i < n; i = j)
	{
		int64_t		pos_in_tie = 0;

		for (j = i; j < n && rows[j].score == rows[i].score; j++)
			pos_in_tie += rows[j].pos;
		rank_sum += pos_in_tie * ((double) (i + 1 + j) / 2.0);
	}
	*out = (rank_sum - (double) npos * (npos + 1) / 2.0) / ((double) npos * (double) (n - npos));
	ml_free(env, rows);
	return ML_OK;
}

MlStatus
metrics_roc_auc_ovr(const MlEnv *env, const int32_t *y, const double *proba, int64_t n,
					int k, double *out, MlError *err)
{
	uint8_t    *truth;
	double	   *score;
	double		auc_sum = 0;
	int			auc_n = 0;
	int64_t		i;
	int			c;

	*out = NAN;
	truth = ml_alloc(env, (size_t) (n ? n : 1));
	score = ml_alloc(env, sizeof(double) * (size_t) (n ? n : 1));
	if (!truth || !score)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory computing roc_auc");
	ml_populate(truth, (size_t) n);
	ml_populate(score, sizeof(double) * (size_t) n);
	/* Binary: the positive class is class 1. Multiclass: macro one-vs-rest. */
	for (c = (k == 2 ? 1 : 0); c < k; c++)
	{
		double		auc;
		MlStatus	st;

		for (i = 0; i < n; i++)
		{
			truth[i] = y[i] == c;
			score[i] = proba[(size_t) i * k + c];
		}
		st = metrics_roc_auc(env, truth, score, n, &auc, err);
		if (st != ML_OK)
			return st;
		if (!isnan(auc))
		{
			auc_sum += auc;
			auc_n++;
		}
	}
	*out = auc_n ? auc_sum / auc_n : NAN;
	ml_free(env, truth);
	ml_free(env, score);
	return ML_OK;
}

void
metrics_from_counts(const int64_t *tp, const int64_t *support, const int64_t *predicted,
					int k, int64_t n, ClassMetrics *out)
{
	int64_t		correct = 0;
	int			c,
				present = 0;
	double		p_sum = 0,
				r_sum = 0,
				f_sum = 0,
				fw_sum = 0;

	for (c = 0; c < k; c++)
	{
		double		prec,
					rec,
					f1;

		correct += tp[c];
		if (support[c] == 0 && predicted[c] == 0)
			continue;
		present++;
		/* scikit-learn's zero_division = 0 */
		prec = predicted[c] ? (double) tp[c] / predicted[c] : 0.0;
		rec = support[c] ? (double) tp[c] / support[c] : 0.0;
		f1 = (prec + rec) > 0 ? 2 * prec * rec / (prec + rec) : 0.0;
		p_sum += prec;
		r_sum += rec;
		f_sum += f1;
		fw_sum += f1 * support[c];
	}
	out->accuracy = n ? (double) correct / n : NAN;
	out->precision_macro = present ? p_sum / present : NAN;
	out->recall_macro = present ? r_sum / present : NAN;
	out->f1_macro = present ? f_sum / present : NAN;
	out->f1_weighted = n ? fw_sum / n : NAN;
}

double
metrics_log_loss_row(const double *proba, int k, int y)
{
	const double eps = 2.220446049250313e-16;
	double		row_sum = 0,
				p = 0;
	int			c;

	for (c = 0; c < k; c++)
	{
		double		q = proba[c];

		q = q < eps ? eps : (q > 1 - eps ? 1 - eps : q);
		row_sum += q;
		if (c == y)
			p = q;
	}
	return -log(p / row_sum);
}

MlStatus
metrics_classification(const MlEnv *env, const int32_t *y, const int32_t *pred,
					   const double *proba, int64_t n, int k, ClassMetrics *out, MlError *err)
{
	int64_t    *tp,
			   *support,
			   *predicted;
	int64_t		i;
	double		ll = 0;

	memset(out, 0, sizeof(*out));
	out->log_loss = out->roc_auc = NAN;
	if (n == 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to evaluate");
	tp = ml_calloc(env, (size_t) k * 3, sizeof(int64_t));
	if (!tp)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory computing metrics");
	support = tp + k;
	predicted = tp + 2 * k;
	for (i = 0; i < n; i++)
	{
		support[y[i]]++;
		predicted[pred[i]]++;
		if (y[i] == pred[i])
			tp[y[i]]++;
	}
	metrics_from_counts(tp, support, predicted, k, n, out);
	if (proba)
	{
		for (i = 0; i < n; i++)
			ll += metrics_log_loss_row(proba + (size_t) i * k, k, y[i]);
		out->log_loss = ll / n;
		{
			MlStatus	st = metrics_roc_auc_ovr(env, y, proba, n, k, &out->roc_auc, err);

			if (st != ML_OK)
				return st;
		}
	}
	ml_free(env, tp);
	return ML_OK;
}

void
metrics_reg_add(RegAccum *a, double y, double pred)
{
	double		e = y - pred,
				delta = y - a->mean_y;

	a->n++;
	a->mean_y += delta / (double) a->n;
	a->m2_y += delta * (y - a->mean_y);
	a->se += e * e;
	a->ae += fabs(e);
	a->ape += fabs(e) / fmax(fabs(y), 2.220446049250313e-16);
}

void
metrics_reg_merge(RegAccum *a, const RegAccum *b)
{
	int64_t		n = a->n + b->n;
	double		delta = b->mean_y - a->mean_y;

	if (b->n == 0)
		return;
	if (a->n == 0)
	{
		*a = *b;
		return;
	}
	a->m2_y += b->m2_y + delta * delta * ((double) a->n * (double) b->n / (double) n);
	a->mean_y += delta * ((double) b->n / (double) n);
	a->n = n;
	a->se += b->se;
	a->ae += b->ae;
	a->ape += b->ape;
}

MlStatus
metrics_reg_finish(const RegAccum *a, RegMetrics *out, MlError *err)
{
	if (a->n == 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to evaluate");
	out->rmse = sqrt(a->se / a->n);
	out->mae = a->ae / a->n;
	out->mape = a->ape / a->n;
	/* scikit-learn: 1 when both are 0, 0 when only ss_tot is 0 */
	out->r2 = a->m2_y > 0 ? 1.0 - a->se / a->m2_y : (a->se == 0 ? 1.0 : 0.0);
	return ML_OK;
}

MlStatus
metrics_regression(const double *y, const double *pred, int64_t n, RegMetrics *out,
				   MlError *err)
{
	RegAccum	a;
	int64_t		i;

	memset(&a, 0, sizeof(a));
	for (i = 0; i < n; i++)
		metrics_reg_add(&a, y[i], pred[i]);
	return metrics_reg_finish(&a, out, err);
}
