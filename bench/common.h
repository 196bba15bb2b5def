/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the skproc benchmarks (header only: SCons builds every
 * bench/NAME.c into its own program, so there is nothing to link).
 *
 * A benchmark program prints one JSON object per line on stdout, one per
 * measurement, and nothing else there (diagnostics go to stderr):
 *
 *   {"type":"info","compiler":"gcc 12.2.0",...}                 (once, first)
 *   {"area":"process start","key":"start.raw","name":"...","unit":"us",
 *    "value":41.2,"median":41.2,"min":38.0,"max":95.1,"mean":43.0,"n":2000}
 *
 * "value" is the number bench/run.py keeps for one repetition (one run of
 * the program); "median".."n" describe the ops inside that repetition.
 * bench/README.md has the whole format. Flags every program accepts:
 *   --quick      fewer operations (the whole quick suite must stay well
 *                under a minute)
 *   --ops N      override the operation count of every measurement
 * and may add boolean flags of its own (bench_parse's extra list).
 */
#ifndef SKPROC_BENCH_COMMON_H
#define SKPROC_BENCH_COMMON_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_NS_PER_SEC INT64_C(1000000000)

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * BENCH_NS_PER_SEC + ts.tv_nsec;
}

/* ------------------------------------------------------------- options */

struct bench_opts {
    bool quick;
    long ops;        /* 0: each measurement's own default */
    unsigned extras; /* bit i: the program's extra flag i was given */
};

static inline void bench_usage(const char *prog, const char *const *extra, FILE *to)
{
    fprintf(to, "usage: %s [--quick] [--ops N]", prog);
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        fprintf(to, " [%s]", extra[i]);
    fprintf(to, "\nPrints one JSON object per measurement on stdout (see bench/README.md).\n");
}

/* extra: a NULL-terminated list of the program's own boolean flags (at
 * most 32), or NULL; each one given sets its bit in extras. */
static inline struct bench_opts bench_parse(int argc, char **argv, const char *const *extra)
{
    struct bench_opts o = {false, 0, 0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o.quick = true;
            continue;
        }
        if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            o.ops = strtol(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || o.ops <= 0) {
                fprintf(stderr, "%s: --ops wants a positive integer\n", argv[0]);
                exit(2);
            }
            continue;
        }
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            bench_usage(argv[0], extra, stdout);
            exit(0);
        }
        bool known = false;
        for (unsigned k = 0; extra != NULL && extra[k] != NULL && k < 32; k++) {
            if (strcmp(argv[i], extra[k]) == 0) {
                o.extras |= 1u << k;
                known = true;
            }
        }
        if (!known) {
            bench_usage(argv[0], extra, stderr);
            exit(2);
        }
    }
    return o;
}

/* The operation count of one measurement: --ops wins, then quick/normal. */
static inline long bench_ops(const struct bench_opts *o, long normal, long quick)
{
    if (o->ops > 0)
        return o->ops;
    return o->quick ? quick : normal;
}

/* Stops a checked call that must not fail with a message on stderr. */
#define BENCH_CHECK(cond, what)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "bench: %s failed at %s:%d (errno %d: %s)\n", (what), __FILE__,        \
                    __LINE__, errno, strerror(errno));                                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------- statistics */

struct bench_stats {
    double median, min, max, mean;
    long n;
};

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0..100) of sorted v, interpolated between ranks;
 * NAN for no samples. */
static inline double bench_percentile(const double *v, long n, double p)
{
    if (n <= 0)
        return NAN;
    double rank = p / 100.0 * (double)(n - 1);
    long lo = (long)rank;
    if (lo >= n - 1)
        return v[n - 1];
    return v[lo] + (rank - (double)lo) * (v[lo + 1] - v[lo]);
}

/* Reads or writes exactly len bytes of a pipe (the raw baselines'),
 * retrying on EINTR and short transfers. The _full forms return false at
 * end of file or on an error; the _all forms stop the program there. (The
 * benches link only the library, not tests/support and its skt_read_all.) */
static inline bool bench_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static inline bool bench_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static inline void bench_read_all(int fd, void *buf, size_t len)
{
    BENCH_CHECK(bench_read_full(fd, buf, len), "read");
}

static inline void bench_write_all(int fd, const void *buf, size_t len)
{
    BENCH_CHECK(bench_write_full(fd, buf, len), "write");
}

/* Sorts v in place. */
static inline struct bench_stats bench_summarize(double *v, long n)
{
    struct bench_stats s = {0, 0, 0, 0, n};
    if (n <= 0)
        return s;
    qsort(v, (size_t)n, sizeof v[0], bench_cmp_double);
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += v[i];
    s.min = v[0];
    s.max = v[n - 1];
    s.mean = sum / (double)n;
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return s;
}

/* --------------------------------------------------------------- output */

/* Writes s as a JSON string (the names we print are plain ASCII). */
static inline void bench_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* The compiler that built this program, for the report's header. */
static inline void bench_print_info(const char *program)
{
    printf("{\"type\":\"info\",\"program\":");
    bench_json_string(program);
    printf(",\"compiler\":");
#if defined(__clang__)
    bench_json_string("clang " __clang_version__);
#elif defined(__GNUC__)
    bench_json_string("gcc " __VERSION__);
#else
    bench_json_string("unknown");
#endif
#if defined(__OPTIMIZE__)
    printf(",\"optimized\":true");
#else
    printf(",\"optimized\":false");
#endif
    printf("}\n");
    fflush(stdout);
}

/*
 * One measurement line. value is what run.py keeps for this repetition;
 * st (may be NULL) describes the ops inside it; extra (may be NULL) is
 * spliced in as more JSON members, e.g. "\"mem_mb\":256".
 */
