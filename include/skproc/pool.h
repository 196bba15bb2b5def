/* SPDX-License-Identifier: MIT */
/*
 * skproc pools: N persistent worker processes that apply a function (or run
 * a process class) to many items.
 *
 *     sk_pool *pool;
 *     sk_pool_create(&pool, NULL);                      // one worker per CPU
 *     sk_pool_job job = {.fn = square, .item_size = sizeof(int32_t),
 *                        .result_size = sizeof(int64_t)};
 *     sk_pool_map(pool, &job, items, n, results, NULL); // results[i] = f(items[i])
 *     sk_pool_release(pool);
 *
 * Items and results are records in arrays of your own. Plain records (no
 * pointers) travel as bytes, with no serialization; records with pointers
 * (strings, buffers) are described by a tpl format and travel as tpl
 * images. Work is handed out in batches through shared memory, so a tiny
 * item costs nanoseconds, not a system call.
 *
 * Workers are forked when the pool is created: the function, its argument
 * bytes and the class must exist in the program then (they do for anything
 * linked in; not for a library dlopen'ed later). A worker is itself an skproc
 * process: a crash or a per-item timeout kills only that worker, which is
 * replaced; the item fails with SK_CRASH_ERROR or SK_TIMEOUT_ERROR, or is
 * tried again while it has lives. Nothing hangs and no item is lost.
 *
 * Memory: a pool maps about 32 GiB of address space (a shared arena, and a
 * region for zero-copy arrays: sk_pool_alloc; only written pages take
 * memory). Between calls it keeps the pages of its most
 * recently used batches, up to 256 MiB, so the next call runs without page
 * faults; the rest is given back when no call is alive.
 *
 * Threads: a pool and its calls are used from one thread at a time.
 */
#ifndef SKPROC_POOL_H
#define SKPROC_POOL_H

#ifndef SKPROC_H
#error "include <skproc.h>, which includes this file"
#endif

typedef struct sk_pool sk_pool;
typedef struct sk_pool_call sk_pool_call;

/* How far a map has come: what a progress callback receives. */
typedef struct sk_pool_progress {
    size_t done;    /* items finished, failed or not */
    size_t total;   /* items in the call */
    size_t failed;  /* items that failed */
    double elapsed; /* seconds since the call started */
    double rate;    /* items per second so far */
    double eta;     /* seconds left at that rate; NAN while unknown */
    bool finished;  /* the last report of this call */
} sk_pool_progress;

/* Called in the thread that waits for the map (sk_pool_map, sk_pool_get,
 * sk_pool_wait), at most every 0.1 s and once more when the call is done.
 * It must not call into the same pool. */
typedef void (*sk_pool_progress_fn)(const sk_pool_progress *progress, void *ctx);

/* For every field, zero (or lower) means the default. */
typedef struct sk_pool_config {
    int workers;         /* worker processes; default: the number of online CPUs */
    long max_tasks;      /* items a worker handles before it is replaced; default: no limit */
    double item_timeout; /* seconds one item may take; default: none */
    int lives;           /* attempts per item (after an error, a crash or a timeout); default 1 */
    long batch;          /* items per batch; default: chosen from the call's size */
    bool no_progress;    /* never draw a progress bar, even with progress_bar (kept for
                          * programs written when the bar was on by default) */
    bool progress_bar;   /* draw a bar on stderr, when it is a terminal, for maps that take
                          * more than half a second; default: no bar */
    sk_pool_progress_fn progress; /* called with the map's progress; default: none */
    void *progress_ctx;           /* handed to progress */
    /* Run once in each worker after it starts (also in a worker started to
     * replace one), before it takes any item, with a copy of the
     * init_arg_size bytes at init_arg (at most 64 KiB; copied when the pool
     * is created). Return 0, or non-zero: that worker leaves. When the first
     * workers fail it, sk_pool_create fails with SK_EPROCESS (see
     * sk_last_error_message); when a replacement fails it, the items it
     * would have run fail with SK_EPROCESS instead. Default: none. */
    int (*initializer)(const void *init_arg);
    const void *init_arg;
    size_t init_arg_size;
    /* Called in the parent for what happens to the workers (sk_event in
     * skproc.h): START when one is forked, CRASH or TIMEOUT when one dies on
     * an item (ev->item: its index in its call), RESTART when a fresh one
     * replaces it (also after max_tasks), KILL and FINISH when it leaves;
     * ev->worker is its slot. Delivered in the
     * thread that calls into the pool, while it waits for results, and at the
     * latest by sk_pool_join or sk_pool_release. Default: none. */
    sk_event_fn on_event;
    void *event_ctx; /* handed to on_event */
    /* Seconds an idle worker spins for the next batch, and the waiting
     * caller for a result while a worker is idle, before they sleep (see
     * sk_config.spin); default: SK_DEFAULT_SPIN with two or more CPUs, none
     * with one; at most SK_MAX_SPIN. */
    float spin;
    bool no_spin; /* never spin */
    /* Room for later settings without an ABI break: zero it (designated
     * initializers or memset). */
    char reserved[3];
} sk_pool_config;

