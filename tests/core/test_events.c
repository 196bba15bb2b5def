/* SPDX-License-Identifier: MIT */
/*
 * Events for logs and metrics (issue 11 item 4): config.on_event is called
 * in the parent, in the thread that calls into the handle, for start,
 * restart, timeout, crash, failure, kill and finish, in order, with the
 * pid, the section, the run and the error. The sequences asserted here are
 * exact. A worker that scribbles over the event log in the status page
 * leaves the parent sane: only kinds the log holds, checked fields, FINISH
 * once and last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "core/runtime.h"

#include <pthread.h>
#include <stdatomic.h>

/* ------------------------------------------------------------ recorder */

#define MAX_SEEN 128

struct seen_event {
    sk_event_kind kind;
    pid_t pid;
    sk_section section;
    long run;
    bool has_error;
    sk_error error;
    long item;
    int worker;
    pthread_t thread;
};

struct recorder {
    int n;
    struct seen_event ev[MAX_SEEN];
};

static void record(const sk_event *ev, void *ctx)
{
    struct recorder *r = ctx;
    if (r->n >= MAX_SEEN)
        return;
    struct seen_event *s = &r->ev[r->n++];
    s->kind = ev->kind;
    s->pid = ev->pid;
    s->section = ev->section;
    s->run = ev->run;
    s->has_error = ev->error != NULL;
    if (ev->error != NULL)
        s->error = *ev->error;
    s->item = ev->item;
    s->worker = ev->worker;
    s->thread = pthread_self();
}

static struct recorder *recorder_new(void)
{
    return xcalloc(1, sizeof(struct recorder));
}

/* Asserts the kinds seen, in order. */
static void assert_kinds(const struct recorder *r, const sk_event_kind *want, int n)
{
    char seen[512] = "", wanted[512] = "";
    for (int i = 0; i < r->n; i++)
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), " %s",
                 sk_event_name(r->ev[i].kind));
    for (int i = 0; i < n; i++)
        snprintf(wanted + strlen(wanted), sizeof wanted - strlen(wanted), " %s",
                 sk_event_name(want[i]));
    if (strcmp(seen, wanted) != 0)
        fail_msg("events:%s\nwanted:%s", seen, wanted);
    for (int i = 0; i < r->n; i++)
        assert_true(pthread_equal(r->ev[i].thread, pthread_self()));
}

#define ASSERT_KINDS(r, ...)                                                                       \
    do {                                                                                           \
        const sk_event_kind want_[] = {__VA_ARGS__};                                               \
        assert_kinds((r), want_, (int)(sizeof want_ / sizeof want_[0]));                           \
    } while (0)

/* ------------------------------------------------------------- process */

enum fault { FAULT_NONE, FAULT_SOFT, FAULT_CRASH, FAULT_SPIN };

struct across {
    _Atomic int faults;
};

typedef struct {
    sk_process base;
    enum fault fault;
    int fail_times;
    struct across *across;
} flaky;

#define FLAKY(p) SK_CONTAINER_OF(p, flaky, base)

/* The k-th failure (k from 0) happens on run k + 1. */
static int flaky_run(sk_process *self)
{
    flaky *f = FLAKY(self);
    int done = atomic_load(&f->across->faults);
    if (f->fault != FAULT_NONE && done < f->fail_times && sk_current_run(self) == done + 1) {
        atomic_fetch_add(&f->across->faults, 1);
        switch (f->fault) {
        case FAULT_SOFT:
            return sk_fail(self, 11, "flaked on run %ld", sk_current_run(self));
        case FAULT_CRASH:
            skt_die_by(SIGSEGV);
            break;
        case FAULT_SPIN:
            skt_spin_forever();
            break;
        case FAULT_NONE:
            break;
        }
    }
    if (f->base.config.runs == 0)
        skt_sleep(0.001); /* runs until stopped */
    return 0;
}

static const sk_class flaky_class = {.name = "flaky", .run = flaky_run};

static flaky *flaky_new(long runs, int lives, int fail_times, enum fault fault, struct recorder *r)
{
    flaky *f = skt_new(flaky);
    assert_rc(sk_init(&f->base, &flaky_class), SK_OK);
    f->base.config.runs = runs;
    f->base.config.lives = lives;
    f->base.config.on_event = record;
    f->base.config.event_ctx = r;
    f->fail_times = fail_times;
    f->fault = fault;
    f->across = skt_shared(sizeof *f->across);
    return f;
}

