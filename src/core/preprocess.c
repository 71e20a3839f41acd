/* preprocess.c: fitting, applying and storing imputation, scaling and encoding. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* qsort_r */
#endif
#include "preprocess.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
prep_impute_name(int v)
{
	static const char *const n[] = {"none", "mean", "median", "mode", "zero", "error"};

	return v >= 0 && v <= PP_IMPUTE_ERROR ? n[v] : "?";
}

const char *
prep_scale_name(int v)
{
	static const char *const n[] = {"none", "standard", "minmax", "robust"};

	return v >= 0 && v <= PP_SCALE_ROBUST ? n[v] : "?";
}

const char *
prep_encode_name(int v)
{
	static const char *const n[] = {"none", "onehot", "ordinal", "target", "native"};

	return v >= 0 && v <= PP_ENCODE_NATIVE ? n[v] : "?";
}

/* Binary search over the sorted category texts. */
uint32_t
prep_level_of(const PpColumn *c, const char *s)
{
	uint32_t	lo = 0,
				hi = c->n_cats;

	if (s == NULL)
		return c->null_to;
	while (lo < hi)
	{
		uint32_t	mid = lo + (hi - lo) / 2;
		int			r = strcmp(c->cats[mid], s);

		if (r == 0)
			return mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return prep_levels(c);
}

/* Writes a categorical column's outputs for a level (levels = unknown). */
static void
emit_level(const PpColumn *c, uint32_t level, double *out)
{
	uint32_t	levels = prep_levels(c);

	if (c->encode == PP_ENCODE_ONEHOT)
	{
		memset(out, 0, sizeof(double) * c->width);
		if (level < levels)
			out[level] = 1.0;
		return;
	}
	if (level > levels)
		level = levels;
	memcpy(out, c->table + (size_t) level * c->width, sizeof(double) * c->width);
}

/* Imputes and scales one number. */
static MlStatus
emit_number(const PpColumn *c, double v, double *out, MlError *err)
{
	if (isnan(v))
	{
		if (c->impute == PP_IMPUTE_ERROR)
			return ml_fail(err, ML_ERR_DATA, "column \"%s\" is NULL or NaN and its preprocessing has impute = error",
						   c->name);
		if (c->impute != PP_IMPUTE_NONE)
			v = c->fill;
	}
	if (!isnan(v))
		v = (v - c->center) / c->scale_by;
	*out = v;
	return ML_OK;
}

MlStatus
prep_transform_row(const MlPrep *p, const double *raw, const char *const *strs, double *out,
				   MlError *err)
{
	uint32_t	i;

	for (i = 0; i < p->n_in; i++)
	{
		const PpColumn *c = &p->cols[i];

		if (!c->categorical)
		{
			if (emit_number(c, raw[i], out + c->offset, err) != ML_OK)
				return err->code;
			continue;
		}
		if (strs[i] == NULL && c->impute == PP_IMPUTE_ERROR)
			return ml_fail(err, ML_ERR_DATA, "column \"%s\" is NULL and its preprocessing has impute = error",
						   c->name);
		emit_level(c, prep_level_of(c, strs[i]), out + c->offset);
	}
	return ML_OK;
}

MlStatus
prep_transform_levels(const MlPrep *p, const double *raw, double *out, MlError *err)
{
	uint32_t	i;

	for (i = 0; i < p->n_in; i++)
	{
		const PpColumn *c = &p->cols[i];

		if (!c->categorical)
		{
			if (emit_number(c, raw[i], out + c->offset, err) != ML_OK)
				return err->code;
			continue;
		}
		if (raw[i] < 0)			/* NULL under impute = error */
			return ml_fail(err, ML_ERR_DATA, "column \"%s\" is NULL and its preprocessing has impute = error",
						   c->name);
		emit_level(c, (uint32_t) raw[i], out + c->offset);
	}
	return ML_OK;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Quantile q of sorted v[0..n) with linear interpolation (numpy's default). */
static double
quantile_sorted(const double *v, int64_t n, double q)
{
	double		pos = q * (double) (n - 1);
	int64_t		lo = (int64_t) floor(pos);
	int64_t		hi = lo + 1 < n ? lo + 1 : lo;

	return v[lo] + (v[hi] - v[lo]) * (pos - (double) lo);
}

#define PP_SORT_CHECK	65536	/* merges of this many values check for cancel */

/*
 * Sorts a[0..n) ascending, stably (a merge sort: the order glibc's qsort
 * gives, so fitted statistics do not change), with tmp holding n / 2 + 1
 * values; calls env->check after every merge of PP_SORT_CHECK values or
 * more, so a cancel is seen within milliseconds however long the column.
 * False when check asked to stop.
 */
static bool
sort_values(const MlEnv *env, double *a, double *tmp, int64_t n)
{
	int64_t		h,
				i,
				j,
				k;

	if (n <= 24)
	{
		for (i = 1; i < n; i++)
		{
			double		v = a[i];

			for (j = i; j > 0 && a[j - 1] > v; j--)
				a[j] = a[j - 1];
			a[j] = v;
		}
		return true;
	}
	h = n / 2;
	if (!sort_values(env, a, tmp, h) || !sort_values(env, a + h, tmp, n - h))
		return false;
	if (a[h] < a[h - 1])
	{
		memcpy(tmp, a, sizeof(double) * (size_t) h);
		i = 0;
		j = h;
		k = 0;
		while (i < h && j < n)
			a[k++] = a[j] < tmp[i] ? a[j++] : tmp[i++];
		while (i < h)
			a[k++] = tmp[i++];
	}
	return n < PP_SORT_CHECK || !ml_check(env, "preprocessing", 0, 0, 0.0);
}

/*
 * Fits imputation and scaling of one numeric column from its training
 * values (buf and tmp: scratch of d->n and d->n / 2 + 1 values).
 */
static MlStatus
fit_number(const MlEnv *env, PpColumn *c, const PpSpec *s, const PpFitData *d, uint32_t col,
		   double *buf, double *tmp, MlError *err)
{
	int64_t		r,
				n = 0;
	double		sum = 0;

	c->impute = (uint8_t) (s->impute < 0 ? PP_IMPUTE_NONE : s->impute);
	c->scale = (uint8_t) (s->scale < 0 ? PP_SCALE_NONE : s->scale);
	c->width = 1;
	c->center = 0;
	c->scale_by = 1;
	c->fill = 0;
	for (r = 0; r < d->n; r++)
	{
		double		v = d->X[(size_t) r * d->n_in + col];

		if ((r & 0xfffff) == 0xfffff && ml_check(env, "preprocessing", 0, 0, 0.0))
			return ml_fail_cancelled(err);
		if ((d->is_train && !d->is_train[r]) || isnan(v))
			continue;
		buf[n++] = v;
		sum += v;
	}
	if (c->impute == PP_IMPUTE_ERROR && n < d->n)
	{
		for (r = 0; r < d->n; r++)
			if ((!d->is_train || d->is_train[r]) && isnan(d->X[(size_t) r * d->n_in + col]))
				return ml_fail(err, ML_ERR_DATA,
							   "column \"%s\" is NULL or NaN in a training row and its preprocessing has impute = error",
							   c->name);
	}
	if (n > 0 && (c->impute == PP_IMPUTE_MEDIAN || c->impute == PP_IMPUTE_MODE ||
				  c->scale == PP_SCALE_ROBUST))
	{
		if (!sort_values(env, buf, tmp, n))
			return ml_fail_cancelled(err);
	}
	if (n > 0)
	{
		switch (c->impute)
		{
			case PP_IMPUTE_MEAN:
				c->fill = sum / (double) n;
				break;
			case PP_IMPUTE_MEDIAN:
				c->fill = quantile_sorted(buf, n, 0.5);
				break;
			case PP_IMPUTE_MODE:
				{
					int64_t		i = 0,
								best = 0;

					/* the most frequent value; the smallest on ties */
					while (i < n)
					{
						int64_t		j = i;

						while (j < n && buf[j] == buf[i])
							j++;
						if (j - i > best)
						{
							best = j - i;
							c->fill = buf[i];
						}
						i = j;
					}
				}
				break;
			default:
				break;
		}
		switch (c->scale)
		{
			case PP_SCALE_STANDARD:
				{
					double		mean = sum / (double) n,
								ss = 0;
					int64_t		i;

					for (i = 0; i < n; i++)
						ss += (buf[i] - mean) * (buf[i] - mean);
					c->center = mean;
					c->scale_by = sqrt(ss / (double) n);
				}
				break;
			case PP_SCALE_MINMAX:
				{
					double		lo = buf[0],
								hi = buf[0];
					int64_t		i;

					for (i = 1; i < n; i++)
					{
						lo = buf[i] < lo ? buf[i] : lo;
						hi = buf[i] > hi ? buf[i] : hi;
					}
					c->center = lo;
					c->scale_by = hi - lo;
				}
				break;
			case PP_SCALE_ROBUST:
				c->center = quantile_sorted(buf, n, 0.5);
				c->scale_by = quantile_sorted(buf, n, 0.75) - quantile_sorted(buf, n, 0.25);
				break;
			default:
				break;
		}
	}
	if (!(c->scale_by > 0) || !isfinite(c->scale_by))
		c->scale_by = 1;
	if (!isfinite(c->center) || !isfinite(c->fill))
		return ml_fail(err, ML_ERR_DATA, "column \"%s\" has infinite values; cannot fit its preprocessing",
					   c->name);
	return ML_OK;
}

/* Level order for native codes: by key (the qsort_r argument), then by level. */
static int
cmp_native(const void *a, const void *b, void *arg)
{
	const double *native_key = arg;
	uint32_t	i = *(const uint32_t *) a,
				j = *(const uint32_t *) b;

	if (native_key[i] != native_key[j])
		return native_key[i] < native_key[j] ? -1 : 1;
	return (i > j) - (i < j);
}

/*
 * Training-row counts per dictionary code of column col (count has nd
 * entries); *null_code is the code of NULL, or -1.
 */
static MlStatus
fc_count_codes(const PpFitData *d, uint32_t col, uint32_t nd, int64_t *count,
			   int32_t *null_code, MlError *err)
{
	char	  **dict = d->dict[col];
	uint32_t	k;
	int64_t		r;

	*null_code = -1;
	for (k = 0; k < nd; k++)
		if (dict[k] == NULL)
			*null_code = (int32_t) k;
	for (r = 0; r < d->n; r++)
	{
		double		v = d->X[(size_t) r * d->n_in + col];

		if (d->is_train && !d->is_train[r])
			continue;
		if (!(v >= 0 && v < nd))
			return ml_fail(err, ML_ERR_INTERNAL, "category code %g out of range", v);
		count[(uint32_t) v]++;
	}
	return ML_OK;
}

/*
 * The levels of a categorical column: the texts seen in training, sorted,
 * plus NULL's level and the level imputation sends NULL to. Returns the
 * number of levels in *levels_out.
 */
static MlStatus
fc_levels(const MlEnv *env, PpColumn *c, char **dict, uint32_t nd, const int64_t *count,
		  int32_t null_code, uint32_t *levels_out, MlError *err)
{
	bool		null_seen = false;
	uint32_t	k,
				levels;

	if (null_code >= 0 && count[null_code] > 0)
	{
		if (c->impute == PP_IMPUTE_ERROR)
			return ml_fail(err, ML_ERR_DATA,
						   "column \"%s\" is NULL in a training row and its preprocessing has impute = error",
						   c->name);
		null_seen = true;
	}
	c->n_cats = 0;
	c->cats = ml_alloc(env, sizeof(char *) * (nd ? nd : 1));
	if (!c->cats)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting column \"%s\"", c->name);
	for (k = 0; k < nd; k++)
		if (dict[k] != NULL && count[k] > 0)
			c->cats[c->n_cats++] = dict[k];
	if (c->n_cats > ML_MAX_CATEGORIES)
		return ml_fail(err, ML_ERR_MEMORY, "column \"%s\" has %u categories, over the limit of %d",
					   c->name, c->n_cats, ML_MAX_CATEGORIES);
	qsort(c->cats, c->n_cats, sizeof(char *), cmp_str);
	c->has_null = null_seen && c->impute != PP_IMPUTE_MODE;
	levels = prep_levels(c);
	c->null_to = c->has_null ? c->n_cats : levels;
	if (levels == 0)
		return ml_fail(err, ML_ERR_DATA, "column \"%s\" has no value in the training rows", c->name);
	if (c->impute == PP_IMPUTE_MODE && c->n_cats > 0)
	{
		int64_t		best = -1;

		for (k = 0; k < nd; k++)
			if (dict[k] != NULL && count[k] > best)
			{
				best = count[k];
				c->null_to = prep_level_of(c, dict[k]);
			}
	}
	else if (c->impute != PP_IMPUTE_NONE && c->impute != PP_IMPUTE_MODE && c->impute != PP_IMPUTE_ERROR)
		return ml_fail(err, ML_ERR_PARAM, "impute = '%s' does not apply to text column \"%s\"",
					   prep_impute_name(c->impute), c->name);
	*levels_out = levels;
	return ML_OK;
}

/*
 * The target encoding's or native encoding's table of a categorical column
 * (c->table, levels + 1 rows of c->width): per level the rows and target
 * sums (per class for multiclass), then smoothed means (target) or the
 * rank of each level by target mean, by frequency for multiclass (native).
 */
static MlStatus
fc_supervised_table(const MlEnv *env, PpColumn *c, const PpFitData *d, uint32_t col,
					const uint32_t *code_level, uint32_t levels, uint32_t nclass_w, MlError *err)
{
	double	   *cnt = ml_calloc(env, (size_t) levels + 1, sizeof(double));
	double	   *sum = ml_calloc(env, ((size_t) levels + 1) * nclass_w, sizeof(double));
	double	   *prior = ml_calloc(env, nclass_w, sizeof(double));
	double		total = 0;
	uint32_t	l,
				w;
	int64_t		r;

	if (!cnt || !sum || !prior)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting column \"%s\"", c->name);
	for (r = 0; r < d->n; r++)
	{
		uint32_t	lv;
		double		y;

		if (d->is_train && !d->is_train[r])
			continue;
		lv = code_level[(uint32_t) d->X[(size_t) r * d->n_in + col]];
		if (lv > levels)
			lv = levels;
		cnt[lv] += 1;
		total += 1;
		if (d->y_class && nclass_w > 1)
		{
			sum[(size_t) lv * nclass_w + d->y_class[r]] += 1;
			prior[d->y_class[r]] += 1;
			continue;
		}
		y = d->y_class ? (d->y_class[r] == 1 ? 1.0 : 0.0) : d->y_value[r];
		sum[lv] += y;
		prior[0] += y;
	}
	for (w = 0; w < nclass_w; w++)
		prior[w] = total > 0 ? prior[w] / total : 0;
	if (c->encode == PP_ENCODE_TARGET)
	{
		for (l = 0; l <= levels; l++)
			for (w = 0; w < nclass_w; w++)
				c->table[(size_t) l * nclass_w + w] = l == levels ? prior[w] :
					(sum[(size_t) l * nclass_w + w] + PP_TARGET_SMOOTHING * prior[w]) /
					(cnt[l] + PP_TARGET_SMOOTHING);
	}
	else
	{
		double	   *key = ml_alloc(env, sizeof(double) * levels);
		uint32_t   *order = ml_alloc(env, sizeof(uint32_t) * levels);

		if (!key || !order)
			return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting column \"%s\"", c->name);
		for (l = 0; l < levels; l++)
		{
			key[l] = nclass_w > 1 ? -cnt[l] : cnt[l] > 0 ? sum[l] / cnt[l] : prior[0];
			order[l] = l;
		}
		qsort_r(order, levels, sizeof(uint32_t), cmp_native, key);
		for (l = 0; l < levels; l++)
			c->table[order[l]] = l;
		c->table[levels] = levels;
		ml_free(env, key);
		ml_free(env, order);
	}
	ml_free(env, cnt);
	ml_free(env, sum);
	ml_free(env, prior);
	return ML_OK;
}

