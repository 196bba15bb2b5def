/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory transport's worker: an skproc process of an internal
 * class whose run hook claims posted batches from the arena, runs their
 * items and marks them done, so that a crash or a per-item timeout is
 * handled by the same supervisor as any process: it kills the worker at the
 * item's deadline (the worker restarts its section clock at every item) or
 * sees it die, and starts a fresh one, which finds in its slot the batch and
 * item its predecessor had in hand, charges the fault to that item (retrying
 * it while it has lives) and carries on. A worker that has done max_tasks
 * items leaves on purpose the same way, and its successor goes on without a
 * fault.
 *
 * Workers claim posts in order with a compare-and-swap on the queue's
 * claimed counter, then take the batch itself by moving its state from
 * READY to CLAIMED: a batch the parent took back first (sk_pool_cancel) is
 * skipped untouched. They sleep on a futex word only when there is nothing
 * to do; the parent is woken only when it sleeps, so a busy pool makes no
 * system call per batch (nor when an event loop waits: then one write to
 * the notify eventfd per batch).
 *
 * A worker runs the pool's initializer once before its first item. While
 * a class item's process runs, the worker looks every 50 ms at the control
 * word the parent writes in its slot (stop or kill that item). The plain
 * case (a function over plain records, no item timeout) runs the items in a
 * loop with nothing in it but the call and the note of the item in hand.
 */
#include "pool/worker.h"

#include "core/engine.h"
#include "core/error.h"
#include "core/result.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/futex.h"
#include "os/shm.h"
#include "os/spin.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The batch in hand, as read once from its descriptor, and its call's job
 * as copied when it was claimed: an item function may scribble on the
 * descriptor or the job, and the loop must not follow it. */
struct held {
    uint32_t d, call, count;
    uint64_t first;
    struct shm_batch *b;
    const struct pool_job *job; /* &job_copy */
    struct pool_job job_copy;
    const unsigned char *in; /* item 0 of the batch: its image, or the shared array */
    unsigned char *out;
    unsigned char *res; /* result 0 of the batch: in its image, or in the shared array */
    const void *arg;
};

/* A job whose sizes, fields and formats let count items be run inside
 * their batch's images (a scribbled one could make a worker write across
 * the whole arena). */
static bool job_sane(const struct pool_job *j, uint32_t count)
{
    if (j->kind > POOL_JOB_RANGE || j->item_size == 0 || j->item_size > POOL_IMAGE_MAX / 2 ||
        j->result_size > POOL_IMAGE_MAX / 2 || j->n_fields > POOL_MAX_FIELDS ||
        memchr(j->item_format, '\0', sizeof j->item_format) == NULL ||
        memchr(j->result_format, '\0', sizeof j->result_format) == NULL)
        return false;
    bool shared = j->shared_items || j->shared_results;
    if (shared && (j->item_tpl || j->result_tpl || j->kind == POOL_JOB_CLS))
        return false;
    if (!j->item_tpl && !j->shared_items && (uint64_t)count * j->item_size > POOL_IMAGE_MAX)
        return false;
    if (!j->result_tpl &&
        pool_results_at(count) + (j->shared_results ? 0 : (uint64_t)count * j->result_size) >
            POOL_IMAGE_MAX)
        return false;
    for (uint32_t f = 0; f < j->n_fields; f++)
        if (j->field_offsets[f] >= j->item_size)
            return false;
    return true;
}

/* Items first .. first + count of size bytes each, from offset at, lie
 * inside the shared region (a scribbled job must not send a worker past
 * it). */
static bool shared_fits(const struct shm_arena *a, uint64_t at, uint64_t first, uint32_t count,
                        uint64_t size)
{
    if (at > a->shared_size || first > UINT64_MAX - count)
        return false;
    return size == 0 || first + count <= (a->shared_size - at) / size;
}

/* Reads batch d's descriptor and copies its job. False when it cannot be a
 * batch the parent posted, or its job cannot be run: nothing of it is run,
 * and the parent, which kept its own copy, fails its items (for a job that
 * cannot be run, every status says so). */
static bool held_load(const struct shm_arena *a, uint32_t d, struct held *hb)
{
    if (d >= POOL_BATCHES)
        return false;
    struct shm_batch *b = &a->h->batches[d];
    hb->d = d;
    hb->b = b;
    hb->call = __atomic_load_n(&b->call, __ATOMIC_RELAXED);
    hb->first = __atomic_load_n(&b->first, __ATOMIC_RELAXED);
    hb->count = __atomic_load_n(&b->count, __ATOMIC_RELAXED);
    if (hb->call >= POOL_CALLS || hb->count == 0 || pool_images_at(hb->count) > POOL_IMAGE_MAX)
        return false;
    memcpy(&hb->job_copy, &a->h->jobs[hb->call].job, sizeof hb->job_copy);
    hb->job = &hb->job_copy;
    hb->in = shm_batch_in(a, d);
    hb->out = shm_batch_out(a, d);
    hb->arg = shm_call_arg(a, hb->call);
    const struct pool_job *j = hb->job;
    hb->res = hb->out + pool_results_at(hb->count);
    bool sane = job_sane(j, hb->count);
    if (sane && j->shared_items &&
        (sane = shared_fits(a, j->items_at, hb->first, hb->count, j->item_size)))
        hb->in = a->shared + j->items_at + hb->first * j->item_size;
    if (sane && j->shared_results &&
        (sane = shared_fits(a, j->results_at, hb->first, hb->count, j->result_size)))
        hb->res = a->shared + j->results_at + hb->first * j->result_size;
    if (!sane) {
        int32_t *status = (int32_t *)(void *)hb->out;
        for (uint32_t k = 0; k < hb->count; k++)
            status[k] = SK_ECORRUPT;
        b->failed = hb->count;
        return false;
    }
    return true;
}

