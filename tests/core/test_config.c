/* SPDX-License-Identifier: MIT */
/*
 * The config: defaults after sk_init, zero-or-lower values meaning the
 * default for every field, very large values, and the config being frozen
 * by sk_start.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <limits.h>
#include <math.h>

/* Counts runs, stops itself at target, can fail once on fail_run and can
 * nap in run. */
typedef struct {
    sk_process base;
    int64_t count;
    int64_t target;
    long fail_run; /* -1: never */
    int failed;
    useconds_t nap;
} job;

#define JOB(p) SK_CONTAINER_OF(p, job, base)

static int job_run(sk_process *self)
{
    job *j = JOB(self);
    if (j->nap)
        usleep(j->nap);
    if (sk_current_run(self) == j->fail_run && !j->failed) {
        j->failed = 1;
        return sk_fail(self, 3, "failed once");
    }
    if (++j->count == j->target)
        sk_stop(self);
    return 0;
}

static int job_result(sk_process *self)
{
    return sk_return(self, "I", &JOB(self)->count);
}

static const sk_class job_class = {.name = "job", .run = job_run, .result = job_result};

static job *job_new(void)
{
    job *j = skt_new(job);
    assert_rc(sk_init(&j->base, &job_class), SK_OK);
    j->fail_run = -1;
    return j;
}

static int64_t job_count(job *j)
{
    int64_t n = -1;
    assert_rc(sk_result(&j->base, "I", &n), SK_OK);
    assert_no_error(&j->base);
    return n;
}

/* ------------------------------------------------------------ defaults */

static void test_defaults_after_init(void **state)
{
    (void)state;
    job *j = skt_new(job);
    memset(&j->base.config, 0xab, sizeof j->base.config); /* garbage before init */
    assert_rc(sk_init(&j->base, &job_class), SK_OK);
    const sk_config *c = &j->base.config;
    assert_int_equal(c->runs, 0);
    assert_cmp(c->join_in, ==, 0.0);
    assert_int_equal(c->lives, 1);
    assert_cmp(c->timeouts.prerun, ==, 0.0);
    assert_cmp(c->timeouts.run, ==, 0.0);
    assert_cmp(c->timeouts.postrun, ==, 0.0);
    assert_cmp(c->timeouts.onfinish, ==, 0.0);
    assert_cmp(c->timeouts.result, ==, 0.0);
    assert_cmp(c->timeouts.error, ==, 0.0);
    sk_release(&j->base);
}

static void test_reinit_resets_config(void **state)
{
    (void)state;
    job *j = job_new();
    j->base.config.runs = 9;
    j->base.config.lives = 4;
    j->base.config.join_in = 3.0;
    j->base.config.timeouts.run = 1.0;
    sk_release(&j->base);
    assert_rc(sk_init(&j->base, &job_class), SK_OK);
    assert_int_equal(j->base.config.runs, 0);
    assert_int_equal(j->base.config.lives, 1);
    assert_cmp(j->base.config.join_in, ==, 0.0);
    assert_cmp(j->base.config.timeouts.run, ==, 0.0);
    sk_release(&j->base);
}

/* ---------------------------------------------------------------- runs */

/* runs <= 0 is unlimited: only the process's own stop ends it. */
static void check_unlimited_runs(long runs)
{
    job *j = job_new();
    j->base.config.runs = runs;
    j->target = 25;
    assert_rc(sk_start(&j->base), SK_OK);
    assert_int_equal(job_count(j), 25);
    assert_int_equal(sk_current_run(&j->base), 24);
    sk_release(&j->base);
}

static void test_runs_zero_is_unlimited(void **state)
{
    (void)state;
    check_unlimited_runs(0);
}

static void test_runs_negative_is_unlimited(void **state)
{
    (void)state;
    check_unlimited_runs(-5);
    check_unlimited_runs(LONG_MIN);
}

static void test_runs_huge(void **state)
{
    (void)state;
    check_unlimited_runs(LONG_MAX);
}

/* --------------------------------------------------------------- lives */

/* lives <= 0 is one attempt: the first failure ends the process. */
static void check_single_life(int lives)
{
    job *j = job_new();
    j->base.config.lives = lives;
    j->base.config.runs = 3;
    j->fail_run = 1;
    assert_rc(sk_start(&j->base), SK_OK);
    assert_rc(sk_result(&j->base, NULL), SK_EPROCESS);
    const sk_error *e = sk_error_of(&j->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->lives_spent, 1);
    sk_release(&j->base);
}

static void test_lives_zero_is_one(void **state)
{
    (void)state;
    check_single_life(0);
}

static void test_lives_negative_is_one(void **state)
{
    (void)state;
    check_single_life(-1);
    check_single_life(INT_MIN);
}

