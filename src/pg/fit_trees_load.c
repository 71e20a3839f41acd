/*
 * fit_trees_load.c: reading a training source for the tree models.
 *
 * Pass 1 keeps a sample of TREES_SAMPLE rows (as doubles) for the bin
 * edges: the rows with the smallest content hashes seeded by params.seed,
 * so the same rows in any order give the same sample; while the source is
 * no larger than the sample (or preprocessing needs every row), it holds
 * every row with its target. Pass 2 (only for larger sources) reads the
 * source again and bins each row as it arrives, one byte per value. Either
 * way the rows are then put in the canonical order (ascending content hash,
 * ties by content: src/core/roworder.h) before anything depends on their
 * positions; with two passes, pass 1 keeps each row's sort key, so that
 * pass 2 writes each row where that order puts it (predict_slots) and
 * nothing moves afterwards when the source reads the same both times.
 * Targets become provisional label ids (text, boolean, enum targets) or
 * values, and at the end final class indices or regression values
 * (trees_finish_targets, fit_trees_targets.c).
 */
#include "fit_trees_int.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include <math.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Grows the per-row target arrays (and B, and the split column) to twice their rows. */
static void
load_grow_targets(TreeLoad *L)
{
	int64		newcap = L->cap ? L->cap * 2 : 65536;

	/* Labels need ids, numbers need values; integers may be either until the end. */
	bool		want_v = !L->classify_by_type;
	bool		want_l = L->classify_by_type;	/* integers get ids in finish_targets */

	if (want_v)
		L->yv = L->yv ? repalloc_huge(L->yv, sizeof(double) * newcap)
			: MemoryContextAllocHuge(L->mcxt, sizeof(double) * newcap);
	if (want_l)
		L->yl = L->yl ? repalloc_huge(L->yl, sizeof(int32) * newcap)
			: MemoryContextAllocHuge(L->mcxt, sizeof(int32) * newcap);
	if (L->B)
		L->B = repalloc_huge(L->B, (Size) newcap * L->d);
	if (L->rh)
		L->rh = repalloc_huge(L->rh, sizeof(uint64) * newcap);
	if (L->split_kind != SPLIT_COL_NONE)
		L->sv = L->sv ? repalloc_huge(L->sv, sizeof(double) * newcap)
			: MemoryContextAllocHuge(L->mcxt, sizeof(double) * newcap);
	L->cap = newcap;
}

/* The text of a target value, as target::text shows it. */
static char *
target_label(TreeLoad *L, Datum v)
{
	if (L->target_type == BOOLOID)
		return DatumGetBool(v) ? "true" : "false";
	return OutputFunctionCall(&L->out_fn, v);
}

/* The provisional id of a label: its order of first appearance. */
static int32
label_id(TreeLoad *L, const char *label)
{
	LabelEntry *e;
	bool		found;

	if (strlen(label) >= sizeof(e->key))
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("a class label is longer than %d bytes", (int) sizeof(e->key) - 1)));
	e = hash_search(L->label_ids, label, HASH_ENTER, &found);
	if (!found)
	{
		if (L->n_labels >= ML_MAX_CLASSES)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("the target has more than %d distinct classes", ML_MAX_CLASSES)));
		if (L->n_labels == L->labels_cap)
		{
			L->labels_cap = L->labels_cap ? L->labels_cap * 2 : 64;
			L->labels = L->labels ? repalloc(L->labels, sizeof(char *) * L->labels_cap)
				: MemoryContextAlloc(L->mcxt, sizeof(char *) * L->labels_cap);
		}
		L->labels[L->n_labels] = MemoryContextStrdup(L->mcxt, label);
		e->id = L->n_labels++;
	}
	return e->id;
}

/* A numeric target datum as a double. */
static double
target_number(TreeLoad *L, Datum d)
{
	switch (L->target_type)
	{
		case INT2OID: return DatumGetInt16(d);
		case INT4OID: return DatumGetInt32(d);
		case INT8OID: return (double) DatumGetInt64(d);
		case FLOAT4OID: return DatumGetFloat4(d);
		case FLOAT8OID: return DatumGetFloat8(d);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
	}
}

/*
 * The words a row's content hash mixes in after its features (LOAD_TAIL at
 * most; returns how many): its target as loaded (a label by its text, -0
 * as 0) and its split value. label, when not NULL, is the target's text
 * (already had by load_target).
 */
