/*
 * gbt_loss.c: the gradient pass and the losses gbt reports each round: the
 * validation loss (it drives early stopping) and the training loss of the
 * trace, as XGBoost's default eval metrics (logloss, mlogloss, RMSE) of the
 * float margins. The gradient pass also sums the previous round's training
 * loss from the same p, with the same per-row terms (trees_int.h).
 */
#include "trees_int.h"

#include <math.h>

/*
 * Gradient pairs (per class for multi:softmax) of training row r; returns
 * its term of the training loss (gbt_loss.c's, from the same p) when loss.
 */
static inline double
grad_row(GbtGrad *a, uint32_t r, bool loss)
{
	size_t		n = (size_t) a->data->n;
	const float *m = a->margin + r; /* class c at m[c * n] */
	int			K = a->K,
				y,
				c;
	double		w,
				mx,
				sum = 0,
				ebuf[64];

	if (a->obj == TREE_OBJ_REG_SQUAREDERROR)
	{
		double		e = m[0] - gbt_target(a->data, r);

		a->gh[2 * (size_t) r] = (float) e;
		a->gh[2 * (size_t) r + 1] = 1.0f;
		return loss ? e * e : 0;
	}
	y = a->data->y_class[r];
	w = a->cw ? a->cw[y] : 1.0;
	if (a->obj == TREE_OBJ_BINARY_LOGISTIC)
	{
		double		p = 1.0 / (1.0 + exp(-m[0]));
		double		h = p * (1.0 - p);

		if (h < 1e-16)
			h = 1e-16;
		a->gh[2 * (size_t) r] = (float) ((p - (double) y) * w);
		a->gh[2 * (size_t) r + 1] = (float) (h * w);
		return loss ? gbt_term_logistic(p, y) : 0;
	}
	mx = m[0];
	for (c = 1; c < K; c++)
		if (m[c * n] > mx)
			mx = m[c * n];
	for (c = 0; c < K; c++)
	{
		double		e = exp(m[c * n] - mx);

		if (c < 64)
			ebuf[c] = e;
		sum += e;
	}
	for (c = 0; c < K; c++)
	{
		double		p = (c < 64 ? ebuf[c] : exp(m[c * n] - mx)) / sum;
		double		h = 2.0 * p * (1.0 - p);

		if (h < 1e-16)
			h = 1e-16;
		a->gh[(size_t) c * 2 * n + 2 * (size_t) r] = (float) ((p - (c == y ? 1.0 : 0.0)) * w);
		a->gh[(size_t) c * 2 * n + 2 * (size_t) r + 1] = (float) (h * w);
	}
	return loss ? gbt_term_softmax(m[(size_t) y * n], mx, sum) : 0;
}

/*
 * Gradient pairs of one task's training rows: whole loss chunks
 * (GBT_LOSS_CHUNK rows) per task, so that with loss_part each chunk's
 * training loss is summed here row by row as gbt_train_loss_of sums it.
 */
void
gbt_grad_task(void *arg, int task, int n_tasks)
{
	GbtGrad    *a = arg;
	uint32_t	nc = (a->n_rows + GBT_LOSS_CHUNK - 1) / GBT_LOSS_CHUNK,
				c0 = (uint32_t) ((uint64_t) nc * task / n_tasks),
				c1 = (uint32_t) ((uint64_t) nc * (task + 1) / n_tasks),
				c;
	bool		loss = a->loss_part != NULL;

	for (c = c0; c < c1; c++)
	{
		uint32_t	k = c * GBT_LOSS_CHUNK,
					k1 = a->n_rows - k < GBT_LOSS_CHUNK ? a->n_rows : k + GBT_LOSS_CHUNK;
		double		s = 0;

		for (; k < k1; k++)
			s += grad_row(a, a->rows ? a->rows[k] : k, loss);
		if (loss)
			a->loss_part[c] = s;
	}
}

/*
 * The summed loss (squared error, logloss or mlogloss) of the current
 * margins over rows[k0, k1) (rows NULL: rows k0..k1-1 themselves).
 */
