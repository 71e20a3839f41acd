/*
 * mlpipe.h: declarations shared by the PostgreSQL glue in src/pg.
 * Nothing here computes ML; it binds src/core to the server.
 */
#ifndef MLPIPE_PG_H
#define MLPIPE_PG_H

#include "postgres.h"

#include "fmgr.h"
#include "access/tupdesc.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "mlcore.h"
#include "model.h"
#include "roworder.h"

#include <cjson/cJSON.h>

/*
 * GUCs (module.c). The two limits are read through functions that refuse
 * (22023) a value given before load that PostgreSQL could only warn about.
 */
extern bool mlpipe_progress;
int			mlpipe_progress_interval_ms(void);
int			mlpipe_max_memory_kb(void);
int			mlpipe_threads(void);

/*
 * module.c: the schema of mlpipe's internal functions (mlpipe_internal, or
 * mlpipe in an installation not yet updated to 0.4.0).
 */
const char *mlpipe_internal_schema(void);

/*
 * env.c: an MlEnv whose memory lives in mcxt and whose check is
 * CHECK_FOR_INTERRUPTS; pg_report_ml_error raises a core failure with its SQLSTATE.
 */
typedef struct PgEnv
{
	MlEnv		env;
	MemoryContext mcxt;
	const char *what;			/* "kmeans", ... for progress lines */
	int64		start_us;
	int64		last_notice_us;
	/* the main loop of a training (env.c), NULL stage when there is none */
	const char *loop_stage;		/* the stage name core reports it under */
	const char *loop_unit;		/* "iteration", "tree", "round", "pass" */
	const char *value_name;		/* what check()'s value is there, or NULL */
	bool		loop_capped;	/* may stop before total (convergence) */
	int			loop_total;		/* 0 until core reports the loop */
	int			loop_done;		/* units done at the last report */
	int			loop_first_done;	/* units done when it was first seen */
	int64		loop_first_us;	/* ... and when */
	int64		loop_done_us;	/* when loop_done was first reported */
	double		loop_value;		/* value at the last report (NaN: none) */
	/* the other stage last reported (initialisation, scoring, ...), and since when */
	const char *stage;
	int			stage_first;	/* its count when first reported */
	int64		stage_start_us;
} PgEnv;

void		pg_env_init(PgEnv *pe, MemoryContext mcxt, const char *what, bool threads);
void		pg_env_pool(PgEnv *pe);
void		pg_report_ml_error(const MlError *err) pg_attribute_noreturn();
#define ML_CHECK_STATUS(st, err) do { if ((st) != ML_OK) pg_report_ml_error(err); } while (0)
int64		pg_env_now_us(void);
/* env.c: an HTAB in mcxt keyed by a C string pointer (the entry's first field), by its text. */
struct HTAB *pg_cstring_htab(const char *name, long nelem, Size entrysize, MemoryContext mcxt);

/* progress.c: progress lines, at most one per mlpipe.progress_interval. */
bool		progress_due(int64 *last_us, int64 now_us);
void		progress_notice(const char *fmt,...) pg_attribute_printf(1, 2);
const char *progress_estimate(double seconds_done, int done, int total, bool capped);

/*
 * 54000 when `need` bytes exceed mlpipe.max_memory; the message reads
 * "<what> needs <need> MB, over mlpipe.max_memory = <budget>", where what is
 * fmt's text, and hint (or NULL) is the HINT. Every path that buffers rows
 * or sizes its work checks through this before allocating.
 */
void		pg_memory_check(double need, const char *hint, const char *fmt,...) pg_attribute_printf(3, 4);

