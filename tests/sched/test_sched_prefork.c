/* SPDX-License-Identifier: MIT */
/*
 * Preforks (sk_sched_config.prefork): a process task's run is forked ahead
 * of a start due at a known time and released then. On the real clock:
 * later runs' processes exist before their start (their age when the code
 * begins is about the lead), the first and every run with prefork < 0 are
 * forked at the start; a Return parameter that changed while a prefork
 * waited makes the start fork afresh with the new value; a prefork killed
 * from outside costs nothing but a fresh fork; removing the task, or
 * releasing the session, ends a waiting prefork and leaves no process and
 * no descriptor; a start skipped by the overlap policy keeps things whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "cond_support.h"
#include "sched_support.h"

#include <poll.h>
#include <sys/syscall.h>

#define MAX_RUNS 16

/* What each run of a process task saw, written from its process. */
struct seen {
    _Atomic int n;
    double age[MAX_RUNS];    /* seconds from its process's fork to its code */
    int64_t param[MAX_RUNS]; /* its parameter "b", or -1 */
};

/* Seconds since this process was forked, from /proc (10 ms steps). */
static double process_age(void)
{
    double uptime = -1;
    FILE *f = fopen("/proc/uptime", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf", &uptime) != 1)
            uptime = -1;
        fclose(f);
    }
    struct skt_proc_stat st;
    if (uptime < 0 || !skt_proc_stat(getpid(), &st))
        return -1;
    return uptime - (double)st.starttime / (double)sysconf(_SC_CLK_TCK);
}

static int record_fn(sk_task_run *run, void *arg)
{
    struct seen *seen = arg;
    int i = atomic_load(&seen->n);
    if (i >= MAX_RUNS)
        return 0;
    seen->age[i] = process_age();
    int64_t b = -1;
    if (sk_task_param(run, "b", "I", &b) != SK_OK)
        b = -1;
    seen->param[i] = b;
    atomic_store(&seen->n, i + 1);
    return 0;
}

static int64_t b_count;

static int counter_fn(sk_task_run *run, void *arg)
{
    (void)arg;
    int64_t v = ++b_count;
    return sk_task_return(run, "I", &v);
}

/* Ended runs of task so far, as on_run reported them. */
static int ended(const struct skt_sched *k, const char *task)
{
    int n = 0;
    for (int i = 0; i < k->nevents; i++)
        n += strcmp(k->events[i].task, task) == 0 && k->events[i].outcome != SK_RUN_RUNNING;
    return n;
}

/* Steps the session (sleeping on sk_sched_fd between cycles) until task
 * has `runs` ended runs; fails after bound seconds. */
static void step_until_ended(struct skt_sched *k, const char *task, int runs, double bound)
{
    double deadline = skt_now() + bound * skt_slowdown();
    while (ended(k, task) < runs) {
        assert_true(skt_now() < deadline);
        skt_step(k);
        struct pollfd pfd = {.fd = sk_sched_fd(k->s), .events = POLLIN};
        poll(&pfd, 1, 20);
    }
}

/* Steps the session for `seconds`. */
static void step_for(struct skt_sched *k, double seconds)
{
    double until = skt_now() + seconds;
    while (skt_now() < until) {
        skt_step(k);
        struct pollfd pfd = {.fd = sk_sched_fd(k->s), .events = POLLIN};
        poll(&pfd, 1, 10);
    }
}

