/* SPDX-License-Identifier: MIT */
/*
 * The session: function tasks in the three modes, conditions read from the
 * log, parameters of each kind, the options (on_exists, crash_on_*,
 * force_status_from_logs), run_task, remove, overlap, end conditions and
 * timeouts of thread and main runs, step/next_wake/fd, join, run and
 * shutdown. Time is a fake clock the test moves, except where the real
 * one is the point (the fd's timer). Every test ends with the session
 * released, its descriptors closed and no child left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "cond_support.h"
#include "sched_support.h"

#include "sched/runlog.h"

#include <pthread.h>

static const sk_task_mode all_modes[] = {SK_TASK_MAIN, SK_TASK_THREAD, SK_TASK_PROCESS};

static const char *mode_name(sk_task_mode m)
{
    return m == SK_TASK_MAIN ? "main" : m == SK_TASK_THREAD ? "thread" : "process";
}

/* ------------------------------------------------------------ task code */

static _Atomic int calls; /* runs of count_fn in this process */

static int count_fn(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    atomic_fetch_add(&calls, 1);
    return 0;
}

/* Returns its argument's value (int64) as its return value. */
static int return_fn(sk_task_run *run, void *arg)
{
    int64_t v = *(int64_t *)arg;
    return sk_task_return(run, "I", &v);
}

static int fail_fn(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 3;
}

/* Waits until asked to stop (or 30 s). */
static int until_stopped_fn(sk_task_run *run, void *arg)
{
    (void)arg;
    double deadline = skt_now() + 30;
    while (!sk_task_stopping(run) && skt_now() < deadline)
        skt_sleep(0.001);
    return 0;
}

/* Waits until *gate is set (thread runs). */
static int gate_fn(sk_task_run *run, void *arg)
{
    (void)run;
    atomic_fetch_add(&calls, 1);
    _Atomic int *gate = arg;
    double deadline = skt_now() + 30;
    while (!atomic_load(gate) && skt_now() < deadline)
        skt_sleep(0.0005);
    return 0;
}

/* ------------------------------------------------------------ basics */

/* "every 10 seconds": runs at once (never ran), not again at the same
 * time, again once the clock moved 10 s; the log and on_run agree. */
static void test_main_task_every(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    atomic_store(&calls, 0);
    sk_sched_task t = {
        .name = "tick", .start = "every 10 seconds", .fn = count_fn, .mode = SK_TASK_MAIN};
    skt_add(k, &t);
    skt_step(k);
    assert_int_equal(atomic_load(&calls), 1);
    skt_step(k);
    skt_clock_add(k, 9);
    skt_step(k);
    assert_int_equal(atomic_load(&calls), 1);
    int64_t when;
    assert_int_equal(sk_sched_next_wake(k->s, &when), SK_OK);
    assert_cmp(when, ==, SKT_T0 + SKT_SEC(10));
    skt_clock_add(k, 1);
    skt_step(k);
    assert_int_equal(atomic_load(&calls), 2);
    assert_int_equal(skt_runs(k, "tick", SK_RUN_SUCCEEDED), 2);
    assert_int_equal(k->nevents, 4); /* start, end, start, end */
    assert_int_equal(k->events[0].outcome, SK_RUN_RUNNING);
    assert_int_equal(k->events[1].outcome, SK_RUN_SUCCEEDED);
    assert_cmp(k->events[2].start, ==, SKT_T0 + SKT_SEC(10));
    skt_sched_end(k);
}

/* The same function task succeeds, fails and returns a value in each
 * mode: the value is logged, the failure is a RunError with the code. */
static void test_function_task_modes(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (size_t m = 0; m < 3; m++) {
        struct skt_sched *k = skt_sched_new(NULL, false);
        int64_t value = 42 + (int64_t)m;
        sk_sched_task ok = {.name = "ok",
                            .start = "every 1 hour",
                            .fn = return_fn,
                            .arg = &value,
                            .mode = all_modes[m]};
        sk_sched_task bad = {
            .name = "bad", .start = "every 1 hour", .fn = fail_fn, .mode = all_modes[m]};
        skt_add(k, &ok);
        skt_add(k, &bad);
        skt_step(k);
        skt_join(k);
        print_message("mode %s\n", mode_name(all_modes[m]));
        assert_int_equal(skt_runs(k, "ok", SK_RUN_SUCCEEDED), 1);
        assert_int_equal(skt_last_value(k, "ok"), value);
        assert_int_equal(skt_runs(k, "bad", SK_RUN_FAILED), 1);
        const struct skt_run_event *e = skt_last_end(k, "bad");
        assert_non_null(e);
        assert_true(e->has_error);
        assert_int_equal(e->error.kind, SK_RUN_ERROR);
        assert_int_equal(e->error.code, 3);
        skt_sched_end(k);
    }
}

/* "after task 'a' succeeded" reads the log: b runs once after each
 * success of a, not after a failure; "failed" the other way round. */
static int flaky_fn(sk_task_run *run, void *arg)
{
    (void)run;
    return atomic_load((_Atomic int *)arg);
}

