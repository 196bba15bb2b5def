/* SPDX-License-Identifier: MIT */
/*
 * Messaging: what sk_tell and sk_listen cost between a parent and its
 * child (docs/messaging.md). The baselines are in raw_pingpong.c (a raw
 * pipe and a raw futex on shared memory) and py_pipe.py (Python's
 * multiprocessing.Pipe).
 *
 *   msg.rt.skproc      round trip of one 8-byte message, an "I" (int64_t):
 *                      the parent sk_tells it, the child's sk_listen(-1)
 *                      gets it and sk_tells it back, the parent's
 *                      sk_listen(-1) gets it. Every round trip is timed on
 *                      its own (20000, quick 2000, after 200 untimed); the
 *                      value is the median round trip in microseconds. The
 *                      line also carries the distribution: "pct" (p50, p90,
 *                      p99, p99.9) and "cdf", the 0th, 1st, ..., 100th
 *                      percentiles, enough to draw it. Pinned: the parent on
 *                      the first CPU this program may use, the child on the
 *                      second (see "CPU placement" below).
 *   msg.rt.skproc.p99  the 99th percentile of those round trips, as a row
 *   msg.rt.skproc.cpu1 the same round trips with both on the first CPU
 *   msg.tput64.skproc  one way, child to parent: the child tells 64-byte
 *                      messages as fast as it can, each a "c#" of 64 chars
 *                      (a fixed-size record: the parent unpacks it into its
 *                      own char[64], no allocation per message), with
 *                      sk_tell_wait, which sleeps while the channel is
 *                      full. Default capacity (1 MiB).
 *                      Million messages per second, the median of 5 rounds
 *                      (quick 3) of 1000000 messages (quick 200000), each
 *                      round timed from the parent's "go" (an "I" with the
 *                      count) to its last sk_listen
 *   msg.tput64.skproc.ns  the same as nanoseconds per message (the
 *                      target's form: >= 1 million/s is < 1000 ns)
 *   msg.tput64b.skproc the same with each 64 bytes as a "B" (tpl_bin), for
 *                      comparison: the parent gets a malloc'ed copy of each
 *                      and frees it
 *   msg.tput1m.skproc  one way, child to parent, 1 MiB messages, each a
 *                      "B" of 1048576 bytes from the same buffer, the
 *                      parent frees each copy it gets. config.capacity =
 *                      64 MiB so that the writer is not throttled by the
 *                      default 1 MiB (max_message stays 64 MiB). GB/s of
 *                      payload (10^9 bytes), median of 5 rounds (quick 3) of
 *                      1000 MiB (quick 200 MiB), after an untimed round of
 *                      80 MiB that faults the ring in
 *   msg.tput1m.skproc.nsb  the same as nanoseconds per byte (>= 2 GB/s is
 *                      < 0.5 ns/B)
 *   msg.idle.skproc    CPU milliseconds a parent and its child burn while
 *                      both wait 1 s (quick 0.3 s) for a message that does
 *                      not come (the parent in sk_listen with a timeout,
 *                      the child in sk_listen(-1)), with the default
 *                      config.spin: getrusage of the parent and of the
 *                      reaped child. msg.idle.nospin: the same with
 *                      config.no_spin, the baseline (what a wait cost before
 *                      the spin). Median of 3 (quick 2).
 *
 * Every process is started before its first timed op and stopped with
 * sk_stop after its last; process start is not timed here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* CPU affinity */
#endif
#include "common.h"

#include <skproc.h>

#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <sys/resource.h>
#include <tpl.h>

#define AREA "messaging"
#define TABLE_64 "one way (child to parent), 64-byte messages"
#define TABLE_1M "one way (child to parent), 1 MiB messages"
#define REC 64
#define MIB ((size_t)1 << 20)

/* ------------------------------------------------------- distribution */

/* Sorts v and emits the row of a latency distribution in microseconds, with
 * "pct" and "cdf" members; for the main placement, then a row of its 99th
 * percentile. */
