/* SPDX-License-Identifier: MIT */
/*
 * Groups (include/skproc/group.h): starting, stopping and restarting the
 * children of a supervision tree, against raw fork floors in the same run.
 *
 * Every child is the same idle process: config.ready = SK_READY_ON_NOTIFY,
 * a prerun that calls sk_ready, a run hook that sleeps in sk_listen until
 * the process is asked to stop. A group of NCHILD (100) such children, one
 * for one, default shutdown and ready bounds.
 *
 *   group.start_ready        sk_group_start of the 100 to its return (each
 *                            started once the one before is ready), ms
 *   group.start_ready.raw    the floor: for each child in turn, fork a
 *                            supervisor that forks a worker; the worker writes
 *                            its pid (4 bytes) on a readiness pipe, the parent
 *                            reads it before it forks the next supervisor
 *   group.stop_all           sk_group_stop of those 100 (reverse order, each
 *                            ending cleanly), ms
 *   group.stop_all.raw       SIGTERM each raw supervisor in reverse order and
 *                            waitpid it; the supervisor forwards the TERM to
 *                            its worker, which exits 0, and reaps it
 *   group.*.nosup / .raw1    the same with no_supervisor = true on every
 *                            child, against a raw single fork (the parent
 *                            forks the worker itself): information
 *   group.restart_latency    in a running group of 100: SIGKILL one child's
 *                            worker (its pid from sk_group_state_read) and
 *                            time from just before the kill to the group's
 *                            SK_GROUP_CHILD_READY event for it (stamped in the
 *                            on_event callback, in the group's thread), us
 *   group.restart_latency.raw  the floor: a raw supervisor blocked in
 *                            waitpid on its worker forks a new one when it
 *                            dies, which writes its pid on the readiness pipe;
 *                            from just before the kill to the parent's read
 *   group.restart_latency.raw_tree  what a group restart does, raw: the
 *                            supervisor exits when its worker dies, the
 *                            parent waitpid()s it and forks a new supervisor
 *                            + worker, then reads the pid (the floor of the
 *                            same shape: the group replaces the whole child)
 *   group.restart_latency.vs_tree  the skproc samples again, against that
 *
 * The start/stop kinds run in turn, op by op (an op is one start of 100 and
 * its stop; the order rotates), as do the three restart kinds, so that a
 * slow moment of the machine hits all alike. Rows are medians of the ops.
 * Creating the group, sk_init and sk_group_add of its children, and
 * sk_group_release are not timed.
 */
#include "common.h"

#include <skproc.h>

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define AREA "groups"
#define NCHILD 100

/* ------------------------------------------------------------ raw */

static int ready_pipe[2]; /* every raw worker writes its pid here once ready */
static pid_t bench_pid;

/* Not pid 0 or -1: those would signal a group, or everything we may. */
static void checked_kill(pid_t pid, int sig)
{
    assert(pid > 1);
    if (pid <= 1)
        abort();
    BENCH_CHECK(kill(pid, sig) == 0, "kill");
}

static void reap(pid_t pid)
{
    assert(pid > 1);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        BENCH_CHECK(errno == EINTR, "waitpid");
}

/* A forked child ends with the process that forked it (as skproc's do). */
static void die_with(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(111);
}

/* A raw worker: ready at once, then sleeps until SIGTERM and exits 0. */
static _Noreturn void raw_worker(pid_t parent)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    die_with(parent);
    pid_t self = getpid();
    if (write(ready_pipe[1], &self, sizeof self) != (ssize_t)sizeof self)
        _exit(112);
    int sig;
    while (sigwait(&term, &sig) != 0)
        ;
    _exit(0);
}

static volatile sig_atomic_t sup_stopping;
static volatile pid_t sup_worker;

static void sup_on_term(int sig)
{
    (void)sig;
    sup_stopping = 1;
    pid_t w = sup_worker;
    if (w > 1)
        kill(w, SIGTERM);
}

/* A raw supervisor: forks the worker and blocks in waitpid on it. TERM is
 * forwarded to the worker; when the worker ends otherwise, respawn forks a
 * new one, else the supervisor exits 1. TERM is held back from the fork
 * until the worker's pid is known: a TERM coming in between (the parent
 * stops the last child as soon as its worker is ready) would otherwise
 * find no worker to forward to, and the supervisor would wait forever. */
