/*
 * source.c: what a training source (table, view or SELECT) means: its
 * query, the feature columns it gives and their kinds, and the decoding of
 * one deformed row into d doubles (categories through dictionaries, arrays
 * element by element, dates into parts) with the NULL / NaN rules and the
 * id-like statistics. source_read.c runs the query and feeds the rows in
 * (source_scan_begin / _describe / _row / _end).
 */
#include "mlpipe.h"
#include "source_int.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/varlena.h"

#include <ctype.h>
#include <math.h>

typedef enum ColKind
{
	COL_INT2, COL_INT4, COL_INT8, COL_FLOAT4, COL_FLOAT8, COL_NUMERIC, COL_BOOL,
	COL_FLOAT8_ARRAY, COL_FLOAT4_ARRAY, COL_CATEGORY,
	COL_DATE, COL_TIMESTAMP		/* expanded into date parts (dates.c) */
} ColKind;

typedef struct FeatureCol
{
	int			attno;			/* 0-based in the tuple descriptor */
	ColKind		kind;
	int			width;			/* 1, or the array length (known after the first row) */
	int			offset;			/* first output column */
	const char *name;
	Oid			type;			/* COL_CATEGORY: for the output function */
	FmgrInfo	out;
	SourceDict *dict;			/* COL_CATEGORY */
} FeatureCol;

static double scalar_value(ColKind kind, Datum d);

/* True when source is a query rather than a relation name. */
static bool
source_is_query(const char *s)
{
	static const char *const words[] = {"select", "with", "values", "table", NULL};
	int			i;

	while (isspace((unsigned char) *s) || *s == '(')
		s++;
	for (i = 0; words[i]; i++)
	{
		size_t		n = strlen(words[i]);

		if (pg_strncasecmp(s, words[i], n) == 0 &&
			(s[n] == '\0' || isspace((unsigned char) s[n]) || s[n] == '('))
			return true;
	}
	return false;
}

/* The query to run for a source; relation names are resolved and quoted. */
char *
source_query(const char *source)
{
	if (source_is_query(source))
	{
		char	   *q = pstrdup(source);
		int			n = strlen(q);

		/* A trailing semicolon is common when pasting from psql. */
		while (n > 0 && (isspace((unsigned char) q[n - 1]) || q[n - 1] == ';'))
			q[--n] = '\0';
		if (list_length(raw_parser(q, RAW_PARSE_DEFAULT)) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("a query source must be one SELECT statement"),
					 errhint("Remove the statements after the first \";\".")));

		/*
		 * Run as written, not wrapped in a subquery: wrapped, Citus pushes
		 * the query's ORDER BY into each shard query and the rows arrive in
		 * shard order (issue #11). Training reads read-only, so a
		 * data-modifying WITH is refused as before.
		 */
		return psprintf("%s\n", q);
	}
	else
	{
		List	   *names = stringToQualifiedNameList(source);
		RangeVar   *rv = makeRangeVarFromNameList(names);
		Oid			relid = RangeVarGetRelid(rv, AccessShareLock, true);

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("source relation \"%s\" does not exist", source),
					 errhint("The source is a table or view name, or a SELECT query.")));
		return psprintf("SELECT * FROM %s",
						quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												   get_rel_name(relid)));
	}
}

/* The ColKind of a base type; false when a column of it cannot be a numeric feature. */
static bool
col_kind_of(Oid type, ColKind *kind)
{
	switch (type)
	{
		case INT2OID: *kind = COL_INT2; return true;
		case INT4OID: *kind = COL_INT4; return true;
		case INT8OID: *kind = COL_INT8; return true;
		case FLOAT4OID: *kind = COL_FLOAT4; return true;
		case FLOAT8OID: *kind = COL_FLOAT8; return true;
		case NUMERICOID: *kind = COL_NUMERIC; return true;
		case BOOLOID: *kind = COL_BOOL; return true;
		case FLOAT8ARRAYOID: *kind = COL_FLOAT8_ARRAY; return true;
		case FLOAT4ARRAYOID: *kind = COL_FLOAT4_ARRAY; return true;
		default: return false;
	}
}