/* params.c: params jsonb through cJSON, with every key checked. */
void		mlpipe_cjson_init(void);
cJSON	   *params_parse(Jsonb *params);
/* The allowed name nearest to key (Levenshtein < 4), or NULL; names joined by ", ". */
const char *params_closest_key(const char *key, const char *const *allowed);
char	   *params_join_names(const char *const *names);
/* params[key], or NULL when the key is absent or JSON null. */
cJSON	   *params_item(cJSON *root, const char *key);
void		params_check_keys(cJSON *root, const char *context, const char *const *allowed);
const char *const *kmeans_param_keys(bool minibatch);
void		trees_param_keys(const char *algorithm, const char **allowed);
double		params_number(cJSON *root, const char *key, double dflt, double lo, double hi);
int			params_int(cJSON *root, const char *key, int dflt, int lo, int hi);
bool		params_bool(cJSON *root, const char *key, bool dflt);
const char *params_choice(cJSON *root, const char *key, const char *dflt,
						  const char *const *allowed);
uint64		params_seed(cJSON *root);
Datum		cjson_to_jsonb(cJSON *node);
cJSON	   *jsonb_to_cjson(Jsonb *jb);
void		params_json_number(cJSON *obj, const char *key, double v);
void		params_json_trace(cJSON *obj, const MlTrace *t);
cJSON	   *params_exclude(cJSON *root);

/*
 * The texts of one categorical column in order of first appearance; a row
 * carries the index (its code) as its value. SQL NULL is an entry too, with
 * a NULL text.
 */
typedef struct SourceDict
{
	char	  **labels;
	uint32		n;
	uint32		cap;
	struct HTAB *index;			/* text -> code */
	int32		null_code;		/* -1 until a NULL is seen */
} SourceDict;

/* source_read.c: one pass over a table, view or query into a dense matrix. */
typedef struct SourceData
{
	int64		n;				/* rows kept */
	int64		skipped;		/* rows skipped for NULL/NaN/Inf (on_null = skip) */
	int			d;				/* features per row after array expansion */
	double	   *X;				/* n * d, row-major, finite */
	char	  **feature_names;	/* d names: column or column[i] */
	bool	   *categorical;	/* d flags: X holds a category code (see SourceInfo) */
	SourceDict *dicts;
	bool		any_categorical;
	char	  **id_like;		/* integer features that number the rows (SourceInfo) */
	int			n_id_like;
} SourceData;


/* What a scan found: shape, names, skipped rows (filled as it goes). */
typedef struct SourceInfo
{
	int64		n;				/* rows handed to the callback */
	int64		skipped;		/* rows skipped for unusable features */
	int			d;
	char	  **feature_names;
	bool	   *categorical;	/* d flags: the value is a SourceDict code */
	SourceDict *dicts;			/* d entries, used where categorical */
	bool		any_categorical;
	Oid			target_type;	/* InvalidOid without a target */
	/*
	 * Integer feature columns that look like row ids: 50 rows or more, no
	 * NULL, max - min + 1 = rows (one consecutive value a row, counted over
	 * every row the source returned). train warns about them.
	 */
	char	  **id_like;
	int			n_id_like;
	double		est_rows;		/* the planner's estimate of the rows (0: none), for sizing */
} SourceInfo;

/*
 * A row's target (the raw datum, valid during the callback only) and, when
 * the spec names a split column, that column's value as a double (true = 1
 * for a boolean column; days, or microseconds, since 2000 for dates and
 * timestamps).
 */
typedef struct SourceTarget
{
	bool		isnull;
	Datum		datum;
	bool		split_isnull;
	double		split_value;
} SourceTarget;

/* How a split column is read (params.split 'column:<c>' or 'time:<c>'). */
typedef enum SplitColKind
{
	SPLIT_COL_NONE = 0,
	SPLIT_COL_BOOL,				/* column:<c>, a boolean; never a feature */
	SPLIT_COL_TIME				/* time:<c>, a date, timestamp, timestamptz or number */
} SplitColKind;

/* profile.c: the training profile, sampled while the source is read. */
typedef enum ProfileKind
{
	PROFILE_NUMERIC, PROFILE_CATEGORY, PROFILE_BOOL,
	PROFILE_SKIP				/* not profiled: a date part, which drift cannot read back */
} ProfileKind;
typedef struct ProfileSampler ProfileSampler;

