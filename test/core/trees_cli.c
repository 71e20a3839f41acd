/*
 * trees_cli: train and score the tree engine from numeric CSV files, for
 * comparisons with scikit-learn / XGBoost and for timing the core alone.
 *
 *   trees_cli TRAIN.csv TEST.csv target=COL [out=PRED] [key=value ...]
 *
 * CSV: a header line, then numbers; an empty cell, "nan" or "?" is missing.
 * Classification labels must be integers 0..K-1. Params: algorithm=
 * decision_tree|random_forest|gbt, task=classify|regress, max_depth,
 * max_bins, n_estimators, learning_rate, max_leaves, min_child_weight, l2,
 * gamma, subsample, colsample, objective=binary:logistic|multi:softmax|
 * reg:squarederror, criterion=gini|entropy|squared_error, min_samples_leaf,
 * min_samples_split, ccp_alpha, max_features=sqrt|log2|all|<fraction>|<count>,
 * bootstrap=0|1, oob_score=0|1, class_weight=none|balanced|w0,w1,..,
 * early_stopping_rounds, valid_frac (share of training rows held out for
 * validation), seed, threads, sample_rows (binning sample, default 200000).
 * Writes one line per test row: the class and the probabilities, or the
 * value. Prints timings and test metrics.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include "trees.h"
#include "artifact.h"

#ifdef ML_THREAD_STATS
void		ml_thread_stats_print(FILE *out);	/* mlthreads.c, measurement builds */
#endif

/* malloc with a size header, to report the peak of what the core holds */
static size_t cur_bytes,
			peak_bytes;

static void *
cli_alloc(void *ctx, size_t n)
{
	size_t	   *p = malloc(n + 16);

	if (!p)
		return NULL;
	p[0] = n;
	cur_bytes += n;
	if (cur_bytes > peak_bytes)
		peak_bytes = cur_bytes;
	return (char *) p + 16;
}