static double
margin_loss_sum(const TreeData *data, TreeObjective obj, int K, const float *margin,
				const uint32_t *vrows, uint32_t k0, uint32_t k1)
{
	double		s = 0;
	uint32_t	k;
	size_t		n = (size_t) data->n;

	for (k = k0; k < k1; k++)
	{
		uint32_t	r = vrows ? vrows[k] : k;
		const float *m = margin + r;	/* class c at m[c * n] */

		if (obj == TREE_OBJ_REG_SQUAREDERROR)
		{
			double		e = m[0] - gbt_target(data, r);

			s += e * e;
		}
		else if (obj == TREE_OBJ_BINARY_LOGISTIC)
			s += gbt_term_logistic(1.0 / (1.0 + exp(-m[0])), data->y_class[r]);
		else
		{
			double		mx = m[0],
						sum = 0;
			int			c;

			for (c = 1; c < K; c++)
				if (m[c * n] > mx)
					mx = m[c * n];
			for (c = 0; c < K; c++)
				sum += exp(m[c * n] - mx);
			s += gbt_term_softmax(m[(size_t) data->y_class[r] * n], mx, sum);
		}
	}
	return s;
}

/* Validation loss: logloss, mlogloss or RMSE of the current margins. */
double
gbt_valid_loss(const TreeData *data, TreeObjective obj, int K, const float *margin,
		   const uint32_t *vrows, uint32_t nv)
{
	double		s = margin_loss_sum(data, obj, K, margin, vrows, 0, nv) / nv;

	return obj == TREE_OBJ_REG_SQUAREDERROR ? sqrt(s) : s;
}


/* The training loss's partial sums, chunk by chunk, on worker threads. */
typedef struct GbtLoss
{
	const TreeData *data;
	TreeObjective obj;
	int			K;
	const float *margin;
	const uint32_t *rows;
	uint32_t	n_rows;
	double	   *part;			/* one per chunk */
} GbtLoss;

/* Task t sums chunks t, t + nt, ... (each chunk alone, so no thread-count dependence). */
static void
loss_task(void *arg, int task, int n_tasks)
{
	GbtLoss    *a = arg;
	uint32_t	c,
				nc = (a->n_rows + GBT_LOSS_CHUNK - 1) / GBT_LOSS_CHUNK;

	for (c = (uint32_t) task; c < nc; c += (uint32_t) n_tasks)
	{
		uint32_t	k1 = (c + 1) * GBT_LOSS_CHUNK;

		a->part[c] = margin_loss_sum(a->data, a->obj, a->K, a->margin, a->rows,
									 c * GBT_LOSS_CHUNK, k1 < a->n_rows ? k1 : a->n_rows);
	}
}

/*
 * The training loss of the margins over rows[0, n_rows) (rows NULL: 0..n-1),
 * the validation loss's definition: chunk sums on up to nt worker threads
 * into part (one per GBT_LOSS_CHUNK rows), added in chunk order.
 */
double
gbt_train_loss_of(const MlEnv *env, int nt, const TreeData *data, TreeObjective obj, int K,
				  const float *margin, const uint32_t *rows, uint32_t n_rows, double *part)
{
	GbtLoss		a;
	uint32_t	nc = (n_rows + GBT_LOSS_CHUNK - 1) / GBT_LOSS_CHUNK;

	if (nt > (int) nc)
		nt = (int) nc;
	a.data = data;
	a.obj = obj;
	a.K = K;
	a.margin = margin;
	a.rows = rows;
	a.n_rows = n_rows;
	a.part = part;
	trees_run_tasks(env, nt < 1 ? 1 : nt, loss_task, &a);
	return gbt_loss_total(obj, part, n_rows);
}

/*
 * The training loss from its chunk sums (one per GBT_LOSS_CHUNK of n_rows
 * rows), added in chunk order: the mean, or its root for squared error.
 */
double
gbt_loss_total(TreeObjective obj, const double *part, uint32_t n_rows)
{
	uint32_t	c,
				nc = (n_rows + GBT_LOSS_CHUNK - 1) / GBT_LOSS_CHUNK;
	double		s = 0;

	for (c = 0; c < nc; c++)
		s += part[c];
	s /= n_rows;
	return obj == TREE_OBJ_REG_SQUAREDERROR ? sqrt(s) : s;
}