static int
load_tail(TreeLoad *L, const SourceTarget *t, const char *label, uint64 *w)
{
	int			k = 0;

	if (t->isnull)
		w[k++] = 1;
	else
	{
		w[k++] = 2;
		if (L->classify_by_type)
			k += ml_hash_text_words(label ? label : target_label(L, t->datum), w + k);
		else
		{
			double		v = target_number(L, t->datum);

			w[k++] = ml_double_bits(v == 0 ? 0.0 : v);
		}
	}
	if (L->split_kind != SPLIT_COL_NONE)
	{
		w[k++] = t->split_isnull ? 3 : 4;
		if (!t->split_isnull)
			w[k++] = ml_double_bits(t->split_value);
	}
	return k;
}

/*
 * The content hash of a row: its features (categorical ones by text), then
 * load_tail's words.
 */
static uint64
row_hash(TreeLoad *L, const double *x, const SourceTarget *t)
{
	uint64		h = row_hash_features(L->h0, x, L->d,
									  L->info->any_categorical ? L->info->categorical : NULL,
									  L->info->dicts);
	uint64		w[LOAD_TAIL];
	uint8		nw = (uint8) load_tail(L, t, NULL, w);

	ml_hash_tails(&h, w, LOAD_TAIL, &nw, 1);
	return h;
}

/*
 * Records the target of the next row at index at of yv, yl and sv (those
 * in use: pass 1 gives L's arrays, grown for it, pass 2 its block's);
 * false when the row is skipped.
 */
static bool
load_target(TreeLoad *L, const SourceTarget *t, int64 rowno, double *yv, int32 *yl, double *sv,
			int64 at)
{
	if (t->isnull)
	{
		if (L->on_null_error)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("the target is NULL in row " INT64_FORMAT, rowno),
							errhint("The default, params.on_null = 'skip', skips and counts such rows.")));
		L->skipped_target++;
		return false;
	}
	if (L->classify_by_type)
		yl[at] = label_id(L, target_label(L, t->datum));
	else
	{
		double		v = target_number(L, t->datum);

		if (!isfinite(v))
		{
			if (L->on_null_error)
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("the target is %s in row " INT64_FORMAT, isnan(v) ? "NaN" : "infinite", rowno)));
			L->skipped_target++;
			return false;
		}
		yv[at] = v == 0 ? 0.0 : v;	/* -0 and 0 are one class */
	}
	if (L->split_kind == SPLIT_COL_TIME && t->split_isnull)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("time split column \"%s\" is NULL in row " INT64_FORMAT, L->split_column, rowno),
						errhint("Every row needs a time to be placed before or after the split; filter such rows in the source.")));
	if (L->split_kind != SPLIT_COL_NONE)
		sv[at] = t->split_isnull ? 0.0 : t->split_value;	/* column split: NULL is a training row */
	return true;
}

/*
 * Whether pass 2's load_target will keep a row (without its errors: pass 2
 * raises them as before); pass 1 predicts the rows' places from it.
 */
static bool
target_usable(TreeLoad *L, const SourceTarget *t)
{
	if (t->isnull)
		return false;
	return L->classify_by_type || isfinite(target_number(L, t->datum));
}

/* Pass 1 sees the source's shape: the target's type decides labels or values. */
static void
pass1_plan(void *arg, const SourceInfo *info)
{
	TreeLoad   *L = arg;

	L->d = info->d;
	/* Values are read by the base type (domains); labels by the declared type. */
	L->target_type = getBaseType(info->target_type);
	switch (L->target_type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			L->int_target = true;
			break;
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			break;
		default:
			{
				/* text, varchar, char, boolean, enums, ...: class labels */
				Oid			outfn;
				bool		varlena;

				L->classify_by_type = true;
				getTypeOutputInfo(info->target_type, &outfn, &varlena);
				fmgr_info_cxt(outfn, &L->out_fn, L->mcxt);
			}
	}
	L->sample_cap = 0;
	L->sample_room = 0;
	L->sample_huge = false;
	L->keep_all = L->prep_param || info->any_categorical;
}

/* Rows of the buffered sample (sample_start_buf): the most pass 1 keeps without preprocessing. */
#define SAMPLE_BUF_ROWS (TREES_SAMPLE + TREES_SAMPLE / 16)

