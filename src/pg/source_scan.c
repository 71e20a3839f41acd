/*
 * source_scan.c: one scan of a training source, phase by phase as
 * source_read.c drives it (source_scan_begin / _describe / _row / _end):
 * the columns from the row description, the layout from the first readable
 * row, then each row decoded and handed on or skipped, with the id-like
 * statistics and the training profile's rows on the way.
 */
#include "mlpipe.h"
#include "source_int.h"

#include "catalog/pg_type.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

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
	return source_scalar_value(kind, d);
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

	ss->cols = source_plan_columns(spec, td, &ss->ncols);
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
			source_dict_init(&cols[c], &info->dicts[cols[c].offset], ss->mcxt);
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
		int			d = source_plan_widths(ss->cols, ss->ncols, ss->values, ss->nulls);

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
	if (!source_decode_row(ss->cols, ss->ncols, ss->values, ss->nulls, ss->row, &rs, rowno, spec->missing_ok))
	{
		if (spec->profile && spec->skip_invalid)
		{
			source_decode_row_for_profile(ss->cols, ss->ncols, ss->values, ss->nulls, ss->row, rowno);
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
