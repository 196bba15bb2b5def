/* SPDX-License-Identifier: MIT */
/*
 * Pools, faults: a worker that crashes mid-map (by a signal or by exit),
 * per-item timeouts, lives per item (after a crash, a timeout or a failing
 * item), items that fail on every life, the first failure of a call and the
 * cap on kept errors, max_tasks recycling workers, and terminate/release
 * with workers that are crashing. After every fault the map completes, the
 * faulty item alone fails, the others are right and ran exactly once, and
 * the pool stays usable.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define BOUND 30.0
#define MAX_ITEMS 4096

#include "pool_support.h"

/* ------------------------------------------------------------ the job */

enum fault {
    F_NONE,
    F_SEGV,     /* SIGSEGV */
    F_ABORT,    /* SIGABRT */
    F_EXIT,     /* _exit(3) */
    F_SPIN,     /* never returns */
    F_FAIL,     /* returns 7 */
    F_SLEEP,    /* sleeps nap seconds, then succeeds */
    F_GATE,     /* waits for the gate */
    F_GATE_FAIL /* waits for the gate, then returns 7 */
};

/* Items are {index, fault, times}: the fault fires on the first `times`
 * attempts of that item (times < 0: always). */
typedef struct {
    int32_t index;
    int32_t fault;
    int32_t times;
    int32_t pad;
} fitem;

typedef struct {
    int64_t value;
    int32_t pid;
    int32_t attempt; /* 1 for the first attempt */
} fout;

typedef struct {
    double nap;
} farg;

static int faulty(const void *item, void *result, const void *argp)
{
    const fitem *it = item;
    const farg *a = argp;
    fout *out = result;
    int attempt = __atomic_add_fetch(&sh->attempts[it->index], 1, __ATOMIC_ACQ_REL);
    bool fire = it->times < 0 || attempt <= it->times;
    if (fire) {
        switch (it->fault) {
        case F_SEGV:
            skt_die_by(SIGSEGV);
            break;
        case F_ABORT:
            skt_die_by(SIGABRT);
            break;
        case F_EXIT:
            _exit(3);
        case F_SPIN:
            skt_spin_forever();
            break;
        case F_FAIL:
            return 7;
        case F_SLEEP:
            skt_sleep(a != NULL ? a->nap : 0.01);
            break;
        case F_GATE:
            gate_wait(&sh->gate, &sh->started, 2 * BOUND);
            break;
        case F_GATE_FAIL:
            gate_wait(&sh->gate, &sh->started, 2 * BOUND);
            return 7;
        default:
            break;
        }
    }
    out->value = (int64_t)it->index * 10 + 1;
    out->pid = (int32_t)getpid();
    out->attempt = attempt;
    return 0;
}

static const farg no_arg = {0};

static const sk_pool_job faulty_job = {.fn = faulty,
                                       .arg = &no_arg,
                                       .arg_size = sizeof no_arg,
                                       .item_size = sizeof(fitem),
                                       .result_size = sizeof(fout)};

static fitem *make_fitems(size_t n)
{
    assert_cmp(n, <=, MAX_ITEMS);
    fitem *items = xcalloc(n, sizeof *items);
    assert_non_null(items);
    for (size_t i = 0; i < n; i++)
        items[i] = (fitem){.index = (int32_t)i, .fault = F_NONE};
    return items;
}

/* n items that all fault the same way on every attempt. */
static fitem *make_faulty_fitems(size_t n, enum fault fault)
{
    fitem *items = make_fitems(n);
    for (size_t i = 0; i < n; i++) {
        items[i].fault = fault;
        items[i].times = -1;
    }
    return items;
}

static sk_pool *fault_pool(int workers, int lives, double item_timeout)
{
    make_shared();
    sk_pool_config cfg = {
        .workers = workers, .lives = lives, .item_timeout = item_timeout, .no_progress = true};
    return new_pool(&cfg);
}

/* Runs items as an async map and checks: SK_OK exactly for the items that
 * are not in `failing`, right results for them, each ran exactly
 * `want_attempts_ok` times. Returns the call (tracked) for more checks. */
