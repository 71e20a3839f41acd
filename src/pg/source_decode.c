/*
 * source_decode.c: one deformed source row into its d doubles, by the
 * feature columns source_plan_columns chose: numeric kinds as doubles,
 * categories through dictionaries (a code for each distinct text), arrays
 * element by element, dates into parts, with the NULL / NaN rules; and the
 * array widths that fix the layout from the first readable row.
 */
#include "mlpipe.h"
#include "source_int.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include <math.h>

/* A numeric scalar datum of kind as a double (NaN for an array kind). */
static double
scalar_value(ColKind kind, Datum d)
{
	switch (kind)
	{
		case COL_INT2: return DatumGetInt16(d);
		case COL_INT4: return DatumGetInt32(d);
		case COL_INT8: return (double) DatumGetInt64(d);
		case COL_FLOAT4: return DatumGetFloat4(d);
		case COL_FLOAT8: return DatumGetFloat8(d);
		case COL_BOOL: return DatumGetBool(d) ? 1.0 : 0.0;
		case COL_NUMERIC:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
		default: return NAN;
	}
}

/* A value of a column of kind source_scalar_kind(type) as a double. */
double
source_scalar_value(int kind, Datum d)
{
	return scalar_value((ColKind) kind, d);
}

typedef struct DictEntry
{
	char	   *key;			/* the text, owned by the dictionary */
	uint32		code;
} DictEntry;

/* Sets up a column's dictionary in the scan's memory context. */
void
source_dict_init(FeatureCol *fc, SourceDict *dict, MemoryContext mcxt)
{
	Oid			outfn;
	bool		varlena;

	dict->index = pg_cstring_htab("mlpipe categories", 256, sizeof(DictEntry), mcxt);
	dict->cap = 64;
	dict->n = 0;
	dict->labels = MemoryContextAlloc(mcxt, sizeof(char *) * dict->cap);
	dict->null_code = -1;
	getTypeOutputInfo(fc->type, &outfn, &varlena);
	fmgr_info_cxt(outfn, &fc->out, mcxt);
	fc->dict = dict;
}

/* The code of a category text (NULL for SQL NULL), adding it when new. */
static double
dict_code(FeatureCol *fc, const char *text)
{
	SourceDict *d = fc->dict;
	MemoryContext mcxt = GetMemoryChunkContext(d->labels);
	DictEntry  *e;
	bool		found;

	if (text == NULL && d->null_code >= 0)
		return d->null_code;
	if (text != NULL)
	{
		if (strlen(text) > ML_MAX_CATEGORY_LEN)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("column \"%s\" has a value longer than %d bytes, too long for a category",
								   fc->name, ML_MAX_CATEGORY_LEN)));
		e = hash_search(d->index, &text, HASH_FIND, NULL);
		if (e)
			return e->code;
	}
	if (d->n >= ML_MAX_CATEGORIES)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("column \"%s\" has more than %d distinct values", fc->name, ML_MAX_CATEGORIES),
						errhint("Leave it out with params.exclude, or group its values in the source.")));
	if (d->n == d->cap)
	{
		d->cap *= 2;
		d->labels = repalloc(d->labels, sizeof(char *) * d->cap);
	}
	if (text == NULL)
	{
		d->labels[d->n] = NULL;
		d->null_code = (int32) d->n;
		return d->n++;
	}
	d->labels[d->n] = MemoryContextStrdup(mcxt, text);
	e = hash_search(d->index, &d->labels[d->n], HASH_ENTER, &found);
	e->key = d->labels[d->n];
	e->code = d->n;
	return d->n++;
}

/*
 * Decodes one row into out (d values). Returns false with rs set when a value
 * is NULL, NaN or infinite. Array lengths are checked against the plan.
 */