static void emit_latency(const char *key, const char *name, const char *short_name,
                         const char *baseline, const char *table, bool p99_row, double *v, long n)
{
    struct bench_stats st = bench_summarize(v, n);
    size_t cap = 4096;
    char *extra = malloc(cap);
    BENCH_CHECK(extra != NULL, "malloc");
    int len = snprintf(extra, cap, "\"short\":\"%s\",\"baseline\":\"%s\"", short_name, baseline);
    if (table != NULL)
        len += snprintf(extra + len, cap - (size_t)len, ",\"table\":\"%s\"", table);
    len += snprintf(extra + len, cap - (size_t)len,
                    ",\"pct\":{\"p50\":%.4g,\"p90\":%.4g,\"p99\":%.4g,\"p99.9\":%.4g},\"cdf\":[",
                    bench_percentile(v, n, 50), bench_percentile(v, n, 90),
                    bench_percentile(v, n, 99), bench_percentile(v, n, 99.9));
    for (int p = 0; p <= 100; p++)
        len += snprintf(extra + len, cap - (size_t)len, "%s%.4g", p ? "," : "",
                        bench_percentile(v, n, p));
    snprintf(extra + len, cap - (size_t)len, "]");
    bench_emit(AREA, key, name, "us", st.median, &st, extra);
    free(extra);
    if (!p99_row)
        return;
    char key99[96], name99[200], extra99[200];
    snprintf(key99, sizeof key99, "%s.p99", key);
    snprintf(name99, sizeof name99, "%s, 99th percentile", name);
    snprintf(
        extra99, sizeof extra99,
        "\"table\":\"round trip, 99th percentile\",\"short\":\"%s p99\",\"baseline\":\"%s.p99\"",
        short_name, baseline);
    bench_emit(AREA, key99, name99, "us", bench_percentile(v, n, 99), NULL, extra99);
}

/* ----------------------------------------------------------- the echo */

typedef struct {
    sk_process base;
    int cpu; /* where the worker pins itself */
} echo;

/* One call of run serves the whole session: it ends at sk_stop. */
static int echo_run(sk_process *self)
{
    int cpu = SK_CONTAINER_OF(self, echo, base)->cpu;
    if (cpu >= 0 && pin(cpu) != 0)
        return sk_fail(self, SK_ESYS, "sched_setaffinity: %s", strerror(errno));
    int64_t v;
    int rc;
    while ((rc = sk_listen(self, -1, "I", &v)) == SK_OK)
        if ((rc = sk_tell(self, "I", &v)) != SK_OK)
            return sk_fail(self, rc, "tell: %s", sk_strerror(rc));
    return rc == SK_ECLOSED ? 0 : sk_fail(self, rc, "listen: %s", sk_strerror(rc));
}

static const sk_class echo_class = {.name = "echo", .run = echo_run};

static void round_trips(const struct placement *pl, long n)
{
    BENCH_CHECK(pin(pl->parent_cpu) == 0, "sched_setaffinity");
    echo e = {.cpu = pl->child_cpu};
    BENCH_CHECK(sk_init(&e.base, &echo_class) == SK_OK, "sk_init");
    e.base.config.runs = 1;
    BENCH_CHECK(sk_start(&e.base) == SK_OK, "sk_start");
    double *us = malloc((size_t)n * sizeof *us);
    BENCH_CHECK(us != NULL, "malloc");
    const long warm = 200;
    for (int64_t i = 0; i < warm + n; i++) {
        int64_t back = -1;
        int64_t t0 = bench_now_ns();
        int rc = sk_tell(&e.base, "I", &i);
        if (rc == SK_OK)
            rc = sk_listen(&e.base, -1, "I", &back);
        int64_t t1 = bench_now_ns();
        if (rc != SK_OK || back != i) {
            fprintf(stderr, "bench_messaging: round trip %" PRId64 ": %s, got %" PRId64 "\n", i,
                    sk_strerror(rc), back);
            exit(1);
        }
        if (i >= warm)
            us[i - warm] = (double)(t1 - t0) / 1e3;
    }
    sk_stop(&e.base);
    BENCH_CHECK(sk_result(&e.base, NULL) == SK_OK, "the echo process's result");
    sk_release(&e.base);
    unpin();

    char key[64], name[160], short_name[64], baseline[64];
    snprintf(key, sizeof key, "msg.rt.skproc%s", pl->suffix);
    snprintf(name, sizeof name, "skproc round trip, 8-byte \"I\"%s", pl->label);
    snprintf(short_name, sizeof short_name, "skproc%s", pl->main ? "" : " (one CPU)");
    snprintf(baseline, sizeof baseline, "msg.rt.pipe%s", pl->suffix);
    emit_latency(key, name, short_name, baseline, pl->table, pl->main, us, n);
    free(us);
}

/* ------------------------------------------------------------ idle */

