/*
 * gbt_loss.c: the gradient pass and the losses gbt reports each round: the
 * validation loss (it drives early stopping) and the training loss of the
 * trace, as XGBoost's default eval metrics (logloss, mlogloss, RMSE) of the
 * float margins. The gradient pass also sums the previous round's training
 * loss from the same p, with the same per-row terms (trees_int.h). Binary
 * logistic rows go GRAD_BLOCK at a time through vecmath.c (exp, the pairs
 * and log in SIMD lanes, libm's bits); the sums stay row by row in order,
 * except the binary training loss: minus the log of the product of the
 * rows' p (LogProd), one multiply a row instead of a log.
 * Every gradient and hessian is rounded to a multiple of a power-of-two
 * quantum (qg, qh) small enough that the sum of their magnitudes over all
 * training rows is below 2^53 quanta: every histogram and node sum of them
 * is then exact in double, the same in any order of rows (docs/trees.md,
 * "Exact sums"). A logistic or softmax hessian is at least one quantum
 * (XGBoost's floor of 1e-16, kept on the grid).
 */
#include "trees_int.h"

#include <math.h>

#include "vecmath.h"

#define GRAD_BLOCK 256			/* rows whose exp and log go to vecmath in one call */

/* A float's headroom over its double: |(float) x| <= |x| (1 + 2^-23). */
#define FLOAT_UP (1.0 + 0x1p-23)

/*
 * The quantum for n values of magnitude at most bound: the smallest power
 * of two q with max(n, 2) * bound < 2^52 q (at least 2^-149, of which every
 * float is a multiple). Each value rounded to a multiple of q grows by at
 * most q / 2, so their magnitudes sum to below 2^52 q + n q / 2 < 2^53 q,
 * and every value is below 2^51 q, as grid_round needs. 0 when bound is
 * not finite (nothing rounded).
 */
double
gbt_quantum(uint32_t n, double bound)
{
	double		b = (n < 2 ? 2.0 : (double) n) * bound;
	int			e;

	if (!isfinite(b))
		return 0;
	if (!(b > 0))
		return 0x1p-149;
	(void) frexp(b, &e);		/* b < 2^e */
	return e - 52 < -149 ? 0x1p-149 : ldexp(1.0, e - 52);
}

/*
 * x rounded to the nearest multiple of the power of two q (ties to even),
 * for |x| < 2^51 q: adding 1.5 * 2^52 q leaves a double whose ulp is q. A
 * float of at least 2^24 q is a multiple of q already and comes back as it
 * is; a smaller multiple of q is a float: the result is x's on the grid.
 */
static inline float
grid_round(float x, double q)
{
	double		c = 0x1.8p52 * q;

	return (float) (((double) x + c) - c);
}

/*
 * Gradient pairs per class of multi:softmax training row r; returns its
 * term of the training loss (gbt_loss.c's, from the same p) when loss.
 */
static double
grad_row_softmax(GbtGrad *a, uint32_t r, bool loss)
{
	size_t		n = (size_t) a->data->n;
	const float *m = a->margin + r; /* class c at m[c * n] */
	int			K = a->K,
				y = a->data->y_class[r],
				c;
	double		w = a->cw ? a->cw[y] : 1.0,
				mx = m[0],
				sum = 0,
				ebuf[64];

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

		float		hq;

		if (h < 1e-16)
			h = 1e-16;
		a->gh[(size_t) c * 2 * n + 2 * (size_t) r] =
			grid_round((float) ((p - (c == y ? 1.0 : 0.0)) * w), a->qg);
		/* XGBoost's floor on h, kept on the grid: a hessian never 0 */
		hq = grid_round((float) (h * w), a->qh);
		a->gh[(size_t) c * 2 * n + 2 * (size_t) r + 1] = hq < a->qh ? (float) a->qh : hq;
	}
	return loss ? gbt_term_softmax(m[(size_t) y * n], mx, sum) : 0;
}

/*
 * Sums the logistic terms -log(q) of nb rows onto s, one by one in row
 * order (s += term, trees_int.h): q[] holds each row's probability of its
 * true class, clamped at 1e-15 (lq: scratch). The validation loss: it is
 * stored in the model and drives early stopping.
 */
static double
add_logistic_terms(double s, const double *q, double *lq, uint32_t nb)
{
	uint32_t	i;

	vm_log(q, lq, nb);
	for (i = 0; i < nb; i++)
		s += -lq[i];
	return s;
}

