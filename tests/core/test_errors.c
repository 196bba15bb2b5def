/* SPDX-License-Identifier: MIT */
/*
 * Errors with real child processes: a failure in each hook (sk_fail and a
 * bare return value), the error hook and what it publishes, a failing error
 * hook, crashes (signal and exit), timeouts; and the error API itself
 * (kinds, hierarchy, names, format, sk_strerror).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <math.h>

/* ------------------------------------------------------------ a class */

enum how {
    HOW_NONE,      /* succeed */
    HOW_FAIL,      /* return sk_fail(self, value, "broke in <section> at <run>") */
    HOW_FAIL_ZERO, /* return sk_fail(self, 0, ...) */
    HOW_BARE,      /* return value */
    HOW_SIGNAL,    /* die by signal value */
    HOW_ABORT,     /* abort() */
    HOW_EXIT,      /* exit(value) */
    HOW_SPIN,      /* spin forever, every signal blocked */
    HOW_PAUSE      /* block forever */
};

/* The error hook: publish what sk_error_of(self) says, fail, do nothing,
 * spin forever or crash. */
enum error_how { ERR_PUBLISH, ERR_FAIL, ERR_QUIET, ERR_SPIN, ERR_CRASH };

typedef struct {
    sk_process base;
    sk_section where; /* the hook that misbehaves */
    long at_run;      /* loop hooks: only on this run index (-1: every run) */
    enum how how;
    int value;
    enum error_how error_how;
    int64_t calls[SK_FULL_RUN]; /* per hook, in this worker's memory */
    int64_t *shared_calls;      /* per hook, across workers (skt_shared), or NULL */
    useconds_t nap;             /* in every loop hook call */
} faulty;

#define FAULTY(p) SK_CONTAINER_OF(p, faulty, base)

static int misbehave(sk_process *self, sk_section s)
{
    faulty *f = FAULTY(self);
    f->calls[s]++;
    if (f->shared_calls != NULL)
        f->shared_calls[s]++;
    bool loop = s == SK_PRERUN || s == SK_RUN || s == SK_POSTRUN;
    if (loop && f->nap)
        usleep(f->nap);
    if (s != f->where || f->how == HOW_NONE)
        return 0;
    if (loop && f->at_run >= 0 && sk_current_run(self) != f->at_run)
        return 0;
    switch (f->how) {
    case HOW_FAIL:
        return sk_fail(self, f->value, "broke in %s at %ld", sk_section_name(s),
                       sk_current_run(self));
    case HOW_FAIL_ZERO:
        return sk_fail(self, 0, "zero code");
    case HOW_BARE:
        return f->value;
    case HOW_SIGNAL:
        skt_die_by(f->value);
        break;
    case HOW_ABORT: {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        abort();
    }
    case HOW_EXIT:
        exit(f->value);
    case HOW_SPIN: {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        skt_spin_forever();
        break;
    }
    case HOW_PAUSE:
        for (;;)
            pause();
    default:
        break;
    }
    return 0;
}

static int f_prerun(sk_process *self)
{
    return misbehave(self, SK_PRERUN);
}

static int f_run(sk_process *self)
{
    return misbehave(self, SK_RUN);
}

static int f_postrun(sk_process *self)
{
    return misbehave(self, SK_POSTRUN);
}

static int f_onfinish(sk_process *self)
{
    return misbehave(self, SK_ONFINISH);
}

static int f_result(sk_process *self)
{
    faulty *f = FAULTY(self);
    int64_t v = 42;
    /* Published first: a failing result hook must have it discarded. */
    int rc = sk_return(self, "I", &v);
    if (rc != SK_OK)
        return rc;
    (void)f;
    return misbehave(self, SK_RESULT);
}

/* Publishes "iiIiss": kind, section, run, code, cause, message of the error
 * seen inside the hook (kind -1 when sk_error_of gives NULL), and the run
 * calls made in this worker ("I"). */
static int f_error(sk_process *self)
{
    faulty *f = FAULTY(self);
    f->calls[SK_ERROR]++;
    if (f->shared_calls != NULL)
        f->shared_calls[SK_ERROR]++;
    switch (f->error_how) {
    case ERR_FAIL:
        return sk_fail(self, 99, "handler broke");
    case ERR_QUIET:
        return 0;
    case ERR_SPIN:
        skt_spin_forever();
        break;
    case ERR_CRASH:
        skt_die_by(SIGSEGV);
        break;
    case ERR_PUBLISH:
        break;
    }
    const sk_error *e = sk_error_of(self);
    int kind = e ? (int)e->kind : -1;
    int section = e ? (int)e->section : -1;
    int64_t run = e ? e->run : -1;
    int code = e ? e->code : 0;
    char *cause = (char *)(e ? e->cause : "");
    char *message = (char *)(e ? e->message : "");
    int64_t run_calls = f->calls[SK_RUN];
    return sk_return(self, "iiIissI", &kind, &section, &run, &code, &cause, &message, &run_calls);
}

