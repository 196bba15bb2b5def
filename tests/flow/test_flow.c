/* SPDX-License-Identifier: MIT */
/*
 * Flows: steps, batches, end of stream, collection, statuses, failures of
 * step processes, backpressure, timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* What the steps' processes did, seen from the parent (shared memory:
 * a step process is a fork, restarted from the state at start). */
struct seen {
    _Atomic long starts[4], stops[4], handled[4], batches[4];
    _Atomic long biggest_batch[4];
    _Atomic long crashes, hangs;
    _Atomic int pid[4]; /* of the step's last process to start */
    _Atomic long batch_sizes[4][64];
};

typedef struct {
    int64_t value;
    uint64_t trace; /* one bit per step that handled it */
    int64_t pad[6]; /* 64 bytes */
} task64;

enum misbehave {
    BEHAVE,
    CRASH_ON,      /* segfault on task `on` (crashes `times` times) */
    HANG_ON,       /* spin forever on task `on` (`times` times) */
    FAIL_ON,       /* sk_task_fail task `on` */
    FAIL_BATCH_ON, /* return non-zero from handle for the batch holding `on` (`times` times) */
    ERROR_ON,      /* sk_step_error on task `on` */
    FINISH_ON,     /* sk_step_finish after handling task `on` */
    SLOW,          /* sleep `sleep` seconds per task */
    STOP_SLOW,     /* the stop hook sleeps `sleep` seconds */
    STOP_FAILS,    /* the stop hook fails */
};

typedef struct {
    sk_step base;
    int slot; /* index into struct seen */
    int64_t add;
    enum misbehave how;
    uint64_t on;
    long times;
    double sleep;
    bool odd_only; /* condition: only odd values */
    struct seen *seen;
} adder;

#define ADDER(s) SK_CONTAINER_OF(s, adder, base)

static int adder_start(sk_step *self)
{
    adder *a = ADDER(self);
    atomic_fetch_add(&a->seen->starts[a->slot], 1);
    atomic_store(&a->seen->pid[a->slot], (int)getpid());
    return 0;
}

static int adder_stop(sk_step *self)
{
    adder *a = ADDER(self);
    atomic_fetch_add(&a->seen->stops[a->slot], 1);
    if (a->how == STOP_SLOW)
        skt_sleep(a->sleep);
    if (a->how == STOP_FAILS)
        return sk_step_fail(self, 9, "flush of process %d failed", sk_step_process(self));
    return 0;
}

static int adder_handle(sk_step *self, sk_task *tasks, size_t n)
{
    adder *a = ADDER(self);
    struct seen *s = a->seen;
    atomic_fetch_add(&s->batches[a->slot], 1);
    if (n < 64)
        atomic_fetch_add(&s->batch_sizes[a->slot][n], 1);
    long big = atomic_load(&s->biggest_batch[a->slot]);
    while ((long)n > big &&
           !atomic_compare_exchange_weak(&s->biggest_batch[a->slot], &big, (long)n))
        ;
    for (size_t i = 0; i < n; i++) {
        task64 *t = tasks[i].record;
        bool mine = tasks[i].id == a->on;
        switch (a->how) {
        case CRASH_ON:
            if (mine && atomic_fetch_add(&s->crashes, 1) < a->times)
                skt_die_by(SIGSEGV);
            break;
        case HANG_ON:
            if (mine && atomic_fetch_add(&s->hangs, 1) < a->times)
                skt_spin_forever();
            break;
        case FAIL_ON:
            if (mine) {
                sk_task_fail(self, &tasks[i], 42, "task %llu is bad",
                             (unsigned long long)tasks[i].id);
                continue;
            }
            break;
        case FAIL_BATCH_ON:
            if (mine && atomic_fetch_add(&s->crashes, 1) < a->times)
                return sk_step_fail(self, 7, "batch with task %llu failed",
                                    (unsigned long long)tasks[i].id);
            break;
        case ERROR_ON:
            if (mine)
                sk_step_error(self, "step %d saw task %llu", sk_step_index(self),
                              (unsigned long long)tasks[i].id);
            break;
        case SLOW:
            skt_sleep(a->sleep);
            break;
        case BEHAVE:
        case FINISH_ON:
        case STOP_SLOW:
        case STOP_FAILS:
            break;
        }
        t->value += a->add;
        t->trace |= 1ull << a->slot;
        atomic_fetch_add(&s->handled[a->slot], 1);
        if (a->how == FINISH_ON && mine)
            sk_step_finish(self);
    }
    return 0;
}