/* True when a column of this type (base type) is a numeric feature. */
bool
source_numeric_type(Oid type)
{
	ColKind		k;

	return col_kind_of(getBaseType(type), &k) && k != COL_FLOAT8_ARRAY && k != COL_FLOAT4_ARRAY;
}

/*
 * The kind of a numeric scalar type (domains resolved), or -1. Resolve it
 * once per column: getBaseType is a catalog lookup, too dear per row.
 */
int
source_scalar_kind(Oid type)
{
	ColKind		k;

	if (!col_kind_of(getBaseType(type), &k) || k == COL_FLOAT8_ARRAY || k == COL_FLOAT4_ARRAY)
		return -1;
	return (int) k;
}

/* A value of a column of kind source_scalar_kind(type) as a double. */
double
source_scalar_value(int kind, Datum d)
{
	return scalar_value((ColKind) kind, d);
}

/* True for text, varchar, char, name and enum columns (domains resolved). */
bool
source_category_type(Oid type)
{
	type = getBaseType(type);
	return type == TEXTOID || type == VARCHAROID || type == BPCHAROID || type == NAMEOID ||
		type_is_enum(type);
}

/* A categorical datum's text, as its output function writes it. */
char *
source_category_text(Oid type, FmgrInfo *out, Datum d)
{
	return OutputFunctionCall(out, d);
}

/* True when a column of this type can order a time split. */
bool
source_time_type(Oid type)
{
	type = getBaseType(type);
	return type == DATEOID || type == TIMESTAMPOID || type == TIMESTAMPTZOID ||
		(source_numeric_type(type) && type != BOOLOID);
}

/*
 * A split column's value as a double: dates in days, timestamps in
 * microseconds. base is the column's base type, kind its source_scalar_kind.
 */
static double
split_value(Oid base, int kind, Datum d)
{
	if (base == DATEOID)
		return (double) DatumGetDateADT(d);
	if (base == TIMESTAMPOID || base == TIMESTAMPTZOID)
		return (double) DatumGetTimestamp(d);
	if (kind < 0)
		elog(ERROR, "type %u is not a split column type", base);
	return scalar_value((ColKind) kind, d);
}

/* True when arr (a JSON array, or NULL) holds the string name. */
static bool
name_in_json_array(cJSON *arr, const char *name)
{
	cJSON	   *it;

	if (arr == NULL)
		return false;
	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
		return true;
	return false;
}

/* The columns of td, for hints. */
static char *
tupdesc_column_list(TupleDesc td)
{
	StringInfoData s;
	int			i;
	bool		first = true;

	initStringInfo(&s);
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);

		if (a->attisdropped)
			continue;
		appendStringInfo(&s, "%s%s", first ? "" : ", ", NameStr(a->attname));
		first = false;
	}
	return s.data;
}

/* The position of a live column by name, or -1. */
int
source_find_column(TupleDesc td, const char *name)
{
	int			i;

	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
			return i;
	}
	return -1;
}

