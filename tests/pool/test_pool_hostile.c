/* SPDX-License-Identifier: MIT */
/*
 * Pools, hostile workers: an item function (run in a worker, or in a class
 * item's own process) finds the pool's arena through /proc/self/maps (the
 * memfd "skproc-pool") and scribbles on it while the parent maps,
 * async_maps, imaps, streams, runs star functions, tpl records or class
 * items.
 *
 *   targeted  every field the parent (or the workers) read: the victim's
 *             batch descriptor, its job, its statuses and result index,
 *             the error records, the spill counter, the posting queue and
 *             its counters, the worker slots, the spinning hints and the
 *             header's settings,
 *             each with 0, all ones, a huge value, the right value plus
 *             one, and an address in the parent
 *   random    random bytes at random places of the header, the call's
 *             error records, the victim's result image and the whole arena
 *
 * Whatever was written, the parent does not crash, does not wait past the
 * caller's timeout (sk_pool_map, which has none, runs only where no
 * scribble can stall the queue, with an item_timeout), returns documented
 * codes, gets every result the scribble could not reach right, and the
 * pool either runs the next call right (scribbles that cost one batch or
 * one call) or is terminated and released with no child left.
 *
 * The arena's layout comes from the pool's private header
 * (pool/shm_arena.h): these tests are about that transport.
 * HOSTILE_TRACE=1 in the environment prints each run's outcome and time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pool_support.h"

#include "pool/shm_arena.h"

#define N_ITEMS 120
#define BATCH 12
#define VICTIM 57 /* item 9 of the batch 48..59 */
#define N_CLASS 30
#define BATCH_CLASS 3
#define VICTIM_CLASS 16 /* item 1 of the batch 15..17 */
#define FAILS(i) ((i) % 10 == 3)
#define FAIL_CODE 9

/* ------------------------------------------------------------ the scribble */

enum target {
    /* the victim's batch (scope: that batch) */
    T_B_FIRST,
    T_B_COUNT,
    T_B_CALL,
    T_B_FAILED,
    T_STATUS,
    T_STATUS_ALL,
    T_INDEX,
    T_INDEX_LEN,
    T_INDEX_ALL,
    T_LAST_BATCH_SCOPE = T_INDEX_ALL,
    /* the victim's call (scope: that call) */
    T_J_ITEM_SIZE,
    T_J_RESULT_SIZE,
    T_J_FORMATS,
    T_J_TPL,
    T_J_N_FIELDS,
    T_J_OFFSETS,
    T_J_N_ERRORS,
    T_J_STAMP,
    T_ERRORS,
    T_SPILL_TOP,
    T_LAST_CALL_SCOPE = T_SPILL_TOP,
    /* the pool (scope: anything documented, then terminate) */
    T_B_STATE,
    T_QUEUE,
    T_POSTED,
    T_CLAIMED,
    T_DONE,
    T_FAILED,
    T_CLAIMED_ITEMS,
    T_DONE_SEQ,
    T_IDLE_WORKERS,
    T_SPIN_WORDS,
    T_CLOSING,
    T_POSTING_CALLS,
    T_SLOTS,
    T_ITEM_TIMEOUT,
    T_LIVES,
    T_MAX_TASKS,
    N_TARGETS,
    T_RANDOM = N_TARGETS
};

enum scope { S_BATCH, S_CALL, S_POOL };

enum variant { V_ZERO, V_ONES, V_HUGE, V_OFF1, V_PTR, N_VARIANTS };

/* What the victim does, in memory shared with every worker and class
 * process (made before the pool). */
struct hostile {
    int target, variant, writes;
    uint32_t seed;
    long victim; /* the item that scribbles, once; -1: none */
    int fired;   /* it ran */
    int found;   /* it found its batch in the arena */
};

static struct hostile *hs;
static int hostile_anchor; /* an address in the parent's memory */

static enum scope scope_of(int target)
{
    return target <= T_LAST_BATCH_SCOPE ? S_BATCH : target <= T_LAST_CALL_SCOPE ? S_CALL : S_POOL;
}

