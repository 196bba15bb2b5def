/* SPDX-License-Identifier: MIT */
/*
 * The pool's shared-memory transport: the parent's side of the arena
 * (shm_arena.h) that it shares with its forked workers (worker.c).
 *
 * The parent takes a free batch region (warmest first: a stack), the engine
 * fills its item image, and posting writes the descriptor and puts its
 * number in a queue; workers claim posts in order, fill in the result image
 * and mark the batch done. Both sides sleep on futex words only when there
 * is nothing to do, and wake the other only when it sleeps.
 *
 * A post no worker has claimed can be taken back (revoke, for cancel): the
 * parent moves its state from READY to FREE, which the workers' own
 * READY-to-CLAIMED step then fails on; its queue entry stays until a worker
 * skips it, so the parent never posts over an unclaimed entry.
 *
 * Only the pages a batch touches take memory; when no call is alive, the
 * warmest regions keep theirs up to SHM_WARM_BYTES and the rest, with the
 * spilled result images, are given back (a hole punched in the memfd).
 *
 * The shared region (sk_pool_alloc's arrays) is a second memfd, mapped
 * before the workers are forked; its allocations are kept in the parent's
 * own memory. Workers read items and write results there in place; the
 * parent never reads it for anything but the caller's values.
 *
 * Trust: every worker can write the whole arena. The parent keeps in its
 * own memory the call, first item and count of each batch it posts, the
 * number of posts, and whether it closed; a done batch whose descriptor no
 * longer matches is corrupt, and every offset, length and item index read
 * from the arena is checked against those copies before it is used.
 */
#include "pool/shm_transport.h"

#include "pool/worker.h"
#include "core/error.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/futex.h"
#include "os/shm.h"
#include "os/spin.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define SHM_WAIT_SLICE_NS (100 * 1000 * 1000)
#define SHM_WARM_BYTES ((size_t)256 << 20) /* an idle pool keeps this much warm */

/* The parent's copy of a posted batch, and what poll found. */
struct shm_posted {
    uint32_t call, count;
    uint64_t first;
    int verdict; /* POOL_BATCH_PENDING until poll sees it done */
};

/* The parent's copy of what a call's batches may hold. */
struct shm_call {
    uint64_t item_size, result_size;
    bool images;
    bool shared_items, shared_results; /* in the shared region, not in the batch images */
    uint32_t stamp;                    /* our copy of the job's error record stamp */
};

struct shm_transport {
    struct sk_pool_transport base;
    struct shm_arena arena;
    struct shm_worker *workers;
    int n_workers;
    double item_timeout; /* the settings the workers get (the arena's are for show) */
    int lives;
    long max_tasks;
    int64_t spin_ns; /* see shm_wait and worker_spin_for_post; 0: never */
    bool closing, terminated;
    bool notify_on; /* someone asked for the notify fd: the workers must write it */
    pool_init_fn initializer;
    void *init_arg; /* our copy of the initializer's argument, inherited by every fork */
    size_t init_arg_size;
    uint64_t n_posted;                   /* what the queue's posted counter must be */
    uint32_t queue[POOL_BATCHES];        /* what the queue's entries must be */
    uint32_t stamps;                     /* the last error record stamp handed out */
    uint32_t free_batches[POOL_BATCHES]; /* a stack: the warmest on top */
    int n_free;
    struct shm_posted posted[POOL_BATCHES];
    size_t touched[POOL_BATCHES]; /* bytes written since its pages were last given back */
    struct shm_call calls[POOL_CALLS];
    /* The shared region's allocations (sk_pool_alloc), sorted by offset:
     * the parent's own bookkeeping, never in memory a worker can write. */
    struct shm_block {
        uint64_t at, len;
    } * blocks;
    size_t n_blocks, cap_blocks;
};

static struct shm_transport *shm_of(struct sk_pool_transport *t)
{
    return (struct shm_transport *)t;
}

static int arena_create(struct shm_arena *a)
{
    a->size = shm_arena_size();
    void *base;
    if (sk_shm_create("skproc-pool", a->size, true, &a->memfd, &base) != 0)
        return errno == ENOMEM ? SK_ENOMEM : SK_ESYS;
    a->base = base;
    a->h = base;
    /* The shared arrays get a memfd of their own: no page of it holds a
     * word the parent trusts, so a worker that scribbles there damages
     * values only. */
    a->shared_size = SHM_SHARED_SIZE;
    if (sk_shm_create("skproc-arrays", a->shared_size, true, &a->shared_fd, &base) != 0)
        return errno == ENOMEM ? SK_ENOMEM : SK_ESYS;
    a->shared = base;
    a->notify_fd = sk_doorbell_create();
    return a->notify_fd >= 0 ? SK_OK : SK_ESYS;
}