static void test_after_conditions(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (size_t m = 0; m < 3; m++) {
        struct skt_sched *k = skt_sched_new(NULL, false);
        _Atomic int a_rc = 0;
        sk_sched_task a = {.name = "a",
                           .start = "every 10 seconds",
                           .fn = flaky_fn,
                           .arg = &a_rc,
                           .mode = all_modes[m]};
        sk_sched_task b = {
            .name = "b", .start = "after task 'a' succeeded", .fn = count_fn, .mode = all_modes[m]};
        sk_sched_task c = {
            .name = "c", .start = "after task 'a' failed", .fn = count_fn, .mode = all_modes[m]};
        skt_add(k, &a);
        skt_add(k, &b);
        skt_add(k, &c);
        skt_step(k);
        skt_join(k);
        skt_clock_add(k, 1);
        skt_join(k);
        assert_int_equal(skt_runs(k, "a", SK_RUN_SUCCEEDED), 1);
        assert_int_equal(skt_runs(k, "b", SK_RUN_RUNNING), 1);
        assert_int_equal(skt_runs(k, "c", SK_RUN_RUNNING), 0);
        atomic_store(&a_rc, 1);
        skt_clock_add(k, 10);
        skt_join(k);
        skt_clock_add(k, 1);
        skt_join(k);
        assert_int_equal(skt_runs(k, "a", SK_RUN_FAILED), 1);
        assert_int_equal(skt_runs(k, "b", SK_RUN_RUNNING), 1);
        assert_int_equal(skt_runs(k, "c", SK_RUN_RUNNING), 1);
        atomic_store(&a_rc, 0);
        skt_clock_add(k, 10);
        skt_join(k);
        skt_clock_add(k, 1);
        skt_join(k);
        assert_int_equal(skt_runs(k, "b", SK_RUN_RUNNING), 2);
        assert_int_equal(skt_runs(k, "c", SK_RUN_RUNNING), 1);
        skt_sched_end(k);
    }
}

/* ------------------------------------------------------------ params */

struct param_seen {
    int64_t fixed, session, computed, ret;
    int ret_rc, missing_rc, format_rc;
};

/* Reads every kind of parameter and returns what it saw (so that a
 * process run reports it too). */
static int params_fn(sk_task_run *run, void *arg)
{
    (void)arg;
    struct param_seen p = {-1, -1, -1, -1, 0, 0, 0};
    sk_task_param(run, "fixed", "I", &p.fixed);
    sk_task_param(run, "session", "I", &p.session);
    sk_task_param(run, "computed", "I", &p.computed);
    p.ret_rc = sk_task_param(run, "ret", "I", &p.ret);
    p.missing_rc = sk_task_param(run, "nope", "I", &p.ret);
    int32_t wrong;
    p.format_rc = sk_task_param(run, "fixed", "i", &wrong);
    return sk_task_return(run, "IIIIiii", &p.fixed, &p.session, &p.computed, &p.ret, &p.ret_rc,
                          &p.missing_rc, &p.format_rc);
}

static _Atomic int param_fn_calls;

static int computed_param(void *arg, void **img, size_t *len)
{
    int64_t v = 1000 + atomic_fetch_add(&param_fn_calls, 1);
    (void)arg;
    return sk_image_pack(img, len, "I", &v);
}

static int read_seen(const sk_run_record *r, void *arg)
{
    struct param_seen *p = arg;
    if (r->value != NULL)
        assert_int_equal(sk_image_unpack(r->value, r->value_len, "IIIIiii", &p->fixed, &p->session,
                                         &p->computed, &p->ret, &p->ret_rc, &p->missing_rc,
                                         &p->format_rc),
                         SK_OK);
    return 0;
}

