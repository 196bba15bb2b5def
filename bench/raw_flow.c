/* SPDX-License-Identifier: MIT */
/*
 * The physical floor of a flow (bench_flow.c is skproc's side, py_flow.py
 * Python's): a chain of three forked stage processes joined by pipes,
 *
 *     parent -> s1 -> s2 -> s3 -> parent
 *
 * each stage adding 1 to every 64-byte record (a uint64 value and 56 bytes
 * of padding) that passes through it, nothing else in the way: fork, pipe,
 * read and write only.
 *
 *   flow.tput.raw             2M records (quick 300,000), batched: the
 *                             parent writes batches of 64 records (4 KiB,
 *                             one write each) from a writer thread while
 *                             the main thread reads; a stage reads what is
 *                             there, up to 4 KiB (64 records), adds 1 to
 *                             every whole record, writes them on with one
 *                             write and keeps a partial record for the next
 *                             read; tasks/s, from the writer thread's start
 *                             to the end of the stream at the parent
 *   flow.tput.raw_unbatched   the same, 400,000 records (quick 60,000), with
 *                             one record per read and per write everywhere
 *   flow.lat.raw              one record at a time: the parent writes it,
 *                             it goes through the 3 stages, the parent reads
 *                             it back; median microseconds of 20,000 round
 *                             trips (quick 3,000) after 200 untimed
 *   flow.payload.raw          the floor of 1 MiB payloads touched in place:
 *   flow.payload.raw_tasks    16 payloads in one MAP_SHARED mapping made
 *                             before the fork; only a payload's offset (8
 *                             bytes) goes down the chain. A stage reads up
 *                             to 64 offsets, and for each runs
 *                             bench_touch_payload (common.h: sums every
 *                             8-byte word, adds 1 to the first word of every
 *                             4 KiB page), stores the sum in a table in the
 *                             mapping and writes the offset on at once. The
 *                             parent keeps the 16 payloads going round: it
 *                             writes every offset that comes back (after
 *                             checking the 3 sums) into s1 again, in one
 *                             write, until 10,000 payloads (quick 2,000)
 *                             went through; payload bytes per second (GB =
 *                             10^9 bytes, each payload counted once, not
 *                             per step) and payloads per second, from the
 *                             first write to the last payload back. One
 *                             untimed round of the 16 first (the stages'
 *                             first touch of each page faults). 0 copies:
 *                             the bytes never leave the mapping; at the end
 *                             (untimed) every payload must hold exactly
 *                             what its touches leave in place.
 *
 * Each measurement forks a fresh chain (not timed). The pipes keep their
 * default size (64 KiB: 16 batches in flight per pipe). The end of the
 * stream is EOF: the writer closes its end, each stage closes its output
 * when its input ends, and the parent checks that exactly N records came
 * back, each value + 3 and in order (pipes are FIFO). Every stage is
 * waitpid()ed and must have exited with status 0.
 *
 * Records are never split on purpose, but a stage does not count on a read
 * returning whole records: whatever arrives is appended to what it holds and
 * only whole records are passed on (the rest waits for the next read).
 * --ops N sets the count of every measurement.
 */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA "flows"
#define STAGES 3
#define BATCH 64 /* records per write: 4 KiB, = PIPE_BUF on Linux */
#define WARMUP 200
#define PAYLOADS 16 /* payloads in flight (bench_flow.c's payload row: the same) */

typedef struct {
    uint64_t value;
    uint64_t pad[7];
} record;

_Static_assert(sizeof(record) == 64, "a record is 64 bytes");

/* Reads up to len bytes, retrying on EINTR; 0 at EOF. */
static size_t read_some(int fd, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0)
            return (size_t)n;
        BENCH_CHECK(errno == EINTR, "read");
    }
}

/* Reads exactly len bytes; false at a clean EOF (nothing read); a stream
 * that ends inside the len bytes is an error. */
static bool read_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        size_t n = read_some(fd, p + got, len - got);
        if (n == 0) {
            BENCH_CHECK(got == 0, "a whole record before EOF");
            return false;
        }
        got += n;
    }
    return true;
}

/* ------------------------------------------------------------- stages */

static void stage_batched(int in, int out, int stage)
{
    (void)stage;
    static record buf[BATCH];
    size_t have = 0; /* bytes in buf */
    for (;;) {
        size_t n = read_some(in, (char *)buf + have, sizeof buf - have);
        if (n == 0) {
            BENCH_CHECK(have == 0, "a whole record before EOF");
            return;
        }
        have += n;
        size_t whole = have / sizeof(record);
        for (size_t i = 0; i < whole; i++)
            buf[i].value += 1;
        if (whole == 0)
            continue;
        bench_write_all(out, buf, whole * sizeof(record));
        size_t rest = have - whole * sizeof(record);
        memmove(buf, (char *)buf + whole * sizeof(record), rest);
        have = rest;
    }
}