/* Plain form: the whole item. Write the result to *result (result_size
 * bytes, zeroed before the call). Return 0, or non-zero for a failed item. */
typedef int (*sk_pool_fn)(const void *item, void *result, const void *arg);

/* Range form: a run of consecutive items at once, items[i] and
 * results[i] for i < count (item_size and result_size apart; results
 * zeroed before the call), so that a loop the compiler vectorizes pays no
 * call per item. Return 0 when every item of the run succeeded. Non-zero:
 * the run's items are run again one at a time (count 1) to find which
 * fail, and only those fail (each with its lives); a crash inside a run is
 * narrowed down the same way. So running an item again must give the same
 * result (a pure function does). With item_timeout every call is one item,
 * and so is every call for items with a tpl item_format or result_format. */
typedef int (*sk_pool_range_fn)(const void *items, void *results, size_t count, const void *arg);

/* Star form: the item is a record S(...) and fields[k] points at its k-th
 * member, so a function of several arguments reads them one by one. */
typedef int (*sk_pool_star_fn)(void *const *fields, void *result, const void *arg);

/* What a call does with each item. Set exactly one of fn, star, cls, range. */
typedef struct sk_pool_job {
    sk_pool_fn fn;
    sk_pool_star_fn star;
    /* A process class per item: the worker makes a zeroed object of
     * cls->size bytes, sk_init's it, calls cls->init(self, item), runs its
     * whole lifecycle (runs, lives, timeouts, join_in, stop from inside) as
     * a process of its own, and the item's result is what its result hook
     * sk_return'ed, unpacked with result_format. */
    const sk_class *cls;

    const void *arg; /* handed to fn/star; arg_size bytes are copied to the workers */
    size_t arg_size;

    size_t item_size;          /* bytes of one item in the caller's array */
    const char *item_format;   /* tpl format of one item: "S(is)", "s", ...; NULL: plain bytes.
                                * Required by star (an "S(...)" whose members are the fields).
                                * Items without s or B in the format still travel as bytes. */
    size_t result_size;        /* bytes of one result in the caller's array (may be 0) */
    const char *result_format; /* tpl format of one result; NULL: plain bytes. Required
                                * with cls. Strings and buffers are malloc'ed for the
                                * caller. */
    /* The range form (set it instead of fn, star and cls): see
     * sk_pool_range_fn. */
    sk_pool_range_fn range;
    /* Room for later fields without an ABI break: zero it (designated
     * initializers or memset). */
    void *reserved[7];
} sk_pool_job;

/* Items from a callback rather than an array: write the next item to *item
 * (item_size bytes) and return 1, or return 0 at the end. Called in the
 * parent, only as results are taken, so a stream of any length is never in
 * memory at once. */
typedef int (*sk_pool_producer)(void *state, void *item);

typedef struct sk_pool_counters {
    long done;      /* items finished, failed or not */
    long failed;    /* items that failed */
    long in_flight; /* items handed to workers and not finished */
} sk_pool_counters;

/* ---------------------------------------------------------------- pools */

/* Creates the pool and forks its workers. cfg may be NULL. */
int sk_pool_create(sk_pool **pool, const sk_pool_config *cfg);

/* No more calls may be started; calls in progress go on. */
int sk_pool_close(sk_pool *pool);

/* After close: waits until the calls in progress are done and the workers
 * have left. Maps run to their end; an iterator is done only once its
 * caller has taken (or freed) it, so take its results before a join
 * without a timeout. timeout < 0 waits forever. SK_ESTATE if not closed. */
int sk_pool_join(sk_pool *pool, double timeout);

/* Kills every worker now; calls in progress fail with SK_EKILLED. */
int sk_pool_terminate(sk_pool *pool);

/* Terminates if needed, reaps every worker, frees everything. */
void sk_pool_release(sk_pool *pool);

void sk_pool_counters_of(const sk_pool *pool, sk_pool_counters *out);

