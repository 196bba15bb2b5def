/* SPDX-License-Identifier: MIT */
/*
 * Supervision: how precisely the supervisor ends a hook at its timeout, and
 * what a restart after a crash costs (docs/supervision.md).
 *
 *   sup.timeout.median  timeout precision. One trial: a process with
 *   sup.timeout.max     timeouts.run = 0.02 s whose run hook writes
 *   sup.timeout.p99     clock_gettime(CLOCK_MONOTONIC) into a page mapped
 *                       MAP_SHARED before sk_start, blocks every signal and
 *                       spins. The supervisor ends it with SIGKILL; the
 *                       lateness is the time from (the hook's start + 0.02 s)
 *                       to the return of sk_wait(-1) in the parent, in ms.
 *                       200 trials (quick 40), each a fresh process (started,
 *                       waited for, checked to have failed with a
 *                       ProcessTimeoutError in run, released). The rows are
 *                       the median, the largest and the 99th percentile of
 *                       the trials; the median's line carries every trial
 *                       ("samples", ms, in order) and "pct"/"cdf" for a plot.
 *   sup.restart.plain   (a) sk_init + sk_start + sk_result("I") + sk_release
 *                       of a trivial process with lives = 2 (so it has a
 *                       supervisor) and runs = 1, in microseconds
 *   sup.restart.crash   (b) the same process, whose run hook raise()s SIGSEGV
 *                       on the first attempt (a flag in a MAP_SHARED page,
 *                       reset by the parent before each op) and succeeds in
 *                       the worker the supervisor starts next; sk_result is
 *                       checked to be SK_OK. Its ratio is (b) / (a).
 *   sup.restart.cost    (b) - (a): the medians' difference, what a crash and
 *                       a restart add to the process's life
 *                       (a) and (b) alternate op by op, 1000 each (quick 150)
 *                       after 5 untimed; each op timed on its own, the value
 *                       is the median op.
 *
 * The crashing worker makes itself non-dumpable (PR_SET_DUMPABLE 0) right
 * before raise(), so that no core dump is written, whatever core_pattern
 * says: a crash then costs what it costs a program that does not dump core.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"

#include <skproc.h>

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define AREA "supervision"
#define TIMEOUT_S 0.02

/* A page mapped MAP_SHARED before any sk_start: seen by every worker. */
struct shared {
    _Atomic int64_t hook_start_ns; /* the spinning hook's start */
    _Atomic int crashed;           /* the crashing hook already crashed once */
};
static struct shared *sh;

/* ---------------------------------------------------- timeout precision */

static int spin_run(sk_process *self)
{
    (void)self;
    atomic_store(&sh->hook_start_ns, bench_now_ns());
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* SIGKILL stays deliverable */
    while (atomic_load_explicit(&sh->hook_start_ns, memory_order_relaxed) != 0)
        ; /* for ever: the parent resets it only once this worker is gone */
    return 0;
}

static const sk_class spin_class = {.name = "spin", .run = spin_run};

/* Returns the lateness of one trial in ms. */
static double timeout_trial(void)
{
    sk_process p;
    atomic_store(&sh->hook_start_ns, 0);
    BENCH_CHECK(sk_init(&p, &spin_class) == SK_OK, "sk_init");
    p.config.runs = 1;
    p.config.timeouts.run = TIMEOUT_S;
    BENCH_CHECK(sk_start(&p) == SK_OK, "sk_start");
    int rc = sk_wait(&p, -1);
    int64_t returned = bench_now_ns();
    int64_t started = atomic_load(&sh->hook_start_ns);
    const sk_error *e = sk_error_of(&p);
    if (rc != SK_OK || e == NULL || e->kind != SK_TIMEOUT_ERROR || e->section != SK_RUN ||
        started == 0) {
        fprintf(stderr,
                "bench_supervision: timeout trial: sk_wait %s, error %s, hook start %" PRId64 "\n",
                sk_strerror(rc), e ? e->message : "none", started);
        exit(1);
    }
    sk_release(&p);
    return (double)(returned - (started + (int64_t)(TIMEOUT_S * 1e9))) / 1e6;
}