/* Largest sample allocated whole up front (sample_alloc). */
#define SAMPLE_ROOM_MAX_BYTES ((Size) 64 * 1024 * 1024)

/*
 * Allocates the sample's memory at first use. Without preprocessing (and
 * rows no wider than SAMPLE_ROOM_MAX_BYTES allows) that is the buffered
 * sample's whole size at once, as address space: pages are faulted in as
 * rows are written, so a small source uses no more memory, and a large one
 * neither moves the sample as it grows nor faults in 4 KB pages past its
 * first 8,192 rows (2 MB pages advised there: about 6,000 page faults fewer
 * for 28 features). mlpipe.max_memory is still checked on the rows in use.
 */
static void
sample_alloc(TreeLoad *L, int64 cap)
{
	Size		row = sizeof(double) * Max(L->d, 1);

	L->sample_room = cap;
	if (!L->keep_all && (Size) SAMPLE_BUF_ROWS * row <= SAMPLE_ROOM_MAX_BYTES)
	{
		L->sample_room = SAMPLE_BUF_ROWS;
		L->sample = MemoryContextAllocHuge(L->mcxt, row * L->sample_room);
		ml_advise_huge_pages((char *) L->sample + row * cap, row * (L->sample_room - cap));
		L->sample_huge = true;
		return;
	}
	L->sample = MemoryContextAllocHuge(L->mcxt, row * cap);
}

/*
 * Frees pass 1's sample (after the bin edges), first taking back the 2 MB
 * page advice sample_alloc gave: the memory may stay in malloc's heap.
 */
void
trees_load_free_sample(TreeLoad *L)
{
	if (L->sample_huge)
		ml_unadvise_huge_pages(L->sample, sizeof(double) * L->sample_room * Max(L->d, 1));
	pfree(L->sample);
	L->sample = NULL;
	L->sample_room = 0;
	L->sample_huge = false;
}

/* Makes room for one more sample row (the sample grows to TREES_SAMPLE rows). */
static void
sample_reserve(TreeLoad *L, int64 rows)
{
	int64		cap;
	Size		bytes;

	if (rows <= L->sample_cap)
		return;
	cap = Max(L->sample_cap * 2, 8192);
	if (!L->keep_all)
		cap = Min(cap, TREES_SAMPLE);
	bytes = (Size) cap * L->d * (sizeof(double) + 1) + (sizeof(int64) + sizeof(uint64)) * cap;
	pg_memory_check((double) bytes, "Raise mlpipe.max_memory, or train on a sample of the source.",
					"training data of " INT64_FORMAT " rows x %d features", cap, L->d);
	if (L->sample == NULL)
		sample_alloc(L, cap);
	else if (cap > L->sample_room)
	{
		L->sample = repalloc_huge(L->sample, sizeof(double) * cap * L->d);
		L->sample_room = cap;
	}
	L->sample_src = L->sample_src ? repalloc_huge(L->sample_src, sizeof(int64) * cap)
		: MemoryContextAllocHuge(L->mcxt, sizeof(int64) * cap);
	L->sample_prio = L->sample_prio ? repalloc_huge(L->sample_prio, sizeof(uint64) * cap)
		: MemoryContextAllocHuge(L->mcxt, sizeof(uint64) * cap);
	L->sample_cap = cap;
}

/*
 * The first time a row does not fit the full sample: from here on it keeps
 * the TREES_SAMPLE smallest hashes, as a buffer of a sixteenth more rows
 * that is cut back to them when full (MlSampleBuf: rows appended in order,
 * no heap). The sample grows to that buffer, here, in mlpipe.max_memory.
 * A sixteenth, not more: the buffer is pass 1's peak memory (a quarter
 * put an 800k-row fit at 2.15x its binned matrix, over issue #13's 2x),
 * and each cut costs a selection over it, ~1 ms.
 */