static struct shm_settings shm_settings(const struct shm_transport *s)
{
    return (struct shm_settings){.item_timeout = s->item_timeout,
                                 .lives = s->lives,
                                 .max_tasks = s->max_tasks,
                                 .initializer = s->initializer,
                                 .init_arg = s->init_arg,
                                 .spin_ns = s->spin_ns};
}

/* sk_pool_create with an initializer: every first worker has run it. A
 * worker that failed it (or died in it) fails the pool, with a reason. The
 * slots' words are the workers' own: a lie costs only this answer. */
static int wait_initializers(struct shm_transport *s)
{
    struct shm_header *h = s->arena.h;
    for (int i = 0; i < s->n_workers; i++) {
        struct shm_worker_slot *slot = &h->workers[i];
        for (;;) {
            uint32_t seen = atomic_load(&h->done_seq);
            uint32_t state = atomic_load(&slot->init_state);
            if (state == SHM_INIT_OK)
                break;
            if (state == SHM_INIT_FAILED || !sk_alive(&s->workers[i].base))
                return sk_refuse(SK_EPROCESS,
                                 "sk_pool_create: the initializer failed in worker %d (it "
                                 "returned %d, or the worker died in it)",
                                 i, (int)__atomic_load_n(&slot->init_rc, __ATOMIC_RELAXED));
            struct timespec ts = sk_ns_to_timespec(SHM_WAIT_SLICE_NS);
            atomic_store(&h->parent_waiting, 1);
            atomic_thread_fence(memory_order_seq_cst);
            if (atomic_load(&slot->init_state) == state)
                sk_futex_wait(&h->done_seq, seen, &ts);
            atomic_store(&h->parent_waiting, 0);
        }
    }
    return SK_OK;
}

static void wake_workers(struct shm_transport *s)
{
    atomic_fetch_add(&s->arena.h->post_seq, 1);
    sk_futex_wake_all(&s->arena.h->post_seq);
}

/* A worker that ended while the pool is open (its supervisor could not
 * fork, or was killed from outside) is started again in the same slot, so
 * the batch it held is picked up. */
static void revive_workers(struct shm_transport *s)
{
    if (s->terminated)
        return;
    for (int i = 0; i < s->n_workers; i++) {
        struct shm_worker *w = &s->workers[i];
        if (w->base.rt != NULL && sk_alive(&w->base))
            continue;
        if (w->base.rt != NULL) {
            sk_wait(&w->base, -1);
            sk_release(&w->base);
        }
        if (!s->closing)
            shm_worker_start(w, &s->arena, i, shm_settings(s));
    }
}

/* After a wait in which nothing was done: the queue's entries and its
 * posted counter are the parent's to write, so what a worker changed there
 * is written again (each entry as the parent last wrote it), and sleeping
 * workers are woken when posts are unclaimed (a worker may have cleared
 * idle_workers, which flush trusts to skip the wake). */
static void republish(struct shm_transport *s)
{
    struct shm_header *h = s->arena.h;
    if (s->terminated)
        return;
    for (int q = 0; q < POOL_BATCHES; q++)
        if (atomic_load_explicit(&h->queue[q], memory_order_relaxed) != s->queue[q])
            atomic_store_explicit(&h->queue[q], s->queue[q], memory_order_release);
    if (atomic_load(&h->posted) != s->n_posted)
        atomic_store_explicit(&h->posted, s->n_posted, memory_order_release);
    if (atomic_load(&h->claimed) < s->n_posted)
        wake_workers(s);
}

/* ---------------------------------------------------------------- calls */

