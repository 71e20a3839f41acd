/*
 * roworder.h: training that depends only on the rows, not on the order
 * they arrive in.
 *
 * A training source read from a Citus distributed table, a view over one
 * or a query with ORDER BY hands over the same rows in a different order
 * each time; so does a local table after UPDATEs move rows. Everything
 * downstream of the read (the seeded test split, k-means++ seeding,
 * mini-batches, bootstraps, the sums in every histogram) depends on row
 * positions, so the glue puts the rows into a canonical order first:
 * ascending by a seeded 64-bit hash of each row's content, ties broken by
 * the caller's full-content comparison (only identical rows stay tied, and
 * their order cannot matter). Samples drawn while a source streams by use
 * the same hash as a priority (bottom-k: the rows with the smallest
 * hashes), so the sampled set does not depend on the order either.
 */
#ifndef ROWORDER_H
#define ROWORDER_H

#include "mlcore.h"

/* Content hashing: start from a seed, mix values in, finish. */
uint64_t	ml_hash_start(uint64_t seed);
uint64_t	ml_hash_u64(uint64_t h, uint64_t v);
uint64_t	ml_hash_double(uint64_t h, double v);
uint64_t	ml_hash_doubles(uint64_t h, const double *x, int d);
uint64_t	ml_hash_text(uint64_t h, const char *s);
uint64_t	ml_hash_finish(uint64_t h);
/* The words ml_hash_text(h, s) mixes into h, as ml_hash_u64 does (1 or 2). */
int			ml_hash_text_words(const char *s, uint64_t *w);

/*
 * Hashes of many rows at once, the same bits as a row at a time.
 * ml_hash_columns continues n rows' states h[0..n) over d columns of
 * doubles (row i's value j at X[j * ld + i]): h[i] becomes
 * ml_hash_doubles(h[i], row i, d). Rows run side by side (AVX-512 when the
 * CPU has it and ml_hash_simd is set, else 8 interleaved scalar chains).
 * ml_hash_tails then mixes in row i's cnt[i] words w[i * maxw ..] as
 * ml_hash_u64 does and finishes it: h[i] becomes ml_hash_finish(...).
 */
void		ml_hash_columns(uint64_t *h, const double *X, size_t ld, int d, int64_t n);
void		ml_hash_tails(uint64_t *h, const uint64_t *w, int maxw, const uint8_t *cnt,
						  int64_t n);
extern bool ml_hash_simd;		/* tests: false runs the portable kernel */

/* The bit pattern a double is hashed and compared by (every NaN one pattern). */
uint64_t	ml_double_bits(double v);

/* Total order of two rows of d doubles by their bit patterns (0: identical). */
int			ml_cmp_double_rows(const double *a, const double *b, int d);

/* Compares rows a and b of the caller's data when their hashes are equal. */
typedef int (*MlRowTieFn) (void *arg, int64_t a, int64_t b);

/*
 * The sort key of a row: the top 32 bits of its content hash above its
 * position in the caller's data (so 8 bytes a row, and at most 2^32 rows).
 * Rows whose 32 hash bits are equal (identical rows, or about n^2 / 2^33
 * pairs of different rows) are ordered by tie().
 */
#define ML_ORDER_ROW_BITS 32
#define ML_ORDER_ROW_MASK ((UINT64_C(1) << ML_ORDER_ROW_BITS) - 1)

static inline uint64_t
ml_order_key(uint64_t hash, int64_t row)
{
	return (hash & ~ML_ORDER_ROW_MASK) | (uint64_t) row;
}

/*
 * Sorts keys[0..n) in place into the canonical order: ascending by hash
 * bits, equal hash bits by tie() (rows that tie() calls equal are identical
 * and stay in any order; tie NULL: hash bits and row numbers alone). Keys
 * that ascend already are left as they are. No memory beyond the keys;
 * cancel-checked.
 * ml_order_from_keys then turns the sorted keys, in place, into the order
 * ml_permute_rows takes (order[i]: the row that goes to position i) and
 * returns it (the same memory).
 */
