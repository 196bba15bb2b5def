/* SPDX-License-Identifier: MIT */
/*
 * The crash matrix: every hard fault (a signal from a real fault, abort, a
 * stack overflow, exit, _exit, a hook that never returns) in every hook,
 * with one life and with three. Each case checks the kind, section and run
 * of the error, the signal or exit status, the lives spent, how often the
 * fault fired (loop hooks are retried, onfinish/result/error never are), and
 * what the error hook saw. Each case is its own cmocka test, generated from
 * the table, so one failure names its case and does not hide the others.
 *
 * Every case is bounded: sk_wait(p, 10.0) must return SK_OK.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <limits.h>

#define RUNS 4
#define FAULT_RUN 2 /* the run index on which loop hooks fault */
/* Long enough that a hook, once its section is entered, is sure to run
 * (and count itself) before the timeout even on a loaded machine. */
#define TIMEOUT 0.25
#define BOUND 10.0 /* no case may take longer than this */

/* exit(0) is a crash too: the hook did not return, whatever the status. */
enum fault { F_SEGV, F_ABORT, F_STACK, F_EXIT, F_UEXIT, F_EXIT0, F_SPIN, F_COUNT };

static const char *const fault_names[F_COUNT] = {
    "segv", "abort", "stack_overflow", "exit3", "_exit4", "exit0", "spin"};

/* Where the fault happens. The error hook is reached two ways: after a soft
 * failure in run (the error hook runs in the same worker) and after a crash
 * in run (the supervisor forks a worker that runs only the error hook). */
enum where {
    W_PRERUN,
    W_RUN,
    W_POSTRUN,
    W_ONFINISH,
    W_RESULT,
    W_ERROR_AFTER_SOFT,
    W_ERROR_AFTER_CRASH,
    W_COUNT
};

static const char *const where_names[W_COUNT] = {
    "prerun", "run", "postrun", "onfinish", "result", "error_after_soft", "error_after_crash"};

static const sk_section where_section[W_COUNT] = {SK_PRERUN, SK_RUN,   SK_POSTRUN, SK_ONFINISH,
                                                  SK_RESULT, SK_ERROR, SK_ERROR};

struct mcase {
    enum fault fault;
    enum where where;
    int lives;
    char name[80];
};

/* What the workers saw, in memory shared across every fork (a restarted
 * worker starts from the memory at sk_start). */
struct across {
    int faults;      /* times the fault was triggered */
    int precursors;  /* soft failures / crashes in run before an error-hook fault */
    int error_calls; /* error hook entries */
    int seen_error;  /* sk_error_of(self) was non-NULL in the error hook */
    int seen_kind, seen_section, seen_signal, seen_exit_status, seen_lives_spent;
    long seen_run;
};

typedef struct {
    sk_process base;
    const struct mcase *c;
    struct across *across;
} victim;

#define VICTIM(p) SK_CONTAINER_OF(p, victim, base)

/* ------------------------------------------------------------- faults */

/* noinline and a use of the frame after the call: neither a tail call nor
 * a loop can replace the recursion. The depth test keeps the compiler from
 * proving it infinite. */
static __attribute__((noinline)) long overflow(volatile char *up, long depth)
{
    volatile char frame[4096];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = up != NULL ? up[0] : 0;
    if (depth == LONG_MAX)
        return 0;
    return overflow(frame, depth + 1) + frame[1];
}

/* cmocka catches SIGSEGV during a test, and AddressSanitizer catches it
 * (a stack overflow too, on its alternate stack) and exits with status 1:
 * a worker inherits those handlers. Resetting to the default disposition
 * makes a real fault end the worker the way it ends a plain program, with
 * or without sanitizers, so the expectations need no ASan variant. */
static void default_segv(void)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
}

static void fire(sk_process *self)
{
    victim *v = VICTIM(self);
    v->across->faults++;
    switch (v->c->fault) {
    case F_SEGV: {
        default_segv();
        /* A write into the null page, as through a member of a NULL
         * struct pointer. Not NULL itself: the sanitized build halts on
         * UBSan's null check before the store. Both volatile: the pointer
         * so no compile-time trap replaces the store, the target so the
         * store is not dropped before _exit. */
        volatile int *volatile nowhere = (volatile int *)(uintptr_t)16;
        *nowhere = 1;
        break;
    }
    case F_ABORT:
        default_segv();
        abort();
    case F_STACK:
        default_segv();
        overflow(NULL, 0);
        break;
    case F_EXIT:
        exit(3);
    case F_UEXIT:
        _exit(4);
    case F_EXIT0:
        exit(0);
    case F_SPIN:
        skt_spin_forever();
        break;
    case F_COUNT:
        break;
    }
    _exit(98); /* a fault that did not end the worker */
}