/* Maps into this worker the part of batch d's region that count items of
 * job use and it has not mapped yet; true when there was such a part. */
static bool worker_map_region(struct shm_worker *w, const struct pool_job *job, uint32_t d,
                              uint32_t count)
{
    /* Zero-copy arrays are not in the batch region (their statuses are
     * written only on a failure): nothing of it to map in for them. */
    size_t in = job->item_tpl || job->shared_items ? 0 : (size_t)count * job->item_size;
    size_t out = pool_results_at(count) + (size_t)count * job->result_size;
    if (job->result_tpl || pool_images_at(count) > out)
        out = pool_images_at(count);
    if (job->shared_items || job->shared_results)
        out = 0;
    in = in < POOL_IMAGE_MAX ? in : POOL_IMAGE_MAX;
    out = out < POOL_IMAGE_MAX ? out : POOL_IMAGE_MAX;
    bool mapped = false;
    if (in > w->mapped_in[d]) {
        sk_shm_prefault(shm_batch_in(w->arena, d) + w->mapped_in[d], in - w->mapped_in[d], false);
        w->mapped_in[d] = (uint32_t)in;
        mapped = true;
    }
    if (out > w->mapped_out[d]) {
        sk_shm_prefault(shm_batch_out(w->arena, d) + w->mapped_out[d], out - w->mapped_out[d],
                        true);
        w->mapped_out[d] = (uint32_t)out;
        mapped = true;
    }
    return mapped;
}

/* A page of the arena that another process wrote is still a page fault
 * the first time this worker touches it (each process maps it for itself),
 * and on a virtual machine a fault costs microseconds: a map of 10M small
 * items paid about 2,000 of them per map until every worker had touched
 * every page of every batch region. So the first time this worker takes a
 * batch region further than before, it maps the new part in with one
 * madvise each for the input it reads and the output it writes; and then
 * the regions of the call's other batches too, posted or taken by another
 * worker: batches land on any worker, and on a machine with shadow page
 * tables (a PVM guest) the first touch of a page by a process costs as
 * much as a fault even after the madvise, so a pool took three maps to be
 * warm, each worker meeting the regions it had not touched yet. Now it
 * takes one. A failed madvise (an older kernel) only means the faults
 * come one by one. The other descriptors are the workers' too: a
 * scribbled one costs at most a madvise over a batch region. */
static void worker_prefault(struct shm_worker *w, const struct held *hb)
{
    if (!worker_map_region(w, hb->job, hb->d, hb->count))
        return;
    const struct shm_header *h = w->arena->h;
    for (uint32_t d = 0; d < POOL_BATCHES; d++) {
        uint32_t state = atomic_load_explicit(&h->batches[d].state, memory_order_relaxed);
        uint32_t count = __atomic_load_n(&h->batches[d].count, __ATOMIC_RELAXED);
        if (d == hb->d || (state != SHM_BATCH_READY && state != SHM_BATCH_CLAIMED) ||
            __atomic_load_n(&h->batches[d].call, __ATOMIC_RELAXED) != hb->call || count == 0 ||
            pool_images_at(count) > POOL_IMAGE_MAX)
            continue;
        worker_map_region(w, hb->job, d, count);
    }
}

/* Zero-copy calls write their statuses only when an item fails: the
 * parent reads none while the batch's failed count is 0 (the workers' word
 * that every item succeeded), so clearing them up front would be one more
 * pass over memory per item, as large as the results. The first failure
 * clears them all (its predecessor's failures, after a restart, are then
 * already in place); a call with tpl results, which reads its statuses on
 * a restart, is never zero-copy. */
static bool statuses_lazy(const struct held *hb)
{
    return hb->job->shared_items || hb->job->shared_results;
}

static int32_t *held_status(const struct held *hb)
{
    return (int32_t *)(void *)hb->out;
}

static uint64_t *held_index(const struct held *hb)
{
    return (uint64_t *)(void *)(hb->out + pool_results_at(hb->count));
}

/* The batch's first failure goes to its own lead record (batch_errors),
 * so the call's first failure is never crowded out; the others share the
 * call's POOL_ERRORS records, first come first kept. */
