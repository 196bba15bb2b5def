/* SPDX-License-Identifier: MIT */
/*
 * Conditions on events: "after task" on synthetic run-log histories (the
 * seed's pipeline of get_data, transform_data, store_data and
 * report_errors among them), and user predicates from the registry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "cond_support.h"

#define T(s) (INT64_C(1700000000) * SKT_NS + (int64_t)(s)*SKT_NS)

static int eval_with(const char *text, struct skt_log *log, int64_t last_start)
{
    sk_cond *c = skt_cond(text);
    sk_cond_ctx ctx = {.now = T(1000),
                       .last_start = last_start,
                       .last_end = last_start,
                       .last_outcome = skt_log_last,
                       .log = log};
    int v = sk_cond_eval(c, &ctx);
    /* Only events change it. */
    int64_t when;
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == SK_COND_NO_CHANGE);
    sk_cond_free(c);
    return v;
}

static void test_after_one_task(void **state)
{
    (void)state;
    struct skt_log log = {0};
    /* This task never ran, x never ran. */
    assert_int_equal(eval_with("after task 'x'", &log, SK_COND_NEVER), 0);
    assert_int_equal(eval_with("after task 'x' finished", &log, SK_COND_NEVER), 0);
    /* x succeeded once: since "ever", for a task that never ran. */
    skt_log_add(&log, "x", SK_COND_SUCCEEDED, T(10));
    assert_int_equal(eval_with("after task 'x'", &log, SK_COND_NEVER), 1);
    assert_int_equal(eval_with("after task 'x' succeeded", &log, SK_COND_NEVER), 1);
    assert_int_equal(eval_with("after task 'x' failed", &log, SK_COND_NEVER), 0);
    assert_int_equal(eval_with("after task 'x' finished", &log, SK_COND_NEVER), 1);
    /* This task ran after it: done. */
    assert_int_equal(eval_with("after task 'x'", &log, T(20)), 0);
    /* ... at the same instant: done too (strictly after). */
    assert_int_equal(eval_with("after task 'x'", &log, T(10)), 0);
    /* ... before it: not yet. */
    assert_int_equal(eval_with("after task 'x'", &log, T(5)), 1);
    /* x failed later. */
    skt_log_add(&log, "x", SK_COND_FAILED, T(30));
    assert_int_equal(eval_with("after task 'x' succeeded", &log, T(20)), 0);
    assert_int_equal(eval_with("after task 'x' failed", &log, T(20)), 1);
    assert_int_equal(eval_with("after task 'x' finished", &log, T(20)), 1);
    /* Other tasks do not count; names are exact. */
    assert_int_equal(eval_with("after task 'X'", &log, SK_COND_NEVER), 0);
    assert_int_equal(eval_with("after task 'y'", &log, SK_COND_NEVER), 0);
    /* No log at all: nothing ever happened. */
    sk_cond *c = skt_cond("after task 'x'");
    sk_cond_ctx ctx = {.now = T(1000), .last_start = SK_COND_NEVER, .last_end = SK_COND_NEVER};
    assert_int_equal(sk_cond_eval(c, &ctx), 0);
    sk_cond_free(c);
}

static void test_after_many_tasks(void **state)
{
    (void)state;
    struct skt_log log = {0};
    skt_log_add(&log, "a", SK_COND_SUCCEEDED, T(30));
    skt_log_add(&log, "b", SK_COND_SUCCEEDED, T(10));
    skt_log_add(&log, "c", SK_COND_FAILED, T(40));
    /* This task last started at 20: a is new, b is old. */
    assert_int_equal(eval_with("after tasks 'a', 'b' succeeded", &log, T(20)), 0);
    assert_int_equal(eval_with("after any tasks 'a', 'b' succeeded", &log, T(20)), 1);
    assert_int_equal(eval_with("after any tasks 'b', 'c' succeeded", &log, T(20)), 0);
    assert_int_equal(eval_with("after tasks 'a', 'c' finished", &log, T(20)), 1);
    assert_int_equal(eval_with("after tasks 'a', 'b', 'c' finished", &log, T(20)), 0);
    skt_log_add(&log, "b", SK_COND_SUCCEEDED, T(50));
    assert_int_equal(eval_with("after tasks 'a', 'b' succeeded", &log, T(20)), 1);
    assert_int_equal(eval_with("after tasks 'a', 'b', 'c' finished", &log, T(20)), 1);
    assert_int_equal(eval_with("after tasks 'a', 'b' succeeded", &log, T(60)), 0);

    /* eval stops at the first name that decides, and so does next_change,
     * which evaluates each event condition once. */
    sk_cond *c = skt_cond("after tasks 'nobody', 'a', 'b' succeeded");
    sk_cond_ctx ctx = {.now = T(1000),
                       .last_start = T(20),
                       .last_end = T(20),
                       .last_outcome = skt_log_last,
                       .log = &log};
    log.queries = 0;
    assert_int_equal(sk_cond_eval(c, &ctx), 0);
    assert_int_equal(log.queries, 1);
    log.queries = 0;
    int64_t when;
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_int_equal(log.queries, 1);
    sk_cond_free(c);
}

