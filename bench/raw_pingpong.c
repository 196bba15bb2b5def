/* SPDX-License-Identifier: MIT */
/*
 * Messaging baselines: the physical floor of what bench_messaging.c times,
 * between a parent and one forked child, with no framing and no types.
 *
 *   msg.rt.pipe        round trip of 8 bytes over two pipes: the parent
 *                      write()s an int64 to the child's pipe, the child's
 *                      blocking read() gets it and write()s it back on the
 *                      other pipe, the parent's blocking read() gets it
 *   msg.rt.futex       the same over one shared page (MAP_SHARED, mapped
 *                      before the fork): the parent stores the int64 and a
 *                      sequence number, FUTEX_WAKEs the child (which waits
 *                      in FUTEX_WAIT on that word while it is unchanged),
 *                      then FUTEX_WAITs on the child's answer word, which
 *                      the child stores and FUTEX_WAKEs. No spinning: a
 *                      side with nothing to read sleeps at once, as skproc's
 *                      sk_listen does.
 *                      Both round trips are timed one by one, 20000 each
 *                      (quick 2000) after 200 untimed, in alternating blocks
 *                      of 500 (pipe, futex, pipe, ...) so that the machine's
 *                      load hits both alike. The value is the median round
 *                      trip in microseconds; the line carries "pct" and
 *                      "cdf" as bench_messaging.c's does; a second row gives
 *                      the 99th percentile. Pinned: the parent on the first
 *                      CPU this program may use, the children on the second.
 *   msg.rt.pipe.cpu1, msg.rt.futex.cpu1
 *                      the same with parent and children on the first CPU
 *   msg.tput64.pipe    one way, child to parent: the child write()s 64-byte
 *                      records, one write() per record (one message per
 *                      call, as sk_tell), into a pipe enlarged to 1 MiB with
 *                      F_SETPIPE_SZ (skproc's default capacity); the parent
 *                      read()s up to 64 KiB at a time (records are
 *                      fixed-size: no framing needed) and checks each
 *                      record's number. Million records per second, median
 *                      of 5 rounds (quick 3) of 1000000 records (quick
 *                      200000), timed from the parent's "go" (the count,
 *                      written on a second pipe) to the last byte read
 *   msg.tput1m.pipe    the same with 1 MiB blocks, one write() per block,
 *                      the parent read()ing into a 1 MiB buffer; GB/s of
 *                      payload (10^9 bytes), median of 5 rounds (quick 3)
 *                      of 1000 MiB (quick 200 MiB), after an untimed round
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#endif
#include "common.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA "messaging"
#define TABLE_64 "one way (child to parent), 64-byte messages"
#define TABLE_1M "one way (child to parent), 1 MiB messages"
#define REC 64
#define MIB ((size_t)1 << 20)
#define BLOCK 500

/* ------------------------------------------------------- distribution */

/* Sorts v and emits the row of a latency distribution in microseconds,
 * with "pct" and "cdf" members; for the main placement, then a row of its
 * 99th percentile. */
static void emit_latency(const char *key, const char *name, const char *short_name,
                         const char *baseline, const char *table, bool p99_row, double *v, long n)
{
    struct bench_stats st = bench_summarize(v, n);
    size_t cap = 4096;
    char *extra = malloc(cap);
    BENCH_CHECK(extra != NULL, "malloc");
    int len = snprintf(extra, cap, "\"short\":\"%s\"", short_name);
    if (baseline != NULL)
        len += snprintf(extra + len, cap - (size_t)len, ",\"baseline\":\"%s\"", baseline);
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
    len = snprintf(extra99, sizeof extra99,
                   "\"table\":\"round trip, 99th percentile\",\"short\":\"%s p99\"", short_name);
    if (baseline != NULL)
        snprintf(extra99 + len, sizeof extra99 - (size_t)len, ",\"baseline\":\"%s.p99\"", baseline);
    bench_emit(AREA, key99, name99, "us", bench_percentile(v, n, 99), NULL, extra99);
}

/* ---------------------------------------------------------- plumbing */

static void reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        BENCH_CHECK(errno == EINTR, "waitpid");
    BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's exit");
}

/* ------------------------------------------------------ pipe ping-pong */

struct pipe_pp {
    pid_t pid;
    int to_child, from_child;
};

static struct pipe_pp pipe_start(int cpu)
{
    int down[2], up[2];
    BENCH_CHECK(pipe2(down, O_CLOEXEC) == 0 && pipe2(up, O_CLOEXEC) == 0, "pipe2");
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (pin(cpu) != 0)
            _exit(1);
        close(down[1]);
        close(up[0]);
        int64_t v;
        while (bench_read_full(down[0], &v, sizeof v))
            if (!bench_write_full(up[1], &v, sizeof v))
                _exit(1);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    return (struct pipe_pp){pid, down[1], up[0]};
}

