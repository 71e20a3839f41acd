/*
 * test_kmeans_scan.c: unit test of km_scan (src/core/kmeans_int.h), the
 * distance scan of every Lloyd, Hamerly and mini-batch pass: over centres
 * transposed with km_transpose (padded to a multiple of 4 columns), each
 * distance equals km_dist2's bit for bit, for every k (full groups of four
 * and the padded last group) and widths up to 784 (all tails of d mod 4).
 * Prints TAP; exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_int.h"
#include "mltest.h"

/* A uniform double in [-50, 50), from a 64-bit LCG (no libc rand state). */
static double
next_value(uint64_t *s)
{
	*s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
	return (double) (*s >> 11) / 9007199254740992.0 * 100.0 - 50.0;
}

/* km_scan against km_dist2 for k = 1..13 and several widths. */
static void
test_scan_equals_dist2(void)
{
	static const int widths[] = {1, 2, 3, 4, 5, 7, 8, 17, 64, 783, 784};
	uint64_t	s = 7;
	int64_t		mismatches = 0,
				compared = 0;
	int			w,
				k,
				c,
				r;

	for (w = 0; w < (int) (sizeof(widths) / sizeof(widths[0])); w++)
	{
		int			d = widths[w];
		double	   *x = malloc(sizeof(double) * d),
				   *C = malloc(sizeof(double) * 13 * d),
				   *CT = malloc(sizeof(double) * KM_LANES(13) * d),
					dist[KM_LANES(13)];

		for (k = 1; k <= 13; k++)
			for (r = 0; r < 5; r++)
			{
				int			j;

				for (j = 0; j < d; j++)
					x[j] = next_value(&s);
				for (j = 0; j < k * d; j++)
					C[j] = next_value(&s);
				km_transpose(C, k, d, CT);
				km_scan(x, CT, k, d, dist);
				for (c = 0; c < k; c++)
				{
					double		ref = km_dist2(x, C + (size_t) c * d, d);

					compared++;
					mismatches += memcmp(&ref, &dist[c], sizeof(double)) != 0;
				}
			}
		free(x);
		free(C);
		free(CT);
	}
	CHECK(mismatches == 0, "km_scan equals km_dist2 bit for bit (%lld of %lld distances differ)",
		  (long long) mismatches, (long long) compared);
}

int
main(void)
{
	test_scan_equals_dist2();
	return mlt_done();
}
