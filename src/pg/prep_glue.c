/*
 * prep_glue.c: params.preprocess for training. Reads the per-column (or
 * "*") options, fits the preprocessing (src/core/preprocess.c) on the
 * training rows of a loaded raw matrix, and transforms every row into the
 * model's feature layout. Used by the tree and k-means glue.
 */
#include "mlpipe.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include <math.h>

static const char *const option_keys[] = {"impute", "scale", "encode", NULL};
static const char *const impute_names[] = {"none", "mean", "median", "mode", "zero", "error", NULL};
static const char *const scale_names[] = {"none", "standard", "minmax", "robust", NULL};
static const char *const encode_names[] = {"none", "onehot", "ordinal", "target", "native", NULL};

/* Index of a choice in its list (the enums follow the lists' order). */
static int
choice_index(const char *v, const char *const *names)
{
	int			i;

	for (i = 0; names[i]; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	return -1;
}

/* True when params asks for preprocessing. */
bool
prep_requested(cJSON *params)
{
	return params_item(params, "preprocess") != NULL;
}

/* True when key names raw column `slot` (itself, or an element "key[i]" of it). */
static bool
key_matches(const char *key, const char *slot)
{
	size_t		n = strlen(key);

	return strcmp(key, slot) == 0 || (strncmp(key, slot, n) == 0 && slot[n] == '[');
}

/* The first 30 feature names, for hints. */
static char *
slot_list(const SourceInfo *info)
{
	StringInfoData s;
	int			j;

	initStringInfo(&s);
	for (j = 0; j < info->d && j < 30; j++)
		appendStringInfo(&s, "%s%s", j ? ", " : "", info->feature_names[j]);
	if (info->d > 30)
		appendStringInfoString(&s, ", ...");
	return s.data;
}

/* Reads one options object into spec fields (-1 where not given). */
static void
read_options(cJSON *obj, const char *key, PpSpec *o)
{
	const char *v;

	if (!cJSON_IsObject(obj))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("params.preprocess[\"%s\"] must be an object of options", key),
						errhint("For example {\"impute\": \"median\", \"scale\": \"standard\"}.")));
	params_check_keys(obj, psprintf("params.preprocess[\"%s\"]", key), option_keys);
	o->impute = o->scale = o->encode = -1;
	if ((v = params_choice(obj, "impute", NULL, impute_names)) != NULL)
		o->impute = choice_index(v, impute_names);
	if ((v = params_choice(obj, "scale", NULL, scale_names)) != NULL)
		o->scale = choice_index(v, scale_names);
	if ((v = params_choice(obj, "encode", NULL, encode_names)) != NULL)
		o->encode = choice_index(v, encode_names);
}

/*
 * The options of every raw column: "*" first (each option only where it
 * applies), then the column's own entry, which must fit its kind.
 */
