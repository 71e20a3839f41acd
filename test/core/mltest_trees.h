/*
 * mltest_trees.h: what the tree unit tests share: a model's bytes hashed.
 */
#ifndef MLTEST_TREES_H
#define MLTEST_TREES_H

#include <stdint.h>

#include "mlbuf.h"
#include "trees.h"

/* FNV-1a of a model's serialised bytes (trees_write). */
static inline uint64_t
mlt_model_hash(MlEnv *env, const TreeModel *m)
{
	MlBuf		b;
	uint64_t	h = 1469598103934665603ULL;
	size_t		i;

	ml_buf_init(&b, env);
	trees_write(&b, m);
	for (i = 0; i < b.len; i++)
	{
		h ^= (uint8_t) b.data[i];
		h *= 1099511628211ULL;
	}
	ml_free(env, b.data);
	return h;
}

#endif