static sk_pool_call *run_and_check(sk_pool *pool, const sk_pool_job *job, fitem *items, size_t n,
                                   fout *results, int *status, int want_rc)
{
    memset(sh->attempts, 0, sizeof sh->attempts);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, job, items, n, results, status, &call), SK_OK);
    track_call(call);
    double t0 = skt_now();
    int rc = sk_pool_get(call, BOUND);
    if (rc == SK_ETIMEDOUT)
        fail_msg("the map did not complete within %.0fs", BOUND);
    assert_rc(rc, want_rc);
    print_message("    map of %zu items: %.3fs\n", n, skt_now() - t0);
    for (size_t i = 0; i < n; i++) {
        bool fails = items[i].fault != F_NONE && items[i].fault != F_SLEEP &&
                     items[i].fault != F_GATE && items[i].times < 0;
        if (fails) {
            if (status[i] != SK_EPROCESS)
                fail_msg("item %zu: status %d, want SK_EPROCESS", i, status[i]);
            continue;
        }
        if (status[i] != SK_OK) {
            skt_print_error(sk_pool_item_error(call, i));
            fail_msg("item %zu: status %d (%s), want SK_OK", i, status[i], sk_strerror(status[i]));
        }
        assert_null(sk_pool_item_error(call, i));
        assert_int_equal(results[i].value, (int64_t)i * 10 + 1);
        int want_attempts = items[i].fault == F_NONE ? 1 : 1 + (int)items[i].times;
        if (items[i].fault == F_SLEEP || items[i].fault == F_GATE)
            want_attempts = 1;
        if (sh->attempts[i] != want_attempts)
            fail_msg("item %zu (fault %d): ran %d times, want %d", i, items[i].fault,
                     sh->attempts[i], want_attempts);
        assert_int_equal(results[i].attempt, want_attempts);
    }
    return call;
}

/* The pool still maps everything right after whatever happened before. */
static void check_still_usable(sk_pool *pool)
{
    size_t n = 500;
    fitem *items = make_fitems(n);
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_OK);
    assert_null(sk_pool_error(call));
    free_call(call);
    xfree(items);
    xfree(results);
    xfree(status);
}

/* ----------------------------------------------------------- crashes */

static void crash_mid_map(int workers, enum fault fault, int want_signal, int want_exit)
{
    sk_pool *pool = fault_pool(workers, 1, 0);
    size_t n = 1000;
    fitem *items = make_fitems(n);
    items[500].fault = fault;
    items[500].times = -1;
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_EPROCESS);
    assert_int_equal(sh->attempts[500], 1);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    skt_print_error(e);
    assert_int_equal(e->item, 500);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, want_signal);
    if (want_signal == 0)
        assert_int_equal(e->exit_status, want_exit);
    assert_int_equal(e->lives_spent, 1);
    assert_int_equal(e->reason, SK_ECRASHED);
    assert_int_equal(e->code, 0);
    char report[4096];
    assert_cmp(sk_error_format(e, report, sizeof report), >, 0);
    assert_non_null(strstr(report, "  item:    500\n")); /* the report names the item */
    const sk_error *ie = sk_pool_item_error(call, 500);
    assert_non_null(ie);
    assert_int_equal(ie->kind, SK_CRASH_ERROR);
    assert_int_equal(ie->signal, want_signal);
    assert_int_equal(ie->item, 500);
    free_call(call);

    /* The crashed worker was replaced: the next map runs on as many
     * workers, and one of them is new. */
    check_still_usable(pool);
    /* A plain sk_pool_map reports it the same way. */
    memset(sh->attempts, 0, sizeof sh->attempts);
    assert_rc(sk_pool_map(pool, &faulty_job, items, n, results, status), SK_EPROCESS);
    assert_int_equal(status[500], SK_EPROCESS);
    assert_int_equal(status[499], SK_OK);
    assert_int_equal(status[501], SK_OK);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

static void test_crash_segv_one_worker(void **state)
{
    (void)state;
    crash_mid_map(1, F_SEGV, SIGSEGV, 0);
}

