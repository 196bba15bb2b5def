/*
 * The worker pool.
 *
 * Workers are skproc processes of an internal class whose run hook loops
 * over batches, so a crash or a per-item timeout is handled by the same
 * supervisor as any process: it kills the worker at the item's deadline (the
 * worker restarts its section clock at every item) or sees it die, and
 * starts a fresh one, which finds in its slot the batch and item its
 * predecessor had in hand, charges the fault to that item (retrying it while
 * it has lives) and carries on.
 *
 * Work travels through one shared arena, a memfd mapped before the workers
 * are forked:
 *
 *   [header: queue counters, worker slots, batch descriptors, call table]
 *   [call regions: the job's argument bytes and its error records]
 *   [batch regions: items in the first half, status + results in the second]
 *
 * The parent takes a free batch region (warmest first), fills it and posts
 * its number in a queue (posted); workers claim posts in order with a
 * compare-and-swap on claimed, fill in results and mark them done. Both
 * sides sleep on futex words only when there is nothing to do, and are woken
 * only when someone sleeps, so a busy pool makes no system call per batch.
 * Only the pages a batch touches take memory; when no call is alive, the
 * warmest regions keep theirs up to POOL_WARM_BYTES and the rest are given
 * back.
 */
#include "os/clock.h"
#include "codec/message.h"
#include "core/runtime.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/result.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define POOL_BATCHES 1024 /* descriptors: batches in flight at most */
#define POOL_CALLS 256    /* calls alive at once */
#define POOL_MAX_WORKERS 512
#define POOL_HALF ((size_t)8 << 20)     /* each half of a batch region */
#define POOL_ARG_MAX ((size_t)64 << 10) /* argument bytes of a job */
#define POOL_ERRORS 1024                /* error records kept per call */
#define POOL_FORMAT_MAX 128
#define POOL_MAX_FIELDS 64
#define POOL_CALL_BATCHES 256       /* an automatic batch size keeps a call within this many */
#define SPILLED (UINT64_C(1) << 63) /* a result image past the mapping, in the memfd */
#define POOL_WAIT_SLICE_NS (100 * 1000 * 1000)
#define POOL_WARM_BYTES ((size_t)256 << 20) /* an idle pool keeps this much warm */

enum batch_state { BATCH_FREE, BATCH_READY, BATCH_CLAIMED, BATCH_DONE };
enum job_kind { JOB_FN, JOB_STAR, JOB_CLS };

struct pool_batch {
    _Atomic uint32_t state;
    uint32_t call;  /* index in the call table */
    uint64_t first; /* index of its first item in the call */
    uint32_t count;
    uint32_t failed; /* (worker) items that failed */
};

struct pool_error_record {
    uint64_t item;
    sk_error error;
};

/* What a worker needs to run a call's items; written by the parent before
 * the call's first batch is posted. */
struct pool_job_shared {
    uint32_t kind;
    sk_pool_fn fn;
    sk_pool_star_fn star;
    const sk_class *cls;
    uint64_t item_size, result_size;
    uint32_t item_tpl, result_tpl; /* travel as tpl images */
    char item_format[POOL_FORMAT_MAX];
    char result_format[POOL_FORMAT_MAX];
    uint32_t n_fields;
    uint64_t field_offsets[POOL_MAX_FIELDS];
    _Atomic uint32_t n_errors;
};

/* One cache line each: a worker writes `item` for every item it runs. */
struct pool_worker_slot {
    _Alignas(64) _Atomic uint32_t batch; /* descriptor + 1 of the batch in hand; 0: none */
    _Atomic uint32_t item;               /* its item in hand */
    uint32_t attempts;                   /* failed attempts of that item so far */
    _Atomic uint32_t recycled;           /* it left on purpose (max_tasks), not by a fault */
};

struct pool_header {
    _Atomic uint64_t posted;
    char pad0[56];
    _Atomic uint64_t claimed;
    char pad1[56];
    _Atomic uint32_t post_seq; /* workers sleep on it */
    _Atomic uint32_t idle_workers;
    _Atomic uint32_t done_seq; /* the parent sleeps on it */
    _Atomic uint32_t parent_waiting;
    _Atomic uint32_t closing;
    _Atomic uint32_t posting_calls; /* calls that may still post */
    _Atomic long done, failed, claimed_items;
    _Atomic uint64_t spill_top;           /* bytes of result images spilled past the mapping */
    _Atomic uint32_t queue[POOL_BATCHES]; /* posted descriptors, in posting order */
    double item_timeout;
    int lives;
    long max_tasks;
    struct pool_worker_slot workers[POOL_MAX_WORKERS];
    struct pool_batch batches[POOL_BATCHES];
    struct pool_job_shared jobs[POOL_CALLS];
};

struct pool_worker {
    sk_process base;
    struct sk_pool *pool;
    int index;
    long tasks; /* items done by this incarnation */
};

struct sk_pool {
    sk_pool_config config;
    int n_workers;
    struct pool_worker *workers;
    int memfd;
    unsigned char *arena;
    size_t arena_size;
    struct pool_header *h;
    size_t calls_offset, batches_offset;
    struct sk_pool_call *live[POOL_CALLS]; /* the calls alive, by slot */
    uint32_t free_batches[POOL_BATCHES];   /* a stack: the warmest on top */
    int n_free;
    size_t touched[POOL_BATCHES]; /* bytes written since its pages were last given back */
    bool closed, terminated;
};

struct sk_pool_call {
    sk_pool *pool;
    int slot;
    struct pool_job_shared *job;
    const sk_pool_job *user_job;
    const unsigned char *items;
    size_t n; /* SIZE_MAX for a stream until the producer ends */
    sk_pool_producer produce;
    void *produce_state;
    unsigned char *produce_item;
    unsigned char *results;
    int *status;
    bool iterator, ordered, producer_done, posting_counted, produced_pending;
    size_t batch;
    uint64_t posted_items, collected_items;
    uint32_t fifo[POOL_BATCHES]; /* this call's batches in flight, in item order */
    int fifo_len;
    int cur; /* iterator: the batch being yielded, or -1 */
    uint32_t cur_pos;
    uint64_t failed;
    sk_error first_error;
    bool has_first_error;
    int first_code;
};

/* ---------------------------------------------------------------- arena */

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static size_t page_round(size_t n)
{
    return (n + 4095) / 4096 * 4096;
}

static size_t call_region_size(void)
{
    return page_round(POOL_ARG_MAX + POOL_ERRORS * sizeof(struct pool_error_record));
}

static unsigned char *call_arg(const sk_pool *p, int slot)
{
    return p->arena + p->calls_offset + (size_t)slot * call_region_size();
}

static struct pool_error_record *call_errors(const sk_pool *p, int slot)
{
    return (struct pool_error_record *)(void *)(call_arg(p, slot) + POOL_ARG_MAX);
}

static unsigned char *batch_in(const sk_pool *p, uint32_t d)
{
    return p->arena + p->batches_offset + (size_t)d * 2 * POOL_HALF;
}

static unsigned char *batch_out(const sk_pool *p, uint32_t d)
{
    return batch_in(p, d) + POOL_HALF;
}

/* The output half: one status per item, then the results (raw records, or
 * an index of {offset, length} and the images). */