static PpSpec *
prep_specs(cJSON *params, const SourceInfo *info, bool supervised)
{
	cJSON	   *pp = params_item(params, "preprocess");
	PpSpec	   *spec = palloc(sizeof(PpSpec) * Max(info->d, 1));
	cJSON	   *it;
	int			j;

	for (j = 0; j < info->d; j++)
		spec[j].impute = spec[j].scale = spec[j].encode = -1;
	if (pp == NULL)
		return spec;
	if (!cJSON_IsObject(pp))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("parameter \"preprocess\" must be an object mapping column names (or \"*\") to options")));
	/* "*" first */
	cJSON_ArrayForEach(it, pp)
	{
		PpSpec		o;

		if (strcmp(it->string, "*") != 0)
			continue;
		read_options(it, "*", &o);
		for (j = 0; j < info->d; j++)
		{
			bool		cat = info->categorical[j];

			if (o.impute >= 0 && (!cat || o.impute == PP_IMPUTE_NONE || o.impute == PP_IMPUTE_MODE ||
								  o.impute == PP_IMPUTE_ERROR))
				spec[j].impute = o.impute;
			if (o.scale >= 0 && !cat)
				spec[j].scale = o.scale;
			if (o.encode >= 0 && cat)
				spec[j].encode = o.encode;
		}
	}
	cJSON_ArrayForEach(it, pp)
	{
		PpSpec		o;
		bool		found = false;

		if (strcmp(it->string, "*") == 0)
			continue;
		read_options(it, it->string, &o);
		for (j = 0; j < info->d; j++)
		{
			bool		cat = info->categorical[j];

			if (!key_matches(it->string, info->feature_names[j]))
				continue;
			found = true;
			if (o.scale > 0 && cat)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("params.preprocess[\"%s\"]: scale does not apply to a text column", it->string),
								errhint("Text columns take encode (onehot, ordinal, target, native) and impute (mode, error).")));
			if (o.encode > 0 && !cat)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("params.preprocess[\"%s\"]: encode applies to text columns, and \"%s\" is numeric",
									   it->string, it->string)));
			if (cat && o.impute > 0 && o.impute != PP_IMPUTE_MODE && o.impute != PP_IMPUTE_ERROR)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("params.preprocess[\"%s\"]: impute = '%s' does not apply to a text column",
									   it->string, impute_names[o.impute]),
								errhint("NULL is its own category; impute = 'mode' maps it to the most frequent value, 'error' refuses it.")));
			if (!supervised && (o.encode == PP_ENCODE_TARGET || o.encode == PP_ENCODE_NATIVE))
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								errmsg("params.preprocess[\"%s\"]: encode = '%s' needs a target", it->string,
									   encode_names[o.encode]),
								errhint("Clustering takes onehot or ordinal.")));
			if (o.impute >= 0)
				spec[j].impute = o.impute;
			if (o.scale >= 0)
				spec[j].scale = o.scale;
			if (o.encode >= 0)
				spec[j].encode = o.encode;
		}
		if (!found)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("params.preprocess names column \"%s\", which is not a feature", it->string),
							errhint("Features: %s.", slot_list(info))));
	}
	for (j = 0; j < info->d; j++)
		if (spec[j].encode == PP_ENCODE_NONE && info->categorical[j])
			spec[j].encode = -1;	/* "none" on a text column: the default */
	return spec;
}

/*
 * Fits the preprocessing on the training rows of X (n x info->d, categories
 * as dictionary codes; is_test NULL: every row) and returns X transformed
 * (n x *d_out, palloc'd) with the output feature names.
 */
