/*
 * explain_groups.c: contributions of a model with stored preprocessing,
 * reported per ORIGINAL column. The trees split on the preprocessing's
 * outputs (one-hot indicators, codes, scaled numbers, array elements);
 * TreeSHAP over those outputs is exact, and since Shapley values are
 * additive over a partition of the players' contributions, a column's
 * contribution is the sum of those of its outputs: a one-hot or target-
 * encoded category's outputs, or the elements of an array column, add up
 * to one value, and the sum over all columns plus the expected value is
 * still the raw output. Imputation and scaling are monotone maps of one
 * output each, so they change nothing but the values the splits compare.
 */
#include "explain.h"

#include <string.h>

/* Length of a column name without an element suffix "[i]" (i >= 1). */
static size_t
base_length(const char *name)
{
	size_t		n = strlen(name);
	size_t		open;
	size_t		i;

	if (n < 4 || name[n - 1] != ']')
		return n;
	for (open = n - 1; open > 0 && name[open] != '['; open--)
		;
	if (open == 0 || open + 1 >= n - 1 || name[open + 1] == '0')
		return n;
	for (i = open + 1; i < n - 1; i++)
		if (name[i] < '0' || name[i] > '9')
			return n;
	return open;
}

/* The group of the column named name[0..len), or n when there is none yet. */
static uint32_t
find_group(const ExplainGroups *g, const char *name, size_t len)
{
	uint32_t	i;

	for (i = 0; i < g->n_groups; i++)
		if (strlen(g->names[i]) == len && strncmp(g->names[i], name, len) == 0)
			return i;
	return g->n_groups;
}

MlStatus
explain_groups_build(const MlEnv *env, const MlPrep *p, ExplainGroups *out, MlError *err)
{
	uint32_t	c,
				j;

	memset(out, 0, sizeof(*out));
	out->names = ml_calloc(env, p->n_in ? p->n_in : 1, sizeof(char *));
	out->input = ml_calloc(env, p->n_in ? p->n_in : 1, sizeof(int32_t));
	out->group_of = ml_calloc(env, p->n_out ? p->n_out : 1, sizeof(uint32_t));
	if (!out->names || !out->input || !out->group_of)
	{
		explain_groups_free(env, out);
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for the explanation groups");
	}
	for (c = 0; c < p->n_in; c++)
	{
		const PpColumn *col = &p->cols[c];
		size_t		len = base_length(col->name);
		uint32_t	grp = find_group(out, col->name, len);

		if (grp == out->n_groups)
		{
			out->names[grp] = ml_alloc(env, len + 1);
			if (out->names[grp] == NULL)
			{
				explain_groups_free(env, out);
				return ml_fail(err, ML_ERR_MEMORY, "out of memory for the explanation groups");
			}
			memcpy(out->names[grp], col->name, len);
			out->names[grp][len] = '\0';
			/* A lone numeric column (not an array element) reports its raw value. */
			out->input[grp] = (col->categorical || len != strlen(col->name)) ? -1 : (int32_t) c;
			out->n_groups++;
		}
		else
			out->input[grp] = -1;
		for (j = 0; j < col->width; j++)
		{
			if (col->offset + j >= p->n_out)
			{
				explain_groups_free(env, out);
				return ml_fail(err, ML_ERR_DATA, "preprocessing column %u has outputs beyond %u",
							   c, p->n_out);
			}
			out->group_of[col->offset + j] = grp;
		}
	}
	return ML_OK;
}

void
explain_groups_free(const MlEnv *env, ExplainGroups *g)
{
	uint32_t	i;

	if (g->names)
		for (i = 0; i < g->n_groups; i++)
			ml_free(env, g->names[i]);
	ml_free(env, g->names);
	ml_free(env, g->input);
	ml_free(env, g->group_of);
	memset(g, 0, sizeof(*g));
}

void
explain_groups_sum(const ExplainGroups *g, const double *phi, uint32_t n_features, double *out)
{
	uint32_t	j;

	memset(out, 0, sizeof(double) * g->n_groups);
	for (j = 0; j < n_features; j++)
		out[g->group_of[j]] += phi[j];
}
