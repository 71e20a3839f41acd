/*
 * source_int.h: between the files that read a training source: source.c
 * (its query and feature columns), source_decode.c (one row into doubles),
 * source_scan.c (a scan row by row: layout, skips, id-like statistics) and
 * source_read.c (how the rows are read: the executor feeding a
 * DestReceiver, or grouped training's stored rows). Not for other files:
 * they call source_scan / source_load.
 */
#ifndef MLPIPE_SOURCE_INT_H
#define MLPIPE_SOURCE_INT_H

#include "mlpipe.h"

/* Rows of the source between cancel checks and resets of the per-row memory. */
#define SOURCE_BATCH 10000

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

/* Why a row is unusable, for the error message; NULL when it is fine. */
typedef struct RowState
{
	const char *bad_col;
	const char *why;
} RowState;

/* source.c: the feature columns of td for spec (*ncols of them), checked. */
FeatureCol *source_plan_columns(const SourceSpec *spec, TupleDesc td, int *ncols);

/* source_decode.c */
/* Array widths and offsets from a row; d, or -1 while an array is NULL. */
int			source_plan_widths(FeatureCol *cols, int ncols, Datum *values, bool *nulls);
/* A categorical column's dictionary, in mcxt. */
void		source_dict_init(FeatureCol *fc, SourceDict *dict, MemoryContext mcxt);
/* One row into out; false with rs set for a NULL, NaN or infinite value. */
bool		source_decode_row(FeatureCol *cols, int ncols, Datum *values, bool *nulls,
							  double *out, RowState *rs, int64 rowno, bool missing_ok);
/* A refused row decoded for the training profile only (dictionaries unchanged). */
void		source_decode_row_for_profile(FeatureCol *cols, int ncols, Datum *values,
										  bool *nulls, double *out, int64 rowno);

/* source_scan.c */
typedef struct SourceScan SourceScan;

/* A scan of spec's source feeding fn; info is zeroed and filled in. */
SourceScan *source_scan_begin(const SourceSpec *spec, MemoryContext mcxt, SourceRowFn fn,
							  void *arg, SourceInfo *info);
/* The source's row description (only the first call counts). */
void		source_scan_describe(SourceScan *ss, TupleDesc td);
/* Row rowno (1-based), deformed: id-like statistics when id_stats, then fn. */
void		source_scan_row(SourceScan *ss, int64 rowno, Datum *values, bool *nulls,
							bool id_stats);
/* After rows rows (0: not counted): id-like features, errors for no rows. */
void		source_scan_end(SourceScan *ss, int64 rows);

#endif							/* MLPIPE_SOURCE_INT_H */