/* The batch being run that holds item idx. */
static bool find_batch(struct shm_header *h, uint64_t idx, uint32_t *d)
{
    for (uint32_t i = 0; i < POOL_BATCHES; i++) {
        struct shm_batch *b = &h->batches[i];
        if (atomic_load(&b->state) == SHM_BATCH_CLAIMED && idx >= b->first &&
            idx - b->first < b->count) {
            *d = i;
            return true;
        }
    }
    return false;
}

static uint64_t val(int variant, uint64_t right)
{
    switch (variant) {
    case V_ZERO:
        return 0;
    case V_ONES:
        return UINT64_MAX;
    case V_HUGE:
        return UINT64_C(0x4000000040000000);
    case V_OFF1:
        return right + 1;
    default:
        return (uint64_t)(uintptr_t)&hostile_anchor;
    }
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void scribble_random(unsigned char *base, uint32_t call, uint32_t d)
{
    uint32_t rng = hs->seed * 2654435761u + 1;
    size_t calls = shm_calls_offset() + (size_t)(call % POOL_CALLS) * shm_call_region_size();
    size_t out = shm_batches_offset() + (size_t)d * 2 * POOL_IMAGE_MAX + POOL_IMAGE_MAX;
    for (int w = 0; w < hs->writes; w++) {
        size_t at;
        switch (xorshift(&rng) % 8) {
        case 0:
        case 1:
        case 2:
        case 3:
            at = xorshift(&rng) % sizeof(struct shm_header);
            break;
        case 4:
            at = calls + POOL_ARG_MAX + xorshift(&rng) % (64 * 1024);
            break;
        case 5:
        case 6:
            at = out + xorshift(&rng) % 4096;
            break;
        default:
            at = (((size_t)xorshift(&rng) << 32) | xorshift(&rng)) % (shm_arena_size() - 16);
        }
        int len = 1 + (int)(xorshift(&rng) % 8);
        uint32_t kind = xorshift(&rng) % 4;
        for (int i = 0; i < len; i++)
            base[at + (size_t)i] = kind == 0 ? 0 : kind == 1 ? 0xff : (unsigned char)xorshift(&rng);
    }
}

/* An error record scribbled by way v, stamped as the call's (so the
 * parent reads it) unless v is V_ZERO; V_OFF1 makes it name `item`. */
static void scribble_record(struct shm_error_record *r, int v, uint64_t item, uint32_t stamp)
{
    r->item = v == V_OFF1 ? item : val(v, r->item);
    r->error.kind = (sk_error_kind)val(v, SK_CRASH_ERROR);
    r->error.section = (sk_section)val(v, SK_FULL_RUN);
    r->error.item = (long)val(v, 0);
    r->error.lives_spent = (int)val(v, 0);
    memset(r->error.message, 'M', sizeof r->error.message);
    memset(r->error.cause, 'C', sizeof r->error.cause);
    atomic_store(&r->stamp, v == V_ZERO ? 0 : stamp);
}

static void scribble_target(unsigned char *base, struct shm_header *h, uint32_t d, uint64_t idx)
{
    struct shm_batch *b = &h->batches[d];
    uint32_t call = b->call % POOL_CALLS, count = b->count;
    uint64_t first = b->first;
    uint32_t k = (uint32_t)(idx - first);
    struct shm_job *j = &h->jobs[call];
    unsigned char *out =
        base + shm_batches_offset() + (size_t)d * 2 * POOL_IMAGE_MAX + POOL_IMAGE_MAX;
    int32_t *status = (int32_t *)(void *)out;
    uint64_t *index = (uint64_t *)(void *)(out + pool_results_at(count));
    uint32_t prev = k > 0 ? k - 1 : 0;
    int v = hs->variant;
    switch (hs->target) {
    case T_B_FIRST:
        b->first = val(v, first);
        break;
    case T_B_COUNT:
        b->count = (uint32_t)val(v, count);
        break;
    case T_B_CALL:
        b->call = (uint32_t)val(v, call);
        break;
    case T_B_FAILED:
        b->failed = (uint32_t)val(v, b->failed);
        break;
    case T_STATUS:
        status[k] = (int32_t)val(v, (uint32_t)status[k]);
        break;
    case T_STATUS_ALL:
        for (uint32_t i = 0; i < count; i++)
            status[i] = (int32_t)val(v, (uint32_t)status[i]);
        break;
    case T_INDEX:
        index[2 * prev] = val(v, index[2 * prev]);
        break;
    case T_INDEX_LEN:
        index[2 * prev + 1] = val(v, index[2 * prev + 1]);
        break;
    case T_INDEX_ALL:
        for (uint32_t i = 0; i < 2 * count; i++)
            index[i] = val(v, index[i]);
        break;
    /* Sizes: "all ones" is 2^63 here. Workers trust the job's sizes, and
     * with 2^64 - 1 a worker's memset of its results runs backwards from
     * its batch through the whole 16 GiB arena, making it resident. */
    case T_J_ITEM_SIZE:
        j->job.item_size = v == V_ONES ? UINT64_C(1) << 63 : val(v, j->job.item_size);
        break;
    case T_J_RESULT_SIZE:
        j->job.result_size = v == V_ONES ? UINT64_C(1) << 63 : val(v, j->job.result_size);
        break;
    case T_J_FORMATS:
        memset(j->job.item_format, v == V_ZERO ? 0 : "S(s#$"[v], POOL_FORMAT_MAX);
        memset(j->job.result_format, v == V_ZERO ? 0 : "S(s#$"[v], POOL_FORMAT_MAX);
        break;
    case T_J_TPL:
        j->job.item_tpl = (uint32_t)val(v, j->job.item_tpl);
        j->job.result_tpl = (uint32_t)val(v, j->job.result_tpl);
        break;
    case T_J_N_FIELDS:
        j->job.n_fields = (uint32_t)val(v, j->job.n_fields);
        break;
    case T_J_OFFSETS:
        for (int f = 0; f < POOL_MAX_FIELDS; f++)
            j->job.field_offsets[f] = val(v, j->job.field_offsets[f]);
        break;
    case T_J_N_ERRORS:
        atomic_store(&j->n_errors, (uint32_t)val(v, atomic_load(&j->n_errors)));
        break;
    case T_J_STAMP:
        j->stamp = (uint32_t)val(v, j->stamp);
        break;
    case T_ERRORS: {
        struct shm_error_record *r = shm_call_errors(
            &(struct shm_arena){.base = base, .size = shm_arena_size(), .h = h}, call);
        for (uint32_t i = 0; i < 64; i++)
            scribble_record(&r[i], v, first + i % count, j->stamp);
        scribble_record(&h->batch_errors[d], v, first + k, j->stamp); /* the batch's lead */
        if (atomic_load(&j->n_errors) < 64)
            atomic_store(&j->n_errors, 64);
        break;
    }
    case T_SPILL_TOP:
        atomic_store(&h->spill_top, val(v, atomic_load(&h->spill_top)));
        break;
    case T_B_STATE:
        atomic_store(&b->state, (uint32_t)val(v, SHM_BATCH_CLAIMED));
        break;
    case T_QUEUE:
        for (int q = 0; q < POOL_BATCHES; q++)
            atomic_store(&h->queue[q], (uint32_t)val(v, atomic_load(&h->queue[q])));
        break;
    case T_POSTED:
        atomic_store(&h->posted, val(v, atomic_load(&h->posted)));
        break;
    case T_CLAIMED:
        atomic_store(&h->claimed, val(v, atomic_load(&h->claimed)));
        break;
    case T_DONE:
        atomic_store(&h->done, (long)val(v, (uint64_t)atomic_load(&h->done)));
        break;
    case T_FAILED:
        atomic_store(&h->failed, (long)val(v, (uint64_t)atomic_load(&h->failed)));
        break;
    case T_CLAIMED_ITEMS:
        atomic_store(&h->claimed_items, (long)val(v, (uint64_t)atomic_load(&h->claimed_items)));
        break;
    case T_DONE_SEQ:
        atomic_store(&h->done_seq, (uint32_t)val(v, atomic_load(&h->done_seq)));
        break;
    case T_IDLE_WORKERS:
        atomic_store(&h->idle_workers, (uint32_t)val(v, atomic_load(&h->idle_workers)));
        break;
    case T_SPIN_WORDS: /* who spins, and where: hints that decide only whether one spins */
        atomic_store(&h->spinner, (uint32_t)val(v, atomic_load(&h->spinner)));
        atomic_store(&h->spinner_cpu, (int32_t)val(v, (uint64_t)atomic_load(&h->spinner_cpu)));
        atomic_store(&h->parent_cpu, (int32_t)val(v, (uint64_t)atomic_load(&h->parent_cpu)));
        break;
    case T_CLOSING:
        atomic_store(&h->closing, (uint32_t)val(v, 0));
        break;
    case T_POSTING_CALLS:
        atomic_store(&h->posting_calls, (uint32_t)val(v, atomic_load(&h->posting_calls)));
        break;
    case T_SLOTS:
        for (int w = 0; w < SHM_MAX_WORKERS; w++) {
            struct shm_worker_slot *s = &h->workers[w];
            atomic_store(&s->batch, (uint32_t)val(v, atomic_load(&s->batch)));
            atomic_store(&s->item, (uint32_t)val(v, atomic_load(&s->item)));
            atomic_store(&s->run, (uint32_t)val(v, atomic_load(&s->run)));
            s->attempts = (uint32_t)val(v, s->attempts);
            atomic_store(&s->recycled, (uint32_t)val(v, atomic_load(&s->recycled)));
        }
        break;
    case T_ITEM_TIMEOUT: {
        static const double t[N_VARIANTS] = {0, -1, 1e300, 0, 1e-9};
        h->item_timeout = v == V_OFF1 ? h->item_timeout + 1 : t[v];
        break;
    }
    case T_LIVES:
        h->lives = (int)val(v, (uint64_t)h->lives);
        break;
    case T_MAX_TASKS:
        /* 1 for "huge": a worker recycled at every item (a real huge
         * budget is the default) */
        h->max_tasks = v == V_HUGE ? 1 : (long)val(v, (uint64_t)h->max_tasks);
        break;
    default:
        break;
    }
}

/* Called by every item with its index: the victim scribbles, once. */
static void hostile_act(uint64_t idx)
{
    if (hs == NULL || (long)idx != __atomic_load_n(&hs->victim, __ATOMIC_ACQUIRE))
        return;
    if (__atomic_exchange_n(&hs->fired, 1, __ATOMIC_ACQ_REL))
        return;
    unsigned char *base = find_arena();
    uint32_t d;
    if (base == NULL || !find_batch((struct shm_header *)(void *)base, idx, &d))
        return;
    __atomic_store_n(&hs->found, 1, __ATOMIC_RELEASE);
    struct shm_header *h = (struct shm_header *)(void *)base;
    if (hs->target == T_RANDOM)
        scribble_random(base, h->batches[d].call, d);
    else
        scribble_target(base, h, d, idx);
}

/* ------------------------------------------------------------ the jobs */

typedef struct {
    int32_t index;
    int32_t salt;
} pair;

typedef struct {
    char *name;
    int32_t n;
} named;

static int h_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    /* Copied out: a scribbled batch descriptor may hand this worker an item
     * at any address (only values are damaged; the parent checks them). */
    pair p;
    memcpy(&p, item, sizeof p);
    hostile_act((uint64_t)p.index);
    if (FAILS(p.index))
        return FAIL_CODE;
    int64_t twice = 2 * (int64_t)p.index;
    memcpy(result, &twice, sizeof twice);
    return 0;
}