static _Noreturn void raw_supervisor(pid_t parent, bool respawn)
{
    die_with(parent);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    struct sigaction sa = {.sa_handler = sup_on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    pid_t self = getpid();
    for (;;) {
        pid_t w = fork();
        if (w == 0)
            raw_worker(self);
        if (w < 0)
            _exit(113);
        sup_worker = w;
        sigprocmask(SIG_UNBLOCK, &term, NULL);
        int status;
        while (waitpid(w, &status, 0) < 0)
            if (errno != EINTR)
                _exit(114);
        sigprocmask(SIG_BLOCK, &term, NULL);
        sup_worker = 0;
        if (sup_stopping)
            _exit(0);
        if (!respawn)
            _exit(1);
    }
}

static pid_t read_ready(void)
{
    pid_t pid;
    bench_read_all(ready_pipe[0], &pid, sizeof pid);
    BENCH_CHECK(pid > 1, "a worker's pid");
    return pid;
}

/* One raw child: a supervisor and its worker (two), or the worker alone;
 * returns once the worker is ready. */
static void raw_start_one(bool two, bool respawn, pid_t *top, pid_t *worker)
{
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (two)
            raw_supervisor(bench_pid, respawn);
        raw_worker(bench_pid);
    }
    *top = pid;
    *worker = read_ready();
}

static void raw_start(bool two, bool respawn, pid_t *top, pid_t *worker)
{
    for (int i = 0; i < NCHILD; i++)
        raw_start_one(two, respawn, &top[i], &worker[i]);
}

static void raw_stop(const pid_t *top)
{
    for (int i = NCHILD; i-- > 0;) {
        checked_kill(top[i], SIGTERM);
        reap(top[i]);
    }
}

/* ------------------------------------------------------------ skproc */

static int idle_prerun(sk_process *self)
{
    int rc = sk_ready(self);
    return rc == SK_OK ? 0 : sk_fail(self, rc, "sk_ready: %s", sk_strerror(rc));
}

static int idle_run(sk_process *self)
{
    int64_t v;
    (void)sk_listen(self, -1, "I", &v); /* SK_ECLOSED once asked to stop */
    return 0;
}

static const sk_class idle_class = {.name = "idle", .prerun = idle_prerun, .run = idle_run};

static sk_process procs[NCHILD];

/* The on_event hand-off: the group's thread stamps each child's READY. */
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ev_cond = PTHREAD_COND_INITIALIZER;
static int64_t ready_at[NCHILD];
static int ready_restarts[NCHILD];

static void on_event(const sk_group_event *ev, void *ctx)
{
    (void)ctx;
    if (ev->kind != SK_GROUP_CHILD_READY || ev->child == NULL)
        return;
    int64_t now = bench_now_ns();
    int k = atoi(ev->child + 1);
    if (k < 0 || k >= NCHILD)
        return;
    pthread_mutex_lock(&ev_lock);
    ready_at[k] = now;
    ready_restarts[k] = ev->restarts;
    pthread_cond_broadcast(&ev_cond);
    pthread_mutex_unlock(&ev_lock);
}

/* A group of NCHILD idle children, created and filled, not started. */
static sk_group *group_make(bool no_supervisor)
{
    sk_group *g;
    /* many restarts in the restart phase: never give up */
    sk_group_config gc = {.name = "bench",
                          .strategy = SK_ONE_FOR_ONE,
                          .intensity = 100000,
                          .period = 1.0,
                          .on_event = on_event};
    BENCH_CHECK(sk_group_create(&g, &gc) == SK_OK, "sk_group_create");
    for (int i = 0; i < NCHILD; i++) {
        BENCH_CHECK(sk_init(&procs[i], &idle_class) == SK_OK, "sk_init");
        procs[i].config.ready = SK_READY_ON_NOTIFY;
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        sk_group_child c = {.name = name, .process = &procs[i], .no_supervisor = no_supervisor};
        BENCH_CHECK(sk_group_add(g, &c) == SK_OK, "sk_group_add");
    }
    return g;
}

/* ------------------------------------------------------------ start/stop */

enum kind { K_RAW2, K_SKPROC, K_RAW1, K_NOSUP, NKINDS };