static int32_t *out_status(const sk_pool *p, uint32_t d)
{
    return (int32_t *)(void *)batch_out(p, d);
}

static size_t out_results_at(uint32_t count)
{
    return ((size_t)count * sizeof(int32_t) + 15) & ~(size_t)15;
}

static uint64_t *out_index(const sk_pool *p, uint32_t d, uint32_t count)
{
    return (uint64_t *)(void *)(batch_out(p, d) + out_results_at(count));
}

static int arena_create(sk_pool *p)
{
    size_t header = page_round(sizeof(struct pool_header));
    p->calls_offset = header;
    p->batches_offset = header + POOL_CALLS * call_region_size();
    p->arena_size = p->batches_offset + (size_t)POOL_BATCHES * 2 * POOL_HALF;
    p->memfd = memfd_create("skproc-pool", MFD_CLOEXEC);
    if (p->memfd < 0)
        return SK_ESYS;
    if (ftruncate(p->memfd, (off_t)p->arena_size) != 0)
        return SK_ESYS;
    void *base =
        mmap(NULL, p->arena_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, p->memfd, 0);
    if (base == MAP_FAILED)
        return SK_ESYS;
    p->arena = base;
    p->h = base;
    return SK_OK;
}

/* ------------------------------------------------------ values in batches */

static int unpack_one(const void *img, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_unpack(img, len, fmt, ap);
    va_end(ap);
    return rc;
}

struct bump {
    unsigned char *base;
    size_t used, cap;
};

static int bump_reserve(void *ctx, size_t size, void **dst)
{
    struct bump *b = ctx;
    if (size > b->cap - b->used)
        return SK_EFULL;
    *dst = b->base + b->used;
    b->used += size;
    return SK_OK;
}

/* Encodes one record; the value's address is the one variadic argument. */
static int encode_record(const char *fmt, sk_msg_reserve_fn reserve, void *ctx, size_t *len, ...)
{
    va_list ap;
    va_start(ap, len);
    int rc = sk_msg_encode(fmt, ap, reserve, ctx, len);
    va_end(ap);
    return rc;
}

static int encode_one(struct bump *b, const char *fmt, size_t *len, const void *value)
{
    return encode_record(fmt, bump_reserve, b, len, value);
}

/* -------------------------------------------------------------- workers */

static void pool_record_error(sk_pool *p, uint32_t call, uint64_t item, const sk_error *e)
{
    struct pool_job_shared *job = &p->h->jobs[call];
    uint32_t at = atomic_fetch_add(&job->n_errors, 1);
    if (at < POOL_ERRORS) {
        struct pool_error_record *r = &call_errors(p, (int)call)[at];
        r->item = item;
        r->error = *e;
        r->error.item = (long)item;
    }
}

/* Stores a result image that did not fit in its batch's half: past the
 * mapping, through the memfd, where the parent preads it. */