static void stage_unbatched(int in, int out, int stage)
{
    (void)stage;
    record r;
    while (read_exact(in, &r, sizeof r)) {
        r.value += 1;
        bench_write_all(out, &r, sizeof r);
    }
}

/* The payload row's shared mapping, made before the stages are forked:
 * PAYLOADS payloads of 1 MiB, then each stage's sum of each payload from its
 * last touch (what the raw stages have instead of a record). */
static struct {
    unsigned char *base;
    uint64_t (*sums)[STAGES];
    size_t size;
} area;

/* Reads offsets (up to 64 at a time), touches the payload at each in place
 * and writes the offset on at once, so that the next stage can start on it
 * while this one touches the next. */
static void stage_payload(int in, int out, int stage)
{
    static uint64_t off[BATCH];
    size_t have = 0; /* bytes in off */
    for (;;) {
        size_t n = read_some(in, (char *)off + have, sizeof off - have);
        if (n == 0) {
            BENCH_CHECK(have == 0, "a whole offset before EOF");
            return;
        }
        have += n;
        size_t whole = have / sizeof off[0];
        for (size_t i = 0; i < whole; i++) {
            size_t slot = off[i] / BENCH_PAYLOAD_BYTES;
            BENCH_CHECK(off[i] % BENCH_PAYLOAD_BYTES == 0 && slot < PAYLOADS, "a payload's offset");
            area.sums[slot][stage] = bench_touch_payload((uint64_t *)(area.base + off[i]));
            bench_write_all(out, &off[i], sizeof off[i]);
        }
        size_t rest = have - whole * sizeof off[0];
        memmove(off, (char *)off + whole * sizeof off[0], rest);
        have = rest;
    }
}

/* ------------------------------------------------------------- chain */

typedef struct {
    pid_t pid[STAGES];
    int to, from; /* the parent's ends: into s1, out of s3 */
} chain;

/* Forks the three stages, each running stage(in, out, its index); pipe k
 * runs into stage k (pipe 0 from the parent, pipe STAGES back to it). Each
 * stage keeps only its two ends, so that EOF travels down the chain. */
static chain start_chain(void (*stage)(int in, int out, int stage))
{
    int p[STAGES + 1][2];
    for (int k = 0; k <= STAGES; k++)
        BENCH_CHECK(pipe2(p[k], O_CLOEXEC) == 0, "pipe2");
    chain c;
    for (int s = 0; s < STAGES; s++) {
        fflush(stdout);
        pid_t pid = fork();
        BENCH_CHECK(pid >= 0, "fork");
        if (pid == 0) {
            for (int k = 0; k <= STAGES; k++) {
                if (k != s)
                    close(p[k][0]);
                if (k != s + 1)
                    close(p[k][1]);
            }
            stage(p[s][0], p[s + 1][1], s);
            close(p[s + 1][1]);
            _exit(0);
        }
        c.pid[s] = pid;
    }
    for (int k = 0; k <= STAGES; k++) {
        if (k != 0)
            close(p[k][1]);
        if (k != STAGES)
            close(p[k][0]);
    }
    c.to = p[0][1];
    c.from = p[STAGES][0];
    return c;
}

/* Closes the parent's ends (if still open) and reaps every stage. */
static void stop_chain(chain *c)
{
    if (c->to >= 0)
        close(c->to);
    close(c->from);
    for (int s = 0; s < STAGES; s++) {
        int status;
        while (waitpid(c->pid[s], &status, 0) < 0)
            BENCH_CHECK(errno == EINTR, "waitpid");
        BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a stage's exit");
    }
}

/* --------------------------------------------------------- throughput */

struct writer {
    int fd;
    long n;
    bool batched;
};

static void *write_records(void *arg)
{
    struct writer *w = arg;
    static record batch[BATCH];
    memset(batch, 0, sizeof batch);
    long per = w->batched ? BATCH : 1;
    for (long i = 0; i < w->n; i += per) {
        long k = w->n - i < per ? w->n - i : per;
        for (long j = 0; j < k; j++)
            batch[j].value = (uint64_t)(i + j);
        bench_write_all(w->fd, batch, (size_t)k * sizeof(record));
    }
    close(w->fd); /* the end of the stream */
    return NULL;
}

