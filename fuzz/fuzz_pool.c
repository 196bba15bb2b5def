/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the pool parent's read-back: everything a worker
 * writes and the parent reads (batch descriptors, statuses, failed counts,
 * result indexes and tpl images, spilled images, error records and their
 * counts and stamps) comes from the fuzzer.
 *
 * No worker runs. The shared-memory transport (shm_transport.c) and the
 * call engine (call.c) are compiled into this file, so that a transport can
 * be put together around one arena mapped once per run; each input makes a
 * pool with no workers and a call of up to two batches (async_map, plain or
 * tpl results), posts them, writes the fuzzed "worker answer" into the
 * arena as if a worker had finished them, and collects with
 * sk_pool_get(call, 0) — poll, output, result_image, errors and the
 * engine's checks. Statuses must be documented codes, results of items
 * reported SK_OK must be what a decoder can produce, error records must be
 * terminated and belong to the call's items. A broken invariant calls
 * abort(); ASan/UBSan report memory errors.
 *
 * Input layout: byte 0 flags (bit 0: tpl results "s"; bit 1: the
 * descriptor is rewritten from the input; bit 2: batch 2 stays pending),
 * byte 1 items per batch (1..64), then for each batch: 16 descriptor
 * bytes, 4 bytes of failed count, 2 bytes n of result image bytes and n
 * bytes; then 4 bytes of n_errors, 2 bytes of spill length and the
 * spilled bytes, each batch's lead error record (its first failure), and
 * the rest as the call's error records.
 *
 * Built by `scons fuzz` (build/fuzz/fuzz_pool); run for a bounded time:
 *
 *   build/fuzz/fuzz_pool -max_total_time=30 -max_len=8192
 */
#include "pool/shm_transport.c"

#include "pool/call.c"

#include <stdio.h>

#define FUZZ_SPILL 65536 /* bytes of the memfd past the mapping */

struct input {
    const uint8_t *p;
    size_t left;
};

static size_t take(struct input *in, void *dst, size_t n)
{
    size_t k = n < in->left ? n : in->left;
    if (dst != NULL) {
        memset(dst, 0, n);
        memcpy(dst, in->p, k);
    }
    in->p += k;
    in->left -= k;
    return k;
}

static uint32_t take32(struct input *in)
{
    uint32_t v;
    take(in, &v, sizeof v);
    return v;
}

static uint16_t take16(struct input *in)
{
    uint16_t v;
    take(in, &v, sizeof v);
    return v;
}

static struct shm_arena arena;

static void arena_once(void)
{
    if (arena.base != NULL)
        return;
    if (arena_create(&arena) != SK_OK ||
        ftruncate(arena.memfd, (off_t)(arena.size + FUZZ_SPILL)) != 0)
        abort();
}

static int plain_fn(const void *item, void *result, const void *arg)
{
    (void)item;
    (void)result;
    (void)arg;
    return 0;
}

static struct shm_transport *transport_new(void)
{
    struct shm_transport *s = calloc(1, sizeof *s);
    if (s == NULL)
        abort();
    s->base.ops = &shm_ops;
    s->base.workers = 1;
    s->arena = arena;
    for (int i = 0; i < POOL_BATCHES; i++)
        s->free_batches[s->n_free++] = (uint32_t)(POOL_BATCHES - 1 - i);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena_once();
    struct input in = {data, size};
    uint8_t flags = 0, per = 1;
    take(&in, &flags, 1);
    take(&in, &per, 1);
    per = (uint8_t)(per % 64 + 1);
    bool tpl = flags & 1;

    memset(arena.h, 0, sizeof *arena.h);
    struct shm_transport *s = transport_new();
    sk_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        abort();
    p->config = (sk_pool_config){.workers = 1, .batch = per, .no_progress = true};
    p->t = &s->base;
    p->n_workers = 1;

    size_t n = 2 * (size_t)per;
    int32_t items[128] = {0};
    int64_t results[128] = {0};
    int status[128] = {0};
    sk_pool_job job = {.fn = plain_fn,
                       .item_size = sizeof(int32_t),
                       .result_size = tpl ? sizeof(char *) : sizeof(int64_t),
                       .result_format = tpl ? "s" : NULL};
    sk_pool_call *c = NULL;
    if (sk_pool_async_map(p, &job, items, n, results, status, &c) != SK_OK)
        abort();
    if (c->fifo_len != 2)
        abort();

    /* The fuzzed answer to each batch. */
    for (int b = 0; b < 2; b++) {
        uint32_t id = c->fifo[b];
        struct shm_batch *d = &arena.h->batches[id];
        uint8_t desc[16];
        take(&in, desc, sizeof desc);
        if (flags & 2) {
            memcpy(&d->call, desc, 4);
            memcpy(&d->first, desc + 4, 8);
            memcpy(&d->count, desc + 12, 4);
        }
        d->failed = take32(&in);
        size_t len = take16(&in);
        unsigned char *out = shm_batch_out(&arena, id);
        memset(out, 0, 65536); /* nothing left from the last input */
        take(&in, out, len);
        if (b == 0 || !(flags & 4))
            atomic_store(&d->state, SHM_BATCH_DONE);
    }
    atomic_store(&arena.h->jobs[c->slot].n_errors, take32(&in));
    size_t spill = take16(&in) % FUZZ_SPILL;
    static unsigned char buf[FUZZ_SPILL];
    memset(buf, 0, sizeof buf);
    take(&in, buf, spill);
    if (pwrite(arena.memfd, buf, sizeof buf, (off_t)arena.size) != (ssize_t)sizeof buf)
        abort();
    struct shm_error_record *r = shm_call_errors(&arena, (uint32_t)c->slot);
    size_t rec = 0;
    for (int b = 0; b < 2; b++) /* each batch's lead record, then the call's */
        take(&in, &arena.h->batch_errors[c->fifo[b]], sizeof(struct shm_error_record));
    for (; in.left > 0 && rec < 16; rec++)
        take(&in, &r[rec], sizeof r[rec]);

    int rc = sk_pool_get(c, 0);
    if (!(rc <= SK_OK && rc >= SK_ECORRUPT))
        abort();
    for (size_t i = 0; i < c->collected_items && i < n; i++) {
        if (!(status[i] <= SK_OK && status[i] >= SK_ECORRUPT))
            abort();
        const sk_error *e = sk_pool_item_error(c, i);
        if (e != NULL &&
            (e->item != (long)i || strnlen(e->message, sizeof e->message) == sizeof e->message))
            abort();
    }
    for (size_t i = 0; tpl && i < n; i++)
        free(((char **)(void *)results)[i]);

    p->terminated = true; /* no worker will finish what is pending */
    sk_pool_call_free(c);
    memset(r, 0, rec * sizeof *r);
    free(s);
    free(p);
    return 0;
}
