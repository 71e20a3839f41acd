/*
 * predict_row.c: the row forms of predict, predict_label and predict_proba,
 * by name (model_ref text) and by artifact (bytea). A row's columns are
 * matched to the model's inputs by name once per statement and row type
 * (the plan lives in the call site's fn_extra, next to the cached model);
 * each row is then deformed once, its raw values read, the stored
 * preprocessing applied, and the model scored. The artifact is never
 * decoded per row: the model comes from the caches in predict.c.
 */
#include "mlpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include <math.h>

PG_FUNCTION_INFO_V1(mlpipe_predict_row_ref);
PG_FUNCTION_INFO_V1(mlpipe_predict_row_bytea);
PG_FUNCTION_INFO_V1(mlpipe_predict_label_row_ref);
PG_FUNCTION_INFO_V1(mlpipe_predict_label_row_bytea);
PG_FUNCTION_INFO_V1(mlpipe_predict_proba_row_ref);
PG_FUNCTION_INFO_V1(mlpipe_predict_proba_row_bytea);

typedef enum SlotKind
{
	SLOT_NUMBER,				/* a numeric column */
	SLOT_ELEMENT,				/* element `elem` of a real[] / double precision[] column */
	SLOT_CATEGORY,				/* a text-like or enum column */
	SLOT_DATEPART				/* date part `elem` of a date or timestamp column */
} SlotKind;

/* Where one model input comes from in the row. */
typedef struct RowSlot
{
	int			attno;			/* 0-based */
	SlotKind	kind;
	int			elem;			/* 0-based, SLOT_ELEMENT; the part, SLOT_DATEPART */
	Oid			type;			/* the column's type */
	int			scalar;			/* SLOT_NUMBER: source_scalar_kind of the type */
	bool		f8;				/* SLOT_ELEMENT: double precision[], not real[] */
	FmgrInfo	out;			/* SLOT_CATEGORY: output function */
} RowSlot;

/* The mapping for one (model, row type) pair, and per-row buffers. */
typedef struct RowPlan
{
	uint64		model_gen;
	Oid			typid;
	int32		typmod;
	TupleDesc	td;
	int			n_slots;
	RowSlot    *slots;
	int		   *arr_width;		/* per attribute: elements the model reads, 0 if none */
	Datum	   *values;
	bool	   *nulls;
	ArrayType **arrs;			/* per attribute, detoasted once per row */
	double	   *raw;			/* n_slots raw numbers (NaN for NULL) */
	const char **strs;			/* n_slots category texts (NULL for NULL) */
	double	   *x;				/* the model's feature vector */
} RowPlan;

/* The model's raw inputs: preprocessing columns, or its feature names. */
static int
model_inputs(const MlModel *m, const char *const **names, const bool **categorical)
{
	if (m->prep.n_in > 0)
	{
		*names = (const char *const *) m->prep.in_names;
		*categorical = m->prep.in_categorical;
		return (int) m->prep.n_in;
	}
	*names = (const char *const *) m->meta.feature_names;
	*categorical = NULL;
	return (int) m->meta.n_features;
}

/* "x[3]" -> base "x", element 3 (1-based); false for any other name. */
static bool
split_element_name(const char *name, char **base, int *elem)
{
	size_t		n = strlen(name);
	size_t		open;
	long		v = 0;
	size_t		i;

	if (n < 4 || name[n - 1] != ']')
		return false;
	for (open = n - 1; open > 0 && name[open] != '['; open--)
		;
	if (open == 0 || open + 1 >= n - 1)
		return false;
	for (i = open + 1; i < n - 1; i++)
	{
		if (name[i] < '0' || name[i] > '9' || v > 100000000)
			return false;
		v = v * 10 + (name[i] - '0');
	}
	if (v < 1)
		return false;
	*base = pnstrdup(name, open);
	*elem = (int) v;
	return true;
}

/*
 * "ts.month" -> column "ts", part 2 (see source_date_part_name), when the
 * row has a date or timestamp column "ts" that has that part.
 */
static bool
split_date_part_name(TupleDesc td, const char *name, int *attno, int *part)
{
	const char *dot = strrchr(name, '.');
	int			at;
	int			i;

	if (dot == NULL || dot == name)
		return false;
	at = source_find_column(td, pnstrdup(name, dot - name));
	if (at < 0)
		return false;
	for (i = 0; i < source_date_parts(TupleDescAttr(td, at)->atttypid); i++)
		if (strcmp(dot + 1, source_date_part_name(i)) == 0)
		{
			*attno = at;
			*part = i;
			return true;
		}
	return false;
}

