/* SPDX-License-Identifier: MIT */
/*
 * Timeouts: a hook that never returns is ended by the supervisor whatever it
 * does (spins with every signal blocked, blocks in read, sleeps), in every
 * section, and the error reaches the parent soon after the deadline. A
 * timeout that is not exceeded changes nothing. join_in as a hard limit on
 * a hook that hangs, and as a soft end of a loop of short runs.
 *
 * Lateness is printed: how long after the deadline sk_wait returned.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "support.h"

#define BOUND 10.0 /* sk_wait never waits longer than this in a test */

enum hang { HANG_NONE, HANG_SPIN_BLOCKED, HANG_READ, HANG_SLEEP, HANG_NAP_5MS, HANG_NAP_1MS };

/* What the workers did, visible from the parent. */
struct shared {
    double entered; /* skt_now() when the hanging hook was entered */
    int hook_calls[SK_FULL_RUN];
    int read_fd; /* HANG_READ: the end nobody writes to */
};

typedef struct {
    sk_process base;
    sk_section where; /* the hook that hangs */
    enum hang hang;
    long hang_run; /* hang only on this run index; -1: every run */
    struct shared *sh;
} sleeper;

#define SLEEPER(p) SK_CONTAINER_OF(p, sleeper, base)

static void do_hang(sleeper *s)
{
    switch (s->hang) {
    case HANG_NONE:
        break;
    case HANG_SPIN_BLOCKED: {
        /* Nothing but SIGKILL can end it now. */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        skt_spin_forever();
        break;
    }
    case HANG_READ: {
        char c;
        ssize_t n = read(s->sh->read_fd, &c, 1);
        (void)n;
        _exit(97); /* read returned: the test is broken */
    }
    case HANG_SLEEP:
        sleep(100);
        _exit(96);
    case HANG_NAP_5MS:
        skt_sleep(0.005);
        break;
    case HANG_NAP_1MS:
        skt_sleep(0.001);
        break;
    }
}

static int hook(sk_process *self, sk_section section)
{
    sleeper *s = SLEEPER(self);
    s->sh->hook_calls[section]++;
    if (section == s->where && (s->hang_run < 0 || sk_current_run(self) == s->hang_run)) {
        s->sh->entered = skt_now();
        do_hang(s);
    }
    return 0;
}

static int s_prerun(sk_process *self)
{
    return hook(self, SK_PRERUN);
}

static int s_run(sk_process *self)
{
    sleeper *s = SLEEPER(self);
    /* The error hook can only be reached through a failure. */
    if (s->where == SK_ERROR) {
        s->sh->hook_calls[SK_RUN]++;
        return sk_fail(self, 5, "fail so that the error hook runs");
    }
    return hook(self, SK_RUN);
}

static int s_postrun(sk_process *self)
{
    return hook(self, SK_POSTRUN);
}

static int s_onfinish(sk_process *self)
{
    return hook(self, SK_ONFINISH);
}

static int s_result(sk_process *self)
{
    int rc = hook(self, SK_RESULT);
    int64_t runs = sk_current_run(self);
    return rc ? rc : sk_return(self, "I", &runs);
}

static int s_error(sk_process *self)
{
    return hook(self, SK_ERROR);
}

static const sk_class sleeper_class = {
    .name = "sleeper",
    .prerun = s_prerun,
    .run = s_run,
    .postrun = s_postrun,
    .onfinish = s_onfinish,
    .result = s_result,
    .error = s_error,
};

static double *timeout_of(sk_config *c, sk_section s)
{
    switch (s) {
    case SK_PRERUN:
        return &c->timeouts.prerun;
    case SK_RUN:
        return &c->timeouts.run;
    case SK_POSTRUN:
        return &c->timeouts.postrun;
    case SK_ONFINISH:
        return &c->timeouts.onfinish;
    case SK_RESULT:
        return &c->timeouts.result;
    default:
        return &c->timeouts.error;
    }
}