static const sk_class faulty_class = {
    .name = "faulty",
    .prerun = f_prerun,
    .run = f_run,
    .postrun = f_postrun,
    .onfinish = f_onfinish,
    .result = f_result,
    .error = f_error,
};

static const sk_class faulty_no_error_hook_class = {
    .name = "faulty_no_error_hook",
    .prerun = f_prerun,
    .run = f_run,
    .postrun = f_postrun,
    .onfinish = f_onfinish,
    .result = f_result,
};

static faulty *faulty_new(const sk_class *cls, sk_section where, long at_run, enum how how,
                          int value)
{
    faulty *f = skt_new(faulty);
    assert_rc(sk_init(&f->base, cls), SK_OK);
    f->where = where;
    f->at_run = at_run;
    f->how = how;
    f->value = value;
    return f;
}

/* What the error hook published. */
struct seen {
    int kind, section;
    int64_t run;
    int code;
    char *cause, *message;
    int64_t run_calls;
};

static void seen_read(faulty *f, struct seen *s)
{
    memset(s, 0, sizeof *s);
    s->kind = -2;
    assert_rc(sk_result(&f->base, "iiIissI", &s->kind, &s->section, &s->run, &s->code, &s->cause,
                        &s->message, &s->run_calls),
              SK_EPROCESS);
    assert_non_null(s->cause);
    assert_non_null(s->message);
}

static void seen_free(struct seen *s)
{
    free(s->cause);
    free(s->message);
}

static const sk_error *error_after_wait(faulty *f)
{
    assert_rc(sk_wait(&f->base, 10.0), SK_OK);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    return e;
}

/* --------------------------------------------- a failure in each hook */

/* sk_fail(17) in a loop hook on run 2 of 5: the kind of that section, the
 * run, the code and text, and the error hook saw the same error. */
static void check_loop_hook_failure(sk_section where, sk_error_kind kind, const char *name)
{
    faulty *f = faulty_new(&faulty_class, where, 2, HOW_FAIL, 17);
    f->base.config.runs = 5;
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    char want[256];
    assert_int_equal(e->kind, kind);
    assert_int_equal(e->section, where);
    assert_int_equal(e->run, 2);
    assert_int_equal(e->code, 17);
    snprintf(want, sizeof want, "broke in %s at 2", sk_section_name(where));
    assert_string_equal(e->cause, want);
    snprintf(want, sizeof want, "Error in the %s hook on run 2", sk_section_name(where));
    assert_string_equal(e->message, want);
    assert_int_equal(e->lives_spent, 1);
    assert_int_equal(e->signal, 0);
    assert_true(sk_error_is(e, kind));
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_false(sk_error_is(e, SK_TIMEOUT_ERROR));
    assert_false(sk_error_is(e, kind == SK_RUN_ERROR ? SK_PRERUN_ERROR : SK_RUN_ERROR));
    assert_string_equal(sk_error_name(e->kind), name);
    assert_int_equal(sk_current_run(&f->base), 2);

    /* The error hook ran in the same worker (state kept) and saw the error. */
    struct seen s;
    seen_read(f, &s);
    assert_int_equal(s.kind, kind);
    assert_int_equal(s.section, where);
    assert_int_equal(s.run, 2);
    assert_int_equal(s.code, 17);
    assert_string_equal(s.cause, e->cause);
    assert_string_equal(s.message, e->message);
    assert_int_equal(s.run_calls, where == SK_PRERUN ? 2 : 3);
    seen_free(&s);
    sk_release(&f->base);
}

static void test_error_in_prerun(void **state)
{
    (void)state;
    check_loop_hook_failure(SK_PRERUN, SK_PRERUN_ERROR, "PreRunError");
}

static void test_error_in_run(void **state)
{
    (void)state;
    check_loop_hook_failure(SK_RUN, SK_RUN_ERROR, "RunError");
}

static void test_error_in_postrun(void **state)
{
    (void)state;
    check_loop_hook_failure(SK_POSTRUN, SK_POSTRUN_ERROR, "PostRunError");
}

static void test_error_in_onfinish(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_ONFINISH, -1, HOW_FAIL, 5);
    f->base.config.runs = 3;
    f->base.config.lives = 3; /* never used after the loop */
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_ONFINISH_ERROR);
    assert_int_equal(e->section, SK_ONFINISH);
    assert_int_equal(e->run, 3);
    assert_int_equal(e->code, 5);
    assert_string_equal(e->cause, "broke in onfinish at 3");
    assert_string_equal(e->message, "Error in the onfinish hook on run 3");
    assert_int_equal(e->lives_spent, 1); /* the attempt it failed in */
    assert_int_equal(e->reason, SK_EPROCESS);
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_string_equal(sk_error_name(e->kind), "OnFinishError");
    struct seen s;
    seen_read(f, &s); /* the result hook did not run: what we read is the error hook's */
    assert_int_equal(s.kind, SK_ONFINISH_ERROR);
    assert_int_equal(s.run_calls, 3);
    seen_free(&s);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_RESULT)), 0);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_ERROR)), 1);
    sk_release(&f->base);
}