/* Chooses the feature columns: the features argument, or every column but target and exclude. */
static FeatureCol *
plan_columns(const SourceSpec *spec, TupleDesc td, int *ncols)
{
	FeatureCol *cols = palloc0(sizeof(FeatureCol) * Max(td->natts, 1));
	int			n = 0;
	int			i;
	cJSON	   *it;

	if (spec->target && source_find_column(td, spec->target) < 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("target column \"%s\" is not in the source", spec->target),
						errhint("Columns: %s.", tupdesc_column_list(td))));
	if (spec->split_column)
	{
		int			at = source_find_column(td, spec->split_column);
		Oid			type;

		if (at < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.split names column \"%s\", which is not in the source",
								   spec->split_column),
							errhint("Columns: %s.", tupdesc_column_list(td))));
		type = TupleDescAttr(td, at)->atttypid;
		if (spec->split_kind == SPLIT_COL_BOOL && getBaseType(type) != BOOLOID)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("split column \"%s\" has type %s, not boolean",
								   spec->split_column, format_type_be(type)),
							errhint("split = 'column:<c>' takes a boolean column that is true for the test rows.")));
		if (spec->split_kind == SPLIT_COL_TIME && !source_time_type(type))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("time split column \"%s\" has type %s, which is not a time",
								   spec->split_column, format_type_be(type)),
							errhint("split = 'time:<c>' takes a date, timestamp, timestamptz or numeric column.")));
		if (spec->target && strcmp(spec->split_column, spec->target) == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("column \"%s\" is both the target and the split column", spec->target)));
	}
	if (spec->exclude)
		cJSON_ArrayForEach(it, spec->exclude)
			if (source_find_column(td, it->valuestring) < 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.exclude names column \"%s\", which is not in the source",
								   it->valuestring),
							errhint("Columns: %s.", tupdesc_column_list(td))));

	if (spec->features)
	{
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		deconstruct_array(spec->features, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
		if (nelems == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("features is an empty array"),
							errhint("Pass NULL to use every column but the target.")));
		cols = repalloc(cols, sizeof(FeatureCol) * nelems);
		for (i = 0; i < nelems; i++)
		{
			char	   *name;
			int			at,
						j;

			if (nulls[i])
				ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
								errmsg("features contains a NULL name")));
			name = TextDatumGetCString(elems[i]);
			at = source_find_column(td, name);
			if (at < 0)
				ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
								errmsg("feature column \"%s\" is not in the source", name),
								errhint("Columns: %s.", tupdesc_column_list(td))));
			if (spec->target && strcmp(name, spec->target) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("column \"%s\" is both the target and a feature", name)));
			if (spec->split_kind == SPLIT_COL_BOOL && strcmp(name, spec->split_column) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("column \"%s\" is both the split column and a feature", name),
								errhint("The column of split = 'column:<c>' is never a feature.")));
			for (j = 0; j < n; j++)
				if (cols[j].attno == at)
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
									errmsg("feature column \"%s\" is listed twice", name)));
			cols[n].attno = at;
			cols[n].name = name;
			n++;
		}
	}
	else
	{
		for (i = 0; i < td->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(td, i);
			const char *name = NameStr(a->attname);

			if (a->attisdropped)
				continue;
			if (spec->target && strcmp(name, spec->target) == 0)
				continue;
			if (name_in_json_array(spec->exclude, name))
				continue;
			if (spec->split_column && strcmp(name, spec->split_column) == 0)
				continue;

			cols[n].attno = i;
			cols[n].name = pstrdup(name);
			n++;
		}
		if (n == 0)
			ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
							errmsg("the source has no feature columns left")));
	}
	for (i = 0; i < n; i++)
	{
		Oid			type = TupleDescAttr(td, cols[i].attno)->atttypid;

		cols[i].type = type;
		cols[i].width = 1;
		if (source_category_type(type))
			cols[i].kind = COL_CATEGORY;
		else if (source_date_parts(type) > 0)
		{
			cols[i].kind = getBaseType(type) == DATEOID ? COL_DATE : COL_TIMESTAMP;
			cols[i].width = source_date_parts(type);
		}
		else if (!col_kind_of(getBaseType(type), &cols[i].kind))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("column \"%s\" has type %s, which %s cannot use as a feature",
							cols[i].name, format_type_be(type), spec->algorithm),
					 errhint("Features are integer, numeric, real, double precision, boolean, "
							 "text, varchar, char, enum, date, timestamp, timestamptz, real[] or double precision[] columns; leave others out with "
							 "the features argument or params.exclude.")));
	}
	*ncols = n;
	return cols;
}

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

/* Hash of a dictionary key: the text a key pointer points to. */
static uint32
dict_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return DatumGetUInt32(hash_any((const unsigned char *) s, strlen(s)));
}

/* Match of two dictionary keys (hash_search: 0 when equal). */
static int
dict_match(const void *a, const void *b, Size keysize)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

typedef struct DictEntry
{
	char	   *key;			/* the text, owned by the dictionary */
	uint32		code;
} DictEntry;