static double rusage_ms(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* The CPU time of a parent and child that wait `seconds` with nothing to
 * say, in milliseconds. The echo child is reaped (sk_result) before its
 * share is read. */
static double idle_cpu_ms(bool no_spin, double seconds)
{
    echo e = {.cpu = -1};
    BENCH_CHECK(sk_init(&e.base, &echo_class) == SK_OK, "sk_init");
    e.base.config.runs = 1;
    e.base.config.no_spin = no_spin;
    double self0 = rusage_ms(RUSAGE_SELF), kids0 = rusage_ms(RUSAGE_CHILDREN);
    BENCH_CHECK(sk_start(&e.base) == SK_OK, "sk_start");
    int64_t v;
    BENCH_CHECK(sk_listen(&e.base, seconds, "I", &v) == SK_ETIMEDOUT, "the idle listen");
    double self1 = rusage_ms(RUSAGE_SELF);
    sk_stop(&e.base);
    BENCH_CHECK(sk_result(&e.base, NULL) == SK_OK, "the echo process's result");
    sk_release(&e.base);
    return (self1 - self0) + (rusage_ms(RUSAGE_CHILDREN) - kids0);
}

static void idle_rows(const struct bench_opts *o)
{
    int reps = o->quick ? 2 : 3;
    double seconds = o->quick ? 0.3 : 1.0;
    double spin[3], nospin[3];
    for (int i = 0; i < reps; i++) {
        nospin[i] = idle_cpu_ms(true, seconds);
        spin[i] = idle_cpu_ms(false, seconds);
    }
    struct bench_stats a = bench_summarize(nospin, reps), b = bench_summarize(spin, reps);
    char extra[160];
    snprintf(extra, sizeof extra, "\"short\":\"no spin\",\"seconds\":%g", seconds);
    bench_emit(AREA, "msg.idle.nospin", "CPU of an idle parent and child, config.no_spin", "ms",
               a.median, &a, extra);
    snprintf(extra, sizeof extra,
             "\"short\":\"default spin\",\"seconds\":%g,\"baseline\":\"msg.idle.nospin\"", seconds);
    bench_emit(AREA, "msg.idle.skproc", "CPU of an idle parent and child, default config.spin",
               "ms", b.median, &b, extra);
}

/* ------------------------------------------------------------ one way */

enum stream_kind { STREAM_C64, STREAM_B64, STREAM_B1M };

typedef struct {
    sk_process base;
    enum stream_kind kind;
} streamer;

/* Waits for a count (an "I"), tells that many messages, again, until the
 * parent's sk_stop. */
static int stream_run(sk_process *self)
{
    enum stream_kind kind = SK_CONTAINER_OF(self, streamer, base)->kind;
    size_t size = kind == STREAM_B1M ? MIB : REC;
    char *buf = malloc(size);
    if (buf == NULL)
        return sk_fail(self, SK_ENOMEM, "malloc");
    memset(buf, 'x', size);
    int64_t count;
    int rc;
    while ((rc = sk_listen(self, -1, "I", &count)) == SK_OK) {
        for (int64_t i = 0; i < count; i++) {
            memcpy(buf, &i, sizeof i); /* the parent checks the order */
            tpl_bin bin = {.addr = buf, .sz = (uint32_t)size};
            rc = kind == STREAM_C64 ? sk_tell_wait(self, -1, "c#", buf, REC)
                                    : sk_tell_wait(self, -1, "B", &bin);
            if (rc != SK_OK) {
                free(buf);
                return sk_fail(self, rc, "tell: %s", sk_strerror(rc));
            }
        }
    }
    free(buf);
    return rc == SK_ECLOSED ? 0 : sk_fail(self, rc, "listen: %s", sk_strerror(rc));
}

static const sk_class stream_class = {.name = "stream", .run = stream_run};

/* One round: tells the count, receives that many; returns the seconds. */
static double stream_round(sk_process *p, enum stream_kind kind, int64_t count)
{
    char rec[REC];
    int64_t t0 = bench_now_ns();
    BENCH_CHECK(sk_tell(p, "I", &count) == SK_OK, "sk_tell of the count");
    for (int64_t i = 0; i < count; i++) {
        int rc;
        int64_t got = -1;
        if (kind == STREAM_C64) {
            rc = sk_listen(p, -1, "c#", rec, REC);
            memcpy(&got, rec, sizeof got);
        } else {
            tpl_bin bin = {NULL, 0};
            rc = sk_listen(p, -1, "B", &bin);
            if (rc == SK_OK && bin.sz == (kind == STREAM_B1M ? MIB : REC))
                memcpy(&got, bin.addr, sizeof got);
            free(bin.addr);
        }
        if (rc != SK_OK || got != i) {
            fprintf(stderr, "bench_messaging: message %" PRId64 ": %s, got %" PRId64 "\n", i,
                    sk_strerror(rc), got);
            exit(1);
        }
    }
    return (double)(bench_now_ns() - t0) / 1e9;
}

/* rounds timed rounds of count messages after one untimed of warm;
 * returns the per-round rates in messages per second, sorted, in st. */
static struct bench_stats stream(enum stream_kind kind, size_t capacity, int rounds, int64_t count,
                                 int64_t warm)
{
    streamer s = {.kind = kind};
    BENCH_CHECK(sk_init(&s.base, &stream_class) == SK_OK, "sk_init");
    s.base.config.runs = 1;
    if (capacity)
        s.base.config.capacity = capacity;
    BENCH_CHECK(sk_start(&s.base) == SK_OK, "sk_start");
    stream_round(&s.base, kind, warm);
    double rate[16];
    for (int r = 0; r < rounds && r < 16; r++)
        rate[r] = (double)count / stream_round(&s.base, kind, count);
    sk_stop(&s.base);
    BENCH_CHECK(sk_result(&s.base, NULL) == SK_OK, "the stream process's result");
    sk_release(&s.base);
    return bench_summarize(rate, rounds);
}

/* Scales a stats of rates by f (to M msg/s, GB/s). */
static struct bench_stats scaled(struct bench_stats st, double f)
{
    st.median *= f;
    st.min *= f;
    st.max *= f;
    st.mean *= f;
    return st;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    bench_print_info("bench_messaging");

    pick_cpus();
    struct placement pl[2];
    int npl = placements(pl);
    for (int i = 0; i < npl; i++)
        round_trips(&pl[i], bench_ops(&o, 20000, 2000));
    idle_rows(&o);

    int rounds = o.quick ? 3 : 5;
    int64_t n64 = bench_ops(&o, 1000000, 200000);
    char extra[256];

    struct bench_stats c64 = scaled(stream(STREAM_C64, 0, rounds, n64, n64 / 10), 1e-6);
    snprintf(extra, sizeof extra,
             "\"table\":\"%s\",\"short\":\"skproc 64 B\",\"baseline\":\"msg.tput64.pipe\","
             "\"messages\":%" PRId64 ",\"format\":\"c#\",\"bytes\":%d",
             TABLE_64, n64, REC);
    bench_emit(AREA, "msg.tput64.skproc", "skproc one way, 64-byte messages (\"c#\" of 64)",
               "M msg/s", c64.median, &c64, extra);
    snprintf(extra, sizeof extra, "\"table\":\"%s\"", TABLE_64);
    bench_emit(AREA, "msg.tput64.skproc.ns", "skproc one way, 64-byte messages: time per message",
               "ns", 1e3 / c64.median, NULL, extra);

    struct bench_stats b64 = scaled(stream(STREAM_B64, 0, rounds, n64, n64 / 10), 1e-6);
    snprintf(extra, sizeof extra,
             "\"table\":\"%s\",\"short\":\"skproc 64 B as B\",\"baseline\":\"msg.tput64.pipe\","
             "\"messages\":%" PRId64 ",\"format\":\"B\",\"bytes\":%d",
             TABLE_64, n64, REC);
    bench_emit(AREA, "msg.tput64b.skproc",
               "skproc one way, 64-byte messages as \"B\" (a malloc'ed copy each)", "M msg/s",
               b64.median, &b64, extra);

    int64_t n1m = bench_ops(&o, 1000, 200);
    struct bench_stats b1m = stream(STREAM_B1M, 64 * MIB, rounds, n1m, 80);
    snprintf(extra, sizeof extra,
             "\"table\":\"%s\",\"short\":\"skproc 1 MiB\",\"baseline\":\"msg.tput1m.pipe\","
             "\"messages\":%" PRId64 ",\"format\":\"B\",\"bytes\":%zu,\"capacity\":%zu",
             TABLE_1M, n1m, MIB, 64 * MIB);
    struct bench_stats gbs = scaled(b1m, (double)MIB / 1e9);
    bench_emit(AREA, "msg.tput1m.skproc", "skproc one way, 1 MiB messages (\"B\", capacity 64 MiB)",
               "GB/s", gbs.median, &gbs, extra);
    snprintf(extra, sizeof extra, "\"table\":\"%s\"", TABLE_1M);
    bench_emit(AREA, "msg.tput1m.skproc.nsb", "skproc one way, 1 MiB messages: time per byte",
               "ns/B", 1.0 / gbs.median, NULL, extra);
    return 0;
}