/* The range form: h_fn over each item of the run; the run fails when one
 * of its items does (the pool then runs them one at a time). */
static int h_range(const void *items, void *results, size_t count, const void *arg)
{
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        int item_rc = h_fn((const pair *)items + i, (int64_t *)results + i, arg);
        if (item_rc != 0)
            rc = item_rc;
    }
    return rc;
}

static int h_star(void *const *fields, void *result, const void *arg)
{
    (void)arg;
    int32_t idx, salt; /* copied, as in h_fn: the addresses may be any */
    memcpy(&idx, fields[0], sizeof idx);
    memcpy(&salt, fields[1], sizeof salt);
    hostile_act((uint64_t)idx);
    if (FAILS(idx))
        return FAIL_CODE;
    int64_t value = 2 * (int64_t)idx + salt;
    memcpy(result, &value, sizeof value);
    return 0;
}

static int h_tpl(const void *item, void *result, const void *arg)
{
    (void)arg;
    const named *it = item;
    hostile_act((uint64_t)it->n);
    if (FAILS(it->n))
        return FAIL_CODE;
    char *s = malloc(32);
    if (s == NULL)
        return 1;
    snprintf(s, 32, "%s/%d", it->name != NULL ? it->name : "?", (int)it->n);
    *(char **)result = s;
    return 0;
}

