/* SPDX-License-Identifier: MIT */
/*
 * The pool's call engine: what a call is, whatever carries its batches.
 *
 *   sources   an array of items, or a producer function called only as
 *             results are taken (a stream of any length)
 *   sinks     the caller's result and status arrays (map, async_map), or
 *             an iterator that yields one result at a time (imap...)
 *   ordering  ordered (results in item order) or unordered (as ready)
 *   failures  a status per item, the first failure, and copies of the
 *             workers' error records (the first POOL_ERRORS)
 *
 * Items go out in batches: the engine takes a free batch from the transport
 * (transport.h), writes the item image into it (batch.h), posts it, and
 * later polls it, reads its result image and gives it back. Everything it
 * reads back was written by an untrusted worker: it uses its own record of
 * each batch's first item and count, and takes a status it does not know
 * as SK_ECORRUPT.
 */
#include "pool/call.h"

#include "pool/progress.h"
#include "core/error.h"
#include "os/clock.h"
#include "os/fd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define POOL_CALL_BATCHES 256 /* an automatic batch size keeps a call within this many */

/* ------------------------------------------------------------ jobs */

static bool has_pointers(const char *fmt)
{
    return fmt != NULL && strpbrk(fmt, "sB") != NULL;
}

/* Every mistake in a job is refused with the field it is in named
 * (sk_last_error_message), before anything is handed out. */
static int job_check(const sk_pool_job *job)
{
    if (job == NULL)
        return sk_refuse(SK_EINVAL, "pool job: the job is NULL");
    int forms = (job->fn != NULL) + (job->star != NULL) + (job->cls != NULL) + (job->range != NULL);
    if (forms != 1)
        return sk_refuse(
            SK_EINVAL, "pool job: set exactly one of fn, star, cls and range (%d are set)", forms);
    if (job->item_size == 0)
        return sk_refuse(SK_EINVAL, "pool job: item_size is 0");
    if (job->arg_size > POOL_ARG_MAX)
        return sk_refuse(SK_EINVAL, "pool job: arg_size is %zu bytes, over the %zu a job carries",
                         job->arg_size, POOL_ARG_MAX);
    if (job->arg_size > 0 && job->arg == NULL)
        return sk_refuse(SK_EINVAL, "pool job: arg is NULL with arg_size %zu", job->arg_size);
    if (job->star != NULL && job->item_format == NULL)
        return sk_refuse(SK_EINVAL, "pool job: star needs an item_format \"S(...)\"");
    if (job->cls != NULL && job->result_format == NULL)
        return sk_refuse(SK_EINVAL, "pool job: cls needs a result_format");
    if (job->cls != NULL && job->cls->run == NULL)
        return sk_refuse(SK_EINVAL, "pool job: the class has no run hook");
    if (job->cls != NULL && job->cls->size < sizeof(sk_process))
        return sk_refuse(SK_EINVAL,
                         "pool job: cls->size is %zu, less than an sk_process (set it to the "
                         "size of the struct that embeds it)",
                         job->cls->size);
    const char *names[2] = {"item", "result"};
    const char *fmts[2] = {job->item_format, job->result_format};
    size_t sizes[2] = {job->item_size, job->result_size};
    for (int i = 0; i < 2; i++) {
        if (fmts[i] == NULL)
            continue;
        if (strlen(fmts[i]) >= POOL_FORMAT_MAX)
            return sk_refuse(SK_EINVAL, "pool job: %s_format is longer than %d characters",
                             names[i], POOL_FORMAT_MAX - 1);
        if (sk_msg_check_one(fmts[i], sizes[i]) != SK_OK)
            return sk_refuse(SK_EINVAL,
                             "pool job: %s_format \"%s\" is not one tpl value of %s_size "
                             "(%zu) bytes",
                             names[i], fmts[i], names[i], sizes[i]);
    }
    if (job->item_size > POOL_IMAGE_MAX / 2 || job->result_size > POOL_IMAGE_MAX / 2)
        return sk_refuse(SK_EINVAL, "pool job: %s_size is over %zu bytes",
                         job->item_size > POOL_IMAGE_MAX / 2 ? "item" : "result",
                         POOL_IMAGE_MAX / 2);
    return SK_OK;
}

/* The job as the workers get it. SK_EINVAL when a star's format has no
 * fields. */
static int job_describe(const sk_pool_job *job, struct pool_job *js)
{
    memset(js, 0, sizeof *js);
    js->kind = job->fn != NULL      ? POOL_JOB_FN
               : job->star != NULL  ? POOL_JOB_STAR
               : job->range != NULL ? POOL_JOB_RANGE
                                    : POOL_JOB_CLS;
    js->fn = job->fn;
    js->range = job->range;
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
        if (n <= 0)
            return sk_refuse(SK_EINVAL,
                             "pool job: star's item_format \"%s\" is not a record S(...) of "
                             "at most %d fields",
                             job->item_format, POOL_MAX_FIELDS);
        js->n_fields = (uint32_t)n;
        for (int f = 0; f < n; f++)
            js->field_offsets[f] = offsets[f];
    }
    return SK_OK;
}

