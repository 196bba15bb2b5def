/* SPDX-License-Identifier: MIT */
/*
 * Shutting a session down by a signal. The session runs in a process of
 * its own (forked by the test) with tasks in every mode that run until
 * they are stopped, two of them with grandchildren that ignore SIGTERM;
 * the test sends SIGTERM or SIGINT. sk_sched_run must return SK_OK within
 * the grace, every run logged terminated, the old signal handlers back,
 * and after sk_sched_release no descriptor, no child and no grandchild
 * left. A SIGTERM sent to a task's own process is that process's, not the
 * session's. A scheduler process SIGKILLed and started again on its SQLite
 * log neither loses nor repeats a run.
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
#include <signal.h>
#include <sys/wait.h>

#define MAX_PIDS 16

/* What the session's process tells the test. */
struct report {
    _Atomic int starts; /* runs started */
    _Atomic int n;      /* grandchildren */
    pid_t pids[MAX_PIDS];
    pid_t worker;     /* the "victim" task's worker */
    _Atomic int done; /* sk_sched_run returned */
    int run_rc;
    int64_t terminated; /* runs logged terminated */
    int64_t failed;
    int fds_before, fds_after;
    int children_left;
    int handler_restored;
    int victim_signal;
};

static void spawn_grandchild(struct report *rep, bool new_session)
{
    pid_t pid = skt_spawn_deaf_sleeper(new_session);
    int i = atomic_fetch_add(&rep->n, 1);
    if (pid > 0 && i < MAX_PIDS)
        rep->pids[i] = pid;
}

/* A process task: grandchildren, then deaf to everything but a kill. */
static int deaf_tree_fn(sk_task_run *run, void *arg)
{
    (void)run;
    spawn_grandchild(arg, false);
    spawn_grandchild(arg, true);
    signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
    return 0;
}

/* A thread or process task that returns when asked. */
static int polite_fn(sk_task_run *run, void *arg)
{
    (void)arg;
    while (!sk_task_stopping(run))
        skt_sleep(0.001);
    return 0;
}

/* A process task that waits with SIGTERM as the session's handler left
 * it (inherited): the test SIGTERMs it. */
static int victim_fn(sk_task_run *run, void *arg)
{
    (void)run;
    struct report *rep = arg;
    rep->worker = getpid();
    for (;;)
        pause();
    return 0;
}

static int count_starts(const sk_run_record *r, void *arg)
{
    struct report *rep = arg;
    if (r->outcome == SK_RUN_RUNNING && r->error == NULL)
        atomic_fetch_add(&rep->starts, 1);
    if (strcmp(r->task, "victim") == 0 && r->outcome == SK_RUN_FAILED && r->error != NULL)
        rep->victim_signal = r->error->signal;
    return 0;
}

static int count_outcome(const sk_run_record *r, void *arg)
{
    struct report *rep = arg;
    if (r->outcome == SK_RUN_TERMINATED)
        rep->terminated++;
    if (r->outcome == SK_RUN_FAILED)
        rep->failed++;
    return 0;
}

/* The session's process: runs until a signal, reports, exits. */
static _Noreturn void session_main(struct report *rep, bool with_victim)
{
    rep->fds_before = skt_fd_count();
    sk_sched *s;
    sk_sched_config cfg = {.shutdown_grace = 0.5, .on_run = count_starts, .on_run_arg = rep};
    if (sk_sched_create(&s, &cfg) != SK_OK)
        _exit(10);
    sk_sched_task tasks[] = {
        {.name = "tree", .start = "every 1 hour", .fn = deaf_tree_fn, .arg = rep},
        {.name = "polite", .start = "every 1 hour", .fn = polite_fn},
        {.name = "thread", .start = "every 1 hour", .fn = polite_fn, .mode = SK_TASK_THREAD},
        {.name = "victim", .start = "every 1 hour", .fn = victim_fn, .arg = rep},
    };
    for (size_t i = 0; i < (with_victim ? 4u : 3u); i++)
        if (sk_sched_add(s, &tasks[i], NULL, 0) != SK_OK)
            _exit(11);
    rep->run_rc = sk_sched_run(s);
    struct sigaction now;
    sigaction(SIGTERM, NULL, &now);
    rep->handler_restored = now.sa_handler == SIG_DFL;
    sk_run_log_runs(sk_sched_log(s), NULL, SK_COND_NEVER, count_outcome, rep);
    sk_sched_release(s);
    rep->fds_after = skt_fd_count();
    rep->children_left = !skt_no_children();
    atomic_store(&rep->done, 1);
    _exit(0);
}

static pid_t start_session(struct report *rep, bool with_victim)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        session_main(rep, with_victim);
    assert_true(pid > 1);
    return pid;
}

/* The exit status of pid, waited for at most timeout seconds; -1 when it
 * did not end (it is killed then). */