/* True for float8[] and float4[] (domains resolved). */
static bool
is_float_array(Oid type)
{
	type = getBaseType(type);
	return type == FLOAT8ARRAYOID || type == FLOAT4ARRAYOID;
}

/* Builds the column mapping for this row type, or raises 22000 naming what is wrong. */
static RowPlan *
row_plan_build(FunctionCallInfo fcinfo, const MlModel *m, uint64 gen, Oid typid, int32 typmod)
{
	MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	RowPlan    *p = palloc0(sizeof(RowPlan));
	const char *const *names;
	const bool *categorical;
	int			n = model_inputs(m, &names, &categorical);
	StringInfoData missing;
	int			n_missing = 0;
	int			i;

	p->model_gen = gen;
	p->typid = typid;
	p->typmod = typmod;
	p->td = lookup_rowtype_tupdesc_copy(typid, typmod);
	p->n_slots = n;
	p->slots = palloc0(sizeof(RowSlot) * Max(n, 1));
	p->arr_width = palloc0(sizeof(int) * Max(p->td->natts, 1));
	p->values = palloc(sizeof(Datum) * Max(p->td->natts, 1));
	p->nulls = palloc(sizeof(bool) * Max(p->td->natts, 1));
	p->arrs = palloc0(sizeof(ArrayType *) * Max(p->td->natts, 1));
	p->raw = palloc0(sizeof(double) * Max(n, 1));
	p->strs = palloc0(sizeof(char *) * Max(n, 1));
	p->x = palloc0(sizeof(double) * Max(m->meta.n_features, 1));
	initStringInfo(&missing);

	for (i = 0; i < n; i++)
	{
		RowSlot    *s = &p->slots[i];
		bool		cat = categorical && categorical[i];
		int			at = source_find_column(p->td, names[i]);
		char	   *base;
		int			elem;

		if (at >= 0)
		{
			Oid			type = TupleDescAttr(p->td, at)->atttypid;

			s->attno = at;
			s->type = type;
			if (cat)
			{
				Oid			outfn;
				bool		varlena;

				if (!source_category_type(type))
					ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
									errmsg("column \"%s\" has type %s, but the model takes it as a category (text, varchar, char or an enum)",
										   names[i], format_type_be(type))));
				s->kind = SLOT_CATEGORY;
				getTypeOutputInfo(type, &outfn, &varlena);
				fmgr_info_cxt(outfn, &s->out, fcinfo->flinfo->fn_mcxt);
			}
			else
			{
				if (!source_numeric_type(type))
					ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
									errmsg("column \"%s\" has type %s, but the model takes it as a number (integer, numeric, real, double precision or boolean)",
										   names[i], format_type_be(type))));
				s->kind = SLOT_NUMBER;
				s->scalar = source_scalar_kind(type);
			}
			continue;
		}
		if (!cat && split_element_name(names[i], &base, &elem) &&
			(at = source_find_column(p->td, base)) >= 0)
		{
			Oid			type = TupleDescAttr(p->td, at)->atttypid;

			if (!is_float_array(type))
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("column \"%s\" has type %s, but the model takes it as an array of numbers (real[] or double precision[])",
									   base, format_type_be(type))));
			s->attno = at;
			s->type = type;
			s->kind = SLOT_ELEMENT;
			s->f8 = getBaseType(type) == FLOAT8ARRAYOID;
			s->elem = elem - 1;
			p->arr_width[at] = Max(p->arr_width[at], elem);
			continue;
		}
		if (!cat && split_date_part_name(p->td, names[i], &at, &elem))
		{
			s->attno = at;
			s->type = TupleDescAttr(p->td, at)->atttypid;
			s->kind = SLOT_DATEPART;
			s->elem = elem;
			s->f8 = getBaseType(s->type) == DATEOID;	/* here: a date, not a timestamp */
			continue;
		}
		if (n_missing < 20)
			appendStringInfo(&missing, "%s\"%s\"", n_missing ? ", " : "", names[i]);
		n_missing++;
	}
	if (n_missing > 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
						errmsg("the row has no column%s %s%s, which the model needs",
							   n_missing > 1 ? "s" : "", missing.data,
							   n_missing > 20 ? psprintf(" (and %d more)", n_missing - 20) : ""),
						errhint("Columns are matched by name; rename them in the query, e.g. SELECT ... FROM (SELECT a AS x, ...) t.")));
	MemoryContextSwitchTo(old);
	return p;
}