/*
 * The training loss's logistic terms -log(q) of a chunk of rows are summed
 * as minus the log of their product, not as one log a row: the product
 * runs in LOGPROD_LANES lanes (row i of a block in lane i % LOGPROD_LANES),
 * and every LOGPROD_NORM rows, and at the end of each block, each lane's
 * exponent is moved into an integer (exact), so that nothing underflows
 * (q >= 1e-15: 8 factors stay above 2^-400). At
 * the end, -(e ln 2 + sum of the lanes' logs), with ln 2 in two parts so
 * that e ln2_hi is exact. One multiply a row instead of a log and an add
 * in a chain; the error is that of the row-by-row sum (a relative 2^-53 a
 * factor). The blocks are the same in the gradient pass and the loss pass,
 * so both give the same bits, and chunks do not depend on the threads.
 * (The validation loss stays row by row, add_logistic_terms: the model
 * keeps it, so a model's bytes do not change with this.)
 */
#define LOGPROD_LANES 4
#define LOGPROD_NORM (8 * LOGPROD_LANES)

typedef struct LogProd
{
	double		p[LOGPROD_LANES];
	int64_t		e;
} LogProd;

static void
logprod_start(LogProd *lp)
{
	int			j;

	for (j = 0; j < LOGPROD_LANES; j++)
		lp->p[j] = 1.0;
	lp->e = 0;
}

/* Moves each lane's binary exponent into e, its value into [0.5, 1): exact. */
static inline void
logprod_norm(LogProd *lp)
{
	int			j;

	for (j = 0; j < LOGPROD_LANES; j++)
	{
		int			ex = 0;

		if (isfinite(lp->p[j]) && lp->p[j] != 0)
		{
			lp->p[j] = frexp(lp->p[j], &ex);
			lp->e += ex;
		}
	}
}

/* Multiplies the nb values q (each at least 1e-15, or NaN) into lp. */
static void
logprod_add(LogProd *lp, const double *q, uint32_t nb)
{
	uint32_t	i = 0;
	int			j;

	for (; i + LOGPROD_NORM <= nb; i += LOGPROD_NORM)
	{
		const double *b = q + i;
		int			s;

		for (s = 0; s < LOGPROD_NORM; s += LOGPROD_LANES)
			for (j = 0; j < LOGPROD_LANES; j++)
				lp->p[j] *= b[s + j];
		logprod_norm(lp);
	}
	for (; i < nb; i++)
		lp->p[i % LOGPROD_LANES] *= q[i];
	logprod_norm(lp);
}

/* -log of the product in lp: the summed terms -log(q). */
static double
logprod_neg_log(const LogProd *lp)
{
	const double ln2_hi = 6.93147180369123816490e-01,	/* 0x3fe62e42fee00000 */
				ln2_lo = 1.90821492927058770002e-10;
	double		e = (double) lp->e;

	return -(e * ln2_hi + (e * ln2_lo + ((log(lp->p[0]) + log(lp->p[1])) +
										  (log(lp->p[2]) + log(lp->p[3])))));
}

/*
 * Binary logistic gradient pairs of training rows rows[k0, k1) (rows NULL:
 * k0..k1-1), GRAD_BLOCK rows at a time with exp and the pairs in
 * vecmath's lanes (libm's bits); returns s plus the rows' training loss
 * when loss (logprod_add). The fields are read into locals, and rows NULL
 * (the usual case) has loops of its own: the same operations on each row,
 * so the same bits, without a reload or a branch a row.
 */