double *
prep_fit_transform(PgEnv *pe, cJSON *params, const SourceInfo *info, const double *X, int64 n,
				   const uint8 *is_test, const int32 *y_class, int n_classes, const double *y_value,
				   MlPrep *prep, int *d_out, char ***names_out)
{
	bool		supervised = y_class != NULL || y_value != NULL;
	PpSpec	   *spec = prep_specs(params, info, supervised);
	PpFitData	fd;
	char	 ***dict = palloc(sizeof(char **) * Max(info->d, 1));
	uint32	   *dict_n = palloc0(sizeof(uint32) * Max(info->d, 1));
	uint8	   *is_train = NULL;
	uint32	  **code_level;
	MlError		err = {0};
	double	   *out,
			   *row;
	char	  **names;
	int64		r;
	int			j,
				k;
	uint32		w;
	Size		bytes;

	for (j = 0; j < info->d; j++)
	{
		dict[j] = info->categorical[j] ? info->dicts[j].labels : NULL;
		dict_n[j] = info->categorical[j] ? info->dicts[j].n : 0;
	}
	if (is_test)
	{
		is_train = palloc_extended(Max(n, 1), MCXT_ALLOC_HUGE);
		for (r = 0; r < n; r++)
			is_train[r] = !is_test[r];
	}
	memset(&fd, 0, sizeof(fd));
	fd.n = n;
	fd.n_in = info->d;
	fd.X = X;
	fd.is_train = is_train;
	fd.dict = (char **const *) dict;
	fd.dict_n = dict_n;
	fd.names = (const char *const *) info->feature_names;
	fd.categorical = info->categorical;
	fd.y_class = y_class;
	fd.n_classes = n_classes;
	fd.y_value = y_value;
	ML_CHECK_STATUS(prep_fit(&pe->env, &fd, spec, prep, &code_level, &err), &err);

	bytes = (Size) Max(n, 1) * prep->n_out * sizeof(double);
	pg_memory_check((double) Max(n, 1) * prep->n_out * sizeof(double),
					"Use ordinal or native encoding for columns with many values, or raise mlpipe.max_memory.",
					"preprocessed training data of " INT64_FORMAT " rows x %u features", n, prep->n_out);
	out = MemoryContextAllocHuge(CurrentMemoryContext, bytes);
	row = palloc(sizeof(double) * Max(info->d, 1));
	for (r = 0; r < n; r++)
	{
		const double *x = X + (Size) r * info->d;

		for (j = 0; j < info->d; j++)
		{
			row[j] = x[j];
			if (info->categorical[j])
			{
				uint32		lv = code_level[j][(uint32) x[j]];

				row[j] = lv == UINT32_MAX ? -1.0 : (double) lv;
			}
		}
		ML_CHECK_STATUS(prep_transform_levels(prep, row, out + (Size) r * prep->n_out, &err), &err);
		if ((r & 65535) == 65535)
			CHECK_FOR_INTERRUPTS();
	}
	names = palloc(sizeof(char *) * prep->n_out);
	for (j = 0, k = 0; j < (int) prep->n_in; j++)
		for (w = 0; w < prep->cols[j].width; w++)
		{
			names[k] = prep_output_name(&pe->env, &prep->cols[j], w);
			if (names[k] == NULL)
				ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("out of memory naming features")));
			k++;
		}
	*d_out = (int) prep->n_out;
	*names_out = names;
	return out;
}

/* A readable dump of stored preprocessing, for mlpipe.export. */
cJSON *
prep_export(const MlPrep *p)
{
	cJSON	   *arr = cJSON_CreateArray();
	uint32		i;

	for (i = 0; i < p->n_in; i++)
	{
		const PpColumn *c = &p->cols[i];
		cJSON	   *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "column", c->name);
		cJSON_AddStringToObject(o, "kind", c->categorical ? "categorical" : "numeric");
		cJSON_AddStringToObject(o, "impute", prep_impute_name(c->impute));
		if (!c->categorical)
		{
			if (c->impute != PP_IMPUTE_NONE && c->impute != PP_IMPUTE_ERROR)
				params_json_number(o, "fill", c->fill);
			cJSON_AddStringToObject(o, "scale", prep_scale_name(c->scale));
			if (c->scale != PP_SCALE_NONE)
			{
				params_json_number(o, "center", c->center);
				params_json_number(o, "scale_by", c->scale_by);
			}
		}
		else
		{
			uint32		levels = prep_levels(c);
			uint32		l;

			cJSON_AddStringToObject(o, "encode", prep_encode_name(c->encode));
			cJSON_AddItemToObject(o, "categories",
								  cJSON_CreateStringArray((const char *const *) c->cats, (int) c->n_cats));
			cJSON_AddBoolToObject(o, "null_category", c->has_null);
			if (c->impute == PP_IMPUTE_MODE && c->null_to < c->n_cats)
				cJSON_AddStringToObject(o, "null_to", c->cats[c->null_to]);
			if (c->table)
			{
				/* code per level (texts, then NULL), then the unknown bucket */
				cJSON	   *codes = cJSON_CreateArray();

				for (l = 0; l <= levels; l++)
				{
					if (c->width == 1)
						cJSON_AddItemToArray(codes, cJSON_CreateNumber(c->table[l]));
					else
						cJSON_AddItemToArray(codes, cJSON_CreateDoubleArray(c->table + (Size) l * c->width,
																			(int) c->width));
				}
				cJSON_AddItemToObject(o, "codes", codes);
			}
		}
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}