int pool_job_prepare(const sk_pool_job *job, struct pool_job *js)
{
    int rc = job_check(job);
    return rc == SK_OK ? job_describe(job, js) : rc;
}

static int call_slot_take(const sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++)
        if (p->live[i] == NULL)
            return i;
    return -1;
}

/* Items per batch: enough batches for every worker to get several (load
 * balance), few enough that a call fits in POOL_CALL_BATCHES of them, so it
 * is all handed out at once and goes on without the caller; and no more
 * than a batch's images hold. */
static size_t choose_batch(const sk_pool *p, const sk_pool_job *job, const struct pool_job *js,
                           size_t n)
{
    size_t batch = (size_t)p->config.batch;
    if (batch == 0 && job->cls != NULL) {
        batch = 1; /* each item is a whole process: balance beats overhead */
    } else if (batch == 0 && n == SIZE_MAX) {
        batch = 256;
    } else if (batch == 0) {
        /* Zero-copy arrays: a batch costs its hand-off only (nothing is
         * copied), so four per worker, as the raw zero-copy floor found
         * best, balance well enough. */
        size_t per_worker = js->shared_items && js->shared_results ? 4 : 16;
        batch = n / ((size_t)p->n_workers * per_worker);
        size_t fit = (n + POOL_CALL_BATCHES - 1) / POOL_CALL_BATCHES;
        if (batch < fit)
            batch = fit;
    }
    if (batch < 1)
        batch = 1;
    size_t per_item_out =
        sizeof(int32_t) + 2 * sizeof(uint64_t) + (js->shared_results ? 0 : job->result_size);
    size_t room = (POOL_IMAGE_MAX - 64) / per_item_out;
    size_t per_item_in = has_pointers(job->item_format) ? sizeof(uint64_t) + 16 : job->item_size;
    if (!js->shared_items && room > (POOL_IMAGE_MAX - 64) / per_item_in)
        room = (POOL_IMAGE_MAX - 64) / per_item_in;
    return batch < room ? batch : room;
}

/* Zero-copy arrays: items and results of a plain job that lie inside
 * allocations of sk_pool_alloc are read and written by the workers in
 * place. Each side is decided on its own; anything else is copied. */
static void call_share(sk_pool_call *c, const void *items, const void *results, size_t n)
{
    struct sk_pool_transport *t = c->pool->t;
    struct pool_job *js = &c->job;
    if (n == 0 || t->ops->shared_find == NULL || js->item_tpl || js->result_tpl ||
        js->kind == POOL_JOB_CLS)
        return;
    uint64_t at;
    js->shared_n = n;
    if (items != NULL && n <= SIZE_MAX / js->item_size &&
        t->ops->shared_find(t, items, n * js->item_size, &at, &c->shared_start[0])) {
        js->shared_items = 1;
        js->items_at = at;
    }
    if (results != NULL && js->result_size > 0 && n <= SIZE_MAX / js->result_size &&
        t->ops->shared_find(t, results, n * js->result_size, &at, &c->shared_start[1])) {
        js->shared_results = 1;
        js->results_at = at;
    }
}

static int call_create(sk_pool *p, const sk_pool_job *job, const void *items, const void *results,
                       size_t n, sk_pool_call **out)
{
    int rc = job_check(job);
    if (rc != SK_OK)
        return rc;
    if (p->closed)
        return sk_refuse(SK_ESTATE, "pool: closed, no more calls may start");
    sk_pool_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return SK_ENOMEM;
    c->slot = call_slot_take(p);
    if (c->slot < 0) {
        free(c);
        return SK_EFULL;
    }
    c->pool = p;
    c->cur = -1;
    c->cfd.fd = c->cfd.own = -1;
    c->progress.started = sk_now_ns();
    rc = job_describe(job, &c->job);
    if (rc == SK_OK)
        call_share(c, items, results, n);
    if (rc == SK_OK)
        rc = p->t->ops->open_call(p->t, c->slot, &c->job, job->arg, job->arg_size);
    if (rc != SK_OK) {
        free(c);
        return rc;
    }
    p->live[c->slot] = c;
    c->posting_counted = true;
    *out = c;
    return SK_OK;
}

/* ------------------------------------------------------------ posting */

static void call_done_posting(sk_pool_call *c)
{
    if (c->posting_counted) {
        c->posting_counted = false;
        c->pool->t->ops->end_posting(c->pool->t, c->slot);
    }
}

static bool call_all_posted(const sk_pool_call *c)
{
    if (c->cancelled)
        return true;
    return c->produce != NULL ? c->producer_done : c->posted_items >= c->n;
}

/* Fills a batch's item image with up to c->batch items from the array or
 * the producer. Returns how many (0: none left). An item whose image does
 * not fit even in an empty batch gets an empty entry, which the worker
 * fails with SK_EINVAL; one that only does not fit any more waits for the
 * next batch. */
