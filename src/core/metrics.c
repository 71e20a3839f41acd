/* metrics.c: classification and regression metrics (scikit-learn's definitions). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ScoredRow
{
	double		score;
	uint8_t		pos;
} ScoredRow;

static int
cmp_scored(const void *a, const void *b)
{
	double		x = ((const ScoredRow *) a)->score,
				y = ((const ScoredRow *) b)->score;

	return (x > y) - (x < y);
}

MlStatus
metrics_roc_auc(const MlEnv *env, const uint8_t *truth, const double *score, int64_t n,
				double *out, MlError *err)
{
	ScoredRow  *rows;
	int64_t		i,
				j,
				npos = 0;
	double		rank_sum = 0.0;

	*out = NAN;
	rows = ml_alloc(env, sizeof(ScoredRow) * (size_t) (n ? n : 1));
	if (!rows)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory computing roc_auc");
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
	qsort(rows, (size_t) n, sizeof(ScoredRow), cmp_scored);
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
metrics_classification(const MlEnv *env, const int32_t *y, const int32_t *pred,
					   const double *proba, int64_t n, int k, ClassMetrics *out, MlError *err)
{
	int64_t    *tp,
			   *support,
			   *predicted;
	int64_t		i,
				correct = 0;
	int			c,
				present = 0;
	double		p_sum = 0,
				r_sum = 0,
				f_sum = 0,
				fw_sum = 0,
				ll = 0;

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
		{
			tp[y[i]]++;
			correct++;
		}
	}
	for (c = 0; c < k; c++)
	{
		double		prec,
					rec,
					f1;

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
	out->accuracy = (double) correct / n;
	out->precision_macro = p_sum / present;
	out->recall_macro = r_sum / present;
	out->f1_macro = f_sum / present;
	out->f1_weighted = fw_sum / n;
	if (proba)
	{
		uint8_t    *truth;
		double	   *score;
		double		auc_sum = 0;
		int			auc_n = 0;

		/* scikit-learn 1.2: clip every probability to [eps, 1 - eps], renormalise the row */
		for (i = 0; i < n; i++)
		{
			const double eps = 2.220446049250313e-16;
			double		row_sum = 0,
						p = 0;
			int			c2;

			for (c2 = 0; c2 < k; c2++)
			{
				double		q = proba[(size_t) i * k + c2];

				q = q < eps ? eps : (q > 1 - eps ? 1 - eps : q);
				row_sum += q;
				if (c2 == y[i])
					p = q;
			}
			ll -= log(p / row_sum);
		}
		out->log_loss = ll / n;
		truth = ml_alloc(env, (size_t) n);
		score = ml_alloc(env, sizeof(double) * (size_t) n);
		if (!truth || !score)
			return ml_fail(err, ML_ERR_MEMORY, "out of memory computing roc_auc");
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
		out->roc_auc = auc_n ? auc_sum / auc_n : NAN;
		ml_free(env, truth);
		ml_free(env, score);
	}
	ml_free(env, tp);
	return ML_OK;
}

MlStatus
metrics_regression(const double *y, const double *pred, int64_t n, RegMetrics *out,
				   MlError *err)
{
	double		se = 0,
				ae = 0,
				ape = 0,
				mean = 0,
				ss_tot = 0;
	int64_t		i;

	if (n == 0)
		return ml_fail(err, ML_ERR_DATA, "no rows to evaluate");
	for (i = 0; i < n; i++)
		mean += y[i];
	mean /= n;
	for (i = 0; i < n; i++)
	{
		double		e = y[i] - pred[i];

		se += e * e;
		ae += fabs(e);
		ape += fabs(e) / fmax(fabs(y[i]), 2.220446049250313e-16);
		ss_tot += (y[i] - mean) * (y[i] - mean);
	}
	out->rmse = sqrt(se / n);
	out->mae = ae / n;
	out->mape = ape / n;
	/* scikit-learn: 1 when both are 0, 0 when only ss_tot is 0 */
	out->r2 = ss_tot > 0 ? 1.0 - se / ss_tot : (se == 0 ? 1.0 : 0.0);
	return ML_OK;
}