static int shm_open_call(struct sk_pool_transport *t, int slot, const struct pool_job *job,
                         const void *arg, size_t arg_size)
{
    struct shm_transport *s = shm_of(t);
    struct shm_job *sj = &s->arena.h->jobs[slot];
    uint32_t stamp = ++s->stamps;
    if (stamp == 0)
        stamp = ++s->stamps;
    sj->job = *job;
    sj->stamp = stamp;
    atomic_store(&sj->n_errors, 0);
    if (arg_size > 0)
        memcpy(shm_call_arg(&s->arena, (uint32_t)slot), arg, arg_size);
    s->calls[slot] = (struct shm_call){.item_size = job->item_size,
                                       .result_size = job->result_size,
                                       .images = job->item_tpl || job->result_tpl,
                                       .shared_items = job->shared_items != 0,
                                       .shared_results = job->shared_results != 0,
                                       .stamp = stamp};
    atomic_fetch_add(&s->arena.h->posting_calls, 1);
    return SK_OK;
}

static void shm_end_posting(struct sk_pool_transport *t, int slot)
{
    (void)slot;
    atomic_fetch_sub(&shm_of(t)->arena.h->posting_calls, 1);
}

/* -------------------------------------------------------------- batches */

static int shm_take(struct sk_pool_transport *t, struct pool_batch_in *in)
{
    struct shm_transport *s = shm_of(t);
    if (s->n_free == 0)
        return SK_EFULL;
    /* Revoked posts hold no batch but still hold their queue entry until a
     * worker skips it: never post over an entry not claimed yet. (A forged
     * claimed counter past what was posted is ignored here; it can stall
     * the queue anyway.) */
    uint64_t claimed = atomic_load(&s->arena.h->claimed);
    if (claimed <= s->n_posted && s->n_posted - claimed >= POOL_BATCHES)
        return SK_EFULL;
    uint32_t d = s->free_batches[--s->n_free];
    s->posted[d].count = 0;
    in->id = d;
    in->items = shm_batch_in(&s->arena, d);
    in->cap = POOL_IMAGE_MAX;
    return SK_OK;
}

static int shm_post(struct sk_pool_transport *t, uint32_t id, int slot, uint64_t first,
                    uint32_t count)
{
    struct shm_transport *s = shm_of(t);
    struct shm_header *h = s->arena.h;
    s->posted[id] = (struct shm_posted){
        .call = (uint32_t)slot, .count = count, .first = first, .verdict = POOL_BATCH_PENDING};
    struct shm_batch *b = &h->batches[id];
    b->call = (uint32_t)slot;
    b->first = first;
    b->count = count;
    b->failed = 0;
    b->retried = 0;
    atomic_store_explicit(&b->state, SHM_BATCH_READY, memory_order_release);
    uint64_t k = s->n_posted++;
    s->queue[k % POOL_BATCHES] = id;
    atomic_store_explicit(&h->queue[k % POOL_BATCHES], id, memory_order_release);
    atomic_store_explicit(&h->posted, k + 1, memory_order_release);
    return SK_OK;
}

static void shm_flush(struct sk_pool_transport *t)
{
    struct shm_header *h = shm_of(t)->arena.h;
    atomic_fetch_add(&h->post_seq, 1);
    if (atomic_load(&h->idle_workers) > 0)
        sk_futex_wake_all(&h->post_seq);
}

/* Done, and the descriptor still says what was posted: a worker that
 * scribbled on it may have run other items than these. */
static int shm_poll(struct sk_pool_transport *t, uint32_t id)
{
    struct shm_transport *s = shm_of(t);
    struct shm_posted *c = &s->posted[id];
    if (c->verdict != POOL_BATCH_PENDING)
        return c->verdict;
    const struct shm_batch *b = &s->arena.h->batches[id];
    if (atomic_load_explicit(&b->state, memory_order_acquire) != SHM_BATCH_DONE)
        return POOL_BATCH_PENDING;
    bool same = __atomic_load_n(&b->call, __ATOMIC_RELAXED) == c->call &&
                __atomic_load_n(&b->first, __ATOMIC_RELAXED) == c->first &&
                __atomic_load_n(&b->count, __ATOMIC_RELAXED) == c->count;
    c->verdict = same ? POOL_BATCH_DONE : POOL_BATCH_CORRUPT;
    return c->verdict;
}

static uint32_t shm_epoch(struct sk_pool_transport *t)
{
    return atomic_load(&shm_of(t)->arena.h->done_seq);
}

/* Spins until a batch is done (done_seq moves) or `until`: a worker that
 * answers within microseconds is seen without the futex sleep and wake-up
 * (workers wake the parent only when parent_waiting says it sleeps). */