static int result_spill(sk_pool *p, const void *img, size_t len, uint64_t *index)
{
    uint64_t at = atomic_fetch_add(&p->h->spill_top, len);
    const unsigned char *b = img;
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(p->memfd, b + done, len - done, (off_t)(p->arena_size + at + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SK_ESYS;
        done += (size_t)n;
    }
    index[0] = at | SPILLED;
    index[1] = len;
    return SK_OK;
}

static int reserve_heap(void *ctx, size_t size, void **dst)
{
    void **buf = ctx;
    if ((*buf = malloc(size ? size : 1)) == NULL)
        return SK_ENOMEM;
    *dst = *buf;
    return SK_OK;
}

/* Encodes a result record into the batch, or spills it when the batch's
 * half is full. */
static int result_store(sk_pool *p, struct bump *out, const char *fmt, void *value, uint64_t *index)
{
    size_t len;
    unsigned char *at = out->base + out->used;
    int rc = encode_one(out, fmt, &len, value);
    if (rc == SK_OK) {
        index[0] = (uint64_t)(at - out->base);
        index[1] = len;
        return SK_OK;
    }
    if (rc != SK_EFULL)
        return rc;
    void *heap = NULL;
    rc = encode_record(fmt, reserve_heap, &heap, &len, value);
    if (rc == SK_OK)
        rc = result_spill(p, heap, len, index);
    free(heap);
    return rc;
}

/* A process class per item: a process of its own, started from here. */
static int run_class_item(sk_pool *p, const struct pool_job_shared *job, const void *item,
                          sk_error *err, struct bump *out, uint64_t *index)
{
    const sk_class *cls = job->cls;
    sk_process *obj = calloc(1, cls->size);
    if (obj == NULL)
        return SK_ENOMEM;
    int rc = sk_init(obj, cls);
    if (rc == SK_OK && cls->init != NULL && (rc = cls->init(obj, item)) != 0) {
        char cause[64];
        snprintf(cause, sizeof cause, "init returned %d", rc);
        sk_error_set(err, SK_PROCESS_ERROR, SK_PRERUN, 0, rc, cause);
        sk_release(obj);
        free(obj);
        return SK_EPROCESS;
    }
    if (rc == SK_OK)
        rc = sk_start(obj);
    if (rc == SK_OK)
        rc = sk_wait(obj, -1);
    const sk_error *failure = sk_error_of(obj);
    if (rc == SK_OK && failure != NULL) {
        *err = *failure;
        rc = SK_EPROCESS;
    } else if (rc == SK_OK) {
        const void *img;
        size_t len;
        rc = sk_result_image(obj, &img, &len);
        void *dst;
        if (rc == SK_OK && bump_reserve(out, len, &dst) == SK_OK) {
            memcpy(dst, img, len);
            index[0] = (uint64_t)((unsigned char *)dst - out->base);
            index[1] = len;
        } else if (rc == SK_OK) {
            rc = result_spill(p, img, len, index);
        }
    }
    if (rc != SK_OK && rc != SK_EPROCESS) {
        sk_error_set(err, SK_PROCESS_ERROR, SK_RUN, 0, rc, sk_strerror(rc));
        rc = SK_EPROCESS;
    }
    sk_release(obj);
    free(obj);
    return rc;
}

/* The error of an item whose function returned rc (a soft error). */
static void item_function_error(sk_error *err, int rc)
{
    char cause[64];
    snprintf(cause, sizeof cause, "the item function returned %d", rc);
    sk_error_set(err, SK_RUN_ERROR, SK_RUN, 0, rc, cause);
}

/* Runs item k of a batch once: SK_OK, or SK_EPROCESS with *err filled. */
static int run_item(sk_pool *p, const struct pool_job_shared *job, uint32_t call, uint32_t d,
                    uint32_t count, uint32_t k, struct bump *out, sk_error *err)
{
    const unsigned char *in = batch_in(p, d);
    unsigned char item_buf[job->item_tpl ? job->item_size : 1];
    const void *item;
    if (job->item_tpl) {
        const uint64_t *offs = (const uint64_t *)(const void *)in;
        size_t len = (size_t)(offs[k + 1] - offs[k]);
        if (len == 0) { /* the parent could not encode it */
            sk_error_set(err, SK_PROCESS_ERROR, SK_RUN, 0, SK_EINVAL,
                         "the item's image does not fit in a batch (8 MiB)");
            return SK_EPROCESS;
        }
        memset(item_buf, 0, job->item_size);
        int rc = unpack_one(in + offs[k], len, job->item_format, item_buf);
        if (rc != SK_OK) {
            sk_error_set(err, SK_PROCESS_ERROR, SK_RUN, 0, rc, "the item could not be decoded");
            return SK_EPROCESS;
        }
        item = item_buf;
    } else {
        item = in + (size_t)k * job->item_size;
    }
    const void *arg = call_arg(p, (int)call);
    unsigned char *raw_result = batch_out(p, d) + out_results_at(count) + k * job->result_size;
    unsigned char local_result[job->result_tpl ? job->result_size : 1];
    void *result = job->result_tpl ? (void *)local_result : (void *)raw_result;
    memset(result, 0, job->result_size);
    uint64_t *index = out_index(p, d, count) + 2 * (size_t)k;
    int rc;
    if (job->kind == JOB_CLS) {
        rc = run_class_item(p, job, item, err, out, index);
    } else {
        if (job->kind == JOB_FN) {
            rc = job->fn(item, result, arg);
        } else {
            void *fields[POOL_MAX_FIELDS];
            for (uint32_t f = 0; f < job->n_fields; f++)
                fields[f] = (unsigned char *)item + job->field_offsets[f];
            rc = job->star(fields, result, arg);
        }
        if (rc != 0) {
            item_function_error(err, rc);
            rc = SK_EPROCESS;
        } else if (job->result_tpl) {
            rc = result_store(p, out, job->result_format, result, index);
            if (rc != SK_OK) {
                sk_error_set(err, SK_RESULT_ERROR, SK_RESULT, 0, rc,
                             "the result could not be encoded");
                rc = SK_EPROCESS;
            }
        }
        if (job->result_tpl)
            sk_msg_release_one(job->result_format, result);
    }
    if (job->item_tpl)
        sk_msg_release_one(job->item_format, item_buf);
    return rc;
}

/* Leaves before item k when this worker has done its max_tasks: a fresh
 * one takes over in the same slot and goes on from k, no fault counted. */
static void worker_check_recycle(struct pool_worker *w, uint32_t k)
{
    struct pool_header *h = w->pool->h;
    if (h->max_tasks <= 0 || w->tasks < h->max_tasks)
        return;
    struct pool_worker_slot *slot = &h->workers[w->index];
    atomic_store(&slot->item, k);
    atomic_store(&slot->recycled, 1);
    sk_worker_recycle(&w->base);
}

/* Item k failed for good (or once more, if it has lives left): true when
 * it is to be tried again. */
static bool item_failed(struct pool_worker *w, struct pool_batch *b, uint32_t k, sk_error *err,
                        bool class_item)
{
    sk_pool *p = w->pool;
    struct pool_worker_slot *slot = &p->h->workers[w->index];
    if (++slot->attempts < (uint32_t)p->h->lives)
        return true;
    if (!class_item) /* a class item's error tells its own lives */
        err->lives_spent = (int)slot->attempts;
    out_status(p, (uint32_t)(b - p->h->batches))[k] = SK_EPROCESS;
    b->failed++;
    pool_record_error(p, b->call, b->first + k, err);
    slot->attempts = 0;
    return false;
}

/* A plain function over plain records, items from k on, while they
 * succeed and the max_tasks budget lasts: nothing in the loop but the call
 * and the note of which item is in hand (for a crash). Returns the first
 * item not done. */
static uint32_t worker_run_plain(struct pool_worker *w, const struct pool_batch *b, uint32_t d,
                                 uint32_t k, int *failed_rc)
{
    sk_pool *p = w->pool;
    const struct pool_job_shared *job = &p->h->jobs[b->call];
    struct pool_worker_slot *slot = &p->h->workers[w->index];
    uint32_t end = b->count;
    if (p->h->max_tasks > 0 && (long)(end - k) > p->h->max_tasks - w->tasks)
        end = k + (uint32_t)(p->h->max_tasks - w->tasks);
    size_t is = job->item_size, rs = job->result_size;
    const unsigned char *in = batch_in(p, d);
    unsigned char *results = batch_out(p, d) + out_results_at(b->count);
    const void *arg = call_arg(p, (int)b->call);
    sk_pool_fn fn = job->fn;
    memset(results + (size_t)k * rs, 0, (size_t)(end - k) * rs);
    uint32_t i = k;
    for (; i < end; i++) {
        atomic_store_explicit(&slot->item, i, memory_order_relaxed);
        if ((*failed_rc = fn(in + (size_t)i * is, results + (size_t)i * rs, arg)) != 0)
            break;
    }
    w->tasks += i - k;
    return i;
}

/* Item k until it succeeds or runs out of lives. */
static void worker_run_one(struct pool_worker *w, struct pool_batch *b, uint32_t d, uint32_t k,
                           struct bump *out)
{
    sk_pool *p = w->pool;
    const struct pool_job_shared *job = &p->h->jobs[b->call];
    struct pool_worker_slot *slot = &p->h->workers[w->index];
    atomic_store_explicit(&slot->item, k, memory_order_relaxed);
    for (;;) {
        if (p->h->item_timeout > 0)
            sk_section_restart(&w->base);
        sk_error err;
        if (run_item(p, job, b->call, d, b->count, k, out, &err) == SK_OK)
            break;
        if (!item_failed(w, b, k, &err, job->kind == JOB_CLS))
            break;
    }
    slot->attempts = 0;
    w->tasks++;
}

/* Items from..count of batch d, each tried while it has lives. */
static void worker_run_batch(struct pool_worker *w, uint32_t d, uint32_t from)
{
    sk_pool *p = w->pool;
    struct pool_header *h = p->h;
    struct pool_batch *b = &h->batches[d];
    struct pool_job_shared *job = &h->jobs[b->call];
    int32_t *status = out_status(p, d);
    size_t images_at = out_results_at(b->count) + 2 * sizeof(uint64_t) * b->count;
    struct bump out = {.base = batch_out(p, d), .used = images_at, .cap = POOL_HALF};
    if (job->result_tpl && from > 0) { /* after a restart: past what was written */
        const uint64_t *index = out_index(p, d, b->count);
        for (uint32_t k = 0; k < from; k++)
            if (status[k] == SK_OK && !(index[2 * k] & SPILLED) &&
                index[2 * k] + index[2 * k + 1] > out.used)
                out.used = index[2 * k] + index[2 * k + 1];
    }
    _Static_assert(SK_OK == 0, "statuses are cleared to SK_OK with memset");
    memset(status + from, 0, (size_t)(b->count - from) * sizeof *status);
    bool plain = job->kind == JOB_FN && !job->item_tpl && !job->result_tpl && h->item_timeout <= 0;
    for (uint32_t k = from; k < b->count;) {
        worker_check_recycle(w, k);
        if (plain) {
            int rc = 0;
            uint32_t next = worker_run_plain(w, b, d, k, &rc);
            if (next == b->count || rc == 0) {
                k = next; /* all done, or the max_tasks budget is spent */
                continue;
            }
            /* Item `next` failed once: that attempt counts; retry while it
             * has lives. */
            sk_error err;
            item_function_error(&err, rc);
            if (item_failed(w, b, next, &err, false))
                worker_run_one(w, b, d, next, &out);
            else
                w->tasks++;
            k = next + 1;
            continue;
        }
        worker_run_one(w, b, d, k++, &out);
    }
}

static void worker_finish_batch(struct pool_worker *w, uint32_t d)
{
    struct pool_header *h = w->pool->h;
    struct pool_batch *b = &h->batches[d];
    atomic_store(&h->workers[w->index].batch, 0);
    atomic_fetch_add(&h->done, b->count);
    atomic_fetch_add(&h->failed, b->failed);
    atomic_store_explicit(&b->state, BATCH_DONE, memory_order_release);
    atomic_fetch_add(&h->done_seq, 1);
    if (atomic_load(&h->parent_waiting))
        futex(&h->done_seq, FUTEX_WAKE, INT_MAX, NULL);
}

/* A fresh worker whose predecessor left with an item in hand: after
 * max_tasks it goes on from there; after a crash or a timeout that item
 * takes the fault (or is tried again while it has lives). */
static void worker_recover(struct pool_worker *w)
{
    sk_pool *p = w->pool;
    struct pool_header *h = p->h;
    struct pool_worker_slot *slot = &h->workers[w->index];
    uint32_t held = atomic_load(&slot->batch);
    if (held == 0) {
        atomic_store(&slot->recycled, 0);
        return;
    }
    uint32_t d = held - 1, k = atomic_load(&slot->item);
    struct pool_batch *b = &h->batches[d];
    uint32_t from = k;
    if (atomic_exchange(&slot->recycled, 0) == 0) {
        const sk_error *fault = sk_worker_last_fault(&w->base);
        sk_error err;
        if (fault != NULL)
            err = *fault;
        else
            sk_error_set(&err, SK_CRASH_ERROR, SK_RUN, 0, SK_EPROCESS, "the worker died");
        err.run = 0;
        if (!item_failed(w, b, k, &err, false))
            from = k + 1;
    }
    worker_run_batch(w, d, from);
    worker_finish_batch(w, d);
}

/* Takes the oldest posted batch. The queue entry is read before the
 * compare-and-swap: once post c is ours, the parent may wrap around the
 * queue and reuse its entry (the batches in between may all be done and
 * their slots free again), but while c is unclaimed it cannot, because c
 * and every later unclaimed post each hold a slot. */
static bool worker_claim(struct pool_header *h, uint32_t *d)
{
    uint64_t c = atomic_load(&h->claimed);
    while (c < atomic_load_explicit(&h->posted, memory_order_acquire)) {
        uint32_t entry = atomic_load_explicit(&h->queue[c % POOL_BATCHES], memory_order_acquire);
        if (atomic_compare_exchange_weak(&h->claimed, &c, c + 1)) {
            *d = entry;
            return true;
        }
    }
    return false;
}

static int pool_worker_run(sk_process *self)
{
    struct pool_worker *w = SK_CONTAINER_OF(self, struct pool_worker, base);
    struct pool_header *h = w->pool->h;
    struct pool_worker_slot *slot = &h->workers[w->index];
    worker_recover(w);
    for (;;) {
        worker_check_recycle(w, 0);
        uint32_t d;
        if (worker_claim(h, &d)) {
            struct pool_batch *b = &h->batches[d];
            atomic_store(&b->state, BATCH_CLAIMED);
            slot->attempts = 0;
            atomic_store(&slot->item, 0);
            atomic_store_explicit(&slot->batch, d + 1, memory_order_release);
            atomic_fetch_add(&h->claimed_items, b->count);
            worker_run_batch(w, d, 0);
            worker_finish_batch(w, d);
            continue;
        }
        if (atomic_load(&h->closing) && atomic_load(&h->posting_calls) == 0 &&
            atomic_load(&h->claimed) == atomic_load(&h->posted)) {
            sk_stop(self);
            return 0;
        }
        /* Nothing to do: leave the section so that the item timeout does
         * not run while waiting, and sleep until a batch is posted. */
        uint32_t seen = atomic_load(&h->post_seq);
        atomic_fetch_add(&h->idle_workers, 1);
        if (atomic_load(&h->claimed) == atomic_load(&h->posted) && !atomic_load(&h->closing)) {
            sk_section_idle(self);
            futex(&h->post_seq, FUTEX_WAIT, seen, NULL);
            sk_section_resume(self);
        }
        atomic_fetch_sub(&h->idle_workers, 1);
    }
}

static const sk_class pool_worker_class = {.name = "skproc-pool-worker", .run = pool_worker_run};

static int worker_start(sk_pool *p, int i)
{
    struct pool_worker *w = &p->workers[i];
    int rc = sk_init(&w->base, &pool_worker_class);
    if (rc != SK_OK)
        return rc;
    w->pool = p;
    w->index = i;
    w->tasks = 0;
    w->base.config.lives = INT_MAX; /* restarted after every fault */
    w->base.config.timeouts.run = p->config.item_timeout;
    w->base.config.capacity = 4096; /* the channel is not used */
    w->base.config.max_message = 4096;
    rc = sk_start(&w->base);
    if (rc != SK_OK)
        sk_release(&w->base);
    return rc;
}

/* A worker that ended while the pool is open (its supervisor could not
 * fork, or was killed from outside) is started again in the same slot, so
 * the batch it held is picked up. */
static void pool_revive_workers(sk_pool *p)
{
    if (p->terminated)
        return;
    for (int i = 0; i < p->n_workers; i++) {
        struct pool_worker *w = &p->workers[i];
        if (w->base.rt != NULL && sk_alive(&w->base))
            continue;
        if (w->base.rt != NULL) {
            sk_wait(&w->base, -1);
            sk_release(&w->base);
        }
        if (!atomic_load(&p->h->closing))
            worker_start(p, i);
    }
}

/* ---------------------------------------------------------------- pools */

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int sk_pool_create(sk_pool **out, const sk_pool_config *cfg)
{
    if (out == NULL)
        return SK_EINVAL;
    *out = NULL;
    sk_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return SK_ENOMEM;
    if (cfg != NULL)
        p->config = *cfg;
    if (p->config.workers <= 0)
        p->config.workers = online_cpus();
    if (p->config.workers > POOL_MAX_WORKERS)
        p->config.workers = POOL_MAX_WORKERS;
    if (!(p->config.item_timeout > 0))
        p->config.item_timeout = 0;
    if (p->config.lives <= 0)
        p->config.lives = 1;
    if (p->config.max_tasks < 0)
        p->config.max_tasks = 0;
    if (p->config.batch < 0)
        p->config.batch = 0;
    p->memfd = -1;
    for (int i = 0; i < POOL_BATCHES; i++) /* slot 0 on top: the first used */
        p->free_batches[p->n_free++] = (uint32_t)(POOL_BATCHES - 1 - i);
    int rc = arena_create(p);
    if (rc == SK_OK) {
        p->h->item_timeout = p->config.item_timeout;
        p->h->lives = p->config.lives;
        p->h->max_tasks = p->config.max_tasks;
        p->workers = calloc((size_t)p->config.workers, sizeof *p->workers);
        rc = p->workers != NULL ? SK_OK : SK_ENOMEM;
    }
    for (int i = 0; rc == SK_OK && i < p->config.workers; i++) {
        rc = worker_start(p, i);
        if (rc == SK_OK)
            p->n_workers = i + 1;
    }
    if (rc != SK_OK) {
        sk_pool_release(p);
        return rc;
    }
    *out = p;
    return SK_OK;
}

static void wake_workers(sk_pool *p)
{
    atomic_fetch_add(&p->h->post_seq, 1);
    futex(&p->h->post_seq, FUTEX_WAKE, INT_MAX, NULL);
}

int sk_pool_close(sk_pool *p)
{
    if (p == NULL)
        return SK_EINVAL;
    p->closed = true;
    atomic_store(&p->h->closing, 1);
    wake_workers(p);
    return SK_OK;
}

int sk_pool_terminate(sk_pool *p)
{
    if (p == NULL)
        return SK_EINVAL;
    p->terminated = p->closed = true;
    atomic_store(&p->h->closing, 1);
    for (int i = 0; i < p->n_workers; i++)
        if (p->workers[i].base.rt != NULL)
            sk_kill(&p->workers[i].base);
    return SK_OK;
}

void sk_pool_release(sk_pool *p)
{
    if (p == NULL)
        return;
    if (p->h != NULL) {
        atomic_store(&p->h->closing, 1);
        wake_workers(p);
    }
    for (int i = 0; i < p->n_workers; i++)
        sk_release(&p->workers[i].base); /* kills and reaps */
    free(p->workers);
    if (p->arena != NULL)
        munmap(p->arena, p->arena_size);
    if (p->memfd >= 0)
        close(p->memfd);
    free(p);
}

void sk_pool_counters_of(const sk_pool *p, sk_pool_counters *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (p == NULL)
        return;
    out->done = atomic_load(&p->h->done);
    out->failed = atomic_load(&p->h->failed);
    out->in_flight = atomic_load(&p->h->claimed_items) - out->done;
}

/* ---------------------------------------------------------------- calls */

static bool has_pointers(const char *fmt)
{
    return fmt != NULL && strpbrk(fmt, "sB") != NULL;
}

static int job_check(const sk_pool_job *job)
{
    if (job == NULL)
        return SK_EINVAL;
    int forms = (job->fn != NULL) + (job->star != NULL) + (job->cls != NULL);
    if (forms != 1 || job->item_size == 0 || job->arg_size > POOL_ARG_MAX ||
        (job->arg_size > 0 && job->arg == NULL))
        return SK_EINVAL;
    if (job->star != NULL && job->item_format == NULL)
        return SK_EINVAL;
    if (job->cls != NULL && (job->result_format == NULL || job->cls->run == NULL ||
                             job->cls->size < sizeof(sk_process)))
        return SK_EINVAL;
    const char *fmts[2] = {job->item_format, job->result_format};
    size_t sizes[2] = {job->item_size, job->result_size};
    for (int i = 0; i < 2; i++) {
        if (fmts[i] == NULL)
            continue;
        if (strlen(fmts[i]) >= POOL_FORMAT_MAX || sk_msg_check_one(fmts[i], sizes[i]) != SK_OK)
            return SK_EINVAL;
    }
    if (job->item_size > POOL_HALF / 2 || job->result_size > POOL_HALF / 2)
        return SK_EINVAL;
    return SK_OK;
}

static int call_slot_take(sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++)
        if (p->live[i] == NULL)
            return i;
    return -1;
}