/* Sets up a column's dictionary in the scan's memory context. */
static void
dict_init(FeatureCol *fc, SourceDict *dict, MemoryContext mcxt)
{
	HASHCTL		ctl;
	Oid			outfn;
	bool		varlena;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(DictEntry);
	ctl.hash = dict_hash;
	ctl.match = dict_match;
	ctl.hcxt = mcxt;
	dict->index = hash_create("mlpipe categories", 256, &ctl,
							  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
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

/* Why a row is unusable, for the error message; NULL when it is fine. */
typedef struct RowState
{
	const char *bad_col;
	const char *why;
} RowState;

/*
 * Decodes one row into out (d values). Returns false with rs set when a value
 * is NULL, NaN or infinite. Array lengths are checked against the plan.
 */
static bool
decode_row(FeatureCol *cols, int ncols, Datum *values, bool *nulls, double *out,
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
static int
plan_widths(FeatureCol *cols, int ncols, Datum *values, bool *nulls)
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
static void
decode_row_for_profile(FeatureCol *cols, int ncols, Datum *values, bool *nulls, double *out,
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
		(void) decode_row(fc, 1, values, nulls, out, &rs, rowno, true);
	}
}

/* State of one scan, shared by its phases below (source_read.c drives it). */
struct SourceScan
{
	const SourceSpec *spec;
	MemoryContext mcxt;			/* where the layout and info live */
	SourceRowFn fn;				/* gets each usable row */
	void	   *arg;			/* fn's and on_plan's argument */
	SourceInfo *info;			/* filled in by the scan */
	FeatureCol *cols;			/* NULL until the first batch's row description */
	int			ncols;
	int			target_att;		/* -1 without a target */
	int			split_att;		/* -1 without a split column */
	Oid			split_base;		/* resolved once */
	int			split_kind;
	Datum	   *values;			/* the current row, deformed (the reader's arrays) */
	bool	   *nulls;
	double	   *row;			/* d doubles, once the layout is known */
	bool		planned;		/* feature widths known, on_plan called */
	/* per feature column, for integer ones: any NULL, least and greatest value */
	bool	   *id_null;
	int64	   *id_min;
	int64	   *id_max;
};

/* True for an integer feature column (the only kind a row id can be). */
static bool
is_int_col(const FeatureCol *fc)
{
	return fc->kind == COL_INT2 || fc->kind == COL_INT4 || fc->kind == COL_INT8;
}

/* The id-like statistics of one row: NULLs, least and greatest value of each integer feature. */
static void
id_stats_add(SourceScan *ss, int64 rowno)
{
	int			c;

	for (c = 0; c < ss->ncols; c++)
	{
		FeatureCol *fc = &ss->cols[c];
		int64		v;

		if (!is_int_col(fc) || ss->id_null[c])
			continue;
		if (ss->nulls[fc->attno])
		{
			ss->id_null[c] = true;
			continue;
		}
		v = fc->kind == COL_INT2 ? DatumGetInt16(ss->values[fc->attno]) :
			fc->kind == COL_INT4 ? DatumGetInt32(ss->values[fc->attno]) : DatumGetInt64(ss->values[fc->attno]);
		if (rowno == 1 || v < ss->id_min[c])
			ss->id_min[c] = v;
		if (rowno == 1 || v > ss->id_max[c])
			ss->id_max[c] = v;
	}
}

/*
 * After the scan of rows rows: the integer features with no NULL whose
 * values run from min to max with one value a row (max - min + 1 = rows,
 * 50 rows or more) go to info->id_like.
 */
static void
id_stats_finish(SourceScan *ss, int64 rows, SourceInfo *info)
{
	int			c;

	info->id_like = MemoryContextAlloc(ss->mcxt, sizeof(char *) * Max(ss->ncols, 1));
	info->n_id_like = 0;
	if (rows < 50)
		return;
	for (c = 0; c < ss->ncols; c++)
	{
		/* the span as unsigned: max - min cannot overflow it */
		uint64		span = (uint64) ss->id_max[c] - (uint64) ss->id_min[c];

		if (is_int_col(&ss->cols[c]) && !ss->id_null[c] && span == (uint64) rows - 1)
			info->id_like[info->n_id_like++] = MemoryContextStrdup(ss->mcxt, ss->cols[c].name);
	}
}

/* Adds the id-like feature names to a fit's info as "id_like_features" (none: nothing). */
void
source_id_like_json(char **names, int n, cJSON *fit_info)
{
	cJSON	   *arr;
	int			i;

	if (n == 0)
		return;
	arr = cJSON_AddArrayToObject(fit_info, "id_like_features");
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(names[i]));
}

/* The feature columns, target and split column, from the row description. */
static void
scan_plan_columns(SourceScan *ss, TupleDesc td, SourceInfo *info)
{
	const SourceSpec *spec = ss->spec;
	MemoryContext old = MemoryContextSwitchTo(ss->mcxt);

	ss->cols = plan_columns(spec, td, &ss->ncols);
	ss->id_null = palloc0(sizeof(bool) * Max(ss->ncols, 1));
	ss->id_min = palloc0(sizeof(int64) * Max(ss->ncols, 1));
	ss->id_max = palloc0(sizeof(int64) * Max(ss->ncols, 1));
	if (spec->target)
	{
		ss->target_att = source_find_column(td, spec->target);
		info->target_type = TupleDescAttr(td, ss->target_att)->atttypid;
	}
	if (spec->split_column)
	{
		ss->split_att = source_find_column(td, spec->split_column);
		ss->split_base = getBaseType(TupleDescAttr(td, ss->split_att)->atttypid);
		ss->split_kind = source_scalar_kind(ss->split_base);
	}
	MemoryContextSwitchTo(old);
}

/* Hands the layout (column, element, kind of each feature) to the profile sampler. */
static void
scan_plan_profile(SourceScan *ss, int d, SourceInfo *info)
{
	const char **column = palloc(sizeof(char *) * d);
	int		   *element = palloc(sizeof(int) * d);
	ProfileKind *kind = palloc(sizeof(ProfileKind) * d);
	int			c,
				j;

	for (c = 0; c < ss->ncols; c++)
	{
		FeatureCol *fc = &ss->cols[c];
		bool		is_array = fc->kind == COL_FLOAT8_ARRAY || fc->kind == COL_FLOAT4_ARRAY;

		for (j = 0; j < fc->width; j++)
		{
			column[fc->offset + j] = fc->name;
			element[fc->offset + j] = is_array ? j + 1 : 0;
			kind[fc->offset + j] = fc->kind == COL_CATEGORY ? PROFILE_CATEGORY :
				fc->kind == COL_BOOL ? PROFILE_BOOL :
				(fc->kind == COL_DATE || fc->kind == COL_TIMESTAMP) ? PROFILE_SKIP : PROFILE_NUMERIC;
		}
	}
	profile_plan(ss->spec->profile, d, column, element, kind, info->dicts);
	pfree(column);
	pfree(element);
	pfree(kind);
}

/*
 * Once the first readable row gives every array its width (d features):
 * the feature names (column, or column[i] for array elements, 1-based),
 * the categorical flags and dictionaries, then spec->on_plan.
 */
static void
scan_plan_layout(SourceScan *ss, int d, SourceInfo *info, void *arg)
{
	FeatureCol *cols = ss->cols;
	MemoryContext old = MemoryContextSwitchTo(ss->mcxt);
	int			c,
				j;

	info->d = d;
	ss->row = palloc(sizeof(double) * d);
	info->feature_names = palloc(sizeof(char *) * d);
	for (c = 0; c < ss->ncols; c++)
		for (j = 0; j < cols[c].width; j++)
			info->feature_names[cols[c].offset + j] =
				(cols[c].kind == COL_FLOAT8_ARRAY || cols[c].kind == COL_FLOAT4_ARRAY)
				? psprintf("%s[%d]", cols[c].name, j + 1)
				: (cols[c].kind == COL_DATE || cols[c].kind == COL_TIMESTAMP)
				? psprintf("%s.%s", cols[c].name, source_date_part_name(j))
				: pstrdup(cols[c].name);
	info->categorical = palloc0(sizeof(bool) * d);
	info->dicts = palloc0(sizeof(SourceDict) * d);
	for (c = 0; c < ss->ncols; c++)
		if (cols[c].kind == COL_CATEGORY)
		{
			info->categorical[cols[c].offset] = true;
			info->any_categorical = true;
			dict_init(&cols[c], &info->dicts[cols[c].offset], ss->mcxt);
		}
	MemoryContextSwitchTo(old);
	if (ss->spec->profile)
		scan_plan_profile(ss, d, info);
	ss->planned = true;
	if (ss->spec->on_plan)
		ss->spec->on_plan(arg, info);
}

/*
 * One row (already deformed into ss->values): fn gets it when every feature
 * is usable; otherwise it is skipped and counted (on_null = skip) or an error.
 */
static void
scan_row(SourceScan *ss, int64 rowno, SourceRowFn fn, void *arg, SourceInfo *info)
{
	const SourceSpec *spec = ss->spec;
	RowState	rs = {NULL, NULL};
	SourceTarget tgt;

	if (!ss->planned)
	{
		int			d = plan_widths(ss->cols, ss->ncols, ss->values, ss->nulls);

		if (d < 0)
		{
			/* No width yet (a NULL array): such a row cannot be read. */
			if (!spec->skip_invalid)
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("an array feature column is NULL in row " INT64_FORMAT
									   ", before any row gave its length", rowno),
								errhint("Set params.on_null = 'skip' to skip such rows, or filter them in the source.")));
			info->skipped++;
			return;
		}
		scan_plan_layout(ss, d, info, arg);
	}
	if (!decode_row(ss->cols, ss->ncols, ss->values, ss->nulls, ss->row, &rs, rowno, spec->missing_ok))
	{
		if (spec->profile && spec->skip_invalid)
		{
			decode_row_for_profile(ss->cols, ss->ncols, ss->values, ss->nulls, ss->row, rowno);
			profile_add_row(spec->profile, ss->row);
		}
		if (!spec->skip_invalid)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("column \"%s\" is %s in row " INT64_FORMAT, rs.bad_col, rs.why, rowno),
					 errhint("Set params.on_null = 'skip' to skip and count such rows, or filter them in the source.")));
		info->skipped++;
		return;
	}
	tgt.isnull = true;
	tgt.datum = (Datum) 0;
	if (ss->target_att >= 0 && !ss->nulls[ss->target_att])
	{
		tgt.isnull = false;
		tgt.datum = ss->values[ss->target_att];
	}
	tgt.split_isnull = true;
	tgt.split_value = 0;
	if (ss->split_att >= 0 && !ss->nulls[ss->split_att])
	{
		tgt.split_isnull = false;
		tgt.split_value = split_value(ss->split_base, ss->split_kind, ss->values[ss->split_att]);
	}
	if (spec->profile && !spec->profile_by_fn)
		profile_add_row(spec->profile, ss->row);
	fn(arg, ss->row, &tgt, rowno);
	info->n++;
}