static double
grad_rows_logistic(GbtGrad *a, uint32_t k0, uint32_t k1, bool loss, double s)
{
	const float *margin = a->margin;
	const int32_t *ycl = a->data->y_class;
	const uint32_t *rows = a->rows;
	const double *cw = a->cw;
	const double qg = a->qg,
				qh = a->qh;
	float	   *gh = a->gh;
	double		x[GRAD_BLOCK],
				e[GRAD_BLOCK],
				yd[GRAD_BLOCK],
				wd[GRAD_BLOCK],
				q[GRAD_BLOCK];
	float		g[GRAD_BLOCK],
				hw[GRAD_BLOCK];
	uint32_t	k,
				i,
				nb;
	LogProd		lp;

	logprod_start(&lp);
	for (k = k0; k < k1; k += nb)
	{
		nb = k1 - k < GRAD_BLOCK ? k1 - k : GRAD_BLOCK;
		for (i = 0; i < nb; i++)
		{
			uint32_t	r = rows ? rows[k + i] : k + i;
			int			y = ycl[r];

			x[i] = -(double) margin[r];
			yd[i] = (double) y;
			wd[i] = cw ? cw[y] : 1.0;
		}
		vm_exp(x, e, nb);
		vm_logistic_grad(e, yd, wd, g, hw, q, nb);
		/* XGBoost's floor on h (1e-16), kept on the grid: never 0 */
		if (rows == NULL)
		{
			float	   *o = gh + 2 * (size_t) k;

			for (i = 0; i < nb; i++)
			{
				float		hq = grid_round(hw[i], qh);

				o[2 * i] = grid_round(g[i], qg);
				o[2 * i + 1] = hq < qh ? (float) qh : hq;
			}
		}
		else
			for (i = 0; i < nb; i++)
			{
				size_t		r = rows[k + i];
				float		hq = grid_round(hw[i], qh);

				gh[2 * r] = grid_round(g[i], qg);
				gh[2 * r + 1] = hq < qh ? (float) qh : hq;
			}
		if (loss)
			logprod_add(&lp, q, nb);
	}
	return loss ? s + logprod_neg_log(&lp) : s;
}

/*
 * Squared-error gradient pairs of training rows rows[k, k1) (rows NULL:
 * k..k1-1), h = 1, g not rounded yet (gbt_grad_run); returns s plus their
 * loss terms, and the largest |g| in *gmax.
 */
static double
grad_rows_squared(GbtGrad *a, uint32_t k, uint32_t k1, double s, float *gmax)
{
	float		mx = *gmax;

	for (; k < k1; k++)
	{
		uint32_t	r = a->rows ? a->rows[k] : k;
		double		d = a->margin[r] - gbt_target(a->data, r);
		float		fd = (float) d;

		mx = fabsf(fd) > mx ? fabsf(fd) : mx;
		a->gh[2 * (size_t) r] = fd;
		a->gh[2 * (size_t) r + 1] = 1.0f;
		s += d * d;
	}
	*gmax = mx;
	return s;
}

/*
 * Gradient pairs of one task's training rows: whole loss chunks
 * (GBT_LOSS_CHUNK rows) per task, so that with loss_part each chunk's
 * training loss is summed here row by row as gbt_train_loss_of sums it.
 */
static void
gbt_grad_task(void *arg, int task, int n_tasks)
{
	GbtGrad    *a = arg;
	uint32_t	nc = (a->n_rows + GBT_LOSS_CHUNK - 1) / GBT_LOSS_CHUNK,
				c0 = (uint32_t) ((uint64_t) nc * task / n_tasks),
				c1 = (uint32_t) ((uint64_t) nc * (task + 1) / n_tasks),
				c;
	bool		loss = a->loss_part != NULL;

	a->gmax[task] = 0;

	for (c = c0; c < c1; c++)
	{
		uint32_t	k = c * GBT_LOSS_CHUNK,
					k1 = a->n_rows - k < GBT_LOSS_CHUNK ? a->n_rows : k + GBT_LOSS_CHUNK;
		double		s = 0;

		if (a->obj == TREE_OBJ_BINARY_LOGISTIC)
			s = grad_rows_logistic(a, k, k1, loss, s);
		else if (a->obj == TREE_OBJ_REG_SQUAREDERROR)
			s = grad_rows_squared(a, k, k1, s, &a->gmax[task]);
		else
			for (; k < k1; k++)
				s += grad_row_softmax(a, a->rows ? a->rows[k] : k, loss);
		if (loss)
			a->loss_part[c] = s;
	}
}

/* Rounds one task's share of the training rows' g to the grid of qg. */
static void
grid_task(void *arg, int task, int n_tasks)
{
	GbtGrad    *a = arg;
	uint32_t	k = (uint32_t) ((uint64_t) a->n_rows * task / n_tasks),
				k1 = (uint32_t) ((uint64_t) a->n_rows * (task + 1) / n_tasks);

	for (; k < k1; k++)
	{
		size_t		r = a->rows ? a->rows[k] : k;

		a->gh[2 * r] = grid_round(a->gh[2 * r], a->qg);
	}
}

