/*
 * vecmath.h: exp and log over arrays of doubles, in SIMD lanes where the
 * CPU allows it, giving bit for bit what this process's libm exp and log
 * give (vecmath.c). The gradient pass and the losses of gbt use them
 * (gbt_loss.c) so that the vector path keeps every artifact's bytes.
 */
#ifndef VECMATH_H
#define VECMATH_H

#include <stdbool.h>
#include <stddef.h>

#define VECMATH_SIMD_NONE 0
#define VECMATH_SIMD_AVX2 1

/* Highest lane set vm_exp/vm_log may use (tests lower it to compare). */
extern int	vecmath_simd_max;

/* y[i] = exp(x[i]) and y[i] = log(x[i]) for i < n, as libm gives them. */
void		vm_exp(const double *x, double *y, size_t n);
void		vm_log(const double *x, double *y, size_t n);

/*
 * Binary logistic gradient pairs (g, hw as floats) and the true class's
 * clamped p (q) from e = exp(-margin), labels y and weights w (gbt_loss.c).
 */
void		vm_logistic_grad(const double *e, const double *y, const double *w,
							 float *g, float *hw, double *q, size_t n);

/* The lane set vm_exp/vm_log use now (VECMATH_SIMD_*), after the self-check. */
int			vm_simd_level(void);

#endif							/* VECMATH_H */