/* Fits the categories and the encoding of one categorical column. */
static MlStatus
fit_category(const MlEnv *env, PpColumn *c, const PpSpec *s, const PpFitData *d, uint32_t col,
			 uint32_t **code_level_out, MlError *err)
{
	uint32_t	nd = d->dict_n[col];
	char	  **dict = d->dict[col];
	int64_t    *count = ml_calloc(env, nd ? nd : 1, sizeof(int64_t));
	uint32_t   *code_level = ml_alloc(env, sizeof(uint32_t) * (nd ? nd : 1));
	int32_t		null_code;
	uint32_t	k,
				levels = 0,
				l;
	bool		supervised = d->y_class != NULL || d->y_value != NULL;
	uint32_t	nclass_w;

	if (!count || !code_level)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting column \"%s\"", c->name);
	c->impute = (uint8_t) (s->impute < 0 ? PP_IMPUTE_NONE : s->impute);
	c->encode = (uint8_t) (s->encode < 0 ? (supervised ? PP_ENCODE_NATIVE : PP_ENCODE_ONEHOT) : s->encode);
	c->scale = PP_SCALE_NONE;
	c->center = 0;
	c->scale_by = 1;
	if (!supervised && (c->encode == PP_ENCODE_TARGET || c->encode == PP_ENCODE_NATIVE))
		return ml_fail(err, ML_ERR_PARAM, "encode = '%s' for column \"%s\" needs a target",
					   prep_encode_name(c->encode), c->name);
	if (fc_count_codes(d, col, nd, count, &null_code, err) != ML_OK ||
		fc_levels(env, c, dict, nd, count, null_code, &levels, err) != ML_OK)
		return err->code;
	for (k = 0; k < nd; k++)
		code_level[k] = (int32_t) k == null_code && c->impute == PP_IMPUTE_ERROR ? UINT32_MAX
			: prep_level_of(c, dict[k]);
	*code_level_out = code_level;

	/* Outputs. */
	nclass_w = d->y_class && d->n_classes > 2 ? d->n_classes : 1;
	c->width = c->encode == PP_ENCODE_ONEHOT ? levels :
		c->encode == PP_ENCODE_TARGET ? nclass_w : 1;
	c->table = NULL;
	if (c->encode == PP_ENCODE_ONEHOT)
		return ML_OK;
	c->table = ml_calloc(env, (size_t) levels + 1, sizeof(double) * c->width);
	if (!c->table)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting column \"%s\"", c->name);
	if (c->encode == PP_ENCODE_ORDINAL)
	{
		for (l = 0; l <= levels; l++)
			c->table[l] = l;
		return ML_OK;
	}
	if (fc_supervised_table(env, c, d, col, code_level, levels, nclass_w, err) != ML_OK)
		return err->code;
	ml_free(env, count);
	return ML_OK;
}

