/* SPDX-License-Identifier: MIT */
/*
 * Process tasks: a function task's own process and a process-class task's
 * handle. End conditions and timeouts end a run and its whole tree (a
 * grandchild, one in a session of its own); every way a process can fail
 * is logged with its typed error while the session goes on; lives; a
 * process-class task's hooks find their run and its parameters; a hostile
 * process that scribbles its status page neither crashes nor hangs the
 * session. Conditions see a fake clock; timeouts are real time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "cond_support.h"
#include "sched_support.h"

#include "core/runtime.h"

#include <signal.h>

#define MAX_PIDS 16

/* What the task processes tell the test. */
struct shared_log {
    _Atomic int n;
    pid_t pids[MAX_PIDS]; /* grandchildren */
    _Atomic int attempts;
    _Atomic int saw_stop; /* a run saw sk_task_stopping turn true */
};

static struct shared_log *new_log(void)
{
    return skt_shared(sizeof(struct shared_log));
}

static void log_pid(struct shared_log *log, pid_t pid)
{
    int i = atomic_fetch_add(&log->n, 1);
    if (i < MAX_PIDS)
        log->pids[i] = pid;
}

/* A grandchild that waits forever; in a session of its own when asked. */
static void spawn_grandchild(struct shared_log *log, bool new_session)
{
    pid_t pid = skt_spawn_deaf_sleeper(new_session);
    if (pid > 0)
        log_pid(log, pid);
}

static void assert_grandchildren_gone(struct shared_log *log)
{
    int n = atomic_load(&log->n);
    assert_true(n > 0);
    for (int i = 0; i < n && i < MAX_PIDS; i++) {
        pid_t pid = log->pids[i];
        assert_true(pid > 1);
        skt_wait_until(skt_pid_ended(pid), 5 * skt_slowdown());
    }
}

/* Starts two grandchildren, then ignores every stop request. */
static int tree_fn(sk_task_run *run, void *arg)
{
    (void)run;
    struct shared_log *log = arg;
    spawn_grandchild(log, false);
    spawn_grandchild(log, true);
    signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
    return 0;
}

/* Starts a grandchild, then returns once asked to stop. */
static int polite_fn(sk_task_run *run, void *arg)
{
    struct shared_log *log = arg;
    spawn_grandchild(log, false);
    while (!sk_task_stopping(run))
        skt_sleep(0.001);
    atomic_store(&log->saw_stop, 1);
    return 0;
}

static bool flag_fn(void *arg)
{
    return atomic_load((_Atomic int *)arg) != 0;
}

/* An end condition that becomes true ends the run: asked, then killed
 * after kill_after with its whole tree (a run that listens returns at
 * once); logged terminated with an error that names the end condition. */
static void test_end_condition_ends_tree(void **state)
{
    (void)state;
    skt_tz("UTC");
    for (int polite = 0; polite < 2; polite++) {
        struct skt_sched *k = skt_sched_new(NULL, false);
        struct shared_log *log = new_log();
        _Atomic int flag = 0;
        assert_int_equal(sk_sched_condition(k->s, "stop_now", flag_fn, &flag), SK_OK);
        sk_sched_task t = {.name = "tree",
                           .fn = polite ? polite_fn : tree_fn,
                           .arg = log,
                           .end = "stop_now",
                           .kill_after = 0.2};
        skt_add(k, &t);
        assert_int_equal(sk_sched_run_task(k->s, "tree"), SK_OK);
        skt_step(k);
        skt_wait_until(atomic_load(&log->n) == (polite ? 1 : 2), 5 * skt_slowdown());
        skt_step(k);
        assert_int_equal(sk_sched_join(k->s, 0.1), SK_ETIMEDOUT); /* still going */
        atomic_store(&flag, 1);
        skt_clock_add(k, 2); /* user predicates are looked at every second */
        double t0 = skt_now();
        skt_join(k);
        assert_dbl_lt(skt_now() - t0, 3.0 * skt_slowdown());
        const struct skt_run_event *e = skt_last_end(k, "tree");
        assert_non_null(e);
        assert_int_equal(e->outcome, SK_RUN_TERMINATED);
        assert_non_null(strstr(e->error.message, "end condition"));
        assert_int_equal(atomic_load(&log->saw_stop), polite);
        assert_grandchildren_gone(log);
        skt_sched_end(k);
    }
}

