/* SPDX-License-Identifier: MIT */
/*
 * Flows, skproc's side (bench/raw_flow.c is the floor, bench/py_flow.py
 * the Python baseline):
 *
 *   flow.tput.skproc            3 steps, one process each, each adds 1 to a
 *                               64-byte task; batches of 64; one thread
 *                               submits 64 at a time (sk_flow_submit_many)
 *                               while the main thread collects up to 64 at
 *                               a time (as the raw floor writes and reads)
 *   flow.tput.skproc_unbatched  the same with batches of 1, one task per
 *                               submit and per collect call
 *   flow.lat.skproc             one task through the 3 steps at a time
 *                               (sk_flow_call), median
 *   flow.scale.skproc1/2        a ~1 ms CPU-bound handler, 1 and 2
 *                               processes in the step: tasks/s, and the
 *                               parallel efficiency of 2 over 1
 *   flow.payload.skproc         1 MiB payloads touched in place by 3 steps
 *   flow.payload.skproc_tasks   (one process each, batches of 1): 16
 *                               payloads in the flow's payload area
 *                               (config.payload_area, sk_flow_payload_alloc,
 *                               filled before sk_flow_start); a task's
 *                               record (48 bytes: the sk_payload and each
 *                               step's sum) is all that crosses the rings.
 *                               Each step reaches the bytes with
 *                               sk_step_payload and runs bench_touch_payload
 *                               (common.h: sums every 8-byte word, adds 1 to
 *                               the first word of every 4 KiB page), as
 *                               raw_flow.c's payload stages do. The parent
 *                               keeps the 16 going round: it collects what
 *                               is out (sk_flow_collect_many), checks the 3
 *                               sums and submits those records again
 *                               (sk_flow_submit_many) until 10,000 payloads
 *                               (quick 2,000) went through; payload GB/s
 *                               (10^9 bytes, each payload counted once) and
 *                               payloads/s, after one untimed round of the
 *                               16. 0 copies per step: at the end (untimed)
 *                               the parent's view of every payload must hold
 *                               exactly what the steps' touches leave there.
 *
 * Every task is checked when it comes out (value + 3, none lost); a wrong
 * or missing one fails the program.
 */
#include "common.h"

#include <skproc.h>

#include <pthread.h>

#define AREA "flows"

typedef struct {
    uint64_t value;
    uint64_t pad[7];
} task64;

typedef struct {
    sk_step base;
    long spin_ns; /* CPU-bound work per task, or 0 */
} adder;

static int adder_handle(sk_step *self, sk_task *tasks, size_t n)
{
    adder *a = SK_CONTAINER_OF(self, adder, base);
    for (size_t i = 0; i < n; i++) {
        task64 *t = tasks[i].record;
        if (a->spin_ns > 0) {
            int64_t until = bench_now_ns() + a->spin_ns;
            while (bench_now_ns() < until)
                ;
        }
        t->value += 1;
    }
    return 0;
}

static const sk_step_class adder_class = {.name = "adder", .handle = adder_handle};

static void check(int rc, const char *what)
{
    if (rc != SK_OK) {
        fprintf(stderr, "bench_flow: %s: %s\n", what, sk_strerror(rc));
        exit(1);
    }
}

#define CHUNK 64 /* tasks per submit_many / collect_many: the raw floor's batch */

struct feeder {
    sk_flow *flow;
    long n;
    size_t chunk; /* 1: sk_flow_submit per task; else sk_flow_submit_many */
};

static void *feed(void *arg)
{
    struct feeder *fd = arg;
    task64 t[CHUNK];
    for (long i = 0; i < fd->n;) {
        size_t k = fd->n - i < (long)fd->chunk ? (size_t)(fd->n - i) : fd->chunk;
        for (size_t j = 0; j < k; j++)
            t[j] = (task64){.value = (uint64_t)(i + (long)j)};
        if (fd->chunk == 1)
            check(sk_flow_submit(fd->flow, t, -1, 0, NULL), "submit");
        else
            check(sk_flow_submit_many(fd->flow, t, k, -1, 0, NULL, NULL), "submit_many");
        i += (long)k;
    }
    check(sk_flow_close(fd->flow), "close");
    return NULL;
}

