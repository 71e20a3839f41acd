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
 * positions. Targets become provisional label ids (text, boolean, enum
 * targets) or values, and at the end final class indices or regression
 * values (trees_finish_targets).
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

/* An integer target with at most this many distinct values is a class label. */
#define INT_CLASS_LIMIT 20

/* Pass 2 bins rows in blocks of this many (8 KB a feature column). */
#define PASS2_BLOCK 1024

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
 * The content hash of a row: its features (categorical ones by text), its
 * target as loaded (a label by its text, -0 as 0) and its split value.
 */
static uint64
row_hash(TreeLoad *L, const double *x, const SourceTarget *t)
{
	uint64		h = row_hash_features(L->h0, x, L->d,
									  L->info->any_categorical ? L->info->categorical : NULL,
									  L->info->dicts);

	if (t->isnull)
		h = ml_hash_u64(h, 1);
	else if (L->classify_by_type)
		h = ml_hash_text(ml_hash_u64(h, 2), target_label(L, t->datum));
	else
	{
		double		v = target_number(L, t->datum);

		h = ml_hash_double(ml_hash_u64(h, 2), v == 0 ? 0.0 : v);
	}
	if (L->split_kind != SPLIT_COL_NONE)
		h = t->split_isnull ? ml_hash_u64(h, 3) : ml_hash_double(ml_hash_u64(h, 4), t->split_value);
	return ml_hash_finish(h);
}

/* Records the target of the next row; false when the row is skipped. */
static bool
load_target(TreeLoad *L, const SourceTarget *t, int64 rowno)
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
	if (L->n == L->cap)
		load_grow_targets(L);
	if (L->classify_by_type)
		L->yl[L->n] = label_id(L, target_label(L, t->datum));
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
		L->yv[L->n] = v == 0 ? 0.0 : v;	/* -0 and 0 are one class */
	}
	if (L->split_kind == SPLIT_COL_TIME && t->split_isnull)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("time split column \"%s\" is NULL in row " INT64_FORMAT, L->split_column, rowno),
						errhint("Every row needs a time to be placed before or after the split; filter such rows in the source.")));
	if (L->split_kind != SPLIT_COL_NONE)
		L->sv[L->n] = t->split_isnull ? 0.0 : t->split_value;	/* column split: NULL is a training row */
	return true;
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
	L->keep_all = L->prep_param || info->any_categorical;
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
	L->sample = L->sample ? repalloc_huge(L->sample, sizeof(double) * cap * L->d)
		: MemoryContextAllocHuge(L->mcxt, sizeof(double) * cap * L->d);
	L->sample_src = L->sample_src ? repalloc_huge(L->sample_src, sizeof(int64) * cap)
		: MemoryContextAllocHuge(L->mcxt, sizeof(int64) * cap);
	L->sample_prio = L->sample_prio ? repalloc_huge(L->sample_prio, sizeof(uint64) * cap)
		: MemoryContextAllocHuge(L->mcxt, sizeof(uint64) * cap);
	L->sample_cap = cap;
}

/*
 * Turns the full sample into a max-heap by content hash, the first time a
 * row does not fit: from here on it keeps the TREES_SAMPLE smallest hashes.
 * The heap orders slot numbers, not rows (a row is 8 * d bytes, moved up
 * to 17 times a replacement otherwise); trees_load_pass1 puts the rows
 * in heap order at the end.
 */
static void
sample_start_heap(TreeLoad *L)
{
	int64		i;

	L->sample_is_all = false;
	L->heap.prio = L->sample_prio;
	L->heap.rows = L->sample;
	L->heap.row_bytes = sizeof(double) * L->d;
	L->heap.cap = TREES_SAMPLE;
	L->heap.kept = 0;
	L->heap.tmp = MemoryContextAlloc(L->mcxt, sizeof(double) * Max(L->d, 1));
	/* rows stay where they are written; the heap moves their slot numbers */
	L->heap.slot_of = MemoryContextAlloc(L->mcxt, sizeof(int64) * TREES_SAMPLE);
	for (i = 0; i < L->seen; i++)
		ml_sample_commit(&L->heap, i, L->sample_prio[i]);
}