/* Frees a call site's column mapping. */
static void
row_plan_free(RowPlan *p)
{
	if (p == NULL)
		return;
	/* Small and per call site: free the pieces that scale with the row. */
	pfree(p->slots);
	pfree(p->arr_width);
	pfree(p->values);
	pfree(p->nulls);
	pfree(p->arrs);
	pfree(p->raw);
	pfree(p->strs);
	pfree(p->x);
	FreeTupleDesc(p->td);
	pfree(p);
}

/*
 * 22000 naming the first feature that is NULL in the row, for a model
 * without preprocessing that cannot route a missing value (k-means): the
 * core would see it as NaN and say so, hiding that the value was NULL.
 */
static void
report_null_feature(const MlModel *m, const RowPlan *p)
{
	int			i;

	if (ml_model_handles_missing(m))
		return;
	for (i = 0; i < p->n_slots; i++)
	{
		const RowSlot *s = &p->slots[i];
		bool		isnull = p->nulls[s->attno];

		if (!isnull && s->kind == SLOT_ELEMENT && ARR_HASNULL(p->arrs[s->attno]))
		{
			int			idx = s->elem + ARR_LBOUND(p->arrs[s->attno])[0];

			(void) array_get_element(PointerGetDatum(p->arrs[s->attno]), 1, &idx, -1,
									 s->f8 ? 8 : 4, s->f8 ? FLOAT8PASSBYVAL : true,
									 s->f8 ? TYPALIGN_DOUBLE : TYPALIGN_INT, &isnull);
		}
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("feature %d (\"%s\") is NULL", i + 1, m->meta.feature_names[i]),
					 errhint("This model needs a value for every feature: filter the row out "
							 "or impute it (params.preprocess when training).")));
	}
}

/*
 * Reads the row into raw values and texts, then into the model's feature
 * vector (also used by explain.c).
 */
const double *
predict_row_features(PredictSite *site, FunctionCallInfo fcinfo, HeapTupleHeader th)
{
	const MlModel *m = site->model;
	Oid			typid = HeapTupleHeaderGetTypeId(th);
	int32		typmod = HeapTupleHeaderGetTypMod(th);
	RowPlan    *p = site->row_plan;
	HeapTupleData tup;
	int			i;

	if (p == NULL || p->model_gen != site->model_gen || p->typid != typid || p->typmod != typmod)
	{
		row_plan_free(p);
		site->row_plan = NULL;
		p = row_plan_build(fcinfo, m, site->model_gen, typid, typmod);
		site->row_plan = p;
	}
	tup.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = InvalidOid;
	tup.t_data = th;
	heap_deform_tuple(&tup, p->td, p->values, p->nulls);

	/* Arrays: detoast once per row and check their length. */
	for (i = 0; i < p->td->natts; i++)
	{
		p->arrs[i] = NULL;
		if (p->arr_width[i] > 0 && !p->nulls[i])
		{
			ArrayType  *a = DatumGetArrayTypeP(p->values[i]);
			int			len = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));

			if (ARR_NDIM(a) > 1 || len != p->arr_width[i])
				ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
								errmsg("column \"%s\" has %d elements, the model expects %d",
									   NameStr(TupleDescAttr(p->td, i)->attname), len, p->arr_width[i])));
			p->arrs[i] = a;
		}
	}
	for (i = 0; i < p->n_slots; i++)
	{
		RowSlot    *s = &p->slots[i];

		p->strs[i] = NULL;
		p->raw[i] = NAN;
		if (p->nulls[s->attno])
			continue;
		switch (s->kind)
		{
			case SLOT_NUMBER:
				p->raw[i] = source_scalar_value(s->scalar, p->values[s->attno]);
				break;
			case SLOT_ELEMENT:
				{
					ArrayType  *a = p->arrs[s->attno];

					/* Without NULLs the data is dense; with them, look the element up. */
					if (!ARR_HASNULL(a))
						p->raw[i] = s->f8
							? ((double *) ARR_DATA_PTR(a))[s->elem]
							: ((float *) ARR_DATA_PTR(a))[s->elem];
					else
					{
						bool		isnull;
						int			idx = s->elem + ARR_LBOUND(a)[0];
						Datum		v = array_get_element(PointerGetDatum(a), 1, &idx, -1,
														  s->f8 ? 8 : 4,
														  s->f8 ? FLOAT8PASSBYVAL : true,
														  s->f8 ? TYPALIGN_DOUBLE : TYPALIGN_INT,
														  &isnull);

						if (!isnull)
							p->raw[i] = s->f8 ? DatumGetFloat8(v) : DatumGetFloat4(v);
					}
				}
				break;
			case SLOT_CATEGORY:
				p->strs[i] = source_category_text(s->type, &s->out, p->values[s->attno]);
				break;
			case SLOT_DATEPART:
				{
					double		parts[6];

					if (source_date_values(s->f8, p->values[s->attno], parts))
						p->raw[i] = parts[s->elem];
				}
				break;
		}
	}
	if (m->prep.n_in == 0)
	{
		report_null_feature(m, p);
		return p->raw;
	}
	{
		MlError		err = {0};

		if (prep_transform_row(&m->prep, p->raw, p->strs, p->x, &err) != ML_OK)
			pg_report_ml_error(&err);
	}
	return p->x;
}