/* A category value the fit's dictionary does not hold (skipped rows only). */
#define PROFILE_UNKNOWN_CODE (-2.0)

ProfileSampler *profile_create(MemoryContext mcxt, int requested, uint64 seed);
void		profile_plan(ProfileSampler *ps, int d, const char *const *column, const int *element,
						 const ProfileKind *kind, const SourceDict *dicts);
void		profile_add_row(ProfileSampler *ps, const double *x);
bool		profile_block_ready(ProfileSampler *ps);
void		profile_offer_block(ProfileSampler *ps, const double *X, size_t ld, int n, uint64 *h);
char	   *profile_finish(ProfileSampler *ps);

typedef void (*SourceRowFn) (void *arg, const double *x, const SourceTarget *target,
							 int64 rowno);

typedef struct SourceSpec
{
	const char *source;
	const char *target;			/* NULL for clustering */
	ArrayType  *features;		/* text[] or NULL for every column */
	cJSON	   *exclude;		/* params.exclude: array of names, or NULL */
	bool		skip_invalid;	/* params.on_null = 'skip' */
	bool		missing_ok;		/* NULL/NaN features arrive as NaN (trees) */
	const char *algorithm;		/* for messages */
	const char *split_column;	/* params.split column, or NULL */
	SplitColKind split_kind;
	/* Called once the feature layout is known, before the first row. */
	void		(*on_plan) (void *arg, const SourceInfo *info);
	ProfileSampler *profile;	/* gets every decoded row, or NULL */
	bool		profile_by_fn;	/* the row callback hands usable rows to profile
								 * itself (the trees' pass 1, a block at a time) */
} SourceSpec;

/* Stored rows source_scan reads instead of the source (grouped training). */
typedef struct SourceReplay
{
	TupleDesc	tupdesc;
	struct HeapTupleData **rows;
	int64		n;
} SourceReplay;
extern const SourceReplay *source_replay;

/* One pass over the source; fn gets each usable row (d doubles, row-major). */
void		source_scan(const SourceSpec *spec, MemoryContext mcxt, SourceRowFn fn, void *arg,
						SourceInfo *info);
/* Adds info's id-like feature names to a fit's info as "id_like_features" (none: nothing). */
void		source_id_like_json(char **names, int n, cJSON *fit_info);
/* The SELECT a source stands for (relation names resolved and quoted). */
char	   *source_query(const char *source);
int			source_find_column(TupleDesc td, const char *name);
/* True when a column of this type (base type) is a numeric feature. */
bool		source_numeric_type(Oid type);
/* A numeric feature datum of that type as a double. */
int			source_scalar_kind(Oid type);
double		source_scalar_value(int kind, Datum d);
/* True when a column of this type is categorical (text, varchar, char, name, enums). */
bool		source_category_type(Oid type);
/* A categorical datum's text, as its output function writes it. */
char	   *source_category_text(Oid type, FmgrInfo *out, Datum d);
/* True when a column of this type can order a time split. */
bool		source_time_type(Oid type);
/* Dates as features: how many parts a column type gives, their names and values. */
int			source_date_parts(Oid type);
const char *source_date_part_name(int i);
bool		source_date_values(bool is_date, Datum d, double *out);
/* source_scan into a dense matrix (k-means). */
void		source_load(const SourceSpec *spec, MemoryContext mcxt, SourceData *out);

/*
 * row_order.c: training that depends only on the rows (src/core/roworder.h):
 * content hashes and comparisons of decoded rows (categorical values by
 * their text), the canonical order within mlpipe.max_memory, and k-means'
 * use of it.
 */
uint64		row_hash_features(uint64 h, const double *x, int d, const bool *categorical,
							  const SourceDict *dicts);
int			row_cmp_features(const double *a, const double *b, int d, const bool *categorical,
							 const SourceDict *dicts);
