/*
 * explain_cli: imports an XGBoost JSON model and scores / explains rows with
 * the core, for the peer check against XGBoost (test/peer/
 * test_xgb_import_shap.py) and for timing TreeSHAP alone.
 *
 *   explain_cli MODEL.json ROWS.csv OUT_PREFIX     writes OUT_PREFIX.pred
 *       (probabilities or value per row), .raw (margins) and .phi
 *       (contributions, XGBoost's pred_contribs layout, one row per line)
 *   explain_cli MODEL.json ROWS.csv -time [threads]  explains every row,
 *       prints "explain_seconds W cpu_seconds C" (wall and process CPU
 *       time of the explanation alone)
 *
 * ROWS.csv: numbers only, comma separated, no header; "nan" or an empty
 * cell is missing. The imported model goes through the artifact codec
 * (trees_write, trees_read) before use, as an artifact would. Prints
 * "max_additivity_error E": the largest |sum(phi) - raw output| seen.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "explain.h"
#include "xgb_import.h"

static void *
cli_alloc(void *ctx, size_t n)
{
	return malloc(n);
}

static void
cli_free(void *ctx, void *p)
{
	free(p);
}

static int
cli_check(void *ctx, const char *s, int i, int m, double v)
{
	return 0;
}

static double
wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (!f)
	{
		perror(path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	if (!buf || fread(buf, 1, n, f) != (size_t) n)
	{
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	buf[n] = 0;
	fclose(f);
	*len = (size_t) n;
	return buf;
}

/* Rows of d numbers from a CSV text; returns the row count. */
static int64_t
parse_rows(char *text, int d, double **out)
{
	int64_t		cap = 1024,
				n = 0;
	double	   *X = malloc(sizeof(double) * cap * d);
	char	   *p = text;

	while (*p)
	{
		int			j;

		if (*p == '\n')
		{
			p++;
			continue;
		}
		if (n == cap)
		{
			cap *= 2;
			X = realloc(X, sizeof(double) * cap * d);
		}
		for (j = 0; j < d; j++)
		{
			char	   *end;
			double		v = strtod(p, &end);

			if (end == p)
				v = NAN;
			X[n * d + j] = v;
			p = end;
			while (*p && *p != ',' && *p != '\n')
				p++;
			if (*p == ',')
				p++;
		}
		while (*p && *p != '\n')
			p++;
		n++;
	}
	*out = X;
	return n;
}

static void
write_rows(const char *prefix, const char *ext, const double *v, int64_t n, size_t w)
{
	char		path[1024];
	FILE	   *f;
	int64_t		i;
	size_t		k;

	snprintf(path, sizeof(path), "%s.%s", prefix, ext);
	f = fopen(path, "w");
	if (!f)
	{
		perror(path);
		exit(2);
	}
	for (i = 0; i < n; i++)
		for (k = 0; k < w; k++)
			fprintf(f, "%.17g%c", v[i * w + k], k + 1 == w ? '\n' : ' ');
	fclose(f);
}

int
main(int argc, char **argv)
{
	MlEnv		env = {cli_alloc, cli_free, cli_check, NULL, 1};
	MlError		err = {0};
	XgbImport	imp;
	TreeModel	m;
	TreeExplainer *ex;
	MlBuf		buf;
	MlReader	r;
	size_t		len;
	char	   *doc,
			   *rows;
	double	   *X,
			   *phi,
			   *raw,
			   *pred,
				max_err = 0;
	int64_t		n,
				i;
	uint32_t	d,
				K,
				c,
				j;
	bool		timing;

	if (argc < 4)
	{
		fprintf(stderr, "usage: explain_cli MODEL.json ROWS.csv OUT_PREFIX | -time [threads]\n");
		return 2;
	}
	timing = strcmp(argv[3], "-time") == 0;
	if (timing && argc > 4)
		env.n_threads = atoi(argv[4]);
	doc = slurp(argv[1], &len);
	if (xgb_import_json(&env, doc, len, &imp, &err) != ML_OK)
	{
		fprintf(stderr, "import failed (%d): %s\n", err.code, err.msg);
		return 1;
	}
	free(doc);
	/* through the codec, as an artifact */
	ml_buf_init(&buf, &env);
	trees_write(&buf, &imp.model);
	ml_rd_init(&r, buf.data, buf.len, &env, &err);
	if (!trees_read(&r, &env, &m))
	{
		fprintf(stderr, "codec round trip failed: %s\n", err.msg);
		return 1;
	}
	free(buf.data);
	d = m.n_features;
	K = tree_explain_n_outputs(&m);
	rows = slurp(argv[2], &len);
	n = parse_rows(rows, (int) d, &X);
	free(rows);
	if (tree_explainer_build(&env, &m, imp.cover, &ex, &err) != ML_OK)
	{
		fprintf(stderr, "explainer: %s\n", err.msg);
		return 1;
	}
	phi = malloc(sizeof(double) * n * K * (d + 1));
	raw = malloc(sizeof(double) * n * K);
	pred = malloc(sizeof(double) * n * m.n_outputs);
	{
		double		t0 = wall_now(),
					c0 = cpu_now();

		if (tree_explain_batch(&env, ex, X, n, phi, &err) != ML_OK)
		{
			fprintf(stderr, "explain: %s\n", err.msg);
			return 1;
		}
		if (timing)
			printf("explain_seconds %.4f cpu_seconds %.4f\n", wall_now() - t0, cpu_now() - c0);
	}
	trees_predict_batch(NULL, &m, X, n, pred);
	for (i = 0; i < n; i++)
	{
		tree_explain_raw(&m, X + i * d, raw + i * K);
		for (c = 0; c < K; c++)
		{
			const double *p = phi + (i * K + c) * (d + 1);
			double		s = 0;

			for (j = 0; j <= d; j++)
				s += p[j];
			if (fabs(s - raw[i * K + c]) > max_err)
				max_err = fabs(s - raw[i * K + c]);
		}
	}
	printf("rows %lld features %u outputs %u trees %u\n", (long long) n, d, K, m.n_trees);
	printf("max_additivity_error %.3g\n", max_err);
	if (!timing)
	{
		write_rows(argv[3], "pred", pred, n, m.n_outputs);
		write_rows(argv[3], "raw", raw, n, K);
		write_rows(argv[3], "phi", phi, n, (size_t) K * (d + 1));
	}
	tree_explainer_free(&env, ex);
	trees_model_free(&env, &m);
	xgb_import_free(&env, &imp);
	free(X);
	free(phi);
	free(raw);
	free(pred);
	return 0;
}