/* Names, kinds and offsets; n_out checked against the feature limit. */
static MlStatus
prep_layout(const MlEnv *env, MlPrep *p, MlError *err)
{
	uint32_t	i;
	uint64_t	off = 0;

	p->in_names = ml_alloc(env, sizeof(char *) * p->n_in);
	p->in_categorical = ml_alloc(env, sizeof(bool) * p->n_in);
	if (!p->in_names || !p->in_categorical)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory for preprocessing");
	for (i = 0; i < p->n_in; i++)
	{
		p->in_names[i] = p->cols[i].name;
		p->in_categorical[i] = p->cols[i].categorical;
		p->cols[i].offset = (uint32_t) off;
		off += p->cols[i].width;
		if (off > 100000)
			return ml_fail(err, ML_ERR_MEMORY, "preprocessing makes more than 100000 features (column \"%s\")",
						   p->cols[i].name);
	}
	p->n_out = (uint32_t) off;
	return ML_OK;
}

MlStatus
prep_fit(const MlEnv *env, const PpFitData *d, const PpSpec *spec, MlPrep *p,
		 uint32_t ***code_level, MlError *err)
{
	uint32_t	i;
	double	   *buf = ml_alloc(env, sizeof(double) * (d->n > 0 ? (size_t) d->n : 1));
	double	   *tmp = ml_alloc(env, sizeof(double) * ((size_t) d->n / 2 + 1));
	uint32_t  **cl = ml_calloc(env, d->n_in ? d->n_in : 1, sizeof(uint32_t *));

	memset(p, 0, sizeof(*p));
	if (!buf || !tmp || !cl)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting the preprocessing");
	p->n_in = d->n_in;
	p->cols = ml_calloc(env, d->n_in ? d->n_in : 1, sizeof(PpColumn));
	if (!p->cols)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting the preprocessing");
	for (i = 0; i < d->n_in; i++)
	{
		PpColumn   *c = &p->cols[i];
		MlStatus	st;

		c->name = ml_strdup(env, d->names[i]);
		if (!c->name)
			return ml_fail(err, ML_ERR_MEMORY, "out of memory fitting the preprocessing");
		c->categorical = d->categorical[i];
		st = c->categorical ? fit_category(env, c, &spec[i], d, i, &cl[i], err)
			: fit_number(env, c, &spec[i], d, i, buf, tmp, err);
		if (st != ML_OK)
			return st;
		if (ml_check(env, "preprocessing", (int) i, (int) d->n_in, 0))
			return ml_fail_cancelled(err);
	}
	ml_free(env, buf);
	ml_free(env, tmp);
	*code_level = cl;
	return prep_layout(env, p, err);
}