static void record_error(const struct shm_arena *a, const struct held *hb, uint64_t item,
                         const sk_error *e)
{
    struct shm_job *job = &a->h->jobs[hb->call];
    struct shm_error_record *r = &a->h->batch_errors[hb->d];
    if (hb->b->failed > 0) {
        uint32_t at = atomic_fetch_add(&job->n_errors, 1);
        if (at >= POOL_ERRORS)
            return;
        r = &shm_call_errors(a, hb->call)[at];
    }
    atomic_store_explicit(&r->stamp, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    r->item = item;
    r->error = *e;
    r->error.item = (long)item;
    atomic_store_explicit(&r->stamp, job->stamp, memory_order_release);
}

/* ------------------------------------------------------------ one item */

/* Stores a result image that did not fit in its batch's result image: past
 * the mapping, through the memfd, where the parent preads it. */
static int result_spill(const struct shm_arena *a, const void *img, size_t len, uint64_t *index)
{
    uint64_t at = atomic_fetch_add(&a->h->spill_top, len);
    const unsigned char *b = img;
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(a->memfd, b + done, len - done, (off_t)(a->size + at + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return SK_ESYS;
        done += (size_t)n;
    }
    index[0] = at | SHM_SPILLED;
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
 * result image is full. */
static int result_store(const struct shm_arena *a, struct pool_bump *out, const char *fmt,
                        void *value, uint64_t *index)
{
    size_t len;
    unsigned char *at = out->base + out->used;
    int rc = pool_encode_one(out, fmt, &len, value);
    if (rc == SK_OK) {
        index[0] = (uint64_t)(at - out->base);
        index[1] = len;
        return SK_OK;
    }
    if (rc != SK_EFULL)
        return rc;
    void *heap = NULL;
    rc = pool_encode_record(fmt, reserve_heap, &heap, &len, value);
    if (rc == SK_OK)
        rc = result_spill(a, heap, len, index);
    free(heap);
    return rc;
}

/* The parent's control word for this worker, when it names the item in
 * hand (k of the batch in hand): SHM_CONTROL_STOP, _KILL or _NONE. A word
 * naming another item is stale (that item ended) and is dropped. */
static uint32_t control_take(struct shm_worker_slot *slot, uint32_t k)
{
    uint32_t what =
        atomic_exchange_explicit(&slot->control, SHM_CONTROL_NONE, memory_order_acquire);
    if (what == SHM_CONTROL_NONE)
        return what;
    if (atomic_load(&slot->control_batch) != atomic_load(&slot->batch) ||
        atomic_load(&slot->control_item) != k)
        return SHM_CONTROL_NONE;
    return what;
}

/* Waits for a class item's process, acting on the parent's stop or kill
 * (looked at every 50 ms). SK_EKILLED when it was killed that way. */
static int class_item_wait(struct shm_worker_slot *slot, uint32_t k, sk_process *obj)
{
    for (;;) {
        int rc = sk_wait(obj, 0.05);
        if (rc != SK_ETIMEDOUT)
            return rc;
        uint32_t what = control_take(slot, k);
        if (what == SHM_CONTROL_STOP) {
            sk_stop(obj);
        } else if (what == SHM_CONTROL_KILL) {
            sk_kill(obj);
            sk_wait(obj, -1);
            return SK_EKILLED;
        }
    }
}

/* A process class per item: a process of its own, started from here.
 * SK_OK, SK_EPROCESS with *err filled, or SK_EKILLED (the parent killed it:
 * no life is left to try it again). */
static int run_class_item(const struct shm_arena *a, struct shm_worker_slot *slot, uint32_t k,
                          const struct pool_job *job, const void *item, sk_error *err,
                          struct pool_bump *out, uint64_t *index)
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
        rc = class_item_wait(slot, k, obj);
    if (rc == SK_EKILLED) {
        sk_error_set_internal(err, SK_PROCESS_ERROR, SK_RUN, 0, SK_EKILLED,
                              "killed by sk_pool_kill_item");
        sk_release(obj);
        free(obj);
        return SK_EKILLED;
    }
    const sk_error *failure = sk_error_of(obj);
    if (rc == SK_OK && failure != NULL) {
        *err = *failure;
        rc = SK_EPROCESS;
    } else if (rc == SK_OK) {
        const void *img;
        size_t len;
        rc = sk_result_image(obj, &img, &len);
        void *dst;
        if (rc == SK_OK && pool_bump_reserve(out, len, &dst) == SK_OK) {
            memcpy(dst, img, len);
            index[0] = (uint64_t)((unsigned char *)dst - out->base);
            index[1] = len;
        } else if (rc == SK_OK) {
            rc = result_spill(a, img, len, index);
        }
    }
    if (rc != SK_OK && rc != SK_EPROCESS) {
        sk_error_set_internal(err, SK_PROCESS_ERROR, SK_RUN, 0, rc, sk_strerror(rc));
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

/* Runs item k of the batch once: SK_OK, or SK_EPROCESS with *err filled
 * (SK_EKILLED: a class item the parent killed). */
static int run_item(struct shm_worker *w, const struct held *hb, uint32_t k, struct pool_bump *out,
                    sk_error *err)
{
    const struct shm_arena *a = w->arena;
    const struct pool_job *job = hb->job;
    const unsigned char *in = hb->in;
    unsigned char item_buf[job->item_tpl ? job->item_size : 1];
    const void *item;
    if (job->item_tpl) {
        const uint64_t *offs = (const uint64_t *)(const void *)in;
        size_t len = (size_t)(offs[k + 1] - offs[k]);
        if (len == 0) { /* the parent could not encode it */
            sk_error_set_internal(err, SK_PROCESS_ERROR, SK_RUN, 0, SK_EINVAL,
                                  "the item's image does not fit in a batch (8 MiB)");
            return SK_EPROCESS;
        }
        memset(item_buf, 0, job->item_size);
        int rc = pool_unpack_one(in + offs[k], len, job->item_format, item_buf);
        if (rc != SK_OK) {
            sk_error_set_internal(err, SK_PROCESS_ERROR, SK_RUN, 0, rc,
                                  "the item could not be decoded");
            return SK_EPROCESS;
        }
        item = item_buf;
    } else {
        item = in + (size_t)k * job->item_size;
    }
    unsigned char *raw_result = hb->res + (size_t)k * job->result_size;
    unsigned char local_result[job->result_tpl ? job->result_size : 1];
    void *result = job->result_tpl ? (void *)local_result : (void *)raw_result;
    if (!job->shared_results)
        memset(result, 0, job->result_size);
    uint64_t *index = held_index(hb) + 2 * (size_t)k;
    int rc;
    if (job->kind == POOL_JOB_CLS) {
        rc = run_class_item(a, &a->h->workers[w->index], k, job, item, err, out, index);
    } else {
        if (job->kind == POOL_JOB_FN) {
            rc = job->fn(item, result, hb->arg);
        } else if (job->kind == POOL_JOB_RANGE) {
            rc = job->range(item, result, 1, hb->arg);
        } else {
            void *fields[POOL_MAX_FIELDS];
            for (uint32_t f = 0; f < job->n_fields; f++)
                fields[f] = (unsigned char *)item + job->field_offsets[f];
            rc = job->star(fields, result, hb->arg);
        }
        if (rc != 0) {
            item_function_error(err, rc);
            rc = SK_EPROCESS;
        } else if (job->result_tpl) {
            rc = result_store(a, out, job->result_format, result, index);
            if (rc != SK_OK) {
                sk_error_set_internal(err, SK_RESULT_ERROR, SK_RESULT, 0, rc,
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

/* ------------------------------------------------------------ a batch */

/* Leaves before item k when this worker has done its max_tasks: a fresh
 * one takes over in the same slot and goes on from k, no fault counted. */
static void worker_check_recycle(struct shm_worker *w, uint32_t k)
{
    struct shm_header *h = w->arena->h;
    if (w->settings.max_tasks <= 0 || w->tasks < w->settings.max_tasks)
        return;
    struct shm_worker_slot *slot = &h->workers[w->index];
    atomic_store(&slot->item, k);
    atomic_store(&slot->recycled, 1);
    sk_worker_recycle(&w->base);
}

/* Item k failed for good (or once more, if it has lives left and the
 * failure is not final, as a kill from the parent is): true when it is to
 * be tried again. */
static bool item_failed(struct shm_worker *w, const struct held *hb, uint32_t k, sk_error *err,
                        bool class_item, bool final)
{
    const struct shm_arena *a = w->arena;
    struct shm_worker_slot *slot = &a->h->workers[w->index];
    if (slot->attempts_item != k) { /* the attempts counted so far were another item's */
        slot->attempts = 0;
        slot->attempts_item = k;
    }
    if (++slot->attempts < (uint32_t)w->settings.lives && !final)
        return true;
    if (!class_item) /* a class item's error tells its own lives */
        err->lives_spent = (int)slot->attempts;
    if (statuses_lazy(hb) && hb->b->failed == 0) /* the batch's first failure */
        memset(held_status(hb), 0, (size_t)hb->count * sizeof(int32_t));
    held_status(hb)[k] = SK_EPROCESS;
    record_error(a, hb, hb->first + k, err);
    hb->b->failed++;
    slot->attempts = 0;
    return false;
}

/* Item k of the batch in hand succeeded: when attempts of it had failed
 * before (in this worker or the one before it), it counts as retried. */
static void item_succeeded(struct shm_worker *w, const struct held *hb, uint32_t k)
{
    struct shm_worker_slot *slot = &w->arena->h->workers[w->index];
    if (slot->attempts > 0 && slot->attempts_item == k)
        hb->b->retried++;
}

/* The failed attempts counted in the worker's slot belong to the item in
 * hand: once it has succeeded they must not be charged to the next one. */
static void slot_attempts_clear(struct shm_worker *w)
{
    w->arena->h->workers[w->index].attempts = 0;
}

/* A range function over the run [i, stop): one call for the whole run,
 * with the run noted in the worker's slot (a crash inside it is narrowed
 * down by the successor); if it fails, the run's items one call each, so
 * that the failure lands on the items that fail. Returns the first item
 * not done: stop, or the item that failed (its code in *failed_rc). */
static uint32_t worker_run_range(struct shm_worker *w, const struct held *hb, uint32_t i,
                                 uint32_t stop, int *failed_rc)
{
    const struct pool_job *job = hb->job;
    struct shm_worker_slot *slot = &w->arena->h->workers[w->index];
    size_t is = job->item_size, rs = job->result_size;
    atomic_store_explicit(&slot->item, i, memory_order_relaxed);
    atomic_store_explicit(&slot->run, stop - i > 1 ? stop - i : 0, memory_order_relaxed);
    *failed_rc = job->range(hb->in + (size_t)i * is, hb->res + (size_t)i * rs, stop - i, hb->arg);
    atomic_store_explicit(&slot->run, 0, memory_order_relaxed);
    if (*failed_rc == 0 || stop - i == 1)
        return *failed_rc == 0 ? stop : i;
    for (; i < stop; i++) {
        atomic_store_explicit(&slot->item, i, memory_order_relaxed);
        if (!job->shared_results) /* each call gets its results zeroed */
            memset(hb->res + (size_t)i * rs, 0, rs);
        if ((*failed_rc =
                 job->range(hb->in + (size_t)i * is, hb->res + (size_t)i * rs, 1, hb->arg)) != 0)
            return i;
    }
    return stop;
}

/* A plain function (or a range function) over plain records, items from k
 * on, while they succeed and the max_tasks budget lasts: nothing in the
 * loop but the call and the note of which item is in hand (for a crash).
 * Results are zeroed a chunk at a time (about 16 KiB) just before their
 * items run, so that the function writes them while they are still in the
 * cache: zeroing a whole batch first costs one more pass over memory. A
 * range function gets a chunk per call. Returns the first item not done. */
static uint32_t worker_run_plain(struct shm_worker *w, const struct held *hb, uint32_t k,
                                 int *failed_rc)
{
    const struct pool_job *job = hb->job;
    struct shm_worker_slot *slot = &w->arena->h->workers[w->index];
    uint32_t end = hb->count;
    if (w->settings.max_tasks > 0 && (long)(end - k) > w->settings.max_tasks - w->tasks)
        end = k + (uint32_t)(w->settings.max_tasks - w->tasks);
    size_t is = job->item_size, rs = job->result_size;
    const unsigned char *in = hb->in;
    unsigned char *results = hb->res;
    const void *arg = hb->arg;
    sk_pool_fn fn = job->fn;
    uint32_t chunk = rs == 0 ? 4096 : rs < 16384 ? (uint32_t)(16384 / rs) : 1;
    uint32_t i = k;
    *failed_rc = 0;
    while (i < end) {
        uint32_t stop = end - i > chunk ? i + chunk : end;
        if (!job->shared_results) /* zero-copy results are left as the caller has them */
            memset(results + (size_t)i * rs, 0, (size_t)(stop - i) * rs);
        if (job->kind == POOL_JOB_RANGE) {
            i = worker_run_range(w, hb, i, stop, failed_rc);
            if (*failed_rc != 0)
                goto out;
            continue;
        }
        for (; i < stop; i++) {
            atomic_store_explicit(&slot->item, i, memory_order_relaxed);
            if ((*failed_rc = fn(in + (size_t)i * is, results + (size_t)i * rs, arg)) != 0)
                goto out;
        }
    }
out:
    w->tasks += i - k;
    return i;
}

/* Item k until it succeeds or runs out of lives. */
static void worker_run_one(struct shm_worker *w, const struct held *hb, uint32_t k,
                           struct pool_bump *out)
{
    const struct shm_arena *a = w->arena;
    struct shm_worker_slot *slot = &a->h->workers[w->index];
    atomic_store_explicit(&slot->item, k, memory_order_relaxed);
    for (;;) {
        if (w->settings.item_timeout > 0)
            sk_section_restart(&w->base);
        sk_error err;
        int rc = run_item(w, hb, k, out, &err);
        if (rc == SK_OK) {
            item_succeeded(w, hb, k);
            break;
        }
        if (!item_failed(w, hb, k, &err, hb->job->kind == POOL_JOB_CLS, rc == SK_EKILLED))
            break;
    }
    slot->attempts = 0;
    w->tasks++;
}

/* Maps into this worker the pages of the shared array at offset `at` of
 * n records of `size` bytes that records first .. first + count use, a
 * whole chunk (SHM_SHARED_CHUNK, clipped to the array) at a time, once per
 * chunk: a forked worker has no page-table entries for the shared region,
 * and batches land on any worker, so without this each map would take page
 * faults (one per 4 KiB) on the pages a worker had not touched yet. One
 * madvise per chunk, remembered until an allocation is freed (the
 * parent's epoch moves: its pages were unmapped everywhere). Errors are
 * ignored: the pages then fault in as usual. The offsets come from a job
 * held_load checked, and the array's length from the same job: a
 * scribbled one costs at most memory of the region. */
static void shared_map(struct shm_worker *w, uint64_t *mapped, uint64_t at, uint64_t n,
                       uint64_t size, uint64_t first, uint32_t count, bool write)
{
    const struct shm_arena *a = w->arena;
    uint64_t lo = at + first * size, hi = at + (first + count) * size;
    uint64_t arr_end = size > 0 && n <= (a->shared_size - at) / size ? at + n * size : hi;
    if (arr_end < hi)
        arr_end = hi;
    for (uint64_t c = lo / SHM_SHARED_CHUNK; c * SHM_SHARED_CHUNK < hi; c++) {
        uint64_t bit = UINT64_C(1) << (c % 64);
        if (mapped[c / 64] & bit)
            continue;
        mapped[c / 64] |= bit;
        uint64_t from = c * SHM_SHARED_CHUNK > at ? c * SHM_SHARED_CHUNK : at;
        uint64_t to = (c + 1) * SHM_SHARED_CHUNK < arr_end ? (c + 1) * SHM_SHARED_CHUNK : arr_end;
        sk_shm_prefault(a->shared + from, (size_t)(to - from), write);
    }
}

/* Zero-copy arrays: the batch's share of them, mapped into this worker. */
static void shared_prepare(struct shm_worker *w, const struct held *hb)
{
    const struct pool_job *j = hb->job;
    uint32_t epoch = atomic_load_explicit(&w->arena->h->shared_epoch, memory_order_relaxed);
    if (epoch != w->shared_epoch) {
        memset(w->shared_mapped, 0, sizeof w->shared_mapped);
        w->shared_epoch = epoch;
    }
    if (j->shared_items)
        shared_map(w, w->shared_mapped[0], j->items_at, j->shared_n, j->item_size, hb->first,
                   hb->count, false);
    if (j->shared_results)
        shared_map(w, w->shared_mapped[1], j->results_at, j->shared_n, j->result_size, hb->first,
                   hb->count, true);
}

/* Items from..count of the batch, each tried while it has lives; those
 * before `single` one call each (a range function's run that crashed). */
static void worker_run_batch(struct shm_worker *w, const struct held *hb, uint32_t from,
                             uint32_t single)
{
    if (hb->job->shared_items || hb->job->shared_results)
        shared_prepare(w, hb);
    const struct pool_job *job = hb->job;
    int32_t *status = held_status(hb);
    struct pool_bump out = {
        .base = hb->out, .used = pool_images_at(hb->count), .cap = POOL_IMAGE_MAX};
    if (job->result_tpl && from > 0) { /* after a restart: past what was written */
        const uint64_t *index = held_index(hb);
        for (uint32_t k = 0; k < from; k++) {
            uint64_t end = index[2 * k] + index[2 * k + 1];
            if (status[k] == SK_OK && !(index[2 * k] & SHM_SPILLED) && end > out.used &&
                end <= out.cap)
                out.used = end;
        }
    }
    _Static_assert(SK_OK == 0, "statuses are cleared to SK_OK with memset");
    if (!statuses_lazy(hb))
        memset(status + from, 0, (size_t)(hb->count - from) * sizeof *status);
    if (w->init_failed) { /* nothing runs here: the items fail, and say why */
        for (uint32_t k = from; k < hb->count; k++) {
            worker_check_recycle(w, k); /* max_tasks: a successor tries the initializer again */
            sk_error err;
            char cause[64];
            snprintf(cause, sizeof cause, "the worker's initializer returned %d", w->init_rc);
            sk_error_set(&err, SK_PROCESS_ERROR, SK_PRERUN, 0, w->init_rc, cause);
            atomic_store_explicit(&w->arena->h->workers[w->index].item, k, memory_order_relaxed);
            item_failed(w, hb, k, &err, false, true);
            w->tasks++;
        }
        return;
    }
    /* An item retried after its worker died goes through worker_run_one,
     * which counts it as retried once it succeeds. */
    bool plain = (job->kind == POOL_JOB_FN || job->kind == POOL_JOB_RANGE) && !job->item_tpl &&
                 !job->result_tpl && w->settings.item_timeout <= 0;
    for (uint32_t k = from; k < hb->count;) {
        worker_check_recycle(w, k);
        const struct shm_worker_slot *slot = &w->arena->h->workers[w->index];
        if (plain && k >= single && !(slot->attempts > 0 && slot->attempts_item == k)) {
            int rc = 0;
            uint32_t next = worker_run_plain(w, hb, k, &rc);
            if (next > k)
                slot_attempts_clear(w); /* item k succeeded: its failed attempts are over */
            if (next == hb->count || rc == 0) {
                k = next; /* all done, or the max_tasks budget is spent */
                continue;
            }
            /* Item `next` failed once: that attempt counts; retry while it
             * has lives. */
            sk_error err;
            item_function_error(&err, rc);
            if (item_failed(w, hb, next, &err, false, false))
                worker_run_one(w, hb, next, &out);
            else
                w->tasks++;
            k = next + 1;
            continue;
        }
        worker_run_one(w, hb, k++, &out);
    }
}

/* Marks batch d done (counting its items when it was a real batch) and
 * wakes the parent if it sleeps. */
static void worker_finish_batch(struct shm_worker *w, uint32_t d, const struct held *hb)
{
    struct shm_header *h = w->arena->h;
    atomic_store(&h->workers[w->index].batch, 0);
    if (d >= POOL_BATCHES)
        return;
    struct shm_batch *b = &h->batches[d];
    if (hb != NULL) {
        atomic_fetch_add(&h->done, hb->count);
        atomic_fetch_add(&h->failed, b->failed);
    }
    atomic_store_explicit(&b->state, SHM_BATCH_DONE, memory_order_release);
    atomic_fetch_add(&h->done_seq, 1);
    if (atomic_load(&h->parent_waiting))
        sk_futex_wake_all(&h->done_seq);
    if (atomic_load_explicit(&h->notify, memory_order_relaxed)) /* sk_pool_fd */
        sk_doorbell_ring(w->arena->notify_fd);
}

/* A fresh worker whose predecessor left with an item in hand: after
 * max_tasks it goes on from there; after a crash or a timeout that item
 * takes the fault (or is tried again while it has lives). */
static void worker_recover(struct shm_worker *w)
{
    const struct shm_arena *a = w->arena;
    struct shm_worker_slot *slot = &a->h->workers[w->index];
    uint32_t held = atomic_load(&slot->batch);
    if (held == 0) {
        atomic_store(&slot->recycled, 0);
        return;
    }
    uint32_t d = held - 1, k = atomic_load(&slot->item);
    struct held hb;
    if (!held_load(a, d, &hb) || k >= hb.count) {
        atomic_store(&slot->recycled, 0);
        worker_finish_batch(w, d, NULL);
        return;
    }
    uint32_t from = k, single = 0;
    uint32_t run = atomic_exchange(&slot->run, 0);
    bool recycled = atomic_exchange(&slot->recycled, 0) != 0;
    if (!recycled && run > 1 && hb.job->kind == POOL_JOB_RANGE) {
        /* It died inside a range function's run: which item did it is not
         * known, so nothing is charged yet; the run goes one item at a
         * time, and an item that crashes again is charged. */
        single = run < hb.count - k ? k + run : hb.count;
    } else if (!recycled) {
        const sk_error *fault = sk_worker_last_fault(&w->base);
        sk_error err;
        if (fault != NULL)
            err = *fault;
        else
            sk_error_set_internal(&err, SK_CRASH_ERROR, SK_RUN, 0, SK_ECRASHED, "the worker died");
        err.run = 0;
        if (!item_failed(w, &hb, k, &err, false, false))
            from = k + 1;
    }
    worker_run_batch(w, &hb, from, single);
    worker_finish_batch(w, d, &hb);
}

/* Takes the oldest posted batch. The queue entry is read before the
 * compare-and-swap: once post c is ours, the parent may wrap around the
 * queue and reuse its entry (the batches in between may all be done and
 * their slots free again), but while c is unclaimed it cannot: the parent
 * never posts more than POOL_BATCHES past the claimed counter (a revoked
 * post holds no batch, but still holds its entry). */
static bool worker_claim(struct shm_header *h, uint32_t *d)
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

/* The pool's initializer, once per worker, before any item (outside the
 * item timeout). A predecessor that died in it counts as a failure: it is
 * not run again, and this worker fails every item it takes rather than
 * dying over and over. The parent is woken (sk_pool_create waits). */
static void worker_initialize(struct shm_worker *w)
{
    struct shm_header *h = w->arena->h;
    struct shm_worker_slot *slot = &h->workers[w->index];
    if (w->settings.initializer == NULL)
        return;
    int rc;
    if (atomic_load(&slot->init_state) == SHM_INIT_RUNNING) {
        rc = SK_EPROCESS; /* the worker died in it */
    } else {
        atomic_store(&slot->init_state, SHM_INIT_RUNNING);
        sk_section_idle(&w->base);
        rc = w->settings.initializer(w->settings.init_arg);
        sk_section_resume(&w->base);
    }
    w->init_failed = rc != 0;
    w->init_rc = rc;
    __atomic_store_n(&slot->init_rc, rc, __ATOMIC_RELAXED);
    atomic_store(&slot->init_state, rc != 0 ? SHM_INIT_FAILED : SHM_INIT_OK);
    atomic_fetch_add(&h->done_seq, 1);
    if (atomic_load(&h->parent_waiting))
        sk_futex_wake_all(&h->done_seq);
}

/* A batch is posted that nobody has claimed yet, or the pool closes. */
static bool worker_post_ready(const void *header)
{
    const struct shm_header *h = header;
    return atomic_load_explicit(&h->claimed, memory_order_relaxed) !=
               atomic_load_explicit(&h->posted, memory_order_acquire) ||
           atomic_load_explicit(&h->closing, memory_order_relaxed);
}

/* Spins for worker_post_ready, for at most spin_ns. */
static bool worker_spin_for_post(const struct shm_header *h, int64_t spin_ns)
{
    return sk_spin_until(sk_now_ns() + spin_ns, worker_post_ready, h);
}

static int shm_worker_run(sk_process *self)
{
    struct shm_worker *w = SK_CONTAINER_OF(self, struct shm_worker, base);
    struct shm_header *h = w->arena->h;
    struct shm_worker_slot *slot = &h->workers[w->index];
    worker_initialize(w);
    worker_recover(w);
    for (;;) {
        worker_check_recycle(w, 0);
        uint32_t d;
        if (worker_claim(h, &d)) {
            if (d >= POOL_BATCHES) /* not a batch: nothing to run or mark */
                continue;
            /* A post the parent revoked (sk_pool_cancel), or an entry whose
             * batch an earlier entry already ran: skipped, untouched. */
            uint32_t ready = SHM_BATCH_READY;
            if (!atomic_compare_exchange_strong(&h->batches[d].state, &ready, SHM_BATCH_CLAIMED))
                continue;
            struct held hb;
            bool ok = held_load(w->arena, d, &hb);
            if (ok)
                worker_prefault(w, &hb);
            slot->attempts = 0;
            atomic_store(&slot->item, 0);
            atomic_store_explicit(&slot->batch, d + 1, memory_order_release);
            if (ok) {
                atomic_fetch_add(&h->claimed_items, hb.count);
                worker_run_batch(w, &hb, 0, 0);
            }
            worker_finish_batch(w, d, ok ? &hb : NULL);
            continue;
        }
        if (atomic_load(&h->closing) && atomic_load(&h->posting_calls) == 0 &&
            atomic_load(&h->claimed) == atomic_load(&h->posted)) {
            sk_stop(self);
            return 0;
        }
        /* Nothing to do: leave the section so that the item timeout does
         * not run while waiting; spin a little for the next post (while
         * this worker is not counted idle, posts do not wake it), then
         * sleep until a batch is posted. */
        /* One spinner at a time: with the caller spinning too, more would
         * outnumber the CPUs and keep the process that has work off them.
         * And not on the CPU the caller last waited on: the scheduler likes
         * to put a woken process next to its waker, and there a spin only
         * keeps the other off the CPU for the whole spin. A worker that
         * forges these words only changes who spins. */
        int cpu = sched_getcpu() + 1;
        if (w->settings.spin_ns > 0 &&
            atomic_load_explicit(&h->parent_cpu, memory_order_relaxed) != cpu &&
            atomic_exchange(&h->spinner, 1) == 0) {
            atomic_store_explicit(&h->spinner_cpu, cpu, memory_order_relaxed);
            sk_section_idle(self);
            bool posted = worker_spin_for_post(h, w->settings.spin_ns);
            atomic_store(&h->spinner, 0);
            sk_section_resume(self);
            if (posted)
                continue;
        }
        uint32_t seen = atomic_load(&h->post_seq);
        atomic_fetch_add(&h->idle_workers, 1);
        if (atomic_load(&h->claimed) == atomic_load(&h->posted) && !atomic_load(&h->closing)) {
            sk_section_idle(self);
            sk_futex_wait(&h->post_seq, seen, NULL);
            sk_section_resume(self);
        }
        atomic_fetch_sub(&h->idle_workers, 1);
    }
}

static const sk_class shm_worker_class = {.name = "skproc-pool-worker", .run = shm_worker_run};

/* In the parent: a worker process's event, handed on as the pool's; a
 * crash or a timeout names the item (its error's .item, from
 * shm_worker_fault_item). */
static void shm_worker_event(const sk_event *ev, void *ctx)
{
    const struct shm_worker *w = ctx;
    sk_event pool_ev = *ev;
    pool_ev.worker = w->index;
    pool_ev.item = -1;
    if ((ev->kind == SK_EVENT_CRASH || ev->kind == SK_EVENT_TIMEOUT) && ev->error != NULL &&
        ev->error->item >= 0)
        pool_ev.item = ev->error->item;
    w->on_event(&pool_ev, w->event_ctx);
}

/* In the worker's supervisor, after the worker died: the index in its call
 * of the item it had in hand, or -1. Read from the arena, which the worker
 * could write: every value is checked, and the answer is only reported. */
static long shm_worker_fault_item(void *ctx)
{
    const struct shm_worker *w = ctx;
    const struct shm_header *h = w->arena->h;
    const struct shm_worker_slot *slot = &h->workers[w->index];
    uint32_t held = atomic_load(&slot->batch);
    if (held == 0 || held > POOL_BATCHES || atomic_load(&slot->recycled))
        return -1;
    const struct shm_batch *b = &h->batches[held - 1];
    uint32_t k = atomic_load(&slot->item);
    if (atomic_load(&slot->run) > 1) /* inside a range function's run: not known yet */
        return -1;
    uint32_t count = __atomic_load_n(&b->count, __ATOMIC_RELAXED);
    uint64_t first = __atomic_load_n(&b->first, __ATOMIC_RELAXED);
    if (k >= count || first > (uint64_t)LONG_MAX - k)
        return -1;
    return (long)(first + k);
}

int shm_worker_start(struct shm_worker *w, const struct shm_arena *arena, int index,
                     struct shm_settings settings)
{
    int rc = sk_init(&w->base, &shm_worker_class);
    if (rc != SK_OK)
        return rc;
    w->arena = arena;
    w->index = index;
    w->tasks = 0;
    w->settings = settings;
    w->init_failed = false;
    w->base.config.lives = INT_MAX; /* restarted after every fault */
    w->base.config.timeouts.run = settings.item_timeout;
    w->base.config.capacity = 4096; /* the channel is not used */
    w->base.config.max_message = 4096;
    if (w->on_event != NULL) {
        w->base.config.on_event = shm_worker_event;
        w->base.config.event_ctx = w;
        sk_process_fault_item(&w->base, shm_worker_fault_item, w);
    }
    rc = sk_start(&w->base);
    if (rc != SK_OK)
        sk_release(&w->base);
    return rc;
}