static int wait_exit(pid_t pid, double timeout)
{
    double deadline = skt_now() + timeout;
    int status;
    while (skt_now() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        skt_sleep(0.001);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void shutdown_by(int sig)
{
    skt_tz("UTC");
    struct report *rep = skt_shared(sizeof *rep);
    pid_t pid = start_session(rep, false);
    skt_wait_until(atomic_load(&rep->starts) == 3 && atomic_load(&rep->n) == 2,
                   10 * skt_slowdown());
    skt_sleep(0.05); /* the thread and the processes are in their loops */
    double t0 = skt_now();
    assert_int_equal(kill(pid, sig), 0);
    assert_int_equal(wait_exit(pid, 10 * skt_slowdown()), 0);
    assert_dbl_lt(skt_now() - t0, 3.0 * skt_slowdown()); /* grace 0.5 s + a kill's second */
    assert_true(atomic_load(&rep->done));
    assert_int_equal(rep->run_rc, SK_OK);
    assert_int_equal(rep->terminated, 3);
    assert_true(rep->handler_restored);
    assert_int_equal(rep->fds_after, rep->fds_before);
    assert_false(rep->children_left);
    for (int i = 0; i < 2; i++) {
        assert_true(rep->pids[i] > 1);
        skt_wait_until(skt_pid_ended(rep->pids[i]), 5 * skt_slowdown());
    }
    assert_no_children();
}

static void test_sigterm_shutdown(void **state)
{
    (void)state;
    shutdown_by(SIGTERM);
}

static void test_sigint_shutdown(void **state)
{
    (void)state;
    shutdown_by(SIGINT);
}

/* SIGTERM to a task's process: that process dies of it (logged failed
 * with the signal); the session goes on until its own SIGTERM. */
static void test_sigterm_to_a_task_is_its_own(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct report *rep = skt_shared(sizeof *rep);
    pid_t pid = start_session(rep, true);
    skt_wait_until(atomic_load(&rep->starts) == 4 && rep->worker > 1, 10 * skt_slowdown());
    pid_t worker = rep->worker;
    assert_true(worker > 1 && worker != pid);
    assert_int_equal(kill(worker, SIGTERM), 0);
    skt_wait_until(rep->victim_signal == SIGTERM, 5 * skt_slowdown());
    skt_sleep(0.1);
    assert_false(atomic_load(&rep->done)); /* the session still runs */
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid, 10 * skt_slowdown()), 0);
    assert_int_equal(rep->run_rc, SK_OK);
    assert_int_equal(rep->failed, 1);
    assert_int_equal(rep->terminated, 3);
    assert_int_equal(rep->fds_after, rep->fds_before);
    assert_false(rep->children_left);
    assert_no_children();
}

/* ----------------------------------------------- SIGKILL and restart */

/* The fake clock and what the scheduler process did, shared with it. */
struct restart_page {
    _Atomic int64_t now;
    _Atomic int cycles; /* of the running scheduler process */
    _Atomic int stop;   /* the test asks it to end */
    _Atomic int daily_runs, every_runs, long_runs;
    _Atomic pid_t long_worker;
};

static int64_t page_clock(void *arg)
{
    return atomic_load(&((struct restart_page *)arg)->now);
}

static int daily_fn(sk_task_run *run, void *arg)
{
    (void)run;
    atomic_fetch_add(&((struct restart_page *)arg)->daily_runs, 1);
    return 0;
}

static int every_fn(sk_task_run *run, void *arg)
{
    (void)run;
    atomic_fetch_add(&((struct restart_page *)arg)->every_runs, 1);
    return 0;
}

static int long_fn(sk_task_run *run, void *arg)
{
    struct restart_page *page = arg;
    atomic_store(&page->long_worker, getpid());
    atomic_fetch_add(&page->long_runs, 1);
    while (!sk_task_stopping(run))
        skt_sleep(0.001);
    return 0;
}

/* A scheduler process on the SQLite log at path, stepping on the page's
 * clock until the test says stop (or kills it). */
static _Noreturn void scheduler_main(struct restart_page *page, const char *path)
{
    sk_sched *s;
    sk_sched_config cfg = {.log_path = path,
                           .clock = page_clock,
                           .clock_arg = page,
                           .no_signals = true,
                           .shutdown_grace = 0.5};
    if (sk_sched_create(&s, &cfg) != SK_OK)
        _exit(10);
    sk_sched_task tasks[] = {
        {.name = "daily",
         .start = "daily after 08:00",
         .fn = daily_fn,
         .arg = page,
         .mode = SK_TASK_THREAD},
        {.name = "every", .start = "every 10 seconds", .fn = every_fn, .arg = page},
        {.name = "long", .start = "daily after 08:00", .fn = long_fn, .arg = page},
    };
    for (size_t i = 0; i < 3; i++)
        if (sk_sched_add(s, &tasks[i], NULL, 0) != SK_OK)
            _exit(11);
    while (!atomic_load(&page->stop)) {
        if (sk_sched_step(s) != SK_OK)
            _exit(12);
        atomic_fetch_add(&page->cycles, 1);
        struct pollfd pfd = {.fd = sk_sched_fd(s), .events = POLLIN};
        poll(&pfd, 1, 10);
    }
    sk_sched_release(s);
    _exit(0);
}

