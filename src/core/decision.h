/*
 * decision.h: how a binary classifier turns its class-1 probability into
 * its answer: an optional probability calibration (Platt's sigmoid or an
 * isotonic step function, fitted on held-out rows) and an optional decision
 * threshold. Stored as the artifact's DECISION section (format 3), which is
 * written only when one of them is set, so other artifacts keep their bytes.
 */
#ifndef DECISION_H
#define DECISION_H

#include "mlbuf.h"

#include <stdbool.h>

typedef enum CalMethod
{
	CAL_NONE = 0,
	CAL_PLATT = 1,				/* p = 1 / (1 + exp(a s + b)), scikit-learn's sigmoid */
	CAL_ISOTONIC = 2			/* linear between (x, y) knots, clipped at the ends */
} CalMethod;

#define DECISION_MAX_KNOTS	10000000

typedef struct MlDecision
{
	bool		present;		/* the artifact has a DECISION section */
	bool		has_threshold;
	double		threshold;		/* class 1 when (calibrated) p >= threshold; in [0, 1] */
	CalMethod	method;
	double		platt_a;
	double		platt_b;
	uint32_t	n_knots;		/* isotonic: x strictly increasing, y in [0, 1] non-decreasing */
	double	   *knot_x;
	double	   *knot_y;
} MlDecision;

/* The section's payload. */
void		decision_write(MlBuf *b, const MlDecision *d);
/* Reads and checks the payload; false (err set) when it is corrupt. */
bool		decision_read(MlReader *r, MlDecision *d);

/* The calibrated probability of class 1 for the model's score s. */
double		decision_calibrate(const MlDecision *d, double s);

/*
 * Applies d to a binary prediction: proba (2 values) calibrated in place
 * (may be NULL: then p1 is the score given), and the class (0 or 1) the
 * threshold gives; without a threshold the class is the more probable one
 * (class 0 on a tie, as argmax).
 */
int			decision_apply(const MlDecision *d, double p1, double *proba);

#endif