static long batch_fill(sk_pool_call *c, const struct pool_batch_in *bin)
{
    const struct pool_job *js = &c->job;
    unsigned char *in = bin->items;
    size_t max = c->batch;
    if (c->produce == NULL && c->n - c->posted_items < max)
        max = c->n - c->posted_items;
    if (js->shared_items) /* zero-copy: the workers read the caller's array */
        return (long)max;
    if (c->produce == NULL && !js->item_tpl) { /* plain records: one copy, or none */
        const unsigned char *from = c->items + c->posted_items * js->item_size;
        struct sk_pool_transport *t = c->pool->t;
        if (t->ops->refer != NULL)
            t->ops->refer(t, bin->id, from);
        else
            memcpy(in, from, max * js->item_size);
        return (long)max;
    }
    struct pool_bump b = {.base = in, .used = (max + 1) * sizeof(uint64_t), .cap = bin->cap};
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
        int rc = pool_encode_one(&b, js->item_format, &len, item);
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

/* Whether the call copies plain results into the caller's array (then a
 * transport may land them there itself). */
static bool call_results_copied(const sk_pool_call *c)
{
    const struct pool_job *js = &c->job;
    return c->results != NULL && js->result_size > 0 && !js->result_tpl && !js->shared_results;
}

/* Posts as many batches as free batches and the window allow. */
static int call_post(sk_pool_call *c, int window)
{
    sk_pool *p = c->pool;
    struct sk_pool_transport *t = p->t;
    bool posted_any = false;
    int rc = SK_OK;
    while (!call_all_posted(c) && c->fifo_len < window) {
        struct pool_batch_in in;
        if (t->ops->take(t, &in) != SK_OK)
            break;
        long count = batch_fill(c, &in);
        if (count > 0 && t->ops->land != NULL && call_results_copied(c))
            t->ops->land(t, in.id, c->results + c->posted_items * c->job.result_size);
        if (count > 0)
            rc = t->ops->post(t, in.id, c->slot, c->posted_items, (uint32_t)count);
        if (count <= 0 || rc != SK_OK) {
            t->ops->release(t, in.id);
            break;
        }
        p->posted[in.id] = (struct pool_posted){.first = c->posted_items, .count = (uint32_t)count};
        c->posted_items += (uint64_t)count;
        c->fifo[c->fifo_len++] = in.id;
        posted_any = true;
    }
    if (call_all_posted(c))
        call_done_posting(c);
    if (posted_any)
        t->ops->flush(t);
    return rc;
}

/* ------------------------------------------------------------ results */

/* Item failed with code; v, when the failure is the workers' word, is the
 * view of its batch, whose lead record describes the call's first failure
 * when the kept errors were full before its batch came in. */
static void call_note_failure(sk_pool_call *c, const struct pool_view *v, uint64_t item, int code)
{
    c->failed++;
    if (c->has_first_error && c->first_error.item <= (long)item)
        return;
    const sk_error *e = sk_pool_item_error(c, item);
    if (e == NULL && v != NULL && v->has_lead && v->lead.item == (long)item)
        e = &v->lead;
    if (e != NULL) {
        c->first_error = *e;
    } else {
        sk_error_set_internal(&c->first_error, SK_PROCESS_ERROR, SK_RUN, 0, code,
                              sk_strerror(code));
        c->first_error.item = (long)item;
    }
    c->has_first_error = true;
    c->first_code = code;
}

/* At the first failed item of the view's batch: copies the batch's error
 * records while the call keeps fewer than POOL_ERRORS; when it keeps that
 * many, only the batch's lead record (its first failure), into the view. */
static void call_take_errors(sk_pool_call *c, struct pool_view *v)
{
    struct sk_pool_transport *t = c->pool->t;
    v->errors_taken = true;
    if (c->n_errors >= POOL_ERRORS) {
        v->has_lead = t->ops->errors(t, v->id, &v->lead, 1) == 1;
        return;
    }
    if (c->errors == NULL && (c->errors = malloc(POOL_ERRORS * sizeof *c->errors)) == NULL)
        return;
    c->n_errors += t->ops->errors(t, v->id, c->errors + c->n_errors, POOL_ERRORS - c->n_errors);
}

/* Starts reading a batch that poll said is done (state): the engine's own
 * record of what was posted, the result image, and whether the workers say
 * every item succeeded (then plain results are one copy, and no status is
 * read: a worker that lies about it could as well have lied in its
 * results). */
static void view_open(sk_pool_call *c, uint32_t id, int state, struct pool_view *v)
{
    sk_pool *p = c->pool;
    v->id = id;
    v->first = p->posted[id].first;
    v->count = p->posted[id].count;
    v->corrupt = state == POOL_BATCH_CORRUPT;
    v->clean = false;
    v->errors_taken = false;
    v->has_lead = false;
    if (v->corrupt)
        return;
    p->t->ops->output(p->t, id, &v->out);
    v->clean = v->out.failed == 0;
    c->retried += v->out.retried;
}

/* Whether sk_pool_kill_item killed this item (the parent's own record:
 * the worker's error record only adds details). */
static bool call_killed(const sk_pool_call *c, uint64_t item)
{
    for (size_t i = 0; i < c->n_killed; i++)
        if (c->killed[i] == item)
            return true;
    return false;
}

/* Result k of the view's batch into dst (result_size bytes, or NULL):
 * SK_OK, or why the item failed. */
static int item_result(sk_pool_call *c, struct pool_view *v, uint32_t k, void *dst)
{
    const struct pool_job *js = &c->job;
    int code = SK_ECORRUPT;
    if (v->clean) {
        code = SK_OK; /* the workers' word: no status is read (zero-copy calls write none) */
    } else if (!v->corrupt) {
        int32_t s = pool_peer_load32(&v->out.status[k]);
        if (s == SK_OK || s == SK_EPROCESS)
            code = s;
    }
    if (code == SK_EPROCESS && !v->errors_taken)
        call_take_errors(c, v);
    if (code == SK_EPROCESS && c->n_killed > 0 && call_killed(c, v->first + k))
        code = SK_EKILLED;
    if (code != SK_OK) {
        call_note_failure(c, v, v->first + k, code);
        return code;
    }
    if (js->result_size == 0 || dst == NULL || js->shared_results) /* in place already */
        return SK_OK;
    if (!js->result_tpl) {
        const unsigned char *src = v->out.results + (size_t)k * js->result_size;
        if (src != dst) /* else landed in place (transport.h, land) */
            memcpy(dst, src, js->result_size);
        return SK_OK;
    }
    struct sk_pool_transport *t = c->pool->t;
    const void *img;
    size_t len;
    void *owned;
    int rc = t->ops->result_image(t, v->id, k, &img, &len, &owned);
    if (rc == SK_OK)
        rc = pool_unpack_one(img, len, js->result_format, dst);
    free(owned);
    if (rc != SK_OK)
        call_note_failure(c, NULL, v->first + k, rc);
    return rc;
}

static void fifo_remove(sk_pool_call *c, int at)
{
    memmove(&c->fifo[at], &c->fifo[at + 1], (size_t)(c->fifo_len - at - 1) * sizeof c->fifo[0]);
    c->fifo_len--;
}

/* Items k .. end - 1 of batch view v, which succeeded: plain results copied
 * at once (unless they are in place), statuses SK_OK. */
static void collect_successes(sk_pool_call *c, const struct pool_view *v, uint32_t k, uint32_t end)
{
    const struct pool_job *js = &c->job;
    if (c->results != NULL && !js->shared_results) {
        unsigned char *dst = c->results + (v->first + k) * js->result_size;
        const unsigned char *src = v->out.results + (size_t)k * js->result_size;
        if (src != dst) /* else landed in place (transport.h, land) */
            memcpy(dst, src, (size_t)(end - k) * js->result_size);
    }
    for (uint32_t i = k; c->status != NULL && i < end; i++)
        c->status[v->first + i] = SK_OK;
}

/* Item k of batch view v, one at a time (a failure, or a tpl result). */
static void collect_one(sk_pool_call *c, struct pool_view *v, uint32_t k)
{
    const struct pool_job *js = &c->job;
    uint64_t item = v->first + k;
    void *dst = c->results != NULL ? c->results + item * js->result_size : NULL;
    int rc = item_result(c, v, k, dst);
    if (c->status != NULL)
        c->status[item] = rc;
}

/* A batch of plain results with failures: each run of successes is copied
 * at once, and only the failures go through item_result (a batch of a
 * million items with one failure cost milliseconds item by item). A status
 * is read once: SK_OK means copied; anything else is item_result's to
 * judge. */
static void collect_plain_with_failures(sk_pool_call *c, struct pool_view *v)
{
    for (uint32_t k = 0; k < v->count;) {
        uint32_t end = k;
        while (end < v->count && pool_peer_load32(&v->out.status[end]) == SK_OK)
            end++;
        if (end > k) {
            collect_successes(c, v, k, end);
            k = end;
        } else {
            collect_one(c, v, k++);
        }
    }
}

/* map/async_map: every done batch into the caller's arrays. */
static void call_collect(sk_pool_call *c)
{
    struct sk_pool_transport *t = c->pool->t;
    const struct pool_job *js = &c->job;
    for (int i = 0; i < c->fifo_len;) {
        uint32_t id = c->fifo[i];
        int state = t->ops->poll(t, id);
        if (state == POOL_BATCH_PENDING) {
            i++;
            continue;
        }
        struct pool_view v;
        view_open(c, id, state, &v);
        if (v.clean && !js->result_tpl) { /* plain results: one copy */
            collect_successes(c, &v, 0, v.count);
        } else if (!v.clean && !v.corrupt && !js->result_tpl) {
            collect_plain_with_failures(c, &v);
        } else {
            for (uint32_t k = 0; k < v.count; k++)
                collect_one(c, &v, k);
        }
        c->collected_items += v.count;
        t->ops->release(t, id);
        fifo_remove(c, i);
    }
}

static bool call_finished(const sk_pool_call *c)
{
    return call_all_posted(c) && c->fifo_len == 0 && c->cur < 0;
}

/* Items never run because the pool was terminated: those of the batches
 * in flight (by the engine's own record of each) and those not posted
 * (unless a cancel took them already). */
static void call_fail_item(sk_pool_call *c, uint64_t i)
{
    if (c->status != NULL)
        c->status[i] = SK_EKILLED;
    call_note_failure(c, NULL, i, SK_EKILLED);
}

static void call_fail_rest(sk_pool_call *c)
{
    sk_pool *p = c->pool;
    struct sk_pool_transport *t = p->t;
    for (int i = 0; i < c->fifo_len; i++) { /* only after terminate: no worker holds them */
        const struct pool_posted *b = &p->posted[c->fifo[i]];
        for (uint64_t k = 0; k < b->count; k++)
            call_fail_item(c, b->first + k);
        c->collected_items += b->count;
        t->ops->release(t, c->fifo[i]);
    }
    c->fifo_len = 0;
    if (c->produce == NULL && !c->cancelled) {
        for (uint64_t i = c->posted_items; i < c->n; i++)
            call_fail_item(c, i);
        c->collected_items += c->n - c->posted_items;
        c->posted_items = c->n;
    }
    c->producer_done = true;
    c->cur = -1;
    call_done_posting(c);
}

/* ------------------------------------------------------------ waiting */

void pool_progress(sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++) {
        sk_pool_call *c = p->live[i];
        if (c == NULL || c->iterator || p->terminated)
            continue;
        call_collect(c);
        call_post(c, POOL_BATCHES / 2);
    }
}