static pid_t start_scheduler(struct restart_page *page, const char *path)
{
    atomic_store(&page->cycles, 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        scheduler_main(page, path);
    assert_true(pid > 1);
    return pid;
}

/* Waits until the scheduler process made n more cycles. */
static void wait_cycles(struct restart_page *page, int n)
{
    int from = atomic_load(&page->cycles);
    skt_wait_until(atomic_load(&page->cycles) >= from + n, 10 * skt_slowdown());
}

struct log_count {
    const char *task;
    int64_t runs, by_outcome[4];
    bool recovered; /* a failed run with the recovery's error (SK_ECLOSED) */
};

static int log_count_fn(const sk_run_record *r, void *arg)
{
    struct log_count *c = arg;
    c->runs++;
    if ((unsigned)r->outcome < 4)
        c->by_outcome[r->outcome]++;
    if (r->outcome == SK_RUN_FAILED && r->error != NULL && r->error->reason == SK_ECLOSED)
        c->recovered = true;
    return 0;
}

static struct log_count log_count(const char *path, const char *task)
{
    sk_run_log *log;
    assert_int_equal(sk_run_log_open(path, &log), SK_OK);
    struct log_count c = {.task = task};
    assert_true(sk_run_log_runs(log, task, SK_COND_NEVER, log_count_fn, &c) >= 0);
    sk_run_log_close(log);
    return c;
}

/* A scheduler process SIGKILLed mid-run and started again on the same
 * SQLite log: the daily task does not run twice, the run the kill cut is
 * logged failed (not lost), every run made is logged exactly once, and the
 * killed process's task process is gone. */
static void test_sigkill_restart_sqlite(void **state)
{
    (void)state;
    skt_tz("UTC");
    char path[512];
    snprintf(path, sizeof path, "%s/runs.sqlite", skt_use_tmpdir("skt-sched-restart"));
    struct restart_page *page = skt_shared(sizeof *page);
    int64_t day1 = skt_at("2024-03-04 09:00 +0000");
    atomic_store(&page->now, day1);

    pid_t a = start_scheduler(page, path);
    skt_wait_until(atomic_load(&page->daily_runs) == 1 && atomic_load(&page->every_runs) == 1 &&
                       atomic_load(&page->long_runs) == 1,
                   10 * skt_slowdown());
    atomic_fetch_add(&page->now, 10 * SKT_NS);
    skt_wait_until(atomic_load(&page->every_runs) == 2, 10 * skt_slowdown());
    skt_wait_until(log_count(path, "every").by_outcome[SK_RUN_SUCCEEDED] == 2, 10 * skt_slowdown());
    pid_t long_worker = atomic_load(&page->long_worker);
    assert_true(long_worker > 1);
    assert_int_equal(kill(a, SIGKILL), 0);
    assert_int_equal(wait_exit(a, 10), 128 + SIGKILL);
    skt_wait_until(skt_pid_ended(long_worker), 5 * skt_slowdown()); /* parent death */

    pid_t b = start_scheduler(page, path);
    wait_cycles(page, 5);
    assert_int_equal(atomic_load(&page->daily_runs), 1); /* not twice */
    assert_int_equal(atomic_load(&page->long_runs), 1);
    assert_int_equal(atomic_load(&page->every_runs), 2);
    atomic_fetch_add(&page->now, 10 * SKT_NS);
    skt_wait_until(atomic_load(&page->every_runs) == 3, 10 * skt_slowdown());
    atomic_store(&page->now, skt_at("2024-03-05 08:00 +0000") + 5 * SKT_NS); /* the next day */
    skt_wait_until(atomic_load(&page->daily_runs) == 2 && atomic_load(&page->long_runs) == 2,
                   10 * skt_slowdown());
    wait_cycles(page, 3);
    atomic_store(&page->stop, 1);
    assert_int_equal(wait_exit(b, 10 * skt_slowdown()), 0);
    assert_no_children();

    struct log_count daily = log_count(path, "daily");
    assert_int_equal(daily.runs, 2);
    assert_int_equal(daily.by_outcome[SK_RUN_SUCCEEDED], 2);
    struct log_count lng = log_count(path, "long");
    assert_int_equal(lng.runs, 2);
    assert_int_equal(lng.by_outcome[SK_RUN_FAILED], 1); /* cut by the kill, recovered */
    assert_true(lng.recovered);
    assert_int_equal(lng.by_outcome[SK_RUN_TERMINATED], 1); /* ended by the release */
    struct log_count every = log_count(path, "every");
    assert_int_equal(every.runs, atomic_load(&page->every_runs));
    assert_int_equal(every.by_outcome[SK_RUN_RUNNING], 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_sigterm_shutdown),
        SKT_TEST(test_sigint_shutdown),
        SKT_TEST(test_sigterm_to_a_task_is_its_own),
        SKT_TEST(test_sigkill_restart_sqlite),
    };
    return skt_run(argc, argv, tests);
}
