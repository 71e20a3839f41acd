/* mlbuf.c: little-endian writer, bounds-checked reader, CRC32C. */
#include "mlbuf.h"

#include <math.h>
#include <string.h>

void
ml_buf_init(MlBuf *b, const MlEnv *env)
{
	memset(b, 0, sizeof(*b));
	b->env = env;
}

static bool
ml_buf_reserve(MlBuf *b, size_t n)
{
	size_t		need;
	size_t		cap;
	uint8_t    *p;

	if (b->failed)
		return false;
	if (!ml_add_size(b->len, n, &need))
		return (b->failed = true, false);
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
	{
		if (cap > SIZE_MAX / 2)
			return (b->failed = true, false);
		cap *= 2;
	}
	p = ml_alloc(b->env, cap);
	if (p == NULL)
		return (b->failed = true, false);
	if (b->len)
		memcpy(p, b->data, b->len);
	ml_free(b->env, b->data);
	b->data = p;
	b->cap = cap;
	return true;
}

void
ml_buf_put_bytes(MlBuf *b, const void *p, size_t n)
{
	if (!ml_buf_reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
put_le(MlBuf *b, uint64_t v, int n)
{
	uint8_t		tmp[8];
	int			i;

	for (i = 0; i < n; i++)
		tmp[i] = (uint8_t) (v >> (8 * i));
	ml_buf_put_bytes(b, tmp, n);
}

void		ml_buf_put_u8(MlBuf *b, uint8_t v) { put_le(b, v, 1); }
void		ml_buf_put_u16(MlBuf *b, uint16_t v) { put_le(b, v, 2); }
void		ml_buf_put_u32(MlBuf *b, uint32_t v) { put_le(b, v, 4); }
void		ml_buf_put_u64(MlBuf *b, uint64_t v) { put_le(b, v, 8); }
void		ml_buf_put_i32(MlBuf *b, int32_t v) { put_le(b, (uint32_t) v, 4); }

void
ml_buf_put_f32(MlBuf *b, float v)
{
	uint32_t	u;

	memcpy(&u, &v, 4);
	put_le(b, u, 4);
}

void
ml_buf_put_f64(MlBuf *b, double v)
{
	uint64_t	u;

	memcpy(&u, &v, 8);
	put_le(b, u, 8);
}

void
ml_buf_put_f64s(MlBuf *b, const double *v, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		ml_buf_put_f64(b, v[i]);
}

void
ml_buf_put_str(MlBuf *b, const char *s)
{
	size_t		n = strlen(s);

	ml_buf_put_u32(b, (uint32_t) n);
	ml_buf_put_bytes(b, s, n);
}

void
ml_buf_patch_u32(MlBuf *b, size_t at, uint32_t v)
{
	int			i;

	if (b->failed || at + 4 > b->len)
		return;
	for (i = 0; i < 4; i++)
		b->data[at + i] = (uint8_t) (v >> (8 * i));
}

void
ml_rd_init(MlReader *r, const uint8_t *p, size_t len, const MlEnv *env, MlError *err)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->env = env;
	r->err = err;
}

size_t
ml_rd_left(const MlReader *r)
{
	return r->len - r->pos;
}

bool
ml_rd_bytes(MlReader *r, void *out, size_t n, const char *what)
{
	if (n > ml_rd_left(r))
	{
		ml_fail(r->err, ML_ERR_CORRUPT,
				"artifact truncated: %s needs %zu bytes at offset %zu, %zu left",
				what, n, r->pos, ml_rd_left(r));
		return false;
	}
	if (n)
		memcpy(out, r->p + r->pos, n);
	r->pos += n;
	return true;
}

static bool
get_le(MlReader *r, uint64_t *v, int n, const char *what)
{
	uint8_t		tmp[8];
	int			i;

	if (!ml_rd_bytes(r, tmp, n, what))
		return false;
	*v = 0;
	for (i = 0; i < n; i++)
		*v |= (uint64_t) tmp[i] << (8 * i);
	return true;
}

bool
ml_rd_u8(MlReader *r, uint8_t *v, const char *what)
{
	uint64_t	x;

	if (!get_le(r, &x, 1, what))
		return false;
	*v = (uint8_t) x;
	return true;
}

bool
ml_rd_u16(MlReader *r, uint16_t *v, const char *what)
{
	uint64_t	x;

	if (!get_le(r, &x, 2, what))
		return false;
	*v = (uint16_t) x;
	return true;
}

bool
ml_rd_u32(MlReader *r, uint32_t *v, const char *what)
{
	uint64_t	x;

	if (!get_le(r, &x, 4, what))
		return false;
	*v = (uint32_t) x;
	return true;
}

bool
ml_rd_u64(MlReader *r, uint64_t *v, const char *what)
{
	return get_le(r, v, 8, what);
}

bool
ml_rd_i32(MlReader *r, int32_t *v, const char *what)
{
	uint32_t	u;

	if (!ml_rd_u32(r, &u, what))
		return false;
	*v = (int32_t) u;
	return true;
}

bool
ml_rd_f32(MlReader *r, float *v, const char *what)
{
	uint32_t	u;

	if (!ml_rd_u32(r, &u, what))
		return false;
	memcpy(v, &u, 4);
	return true;
}

bool
ml_rd_f64(MlReader *r, double *v, const char *what)
{
	uint64_t	u;

	if (!ml_rd_u64(r, &u, what))
		return false;
	memcpy(v, &u, 8);
	return true;
}

bool
ml_rd_finite(MlReader *r, double *v, const char *what)
{
	if (!ml_rd_f64(r, v, what))
		return false;
	if (!isfinite(*v))
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: %s is not finite", what);
		return false;
	}
	return true;
}