/* Records per second through a fresh chain. */
static double throughput(long n, bool batched)
{
    chain c = start_chain(batched ? stage_batched : stage_unbatched);
    struct writer w = {c.to, n, batched};
    static record buf[BATCH];
    size_t have = 0;
    uint64_t next = 0; /* the value the next record was sent with */
    pthread_t th;
    int64_t t0 = bench_now_ns();
    BENCH_CHECK(pthread_create(&th, NULL, write_records, &w) == 0, "pthread_create");
    for (;;) {
        size_t got;
        if (batched) {
            got = read_some(c.from, (char *)buf + have, sizeof buf - have);
        } else {
            got = read_exact(c.from, buf, sizeof(record)) ? sizeof(record) : 0;
        }
        if (got == 0)
            break;
        have += got;
        size_t whole = have / sizeof(record);
        for (size_t i = 0; i < whole; i++, next++) {
            if (buf[i].value != next + STAGES) {
                fprintf(stderr, "raw_flow: record %llu came back as %llu\n",
                        (unsigned long long)next, (unsigned long long)buf[i].value);
                exit(1);
            }
        }
        size_t rest = have - whole * sizeof(record);
        memmove(buf, (char *)buf + whole * sizeof(record), rest);
        have = rest;
    }
    int64_t t1 = bench_now_ns();
    BENCH_CHECK(pthread_join(th, NULL) == 0, "pthread_join");
    if (have != 0 || next != (uint64_t)n) {
        fprintf(stderr, "raw_flow: %llu of %ld records came back (%zu stray bytes)\n",
                (unsigned long long)next, n, have);
        exit(1);
    }
    c.to = -1; /* closed by the writer */
    stop_chain(&c);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

/* ------------------------------------------------------------ latency */

/* Median microseconds of a round trip of one record; st gets the rest. */
static double latency(long n, struct bench_stats *st)
{
    chain c = start_chain(stage_unbatched);
    double *us = malloc((size_t)n * sizeof *us);
    BENCH_CHECK(us != NULL, "malloc");
    for (long i = -WARMUP; i < n; i++) {
        record r = {.value = (uint64_t)(i + WARMUP)};
        int64_t t0 = bench_now_ns();
        bench_write_all(c.to, &r, sizeof r);
        BENCH_CHECK(read_exact(c.from, &r, sizeof r), "a record back");
        int64_t t1 = bench_now_ns();
        BENCH_CHECK(r.value == (uint64_t)(i + WARMUP + STAGES), "a round trip's record");
        if (i >= 0)
            us[i] = (double)(t1 - t0) / 1e3;
    }
    stop_chain(&c);
    *st = bench_summarize(us, n);
    free(us);
    return st->median;
}

/* ----------------------------------------------------------- payloads */

/* n passes of payloads through the chain, PAYLOADS (or n) of them in
 * flight: every offset that comes back is checked (the 3 stages' sums of
 * its bytes) and, while passes are left, written into s1 again; one write
 * for all that came back in one read. sum[] is what each payload's words
 * add up to now, passes[] how often each went through. */
static void payload_passes(chain *c, long n, uint64_t *sum, uint64_t *passes)
{
    static uint64_t buf[PAYLOADS], again[PAYLOADS];
    long sent = n < PAYLOADS ? n : PAYLOADS, back = 0;
    for (long j = 0; j < sent; j++)
        again[j] = (uint64_t)j * BENCH_PAYLOAD_BYTES;
    bench_write_all(c->to, again, (size_t)sent * sizeof again[0]);
    size_t have = 0; /* bytes in buf */
    while (back < n) {
        size_t got = read_some(c->from, (char *)buf + have, sizeof buf - have);
        BENCH_CHECK(got > 0, "the payloads back");
        have += got;
        size_t whole = have / sizeof buf[0], k = 0;
        for (size_t i = 0; i < whole; i++) {
            size_t slot = buf[i] / BENCH_PAYLOAD_BYTES;
            BENCH_CHECK(buf[i] % BENCH_PAYLOAD_BYTES == 0 && slot < PAYLOADS, "a payload's offset");
            for (int st = 0; st < STAGES; st++) {
                if (area.sums[slot][st] != sum[slot] + (uint64_t)st * BENCH_PAYLOAD_PAGES) {
                    fprintf(stderr, "raw_flow: stage %d's sum of payload %zu is wrong\n", st, slot);
                    exit(1);
                }
            }
            sum[slot] += STAGES * BENCH_PAYLOAD_PAGES;
            passes[slot]++;
            back++;
            if (sent < n) {
                again[k++] = buf[i];
                sent++;
            }
        }
        if (k > 0)
            bench_write_all(c->to, again, k * sizeof again[0]);
        size_t rest = have - whole * sizeof buf[0];
        memmove(buf, (char *)buf + whole * sizeof buf[0], rest);
        have = rest;
    }
}

/* Payload bytes per second through a fresh chain of payload stages;
 * *tasks gets payloads per second. */
static double payload_throughput(long n, double *tasks)
{
    area.size = PAYLOADS * BENCH_PAYLOAD_BYTES + sizeof(uint64_t[PAYLOADS][STAGES]);
    void *m = mmap(NULL, area.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(m != MAP_FAILED, "mmap");
    area.base = m;
    area.sums = (void *)(area.base + PAYLOADS * BENCH_PAYLOAD_BYTES);
    uint64_t sum[PAYLOADS], passes[PAYLOADS] = {0};
    for (size_t s = 0; s < PAYLOADS; s++)
        sum[s] = bench_payload_fill((uint64_t *)(area.base + s * BENCH_PAYLOAD_BYTES), s);
    chain c = start_chain(stage_payload);
    payload_passes(&c, PAYLOADS, sum, passes); /* not timed: every page faults in */
    int64_t t0 = bench_now_ns();
    payload_passes(&c, n, sum, passes);
    int64_t t1 = bench_now_ns();
    stop_chain(&c);
    for (size_t s = 0; s < PAYLOADS; s++) {
        const uint64_t *w = (const uint64_t *)(area.base + s * BENCH_PAYLOAD_BYTES);
        if (!bench_payload_check(w, s, STAGES * passes[s], sum[s])) {
            fprintf(stderr, "raw_flow: payload %zu is not what its touches leave\n", s);
            exit(1);
        }
    }
    munmap(m, area.size);
    double secs = (double)(t1 - t0) / 1e9;
    *tasks = (double)n / secs;
    return (double)n * (double)BENCH_PAYLOAD_BYTES / secs / 1e9;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    bench_print_info("raw_flow");
    signal(SIGPIPE, SIG_IGN); /* a stage that dies: EPIPE, a message, exit 1 */
    char extra[160];

    long n = bench_ops(&o, 2000000, 300000);
    double tput = throughput(n, true);
    snprintf(extra, sizeof extra,
             "\"short\":\"raw batched pipes\",\"tasks\":%ld,\"batch\":%d,\"stages\":%d", n, BATCH,
             STAGES);
    bench_emit(AREA, "flow.tput.raw", "raw 3-stage pipe chain, 64-byte records, batches of 64",
               "tasks/s", tput, NULL, extra);

    long n1 = bench_ops(&o, 400000, 60000);
    double tput1 = throughput(n1, false);
    snprintf(extra, sizeof extra, "\"short\":\"raw unbatched pipes\",\"tasks\":%ld,\"stages\":%d",
             n1, STAGES);
    bench_emit(AREA, "flow.tput.raw_unbatched",
               "raw 3-stage pipe chain, 64-byte records, one per read/write", "tasks/s", tput1,
               NULL, extra);

    struct bench_stats st;
    long nl = bench_ops(&o, 20000, 3000);
    double lat = latency(nl, &st);
    bench_emit(AREA, "flow.lat.raw", "raw 3-stage pipe chain, one 64-byte record round trip", "us",
               lat, &st, "\"short\":\"raw pipe chain\"");

    long np = bench_ops(&o, 10000, 2000);
    double ptasks;
    double gbs = payload_throughput(np, &ptasks);
    snprintf(extra, sizeof extra,
             "\"short\":\"raw shared payloads\",\"tasks\":%ld,\"payload_bytes\":%zu,"
             "\"in_flight\":%d,\"copies_per_step\":0",
             np, BENCH_PAYLOAD_BYTES, PAYLOADS);
    bench_emit(AREA, "flow.payload.raw",
               "raw 3-stage chain, 1 MiB payloads in shared memory touched in place, offsets by "
               "pipe (0 copies per step)",
               "GB/s", gbs, NULL, extra);
    snprintf(extra, sizeof extra, "\"short\":\"raw shared payloads\",\"tasks\":%ld", np);
    bench_emit(AREA, "flow.payload.raw_tasks",
               "raw 3-stage chain, 1 MiB payloads: payloads per second", "tasks/s", ptasks, NULL,
               extra);
    return 0;
}
