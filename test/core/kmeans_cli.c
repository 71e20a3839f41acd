/*
 * kmeans_cli: drives src/core's k-means outside PostgreSQL, to compare it
 * with scikit-learn (test/peer/kmeans_core_check.py) and to time the core.
 *
 *   kmeans_cli --csv FILE [--cols 0,1,2] [--sep C] [params] [outputs]
 *   kmeans_cli --bench N,D,K[,STD] [--dump FILE] [params]
 *   kmeans_cli --csv FILE --metrics-labels FILE [--sample-size S] [--seed S]
 *
 * params: --k K --init kmeans++|random|given --given FILE --n-init N
 *   --max-iter N --tol T --distance l2|cosine --standardize --seed S
 *   --minibatch --batch-size B --sample-size S --threads T --plain
 *   --no-metrics --double-sums --time-metrics --repeat R
 * outputs: --labels-out FILE --centroids-out FILE
 *
 * Prints key=value lines: inertia, iterations, best_init, silhouette,
 * calinski_harabasz, davies_bouldin, fit_seconds (best of --repeat), ...
 * --bench generates N rows of D features around K Gaussian blobs (centres
 * uniform in [-10, 10], standard deviation STD, default 1, fixed seed) and
 * uses K rows of it, chosen with the seed, as the given initial centroids;
 * --dump writes the rows (FILE, raw little-endian float64, N x D) and the
 * initial centroids (FILE.init, K x D) for scikit-learn to time on them.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmeans.h"
#include "cluster_metrics.h"
#include "mltest.h"

/* Prints "kmeans_cli: " and fmt (with arg) to stderr, exits with status 2. */
static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "kmeans_cli: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