/* The seed's pipeline: transform after get_data succeeded, store after
 * transform, report_errors after get_data failed. */
static void test_pipeline(void **state)
{
    (void)state;
    struct skt_log log = {0};
    sk_cond *transform = skt_cond("after task 'get_data' succeeded");
    sk_cond *store = skt_cond("after task 'transform_data'");
    sk_cond *report = skt_cond("after task 'get_data' failed");
    int64_t transform_last = SK_COND_NEVER, store_last = SK_COND_NEVER, report_last = SK_COND_NEVER;
#define EVAL(c, last)                                                                              \
    sk_cond_eval(c, &(sk_cond_ctx){.now = T(1000),                                                 \
                                   .last_start = (last),                                           \
                                   .last_end = (last),                                             \
                                   .last_outcome = skt_log_last,                                   \
                                   .log = &log})
    assert_int_equal(EVAL(transform, transform_last), 0);
    assert_int_equal(EVAL(report, report_last), 0);

    skt_log_add(&log, "get_data", SK_COND_SUCCEEDED, T(1));
    assert_int_equal(EVAL(transform, transform_last), 1);
    assert_int_equal(EVAL(store, store_last), 0);
    assert_int_equal(EVAL(report, report_last), 0);

    transform_last = T(2); /* transform runs, and succeeds */
    skt_log_add(&log, "transform_data", SK_COND_SUCCEEDED, T(3));
    assert_int_equal(EVAL(transform, transform_last), 0);
    assert_int_equal(EVAL(store, store_last), 1);
    store_last = T(4);
    assert_int_equal(EVAL(store, store_last), 0);

    skt_log_add(&log, "get_data", SK_COND_FAILED, T(5));
    assert_int_equal(EVAL(transform, transform_last), 0);
    assert_int_equal(EVAL(report, report_last), 1);
    report_last = T(6);
    assert_int_equal(EVAL(report, report_last), 0);

    skt_log_add(&log, "get_data", SK_COND_SUCCEEDED, T(7));
    assert_int_equal(EVAL(transform, transform_last), 1);
    assert_int_equal(EVAL(report, report_last), 0);
#undef EVAL
    sk_cond_free(transform);
    sk_cond_free(store);
    sk_cond_free(report);
}

/* Time and events together. */
static void test_after_and_time(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_log log = {0};
    skt_log_add(&log, "x", SK_COND_SUCCEEDED, skt_at("2024-03-01 07:00 +0000"));
    sk_cond *c = skt_cond("daily after 08:00 & after task 'x'");
    sk_cond_ctx ctx = {.now = skt_at("2024-03-01 06:00 +0000"),
                       .last_start = skt_at("2024-02-29 09:00 +0000"),
                       .last_end = SK_COND_NEVER,
                       .last_outcome = skt_log_last,
                       .log = &log};
    assert_int_equal(sk_cond_eval(c, &ctx), 0);
    int64_t when;
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == skt_at("2024-03-01 08:00 +0000"));
    ctx.now = when;
    assert_int_equal(sk_cond_eval(c, &ctx), 1);
    /* With x not done, only an event can make it true. */
    ctx.now = skt_at("2024-03-01 06:00 +0000");
    ctx.last_start = skt_at("2024-03-01 07:30 +0000");
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == SK_COND_NO_CHANGE);
    sk_cond_free(c);
}

/* ------------------------------------------------------------------ user */

