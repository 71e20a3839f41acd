/*
 * seed_artifact.c: writes a few valid model artifacts into the directory
 * given as argv[1], as the seed corpus of fuzz_artifact: k-means models
 * (ml_model_write_kmeans), tree models of every algorithm and task trained
 * on a tiny synthetic set (once trees.c is linked; weak symbols until then),
 * binary ones with a DECISION section (threshold, isotonic or Platt calibration),
 * and META-only artifacts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "kmeans.h"
#include "model.h"
#include "preprocess.h"
#include "trees.h"

#pragma weak trees_params_default
#pragma weak trees_bins_fit
#pragma weak trees_bins_apply
#pragma weak trees_fit
#pragma weak trees_write
#pragma weak trees_kind

static void *
seed_alloc(void *ctx, size_t n)
{
	return malloc(n);
}

static void
seed_free(void *ctx, void *p)
{
	free(p);
}

static const MlEnv env = {seed_alloc, seed_free, NULL, NULL, 1};
static char *names[] = {"x", "y", "z", "w"};
static char *labels[] = {"no", "yes", "maybe"};

static void
die(const char *what, const MlError *err)
{
	fprintf(stderr, "seed_artifact: %s: %s\n", what, err->msg);
	exit(1);
}

/* Writes the finished artifact in b to dir/name. */
static void
save(MlBuf *b, const char *dir, const char *name)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
	free(b->data);
}

static void
seed_kmeans(const char *dir, const char *name, int k, int d, KmDistance dist,
			bool standardize, bool anomaly)
{
	double		scales[3] = {0.5, 1.0, 0.0};
	KmAnomaly	an = {true, 0.01, 2.5, scales};
	double		mean[4] = {1.5, -2.0, 0.25, 10.0};
	double		scale[4] = {2.0, 0.5, 1.0, 3.0};
	double		centroids[3 * 4];
	double		counts[3] = {10, 5, 1};
	MlMeta		meta = {ML_TASK_CLUSTER, (uint32_t) d, names, 0, NULL};
	KmModel		m;
	MlModel		back;
	MlError		err = {0};
	MlBuf		b;
	int			i;

	for (i = 0; i < k * d; i++)
		centroids[i] = (i % 2 ? -1.0 : 1.0) * (i + 1) / 4.0;
	for (i = 0; dist == KM_DIST_COSINE && i < k; i++)
	{
		double		norm = 0;
		int			j;

		for (j = 0; j < d; j++)
			norm += centroids[i * d + j] * centroids[i * d + j];
		for (j = 0; j < d; j++)
			centroids[i * d + j] /= sqrt(norm);
	}
	memset(&m, 0, sizeof(m));
	m.k = k;
	m.d = d;
	m.distance = dist;
	m.standardize = standardize;
	m.centroids = centroids;
	m.counts = counts;
	if (standardize)
	{
		m.mean = mean;
		m.scale = scale;
	}
	if (ml_model_write_kmeans(&b, &env, &meta, &m, NULL, anomaly ? &an : NULL, &err) != ML_OK)
		die(name, &err);
	if (ml_model_read(&env, b.data, b.len, &back, &err) != ML_OK)
		die(name, &err);		/* a seed the reader rejects is no seed */
	save(&b, dir, name);
}

/*
 * Trains a small tree model on 64 synthetic rows (one NaN) and saves it,
 * with a DECISION section (format 3) when dec is not NULL; a model that
 * does not train is left out with a warning.
 */