uint64	   *row_keys_alloc(MemoryContext mcxt, int64 n, double held_bytes);
int64	   *row_canonical_order(PgEnv *pe, uint64 *keys, int64 n, MlRowTieFn tie, void *arg);
void		row_permute(PgEnv *pe, void *rows, size_t row_bytes, const int64 *order, int64 n);
void		source_canonical_order(PgEnv *pe, SourceData *data, uint64 seed);

/* fit.c (mlpipe_internal._fit), fit_kmeans.c, fit_trees.c: what _fit hands back to plpgsql. */
typedef struct FitOutput
{
	bytea	   *artifact;
	const char *task;
	char	  **features;
	int			n_features;
	char	  **classes;
	int			n_classes;
	cJSON	   *metrics;
	cJSON	   *info;
	MemoryContext mcxt;			/* the training's memory, freed once the row is built */
	int			profile_sample; /* rows the training profile asks for (0: none) */
	char	   *profile;		/* the training profile (JSON text), or NULL */
} FitOutput;

void		fit_kmeans(const char *algorithm, const char *source, const char *target,
					   ArrayType *features, cJSON *params, bytea *warm, FitOutput *fo);
void		fit_trees(const char *algorithm, const char *source, const char *target,
					  ArrayType *features, cJSON *params, bytea *warm, FitOutput *fo);
/* The checks _fit makes before reading data, without data (for create_pipeline). */
void		fit_check_params(const char *algorithm, cJSON *params, const char *target);
void		kmeans_check_params(const char *algorithm, cJSON *params, const char *target);
void		trees_check_params(const char *algorithm, cJSON *params, const char *target);

/* fit.c: one training's fit_result row (type td), its fit token issued. */
Datum		fit_result_datum(const char *algorithm, const char *source, const char *target,
							 ArrayType *features, Jsonb *params, bytea *warm, TupleDesc td);

/* fit_token.c: the token mlpipe_internal._register claims for each result _fit returns. */
void		fit_token_issue(struct HeapTupleHeaderData *rec, const char *algorithm);

/* predict.c: decoding artifacts, and the decoded-model cache. */
void		model_decode(MemoryContext mcxt, bytea *artifact, const char *what, PgEnv *pe,
						 MlModel *m);
const MlModel *model_cache_get_ref(FunctionCallInfo fcinfo, text *ref);
uint64		predict_registry_epoch(void);

/*
 * One call site's model, as the row form of predict needs it: the decoded
 * model, scratch space for it, a number that changes whenever the model
 * does, and a slot for predict_row.c's per-statement column mapping
 * (allocated in fn_mcxt).
 */
typedef struct PredictSite
{
	const MlModel *model;
	double	   *scratch;
	uint64		model_gen;
	void	   *row_plan;
} PredictSite;

PredictSite *predict_site_ref(FunctionCallInfo fcinfo, text *ref);
PredictSite *predict_site_ref_in(FunctionCallInfo fcinfo, text *ref, void **slot);
/* predict_group.c: the model for one row by reference (routed for a grouped model; NULL: none). */
PredictSite *row_site_for(FunctionCallInfo fcinfo, text *ref, struct HeapTupleHeaderData *th);
PredictSite *predict_site_blob(FunctionCallInfo fcinfo, bytea *blob);
void		predict_require_classifier(const MlModel *m, const char *fn);
const double *predict_array_features(const MlModel *m, ArrayType *a);
const double *predict_row_features(PredictSite *site, FunctionCallInfo fcinfo,
								   struct HeapTupleHeaderData *th);
const double *predict_row_raw(const PredictSite *site);

/* prep_glue.c: params.preprocess for training, and its export. */
bool		prep_requested(cJSON *params);
double	   *prep_fit_transform(PgEnv *pe, cJSON *params, const SourceInfo *info, const double *X,
							   int64 n, const uint8 *is_test, const int32 *y_class, int n_classes,
							   const double *y_value, MlPrep *prep, int *d_out, char ***names_out);
cJSON	   *prep_export(const MlPrep *p);
/* A binary model's threshold and calibration as JSON (fit_decision.c). */
cJSON	   *decision_export(const MlDecision *d);

#endif