typedef struct {
    sk_process base;
    pair item;
} h_proc;

static int h_init(sk_process *self, const void *item)
{
    memcpy(&SK_CONTAINER_OF(self, h_proc, base)->item, item, sizeof(pair));
    self->config.runs = 1;
    return 0;
}

static int h_run(sk_process *self)
{
    const pair *p = &SK_CONTAINER_OF(self, h_proc, base)->item;
    hostile_act((uint64_t)p->index);
    if (FAILS(p->index))
        return sk_fail(self, FAIL_CODE, "item %d fails", (int)p->index);
    return 0;
}

static int h_result(sk_process *self)
{
    int64_t v = 2 * (int64_t)SK_CONTAINER_OF(self, h_proc, base)->item.index;
    return sk_return(self, "I", &v);
}

static const sk_class h_class = {
    .name = "hostile", .run = h_run, .result = h_result, .size = sizeof(h_proc), .init = h_init};

enum mode { M_MAP, M_ASYNC, M_IMAP, M_UIMAP, M_STREAM, M_STAR, M_TPL, M_CLASS, M_RANGE, N_MODES };

static const char *const mode_names[N_MODES] = {
    "map", "async_map", "imap", "unordered_imap", "stream", "star", "tpl", "class", "range"};

/* One run: its mode, its items and what came back. */
struct run {
    int mode;
    size_t n, batch;
    long victim;
    sk_pool_job job;
    void *items;
    int64_t *results; /* char * for M_TPL */
    int *status;
    sk_pool_call *call;
    int rc;
};

