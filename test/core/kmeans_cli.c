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

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "kmeans_cli: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

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

static double
gauss(MlRng *r)
{
	double		u = ml_rng_uniform(r),
				v = ml_rng_uniform(r);

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static void
print_num(const char *key, double v)
{
	if (isnan(v))
		printf("%s=nan\n", key);
	else
		printf("%s=%.17g\n", key, v);
}

int
main(int argc, char **argv)
{
	const char *csv = NULL,
			   *given_path = NULL,
			   *labels_out = NULL,
			   *centroids_out = NULL,
			   *metrics_labels = NULL,
			   *dump = NULL,
			   *bench = NULL;
	char		sep = 0;
	int			cols[1024],
				ncols = 0,
				threads = 1,
				repeat = 1,
				time_metrics = 0,
				a,
				r;
	unsigned	flags = 0;
	KmParams	p;
	MlEnv		env;
	double	   *X,
			   *given = NULL;
	int64_t		n;
	int			d;
	int		   *labels;
	KmModel		model;
	KmResult	res;
	MlError		err = {0};
	double		best_t = INFINITY,
				best_cpu = INFINITY;
	MlStatus	st = ML_OK;

	memset(&p, 0, sizeof(p));
	p.k = 8;
	p.init = KM_INIT_KMEANSPP;
	p.n_init = 1;
	p.max_iter = 300;
	p.tol = 1e-4;
	p.seed = 42;
	p.batch_size = 1024;
	p.sample_size = 10000;
	for (a = 1; a < argc; a++)
	{
		const char *o = argv[a];
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;

#define OPT(name) (strcmp(o, name) == 0 && (v || (die("%s needs a value", o), 0)) && ++a)
		if (OPT("--csv"))
			csv = v;
		else if (OPT("--sep"))
			sep = strcmp(v, "tab") == 0 ? '\t' : v[0];
		else if (OPT("--cols"))
		{
			char	   *s = strdup(v),
					   *tok;

			for (tok = strtok(s, ","); tok && ncols < 1024; tok = strtok(NULL, ","))
				cols[ncols++] = atoi(tok);
			free(s);
		}
		else if (OPT("--k"))
			p.k = atoi(v);
		else if (OPT("--init"))
			p.init = strcmp(v, "given") == 0 ? KM_INIT_GIVEN :
				strcmp(v, "random") == 0 ? KM_INIT_RANDOM : KM_INIT_KMEANSPP;
		else if (OPT("--given"))
			given_path = v;
		else if (OPT("--n-init"))
			p.n_init = atoi(v);
		else if (OPT("--max-iter"))
			p.max_iter = atoi(v);
		else if (OPT("--tol"))
			p.tol = atof(v);
		else if (OPT("--distance"))
			p.distance = strcmp(v, "cosine") == 0 ? KM_DIST_COSINE : KM_DIST_L2;
		else if (strcmp(o, "--standardize") == 0)
			p.standardize = true;
		else if (OPT("--seed"))
			p.seed = strtoull(v, NULL, 10);
		else if (strcmp(o, "--minibatch") == 0)
			p.minibatch = true;
		else if (OPT("--batch-size"))
			p.batch_size = atoi(v);
		else if (OPT("--sample-size"))
			p.sample_size = atoll(v);
		else if (OPT("--threads"))
			threads = atoi(v);
		else if (strcmp(o, "--plain") == 0)
			flags |= KM_FLAG_PLAIN_LLOYD;
		else if (strcmp(o, "--time-metrics") == 0)
			time_metrics = 1;
		else if (strcmp(o, "--double-sums") == 0)
			flags |= KM_FLAG_DOUBLE_SUMS;
		else if (strcmp(o, "--no-metrics") == 0)
			flags |= KM_FLAG_NO_METRICS;
		else if (OPT("--repeat"))
			repeat = atoi(v);
		else if (OPT("--labels-out"))
			labels_out = v;
		else if (OPT("--centroids-out"))
			centroids_out = v;
		else if (OPT("--metrics-labels"))
			metrics_labels = v;
		else if (OPT("--bench"))
			bench = v;
		else if (OPT("--dump"))
			dump = v;
		else
			die("unknown option %s (see the comment at the top of kmeans_cli.c)", o);
#undef OPT
	}
	env = mlt_env(threads);

	if (bench)
	{
		long long	bn = 0;
		int			bd = 0,
					bk = 0,
					c,
					j;
		double		sd = 1.0;
		double	   *centres;
		MlRng		rng;
		int64_t		i;

		if (sscanf(bench, "%lld,%d,%d,%lf", &bn, &bd, &bk, &sd) < 3 || bn < 1 || bd < 1 || bk < 1)
			die("--bench wants N,D,K[,STD], not %s", bench);
		n = bn;
		d = bd;
		p.k = bk;
		X = malloc(sizeof(double) * n * d);
		centres = malloc(sizeof(double) * bk * d);
		given = malloc(sizeof(double) * bk * d);
		if (!X || !centres || !given)
			die("out of memory for %s", bench);
		ml_rng_seed(&rng, 20240501);
		for (c = 0; c < bk * d; c++)
			centres[c] = -10.0 + 20.0 * ml_rng_uniform(&rng);
		for (i = 0; i < n; i++)
		{
			int			blob = (int) ml_rng_below(&rng, bk);

			for (j = 0; j < d; j++)
				X[i * d + j] = centres[blob * d + j] + sd * gauss(&rng);
		}
		for (c = 0; c < bk; c++)
			memcpy(given + c * d, X + ml_rng_below(&rng, n) * d, sizeof(double) * d);
		p.init = KM_INIT_GIVEN;
		p.given = given;
		p.n_init = 1;
		if (dump)
		{
			char		path[4096];
			FILE	   *f = fopen(dump, "wb");

			if (!f || fwrite(X, sizeof(double), n * d, f) != (size_t) (n * d) || fclose(f))
				die("cannot write %s", dump);
			snprintf(path, sizeof(path), "%s.init", dump);
			f = fopen(path, "wb");
			if (!f || fwrite(given, sizeof(double), bk * d, f) != (size_t) (bk * d) || fclose(f))
				die("cannot write %s", path);
		}
		free(centres);
	}
	else
	{
		if (!csv)
			die("%s", "give --csv FILE or --bench N,D,K");
		X = read_csv(csv, sep, cols, ncols, &n, &d);
		if (given_path)
		{
			int64_t		gk;
			int			gd;

			given = read_csv(given_path, 0, NULL, 0, &gk, &gd);
			if (gd != d)
				die("%s: centroids have the wrong width", given_path);
			p.k = (int) gk;
			p.given = given;
		}
	}
	printf("rows=%lld\nfeatures=%d\nthreads=%d\n", (long long) n, d, threads);

	if (metrics_labels)
	{
		int		   *lab = read_labels(metrics_labels, n);
		int			k = 0;
		int64_t		i;
		double		v;
		double		t0;

		for (i = 0; i < n; i++)
			if (lab[i] + 1 > k)
				k = lab[i] + 1;
		t0 = now_s();
		if ((st = cluster_silhouette(&env, X, n, d, lab, k, p.sample_size, p.seed, &v, &err)) == ML_OK)
			print_num("silhouette", v);
		printf("silhouette_seconds=%.6f\n", now_s() - t0);
		t0 = now_s();
		if (st == ML_OK && (st = cluster_calinski_harabasz(&env, X, n, d, lab, k, &v, &err)) == ML_OK)
			print_num("calinski_harabasz", v);
		if (st == ML_OK && (st = cluster_davies_bouldin(&env, X, n, d, lab, k, &v, &err)) == ML_OK)
			print_num("davies_bouldin", v);
		printf("ch_db_seconds=%.6f\n", now_s() - t0);
		if (st != ML_OK)
		{
			printf("error=%d %s\n", st, err.msg);
			return 1;
		}
		return 0;
	}

	labels = malloc(sizeof(int) * n);
	for (r = 0; r < repeat; r++)
	{
		double		t0 = now_s(),
					c0 = cpu_s(),
					t,
					ct;

		st = kmeans_fit_ex(&env, X, n, d, &p, flags, labels, &model, &res, &err);
		t = now_s() - t0;
		ct = cpu_s() - c0;
		if (st != ML_OK)
			break;
		if (t < best_t)
			best_t = t;
		if (ct < best_cpu)
			best_cpu = ct;
		if (r + 1 < repeat)
			kmeans_model_free(&env, &model);
	}
	if (st != ML_OK)
	{
		printf("error=%d %s\n", st, err.msg);
		return 1;
	}
	print_num("inertia", res.inertia);
	printf("iterations=%d\nbest_init=%d\n", res.iterations, res.best_init);
	print_num("silhouette", res.silhouette);
	print_num("calinski_harabasz", res.calinski_harabasz);
	print_num("davies_bouldin", res.davies_bouldin);
	printf("fit_seconds=%.6f\nfit_cpu_seconds=%.6f\n", best_t, best_cpu);
	if (time_metrics)
	{
		/* the metrics alone, on the raw rows and the fit's labels */
		double		v,
					t0 = now_s();
		MlStatus	ms;

		ms = cluster_silhouette(&env, X, n, d, labels, model.k, p.sample_size, p.seed, &v, &err);
		printf("silhouette_seconds=%.6f (%s)\n", now_s() - t0, ms == ML_OK ? "ok" : err.msg);
		t0 = now_s();
		ms = cluster_calinski_harabasz(&env, X, n, d, labels, model.k, &v, &err);
		printf("calinski_harabasz_seconds=%.6f (%s)\n", now_s() - t0, ms == ML_OK ? "ok" : err.msg);
		t0 = now_s();
		ms = cluster_davies_bouldin(&env, X, n, d, labels, model.k, &v, &err);
		printf("davies_bouldin_seconds=%.6f (%s)\n", now_s() - t0, ms == ML_OK ? "ok" : err.msg);
	}
	if (labels_out)
	{
		FILE	   *f = fopen(labels_out, "w");
		int64_t		i;

		if (!f)
			die("cannot write %s", labels_out);
		for (i = 0; i < n; i++)
			fprintf(f, "%d\n", labels[i]);
		fclose(f);
	}
	if (centroids_out)
	{
		FILE	   *f = fopen(centroids_out, "w");
		int			c,
					j;

		if (!f)
			die("cannot write %s", centroids_out);
		for (c = 0; c < model.k; c++)
			for (j = 0; j < d; j++)
				fprintf(f, "%.17g%c", model.centroids[c * d + j], j + 1 < d ? ',' : '\n');
		fclose(f);
	}
	kmeans_model_free(&env, &model);
	free(labels);
	free(X);
	free(given);
	return 0;
}