static void
sample_start_buf(TreeLoad *L)
{
	int64		cap = SAMPLE_BUF_ROWS;

	pg_memory_check((double) cap * (L->d * sizeof(double) + 2 * sizeof(uint64)) + (double) L->keys1_cap * sizeof(uint64),
					"Raise mlpipe.max_memory, or train on a sample of the source.",
					"training data of " INT64_FORMAT " rows x %d features", cap, L->d);
	L->sample_is_all = false;
	if (cap > L->sample_room)
	{
		L->sample = repalloc_huge(L->sample, sizeof(double) * cap * L->d);
		L->sample_room = cap;
	}
	L->sample_prio = repalloc_huge(L->sample_prio, sizeof(uint64) * cap);
	L->sample_cap = cap;
	memset(&L->sbuf, 0, sizeof(L->sbuf));
	L->sbuf.prio = L->sample_prio;
	L->sbuf.rows = L->sample;
	L->sbuf.row_bytes = sizeof(double) * L->d;
	L->sbuf.k = TREES_SAMPLE;
	L->sbuf.cap = cap;
	L->sbuf.n = L->seen;
	L->sbuf.scratch = MemoryContextAllocHuge(L->mcxt, sizeof(uint64) * cap);
}

/*
 * Doubles of padding after each column of a block: at 1,024 rows a column
 * is 8 KB, so without it a row's values (one per column) all fall in one
 * set of the L1 cache and alias at 4 KB, and block_add's stores of a row
 * miss L1 every time.
 */
#define LOAD_LD_PAD 8

/*
 * Sets up the two row blocks (LoadBlock): 1,024 rows, fewer for wide rows
 * (about 1 MB of doubles a block), a multiple of 32.
 */
static void
blocks_init(TreeLoad *L)
{
	int			cap = Max(32, Min(1024, (131072 / Max(L->d, 1)) & ~31));
	int			k;

	for (k = 0; k < 2; k++)
	{
		LoadBlock  *b = &L->blk[k];

		memset(b, 0, sizeof(*b));
		b->cap = cap;
		b->ld = cap + LOAD_LD_PAD;
		b->d = L->d;
		b->h0 = L->h0;
		b->x = MemoryContextAllocHuge(L->mcxt, sizeof(double) * b->ld * Max(L->d, 1));
		b->tail = MemoryContextAlloc(L->mcxt, sizeof(uint64) * LOAD_TAIL * cap);
		b->tail_n = MemoryContextAlloc(L->mcxt, cap);
		b->h = MemoryContextAlloc(L->mcxt, sizeof(uint64) * cap);
		b->row = MemoryContextAlloc(L->mcxt, sizeof(int64) * cap);
		b->binned = MemoryContextAlloc(L->mcxt, (Size) cap * Max(L->d, 1));
		b->yv = MemoryContextAlloc(L->mcxt, sizeof(double) * cap);
		b->yl = MemoryContextAlloc(L->mcxt, sizeof(int32) * cap);
		b->sv = MemoryContextAlloc(L->mcxt, sizeof(double) * cap);
		b->profile_h = MemoryContextAlloc(L->mcxt, sizeof(uint64) * cap);
	}
	L->cur = 0;
	L->posted = false;
}

/* Waits for the block on the pool worker, if one is there. */
static void
blocks_wait(TreeLoad *L)
{
	if (L->posted)
		ml_pool_wait(L->pe->env.pool);
	L->posted = false;
}

/*
 * Room in keys1 for one more row's sort key (waits for the block on the
 * pool worker first: it writes into keys1).
 */
static void
keys1_reserve(TreeLoad *L)
{
	int64		cap;

	if (L->n1 < L->keys1_cap)
		return;
	blocks_wait(L);
	cap = Max(L->keys1_cap * 2, 65536);
	pg_memory_check((double) cap * sizeof(uint64) + (double) L->sample_cap * L->d * (sizeof(double) + 1),
					"Raise mlpipe.max_memory, or train on a sample of the source.",
					"training data of " INT64_FORMAT " rows x %d features", cap, L->d);
	L->keys1 = L->keys1 ? repalloc_huge(L->keys1, sizeof(uint64) * cap)
		: MemoryContextAllocHuge(L->mcxt, sizeof(uint64) * cap);
	L->keys1_cap = cap;
}

/* Frees the blocks (after blocks_wait). */
static void
blocks_free(TreeLoad *L)
{
	int			k;

	for (k = 0; k < 2; k++)
	{
		pfree(L->blk[k].x);
		pfree(L->blk[k].tail);
		pfree(L->blk[k].tail_n);
		pfree(L->blk[k].h);
		pfree(L->blk[k].row);
		pfree(L->blk[k].binned);
		pfree(L->blk[k].yv);
		pfree(L->blk[k].yl);
		pfree(L->blk[k].sv);
		pfree(L->blk[k].profile_h);
		L->blk[k].x = NULL;
	}
}

