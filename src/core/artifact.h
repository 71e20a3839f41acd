/*
 * artifact.h: the versioned binary model format.
 *
 *   header (20 bytes, little-endian):
 *     magic "MLPX" | format u16 | kind u16 | flags u32 (0) | payload_len u32 | crc32c u32
 *   payload: a sequence of sections, each  tag u16 | length u32 | bytes
 *
 * The CRC32C covers the first 16 header bytes and the payload (everything
 * but the CRC field itself), so a flipped kind or flags byte is caught too.
 * Sections: META (always first), then MODEL, then optional ones (PREPROCESS,
 * PROFILE, DECISION, ANOMALY) in tag order. An unknown tag is rejected: a newer writer bumps the
 * format version, and readers for every released format stay.
 */
#ifndef ARTIFACT_H
#define ARTIFACT_H

#include "mlbuf.h"

#define ML_ARTIFACT_MAGIC		"MLPX"
/*
 * Format 1: META, MODEL. Format 2 adds the PREPROCESS section; a model
 * without preprocessing is still written as format 1. Format 3 adds the
 * DECISION section (binary threshold and calibration) or an ANOMALY
 * section (k-means trained with params.contamination); a model without
 * either is written as format 1 or 2 as before.
 */
#define ML_ARTIFACT_FORMAT		3
#define ML_ARTIFACT_HEADER_SIZE 20
#define ML_ARTIFACT_MAX_SIZE	(1024u * 1024u * 1024u - 64)	/* fits a bytea with its header */

typedef enum MlKind
{
	ML_KIND_KMEANS = 1,
	ML_KIND_DECISION_TREE = 2,
	ML_KIND_RANDOM_FOREST = 3,
	ML_KIND_GBT = 4
} MlKind;

#define ML_KIND_MAX 4

typedef enum MlSection
{
	ML_SEC_META = 1,
	ML_SEC_MODEL = 2,
	ML_SEC_PREPROCESS = 3,
	ML_SEC_PROFILE = 4,
	ML_SEC_DECISION = 5,		/* format 3: src/core/decision.h */
	ML_SEC_ANOMALY = 6			/* k-means anomaly threshold (format 3) */
} MlSection;

typedef enum MlTask
{
	ML_TASK_CLUSTER = 0,
	ML_TASK_CLASSIFY = 1,
	ML_TASK_REGRESS = 2
} MlTask;

/* Hard limits the reader enforces on counts. */
#define ML_MAX_FEATURES		100000
#define ML_MAX_CLASSES		100000
#define ML_MAX_NAME_LEN		4096

/* What every model carries: task, feature names in training order, classes. */
typedef struct MlMeta
{
	MlTask		task;
	uint32_t	n_features;
	char	  **feature_names;
	uint32_t	n_classes;		/* 0 unless task == ML_TASK_CLASSIFY */
	char	  **class_labels;
} MlMeta;

/* Writing: begin, write sections, finish. */
void		artifact_begin(MlBuf *b, const MlEnv *env, MlKind kind);	/* format 1 */
void		artifact_begin_format(MlBuf *b, const MlEnv *env, MlKind kind, uint16_t format);
/* Opens a section; returns its offset for artifact_section_end. */
size_t		artifact_section_begin(MlBuf *b, MlSection tag);
void		artifact_section_end(MlBuf *b, size_t at);
void		artifact_write_meta(MlBuf *b, const MlMeta *meta);
/* Fills payload length and CRC. ML_ERR_MEMORY when an allocation failed. */
MlStatus	artifact_finish(MlBuf *b, MlError *err);

/* Reading: validate the header and CRC, then walk the sections. */
typedef struct MlArtifact
{
	uint16_t	format;
	MlKind		kind;
	uint32_t	crc;
	uint16_t	last_tag;		/* tag of the section read last; 0 before the first */
	MlReader	payload;
} MlArtifact;

MlStatus	artifact_open(const uint8_t *data, size_t len, const MlEnv *env,
						  MlArtifact *a, MlError *err);
/*
 * Next section: its tag and a reader over exactly its bytes. Returns false
 * at the end of the payload (with err untouched) or on corruption (err set).
 * Tags must increase strictly.
 */
bool		artifact_next_section(MlArtifact *a, MlSection *tag, MlReader *sec,
								  MlError *err);
bool		artifact_read_meta(MlReader *r, MlMeta *meta);

/* CRC of a complete artifact as stored in its header (for cache keys). */
uint32_t	artifact_stored_crc(const uint8_t *data, size_t len);

const char *ml_kind_name(MlKind kind);

#endif