static int produce(void *state, void *item)
{
    size_t *next = state;
    if (*next >= N_ITEMS)
        return 0;
    *(pair *)item = (pair){.index = (int32_t)*next, .salt = 0};
    ++*next;
    return 1;
}

static void run_init(struct run *r, int mode)
{
    memset(r, 0, sizeof *r);
    r->mode = mode;
    r->n = mode == M_CLASS ? N_CLASS : N_ITEMS;
    r->batch = mode == M_CLASS ? BATCH_CLASS : BATCH;
    r->victim = mode == M_CLASS ? VICTIM_CLASS : VICTIM;
    r->results = xcalloc(r->n, sizeof *r->results);
    r->status = xcalloc(r->n, sizeof *r->status);
    if (mode == M_TPL) {
        named *items = xcalloc(r->n, sizeof *items);
        for (size_t i = 0; i < r->n; i++)
            items[i] = (named){.name = "item", .n = (int32_t)i};
        r->items = items;
        r->job = (sk_pool_job){.fn = h_tpl,
                               .item_size = sizeof(named),
                               .item_format = "S(si)",
                               .result_size = sizeof(char *),
                               .result_format = "s"};
        return;
    }
    pair *items = xcalloc(r->n, sizeof *items);
    for (size_t i = 0; i < r->n; i++)
        items[i] = (pair){.index = (int32_t)i, .salt = 0};
    r->items = items;
    if (mode == M_STAR)
        r->job = (sk_pool_job){.star = h_star,
                               .item_size = sizeof(pair),
                               .item_format = "S(ii)",
                               .result_size = sizeof(int64_t)};
    else if (mode == M_CLASS)
        r->job = (sk_pool_job){.cls = &h_class,
                               .item_size = sizeof(pair),
                               .result_size = sizeof(int64_t),
                               .result_format = "I"};
    else if (mode == M_RANGE)
        r->job = (sk_pool_job){
            .range = h_range, .item_size = sizeof(pair), .result_size = sizeof(int64_t)};
    else
        r->job =
            (sk_pool_job){.fn = h_fn, .item_size = sizeof(pair), .result_size = sizeof(int64_t)};
}