bool
ml_rd_f64s(MlReader *r, size_t n, double **out, const char *what)
{
	size_t		bytes;
	size_t		i;
	double	   *v;

	*out = NULL;
	if (!ml_mul_size(n, 8, &bytes) || bytes > ml_rd_left(r))
	{
		ml_fail(r->err, ML_ERR_CORRUPT,
				"artifact truncated: %s needs %zu values, %zu bytes left",
				what, n, ml_rd_left(r));
		return false;
	}
	v = ml_alloc(r->env, bytes);
	if (v == NULL)
	{
		ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading %s", what);
		return false;
	}
	for (i = 0; i < n; i++)
		if (!ml_rd_finite(r, &v[i], what))
		{
			ml_free(r->env, v);
			return false;
		}
	*out = v;
	return true;
}

bool
ml_rd_count(MlReader *r, uint32_t lo, uint32_t hi, size_t elem_size,
			uint32_t *out, const char *what)
{
	uint32_t	n;
	size_t		bytes;

	if (!ml_rd_u32(r, &n, what))
		return false;
	if (n < lo || n > hi)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: %s = %u is outside [%u, %u]",
				what, n, lo, hi);
		return false;
	}
	if (!ml_mul_size(n, elem_size, &bytes) || bytes > ml_rd_left(r))
	{
		ml_fail(r->err, ML_ERR_CORRUPT,
				"artifact corrupt: %s = %u needs more than the %zu bytes left",
				what, n, ml_rd_left(r));
		return false;
	}
	*out = n;
	return true;
}

bool
ml_rd_str(MlReader *r, uint32_t max_len, char **out, const char *what)
{
	uint32_t	n;
	char	   *s;

	*out = NULL;
	if (!ml_rd_count(r, 0, max_len, 1, &n, what))
		return false;
	s = ml_alloc(r->env, (size_t) n + 1);
	if (s == NULL)
	{
		ml_fail(r->err, ML_ERR_MEMORY, "out of memory reading %s", what);
		return false;
	}
	memcpy(s, r->p + r->pos, n);
	s[n] = '\0';
	if (memchr(s, '\0', n) != NULL)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: %s contains a NUL byte", what);
		ml_free(r->env, s);
		return false;
	}
	r->pos += n;
	*out = s;
	return true;
}

bool
ml_rd_sub(MlReader *r, size_t n, MlReader *sub, const char *what)
{
	if (n > ml_rd_left(r))
	{
		ml_fail(r->err, ML_ERR_CORRUPT,
				"artifact truncated: %s claims %zu bytes, %zu left", what, n, ml_rd_left(r));
		return false;
	}
	ml_rd_init(sub, r->p + r->pos, n, r->env, r->err);
	r->pos += n;
	return true;
}

bool
ml_rd_end(MlReader *r, const char *what)
{
	if (r->pos != r->len)
	{
		ml_fail(r->err, ML_ERR_CORRUPT, "artifact corrupt: %zu trailing bytes in %s",
				ml_rd_left(r), what);
		return false;
	}
	return true;
}

/* CRC32C (Castagnoli), reflected polynomial 0x82F63B78, table-driven. */
static uint32_t crc_table[256];
static bool crc_ready = false;

static void
crc_init(void)
{
	uint32_t	i,
				j,
				c;

	for (i = 0; i < 256; i++)
	{
		c = i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = true;
}

uint32_t
ml_crc32c(uint32_t crc, const void *data, size_t n)
{
	const uint8_t *p = data;

	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
