/* SPDX-License-Identifier: MIT */
/*
 * Scheduling (include/skproc/sched.h, docs/scheduling.md): how late a
 * time-triggered task starts, and what the session costs while it decides
 * and while it waits, against raw floors measured in the same run.
 *
 * Lateness: from the instant a task was due to the instant its code began,
 * both CLOCK_REALTIME, in us.
 *   sched.late.main          a task run in the session's thread
 *   sched.late.thread        ... in a thread
 *   sched.late.process       ... in an skproc process
 *     N_LATE tasks "every 1 seconds" of one mode, their first runs made
 *     a spacing apart (sk_sched_add, then sk_sched_step, one task at a time),
 *     then sk_sched_run: each task is due exactly 1 s after its last run
 *     started (the start sk_sched_config.on_run reports), so one task is due
 *     every spacing: 10 ms, 25 ms for processes (so that a start does not
 *     overlap the end of the run before; the floors' do not either). The task's code writes
 * CLOCK_REALTIME into a page mapped MAP_SHARED before the session was made (process tasks run in a
 * fork); the lateness of run k is that time minus (start of run k-1 + 1 s). sched.late.raw_main the
 * floors: a timerfd (CLOCK_REALTIME, sched.late.raw_thread    TFD_TIMER_ABSTIME) armed for a due
 * time a spacing sched.late.raw_fork      ahead, read() returns, then: the time is taken (main); a
 * pthread_create'd thread takes it (thread, joined); a fork()ed child takes it and _exit()s (fork,
 * waitpid()ed). The same due instants, a spacing apart. sched.late.raw_fork2     the same with a
 * double fork (a middle process forks the child that takes the time): the shape of an skproc
 * process task, whose supervisor forks the worker sched.late.sk_start      the same due instants,
 * then sk_start of an sched.late.sk_start_plain  skproc process (runs = 1) whose run hook takes the
 * time: supervised (config.supervise, as a process task is) and not; what starting the process
 * costs before the scheduler adds anything
 *   (.p99: the 99th percentile of the same samples)
 *   sched.late.<mode>.wake   where skproc's lateness goes: from the due
 *   sched.late.<mode>.launch instant to the start of the run (the clock
 *                            reading of the cycle that starts it, as on_run
 *                            reports it), and from there to the code's start
 *
 * The session's own cost, 10,000 tasks (N_MANY) whose conditions are false
 * for hours ("daily between", cron, "time of day ... & every", "after task"
 * of a task that never runs), in the session's thread:
 *   sched.cycle.skproc       CPU (CLOCK_PROCESS_CPUTIME_ID) per
 *                            sk_sched_step, on a fake clock one second
 *                            later at each cycle, 10 of the tasks
 *                            ("every 10 seconds", doing nothing) due now
 *                            and then, us
 *   sched.cycle.naive        the same cycles done the naive way: every
 *                            condition sk_cond_eval'ed at every cycle (what
 *                            a scheduler without sk_cond_next_change does)
 *   sched.idle.skproc        CPU (getrusage RUSAGE_SELF) per wall second of
 *                            sk_sched_run on the real clock with nothing due
 *                            (the first cycle, untimed, done before), ms/s
 *   sched.idle.floor         the floor of waiting: epoll_wait on a timerfd
 *                            for as long, ms/s
 *   sched.idle.wakeups       the session thread's voluntary context switches
 *                            per wall second of that run (its wake-ups)
 *
 *   sched.late.raw_prefork   the floor of a fork made ahead: a child forked
 *                            a spacing before the due instant, blocked in
 *                            read() on a pipe; the timerfd wake writes a byte,
 *                            the child takes the time
 *   sched.late.process.vs_prefork  the process task's median again, against
 *                            it: the same design done by hand
 *   sched.late.process_cold  a process task with prefork off (< 0): its
 *                            supervisor and worker forked at the start;
 *                            against sk_start alone: what the session adds
 *
 * 300 samples of each floor (processes: 120; quick 60 and 40), and 5 s
 * (quick 1 s) of sk_sched_run per mode, a sample per spacing. The lateness kinds run in turn:
 * raw main, skproc main, raw thread, ...
 * TZ is UTC, so that the fake clock's conditions are the same everywhere.
 */