static void test_error_in_result_discards_its_value(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RESULT, -1, HOW_FAIL, 6);
    f->base.config.runs = 2;
    f->base.config.lives = 3;
    f->error_how = ERR_QUIET; /* publishes nothing */
    assert_rc(sk_start(&f->base), SK_OK);
    int64_t v = -1;
    assert_rc(sk_result(&f->base, "I", &v), SK_EPROCESS);
    assert_int_equal(v, -1); /* the 42 published before failing is gone */
    assert_rc(sk_result(&f->base, NULL), SK_EPROCESS);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RESULT_ERROR);
    assert_int_equal(e->section, SK_RESULT);
    assert_int_equal(e->run, 2);
    assert_int_equal(e->code, 6);
    assert_string_equal(e->cause, "broke in result at 2");
    assert_string_equal(e->message, "Error in the result hook on run 2");
    assert_int_equal(e->lives_spent, 1);
    assert_string_equal(sk_error_name(e->kind), "ResultError");
    sk_release(&f->base);
}

static void test_crash_in_result_discards_its_value(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RESULT, -1, HOW_SIGNAL, SIGKILL);
    f->base.config.runs = 1;
    f->error_how = ERR_QUIET;
    assert_rc(sk_start(&f->base), SK_OK);
    int64_t v = -1;
    assert_rc(sk_result(&f->base, "I", &v), SK_EPROCESS);
    assert_int_equal(v, -1); /* the 42 published before the crash is gone */
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->section, SK_RESULT);
    assert_int_equal(e->signal, SIGKILL);
    sk_release(&f->base);
}

static void test_error_without_error_hook(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_no_error_hook_class, SK_RUN, 1, HOW_FAIL, 8);
    f->base.config.runs = 4;
    assert_rc(sk_start(&f->base), SK_OK);
    int64_t v = -1;
    assert_rc(sk_result(&f->base, "I", &v), SK_EPROCESS);
    assert_int_equal(v, -1);
    assert_rc(sk_result(&f->base, NULL), SK_EPROCESS);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->code, 8);
    /* onfinish and result did not run. */
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_ONFINISH)), 0);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_RESULT)), 0);
    sk_release(&f->base);
}

/* A hook returning a bare value: cause "<section> returned <value>". */
static void check_bare_return(sk_section where, int value, const char *cause)
{
    faulty *f = faulty_new(&faulty_class, where, 0, HOW_BARE, value);
    f->base.config.runs = 2;
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, where == SK_ONFINISH ? SK_ONFINISH_ERROR : SK_RUN_ERROR);
    assert_int_equal(e->code, value);
    assert_string_equal(e->cause, cause);
    sk_release(&f->base);
}

static void test_bare_return_value(void **state)
{
    (void)state;
    check_bare_return(SK_RUN, 7, "run returned 7");
    check_bare_return(SK_RUN, -3, "run returned -3");
    check_bare_return(SK_ONFINISH, 1, "onfinish returned 1");
}

static void test_sk_fail_with_code_zero(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 0, HOW_FAIL_ZERO, 0);
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_int_equal(e->code, SK_EPROCESS);
    assert_string_equal(e->cause, "zero code");
    sk_release(&f->base);
    /* Outside a hook it records nothing but still returns non-zero. */
    assert_int_equal(sk_fail(NULL, 0, "x"), SK_EPROCESS);
    assert_int_equal(sk_fail(NULL, 12, "x"), 12);
}

/* ------------------------------------------------------- the error hook */

static void test_failing_error_hook(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 2, HOW_FAIL, 17);
    f->error_how = ERR_FAIL;
    assert_rc(sk_start(&f->base), SK_OK);
    assert_rc(sk_result(&f->base, NULL), SK_EPROCESS);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_ERROR_HANDLER_ERROR);
    assert_int_equal(e->section, SK_ERROR);
    assert_int_equal(e->run, 2);
    assert_int_equal(e->code, 99);
    assert_string_equal(e->message, "Error in the error hook on run 2");
    assert_string_equal(e->cause,
                        "handler broke (while handling RunError: Error in the run hook on run 2)");
    assert_true(sk_error_is(e, SK_ERROR_HANDLER_ERROR));
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_false(sk_error_is(e, SK_RUN_ERROR));
    assert_string_equal(sk_error_name(e->kind), "ErrorHandlerError");
    sk_release(&f->base);
}