bool
source_decode_row(FeatureCol *cols, int ncols, Datum *values, bool *nulls, double *out,
		   RowState *rs, int64 rowno, bool missing_ok)
{
	int			c,
				j;

	for (c = 0; c < ncols; c++)
	{
		FeatureCol *fc = &cols[c];

		if (fc->kind == COL_CATEGORY)
		{
			out[fc->offset] = dict_code(fc, nulls[fc->attno] ? NULL :
										source_category_text(fc->type, &fc->out, values[fc->attno]));
			continue;
		}
		if (nulls[fc->attno])
		{
			if (missing_ok)
			{
				for (j = 0; j < fc->width; j++)
					out[fc->offset + j] = NAN;
				continue;
			}
			rs->bad_col = fc->name;
			rs->why = "NULL";
			return false;
		}
		if (fc->kind == COL_DATE || fc->kind == COL_TIMESTAMP)
		{
			if (!source_date_values(fc->kind == COL_DATE, values[fc->attno], out + fc->offset))
			{
				if (!missing_ok)
				{
					rs->bad_col = fc->name;
					rs->why = "infinite";
					return false;
				}
				for (j = 0; j < fc->width; j++)
					out[fc->offset + j] = NAN;
			}
			continue;
		}
		if (fc->kind == COL_FLOAT8_ARRAY || fc->kind == COL_FLOAT4_ARRAY)
		{
			ArrayType  *a = DatumGetArrayTypeP(values[fc->attno]);
			int			len = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));

			if (ARR_NDIM(a) > 1)
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("column \"%s\" holds a %d-dimensional array in row " INT64_FORMAT,
									   fc->name, ARR_NDIM(a), rowno),
								errhint("Array features must be one-dimensional.")));
			if (len != fc->width)
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("arrays of different lengths: column \"%s\" has %d elements in row " INT64_FORMAT ", expected %d",
									   fc->name, len, rowno, fc->width),
								errhint("Every row must have the same number of elements.")));
			if (ARR_HASNULL(a) && array_contains_nulls(a))
			{
				if (missing_ok)
				{
					/* Element by element: NULL elements are missing values. */
					Datum	   *ev;
					bool	   *en;
					int			ne;

					if (fc->kind == COL_FLOAT8_ARRAY)
						deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
										  &ev, &en, &ne);
					else
						deconstruct_array(a, FLOAT4OID, 4, true, TYPALIGN_INT, &ev, &en, &ne);
					for (j = 0; j < ne; j++)
						out[fc->offset + j] = en[j] ? NAN :
							fc->kind == COL_FLOAT8_ARRAY ? DatumGetFloat8(ev[j]) : DatumGetFloat4(ev[j]);
					continue;
				}
				rs->bad_col = fc->name;
				rs->why = "an array with a NULL element";
				return false;
			}
			if (fc->kind == COL_FLOAT8_ARRAY)
				memcpy(out + fc->offset, ARR_DATA_PTR(a), sizeof(double) * len);
			else
			{
				float	   *src = (float *) ARR_DATA_PTR(a);

				for (j = 0; j < len; j++)
					out[fc->offset + j] = src[j];
			}

			/*
			 * Free a detoasted copy at once: the next row's copy then reuses
			 * its memory, where keeping a batch of them (10,000 x 6 KB for
			 * 784-wide rows) makes every batch fault in fresh pages.
			 */
			if ((Pointer) a != DatumGetPointer(values[fc->attno]))
				pfree(a);
			for (j = 0; j < len && !missing_ok; j++)
				if (!isfinite(out[fc->offset + j]))
				{
					rs->bad_col = fc->name;
					rs->why = isnan(out[fc->offset + j]) ? "NaN" : "infinite";
					return false;
				}
		}
		else
		{
			double		v = scalar_value(fc->kind, values[fc->attno]);

			if (!isfinite(v) && !missing_ok)
			{
				rs->bad_col = fc->name;
				rs->why = isnan(v) ? "NaN" : "infinite";
				return false;
			}
			out[fc->offset] = v;
		}
	}
	return true;
}

/* Sets array widths and offsets from the first row that has every array. */
int
source_plan_widths(FeatureCol *cols, int ncols, Datum *values, bool *nulls)
{
	int			c,
				d = 0;

	for (c = 0; c < ncols; c++)
	{
		if (cols[c].kind == COL_FLOAT8_ARRAY || cols[c].kind == COL_FLOAT4_ARRAY)
		{
			ArrayType  *a;

			if (nulls[cols[c].attno])
				return -1;
			a = DatumGetArrayTypeP(values[cols[c].attno]);
			cols[c].width = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
			if (cols[c].width == 0)
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("column \"%s\" holds an empty array", cols[c].name)));
		}
		cols[c].offset = d;
		d += cols[c].width;
	}
	if (d > ML_MAX_FEATURES)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("%d features exceed the limit of %d", d, ML_MAX_FEATURES)));
	return d;
}

/*
 * A row decode_row refused (NULL, NaN or infinite features, on_null = skip),
 * decoded again for the training profile only, so that its null rates
 * count the skipped rows too: missing values as NaN, arrays of the wrong
 * length as missing, and categories looked up without being added (the
 * fit's dictionary, and so the artifact, must not change): a value the
 * dictionary does not hold yet is PROFILE_UNKNOWN_CODE.
 */
void
source_decode_row_for_profile(FeatureCol *cols, int ncols, Datum *values, bool *nulls, double *out,
					   int64 rowno)
{
	int			c,
				j;

	for (c = 0; c < ncols; c++)
	{
		FeatureCol *fc = &cols[c];
		RowState	rs = {NULL, NULL};

		if (fc->kind == COL_CATEGORY)
		{
			char	   *text;
			DictEntry  *e;

			out[fc->offset] = NAN;
			if (nulls[fc->attno])
				continue;
			text = source_category_text(fc->type, &fc->out, values[fc->attno]);
			e = hash_search(fc->dict->index, &text, HASH_FIND, NULL);
			out[fc->offset] = e ? e->code : PROFILE_UNKNOWN_CODE;
			continue;
		}
		if (!nulls[fc->attno] && (fc->kind == COL_FLOAT8_ARRAY || fc->kind == COL_FLOAT4_ARRAY))
		{
			ArrayType  *a = DatumGetArrayTypeP(values[fc->attno]);

			if (ARR_NDIM(a) > 1 || ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a)) != fc->width)
			{
				for (j = 0; j < fc->width; j++)
					out[fc->offset + j] = NAN;
				continue;
			}
		}
		(void) source_decode_row(fc, 1, values, nulls, out, &rs, rowno, true);
	}
}