static bool due(sk_process *self, enum where w)
{
    victim *v = VICTIM(self);
    if (v->c->where != w)
        return false;
    if (w == W_PRERUN || w == W_RUN || w == W_POSTRUN)
        return sk_current_run(self) == FAULT_RUN;
    return true;
}

static int v_prerun(sk_process *self)
{
    if (due(self, W_PRERUN))
        fire(self);
    return 0;
}

static int v_run(sk_process *self)
{
    victim *v = VICTIM(self);
    if (due(self, W_RUN))
        fire(self);
    /* An error-hook fault needs the error hook to run: fail first. */
    if (sk_current_run(self) == FAULT_RUN) {
        if (v->c->where == W_ERROR_AFTER_SOFT) {
            v->across->precursors++;
            return sk_fail(self, 7, "soft failure on run %ld", sk_current_run(self));
        }
        if (v->c->where == W_ERROR_AFTER_CRASH) {
            v->across->precursors++;
            skt_die_by(SIGTERM);
        }
    }
    return 0;
}

static int v_postrun(sk_process *self)
{
    if (due(self, W_POSTRUN))
        fire(self);
    return 0;
}

static int v_onfinish(sk_process *self)
{
    if (due(self, W_ONFINISH))
        fire(self);
    return 0;
}

static int v_result(sk_process *self)
{
    if (due(self, W_RESULT))
        fire(self);
    int value = 1;
    return sk_return(self, "i", &value);
}

static int v_error(sk_process *self)
{
    victim *v = VICTIM(self);
    struct across *a = v->across;
    a->error_calls++;
    const sk_error *e = sk_error_of(self);
    if (e != NULL) {
        a->seen_error = 1;
        a->seen_kind = e->kind;
        a->seen_section = e->section;
        a->seen_run = e->run;
        a->seen_signal = e->signal;
        a->seen_exit_status = e->exit_status;
        a->seen_lives_spent = e->lives_spent;
    }
    if (due(self, W_ERROR_AFTER_SOFT) || due(self, W_ERROR_AFTER_CRASH))
        fire(self);
    int value = 77;
    return sk_return(self, "i", &value);
}

static const sk_class victim_class = {
    .name = "victim",
    .prerun = v_prerun,
    .run = v_run,
    .postrun = v_postrun,
    .onfinish = v_onfinish,
    .result = v_result,
    .error = v_error,
};

/* ------------------------------------------------------- expectations */

static bool is_loop(enum where w)
{
    return w == W_PRERUN || w == W_RUN || w == W_POSTRUN;
}

static bool is_error_hook(enum where w)
{
    return w == W_ERROR_AFTER_SOFT || w == W_ERROR_AFTER_CRASH;
}

static int expected_signal(enum fault f)
{
    switch (f) {
    case F_SEGV:
    case F_STACK:
        return SIGSEGV;
    case F_ABORT:
        return SIGABRT;
    default:
        return 0;
    }
}

static int expected_exit_status(enum fault f)
{
    return f == F_EXIT ? 3 : f == F_UEXIT ? 4 : 0;
}

static long expected_run(enum where w)
{
    /* onfinish and result run after the loop: current_run == RUNS. The
     * error hook runs for a failure on FAULT_RUN. */
    return (w == W_ONFINISH || w == W_RESULT) ? RUNS : FAULT_RUN;
}

/* Loop hooks fault on every attempt, so every life goes. onfinish and
 * result are never retried: a fault there ends the first attempt, which is
 * the one spent. Before an error-hook fault, run failed on every attempt:
 * those are the lives spent, and the error hook's own fault adds none. */
static int expected_lives_spent(const struct mcase *c)
{
    if (is_loop(c->where) || is_error_hook(c->where))
        return c->lives;
    return 1;
}