#include "common.h"

#include <skproc.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#define AREA "scheduling"
#define MS INT64_C(1000000)
#define N_LATE 100  /* at most: tasks "every 1 seconds", 1 s / spacing of them */
#define MAX_RUNS 64 /* runs per task kept */
#define N_MANY 10000
#define N_DUE 10 /* of N_MANY: "every 10 seconds" */

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * BENCH_NS_PER_SEC + ts.tv_nsec;
}

static double cpu_ns(clockid_t id)
{
    struct timespec ts;
    BENCH_CHECK(clock_gettime(id, &ts) == 0, "clock_gettime");
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double rusage_s(int who, long *nvcsw)
{
    struct rusage ru;
    BENCH_CHECK(getrusage(who, &ru) == 0, "getrusage");
    if (nvcsw != NULL)
        *nvcsw = ru.ru_nvcsw;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Where the code of a task or a raw floor writes when it began: mapped
 * MAP_SHARED before any fork, so forked children write here too. */
struct begins {
    _Atomic int runs[N_LATE];
    _Atomic int64_t at[N_LATE][MAX_RUNS];
    _Atomic int64_t raw; /* the raw floors' one slot */
};
static struct begins *bg;

/* ---------------------------------------------------------- raw floors */

enum late_kind {
    LATE_MAIN,
    LATE_THREAD,
    LATE_PROCESS,
    LATE_FORK2,  /* raw only */
    LATE_PREFORK /* raw only */
};

/* One due instant every 10 ms; every 25 ms for processes, whose start and
 * exit take several ms on a small machine: so that a start does not
 * overlap the previous run's end, as the floors' do not. */
static int64_t spacing_ns(enum late_kind kind)
{
    return kind == LATE_MAIN || kind == LATE_THREAD ? 10 * MS : 25 * MS;
}
static const char *const kind_name[] = {"main", "thread", "process"};

static void *raw_thread(void *arg)
{
    (void)arg;
    atomic_store(&bg->raw, real_ns());
    return NULL;
}

/* n samples (us) of the raw floor of kind: due instants a spacing apart on a
 * timerfd, then the cheapest way to begin code of that kind. */
static void raw_lateness(enum late_kind kind, double *us, long n)
{
    int tfd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
    BENCH_CHECK(tfd >= 0, "timerfd_create");
    int64_t spacing = spacing_ns(kind);
    int64_t due = real_ns() + spacing;
    for (long i = 0; i < n; i++, due += spacing) {
        int gate[2] = {-1, -1};
        pid_t ahead = -1;
        if (kind == LATE_PREFORK) { /* forked a spacing ahead, blocked on the gate */
            BENCH_CHECK(pipe(gate) == 0, "pipe");
            ahead = fork();
            BENCH_CHECK(ahead >= 0, "fork");
            if (ahead == 0) {
                char c;
                close(gate[1]);
                if (read(gate[0], &c, 1) == 1)
                    atomic_store(&bg->raw, real_ns());
                _exit(0);
            }
            close(gate[0]);
        }
        struct itimerspec its = {.it_value = {due / BENCH_NS_PER_SEC, due % BENCH_NS_PER_SEC}};
        BENCH_CHECK(timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0, "timerfd_settime");
        uint64_t expirations;
        bench_read_all(tfd, &expirations, sizeof expirations);
        atomic_store(&bg->raw, 0);
        if (kind == LATE_PREFORK) {
            BENCH_CHECK(write(gate[1], "x", 1) == 1, "write");
            close(gate[1]);
            int status;
            while (waitpid(ahead, &status, 0) < 0)
                BENCH_CHECK(errno == EINTR, "waitpid");
        } else if (kind == LATE_MAIN) {
            atomic_store(&bg->raw, real_ns());
        } else if (kind == LATE_THREAD) {
            pthread_t t;
            BENCH_CHECK(pthread_create(&t, NULL, raw_thread, NULL) == 0, "pthread_create");
            BENCH_CHECK(pthread_join(t, NULL) == 0, "pthread_join");
        } else {
            pid_t pid = fork();
            BENCH_CHECK(pid >= 0, "fork");
            if (pid == 0 && kind == LATE_FORK2) { /* a middle process forks the child */
                pid_t child = fork();
                if (child == 0) {
                    atomic_store(&bg->raw, real_ns());
                    _exit(0);
                }
                int st;
                while (child > 0 && waitpid(child, &st, 0) < 0 && errno == EINTR)
                    ;
                _exit(child > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
            }
            if (pid == 0) {
                atomic_store(&bg->raw, real_ns());
                _exit(0);
            }
            int status;
            while (waitpid(pid, &status, 0) < 0)
                BENCH_CHECK(errno == EINTR, "waitpid");
            BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the raw child");
        }
        int64_t began = atomic_load(&bg->raw);
        BENCH_CHECK(began != 0, "the raw floor's time");
        us[i] = (double)(began - due) / 1e3;
        if (real_ns() > due + spacing / 2) /* fell behind: start again from now */
            due = real_ns();
    }
    close(tfd);
}

/* The same due instants, then sk_start of an skproc process whose run
 * hook takes the time (runs = 1), supervised as a process task is or
 * not: what a process task's start costs before the scheduler adds
 * anything. */
static int taker_run(sk_process *self)
{
    (void)self;
    atomic_store(&bg->raw, real_ns());
    return 0;
}

static const sk_class taker_class = {.name = "bench-sched-taker", .run = taker_run};

static void sk_start_lateness(bool supervise, double *us, long n)
{
    int tfd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
    BENCH_CHECK(tfd >= 0, "timerfd_create");
    int64_t spacing = spacing_ns(LATE_PROCESS);
    int64_t due = real_ns() + spacing;
    for (long i = 0; i < n; i++, due += spacing) {
        sk_process p;
        BENCH_CHECK(sk_init(&p, &taker_class) == SK_OK, "sk_init");
        p.config.runs = 1;
        p.config.supervise = supervise;
        struct itimerspec its = {.it_value = {due / BENCH_NS_PER_SEC, due % BENCH_NS_PER_SEC}};
        BENCH_CHECK(timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0, "timerfd_settime");
        uint64_t expirations;
        bench_read_all(tfd, &expirations, sizeof expirations);
        atomic_store(&bg->raw, 0);
        BENCH_CHECK(sk_start(&p) == SK_OK, "sk_start");
        BENCH_CHECK(sk_wait(&p, -1) == SK_OK, "sk_wait");
        sk_release(&p);
        int64_t began = atomic_load(&bg->raw);
        BENCH_CHECK(began != 0, "the run hook's time");
        us[i] = (double)(began - due) / 1e3;
        if (real_ns() > due + spacing / 2)
            due = real_ns();
    }
    close(tfd);
}

/* ------------------------------------------------- skproc's lateness */

struct late_session {
    sk_sched *s;
    int64_t stop_at; /* shut down at the first start after this */
    int starts[N_LATE];
    int64_t start[N_LATE][MAX_RUNS];
};

static int late_task(sk_task_run *run, void *arg)
{
    (void)run;
    int64_t now = real_ns();
    int i = (int)(intptr_t)arg;
    int k = atomic_fetch_add(&bg->runs[i], 1);
    if (k < MAX_RUNS)
        atomic_store(&bg->at[i][k], now);
    return 0;
}

/* The task index of a name "late.<i>", or -1. */
static int late_index(const char *name)
{
    int i;
    if (sscanf(name, "late.%d", &i) != 1 || i < 0 || i >= N_LATE)
        return -1;
    return i;
}

static int late_on_run(const sk_run_record *run, void *arg)
{
    struct late_session *ls = arg;
    if (run->outcome != SK_RUN_RUNNING)
        return 0;
    int i = late_index(run->task);
    if (i < 0)
        return 0;
    if (ls->starts[i] < MAX_RUNS)
        ls->start[i][ls->starts[i]++] = run->start;
    if (run->start > ls->stop_at || ls->starts[i] == MAX_RUNS)
        sk_sched_shutdown(ls->s);
    return 0;
}

static void sleep_until_real(int64_t t)
{
    struct timespec ts = {t / BENCH_NS_PER_SEC, t % BENCH_NS_PER_SEC};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Samples (us) of skproc's lateness for tasks of kind over about `seconds`
 * of sk_sched_run, and its two parts: wake[] from the due instant to the
 * run's start (the cycle's clock reading, as on_run reports it) and
 * launch[] from there to the code's start; returns how many (at most
 * cap). */
static long skproc_lateness(enum late_kind kind, double prefork, double seconds, double *us,
                            double *wake, double *launch, long cap)
{
    static struct late_session ls;
    memset(&ls, 0, sizeof ls);
    memset(bg, 0, sizeof *bg);
    ls.stop_at = INT64_MAX; /* set when sk_sched_run starts */
    sk_sched_config cfg = {
        .no_signals = true, .on_run = late_on_run, .on_run_arg = &ls, .prefork = prefork};
    BENCH_CHECK(sk_sched_create(&ls.s, &cfg) == SK_OK, "sk_sched_create");
    static const sk_task_mode modes[] = {SK_TASK_MAIN, SK_TASK_THREAD, SK_TASK_PROCESS};
    /* First runs one spacing apart, so that one task is due at a time. */
    int64_t spacing = spacing_ns(kind);
    int ntasks = (int)(BENCH_NS_PER_SEC / spacing);
    int64_t t0 = real_ns();
    for (int i = 0; i < ntasks; i++) {
        char name[32];
        snprintf(name, sizeof name, "late.%d", i);
        sk_sched_task t = {.name = name,
                           .start = "every 1 seconds",
                           .mode = modes[kind],
                           .fn = late_task,
                           .arg = (void *)(intptr_t)i};
        BENCH_CHECK(sk_sched_add(ls.s, &t, NULL, 0) == SK_OK, "sk_sched_add");
        BENCH_CHECK(sk_sched_step(ls.s) == SK_OK, "sk_sched_step");
        sleep_until_real(t0 + (i + 1) * spacing);
    }
    ls.stop_at = real_ns() + (int64_t)(seconds * 1e9);
    BENCH_CHECK(sk_sched_run(ls.s) == SK_OK, "sk_sched_run");
    sk_sched_release(ls.s);
    long n = 0;
    for (int i = 0; i < N_LATE; i++) {
        int runs = atomic_load(&bg->runs[i]);
        for (int k = 1; k < ls.starts[i] && k < runs && k < MAX_RUNS && n < cap; k++) {
            int64_t due = ls.start[i][k - 1] + BENCH_NS_PER_SEC;
            int64_t began = atomic_load(&bg->at[i][k]);
            us[n] = (double)(began - due) / 1e3;
            wake[n] = (double)(ls.start[i][k] - due) / 1e3;
            launch[n] = (double)(began - ls.start[i][k]) / 1e3;
            n++;
        }
    }
    return n;
}

/* One lateness row and its p99 row. */
static void emit_late(const char *key, const char *name, const char *short_name, double *us, long n)
{
    BENCH_CHECK(n > 0, "lateness samples");
    struct bench_stats st = bench_summarize(us, n); /* sorts us */
    double p99 = bench_percentile(us, n, 99);
    char extra[512];
    snprintf(extra, sizeof extra,
             "\"short\":\"%s\",\"pct\":{\"p50\":%.4g,\"p90\":%.4g,\"p99\":%.4g,\"max\":%.4g}",
             short_name, bench_percentile(us, n, 50), bench_percentile(us, n, 90), p99, st.max);
    bench_emit(AREA, key, name, "us", st.median, &st, extra);
    char k[96], nm[256];
    snprintf(k, sizeof k, "%s.p99", key);
    snprintf(nm, sizeof nm, "%s, 99th percentile", name);
    snprintf(extra, sizeof extra, "\"short\":\"%s p99\",\"table\":\"lateness, 99th percentile\"",
             short_name);
    bench_emit(AREA, k, nm, "us", p99, NULL, extra);
}

/* ------------------------------------------------- 10,000 idle tasks */

/* Condition i of N_MANY, false for hours around `hour` (UTC): windows and
 * cron hours 2 to 9 hours later, or an event that never comes. */
static void many_cond(char *buf, size_t cap, int i, int hour)
{
    int h = (hour + 2 + (i / 4) % 8) % 24, m = i % 59;
    switch (i % 4) {
    case 0:
        snprintf(buf, cap, "daily between %02d:%02d and %02d:%02d", h, m, h, m + 1);
        break;
    case 1:
        snprintf(buf, cap, "cron %d %d * * *", m, h);
        break;
    case 2:
        snprintf(buf, cap, "time of day between %02d:00 and %02d:30 & every 10 seconds", h, h);
        break;
    default:
        snprintf(buf, cap, "after task 'never.%d' succeeded", i % 100);
        break;
    }
}

static int nothing(sk_task_run *run, void *arg)
{
    (void)run;
    (void)arg;
    return 0;
}

/* A session with N_MANY main tasks false around `hour`, n_due of them
 * "every 10 seconds" instead. */
static sk_sched *many_session(sk_sched_config *cfg, int hour, int n_due)
{
    sk_sched *s;
    BENCH_CHECK(sk_sched_create(&s, cfg) == SK_OK, "sk_sched_create");
    for (int i = 0; i < N_MANY; i++) {
        char name[32], cond[128];
        snprintf(name, sizeof name, "many.%d", i);
        if (i < n_due)
            snprintf(cond, sizeof cond, "every 10 seconds");
        else
            many_cond(cond, sizeof cond, i, hour);
        sk_sched_task t = {.name = name, .start = cond, .mode = SK_TASK_MAIN, .fn = nothing};
        BENCH_CHECK(sk_sched_add(s, &t, NULL, 0) == SK_OK, "sk_sched_add");
    }
    return s;
}

static int64_t fake_clock(void *arg)
{
    return *(int64_t *)arg;
}

#define FAKE_START (INT64_C(1700654400) * BENCH_NS_PER_SEC) /* Wed 2023-11-22 12:00 UTC */

/* CPU us per cycle of sk_sched_step, the fake clock 1 s later each cycle. */
static double cycle_skproc(long cycles)
{
    int64_t now = FAKE_START;
    sk_sched_config cfg = {.no_signals = true, .clock = fake_clock, .clock_arg = &now};
    sk_sched *s = many_session(&cfg, 12, N_DUE);
    BENCH_CHECK(sk_sched_step(s) == SK_OK, "sk_sched_step"); /* the first cycle: untimed */
    double c0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < cycles; i++) {
        now += BENCH_NS_PER_SEC;
        BENCH_CHECK(sk_sched_step(s) == SK_OK, "sk_sched_step");
    }
    double per = (cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / (double)cycles / 1e3;
    sk_sched_release(s);
    return per;
}

/* The naive floor: the same conditions, every one evaluated at every
 * cycle (the due ones' last start kept, as a scheduler would). */
static double cycle_naive(long cycles)
{
    sk_cond **c = malloc(N_MANY * sizeof *c);
    int64_t *last = malloc(N_MANY * sizeof *last);
    BENCH_CHECK(c != NULL && last != NULL, "malloc");
    for (int i = 0; i < N_MANY; i++) {
        char cond[128];
        if (i < N_DUE)
            snprintf(cond, sizeof cond, "every 10 seconds");
        else
            many_cond(cond, sizeof cond, i, 12);
        BENCH_CHECK(sk_cond_parse(cond, &c[i], NULL) == SK_OK, "sk_cond_parse");
        last[i] = SK_COND_NEVER;
    }
    int64_t now = FAKE_START;
    volatile long ran = 0;
    double c0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (long k = 0; k < cycles; k++) {
        now += BENCH_NS_PER_SEC;
        for (int i = 0; i < N_MANY; i++) {
            sk_cond_ctx ctx = {.now = now, .last_start = last[i], .last_end = last[i]};
            if (sk_cond_eval(c[i], &ctx) == 1) {
                last[i] = now;
                ran++;
            }
        }
    }
    double per = (cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / (double)cycles / 1e3;
    for (int i = 0; i < N_MANY; i++)
        sk_cond_free(c[i]);
    free(c);
    free(last);
    return per;
}

struct stopper {
    sk_sched *s;
    double seconds;
};

static void *stop_later(void *arg)
{
    struct stopper *st = arg;
    struct timespec ts = {(time_t)st->seconds,
                          (long)((st->seconds - (double)(time_t)st->seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    sk_sched_shutdown(st->s);
    return NULL;
}

/* CPU ms per wall second of sk_sched_run with nothing due; *wakeups: the
 * session thread's voluntary switches per second. */
static double idle_skproc(double seconds, double *wakeups)
{
    sk_sched_config cfg = {.no_signals = true};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    sk_sched *s = many_session(&cfg, tm.tm_hour, 0);
    BENCH_CHECK(sk_sched_step(s) == SK_OK, "sk_sched_step"); /* the first cycle: untimed */
    struct stopper st = {s, seconds};
    pthread_t stopper;
    long sw0, sw1;
    double w0 = (double)bench_now_ns();
    double c0 = rusage_s(RUSAGE_SELF, NULL);
    rusage_s(RUSAGE_THREAD, &sw0);
    BENCH_CHECK(pthread_create(&stopper, NULL, stop_later, &st) == 0, "pthread_create");
    BENCH_CHECK(sk_sched_run(s) == SK_OK, "sk_sched_run");
    double c1 = rusage_s(RUSAGE_SELF, NULL);
    rusage_s(RUSAGE_THREAD, &sw1);
    double wall = ((double)bench_now_ns() - w0) / 1e9;
    BENCH_CHECK(pthread_join(stopper, NULL) == 0, "pthread_join");
    sk_sched_release(s);
    *wakeups = (double)(sw1 - sw0) / wall;
    return (c1 - c0) * 1e3 / wall;
}

/* The floor: epoll_wait on a timerfd that expires after `seconds`. */
static double idle_floor(double seconds)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    BENCH_CHECK(tfd >= 0 && ep >= 0, "timerfd/epoll");
    struct epoll_event ev = {.events = EPOLLIN};
    BENCH_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) == 0, "epoll_ctl");
    struct itimerspec its = {
        .it_value = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)}};
    double w0 = (double)bench_now_ns();
    double c0 = rusage_s(RUSAGE_SELF, NULL);
    BENCH_CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0, "timerfd_settime");
    int n;
    while ((n = epoll_wait(ep, &ev, 1, -1)) < 0 && errno == EINTR)
        ;
    BENCH_CHECK(n == 1, "epoll_wait");
    double c1 = rusage_s(RUSAGE_SELF, NULL);
    double wall = ((double)bench_now_ns() - w0) / 1e9;
    close(ep);
    close(tfd);
    return (c1 - c0) * 1e3 / wall;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    bench_print_info("bench_sched");
    setenv("TZ", "UTC", 1);
    tzset();
    bg = mmap(NULL, sizeof *bg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(bg != MAP_FAILED, "mmap");

    /* Lateness: raw floor, then skproc, per kind. */
    long raw_n = bench_ops(&o, 300, 60), proc_n = bench_ops(&o, 120, 40);
    double run_s = o.quick ? 1.0 : 5.0;
    long cap = N_LATE * MAX_RUNS;
    double *us = malloc((size_t)(cap > raw_n ? cap : raw_n) * sizeof *us);
    double *wake = malloc((size_t)cap * sizeof *wake);
    double *launch = malloc((size_t)cap * sizeof *launch);
    BENCH_CHECK(us != NULL && wake != NULL && launch != NULL, "malloc");
    static const char *const raw_key[] = {"sched.late.raw_main", "sched.late.raw_thread",
                                          "sched.late.raw_fork"};
    static const char *const raw_what[] = {"raw floor: timerfd wake, then the time taken",
                                           "raw floor: timerfd wake, pthread_create",
                                           "raw floor: timerfd wake, fork"};
    static const char *const raw_short[] = {"raw wake", "raw thread", "raw fork"};
    for (int kind = LATE_MAIN; kind <= LATE_PROCESS; kind++) {
        long floor_n = kind == LATE_PROCESS ? proc_n : raw_n;
        raw_lateness((enum late_kind)kind, us, floor_n);
        emit_late(raw_key[kind], raw_what[kind], raw_short[kind], us, floor_n);
        if (kind == LATE_PROCESS) { /* the floor of a supervised process: a double fork */
            raw_lateness(LATE_FORK2, us, proc_n);
            emit_late("sched.late.raw_fork2", "raw floor: timerfd wake, fork, fork again",
                      "raw double fork", us, proc_n);
            sk_start_lateness(true, us, proc_n);
            emit_late("sched.late.sk_start", "timerfd wake, sk_start of a supervised process",
                      "sk_start supervised", us, proc_n);
            sk_start_lateness(false, us, proc_n);
            emit_late("sched.late.sk_start_plain",
                      "timerfd wake, sk_start of a process without a supervisor", "sk_start plain",
                      us, proc_n);
            raw_lateness(LATE_PREFORK, us, proc_n);
            emit_late("sched.late.raw_prefork",
                      "raw floor: a child forked ahead, blocked in read(); timerfd wake, write",
                      "raw prefork", us, proc_n);
            /* the session's process tasks forking at the start (prefork < 0) */
            long n = skproc_lateness(LATE_PROCESS, -1, run_s, us, wake, launch, cap);
            emit_late("sched.late.process_cold",
                      "skproc: a time-triggered process task, prefork off (forked at the start)",
                      "skproc process task, cold", us, n);
        }
        long n = skproc_lateness((enum late_kind)kind, 0, run_s, us, wake, launch, cap);
        char key[64], name[160], short_name[64];
        snprintf(key, sizeof key, "sched.late.%s", kind_name[kind]);
        snprintf(name, sizeof name, "skproc: a time-triggered %s task, due to its code's start",
                 kind_name[kind]);
        snprintf(short_name, sizeof short_name, "skproc %s task", kind_name[kind]);
        emit_late(key, name, short_name, us, n);
        if (kind == LATE_PROCESS) /* again, against the raw prefork: the same design by hand */
            bench_emit(AREA, "sched.late.process.vs_prefork",
                       "skproc: a time-triggered process task, against a raw prefork", "us",
                       bench_summarize(us, n).median, NULL, "\"short\":\"skproc process task\"");
        /* Where it went: waking to the cycle's start, then the launch. */
        char table[] = "where the lateness goes (medians)";
        char extra[160];
        struct bench_stats w = bench_summarize(wake, n), l = bench_summarize(launch, n);
        snprintf(key, sizeof key, "sched.late.%s.wake", kind_name[kind]);
        snprintf(name, sizeof name, "skproc %s task: due to the cycle that starts it",
                 kind_name[kind]);
        snprintf(extra, sizeof extra, "\"table\":\"%s\"", table);
        bench_emit(AREA, key, name, "us", w.median, &w, extra);
        snprintf(key, sizeof key, "sched.late.%s.launch", kind_name[kind]);
        snprintf(name, sizeof name, "skproc %s task: the run's start to its code's start",
                 kind_name[kind]);
        bench_emit(AREA, key, name, "us", l.median, &l, extra);
    }
    free(us);
    free(wake);
    free(launch);

    /* 10,000 tasks. */
    long cycles = bench_ops(&o, 2000, 300);
    bench_emit(AREA, "sched.cycle.naive",
               "naive: every condition of 10,000 evaluated (sk_cond_eval), per cycle", "us CPU",
               cycle_naive(cycles), NULL, "\"short\":\"naive\"");
    bench_emit(AREA, "sched.cycle.skproc", "skproc: sk_sched_step with 10,000 tasks, per cycle",
               "us CPU", cycle_skproc(cycles), NULL, "\"short\":\"skproc cycle\"");
    double idle_s = o.quick ? 1.0 : 3.0, wakeups;
    bench_emit(AREA, "sched.idle.floor", "floor: epoll_wait on a timerfd, CPU per second idle",
               "ms CPU/s", idle_floor(idle_s), NULL, "\"short\":\"epoll_wait\"");
    bench_emit(AREA, "sched.idle.skproc",
               "skproc: sk_sched_run with 10,000 tasks, nothing due, CPU per second", "ms CPU/s",
               idle_skproc(idle_s, &wakeups), NULL, "\"short\":\"skproc idle\"");
    bench_emit(AREA, "sched.idle.wakeups",
               "skproc: the session thread's wake-ups per second idle (10,000 tasks)", "/s",
               wakeups, NULL, NULL);
    return 0;
}