/* Copies a row's features and tail words into the block being filled; its rows now. */
static int
block_add(TreeLoad *L, const double *x, const SourceTarget *t, const char *label)
{
	LoadBlock  *b = &L->blk[L->cur];
	int			j;

	for (j = 0; j < L->d; j++)
		b->x[(Size) j * b->ld + b->n] = x[j];
	b->tail_n[b->n] = (uint8) load_tail(L, t, label, b->tail + (Size) LOAD_TAIL * b->n);
	return ++b->n;
}

/* The hashes of a block's rows (plain C: runs on a pool worker). */
static void
block_hash(LoadBlock *b)
{
	int			i;

	for (i = 0; i < b->n; i++)
		b->h[i] = b->h0;
	ml_hash_columns(b->h, b->x, b->ld, b->d, b->n);
	ml_hash_tails(b->h, b->tail, LOAD_TAIL, b->tail_n, b->n);
}

/*
 * Hands the block being filled to a pool worker to run fn on (inline with
 * one thread), once the block before it is done, and starts the other.
 */
static void
blocks_flush(TreeLoad *L, MlTaskFn fn)
{
	LoadBlock  *b = &L->blk[L->cur];

	if (b->n == 0)
		return;
	blocks_wait(L);
	L->posted = ml_pool_post(L->pe->env.pool, fn, b);
	L->cur ^= 1;
	L->blk[L->cur].n = 0;
}

/*
 * Pass 1's work on a block of rows past the first TREES_SAMPLE: hashes
 * them, writes the sort keys of those with a target to keys1 and offers
 * them to the bottom-k sample in row order, as pass1_row did a row at a
 * time (the same sample), then to the training profile's sampler (the
 * same offers in the same order). Plain C: runs on a pool worker.
 */
static void
pass1_block_task(void *arg, int task, int n_tasks)
{
	LoadBlock  *b = arg;
	int			i,
				j;

	block_hash(b);
	for (i = 0; i < b->n; i++)
		if (b->row[i] >= 0)
			b->keys[b->row[i]] = ml_order_key(b->h[i], b->row[i]);
	for (i = 0; i < b->n; i++)
	{
		int64		slot = ml_sample_buf_slot(b->sbuf, b->h[i]);

		if (slot < 0)
			continue;
		for (j = 0; j < b->d; j++)
			b->sample[(Size) slot * b->d + j] = b->x[(Size) j * b->ld + i];
		ml_sample_buf_commit(b->sbuf, slot, b->h[i]);
	}
	if (b->profile)
		profile_offer_block(b->profile, b->x, b->ld, b->n, b->profile_h);
}

/* keys1's entries faulted in at a time ahead of the rows (4 KB pages: 32 faults) */
#define KEYS1_POPULATE 16384

/*
 * Hands pass 1's block over with where its sort keys go (keys1 as it is
 * now), first faulting in keys1's next KEYS1_POPULATE entries when the
 * block's rows reach them (ml_populate): one system call instead of a
 * page fault every 512 rows, and at most 128 KB faulted in ahead.
 */
static void
pass1_flush(TreeLoad *L)
{
	if (L->n1 > L->keys1_ready && L->keys1 != NULL)
	{
		int64		from = Min(L->keys1_ready, L->keys1_cap),
					to = Min(L->n1 + KEYS1_POPULATE, L->keys1_cap);

		ml_populate(L->keys1 + from, sizeof(uint64) * (to - from));
		L->keys1_ready = to;
	}
	L->blk[L->cur].keys = L->keys1;
	blocks_flush(L, pass1_block_task);
}

/*
 * Pass 1: the sample of the smallest content hashes; while it holds every
 * row, keep targets. Past that (no categorical columns then: those keep
 * every row), rows go to the sample a block at a time (pass1_block_task).
 */