int pool_wait_done(sk_pool *p, uint32_t seen, int64_t deadline)
{
    if (p->terminated)
        return SK_EKILLED;
    int rc = p->t->ops->wait(p->t, seen, deadline);
    if (rc != SK_OK)
        return rc;
    pool_progress(p);
    return SK_OK;
}

bool pool_maps_finished(const sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++) {
        const sk_pool_call *c = p->live[i];
        if (c != NULL && !c->iterator && !call_finished(c))
            return false;
    }
    return true;
}

bool pool_none_posting(const sk_pool *p)
{
    for (int i = 0; i < POOL_CALLS; i++)
        if (p->live[i] != NULL && p->live[i]->posting_counted)
            return false;
    return true;
}

/* Collects and posts until the call is finished or the deadline passes:
 * SK_OK, SK_ETIMEDOUT, SK_EKILLED, or why posting failed. */
static int call_drive(sk_pool_call *c, double timeout)
{
    sk_pool *p = c->pool;
    int64_t deadline = sk_deadline_ns(timeout);
    struct pool_progress_state *progress = &c->progress;
    for (;;) {
        if (p->terminated) {
            call_fail_rest(c);
            return SK_EKILLED;
        }
        uint32_t seen = p->t->ops->epoch(p->t);
        call_collect(c);
        int rc = call_post(c, POOL_BATCHES / 2);
        if (rc != SK_OK) {
            call_fail_rest(c);
            return rc;
        }
        if (call_finished(c))
            break;
        pool_progress_report(c, progress, false);
        rc = pool_wait_done(p, seen, deadline);
        if (rc == SK_ETIMEDOUT)
            return rc;
    }
    if (!progress->finished_reported) {
        progress->finished_reported = true;
        pool_progress_report(c, progress, true);
    }
    return SK_OK;
}