/* What a caller spinning for a finished batch looks at. */
struct shm_done_watch {
    const struct shm_header *h;
    uint32_t seen;
};

static bool shm_batch_done(const void *ctx)
{
    const struct shm_done_watch *d = ctx;
    return atomic_load_explicit(&d->h->done_seq, memory_order_acquire) != d->seen;
}

static int shm_wait(struct sk_pool_transport *t, uint32_t seen, int64_t deadline)
{
    struct shm_transport *s = shm_of(t);
    struct shm_header *h = s->arena.h;
    int64_t now = sk_now_ns();
    if (deadline <= now)
        return SK_ETIMEDOUT;
    /* Only while a worker is idle: then a CPU is free, and the spin takes
     * no time from the workers that compute. idle_workers is the workers'
     * word; a lie only decides whether we spin, for spin_ns at most. */
    int cpu = sched_getcpu() + 1;
    atomic_store_explicit(&h->parent_cpu, cpu, memory_order_relaxed);
    bool beside_spinner = atomic_load_explicit(&h->spinner, memory_order_relaxed) &&
                          atomic_load_explicit(&h->spinner_cpu, memory_order_relaxed) == cpu;
    if (s->spin_ns > 0 && !beside_spinner &&
        atomic_load_explicit(&h->idle_workers, memory_order_relaxed) > 0 &&
        sk_spin_until(deadline - now < s->spin_ns ? deadline : now + s->spin_ns, shm_batch_done,
                      &(struct shm_done_watch){h, seen}))
        return SK_OK;
    int64_t wait = deadline - now;
    if (wait > SHM_WAIT_SLICE_NS)
        wait = SHM_WAIT_SLICE_NS;
    struct timespec ts = sk_ns_to_timespec(wait);
    atomic_store(&h->parent_waiting, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&h->done_seq) == seen)
        sk_futex_wait(&h->done_seq, seen, &ts);
    atomic_store(&h->parent_waiting, 0);
    revive_workers(s);
    if (atomic_load(&h->done_seq) == seen)
        republish(s); /* a slice with nothing done: maybe nobody was woken */
    return SK_OK;
}

static void shm_output(struct sk_pool_transport *t, uint32_t id, struct pool_batch_out *out)
{
    struct shm_transport *s = shm_of(t);
    const unsigned char *img = shm_batch_out(&s->arena, id);
    out->status = (const int32_t *)(const void *)img;
    out->results = img + pool_results_at(s->posted[id].count);
    out->failed = __atomic_load_n(&s->arena.h->batches[id].failed, __ATOMIC_RELAXED);
    uint32_t retried = __atomic_load_n(&s->arena.h->batches[id].retried, __ATOMIC_RELAXED);
    out->retried = retried < s->posted[id].count ? retried : s->posted[id].count;
}

/* A spilled image: it must lie in what the memfd holds past the mapping. */
static int read_spilled(struct shm_transport *s, uint64_t at, uint64_t len, const void **img,
                        size_t *lenp, void **owned)
{
    struct stat st;
    if (fstat(s->arena.memfd, &st) != 0)
        return SK_ESYS;
    uint64_t avail =
        (uint64_t)st.st_size > s->arena.size ? (uint64_t)st.st_size - s->arena.size : 0;
    if (at > avail || len > avail - at)
        return SK_ECORRUPT;
    unsigned char *copy = malloc(len ? (size_t)len : 1);
    if (copy == NULL)
        return SK_ENOMEM;
    if (pread(s->arena.memfd, copy, (size_t)len, (off_t)(s->arena.size + at)) != (ssize_t)len) {
        free(copy);
        return SK_ESYS;
    }
    *img = copy;
    *lenp = (size_t)len;
    *owned = copy;
    return SK_OK;
}

