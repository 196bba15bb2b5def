/* SPDX-License-Identifier: MIT */
/*
 * Recoveries are visible (issue 11 item 3): after sk_wait, how many attempts
 * a process used (sk_attempts), how many workers were started again after
 * hard faults (sk_restarts), and the errors that used up lives, oldest first
 * (sk_spent_error*, the first SK_MAX_SPENT_ERRORS kept, the rest counted).
 * And a worker that scribbles over that record in the status page leaves
 * the parent sane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "core/runtime.h"

#include <stdatomic.h>

enum fault { FAULT_SOFT, FAULT_CRASH, FAULT_SPIN };

/* Shared with every worker: a restarted worker loses its own memory. */
struct across {
    _Atomic int faults;
};

typedef struct {
    sk_process base;
    enum fault fault;
    int fail_times; /* failures in all, counted across workers */
    bool stagger;   /* the k-th failure happens on run k + 1, else on run 0 */
    struct across *across;
} flaky;

#define FLAKY(p) SK_CONTAINER_OF(p, flaky, base)

static int flaky_run(sk_process *self)
{
    flaky *f = FLAKY(self);
    int done = atomic_load(&f->across->faults);
    long due_run = f->stagger ? done + 1 : 0;
    if (done < f->fail_times && sk_current_run(self) == due_run) {
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
        }
    }
    return 0;
}

static const sk_class flaky_class = {.name = "flaky", .run = flaky_run};

static flaky *flaky_new(long runs, int lives, int fail_times, enum fault fault)
{
    flaky *f = skt_new(flaky);
    assert_rc(sk_init(&f->base, &flaky_class), SK_OK);
    f->base.config.runs = runs;
    f->base.config.lives = lives;
    f->fail_times = fail_times;
    f->fault = fault;
    f->across = skt_shared(sizeof *f->across);
    return f;
}

/* Lives 3, a crash on run 1 and another on run 2, then success: three
 * attempts, two restarts, two spent crash errors with their runs. */
static void test_crash_twice_then_succeed(void **state)
{
    (void)state;
    flaky *f = flaky_new(4, 3, 2, FAULT_CRASH);
    f->stagger = true;
    assert_int_equal(sk_attempts(&f->base), 0); /* before start */
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    assert_int_equal(sk_current_run(&f->base), 4);
    assert_int_equal(sk_attempts(&f->base), 3);
    assert_int_equal(sk_restarts(&f->base), 2);
    assert_int_equal(sk_spent_error_count(&f->base), 2);
    assert_int_equal(sk_spent_errors_dropped(&f->base), 0);
    for (int i = 0; i < 2; i++) {
        const sk_error *e = sk_spent_error(&f->base, i);
        assert_non_null(e);
        assert_int_equal(e->kind, SK_CRASH_ERROR);
        assert_int_equal(e->section, SK_RUN);
        assert_int_equal(e->run, i + 1);
        assert_int_equal(e->signal, SIGSEGV);
        assert_int_equal(e->lives_spent, i + 1);
    }
    assert_null(sk_spent_error(&f->base, 2));
    assert_null(sk_spent_error(&f->base, -1));
    sk_release(&f->base);
    assert_int_equal(sk_attempts(&f->base), 0); /* released: nothing to read */
}

/* A soft failure retried: the worker is not restarted. */
static void test_soft_failure_retried(void **state)
{
    (void)state;
    flaky *f = flaky_new(3, 2, 1, FAULT_SOFT);
    f->stagger = true;
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    assert_int_equal(sk_attempts(&f->base), 2);
    assert_int_equal(sk_restarts(&f->base), 0);
    assert_int_equal(sk_spent_error_count(&f->base), 1);
    const sk_error *e = sk_spent_error(&f->base, 0);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->code, 11);
    assert_int_equal(e->lives_spent, 1);
    sk_release(&f->base);
}

/* A timeout retried: a restart, and the spent error is the timeout. */
static void test_timeout_retried(void **state)
{
    (void)state;
    flaky *f = flaky_new(2, 2, 1, FAULT_SPIN);
    f->base.config.timeouts.run = 0.05;
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    assert_int_equal(sk_attempts(&f->base), 2);
    assert_int_equal(sk_restarts(&f->base), 1);
    assert_int_equal(sk_spent_error_count(&f->base), 1);
    assert_int_equal(sk_spent_error(&f->base, 0)->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(sk_spent_error(&f->base, 0)->run, 0);
    sk_release(&f->base);
}

/* The error that ends the process is sk_error_of, not a spent one. */
static void test_final_error_not_spent(void **state)
{
    (void)state;
    flaky *f = flaky_new(3, 3, 100, FAULT_SOFT);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    const sk_error *last = sk_error_of(&f->base);
    assert_non_null(last);
    assert_int_equal(last->kind, SK_RUN_ERROR);
    assert_int_equal(sk_attempts(&f->base), 3);
    assert_int_equal(sk_spent_error_count(&f->base), 2);
    assert_int_equal(sk_restarts(&f->base), 0);
    sk_release(&f->base);
}

/* More retried failures than are kept: the first ones are kept, the rest
 * counted. */
static void test_more_than_kept(void **state)
{
    (void)state;
    int failures = SK_MAX_SPENT_ERRORS + 3;
    flaky *f = flaky_new(2, failures + 1, failures, FAULT_SOFT);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    assert_int_equal(sk_attempts(&f->base), failures + 1);
    assert_int_equal(sk_spent_error_count(&f->base), SK_MAX_SPENT_ERRORS);
    assert_int_equal(sk_spent_errors_dropped(&f->base), 3);
    for (int i = 0; i < SK_MAX_SPENT_ERRORS; i++)
        assert_int_equal(sk_spent_error(&f->base, i)->lives_spent, i + 1); /* oldest first */
    assert_null(sk_spent_error(&f->base, SK_MAX_SPENT_ERRORS));
    sk_release(&f->base);
}

/* Without lives: one attempt, nothing spent, also after a failure. */
static void test_no_lives(void **state)
{
    (void)state;
    flaky *f = flaky_new(3, 1, 0, FAULT_SOFT);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_int_equal(sk_attempts(&f->base), 1); /* live */
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base);
    assert_int_equal(sk_attempts(&f->base), 1);
    assert_int_equal(sk_restarts(&f->base), 0);
    assert_int_equal(sk_spent_error_count(&f->base), 0);
    assert_int_equal(sk_spent_errors_dropped(&f->base), 0);
    assert_null(sk_spent_error(&f->base, 0));
    sk_release(&f->base);

    flaky *g = flaky_new(3, 1, 1, FAULT_CRASH);
    assert_rc(sk_start(&g->base), SK_OK);
    assert_rc(sk_wait(&g->base, -1), SK_OK);
    assert_non_null(sk_error_of(&g->base));
    assert_int_equal(sk_attempts(&g->base), 1);
    assert_int_equal(sk_restarts(&g->base), 0);
    assert_int_equal(sk_spent_error_count(&g->base), 0);
    sk_release(&g->base);

    assert_int_equal(sk_attempts(NULL), 0);
    assert_int_equal(sk_restarts(NULL), 0);
    assert_int_equal(sk_spent_error_count(NULL), 0);
    assert_null(sk_spent_error(NULL, 0));
}