static void
seed_trees(const char *dir, const char *name, TreeAlgorithm algo, MlTask task,
		   int n_classes, const MlDecision *dec)
{
	enum
	{
		N = 64, D = 3
	};
	double		X[D * N];		/* column-major */
	double		y[N];
	int32_t		yc[N];
	uint8_t		B[N * D];
	TreeParams	p;
	TreeBins	bins;
	TreeData	data;
	TreeModel	m;
	MlMeta		meta = {task, D, names, (uint32_t) n_classes, labels};
	MlError		err = {0};
	MlBuf		b;
	size_t		at;
	int			i;

	for (i = 0; i < N; i++)
	{
		X[i] = i % 8;
		X[N + i] = ((i * 7) % 13) / 3.0;
		X[2 * N + i] = i == 5 ? NAN : i * 0.5;
		y[i] = 2.0 * X[i] - X[N + i];
		yc[i] = (i % 8 + i / 16) % (n_classes ? n_classes : 1);
	}
	trees_params_default(&p, algo, task);
	p.max_depth = 3;
	p.n_estimators = 3;
	p.seed = 7;
	if (trees_bins_fit(&env, X, N, D, p.max_bins, 0, 7, &bins, &err) != ML_OK)
	{
		fprintf(stderr, "seed_artifact: %s left out: %s\n", name, err.msg);
		return;
	}
	trees_bins_apply(NULL, &bins, X, N, B, 0);
	memset(&data, 0, sizeof(data));
	data.B = B;
	data.n = N;
	data.d = D;
	data.bins = &bins;
	data.y_class = task == ML_TASK_CLASSIFY ? yc : NULL;
	data.n_classes = n_classes;
	data.y = task == ML_TASK_REGRESS ? y : NULL;
	if (trees_fit(&env, &data, &p, &m, NULL, &err) != ML_OK)
	{
		fprintf(stderr, "seed_artifact: %s left out: %s\n", name, err.msg);
		return;
	}
	if (dec)
	{
		MlModel		back;

		(void) at;
		if (ml_model_write_trees(&b, &env, &meta, &m, NULL, dec, &err) != ML_OK ||
			ml_model_read(&env, b.data, b.len, &back, &err) != ML_OK)
			die(name, &err);
		save(&b, dir, name);
		return;
	}
	artifact_begin(&b, &env, trees_kind(&m));
	artifact_write_meta(&b, &meta);
	at = artifact_section_begin(&b, ML_SEC_MODEL);
	trees_write(&b, &m);
	artifact_section_end(&b, at);
	if (artifact_finish(&b, &err) != ML_OK)
		die(name, &err);
	save(&b, dir, name);
}

/*
 * A k-means model with a PREPROCESS section (format 2): a number imputed
 * and scaled, a text column one-hot with NULL as a level, one ordinal, one
 * target-encoded (the fit sees a made-up target), fitted by prep_fit on 12
 * rows so the fitting code builds the seed.
 */
static void
seed_prep(const char *dir, const char *name, int target_encoding)
{
	enum
	{
		N = 12, D = 3
	};
	static char *dict_a[] = {"red", "green", NULL, "blue"};
	static char *dict_b[] = {"x", "y"};
	char	  **dicts[D] = {NULL, dict_a, dict_b};
	uint32_t	dict_n[D] = {0, 4, 2};
	const char *cols[D] = {"amount", "colour", "tag"};
	bool		cat[D] = {false, true, true};
	PpSpec		spec[D] = {{PP_IMPUTE_MEAN, PP_SCALE_STANDARD, -1}, {-1, -1, PP_ENCODE_ONEHOT},
	{PP_IMPUTE_MODE, -1, target_encoding ? PP_ENCODE_TARGET : PP_ENCODE_ORDINAL}};
	double		X[N * D];
	int32_t		yc[N];
	PpFitData	fd;
	MlPrep		prep;
	uint32_t  **code_level;
	double		centroids[2 * 8];
	double		counts[2] = {6, 6};
	char	   *out_names[8];
	MlMeta		meta;
	KmModel		m;
	MlModel		back;
	MlError		err = {0};
	MlBuf		b;
	uint32_t	i,
				j,
				k;

	for (i = 0; i < N; i++)
	{
		X[i * D] = i == 3 ? NAN : i * 1.5;
		X[i * D + 1] = i % 4;
		X[i * D + 2] = i % 2;
		yc[i] = (int32_t) (i % 3);
	}
	memset(&fd, 0, sizeof(fd));
	fd.n = N;
	fd.n_in = D;
	fd.X = X;
	fd.dict = dicts;
	fd.dict_n = dict_n;
	fd.names = cols;
	fd.categorical = cat;
	fd.y_class = target_encoding ? yc : NULL;
	fd.n_classes = target_encoding ? 3 : 0;
	if (prep_fit(&env, &fd, spec, &prep, &code_level, &err) != ML_OK)
		die(name, &err);
	for (i = 0, k = 0; i < prep.n_in; i++)
		for (j = 0; j < prep.cols[i].width && k < 8; j++)
			out_names[k++] = prep_output_name(&env, &prep.cols[i], j);
	if (k != prep.n_out)
	{
		fprintf(stderr, "seed_artifact: %s: %u outputs\n", name, prep.n_out);
		exit(1);
	}
	for (i = 0; i < 2 * prep.n_out; i++)
		centroids[i] = (i % 3) * 0.5;
	memset(&meta, 0, sizeof(meta));
	meta.task = ML_TASK_CLUSTER;
	meta.n_features = prep.n_out;
	meta.feature_names = out_names;
	memset(&m, 0, sizeof(m));
	m.k = 2;
	m.d = (int) prep.n_out;
	m.distance = KM_DIST_L2;
	m.centroids = centroids;
	m.counts = counts;
	if (ml_model_write_kmeans(&b, &env, &meta, &m, &prep, NULL, &err) != ML_OK)
		die(name, &err);
	if (ml_model_read(&env, b.data, b.len, &back, &err) != ML_OK)
		die(name, &err);
	save(&b, dir, name);
}