static void test_crash_segv_many_workers(void **state)
{
    (void)state;
    crash_mid_map(4, F_SEGV, SIGSEGV, 0);
}

static void test_crash_abort(void **state)
{
    (void)state;
    crash_mid_map(2, F_ABORT, SIGABRT, 0);
}

static void test_crash_exit(void **state)
{
    (void)state;
    crash_mid_map(2, F_EXIT, 0, 3);
}

/* Many crashes in one map, in the same batches and in different ones. */
static void test_many_crashes(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(2, 1, 0);
    size_t n = 2000;
    fitem *items = make_fitems(n);
    int crashes = 0;
    for (size_t i = 3; i < n; i += 37) {
        items[i].fault = (i % 2) ? F_SEGV : F_EXIT;
        items[i].times = -1;
        crashes++;
    }
    items[4].fault = F_SEGV; /* right after another */
    items[4].times = -1;
    crashes++;
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_EPROCESS);
    int errors = 0;
    for (size_t i = 0; i < n; i++) {
        const sk_error *e = sk_pool_item_error(call, i);
        if (items[i].fault == F_NONE) {
            assert_null(e);
            continue;
        }
        assert_non_null(e);
        assert_int_equal(e->kind, SK_CRASH_ERROR);
        assert_int_equal(e->item, (long)i);
        errors++;
    }
    assert_int_equal(errors, crashes);
    /* The first failure is the one of the lowest index. */
    assert_int_equal(sk_pool_error(call)->item, 3);
    free_call(call);
    sk_pool_counters c;
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.done, (long)n);
    assert_int_equal(c.failed, crashes);
    assert_int_equal(c.in_flight, 0);
    check_still_usable(pool);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* Crashes in an iterator. */
static void test_crash_in_imap(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(2, 1, 0);
    size_t n = 800;
    fitem *items = make_fitems(n);
    items[100].fault = F_SEGV;
    items[100].times = -1;
    items[700].fault = F_EXIT;
    items[700].times = -1;
    for (int ordered = 1; ordered >= 0; ordered--) {
        memset(sh->attempts, 0, sizeof sh->attempts);
        sk_pool_call *call = NULL;
        if (ordered)
            assert_rc(sk_pool_imap(pool, &faulty_job, items, n, &call), SK_OK);
        else
            assert_rc(sk_pool_unordered_imap(pool, &faulty_job, items, n, &call), SK_OK);
        track_call(call);
        unsigned char seen[800] = {0};
        for (size_t k = 0; k < n; k++) {
            fout r = {0};
            size_t index = (size_t)-1;
            int rc = sk_pool_next(call, BOUND, &index, &r);
            assert_cmp(index, <, n);
            assert_true(!seen[index]++);
            if (ordered)
                assert_int_equal(index, k);
            if (index == 100 || index == 700) {
                assert_rc(rc, SK_EPROCESS);
                const sk_error *e = sk_pool_item_error(call, index);
                assert_non_null(e);
                assert_int_equal(e->kind, SK_CRASH_ERROR);
                assert_int_equal(e->signal, index == 100 ? SIGSEGV : 0);
                if (index == 700)
                    assert_int_equal(e->exit_status, 3);
            } else {
                assert_rc(rc, SK_OK);
                assert_int_equal(r.value, (int64_t)index * 10 + 1);
                assert_int_equal(sh->attempts[index], 1);
            }
        }
        fout r;
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
        assert_int_equal(sk_pool_error(call)->item, 100);
        free_call(call);
    }
    xfree(items);
    release_pool(pool);
}

/* ---------------------------------------------------------- timeouts */