static void test_params_each_kind(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (size_t m = 0; m < 3; m++) {
        print_message("mode %s\n", mode_name(all_modes[m]));
        struct skt_sched *k = skt_sched_new(NULL, false);
        atomic_store(&param_fn_calls, 0);
        int64_t seven = 7;
        void *img;
        size_t len;
        assert_int_equal(sk_image_pack(&img, &len, "I", &seven), SK_OK);
        sk_param ps[] = {
            {.name = "fixed", .kind = SK_PARAM_VALUE, .image = img, .len = len},
            {.name = "session", .kind = SK_PARAM_SESSION},
            {.name = "computed", .kind = SK_PARAM_SESSION},
            {.name = "ret", .kind = SK_PARAM_RETURN, .task = "x"},
        };
        int64_t x_value = 99;
        sk_sched_task x = {.name = "x", .fn = return_fn, .arg = &x_value, .mode = all_modes[m]};
        sk_sched_task t = {
            .name = "t", .fn = params_fn, .params = ps, .param_count = 4, .mode = all_modes[m]};
        skt_add(k, &t);
        free(img); /* copied */
        skt_add(k, &x);
        int64_t session_value = 5;
        assert_int_equal(sk_sched_param(k->s, "session", "I", &session_value), SK_OK);
        assert_int_equal(sk_sched_param_fn(k->s, "computed", computed_param, NULL), SK_OK);
        assert_int_equal(atomic_load(&param_fn_calls), 0);

        /* x never ran: Return('x') has no value */
        assert_int_equal(sk_sched_run_task(k->s, "t"), SK_OK);
        skt_join(k);
        struct param_seen p;
        memset(&p, 0, sizeof p);
        sk_run_log_last(sk_sched_log(k->s), "t", SK_COND_SUCCEEDED, read_seen, &p);
        assert_int_equal(p.fixed, 7);
        assert_int_equal(p.session, 5);
        assert_int_equal(p.computed, 1000);
        assert_int_equal(p.ret_rc, SK_ECLOSED);
        assert_int_equal(p.missing_rc, SK_EINVAL);
        assert_int_equal(p.format_rc, SK_EFORMAT);
        assert_int_equal(atomic_load(&param_fn_calls), 1);

        /* x ran: its value; the session parameter replaced; fn called again */
        assert_int_equal(sk_sched_run_task(k->s, "x"), SK_OK);
        skt_join(k);
        session_value = 6;
        assert_int_equal(sk_sched_param(k->s, "session", "I", &session_value), SK_OK);
        skt_clock_add(k, 1);
        assert_int_equal(sk_sched_run_task(k->s, "t"), SK_OK);
        skt_join(k);
        sk_run_log_last(sk_sched_log(k->s), "t", SK_COND_SUCCEEDED, read_seen, &p);
        assert_int_equal(p.ret_rc, SK_OK);
        assert_int_equal(p.ret, 99);
        assert_int_equal(p.session, 6);
        assert_int_equal(p.computed, 1001);
        skt_sched_end(k);
    }
}

static int failing_param(void *arg, void **img, size_t *len)
{
    (void)arg;
    (void)img;
    (void)len;
    return 4;
}

/* A parameter function that fails is a failure outside the task's code:
 * the run is logged failed and not started (default), or the step returns
 * it (crash_on_task_prerun). */
static void test_param_fn_failure(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (int crash = 0; crash < 2; crash++) {
        sk_sched_config cfg = {.crash_on_task_prerun = crash};
        struct skt_sched *k = skt_sched_new(&cfg, false);
        atomic_store(&calls, 0);
        sk_param p = {.name = "p", .kind = SK_PARAM_SESSION};
        sk_sched_task t = {.name = "t",
                           .start = "every 10 seconds",
                           .fn = count_fn,
                           .params = &p,
                           .param_count = 1,
                           .mode = SK_TASK_THREAD};
        skt_add(k, &t);
        assert_int_equal(sk_sched_param_fn(k->s, "p", failing_param, NULL), SK_OK);
        int rc = sk_sched_step(k->s);
        assert_int_equal(rc, crash ? SK_EPROCESS : SK_OK);
        if (crash)
            assert_non_null(strstr(sk_last_error_message(), "parameter 'p'"));
        skt_join(k);
        assert_int_equal(atomic_load(&calls), 0);
        assert_int_equal(skt_runs(k, "t", SK_RUN_FAILED), 1);
        const struct skt_run_event *e = skt_last_end(k, "t");
        assert_non_null(e);
        assert_int_equal(e->error.code, 4);
        skt_sched_end(k);
    }
}

/* ------------------------------------------------------------ options */

static void test_on_exists(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (int policy = SK_EXISTS_RAISE; policy <= SK_EXISTS_RENAME; policy++) {
        sk_sched_config cfg = {.on_exists = (sk_on_exists)policy};
        struct skt_sched *k = skt_sched_new(&cfg, false);
        int64_t one = 1, two = 2;
        sk_sched_task a = {.name = "t", .fn = return_fn, .arg = &one, .mode = SK_TASK_MAIN};
        sk_sched_task b = {.name = "t",
                           .start_cond = sk_cond_true(),
                           .fn = return_fn,
                           .arg = &two,
                           .mode = SK_TASK_MAIN};
        skt_add(k, &a);
        char got[64] = "";
        int rc = sk_sched_add(k->s, &b, got, sizeof got);
        switch (policy) {
        case SK_EXISTS_RAISE:
            assert_int_equal(rc, SK_ESTATE);
            break;
        case SK_EXISTS_IGNORE:
        case SK_EXISTS_REPLACE:
            assert_int_equal(rc, SK_OK);
            assert_string_equal(got, "t");
            break;
        case SK_EXISTS_RENAME:
            assert_int_equal(rc, SK_OK);
            assert_string_equal(got, "t-2");
            b.start_cond = NULL;
            b.start = "false";
            assert_int_equal(sk_sched_add(k->s, &b, got, sizeof got), SK_OK);
            assert_string_equal(got, "t-3");
            break;
        }
        assert_int_equal(sk_sched_run_task(k->s, "t"), SK_OK);
        skt_step(k);
        /* REPLACE: the new fn (and its "true" condition) */
        assert_int_equal(skt_last_value(k, "t"), policy == SK_EXISTS_REPLACE ? 2 : 1);
        if (policy == SK_EXISTS_RENAME) {
            skt_step(k);
            assert_int_equal(skt_last_value(k, "t-2"), 2);
        }
        skt_sched_end(k);
    }
}