/* An artifact with only its META section. */
static void
seed_meta(const char *dir, const char *name, MlKind kind, MlTask task,
		  uint32_t n_classes)
{
	MlMeta		meta = {task, 3, names, n_classes, labels};
	MlError		err = {0};
	MlBuf		b;

	artifact_begin(&b, &env, kind);
	artifact_write_meta(&b, &meta);
	if (artifact_finish(&b, &err) != ML_OK)
		die(name, &err);
	save(&b, dir, name);
}

int
main(int argc, char **argv)
{
	const char *dir = argv[1];
	double		kx[] = {0.1, 0.5, 0.9},
				ky[] = {0.0, 0.25, 1.0};
	MlDecision	iso = {true, true, 0.3, CAL_ISOTONIC, 0, 0, 3, kx, ky},
				platt = {true, false, 0, CAL_PLATT, -4.0, 2.0, 0, NULL, NULL};

	if (argc != 2)
	{
		fprintf(stderr, "usage: seed_artifact DIR\n");
		return 2;
	}
	seed_kmeans(dir, "kmeans_l2", 2, 2, KM_DIST_L2, false, false);
	seed_kmeans(dir, "kmeans_std", 3, 4, KM_DIST_L2, true, false);
	seed_kmeans(dir, "kmeans_cosine", 3, 3, KM_DIST_COSINE, false, false);
	seed_kmeans(dir, "kmeans_k1", 1, 1, KM_DIST_L2, true, false);
	seed_kmeans(dir, "kmeans_anomaly", 3, 4, KM_DIST_L2, true, true);
	if (trees_fit && trees_write)
	{
		seed_trees(dir, "tree_classify", TREE_ALGO_DECISION_TREE, ML_TASK_CLASSIFY, 3, NULL);
		seed_trees(dir, "tree_regress", TREE_ALGO_DECISION_TREE, ML_TASK_REGRESS, 0, NULL);
		seed_trees(dir, "forest_classify", TREE_ALGO_RANDOM_FOREST, ML_TASK_CLASSIFY, 2, NULL);
		seed_trees(dir, "forest_regress", TREE_ALGO_RANDOM_FOREST, ML_TASK_REGRESS, 0, NULL);
		seed_trees(dir, "gbt_binary", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 2, NULL);
		seed_trees(dir, "gbt_multi", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 3, NULL);
		seed_trees(dir, "gbt_regress", TREE_ALGO_GBT, ML_TASK_REGRESS, 0, NULL);
		/* binary models with a threshold and each calibration (DECISION, format 3) */
		seed_trees(dir, "gbt_binary_isotonic", TREE_ALGO_GBT, ML_TASK_CLASSIFY, 2, &iso);
		seed_trees(dir, "forest_binary_platt", TREE_ALGO_RANDOM_FOREST, ML_TASK_CLASSIFY, 2, &platt);
	}
	else
		fprintf(stderr, "seed_artifact: trees.c not linked yet, no tree seeds\n");
	seed_prep(dir, "kmeans_prep_ordinal", 0);
	seed_prep(dir, "kmeans_prep_target", 1);
	seed_meta(dir, "meta_cluster", ML_KIND_KMEANS, ML_TASK_CLUSTER, 0);
	seed_meta(dir, "meta_tree_classify", ML_KIND_DECISION_TREE, ML_TASK_CLASSIFY, 3);
	seed_meta(dir, "meta_gbt_regress", ML_KIND_GBT, ML_TASK_REGRESS, 0);
	return 0;
}