static void test_item_timeout(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(2, 1, 0.3);
    size_t n = 300;
    fitem *items = make_fitems(n);
    items[120].fault = F_SPIN;
    items[120].times = -1;
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    double t0 = skt_now();
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_EPROCESS);
    double took = skt_now() - t0;
    if (took < 0.29 || took > 10.0)
        fail_msg("a map with a 0.3s item timeout took %.3fs", took);
    const sk_error *e = sk_pool_item_error(call, 120);
    assert_non_null(e);
    skt_print_error(e);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->reason, SK_ETIMEDOUT);
    assert_int_equal(e->code, 0);
    assert_cmp(e->timeout, >, 0.29);
    assert_cmp(e->timeout, <, 0.31);
    assert_int_equal(e->item, 120);
    assert_int_equal(sk_pool_error(call)->item, 120);
    free_call(call);
    /* Still usable, with the timeout still enforced. */
    check_still_usable(pool);
    memset(sh->attempts, 0, sizeof sh->attempts);
    assert_rc(sk_pool_map(pool, &faulty_job, items, n, results, status), SK_EPROCESS);
    assert_int_equal(status[120], SK_EPROCESS);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* The timeout is per item: a batch of items that each take a fraction of
 * it is fine however long the batch takes, and so is a pool idle for
 * longer than the timeout. */
static void test_timeout_is_per_item(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(1, 1, 0.5);
    size_t n = 40;
    fitem *items = make_faulty_fitems(n, F_SLEEP);
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    farg nap = {.nap = 0.03}; /* 40 x 30 ms = 1.2 s in one worker */
    sk_pool_job job = faulty_job;
    job.arg = &nap;
    sk_pool_call *call = run_and_check(pool, &job, items, n, results, status, SK_OK);
    free_call(call);
    /* Idle for longer than the timeout, then a map again. */
    double t0 = skt_now();
    while (skt_now() - t0 < 0.8) /* idle time itself is the point here */
        skt_sleep(0.1);
    call = run_and_check(pool, &job, items, n, results, status, SK_OK);
    free_call(call);
    /* All workers of the pool run the same item function. */
    int pid = results[0].pid;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(results[i].pid, pid);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* ------------------------------------------------------------- lives */

/* With lives = 2, an item that crashes, times out or fails once succeeds
 * on its second attempt; the others run once. */
static void test_lives_fault_once(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(2, 2, 0.3);
    size_t n = 600;
    fitem *items = make_fitems(n);
    static const int32_t faults[] = {F_SEGV, F_ABORT, F_EXIT, F_SPIN, F_FAIL};
    for (size_t k = 0; k < 5; k++) {
        size_t i = 50 + k * 101;
        items[i].fault = faults[k];
        items[i].times = 1;
    }
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_OK);
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(sh->attempts[50 + k * 101], 2);
    assert_null(sk_pool_error(call));
    free_call(call);
    sk_pool_counters c;
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.done, (long)n);
    assert_int_equal(c.failed, 0);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* An item that faults on every attempt uses every life, then fails. */
static void test_lives_exhausted(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(2, 3, 0.3);
    size_t n = 200;
    fitem *items = make_fitems(n);
    static const int32_t faults[] = {F_SEGV, F_SPIN, F_FAIL};
    static const sk_error_kind kinds[] = {SK_CRASH_ERROR, SK_TIMEOUT_ERROR, SK_RUN_ERROR};
    for (size_t k = 0; k < 3; k++) {
        items[20 + k * 70].fault = faults[k];
        items[20 + k * 70].times = -1;
    }
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_EPROCESS);
    for (size_t k = 0; k < 3; k++) {
        size_t i = 20 + k * 70;
        assert_int_equal(sh->attempts[i], 3);
        const sk_error *e = sk_pool_item_error(call, i);
        assert_non_null(e);
        skt_print_error(e);
        assert_int_equal(e->kind, kinds[k]);
        assert_int_equal(e->lives_spent, 3);
        assert_int_equal(e->item, (long)i);
        if (kinds[k] == SK_RUN_ERROR)
            assert_int_equal(e->code, 7);
    }
    assert_int_equal(sk_pool_error(call)->item, 20);
    free_call(call);
    check_still_usable(pool);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* ------------------------------------------------------------ errors */

/* More failures than the 1024 errors kept: every status is kept, and the
 * errors that are kept are right. */