static double pipe_round_trip(struct pipe_pp *pp, int64_t i)
{
    int64_t back = -1;
    int64_t t0 = bench_now_ns();
    bool ok = bench_write_full(pp->to_child, &i, sizeof i) &&
              bench_read_full(pp->from_child, &back, sizeof back);
    int64_t t1 = bench_now_ns();
    BENCH_CHECK(ok && back == i, "pipe round trip");
    return (double)(t1 - t0) / 1e3;
}

static void pipe_stop(struct pipe_pp *pp)
{
    close(pp->to_child); /* the child's read() sees the end of file */
    close(pp->from_child);
    reap(pp->pid);
}

/* ----------------------------------------------------- futex ping-pong */

struct futex_page {
    _Alignas(64) _Atomic uint32_t ping; /* the parent's sequence number */
    int64_t ping_value;
    _Alignas(64) _Atomic uint32_t pong; /* the child's answer */
    int64_t pong_value;
};

#define FUTEX_STOP UINT32_MAX

static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
    /* Shared futexes (no FUTEX_PRIVATE_FLAG): the page is shared by two
     * processes. */
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

/* Waits until *word differs from seen; returns the new value. */
static uint32_t futex_wait_change(_Atomic uint32_t *word, uint32_t seen)
{
    uint32_t v;
    while ((v = atomic_load_explicit(word, memory_order_acquire)) == seen)
        futex(word, FUTEX_WAIT, seen);
    return v;
}

struct futex_pp {
    pid_t pid;
    struct futex_page *page;
    uint32_t seq;
};

static struct futex_pp futex_start(int cpu)
{
    struct futex_page *page =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(page != MAP_FAILED, "mmap");
    atomic_store(&page->ping, 0);
    atomic_store(&page->pong, 0);
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (pin(cpu) != 0)
            _exit(1);
        uint32_t seen = 0;
        for (;;) {
            seen = futex_wait_change(&page->ping, seen);
            if (seen == FUTEX_STOP)
                _exit(0);
            page->pong_value = page->ping_value;
            atomic_store_explicit(&page->pong, seen, memory_order_release);
            futex(&page->pong, FUTEX_WAKE, 1);
        }
    }
    return (struct futex_pp){pid, page, 0};
}

static double futex_round_trip(struct futex_pp *fp, int64_t i)
{
    struct futex_page *page = fp->page;
    uint32_t seq = ++fp->seq;
    int64_t t0 = bench_now_ns();
    page->ping_value = i;
    atomic_store_explicit(&page->ping, seq, memory_order_release);
    futex(&page->ping, FUTEX_WAKE, 1);
    futex_wait_change(&page->pong, seq - 1);
    int64_t back = page->pong_value;
    int64_t t1 = bench_now_ns();
    BENCH_CHECK(back == i, "futex round trip");
    return (double)(t1 - t0) / 1e3;
}

static void futex_stop(struct futex_pp *fp)
{
    atomic_store(&fp->page->ping, FUTEX_STOP);
    futex(&fp->page->ping, FUTEX_WAKE, 1);
    reap(fp->pid);
    munmap(fp->page, 4096);
}

static void round_trips(const struct placement *pl, long n)
{
    BENCH_CHECK(pin(pl->parent_cpu) == 0, "sched_setaffinity");
    struct pipe_pp pp = pipe_start(pl->child_cpu);
    struct futex_pp fp = futex_start(pl->child_cpu);
    double *pipe_us = malloc((size_t)n * sizeof(double));
    double *futex_us = malloc((size_t)n * sizeof(double));
    BENCH_CHECK(pipe_us != NULL && futex_us != NULL, "malloc");
    for (int64_t i = 0; i < 200; i++) { /* warm up */
        pipe_round_trip(&pp, i);
        futex_round_trip(&fp, i);
    }
    for (long done = 0; done < n;) {
        long end = done + BLOCK < n ? done + BLOCK : n;
        for (long i = done; i < end; i++)
            pipe_us[i] = pipe_round_trip(&pp, i);
        for (long i = done; i < end; i++)
            futex_us[i] = futex_round_trip(&fp, i);
        done = end;
    }
    futex_stop(&fp); /* first: its child holds copies of the pipes' ends */
    pipe_stop(&pp);
    unpin();

    char key[64], name[160], short_name[64], baseline[64];
    snprintf(key, sizeof key, "msg.rt.pipe%s", pl->suffix);
    snprintf(name, sizeof name, "raw pipe ping-pong, 8 bytes each way%s", pl->label);
    snprintf(short_name, sizeof short_name, "raw pipe%s", pl->main ? "" : " (one CPU)");
    emit_latency(key, name, short_name, NULL, pl->table, pl->main, pipe_us, n);
    snprintf(baseline, sizeof baseline, "%s", key);
    snprintf(key, sizeof key, "msg.rt.futex%s", pl->suffix);
    snprintf(name, sizeof name, "raw futex + shared page ping-pong%s", pl->label);
    snprintf(short_name, sizeof short_name, "raw futex%s", pl->main ? "" : " (one CPU)");
    emit_latency(key, name, short_name, baseline, pl->table, pl->main, futex_us, n);
    free(pipe_us);
    free(futex_us);
}