static void
cli_free(void *ctx, void *q)
{
	size_t	   *p = (size_t *) ((char *) q - 16);

	cur_bytes -= p[0];
	free(p);
}

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of the calling thread (the fit's main thread). */
static double
thread_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct Csv
{
	int			d;				/* columns */
	int64_t		n;
	char	  **names;
	double	   *X;				/* column-major, d * n */
} Csv;

static int
read_csv(const char *path, Csv *c)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf,
			   *p,
			   *end;
	long		sz;
	int64_t		lines = 0,
				i;
	int			j;

	if (!f)
	{
		perror(path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(sz + 1);
	if (fread(buf, 1, sz, f) != (size_t) sz)
	{
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[sz] = 0;
	end = buf + sz;
	/* header */
	c->d = 1;
	for (p = buf; p < end && *p != '\n'; p++)
		if (*p == ',')
			c->d++;
	c->names = calloc(c->d, sizeof(char *));
	{
		char	   *s = buf;

		j = 0;
		for (p = buf;; p++)
		{
			if (*p == ',' || *p == '\n' || *p == '\r' || *p == 0)
			{
				char		ch = *p;

				*p = 0;
				c->names[j++] = strdup(s);
				s = p + 1;
				if (ch != ',')
				{
					if (ch == '\r')
						p++;
					break;
				}
			}
		}
		p++;
	}
	{
		char	   *q;

		for (q = p; q < end; q++)
			if (*q == '\n')
				lines++;
		if (end > p && end[-1] != '\n')
			lines++;
	}
	c->n = lines;
	c->X = malloc(sizeof(double) * (size_t) c->d * (size_t) lines);
	for (i = 0; i < lines; i++)
	{
		for (j = 0; j < c->d; j++)
		{
			char	   *e;
			double		v;

			while (*p == ' ')
				p++;
			if (*p == ',' || *p == '\n' || *p == '\r' || *p == 0 || *p == '?')
				v = NAN;
			else
			{
				v = strtod(p, &e);
				if (e == p)
					v = NAN;
				p = e;
			}
			while (*p && *p != ',' && *p != '\n')
				p++;
			if (*p == ',')
				p++;
			c->X[(size_t) j * lines + i] = v;
		}
		while (*p && *p != '\n')
			p++;
		if (*p == '\n')
			p++;
	}
	free(buf);
	return 0;
}

static const char *
arg(int argc, char **argv, const char *key, const char *dflt)
{
	size_t		kl = strlen(key);
	int			i;

	for (i = 3; i < argc; i++)
		if (strncmp(argv[i], key, kl) == 0 && argv[i][kl] == '=')
			return argv[i] + kl + 1;
	return dflt;
}

static int
cmp_score(const void *a, const void *b)
{
	const double *x = a,
			   *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* AUC of scores s against 0/1 labels y (ties averaged). */
static double
auc(const double *s, const int *y, int64_t n)
{
	double	   *pr = malloc(sizeof(double) * 2 * n);
	int64_t		i,
				pos = 0;
	double		rank_sum = 0;

	for (i = 0; i < n; i++)
	{
		pr[2 * i] = s[i];
		pr[2 * i + 1] = y[i];
		pos += y[i];
	}
	qsort(pr, n, 2 * sizeof(double), cmp_score);
	for (i = 0; i < n;)
	{
		int64_t		j = i;
		double		r;

		while (j < n && pr[2 * j] == pr[2 * i])
			j++;
		r = (i + 1 + j) / 2.0;
		for (; i < j; i++)
			if (pr[2 * i + 1] > 0.5)
				rank_sum += r;
	}
	free(pr);
	if (pos == 0 || pos == n)
		return NAN;
	return (rank_sum - pos * (pos + 1) / 2.0) / ((double) pos * (n - pos));
}

/* One run of the command: inputs, parameters, model and timings. */
typedef struct Cli
{
	int			argc;
	char	  **argv;
	MlEnv		env;
	Csv			tr;
	Csv			te;
	int			tcol;			/* target column */
	int			d;				/* features (target removed) */
	int64_t		n;				/* training rows */
	int64_t		nt;				/* test rows */
	TreeParams	p;
	TreeBins	bins;
	TreeModel	m;
	TreeFitInfo info;
	double	   *Xtr;			/* column-major training features */
	double	   *Xte_rows;		/* row-major test features */
	double	   *yreg;
	int32_t    *ycls;
	uint8_t    *vmask;
	double	   *cw;
	int			K;
	double	   *out;			/* test predictions, n_outputs per row */
	double		t_bin;
	double		t_fit;
	double		c_fit;			/* CPU seconds of the fit */
	double		t_pred;
	double		t_row;
	struct rusage ru;
} Cli;

/* Reads a key=value argument into a TreeParams field. */
#define IARG(k) if ((s = arg(c->argc, c->argv, #k, NULL))) p->k = atoi(s)
#define DARG(k) if ((s = arg(c->argc, c->argv, #k, NULL))) p->k = atof(s)

/* The tree parameters from the arguments. */
static void
cli_params(Cli *c)
{
	TreeParams *p = &c->p;
	const char *s = arg(c->argc, c->argv, "algorithm", "gbt");

	trees_params_default(p, strcmp(s, "decision_tree") == 0 ? TREE_ALGO_DECISION_TREE :
						 strcmp(s, "random_forest") == 0 ? TREE_ALGO_RANDOM_FOREST : TREE_ALGO_GBT,
						 strcmp(arg(c->argc, c->argv, "task", "classify"), "regress") == 0 ?
						 ML_TASK_REGRESS : ML_TASK_CLASSIFY);
	IARG(max_depth);
	IARG(max_bins);
	IARG(n_estimators);
	IARG(max_leaves);
	IARG(min_samples_leaf);
	IARG(min_samples_split);
	IARG(early_stopping_rounds);
	IARG(bootstrap);
	IARG(oob_score);
	DARG(learning_rate);
	DARG(min_child_weight);
	DARG(l2);
	DARG(gamma);
	DARG(subsample);
	DARG(colsample);
	DARG(ccp_alpha);
	if ((s = arg(c->argc, c->argv, "seed", NULL)))
		p->seed = strtoull(s, NULL, 10);
	if ((s = arg(c->argc, c->argv, "objective", NULL)))
		p->objective = strcmp(s, "binary:logistic") == 0 ? TREE_OBJ_BINARY_LOGISTIC :
			strcmp(s, "multi:softmax") == 0 ? TREE_OBJ_MULTI_SOFTMAX :
			strcmp(s, "reg:squarederror") == 0 ? TREE_OBJ_REG_SQUAREDERROR : (TreeObjective) 99;
	if ((s = arg(c->argc, c->argv, "criterion", NULL)))
		p->criterion = strcmp(s, "gini") == 0 ? TREE_CRIT_GINI :
			strcmp(s, "entropy") == 0 ? TREE_CRIT_ENTROPY : TREE_CRIT_SQUARED_ERROR;
	if ((s = arg(c->argc, c->argv, "max_features", NULL)))
	{
		if (strcmp(s, "sqrt") == 0)
			p->max_features = TREE_MF_SQRT;
		else if (strcmp(s, "log2") == 0)
			p->max_features = TREE_MF_LOG2;
		else if (strcmp(s, "all") == 0)
			p->max_features = TREE_MF_ALL;
		else if (strchr(s, '.'))
		{
			p->max_features = TREE_MF_FRACTION;
			p->max_features_value = atof(s);
		}
		else
		{
			p->max_features = TREE_MF_COUNT;
			p->max_features_value = atof(s);
		}
	}
	c->env.n_threads = atoi(arg(c->argc, c->argv, "threads", "1"));
	/* pool=0: threads started per parallel step (as without a pool) */
	if (atoi(arg(c->argc, c->argv, "pool", "1")))
		c->env.pool = ml_pool_create(c->env.n_threads);
}

/*
 * Features (target column removed; training column-major, test row-major),
 * targets and the class count, class weights, the validation mask.
 */
static void
cli_data(Cli *c)
{
	const char *s;
	int64_t		i,
				n = c->tr.n,
				nt = c->te.n;
	int			j,
				d = c->tr.d - 1,
				tcol = c->tcol;

	c->d = d;
	c->n = n;
	c->nt = nt;
	c->Xtr = malloc(sizeof(double) * (size_t) d * n);
	c->Xte_rows = malloc(sizeof(double) * (size_t) d * nt);
	for (j = 0; j < c->tr.d; j++)
	{
		int			jj = j < tcol ? j : j - 1;

		if (j == tcol)
			continue;
		memcpy(c->Xtr + (size_t) jj * n, c->tr.X + (size_t) j * n, sizeof(double) * n);
		for (i = 0; i < nt; i++)
			c->Xte_rows[i * d + jj] = c->te.X[(size_t) j * nt + i];
	}
	if (c->p.task == ML_TASK_CLASSIFY)
	{
		c->ycls = malloc(sizeof(int32_t) * n);
		for (i = 0; i < n; i++)
		{
			double		v = c->tr.X[(size_t) tcol * n + i];

			c->ycls[i] = isnan(v) ? -1 : (int32_t) v;
			if (c->ycls[i] + 1 > c->K)
				c->K = c->ycls[i] + 1;
		}
		for (i = 0; i < nt; i++)
		{
			double		v = c->te.X[(size_t) tcol * nt + i];

			if (!isnan(v) && (int) v + 1 > c->K)
				c->K = (int) v + 1;
		}
	}
	else
	{
		c->yreg = malloc(sizeof(double) * n);
		memcpy(c->yreg, c->tr.X + (size_t) tcol * n, sizeof(double) * n);
	}
	if ((s = arg(c->argc, c->argv, "class_weight", NULL)) && strcmp(s, "none") != 0)
	{
		if (strcmp(s, "balanced") == 0)
			c->p.class_weight = TREE_CW_BALANCED;
		else
		{
			char	   *e = (char *) s;
			int			k;

			c->cw = calloc(c->K > 0 ? c->K : 1, sizeof(double));
			for (k = 0; k < c->K; k++)
			{
				c->cw[k] = strtod(e, &e);
				if (*e == ',')
					e++;
			}
			c->p.class_weight = TREE_CW_GIVEN;
			c->p.class_weights = c->cw;
		}
	}
	if ((s = arg(c->argc, c->argv, "valid_frac", NULL)) && atof(s) > 0)
	{
		MlRng		rng;
		double		f = atof(s);

		c->vmask = calloc(n, 1);
		ml_rng_seed(&rng, c->p.seed + 7);
		for (i = 0; i < n; i++)
			c->vmask[i] = ml_rng_uniform(&rng) < f;
	}
}

/* model_in: reads a saved artifact instead of training; the exit status on failure, else 0. */
static int
cli_load_model(Cli *c, const char *path)
{
	FILE	   *f = fopen(path, "rb");
	long		sz;
	uint8_t    *blob;
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	MlError		err = {0};

	if (!f)
		return 2;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	blob = malloc(sz);
	if (fread(blob, 1, sz, f) != (size_t) sz)
		return 2;
	fclose(f);
	if (artifact_open(blob, sz, &c->env, &a, &err) != ML_OK ||
		!artifact_next_section(&a, &tag, &sec, &err) ||
		!artifact_next_section(&a, &tag, &sec, &err) || !trees_read(&sec, &c->env, &c->m))
	{
		fprintf(stderr, "model_in: %s\n", err.msg);
		return 1;
	}
	c->t_bin = c->t_fit = c->c_fit = 0;
	free(c->Xtr);
	return 0;
}

/* Bins the training rows and fits the model, timing both; the exit status on failure, else 0. */
static int
cli_train(Cli *c)
{
	TreeData	data;
	MlError		err = {0};
	uint8_t    *B;
	double		t0,
				c0,
				m0;
	size_t		base_bytes;

	t0 = now();
	if (trees_bins_fit(&c->env, c->Xtr, c->n, c->d, c->p.max_bins,
					   atoll(arg(c->argc, c->argv, "sample_rows", "200000")), c->p.seed, &c->bins, &err))
	{
		fprintf(stderr, "bins: %s\n", err.msg);
		return 1;
	}
	B = malloc((size_t) c->n * c->d);
	trees_bins_apply(&c->env, &c->bins, c->Xtr, c->n, B, 0);
	c->t_bin = now() - t0;
	free(c->Xtr);				/* training needs the bytes only */

	memset(&data, 0, sizeof(data));
	data.B = B;
	data.n = c->n;
	data.d = c->d;
	data.bins = &c->bins;
	data.y_class = c->ycls;
	data.n_classes = c->K;
	data.y = c->yreg;
	data.valid_mask = c->vmask;
	printf("memory_needed_mb=%.1f binned_mb=%.1f\n",
		   trees_memory_needed(c->n, c->d, c->K, &c->p) / 1048576.0, (double) c->n * c->d / 1048576.0);
	c0 = cpu_now();
	m0 = thread_cpu_now();
	t0 = now();
	peak_bytes = cur_bytes;
	base_bytes = cur_bytes;
	if (trees_fit(&c->env, &data, &c->p, &c->m, &c->info, &err))
	{
		fprintf(stderr, "fit: %s (status %d)\n", err.msg, err.code);
		printf("fit_error=%d %s\n", err.code, err.msg);
		return 1;
	}
	printf("fit_peak_core_mb=%.1f (beyond the binned matrix, model included)\n",
		   (peak_bytes - base_bytes) / 1048576.0);
	c->t_fit = now() - t0;
	c->c_fit = cpu_now() - c0;
	printf("fit_main_thread_cpu_s=%.3f\n", thread_cpu_now() - m0);
	return 0;
}

/*
 * Scores the test rows in batch and row by row: best of `repeat` runs (the
 * machine may be shared); warns when the two disagree. Prints the timings.
 */
static void
cli_score(Cli *c)
{
	const TreeModel *m = &c->m;
	int			rep,
				nrep = atoi(arg(c->argc, c->argv, "repeat", "3"));
	double	   *o1 = malloc(sizeof(double) * m->n_outputs);
	int64_t		mism = 0,
				i,
				nt = c->nt;
	int			d = c->d;

	getrusage(RUSAGE_SELF, &c->ru);
	c->out = malloc(sizeof(double) * (size_t) nt * m->n_outputs);
	c->t_pred = c->t_row = 1e30;
	for (rep = 0; rep < (nrep > 0 ? nrep : 1); rep++)
	{
		double		tt,
					t0;

		t0 = now();
		trees_predict_batch(&c->env, m, c->Xte_rows, nt, c->out);
		tt = now() - t0;
		if (tt < c->t_pred)
			c->t_pred = tt;
		t0 = now();
		for (i = 0; i < nt; i++)
			trees_predict_row(m, c->Xte_rows + i * d, o1);
		tt = now() - t0;
		if (tt < c->t_row)
			c->t_row = tt;
	}
	for (i = 0; i < nt; i++)
	{
		trees_predict_row(m, c->Xte_rows + i * d, o1);
		if (memcmp(o1, c->out + i * m->n_outputs, sizeof(double) * m->n_outputs) != 0)
			mism++;
	}
	if (mism)
		printf("WARNING row/batch mismatch rows=%lld\n", (long long) mism);
	free(o1);
	printf("fit_cpu_s=%.3f ", c->c_fit);
	printf("bin_s=%.3f fit_s=%.3f predict_batch_s=%.3f predict_row_s=%.3f us_per_row=%.3f "
		   "trees=%u rounds=%d leaves=%d peak_rss_mb=%.1f\n",
		   c->t_bin, c->t_fit, c->t_pred, c->t_row, c->t_row / nt * 1e6, m->n_trees, c->info.rounds,
		   c->info.n_leaves, c->ru.ru_maxrss / 1024.0);
	if (!isnan(m->oob_score))
		printf("oob_score=%.6f\n", m->oob_score);
	if (m->algorithm == TREE_ALGO_GBT)
		printf("best_iteration=%d valid_loss=%.6f\n", m->best_iteration, m->valid_loss);
}

/*
 * Artifact round trip: writes the model, reads it back and checks that it
 * scores the test rows identically; model_out= and json= save it.
 */
static void
cli_roundtrip(Cli *c)
{
	const TreeModel *m = &c->m;
	const char *s;
	MlBuf		b;
	MlMeta		meta;
	char	  **fn = calloc(c->d, sizeof(char *));
	char	  **cl = calloc(c->K > 0 ? c->K : 1, sizeof(char *));
	char		tmp[32];
	size_t		at;
	MlArtifact	a;
	MlSection	tag;
	MlReader	sec;
	TreeModel	m2;
	MlError		e2 = {0};
	int			j,
				k;

	for (j = 0; j < c->d; j++)
		fn[j] = c->tr.names[j < c->tcol ? j : j + 1];
	for (k = 0; k < c->K; k++)
	{
		snprintf(tmp, sizeof(tmp), "%d", k);
		cl[k] = strdup(tmp);
	}
	meta.task = c->p.task;
	meta.n_features = c->d;
	meta.feature_names = fn;
	meta.n_classes = c->p.task == ML_TASK_CLASSIFY ? c->K : 0;
	meta.class_labels = cl;
	artifact_begin(&b, &c->env, trees_kind(m));
	artifact_write_meta(&b, &meta);
	at = artifact_section_begin(&b, ML_SEC_MODEL);
	trees_write(&b, m);
	artifact_section_end(&b, at);
	if (artifact_finish(&b, &e2) != ML_OK ||
		artifact_open(b.data, b.len, &c->env, &a, &e2) != ML_OK ||
		!artifact_next_section(&a, &tag, &sec, &e2) ||
		!artifact_next_section(&a, &tag, &sec, &e2) || tag != ML_SEC_MODEL ||
		!trees_read(&sec, &c->env, &m2))
		printf("roundtrip FAILED: %s\n", e2.msg);
	else
	{
		double	   *o2 = malloc(sizeof(double) * (size_t) c->nt * m->n_outputs);

		trees_predict_batch(&c->env, &m2, c->Xte_rows, c->nt, o2);
		printf("artifact_bytes=%zu crc=%08x roundtrip=%s\n", b.len,
			   artifact_stored_crc(b.data, b.len),
			   memcmp(o2, c->out, sizeof(double) * c->nt * m->n_outputs) == 0 ? "identical" : "DIFFERENT");
		free(o2);
		trees_model_free(&c->env, &m2);
	}
	if ((s = arg(c->argc, c->argv, "model_out", NULL)))
	{
		FILE	   *f = fopen(s, "wb");

		fwrite(b.data, 1, b.len, f);
		fclose(f);
	}
	if ((s = arg(c->argc, c->argv, "json", NULL)))
	{
		MlBuf		jb;
		FILE	   *f = fopen(s, "w");

		ml_buf_init(&jb, &c->env);
		trees_export_json(&jb, m, (const char *const *) fn);
		fputs((char *) jb.data, f);
		fclose(f);
		ml_free(&c->env, jb.data);
	}
	ml_free(&c->env, b.data);
}

/* Index of the largest of n values (the first on ties). */
static int
argmax(const double *v, int n)
{
	int			best = 0,
				k;

	for (k = 1; k < n; k++)
		if (v[k] > v[best])
			best = k;
	return best;
}

/* Test metrics: accuracy, log loss (and AUC with two classes), or RMSE. */
static void
cli_metrics(const Cli *c)
{
	const TreeModel *m = &c->m;
	int64_t		i,
				nt = c->nt,
				cnt = 0;

	if (c->p.task == ML_TASK_CLASSIFY)
	{
		int64_t		correct = 0;
		double		ll = 0;
		double	   *sc = malloc(sizeof(double) * nt);
		int		   *yy = malloc(sizeof(int) * nt);

		for (i = 0; i < nt; i++)
		{
			double		v = c->te.X[(size_t) c->tcol * nt + i];
			const double *pr = c->out + i * m->n_outputs;
			int			best = argmax(pr, (int) m->n_outputs);

			if (!isnan(v))
			{
				double		q = pr[(int) v];

				correct += best == (int) v;
				ll -= log(q < 1e-15 ? 1e-15 : q);
				sc[cnt] = m->n_outputs == 2 ? pr[1] : 0;
				yy[cnt] = (int) v;
				cnt++;
			}
		}
		printf("test_accuracy=%.6f test_logloss=%.6f", cnt ? (double) correct / cnt : NAN,
			   cnt ? ll / cnt : NAN);
		if (m->n_outputs == 2)
			printf(" test_auc=%.6f", auc(sc, yy, cnt));
		printf("\n");
		free(sc);
		free(yy);
	}
	else
	{
		double		se = 0;

		for (i = 0; i < nt; i++)
		{
			double		v = c->te.X[(size_t) c->tcol * nt + i];

			if (!isnan(v))
			{
				se += (c->out[i] - v) * (c->out[i] - v);
				cnt++;
			}
		}
		printf("test_rmse=%.6f\n", cnt ? sqrt(se / cnt) : NAN);
	}
}

/* out=: one line per test row, the class and probabilities, or the value. */
static void
cli_write_predictions(const Cli *c, const char *path)
{
	const TreeModel *m = &c->m;
	FILE	   *f = fopen(path, "w");
	char	   *fb = malloc(1 << 20);
	int64_t		i;

	setvbuf(f, fb, _IOFBF, 1 << 20);
	for (i = 0; i < c->nt; i++)
	{
		const double *pr = c->out + i * m->n_outputs;
		int			k;

		if (c->p.task == ML_TASK_CLASSIFY)
		{
			fprintf(f, "%d", argmax(pr, (int) m->n_outputs));
			for (k = 0; k < (int) m->n_outputs; k++)
				fprintf(f, " %.9g", pr[k]);
			fputc('\n', f);
		}
		else
			fprintf(f, "%.9g\n", pr[0]);
	}
	fclose(f);
	free(fb);
}

/* Reads the CSVs, trains (or loads model_in=), scores, round-trips, reports. */
int
main(int argc, char **argv)
{
	static Cli	c;
	MlEnv		env = {cli_alloc, cli_free, NULL, NULL, 1};
	const char *target,
			   *s;
	int			j,
				rc;

	c.argc = argc;
	c.argv = argv;
	c.env = env;
	c.tcol = -1;
	if (argc < 4)
	{
		fprintf(stderr, "usage: trees_cli TRAIN.csv TEST.csv target=COL [key=value ...]\n");
		return 2;
	}
	if (read_csv(argv[1], &c.tr) || read_csv(argv[2], &c.te))
		return 2;
	target = arg(argc, argv, "target", NULL);
	for (j = 0; j < c.tr.d; j++)
		if (target && strcmp(c.tr.names[j], target) == 0)
			c.tcol = j;
	if (c.tcol < 0 || c.te.d != c.tr.d)
	{
		fprintf(stderr, "target column not found or test columns differ\n");
		return 2;
	}
	cli_params(&c);
	cli_data(&c);
	memset(&c.bins, 0, sizeof(c.bins));
	memset(&c.info, 0, sizeof(c.info));
	if ((s = arg(argc, argv, "model_in", NULL)))
		rc = cli_load_model(&c, s);
	else
		rc = cli_train(&c);
	if (rc != 0)
		return rc;
	cli_score(&c);
	cli_roundtrip(&c);
	cli_metrics(&c);
	if ((s = arg(argc, argv, "out", NULL)))
		cli_write_predictions(&c, s);
	trees_model_free(&c.env, &c.m);
	trees_bins_free(&c.env, &c.bins);
	ml_pool_destroy(c.env.pool);
#ifdef ML_THREAD_STATS
	ml_thread_stats_print(stdout);
#endif
	return 0;
}