static void test_failing_error_hook_after_timeout(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 0, HOW_SPIN, 0);
    f->base.config.timeouts.run = 0.05;
    f->error_how = ERR_FAIL;
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_ERROR_HANDLER_ERROR);
    assert_int_equal(e->section, SK_ERROR);
    assert_int_equal(e->run, 0);
    assert_string_equal(e->cause, "handler broke (while handling ProcessTimeoutError: Timeout in "
                                  "the run hook after 0.05s on run 0)");
    sk_release(&f->base);
}

/* After a crash the error hook runs in a fresh worker forked from the state
 * at sk_start: it sees the crash, and none of the crashed worker's calls. */
static void test_error_hook_after_crash_sees_the_crash(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 2, HOW_SIGNAL, SIGTERM);
    assert_rc(sk_start(&f->base), SK_OK);
    struct seen s;
    seen_read(f, &s);
    assert_int_equal(s.kind, SK_CRASH_ERROR);
    assert_int_equal(s.section, SK_RUN);
    assert_int_equal(s.run, 2);
    assert_int_equal(s.code, 0); /* the signal is not a user code */
    assert_int_equal(s.run_calls, 0);
    seen_free(&s);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGTERM);
    sk_release(&f->base);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A soft error on run 2, then the error hook itself times out or crashes:
 * the error hook ran once, and the reported error still names the first
 * one, as for an error hook that fails softly. */
static void check_hard_fault_in_error_hook_after_soft_error(enum error_how how)
{
    faulty *f = faulty_new(&faulty_class, SK_RUN, 2, HOW_FAIL, 17);
    f->error_how = how;
    f->shared_calls = skt_shared(SK_FULL_RUN * sizeof(int64_t));
    f->base.config.timeouts.error = 0.05;
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    char report[2048];
    sk_error_format(e, report, sizeof report);
    if (f->shared_calls[SK_ERROR] != 1)
        fail_msg("the error hook ran %ld times, want 1; error:\n%s",
                 (long)f->shared_calls[SK_ERROR], report);
    assert_int_equal(e->kind, how == ERR_SPIN ? SK_TIMEOUT_ERROR : SK_CRASH_ERROR);
    assert_int_equal(e->section, SK_ERROR);
    assert_int_equal(e->run, 2);
    if (!ends_with(e->cause, " (while handling RunError: Error in the run hook on run 2)"))
        fail_msg("the first error is lost:\n%s", report);
    assert_int_equal(e->lives_spent, 1);
    sk_release(&f->base);
}

static void test_timeout_in_error_hook_after_soft_error(void **state)
{
    (void)state;
    check_hard_fault_in_error_hook_after_soft_error(ERR_SPIN);
}

static void test_crash_in_error_hook_after_soft_error(void **state)
{
    (void)state;
    check_hard_fault_in_error_hook_after_soft_error(ERR_CRASH);
}

/* A crash in run, then a crash in the error hook (in its own worker). */
static void test_crash_in_error_hook_after_crash(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 2, HOW_SIGNAL, SIGTERM);
    f->error_how = ERR_CRASH;
    f->shared_calls = skt_shared(SK_FULL_RUN * sizeof(int64_t));
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(f->shared_calls[SK_ERROR], 1);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->section, SK_ERROR);
    assert_int_equal(e->signal, SIGSEGV);
    assert_int_equal(e->run, 2);
    assert_true(ends_with(
        e->cause, " (while handling ProcessCrashError: Crash in the run hook on run 2: signal 15 "
                  "(Terminated))"));
    assert_int_equal(e->lives_spent, 1);
    sk_release(&f->base);
}

/* sk_fail's text belongs to the call that recorded it: a later bare
 * failure in another hook does not pick it up. */
typedef struct {
    sk_process base;
    int long_cause; /* fail in run with a cause longer than sk_error.cause */
} stale;

static int stale_run(sk_process *self)
{
    stale *s = SK_CONTAINER_OF(self, stale, base);
    if (s->long_cause) {
        char text[3000];
        memset(text, 'x', sizeof text - 1);
        text[sizeof text - 1] = '\0';
        return sk_fail(self, 4, "%s", text);
    }
    sk_fail(self, 5, "recorded but not failed");
    return 0;
}

static int stale_postrun(sk_process *self)
{
    return sk_current_run(self) == 1 ? 7 : 0;
}

static int stale_error(sk_process *self)
{
    stale *s = SK_CONTAINER_OF(self, stale, base);
    if (!s->long_cause)
        return 0;
    char text[3000];
    memset(text, 'y', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    return sk_fail(self, 6, "%s", text);
}

static const sk_class stale_class = {
    .name = "stale", .run = stale_run, .postrun = stale_postrun, .error = stale_error};

static void test_sk_fail_text_does_not_leak_into_later_failures(void **state)
{
    (void)state;
    stale *s = skt_new(stale);
    assert_rc(sk_init(&s->base, &stale_class), SK_OK);
    assert_rc(sk_start(&s->base), SK_OK);
    assert_rc(sk_wait(&s->base, 10.0), SK_OK);
    const sk_error *e = sk_error_of(&s->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_POSTRUN_ERROR);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->code, 7);
    assert_string_equal(e->cause, "postrun returned 7");
    sk_release(&s->base);
}