static int shm_result_image(struct sk_pool_transport *t, uint32_t id, uint32_t k, const void **img,
                            size_t *len, void **owned)
{
    struct shm_transport *s = shm_of(t);
    const struct shm_posted *c = &s->posted[id];
    *owned = NULL;
    if (k >= c->count)
        return SK_ECORRUPT;
    const unsigned char *out = shm_batch_out(&s->arena, id);
    const uint64_t *index = (const uint64_t *)(const void *)(out + pool_results_at(c->count));
    uint64_t at = pool_peer_load64(&index[2 * (size_t)k]);
    uint64_t n = pool_peer_load64(&index[2 * (size_t)k + 1]);
    if (at & SHM_SPILLED)
        return read_spilled(s, at & ~SHM_SPILLED, n, img, len, owned);
    if (at < pool_images_at(c->count) || at > POOL_IMAGE_MAX || n > POOL_IMAGE_MAX - at)
        return SK_ECORRUPT;
    /* A copy: the decoder checks an image, then reads it again to decode
     * it, and a worker could rewrite it in between. */
    unsigned char *copy = malloc(n ? (size_t)n : 1);
    if (copy == NULL)
        return SK_ENOMEM;
    memcpy(copy, out + at, (size_t)n);
    *img = copy;
    *len = (size_t)n;
    *owned = copy;
    return SK_OK;
}

/* A record copied out of the arena: its strings end inside it, and a kind
 * or section no worker writes makes it a corrupt record. */
static void error_settle(sk_error *e, uint64_t item)
{
    e->message[sizeof e->message - 1] = '\0';
    e->cause[sizeof e->cause - 1] = '\0';
    if ((unsigned)e->kind > SK_CRASH_ERROR || (unsigned)e->section > SK_FULL_RUN)
        sk_error_set_internal(e, SK_PROCESS_ERROR, SK_RUN, 0, SK_ECORRUPT,
                              "the worker's error record is corrupt");
    sk_error_sanitize(e); /* its reason and lives */
    e->item = (long)item;
}

/* Copies record r into out when it is this call's and one of the batch's
 * items: true if it did. */
static bool error_take(const struct shm_posted *c, uint32_t stamp, const struct shm_error_record *r,
                       sk_error *out)
{
    if (atomic_load_explicit(&r->stamp, memory_order_acquire) != stamp)
        return false; /* not written yet, or an earlier call's */
    uint64_t item = pool_peer_load64(&r->item);
    if (item < c->first || item - c->first >= c->count)
        return false;
    memcpy(out, &r->error, sizeof *out);
    error_settle(out, item);
    return true;
}

/* The batch's lead record (its first failure) first, then its records
 * among the call's. */
static size_t shm_errors(struct sk_pool_transport *t, uint32_t id, sk_error *out, size_t room)
{
    struct shm_transport *s = shm_of(t);
    const struct shm_posted *c = &s->posted[id];
    uint32_t stamp = s->calls[c->call].stamp;
    size_t got = 0;
    if (room > 0 && error_take(c, stamp, &s->arena.h->batch_errors[id], &out[0]))
        got++;
    uint32_t n = atomic_load(&s->arena.h->jobs[c->call].n_errors);
    if (n > POOL_ERRORS)
        n = POOL_ERRORS;
    const struct shm_error_record *r = shm_call_errors(&s->arena, c->call);
    for (uint32_t i = 0; i < n && got < room; i++)
        if (error_take(c, stamp, &r[i], &out[got]))
            got++;
    return got;
}

/* A batch goes back on top of the free stack: the next batch taken reuses
 * its pages while they are warm. */
static void shm_release(struct sk_pool_transport *t, uint32_t id)
{
    struct shm_transport *s = shm_of(t);
    const struct shm_posted *c = &s->posted[id];
    if (c->count > 0) {
        const struct shm_call *call = &s->calls[c->call];
        size_t per_item = sizeof(int32_t) + (call->shared_items ? 0 : call->item_size) +
                          (call->shared_results ? 0 : call->result_size);
        size_t bytes = (size_t)c->count * per_item;
        if (call->images)
            bytes = 2 * POOL_IMAGE_MAX; /* images: assume the worst */
        if (bytes > s->touched[id])
            s->touched[id] = bytes;
    }
    atomic_store_explicit(&s->arena.h->batches[id].state, SHM_BATCH_FREE, memory_order_release);
    s->free_batches[s->n_free++] = id;
}

/* With no call alive, the warmest batches keep their pages up to
 * SHM_WARM_BYTES (the next call reuses them without a page fault); the
 * rest, and the spilled results, are given back. */
