/*
 * decision.c: the DECISION section of a binary classifier (decision
 * threshold, Platt or isotonic calibration): codec and application.
 *
 *   version u8 (1) | has_threshold u8 | threshold f64 | method u8 |
 *   platt: a f64 | b f64
 *   isotonic: n u32 (1..DECISION_MAX_KNOTS) | x f64 x n | y f64 x n
 */
#include "decision.h"

#include <math.h>
#include <string.h>

/* Writes the section payload. */
void
decision_write(MlBuf *b, const MlDecision *d)
{
	ml_buf_put_u8(b, 1);
	ml_buf_put_u8(b, d->has_threshold ? 1 : 0);
	ml_buf_put_f64(b, d->has_threshold ? d->threshold : 0.0);
	ml_buf_put_u8(b, (uint8_t) d->method);
	if (d->method == CAL_PLATT)
	{
		ml_buf_put_f64(b, d->platt_a);
		ml_buf_put_f64(b, d->platt_b);
	}
	else if (d->method == CAL_ISOTONIC)
	{
		ml_buf_put_u32(b, d->n_knots);
		ml_buf_put_f64s(b, d->knot_x, d->n_knots);
		ml_buf_put_f64s(b, d->knot_y, d->n_knots);
	}
}

/* Checks the isotonic knots: x strictly increasing, y non-decreasing in [0, 1]. */
static bool
knots_valid(const MlDecision *d)
{
	uint32_t	i;

	for (i = 0; i < d->n_knots; i++)
	{
		if (d->knot_y[i] < 0 || d->knot_y[i] > 1)
			return false;
		if (i > 0 && (d->knot_x[i] <= d->knot_x[i - 1] || d->knot_y[i] < d->knot_y[i - 1]))
			return false;
	}
	return true;
}

/* Reads and validates the section payload. */
bool
decision_read(MlReader *r, MlDecision *d)
{
	uint8_t		version,
				has,
				method;

	memset(d, 0, sizeof(*d));
	if (!ml_rd_u8(r, &version, "decision version") || !ml_rd_u8(r, &has, "has_threshold") ||
		!ml_rd_finite(r, &d->threshold, "threshold") || !ml_rd_u8(r, &method, "calibration"))
		return false;
	if (version != 1 || has > 1 || method > CAL_ISOTONIC ||
		d->threshold < 0 || d->threshold > 1 || (!has && d->threshold != 0))
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: decision section");
		return false;
	}
	d->has_threshold = has;
	d->method = (CalMethod) method;
	if (d->method == CAL_PLATT &&
		(!ml_rd_finite(r, &d->platt_a, "platt a") || !ml_rd_finite(r, &d->platt_b, "platt b")))
		return false;
	if (d->method == CAL_ISOTONIC)
	{
		if (!ml_rd_count(r, 1, DECISION_MAX_KNOTS, 2 * sizeof(double), &d->n_knots, "isotonic knots") ||
			!ml_rd_f64s(r, d->n_knots, &d->knot_x, "isotonic x") ||
			!ml_rd_f64s(r, d->n_knots, &d->knot_y, "isotonic y"))
			return false;
		if (!knots_valid(d))
		{
			ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: isotonic knots out of order");
			return false;
		}
	}
	if (!ml_rd_end(r, "decision section"))
		return false;
	d->present = true;
	return true;
}

/* np.interp over the knots (ends clipped), or the sigmoid, or s itself. */
double
decision_calibrate(const MlDecision *d, double s)
{
	uint32_t	lo = 0,
				hi;

	if (d->method == CAL_PLATT)
		return 1.0 / (1.0 + exp(d->platt_a * s + d->platt_b));
	if (d->method != CAL_ISOTONIC)
		return s;
	hi = d->n_knots - 1;
	if (!(s > d->knot_x[0]))
		return d->knot_y[0];
	if (s >= d->knot_x[hi])
		return d->knot_y[hi];
	/* binary search for knot_x[lo] <= s < knot_x[lo + 1] */
	while (hi - lo > 1)
	{
		uint32_t	mid = lo + (hi - lo) / 2;

		if (d->knot_x[mid] <= s)
			lo = mid;
		else
			hi = mid;
	}
	return d->knot_y[lo] + (d->knot_y[lo + 1] - d->knot_y[lo]) / (d->knot_x[lo + 1] - d->knot_x[lo]) *
		(s - d->knot_x[lo]);
}

/* Calibrates p1 and picks the class. */
int
decision_apply(const MlDecision *d, double p1, double *proba)
{
	double		p = decision_calibrate(d, p1);

	if (proba)
	{
		proba[1] = p;
		proba[0] = 1.0 - p;
	}
	if (d->has_threshold)
		return p >= d->threshold ? 1 : 0;
	return p > 1.0 - p ? 1 : 0;
}
