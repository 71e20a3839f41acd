/*
 * source.c: what a training source (table, view or SELECT) is: the query
 * that reads it, the column types that can be features and their kinds,
 * and the feature columns it gives for a training's spec (source_plan_columns).
 * source_decode.c turns one row into doubles, source_scan.c follows a scan
 * row by row, source_read.c runs the query and feeds the rows in.
 */
#include "mlpipe.h"
#include "source_int.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include <ctype.h>

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
FeatureCol *
source_plan_columns(const SourceSpec *spec, TupleDesc td, int *ncols)
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
