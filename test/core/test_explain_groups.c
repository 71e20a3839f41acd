/*
 * test_explain_groups.c: explanation groups of a model with preprocessing
 * (src/core/explain_groups.c): which original column each model feature
 * belongs to, and that the per-column sums keep the total.
 */
#include <math.h>

#include "explain.h"
#include "mltest.h"

/* A preprocessing of: age (number), color (one-hot, 3 outputs), x (array of 2), city (native code). */
static void
hand_prep(MlPrep *p, PpColumn *cols)
{
	static char *names[] = {"age", "color", "x[1]", "x[2]", "city"};
	static const bool cat[] = {false, true, false, false, true};
	static const uint32_t width[] = {1, 3, 1, 1, 1};
	uint32_t	c,
				off = 0;

	memset(p, 0, sizeof(*p));
	for (c = 0; c < 5; c++)
	{
		memset(&cols[c], 0, sizeof(cols[c]));
		cols[c].name = names[c];
		cols[c].categorical = cat[c];
		cols[c].encode = c == 1 ? PP_ENCODE_ONEHOT : (cat[c] ? PP_ENCODE_NATIVE : PP_ENCODE_NONE);
		cols[c].width = width[c];
		cols[c].offset = off;
		off += width[c];
	}
	p->n_in = 5;
	p->cols = cols;
	p->n_out = off;
	p->in_names = names;
	p->in_categorical = (bool *) cat;
}

static void
test_groups(void)
{
	MlEnv		env = mlt_env(1);
	MlPrep		p;
	PpColumn	cols[5];
	ExplainGroups g;
	MlError		err = {0};
	const double phi[7] = {0.5, -0.25, 1.0, 0.125, 2.0, -3.0, 0.0625};
	double		sums[4],
				total = 0,
				gtotal = 0;
	uint32_t	j;

	hand_prep(&p, cols);
	CHECK(explain_groups_build(&env, &p, &g, &err) == ML_OK, "groups build: %s", err.msg);
	CHECK(g.n_groups == 4, "4 original columns from 5 inputs (x's elements are one), got %u", g.n_groups);
	CHECK(strcmp(g.names[0], "age") == 0 && strcmp(g.names[1], "color") == 0 &&
		  strcmp(g.names[2], "x") == 0 && strcmp(g.names[3], "city") == 0,
		  "group names in input order, the array by its column name");
	CHECK(g.input[0] == 0 && g.input[1] == -1 && g.input[2] == -1 && g.input[3] == -1,
		  "only the numeric column reports a raw value");
	CHECK(g.group_of[0] == 0 && g.group_of[1] == 1 && g.group_of[2] == 1 && g.group_of[3] == 1 &&
		  g.group_of[4] == 2 && g.group_of[5] == 2 && g.group_of[6] == 3,
		  "every output maps to its column");
	explain_groups_sum(&g, phi, 7, sums);
	CHECK(sums[0] == 0.5 && sums[1] == 0.875 && sums[2] == -1.0 && sums[3] == 0.0625,
		  "sums per column: %g %g %g %g", sums[0], sums[1], sums[2], sums[3]);
	for (j = 0; j < 7; j++)
		total += phi[j];
	for (j = 0; j < g.n_groups; j++)
		gtotal += sums[j];
	CHECK(fabs(total - gtotal) < 1e-15, "the column sums keep the total (%g)", gtotal);
	explain_groups_free(&env, &g);
	CHECK(g.names == NULL && g.n_groups == 0, "freed");
}

/* Names that only look like elements stay whole: "a[0]", "b[x]", "[1]". */
static void
test_names(void)
{
	MlEnv		env = mlt_env(1);
	MlPrep		p;
	PpColumn	cols[3];
	static char *names[] = {"a[0]", "b[x]", "[1]"};
	ExplainGroups g;
	MlError		err = {0};
	uint32_t	c;

	memset(&p, 0, sizeof(p));
	for (c = 0; c < 3; c++)
	{
		memset(&cols[c], 0, sizeof(cols[c]));
		cols[c].name = names[c];
		cols[c].width = 1;
		cols[c].offset = c;
	}
	p.n_in = 3;
	p.cols = cols;
	p.n_out = 3;
	CHECK(explain_groups_build(&env, &p, &g, &err) == ML_OK && g.n_groups == 3 &&
		  strcmp(g.names[0], "a[0]") == 0 && strcmp(g.names[1], "b[x]") == 0 &&
		  strcmp(g.names[2], "[1]") == 0 && g.input[0] == 0,
		  "no element suffix, no grouping");
	explain_groups_free(&env, &g);
	cols[2].offset = 7;
	CHECK(explain_groups_build(&env, &p, &g, &err) == ML_ERR_DATA,
		  "an output beyond n_out is refused: %s", err.msg);
}

int
main(void)
{
	test_groups();
	test_names();
	return mlt_done();
}