static inline void bench_emit(const char *area, const char *key, const char *name, const char *unit,
                              double value, const struct bench_stats *st, const char *extra)
{
    printf("{\"area\":");
    bench_json_string(area);
    printf(",\"key\":");
    bench_json_string(key);
    printf(",\"name\":");
    bench_json_string(name);
    printf(",\"unit\":");
    bench_json_string(unit);
    printf(",\"value\":%.6g", value);
    if (st != NULL)
        printf(",\"median\":%.6g,\"min\":%.6g,\"max\":%.6g,\"mean\":%.6g,\"n\":%ld", st->median,
               st->min, st->max, st->mean, st->n);
    if (extra != NULL && *extra)
        printf(",%s", extra);
    printf("}\n");
    fflush(stdout);
}

/* ---------------------------------------------------- flow payloads
 * (bench_flow.c's payload steps and raw_flow.c's payload stages do the
 * same work with these same functions) */

#define BENCH_PAYLOAD_BYTES ((size_t)1 << 20) /* one payload: 1 MiB */
#define BENCH_PAYLOAD_WORDS (BENCH_PAYLOAD_BYTES / 8)
#define BENCH_PAGE_WORDS 512 /* 8-byte words in 4 KiB */
#define BENCH_PAYLOAD_PAGES (BENCH_PAYLOAD_WORDS / BENCH_PAGE_WORDS)

/* One step's work on one payload, in place: reads every 8-byte word and
 * returns their sum (as found, before this call's writes), and adds 1 to
 * the first word of every 4 KiB page, so every byte is read and every page
 * is written. The sum of the words therefore grows by BENCH_PAYLOAD_PAGES
 * with each call (mod 2^64), which lets the parent check every step's sum.
 * noinline: one copy of the code in each program, compiled the same way,
 * whatever the caller around it (unused: most programs have no caller). */
__attribute__((noinline, unused)) static uint64_t bench_touch_payload(uint64_t *words)
{
    uint64_t sum = 0;
    for (size_t page = 0; page < BENCH_PAYLOAD_WORDS; page += BENCH_PAGE_WORDS) {
        for (size_t k = 0; k < BENCH_PAGE_WORDS; k++)
            sum += words[page + k];
        words[page] += 1;
    }
    return sum;
}

/* The first contents of payload `slot`'s word k. */
static inline uint64_t bench_payload_word(size_t slot, size_t k)
{
    return (uint64_t)(slot * BENCH_PAYLOAD_WORDS + k + 1) * UINT64_C(0x9e3779b97f4a7c15);
}

/* Fills payload `slot` (not timed); returns the sum of its words. */
static inline uint64_t bench_payload_fill(uint64_t *words, size_t slot)
{
    uint64_t sum = 0;
    for (size_t k = 0; k < BENCH_PAYLOAD_WORDS; k++)
        sum += words[k] = bench_payload_word(slot, k);
    return sum;
}

/* After a run (not timed): true when payload `slot`, touched `touches`
 * times in all, holds exactly what that leaves in place: the first word of
 * each page grew by `touches`, every other word is as filled, and the sum
 * is `sum`. A step that worked on a copy would leave these bytes as they
 * were. */
static inline bool bench_payload_check(const uint64_t *words, size_t slot, uint64_t touches,
                                       uint64_t sum)
{
    uint64_t s = 0;
    for (size_t k = 0; k < BENCH_PAYLOAD_WORDS; k++) {
        uint64_t want = bench_payload_word(slot, k) + (k % BENCH_PAGE_WORDS == 0 ? touches : 0);
        if (words[k] != want)
            return false;
        s += words[k];
    }
    return s == sum;
}

/* ------------------------------------------------------ CPU placement
 * (the ping-pong benchmarks: bench_messaging.c, raw_pingpong.c) */

/* Where the wake-up of the other side costs what it costs depends on where
 * the two processes run: on one CPU a round trip is two context switches,
 * on two it is two cross-CPU wake-ups (an IPI to a sleeping CPU, which on a
 * virtual machine can cost more). Left to the scheduler, a ping-pong pair
 * moves between both cases from run to run, so each round trip is measured
 * pinned: the parent on the first CPU this program may use and the child on
 * the second (the main rows), then both on the first. */
static cpu_set_t usable;
static int cpu_a = -1, cpu_b = -1;

static inline void pick_cpus(void)
{
    BENCH_CHECK(sched_getaffinity(0, sizeof usable, &usable) == 0, "sched_getaffinity");
    for (int c = 0; c < CPU_SETSIZE && cpu_b < 0; c++) {
        if (!CPU_ISSET(c, &usable))
            continue;
        if (cpu_a < 0)
            cpu_a = c;
        else
            cpu_b = c;
    }
    BENCH_CHECK(cpu_a >= 0, "a usable CPU");
}

static inline int pin(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one);
}

static inline void unpin(void)
{
    BENCH_CHECK(sched_setaffinity(0, sizeof usable, &usable) == 0, "sched_setaffinity");
}

struct placement {
    const char *suffix; /* of the keys */
    const char *label;  /* of the names */
    const char *table;  /* NULL: the main table */
    int parent_cpu, child_cpu;
    bool main;
};

/* The placements to measure: two CPUs (the main rows) and one CPU; with a
 * single usable CPU, one CPU only, as the main rows. */
static inline int placements(struct placement *pl)
{
    if (cpu_b < 0) {
        pl[0] =
            (struct placement){"", " (one CPU: no second one usable)", NULL, cpu_a, cpu_a, true};
        return 1;
    }
    pl[0] = (struct placement){"", " (two CPUs)", NULL, cpu_a, cpu_b, true};
    pl[1] = (struct placement){".cpu1", " (one CPU)", "round trip, both on one CPU",
                               cpu_a,   cpu_a,        false};
    return 2;
}

#endif