static void test_lives_huge(void **state)
{
    (void)state;
    job *j = job_new();
    j->base.config.lives = INT_MAX;
    j->base.config.runs = 3;
    j->fail_run = 1;
    assert_rc(sk_start(&j->base), SK_OK);
    assert_int_equal(job_count(j), 3);
    sk_release(&j->base);
}

/* ------------------------------------------------------------- join_in */

/* join_in <= 0 is none: not "already elapsed". */
static void check_no_join_in(double join_in)
{
    job *j = job_new();
    j->base.config.join_in = join_in;
    j->target = 30;
    j->nap = 1000;
    assert_rc(sk_start(&j->base), SK_OK);
    assert_int_equal(job_count(j), 30);
    sk_release(&j->base);
}

static void test_join_in_zero_is_none(void **state)
{
    (void)state;
    check_no_join_in(0.0);
}

static void test_join_in_negative_is_none(void **state)
{
    (void)state;
    check_no_join_in(-1.0);
    check_no_join_in(-1e300);
}

static void test_join_in_huge_is_never(void **state)
{
    (void)state;
    check_no_join_in(1e12);
    check_no_join_in(INFINITY);
}

static void test_runs_reached_before_join_in(void **state)
{
    (void)state;
    job *j = job_new();
    j->base.config.runs = 3;
    j->base.config.join_in = 30.0;
    double t0 = skt_now();
    assert_rc(sk_start(&j->base), SK_OK);
    assert_int_equal(job_count(j), 3);
    assert_cmp(skt_now() - t0, <, 5.0);
    sk_release(&j->base);
}

/* ------------------------------------------------------------ timeouts */

static void set_all_timeouts(sk_timeouts *t, double v)
{
    t->prerun = t->run = t->postrun = t->onfinish = t->result = t->error = v;
}

/* A run of 20 ms with every timeout <= 0: no timeout applies. */
static void check_no_timeouts(double v)
{
    job *j = job_new();
    j->base.config.runs = 3;
    j->nap = 20000;
    set_all_timeouts(&j->base.config.timeouts, v);
    assert_rc(sk_start(&j->base), SK_OK);
    assert_int_equal(job_count(j), 3);
    sk_release(&j->base);
}

static void test_timeouts_zero_are_none(void **state)
{
    (void)state;
    check_no_timeouts(0.0);
}

static void test_timeouts_negative_are_none(void **state)
{
    (void)state;
    check_no_timeouts(-0.001);
    check_no_timeouts(-5.0);
}

static void test_timeouts_not_reached(void **state)
{
    (void)state;
    job *j = job_new();
    j->base.config.runs = 3;
    j->nap = 1000;
    set_all_timeouts(&j->base.config.timeouts, 5.0);
    assert_rc(sk_start(&j->base), SK_OK);
    assert_int_equal(job_count(j), 3);
    sk_release(&j->base);
}

/* -------------------------------------------------------------- frozen */

static void test_config_frozen_at_start(void **state)
{
    (void)state;
    job *j = job_new();
    j->base.config.runs = 5;
    j->nap = 2000;
    assert_rc(sk_start(&j->base), SK_OK);
    /* None of these may reach the running process. */
    j->base.config.runs = 1;
    j->base.config.join_in = 0.001;
    j->base.config.lives = 7;
    set_all_timeouts(&j->base.config.timeouts, 0.0001);
    assert_int_equal(job_count(j), 5);
    assert_int_equal(sk_current_run(&j->base), 5);
    sk_release(&j->base);
}

static void test_config_frozen_lives(void **state)
{
    (void)state;
    job *j = job_new();
    j->base.config.runs = 3;
    j->fail_run = 1;
    j->nap = 1000;
    assert_rc(sk_start(&j->base), SK_OK);
    j->base.config.lives = 5; /* too late */
    assert_rc(sk_result(&j->base, NULL), SK_EPROCESS);
    assert_non_null(sk_error_of(&j->base));
    assert_int_equal(sk_error_of(&j->base)->lives_spent, 1);
    sk_release(&j->base);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_defaults_after_init),
        SKT_TEST(test_reinit_resets_config),
        SKT_TEST(test_runs_zero_is_unlimited),
        SKT_TEST(test_runs_negative_is_unlimited),
        SKT_TEST(test_runs_huge),
        SKT_TEST(test_lives_zero_is_one),
        SKT_TEST(test_lives_negative_is_one),
        SKT_TEST(test_lives_huge),
        SKT_TEST(test_join_in_zero_is_none),
        SKT_TEST(test_join_in_negative_is_none),
        SKT_TEST(test_join_in_huge_is_never),
        SKT_TEST(test_runs_reached_before_join_in),
        SKT_TEST(test_timeouts_zero_are_none),
        SKT_TEST(test_timeouts_negative_are_none),
        SKT_TEST(test_timeouts_not_reached),
        SKT_TEST(test_config_frozen_at_start),
        SKT_TEST(test_config_frozen_lives),
    };
    return skt_run(argc, argv, tests);
}