static void run_free(struct run *r)
{
    for (size_t i = 0; r->mode == M_TPL && i < r->n; i++)
        free(((char **)(void *)r->results)[i]);
    if (r->call != NULL)
        free_call(r->call);
    xfree(r->items);
    xfree(r->results);
    xfree(r->status);
}

#define NO_STATUS 12345

/* Runs r on the pool, each wait bounded by timeout (sk_pool_map: none);
 * checks that no wait overran it. */
static void run_go(sk_pool *pool, struct run *r, double timeout)
{
    for (size_t i = 0; i < r->n; i++)
        r->status[i] = NO_STATUS;
    double t0 = skt_now();
    double slack = 5.0 * skt_slowdown();
    if (r->mode == M_MAP) {
        r->rc = sk_pool_map(pool, &r->job, r->items, r->n, r->results, r->status);
        return;
    }
    if (r->mode != M_IMAP && r->mode != M_UIMAP && r->mode != M_STREAM) {
        assert_rc(sk_pool_async_map(pool, &r->job, r->items, r->n, r->results, r->status, &r->call),
                  SK_OK);
        track_call(r->call);
        r->rc = sk_pool_get(r->call, timeout);
        assert_cmp(skt_now() - t0, <=, timeout + slack);
        return;
    }
    static size_t next;
    next = 0;
    if (r->mode == M_STREAM)
        assert_rc(sk_pool_imap_stream(pool, &r->job, produce, &next, true, &r->call), SK_OK);
    else if (r->mode == M_IMAP)
        assert_rc(sk_pool_imap(pool, &r->job, r->items, r->n, &r->call), SK_OK);
    else
        assert_rc(sk_pool_unordered_imap(pool, &r->job, r->items, r->n, &r->call), SK_OK);
    track_call(r->call);
    r->rc = SK_OK;
    for (size_t got = 0; got <= r->n; got++) {
        size_t idx = SIZE_MAX;
        int64_t res = -1;
        double t1 = skt_now();
        int rc = sk_pool_next(r->call, timeout, &idx, &res);
        assert_cmp(skt_now() - t1, <=, timeout + slack);
        if (rc == SK_ECLOSED)
            return;
        if (rc != SK_OK && rc != SK_EPROCESS) {
            assert_true(rc == SK_ETIMEDOUT || rc == SK_EKILLED);
            r->rc = rc;
            return;
        }
        assert_cmp(idx, <, r->n);
        assert_cmp(r->status[idx], ==, NO_STATUS); /* each index once */
        r->status[idx] = rc;
        if (rc == SK_OK)
            r->results[idx] = res;
    }
    fail_msg("more results than items");
}

static bool right_result(const struct run *r, size_t i)
{
    if (r->mode == M_TPL) {
        char want[32];
        snprintf(want, sizeof want, "item/%d", (int)i);
        const char *got = ((char **)(void *)r->results)[i];
        return got != NULL && strcmp(got, want) == 0;
    }
    return r->results[i] == 2 * (int64_t)i;
}

static bool documented(int rc)
{
    return rc <= SK_OK && rc >= SK_ECORRUPT;
}

/* What every run keeps, whatever was scribbled: documented codes, sane
 * error records. With strict, every item outside the victim's batch is
 * right (its value, or its designed failure and record). */