static void shm_idle(struct sk_pool_transport *t)
{
    struct shm_transport *s = shm_of(t);
    size_t kept = 0;
    for (int i = s->n_free - 1; i >= 0; i--) { /* the top of the stack is the warmest */
        uint32_t d = s->free_batches[i];
        if (s->touched[d] == 0)
            continue;
        if (kept + s->touched[d] <= SHM_WARM_BYTES) {
            kept += s->touched[d];
            continue;
        }
        sk_shm_punch(s->arena.memfd, (uint64_t)(shm_batch_in(&s->arena, d) - s->arena.base),
                     2 * POOL_IMAGE_MAX);
        s->touched[d] = 0;
    }
    uint64_t spilled = atomic_exchange(&s->arena.h->spill_top, 0);
    if (spilled > 0)
        sk_shm_punch(s->arena.memfd, s->arena.size, spilled);
}

/* A worker claims a batch by moving it from READY to CLAIMED; taking it
 * back first means no worker will run it. */
static bool shm_revoke(struct sk_pool_transport *t, uint32_t id)
{
    struct shm_transport *s = shm_of(t);
    if (s->terminated)
        return false;
    uint32_t ready = SHM_BATCH_READY;
    return atomic_compare_exchange_strong(&s->arena.h->batches[id].state, &ready, SHM_BATCH_FREE);
}

/* ----------------------------------------------------------- event loops */

static int shm_notify_fd(struct sk_pool_transport *t)
{
    struct shm_transport *s = shm_of(t);
    s->notify_on = true;
    atomic_store(&s->arena.h->notify, 1);
    return s->arena.notify_fd;
}

/* The flag is in the arena: a worker may have cleared it, so it is written
 * again here (the parent's word is notify_on). */
static void shm_notify_clear(struct sk_pool_transport *t)
{
    struct shm_transport *s = shm_of(t);
    sk_doorbell_drain(s->arena.notify_fd);
    if (s->notify_on && atomic_load(&s->arena.h->notify) != 1)
        atomic_store(&s->arena.h->notify, 1);
}

/* ----------------------------------------------------------- class items */

/* The slots' batch and item words are the workers' (untrusted): they are
 * only compared with what the engine asks about, and the control words
 * written are inside the slot array whatever they say. */
static int shm_control(struct sk_pool_transport *t, uint32_t id, uint32_t k, bool kill)
{
    struct shm_transport *s = shm_of(t);
    struct shm_header *h = s->arena.h;
    if (s->terminated)
        return SK_ESTATE;
    for (int i = 0; i < s->n_workers; i++) {
        struct shm_worker_slot *slot = &h->workers[i];
        if (atomic_load(&slot->batch) != id + 1 || atomic_load(&slot->item) != k)
            continue;
        atomic_store(&slot->control_batch, id + 1);
        atomic_store(&slot->control_item, k);
        atomic_store_explicit(&slot->control, kill ? SHM_CONTROL_KILL : SHM_CONTROL_STOP,
                              memory_order_release);
        return SK_OK;
    }
    return SK_ESTATE;
}

/* -------------------------------------------------------------- workers */

static void shm_close(struct sk_pool_transport *t)
{
    struct shm_transport *s = shm_of(t);
    s->closing = true;
    atomic_store(&s->arena.h->closing, 1);
    wake_workers(s);
}

/* Every worker is killed before the arena says closing: a worker that saw
 * closing first would leave on its own while an earlier one was being
 * killed, and its end would read as a finish, not a kill (its KILL event
 * went missing in about one run in five of test_pool_events). */
static void shm_terminate(struct sk_pool_transport *t)
{
    struct shm_transport *s = shm_of(t);
    s->terminated = s->closing = true;
    for (int i = 0; i < s->n_workers; i++)
        if (s->workers[i].base.rt != NULL)
            sk_kill(&s->workers[i].base);
    atomic_store(&s->arena.h->closing, 1);
}

static int shm_join(struct sk_pool_transport *t, int64_t deadline)
{
    struct shm_transport *s = shm_of(t);
    for (int i = 0; i < s->n_workers; i++) {
        struct shm_worker *w = &s->workers[i];
        if (w->base.rt == NULL)
            continue;
        int64_t left = deadline - sk_now_ns();
        double secs = deadline == INT64_MAX ? -1 : (left > 0 ? left / 1e9 : 0);
        if (sk_wait(&w->base, secs) != SK_OK)
            return SK_ETIMEDOUT;
    }
    return SK_OK;
}

/* The workers' counts, each read once and kept consistent whatever a
 * worker wrote there: none below zero, failed within done, no overflow. */