/* Items per batch: enough batches for every worker to get several (load
 * balance), few enough that a call fits in POOL_CALL_BATCHES of them, so it
 * is all handed out at once and goes on without the caller; and no more
 * than a batch's half holds. */
static size_t choose_batch(const sk_pool *p, const sk_pool_job *job, size_t n)
{
    size_t batch = (size_t)p->config.batch;
    if (batch == 0 && job->cls != NULL) {
        batch = 1; /* each item is a whole process: balance beats overhead */
    } else if (batch == 0 && n == SIZE_MAX) {
        batch = 256;
    } else if (batch == 0) {
        batch = n / ((size_t)p->n_workers * 16);
        size_t fit = (n + POOL_CALL_BATCHES - 1) / POOL_CALL_BATCHES;
        if (batch < fit)
            batch = fit;
    }
    if (batch < 1)
        batch = 1;
    size_t per_item_out = sizeof(int32_t) + 2 * sizeof(uint64_t) + job->result_size;
    size_t room = (POOL_HALF - 64) / per_item_out;
    size_t per_item_in = has_pointers(job->item_format) ? sizeof(uint64_t) + 16 : job->item_size;
    if (room > (POOL_HALF - 64) / per_item_in)
        room = (POOL_HALF - 64) / per_item_in;
    return batch < room ? batch : room;
}