static void test_long_causes_are_truncated(void **state)
{
    (void)state;
    stale *s = skt_new(stale);
    assert_rc(sk_init(&s->base, &stale_class), SK_OK);
    s->long_cause = 1;
    assert_rc(sk_start(&s->base), SK_OK);
    assert_rc(sk_wait(&s->base, 10.0), SK_OK);
    const sk_error *e = sk_error_of(&s->base);
    assert_non_null(e);
    /* The error hook failed with a long text too: ErrorHandlerError. */
    assert_int_equal(e->kind, SK_ERROR_HANDLER_ERROR);
    size_t n = strnlen(e->cause, sizeof e->cause);
    assert_cmp(n, <, sizeof e->cause);
    assert_cmp(n, >, 1000);
    assert_int_equal(e->cause[0], 'y');
    assert_cmp(strnlen(e->message, sizeof e->message), <, sizeof e->message);
    char buf[4096];
    assert_cmp(sk_error_format(e, buf, sizeof buf), >, 1000);
    sk_release(&s->base);
}

/* Someone kills the supervisor from outside: a ProcessError, and the
 * worker goes with it. */
static pid_t ppid_of(pid_t pid)
{
    struct skt_proc_stat st;
    return skt_proc_stat(pid, &st) ? st.ppid : -1;
}

static void test_supervisor_killed_from_outside(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 0, HOW_PAUSE, 0);
    assert_rc(sk_start(&f->base), SK_OK);
    double deadline = skt_now() + 5.0;
    pid_t worker;
    while ((worker = sk_pid(&f->base)) <= 0 && skt_now() < deadline)
        skt_sleep(0.0001);
    assert_cmp(worker, >, 0);
    pid_t supervisor = ppid_of(worker);
    assert_cmp(supervisor, >, 0);
    assert_cmp(supervisor, !=, getpid());
    assert_int_equal(ppid_of(supervisor), getpid());
    assert_int_equal(kill(supervisor, SIGKILL), 0);

    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_PROCESS_ERROR);
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_false(sk_error_is(e, SK_RUN_ERROR));
    assert_string_equal(e->cause, "the supervisor was ended by signal 9 (Killed)");
    assert_rc(sk_result(&f->base, NULL), SK_EPROCESS);
    while (!skt_pid_ended(worker) && skt_now() < deadline)
        skt_sleep(0.001);
    assert_true(skt_pid_ended(worker));
    assert_no_children();
    sk_release(&f->base);
}

/* ------------------------------------------------------ crashes, exits */

static void test_crash_by_signal_in_run(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 2, HOW_SIGNAL, SIGSEGV);
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 2);
    assert_int_equal(e->signal, SIGSEGV);
    assert_int_equal(e->exit_status, 0);
    assert_int_equal(e->signal, SIGSEGV);
    assert_int_equal(e->code, 0); /* no user code failed: the signal is in signal */
    assert_int_equal(e->reason, SK_ECRASHED);
    assert_int_equal(e->lives_spent, 1);
    assert_string_equal(e->message,
                        "Crash in the run hook on run 2: signal 11 (Segmentation fault)");
    assert_true(sk_error_is(e, SK_CRASH_ERROR));
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_false(sk_error_is(e, SK_RUN_ERROR));
    assert_string_equal(sk_error_name(e->kind), "ProcessCrashError");
    assert_int_equal(sk_current_run(&f->base), 2);
    sk_release(&f->base);
}

static void test_crash_by_abort_in_prerun(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_no_error_hook_class, SK_PRERUN, 1, HOW_ABORT, 0);
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->section, SK_PRERUN);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->signal, SIGABRT);
    assert_int_equal(e->signal, SIGABRT);
    assert_int_equal(e->code, 0);
    sk_release(&f->base);
}

static void test_exit_in_a_hook_is_a_crash(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_POSTRUN, 1, HOW_EXIT, 3);
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->section, SK_POSTRUN);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->signal, 0);
    assert_int_equal(e->exit_status, 3);
    assert_int_equal(e->exit_status, 3);
    assert_int_equal(e->code, 0);
    assert_int_equal(e->reason, SK_ECRASHED);
    assert_string_equal(e->message, "Crash in the postrun hook on run 1: exit status 3");
    sk_release(&f->base);
}