static void test_more_failures_than_kept_errors(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(2, 1, 0);
    size_t n = 3000;
    fitem *items = make_faulty_fitems(n, F_FAIL);
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_EPROCESS);
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        const sk_error *e = sk_pool_item_error(call, i);
        if (e == NULL)
            continue;
        kept++;
        assert_int_equal(e->kind, SK_RUN_ERROR);
        assert_int_equal(e->item, (long)i);
        assert_int_equal(e->code, 7);
    }
    print_message("    %d of %zu errors kept\n", kept, n);
    assert_int_equal(kept, 1024);
    const sk_error *first = sk_pool_error(call);
    assert_non_null(first);
    assert_int_equal(first->item, 0);
    assert_int_equal(first->kind, SK_RUN_ERROR);
    free_call(call);
    sk_pool_counters c;
    sk_pool_counters_of(pool, &c);
    assert_int_equal(c.failed, (long)n);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* The call's first failure keeps its whole record even when it comes last:
 * item 0 waits at the gate while the other worker fails every other batch
 * (far more failures than the kept errors, in the workers' records and in
 * the call's), and the parent has taken those in before item 0 fails. */
static void test_first_failure_kept_when_it_comes_last(void **state)
{
    (void)state;
    sk_pool *pool = fault_pool(2, 1, 0);
    size_t n = 3000;
    fitem *items = make_faulty_fitems(n, F_FAIL);
    items[0].fault = F_GATE_FAIL;
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &faulty_job, items, n, results, status, &call), SK_OK);
    track_call(call);
    /* The last item is in the last batch, which the worker not held at
     * the gate reaches after every other one but item 0's. */
    skt_wait_until(!sk_pool_ready(call) && status[n - 1] == SK_EPROCESS, BOUND);
    assert_int_equal(status[0], 0); /* not collected yet */
    const sk_error *early = sk_pool_error(call);
    assert_non_null(early);
    assert_int_gt(early->item, 0);
    open_gate();
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    const sk_error *first = sk_pool_error(call);
    assert_non_null(first);
    skt_print_error(first);
    assert_int_equal(first->item, 0);
    assert_int_equal(first->kind, SK_RUN_ERROR);
    assert_int_equal(first->code, 7);
    assert_int_equal(first->lives_spent, 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(status[i], SK_EPROCESS);
    free_call(call);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* ---------------------------------------------------------- max_tasks */

static void check_max_tasks(const fout *results, size_t n, long max_tasks, int min_pids)
{
    int32_t pids[512];
    long counts[512];
    int npids = 0;
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        while (k < npids && pids[k] != results[i].pid)
            k++;
        if (k == npids) {
            assert_cmp(npids, <, 512);
            pids[npids] = results[i].pid;
            counts[npids++] = 0;
        }
        counts[k]++;
    }
    long most = 0;
    for (int k = 0; k < npids; k++)
        most = counts[k] > most ? counts[k] : most;
    print_message("    %zu items, max_tasks %ld: %d worker pids, at most %ld items per pid\n", n,
                  max_tasks, npids, most);
    if (most > max_tasks)
        fail_msg("a worker handled %ld items with max_tasks = %ld", most, max_tasks);
    if (npids < min_pids)
        fail_msg("%d worker pids, want at least %d", npids, min_pids);
}

static void test_max_tasks_recycles_workers(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = {.workers = 2, .max_tasks = 10, .no_progress = true};
    sk_pool *pool = new_pool(&cfg);
    size_t n = 100;
    fitem *items = make_fitems(n);
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_OK);
    free_call(call);
    check_max_tasks(results, n, 10, 10);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* max_tasks counts across calls. */
static void test_max_tasks_across_calls(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = {.workers = 2, .max_tasks = 7, .no_progress = true};
    sk_pool *pool = new_pool(&cfg);
    size_t per_call = 3, calls = 30, n = per_call * calls;
    fitem *items = make_fitems(per_call);
    fout *all = xcalloc(n, sizeof *all);
    int status[3];
    for (size_t k = 0; k < calls; k++) {
        sk_pool_call *call =
            run_and_check(pool, &faulty_job, items, per_call, all + k * per_call, status, SK_OK);
        free_call(call);
    }
    check_max_tasks(all, n, 7, (int)(n / 7));
    xfree(items);
    xfree(all);
    release_pool(pool);
    assert_no_children();
}