/* Counts read while the process runs: never past its lives. */
static void test_live_counts(void **state)
{
    (void)state;
    flaky *f = flaky_new(0, 3, 2, FAULT_CRASH); /* runs forever once recovered */
    f->stagger = true;
    assert_rc(sk_start(&f->base), SK_OK);
    skt_wait_until(sk_restarts(&f->base) == 2, 10.0);
    assert_int_equal(sk_attempts(&f->base), 3);
    assert_int_equal(sk_spent_error_count(&f->base), 0); /* errors: after the end */
    assert_rc(sk_kill(&f->base), SK_OK);
    assert_int_equal(sk_attempts(&f->base), 3); /* kept after a kill */
    assert_int_equal(sk_spent_error_count(&f->base), 2);
    sk_release(&f->base);
}

/* ---------------------------------------------------------- hostile */

enum forge { FORGE_HUGE, FORGE_NEGATIVE, FORGE_GARBAGE, FORGE_COUNT };

typedef struct {
    sk_process base;
    enum forge forge;
} forger;

static int forger_run(sk_process *self)
{
    forger *h = SK_CONTAINER_OF(self, forger, base);
    struct sk_shared *sh = self->rt->sh;
    switch (h->forge) {
    case FORGE_HUGE:
        atomic_store(&sh->spent_count, INT32_MAX);
        atomic_store(&sh->restarts, INT32_MAX);
        break;
    case FORGE_NEGATIVE:
        atomic_store(&sh->spent_count, INT32_MIN);
        atomic_store(&sh->restarts, -7);
        break;
    case FORGE_GARBAGE:
    case FORGE_COUNT:
        atomic_store(&sh->spent_count, SK_MAX_SPENT_ERRORS + 5);
        atomic_store(&sh->restarts, 2);
        break;
    }
    memset(sh->spent, 0x7f, sizeof sh->spent); /* garbage kinds, unterminated texts */
    sk_stop(self);
    return 0;
}

static const sk_class forger_class = {.name = "forger", .run = forger_run};

static void test_hostile_record(void **state)
{
    (void)state;
    for (int lives = 1; lives <= 20; lives += 19) {
        for (int v = 0; v < FORGE_COUNT; v++) {
            forger *h = skt_new(forger);
            assert_rc(sk_init(&h->base, &forger_class), SK_OK);
            h->base.config.lives = lives;
            h->forge = (enum forge)v;
            assert_rc(sk_start(&h->base), SK_OK);
            assert_rc(sk_wait(&h->base, 10.0), SK_OK);
            int attempts = sk_attempts(&h->base);
            assert_cmp(attempts, >=, 1);
            assert_cmp(attempts, <=, lives);
            assert_cmp(sk_restarts(&h->base), >=, 0);
            assert_cmp(sk_restarts(&h->base), <=, lives);
            int kept = sk_spent_error_count(&h->base);
            assert_cmp(kept, >=, 0);
            assert_cmp(kept, <=, SK_MAX_SPENT_ERRORS);
            assert_cmp(kept + sk_spent_errors_dropped(&h->base), ==, attempts - 1);
            for (int i = 0; i < kept; i++) {
                const sk_error *e = sk_spent_error(&h->base, i);
                assert_non_null(e);
                assert_cmp((unsigned)e->kind, <=, (unsigned)SK_CRASH_ERROR);
                assert_cmp(strlen(e->message), <, sizeof e->message);
                assert_cmp(strlen(e->cause), <, sizeof e->cause);
                char report[4096];
                assert_cmp(sk_error_format(e, report, sizeof report), >=, 0);
            }
            sk_release(&h->base);
        }
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_crash_twice_then_succeed),
        SKT_TEST(test_soft_failure_retried),
        SKT_TEST(test_timeout_retried),
        SKT_TEST(test_final_error_not_spent),
        SKT_TEST(test_more_than_kept),
        SKT_TEST(test_no_lives),
        SKT_TEST(test_live_counts),
        SKT_TEST(test_hostile_record),
    };
    return skt_run(argc, argv, tests);
}