struct probe {
    bool value;
    int calls;
};

static bool probe_fn(void *arg)
{
    struct probe *p = arg;
    p->calls++;
    return p->value;
}

static void test_user_conditions(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct probe up = {.value = true}, down = {.value = false};
    sk_cond_user_def users[] = {
        {"file_exists", probe_fn, &up},
        {"disk.full", probe_fn, &down},
        {"broken", NULL, NULL},
    };
    sk_cond_ctx ctx = {.now = skt_at("2024-03-01 10:00 +0000"),
                       .last_start = SK_COND_NEVER,
                       .last_end = SK_COND_NEVER,
                       .users = users,
                       .user_count = 3};
    sk_cond *c = skt_cond("file_exists & ~disk.full");
    assert_int_equal(sk_cond_eval(c, &ctx), 1);
    assert_int_equal(up.calls, 1);
    assert_int_equal(down.calls, 1);
    sk_cond_free(c);

    /* Short circuit, left to right. */
    up.calls = down.calls = 0;
    c = skt_cond("disk.full & file_exists");
    assert_int_equal(sk_cond_eval(c, &ctx), 0);
    assert_int_equal(up.calls, 0);
    sk_cond_free(c);
    down.calls = 0;
    c = skt_cond("file_exists | disk.full");
    assert_int_equal(sk_cond_eval(c, &ctx), 1);
    assert_int_equal(down.calls, 0);
    sk_cond_free(c);

    /* Unknown, or registered without a function: SK_EINVAL, named. */
    c = skt_cond("file_exists & nosuch");
    assert_int_equal(sk_cond_eval(c, &ctx), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "'nosuch' is not registered"));
    int64_t when;
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_EINVAL);
    sk_cond_free(c);
    c = skt_cond("broken");
    assert_int_equal(sk_cond_eval(c, &ctx), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "'broken' has no function"));
    sk_cond_free(c);
    /* Names are case-sensitive. */
    c = skt_cond("File_exists");
    assert_int_equal(sk_cond_eval(c, &ctx), SK_EINVAL);
    sk_cond_free(c);

    /* next_change calls each predicate once, and keeps its value. */
    up.calls = 0;
    c = skt_cond("file_exists & time of day after 12:00 | file_exists & hourly");
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_int_equal(up.calls, 2);          /* two leaves, once each */
    assert_true(when == SK_COND_NO_CHANGE); /* hourly is true until the task runs */
    sk_cond_free(c);
    c = skt_cond("file_exists & time of day after 12:00");
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == skt_at("2024-03-01 12:00 +0000"));
    sk_cond_free(c);
    /* A false predicate under & decides: no time changes it. */
    c = skt_cond("disk.full & time of day after 12:00");
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == SK_COND_NO_CHANGE);
    sk_cond_free(c);
    c = skt_cond("file_exists | time of day after 12:00");
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == SK_COND_NO_CHANGE);
    sk_cond_free(c);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    sk_cond *c = skt_cond("true");
    sk_cond_ctx ctx = {.last_start = SK_COND_NEVER, .last_end = SK_COND_NEVER};
    int64_t when;
    assert_int_equal(sk_cond_eval(NULL, &ctx), SK_EINVAL);
    assert_int_equal(sk_cond_eval(c, NULL), SK_EINVAL);
    assert_int_equal(sk_cond_next_change(NULL, &ctx, &when), SK_EINVAL);
    assert_int_equal(sk_cond_next_change(c, NULL, &when), SK_EINVAL);
    assert_int_equal(sk_cond_next_change(c, &ctx, NULL), SK_EINVAL);
    assert_true(sk_cond_equal(NULL, NULL));
    assert_false(sk_cond_equal(c, NULL));
    sk_cond_free(NULL);
    sk_cond_free(c);
    /* sk_cond_now is the real time. */
    int64_t now = sk_cond_now();
    assert_true(now > T(0));
    assert_true(llabs(now - (int64_t)time(NULL) * SKT_NS) < 5 * SKT_NS);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_after_one_task),  SKT_TEST(test_after_many_tasks),
        SKT_TEST(test_pipeline),        SKT_TEST(test_after_and_time),
        SKT_TEST(test_user_conditions), SKT_TEST(test_bad_arguments),
    };
    return skt_run(argc, argv, tests);
}