static void
pass1_row(void *arg, const double *x, const SourceTarget *t, int64 rowno)
{
	TreeLoad   *L = arg;
	int64		slot;

	if (L->seen < TREES_SAMPLE || L->keep_all)
	{
		uint64		p = row_hash(L, x, t);

		if (L->profile)
			profile_add_row(L->profile, x);

		sample_reserve(L, L->seen + 1);
		slot = L->seen;
		if (L->n == L->cap)
			load_grow_targets(L);
		L->sample_src[slot] = load_target(L, t, rowno, L->yv, L->yl, L->sv, L->n) ? L->n++ : -1;
		L->sample_prio[slot] = p;
		memcpy(L->sample + (Size) slot * L->d, x, sizeof(double) * L->d);
		if (L->sample_src[slot] >= 0 && !L->keep_all)
		{
			keys1_reserve(L);
			L->keys1[L->n1] = ml_order_key(p, L->n1);
			L->n1++;
		}
	}
	else
	{
		int64		k = -1;
		int			n;

		if (L->sample_is_all)
		{
			sample_start_buf(L);
			blocks_init(L);
			L->blk[0].sbuf = L->blk[1].sbuf = &L->sbuf;
			/* the profile's rows from here on go with the blocks */
			if (L->profile && profile_block_ready(L->profile))
				L->blk[0].profile = L->blk[1].profile = L->profile;
			L->blk[0].sample = L->blk[1].sample = L->sample;
		}
		if (L->profile && L->blk[L->cur].profile == NULL)
			profile_add_row(L->profile, x);
		if (target_usable(L, t))
		{
			keys1_reserve(L);
			k = L->n1++;
		}
		n = block_add(L, x, t, NULL);
		L->blk[L->cur].row[n - 1] = k;
		if (n == L->blk[L->cur].cap)
			pass1_flush(L);
	}
	L->seen++;
}

/* Pass 2 reads the source again: it must have the shape pass 1 saw. */
static void
pass2_plan(void *arg, const SourceInfo *info)
{
	TreeLoad   *L = arg;

	if (info->d != L->d || getBaseType(info->target_type) != L->target_type)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the source changed between the two passes over it (%d features, then %d)",
							   L->d, info->d),
						errhint("Train from a table, or a query whose result does not change between reads.")));
}

/*
 * Pass 2's work on a block: bins its rows column by column
 * (trees_bins_apply_block: one feature's 2 KB of cuts stay in L1 for the
 * whole block), hashes them and writes each row's bin codes, sort key and
 * targets to its slot of B, rh and the target arrays. Plain C: runs on a
 * pool worker.
 */
static void
pass2_block_task(void *arg, int task, int n_tasks)
{
	LoadBlock  *b = arg;
	int			i;

	trees_bins_apply_block(b->bins, b->x, b->ld, b->n, b->binned, 0);
	block_hash(b);
	for (i = 0; i < b->n; i++)
	{
		int64		slot = b->row[i];

		memcpy(b->B + (Size) slot * b->d, b->binned + (Size) i * b->d, b->d);
		b->rh[slot] = ml_order_key(b->h[i], slot);
		if (b->to_yv)
			b->to_yv[slot] = b->yv[i];
		if (b->to_yl)
			b->to_yl[slot] = b->yl[i];
		if (b->to_sv)
			b->to_sv[slot] = b->sv[i];
	}
}

/* Hands pass 2's block over with where its rows go (B and rh as they are now). */
static void
pass2_flush(TreeLoad *L)
{
	LoadBlock  *b = &L->blk[L->cur];

	b->bins = L->bins;
	b->B = L->B;
	b->rh = L->rh;
	b->to_yv = L->yv;
	b->to_yl = L->yl;
	b->to_sv = L->sv;
	blocks_flush(L, pass2_block_task);
}

/*
 * Pass 2: each row with a target goes to its slot of B (binned and hashed
 * a block of rows at a time): the one pass 1 predicted for it, or past
 * pass 1's rows the next.
 */
static void
pass2_row(void *arg, const double *x, const SourceTarget *t, int64 rowno)
{
	TreeLoad   *L = arg;
	LoadBlock  *b = &L->blk[L->cur];
	int64		slot;
	int			n;

	if (L->n == L->cap)
	{
		blocks_wait(L);			/* B, rh and targets grow: the worker writes into them */
		load_grow_targets(L);
	}
	slot = L->n < L->n1 ? (int64) L->slot_of[L->n] : L->n;
	if (!load_target(L, t, rowno, b->yv, b->yl, b->sv, b->n))
		return;
	b->row[b->n] = slot;
	n = block_add(L, x, t, L->classify_by_type ? L->labels[b->yl[b->n]] : NULL);
	if (n == b->cap)
		pass2_flush(L);
	L->n++;
}