/* A flow of `steps` adders with `procs` processes in each, batches of
 * `batch`, queue q. */
static sk_flow *make_flow(adder *steps, int n_steps, int procs, size_t batch, size_t q, long spin)
{
    sk_flow *flow;
    sk_flow_config cfg = {.task_size = sizeof(task64), .queue_size = q};
    check(sk_flow_create(&flow, &cfg), "create");
    for (int i = 0; i < n_steps; i++) {
        check(sk_step_init(&steps[i].base, &adder_class), "step");
        steps[i].spin_ns = spin;
        steps[i].base.config.processes = procs;
        steps[i].base.config.batch_size = batch;
        check(sk_flow_add(flow, &steps[i].base), "add");
    }
    check(sk_flow_start(flow), "start");
    return flow;
}

/* Tasks per second through the flow: n tasks, fed by a thread, collected
 * chunk at a time (1: one call per task). */
static double throughput(int n_steps, int procs, size_t batch, size_t q, long n, long spin,
                         size_t chunk)
{
    adder steps[3];
    sk_flow *flow = make_flow(steps, n_steps, procs, batch, q, spin);
    struct feeder fd = {flow, n, chunk};
    pthread_t th;
    int64_t t0 = bench_now_ns();
    pthread_create(&th, NULL, feed, &fd);
    unsigned char *seen = calloc((size_t)n, 1);
    static sk_flow_result r[CHUNK];
    task64 t[CHUNK];
    long got = 0;
    for (;;) {
        size_t k = 1;
        int rc = chunk == 1 ? sk_flow_collect(flow, -1, t, r)
                            : sk_flow_collect_many(flow, -1, t, r, chunk, &k);
        if (rc == SK_ECLOSED)
            break;
        check(rc, "collect");
        for (size_t j = 0; j < k; j++) {
            check(r[j].status, "task");
            uint64_t id = r[j].id;
            if (id >= (uint64_t)n || seen[id] || t[j].value != id + (uint64_t)n_steps) {
                fprintf(stderr, "bench_flow: task %llu wrong or twice\n", (unsigned long long)id);
                exit(1);
            }
            seen[id] = 1;
            got++;
        }
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    pthread_join(th, NULL);
    if (got != n) {
        fprintf(stderr, "bench_flow: %ld of %ld tasks came out\n", got, n);
        exit(1);
    }
    check(sk_flow_wait(flow, -1), "wait");
    sk_flow_release(flow);
    free(seen);
    return (double)n / secs;
}

/* Median microseconds of one task through the 3 steps. */
static double latency(long n, struct bench_stats *st)
{
    adder steps[3];
    sk_flow *flow = make_flow(steps, 3, 1, 1, 0, 0);
    double *v = malloc((size_t)n * sizeof *v);
    for (long i = -100; i < n; i++) { /* 100 to warm up */
        task64 t = {.value = 7};
        int64_t t0 = bench_now_ns();
        check(sk_flow_call(flow, &t, -1, NULL), "call");
        int64_t t1 = bench_now_ns();
        if (t.value != 10) {
            fprintf(stderr, "bench_flow: a call came back wrong\n");
            exit(1);
        }
        if (i >= 0)
            v[i] = (double)(t1 - t0) / 1e3;
    }
    *st = bench_summarize(v, n);
    free(v);
    sk_flow_release(flow);
    return st->median;
}

/* ----------------------------------------------------------- payloads */

#define PAYLOADS 16 /* payloads in flight (raw_flow.c's payload row: the same) */
#define PAYLOAD_STEPS 3

typedef struct {
    sk_payload data;             /* the bytes, in the payload area */
    uint64_t slot;               /* which of the PAYLOADS */
    uint64_t sum[PAYLOAD_STEPS]; /* out: each step's bench_touch_payload */
} payload_task;

typedef struct {
    sk_step base;
    int index;
} toucher;

static int toucher_handle(sk_step *self, sk_task *tasks, size_t n)
{
    toucher *t = SK_CONTAINER_OF(self, toucher, base);
    for (size_t i = 0; i < n; i++) {
        payload_task *pt = tasks[i].record;
        uint64_t *words = sk_step_payload(self, &pt->data);
        if (words == NULL || pt->data.size != BENCH_PAYLOAD_BYTES)
            return sk_step_fail(self, -1, "no payload");
        pt->sum[t->index] = bench_touch_payload(words);
    }
    return 0;
}

static const sk_step_class toucher_class = {.name = "toucher", .handle = toucher_handle};

/* n passes of payloads through the flow, PAYLOADS (or n) in flight: what
 * comes out is checked and, while passes are left, submitted again, all
 * that came out of one collect in one submit_many. sum[] is what each
 * payload's words add up to now, passes[] how often each went through. */
static void payload_passes(sk_flow *flow, const payload_task *first, long n, uint64_t *sum,
                           uint64_t *passes)
{
    static payload_task out[PAYLOADS], again[PAYLOADS];
    static sk_flow_result r[PAYLOADS];
    long sent = n < PAYLOADS ? n : PAYLOADS, back = 0;
    check(sk_flow_submit_many(flow, first, (size_t)sent, -1, 0, NULL, NULL), "submit_many");
    while (back < n) {
        size_t got;
        check(sk_flow_collect_many(flow, -1, out, r, PAYLOADS, &got), "collect");
        size_t k = 0;
        for (size_t i = 0; i < got; i++) {
            check(r[i].status, "payload task");
            uint64_t slot = out[i].slot;
            if (slot >= PAYLOADS || out[i].data.offset != first[slot].data.offset ||
                out[i].data.size != BENCH_PAYLOAD_BYTES) {
                fprintf(stderr, "bench_flow: a payload task came back changed\n");
                exit(1);
            }
            for (int st = 0; st < PAYLOAD_STEPS; st++) {
                if (out[i].sum[st] != sum[slot] + (uint64_t)st * BENCH_PAYLOAD_PAGES) {
                    fprintf(stderr, "bench_flow: step %d's sum of payload %llu is wrong\n", st,
                            (unsigned long long)slot);
                    exit(1);
                }
            }
            sum[slot] += PAYLOAD_STEPS * BENCH_PAYLOAD_PAGES;
            passes[slot]++;
            back++;
            if (sent < n) {
                again[k++] = out[i];
                sent++;
            }
        }
        if (k > 0)
            check(sk_flow_submit_many(flow, again, k, -1, 0, NULL, NULL), "submit_many");
    }
}

/* Payload bytes per second through a fresh flow of 3 touching steps;
 * *tasks gets payloads per second. */
static double payload_throughput(long n, double *tasks)
{
    sk_flow *flow;
    sk_flow_config cfg = {.task_size = sizeof(payload_task),
                          .payload_area = PAYLOADS * BENCH_PAYLOAD_BYTES};
    check(sk_flow_create(&flow, &cfg), "create");
    toucher steps[PAYLOAD_STEPS];
    for (int i = 0; i < PAYLOAD_STEPS; i++) {
        check(sk_step_init(&steps[i].base, &toucher_class), "step");
        steps[i].index = i;
        check(sk_flow_add(flow, &steps[i].base), "add");
    }
    payload_task first[PAYLOADS];
    uint64_t *words[PAYLOADS], sum[PAYLOADS], passes[PAYLOADS] = {0};
    for (size_t s = 0; s < PAYLOADS; s++) {
        void *data;
        memset(&first[s], 0, sizeof first[s]);
        check(sk_flow_payload_alloc(flow, BENCH_PAYLOAD_BYTES, &first[s].data, &data), "alloc");
        first[s].slot = s;
        words[s] = data;
        sum[s] = bench_payload_fill(words[s], s);
    }
    check(sk_flow_start(flow), "start");
    payload_passes(flow, first, PAYLOADS, sum, passes); /* not timed: every page faults in */
    int64_t t0 = bench_now_ns();
    payload_passes(flow, first, n, sum, passes);
    int64_t t1 = bench_now_ns();
    check(sk_flow_close(flow), "close");
    payload_task rest;
    sk_flow_result r;
    if (sk_flow_collect(flow, -1, &rest, &r) != SK_ECLOSED) {
        fprintf(stderr, "bench_flow: a payload task too many\n");
        exit(1);
    }
    check(sk_flow_wait(flow, -1), "wait");
    for (size_t s = 0; s < PAYLOADS; s++) {
        if (!bench_payload_check(words[s], s, PAYLOAD_STEPS * passes[s], sum[s])) {
            fprintf(stderr, "bench_flow: payload %zu is not what its touches leave\n", s);
            exit(1);
        }
        check(sk_flow_payload_free(flow, &first[s].data), "free");
    }
    sk_flow_release(flow);
    double secs = (double)(t1 - t0) / 1e9;
    *tasks = (double)n / secs;
    return (double)n * (double)BENCH_PAYLOAD_BYTES / secs / 1e9;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    bench_print_info("bench_flow");
    long n = bench_ops(&o, 2000000, 200000);
    char extra[160];

    double tput = throughput(3, 1, 64, 0, n, 0, CHUNK);
    snprintf(extra, sizeof extra, "\"short\":\"skproc flow\",\"tasks\":%ld", n);
    bench_emit(AREA, "flow.tput.skproc", "3-step flow, 64-byte tasks, batches of 64", "tasks/s",
               tput, NULL, extra);

    long n1 = bench_ops(&o, 200000, 20000);
    double tput1 = throughput(3, 1, 1, 0, n1, 0, 1);
    snprintf(extra, sizeof extra, "\"short\":\"skproc unbatched\",\"tasks\":%ld", n1);
    bench_emit(AREA, "flow.tput.skproc_unbatched", "3-step flow, 64-byte tasks, batches of 1",
               "tasks/s", tput1, NULL, extra);

    struct bench_stats st;
    long nl = bench_ops(&o, 20000, 2000);
    double lat = latency(nl, &st);
    bench_emit(AREA, "flow.lat.skproc", "one 64-byte task through 3 steps (sk_flow_call)", "us",
               lat, &st, "\"short\":\"skproc flow call\"");

    long ns = bench_ops(&o, 2000, 400);
    double s1 = throughput(1, 1, 1, 0, ns, 1000000, 1);
    double s2 = throughput(1, 2, 1, 0, ns, 1000000, 1);
    snprintf(extra, sizeof extra, "\"short\":\"1 process\",\"tasks\":%ld", ns);
    bench_emit(AREA, "flow.scale.skproc1", "1 ms CPU-bound handler, 1 process", "tasks/s", s1, NULL,
               extra);
    bench_emit(AREA, "flow.scale.skproc2", "1 ms CPU-bound handler, 2 processes", "tasks/s", s2,
               NULL, extra);
    bench_emit(AREA, "flow.scale.efficiency", "parallel efficiency of 2 processes over 1", "%",
               100.0 * s2 / (2.0 * s1), NULL, extra);

    long np = bench_ops(&o, 10000, 2000);
    double ptasks;
    double gbs = payload_throughput(np, &ptasks);
    snprintf(extra, sizeof extra,
             "\"short\":\"skproc payloads\",\"tasks\":%ld,\"payload_bytes\":%zu,"
             "\"record_bytes\":%zu,\"in_flight\":%d,\"copies_per_step\":0",
             np, BENCH_PAYLOAD_BYTES, sizeof(payload_task), PAYLOADS);
    bench_emit(AREA, "flow.payload.skproc",
               "3-step flow, 1 MiB payloads touched in place, records through the rings (0 "
               "copies per step)",
               "GB/s", gbs, NULL, extra);
    snprintf(extra, sizeof extra, "\"short\":\"skproc payloads\",\"tasks\":%ld", np);
    bench_emit(AREA, "flow.payload.skproc_tasks",
               "3-step flow, 1 MiB payloads: payloads per second", "tasks/s", ptasks, NULL, extra);
    return 0;
}