/* ------------------------------------------------------------- one way */

struct pipe_stream {
    pid_t pid;
    int go, data; /* the parent's ends */
    int pipe_size;
};

/* A child that waits for a count on the go pipe and writes that many
 * records of size bytes, one write() each, until the go pipe closes. */
static struct pipe_stream pipe_stream_start(size_t size)
{
    int go[2], data[2];
    BENCH_CHECK(pipe2(go, O_CLOEXEC) == 0 && pipe2(data, O_CLOEXEC) == 0, "pipe2");
    int got = fcntl(data[1], F_SETPIPE_SZ, (int)MIB);
    BENCH_CHECK(got >= 0, "F_SETPIPE_SZ");
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(go[1]);
        close(data[0]);
        char *buf = malloc(size);
        if (buf == NULL)
            _exit(1);
        memset(buf, 'x', size);
        int64_t count;
        while (bench_read_full(go[0], &count, sizeof count)) {
            for (int64_t i = 0; i < count; i++) {
                memcpy(buf, &i, sizeof i);
                if (!bench_write_full(data[1], buf, size))
                    _exit(1);
            }
        }
        _exit(0);
    }
    close(go[0]);
    close(data[1]);
    return (struct pipe_stream){pid, go[1], data[0], got};
}

/* One round: count records of size bytes; returns the seconds. */
static double pipe_stream_round(struct pipe_stream *ps, size_t size, int64_t count, char *buf,
                                size_t buflen)
{
    int64_t t0 = bench_now_ns();
    BENCH_CHECK(bench_write_full(ps->go, &count, sizeof count), "write of the count");
    uint64_t total = (uint64_t)count * size, got = 0;
    while (got < total) {
        size_t want = buflen;
        if (want > total - got)
            want = (size_t)(total - got);
        ssize_t n = read(ps->data, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        BENCH_CHECK(n > 0, "read of the stream");
        /* Check the numbers of the records that start in this read. */
        for (uint64_t at = (got + size - 1) / size * size;
             at + sizeof(int64_t) <= got + (uint64_t)n; at += size) {
            int64_t v;
            memcpy(&v, buf + (at - got), sizeof v);
            BENCH_CHECK(v == (int64_t)(at / size), "the record's number");
        }
        got += (uint64_t)n;
    }
    return (double)(bench_now_ns() - t0) / 1e9;
}

static struct bench_stats pipe_stream(size_t size, size_t buflen, int rounds, int64_t count,
                                      int64_t warm, int *pipe_size)
{
    struct pipe_stream ps = pipe_stream_start(size);
    char *buf = malloc(buflen);
    BENCH_CHECK(buf != NULL, "malloc");
    memset(buf, 0, buflen);
    pipe_stream_round(&ps, size, warm, buf, buflen);
    double rate[16];
    for (int r = 0; r < rounds && r < 16; r++)
        rate[r] = (double)count / pipe_stream_round(&ps, size, count, buf, buflen);
    close(ps.go);
    close(ps.data);
    reap(ps.pid);
    free(buf);
    *pipe_size = ps.pipe_size;
    return bench_summarize(rate, rounds);
}

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
    bench_print_info("raw_pingpong");

    pick_cpus();
    struct placement pl[2];
    int npl = placements(pl);
    for (int i = 0; i < npl; i++)
        round_trips(&pl[i], bench_ops(&o, 20000, 2000));

    int rounds = o.quick ? 3 : 5, pipe_size;
    char extra[256];
    int64_t n64 = bench_ops(&o, 1000000, 200000);
    struct bench_stats r64 =
        scaled(pipe_stream(REC, 64 << 10, rounds, n64, n64 / 10, &pipe_size), 1e-6);
    snprintf(extra, sizeof extra,
             "\"table\":\"%s\",\"short\":\"raw pipe 64 B\",\"messages\":%" PRId64
             ",\"bytes\":%d,\"pipe_size\":%d",
             TABLE_64, n64, REC, pipe_size);
    bench_emit(AREA, "msg.tput64.pipe", "raw pipe, 64-byte records (a write() each, 1 MiB pipe)",
               "M msg/s", r64.median, &r64, extra);

    int64_t n1m = bench_ops(&o, 1000, 200);
    struct bench_stats r1m =
        scaled(pipe_stream(MIB, MIB, rounds, n1m, 80, &pipe_size), (double)MIB / 1e9);
    snprintf(extra, sizeof extra,
             "\"table\":\"%s\",\"short\":\"raw pipe 1 MiB\",\"messages\":%" PRId64
             ",\"bytes\":%zu,\"pipe_size\":%d",
             TABLE_1M, n1m, MIB, pipe_size);
    bench_emit(AREA, "msg.tput1m.pipe", "raw pipe, 1 MiB blocks (a write() each, 1 MiB pipe)",
               "GB/s", r1m.median, &r1m, extra);
    return 0;
}