static int call_create(sk_pool *p, const sk_pool_job *job, sk_pool_call **out)
{
    int rc = job_check(job);
    if (rc != SK_OK)
        return rc;
    if (p->closed)
        return SK_ESTATE;
    sk_pool_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return SK_ENOMEM;
    c->slot = call_slot_take(p);
    if (c->slot < 0) {
        free(c);
        return SK_EFULL;
    }
    c->pool = p;
    c->user_job = job;
    c->cur = -1;
    struct pool_job_shared *js = &p->h->jobs[c->slot];
    memset(js, 0, sizeof *js);
    js->kind = job->fn != NULL ? JOB_FN : job->star != NULL ? JOB_STAR : JOB_CLS;
    js->fn = job->fn;
    js->star = job->star;
    js->cls = job->cls;
    js->item_size = job->item_size;
    js->result_size = job->result_size;
    js->item_tpl = has_pointers(job->item_format);
    js->result_tpl = job->cls != NULL || has_pointers(job->result_format);
    if (job->item_format != NULL)
        snprintf(js->item_format, sizeof js->item_format, "%s", job->item_format);
    if (job->result_format != NULL)
        snprintf(js->result_format, sizeof js->result_format, "%s", job->result_format);
    if (job->star != NULL) {
        size_t offsets[POOL_MAX_FIELDS];
        int n = sk_msg_struct_fields(job->item_format, offsets, POOL_MAX_FIELDS);
        if (n <= 0) {
            free(c);
            return SK_EINVAL;
        }
        js->n_fields = (uint32_t)n;
        for (int f = 0; f < n; f++)
            js->field_offsets[f] = offsets[f];
    }
    if (job->arg_size > 0)
        memcpy(call_arg(p, c->slot), job->arg, job->arg_size);
    c->job = js;
    p->live[c->slot] = c;
    atomic_fetch_add(&p->h->posting_calls, 1);
    c->posting_counted = true;
    *out = c;
    return SK_OK;
}

static void call_done_posting(sk_pool_call *c)
{
    if (c->posting_counted) {
        c->posting_counted = false;
        atomic_fetch_sub(&c->pool->h->posting_calls, 1);
    }
}

static bool call_all_posted(const sk_pool_call *c)
{
    return c->produce != NULL ? c->producer_done : c->posted_items >= c->n;
}

/* Fills batch d with up to c->batch items from the array or the producer.
 * Returns how many (0: none left). An item whose image does not fit even in
 * an empty batch gets an empty entry, which the worker fails with
 * SK_EINVAL; one that only does not fit any more waits for the next batch. */