static void shm_counters(struct sk_pool_transport *t, sk_pool_counters *out)
{
    const struct shm_header *h = shm_of(t)->arena.h;
    long done = atomic_load(&h->done), failed = atomic_load(&h->failed);
    long claimed = atomic_load(&h->claimed_items);
    out->done = done > 0 ? done : 0;
    out->failed = failed < 0 ? 0 : failed > out->done ? out->done : failed;
    out->in_flight = claimed > out->done ? claimed - out->done : 0;
}

/* ------------------------------------------------------- shared arrays */

/* First fit over the sorted allocations, in whole pages. Fresh pages read
 * as zeros: shm_shared_free punched the hole of every earlier one. */
static void *shm_shared_alloc(struct sk_pool_transport *t, size_t bytes)
{
    struct shm_transport *s = shm_of(t);
    size_t cap = s->arena.shared_size;
    if (bytes == 0 || bytes > cap) {
        (void)sk_refuse(SK_EINVAL, "sk_pool_alloc: %zu bytes (from 1 to %zu GiB)", bytes,
                        cap >> 30);
        return NULL;
    }
    uint64_t len = shm_page_round(bytes);
    if (s->n_blocks == s->cap_blocks) {
        size_t more = s->cap_blocks == 0 ? 16 : 2 * s->cap_blocks;
        struct shm_block *b = realloc(s->blocks, more * sizeof *b);
        if (b == NULL) {
            (void)sk_refuse(SK_ENOMEM, "sk_pool_alloc: out of memory for its bookkeeping");
            return NULL;
        }
        s->blocks = b;
        s->cap_blocks = more;
    }
    /* Large arrays start on a chunk of their own: workers map the region's
     * pages a chunk at a time (worker.c). */
    uint64_t align = len >= SHM_SHARED_CHUNK ? SHM_SHARED_CHUNK : 4096;
    uint64_t end = 0;
    size_t i = 0;
    for (; i < s->n_blocks; i++) {
        if (s->blocks[i].at >= end && s->blocks[i].at - end >= len)
            break;
        end = (s->blocks[i].at + s->blocks[i].len + align - 1) / align * align;
    }
    if (i == s->n_blocks && (end > cap || cap - end < len)) {
        (void)sk_refuse(SK_ENOMEM,
                        "sk_pool_alloc: no room for %zu bytes left in the pool's "
                        "%zu GiB shared region",
                        bytes, cap >> 30);
        return NULL;
    }
    memmove(&s->blocks[i + 1], &s->blocks[i], (s->n_blocks - i) * sizeof *s->blocks);
    s->blocks[i] = (struct shm_block){.at = end, .len = len};
    s->n_blocks++;
    return s->arena.shared + end;
}

