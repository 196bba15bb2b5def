/* SPDX-License-Identifier: MIT */
/*
 * Payloads: large byte buffers in one shared mapping that every step
 * process maps at the same place (it is made before they are forked). A
 * task's record carries only an sk_payload (offset, size): the bytes stay
 * where the parent put them, and every step reads and changes them there.
 * Nothing is copied from step to step.
 *
 * The allocator is the parent's alone and its bookkeeping is in the
 * parent's heap, out of the steps' reach: a free list of extents and a
 * list of live blocks, both sorted by offset. A handle coming back from a
 * step is believed only when it lies inside a live block; a forged one
 * gives NULL, never memory outside the area.
 */
#include "flow/flow_internal.h"

#include "core/error.h"
#include "os/fd.h"
#include "os/shm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAYLOAD_ALIGN 64

/* Index of the first extent in v (n sorted by offset) at or after off. */
static size_t lower_bound(const struct flow_extent *v, size_t n, uint64_t off)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int extents_insert(struct flow_extents *x, size_t at, struct flow_extent e)
{
    if (x->len == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 16;
        struct flow_extent *v = realloc(x->v, cap * sizeof *v);
        if (v == NULL)
            return SK_ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    memmove(&x->v[at + 1], &x->v[at], (x->len - at) * sizeof *x->v);
    x->v[at] = e;
    x->len++;
    return SK_OK;
}

static void extents_remove(struct flow_extents *x, size_t at)
{
    memmove(&x->v[at], &x->v[at + 1], (x->len - at - 1) * sizeof *x->v);
    x->len--;
}

int flow_payload_area_create(struct sk_flow *f, size_t size)
{
    size = sk_page_round(size);
    if (sk_shm_create("skproc-flow-payload", size, true, &f->payload_fd, &f->payload_base) != 0)
        return errno == ENOMEM ? SK_ENOMEM : SK_ESYS;
    f->payload_size = size;
    return extents_insert(&f->payload_free, 0, (struct flow_extent){0, size});
}

void flow_payload_area_release(struct sk_flow *f)
{
    if (f->payload_base != NULL)
        munmap(f->payload_base, f->payload_size);
    f->payload_base = NULL;
    sk_fd_close(&f->payload_fd);
    free(f->payload_free.v);
    free(f->payload_live.v);
    memset(&f->payload_free, 0, sizeof f->payload_free);
    memset(&f->payload_live, 0, sizeof f->payload_live);
}

int sk_flow_payload_alloc(sk_flow *f, size_t size, sk_payload *p, void **data)
{
    if (data != NULL)
        *data = NULL;
    if (f == NULL || p == NULL || size == 0)
        return sk_refuse(SK_EINVAL, "sk_flow_payload_alloc: flow, payload and a size are needed");
    if (f->payload_base == NULL)
        return sk_refuse(SK_ESTATE, "sk_flow_payload_alloc: config.payload_area is 0");
    if (size > f->payload_size)
        return SK_EFULL;
    uint64_t need = flow_align_up(size, PAYLOAD_ALIGN);
    pthread_mutex_lock(&f->lock);
    struct flow_extents *fr = &f->payload_free;
    int rc = SK_EFULL;
    for (size_t i = 0; i < fr->len; i++) {
        if (fr->v[i].size < need)
            continue;
        struct flow_extent block = {fr->v[i].offset, need};
        size_t at = lower_bound(f->payload_live.v, f->payload_live.len, block.offset);
        rc = extents_insert(&f->payload_live, at, block);
        if (rc != SK_OK)
            break;
        fr->v[i].offset += need;
        fr->v[i].size -= need;
        if (fr->v[i].size == 0)
            extents_remove(fr, i);
        f->payload_used += need;
        p->offset = block.offset;
        p->size = size;
        if (data != NULL)
            *data = (char *)f->payload_base + block.offset;
        break;
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* The live block that holds [offset, offset + size), or -1. */
static long live_block(const struct sk_flow *f, uint64_t offset, uint64_t size)
{
    const struct flow_extents *lv = &f->payload_live;
    size_t at = lower_bound(lv->v, lv->len, offset + 1);
    if (at == 0)
        return -1;
    const struct flow_extent *b = &lv->v[at - 1];
    if (offset < b->offset || size > b->size || offset - b->offset > b->size - size)
        return -1;
    return (long)(at - 1);
}

void *sk_flow_payload(sk_flow *f, const sk_payload *p)
{
    if (f == NULL || p == NULL || f->payload_base == NULL)
        return NULL;
    pthread_mutex_lock(&f->lock);
    long b = live_block(f, p->offset, p->size);
    pthread_mutex_unlock(&f->lock);
    return b >= 0 ? (char *)f->payload_base + p->offset : NULL;
}

int sk_flow_payload_free(sk_flow *f, const sk_payload *p)
{
    if (f == NULL || p == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_payload_free: flow and payload are required");
    pthread_mutex_lock(&f->lock);
    struct flow_extents *lv = &f->payload_live;
    size_t at = lower_bound(lv->v, lv->len, p->offset);
    if (at == lv->len || lv->v[at].offset != p->offset) {
        pthread_mutex_unlock(&f->lock);
        return sk_refuse(SK_EINVAL, "sk_flow_payload_free: no payload starts at offset %llu",
                         (unsigned long long)p->offset);
    }
    struct flow_extent e = lv->v[at];
    extents_remove(lv, at);
    f->payload_used -= e.size;
    /* Back into the free list, merged with the extents it touches. */
    struct flow_extents *fr = &f->payload_free;
    size_t i = lower_bound(fr->v, fr->len, e.offset);
    bool merged = false;
    if (i > 0 && fr->v[i - 1].offset + fr->v[i - 1].size == e.offset) {
        fr->v[i - 1].size += e.size;
        merged = true;
        if (i < fr->len && e.offset + e.size == fr->v[i].offset) {
            fr->v[i - 1].size += fr->v[i].size;
            extents_remove(fr, i);
        }
    } else if (i < fr->len && e.offset + e.size == fr->v[i].offset) {
        fr->v[i].offset = e.offset;
        fr->v[i].size += e.size;
        merged = true;
    }
    int rc = merged ? SK_OK : extents_insert(fr, i, e);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

void *sk_step_payload(sk_step *self, const sk_payload *p)
{
    if (self == NULL || self->impl == NULL || p == NULL)
        return NULL;
    struct sk_flow *f = self->impl->flow;
    if (f == NULL || f->payload_base == NULL || p->size > f->payload_size ||
        p->offset > f->payload_size - p->size)
        return NULL;
    return (char *)f->payload_base + p->offset;
}