/* An unregistered user condition: false and said once (default), or the
 * step fails with it (crash_on_cond_error). Registering it decides it. */
static bool yes(void *arg)
{
    (void)arg;
    return true;
}

static void test_cond_error(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (int crash = 0; crash < 2; crash++) {
        sk_sched_config cfg = {.crash_on_cond_error = crash};
        struct skt_sched *k = skt_sched_new(&cfg, false);
        atomic_store(&calls, 0);
        sk_sched_task t = {.name = "t",
                           .start = "ready_now & every 10 seconds",
                           .fn = count_fn,
                           .mode = SK_TASK_MAIN};
        skt_add(k, &t);
        int rc = sk_sched_step(k->s);
        assert_int_equal(rc, crash ? SK_EINVAL : SK_OK);
        if (crash)
            assert_non_null(strstr(sk_last_error_message(), "ready_now"));
        assert_int_equal(atomic_load(&calls), 0);
        assert_int_equal(sk_sched_condition(k->s, "ready_now", yes, NULL), SK_OK);
        skt_step(k);
        assert_int_equal(atomic_load(&calls), 1);
        skt_sched_end(k);
    }
}

/* With force_status_from_logs, a run someone else logged counts; from the
 * cache, it does not (until the session reads that name again). */
static void test_force_status_from_logs(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (int force = 0; force < 2; force++) {
        sk_sched_config cfg = {.force_status_from_logs = force};
        struct skt_sched *k = skt_sched_new(&cfg, false);
        atomic_store(&calls, 0);
        sk_sched_task b = {
            .name = "b", .start = "after task 'a'", .fn = count_fn, .mode = SK_TASK_MAIN};
        skt_add(k, &b);
        skt_step(k);
        assert_int_equal(atomic_load(&calls), 0);
        /* a run of 'a' written to the log behind the session's back */
        sk_run_log *log = sk_sched_log(k->s);
        int64_t id;
        assert_int_equal(sk_runlog_begin(log, "a", SKT_T0, &id), SK_OK);
        assert_int_equal(
            sk_runlog_end(log, id, SKT_T0 + SKT_SEC(1), SK_RUN_SUCCEEDED, NULL, NULL, 0), SK_OK);
        skt_clock_add(k, 2);
        skt_step(k);
        assert_int_equal(atomic_load(&calls), force ? 1 : 0);
        skt_sched_end(k);
    }
}

/* run_task starts a task whose condition is false; overlap still applies. */
static void test_run_task_and_remove(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    atomic_store(&calls, 0);
    _Atomic int gate = 0;
    sk_sched_task t = {.name = "t", .fn = gate_fn, .arg = &gate, .mode = SK_TASK_THREAD};
    skt_add(k, &t);
    skt_step(k);
    assert_int_equal(skt_runs(k, "t", SK_RUN_RUNNING), 0);
    assert_int_equal(sk_sched_run_task(k->s, "t"), SK_OK);
    skt_step(k);
    skt_wait_until(atomic_load(&calls) == 1, 5);
    assert_int_equal(sk_sched_run_task(k->s, "t"), SK_OK); /* running: skipped */
    skt_step(k);
    assert_int_equal(sk_sched_run_task(k->s, "nope"), SK_EINVAL);
    /* removed while its run goes on: the run ends and is logged */
    assert_int_equal(sk_sched_remove(k->s, "t"), SK_OK);
    assert_int_equal(sk_sched_remove(k->s, "t"), SK_EINVAL);
    assert_int_equal(sk_sched_run_task(k->s, "t"), SK_EINVAL);
    atomic_store(&gate, 1);
    skt_join(k);
    assert_int_equal(atomic_load(&calls), 1);
    assert_int_equal(skt_runs(k, "t", SK_RUN_SUCCEEDED), 1);
    /* the name is free again */
    skt_add(k, &t);
    skt_sched_end(k);
}

/* Bad tasks are refused with a reason; built conditions are freed (the
 * sanitizer build would see a leak). */