static bool adder_condition(sk_step *self, const sk_task *task)
{
    adder *a = ADDER(self);
    return !a->odd_only || (((const task64 *)task->record)->value & 1);
}

static const sk_step_class adder_class = {.name = "adder",
                                          .start = adder_start,
                                          .handle = adder_handle,
                                          .stop = adder_stop,
                                          .condition = adder_condition};

static void release_flow(void *f)
{
    sk_flow_release(f);
}

struct fixture {
    sk_flow *flow;
    adder *steps[4];
    struct seen *seen;
};

/* A flow of n adders (step i adds 10^i), each with `procs` processes and
 * batches of `batch`. Not started. */
static struct fixture make_flow(int n, int procs, size_t batch, const sk_flow_config *cfg)
{
    struct fixture fx = {0};
    sk_flow_config c = cfg != NULL ? *cfg : (sk_flow_config){0};
    c.task_size = sizeof(task64);
    assert_rc(sk_flow_create(&fx.flow, &c), SK_OK);
    skt_defer(release_flow, fx.flow);
    fx.seen = skt_shared(sizeof *fx.seen);
    int64_t add = 1;
    for (int i = 0; i < n; i++, add *= 10) {
        adder *a = xcalloc(1, sizeof *a);
        assert_rc(sk_step_init(&a->base, &adder_class), SK_OK);
        a->slot = i;
        a->add = add;
        a->seen = fx.seen;
        a->on = UINT64_MAX;
        a->base.config.processes = procs;
        a->base.config.batch_size = batch;
        fx.steps[i] = a;
    }
    return fx;
}

static void add_all(struct fixture *fx, int n)
{
    for (int i = 0; i < n; i++)
        assert_rc(sk_flow_add(fx->flow, &fx->steps[i]->base), SK_OK);
}

static void submit_n(sk_flow *f, long n, int64_t base)
{
    for (long i = 0; i < n; i++) {
        task64 t = {.value = base + i};
        assert_rc(sk_flow_submit(f, &t, 10.0, 0, NULL), SK_OK);
    }
}

/* Collects until SK_ECLOSED, checking each record and counting statuses;
 * every id seen once. */
static long collect_from(sk_flow *f, long from, long submitted, int64_t add, long *failed)
{
    unsigned char *seen = xcalloc((size_t)submitted, 1);
    long ok = 0;
    *failed = 0;
    for (;;) {
        task64 t;
        sk_flow_result r;
        int rc = sk_flow_collect(f, 20.0, &t, &r);
        if (rc == SK_ECLOSED)
            break;
        assert_rc(rc, SK_OK);
        assert_cmp(r.id, <, (uint64_t)submitted);
        assert_int_equal(seen[r.id], 0); /* never twice */
        seen[r.id] = 1;
        if (r.status == SK_OK) {
            assert_int_equal(t.value, (int64_t)r.id + add);
            ok++;
        } else {
            (*failed)++;
        }
    }
    for (long i = from; i < submitted; i++)
        assert_int_equal(seen[i], 1); /* none lost */
    xfree(seen);
    return ok;
}

static long collect_all(sk_flow *f, long submitted, int64_t add, long *failed)
{
    return collect_from(f, 0, submitted, add, failed);
}

/* ------------------------------------------------------------------ tests */