/* A function task's timeout is its process's run hook timeout: the
 * supervisor ends it (and its tree) on time with the core's timeout
 * error; the run is logged terminated. */
static void test_function_timeout_ends_tree(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    struct shared_log *log = new_log();
    sk_sched_task t = {.name = "slow", .fn = tree_fn, .arg = log, .timeout = 0.3};
    skt_add(k, &t);
    double t0 = skt_now();
    assert_int_equal(sk_sched_run_task(k->s, "slow"), SK_OK);
    skt_join(k);
    double took = skt_now() - t0;
    assert_dbl_gt(took, 0.25);
    assert_dbl_lt(took, 2.0 * skt_slowdown());
    const struct skt_run_event *e = skt_last_end(k, "slow");
    assert_int_equal(e->outcome, SK_RUN_TERMINATED);
    assert_int_equal(e->error.kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->error.section, SK_RUN);
    assert_grandchildren_gone(log);
    skt_sched_end(k);
}

/* ----------------------------------------------- process-class tasks */

typedef struct {
    sk_process base;
    struct shared_log *log;
    int crashes;      /* crash on the first N attempts (lives) */
    bool block;       /* spawn a tree, then wait forever ignoring stops */
    int64_t returned; /* what the result hook returns */
} job;

static int job_prerun(sk_process *self)
{
    job *j = SK_CONTAINER_OF(self, job, base);
    int attempt = atomic_fetch_add(&j->log->attempts, 1);
    if (attempt < j->crashes)
        skt_die_by(SIGSEGV);
    return 0;
}

/* The run's parameter "n" decides the value returned. */
static int job_run(sk_process *self)
{
    job *j = SK_CONTAINER_OF(self, job, base);
    if (j->block) {
        spawn_grandchild(j->log, false);
        spawn_grandchild(j->log, true);
        signal(SIGTERM, SIG_IGN);
        for (;;)
            pause();
    }
    sk_task_run *run = sk_task_run_of(self);
    int64_t n = -1;
    if (run == NULL || sk_task_param(run, "n", "I", &n) != SK_OK)
        return sk_fail(self, 7, "no run or no parameter n");
    j->returned = n * 2;
    sk_stop(self);
    return 0;
}

static int job_result(sk_process *self)
{
    job *j = SK_CONTAINER_OF(self, job, base);
    return sk_return(self, "I", &j->returned);
}

static const sk_class job_class = {
    .name = "job", .prerun = job_prerun, .run = job_run, .result = job_result};

static job *new_job(struct shared_log *log)
{
    job *j = skt_new(job);
    assert_int_equal(sk_init(&j->base, &job_class), SK_OK);
    j->log = log;
    return j;
}

/* A process-class task runs its own class each run (rearmed between
 * runs), its hooks find their run and parameters, and sk_return's value
 * is the run's. */
static void test_process_class_params(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    struct shared_log *log = new_log();
    job *j = new_job(log);
    assert_null(sk_task_run_of(&j->base));
    sk_param p = {.name = "n", .kind = SK_PARAM_SESSION};
    sk_sched_task t = {.name = "job",
                       .start = "every 10 seconds",
                       .process = &j->base,
                       .params = &p,
                       .param_count = 1};
    skt_add(k, &t);
    for (int64_t n = 1; n <= 3; n++) {
        assert_int_equal(sk_sched_param(k->s, "n", "I", &n), SK_OK);
        skt_step(k);
        skt_join(k);
        assert_int_equal(skt_last_value(k, "job"), 2 * n);
        skt_clock_add(k, 10);
    }
    assert_int_equal(skt_runs(k, "job", SK_RUN_SUCCEEDED), 3);
    assert_null(sk_task_run_of(&j->base)); /* the run ended */
    /* a process class the session refuses: parallel runs of one handle */
    sk_sched_task par = {
        .name = "par", .process = &j->base, .overlap = SK_OVERLAP_PARALLEL, .max_parallel = 2};
    assert_int_equal(sk_sched_add(k->s, &par, NULL, 0), SK_EINVAL);
    sk_sched_task thread = {.name = "thr", .process = &j->base, .mode = SK_TASK_THREAD};
    assert_int_equal(sk_sched_add(k->s, &thread, NULL, 0), SK_EINVAL);
    sk_process *handles[] = {&j->base};
    skt_sched_end_with(k, handles, 1);
}

/* lives: two crashes then a success is a success; crashes on every
 * attempt fail the run with the crash and every life spent. */