static void test_add_refusals(void **state)
{
    (void)state;
    struct skt_sched *k = skt_sched_new(NULL, false);
    sk_sched_task none = {.name = "t"};
    assert_int_equal(sk_sched_add(k->s, &none, NULL, 0), SK_EINVAL);
    sk_sched_task noname = {.fn = count_fn, .start_cond = sk_cond_true()};
    assert_int_equal(sk_sched_add(k->s, &noname, NULL, 0), SK_EINVAL);
    sk_sched_task both = {
        .name = "t", .fn = count_fn, .start = "true", .start_cond = sk_cond_true()};
    assert_int_equal(sk_sched_add(k->s, &both, NULL, 0), SK_EINVAL);
    sk_sched_task bad = {.name = "t",
                         .fn = count_fn,
                         .start = "daily between 08:00 and",
                         .end_cond = sk_cond_false()};
    assert_int_equal(sk_sched_add(k->s, &bad, NULL, 0), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "start condition"));
    sk_param dup[] = {{.name = "p", .kind = SK_PARAM_SESSION},
                      {.name = "p", .kind = SK_PARAM_SESSION}};
    sk_sched_task dups = {.name = "t", .fn = count_fn, .params = dup, .param_count = 2};
    assert_int_equal(sk_sched_add(k->s, &dups, NULL, 0), SK_EINVAL);
    sk_param junk = {.name = "p", .kind = SK_PARAM_VALUE, .image = "junk", .len = 4};
    sk_sched_task junks = {.name = "t", .fn = count_fn, .params = &junk, .param_count = 1};
    assert_int_equal(sk_sched_add(k->s, &junks, NULL, 0), SK_EINVAL);
    sk_sched_task mode = {.name = "t", .fn = count_fn, .mode = (sk_task_mode)7};
    assert_int_equal(sk_sched_add(k->s, &mode, NULL, 0), SK_EINVAL);
    skt_sched_end(k);
}

/* ------------------------------------------------- ending thread runs */

/* A thread run past its timeout is asked to stop (sk_task_stopping) and
 * logged terminated with a timeout error; an end condition does the same
 * with its own error. */
static void test_thread_timeout_and_end_condition(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    sk_sched_task slow = {
        .name = "slow", .fn = until_stopped_fn, .mode = SK_TASK_THREAD, .timeout = 0.2};
    sk_sched_task ended = {.name = "ended",
                           .fn = until_stopped_fn,
                           .mode = SK_TASK_THREAD,
                           .end = "after task 'slow' finished"};
    skt_add(k, &slow);
    skt_add(k, &ended);
    double t0 = skt_now();
    assert_int_equal(sk_sched_run_task(k->s, "slow"), SK_OK);
    assert_int_equal(sk_sched_run_task(k->s, "ended"), SK_OK);
    skt_step(k);
    skt_clock_add(k, 1); /* slow ends after ended began */
    skt_join(k);
    assert_dbl_lt(skt_now() - t0, 5.0);
    const struct skt_run_event *e = skt_last_end(k, "slow");
    assert_non_null(e);
    assert_int_equal(e->outcome, SK_RUN_TERMINATED);
    assert_int_equal(e->error.kind, SK_TIMEOUT_ERROR);
    e = skt_last_end(k, "ended");
    assert_non_null(e);
    assert_int_equal(e->outcome, SK_RUN_TERMINATED);
    assert_non_null(strstr(e->error.message, "end condition"));
    skt_sched_end(k);
}

/* A thread that ignores the stop request is reported once kill_after
 * passed (on_run, still running, with an error) and logged terminated
 * when it returns. */
static void test_thread_ignoring_stop(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    _Atomic int gate = 0;
    sk_sched_task t = {.name = "deaf",
                       .fn = gate_fn,
                       .arg = &gate,
                       .mode = SK_TASK_THREAD,
                       .timeout = 0.05,
                       .kill_after = 0.05};
    skt_add(k, &t);
    assert_int_equal(sk_sched_run_task(k->s, "deaf"), SK_OK);
    skt_step(k);
    assert_int_equal(sk_sched_join(k->s, 0.5), SK_ETIMEDOUT);
    bool reported = false;
    for (int i = 0; i < k->nevents; i++)
        reported |= k->events[i].outcome == SK_RUN_RUNNING && k->events[i].has_error;
    assert_true(reported);
    atomic_store(&gate, 1);
    skt_join(k);
    const struct skt_run_event *e = skt_last_end(k, "deaf");
    assert_int_equal(e->outcome, SK_RUN_TERMINATED);
    assert_int_equal(e->error.kind, SK_TIMEOUT_ERROR);
    skt_sched_end(k);
}

static _Atomic int returned;

/* gate_fn, deaf to stop requests, counting its returns. */
static int deaf_gate_fn(sk_task_run *run, void *arg)
{
    gate_fn(run, arg);
    atomic_fetch_add(&returned, 1);
    return 0;
}

/* At release, a thread run that does not return within the grace is
 * logged terminated and let go of: release returns, and the thread frees
 * its run when it returns later. */
static void test_thread_orphaned_at_release(void **state)
{
    (void)state;
    skt_tz("UTC");
    sk_sched_config cfg = {.shutdown_grace = 0.1};
    struct skt_sched *k = skt_sched_new(&cfg, false);
    atomic_store(&calls, 0);
    atomic_store(&returned, 0);
    _Atomic int *gate = xcalloc(1, sizeof *gate); /* outlives the session */
    sk_sched_task t = {.name = "deaf", .fn = deaf_gate_fn, .arg = gate, .mode = SK_TASK_THREAD};
    skt_add(k, &t);
    assert_int_equal(sk_sched_run_task(k->s, "deaf"), SK_OK);
    skt_step(k);
    skt_wait_until(atomic_load(&calls) == 1, 5);
    double t0 = skt_now();
    skt_sched_end(k);
    assert_dbl_lt(skt_now() - t0, 2.0 * skt_slowdown());
    const struct skt_run_event *e = skt_last_end(k, "deaf");
    assert_non_null(e);
    assert_int_equal(e->outcome, SK_RUN_TERMINATED);
    assert_non_null(strstr(e->error.cause, "left running"));
    assert_int_equal(atomic_load(&returned), 0);
    atomic_store(gate, 1);
    skt_wait_until(atomic_load(&returned) == 1, 5);
    skt_sleep(0.05); /* it frees its run after fn returned: before the leak check at exit */
}