static void test_three_steps(void **state)
{
    (void)state;
    struct fixture fx = make_flow(3, 1, 8, NULL);
    add_all(&fx, 3);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&fx.seen->starts[i]), 1);
    task64 one = {.value = 5};
    sk_flow_result r;
    assert_rc(sk_flow_call(fx.flow, &one, 10.0, &r), SK_OK);
    assert_int_equal(one.value, 5 + 111);
    assert_int_equal(one.trace, 7);
    assert_int_equal(r.id, 0);
    submit_n(fx.flow, 200, 1);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    long failed;
    assert_int_equal(collect_from(fx.flow, 1, 201, 111, &failed), 200);
    assert_int_equal(failed, 0);
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
    assert_null(sk_flow_error(fx.flow));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&fx.seen->stops[i]), 1);
        assert_int_equal(atomic_load(&fx.seen->handled[i]), 201);
    }
    uint64_t late;
    task64 t = {0};
    assert_rc(sk_flow_submit(fx.flow, &t, 0, 0, &late), SK_ECLOSED);
}

/* End of stream with several processes in every step and partial batches:
 * every process of every step runs its stop hook, nothing is left behind. */
static void test_end_of_stream_every_process(void **state)
{
    (void)state;
    sk_flow_config cfg = {0};
    struct fixture fx = make_flow(3, 3, 4, &cfg);
    for (int i = 0; i < 3; i++)
        fx.steps[i]->base.config.batch_timeout = 30.0; /* only the end flushes a partial batch */
    add_all(&fx, 3);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 10, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    long failed;
    double t0 = skt_now();
    assert_int_equal(collect_all(fx.flow, 10, 111, &failed), 10);
    assert_dbl_lt(skt_now() - t0, 10.0); /* not the 30 s batch timeout */
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&fx.seen->starts[i]), 3);
        assert_int_equal(atomic_load(&fx.seen->stops[i]), 3);
        assert_int_equal(atomic_load(&fx.seen->handled[i]), 10);
        assert_int_le(atomic_load(&fx.seen->biggest_batch[i]), 4);
    }
}

/* Ordered collection from a step whose processes finish out of order. */
static void test_ordered(void **state)
{
    (void)state;
    sk_flow_config cfg = {.ordered = true};
    struct fixture fx = make_flow(1, 3, 1, &cfg);
    fx.steps[0]->how = SLOW;
    fx.steps[0]->sleep = 0.002;
    add_all(&fx, 1);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 60, 0);
    for (uint64_t i = 0; i < 60; i++) {
        task64 t;
        sk_flow_result r;
        assert_rc(sk_flow_collect(fx.flow, 10.0, &t, &r), SK_OK);
        assert_int_equal(r.id, i);
        assert_int_equal(r.status, SK_OK);
        assert_int_equal(t.value, (int64_t)i + 1);
    }
    assert_rc(sk_flow_collect(fx.flow, 0, NULL, NULL), SK_ETIMEDOUT);
}

/* A partial batch is handled when its timeout passes, without an end. */
static void test_batch_timeout(void **state)
{
    (void)state;
    struct fixture fx = make_flow(1, 1, 16, NULL);
    fx.steps[0]->base.config.batch_timeout = 0.05;
    add_all(&fx, 1);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 3, 0);
    for (int i = 0; i < 3; i++) {
        sk_flow_result r;
        assert_rc(sk_flow_collect(fx.flow, 10.0, NULL, &r), SK_OK);
        assert_int_equal(r.status, SK_OK);
    }
    assert_int_equal(atomic_load(&fx.seen->handled[0]), 3);
    assert_int_le(atomic_load(&fx.seen->batches[0]), 3);
}

static void test_condition_skips(void **state)
{
    (void)state;
    struct fixture fx = make_flow(2, 1, 4, NULL);
    fx.steps[0]->odd_only = true;
    add_all(&fx, 2);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 20, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    for (int i = 0; i < 20; i++) {
        task64 t;
        sk_flow_result r;
        assert_rc(sk_flow_collect(fx.flow, 10.0, &t, &r), SK_OK);
        bool odd = r.id & 1;
        assert_int_equal(t.value, (int64_t)r.id + (odd ? 11 : 10));
        assert_int_equal(t.trace, odd ? 3 : 2);
    }
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
    assert_int_equal(atomic_load(&fx.seen->handled[0]), 10);
}