static sleeper *sleeper_new(sk_section where, enum hang hang, double timeout)
{
    sleeper *s = skt_new(sleeper);
    assert_rc(sk_init(&s->base, &sleeper_class), SK_OK);
    s->where = where;
    s->hang = hang;
    s->hang_run = -1;
    s->sh = skt_shared(sizeof *s->sh);
    s->sh->read_fd = -1;
    if (timeout > 0)
        *timeout_of(&s->base.config, where) = timeout;
    return s;
}

/* How late sk_wait may return after a hook's deadline (hook entry + limit):
 * the supervisor has to notice, kill and report, which on a saturated
 * machine waits for a CPU. Generous, and scaled under sanitizers. */
#define LATE_BOUND (1.0 * skt_slowdown())

/* Starts s, waits (bounded) and asserts a timeout in section after limit
 * seconds, reporting a failure at the caller's line. Returns the lateness:
 * seconds from the deadline until sk_wait returned. */
#define expect_timeout(s, section, limit, run)                                                     \
    expect_timeout_at((s), (section), (limit), (run), __FILE__, __LINE__)

static double expect_timeout_at(sleeper *s, sk_section section, double limit, long run,
                                const char *file, int line)
{
    double t0 = skt_now();
    skt_assert_rc(sk_start(&s->base), SK_OK, "sk_start", file, line);
    skt_assert_rc(sk_wait(&s->base, BOUND), SK_OK, "sk_wait", file, line);
    double t1 = skt_now();
    skt_print_error_of(&s->base);
    const sk_error *e = sk_error_of(&s->base);
    _assert_true(cast_ptr_to_largest_integral_type(e), "sk_error_of(&s->base)", file, line);
    _assert_int_equal(e->kind, SK_TIMEOUT_ERROR, file, line);
    _assert_int_equal(e->section, section, file, line);
    _assert_int_equal(e->run, run, file, line);
    skt_assert_near(e->timeout, limit, 1e-9, "e->timeout", "limit", file, line);
    _assert_int_equal(e->reason, SK_ETIMEDOUT, file, line);
    _assert_int_equal(e->code, 0, file, line);
    char want[128];
    snprintf(want, sizeof want, "Timeout in the %s hook after %gs on run %ld",
             sk_section_name(section), limit, run);
    _assert_string_equal(e->message, want, file, line);
    skt_assert_cmp(s->sh->entered, ">", 0, "the hook's entry time", "0", file, line);
    double lateness = t1 - (s->sh->entered + limit);
    print_message("    %s: from sk_start %.1f ms, lateness after the deadline %.2f ms\n",
                  sk_section_name(section), (t1 - t0) * 1e3, lateness * 1e3);
    /* The supervisor never ends a hook before its deadline, and reports
     * soon after it. */
    skt_assert_cmp(lateness, ">=", 0, "lateness", "0", file, line);
    skt_assert_cmp(lateness, "<", LATE_BOUND, "lateness", "LATE_BOUND", file, line);
    return lateness;
}

/* ------------------------------------------------------------- tests */

/* The hook blocks every signal and spins: only SIGKILL from outside ends
 * it. Measured over several trials to show the lateness. */
static void test_spin_with_all_signals_blocked(void **state)
{
    (void)state;
    enum { TRIALS = 10 };
    double worst = 0, sum = 0;
    for (int i = 0; i < TRIALS; i++) {
        sleeper *s = sleeper_new(SK_RUN, HANG_SPIN_BLOCKED, 0.05);
        double late = expect_timeout(s, SK_RUN, 0.05, 0);
        assert_int_equal(s->sh->hook_calls[SK_RUN], 1);
        /* The hard fault ended the loop: no onfinish, no result; the error
         * hook ran in a fresh worker. */
        assert_int_equal(s->sh->hook_calls[SK_ONFINISH], 0);
        assert_int_equal(s->sh->hook_calls[SK_RESULT], 0);
        assert_int_equal(s->sh->hook_calls[SK_ERROR], 1);
        assert_rc(sk_result(&s->base, NULL), SK_EPROCESS);
        sum += late;
        if (late > worst)
            worst = late;
        sk_release(&s->base);
    }
    print_message("    lateness over %d trials: mean %.2f ms, worst %.2f ms\n", TRIALS,
                  sum / TRIALS * 1e3, worst * 1e3);
}