/* Wall-clock seconds (monotonic). */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds of the whole process, all threads. */
static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads numeric CSV rows; keeps columns cols[0..ncols) (all when ncols == 0). */
static double *
read_csv(const char *path, char sep, const int *cols, int ncols, int64_t *n_out, int *d_out)
{
	FILE	   *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	double	   *X = NULL;
	int64_t		n = 0,
				xcap = 0;
	int			d = ncols;

	if (!f)
		die("cannot open %s", path);
	while ((len = getline(&line, &cap, f)) > 0)
	{
		double		vals[1024];
		int			nv = 0,
					j;
		char	   *p = line,
				   *end;

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		for (;;)
		{
			if (nv >= 1024)
				die("%s: more than 1024 columns", path);
			errno = 0;
			vals[nv++] = strtod(p, &end);
			if (end == p)
				die("bad number in %s", path);
			p = end;
			while (*p == ' ')
				p++;
			if (*p == '\0')
				break;
			if (*p != sep && !(sep == 0 && (*p == ',' || *p == '\t' || *p == ';')))
				die("unexpected separator in %s", path);
			p++;
		}
		if (d == 0)
			d = nv;
		if (n == xcap)
		{
			xcap = xcap ? 2 * xcap : 4096;
			X = realloc(X, sizeof(double) * xcap * d);
			if (!X)
				die("out of memory reading %s", path);
		}
		for (j = 0; j < d; j++)
		{
			int			col = ncols ? cols[j] : j;

			if (col >= nv)
				die("%s: a row has too few columns", path);
			X[n * d + j] = vals[col];
		}
		n++;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	*n_out = n;
	*d_out = d;
	return X;
}

/* Reads n integer labels, whitespace-separated, from path. */
static int *
read_labels(const char *path, int64_t n)
{
	FILE	   *f = fopen(path, "r");
	int		   *lab = malloc(sizeof(int) * (n ? n : 1));
	int64_t		i;

	if (!f || !lab)
		die("cannot read labels from %s", path);
	for (i = 0; i < n; i++)
		if (fscanf(f, "%d", &lab[i]) != 1)
			die("too few labels in %s", path);
	fclose(f);
	return lab;
}

/* A standard normal draw (Box-Muller). */
static double
gauss(MlRng *r)
{
	double		u = ml_rng_uniform(r),
				v = ml_rng_uniform(r);

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* Prints key=v with every digit of v, or key=nan. */
static void
print_num(const char *key, double v)
{
	if (isnan(v))
		printf("%s=nan\n", key);
	else
		printf("%s=%.17g\n", key, v);
}

/* One run of the command: options, data, model, timings. */
typedef struct Cli
{
	/* options */
	const char *csv;
	const char *given_path;
	const char *labels_out;
	const char *centroids_out;
	const char *metrics_labels;
	const char *dump;
	const char *bench;
	char		sep;
	int			cols[1024];
	int			ncols;
	int			threads;
	int			repeat;
	int			time_metrics;
	unsigned	flags;
	KmParams	p;
	/* data */
	MlEnv		env;
	double	   *X;
	double	   *given;			/* initial centroids, or NULL */
	int64_t		n;
	int			d;
	/* the fit */
	int		   *labels;
	KmModel		model;
	KmResult	res;
	MlError		err;
	double		best_t;			/* fastest wall-clock fit of --repeat */
	double		best_cpu;		/* least CPU of --repeat */
} Cli;

/* The defaults, then the command-line options, into c. */
static void
cli_args(Cli *c, int argc, char **argv)
{
	KmParams   *p = &c->p;
	int			a;

	c->threads = 1;
	c->repeat = 1;
	memset(p, 0, sizeof(*p));
	p->k = 8;
	p->init = KM_INIT_KMEANSPP;
	p->n_init = 1;
	p->max_iter = 300;
	p->tol = 1e-4;
	p->seed = 42;
	p->batch_size = 1024;
	p->sample_size = 10000;
	for (a = 1; a < argc; a++)
	{
		const char *o = argv[a];
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;

#define OPT(name) (strcmp(o, name) == 0 && (v || (die("%s needs a value", o), 0)) && ++a)
		if (OPT("--csv"))
			c->csv = v;
		else if (OPT("--sep"))
			c->sep = strcmp(v, "tab") == 0 ? '\t' : v[0];
		else if (OPT("--cols"))
		{
			char	   *s = strdup(v),
					   *tok;

			for (tok = strtok(s, ","); tok && c->ncols < 1024; tok = strtok(NULL, ","))
				c->cols[c->ncols++] = atoi(tok);
			free(s);
		}
		else if (OPT("--k"))
			p->k = atoi(v);
		else if (OPT("--init"))
			p->init = strcmp(v, "given") == 0 ? KM_INIT_GIVEN :
				strcmp(v, "random") == 0 ? KM_INIT_RANDOM : KM_INIT_KMEANSPP;
		else if (OPT("--given"))
			c->given_path = v;
		else if (OPT("--n-init"))
			p->n_init = atoi(v);
		else if (OPT("--max-iter"))
			p->max_iter = atoi(v);
		else if (OPT("--tol"))
			p->tol = atof(v);
		else if (OPT("--distance"))
			p->distance = strcmp(v, "cosine") == 0 ? KM_DIST_COSINE : KM_DIST_L2;
		else if (strcmp(o, "--standardize") == 0)
			p->standardize = true;
		else if (OPT("--seed"))
			p->seed = strtoull(v, NULL, 10);
		else if (strcmp(o, "--minibatch") == 0)
			p->minibatch = true;
		else if (OPT("--batch-size"))
			p->batch_size = atoi(v);
		else if (OPT("--sample-size"))
			p->sample_size = atoll(v);
		else if (OPT("--threads"))
			c->threads = atoi(v);
		else if (strcmp(o, "--plain") == 0)
			c->flags |= KM_FLAG_PLAIN_LLOYD;
		else if (strcmp(o, "--time-metrics") == 0)
			c->time_metrics = 1;
		else if (strcmp(o, "--double-sums") == 0)
			c->flags |= KM_FLAG_DOUBLE_SUMS;
		else if (strcmp(o, "--no-metrics") == 0)
			c->flags |= KM_FLAG_NO_METRICS;
		else if (OPT("--repeat"))
			c->repeat = atoi(v);
		else if (OPT("--labels-out"))
			c->labels_out = v;
		else if (OPT("--centroids-out"))
			c->centroids_out = v;
		else if (OPT("--metrics-labels"))
			c->metrics_labels = v;
		else if (OPT("--bench"))
			c->bench = v;
		else if (OPT("--dump"))
			c->dump = v;
		else
			die("unknown option %s (see the comment at the top of kmeans_cli.c)", o);
#undef OPT
	}
}

/* Writes the --bench rows to --dump and its initial centroids to --dump.init. */
static void
cli_dump_bench(const Cli *c)
{
	char		path[4096];
	FILE	   *f = fopen(c->dump, "wb");
	int64_t		n = c->n;
	int			d = c->d,
				k = c->p.k;

	if (!f || fwrite(c->X, sizeof(double), n * d, f) != (size_t) (n * d) || fclose(f))
		die("cannot write %s", c->dump);
	snprintf(path, sizeof(path), "%s.init", c->dump);
	f = fopen(path, "wb");
	if (!f || fwrite(c->given, sizeof(double), k * d, f) != (size_t) (k * d) || fclose(f))
		die("cannot write %s", path);
}

/*
 * --bench N,D,K[,STD]: N rows around K Gaussian blobs (fixed seed), and K of
 * them, chosen with the same generator, as the given initial centroids.
 */
static void
cli_bench_data(Cli *c)
{
	long long	bn = 0;
	int			bd = 0,
				bk = 0,
				k,
				j;
	double		sd = 1.0;
	double	   *centres;
	MlRng		rng;
	int64_t		i;

	if (sscanf(c->bench, "%lld,%d,%d,%lf", &bn, &bd, &bk, &sd) < 3 || bn < 1 || bd < 1 || bk < 1)
		die("--bench wants N,D,K[,STD], not %s", c->bench);
	c->n = bn;
	c->d = bd;
	c->p.k = bk;
	c->X = malloc(sizeof(double) * c->n * c->d);
	centres = malloc(sizeof(double) * bk * c->d);
	c->given = malloc(sizeof(double) * bk * c->d);
	if (!c->X || !centres || !c->given)
		die("out of memory for %s", c->bench);
	ml_rng_seed(&rng, 20240501);
	for (k = 0; k < bk * c->d; k++)
		centres[k] = -10.0 + 20.0 * ml_rng_uniform(&rng);
	for (i = 0; i < c->n; i++)
	{
		int			blob = (int) ml_rng_below(&rng, bk);

		for (j = 0; j < c->d; j++)
			c->X[i * c->d + j] = centres[blob * c->d + j] + sd * gauss(&rng);
	}
	for (k = 0; k < bk; k++)
		memcpy(c->given + k * c->d, c->X + ml_rng_below(&rng, c->n) * c->d,
			   sizeof(double) * c->d);
	c->p.init = KM_INIT_GIVEN;
	c->p.given = c->given;
	c->p.n_init = 1;
	if (c->dump)
		cli_dump_bench(c);
	free(centres);
}

/* The rows from --csv, and the initial centroids (which set k) from --given. */
static void
cli_csv_data(Cli *c)
{
	if (!c->csv)
		die("%s", "give --csv FILE or --bench N,D,K");
	c->X = read_csv(c->csv, c->sep, c->cols, c->ncols, &c->n, &c->d);
	if (c->given_path)
	{
		int64_t		gk;
		int			gd;

		c->given = read_csv(c->given_path, 0, NULL, 0, &gk, &gd);
		if (gd != c->d)
			die("%s: centroids have the wrong width", c->given_path);
		c->p.k = (int) gk;
		c->p.given = c->given;
	}
}

/*
 * --metrics-labels: the three metrics of the given labels on the rows, and
 * their timings, without a fit. Returns the exit status.
 */
static int
cli_metrics_only(Cli *c)
{
	int		   *lab = read_labels(c->metrics_labels, c->n);
	int			k = 0;
	int64_t		i;
	double		v;
	double		t0;
	MlStatus	st;

	for (i = 0; i < c->n; i++)
		if (lab[i] + 1 > k)
			k = lab[i] + 1;
	t0 = now_s();
	if ((st = cluster_silhouette(&c->env, c->X, c->n, c->d, lab, k, c->p.sample_size,
								 c->p.seed, &v, &c->err)) == ML_OK)
		print_num("silhouette", v);
	printf("silhouette_seconds=%.6f\n", now_s() - t0);
	t0 = now_s();
	if (st == ML_OK &&
		(st = cluster_calinski_harabasz(&c->env, c->X, c->n, c->d, lab, k, &v, &c->err)) == ML_OK)
		print_num("calinski_harabasz", v);
	if (st == ML_OK &&
		(st = cluster_davies_bouldin(&c->env, c->X, c->n, c->d, lab, k, &v, &c->err)) == ML_OK)
		print_num("davies_bouldin", v);
	printf("ch_db_seconds=%.6f\n", now_s() - t0);
	free(lab);
	if (st != ML_OK)
	{
		printf("error=%d %s\n", st, c->err.msg);
		return 1;
	}
	return 0;
}

/*
 * Fits --repeat times, keeping the best wall-clock and CPU times and the
 * last model and labels. Returns the first failure's status.
 */
static MlStatus
cli_train(Cli *c)
{
	MlStatus	st = ML_OK;
	int			r;

	c->best_t = INFINITY;
	c->best_cpu = INFINITY;
	c->labels = malloc(sizeof(int) * c->n);
	for (r = 0; r < c->repeat; r++)
	{
		double		t0 = now_s(),
					c0 = cpu_s(),
					t,
					ct;

		st = kmeans_fit_ex(&c->env, c->X, c->n, c->d, &c->p, c->flags, c->labels,
						   &c->model, &c->res, &c->err);
		t = now_s() - t0;
		ct = cpu_s() - c0;
		if (st != ML_OK)
			break;
		if (t < c->best_t)
			c->best_t = t;
		if (ct < c->best_cpu)
			c->best_cpu = ct;
		if (r + 1 < c->repeat)
			kmeans_model_free(&c->env, &c->model);
	}
	return st;
}

/* The fit's figures: inertia, iterations, the metrics and the timings. */
static void
cli_report(const Cli *c)
{
	print_num("inertia", c->res.inertia);
	printf("iterations=%d\nbest_init=%d\n", c->res.iterations, c->res.best_init);
	print_num("silhouette", c->res.silhouette);
	print_num("calinski_harabasz", c->res.calinski_harabasz);
	print_num("davies_bouldin", c->res.davies_bouldin);
	printf("fit_seconds=%.6f\nfit_cpu_seconds=%.6f\n", c->best_t, c->best_cpu);
}

/* --time-metrics: each metric alone, timed, on the raw rows and the fit's labels. */
static void
cli_time_metrics(Cli *c)
{
	double		v,
				t0 = now_s();
	int			k = c->model.k;
	MlStatus	ms;

	ms = cluster_silhouette(&c->env, c->X, c->n, c->d, c->labels, k, c->p.sample_size,
							c->p.seed, &v, &c->err);
	printf("silhouette_seconds=%.6f (%s)\n", now_s() - t0, ms == ML_OK ? "ok" : c->err.msg);
	t0 = now_s();
	ms = cluster_calinski_harabasz(&c->env, c->X, c->n, c->d, c->labels, k, &v, &c->err);
	printf("calinski_harabasz_seconds=%.6f (%s)\n", now_s() - t0,
		   ms == ML_OK ? "ok" : c->err.msg);
	t0 = now_s();
	ms = cluster_davies_bouldin(&c->env, c->X, c->n, c->d, c->labels, k, &v, &c->err);
	printf("davies_bouldin_seconds=%.6f (%s)\n", now_s() - t0, ms == ML_OK ? "ok" : c->err.msg);
}

/* --labels-out: one label a line. */
static void
cli_write_labels(const Cli *c)
{
	FILE	   *f = fopen(c->labels_out, "w");
	int64_t		i;

	if (!f)
		die("cannot write %s", c->labels_out);
	for (i = 0; i < c->n; i++)
		fprintf(f, "%d\n", c->labels[i]);
	fclose(f);
}

/* --centroids-out: one centroid a line, comma-separated, every digit. */
static void
cli_write_centroids(const Cli *c)
{
	FILE	   *f = fopen(c->centroids_out, "w");
	int			k,
				j;

	if (!f)
		die("cannot write %s", c->centroids_out);
	for (k = 0; k < c->model.k; k++)
		for (j = 0; j < c->d; j++)
			fprintf(f, "%.17g%c", c->model.centroids[k * c->d + j], j + 1 < c->d ? ',' : '\n');
	fclose(f);
}

/* Reads the options and the data, then scores given labels or fits and reports. */
int
main(int argc, char **argv)
{
	static Cli	c;
	MlStatus	st;

	cli_args(&c, argc, argv);
	c.env = mlt_env(c.threads);
	if (c.bench)
		cli_bench_data(&c);
	else
		cli_csv_data(&c);
	printf("rows=%lld\nfeatures=%d\nthreads=%d\n", (long long) c.n, c.d, c.threads);
	if (c.metrics_labels)
		return cli_metrics_only(&c);
	if ((st = cli_train(&c)) != ML_OK)
	{
		printf("error=%d %s\n", st, c.err.msg);
		return 1;
	}
	cli_report(&c);
	if (c.time_metrics)
		cli_time_metrics(&c);
	if (c.labels_out)
		cli_write_labels(&c);
	if (c.centroids_out)
		cli_write_centroids(&c);
	kmeans_model_free(&c.env, &c.model);
	free(c.labels);
	free(c.X);
	free(c.given);
	return 0;
}