/* ---------------------------------------------------------------- tests */

static void check_clean_run(bool supervised)
{
    struct recorder *r = recorder_new();
    flaky *f = flaky_new(0, 1, 0, FAULT_NONE, r);
    f->base.config.supervise = supervised;
    assert_rc(sk_start(&f->base), SK_OK);
    ASSERT_KINDS(r, SK_EVENT_START); /* sk_start delivered it */
    skt_wait_until(sk_pid(&f->base) > 0, 10.0);
    assert_int_equal(r->ev[0].pid, sk_pid(&f->base));
    assert_int_equal(r->ev[0].section, SK_NO_SECTION);
    assert_int_equal(r->ev[0].run, 0);
    assert_false(r->ev[0].has_error);
    assert_int_equal(r->ev[0].item, -1);
    assert_int_equal(r->ev[0].worker, -1);
    assert_true(sk_alive(&f->base));
    assert_rc(sk_stop(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    ASSERT_KINDS(r, SK_EVENT_START, SK_EVENT_FINISH);
    assert_int_equal(r->ev[1].pid, r->ev[0].pid);
    assert_false(r->ev[1].has_error);
    assert_int_equal(r->ev[1].run, sk_current_run(&f->base));
    /* FINISH once: later calls deliver nothing more. */
    assert_rc(sk_wait(&f->base, 0), SK_OK);
    assert_false(sk_alive(&f->base));
    assert_rc(sk_kill(&f->base), SK_OK);
    sk_release(&f->base);
    assert_int_equal(r->n, 2);
}

static void test_clean_run(void **state)
{
    (void)state;
    check_clean_run(false);
}

static void test_clean_run_supervised(void **state)
{
    (void)state;
    check_clean_run(true);
}

/* Lives 3, crashes on runs 1 and 2, then success. */
static void test_crash_twice_then_succeed(void **state)
{
    (void)state;
    struct recorder *r = recorder_new();
    flaky *f = flaky_new(4, 3, 2, FAULT_CRASH, r);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    ASSERT_KINDS(r, SK_EVENT_START, SK_EVENT_CRASH, SK_EVENT_RESTART, SK_EVENT_CRASH,
                 SK_EVENT_RESTART, SK_EVENT_FINISH);
    struct seen_event *e = r->ev;
    assert_cmp(e[0].pid, >, 0);
    assert_int_equal(e[1].pid, e[0].pid); /* the worker that crashed */
    assert_cmp(e[2].pid, !=, e[0].pid);   /* a fresh one */
    assert_cmp(e[2].pid, >, 0);
    assert_int_equal(e[3].pid, e[2].pid);
    assert_cmp(e[4].pid, !=, e[2].pid);
    assert_int_equal(e[5].pid, e[4].pid);
    for (int i = 1; i <= 3; i += 2) {
        assert_true(e[i].has_error);
        assert_int_equal(e[i].error.kind, SK_CRASH_ERROR);
        assert_int_equal(e[i].error.signal, SIGSEGV);
        assert_int_equal(e[i].section, SK_RUN);
        assert_int_equal(e[i].run, (i + 1) / 2);
        assert_int_equal(e[i + 1].run, (i + 1) / 2); /* restarted at the same run */
        assert_false(e[i + 1].has_error);
    }
    assert_false(e[5].has_error);
    assert_int_equal(e[5].run, 4);
    sk_release(&f->base);
}

/* Unsupervised: the parent sees the crash itself. */
static void test_crash_unsupervised(void **state)
{
    (void)state;
    struct recorder *r = recorder_new();
    flaky *f = flaky_new(3, 1, 1, FAULT_CRASH, r);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    ASSERT_KINDS(r, SK_EVENT_START, SK_EVENT_CRASH, SK_EVENT_FINISH);
    assert_int_equal(r->ev[1].pid, r->ev[0].pid);
    assert_int_equal(r->ev[1].error.kind, SK_CRASH_ERROR);
    assert_int_equal(r->ev[1].run, 1);
    assert_true(r->ev[2].has_error);
    assert_int_equal(r->ev[2].error.kind, SK_CRASH_ERROR);
    assert_int_equal(r->ev[2].pid, r->ev[0].pid);
    sk_release(&f->base);
}

static void test_timeout(void **state)
{
    (void)state;
    struct recorder *r = recorder_new();
    flaky *f = flaky_new(3, 1, 1, FAULT_SPIN, r);
    f->base.config.timeouts.run = 0.05;
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    ASSERT_KINDS(r, SK_EVENT_START, SK_EVENT_TIMEOUT, SK_EVENT_FINISH);
    assert_int_equal(r->ev[1].pid, r->ev[0].pid);
    assert_int_equal(r->ev[1].error.kind, SK_TIMEOUT_ERROR);
    assert_int_equal(r->ev[1].section, SK_RUN);
    assert_int_equal(r->ev[1].run, 1);
    assert_true(r->ev[2].has_error);
    assert_int_equal(r->ev[2].error.kind, SK_TIMEOUT_ERROR);
    sk_release(&f->base);
}

/* A soft failure retried (no restart), then one that ends the process. */
static void test_soft_failure(void **state)
{
    (void)state;
    struct recorder *r = recorder_new();
    flaky *f = flaky_new(3, 2, 1, FAULT_SOFT, r);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    ASSERT_KINDS(r, SK_EVENT_START, SK_EVENT_FAILURE, SK_EVENT_FINISH);
    assert_int_equal(r->ev[1].pid, r->ev[0].pid); /* the same worker */
    assert_int_equal(r->ev[1].error.kind, SK_RUN_ERROR);
    assert_int_equal(r->ev[1].error.code, 11);
    assert_int_equal(r->ev[1].run, 1);
    assert_false(r->ev[2].has_error);
    sk_release(&f->base);

    struct recorder *r2 = recorder_new();
    flaky *g = flaky_new(3, 1, 1, FAULT_SOFT, r2);
    assert_rc(sk_start(&g->base), SK_OK);
    assert_rc(sk_result(&g->base, NULL), SK_EPROCESS); /* sk_result delivers too */
    ASSERT_KINDS(r2, SK_EVENT_START, SK_EVENT_FAILURE, SK_EVENT_FINISH);
    assert_true(r2->ev[2].has_error);
    assert_int_equal(r2->ev[2].error.kind, SK_RUN_ERROR);
    assert_int_equal(r2->ev[2].run, 1);
    sk_release(&g->base);
}

static void check_kill(bool supervised, bool by_release)
{
    struct recorder *r = recorder_new();
    flaky *f = flaky_new(0, 1, 0, FAULT_NONE, r);
    f->base.config.supervise = supervised;
    assert_rc(sk_start(&f->base), SK_OK);
    skt_wait_until(sk_pid(&f->base) > 0, 10.0);
    pid_t pid = sk_pid(&f->base);
    if (by_release)
        sk_release(&f->base);
    else
        assert_rc(sk_kill(&f->base), SK_OK);
    ASSERT_KINDS(r, SK_EVENT_START, SK_EVENT_KILL, SK_EVENT_FINISH);
    assert_int_equal(r->ev[0].pid, pid);
    assert_int_equal(r->ev[1].pid, pid);
    assert_int_equal(r->ev[2].pid, pid);
    assert_false(r->ev[2].has_error);
    sk_release(&f->base);
}

static void test_kill(void **state)
{
    (void)state;
    check_kill(false, false);
    check_kill(true, false);
    check_kill(true, true);
}

/* Without on_event nothing is called, whatever happens. */
static void test_no_callback(void **state)
{
    (void)state;
    struct recorder *r = recorder_new();
    flaky *f = flaky_new(4, 3, 2, FAULT_CRASH, r);
    f->base.config.on_event = NULL;
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_int_equal(sk_restarts(&f->base), 2);
    sk_release(&f->base);
    assert_int_equal(r->n, 0);
}

/* sk_wait delivers events while it waits, not only when it returns: the
 * restarted worker waits (in shared memory) until the callback has seen
 * its RESTART, which only a prompt delivery inside sk_wait can do. */
struct prompt {
    _Atomic int restart_seen;
};

static void record_prompt(const sk_event *ev, void *ctx)
{
    struct prompt *pr = ctx;
    if (ev->kind == SK_EVENT_RESTART)
        atomic_store(&pr->restart_seen, 1);
}

typedef struct {
    sk_process base;
    struct prompt *pr;
    struct across *across;
} waiter;

static int waiter_run(sk_process *self)
{
    waiter *w = SK_CONTAINER_OF(self, waiter, base);
    if (atomic_fetch_add(&w->across->faults, 1) == 0)
        skt_die_by(SIGSEGV);
    double deadline = skt_now() + 10.0 * skt_slowdown();
    while (!atomic_load(&w->pr->restart_seen))
        if (skt_now() > deadline)
            return sk_fail(self, 1, "the parent never saw the restart while it waited");
        else
            skt_sleep(0.0005);
    sk_stop(self);
    return 0;
}

static const sk_class waiter_class = {.name = "waiter", .run = waiter_run};

static void test_wait_delivers_while_waiting(void **state)
{
    (void)state;
    waiter *w = skt_new(waiter);
    assert_rc(sk_init(&w->base, &waiter_class), SK_OK);
    w->pr = skt_shared(sizeof *w->pr);
    w->across = skt_shared(sizeof *w->across);
    w->base.config.lives = 2;
    w->base.config.on_event = record_prompt;
    w->base.config.event_ctx = w->pr;
    assert_rc(sk_start(&w->base), SK_OK);
    assert_rc(sk_wait(&w->base, -1), SK_OK);
    assert_no_error(&w->base);
    assert_int_equal(sk_restarts(&w->base), 1);
    sk_release(&w->base);
}

static void test_event_names(void **state)
{
    (void)state;
    assert_string_equal(sk_event_name(SK_EVENT_START), "start");
    assert_string_equal(sk_event_name(SK_EVENT_RESTART), "restart");
    assert_string_equal(sk_event_name(SK_EVENT_TIMEOUT), "timeout");
    assert_string_equal(sk_event_name(SK_EVENT_CRASH), "crash");
    assert_string_equal(sk_event_name(SK_EVENT_FAILURE), "failure");
    assert_string_equal(sk_event_name(SK_EVENT_KILL), "kill");
    assert_string_equal(sk_event_name(SK_EVENT_FINISH), "finish");
    assert_string_equal(sk_event_name((sk_event_kind)99), "unknown");
}

/* More events than the log holds between two calls into the handle: the
 * oldest may be lost (how many, and where, depends on when the parent
 * looked: sk_wait delivers as the log fills), but what is delivered is in
 * order, each event once and whole, and the newest SK_EVENT_LOG all come,
 * consecutive, before FINISH. */
static void test_overflow(void **state)
{
    (void)state;
    struct recorder *r = recorder_new();
    int failures = SK_EVENT_LOG + 8;
    flaky *f = flaky_new(failures + 2, failures + 1, failures, FAULT_SOFT, r);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    assert_int_equal(sk_attempts(&f->base), failures + 1);
    assert_cmp(r->n, <=, 1 + failures + 1);
    assert_int_equal(r->ev[r->n - 1].kind, SK_EVENT_FINISH);
    int first = r->ev[0].kind == SK_EVENT_START ? 1 : 0;
    int n_failures = r->n - 1 - first;
    assert_cmp(n_failures, >=, SK_EVENT_LOG);
    for (int i = first; i < r->n - 1; i++) {
        assert_int_equal(r->ev[i].kind, SK_EVENT_FAILURE);
        assert_true(r->ev[i].has_error);
        /* whole: the error is the one of that very run */
        char want[64];
        snprintf(want, sizeof want, "flaked on run %ld", r->ev[i].run);
        assert_string_equal(r->ev[i].error.cause, want);
        if (i > first)
            assert_cmp(r->ev[i].run, >, r->ev[i - 1].run);
        if (i >= r->n - 1 - SK_EVENT_LOG) /* the newest: consecutive, ending with run `failures` */
            assert_int_equal(r->ev[i].run, failures - (r->n - 2 - i));
    }
    sk_release(&f->base);
}

/* ---------------------------------------------------------- hostile */

enum forge {
    FORGE_COUNTER_HUGE,
    FORGE_COUNTER_BACK,
    FORGE_ENTRIES,
    FORGE_STAMPED, /* garbage under the stamps the parent expects */
    FORGE_ALL,
    FORGE_COUNT
};

typedef struct {
    sk_process base;
    enum forge forge;
} forger;

static int forger_run(sk_process *self)
{
    forger *h = SK_CONTAINER_OF(self, forger, base);
    struct sk_shared *sh = self->rt->sh;
    uint32_t w = atomic_load(&sh->events_written);
    switch (h->forge) {
    case FORGE_COUNTER_HUGE:
        atomic_store(&sh->events_written, w + 1000000);
        break;
    case FORGE_COUNTER_BACK:
        atomic_store(&sh->events_written, w - 5);
        break;
    case FORGE_ENTRIES:
        memset(sh->events, 0x7f, sizeof sh->events);
        atomic_store(&sh->events_written, w + 3);
        break;
    case FORGE_STAMPED:
        for (uint32_t k = w; k < w + SK_EVENT_LOG; k++) {
            struct sk_logged_event *e = &sh->events[k % SK_EVENT_LOG];
            memset(e, 0xa5, sizeof *e);
            e->kind = (int)(k % 9) - 1;
            e->has_error = 1;
            atomic_store(&e->stamp, k);
        }
        atomic_store(&sh->events_written, w + SK_EVENT_LOG);
        break;
    case FORGE_ALL:
    case FORGE_COUNT:
        for (int i = 0; i < SK_EVENT_LOG; i++) {
            atomic_store(&sh->events[i].stamp, (uint32_t)i * 7919u);
            sh->events[i].kind = i % 9 - 1;
            sh->events[i].section = i * 1000 - 3;
            sh->events[i].run = -i;
            sh->events[i].pid = -i;
            sh->events[i].has_error = 1;
            memset(&sh->events[i].error, 'A', sizeof sh->events[i].error);
        }
        atomic_store(&sh->events_written, UINT32_MAX);
        break;
    }
    sk_stop(self);
    return 0;
}

static const sk_class forger_class = {.name = "forger", .run = forger_run};

static void test_hostile_log(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        for (int v = 0; v < FORGE_COUNT; v++) {
            struct recorder *r = recorder_new();
            forger *h = skt_new(forger);
            assert_rc(sk_init(&h->base, &forger_class), SK_OK);
            h->base.config.supervise = sup;
            h->base.config.on_event = record;
            h->base.config.event_ctx = r;
            h->forge = (enum forge)v;
            assert_rc(sk_start(&h->base), SK_OK);
            assert_rc(sk_wait(&h->base, 10.0), SK_OK);
            /* A START the worker logged may be lost to the forgery; FINISH
             * is the parent's own: once, last. */
            assert_cmp(r->n, >=, 1);
            assert_cmp(r->n, <=, 2 + SK_EVENT_LOG);
            assert_int_equal(r->ev[r->n - 1].kind, SK_EVENT_FINISH);
            if (!sup)
                assert_int_equal(r->ev[0].kind, SK_EVENT_START); /* made by the parent */
            for (int i = 0; i < r->n; i++) {
                struct seen_event *e = &r->ev[i];
                assert_cmp((unsigned)e->kind, <=, (unsigned)SK_EVENT_FINISH);
                if (i < r->n - 1) /* from the log (or START): only kinds it holds */
                    assert_true(e->kind <= SK_EVENT_FAILURE);
                assert_cmp((int)e->section, >=, SK_NO_SECTION);
                assert_cmp((int)e->section, <, SK_FULL_RUN + 1);
                assert_cmp(e->run, >=, 0);
                assert_true(e->pid > 0 || e->pid == -1);
                if (e->has_error) {
                    assert_cmp((unsigned)e->error.kind, <=, (unsigned)SK_CRASH_ERROR);
                    assert_cmp(strlen(e->error.message), <, sizeof e->error.message);
                    assert_cmp(strlen(e->error.cause), <, sizeof e->error.cause);
                }
            }
            sk_release(&h->base);
            assert_cmp(r->n, <=, 2 + SK_EVENT_LOG); /* release adds nothing */
        }
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_clean_run),
        SKT_TEST(test_clean_run_supervised),
        SKT_TEST(test_crash_twice_then_succeed),
        SKT_TEST(test_crash_unsupervised),
        SKT_TEST(test_timeout),
        SKT_TEST(test_soft_failure),
        SKT_TEST(test_kill),
        SKT_TEST(test_no_callback),
        SKT_TEST(test_wait_delivers_while_waiting),
        SKT_TEST(test_event_names),
        SKT_TEST(test_overflow),
        SKT_TEST(test_hostile_log),
    };
    return skt_run(argc, argv, tests);
}