static void test_blocked_read(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    sleeper *s = sleeper_new(SK_RUN, HANG_READ, 0.05);
    s->sh->read_fd = fds[0];
    /* The write end stays open in the parent (and the worker): read blocks
     * rather than seeing end of file. */
    expect_timeout(s, SK_RUN, 0.05, 0);
    close(fds[0]);
    close(fds[1]);
}

static void test_sleep(void **state)
{
    (void)state;
    sleeper *s = sleeper_new(SK_RUN, HANG_SLEEP, 0.05);
    expect_timeout(s, SK_RUN, 0.05, 0);
}

/* On a later run, the run index is the one the hook was on. */
static void test_timeout_on_run_3(void **state)
{
    (void)state;
    sleeper *s = sleeper_new(SK_RUN, HANG_SLEEP, 0.05);
    s->hang_run = 3;
    expect_timeout(s, SK_RUN, 0.05, 3);
    assert_int_equal(sk_current_run(&s->base), 3);
}

static void check_section(sk_section section)
{
    sleeper *s = sleeper_new(section, HANG_SLEEP, 0.05);
    s->base.config.runs = 2;
    long run = section == SK_ONFINISH || section == SK_RESULT ? 2 : 0;
    expect_timeout(s, section, 0.05, run);
}

static void test_timeout_in_prerun(void **state)
{
    (void)state;
    check_section(SK_PRERUN);
}

static void test_timeout_in_postrun(void **state)
{
    (void)state;
    check_section(SK_POSTRUN);
}

static void test_timeout_in_onfinish(void **state)
{
    (void)state;
    check_section(SK_ONFINISH);
}

static void test_timeout_in_result(void **state)
{
    (void)state;
    check_section(SK_RESULT);
}

/* The error hook hangs after a soft failure in run. */
static void test_timeout_in_error(void **state)
{
    (void)state;
    check_section(SK_ERROR);
}

/* A timeout bounds one call, not the sum: 20 runs of 5 ms under a 1 s
 * limit, and 40 runs of 5 ms under 0.1 s (200 ms in all). */