/* A main run that returns after its timeout saw sk_task_stopping turn
 * true and is logged terminated. */
static int main_slow_fn(sk_task_run *run, void *arg)
{
    (void)arg;
    while (!sk_task_stopping(run))
        skt_sleep(0.001);
    return 0;
}

static void test_main_timeout(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    sk_sched_task t = {.name = "m", .fn = main_slow_fn, .mode = SK_TASK_MAIN, .timeout = 0.05};
    skt_add(k, &t);
    assert_int_equal(sk_sched_run_task(k->s, "m"), SK_OK);
    skt_step(k);
    const struct skt_run_event *e = skt_last_end(k, "m");
    assert_non_null(e);
    assert_int_equal(e->outcome, SK_RUN_TERMINATED);
    assert_int_equal(e->error.kind, SK_TIMEOUT_ERROR);
    skt_sched_end(k);
}

/* ------------------------------------------------------------ overlap */

/* A task due while its run goes: skipped (default), queued (one at a time
 * as runs end, up to max_parallel kept), or run alongside up to
 * max_parallel. Each sk_sched_run_task is one due start. */
static void test_overlap_policies(void **state)
{
    (void)state;
    skt_tz("UTC");
    const sk_overlap policies[] = {SK_OVERLAP_SKIP, SK_OVERLAP_QUEUE, SK_OVERLAP_PARALLEL};
    for (size_t i = 0; i < 3; i++) {
        struct skt_sched *k = skt_sched_new(NULL, false);
        atomic_store(&calls, 0);
        _Atomic int gate = 0;
        sk_sched_task t = {.name = "t",
                           .fn = gate_fn,
                           .arg = &gate,
                           .mode = SK_TASK_THREAD,
                           .overlap = policies[i],
                           .max_parallel = 2};
        skt_add(k, &t);
        for (int due = 0; due < 4; due++) { /* due four times while the first run goes */
            assert_int_equal(sk_sched_run_task(k->s, "t"), SK_OK);
            skt_step(k);
            skt_clock_add(k, 10);
        }
        /* running at once: 1 (skip, queue) or 2 (parallel) */
        int want = policies[i] == SK_OVERLAP_PARALLEL ? 2 : 1;
        skt_wait_until(atomic_load(&calls) == want, 5);
        skt_step(k);
        assert_int_equal(atomic_load(&calls), want);
        atomic_store(&gate, 1);
        skt_join(k);
        /* skip: 1 run; queue: 1 + 2 kept; parallel: 2 */
        int total = policies[i] == SK_OVERLAP_QUEUE ? 3 : want;
        assert_int_equal(atomic_load(&calls), total);
        assert_int_equal(skt_runs(k, "t", SK_RUN_SUCCEEDED), total);
        skt_sched_end(k);
    }
}

/* ---------------------------------------------- waiting and running */

/* With the real clock the fd turns readable when the next change comes,
 * and not before; next_wake says when. */
static void test_fd_and_next_wake(void **state)
{
    (void)state;
    struct skt_sched *k = skt_sched_new(NULL, true);
    atomic_store(&calls, 0);
    sk_sched_task t = {
        .name = "t", .start = "every 1 second", .fn = count_fn, .mode = SK_TASK_MAIN};
    skt_add(k, &t);
    int fd = sk_sched_fd(k->s);
    assert_true(fd >= 0);
    assert_int_equal(skt_poll_in(fd, 0), 1); /* a task was added: step */
    skt_step(k);
    assert_int_equal(atomic_load(&calls), 1);
    assert_int_equal(skt_poll_in(fd, 0), 1); /* its end: a cycle looks at it again */
    skt_step(k);
    int64_t when;
    assert_int_equal(sk_sched_next_wake(k->s, &when), SK_OK);
    int64_t left = when - sk_cond_now();
    assert_true(left > 0 && left <= SKT_SEC(1));
    assert_int_equal(skt_poll_in(fd, 0), 0);
    double t0 = skt_now();
    assert_int_equal(skt_poll_in(fd, 3), 1);
    assert_dbl_gt(skt_now() - t0, (double)left / 1e9 - 0.05);
    skt_step(k);
    assert_int_equal(atomic_load(&calls), 2);
    skt_step(k);
    /* a thread run's end makes it readable */
    _Atomic int gate = 0;
    sk_sched_task g = {.name = "g", .fn = gate_fn, .arg = &gate, .mode = SK_TASK_THREAD};
    skt_add(k, &g);
    assert_int_equal(sk_sched_run_task(k->s, "g"), SK_OK);
    skt_step(k);
    skt_step(k);
    assert_int_equal(sk_sched_remove(k->s, "t"), SK_OK);
    skt_step(k);
    assert_int_equal(skt_poll_in(fd, 0.05), 0);
    atomic_store(&gate, 1);
    assert_int_equal(skt_poll_in(fd, 5), 1);
    skt_step(k);
    assert_int_equal(skt_runs(k, "g", SK_RUN_SUCCEEDED), 1);
    skt_sched_end(k);
}