static void run_check(const struct run *r, bool strict)
{
    assert_true(documented(r->rc));
    if (r->rc == SK_ETIMEDOUT || r->rc == SK_EKILLED)
        return;
    size_t vb = (size_t)r->victim / r->batch * r->batch;
    for (size_t i = 0; i < r->n; i++) {
        int s = r->status[i];
        if (!documented(s)) {
            print_error("item %zu: status %d\n", i, s);
            fail();
        }
        const sk_error *e = r->call != NULL ? sk_pool_item_error(r->call, i) : NULL;
        if (e != NULL) {
            assert_cmp(e->item, ==, (long)i);
            assert_cmp((unsigned)e->kind, <=, (unsigned)SK_CRASH_ERROR);
            assert_cmp((unsigned)e->section, <=, (unsigned)SK_FULL_RUN);
            assert_cmp(strnlen(e->message, sizeof e->message), <, sizeof e->message);
            assert_cmp(strnlen(e->cause, sizeof e->cause), <, sizeof e->cause);
        }
        if (!strict || (i >= vb && i < vb + r->batch))
            continue;
        if (FAILS(i)) {
            assert_cmp(s, ==, SK_EPROCESS);
            if (r->call != NULL) {
                assert_non_null(e);
                assert_cmp(e->code, ==, FAIL_CODE);
            }
        } else {
            if (s != SK_OK || !right_result(r, i))
                print_error("item %zu: status %d, result %lld\n", i, s, (long long)r->results[i]);
            assert_cmp(s, ==, SK_OK);
            assert_true(right_result(r, i));
        }
    }
    const sk_error *first = r->call != NULL ? sk_pool_error(r->call) : NULL;
    if (first != NULL)
        assert_cmp(first->item, <, (long)r->n);
}

/* A pool whose workers (and their supervisors, and the processes of
 * class items) crash the plain way: a scribble makes workers dereference
 * what it wrote, and cmocka's handlers, inherited by fork, would catch the
 * fault there and go on running tests in the worker. */
static sk_pool *new_pool_plain_crashes(const sk_pool_config *cfg)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    struct sigaction saved[sizeof sigs / sizeof sigs[0]];
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, &saved[i]);
    sk_pool *pool = new_pool(cfg);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &saved[i], NULL);
    return pool;
}

/* One scribble: a fresh pool, a run of `mode` whose victim scribbles, then
 * a clean run (async_map) on the same pool, then release. */
static void one_scribble(int target, int variant, int mode, uint32_t seed)
{
    int scope = target == T_RANDOM ? S_POOL : scope_of(target);
    if (scope == S_POOL && mode == M_MAP)
        mode = M_ASYNC; /* a stalled queue would wait forever */
    hs->target = target;
    hs->variant = variant;
    hs->seed = seed;
    hs->writes = 1 + (int)(seed % 16);
    hs->fired = hs->found = 0;
    /* Only a forged queue entry, claimed counter or posted counter may leave
     * posts unclaimed for good (a posted counter forged high lets workers
     * claim phantom posts, which moves claimed past the real ones before the
     * parent writes posted again); the rest must let the call finish. */
    bool may_stall =
        target == T_QUEUE || target == T_CLAIMED || target == T_POSTED || target == T_RANDOM;
    double timeout = may_stall ? 1.0 : 20.0;

    sk_pool_config cfg = small_cfg(2);
    cfg.batch = mode == M_CLASS ? BATCH_CLASS : BATCH;
    if (mode == M_MAP)
        cfg.item_timeout = 10.0;
    sk_pool *pool = new_pool_plain_crashes(&cfg);

    struct run r;
    run_init(&r, mode);
    __atomic_store_n(&hs->victim, r.victim, __ATOMIC_RELEASE);
    double t0 = skt_now();
    run_go(pool, &r, timeout);
    __atomic_store_n(&hs->victim, -1L, __ATOMIC_RELEASE);
    if (getenv("HOSTILE_TRACE") != NULL)
        print_message("target %d variant %d mode %s seed %u: rc %d in %.2f s\n", target, variant,
                      mode_names[mode], seed, r.rc, skt_now() - t0);
    if (r.rc != SK_ETIMEDOUT && target != T_RANDOM) {
        if (!hs->found)
            print_error("target %d variant %d mode %s: the victim did not scribble\n", target,
                        variant, mode_names[mode]);
        assert_true(hs->found);
    }
    if (!may_stall && r.rc != SK_OK && r.rc != SK_EPROCESS && r.rc != SK_ECORRUPT)
        print_error("target %d variant %d mode %s: rc %d\n", target, variant, mode_names[mode],
                    r.rc);
    if (!may_stall)
        assert_true(r.rc == SK_OK || r.rc == SK_EPROCESS || r.rc == SK_ECORRUPT);
    run_check(&r, scope == S_BATCH);
    sk_pool_counters counters;
    sk_pool_counters_of(pool, &counters);
    assert_cmp(counters.done, >=, 0);
    assert_cmp(counters.failed, >=, 0);
    assert_cmp(counters.failed, <=, counters.done);
    assert_cmp(counters.in_flight, >=, 0);
    bool stalled = r.rc == SK_ETIMEDOUT;
    if (stalled)
        sk_pool_terminate(pool);
    run_free(&r);

    if (!stalled) { /* the pool goes on */
        struct run after;
        run_init(&after, M_ASYNC);
        run_go(pool, &after, may_stall ? 1.0 : 20.0);
        if (scope != S_POOL) {
            assert_rc(after.rc, SK_EPROCESS);
            run_check(&after, true);
            size_t vb = (size_t)after.victim / after.batch * after.batch;
            for (size_t i = vb; i < vb + after.batch; i++) { /* the victim's batch too */
                assert_cmp(after.status[i], ==, FAILS(i) ? SK_EPROCESS : SK_OK);
                assert_true(FAILS(i) || right_result(&after, i));
            }
        } else {
            run_check(&after, false);
        }
        if (after.rc == SK_ETIMEDOUT)
            sk_pool_terminate(pool);
        run_free(&after);
    }
    release_pool(pool);
    assert_no_children();
}