static void run_case(void **state)
{
    const struct mcase *c = *state;
    victim *v = skt_new(victim);
    assert_rc(sk_init(&v->base, &victim_class), SK_OK);
    v->c = c;
    v->across = skt_shared(sizeof *v->across);
    v->base.config.runs = RUNS;
    v->base.config.lives = c->lives;
    /* Only the faulting section has a timeout, so nothing else can trip. */
    double *timeout[W_COUNT] = {
        &v->base.config.timeouts.prerun,  &v->base.config.timeouts.run,
        &v->base.config.timeouts.postrun, &v->base.config.timeouts.onfinish,
        &v->base.config.timeouts.result,  &v->base.config.timeouts.error,
        &v->base.config.timeouts.error,
    };
    if (c->fault == F_SPIN)
        *timeout[c->where] = TIMEOUT;

    double t0 = skt_now();
    assert_rc(sk_start(&v->base), SK_OK);
    int rc = sk_wait(&v->base, BOUND);
    double took = skt_now() - t0;
    assert_rc(rc, SK_OK);
    assert_false(sk_alive(&v->base));

    const sk_error *e = sk_error_of(&v->base);
    print_message("[ %s ] %.3fs\n", c->name, took);
    skt_print_error(e);
    print_message("  fault fired %d time(s), error hook entered %d time(s)\n", v->across->faults,
                  v->across->error_calls);
    assert_non_null(e);
    struct across *a = v->across;
    sk_section section = where_section[c->where];

    if (c->fault == F_SPIN) {
        assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
        assert_cmp(e->timeout, >, TIMEOUT - 1e-9);
        assert_cmp(e->timeout, <, TIMEOUT + 1e-9);
        assert_int_equal(e->reason, SK_ETIMEDOUT);
        assert_int_equal(e->code, 0); /* no user code failed */
    } else {
        assert_int_equal(e->kind, SK_CRASH_ERROR);
        if (c->fault == F_STACK) {
            assert_cmp(e->signal, !=, 0); /* SIGSEGV on Linux; any signal will do */
        } else {
            assert_int_equal(e->signal, expected_signal(c->fault));
        }
        assert_int_equal(e->exit_status, expected_exit_status(c->fault));
        assert_int_equal(e->reason, SK_ECRASHED);
        assert_int_equal(e->code, 0); /* the signal and status have their own fields */
    }
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
    assert_int_equal(e->section, section);
    assert_int_equal(e->run, expected_run(c->where));
    assert_int_equal(e->lives_spent, expected_lives_spent(c));

    /* The message names the section and run, as the semantics spell it. */
    char want[256];
    if (c->fault == F_SPIN)
        snprintf(want, sizeof want, "Timeout in the %s hook after %gs on run %ld",
                 sk_section_name(section), TIMEOUT, expected_run(c->where));
    else
        snprintf(want, sizeof want, "Crash in the %s hook on run %ld: ", sk_section_name(section),
                 expected_run(c->where));
    assert_non_null(strstr(e->message, want));

    /* Loop hooks are retried while lives last; the others never are. */
    assert_int_equal(a->faults, is_loop(c->where) ? c->lives : 1);
    assert_int_equal(sk_current_run(&v->base), expected_run(c->where));

    if (is_error_hook(c->where)) {
        assert_int_equal(a->precursors, c->lives);
        /* The error hook ran once, for the first error, and its fault is
         * reported with the first error in its cause. */
        assert_int_equal(a->error_calls, 1);
        assert_int_equal(a->seen_error, 1);
        if (c->where == W_ERROR_AFTER_SOFT) {
            assert_int_equal(a->seen_kind, SK_RUN_ERROR);
            assert_non_null(
                strstr(e->cause, "(while handling RunError: Error in the run hook on run 2)"));
        } else {
            assert_int_equal(a->seen_kind, SK_CRASH_ERROR);
            assert_int_equal(a->seen_signal, SIGTERM);
            assert_non_null(strstr(e->cause, "(while handling ProcessCrashError: Crash in the run "
                                             "hook on run 2: signal 15"));
        }
        assert_int_equal(a->seen_run, FAULT_RUN);
        assert_rc(sk_result(&v->base, NULL), SK_EPROCESS);
    } else {
        /* The error hook ran once in a fresh worker and saw this error. */
        assert_int_equal(a->error_calls, 1);
        assert_int_equal(a->seen_error, 1);
        assert_int_equal(a->seen_kind, e->kind);
        assert_int_equal(a->seen_section, e->section);
        assert_int_equal(a->seen_run, e->run);
        assert_int_equal(a->seen_signal, e->signal);
        assert_int_equal(a->seen_exit_status, e->exit_status);
        assert_int_equal(a->seen_lives_spent, e->lives_spent);
        /* What the error hook returned is readable. */
        int value = 0;
        assert_rc(sk_result(&v->base, "i", &value), SK_EPROCESS);
        assert_int_equal(value, 77);
    }
    assert_cmp(took, <, BOUND);
}

int main(int argc, char **argv)
{
    static struct mcase cases[F_COUNT * W_COUNT * 2];
    static struct CMUnitTest tests[F_COUNT * W_COUNT * 2];
    static const int lives[2] = {1, 3};
    size_t n = 0;
    for (int w = 0; w < W_COUNT; w++)
        for (int f = 0; f < F_COUNT; f++)
            for (int l = 0; l < 2; l++) {
                struct mcase *c = &cases[n];
                c->fault = (enum fault)f;
                c->where = (enum where)w;
                c->lives = lives[l];
                snprintf(c->name, sizeof c->name, "%s_in_%s_lives%d", fault_names[f],
                         where_names[w], lives[l]);
                tests[n] = (struct CMUnitTest){c->name, run_case, skt_setup, skt_teardown, c};
                n++;
            }
    return skt_run_tests(argc, argv, tests, n);
}
