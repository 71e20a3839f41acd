/* artifact.c: header, CRC and section framing of the model format. */
#include "artifact.h"

#include <string.h>

const char *
ml_kind_name(MlKind kind)
{
	switch (kind)
	{
		case ML_KIND_KMEANS:
			return "kmeans";
		case ML_KIND_DECISION_TREE:
			return "decision_tree";
		case ML_KIND_RANDOM_FOREST:
			return "random_forest";
		case ML_KIND_GBT:
			return "gbt";
	}
	return "unknown";
}

void
artifact_begin(MlBuf *b, const MlEnv *env, MlKind kind)
{
	artifact_begin_format(b, env, kind, 1);
}

void
artifact_begin_format(MlBuf *b, const MlEnv *env, MlKind kind, uint16_t format)
{
	ml_buf_init(b, env);
	ml_buf_put_bytes(b, ML_ARTIFACT_MAGIC, 4);
	ml_buf_put_u16(b, format);
	ml_buf_put_u16(b, (uint16_t) kind);
	ml_buf_put_u32(b, 0);		/* flags */
	ml_buf_put_u32(b, 0);		/* payload_len, patched by finish */
	ml_buf_put_u32(b, 0);		/* crc, patched by finish */
}

size_t
artifact_section_begin(MlBuf *b, MlSection tag)
{
	size_t		at;

	ml_buf_put_u16(b, (uint16_t) tag);
	at = b->len;
	ml_buf_put_u32(b, 0);
	return at;
}

void
artifact_section_end(MlBuf *b, size_t at)
{
	ml_buf_patch_u32(b, at, (uint32_t) (b->len - at - 4));
}

void
artifact_write_meta(MlBuf *b, const MlMeta *meta)
{
	size_t		at = artifact_section_begin(b, ML_SEC_META);
	uint32_t	i;

	ml_buf_put_u8(b, (uint8_t) meta->task);
	ml_buf_put_u32(b, meta->n_features);
	for (i = 0; i < meta->n_features; i++)
		ml_buf_put_str(b, meta->feature_names[i]);
	ml_buf_put_u32(b, meta->n_classes);
	for (i = 0; i < meta->n_classes; i++)
		ml_buf_put_str(b, meta->class_labels[i]);
	artifact_section_end(b, at);
}

static uint32_t
artifact_crc(const uint8_t *data, size_t len)
{
	uint32_t	crc = ml_crc32c(0, data, 16);

	return ml_crc32c(crc, data + ML_ARTIFACT_HEADER_SIZE, len - ML_ARTIFACT_HEADER_SIZE);
}

MlStatus
artifact_finish(MlBuf *b, MlError *err)
{
	size_t		payload;

	if (b->failed)
		return ml_fail(err, ML_ERR_MEMORY, "out of memory writing the artifact");
	payload = b->len - ML_ARTIFACT_HEADER_SIZE;
	if (b->len > ML_ARTIFACT_MAX_SIZE)
		return ml_fail(err, ML_ERR_MEMORY,
					   "model artifact of %zu bytes exceeds the 1 GB limit", b->len);
	ml_buf_patch_u32(b, 12, (uint32_t) payload);
	ml_buf_patch_u32(b, 16, artifact_crc(b->data, b->len));
	return ML_OK;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 |
		(uint32_t) p[3] << 24;
}

uint32_t
artifact_stored_crc(const uint8_t *data, size_t len)
{
	return len >= ML_ARTIFACT_HEADER_SIZE ? le32(data + 16) : 0;
}