static long batch_fill(sk_pool_call *c, uint32_t d)
{
    sk_pool *p = c->pool;
    const struct pool_job_shared *js = c->job;
    unsigned char *in = batch_in(p, d);
    size_t max = c->batch;
    if (c->produce == NULL && c->n - c->posted_items < max)
        max = c->n - c->posted_items;
    if (c->produce == NULL && !js->item_tpl) { /* plain records: one copy */
        memcpy(in, c->items + c->posted_items * js->item_size, max * js->item_size);
        return (long)max;
    }
    struct bump b = {.base = in, .used = (max + 1) * sizeof(uint64_t), .cap = POOL_HALF};
    uint64_t *offs = (uint64_t *)(void *)in;
    size_t k = 0;
    for (; k < max; k++) {
        const unsigned char *item;
        if (c->produce != NULL) {
            unsigned char *dst = js->item_tpl ? c->produce_item : in + k * js->item_size;
            if (!c->produced_pending) {
                memset(dst, 0, js->item_size);
                if (c->produce(c->produce_state, dst) <= 0) {
                    c->producer_done = true;
                    break;
                }
            }
            c->produced_pending = false;
            item = dst;
        } else {
            item = c->items + (c->posted_items + k) * js->item_size;
        }
        if (!js->item_tpl)
            continue;
        size_t len;
        offs[k] = b.used;
        int rc = encode_one(&b, js->item_format, &len, item);
        if (rc == SK_EFULL && k > 0) {
            c->produced_pending = c->produce != NULL; /* first in the next batch */
            break;
        }
        if (rc != SK_OK)
            b.used = offs[k]; /* an empty entry: the item fails on its own */
        offs[k + 1] = b.used;
    }
    return (long)k;
}

static uint32_t batch_take(sk_pool *p)
{
    return p->free_batches[--p->n_free];
}

/* A collected batch goes back on top of the free stack: the next batch
 * posted reuses its pages while they are warm. */
static void batch_free(sk_pool *p, uint32_t d)
{
    struct pool_batch *b = &p->h->batches[d];
    const struct pool_job_shared *js = &p->h->jobs[b->call];
    size_t bytes = (size_t)b->count * (js->item_size + js->result_size + sizeof(int32_t));
    if (js->item_tpl || js->result_tpl)
        bytes = 2 * POOL_HALF; /* images: assume the worst */
    if (bytes > p->touched[d])
        p->touched[d] = bytes;
    atomic_store_explicit(&b->state, BATCH_FREE, memory_order_release);
    p->free_batches[p->n_free++] = d;
}

/* Posts as many batches as free slots and the window allow. */
static int call_post(sk_pool_call *c, int window)
{
    sk_pool *p = c->pool;
    struct pool_header *h = p->h;
    bool posted_any = false;
    while (!call_all_posted(c) && c->fifo_len < window && p->n_free > 0) {
        uint32_t d = batch_take(p);
        long count = batch_fill(c, d);
        if (count <= 0) {
            batch_free(p, d);
            break;
        }
        struct pool_batch *b = &h->batches[d];
        b->call = (uint32_t)c->slot;
        b->first = c->posted_items;
        b->count = (uint32_t)count;
        b->failed = 0;
        atomic_store_explicit(&b->state, BATCH_READY, memory_order_release);
        uint64_t k = atomic_load(&h->posted);
        atomic_store_explicit(&h->queue[k % POOL_BATCHES], d, memory_order_release);
        atomic_store_explicit(&h->posted, k + 1, memory_order_release);
        c->posted_items += (uint64_t)count;
        c->fifo[c->fifo_len++] = d;
        posted_any = true;
    }
    if (call_all_posted(c))
        call_done_posting(c);
    if (posted_any) {
        atomic_fetch_add(&h->post_seq, 1);
        if (atomic_load(&h->idle_workers) > 0)
            futex(&h->post_seq, FUTEX_WAKE, INT_MAX, NULL);
    }
    return SK_OK;
}

static void call_collect(sk_pool_call *c);
static void pool_progress(sk_pool *p);

/* Sleeps until some batch is done or the deadline passes; looks after the
 * workers every slice. SK_ETIMEDOUT, SK_EKILLED or SK_OK (look again). */
static int pool_wait_done(sk_pool *p, uint32_t seen, int64_t deadline)
{
    struct pool_header *h = p->h;
    if (p->terminated)
        return SK_EKILLED;
    int64_t now = sk_now_ns();
    if (deadline <= now)
        return SK_ETIMEDOUT;
    int64_t wait = deadline - now;
    if (wait > POOL_WAIT_SLICE_NS)
        wait = POOL_WAIT_SLICE_NS;
    struct timespec ts = sk_ns_to_timespec(wait);
    atomic_store(&h->parent_waiting, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&h->done_seq) == seen)
        futex(&h->done_seq, FUTEX_WAIT, seen, &ts);
    atomic_store(&h->parent_waiting, 0);
    pool_revive_workers(p);
    pool_progress(p);
    return SK_OK;
}

static void call_note_failure(sk_pool_call *c, uint64_t item, int code)
{
    c->failed++;
    if (c->has_first_error && c->first_error.item <= (long)item)
        return;
    const sk_error *e = sk_pool_item_error(c, item);
    if (e != NULL) {
        c->first_error = *e;
    } else {
        sk_error_set(&c->first_error, SK_PROCESS_ERROR, SK_RUN, 0, code, sk_strerror(code));
        c->first_error.item = (long)item;
    }
    c->has_first_error = true;
    c->first_code = code;
}

/* One result of batch d into dst (result_size bytes). */
static int batch_result(sk_pool_call *c, uint32_t d, uint32_t k, void *dst)
{
    sk_pool *p = c->pool;
    const struct pool_job_shared *js = c->job;
    const struct pool_batch *b = &p->h->batches[d];
    int32_t code = out_status(p, d)[k];
    if (code != SK_OK) {
        call_note_failure(c, b->first + k, code);
        return code;
    }
    if (js->result_size == 0 || dst == NULL)
        return SK_OK;
    const unsigned char *results = batch_out(p, d) + out_results_at(b->count);
    if (!js->result_tpl) {
        memcpy(dst, results + (size_t)k * js->result_size, js->result_size);
        return SK_OK;
    }
    const uint64_t *index = out_index(p, d, b->count);
    int rc;
    if (index[2 * k] & SPILLED) {
        size_t len = (size_t)index[2 * k + 1];
        unsigned char *img = malloc(len ? len : 1);
        off_t at = (off_t)(p->arena_size + (index[2 * k] & ~SPILLED));
        rc = img == NULL ? SK_ENOMEM
             : pread(p->memfd, img, len, at) == (ssize_t)len
                 ? unpack_one(img, len, js->result_format, dst)
                 : SK_ESYS;
        free(img);
    } else {
        rc = unpack_one(batch_out(p, d) + index[2 * k], (size_t)index[2 * k + 1], js->result_format,
                        dst);
    }
    if (rc != SK_OK)
        call_note_failure(c, b->first + k, rc);
    return rc;
}

