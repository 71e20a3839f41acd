/*
 * source_int.h: between source.c (what a source's rows mean: feature
 * columns, decoding, id-like statistics) and source_read.c (how they are
 * read: the executor feeding a DestReceiver, or grouped training's stored
 * rows). Not for other files: they call source_scan / source_load.
 */
#ifndef MLPIPE_SOURCE_INT_H
#define MLPIPE_SOURCE_INT_H

#include "mlpipe.h"

/* Rows of the source between cancel checks and resets of the per-row memory. */
#define SOURCE_BATCH 10000

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
