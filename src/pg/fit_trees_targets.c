/*
 * fit_trees_targets.c: the tree models' targets after the read. The task
 * (classification or regression) is decided from the target's type, its
 * values and params.task, and the provisional label ids or values the
 * read left (fit_trees_load.c) become final class indices (labels sorted
 * as text, integers numerically) or regression values.
 */
#include "fit_trees_int.h"

#include "utils/builtins.h"
#include "utils/float.h"

#include <errno.h>

/* An integer target with at most this many distinct values is a class label. */
#define INT_CLASS_LIMIT 20

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
		{
			L->yl = MemoryContextAllocHuge(L->mcxt, sizeof(int32) * Max(L->n, 1));
			ml_populate(L->yl, sizeof(int32) * L->n);	/* written in full below */
		}
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