static void test_crash_in_onfinish_is_not_retried(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_no_error_hook_class, SK_ONFINISH, -1, HOW_SIGNAL, SIGKILL);
    f->base.config.runs = 2;
    f->base.config.lives = 3;
    /* Counted across workers: the crashing one takes its memory with it. */
    f->shared_calls = skt_shared(SK_FULL_RUN * sizeof(int64_t));
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(f->shared_calls[SK_ONFINISH], 1);
    assert_int_equal(f->shared_calls[SK_RUN], 2);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->section, SK_ONFINISH);
    assert_int_equal(e->signal, SIGKILL);
    assert_int_equal(e->run, 2);
    /* Not retried: the loop ran its two runs once. */
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_RUN)), 2);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_PRERUN)), 2);
    sk_release(&f->base);
}

/* Like a soft error in onfinish (test_error_in_onfinish), a hard fault
 * there is not retried: it spends only the attempt it ends. */
static void test_crash_in_onfinish_uses_no_lives(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_no_error_hook_class, SK_ONFINISH, -1, HOW_SIGNAL, SIGKILL);
    f->base.config.runs = 2;
    f->base.config.lives = 3;
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->lives_spent, 1);
    sk_release(&f->base);
}

/* ------------------------------------------------------------ timeouts */

static void test_timeout_in_run(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 2, HOW_SPIN, 0);
    f->base.config.timeouts.run = 0.05;
    double t0 = skt_now();
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    double took = skt_now() - t0;
    assert_cmp(took, >=, 0.05);
    assert_cmp(took, <, 1.0);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 2);
    assert_cmp(fabs(e->timeout - 0.05), <, 1e-9);
    assert_int_equal(e->reason, SK_ETIMEDOUT);
    assert_int_equal(e->code, 0);
    assert_string_equal(e->message, "Timeout in the run hook after 0.05s on run 2");
    assert_true(sk_error_is(e, SK_TIMEOUT_ERROR));
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_false(sk_error_is(e, SK_CRASH_ERROR));
    assert_string_equal(sk_error_name(e->kind), "ProcessTimeoutError");
    /* The error hook ran after the timeout and saw it. */
    struct seen s;
    seen_read(f, &s);
    assert_int_equal(s.kind, SK_TIMEOUT_ERROR);
    assert_int_equal(s.run, 2);
    seen_free(&s);
    sk_release(&f->base);
}

static void test_timeout_in_onfinish(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_no_error_hook_class, SK_ONFINISH, -1, HOW_PAUSE, 0);
    f->base.config.runs = 1;
    f->base.config.timeouts.onfinish = 0.05;
    f->base.config.lives = 2;
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_ONFINISH);
    assert_int_equal(e->run, 1);
    assert_cmp(fabs(e->timeout - 0.05), <, 1e-9);
    assert_int_equal(sk_timer_count(sk_timer_of(&f->base, SK_RUN)), 1); /* not retried */
    sk_release(&f->base);
}

static void test_timeout_in_result(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RESULT, -1, HOW_SPIN, 0);
    f->base.config.runs = 2;
    f->base.config.timeouts.result = 0.05;
    f->base.config.lives = 2;
    f->shared_calls = skt_shared(SK_FULL_RUN * sizeof(int64_t));
    assert_rc(sk_start(&f->base), SK_OK);
    struct seen s;
    seen_read(f, &s); /* the error hook's values, not the 42 published before */
    assert_int_equal(s.kind, SK_TIMEOUT_ERROR);
    assert_int_equal(s.section, SK_RESULT);
    seen_free(&s);
    const sk_error *e = sk_error_of(&f->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_RESULT);
    assert_int_equal(e->run, 2);
    assert_int_equal(f->shared_calls[SK_RESULT], 1);
    assert_int_equal(f->shared_calls[SK_RUN], 2);
    sk_release(&f->base);
}

/* A timeout limits each call, not the sum of them. */
static void test_timeouts_are_per_call(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, -1, HOW_NONE, 0);
    f->base.config.runs = 100;
    f->base.config.timeouts.prerun = 0.05;
    f->base.config.timeouts.run = 0.05;
    f->base.config.timeouts.postrun = 0.05;
    f->base.config.timeouts.onfinish = 0.05;
    f->base.config.timeouts.result = 0.05;
    f->shared_calls = skt_shared(SK_FULL_RUN * sizeof(int64_t));
    f->nap = 1000; /* 3 ms an iteration, 0.3 s in all */
    assert_rc(sk_start(&f->base), SK_OK);
    int64_t v = 0;
    assert_rc(sk_result(&f->base, "I", &v), SK_OK);
    assert_int_equal(v, 42);
    assert_no_error(&f->base);
    assert_int_equal(f->shared_calls[SK_RUN], 100);
    sk_release(&f->base);
}

