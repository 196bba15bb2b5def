/* SPDX-License-Identifier: MIT */
/*
 * Lives: retries after soft errors (state kept) and hard faults (restart from
 * the state at sk_start), lives spent, what never uses lives, and sk_wait
 * never returning between retries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

enum fault { FAULT_SOFT, FAULT_SIGNAL, FAULT_EXIT, FAULT_SPIN };

/* Counters kept across workers (a restarted worker loses its memory). */
struct across {
    int64_t run_calls;
    int64_t faults;
    int64_t onfinish_calls;
    int64_t result_calls;
};

typedef struct {
    sk_process base;
    long fail_run;     /* the run index that fails; -1 none, -2 any */
    int fail_times;    /* how many times in all (counted across workers); -1 always */
    double fail_after; /* > 0: only once this many seconds passed since t_start */
    double t_start;
    enum fault fault;
    useconds_t nap; /* per run */
    int onfinish_fails, result_fails;
    struct across *across;
    /* this worker's memory */
    int64_t prerun_calls, run_calls, successes;
} flaky;

#define FLAKY(p) SK_CONTAINER_OF(p, flaky, base)

static int flaky_prerun(sk_process *self)
{
    FLAKY(self)->prerun_calls++;
    return 0;
}

static int flaky_run(sk_process *self)
{
    flaky *f = FLAKY(self);
    f->run_calls++;
    f->across->run_calls++;
    if (f->nap)
        usleep(f->nap);
    bool due = (f->fail_run == -2 || sk_current_run(self) == f->fail_run) &&
               (f->fail_times < 0 || f->across->faults < f->fail_times) &&
               (f->fail_after <= 0 || skt_now() - f->t_start >= f->fail_after);
    if (due) {
        f->across->faults++;
        switch (f->fault) {
        case FAULT_SOFT:
            return sk_fail(self, 11, "flaked on run %ld", sk_current_run(self));
        case FAULT_SIGNAL:
            skt_die_by(SIGSEGV);
            break;
        case FAULT_EXIT:
            _exit(3);
        case FAULT_SPIN:
            skt_spin_forever();
            break;
        }
    }
    f->successes++;
    return 0;
}

static int flaky_onfinish(sk_process *self)
{
    flaky *f = FLAKY(self);
    f->across->onfinish_calls++;
    return f->onfinish_fails ? sk_fail(self, 4, "onfinish failed") : 0;
}

/* "III": run calls, successes and prerun calls in this worker's memory. */
static int flaky_publish(sk_process *self)
{
    flaky *f = FLAKY(self);
    return sk_return(self, "III", &f->run_calls, &f->successes, &f->prerun_calls);
}

static int flaky_result(sk_process *self)
{
    flaky *f = FLAKY(self);
    f->across->result_calls++;
    if (f->result_fails)
        return sk_fail(self, 5, "result failed");
    return flaky_publish(self);
}

static const sk_class flaky_class = {
    .name = "flaky",
    .prerun = flaky_prerun,
    .run = flaky_run,
    .onfinish = flaky_onfinish,
    .result = flaky_result,
    .error = flaky_publish,
};

static flaky *flaky_new(long runs, int lives, long fail_run, int fail_times, enum fault fault)
{
    flaky *f = skt_new(flaky);
    assert_rc(sk_init(&f->base, &flaky_class), SK_OK);
    f->base.config.runs = runs;
    f->base.config.lives = lives;
    f->fail_run = fail_run;
    f->fail_times = fail_times;
    f->fault = fault;
    f->across = skt_shared(sizeof *f->across);
    return f;
}

struct counts {
    int64_t run_calls, successes, prerun_calls;
};

static int flaky_counts(flaky *f, struct counts *c)
{
    memset(c, 0xff, sizeof *c);
    return sk_result(&f->base, "III", &c->run_calls, &c->successes, &c->prerun_calls);
}

/* ---------------------------------------------------------- soft errors */

