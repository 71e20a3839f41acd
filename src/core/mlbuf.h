/*
 * mlbuf.h: little-endian byte writer and bounds-checked reader used by the
 * artifact codec. The reader never reads past its end, and counts read from
 * the bytes are checked against a hard limit and against the bytes that
 * remain before anything is allocated for them.
 */
#ifndef MLBUF_H
#define MLBUF_H

#include "mlcore.h"

typedef struct MlBuf
{
	const MlEnv *env;
	uint8_t    *data;
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed; later puts are no-ops */
} MlBuf;

void		ml_buf_init(MlBuf *b, const MlEnv *env);
void		ml_buf_put_bytes(MlBuf *b, const void *p, size_t n);
void		ml_buf_put_u8(MlBuf *b, uint8_t v);
void		ml_buf_put_u16(MlBuf *b, uint16_t v);
void		ml_buf_put_u32(MlBuf *b, uint32_t v);
void		ml_buf_put_u64(MlBuf *b, uint64_t v);
void		ml_buf_put_i32(MlBuf *b, int32_t v);
void		ml_buf_put_f32(MlBuf *b, float v);
void		ml_buf_put_f64(MlBuf *b, double v);
void		ml_buf_put_f64s(MlBuf *b, const double *v, size_t n);
void		ml_buf_put_str(MlBuf *b, const char *s);	/* u32 length + bytes */
/* Patch a u32 at an earlier offset (for lengths written after the content). */
void		ml_buf_patch_u32(MlBuf *b, size_t at, uint32_t v);

typedef struct MlReader
{
	const uint8_t *p;
	size_t		len;
	size_t		pos;
	const MlEnv *env;
	MlError    *err;
} MlReader;

void		ml_rd_init(MlReader *r, const uint8_t *p, size_t len, const MlEnv *env,
					   MlError *err);
size_t		ml_rd_left(const MlReader *r);
/* Each returns false (and sets err ML_ERR_CORRUPT naming `what`) on short input. */
bool		ml_rd_bytes(MlReader *r, void *out, size_t n, const char *what);
bool		ml_rd_u8(MlReader *r, uint8_t *v, const char *what);
bool		ml_rd_u16(MlReader *r, uint16_t *v, const char *what);
bool		ml_rd_u32(MlReader *r, uint32_t *v, const char *what);
bool		ml_rd_u64(MlReader *r, uint64_t *v, const char *what);
bool		ml_rd_i32(MlReader *r, int32_t *v, const char *what);
bool		ml_rd_f32(MlReader *r, float *v, const char *what);
bool		ml_rd_f64(MlReader *r, double *v, const char *what);
/* A finite double; NaN/Inf is corrupt. */
bool		ml_rd_finite(MlReader *r, double *v, const char *what);
/* n finite doubles into a fresh allocation. */
bool		ml_rd_f64s(MlReader *r, size_t n, double **out, const char *what);
/*
 * A u32 count that must be in [lo, hi] and whose elements (elem_size bytes
 * each, at least) fit in the bytes that remain.
 */
bool		ml_rd_count(MlReader *r, uint32_t lo, uint32_t hi, size_t elem_size,
						uint32_t *out, const char *what);
/* u32 length + bytes (length <= max_len), NUL-terminated copy. */
bool		ml_rd_str(MlReader *r, uint32_t max_len, char **out, const char *what);
/* A sub-reader over the next n bytes (the parent skips them). */
bool		ml_rd_sub(MlReader *r, size_t n, MlReader *sub, const char *what);
/* True when every byte was consumed; otherwise sets a "trailing bytes" error. */
bool		ml_rd_end(MlReader *r, const char *what);

uint32_t	ml_crc32c(uint32_t crc, const void *data, size_t n);

#endif