static void test_join_in_ends_a_hook_that_never_returns(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_no_error_hook_class, SK_RUN, 0, HOW_PAUSE, 0);
    f->base.config.join_in = 0.1;
    f->base.config.lives = 3; /* fatal all the same */
    double t0 = skt_now();
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    double took = skt_now() - t0;
    assert_cmp(took, <, 1.0);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 0);
    assert_cmp(fabs(e->timeout - 0.1), <, 1e-9);
    assert_string_equal(e->message, "join_in of 0.1s exceeded in the run hook on run 0");
    sk_release(&f->base);
}

/* ------------------------------------------------------ the error API */

static const sk_error_kind all_kinds[] = {
    SK_PROCESS_ERROR, SK_PRERUN_ERROR,        SK_RUN_ERROR,     SK_POSTRUN_ERROR, SK_ONFINISH_ERROR,
    SK_RESULT_ERROR,  SK_ERROR_HANDLER_ERROR, SK_TIMEOUT_ERROR, SK_CRASH_ERROR,
};
#define KINDS (sizeof all_kinds / sizeof all_kinds[0])

static void test_error_is_hierarchy(void **state)
{
    (void)state;
    for (size_t i = 0; i < KINDS; i++) {
        sk_error e;
        memset(&e, 0, sizeof e);
        e.kind = all_kinds[i];
        assert_true(sk_error_is(&e, SK_PROCESS_ERROR));
        for (size_t j = 0; j < KINDS; j++) {
            bool want = j == i || all_kinds[j] == SK_PROCESS_ERROR;
            if (sk_error_is(&e, all_kinds[j]) != want)
                fail_msg("sk_error_is(%s, %s) should be %d", sk_error_name(all_kinds[i]),
                         sk_error_name(all_kinds[j]), want);
        }
        assert_false(sk_error_is(NULL, all_kinds[i]));
    }
}

static void test_error_names(void **state)
{
    (void)state;
    static const char *const names[] = {
        "ProcessError",      "PreRunError",         "RunError",
        "PostRunError",      "OnFinishError",       "ResultError",
        "ErrorHandlerError", "ProcessTimeoutError", "ProcessCrashError",
    };
    for (size_t i = 0; i < KINDS; i++)
        assert_string_equal(sk_error_name(all_kinds[i]), names[i]);
    assert_non_null(sk_error_name((sk_error_kind)1000));

    static const char *const sections[] = {"prerun", "run",   "postrun", "onfinish",
                                           "result", "error", "full_run"};
    for (int s = SK_PRERUN; s <= SK_FULL_RUN; s++)
        assert_string_equal(sk_section_name((sk_section)s), sections[s]);
    assert_non_null(sk_section_name((sk_section)99));
}

static void test_strerror_every_code(void **state)
{
    (void)state;
    const int codes[] = {SK_OK,      SK_EINVAL,   SK_ESTATE,    SK_ETIMEDOUT, SK_EPROCESS,
                         SK_EKILLED, SK_EFORMAT,  SK_ECLOSED,   SK_EFULL,     SK_ENOMEM,
                         SK_ESYS,    SK_ECORRUPT, SK_ENORESULT, SK_ECRASHED};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *s = sk_strerror(codes[i]);
        assert_non_null(s);
        assert_cmp(s[0], !=, '\0');
        for (size_t j = 0; j < i; j++)
            if (strcmp(s, sk_strerror(codes[j])) == 0)
                fail_msg("sk_strerror(%d) == sk_strerror(%d) == \"%s\"", codes[i], codes[j], s);
    }
    assert_non_null(sk_strerror(12345));
    assert_non_null(sk_strerror(-12345));
    assert_string_equal(sk_strerror(SK_ETIMEDOUT), "timed out");
}