char *
prep_output_name(const MlEnv *env, const PpColumn *c, uint32_t j)
{
	size_t		n;
	char	   *s;
	const char *v;

	if (!c->categorical || c->width == 1)
		return ml_strdup(env, c->name);
	if (c->encode == PP_ENCODE_ONEHOT)
	{
		if (j >= c->n_cats)
		{
			n = strlen(c->name) + 16;
			s = ml_alloc(env, n);
			if (s)
				snprintf(s, n, "%s IS NULL", c->name);
			return s;
		}
		v = c->cats[j];
		n = strlen(c->name) + strlen(v) + 2;
		s = ml_alloc(env, n);
		if (s)
			snprintf(s, n, "%s=%s", c->name, v);
		return s;
	}
	n = strlen(c->name) + 32;
	s = ml_alloc(env, n);
	if (s)
		snprintf(s, n, "%s:target_%u", c->name, j);
	return s;
}

/*
 * PREPROCESS section: n_in u32, then per column: name, categorical u8,
 * impute u8; numbers: fill, scale u8, center, scale_by (f64); categories:
 * encode u8, has_null u8, null_to u32, n_cats u32 + texts (sorted,
 * distinct), width u32, table f64 x (levels + 1) x width unless one-hot.
 */
void
prep_write(MlBuf *b, const MlPrep *p)
{
	uint32_t	i,
				k;

	ml_buf_put_u32(b, p->n_in);
	for (i = 0; i < p->n_in; i++)
	{
		const PpColumn *c = &p->cols[i];

		ml_buf_put_str(b, c->name);
		ml_buf_put_u8(b, c->categorical ? 1 : 0);
		ml_buf_put_u8(b, c->impute);
		if (!c->categorical)
		{
			ml_buf_put_f64(b, c->fill);
			ml_buf_put_u8(b, c->scale);
			ml_buf_put_f64(b, c->center);
			ml_buf_put_f64(b, c->scale_by);
			continue;
		}
		ml_buf_put_u8(b, c->encode);
		ml_buf_put_u8(b, c->has_null ? 1 : 0);
		ml_buf_put_u32(b, c->null_to);
		ml_buf_put_u32(b, c->n_cats);
		for (k = 0; k < c->n_cats; k++)
			ml_buf_put_str(b, c->cats[k]);
		ml_buf_put_u32(b, c->width);
		if (c->encode != PP_ENCODE_ONEHOT)
			ml_buf_put_f64s(b, c->table, ((size_t) prep_levels(c) + 1) * c->width);
	}
}