/* The pid of one child of this thread, or 0 (from /proc). */
static pid_t a_child(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* Steps until a child exists while no run goes: a prefork waiting. */
static pid_t step_until_prefork(struct skt_sched *k, const char *task, int runs_ended)
{
    double deadline = skt_now() + 5 * skt_slowdown();
    pid_t pid;
    while ((pid = a_child()) <= 1) {
        assert_true(skt_now() < deadline);
        skt_step(k);
        struct pollfd pfd = {.fd = sk_sched_fd(k->s), .events = POLLIN};
        poll(&pfd, 1, 10);
    }
    assert_int_equal(ended(k, task), runs_ended); /* no run started meanwhile */
    return pid;
}

static struct skt_sched *session(double prefork)
{
    sk_sched_config cfg = {.no_signals = true, .prefork = prefork};
    return skt_sched_new(&cfg, true);
}

static sk_sched_task every_second(const char *name, struct seen *seen)
{
    return (sk_sched_task){.name = name,
                           .start = "every 1 seconds",
                           .mode = SK_TASK_PROCESS,
                           .fn = record_fn,
                           .arg = seen};
}

/* Runs 2 and 3 were forked about the lead before their start. */
static void test_prefork_forks_ahead(void **state)
{
    (void)state;
    struct seen *seen = skt_shared(sizeof *seen);
    struct skt_sched *k = session(0.4);
    sk_sched_task t = every_second("ahead", seen);
    skt_add(k, &t);
    step_until_ended(k, "ahead", 3, 10);
    assert_int_equal(skt_runs(k, "ahead", SK_RUN_SUCCEEDED), 3);
    assert_cmp(seen->age[0], <, 0.2); /* the first start had no known time before it */
    for (int i = 1; i < 3; i++) {
        assert_cmp(seen->age[i], >, 0.2);
        assert_cmp(seen->age[i], <, 2.0);
    }
    skt_sched_end(k);
}

/* prefork < 0: every start forks. */
static void test_prefork_off(void **state)
{
    (void)state;
    struct seen *seen = skt_shared(sizeof *seen);
    struct skt_sched *k = session(-1);
    sk_sched_task t = every_second("cold", seen);
    skt_add(k, &t);
    step_until_ended(k, "cold", 3, 10);
    for (int i = 0; i < 3; i++)
        assert_cmp(seen->age[i], <, 0.2);
    skt_sched_end(k);
}

/* A's prefork is made 0.8 s ahead, B returns a new value in between: A
 * forks afresh and sees B's latest value, every time. */
static void test_prefork_stale_return(void **state)
{
    (void)state;
    b_count = 0;
    struct seen *seen = skt_shared(sizeof *seen);
    struct skt_sched *k = session(0.8);
    sk_param p = {.name = "b", .kind = SK_PARAM_RETURN, .task = "b"};
    sk_sched_task a = every_second("a", seen);
    a.params = &p;
    a.param_count = 1;
    skt_add(k, &a);
    step_until_ended(k, "a", 1, 5);
    /* B half a second after A (the session stepped meanwhile, so that A's
     * next run is forked ahead before B runs), on the session's thread */
    step_for(k, 0.5);
    sk_sched_task b = {
        .name = "b", .start = "every 1 seconds", .mode = SK_TASK_MAIN, .fn = counter_fn};
    skt_add(k, &b);
    step_until_ended(k, "a", 4, 10);
    assert_int_equal(skt_runs(k, "a", SK_RUN_SUCCEEDED), 4);
    assert_int_equal(seen->param[0], -1); /* B had not run */
    for (int i = 1; i < 4; i++) {
        /* B's runs that ended before A's run i started */
        int64_t want = 0;
        int a_starts = 0;
        for (int e = 0; e < k->nevents; e++) {
            const struct skt_run_event *ev = &k->events[e];
            if (strcmp(ev->task, "a") == 0 && ev->outcome == SK_RUN_RUNNING && a_starts++ == i)
                break;
            want += strcmp(ev->task, "b") == 0 && ev->outcome == SK_RUN_SUCCEEDED;
        }
        assert_cmp(want, >, 0);
        assert_int_equal(seen->param[i], want);
        assert_cmp(seen->age[i], <, 0.2); /* forked at the start: the prefork was stale */
    }
    skt_sched_end(k);
}

/* A prefork killed from outside while it waits: the start forks afresh. */
static void test_prefork_killed(void **state)
{
    (void)state;
    struct seen *seen = skt_shared(sizeof *seen);
    struct skt_sched *k = session(0.8);
    sk_sched_task t = every_second("victim", seen);
    skt_add(k, &t);
    step_until_ended(k, "victim", 1, 5);
    pid_t pid = step_until_prefork(k, "victim", 1);
    assert_true(pid > 1);
    assert_int_equal(kill(-pid, SIGKILL), 0); /* the prefork's group: supervisor and worker */
    step_until_ended(k, "victim", 2, 5);
    assert_int_equal(skt_runs(k, "victim", SK_RUN_SUCCEEDED), 2);
    assert_cmp(seen->age[1], <, 0.2);
    skt_sched_end(k);
}

/* Removing a task ends its prefork at once; so does releasing the session. */
static void test_prefork_removed_and_released(void **state)
{
    (void)state;
    struct seen *seen = skt_shared(sizeof *seen);
    struct skt_sched *k = session(0.8);
    sk_sched_task t = every_second("gone", seen);
    skt_add(k, &t);
    step_until_ended(k, "gone", 1, 5);
    step_until_prefork(k, "gone", 1);
    assert_rc(sk_sched_remove(k->s, "gone"), SK_OK);
    assert_no_children();

    sk_sched_task u = every_second("kept", seen);
    skt_add(k, &u);
    step_until_ended(k, "kept", 1, 5);
    step_until_prefork(k, "kept", 1);
    skt_sched_end(k); /* no child, no descriptor left */
}

/* A run longer than the period: the due start is skipped (SK_OVERLAP_SKIP)
 * while its prefork waits; the runs go on, and nothing is left. */
static int slow_fn(sk_task_run *run, void *arg)
{
    record_fn(run, arg);
    skt_sleep(1.3);
    return 0;
}

static void test_prefork_skipped_start(void **state)
{
    (void)state;
    struct seen *seen = skt_shared(sizeof *seen);
    struct skt_sched *k = session(0.5);
    sk_sched_task t = every_second("slow", seen);
    t.fn = slow_fn;
    skt_add(k, &t);
    step_until_ended(k, "slow", 2, 10);
    assert_int_equal(skt_runs(k, "slow", SK_RUN_SUCCEEDED), 2);
    skt_sched_end(k);
}

/* What each run of the first task saw when its code began: the time, and
 * how many children the session's thread had (its own supervisor, and
 * any prefork made since its start). */
struct crowd {
    _Atomic int n;
    int64_t began[MAX_RUNS]; /* CLOCK_REALTIME, ns */
    int children[MAX_RUNS];
};

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Children of the session's thread, seen from a task's worker (the child
 * of its supervisor, the child of the session). */
static int session_children(void)
{
    struct skt_proc_stat sup;
    if (!skt_proc_stat(getppid(), &sup))
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)sup.ppid, (int)sup.ppid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int n = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1)
        n++;
    fclose(f);
    return n;
}