static void test_timeout_not_exceeded(void **state)
{
    (void)state;
    struct {
        long runs;
        double limit;
    } cases[] = {{20, 1.0}, {40, 0.1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sleeper *s = sleeper_new(SK_RUN, HANG_NAP_5MS, cases[i].limit);
        s->base.config.runs = cases[i].runs;
        assert_rc(sk_start(&s->base), SK_OK);
        assert_rc(sk_wait(&s->base, BOUND), SK_OK);
        assert_no_error(&s->base);
        int64_t runs = 0;
        assert_rc(sk_result(&s->base, "I", &runs), SK_OK);
        assert_int_equal(runs, cases[i].runs);
        assert_int_equal(sk_current_run(&s->base), cases[i].runs);
        assert_int_equal(s->sh->hook_calls[SK_RUN], cases[i].runs);
    }
}

/* join_in as a hard limit: a run that never returns is ended at 2 x join_in
 * after sk_start, with its own error, whatever lives are left. */
static void test_join_in_hard_limit(void **state)
{
    (void)state;
    sleeper *s = sleeper_new(SK_RUN, HANG_SLEEP, 0);
    s->base.config.join_in = 0.1;
    s->base.config.lives = 3;
    double t0 = skt_now();
    assert_rc(sk_start(&s->base), SK_OK);
    assert_rc(sk_wait(&s->base, BOUND), SK_OK);
    double took = skt_now() - t0;
    skt_print_error_of(&s->base);
    print_message("    join_in 0.1 s with a hung run: ended after %.1f ms (hard limit 200 ms)\n",
                  took * 1e3);
    const sk_error *e = sk_error_of(&s->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 0);
    assert_dbl_near(e->timeout, 0.1, 1e-9);
    assert_non_null(strstr(e->message, "join_in"));
    assert_string_equal(e->message, "join_in of 0.1s exceeded in the run hook on run 0");
    /* Fatal: no restart although lives were left. */
    assert_int_equal(s->sh->hook_calls[SK_RUN], 1);
    assert_cmp(took, >=, 0.2 - 0.001);
    assert_cmp(took, <, 0.2 + 1.8 * skt_slowdown());
}

/* join_in with short runs: the loop ends normally, with success. */
static void test_join_in_short_runs(void **state)
{
    (void)state;
    sleeper *s = sleeper_new(SK_RUN, HANG_NAP_1MS, 0);
    s->base.config.join_in = 0.1;
    double t0 = skt_now();
    assert_rc(sk_start(&s->base), SK_OK);
    assert_rc(sk_wait(&s->base, BOUND), SK_OK);
    double took = skt_now() - t0;
    print_message("    join_in 0.1 s with 1 ms runs: %ld runs, ended after %.1f ms\n",
                  sk_current_run(&s->base), took * 1e3);
    assert_no_error(&s->base);
    int64_t runs = -1;
    assert_rc(sk_result(&s->base, "I", &runs), SK_OK);
    assert_cmp(runs, >, 0);
    assert_int_equal(runs, sk_current_run(&s->base));
    assert_int_equal(s->sh->hook_calls[SK_ONFINISH], 1);
    assert_cmp(took, >=, 0.1 - 0.001);
    assert_cmp(took, <, 0.1 + 1.9 * skt_slowdown());
}

/* The supervisor lowers its own timer slack to wake at a deadline; its
 * workers keep the parent's, also the one started after a crash. */
typedef struct {
    sk_process base;
    int64_t slack;
} slack_probe;

static int *slack_crashed; /* MAP_SHARED: the first worker crashed */

static int slack_run(sk_process *self)
{
    slack_probe *p = SK_CONTAINER_OF(self, slack_probe, base);
    p->slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (__atomic_exchange_n(slack_crashed, 1, __ATOMIC_SEQ_CST) == 0)
        raise(SIGKILL); /* the second worker answers */
    return 0;
}

static int slack_result(sk_process *self)
{
    return sk_return(self, "I", &SK_CONTAINER_OF(self, slack_probe, base)->slack);
}

static const sk_class slack_class = {.name = "slack", .run = slack_run, .result = slack_result};

static void test_worker_keeps_timer_slack(void **state)
{
    (void)state;
    int before = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    assert_int_equal(prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0), 0);
    slack_crashed = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(slack_crashed != MAP_FAILED);
    slack_probe p = {.slack = 0};
    assert_rc(sk_init(&p.base, &slack_class), SK_OK);
    p.base.config.runs = 1;
    p.base.config.lives = 2;
    p.base.config.timeouts.run = 5.0;
    assert_rc(sk_start(&p.base), SK_OK);
    int64_t slack = 0;
    assert_rc(sk_result(&p.base, "I", &slack), SK_OK);
    assert_int_equal(slack, 123456);
    assert_int_equal(*slack_crashed, 1);
    sk_release(&p.base);
    munmap(slack_crashed, 4096);
    prctl(PR_SET_TIMERSLACK, before > 0 ? before : 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_spin_with_all_signals_blocked),
        SKT_TEST(test_blocked_read),
        SKT_TEST(test_sleep),
        SKT_TEST(test_timeout_on_run_3),
        SKT_TEST(test_timeout_in_prerun),
        SKT_TEST(test_timeout_in_postrun),
        SKT_TEST(test_timeout_in_onfinish),
        SKT_TEST(test_timeout_in_result),
        SKT_TEST(test_timeout_in_error),
        SKT_TEST(test_timeout_not_exceeded),
        SKT_TEST(test_join_in_hard_limit),
        SKT_TEST(test_join_in_short_runs),
        SKT_TEST(test_worker_keeps_timer_slack),
    };
    return skt_run(argc, argv, tests);
}