static void test_process_class_lives(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    struct shared_log *log = new_log();
    job *j = new_job(log);
    j->crashes = 2;
    j->base.config.lives = 3;
    int64_t n = 5;
    assert_int_equal(sk_sched_param(k->s, "n", "I", &n), SK_OK);
    sk_param p = {.name = "n", .kind = SK_PARAM_SESSION};
    sk_sched_task t = {.name = "job", .process = &j->base, .params = &p, .param_count = 1};
    skt_add(k, &t);
    assert_int_equal(sk_sched_run_task(k->s, "job"), SK_OK);
    skt_join(k);
    assert_int_equal(skt_runs(k, "job", SK_RUN_SUCCEEDED), 1);
    assert_int_equal(skt_last_value(k, "job"), 10);
    atomic_store(&log->attempts, 0);
    j->crashes = 100;
    skt_clock_add(k, 1);
    assert_int_equal(sk_sched_run_task(k->s, "job"), SK_OK);
    skt_join(k);
    const struct skt_run_event *e = skt_last_end(k, "job");
    assert_int_equal(e->outcome, SK_RUN_FAILED);
    assert_int_equal(e->error.kind, SK_CRASH_ERROR);
    assert_int_equal(e->error.signal, SIGSEGV);
    assert_int_equal(e->error.lives_spent, 3);
    sk_process *handles[] = {&j->base};
    skt_sched_end_with(k, handles, 1);
}

/* A process-class task's whole-run timeout is the session's: stopped,
 * killed after kill_after, tree and all; logged terminated (timeout). */
static void test_process_class_timeout_ends_tree(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    struct shared_log *log = new_log();
    job *j = new_job(log);
    j->block = true;
    sk_sched_task t = {.name = "stuck", .process = &j->base, .timeout = 0.3, .kill_after = 0.2};
    skt_add(k, &t);
    double t0 = skt_now();
    assert_int_equal(sk_sched_run_task(k->s, "stuck"), SK_OK);
    skt_join(k);
    double took = skt_now() - t0;
    assert_dbl_gt(took, 0.45);
    assert_dbl_lt(took, 3.0 * skt_slowdown());
    const struct skt_run_event *e = skt_last_end(k, "stuck");
    assert_int_equal(e->outcome, SK_RUN_TERMINATED);
    assert_int_equal(e->error.kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->error.reason, SK_ETIMEDOUT);
    assert_grandchildren_gone(log);
    sk_process *handles[] = {&j->base};
    skt_sched_end_with(k, handles, 1);
}

/* ------------------------------------------------------------- crashes */

enum misdeed { BY_SIGNAL, BY_EXIT, BY_ABORT, BY_RETURN, BY_KILL_SUPERVISOR };

static int misbehave_fn(sk_task_run *run, void *arg)
{
    (void)run;
    switch (*(enum misdeed *)arg) {
    case BY_SIGNAL:
        skt_die_by(SIGSEGV);
        break;
    case BY_EXIT:
        _exit(3);
    case BY_ABORT:
        skt_die_by(SIGABRT);
        break;
    case BY_RETURN:
        return 9;
    case BY_KILL_SUPERVISOR:
        kill(getppid(), SIGKILL); /* the supervisor: the session sees its process end */
        for (;;)
            pause();
    }
    return 0;
}

static int return_value_fn(sk_task_run *run, void *arg)
{
    return sk_task_return(run, "I", (int64_t *)arg);
}

/* Each way a task's process can fail is logged with its typed error, and
 * the session goes on running its other tasks. */