/*
 * The raw inputs of the row predict_row_features read last, one per model
 * input (preprocessing column): numbers, NaN for NULL and for categories.
 */
const double *
predict_row_raw(const PredictSite *site)
{
	return ((const RowPlan *) site->row_plan)->raw;
}

/* The prediction for the row argument (argument 1); proba when not NULL. */
static double
row_score(PredictSite *site, FunctionCallInfo fcinfo, double *proba)
{
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(1);
	const double *x = predict_row_features(site, fcinfo, th);
	MlError		err = {0};
	double		out;

	if (ml_model_predict(site->model, x, site->scratch, &out, proba, &err) != ML_OK)
		pg_report_ml_error(&err);
	return out;
}

/* predict_label for a row: the class label as text. */
static Datum
row_label(PredictSite *site, FunctionCallInfo fcinfo)
{
	predict_require_classifier(site->model, "predict_label");
	return CStringGetTextDatum(site->model->meta.class_labels[(int) row_score(site, fcinfo, NULL)]);
}

/* predict_proba for a row: a float8[] in class order. */
static Datum
row_proba(PredictSite *site, FunctionCallInfo fcinfo)
{
	uint32		k = site->model->meta.n_classes;
	double	   *pr;
	Datum	   *d;
	uint32		i;

	predict_require_classifier(site->model, "predict_proba");
	pr = palloc(sizeof(double) * k);
	d = palloc(sizeof(Datum) * k);
	row_score(site, fcinfo, pr);
	for (i = 0; i < k; i++)
		d[i] = Float8GetDatum(pr[i]);
	return PointerGetDatum(construct_array(d, k, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* mlpipe.predict(ref, row); NULL for a row of a grouped model's group without a model. */
Datum
mlpipe_predict_row_ref(PG_FUNCTION_ARGS)
{
	PredictSite *site = row_site_for(fcinfo, PG_GETARG_TEXT_PP(0), PG_GETARG_HEAPTUPLEHEADER(1));

	if (site == NULL)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(row_score(site, fcinfo, NULL));
}

/* mlpipe.predict(bytea, row). */
Datum
mlpipe_predict_row_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(row_score(predict_site_blob(fcinfo, PG_GETARG_BYTEA_PP(0)), fcinfo, NULL));
}

/* mlpipe.predict_label(ref, row); NULL as for predict. */
Datum
mlpipe_predict_label_row_ref(PG_FUNCTION_ARGS)
{
	PredictSite *site = row_site_for(fcinfo, PG_GETARG_TEXT_PP(0), PG_GETARG_HEAPTUPLEHEADER(1));

	if (site == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(row_label(site, fcinfo));
}

/* mlpipe.predict_label(bytea, row). */
Datum
mlpipe_predict_label_row_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(row_label(predict_site_blob(fcinfo, PG_GETARG_BYTEA_PP(0)), fcinfo));
}

/* mlpipe.predict_proba(ref, row); NULL as for predict. */
Datum
mlpipe_predict_proba_row_ref(PG_FUNCTION_ARGS)
{
	PredictSite *site = row_site_for(fcinfo, PG_GETARG_TEXT_PP(0), PG_GETARG_HEAPTUPLEHEADER(1));

	if (site == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(row_proba(site, fcinfo));
}

/* mlpipe.predict_proba(bytea, row). */
Datum
mlpipe_predict_proba_row_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(row_proba(predict_site_blob(fcinfo, PG_GETARG_BYTEA_PP(0)), fcinfo));
}