static int call_outcome(const sk_pool_call *c)
{
    if (c->has_first_error)
        return c->first_code;
    return c->n_cancelled > 0 ? SK_ECANCELED : SK_OK;
}

/* ------------------------------------------------------------ event loops */

static void fds_settle_slow(sk_pool *p);

/* At the end of every call into the pool: the fds say the truth again. A
 * branch when nobody asked for one. */
static inline void fds_settle(sk_pool *p)
{
    if (p->fds_on)
        fds_settle_slow(p);
}

void pool_fds_settle(sk_pool *p)
{
    fds_settle(p);
}

/* ------------------------------------------------------------ maps */

int sk_pool_async_map(sk_pool *p, const sk_pool_job *job, const void *items, size_t n,
                      void *results, int *status, sk_pool_call **call)
{
    if (p == NULL || call == NULL || (n > 0 && items == NULL) ||
        (n > 0 && job != NULL && job->result_size > 0 && results == NULL))
        return sk_refuse(SK_EINVAL, "pool map: %s is NULL",
                         p == NULL       ? "the pool"
                         : call == NULL  ? "call"
                         : items == NULL ? "items (with n > 0)"
                                         : "results (with result_size > 0)");
    sk_pool_call *c;
    int rc = call_create(p, job, items, results, n, &c);
    if (rc != SK_OK)
        return rc;
    c->items = items;
    c->n = n;
    c->results = results;
    c->status = status;
    c->batch = choose_batch(p, job, &c->job, n);
    call_post(c, POOL_BATCHES / 2);
    *call = c;
    fds_settle(p);
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
    bool ready = rc != SK_ETIMEDOUT;
    c->outcome_reported |= ready;
    fds_settle(c->pool);
    return ready;
}