static void test_soft_retry_keeps_state(void **state)
{
    (void)state;
    flaky *f = flaky_new(3, 2, 1, 1, FAULT_SOFT);
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, -1), SK_OK);
    assert_no_error(&f->base); /* wait did not return between the retries */
    assert_false(sk_alive(&f->base));
    struct counts c;
    assert_rc(flaky_counts(f, &c), SK_OK);
    assert_int_equal(c.run_calls, 4); /* run 1 twice: the state survived the retry */
    assert_int_equal(c.successes, 3);
    assert_int_equal(c.prerun_calls, 4); /* the retry starts again from prerun */
    assert_int_equal(f->across->faults, 1);
    assert_int_equal(sk_current_run(&f->base), 3);
    /* The failed run's timing is discarded; the prerun before it succeeded. */
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_RUN)), 3);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_PRERUN)), 4);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_FULL_RUN)), 3);
    sk_release(&f->base);
}

/* Polling sk_wait(p, 0) never reports the end between the retries. */
static void test_wait_never_returns_between_retries(void **state)
{
    (void)state;
    flaky *f = flaky_new(20, 3, 10, 2, FAULT_SOFT);
    f->nap = 2000;
    assert_rc(sk_start(&f->base), SK_OK);
    long polls = 0;
    int rc;
    double deadline = skt_now() + 10.0;
    while ((rc = sk_wait(&f->base, 0)) == SK_ETIMEDOUT && skt_now() < deadline) {
        polls++;
        skt_sleep(0.0005);
    }
    assert_rc(rc, SK_OK);
    assert_cmp(polls, >, 0);
    assert_no_error(&f->base);
    struct counts c;
    assert_rc(flaky_counts(f, &c), SK_OK);
    assert_int_equal(c.run_calls, 22);
    assert_int_equal(c.successes, 20);
    sk_release(&f->base);
}

static void test_lives_three_tolerate_two_failures(void **state)
{
    (void)state;
    flaky *f = flaky_new(3, 3, 0, 2, FAULT_SOFT);
    assert_rc(sk_start(&f->base), SK_OK);
    struct counts c;
    assert_rc(flaky_counts(f, &c), SK_OK);
    assert_no_error(&f->base);
    assert_int_equal(c.run_calls, 5);
    assert_int_equal(c.successes, 3);
    sk_release(&f->base);
}

static void check_lives_spent(int lives)
{
    flaky *f = flaky_new(3, lives, 1, -1, FAULT_SOFT);
    assert_rc(sk_start(&f->base), SK_OK);
    struct counts c;
    /* The error hook published, in the same worker: its counts are readable. */
    assert_rc(flaky_counts(f, &c), SK_EPROCESS);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->lives_spent, lives);
    assert_int_equal(e->code, 11);
    assert_string_equal(e->cause, "flaked on run 1");
    assert_int_equal(c.run_calls, 1 + lives);
    assert_int_equal(c.successes, 1);
    assert_int_equal(f->across->onfinish_calls, 0); /* onfinish and result did not run */
    assert_int_equal(f->across->result_calls, 0);
    assert_int_equal(sk_current_run(&f->base), 1);
    sk_release(&f->base);
}

static void test_lives_spent_two(void **state)
{
    (void)state;
    check_lives_spent(2);
}

static void test_lives_spent_one(void **state)
{
    (void)state;
    check_lives_spent(1);
}

static void test_onfinish_error_uses_no_lives(void **state)
{
    (void)state;
    flaky *f = flaky_new(2, 3, -1, 0, FAULT_SOFT);
    f->onfinish_fails = 1;
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, 10.0), SK_OK);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_ONFINISH_ERROR);
    assert_int_equal(e->lives_spent, 1); /* not retried: the one attempt is spent */
    assert_int_equal(f->across->onfinish_calls, 1);
    assert_int_equal(f->across->result_calls, 0);
    assert_int_equal(f->across->run_calls, 2);
    sk_release(&f->base);
}

static void test_result_error_uses_no_lives(void **state)
{
    (void)state;
    flaky *f = flaky_new(2, 3, -1, 0, FAULT_SOFT);
    f->result_fails = 1;
    assert_rc(sk_start(&f->base), SK_OK);
    struct counts c;
    assert_rc(flaky_counts(f, &c), SK_EPROCESS); /* the error hook's values */
    assert_int_equal(c.run_calls, 2);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RESULT_ERROR);
    assert_int_equal(e->lives_spent, 1);
    assert_int_equal(f->across->onfinish_calls, 1);
    assert_int_equal(f->across->result_calls, 1);
    sk_release(&f->base);
}

/* ---------------------------------------------------------- hard faults */