static void *shutdown_later(void *arg)
{
    skt_sleep(0.1);
    sk_sched_shutdown(arg);
    return NULL;
}

static void *shutdown_later_half(void *arg)
{
    skt_sleep(0.5);
    sk_sched_shutdown(arg);
    return NULL;
}

/* sk_sched_run returns after sk_sched_shutdown from another thread, with
 * the running runs stopped and logged terminated. */
static void test_run_and_shutdown(void **state)
{
    (void)state;
    skt_tz("UTC");
    sk_sched_config cfg = {.no_signals = true, .shutdown_grace = 2};
    struct skt_sched *k = skt_sched_new(&cfg, true);
    sk_sched_task t = {
        .name = "t", .start = "true", .fn = until_stopped_fn, .mode = SK_TASK_THREAD};
    skt_add(k, &t);
    pthread_t th;
    pthread_create(&th, NULL, shutdown_later, k->s);
    double t0 = skt_now();
    assert_int_equal(sk_sched_run(k->s), SK_OK);
    pthread_join(th, NULL);
    assert_dbl_lt(skt_now() - t0, 3.0);
    assert_int_equal(skt_runs(k, "t", SK_RUN_TERMINATED), 1);
    assert_int_equal(skt_runs(k, "t", SK_RUN_RUNNING), 1);
    skt_sched_end(k);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A session with nothing due sleeps: 0.5 s of sk_sched_run with a task
 * that ran and is not due for an hour costs (next to) no CPU. */
static void test_idle_costs_nothing(void **state)
{
    (void)state;
    sk_sched_config cfg = {.no_signals = true};
    struct skt_sched *k = skt_sched_new(&cfg, true);
    atomic_store(&calls, 0);
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        sk_sched_task t = {
            .name = name, .start = "every 1 hour", .fn = count_fn, .mode = SK_TASK_MAIN};
        skt_add(k, &t);
    }
    skt_step(k);
    skt_step(k);
    assert_int_equal(atomic_load(&calls), 100);
    pthread_t th;
    pthread_create(&th, NULL, shutdown_later_half, k->s);
    double cpu0 = cpu_seconds(), t0 = skt_now();
    assert_int_equal(sk_sched_run(k->s), SK_OK);
    double cpu = cpu_seconds() - cpu0, wall = skt_now() - t0;
    pthread_join(th, NULL);
    print_message("idle: %.3f ms CPU in %.3f s\n", cpu * 1e3, wall);
    assert_dbl_gt(wall, 0.4);
    assert_dbl_lt(cpu, 0.02 * skt_slowdown());
    assert_int_equal(atomic_load(&calls), 100);
    skt_sched_end(k);
}

/* cycle_sleep spaces the cycles of sk_sched_run: a main task whose
 * condition is always true runs once per cycle. */
static void test_cycle_sleep(void **state)
{
    (void)state;
    sk_sched_config cfg = {.no_signals = true, .cycle_sleep = 0.1};
    struct skt_sched *k = skt_sched_new(&cfg, true);
    atomic_store(&calls, 0);
    sk_sched_task t = {.name = "t", .start = "true", .fn = count_fn, .mode = SK_TASK_MAIN};
    skt_add(k, &t);
    pthread_t th;
    pthread_create(&th, NULL, shutdown_later_half, k->s);
    double t0 = skt_now();
    assert_int_equal(sk_sched_run(k->s), SK_OK);
    double wall = skt_now() - t0;
    pthread_join(th, NULL);
    int n = atomic_load(&calls);
    print_message("%d runs in %.3f s with cycle_sleep 0.1\n", n, wall);
    assert_int_ge(n, 2);
    assert_int_le(n, (long long)(wall / 0.1) + 1); /* one cycle at 0, then one per 0.1 s */
    skt_sched_end(k);
}

/* The shutdown condition ends sk_sched_run: here after a task succeeded
 * (since the session began). */
static void test_shutdown_condition(void **state)
{
    (void)state;
    skt_tz("UTC");
    sk_sched_config cfg = {.no_signals = true, .shutdown = "after task 'last'"};
    struct skt_sched *k = skt_sched_new(&cfg, true);
    atomic_store(&calls, 0);
    sk_sched_task first = {
        .name = "first", .start = "true", .fn = count_fn, .mode = SK_TASK_THREAD};
    sk_sched_task last = {
        .name = "last", .start = "after task 'first'", .fn = count_fn, .mode = SK_TASK_THREAD};
    skt_add(k, &first);
    skt_add(k, &last);
    assert_int_equal(sk_sched_run(k->s), SK_OK);
    assert_int_equal(skt_runs(k, "last", SK_RUN_SUCCEEDED), 1);
    skt_sched_end(k);
}

