/* SPDX-License-Identifier: MIT */
/*
 * The floor of timeout precision (docs/supervision.md): what it costs, with
 * no library at all, to end a process that spins with every signal blocked
 * at its deadline and to see it gone. Measured exactly as bench_supervision's
 * sup.timeout.* rows are.
 *
 *   sup.timeout.raw.median   one process: the parent forks a child that
 *   sup.timeout.raw.max      writes clock_gettime(CLOCK_MONOTONIC) into a
 *   sup.timeout.raw.p99      page mapped MAP_SHARED before the fork, blocks
 *                            every signal and spins. The parent waits for
 *                            that start time, arms a timerfd (absolute
 *                            CLOCK_MONOTONIC) for start + 0.02 s, poll()s
 *                            on it, kill(SIGKILL)s the child and waitid()s
 *                            it (P_PID, WEXITED). The lateness is the time
 *                            from (start + 0.02 s) to the return of that
 *                            waitid, in ms.
 *   sup.timeout.raw2.median  two processes, skproc's shape (parent,
 *   sup.timeout.raw2.max     supervisor, worker): the parent forks a middle
 *   sup.timeout.raw2.p99     process that forks the spinner and does the
 *                            timerfd + poll + SIGKILL + waitid above, then
 *                            _exit(0)s; the lateness runs to the return of
 *                            the parent's waitid on the middle process.
 *
 * 200 trials of each (quick 40), alternating one and the other after one
 * untimed trial of each; the medians' lines carry every trial ("samples",
 * ms, in order) and "pct"/"cdf" as bench_supervision's do.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"

#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA "supervision"
#define TIMEOUT_S 0.02
#define TIMEOUT_NS ((int64_t)(TIMEOUT_S * 1e9))

struct shared {
    _Atomic int64_t start_ns; /* the spinner's start */
};
static struct shared *sh;

static _Noreturn void spinner(void)
{
    atomic_store(&sh->start_ns, bench_now_ns());
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* SIGKILL stays deliverable */
    for (;;)
        ; /* until SIGKILL */
}

/* Forks the spinner, waits for its start time, ends it at start + 0.02 s
 * (timerfd, poll, SIGKILL, waitid). Returns the start time. */
static int64_t enforce(void)
{
    atomic_store(&sh->start_ns, 0);
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0)
        spinner();
    int64_t start;
    while ((start = atomic_load(&sh->start_ns)) == 0)
        sched_yield();
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    BENCH_CHECK(tfd >= 0, "timerfd_create");
    int64_t deadline = start + TIMEOUT_NS;
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(deadline / BENCH_NS_PER_SEC),
                                          .tv_nsec = (long)(deadline % BENCH_NS_PER_SEC)}};
    BENCH_CHECK(timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0, "timerfd_settime");
    struct pollfd pfd = {.fd = tfd, .events = POLLIN};
    while (poll(&pfd, 1, -1) != 1)
        BENCH_CHECK(errno == EINTR, "poll");
    uint64_t expirations;
    BENCH_CHECK(read(tfd, &expirations, sizeof expirations) == (ssize_t)sizeof expirations,
                "read timerfd");
    close(tfd);
    BENCH_CHECK(kill(pid, SIGKILL) == 0, "kill");
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid(P_PID, (id_t)pid, &info, WEXITED) != 0)
        BENCH_CHECK(errno == EINTR, "waitid");
    BENCH_CHECK(info.si_code == CLD_KILLED && info.si_status == SIGKILL, "SIGKILL");
    return start;
}

/* One trial, in ms: the parent enforces the deadline itself. */
static double trial_raw(void)
{
    int64_t start = enforce();
    int64_t returned = bench_now_ns();
    return (double)(returned - (start + TIMEOUT_NS)) / 1e6;
}

/* One trial, in ms: a middle process enforces it and exits; the parent
 * waits for the middle process. */
static double trial_raw2(void)
{
    atomic_store(&sh->start_ns, 0);
    pid_t mid = fork();
    BENCH_CHECK(mid >= 0, "fork");
    if (mid == 0) {
        enforce();
        _exit(0);
    }
    siginfo_t info;
    memset(&info, 0, sizeof info);
    while (waitid(P_PID, (id_t)mid, &info, WEXITED) != 0)
        BENCH_CHECK(errno == EINTR, "waitid");
    int64_t returned = bench_now_ns();
    BENCH_CHECK(info.si_code == CLD_EXITED && info.si_status == 0, "middle process");
    int64_t start = atomic_load(&sh->start_ns);
    BENCH_CHECK(start != 0, "spinner start");
    return (double)(returned - (start + TIMEOUT_NS)) / 1e6;
}

static void emit(const char *key, const char *what, double *ms, long trials)
{
    size_t cap = 32 + (size_t)trials * 16 + 2048;
    char *extra = malloc(cap);
    BENCH_CHECK(extra != NULL, "malloc");
    int len = snprintf(extra, cap, "\"timeout_s\":%g,\"samples\":[", TIMEOUT_S);
    for (long i = 0; i < trials; i++)
        len += snprintf(extra + len, cap - (size_t)len, "%s%.4g", i ? "," : "", ms[i]);
    struct bench_stats st = bench_summarize(ms, trials); /* sorts ms */
    len += snprintf(extra + len, cap - (size_t)len,
                    "],\"pct\":{\"p50\":%.4g,\"p90\":%.4g,\"p99\":%.4g,\"p99.9\":%.4g},\"cdf\":[",
                    bench_percentile(ms, trials, 50), bench_percentile(ms, trials, 90),
                    bench_percentile(ms, trials, 99), bench_percentile(ms, trials, 99.9));
    for (int p = 0; p <= 100; p++)
        len += snprintf(extra + len, cap - (size_t)len, "%s%.4g", p ? "," : "",
                        bench_percentile(ms, trials, p));
    snprintf(extra + len, cap - (size_t)len, "]");
    char k[64], name[200];
    snprintf(k, sizeof k, "%s.median", key);
    snprintf(name, sizeof name, "%s: timerfd + SIGKILL + waitid lateness, median", what);
    bench_emit(AREA, k, name, "ms", st.median, &st, extra);
    snprintf(k, sizeof k, "%s.max", key);
    snprintf(name, sizeof name, "%s: lateness, largest of the trials", what);
    bench_emit(AREA, k, name, "ms", st.max, NULL, NULL);
    snprintf(k, sizeof k, "%s.p99", key);
    snprintf(name, sizeof name, "%s: lateness, 99th percentile", what);
    bench_emit(AREA, k, name, "ms", bench_percentile(ms, trials, 99), NULL, NULL);
    free(extra);
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    bench_print_info("raw_timeout");
    sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(sh != MAP_FAILED, "mmap");

    long trials = bench_ops(&o, 200, 40);
    double *one = malloc((size_t)trials * sizeof *one);
    double *two = malloc((size_t)trials * sizeof *two);
    BENCH_CHECK(one != NULL && two != NULL, "malloc");
    trial_raw(); /* warm up */
    trial_raw2();
    for (long i = 0; i < trials; i++) {
        one[i] = trial_raw();
        two[i] = trial_raw2();
    }
    emit("sup.timeout.raw", "raw floor, the parent enforcing", one, trials);
    emit("sup.timeout.raw2", "raw floor, a middle process enforcing (parent, supervisor, worker)",
         two, trials);
    free(one);
    free(two);
    return 0;
}
