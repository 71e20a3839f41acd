/*
 * preprocess.h: stored preprocessing. A model with preprocessing takes raw
 * inputs (numbers and category texts) and turns them into its feature
 * vector: numbers are imputed and scaled, categories encoded (one-hot,
 * ordinal, target mean or "native" codes ordered by the target). What was
 * fitted (fill values, centres and scales, category lists and code tables)
 * is the artifact's PREPROCESS section, so scoring re-applies exactly what
 * training computed, from the training split only.
 *
 * Categories: the texts seen in training, sorted (strcmp); SQL NULL is its
 * own level after them when training saw it. A text never seen in training
 * (or NULL when training never saw NULL) is the "unknown" level, number
 * `levels`: all zeros in one-hot, the code `levels` in ordinal/native, the
 * training prior in target encoding.
 */
#ifndef PREPROCESS_H
#define PREPROCESS_H

#include "artifact.h"

#define ML_MAX_CATEGORIES	100000
#define ML_MAX_CATEGORY_LEN 4096
#define PP_TARGET_SMOOTHING 10.0	/* m-estimate weight of the prior */

typedef enum PpImpute
{
	PP_IMPUTE_NONE = 0,			/* numbers: NaN stays missing; categories: NULL is a level */
	PP_IMPUTE_MEAN = 1,
	PP_IMPUTE_MEDIAN = 2,
	PP_IMPUTE_MODE = 3,
	PP_IMPUTE_ZERO = 4,
	PP_IMPUTE_ERROR = 5
} PpImpute;

typedef enum PpScale
{
	PP_SCALE_NONE = 0,
	PP_SCALE_STANDARD = 1,		/* (x - mean) / std (population std, 1 when 0) */
	PP_SCALE_MINMAX = 2,		/* (x - min) / (max - min) (1 when equal) */
	PP_SCALE_ROBUST = 3			/* (x - median) / IQR (1 when 0) */
} PpScale;

typedef enum PpEncode
{
	PP_ENCODE_NONE = 0,			/* numbers */
	PP_ENCODE_ONEHOT = 1,
	PP_ENCODE_ORDINAL = 2,		/* level number in text order */
	PP_ENCODE_TARGET = 3,		/* smoothed target mean (one per class for multiclass) */
	PP_ENCODE_NATIVE = 4		/* code = rank of the level by its target mean */
} PpEncode;

/* One raw input column (an array element counts as one, named "x[i]"). */
typedef struct PpColumn
{
	char	   *name;
	bool		categorical;
	uint8_t		impute;			/* PpImpute */
	/* numbers */
	double		fill;			/* replaces NaN unless impute is none/error */
	uint8_t		scale;			/* PpScale */
	double		center;
	double		scale_by;		/* nonzero */
	/* categories */
	uint8_t		encode;			/* PpEncode */
	uint32_t	n_cats;			/* non-NULL texts, sorted, distinct */
	char	  **cats;
	bool		has_null;		/* NULL is level n_cats */
	uint32_t	null_to;		/* the level NULL maps to (levels = unknown) */
	uint32_t	width;			/* outputs of this column */
	double	   *table;			/* (levels + 1) x width, not for one-hot */
	uint32_t	offset;			/* first output (computed) */
} PpColumn;

typedef struct MlPrep
{
	uint32_t	n_in;			/* 0: the model has no preprocessing */
	PpColumn   *cols;
	uint32_t	n_out;
	char	  **in_names;		/* n_in column names, for matching rows */
	bool	   *in_categorical;
} MlPrep;

/* Levels of a categorical column: its texts, plus NULL when it has its own. */
static inline uint32_t
prep_levels(const PpColumn *c)
{
	return c->n_cats + (c->has_null ? 1 : 0);
}

/* The level of a text (NULL for SQL NULL); prep_levels() when unknown. */
uint32_t	prep_level_of(const PpColumn *c, const char *s);

/*
 * Writes the n_out features of one row: raw[i] is column i's number (NaN
 * for missing), strs[i] its text (NULL for NULL) when it is categorical.
 * ML_ERR_DATA when a missing value meets impute = error.
 */
MlStatus	prep_transform_row(const MlPrep *p, const double *raw, const char *const *strs,
							   double *out, MlError *err);

/* Like prep_transform_row, with categories given as levels (training). */
MlStatus	prep_transform_levels(const MlPrep *p, const double *raw, double *out, MlError *err);

/* What the caller asked for one column; -1 fields take the defaults. */
typedef struct PpSpec
{
	int			impute;
	int			scale;
	int			encode;
} PpSpec;

/* Training data for prep_fit: raw rows with categories as levels-to-be. */
typedef struct PpFitData
{
	int64_t		n;				/* rows */
	uint32_t	n_in;
	const double *X;			/* n x n_in; categorical cells hold a dictionary code */
	const uint8_t *is_train;	/* rows to fit on (NULL: all) */
	/* per column: dictionary of codes (texts, NULL entry for SQL NULL) */
	char	  **const *dict;
	const uint32_t *dict_n;
	const char *const *names;
	const bool *categorical;
	/* target (NULL for clustering): class index or value per row */
	const int32_t *y_class;
	uint32_t	n_classes;
	const double *y_value;
} PpFitData;

/*
 * Fits every column on the training rows and fills p (computing offsets
 * and n_out), and for each categorical column a map from dictionary code to
 * level (code_level[col][code]; NULL arrays for numeric columns), so the
 * caller can transform its coded rows with prep_transform_levels after
 * replacing each code by its level.
 */
MlStatus	prep_fit(const MlEnv *env, const PpFitData *d, const PpSpec *spec, MlPrep *p,
					 uint32_t ***code_level, MlError *err);

/* The name of output j of column c (for META feature names). */
char	   *prep_output_name(const MlEnv *env, const PpColumn *c, uint32_t j);

void		prep_write(MlBuf *b, const MlPrep *p);
bool		prep_read(MlReader *r, MlPrep *p);

const char *prep_impute_name(int v);
const char *prep_scale_name(int v);
const char *prep_encode_name(int v);

#endif