/* -------------------------------------------------------- shared arrays */

/* Zero-copy arrays: `bytes` of memory (zeroed, aligned to a page) that the
 * parent and every worker of the pool, present and future, map at the same
 * address. When a plain job's items (fn, or star with a format without s or
 * B) lie inside one such allocation, the workers read them in place; when
 * its results do too (sk_pool_map, sk_pool_async_map, sk_pool_submit), the
 * workers write them in place: a map over them copies nothing, only index
 * ranges travel. Items and results are decided each on its own (iterators:
 * items only); anything else is copied as usual.
 *
 * Every worker can write every allocation of its pool at any time: what a
 * buggy or hostile item function does there damages values only, never the
 * pool (the parent keeps its bookkeeping elsewhere and never reads the
 * arrays but as your values).
 *
 * Unlike a copied result, a result in place is not zeroed before the call:
 * the function finds what the array holds (so it can also update a value
 * in place), and a failed item's result holds whatever its function left
 * there. The caller must not touch the arrays while a call over them runs
 * (until sk_pool_map returns, or the call is done).
 *
 * A pool has 16 GiB of address space for allocations (only written pages
 * take memory). NULL on failure, with sk_last_error_message saying why:
 * bytes 0 or over 16 GiB, or no room left. The memory lives until
 * sk_pool_free or sk_pool_release. */
void *sk_pool_alloc(sk_pool *pool, size_t bytes);

/* Gives back an allocation of sk_pool_alloc (its pages are returned to the
 * system). SK_OK (also for NULL); SK_EINVAL for a pointer that is not the
 * start of an allocation of this pool; SK_ESTATE while a call that is not
 * freed yet has items or results in it. */
int sk_pool_free(sk_pool *pool, void *mem);

/* ---------------------------------------------------------------- calls */

/* results[i] = job(items[i]) for i < n, in order; blocks until done.
 * SK_OK when every item succeeded; otherwise the first failure's code
 * (SK_EPROCESS: see sk_pool_error) and every result that succeeded is still
 * filled. status, if not NULL, gets one code per item (SK_OK or why it
 * failed). */
int sk_pool_map(sk_pool *pool, const sk_pool_job *job, const void *items, size_t n, void *results,
                int *status);

/* As map, but returns at once; the workers go on while the caller does
 * other things. With the automatic batch size every item is handed out at
 * once; with a config.batch so small that the call needs more than 512
 * batches, the rest are handed out whenever the caller calls into the pool
 * (ready, wait, get, or any other call). The arrays must stay valid until
 * the call is freed. At most 256 calls are alive at once (SK_EFULL). */
int sk_pool_async_map(sk_pool *pool, const sk_pool_job *job, const void *items, size_t n,
                      void *results, int *status, sk_pool_call **call);

/* Iterators over results: sk_pool_next yields them in item order (imap) or
 * as they become ready, with their index (unordered_imap). */
int sk_pool_imap(sk_pool *pool, const sk_pool_job *job, const void *items, size_t n,
                 sk_pool_call **call);
int sk_pool_unordered_imap(sk_pool *pool, const sk_pool_job *job, const void *items, size_t n,
                           sk_pool_call **call);
/* The same over a producer's items (ordered or not). */
int sk_pool_imap_stream(sk_pool *pool, const sk_pool_job *job, sk_pool_producer produce,
                        void *state, bool ordered, sk_pool_call **call);

/* The next result into *result (result_size bytes) and its item index.
 *   SK_OK         a result
 *   SK_EPROCESS   that item failed (index set; sk_pool_item_error says why)
 *   SK_ECLOSED    every result was yielded
 *   SK_ETIMEDOUT  none became ready in time (timeout 0 polls, < 0 waits) */
int sk_pool_next(sk_pool_call *call, double timeout, size_t *index, void *result);

/* One item, as a call of its own (Python's apply_async / submit): job(item)
 * into *result (result_size bytes). The call works with sk_pool_ready,
 * sk_pool_wait, sk_pool_get (SK_OK, or why the item failed), sk_pool_error,
 * sk_pool_cancel and sk_pool_call_free. item and result must stay valid
 * until the call is freed. */
int sk_pool_submit(sk_pool *pool, const sk_pool_job *job, const void *item, void *result,
                   sk_pool_call **call);