/* sk_pool_wait and sk_pool_get take an async map's call, not an iterator's. */
static int async_call_check(const sk_pool_call *c, const char *call)
{
    if (c == NULL)
        return sk_refuse(SK_EINVAL, "%s: the call is NULL", call);
    if (c->iterator)
        return sk_refuse(SK_EINVAL,
                         "%s: the call is an iterator; take its results with "
                         "sk_pool_next",
                         call);
    return SK_OK;
}

int sk_pool_wait(sk_pool_call *c, double timeout)
{
    int rc = async_call_check(c, "sk_pool_wait");
    if (rc != SK_OK)
        return rc;
    rc = call_drive(c, timeout);
    c->outcome_reported |= rc != SK_ETIMEDOUT;
    fds_settle(c->pool);
    return rc == SK_ETIMEDOUT ? rc : SK_OK;
}

int sk_pool_get(sk_pool_call *c, double timeout)
{
    int rc = async_call_check(c, "sk_pool_get");
    if (rc != SK_OK)
        return rc;
    rc = call_drive(c, timeout);
    c->outcome_reported |= rc != SK_ETIMEDOUT;
    fds_settle(c->pool);
    if (rc == SK_ETIMEDOUT)
        return rc;
    return call_outcome(c);
}

int sk_pool_submit(sk_pool *p, const sk_pool_job *job, const void *item, void *result,
                   sk_pool_call **call)
{
    if (item == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_submit: item is NULL");
    return sk_pool_async_map(p, job, item, 1, result, NULL, call);
}

/* ------------------------------------------------------------ iterators */

static int iterator_create(sk_pool *p, const sk_pool_job *job, const void *items, size_t n,
                           sk_pool_producer produce, void *state, bool ordered, sk_pool_call **call)
{
    if (p == NULL || call == NULL || (produce == NULL && n > 0 && items == NULL))
        return sk_refuse(SK_EINVAL, "pool iterator: %s is NULL",
                         p == NULL      ? "the pool"
                         : call == NULL ? "call"
                                        : "items (with n > 0)");
    sk_pool_call *c;
    int rc = call_create(p, job, produce == NULL ? items : NULL, NULL, n, &c);
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
    c->batch = choose_batch(p, job, &c->job, c->n);
    *call = c;
    fds_settle(p);
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
        return sk_refuse(SK_EINVAL, "sk_pool_imap_stream: produce is NULL");
    return iterator_create(p, job, NULL, 0, produce, state, ordered, call);
}

/* The batch to yield from next: the oldest one (ordered) or any done one.
 * Its place in the fifo, with poll's verdict in *state; -1 if none. */
static int iterator_pick(sk_pool_call *c, int *state)
{
    struct sk_pool_transport *t = c->pool->t;
    int limit = c->ordered ? (c->fifo_len > 0 ? 1 : 0) : c->fifo_len;
    for (int i = 0; i < limit; i++)
        if ((*state = t->ops->poll(t, c->fifo[i])) != POOL_BATCH_PENDING)
            return i;
    return -1;
}

static int iterator_window(const sk_pool *p)
{
    return 4 * p->n_workers + 4;
}

static int iterator_next(sk_pool_call *c, double timeout, size_t *index, void *result)
{
    if (c == NULL || !c->iterator)
        return sk_refuse(SK_EINVAL, "sk_pool_next: %s",
                         c == NULL ? "the call is NULL"
                                   : "the call is an async map; use sk_pool_wait or sk_pool_get");
    sk_pool *p = c->pool;
    int64_t deadline = sk_deadline_ns(timeout);
    int window = iterator_window(p);
    while (c->cur < 0) {
        if (p->terminated) {
            call_fail_rest(c);
            return SK_EKILLED;
        }
        uint32_t seen = p->t->ops->epoch(p->t);
        int rc = call_post(c, window);
        if (rc != SK_OK) {
            call_fail_rest(c);
            return rc;
        }
        int state;
        int at = iterator_pick(c, &state);
        if (at >= 0) {
            c->cur = (int)c->fifo[at];
            c->cur_pos = 0;
            view_open(c, c->fifo[at], state, &c->view);
            fifo_remove(c, at);
            break;
        }
        if (call_finished(c))
            return SK_ECLOSED;
        rc = pool_wait_done(p, seen, deadline);
        if (rc != SK_OK)
            return rc;
    }
    uint32_t k = c->cur_pos++;
    if (index != NULL)
        *index = (size_t)(c->view.first + k);
    if (result != NULL && c->job.result_size > 0)
        memset(result, 0, c->job.result_size);
    int rc = item_result(c, &c->view, k, result);
    if (c->cur_pos == c->view.count) {
        c->collected_items += c->view.count;
        p->t->ops->release(p->t, c->view.id);
        c->cur = -1;
    }
    return rc == SK_OK ? SK_OK : SK_EPROCESS;
}

int sk_pool_next(sk_pool_call *c, double timeout, size_t *index, void *result)
{
    if (c == NULL || !c->iterator)
        return sk_refuse(SK_EINVAL, "sk_pool_next: %s",
                         c == NULL ? "the call is NULL"
                                   : "the call is an async map; use sk_pool_wait or sk_pool_get");
    int rc = iterator_next(c, timeout, index, result);
    if (rc == SK_ECLOSED || rc == SK_EKILLED)
        c->end_reported = true;
    fds_settle(c->pool);
    return rc;
}

/* ------------------------------------------------------------ cancelling */

/* Items first .. first + count never run: their status says so. */
static void call_cancel_items(sk_pool_call *c, uint64_t first, uint64_t count)
{
    for (uint64_t i = first; c->status != NULL && i < first + count; i++)
        c->status[i] = SK_ECANCELED;
    c->n_cancelled += (size_t)count;
    c->collected_items += count;
}

int sk_pool_cancel(sk_pool_call *c)
{
    if (c == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_cancel: the call is NULL");
    sk_pool *p = c->pool;
    struct sk_pool_transport *t = p->t;
    if (!c->cancelled && !p->terminated) {
        if (!call_all_posted(c) && c->produce == NULL)
            call_cancel_items(c, c->posted_items, c->n - c->posted_items);
        c->cancelled = true;
        c->producer_done = true;
        call_done_posting(c);
        for (int i = 0; i < c->fifo_len;) { /* posted, and no worker has claimed them */
            uint32_t id = c->fifo[i];
            if (!t->ops->revoke(t, id)) {
                i++;
                continue;
            }
            call_cancel_items(c, p->posted[id].first, p->posted[id].count);
            t->ops->release(t, id);
            fifo_remove(c, i);
        }
    }
    fds_settle(p);
    return SK_OK;
}

/* ------------------------------------------------------------ class items */

static int item_control(sk_pool_call *c, size_t index, bool kill, const char *name)
{
    if (c == NULL)
        return sk_refuse(SK_EINVAL, "%s: the call is NULL", name);
    if (c->job.kind != POOL_JOB_CLS)
        return sk_refuse(SK_EINVAL,
                         "%s: the call's job has no cls; only class items run as "
                         "processes of their own",
                         name);
    sk_pool *p = c->pool;
    struct sk_pool_transport *t = p->t;
    int rc = SK_ESTATE;
    for (int i = 0; i < c->fifo_len; i++) {
        uint32_t id = c->fifo[i];
        const struct pool_posted *b = &p->posted[id];
        if (index < b->first || index - b->first >= b->count)
            continue;
        if (t->ops->poll(t, id) == POOL_BATCH_PENDING)
            rc = t->ops->control(t, id, (uint32_t)(index - b->first), kill);
        break;
    }
    if (rc == SK_OK && kill) {
        size_t *grown = realloc(c->killed, (c->n_killed + 1) * sizeof *grown);
        if (grown == NULL) {
            rc = SK_ENOMEM;
        } else {
            c->killed = grown;
            c->killed[c->n_killed++] = index;
        }
    }
    fds_settle(p);
    if (rc == SK_ESTATE)
        return sk_refuse(SK_ESTATE,
                         "%s: item %zu is not running (not handed to a worker yet, or "
                         "done)",
                         name, index);
    return rc;
}

int sk_pool_stop_item(sk_pool_call *c, size_t index)
{
    return item_control(c, index, false, "sk_pool_stop_item");
}

int sk_pool_kill_item(sk_pool_call *c, size_t index)
{
    return item_control(c, index, true, "sk_pool_kill_item");
}

/* ------------------------------------------------------------ event loops */

/* A fresh eventfd and an epoll set of it and the pool's notify fd. */
static int fd_pair_open(sk_pool *p, int *fd, int *own)
{
    if (!p->fds_on) {
        p->notify_fd = p->t->ops->notify_fd(p->t);
        if (p->notify_fd < 0)
            return sk_refuse(SK_ESYS, "the pool's transport has no fd to poll");
    }
    *own = sk_doorbell_create();
    *fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    bool ok = *own >= 0 && *fd >= 0 && epoll_ctl(*fd, EPOLL_CTL_ADD, p->notify_fd, &ev) == 0 &&
              epoll_ctl(*fd, EPOLL_CTL_ADD, *own, &ev) == 0;
    if (!ok) {
        int err = errno;
        if (*own >= 0)
            close(*own);
        if (*fd >= 0)
            close(*fd);
        *own = *fd = -1;
        errno = err;
        return err == ENOMEM ? SK_ENOMEM : SK_ESYS;
    }
    p->fds_on = true;
    return SK_OK;
}

/* A doorbell as a level: readable while *set. */
static void level_set(int fd, bool *set, bool want)
{
    if (want == *set)
        return;
    if (want)
        sk_doorbell_ring(fd);
    else
        sk_doorbell_drain(fd);
    *set = want;
}

/* Whether the call has something for its caller: a map is done and no
 * ready/wait/get said so yet; an iterator has a result to yield, or is at
 * its end and next has not said so yet. */
static bool call_has_news(sk_pool_call *c)
{
    if (!c->iterator)
        return (call_finished(c) || c->pool->terminated) && !c->outcome_reported;
    if (c->end_reported)
        return false;
    if (c->cur >= 0 || c->pool->terminated)
        return true;
    int state;
    return iterator_pick(c, &state) >= 0 || call_finished(c);
}

/* Reads the notify fd empty first, then looks: a batch done after the look
 * writes it again, so no news is missed. Iterators with an fd get their
 * window of batches posted here, as next would (else nothing would ever
 * wake their caller). */
static void fds_settle_slow(sk_pool *p)
{
    struct sk_pool_transport *t = p->t;
    t->ops->notify_clear(t);
    if (!p->terminated)
        pool_progress(p);
    bool any = false;
    for (int i = 0; i < POOL_CALLS; i++) {
        sk_pool_call *c = p->live[i];
        if (c == NULL)
            continue;
        if (c->iterator && !p->terminated && (c->cfd.fd >= 0 || p->fd >= 0))
            call_post(c, iterator_window(p));
        bool news = call_has_news(c);
        if (c->cfd.fd >= 0)
            level_set(c->cfd.own, &c->cfd.set, news);
        any |= news;
    }
    if (p->fd >= 0)
        level_set(p->any_fd, &p->any_set, any);
}

int sk_pool_fd(sk_pool *p)
{
    if (p == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_fd: the pool is NULL");
    if (p->fd < 0) {
        int rc = fd_pair_open(p, &p->fd, &p->any_fd);
        if (rc != SK_OK)
            return rc;
    }
    fds_settle(p);
    return p->fd;
}

int sk_pool_call_fd(sk_pool_call *c)
{
    if (c == NULL)
        return sk_refuse(SK_EINVAL, "sk_pool_call_fd: the call is NULL");
    if (c->cfd.fd < 0) {
        int rc = fd_pair_open(c->pool, &c->cfd.fd, &c->cfd.own);
        if (rc != SK_OK)
            return rc;
    }
    fds_settle(c->pool);
    return c->cfd.fd;
}

/* ------------------------------------------------------------ errors */

size_t sk_pool_retried(const sk_pool_call *c)
{
    return c != NULL ? (size_t)c->retried : 0;
}

const sk_error *sk_pool_error(const sk_pool_call *c)
{
    return c != NULL && c->has_first_error ? &c->first_error : NULL;
}

const sk_error *sk_pool_item_error(const sk_pool_call *c, size_t index)
{
    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < c->n_errors; i++)
        if (c->errors[i].item == (long)index)
            return &c->errors[i];
    return NULL;
}

/* ------------------------------------------------------------ freeing */

void sk_pool_call_free(sk_pool_call *c)
{
    if (c == NULL)
        return;
    sk_pool *p = c->pool;
    struct sk_pool_transport *t = p->t;
    /* Batches in flight belong to this call's slot: let them finish. */
    c->producer_done = true;
    c->n = c->posted_items;
    call_done_posting(c);
    if (c->cur >= 0) {
        t->ops->release(t, (uint32_t)c->cur);
        c->cur = -1;
    }
    while (c->fifo_len > 0 && !p->terminated) {
        uint32_t seen = t->ops->epoch(t);
        for (int i = 0; i < c->fifo_len;) {
            if (t->ops->poll(t, c->fifo[i]) != POOL_BATCH_PENDING) {
                t->ops->release(t, c->fifo[i]);
                fifo_remove(c, i);
            } else {
                i++;
            }
        }
        if (c->fifo_len > 0)
            pool_wait_done(p, seen, INT64_MAX);
    }
    for (int i = 0; i < c->fifo_len; i++) /* only after terminate: no worker holds them */
        t->ops->release(t, c->fifo[i]);
    p->live[c->slot] = NULL;
    if (c->cfd.fd >= 0) {
        close(c->cfd.fd);
        close(c->cfd.own);
    }
    free(c->killed);
    free(c->produce_item);
    free(c->errors);
    free(c);
    fds_settle(p);
    for (int i = 0; i < POOL_CALLS; i++)
        if (p->live[i] != NULL)
            return;
    t->ops->idle(t);
}