/* A task that fails in a middle step comes out failed, naming the step;
 * the others go on. */
static void test_task_fails(void **state)
{
    (void)state;
    struct fixture fx = make_flow(3, 2, 4, NULL);
    fx.steps[1]->how = FAIL_ON;
    fx.steps[1]->on = 7;
    add_all(&fx, 3);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 20, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    int failures = 0;
    for (int i = 0; i < 20; i++) {
        sk_flow_result r;
        assert_rc(sk_flow_collect(fx.flow, 10.0, NULL, &r), SK_OK);
        if (r.id != 7) {
            assert_int_equal(r.status, SK_OK);
            continue;
        }
        failures++;
        assert_int_equal(r.status, SK_EPROCESS);
        assert_int_equal(r.step, 1);
        assert_int_ge(r.process, 0);
        assert_int_equal(r.error.code, 42);
        assert_string_equal(r.error.cause, "task 7 is bad");
        assert_non_null(strstr(r.error.message, "step 'adder'"));
    }
    assert_int_equal(failures, 1);
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
}

/* A batch that fails is tried again while its tasks have lives. */
static void test_batch_retried(void **state)
{
    (void)state;
    struct fixture fx = make_flow(1, 1, 4, NULL);
    fx.steps[0]->how = FAIL_BATCH_ON;
    fx.steps[0]->on = 3;
    fx.steps[0]->times = 1;
    fx.steps[0]->base.config.lives = 2;
    add_all(&fx, 1);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 8, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    long failed;
    assert_int_equal(collect_all(fx.flow, 8, 1, &failed), 8);
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
}

/* A step process that segfaults mid-batch is restarted; its batch is tried
 * again (lives 2) and nothing is lost or doubled. */
static void test_crash_retried(void **state)
{
    (void)state;
    struct fixture fx = make_flow(3, 2, 4, NULL);
    fx.steps[1]->how = CRASH_ON;
    fx.steps[1]->on = 9;
    fx.steps[1]->times = 1;
    fx.steps[1]->base.config.lives = 2;
    add_all(&fx, 3);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 40, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    long failed;
    assert_int_equal(collect_all(fx.flow, 40, 111, &failed), 40);
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
    assert_int_equal(atomic_load(&fx.seen->crashes), 2);
    assert_int_equal(atomic_load(&fx.seen->starts[1]), 3); /* one restart */
}

/* Without lives left the batch the crash took fails, with a crash error;
 * the flow goes on. */
static void test_crash_fails_batch(void **state)
{
    (void)state;
    struct fixture fx = make_flow(2, 1, 1, NULL);
    fx.steps[0]->how = CRASH_ON;
    fx.steps[0]->on = 5;
    fx.steps[0]->times = 100;
    add_all(&fx, 2);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 12, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    for (int i = 0; i < 12; i++) {
        task64 t;
        sk_flow_result r;
        assert_rc(sk_flow_collect(fx.flow, 10.0, &t, &r), SK_OK);
        if (r.id != 5) {
            assert_int_equal(r.status, SK_OK);
            assert_int_equal(t.value, (int64_t)r.id + 11);
            continue;
        }
        assert_int_equal(r.status, SK_EPROCESS);
        assert_int_equal(r.step, 0);
        assert_int_equal(r.error.kind, SK_CRASH_ERROR);
        assert_int_equal(r.error.signal, SIGSEGV);
    }
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
    assert_int_equal(atomic_load(&fx.seen->crashes), 1);
}