/* A hard fault on run 1, once: a new worker from the state at sk_start
 * carries on at run 1; the shared timers are kept. */
static void check_hard_fault_retry(enum fault fault)
{
    flaky *f = flaky_new(3, 2, 1, 1, fault);
    if (fault == FAULT_SPIN)
        f->base.config.timeouts.run = 0.05;
    assert_rc(sk_start(&f->base), SK_OK);
    struct counts c;
    assert_rc(flaky_counts(f, &c), SK_OK);
    assert_no_error(&f->base);
    /* In the new worker's memory only runs 1 and 2 happened. */
    assert_int_equal(c.run_calls, 2);
    assert_int_equal(c.successes, 2);
    assert_int_equal(c.prerun_calls, 2);
    assert_int_equal(f->across->run_calls, 4);
    assert_int_equal(f->across->faults, 1);
    assert_int_equal(sk_current_run(&f->base), 3);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_RUN)), 3);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_PRERUN)), 4);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_FULL_RUN)), 3);
    sk_release(&f->base);
}

static void test_crash_retry_restarts_from_start_state(void **state)
{
    (void)state;
    check_hard_fault_retry(FAULT_SIGNAL);
}

static void test_exit_retry_restarts_from_start_state(void **state)
{
    (void)state;
    check_hard_fault_retry(FAULT_EXIT);
}

static void test_timeout_retry_restarts_from_start_state(void **state)
{
    (void)state;
    check_hard_fault_retry(FAULT_SPIN);
}

static void test_crash_lives_spent(void **state)
{
    (void)state;
    flaky *f = flaky_new(3, 3, 1, -1, FAULT_SIGNAL);
    assert_rc(sk_start(&f->base), SK_OK);
    struct counts c;
    /* The error hook runs in a fresh worker from the start state. */
    assert_rc(flaky_counts(f, &c), SK_EPROCESS);
    assert_int_equal(c.run_calls, 0);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGSEGV);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->lives_spent, 3);
    assert_int_equal(f->across->run_calls, 1 + 3);
    assert_int_equal(f->across->faults, 3);
    assert_int_equal(f->across->onfinish_calls, 0);
    sk_release(&f->base);
}

static void test_timeout_lives_spent(void **state)
{
    (void)state;
    flaky *f = flaky_new(3, 2, 0, -1, FAULT_SPIN);
    f->base.config.timeouts.run = 0.05;
    double t0 = skt_now();
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, 10.0), SK_OK);
    assert_cmp(skt_now() - t0, <, 2.0);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 0);
    assert_int_equal(e->lives_spent, 2);
    assert_int_equal(f->across->faults, 2);
    sk_release(&f->base);
}

/* join_in counts from sk_start, not from the restart. */
static void test_join_in_counts_across_restarts(void **state)
{
    (void)state;
    /* Crash once, on whatever run is going 0.4 s after the start. */
    flaky *f = flaky_new(0, 2, -2, 1, FAULT_SIGNAL);
    f->base.config.join_in = 0.5;
    f->nap = 1000;
    f->fail_after = 0.4;
    f->t_start = skt_now();
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_wait(&f->base, 10.0), SK_OK);
    double took = skt_now() - f->t_start;
    assert_no_error(&f->base);
    assert_int_equal(f->across->faults, 1);
    /* From the restart it would end near 0.9 s. */
    assert_cmp(took, >=, 0.5);
    assert_cmp(took, <, 0.85);
    sk_release(&f->base);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_soft_retry_keeps_state),
        SKT_TEST(test_wait_never_returns_between_retries),
        SKT_TEST(test_lives_three_tolerate_two_failures),
        SKT_TEST(test_lives_spent_two),
        SKT_TEST(test_lives_spent_one),
        SKT_TEST(test_onfinish_error_uses_no_lives),
        SKT_TEST(test_result_error_uses_no_lives),
        SKT_TEST(test_crash_retry_restarts_from_start_state),
        SKT_TEST(test_exit_retry_restarts_from_start_state),
        SKT_TEST(test_timeout_retry_restarts_from_start_state),
        SKT_TEST(test_crash_lives_spent),
        SKT_TEST(test_timeout_lives_spent),
        SKT_TEST(test_join_in_counts_across_restarts),
    };
    return skt_run(argc, argv, tests);
}