MlStatus
artifact_open(const uint8_t *data, size_t len, const MlEnv *env, MlArtifact *a,
			  MlError *err)
{
	uint16_t	format,
				kind;
	uint32_t	flags,
				payload_len,
				crc;

	memset(a, 0, sizeof(*a));
	if (len < ML_ARTIFACT_HEADER_SIZE)
		return ml_fail(err, ML_ERR_CORRUPT,
					   "artifact truncated: %zu bytes is shorter than the %d-byte header",
					   len, ML_ARTIFACT_HEADER_SIZE);
	if (memcmp(data, ML_ARTIFACT_MAGIC, 4) != 0)
		return ml_fail(err, ML_ERR_CORRUPT, "not an mlpipe artifact: bad magic");
	format = (uint16_t) (data[4] | data[5] << 8);
	kind = (uint16_t) (data[6] | data[7] << 8);
	flags = le32(data + 8);
	payload_len = le32(data + 12);
	crc = le32(data + 16);
	if (format == 0 || format > ML_ARTIFACT_FORMAT)
		return ml_fail(err, ML_ERR_CORRUPT,
					   "artifact format %u is not supported (this build reads 1 to %d)",
					   format, ML_ARTIFACT_FORMAT);
	if ((size_t) payload_len != len - ML_ARTIFACT_HEADER_SIZE)
		return ml_fail(err, ML_ERR_CORRUPT,
					   "artifact length mismatch: header says %u payload bytes, %zu present",
					   payload_len, len - ML_ARTIFACT_HEADER_SIZE);
	if (artifact_crc(data, len) != crc)
		return ml_fail(err, ML_ERR_CORRUPT, "artifact checksum mismatch: the model is corrupted");
	if (kind < 1 || kind > ML_KIND_MAX)
		return ml_fail(err, ML_ERR_CORRUPT, "artifact has unknown model kind %u", kind);
	if (flags != 0)
		return ml_fail(err, ML_ERR_CORRUPT, "artifact has unknown flags 0x%x", flags);
	a->format = format;
	a->kind = (MlKind) kind;
	a->crc = crc;
	ml_rd_init(&a->payload, data + ML_ARTIFACT_HEADER_SIZE, payload_len, env, err);
	return ML_OK;
}

bool
artifact_next_section(MlArtifact *a, MlSection *tag, MlReader *sec, MlError *err)
{
	uint16_t	t;
	uint32_t	n;

	if (ml_rd_left(&a->payload) == 0)
	{
		if (a->last_tag == 0)
			ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: no sections");
		return false;
	}
	if (!ml_rd_u16(&a->payload, &t, "section tag") ||
		!ml_rd_u32(&a->payload, &n, "section length"))
		return false;
	if (t < ML_SEC_META || t > ML_SEC_ANOMALY || (t == ML_SEC_PREPROCESS && a->format < 2) ||
		((t == ML_SEC_DECISION || t == ML_SEC_ANOMALY) && a->format < 3))
	{
		ml_fail(err, ML_ERR_CORRUPT, "artifact has unknown section %u", t);
		return false;
	}
	if (t <= a->last_tag || (a->last_tag == 0 && t != ML_SEC_META))
	{
		ml_fail(err, ML_ERR_CORRUPT, "artifact corrupt: section %u out of order", t);
		return false;
	}
	if (!ml_rd_sub(&a->payload, n, sec, "section"))
		return false;
	a->last_tag = t;
	*tag = (MlSection) t;
	return true;
}

bool
artifact_read_meta(MlReader *r, MlMeta *meta)
{
	uint8_t		task;
	uint32_t	i;

	memset(meta, 0, sizeof(*meta));
	if (!ml_rd_u8(r, &task, "task"))
		return false;
	if (task > ML_TASK_REGRESS)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: unknown task %u", task);
		return false;
	}
	meta->task = (MlTask) task;
	if (!ml_rd_count(r, 1, ML_MAX_FEATURES, 4, &meta->n_features, "feature count"))
		return false;
	meta->feature_names = ml_calloc(r->env, meta->n_features, sizeof(char *));
	if (!meta->feature_names)
	{
		ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading feature names");
		return false;
	}
	for (i = 0; i < meta->n_features; i++)
		if (!ml_rd_str(r, ML_MAX_NAME_LEN, &meta->feature_names[i], "feature name"))
			return false;
	if (!ml_rd_count(r, 0, ML_MAX_CLASSES, 4, &meta->n_classes, "class count"))
		return false;
	if ((meta->task == ML_TASK_CLASSIFY) != (meta->n_classes > 0) ||
		meta->n_classes == 1)
	{
		ml_fail(r->err, ML_ERR_CORRUPT,
				"artifact corrupt: %u classes for task %u", meta->n_classes, task);
		return false;
	}
	meta->class_labels = ml_calloc(r->env, meta->n_classes ? meta->n_classes : 1,
								   sizeof(char *));
	if (!meta->class_labels)
	{
		ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading class labels");
		return false;
	}
	for (i = 0; i < meta->n_classes; i++)
		if (!ml_rd_str(r, ML_MAX_NAME_LEN, &meta->class_labels[i], "class label"))
			return false;
	return ml_rd_end(r, "meta section");
}