/*
 * When pass 2 gave fewer rows with a target than pass 1 (the source
 * changed between them), the slots predicted for the missing rows are
 * empty: closes the gaps by moving the rows after them down (bin codes,
 * targets, split values, and sort keys renumbered), so that the slots are
 * 0..n-1 again.
 */
static void
fill_empty_slots(TreeLoad *L)
{
	int64		k,
				s,
				j = 0;

	/* no written key is all ones: its row bits are a slot below n1 */
	for (k = L->n; k < L->n1; k++)
		L->rh[L->slot_of[k]] = PG_UINT64_MAX;
	for (s = 0; s < L->n1; s++)
	{
		if (L->rh[s] == PG_UINT64_MAX)
			continue;
		if (s != j)
		{
			memmove(L->B + (Size) j * L->d, L->B + (Size) s * L->d, L->d);
			if (L->yv)
				L->yv[j] = L->yv[s];
			if (L->yl)
				L->yl[j] = L->yl[s];
			if (L->sv)
				L->sv[j] = L->sv[s];
		}
		L->rh[j] = ml_order_key(L->rh[s], j);
		j++;
	}
	Assert(j == L->n);
}

/*
 * Hands the pages of freed buffers back to the kernel between phases. glibc
 * keeps freed heap memory resident (and, after a large free, raises its mmap
 * threshold so later large buffers land on the heap too): without this, each
 * phase's buffers would add to the last phase's in the backend's memory.
 */