static void test_crashes_logged_typed(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    static enum misdeed how[] = {BY_SIGNAL, BY_EXIT, BY_ABORT, BY_RETURN, BY_KILL_SUPERVISOR};
    const char *names[] = {"signal", "exit", "abort", "return", "supervisor"};
    for (size_t i = 0; i < 5; i++) {
        sk_sched_task t = {.name = names[i], .fn = misbehave_fn, .arg = &how[i]};
        skt_add(k, &t);
    }
    int64_t v = 11;
    sk_sched_task good = {
        .name = "good", .start = "every 1 second", .fn = return_value_fn, .arg = &v};
    skt_add(k, &good);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(sk_sched_run_task(k->s, names[i]), SK_OK);
    skt_join(k);
    const struct skt_run_event *e = skt_last_end(k, "signal");
    assert_int_equal(e->outcome, SK_RUN_FAILED);
    assert_int_equal(e->error.kind, SK_CRASH_ERROR);
    assert_int_equal(e->error.signal, SIGSEGV);
    e = skt_last_end(k, "exit");
    assert_int_equal(e->error.kind, SK_CRASH_ERROR);
    assert_int_equal(e->error.exit_status, 3);
    e = skt_last_end(k, "abort");
    assert_int_equal(e->error.signal, SIGABRT);
    e = skt_last_end(k, "return");
    assert_int_equal(e->error.kind, SK_RUN_ERROR);
    assert_int_equal(e->error.code, 9);
    e = skt_last_end(k, "supervisor");
    assert_int_equal(e->outcome, SK_RUN_FAILED);
    assert_true(e->has_error);
    /* the session went on */
    for (int i = 0; i < 3; i++) {
        skt_clock_add(k, 1);
        skt_step(k);
        skt_join(k);
    }
    assert_int_equal(skt_runs(k, "good", SK_RUN_SUCCEEDED), 4);
    assert_int_equal(skt_last_value(k, "good"), 11);
    skt_sched_end(k);
}

/* ------------------------------------------------------------- hostile */

enum hostility { SCRIBBLE_THEN_EXIT, SCRIBBLE_THEN_CRASH, SCRIBBLE_THEN_BLOCK, FORGE_RESULT };

typedef struct {
    sk_process base;
    enum hostility how;
    uint64_t seed;
} hostile;

static int hostile_run(sk_process *self)
{
    hostile *h = SK_CONTAINER_OF(self, hostile, base);
    struct sk_shared *sh = self->rt->sh;
    if (h->how == FORGE_RESULT) { /* a result length past what the memfd holds */
        sh->has_result = 1;
        sh->result_len = UINT64_MAX / 2;
        sk_stop(self);
        return 0;
    }
    skt_scribble(sh, sizeof *sh, h->seed);
    if (h->how == SCRIBBLE_THEN_CRASH)
        skt_die_by(SIGSEGV);
    if (h->how == SCRIBBLE_THEN_BLOCK) {
        signal(SIGTERM, SIG_IGN);
        for (;;)
            pause();
    }
    _exit(0);
}

static const sk_class hostile_class = {.name = "hostile", .run = hostile_run};

/* Whatever a task's process writes over its status page, the session
 * neither crashes nor hangs: each run is logged failed or terminated, and
 * the session goes on. */
static void test_hostile_status_page(void **state)
{
    (void)state;
    skt_tz("UTC");
    struct skt_sched *k = skt_sched_new(NULL, false);
    const char *names[] = {"exit", "crash", "block", "forge"};
    sk_process *handles[4];
    for (int i = 0; i < 4; i++) {
        hostile *h = skt_new(hostile);
        handles[i] = &h->base;
        assert_int_equal(sk_init(&h->base, &hostile_class), SK_OK);
        h->how = (enum hostility)i;
        h->seed = 1234 + (uint64_t)i;
        sk_sched_task t = {
            .name = names[i], .process = &h->base, .timeout = 0.3, .kill_after = 0.2};
        skt_add(k, &t);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++)
            assert_int_equal(sk_sched_run_task(k->s, names[i]), SK_OK);
        skt_join(k);
        skt_clock_add(k, 1);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(skt_runs(k, names[i], SK_RUN_RUNNING), 3);
        assert_int_equal(skt_runs(k, names[i], SK_RUN_SUCCEEDED), 0);
        const struct skt_run_event *e = skt_last_end(k, names[i]);
        assert_true(e->has_error);
        /* a scribbled page can make its supervisor end it first (kill_requested) */
        assert_true(e->outcome == SK_RUN_FAILED || e->outcome == SK_RUN_TERMINATED);
        assert_true((unsigned)e->error.kind <= SK_CRASH_ERROR);
        assert_true(strnlen(e->error.message, sizeof e->error.message) < sizeof e->error.message);
    }
    skt_sched_end_with(k, handles, 4);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_end_condition_ends_tree),
        SKT_TEST(test_function_timeout_ends_tree),
        SKT_TEST(test_process_class_params),
        SKT_TEST(test_process_class_lives),
        SKT_TEST(test_process_class_timeout_ends_tree),
        SKT_TEST(test_crashes_logged_typed),
        SKT_TEST(test_hostile_status_page),
    };
    return skt_run(argc, argv, tests);
}