static void op_start_stop(enum kind k, double *start_ms, double *stop_ms)
{
    static pid_t top[NCHILD], worker[NCHILD];
    int64_t t0, t1, t2, t3;
    if (k == K_RAW2 || k == K_RAW1) {
        t0 = bench_now_ns();
        raw_start(k == K_RAW2, false, top, worker);
        t1 = bench_now_ns();
        t2 = bench_now_ns();
        raw_stop(top);
        t3 = bench_now_ns();
    } else {
        sk_group *g = group_make(k == K_NOSUP);
        t0 = bench_now_ns();
        int rc = sk_group_start(g);
        t1 = bench_now_ns();
        if (rc != SK_OK)
            fprintf(stderr, "bench_group: sk_group_start: %s\n", sk_last_error_message());
        BENCH_CHECK(rc == SK_OK, "sk_group_start");
        t2 = bench_now_ns();
        BENCH_CHECK(sk_group_stop(g) == SK_OK, "sk_group_stop");
        t3 = bench_now_ns();
        sk_group_state st;
        BENCH_CHECK(sk_group_state_read(g, &st) == SK_OK, "sk_group_state_read");
        BENCH_CHECK(st.state == SK_GROUP_ENDED && st.total_restarts == 0, "a clean stop");
        for (size_t i = 0; i < st.nchildren; i++)
            BENCH_CHECK(!st.children[i].has_error, "a child stopped without error");
        sk_group_state_free(&st);
        sk_group_release(g);
    }
    *start_ms = (double)(t1 - t0) / 1e6;
    *stop_ms = (double)(t3 - t2) / 1e6;
}

/* ------------------------------------------------------------ restarts */

enum rkind { R_SKPROC, R_RAW, R_RAW_TREE, NRKINDS };

static pid_t r_top[NCHILD], r_worker[NCHILD];   /* raw, respawning supervisors */
static pid_t rt_top[NCHILD], rt_worker[NCHILD]; /* raw, supervisors that exit */