/* A big batch size does not let a worker go past max_tasks. */
static void test_max_tasks_with_big_batches(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = {.workers = 2, .max_tasks = 5, .batch = 50, .no_progress = true};
    sk_pool *pool = new_pool(&cfg);
    size_t n = 200;
    fitem *items = make_fitems(n);
    fout *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_call *call = run_and_check(pool, &faulty_job, items, n, results, status, SK_OK);
    free_call(call);
    check_max_tasks(results, n, 5, 40);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
}

/* -------------------------------------------------------- terminate */

/* Terminate while workers crash and restart over and over. */
static void test_terminate_during_crashes(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    for (int round = 0; round < 10; round++) {
        sk_pool *pool = fault_pool(3, 1, 0);
        size_t n = 400;
        fitem *items = make_faulty_fitems(n, F_SEGV);
        fout *results = xcalloc(n, sizeof *results);
        int *status = xcalloc(n, sizeof *status);
        sk_pool_call *call = NULL;
        assert_rc(sk_pool_async_map(pool, &faulty_job, items, n, results, status, &call), SK_OK);
        track_call(call);
        /* Let some crashes happen first. */
        double deadline = skt_now() + BOUND;
        int crashed = 0;
        while (crashed < 3 * (round % 4) && skt_now() < deadline) {
            sk_pool_wait(call, 0.001);
            crashed = 0;
            for (size_t i = 0; i < n; i++)
                crashed += sh->attempts[i];
        }
        assert_rc(sk_pool_terminate(pool), SK_OK);
        assert_no_children();
        int rc = sk_pool_get(call, BOUND);
        if (rc != SK_EKILLED && rc != SK_EPROCESS)
            fail_msg("round %d: get after terminate: %d (%s)", round, rc, sk_strerror(rc));
        for (size_t i = 0; i < n; i++)
            assert_true(status[i] == SK_EKILLED || status[i] == SK_EPROCESS);
        free_call(call);
        release_pool(pool);
        assert_no_children();
        xfree(items);
        xfree(results);
        xfree(status);
        skt_teardown(NULL); /* the shared page of this round */
        sh = NULL;
    }
    assert_int_equal(skt_fd_count(), fds);
}

/* release while a call is in progress and workers wait at the gate. */
static void test_release_with_busy_workers(void **state)
{
    (void)state;
    for (int round = 0; round < 10; round++) {
        sk_pool *pool = fault_pool(2, 1, 0);
        size_t n = 50;
        fitem *items = make_faulty_fitems(n, F_GATE);
        fout *results = xcalloc(n, sizeof *results);
        sk_pool_call *call = NULL;
        assert_rc(sk_pool_async_map(pool, &faulty_job, items, n, results, NULL, &call), SK_OK);
        double deadline = skt_now() + BOUND;
        while (__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) < 2 && skt_now() < deadline)
            skt_sleep(0.0005);
        assert_rc(sk_pool_terminate(pool), SK_OK);
        sk_pool_call_free(call);
        release_pool(pool);
        assert_no_children();
        xfree(items);
        xfree(results);
        skt_teardown(NULL);
        sh = NULL;
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_crash_segv_one_worker),
        SKT_TEST(test_crash_segv_many_workers),
        SKT_TEST(test_crash_abort),
        SKT_TEST(test_crash_exit),
        SKT_TEST(test_many_crashes),
        SKT_TEST(test_crash_in_imap),
        SKT_TEST(test_item_timeout),
        SKT_TEST(test_timeout_is_per_item),
        SKT_TEST(test_lives_fault_once),
        SKT_TEST(test_lives_exhausted),
        SKT_TEST(test_more_failures_than_kept_errors),
        SKT_TEST(test_first_failure_kept_when_it_comes_last),
        SKT_TEST(test_max_tasks_recycles_workers),
        SKT_TEST(test_max_tasks_across_calls),
        SKT_TEST(test_max_tasks_with_big_batches),
        SKT_TEST(test_terminate_during_crashes),
        SKT_TEST(test_release_with_busy_workers),
    };
    return skt_run(argc, argv, tests);
}