/* Starts a scan of spec's source: nothing is planned before the row description. */
SourceScan *
source_scan_begin(const SourceSpec *spec, MemoryContext mcxt, SourceRowFn fn, void *arg,
				  SourceInfo *info)
{
	SourceScan *ss = palloc0(sizeof(SourceScan));

	memset(info, 0, sizeof(*info));
	ss->spec = spec;
	ss->mcxt = mcxt;
	ss->fn = fn;
	ss->arg = arg;
	ss->info = info;
	ss->target_att = -1;
	ss->split_att = -1;
	ss->split_base = InvalidOid;
	ss->split_kind = -1;
	return ss;
}

/* The source's row description (the first one counts): the feature columns, target and split. */
void
source_scan_describe(SourceScan *ss, TupleDesc td)
{
	if (ss->cols == NULL)
		scan_plan_columns(ss, td, ss->info);
}

/*
 * One source row, deformed into values and nulls (the row description's
 * columns): its id-like statistics when id_stats, then scan_row. Per-row
 * memory goes to the caller's current context.
 */
void
source_scan_row(SourceScan *ss, int64 rowno, Datum *values, bool *nulls, bool id_stats)
{
	ss->values = values;
	ss->nulls = nulls;
	if (id_stats)
		id_stats_add(ss, rowno);
	scan_row(ss, rowno, ss->fn, ss->arg, ss->info);
}

/*
 * Ends a scan of rows rows (0 when they were not counted: no id-like
 * statistics): the id-like features, and the errors for a source that gave
 * no row description or no usable row.
 */
void
source_scan_end(SourceScan *ss, int64 rows)
{
	SourceInfo *info = ss->info;

	if (ss->cols == NULL)
		elog(ERROR, "the source query returned no row description");
	id_stats_finish(ss, rows, info);

	if (info->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 info->skipped ? errmsg("all " INT64_FORMAT " rows of the source were skipped for NULL, NaN or infinite features", info->skipped)
				 : errmsg("the source returned no rows"),
				 errhint("Training needs at least one usable row.")));
}