static void fifo_remove(sk_pool_call *c, int at)
{
    memmove(&c->fifo[at], &c->fifo[at + 1], (size_t)(c->fifo_len - at - 1) * sizeof c->fifo[0]);
    c->fifo_len--;
}

/* map/async_map: every done batch into the caller's arrays. */
static void call_collect(sk_pool_call *c)
{
    sk_pool *p = c->pool;
    const struct pool_job_shared *js = c->job;
    for (int i = 0; i < c->fifo_len;) {
        uint32_t d = c->fifo[i];
        struct pool_batch *b = &p->h->batches[d];
        if (atomic_load_explicit(&b->state, memory_order_acquire) != BATCH_DONE) {
            i++;
            continue;
        }
        if (b->failed == 0 && !js->result_tpl) { /* plain results: one copy */
            if (c->results != NULL)
                memcpy(c->results + b->first * js->result_size,
                       batch_out(p, d) + out_results_at(b->count),
                       (size_t)b->count * js->result_size);
            for (uint32_t k = 0; c->status != NULL && k < b->count; k++)
                c->status[b->first + k] = SK_OK;
        } else {
            for (uint32_t k = 0; k < b->count; k++) {
                uint64_t item = b->first + k;
                void *dst = c->results != NULL ? c->results + item * js->result_size : NULL;
                int rc = batch_result(c, d, k, dst);
                if (c->status != NULL)
                    c->status[item] = rc;
            }
        }
        c->collected_items += b->count;
        batch_free(p, d);
        fifo_remove(c, i);
    }
}

static bool call_finished(const sk_pool_call *c)
{
    return call_all_posted(c) && c->fifo_len == 0 && c->cur < 0;
}

/* Items never run because the pool was terminated. */
static void call_fail_rest(sk_pool_call *c)
{
    for (uint64_t i = c->collected_items; c->produce == NULL && i < c->n; i++) {
        if (c->status != NULL)
            c->status[i] = SK_EKILLED;
        call_note_failure(c, i, SK_EKILLED);
    }
    c->collected_items = c->n;
    for (int i = 0; i < c->fifo_len; i++) /* only after terminate: no worker holds them */
        batch_free(c->pool, c->fifo[i]);
    c->fifo_len = 0;
    c->producer_done = true;
    c->posted_items = c->n;
    c->cur = -1;
    call_done_posting(c);
}

/* The progress bar of long maps, on stderr when it is a terminal. */
static void progress_draw(const sk_pool_call *c, int64_t started, int64_t *last, bool final)
{
    if (c->pool->config.no_progress || c->produce != NULL || c->n < 1000 || !isatty(2))
        return;
    int64_t now = sk_now_ns();
    if (!final && (now - started < SK_NS_PER_SEC / 2 || now - *last < SK_NS_PER_SEC / 10))
        return;
    *last = now;
    int width = 30, filled = (int)((double)c->collected_items / (double)c->n * width);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %llu/%zu items", bar,
            (int)(100.0 * (double)c->collected_items / (double)c->n),
            (unsigned long long)c->collected_items, c->n);
    if (c->failed > 0)
        fprintf(stderr, ", %llu failed", (unsigned long long)c->failed);
    fputs(final ? "\n" : "", stderr);
    fflush(stderr);
}

static int call_drive(sk_pool_call *c, double timeout)
{
    sk_pool *p = c->pool;
    int64_t deadline = timeout < 0 ? INT64_MAX : sk_now_ns() + sk_seconds_to_ns(timeout);
    int64_t started = sk_now_ns(), last = 0;
    bool drawn = false;
    for (;;) {
        if (p->terminated) {
            call_fail_rest(c);
            return SK_EKILLED;
        }
        uint32_t seen = atomic_load(&p->h->done_seq);
        call_collect(c);
        int rc = call_post(c, POOL_BATCHES / 2);
        if (rc != SK_OK) {
            call_fail_rest(c);
            return rc;
        }
        if (call_finished(c))
            break;
        progress_draw(c, started, &last, false);
        drawn = drawn || last != 0;
        rc = pool_wait_done(p, seen, deadline);
        if (rc == SK_ETIMEDOUT)
            return rc;
    }
    if (drawn)
        progress_draw(c, started, &last, true);
    return SK_OK;
}

/* Every live map (not the iterators, which move as their caller takes
 * results) collects what is done and posts what it can: waiting on any
 * call moves all of them. */
static void pool_progress(sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++) {
        sk_pool_call *c = p->live[i];
        if (c == NULL || c->iterator || p->terminated)
            continue;
        call_collect(c);
        call_post(c, POOL_BATCHES / 2);
    }
}

static int call_outcome(const sk_pool_call *c)
{
    return c->has_first_error ? c->first_code : SK_OK;
}

int sk_pool_async_map(sk_pool *p, const sk_pool_job *job, const void *items, size_t n,
                      void *results, int *status, sk_pool_call **call)
{
    if (p == NULL || call == NULL || (n > 0 && items == NULL) ||
        (n > 0 && job != NULL && job->result_size > 0 && results == NULL))
        return SK_EINVAL;
    sk_pool_call *c;
    int rc = call_create(p, job, &c);
    if (rc != SK_OK)
        return rc;
    c->items = items;
    c->n = n;
    c->results = results;
    c->status = status;
    c->batch = choose_batch(p, job, n);
    call_post(c, POOL_BATCHES / 2);
    *call = c;
    return SK_OK;
}

int sk_pool_map(sk_pool *p, const sk_pool_job *job, const void *items, size_t n, void *results,
                int *status)
{
    sk_pool_call *c;
    int rc = sk_pool_async_map(p, job, items, n, results, status, &c);
    if (rc != SK_OK)
        return rc;
    rc = sk_pool_get(c, -1);
    sk_pool_call_free(c);
    return rc;
}

bool sk_pool_ready(sk_pool_call *c)
{
    if (c == NULL || c->iterator)
        return false;
    int rc = call_drive(c, 0);
    return rc == SK_OK || rc == SK_EKILLED;
}

int sk_pool_wait(sk_pool_call *c, double timeout)
{
    if (c == NULL || c->iterator)
        return SK_EINVAL;
    int rc = call_drive(c, timeout);
    return rc == SK_ETIMEDOUT ? rc : SK_OK;
}

int sk_pool_get(sk_pool_call *c, double timeout)
{
    if (c == NULL || c->iterator)
        return SK_EINVAL;
    int rc = call_drive(c, timeout);
    if (rc == SK_ETIMEDOUT)
        return rc;
    return call_outcome(c);
}

static int iterator_create(sk_pool *p, const sk_pool_job *job, const void *items, size_t n,
                           sk_pool_producer produce, void *state, bool ordered, sk_pool_call **call)
{
    if (p == NULL || call == NULL || (produce == NULL && n > 0 && items == NULL))
        return SK_EINVAL;
    sk_pool_call *c;
    int rc = call_create(p, job, &c);
    if (rc != SK_OK)
        return rc;
    c->iterator = true;
    c->ordered = ordered;
    c->items = items;
    c->n = produce != NULL ? SIZE_MAX : n;
    c->produce = produce;
    c->produce_state = state;
    if (produce != NULL && (c->produce_item = malloc(job->item_size)) == NULL) {
        sk_pool_call_free(c);
        return SK_ENOMEM;
    }
    c->batch = choose_batch(p, job, c->n);
    *call = c;
    return SK_OK;
}