MlStatus	ml_canonical_order(const MlEnv *env, uint64_t *keys, int64_t n,
							   MlRowTieFn tie, void *arg, MlError *err);
int64_t    *ml_order_from_keys(uint64_t *keys, int64_t n);

/*
 * Puts n rows of row_bytes each into order (row i becomes the old row
 * order[i]), in place: n/8 bytes of bitmap and one row of scratch.
 */
MlStatus	ml_permute_rows(const MlEnv *env, void *rows, size_t row_bytes,
							const int64_t *order, int64_t n, MlError *err);
/*
 * The same for narr arrays of n rows each (row_bytes[a] a row; a NULL
 * array is skipped) in one walk along the cycles: the random reads of
 * order are paid once, not once an array.
 */
MlStatus	ml_permute_arrays(const MlEnv *env, int narr, void *const *arrays,
							  const size_t *row_bytes, const int64_t *order, int64_t n,
							  MlError *err);

/*
 * A bottom-k sample: keeps the rows with the cap smallest priorities as a
 * max-heap over the caller's row buffer (prio[i] is row i's priority).
 * ml_sample_slot says where a row with priority p goes (kept while filling,
 * 0 when it replaces the largest, -1 when it is not kept); the caller
 * writes the row there (growing its buffers to kept + 1 rows while filling)
 * and calls ml_sample_commit. tmp is scratch of row_bytes.
 *
 * With slot_of (cap entries, or NULL), rows stay in the slot they were
 * written to and the heap moves slot numbers instead of rows (slot_of[i]
 * is the slot of heap entry i, whose priority is prio[i]): a replacement
 * costs O(log cap) words, not O(log cap) rows. ml_sample_heap_order then
 * moves the rows to where the row-moving heap would have left them.
 */
typedef struct MlSample
{
	uint64_t   *prio;
	void	   *rows;
	size_t		row_bytes;
	int64_t		kept;
	int64_t		cap;
	void	   *tmp;
	int64_t    *slot_of;
} MlSample;

int64_t		ml_sample_slot(const MlSample *s, uint64_t p);
void		ml_sample_commit(MlSample *s, int64_t slot, uint64_t p);
void		ml_sample_heap_order(MlSample *s);

/*
 * The same bottom-k sample by selection instead of a heap: the k smallest
 * priorities (as a multiset: the heap's, with rows of equal priority kept
 * in some order) over the caller's buffers of cap > k rows. A row is
 * appended (sequential writes) unless its priority is at or above bound;
 * a full buffer keeps its k smallest (ml_sample_buf_reduce: a selection,
 * then rows from the end fill the gaps, at most cap - k row moves) and
 * bound becomes the largest of them. The heap instead sifts ~log2(k)
 * entries, each a cache miss, for every row it replaces. Rows end in no
 * particular order. Set prio, rows, row_bytes, k, cap, scratch (cap
 * words) and n (rows already in, up to cap); the rest zero.
 * ml_sample_buf_slot says where a row of priority p goes (-1: not kept);
 * the caller writes it there and calls ml_sample_buf_commit; at the end
 * ml_sample_buf_reduce leaves min(n, k) rows.
 */
typedef struct MlSampleBuf
{
	uint64_t   *prio;
	void	   *rows;
	size_t		row_bytes;
	int64_t		k;
	int64_t		cap;
	int64_t		n;
	uint64_t   *scratch;
	uint64_t	bound;			/* once reduced: rows at or above it are not kept */
	bool		reduced;
} MlSampleBuf;

int64_t		ml_sample_buf_slot(MlSampleBuf *s, uint64_t p);
void		ml_sample_buf_commit(MlSampleBuf *s, int64_t slot, uint64_t p);
void		ml_sample_buf_reduce(MlSampleBuf *s);

#endif