/* A handle that hangs is killed at its timeout, and tried again. */
static void test_hang_times_out(void **state)
{
    (void)state;
    struct fixture fx = make_flow(1, 1, 2, NULL);
    fx.steps[0]->how = HANG_ON;
    fx.steps[0]->on = 2;
    fx.steps[0]->times = 1;
    fx.steps[0]->base.config.lives = 2;
    fx.steps[0]->base.config.timeouts.handle = 0.2;
    add_all(&fx, 1);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 6, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    long failed;
    assert_int_equal(collect_all(fx.flow, 6, 1, &failed), 6);
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
    assert_int_equal(atomic_load(&fx.seen->hangs), 2);
}

/* An error status from a middle step ends the flow within a bound, names
 * the step, and fails what was in flight. */
static void test_error_status(void **state)
{
    (void)state;
    struct fixture fx = make_flow(3, 2, 1, NULL);
    fx.steps[1]->how = ERROR_ON;
    fx.steps[1]->on = 30;
    add_all(&fx, 3);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 100, 0);
    double t0 = skt_now();
    assert_rc(sk_flow_wait(fx.flow, 20.0), SK_EPROCESS);
    assert_dbl_lt(skt_now() - t0, 10.0);
    const sk_flow_result *e = sk_flow_error(fx.flow);
    assert_non_null(e);
    assert_int_equal(e->step, 1);
    assert_int_ge(e->process, 0);
    assert_int_le(e->process, 1);
    assert_string_equal(e->error.cause, "step 1 saw task 30");
    long failed;
    long ok = collect_all(fx.flow, 100, 111, &failed);
    assert_int_equal(ok + failed, 100);
    assert_int_gt(failed, 0);
    assert_true(skt_no_children());
}

/* A stop hook that runs past timeouts.stop is ended by its supervisor:
 * the flow ends with an error naming the step and the timeout, well before
 * the hook would have returned. */
static void test_stop_hook_timeout(void **state)
{
    (void)state;
    struct fixture fx = make_flow(2, 1, 1, NULL);
    fx.steps[1]->how = STOP_SLOW;
    fx.steps[1]->sleep = 30.0;
    fx.steps[1]->base.config.timeouts.stop = 0.2;
    fx.steps[1]->base.config.crash_stops_flow = true;
    add_all(&fx, 2);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 4, 0);
    long failed;
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    double t0 = skt_now();
    assert_rc(sk_flow_wait(fx.flow, 20.0), SK_EPROCESS);
    assert_dbl_lt(skt_now() - t0, 10.0);
    const sk_flow_result *e = sk_flow_error(fx.flow);
    assert_non_null(e);
    assert_int_equal(e->step, 1);
    assert_int_equal(e->error.kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->error.section, SK_ONFINISH);
    assert_int_equal(collect_all(fx.flow, 4, 11, &failed), 4); /* handled before the end */
    assert_int_equal(atomic_load(&fx.seen->stops[1]), 1);
    assert_true(skt_no_children());
}

/* A stop hook that fails is not lost: the flow ends with an error naming
 * the step, the process and the hook's message, after every task came
 * out. */
static void test_stop_hook_fails(void **state)
{
    (void)state;
    struct fixture fx = make_flow(2, 2, 1, NULL);
    fx.steps[0]->how = STOP_FAILS;
    add_all(&fx, 2);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 10, 0);
    assert_rc(sk_flow_close(fx.flow), SK_OK);
    assert_rc(sk_flow_wait(fx.flow, 20.0), SK_EPROCESS);
    const sk_flow_result *e = sk_flow_error(fx.flow);
    assert_non_null(e);
    assert_int_equal(e->step, 0);
    assert_int_equal(e->error.section, SK_ONFINISH);
    assert_int_equal(e->error.code, 9);
    char want[64];
    snprintf(want, sizeof want, "flush of process %d failed", e->process);
    assert_string_equal(e->error.cause, want);
    long failed;
    assert_int_equal(collect_all(fx.flow, 10, 11, &failed), 10);
    assert_int_equal(failed, 0);
    assert_int_equal(atomic_load(&fx.seen->stops[0]), 2);
    assert_true(skt_no_children());
}