/* The allocation holding offset off, or -1. */
static long shm_block_of(const struct shm_transport *s, uint64_t off)
{
    size_t lo = 0, hi = s->n_blocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->blocks[mid].at + s->blocks[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_blocks && s->blocks[lo].at <= off ? (long)lo : -1;
}

static bool shm_shared_find(struct sk_pool_transport *t, const void *p, size_t bytes, uint64_t *at,
                            const void **start)
{
    struct shm_transport *s = shm_of(t);
    uintptr_t base = (uintptr_t)s->arena.shared, q = (uintptr_t)p;
    if (p == NULL || q < base || q - base >= s->arena.shared_size)
        return false;
    uint64_t off = q - base;
    long i = shm_block_of(s, off);
    if (i < 0 || bytes > s->blocks[i].at + s->blocks[i].len - off)
        return false;
    *at = off;
    *start = s->arena.shared + s->blocks[i].at;
    return true;
}

static int shm_shared_free(struct sk_pool_transport *t, void *mem)
{
    struct shm_transport *s = shm_of(t);
    uint64_t at;
    const void *start;
    if (!shm_shared_find(t, mem, 1, &at, &start) || start != mem)
        return sk_refuse(SK_EINVAL,
                         "sk_pool_free: %p is not an allocation of this pool's "
                         "sk_pool_alloc",
                         mem);
    size_t i = (size_t)shm_block_of(s, at);
    sk_shm_punch(s->arena.shared_fd, s->blocks[i].at, s->blocks[i].len);
    atomic_fetch_add(&s->arena.h->shared_epoch, 1); /* the workers' mappings of it are gone */
    memmove(&s->blocks[i], &s->blocks[i + 1], (s->n_blocks - i - 1) * sizeof *s->blocks);
    s->n_blocks--;
    return SK_OK;
}

static void shm_destroy(struct sk_pool_transport *t)
{
    struct shm_transport *s = shm_of(t);
    s->closing = true;
    if (s->arena.h != NULL) {
        atomic_store(&s->arena.h->closing, 1);
        wake_workers(s);
    }
    for (int i = 0; i < s->n_workers; i++)
        sk_release(&s->workers[i].base); /* kills and reaps */
    free(s->workers);
    if (s->arena.base != NULL)
        munmap(s->arena.base, s->arena.size);
    if (s->arena.memfd >= 0)
        close(s->arena.memfd);
    if (s->arena.shared != NULL)
        munmap(s->arena.shared, s->arena.shared_size);
    if (s->arena.shared_fd >= 0)
        close(s->arena.shared_fd);
    free(s->blocks);
    if (s->arena.notify_fd >= 0)
        close(s->arena.notify_fd);
    free(s->init_arg);
    free(s);
}

static const struct pool_transport_ops shm_ops = {
    .open_call = shm_open_call,
    .end_posting = shm_end_posting,
    .take = shm_take,
    .post = shm_post,
    .flush = shm_flush,
    .poll = shm_poll,
    .epoch = shm_epoch,
    .wait = shm_wait,
    .output = shm_output,
    .result_image = shm_result_image,
    .errors = shm_errors,
    .release = shm_release,
    .idle = shm_idle,
    .revoke = shm_revoke,
    .notify_fd = shm_notify_fd,
    .notify_clear = shm_notify_clear,
    .control = shm_control,
    .shared_alloc = shm_shared_alloc,
    .shared_find = shm_shared_find,
    .shared_free = shm_shared_free,
    .close = shm_close,
    .terminate = shm_terminate,
    .join = shm_join,
    .counters = shm_counters,
    .destroy = shm_destroy,
};

int shm_transport_create(struct sk_pool_transport **out, const sk_pool_config *cfg)
{
    *out = NULL;
    struct shm_transport *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SK_ENOMEM;
    s->base.ops = &shm_ops;
    s->arena.memfd = -1;
    s->arena.shared_fd = -1;
    s->arena.notify_fd = -1;
    s->item_timeout = cfg->item_timeout;
    s->initializer = cfg->initializer;
    if (cfg->initializer != NULL && cfg->init_arg_size > 0) {
        if ((s->init_arg = malloc(cfg->init_arg_size)) == NULL) {
            free(s);
            return SK_ENOMEM;
        }
        memcpy(s->init_arg, cfg->init_arg, cfg->init_arg_size);
        s->init_arg_size = cfg->init_arg_size;
    }
    s->lives = cfg->lives;
    s->max_tasks = cfg->max_tasks;
    s->spin_ns =
        sk_seconds_to_ns(sk_spin_seconds(cfg->spin, cfg->no_spin, SK_DEFAULT_SPIN, SK_MAX_SPIN));
    for (int i = 0; i < POOL_BATCHES; i++) /* slot 0 on top: the first used */
        s->free_batches[s->n_free++] = (uint32_t)(POOL_BATCHES - 1 - i);
    int workers = cfg->workers < SHM_MAX_WORKERS ? cfg->workers : SHM_MAX_WORKERS;
    int rc = arena_create(&s->arena);
    if (rc == SK_OK) {
        s->arena.h->item_timeout = cfg->item_timeout;
        s->arena.h->lives = cfg->lives;
        s->arena.h->max_tasks = cfg->max_tasks;
        s->workers = calloc((size_t)workers, sizeof *s->workers);
        rc = s->workers != NULL ? SK_OK : SK_ENOMEM;
    }
    for (int i = 0; rc == SK_OK && i < workers; i++) {
        s->workers[i].on_event = cfg->on_event;
        s->workers[i].event_ctx = cfg->event_ctx;
        rc = shm_worker_start(&s->workers[i], &s->arena, i, shm_settings(s));
        if (rc == SK_OK)
            s->n_workers = i + 1;
    }
    if (rc == SK_OK && s->initializer != NULL)
        rc = wait_initializers(s);
    if (rc != SK_OK) {
        shm_destroy(&s->base);
        return rc;
    }
    s->base.workers = s->n_workers;
    *out = &s->base;
    return SK_OK;
}