static double op_restart(enum rkind k, sk_group *g, int i)
{
    int64_t t0, t1;
    if (k == R_SKPROC) {
        sk_group_state st;
        BENCH_CHECK(sk_group_state_read(g, &st) == SK_OK, "sk_group_state_read");
        BENCH_CHECK(st.children[i].state == SK_CHILD_RUNNING, "a running child");
        pid_t pid = st.children[i].pid;
        int want = st.children[i].restarts + 1;
        sk_group_state_free(&st);
        t0 = bench_now_ns();
        checked_kill(pid, SIGKILL);
        pthread_mutex_lock(&ev_lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 30;
        while (ready_restarts[i] < want)
            BENCH_CHECK(pthread_cond_timedwait(&ev_cond, &ev_lock, &until) == 0,
                        "the restarted child's READY within 30 s");
        t1 = ready_at[i];
        pthread_mutex_unlock(&ev_lock);
    } else if (k == R_RAW) {
        t0 = bench_now_ns();
        checked_kill(r_worker[i], SIGKILL);
        r_worker[i] = read_ready();
        t1 = bench_now_ns();
    } else {
        t0 = bench_now_ns();
        checked_kill(rt_worker[i], SIGKILL);
        reap(rt_top[i]);
        raw_start_one(true, false, &rt_top[i], &rt_worker[i]);
        t1 = bench_now_ns();
    }
    return (double)(t1 - t0) / 1e3;
}

/* ------------------------------------------------------------ main */

static void emit(const char *key, const char *name, const char *shrt, const char *unit, double *v,
                 long n, const char *baseline)
{
    struct bench_stats s = bench_summarize(v, n);
    char extra[200];
    if (baseline != NULL)
        snprintf(extra, sizeof extra, "\"short\":\"%s\",\"baseline\":\"%s\",\"children\":%d", shrt,
                 baseline, NCHILD);
    else
        snprintf(extra, sizeof extra, "\"short\":\"%s\",\"children\":%d", shrt, NCHILD);
    bench_emit(AREA, key, name, unit, s.median, &s, extra);
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    long rounds = bench_ops(&o, 10, 3);
    long restarts = bench_ops(&o, 600, 100);
    bench_print_info("bench_group");
    bench_pid = getpid();
    BENCH_CHECK(pipe2(ready_pipe, O_CLOEXEC) == 0, "pipe2");

    double *start[NKINDS], *stop[NKINDS], *rs[NRKINDS];
    for (int k = 0; k < NKINDS; k++) {
        start[k] = malloc((size_t)rounds * sizeof(double));
        stop[k] = malloc((size_t)rounds * sizeof(double));
        BENCH_CHECK(start[k] != NULL && stop[k] != NULL, "malloc");
    }
    for (int k = 0; k < NRKINDS; k++) {
        rs[k] = malloc((size_t)restarts * sizeof(double));
        BENCH_CHECK(rs[k] != NULL, "malloc");
    }

    /* start and stop: one untimed round (not in quick mode: an op is 100
     * starts, the first one's cold costs are spread thin), then the kinds
     * in turn */
    double a, b;
    for (int k = 0; k < NKINDS && !o.quick; k++)
        op_start_stop((enum kind)k, &a, &b);
    for (long r = 0; r < rounds; r++)
        for (int j = 0; j < NKINDS; j++) {
            int k = (int)((r + j) % NKINDS);
            op_start_stop((enum kind)k, &start[k][r], &stop[k][r]);
        }

    /* restarts: three trees of NCHILD running side by side */
    sk_group *g = group_make(false);
    BENCH_CHECK(sk_group_start(g) == SK_OK, "sk_group_start");
    raw_start(true, true, r_top, r_worker);
    raw_start(true, false, rt_top, rt_worker);
    for (int i = 0; i < NRKINDS * 10; i++) /* warm up */
        op_restart((enum rkind)(i % NRKINDS), g, i % NCHILD);
    for (long r = 0; r < restarts; r++) {
        int child = (int)(r % NCHILD);
        for (int j = 0; j < NRKINDS; j++) {
            int k = (int)((r + j) % NRKINDS);
            rs[k][r] = op_restart((enum rkind)k, g, child);
        }
    }
    BENCH_CHECK(sk_group_stop(g) == SK_OK, "sk_group_stop");
    sk_group_release(g);
    raw_stop(r_top);
    raw_stop(rt_top);

    emit("group.start_ready.raw", "raw: 100 x (fork supervisor, fork worker, read its ready pipe)",
         "raw double fork", "ms", start[K_RAW2], rounds, NULL);
    emit("group.start_ready", "skproc sk_group_start of 100 children, each ready (sk_ready)",
         "skproc", "ms", start[K_SKPROC], rounds, "group.start_ready.raw");
    emit("group.start_ready.raw1", "raw: 100 x (fork worker, read its ready pipe)",
         "raw single fork", "ms", start[K_RAW1], rounds, NULL);
    emit("group.start_ready.nosup", "skproc sk_group_start of 100 children, no_supervisor",
         "skproc no_supervisor", "ms", start[K_NOSUP], rounds, "group.start_ready.raw1");
    emit("group.stop_all.raw", "raw: 100 x (SIGTERM supervisor, forwarded to worker, waitpid)",
         "raw double fork", "ms", stop[K_RAW2], rounds, NULL);
    emit("group.stop_all", "skproc sk_group_stop of 100 children (each ends cleanly)", "skproc",
         "ms", stop[K_SKPROC], rounds, "group.stop_all.raw");
    emit("group.stop_all.raw1", "raw: 100 x (SIGTERM worker, waitpid)", "raw single fork", "ms",
         stop[K_RAW1], rounds, NULL);
    emit("group.stop_all.nosup", "skproc sk_group_stop of 100 children, no_supervisor",
         "skproc no_supervisor", "ms", stop[K_NOSUP], rounds, "group.stop_all.raw1");
    emit("group.restart_latency.raw",
         "raw: SIGKILL worker -> its supervisor's waitpid forks a new one -> ready pipe read",
         "raw supervisor respawn", "us", rs[R_RAW], restarts, NULL);
    emit("group.restart_latency.raw_tree",
         "raw: SIGKILL worker -> supervisor exits -> parent waitpid, forks supervisor + worker "
         "-> ready pipe read",
         "raw tree respawn", "us", rs[R_RAW_TREE], restarts, "group.restart_latency.raw");
    emit("group.restart_latency", "skproc: SIGKILL a child's worker -> the group's READY event",
         "skproc", "us", rs[R_SKPROC], restarts, "group.restart_latency.raw");
    /* the same samples against the floor of the same shape (bench_pool.c
     * prints its map once per floor the same way) */
    emit("group.restart_latency.vs_tree",
         "skproc: SIGKILL a child's worker -> READY event (vs the raw tree respawn)",
         "skproc vs tree", "us", rs[R_SKPROC], restarts, "group.restart_latency.raw_tree");
    for (int k = 0; k < NKINDS; k++) {
        free(start[k]);
        free(stop[k]);
    }
    for (int k = 0; k < NRKINDS; k++)
        free(rs[k]);
    return 0;
}
