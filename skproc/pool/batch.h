/* SPDX-License-Identifier: MIT */
/*
 * What travels between the parent and the workers of a pool, whatever the
 * transport: the description of a call's job, and the two byte images of a
 * batch of its items.
 *
 *   item image    plain records: count * item_size bytes, back to back;
 *                 records with pointers: (count + 1) uint64 offsets, then
 *                 the tpl images (item k is bytes offs[k] .. offs[k + 1];
 *                 an empty one is an item the parent could not encode)
 *   result image  count int32 statuses (SK_OK or SK_EPROCESS), padded to 16
 *                 bytes, then plain results (count * result_size bytes),
 *                 or an index of {offset, length} pairs and the tpl images
 *
 * Each image holds at most POOL_IMAGE_MAX bytes. The layout is plain bytes
 * so that a transport without shared memory can send a batch as it is.
 */
#ifndef SKPROC_POOL_BATCH_H
#define SKPROC_POOL_BATCH_H

#include "codec/message.h"
#include "skproc.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define POOL_BATCHES 1024                /* batch ids: batches in flight at most */
#define POOL_CALLS 256                   /* call slots: calls alive at once */
#define POOL_IMAGE_MAX ((size_t)8 << 20) /* bytes of a batch's item or result image */
#define POOL_ARG_MAX ((size_t)64 << 10)  /* argument bytes of a job */
#define POOL_ERRORS 1024                 /* error records kept per call */
#define POOL_FORMAT_MAX 128
#define POOL_MAX_FIELDS 64

enum pool_job_kind { POOL_JOB_FN, POOL_JOB_STAR, POOL_JOB_CLS, POOL_JOB_RANGE };

/* What a worker needs to run a call's items. Plain bytes: the parent
 * copies it to the workers when the call starts. The function and class
 * pointers are addresses in the parent's program, valid in forked workers. */
struct pool_job {
    uint32_t kind;
    sk_pool_fn fn;
    sk_pool_star_fn star;
    const sk_class *cls;
    sk_pool_range_fn range;
    uint64_t item_size, result_size;
    uint32_t item_tpl, result_tpl; /* travel as tpl images */
    char item_format[POOL_FORMAT_MAX];
    char result_format[POOL_FORMAT_MAX];
    uint32_t n_fields;
    uint64_t field_offsets[POOL_MAX_FIELDS];
    /* Zero-copy arrays (sk_pool_alloc): items and/or results are read and
     * written in place in the pool's shared region, at these byte offsets
     * from its start (item i at items_at + i * item_size), and not carried
     * in the batch images; the result image then holds only the statuses.
     * Plain records only (no tpl, no cls). */
    uint32_t shared_items, shared_results;
    uint64_t items_at, results_at;
    uint64_t shared_n; /* items in the call (the arrays' length, for pre-faulting) */
};

/* Where the results start in a result image of count items. */
static inline size_t pool_results_at(uint32_t count)
{
    return ((size_t)count * sizeof(int32_t) + 15) & ~(size_t)15;
}

/* Where the tpl images start in a result image of count items. */
static inline size_t pool_images_at(uint32_t count)
{
    return pool_results_at(count) + 2 * sizeof(uint64_t) * (size_t)count;
}

/* Reads a value a peer may be writing at the same time: exactly once, so
 * that what is checked is what is used. */
static inline int32_t pool_peer_load32(const int32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline uint64_t pool_peer_load64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ------------------------------------------------ encoding into an image */

struct pool_bump {
    unsigned char *base;
    size_t used, cap;
};

static inline int pool_bump_reserve(void *ctx, size_t size, void **dst)
{
    struct pool_bump *b = ctx;
    if (size > b->cap - b->used)
        return SK_EFULL;
    *dst = b->base + b->used;
    b->used += size;
    return SK_OK;
}

/* Encodes one record; the value's address is the one variadic argument. */
static inline int pool_encode_record(const char *fmt, sk_msg_reserve_fn reserve, void *ctx,
                                     size_t *len, ...)
{
    va_list ap;
    va_start(ap, len);
    int rc = sk_msg_encode(fmt, ap, reserve, ctx, len);
    va_end(ap);
    return rc;
}

static inline int pool_encode_one(struct pool_bump *b, const char *fmt, size_t *len,
                                  const void *value)
{
    return pool_encode_record(fmt, pool_bump_reserve, b, len, value);
}

/* Decodes one record into the value whose address is the variadic argument. */
static inline int pool_unpack_one(const void *img, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_unpack(img, len, fmt, ap);
    va_end(ap);
    return rc;
}

#endif