static void timeout_precision(long trials)
{
    timeout_trial(); /* warm up */
    double *ms = malloc((size_t)trials * sizeof *ms);
    BENCH_CHECK(ms != NULL, "malloc");
    size_t cap = 32 + (size_t)trials * 16 + 2048;
    char *extra = malloc(cap);
    BENCH_CHECK(extra != NULL, "malloc");
    int len = snprintf(extra, cap, "\"timeout_s\":%g,\"samples\":[", TIMEOUT_S);
    for (long i = 0; i < trials; i++) {
        ms[i] = timeout_trial();
        len += snprintf(extra + len, cap - (size_t)len, "%s%.4g", i ? "," : "", ms[i]);
    }
    struct bench_stats st = bench_summarize(ms, trials);
    len += snprintf(extra + len, cap - (size_t)len,
                    "],\"pct\":{\"p50\":%.4g,\"p90\":%.4g,\"p99\":%.4g,\"p99.9\":%.4g},\"cdf\":[",
                    bench_percentile(ms, trials, 50), bench_percentile(ms, trials, 90),
                    bench_percentile(ms, trials, 99), bench_percentile(ms, trials, 99.9));
    for (int p = 0; p <= 100; p++)
        len += snprintf(extra + len, cap - (size_t)len, "%s%.4g", p ? "," : "",
                        bench_percentile(ms, trials, p));
    snprintf(extra + len, cap - (size_t)len, "]");
    bench_emit(AREA, "sup.timeout.median",
               "timeout lateness, median (run hook spinning with signals blocked, 20 ms timeout)",
               "ms", st.median, &st, extra);
    bench_emit(AREA, "sup.timeout.max", "timeout lateness, largest of the trials", "ms", st.max,
               NULL, NULL);
    bench_emit(AREA, "sup.timeout.p99", "timeout lateness, 99th percentile", "ms",
               bench_percentile(ms, trials, 99), NULL, NULL);
    free(extra);
    free(ms);
}

/* --------------------------------------------------------- restart cost */

typedef struct {
    sk_process base;
    int64_t count;
    bool crash_once;
} trivial;

static int trivial_run(sk_process *self)
{
    trivial *t = SK_CONTAINER_OF(self, trivial, base);
    if (t->crash_once && atomic_exchange(&sh->crashed, 1) == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* no core dump */
        raise(SIGSEGV);
    }
    t->count++;
    return 0;
}

static int trivial_result(sk_process *self)
{
    return sk_return(self, "I", &SK_CONTAINER_OF(self, trivial, base)->count);
}

static const sk_class trivial_class = {
    .name = "trivial", .run = trivial_run, .result = trivial_result};

/* One start + result + release with lives = 2; returns microseconds. */
static double start_result(bool crash_once)
{
    atomic_store(&sh->crashed, 0);
    trivial t = {.count = 0, .crash_once = crash_once};
    int64_t t0 = bench_now_ns();
    BENCH_CHECK(sk_init(&t.base, &trivial_class) == SK_OK, "sk_init");
    t.base.config.runs = 1;
    t.base.config.lives = 2;
    BENCH_CHECK(sk_start(&t.base) == SK_OK, "sk_start");
    int64_t v = 0;
    int rc = sk_result(&t.base, "I", &v);
    sk_release(&t.base);
    int64_t t1 = bench_now_ns();
    if (rc != SK_OK || v != 1 || atomic_load(&sh->crashed) != crash_once) {
        fprintf(stderr, "bench_supervision: sk_result: %s, value %" PRId64 ", crashed %d\n",
                sk_strerror(rc), v, atomic_load(&sh->crashed));
        exit(1);
    }
    return (double)(t1 - t0) / 1e3;
}

static void restart_cost(long ops)
{
    for (int i = 0; i < 5; i++) {
        start_result(false);
        start_result(true);
    }
    double *plain = malloc((size_t)ops * sizeof *plain);
    double *crash = malloc((size_t)ops * sizeof *crash);
    BENCH_CHECK(plain != NULL && crash != NULL, "malloc");
    for (long i = 0; i < ops; i++) {
        plain[i] = start_result(false);
        crash[i] = start_result(true);
    }
    struct bench_stats a = bench_summarize(plain, ops), b = bench_summarize(crash, ops);
    bench_emit(AREA, "sup.restart.plain",
               "(a) supervised start+result (lives = 2, runs = 1), no crash", "us", a.median, &a,
               "\"table\":\"restart after a crash\",\"short\":\"(a) no crash\"");
    bench_emit(AREA, "sup.restart.crash",
               "(b) the same, run crashes once (SIGSEGV) and succeeds on the restart", "us",
               b.median, &b,
               "\"table\":\"restart after a crash\",\"short\":\"(b) crash + restart\","
               "\"baseline\":\"sup.restart.plain\"");
    bench_emit(AREA, "sup.restart.cost", "restart cost: (b) - (a), medians", "us",
               b.median - a.median, NULL, "\"table\":\"restart after a crash\"");
    free(plain);
    free(crash);
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    bench_print_info("bench_supervision");
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* belt and braces with PR_SET_DUMPABLE */
    sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(sh != MAP_FAILED, "mmap");

    timeout_precision(bench_ops(&o, 200, 40));
    restart_cost(bench_ops(&o, 1000, 150));
    return 0;
}