/* Pass 1: the sample of the smallest content hashes; while it holds every row, keep targets. */
static void
pass1_row(void *arg, const double *x, const SourceTarget *t, int64 rowno)
{
	TreeLoad   *L = arg;
	uint64		p = row_hash(L, x, t);
	int64		slot;

	if (L->seen < TREES_SAMPLE || L->keep_all)
	{
		sample_reserve(L, L->seen + 1);
		slot = L->seen;
		L->sample_src[slot] = load_target(L, t, rowno) ? L->n++ : -1;
		L->sample_prio[slot] = p;
		memcpy(L->sample + (Size) slot * L->d, x, sizeof(double) * L->d);
	}
	else
	{
		if (L->sample_is_all)
			sample_start_heap(L);
		slot = ml_sample_slot(&L->heap, p);
		if (slot >= 0)
		{
			memcpy(L->sample + (Size) slot * L->d, x, sizeof(double) * L->d);
			ml_sample_commit(&L->heap, slot, p);
		}
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
 * Bins pass 2's pending rows into B: a full block column by column
 * (trees_bins_apply: one feature's 2 KB of cuts stay in L1 for the whole
 * block, where a row at a time walks all d features' cuts, 57 KB at
 * d = 28), a last partial block row by row. The same bin_of either way:
 * the same bytes.
 */
static void
pass2_flush(TreeLoad *L)
{
	int			i,
				j;

	if (L->pend_n == PASS2_BLOCK)
		trees_bins_apply(NULL, L->bins, L->pend, PASS2_BLOCK, L->B, L->pend_row0);
	else
	{
		double	   *x = palloc(sizeof(double) * L->d);

		for (i = 0; i < L->pend_n; i++)
		{
			for (j = 0; j < L->d; j++)
				x[j] = L->pend[(Size) j * PASS2_BLOCK + i];
			trees_bins_apply_row(L->bins, x, L->B + (Size) (L->pend_row0 + i) * L->d);
		}
		pfree(x);
	}
	L->pend_n = 0;
}

/* Pass 2: each row with a target goes to B (binned a block of rows at a time). */
static void
pass2_row(void *arg, const double *x, const SourceTarget *t, int64 rowno)
{
	TreeLoad   *L = arg;

	uint64		p = row_hash(L, x, t);
	int			j;

	if (!load_target(L, t, rowno))
		return;
	if (L->B == NULL)
		L->B = MemoryContextAllocHuge(L->mcxt, (Size) L->cap * L->d);
	if (L->pend_n == 0)
		L->pend_row0 = L->n;
	for (j = 0; j < L->d; j++)
		L->pend[(Size) j * PASS2_BLOCK + L->pend_n] = x[j];
	if (++L->pend_n == PASS2_BLOCK)
		pass2_flush(L);
	L->rh[L->n] = ml_order_key(p, L->n);
	L->n++;
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

/* Orders label ids by their text (arg: the labels). */
static int
cmp_label_ids(const void *a, const void *b, void *arg)
{
	const char *const *labels = arg;

	return strcmp(labels[*(const int32 *) a], labels[*(const int32 *) b]);
}

/* Orders doubles ascending. */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* True when every class label of a text target parses as a number. */
static bool
labels_look_numeric(const TreeLoad *L)
{
	int			c;

	for (c = 0; c < L->n_labels; c++)
	{
		char	   *end;

		errno = 0;
		(void) strtod(L->labels[c], &end);
		if (end == L->labels[c] || *end != '\0' || errno != 0)
			return false;
	}
	return L->n_labels > 0;
}

/*
 * WARNING when a classification target has very many classes for its rows
 * (20 or more, under 5 rows a class on average): usually a numeric column
 * stored as text, or an id, used as the target by mistake.
 */
static void
warn_many_classes(const TreeLoad *L, const char *target, const char *task_param)
{
	if (task_param && strcmp(task_param, "classification") == 0)
		return;					/* asked for */
	if (L->n_labels < 20 || (int64) L->n_labels * 5 <= L->n)
		return;
	ereport(WARNING,
			(errmsg("target \"%s\" has %d classes for %lld rows: a classifier cannot learn much from that",
					target, L->n_labels, (long long) L->n),
			 labels_look_numeric(L)
			 ? errhint("Its values are numbers stored as %s: for regression, cast it in the source "
					   "(%s::float8). Give params.task = 'classification' to silence this.",
					   format_type_be(L->target_type), quote_identifier(target))
			 : errhint("Check that the target is the column you meant, or group rare classes. "
					   "Give params.task = 'classification' to silence this.")));
}

/*
 * Decides the task and turns the targets into final class indices (labels
 * sorted as text, or numerically for integer targets) or values.
 */
MlTask
trees_finish_targets(TreeLoad *L, const char *task_param, const char *target, char ***classes_out,
					 int *n_classes_out)
{
	int64		i;

	*classes_out = NULL;
	*n_classes_out = 0;
	if (L->classify_by_type)
	{
		int32	   *order = palloc(sizeof(int32) * Max(L->n_labels, 1));
		int32	   *remap = palloc(sizeof(int32) * Max(L->n_labels, 1));
		char	  **sorted = palloc(sizeof(char *) * Max(L->n_labels, 1));
		int			c;

		if (task_param && strcmp(task_param, "regression") == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("target \"%s\" has type %s, which cannot be a regression target",
								   target, format_type_be(L->target_type)),
							labels_look_numeric(L)
							? errhint("Its values are numbers: cast it in the source, e.g. "
									  "SELECT ..., %s::float8 AS %s FROM ...",
									  quote_identifier(target), quote_identifier(target))
							: errhint("Regression needs a numeric target; leave out params.task "
									  "to train a classifier on its values.")));
		warn_many_classes(L, target, task_param);
		for (c = 0; c < L->n_labels; c++)
			order[c] = c;
		qsort_arg(order, L->n_labels, sizeof(int32), cmp_label_ids, L->labels);
		for (c = 0; c < L->n_labels; c++)
		{
			remap[order[c]] = c;
			sorted[c] = L->labels[order[c]];
		}
		for (i = 0; i < L->n; i++)
			L->yl[i] = remap[L->yl[i]];
		*classes_out = sorted;
		*n_classes_out = L->n_labels;
		return ML_TASK_CLASSIFY;
	}
	/* Numeric target: classification when asked, or an integer with few values. */
	{
		double	   *distinct = palloc(sizeof(double) * (INT_CLASS_LIMIT + 1));
		int			nd = 0,
					c;
		bool		classify;
		bool		forced = task_param && strcmp(task_param, "classification") == 0;

		for (i = 0; i < L->n && nd <= INT_CLASS_LIMIT; i++)
		{
			for (c = 0; c < nd; c++)
				if (distinct[c] == L->yv[i])
					break;
			if (c == nd && nd <= INT_CLASS_LIMIT)
			{
				if (nd == INT_CLASS_LIMIT)
				{
					nd++;
					break;
				}
				distinct[nd++] = L->yv[i];
			}
		}
		classify = task_param ? forced : (L->int_target && nd <= INT_CLASS_LIMIT);
		if (!classify)
			return ML_TASK_REGRESS;
		if (nd > INT_CLASS_LIMIT)
		{
			/* Forced classification with many values: collect them all. */
			HTAB	   *seen;
			HASHCTL		ctl;

			memset(&ctl, 0, sizeof(ctl));
			ctl.keysize = sizeof(double);
			ctl.entrysize = sizeof(double);
			ctl.hcxt = CurrentMemoryContext;
			seen = hash_create("mlpipe target values", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
			nd = 0;
			distinct = NULL;
			for (i = 0; i < L->n; i++)
			{
				bool		found;

				hash_search(seen, &L->yv[i], HASH_ENTER, &found);
				if (!found)
				{
					if (nd >= ML_MAX_CLASSES)
						ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
										errmsg("the target has more than %d distinct classes", ML_MAX_CLASSES)));
					distinct = distinct ? repalloc(distinct, sizeof(double) * (nd + 1)) : palloc(sizeof(double));
					distinct[nd++] = L->yv[i];
				}
			}
		}
		qsort(distinct, nd, sizeof(double), cmp_double);
		if (L->yl == NULL)
			L->yl = MemoryContextAllocHuge(L->mcxt, sizeof(int32) * Max(L->n, 1));
		*classes_out = palloc(sizeof(char *) * nd);
		for (c = 0; c < nd; c++)
			(*classes_out)[c] = L->int_target ? psprintf(INT64_FORMAT, (int64) distinct[c])
				: float8out_internal(distinct[c]);	/* shortest exact text: 0.1, not 0.1000...01 */
		for (i = 0; i < L->n; i++)
		{
			double	   *hit = bsearch(&L->yv[i], distinct, nd, sizeof(double), cmp_double);

			L->yl[i] = (int32) (hit - distinct);
		}
		*n_classes_out = nd;
		return ML_TASK_CLASSIFY;
	}
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

void
trees_load_pass1(TreeLoad *L, SourceSpec *spec, SourceInfo *info, const char *target)
{
	spec->on_plan = pass1_plan;
	L->info = info;
	source_scan(spec, L->mcxt, pass1_row, L, info);
	if (L->heap.slot_of)
	{
		/* the rows where the row-moving heap would have left them */
		ml_sample_heap_order(&L->heap);
		pfree(L->heap.slot_of);
		L->heap.slot_of = NULL;
	}
	if (L->n == 0 && L->sample_is_all)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the target \"%s\" is NULL in all " INT64_FORMAT " rows", target, info->n)));
}