static void test_error_format(void **state)
{
    (void)state;
    faulty *f = faulty_new(&faulty_class, SK_RUN, 1, HOW_FAIL, 17);
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    char buf[4096];
    int n = sk_error_format(e, buf, sizeof buf);
    assert_cmp(n, >, 0);
    assert_int_equal((size_t)n, strlen(buf));
    assert_non_null(strstr(buf, "RunError"));
    assert_non_null(strstr(buf, "Error in the run hook on run 1"));
    assert_non_null(strstr(buf, "broke in run at 1"));

    /* Too small a buffer: truncated, terminated, and the full length returned. */
    char small[16];
    memset(small, 'x', sizeof small);
    assert_int_equal(sk_error_format(e, small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, buf, sizeof small - 1);
    assert_int_equal(sk_error_format(e, NULL, 0), n);
    assert_int_equal(sk_error_format(NULL, buf, sizeof buf), SK_EINVAL);
    sk_release(&f->base);

    /* A timeout and a crash name their limit and signal. */
    sk_error t;
    memset(&t, 0, sizeof t);
    t.kind = SK_TIMEOUT_ERROR;
    t.timeout = 0.05;
    snprintf(t.message, sizeof t.message, "Timeout in run after 0.05s on run 3");
    snprintf(t.cause, sizeof t.cause, "run did not return");
    assert_cmp(sk_error_format(&t, buf, sizeof buf), >, 0);
    assert_non_null(strstr(buf, "ProcessTimeoutError"));
    assert_non_null(strstr(buf, "Timeout in run after 0.05s on run 3"));
    assert_non_null(strstr(buf, "run did not return"));
    assert_non_null(strstr(buf, "0.05"));
}

/* Each number in a report is printed where it means what it says: the
 * user's code beside the cause, the signal on its line, skproc's reason on
 * its own, the item in a pool, and the attempt that failed counted. */
static void test_error_report_says_each_number_once(void **state)
{
    (void)state;
    char buf[4096];
    faulty *f = faulty_new(&faulty_class, SK_RUN, 1, HOW_FAIL, 17);
    assert_rc(sk_start(&f->base), SK_OK);
    const sk_error *e = error_after_wait(f);
    assert_int_equal(e->code, 17);
    assert_int_equal(e->reason, SK_EPROCESS);
    assert_cmp(sk_error_format(e, buf, sizeof buf), >, 0);
    assert_non_null(strstr(buf, "  broke in run at 1 (code 17)\n"));
    assert_non_null(strstr(buf, "  reason:  SK_EPROCESS (the process failed)\n"));
    assert_non_null(strstr(buf, "  lives spent: 1\n"));
    assert_null(strstr(buf, "item:")); /* not a pool item */
    sk_release(&f->base);

    f = faulty_new(&faulty_no_error_hook_class, SK_RUN, 1, HOW_SIGNAL, SIGSEGV);
    assert_rc(sk_start(&f->base), SK_OK);
    e = error_after_wait(f);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGSEGV);
    assert_int_equal(e->code, 0);
    assert_int_equal(e->reason, SK_ECRASHED);
    assert_string_equal(sk_strerror(e->reason), "the process crashed");
    assert_cmp(sk_error_format(e, buf, sizeof buf), >, 0);
    assert_non_null(strstr(buf, "  signal:  11 (Segmentation fault)\n"));
    assert_non_null(strstr(buf, "  reason:  SK_ECRASHED (the process crashed)\n"));
    assert_null(strstr(buf, "(code")); /* no user code, and never -11 */
    assert_null(strstr(buf, "lives spent: 0"));
    sk_release(&f->base);

    sk_error item; /* as a pool's sk_pool_item_error gives it */
    memset(&item, 0, sizeof item);
    item.kind = SK_RUN_ERROR;
    item.section = SK_RUN;
    item.item = 41;
    item.code = 7;
    item.reason = SK_EPROCESS;
    item.lives_spent = 1;
    assert_cmp(sk_error_format(&item, buf, sizeof buf), >, 0);
    assert_non_null(strstr(buf, "  item:    41\n"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_error_in_prerun),
        SKT_TEST(test_error_in_run),
        SKT_TEST(test_error_in_postrun),
        SKT_TEST(test_error_in_onfinish),
        SKT_TEST(test_error_in_result_discards_its_value),
        SKT_TEST(test_crash_in_result_discards_its_value),
        SKT_TEST(test_error_without_error_hook),
        SKT_TEST(test_bare_return_value),
        SKT_TEST(test_sk_fail_with_code_zero),
        SKT_TEST(test_failing_error_hook),
        SKT_TEST(test_failing_error_hook_after_timeout),
        SKT_TEST(test_error_hook_after_crash_sees_the_crash),
        SKT_TEST(test_timeout_in_error_hook_after_soft_error),
        SKT_TEST(test_crash_in_error_hook_after_soft_error),
        SKT_TEST(test_crash_in_error_hook_after_crash),
        SKT_TEST(test_sk_fail_text_does_not_leak_into_later_failures),
        SKT_TEST(test_long_causes_are_truncated),
        SKT_TEST(test_supervisor_killed_from_outside),
        SKT_TEST(test_crash_by_signal_in_run),
        SKT_TEST(test_crash_by_abort_in_prerun),
        SKT_TEST(test_exit_in_a_hook_is_a_crash),
        SKT_TEST(test_crash_in_onfinish_is_not_retried),
        SKT_TEST(test_crash_in_onfinish_uses_no_lives),
        SKT_TEST(test_timeout_in_run),
        SKT_TEST(test_timeout_in_onfinish),
        SKT_TEST(test_timeout_in_result),
        SKT_TEST(test_timeouts_are_per_call),
        SKT_TEST(test_join_in_ends_a_hook_that_never_returns),
        SKT_TEST(test_error_is_hierarchy),
        SKT_TEST(test_error_names),
        SKT_TEST(test_strerror_every_code),
        SKT_TEST(test_error_format),
        SKT_TEST(test_error_report_says_each_number_once),
    };
    return skt_run(argc, argv, tests);
}