/* async_map: done? */
bool sk_pool_ready(sk_pool_call *call);
/* async_map: waits until done; SK_ETIMEDOUT, else SK_OK. */
int sk_pool_wait(sk_pool_call *call, double timeout);
/* async_map: waits, then returns what sk_pool_map would have. */
int sk_pool_get(sk_pool_call *call, double timeout);

/* The first failure of the call: the failed item with the lowest index
 * (its .item), with its whole error record however many items failed; or
 * NULL. */
const sk_error *sk_pool_error(const sk_pool_call *call);
/* Why item `index` failed, or NULL (also when more than 1024 items failed
 * and its error was not kept: 1024 errors are kept, those the workers met
 * first, which under load is not always the lowest items; the first
 * failure's is always there, in sk_pool_error; status codes are kept for
 * all). */
const sk_error *sk_pool_item_error(const sk_pool_call *call, size_t index);

/* Cancels what has not started: items not yet handed out, and batches
 * handed out that no worker has taken yet, never run; their status is
 * SK_ECANCELED. Items a worker has taken (its whole batch: see
 * config.batch) finish, and their results are kept. Afterwards sk_pool_get
 * returns SK_ECANCELED unless an item that ran failed (its code wins);
 * sk_pool_error names only items that ran. An iterator yields the results
 * of what ran, then SK_ECLOSED: cancelled items are not yielded. Cancelling
 * twice, or a call that is done, does nothing. SK_OK, or SK_EINVAL. */
int sk_pool_cancel(sk_pool_call *call);

/* Class items (a job with cls) only: asks the process of item `index`,
 * while it runs, to stop, as sk_stop does: its loop ends after the section
 * in progress, onfinish and result run, and the item succeeds with what it
 * returned. The worker acts within about 50 ms. SK_OK; SK_ESTATE when the
 * item is not running (not handed to a worker yet: it will run as usual;
 * or done); SK_EINVAL for a job without cls (sk_last_error_message says
 * why). */
int sk_pool_stop_item(sk_pool_call *call, size_t index);

/* Class items only: ends the process of item `index` now, as sk_kill does;
 * the item fails with SK_EKILLED (its status; sk_pool_get's code when it is
 * the first failure) whatever lives the pool gives items, and its worker
 * goes on with the next item. Codes as sk_pool_stop_item. */
int sk_pool_kill_item(sk_pool_call *call, size_t index);

/* Items of the call that failed at least once (an error, a crash or a
 * timeout) and then succeeded on a later attempt (config.lives > 1): among
 * the results collected so far, so final once sk_pool_wait or sk_pool_get
 * returned, or an iterator said SK_ECLOSED. sk_pool_map has no call handle:
 * use sk_pool_async_map and sk_pool_get to read it. Items that failed for
 * good are counted by sk_pool_progress.failed and sk_pool_error. */
size_t sk_pool_retried(const sk_pool_call *call);

/* Waits for the call's items still running, then frees it (and closes its
 * fd, if sk_pool_call_fd made one). */
void sk_pool_call_free(sk_pool_call *call);

/* ---------------------------------------------------------- event loops */

/* An fd to poll (POLLIN) in an event loop instead of blocking in
 * sk_pool_wait or sk_pool_next: readable while the call has something for
 * its caller. For an async map or a submit: it is done, and no
 * sk_pool_ready, sk_pool_wait or sk_pool_get has said so yet. For an
 * iterator: sk_pool_next(call, 0, ...) would return a result, a failed
 * item, or SK_ECLOSED (once; after that, never again).
 *
 * Level-triggered, like a socket, with one allowance: it also turns
 * readable whenever a worker finishes a batch of any call, until the next
 * call into the pool (any sk_pool_* call on it or its calls) looks and
 * clears it. So when it polls readable, call sk_pool_ready or
 * sk_pool_next(call, 0, ...); a loop that does is never woken for nothing
 * twice in a row, and never misses a result. Batches of a big call (see
 * sk_pool_async_map) and an iterator's next batches are handed out at these
 * calls too, so reacting to the fd keeps the workers fed.
 *
 * Made on first use (two descriptors, close-on-exec); the same fd is
 * returned again; owned by the call: sk_pool_call_free closes it, never
 * close it yourself. A negative SK_E* code on failure. Nothing is done on
 * the workers' side until some fd of the pool is asked for. */
int sk_pool_call_fd(sk_pool_call *call);

/* One fd for the whole pool: readable while any of its calls has something
 * for its caller (as sk_pool_call_fd has it for one call), with the same
 * allowance. Owned by the pool: sk_pool_release closes it. */
int sk_pool_fd(sk_pool *pool);

#endif
