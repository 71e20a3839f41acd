/*
 * fuzz_xgb_import.c: libFuzzer target for the XGBoost JSON importer.
 *
 * Each input is parsed as a model document (xgb_import_json). A model the
 * importer accepts is scored on a row of zeros and a row of NaN, and
 * explained (TreeSHAP on the imported covers) on both, so whatever the
 * importer lets through must be safe to score and explain. The seed corpus
 * is test/fuzz/corpus_xgb_import/ (small models saved by XGBoost 1.7). All
 * allocations go through a tracking MlEnv with a budget and are freed after
 * each input, as the PostgreSQL glue does with its memory context.
 */
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "xgb_import.h"

#define FUZZ_ALLOC_BUDGET ((size_t) 256 << 20)

typedef union FuzzBlock
{
	struct
	{
		union FuzzBlock *prev;
		union FuzzBlock *next;
		size_t		size;
	}			h;
	long double align;			/* keeps the payload malloc-aligned */
} FuzzBlock;

typedef struct FuzzPool
{
	FuzzBlock	head;			/* circular list of live blocks */
	size_t		used;
} FuzzPool;

static void *
fuzz_alloc(void *ctx, size_t size)
{
	FuzzPool   *pool = ctx;
	FuzzBlock  *b;

	if (size > FUZZ_ALLOC_BUDGET - pool->used)
		return NULL;
	b = malloc(sizeof(FuzzBlock) + size);
	if (b == NULL)
		return NULL;
	b->h.size = size;
	b->h.prev = &pool->head;
	b->h.next = pool->head.h.next;
	pool->head.h.next->h.prev = b;
	pool->head.h.next = b;
	pool->used += size;
	return b + 1;
}

static void
fuzz_free(void *ctx, void *ptr)
{
	FuzzPool   *pool = ctx;
	FuzzBlock  *b = (FuzzBlock *) ptr - 1;

	b->h.prev->h.next = b->h.next;
	b->h.next->h.prev = b->h.prev;
	pool->used -= b->h.size;
	free(b);
}

static int
fuzz_check(void *ctx, const char *stage, int iter, int max_iter, double value)
{
	return 0;
}

/* Scores and explains a row of zeros and a row of NaN with an imported model. */
static void
use_model(const MlEnv *env, XgbImport *imp)
{
	TreeModel  *m = &imp->model;
	TreeExplainer *ex = NULL;
	MlError		err = {0};
	uint32_t	d = m->n_features,
				j;
	double	   *x = ml_calloc(env, d, sizeof(double));
	double	   *out = ml_calloc(env, m->n_outputs + tree_explain_n_outputs(m), sizeof(double));
	double	   *phi = ml_calloc(env, (size_t) tree_explain_n_outputs(m) * (d + 1), sizeof(double));

	if (!x || !out || !phi)
		return;
	if (tree_explainer_build(env, m, imp->cover, &ex, &err) != ML_OK)
		ex = NULL;
	trees_predict_row(m, x, out);
	tree_explain_raw(m, x, out);
	if (ex)
		tree_explain_row(ex, x, phi);
	for (j = 0; j < d; j++)
		x[j] = NAN;
	trees_predict_row(m, x, out);
	if (ex)
		tree_explain_row(ex, x, phi);
	tree_explainer_free(env, ex);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzPool	pool;
	MlEnv		env = {fuzz_alloc, fuzz_free, fuzz_check, &pool, 1};
	MlError		err = {0};
	XgbImport	imp;

	pool.head.h.prev = pool.head.h.next = &pool.head;
	pool.used = 0;
	if (xgb_import_json(&env, (const char *) data, size, &imp, &err) == ML_OK)
		use_model(&env, &imp);
	/* everything else the importer allocated, ok or not, goes in bulk */
	while (pool.head.h.next != &pool.head)
		fuzz_free(&pool, pool.head.h.next + 1);
	return 0;
}