int sk_pool_imap(sk_pool *p, const sk_pool_job *job, const void *items, size_t n,
                 sk_pool_call **call)
{
    return iterator_create(p, job, items, n, NULL, NULL, true, call);
}

int sk_pool_unordered_imap(sk_pool *p, const sk_pool_job *job, const void *items, size_t n,
                           sk_pool_call **call)
{
    return iterator_create(p, job, items, n, NULL, NULL, false, call);
}

int sk_pool_imap_stream(sk_pool *p, const sk_pool_job *job, sk_pool_producer produce, void *state,
                        bool ordered, sk_pool_call **call)
{
    if (produce == NULL)
        return SK_EINVAL;
    return iterator_create(p, job, NULL, 0, produce, state, ordered, call);
}

/* The batch to yield from next: the oldest one (ordered) or any done one. */
static int iterator_pick(sk_pool_call *c)
{
    const struct pool_header *h = c->pool->h;
    int limit = c->ordered ? (c->fifo_len > 0 ? 1 : 0) : c->fifo_len;
    for (int i = 0; i < limit; i++)
        if (atomic_load_explicit(&h->batches[c->fifo[i]].state, memory_order_acquire) == BATCH_DONE)
            return i;
    return -1;
}

int sk_pool_next(sk_pool_call *c, double timeout, size_t *index, void *result)
{
    if (c == NULL || !c->iterator)
        return SK_EINVAL;
    sk_pool *p = c->pool;
    int64_t deadline = timeout < 0 ? INT64_MAX : sk_now_ns() + sk_seconds_to_ns(timeout);
    int window = 4 * p->n_workers + 4;
    while (c->cur < 0) {
        if (p->terminated) {
            call_fail_rest(c);
            return SK_EKILLED;
        }
        uint32_t seen = atomic_load(&p->h->done_seq);
        int rc = call_post(c, window);
        if (rc != SK_OK) {
            call_fail_rest(c);
            return rc;
        }
        int at = iterator_pick(c);
        if (at >= 0) {
            c->cur = (int)c->fifo[at];
            c->cur_pos = 0;
            fifo_remove(c, at);
            break;
        }
        if (call_finished(c))
            return SK_ECLOSED;
        rc = pool_wait_done(p, seen, deadline);
        if (rc != SK_OK)
            return rc;
    }
    uint32_t d = (uint32_t)c->cur;
    const struct pool_batch *b = &p->h->batches[d];
    uint32_t k = c->cur_pos++;
    if (index != NULL)
        *index = (size_t)(b->first + k);
    if (result != NULL && c->job->result_size > 0)
        memset(result, 0, c->job->result_size);
    int rc = batch_result(c, d, k, result);
    if (c->cur_pos == b->count) {
        c->collected_items += b->count;
        batch_free(p, d);
        c->cur = -1;
    }
    return rc == SK_OK ? SK_OK : SK_EPROCESS;
}

const sk_error *sk_pool_error(const sk_pool_call *c)
{
    return c != NULL && c->has_first_error ? &c->first_error : NULL;
}

const sk_error *sk_pool_item_error(const sk_pool_call *c, size_t index)
{
    if (c == NULL)
        return NULL;
    const struct pool_job_shared *js = c->job;
    uint32_t n = atomic_load(&js->n_errors);
    if (n > POOL_ERRORS)
        n = POOL_ERRORS;
    const struct pool_error_record *r = call_errors(c->pool, c->slot);
    for (uint32_t i = 0; i < n; i++)
        if (r[i].item == index)
            return &r[i].error;
    return NULL;
}

/* With no call alive, the warmest batches keep their pages up to
 * POOL_WARM_BYTES (the next call reuses them without a page fault); the
 * rest, and the spilled results, are given back. */
static void pool_give_back_when_idle(sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++)
        if (p->live[i] != NULL)
            return;
    size_t kept = 0;
    for (int i = p->n_free - 1; i >= 0; i--) { /* the top of the stack is the warmest */
        uint32_t d = p->free_batches[i];
        if (p->touched[d] == 0)
            continue;
        if (kept + p->touched[d] <= POOL_WARM_BYTES) {
            kept += p->touched[d];
            continue;
        }
        fallocate(p->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)(batch_in(p, d) - p->arena), (off_t)(2 * POOL_HALF));
        p->touched[d] = 0;
    }
    uint64_t spilled = atomic_exchange(&p->h->spill_top, 0);
    if (spilled > 0)
        fallocate(p->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)p->arena_size,
                  (off_t)spilled);
}

void sk_pool_call_free(sk_pool_call *c)
{
    if (c == NULL)
        return;
    sk_pool *p = c->pool;
    /* Batches in the queue belong to this call's slot: let them finish. */
    c->producer_done = true;
    c->n = c->posted_items;
    call_done_posting(c);
    if (c->cur >= 0) {
        batch_free(p, (uint32_t)c->cur);
        c->cur = -1;
    }
    while (c->fifo_len > 0 && !p->terminated) {
        uint32_t seen = atomic_load(&p->h->done_seq);
        for (int i = 0; i < c->fifo_len;) {
            uint32_t d = c->fifo[i];
            if (atomic_load(&p->h->batches[d].state) == BATCH_DONE) {
                batch_free(p, d);
                fifo_remove(c, i);
            } else {
                i++;
            }
        }
        if (c->fifo_len > 0)
            pool_wait_done(p, seen, INT64_MAX);
    }
    for (int i = 0; i < c->fifo_len; i++) /* only after terminate: no worker holds them */
        batch_free(p, c->fifo[i]);
    p->live[c->slot] = NULL;
    free(c->produce_item);
    free(c);
    pool_give_back_when_idle(p);
}

static bool pool_maps_finished(sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++) {
        sk_pool_call *c = p->live[i];
        if (c != NULL && !c->iterator && !call_finished(c))
            return false;
    }
    return true;
}

int sk_pool_join(sk_pool *p, double timeout)
{
    if (p == NULL)
        return SK_EINVAL;
    if (!p->closed)
        return SK_ESTATE;
    int64_t deadline = timeout < 0 ? INT64_MAX : sk_now_ns() + sk_seconds_to_ns(timeout);
    for (;;) { /* the maps in progress run to their end */
        uint32_t seen = atomic_load(&p->h->done_seq);
        pool_progress(p);
        /* An iterator is done posting only as its caller takes results. */
        if (p->terminated || (pool_maps_finished(p) && atomic_load(&p->h->posting_calls) == 0))
            break;
        if (pool_wait_done(p, seen, deadline) == SK_ETIMEDOUT)
            return SK_ETIMEDOUT;
    }
    for (int i = 0; i < p->n_workers; i++) {
        struct pool_worker *w = &p->workers[i];
        if (w->base.rt == NULL)
            continue;
        int64_t left = deadline - sk_now_ns();
        double secs = deadline == INT64_MAX ? -1 : (left > 0 ? left / 1e9 : 0);
        if (sk_wait(&w->base, secs) != SK_OK)
            return SK_ETIMEDOUT;
    }
    return SK_OK;
}