static bool
corrupt(MlReader *r, const char *what, const char *name)
{
	ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: preprocessing of column \"%s\": %s", name, what);
	return false;
}

/* Reads and validates the PREPROCESS section (bounds, enums, order, widths). */
bool
prep_read(MlReader *r, MlPrep *p)
{
	uint32_t	i,
				k;
	uint8_t		u;

	memset(p, 0, sizeof(*p));
	if (!ml_rd_count(r, 1, 100000, 6, &p->n_in, "preprocessing column count"))
		return false;
	p->cols = ml_calloc(r->env, p->n_in, sizeof(PpColumn));
	if (!p->cols)
	{
		ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading the preprocessing");
		return false;
	}
	for (i = 0; i < p->n_in; i++)
	{
		PpColumn   *c = &p->cols[i];

		if (!ml_rd_str(r, ML_MAX_NAME_LEN, &c->name, "preprocessing column name") ||
			!ml_rd_u8(r, &u, "preprocessing kind"))
			return false;
		if (u > 1)
			return corrupt(r, "unknown kind", c->name);
		c->categorical = u == 1;
		if (!ml_rd_u8(r, &c->impute, "impute"))
			return false;
		if (!c->categorical)
		{
			if (c->impute > PP_IMPUTE_ERROR)
				return corrupt(r, "unknown impute", c->name);
			if (!ml_rd_finite(r, &c->fill, "fill value") || !ml_rd_u8(r, &c->scale, "scale") ||
				!ml_rd_finite(r, &c->center, "center") || !ml_rd_finite(r, &c->scale_by, "scale"))
				return false;
			if (c->scale > PP_SCALE_ROBUST)
				return corrupt(r, "unknown scale", c->name);
			if (c->scale_by == 0)
				return corrupt(r, "zero scale", c->name);
			c->width = 1;
			continue;
		}
		if (c->impute != PP_IMPUTE_NONE && c->impute != PP_IMPUTE_MODE && c->impute != PP_IMPUTE_ERROR)
			return corrupt(r, "impute does not apply to categories", c->name);
		c->scale_by = 1;
		if (!ml_rd_u8(r, &c->encode, "encode") || !ml_rd_u8(r, &u, "has_null") ||
			!ml_rd_u32(r, &c->null_to, "null level"))
			return false;
		if (c->encode < PP_ENCODE_ONEHOT || c->encode > PP_ENCODE_NATIVE)
			return corrupt(r, "unknown encoding", c->name);
		if (u > 1)
			return corrupt(r, "bad has_null flag", c->name);
		c->has_null = u == 1;
		if (!ml_rd_count(r, 0, ML_MAX_CATEGORIES, 4, &c->n_cats, "category count"))
			return false;
		c->cats = ml_alloc(r->env, sizeof(char *) * (c->n_cats ? c->n_cats : 1));
		if (!c->cats)
		{
			ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading categories");
			return false;
		}
		for (k = 0; k < c->n_cats; k++)
		{
			if (!ml_rd_str(r, ML_MAX_CATEGORY_LEN, &c->cats[k], "category"))
				return false;
			if (k > 0 && strcmp(c->cats[k - 1], c->cats[k]) >= 0)
				return corrupt(r, "categories not sorted and distinct", c->name);
		}
		if (prep_levels(c) == 0)
			return corrupt(r, "no categories", c->name);
		if (c->has_null ? c->null_to != c->n_cats : c->null_to > prep_levels(c))
			return corrupt(r, "bad NULL level", c->name);
		if (!ml_rd_u32(r, &c->width, "width"))
			return false;
		if (c->encode == PP_ENCODE_ONEHOT ? c->width != prep_levels(c) :
			c->encode == PP_ENCODE_TARGET ? (c->width < 1 || c->width > 100000) : c->width != 1)
			return corrupt(r, "width does not match the encoding", c->name);
		if (c->encode != PP_ENCODE_ONEHOT)
		{
			size_t		cells;

			if (!ml_mul_size((size_t) prep_levels(c) + 1, c->width, &cells) ||
				cells > ml_rd_left(r) / 8)
				return corrupt(r, "code table longer than the section", c->name);
			if (!ml_rd_f64s(r, cells, &c->table, "code table"))
				return false;
		}
	}
	{
		MlError    *err = r->err;

		if (prep_layout(r->env, p, err) != ML_OK)
		{
			if (err->code == ML_ERR_MEMORY && p->in_names)
				err->code = ML_ERR_CORRUPT;
			return false;
		}
	}
	return ml_rd_end(r, "preprocessing section");
}