/*
 * Drops pass 1's targets and sample index and allocates pass 2's arrays
 * once, for the rows pass 1 counted (they grow only if the source did).
 */
static void
reset_for_pass2(TreeLoad *L)
{
	int64		rows = Max(L->seen, 1);

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
	L->rh = MemoryContextAllocHuge(L->mcxt, sizeof(uint64) * rows);
	if (L->split_kind != SPLIT_COL_NONE)
		L->sv = MemoryContextAllocHuge(L->mcxt, sizeof(double) * rows);
	L->cap = rows;
	hash_destroy(L->label_ids);
	L->label_ids = create_label_table(L->mcxt);
	L->n_labels = 0;
}

void
trees_load_pass2(TreeLoad *L, SourceSpec *spec, SourceInfo *info, const TreeBins *bins)
{
	Size		bytes = (Size) L->seen * L->d;

	pg_memory_check((double) bytes * 2 + (double) L->seen * sizeof(uint64), "Raise mlpipe.max_memory, or train on a sample of the source.",
					"training on " INT64_FORMAT " rows x %d binned features", L->seen, L->d);
	reset_for_pass2(L);
	L->bins = bins;
	L->info = info;
	spec->on_plan = pass2_plan;
	L->pend = MemoryContextAllocHuge(L->mcxt, sizeof(double) * PASS2_BLOCK * Max(L->d, 1));
	L->pend_n = 0;
	source_scan(spec, L->mcxt, pass2_row, L, info);
	pass2_flush(L);
	pfree(L->pend);
	L->pend = NULL;
}