static int crowd_fn(sk_task_run *run, void *arg)
{
    (void)run;
    struct crowd *c = arg;
    int64_t began = realtime_ns();
    int i = atomic_load(&c->n);
    if (i < MAX_RUNS) {
        c->began[i] = began;
        c->children[i] = session_children();
        atomic_store(&c->n, i + 1);
    }
    return 0;
}

/* The start of the n-th run (0 based) of task, as on_run reported it. */
static int64_t run_start_of(const struct skt_sched *k, const char *task, int n)
{
    int seen = 0;
    for (int i = 0; i < k->nevents; i++) {
        if (strcmp(k->events[i].task, task) != 0 || k->events[i].outcome != SK_RUN_RUNNING)
            continue;
        if (seen++ == n)
            return k->events[i].start;
    }
    fail_msg("task %s has no run %d", task, n);
    return 0;
}

/* Two process tasks: the second starts `offset` seconds after the lead
 * past the first, so its prefork falls due right around each start of the
 * first. When the first's code began within a few milliseconds of its
 * start, no prefork had been forked before it: a prefork waits until a
 * run just started has had the CPUs for a while (WARM_SETTLE), and until
 * after a start due while it would fork. */
static void prefork_near_a_start(double offset)
{
    struct crowd *c = skt_shared(sizeof *c);
    struct seen *seen = skt_shared(sizeof *seen);
    struct skt_sched *k = session(0.2);
    sk_sched_task first = every_second("first", NULL);
    first.fn = crowd_fn;
    first.arg = c;
    skt_add(k, &first);
    step_until_ended(k, "first", 1, 10);
    int64_t second_at = run_start_of(k, "first", 0) + SKT_SEC(0.2 + offset);
    struct timespec at = {.tv_sec = second_at / 1000000000, .tv_nsec = second_at % 1000000000};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
        ;
    sk_sched_task second = every_second("second", seen);
    skt_add(k, &second);
    step_until_ended(k, "first", 4, 10);
    int checked = 0;
    for (int i = 1; i < 4; i++) {
        double late_ms = (double)(c->began[i] - run_start_of(k, "first", i)) / 1e6;
        print_message("    run %d: code %.3f ms after its start, %d children then\n", i + 1,
                      late_ms, c->children[i]);
        if (late_ms < 2.5) { /* inside the prefork's wait (3 ms) */
            assert_int_equal(c->children[i], 1);
            checked++;
        }
    }
    print_message("    %d of 3 runs began soon enough to say\n", checked);
    assert_int_ge(skt_runs(k, "second", SK_RUN_SUCCEEDED), 2);
    skt_sched_end(k);
}

/* The second's prefork falls due just after the first's start. */
static void test_prefork_clear_of_a_start(void **state)
{
    (void)state;
    prefork_near_a_start(0);
}

/* ... and just before it: the first is due while the prefork would fork. */
static void test_prefork_clear_of_a_start_due(void **state)
{
    (void)state;
    prefork_near_a_start(-0.0005);
}

int main(int argc, char **argv)
{
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_prefork_forks_ahead),          SKT_TEST(test_prefork_off),
        SKT_TEST(test_prefork_stale_return),         SKT_TEST(test_prefork_killed),
        SKT_TEST(test_prefork_removed_and_released), SKT_TEST(test_prefork_skipped_start),
        SKT_TEST(test_prefork_clear_of_a_start),     SKT_TEST(test_prefork_clear_of_a_start_due),
    };
    return skt_run(argc, argv, tests);
}