void
trees_release_free_memory(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/* The table of provisional label ids (empty). */
static HTAB *
create_label_table(MemoryContext mcxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(((LabelEntry *) 0)->key);
	ctl.entrysize = sizeof(LabelEntry);
	ctl.hcxt = mcxt;
	return hash_create("mlpipe labels", 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

void
trees_load_init(TreeLoad *L, MemoryContext mcxt, PgEnv *pe, cJSON *params, uint64 seed)
{
	static const char *const on_null_names[] = {"skip", "error", NULL};

	L->mcxt = mcxt;
	L->pe = pe;
	L->on_null_error = strcmp(params_choice(params, "on_null", "skip", on_null_names), "error") == 0;
	L->prep_param = prep_requested(params);
	L->sample_is_all = true;
	L->h0 = ml_hash_start(seed);
	L->label_ids = create_label_table(mcxt);
}

/*
 * source_scan with row_fn; on an error or a cancel, first waits for the
 * block on the pool worker (it writes into this load's memory).
 */
static void
blocks_scan(TreeLoad *L, SourceSpec *spec, SourceInfo *info, SourceRowFn row_fn)
{
	PG_TRY();
	{
		source_scan(spec, L->mcxt, row_fn, L, info);
	}
	PG_CATCH();
	{
		blocks_wait(L);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

void
trees_load_pass1(TreeLoad *L, SourceSpec *spec, SourceInfo *info, const char *target)
{
	spec->on_plan = pass1_plan;
	L->info = info;
	/* pass1_row offers the rows to the profile (past the sample, on the worker) */
	L->profile = spec->profile;
	spec->profile_by_fn = true;
	blocks_scan(L, spec, info, pass1_row);
	spec->profile_by_fn = false;
	L->profile = NULL;
	if (L->blk[0].x)
	{
		pass1_flush(L);
		blocks_wait(L);
		blocks_free(L);
	}
	if (L->sbuf.scratch)
	{
		/* the TREES_SAMPLE smallest hashes (in no order: they are sorted next) */
		ml_sample_buf_reduce(&L->sbuf);
		pfree(L->sbuf.scratch);
		L->sbuf.scratch = NULL;
	}
	if (L->n == 0 && L->sample_is_all)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the target \"%s\" is NULL in all " INT64_FORMAT " rows", target, info->n)));
	if (L->sample_is_all && L->keys1)
	{
		/* no pass 2: nothing to place */
		pfree(L->keys1);
		L->keys1 = NULL;
		L->keys1_cap = 0;
	}
}

/*
 * Where pass 2 puts each row. Pass 1 kept the sort key (content hash, row
 * index) of each row with a target; sorted now, they give each row's place
 * in the canonical order before pass 2 reads it: pass 2 writes row k's bin
 * codes and targets straight to slot_of[k], and trees_load_order_rows,
 * when the source gave the same rows in the same order, finds them in
 * order and moves nothing but runs of equal hash bits (otherwise it sorts
 * and moves as before: any placement gives the same order). Returns the
 * keys' memory, grown to rows, for pass 2's sort keys (rh).
 */
static uint64 *
predict_slots(TreeLoad *L, int64 rows)
{
	MlError		err = {0};
	uint64	   *keys = L->keys1;
	int64		i;

	if (keys == NULL)
	{
		L->n1 = 0;
		return MemoryContextAllocHuge(L->mcxt, sizeof(uint64) * rows);
	}
	ML_CHECK_STATUS(ml_canonical_order(&L->pe->env, keys, L->n1, NULL, NULL, &err), &err);
	L->slot_of = MemoryContextAllocHuge(L->mcxt, sizeof(uint32) * Max(L->n1, 1));
	/* every entry is written next, in random order */
	ml_populate(L->slot_of, sizeof(uint32) * Max(L->n1, 1));
	for (i = 0; i < L->n1; i++)
		L->slot_of[keys[i] & ML_ORDER_ROW_MASK] = (uint32) i;
	L->keys1 = NULL;
	L->keys1_cap = 0;
	return repalloc_huge(keys, sizeof(uint64) * rows);
}

/*
 * Drops pass 1's targets and sample index and allocates pass 2's arrays
 * once, for the rows pass 1 counted (they grow only if the source did).
 */
static void
reset_for_pass2(TreeLoad *L)
{
	int64		rows = Max(L->seen, 1),
				filled;

	L->n = 0;
	L->skipped_target = 0;
	if (L->yv)
		pfree(L->yv);
	if (L->yl)
		pfree(L->yl);
	if (L->sv)
		pfree(L->sv);
	L->yv = NULL;
	L->yl = NULL;
	L->sv = NULL;
	L->cap = 0;
	L->B = NULL;
	pfree(L->sample_src);
	L->sample_src = NULL;
	pfree(L->sample_prio);
	L->sample_prio = NULL;
	trees_release_free_memory();
	if (!L->classify_by_type)
		L->yv = MemoryContextAllocHuge(L->mcxt, sizeof(double) * rows);
	else
		L->yl = MemoryContextAllocHuge(L->mcxt, sizeof(int32) * rows);
	L->B = MemoryContextAllocHuge(L->mcxt, (Size) rows * L->d);
	L->rh = predict_slots(L, rows);
	if (L->split_kind != SPLIT_COL_NONE)
		L->sv = MemoryContextAllocHuge(L->mcxt, sizeof(double) * rows);
	L->cap = rows;
	/* filled front to back: fault them in 2 MB at a time, not 4 KB */
	ml_advise_huge_pages(L->B, (Size) rows * L->d);
	ml_advise_huge_pages(L->rh, sizeof(uint64) * rows);
	ml_advise_huge_pages(L->yv ? (void *) L->yv : (void *) L->yl,
							 L->yv ? sizeof(double) * rows : sizeof(int32) * rows);
	/* the rows pass 1 saw with a target are written: fault them in now, in one call each */
	filled = Min(rows, L->n1);
	ml_populate(L->B, (Size) filled * L->d);
	ml_populate(L->rh, sizeof(uint64) * filled);
	ml_populate(L->yv ? (void *) L->yv : (void *) L->yl,
					L->yv ? sizeof(double) * filled : sizeof(int32) * filled);
	if (L->sv)
		ml_populate(L->sv, sizeof(double) * filled);
	hash_destroy(L->label_ids);
	L->label_ids = create_label_table(L->mcxt);
	L->n_labels = 0;
}

void
trees_load_pass2(TreeLoad *L, SourceSpec *spec, SourceInfo *info, const TreeBins *bins)
{
	Size		bytes = (Size) L->seen * L->d;

	pg_memory_check((double) bytes * 2 + (double) L->seen * (sizeof(uint64) + sizeof(uint32)), "Raise mlpipe.max_memory, or train on a sample of the source.",
					"training on " INT64_FORMAT " rows x %d binned features", L->seen, L->d);
	reset_for_pass2(L);
	L->bins = bins;
	L->info = info;
	spec->on_plan = pass2_plan;
	blocks_init(L);
	blocks_scan(L, spec, info, pass2_row);
	pass2_flush(L);
	blocks_wait(L);
	blocks_free(L);
	if (L->n < L->n1)
		fill_empty_slots(L);
	if (L->slot_of)
		pfree(L->slot_of);
	L->slot_of = NULL;
}