/* A crash_on_* failure ends sk_sched_run with it. */
static void test_run_crash(void **state)
{
    (void)state;
    skt_tz("UTC");
    sk_sched_config cfg = {.no_signals = true, .crash_on_cond_error = true};
    struct skt_sched *k = skt_sched_new(&cfg, false);
    sk_sched_task t = {.name = "t", .start = "unknown_thing", .fn = count_fn};
    skt_add(k, &t);
    assert_int_equal(sk_sched_run(k->s), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "unknown_thing"));
    skt_sched_end(k);
}

/* A main task cannot step its own session. */
static _Atomic int nested_rc;

static int nested_fn(sk_task_run *run, void *arg)
{
    (void)run;
    atomic_store(&nested_rc, sk_sched_step(arg));
    return 0;
}

static void test_reentry_refused(void **state)
{
    (void)state;
    struct skt_sched *k = skt_sched_new(NULL, false);
    sk_sched_task t = {.name = "t", .fn = nested_fn, .arg = k->s, .mode = SK_TASK_MAIN};
    skt_add(k, &t);
    assert_int_equal(sk_sched_run_task(k->s, "t"), SK_OK);
    skt_step(k);
    assert_int_equal(atomic_load(&nested_rc), SK_ESTATE);
    skt_sched_end(k);
}

/* ------------------------------------------------------- missed runs */

static int count_arg_fn(sk_task_run *run, void *arg)
{
    (void)run;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* One session of the missed-runs test at `at`: both tasks added, a few
 * cycles, released. */
static void missed_session(const sk_sched_config *cfg, const char *at, _Atomic int *once,
                           _Atomic int *skip)
{
    struct skt_sched *k = skt_sched_new_at(cfg, false, skt_at(at));
    sk_sched_task a = {.name = "once",
                       .start = "daily between 10:00 and 11:00",
                       .fn = count_arg_fn,
                       .arg = once,
                       .mode = SK_TASK_MAIN,
                       .missed = SK_MISSED_RUN_ONCE};
    sk_sched_task b = {.name = "skip",
                       .start = "daily between 10:00 and 11:00",
                       .fn = count_arg_fn,
                       .arg = skip,
                       .mode = SK_TASK_MAIN};
    skt_add(k, &a);
    skt_add(k, &b);
    for (int i = 0; i < 3; i++)
        skt_step(k);
    skt_join(k);
    skt_sched_end(k);
}

/* A start that was due while no session ran: SK_MISSED_RUN_ONCE runs it
 * once at the first cycle, however many windows passed; the default skips
 * it. Sessions in turn on one SQLite log. */
static void test_missed_runs(void **state)
{
    (void)state;
    skt_tz("UTC");
    char path[512];
    snprintf(path, sizeof path, "%s/runs.sqlite", skt_use_tmpdir("skt-sched-missed"));
    sk_sched_config cfg = {.log_path = path};
    _Atomic int once = 0, skip = 0;
    missed_session(&cfg, "2024-03-04 09:05 +0000", &once, &skip); /* before the window */
    assert_int_equal(atomic_load(&once), 0);
    missed_session(&cfg, "2024-03-06 12:00 +0000", &once, &skip); /* three windows missed */
    assert_int_equal(atomic_load(&once), 1);
    assert_int_equal(atomic_load(&skip), 0);
    missed_session(&cfg, "2024-03-06 12:30 +0000", &once, &skip); /* none since */
    assert_int_equal(atomic_load(&once), 1);
    missed_session(&cfg, "2024-03-07 10:30 +0000", &once, &skip); /* inside the window: both */
    assert_int_equal(atomic_load(&once), 2);
    assert_int_equal(atomic_load(&skip), 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_main_task_every),
        SKT_TEST(test_function_task_modes),
        SKT_TEST(test_after_conditions),
        SKT_TEST(test_params_each_kind),
        SKT_TEST(test_param_fn_failure),
        SKT_TEST(test_on_exists),
        SKT_TEST(test_cond_error),
        SKT_TEST(test_force_status_from_logs),
        SKT_TEST(test_run_task_and_remove),
        SKT_TEST(test_add_refusals),
        SKT_TEST(test_thread_timeout_and_end_condition),
        SKT_TEST(test_thread_ignoring_stop),
        SKT_TEST(test_thread_orphaned_at_release),
        SKT_TEST(test_main_timeout),
        SKT_TEST(test_overlap_policies),
        SKT_TEST(test_fd_and_next_wake),
        SKT_TEST(test_run_and_shutdown),
        SKT_TEST(test_shutdown_condition),
        SKT_TEST(test_idle_costs_nothing),
        SKT_TEST(test_cycle_sleep),
        SKT_TEST(test_run_crash),
        SKT_TEST(test_reentry_refused),
        SKT_TEST(test_missed_runs),
    };
    return skt_run(argc, argv, tests);
}