/* Whether fd polls readable within `seconds`. */
static bool readable_within(int fd, double seconds)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, (int)(seconds * 1000)) == 1;
}

/* sk_flow_fd wakes an event loop for everything collect can give, with no
 * tick of the loop's own: results, a task's timeout passing, a step
 * process ending for good; and it does not stay readable once collect has
 * said SK_ETIMEDOUT (an event loop would spin). */
static void test_fd_wakes(void **state)
{
    (void)state;
    struct fixture fx = make_flow(2, 1, 1, NULL);
    fx.steps[1]->how = SLOW;
    fx.steps[1]->sleep = 0.5;
    fx.steps[1]->base.config.crash_stops_flow = true;
    add_all(&fx, 2);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    int fd = sk_flow_fd(fx.flow);
    assert_int_ge(fd, 0);
    assert_false(readable_within(fd, 0)); /* nothing yet */
    /* A result. */
    task64 t = {.value = 1};
    assert_rc(sk_flow_submit(fx.flow, &t, 1.0, 0, NULL), SK_OK);
    double t0 = skt_now();
    assert_true(readable_within(fd, 10.0));
    sk_flow_result r;
    assert_rc(sk_flow_collect(fx.flow, 0, &t, &r), SK_OK);
    assert_rc(r.status, SK_OK);
    assert_int_equal(t.value, 12);
    assert_rc(sk_flow_collect(fx.flow, 0, &t, &r), SK_ETIMEDOUT);
    assert_false(readable_within(fd, 0));
    /* A task timeout, long before its result would come. */
    t.value = 2;
    assert_rc(sk_flow_submit(fx.flow, &t, 1.0, 0.05, NULL), SK_OK);
    t0 = skt_now();
    assert_true(readable_within(fd, 10.0));
    assert_dbl_lt(skt_now() - t0, 0.45); /* the timer, not the result */
    assert_rc(sk_flow_collect(fx.flow, 0, &t, &r), SK_OK);
    assert_rc(r.status, SK_ETIMEDOUT);
    assert_rc(sk_flow_collect(fx.flow, 0, &t, &r), SK_ETIMEDOUT);
    /* Its late result comes and is dropped: the fd may wake once for it,
     * and is quiet after collect said SK_ETIMEDOUT. */
    skt_wait_until(atomic_load(&fx.seen->handled[1]) == 2, 10.0);
    if (readable_within(fd, 1.0))
        assert_rc(sk_flow_collect(fx.flow, 0, &t, &r), SK_ETIMEDOUT);
    assert_false(readable_within(fd, 0));
    /* A step process that ends for good (killed from outside, and its step
     * does not restart it): the fd wakes, and collect reports the end. */
    assert_int_equal(kill(atomic_load(&fx.seen->pid[1]), SIGKILL), 0);
    assert_true(readable_within(fd, 10.0));
    for (int i = 0; i < 100; i++) {
        int rc = sk_flow_collect(fx.flow, 0, &t, &r);
        if (rc == SK_ECLOSED)
            break;
        assert_rc(rc, SK_ETIMEDOUT);
        assert_true(readable_within(fd, 10.0));
    }
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_EPROCESS);
    assert_int_equal(sk_flow_error(fx.flow)->step, 1);
}

/* finish from the first step: what it handled goes through, the flow takes
 * no more input and ends cleanly. */
static void test_finish_status(void **state)
{
    (void)state;
    struct fixture fx = make_flow(3, 1, 1, NULL);
    fx.steps[0]->how = FINISH_ON;
    fx.steps[0]->on = 4;
    add_all(&fx, 3);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 5, 0);
    assert_rc(sk_flow_wait(fx.flow, 10.0), SK_OK);
    assert_null(sk_flow_error(fx.flow));
    long failed;
    assert_int_equal(collect_all(fx.flow, 5, 111, &failed), 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&fx.seen->stops[i]), 1);
    task64 t = {0};
    assert_rc(sk_flow_submit(fx.flow, &t, 0, 0, NULL), SK_ECLOSED);
}