static void scribble_targets(int from, int to)
{
    hs = skt_shared(sizeof *hs);
    hs->victim = -1;
    skt_bound(60.0 + 10.0 * (to - from + 1));
    for (int t = from; t <= to; t++)
        for (int v = 0; v < N_VARIANTS; v++)
            one_scribble(t, v, (t * N_VARIANTS + v) % N_MODES, 0);
}

/* Each field of the victim's batch: that batch may be lost, nothing else. */
static void test_scribble_batch(void **state)
{
    (void)state;
    scribble_targets(0, T_LAST_BATCH_SCOPE);
}

/* Each field of the call's job, its error records and the spill counter:
 * that call may be lost; the next call is right. */
static void test_scribble_call(void **state)
{
    (void)state;
    scribble_targets(T_LAST_BATCH_SCOPE + 1, T_LAST_CALL_SCOPE);
}

/* The queue, its counters, the worker slots, the header's settings: any
 * documented outcome within the caller's timeout, and a clean release. */
static void test_scribble_pool(void **state)
{
    (void)state;
    scribble_targets(T_LAST_CALL_SCOPE + 1, N_TARGETS - 1);
}

/* Every mode against the scribbles that cost one batch. */
static void test_scribble_every_mode(void **state)
{
    (void)state;
    hs = skt_shared(sizeof *hs);
    hs->victim = -1;
    skt_bound(60.0 + 5.0 * N_MODES * 4);
    static const int targets[] = {T_B_FIRST, T_STATUS_ALL, T_INDEX_ALL, T_ERRORS};
    for (int m = 0; m < N_MODES; m++)
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++)
            one_scribble(targets[t], V_ONES, m, 0);
}

/* Random bytes at random places, many seeds (fewer when slowed down). */
static void test_scribble_random(void **state)
{
    (void)state;
    hs = skt_shared(sizeof *hs);
    hs->victim = -1;
    int seeds = skt_slowdown() > 1 || SKT_SANITIZED ? 12 : 64;
    skt_bound(60.0 + 4.0 * seeds);
    for (int s = 1; s <= seeds; s++)
        one_scribble(T_RANDOM, 0, M_ASYNC + s % (N_MODES - 1), (uint32_t)s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_scribble_batch),  SKT_TEST(test_scribble_call),
        SKT_TEST(test_scribble_pool),   SKT_TEST(test_scribble_every_mode),
        SKT_TEST(test_scribble_random),
    };
    return skt_run(argc, argv, tests);
}
