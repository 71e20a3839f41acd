/*
 * test_bins_apply.c: binning a block of rows (trees_bins_apply_block and
 * trees_bins_apply, AVX-512 counting search when the CPU has it) gives the
 * bytes of the row-by-row bin_of (trees_bins_apply_row), for features with
 * 1 to 256 bins, values on, between and beyond the cuts, NaN, -0.0 and
 * infinities, and block lengths that are not multiples of 8.
 */
#include "mltest.h"
#include "trees.h"

#include <math.h>

#define D 12
#define ROWS 3001

/* A value near the feature's cuts: on one, between two, or far outside. */
static double
test_value(const TreeBins *bins, int j, uint64_t *s)
{
	int			nb = bins->n_bins[j];
	uint64_t	r;
	int			k;

	*s = *s * UINT64_C(6364136223846793005) + 1442695040888963407;
	r = *s >> 33;
	k = (int) ((r >> 8) % 256);
	switch (r % 9)
	{
		case 0: return NAN;
		case 1: return -0.0;
		case 2: return r % 2 ? INFINITY : -INFINITY;
		case 3: return bins->cuts[j * 256 + k];	/* a cut (or the padding) */
		case 4: return nextafter(bins->cuts[j * 256 + (k % (nb > 1 ? nb - 1 : 1))], -INFINITY);
		default: return ((double) (r % 2000001) - 1000000.0) / 1000.0 * (nb % 7 + 1);
	}
}

/* Block and row binning agree byte for byte. */
static void
test_block_equals_row(void)
{
	MlEnv		env = mlt_env(1);
	MlError		err = {0};
	TreeBins	bins;
	double	   *X = malloc(sizeof(double) * ROWS * D),
				row[D];
	uint8_t    *B1 = malloc(ROWS * D),
			   *B2 = malloc(ROWS * D),
			   *B3 = malloc(ROWS * D);
	uint64_t	s = 7;
	int			max_bins[D] = {2, 3, 4, 7, 16, 17, 31, 64, 100, 255, 256, 256};
	int			i,
				j,
				bad = 0;

	/* edges per feature: column j has about max_bins[j] distinct values */
	for (j = 0; j < D; j++)
		for (i = 0; i < ROWS; i++)
		{
			s = s * UINT64_C(6364136223846793005) + 1442695040888963407;
			X[(size_t) j * ROWS + i] = j == 0 ? 1.0 : (double) ((s >> 33) % (uint64_t) (max_bins[j] * 3)) * 0.25 - 5;
		}
	CHECK(trees_bins_fit(&env, X, ROWS, D, 256, 0, 3, &bins, &err) == ML_OK, "bins fitted%s", err.msg);
	for (j = 0; j < D; j++)
		for (i = 0; i < ROWS; i++)
			X[(size_t) j * ROWS + i] = test_value(&bins, j, &s);
	trees_bins_apply_block(&bins, X, ROWS, ROWS, B1, 0);
	trees_bins_apply(&env, &bins, X, ROWS, B3, 0);
	/* a block shorter than its column stride, written at a row offset */
	trees_bins_apply_block(&bins, X, ROWS, 1003, B2, 5);
	for (i = 0; i < ROWS; i++)
	{
		uint8_t		want[D];

		for (j = 0; j < D; j++)
			row[j] = X[(size_t) j * ROWS + i];
		trees_bins_apply_row(&bins, row, want);
		bad += memcmp(want, B1 + (size_t) i * D, D) != 0;
		bad += memcmp(want, B3 + (size_t) i * D, D) != 0;
		if (i < 1003)
			bad += memcmp(want, B2 + (size_t) (i + 5) * D, D) != 0;
	}
	CHECK(bad == 0, "block binning equals row binning (%d rows x %d features, %d differ)", ROWS, D, bad);
	trees_bins_free(&env, &bins);
	free(X);
	free(B1);
	free(B2);
	free(B3);
}

int
main(void)
{
	test_block_equals_row();
	return mlt_done();
}