/* A slow last step and a small queue: submit meets backpressure. */
static void test_backpressure(void **state)
{
    (void)state;
    sk_flow_config cfg = {.queue_size = 16};
    struct fixture fx = make_flow(2, 1, 1, &cfg);
    fx.steps[1]->how = SLOW;
    fx.steps[1]->sleep = 0.01;
    add_all(&fx, 2);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 16, 0);
    task64 t = {0};
    assert_rc(sk_flow_submit(fx.flow, &t, 0, 0, NULL), SK_EFULL);
    double t0 = skt_now();
    assert_rc(sk_flow_submit(fx.flow, &t, 0.1, 0, NULL), SK_EFULL);
    assert_dbl_ge(skt_now() - t0, 0.09);
    sk_flow_result r;
    assert_rc(sk_flow_collect(fx.flow, 10.0, NULL, &r), SK_OK);
    assert_rc(sk_flow_submit(fx.flow, &t, 0, 0, NULL), SK_OK);
}

/* A task's own timeout fails it; its late result is dropped. */
static void test_task_timeout(void **state)
{
    (void)state;
    struct fixture fx = make_flow(1, 1, 1, NULL);
    fx.steps[0]->how = SLOW;
    fx.steps[0]->sleep = 0.3;
    add_all(&fx, 1);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    task64 t = {.value = 1};
    assert_rc(sk_flow_submit(fx.flow, &t, 1.0, 0.05, NULL), SK_OK);
    sk_flow_result r;
    assert_rc(sk_flow_collect(fx.flow, 10.0, NULL, &r), SK_OK);
    assert_int_equal(r.status, SK_ETIMEDOUT);
    assert_int_equal(r.error.kind, SK_TIMEOUT_ERROR);
    assert_rc(sk_flow_submit(fx.flow, &t, 1.0, 0, NULL), SK_OK);
    assert_rc(sk_flow_collect(fx.flow, 10.0, &t, &r), SK_OK);
    assert_int_equal(r.id, 1); /* the late task 0 never came out */
    assert_int_equal(r.status, SK_OK);
}

/* Stop with tasks queued: bounded, nothing left running. */
static void test_stop(void **state)
{
    (void)state;
    struct fixture fx = make_flow(2, 2, 1, NULL);
    fx.steps[1]->how = SLOW;
    fx.steps[1]->sleep = 0.05;
    add_all(&fx, 2);
    assert_rc(sk_flow_start(fx.flow), SK_OK);
    submit_n(fx.flow, 100, 0);
    double t0 = skt_now();
    assert_rc(sk_flow_stop(fx.flow), SK_OK);
    assert_dbl_lt(skt_now() - t0, 8.0);
    assert_true(skt_no_children());
    long failed;
    long ok = collect_all(fx.flow, 100, 11, &failed);
    assert_int_equal(ok + failed, 100);
    assert_int_gt(failed, 0);
}

static int fail_start(sk_step *self)
{
    return sk_step_fail(self, 3, "no model at %s", "/nowhere");
}

static const sk_step_class bad_start_class = {
    .name = "loader", .start = fail_start, .handle = adder_handle};

static void test_start_fails(void **state)
{
    (void)state;
    struct fixture fx = make_flow(1, 1, 1, NULL);
    sk_step *bad = xcalloc(1, sizeof *bad); /* in place until the flow is released */
    assert_rc(sk_step_init(bad, &bad_start_class), SK_OK);
    bad->config.restarts = 1;
    add_all(&fx, 1);
    assert_rc(sk_flow_add(fx.flow, bad), SK_OK);
    assert_rc(sk_flow_start(fx.flow), SK_EPROCESS);
    const sk_flow_result *e = sk_flow_error(fx.flow);
    assert_non_null(e);
    assert_int_equal(e->step, 1);
    assert_non_null(strstr(e->error.message, "'loader'"));
    assert_non_null(strstr(e->error.cause, "no model at /nowhere"));
    assert_true(skt_no_children());
}