/*
 * The gradient pass on nt tasks (at most 64), g and h on their grids. The
 * logistic and softmax bounds are known before the pass (|g| <= w, h <=
 * w / 4 or w / 2, w the largest class weight). Squared error's g is not
 * bounded: the pass finds the round's largest |g| and a second pass
 * rounds g to its quantum (h = 1 is on every grid). The grids depend only
 * on the round's own gradients: not on the thread count, nor on earlier
 * rounds (a warm start continues as one fit would).
 */
void
gbt_grad_run(const MlEnv *env, int nt, GbtGrad *a)
{
	double		w = 1.0;
	int			c,
				t;

	if (a->obj != TREE_OBJ_REG_SQUAREDERROR)
	{
		if (a->cw)
			for (c = 0, w = 0; c < a->data->n_classes; c++)
				w = a->cw[c] > w ? a->cw[c] : w;
		a->qg = gbt_quantum(a->n_rows, w * FLOAT_UP);
		a->qh = gbt_quantum(a->n_rows, (a->obj == TREE_OBJ_BINARY_LOGISTIC ? 0.25 : 0.5) *
							w * FLOAT_UP);
	}
	else
		a->qh = 0;
	trees_run_tasks(env, nt, gbt_grad_task, a);
	if (a->obj == TREE_OBJ_REG_SQUAREDERROR)
	{
		float		mx = 0;

		for (t = 0; t < nt; t++)
			mx = a->gmax[t] > mx ? a->gmax[t] : mx;
		a->qg = gbt_quantum(a->n_rows, mx);
		if (a->qg > 0)
			trees_run_tasks(env, nt, grid_task, a);
	}
}

/*
 * The summed logloss of the margins over rows vrows[k0, k1) (vrows NULL:
 * k0..k1-1), with exp and log GRAD_BLOCK rows at a time in vecmath's
 * lanes (libm's bits): the terms added in row order, or for the training
 * loss (product) as the log of their product (logprod_add).
 */
static double
logistic_loss_sum(const TreeData *data, const float *margin, const uint32_t *vrows,
				  uint32_t k0, uint32_t k1, bool product)
{
	double		x[GRAD_BLOCK],
				q[GRAD_BLOCK],
				s = 0;
	uint32_t	k,
				i,
				nb;
	LogProd		lp;

	logprod_start(&lp);
	for (k = k0; k < k1; k += nb)
	{
		nb = k1 - k < GRAD_BLOCK ? k1 - k : GRAD_BLOCK;
		for (i = 0; i < nb; i++)
			x[i] = -(double) margin[vrows ? vrows[k + i] : k + i];
		vm_exp(x, q, nb);
		for (i = 0; i < nb; i++)
		{
			double		p = 1.0 / (1.0 + q[i]);

			p = data->y_class[vrows ? vrows[k + i] : k + i] == 0 ? 1.0 - p : p;
			q[i] = p < 1e-15 ? 1e-15 : p;
		}
		if (product)
			logprod_add(&lp, q, nb);
		else
			s = add_logistic_terms(s, q, x, nb);
	}
	return product ? logprod_neg_log(&lp) : s;
}

/*
 * The summed loss (squared error, logloss or mlogloss) of the current
 * margins over rows[k0, k1) (rows NULL: rows k0..k1-1 themselves); the
 * training loss's logloss as the log of a product (logistic_loss_sum).
 */
static double
margin_loss_sum(const TreeData *data, TreeObjective obj, int K, const float *margin,
				const uint32_t *vrows, uint32_t k0, uint32_t k1, bool training)
{
	double		s = 0;
	uint32_t	k;
	size_t		n = (size_t) data->n;

	if (obj == TREE_OBJ_BINARY_LOGISTIC)
		return logistic_loss_sum(data, margin, vrows, k0, k1, training);
	for (k = k0; k < k1; k++)
	{
		uint32_t	r = vrows ? vrows[k] : k;
		const float *m = margin + r;	/* class c at m[c * n] */

		if (obj == TREE_OBJ_REG_SQUAREDERROR)
		{
			double		e = m[0] - gbt_target(data, r);

			s += e * e;
		}
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
	double		s = margin_loss_sum(data, obj, K, margin, vrows, 0, nv, false) / nv;

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
									 c * GBT_LOSS_CHUNK, k1 < a->n_rows ? k1 : a->n_rows, true);
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