static int hang_start(sk_step *self)
{
    (void)self;
    skt_spin_forever();
    return 0;
}

static const sk_step_class hang_start_class = {
    .name = "sleeper", .start = hang_start, .handle = adder_handle};

static void test_start_timeout(void **state)
{
    (void)state;
    sk_flow_config cfg = {.start_timeout = 0.3};
    struct fixture fx = make_flow(1, 1, 1, &cfg);
    sk_step *bad = xcalloc(1, sizeof *bad);
    assert_rc(sk_step_init(bad, &hang_start_class), SK_OK);
    add_all(&fx, 1);
    assert_rc(sk_flow_add(fx.flow, bad), SK_OK);
    assert_rc(sk_flow_start(fx.flow), SK_ETIMEDOUT);
    const sk_flow_result *e = sk_flow_error(fx.flow);
    assert_non_null(e);
    assert_int_equal(e->step, 1);
    assert_non_null(strstr(e->error.message, "'sleeper'"));
    assert_non_null(strstr(e->error.message, "not ready"));
    assert_true(skt_no_children());
}

static void test_refusals(void **state)
{
    (void)state;
    sk_flow *f;
    assert_rc(sk_flow_create(&f, NULL), SK_EINVAL);
    sk_flow_config cfg = {.task_size = 0};
    assert_rc(sk_flow_create(&f, &cfg), SK_EINVAL);
    cfg.task_size = 8;
    assert_rc(sk_flow_create(&f, &cfg), SK_OK);
    skt_defer(release_flow, f);
    assert_rc(sk_flow_start(f), SK_EINVAL); /* no step */
    sk_step s;
    static const sk_step_class no_handle = {.name = "x"};
    assert_rc(sk_step_init(&s, &no_handle), SK_EINVAL);
    int64_t v = 0;
    assert_rc(sk_flow_submit(f, &v, 0, 0, NULL), SK_ESTATE);
    assert_rc(sk_flow_collect(f, 0, NULL, NULL), SK_ESTATE);
    assert_int_equal(sk_flow_fd(f), -1);
    /* Limits, at sk_flow_add and again at start (the config may change
     * in between). */
    adder a = {0};
    assert_rc(sk_step_init(&a.base, &adder_class), SK_OK);
    a.base.config.batch_size = 1u << 20;
    assert_rc(sk_flow_add(f, &a.base), SK_EINVAL);
    a.base.config.batch_size = 4;
    assert_rc(sk_flow_add(f, &a.base), SK_OK);
    a.base.config.batch_size = 1u << 20;
    assert_rc(sk_flow_start(f), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "step 0 ('adder')"));
    a.base.config.processes = 100000;
    a.base.config.batch_size = 4;
    assert_rc(sk_flow_start(f), SK_EINVAL);
    assert_true(skt_no_children());
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_three_steps),       SKT_TEST(test_end_of_stream_every_process),
        SKT_TEST(test_ordered),           SKT_TEST(test_batch_timeout),
        SKT_TEST(test_condition_skips),   SKT_TEST(test_task_fails),
        SKT_TEST(test_batch_retried),     SKT_TEST(test_crash_retried),
        SKT_TEST(test_crash_fails_batch), SKT_TEST(test_hang_times_out),
        SKT_TEST(test_error_status),      SKT_TEST(test_stop_hook_timeout),
        SKT_TEST(test_stop_hook_fails),   SKT_TEST(test_fd_wakes),
        SKT_TEST(test_finish_status),     SKT_TEST(test_backpressure),
        SKT_TEST(test_task_timeout),      SKT_TEST(test_stop),
        SKT_TEST(test_start_fails),       SKT_TEST(test_start_timeout),
        SKT_TEST(test_refusals),
    };
    return skt_run(argc, argv, tests);
}
