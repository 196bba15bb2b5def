/* SPDX-License-Identifier: MIT */
/*
 * Flows and their data: many tasks at once (submit_many, collect_many), a
 * million tasks, four threads submitting, shared-memory payloads through
 * three steps, tpl records with strings and buffers, and the metrics
 * snapshot against what was actually handled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ------------------------------------------------------- plain adders */

typedef struct {
    uint64_t value;
    uint64_t trace;
    uint64_t orig; /* the value as submitted */
} task16;

typedef struct {
    sk_step base;
    uint64_t add;
    int bit;
} adder;

static int adder_handle(sk_step *self, sk_task *tasks, size_t n)
{
    adder *a = SK_CONTAINER_OF(self, adder, base);
    for (size_t i = 0; i < n; i++) {
        task16 *t = tasks[i].record;
        t->value += a->add;
        t->trace |= 1u << a->bit;
    }
    return 0;
}

/* Every third task is skipped by the second step. */
static bool not_multiple_of_3(sk_step *self, const sk_task *task)
{
    (void)self;
    return ((const task16 *)task->record)->value % 3 != 0;
}

static const sk_step_class adder_class = {.name = "adder", .handle = adder_handle};
static const sk_step_class picky_class = {
    .name = "picky", .handle = adder_handle, .condition = not_multiple_of_3};

static sk_flow *three_adders(adder *a, size_t batch, int procs, size_t queue, bool picky)
{
    sk_flow *flow;
    sk_flow_config cfg = {.task_size = sizeof(task16), .queue_size = queue};
    assert_int_equal(sk_flow_create(&flow, &cfg), SK_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sk_step_init(&a[i].base, i == 1 && picky ? &picky_class : &adder_class),
                         SK_OK);
        a[i].add = (uint64_t)1 << (8 * i); /* 1, 256, 65536 */
        a[i].bit = i;
        a[i].base.config.batch_size = batch;
        a[i].base.config.processes = procs;
        assert_int_equal(sk_flow_add(flow, &a[i].base), SK_OK);
    }
    assert_int_equal(sk_flow_start(flow), SK_OK);
    return flow;
}

/* What a task with value v comes out as, through three_adders. */
static uint64_t expected(uint64_t v, bool picky)
{
    uint64_t out = v + 1;
    if (!picky || out % 3 != 0)
        out += 256;
    return out + 65536;
}

/* ------------------------------------------------------- many at once */

struct feeder {
    sk_flow *flow;
    uint64_t first, n;
    size_t chunk;
    int rc;
};

static void *feed(void *arg)
{
    struct feeder *fd = arg;
    task16 buf[64];
    for (uint64_t i = 0; i < fd->n && fd->rc == SK_OK;) {
        size_t k = fd->n - i < fd->chunk ? (size_t)(fd->n - i) : fd->chunk;
        for (size_t j = 0; j < k; j++)
            buf[j] = (task16){.value = fd->first + i + j, .orig = fd->first + i + j};
        size_t put = 0;
        if (fd->chunk == 1)
            fd->rc = sk_flow_submit(fd->flow, buf, -1, 0, NULL), put = 1;
        else
            fd->rc = sk_flow_submit_many(fd->flow, buf, k, -1, 0, NULL, &put);
        i += put;
    }
    return NULL;
}

/* Collects until SK_ECLOSED; every value seen once and right. */
static uint64_t collect_all(sk_flow *flow, uint64_t n, bool picky, unsigned char *seen)
{
    static sk_flow_result r[64];
    task16 t[64];
    uint64_t got = 0;
    for (;;) {
        size_t k = 0;
        int rc = sk_flow_collect_many(flow, 30.0, t, r, 64, &k);
        if (rc == SK_ECLOSED)
            break;
        assert_int_equal(rc, SK_OK);
        assert_true(k >= 1 && k <= 64);
        for (size_t j = 0; j < k; j++) {
            assert_int_equal(r[j].status, SK_OK);
            uint64_t v = t[j].value, in = t[j].orig;
            assert_true(in < n);
            assert_int_equal(v, expected(in, picky));
            assert_int_equal(seen[in], 0);
            seen[in] = 1;
            got++;
        }
    }
    return got;
}

/* A million tasks through three steps, fed 64 at a time by one thread and
 * collected 64 at a time: none lost, none twice, every one right. */
static void test_million_tasks(void **state)
{
    (void)state;
    const uint64_t n = 1000000;
    adder a[3];
    sk_flow *flow = three_adders(a, 64, 1, 0, false);
    unsigned char *seen = calloc(n, 1);
    struct feeder fd = {flow, 0, n, 64, SK_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, feed, &fd), 0);
    /* The feeder closes after it is done: collect until then. */
    uint64_t got = 0;
    static sk_flow_result r[64];
    task16 t[64];
    while (got < n) {
        size_t k = 0;
        assert_int_equal(sk_flow_collect_many(flow, 30.0, t, r, 64, &k), SK_OK);
        for (size_t j = 0; j < k; j++) {
            assert_int_equal(r[j].status, SK_OK);
            uint64_t in = t[j].orig;
            assert_true(in < n);
            assert_int_equal(t[j].value, expected(in, false));
            assert_int_equal(seen[in], 0);
            assert_int_equal(t[j].trace, 7);
            seen[in] = 1;
        }
        got += k;
    }
    pthread_join(th, NULL);
    assert_int_equal(fd.rc, SK_OK);
    assert_int_equal(sk_flow_close(flow), SK_OK);
    task16 extra;
    sk_flow_result er;
    assert_int_equal(sk_flow_collect(flow, 10.0, &extra, &er), SK_ECLOSED);
    assert_int_equal(sk_flow_wait(flow, 10.0), SK_OK);
    sk_flow_metrics m;
    assert_int_equal(sk_flow_metrics_read(flow, &m), SK_OK);
    assert_int_equal(m.submitted, n);
    assert_int_equal(m.completed, n);
    assert_int_equal(m.in_flight, 0);
    for (int s = 0; s < 3; s++) {
        assert_int_equal(m.step[s].tasks_in, n);
        assert_int_equal(m.step[s].tasks_out, n);
    }
    sk_flow_metrics_free(&m);
    sk_flow_release(flow);
    free(seen);
}

/* Four threads submit at once (one task per call, and 64 per call), two
 * processes per step; the main thread collects. */
static void test_four_threads_submit(void **state)
{
    (void)state;
    const uint64_t per = 50000, n = 4 * per;
    adder a[3];
    sk_flow *flow = three_adders(a, 16, 2, 512, true);
    unsigned char *seen = calloc(n, 1);
    struct feeder fd[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        fd[i] = (struct feeder){flow, (uint64_t)i * per, per, i % 2 ? 64 : 1, SK_OK};
        assert_int_equal(pthread_create(&th[i], NULL, feed, &fd[i]), 0);
    }
    /* The queue is smaller than the work: the feeders wait for room that
     * the main thread's collecting makes. */
    uint64_t got = 0;
    static sk_flow_result r[64];
    task16 t[64];
    while (got < n) {
        size_t k = 0;
        assert_int_equal(sk_flow_collect_many(flow, 30.0, t, r, 64, &k), SK_OK);
        for (size_t j = 0; j < k; j++) {
            assert_int_equal(r[j].status, SK_OK);
            uint64_t v = t[j].value, in = t[j].orig;
            assert_true(in < n);
            assert_int_equal(v, expected(in, true));
            assert_int_equal(seen[in], 0);
            seen[in] = 1;
        }
        got += k;
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(fd[i].rc, SK_OK);
    }
    assert_int_equal(sk_flow_close(flow), SK_OK);
    assert_int_equal(collect_all(flow, n, true, seen), 0);
    assert_int_equal(sk_flow_wait(flow, 10.0), SK_OK);
    /* Metrics: the condition skipped every task whose value was a multiple
     * of 3 after the first step. */
    uint64_t skipped = 0;
    for (uint64_t in = 0; in < n; in++)
        skipped += (in + 1) % 3 == 0;
    sk_flow_metrics m;
    assert_int_equal(sk_flow_metrics_read(flow, &m), SK_OK);
    assert_int_equal(m.step[1].tasks_skipped, skipped);
    assert_int_equal(m.step[1].tasks_in, n);
    assert_int_equal(m.step[0].tasks_skipped, 0);
    assert_int_equal(m.completed, n);
    sk_flow_metrics_free(&m);
    sk_flow_release(flow);
    free(seen);
}

/* ------------------------------------------------------------ payloads */

#define PAYLOAD_BYTES ((size_t)1 << 20)

typedef struct {
    sk_payload data;
    uint64_t seen_offset[3]; /* where each step found the bytes */
    uint32_t sum[3];         /* what each step read */
    uint32_t copies[3];      /* 1 when a step's bytes were not in a shared mapping */
} image_task;

/* Whether [p, p + len) lies in one shared mapping of this process (the
 * 's' of /proc/self/maps): bytes a step reaches there are the parent's
 * own pages, not a copy made for it. */
static bool in_shared_mapping(const void *p, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return false;
    uintptr_t a = (uintptr_t)p;
    char line[512];
    bool shared = false;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && a >= lo && a + len <= hi) {
            shared = perms[3] == 's';
            break;
        }
    }
    fclose(f);
    return shared;
}

/* A step that knows its place in the flow (the payload and tpl tests'). */
typedef struct {
    sk_step base;
    int index;
} indexed;

/* A flow of cfg with three steps of cls, s[i] at index i, each of batch
 * tasks at most (0: the default); not started. */
static sk_flow *three_indexed(const sk_flow_config *cfg, indexed *s, const sk_step_class *cls,
                              size_t batch)
{
    sk_flow *flow;
    assert_int_equal(sk_flow_create(&flow, cfg), SK_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sk_step_init(&s[i].base, cls), SK_OK);
        s[i].index = i;
        if (batch > 0)
            s[i].base.config.batch_size = batch;
        assert_int_equal(sk_flow_add(flow, &s[i].base), SK_OK);
    }
    return flow;
}

/* Step i checks the bytes the step before left (byte k == k + i, mod 256)
 * and adds 1 to each, in place. */
static int imager_handle(sk_step *self, sk_task *tasks, size_t n)
{
    indexed *im = SK_CONTAINER_OF(self, indexed, base);
    for (size_t t = 0; t < n; t++) {
        image_task *it = tasks[t].record;
        unsigned char *b = sk_step_payload(self, &it->data);
        if (b == NULL || it->data.size != PAYLOAD_BYTES)
            return sk_step_fail(self, -1, "no payload");
        it->seen_offset[im->index] = it->data.offset;
        it->copies[im->index] = in_shared_mapping(b, it->data.size) ? 0 : 1;
        uint32_t sum = 0;
        for (size_t k = 0; k < it->data.size; k++) {
            if (b[k] != (unsigned char)(k + (size_t)im->index))
                return sk_step_fail(self, -2, "byte %zu is %u", k, b[k]);
            sum += b[k];
            b[k]++;
        }
        it->sum[im->index] = sum;
    }
    return 0;
}

static const sk_step_class imager_class = {.name = "imager", .handle = imager_handle};

/* A 1 MiB payload the parent writes straight into shared memory goes
 * through three steps that each check and change every byte in place;
 * the parent finds all three changes. Copies are counted: a step whose
 * bytes did not lie in a shared mapping at the parent's offset counts one;
 * the count is 0 (the rings carry only the records, whose handle (offset,
 * size) is all they hold of a payload). */
static void test_payload_zero_copy(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(image_task), .payload_area = 8 * PAYLOAD_BYTES};
    indexed s[3];
    sk_flow *flow = three_indexed(&cfg, s, &imager_class, 0);
    /* Input placed before the flow starts. */
    enum { TASKS = 4 };
    image_task in[TASKS];
    for (int t = 0; t < TASKS; t++) {
        void *data;
        memset(&in[t], 0, sizeof in[t]);
        assert_int_equal(sk_flow_payload_alloc(flow, PAYLOAD_BYTES, &in[t].data, &data), SK_OK);
        for (size_t k = 0; k < PAYLOAD_BYTES; k++)
            ((unsigned char *)data)[k] = (unsigned char)k;
    }
    assert_int_equal(sk_flow_start(flow), SK_OK);
    for (int t = 0; t < TASKS; t++)
        assert_int_equal(sk_flow_submit(flow, &in[t], 10.0, 0, NULL), SK_OK);
    for (int t = 0; t < TASKS; t++) {
        image_task out;
        sk_flow_result r;
        assert_int_equal(sk_flow_collect(flow, 30.0, &out, &r), SK_OK);
        if (r.status != SK_OK)
            fail_msg("%s: %s", r.error.message, r.error.cause);
        const image_task *orig = &in[r.id];
        assert_int_equal(out.data.offset, orig->data.offset);
        const unsigned char *b = sk_flow_payload(flow, &out.data);
        assert_non_null(b);
        for (int i = 0; i < 3; i++) { /* each step worked on the parent's pages */
            assert_int_equal(out.seen_offset[i], orig->data.offset);
            assert_int_equal(out.copies[i], 0);
        }
        for (size_t k = 0; k < PAYLOAD_BYTES; k++)
            if (b[k] != (unsigned char)(k + 3))
                fail_msg("byte %zu of task %llu is %u", k, (unsigned long long)r.id, b[k]);
        assert_int_equal(sk_flow_payload_free(flow, &out.data), SK_OK);
    }
    assert_int_equal(sk_flow_close(flow), SK_OK);
    assert_int_equal(sk_flow_wait(flow, 10.0), SK_OK);
    /* Every step handled each task once (its counters are final once its
     * processes ended: a step counts a task out after it forwarded it). */
    sk_flow_metrics m;
    assert_int_equal(sk_flow_metrics_read(flow, &m), SK_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(m.step[i].tasks_out, TASKS);
    sk_flow_metrics_free(&m);
    /* The area is whole again: one allocation of all of it fits. */
    sk_payload all;
    assert_int_equal(sk_flow_payload_alloc(flow, 8 * PAYLOAD_BYTES, &all, NULL), SK_OK);
    assert_int_equal(sk_flow_payload_free(flow, &all), SK_OK);
    sk_flow_release(flow);
}

/* The allocator: full area, fragmentation, coalescing, bad handles. */
static void test_payload_allocator(void **state)
{
    (void)state;
    sk_flow *flow;
    sk_flow_config cfg = {.task_size = 8, .payload_area = 1 << 20};
    assert_int_equal(sk_flow_create(&flow, &cfg), SK_OK);
    sk_payload p[16];
    for (int i = 0; i < 16; i++)
        assert_int_equal(sk_flow_payload_alloc(flow, 65536, &p[i], NULL), SK_OK);
    sk_payload more;
    assert_int_equal(sk_flow_payload_alloc(flow, 1, &more, NULL), SK_EFULL);
    /* Free every other one: 512 KiB free, but no 128 KiB in one piece. */
    for (int i = 0; i < 16; i += 2)
        assert_int_equal(sk_flow_payload_free(flow, &p[i]), SK_OK);
    assert_int_equal(sk_flow_payload_alloc(flow, 131072, &more, NULL), SK_EFULL);
    assert_int_equal(sk_flow_payload_free(flow, &p[1]), SK_OK); /* joins 0, 1, 2 */
    assert_int_equal(sk_flow_payload_alloc(flow, 196608, &more, NULL), SK_OK);
    assert_int_equal(more.offset, 0);
    /* Handles that were never given out, or are gone. */
    sk_payload forged = {.offset = 3 * 65536 + 8, .size = 16};
    assert_int_equal(sk_flow_payload_free(flow, &forged), SK_EINVAL);
    assert_null(sk_flow_payload(flow, &p[4]));     /* freed */
    assert_non_null(sk_flow_payload(flow, &p[2])); /* freed, but inside `more`, live */
    assert_non_null(sk_flow_payload(flow, &p[3]));
    forged = (sk_payload){.offset = (1 << 20) - 8, .size = 64};
    assert_null(sk_flow_payload(flow, &forged));
    forged = (sk_payload){.offset = UINT64_MAX - 4, .size = 16};
    assert_null(sk_flow_payload(flow, &forged));
    assert_int_equal(sk_flow_payload_alloc(flow, 0, &more, NULL), SK_EINVAL);
    sk_flow_release(flow);
    /* Without an area. */
    cfg.payload_area = 0;
    assert_int_equal(sk_flow_create(&flow, &cfg), SK_OK);
    assert_int_equal(sk_flow_payload_alloc(flow, 64, &more, NULL), SK_ESTATE);
    sk_flow_release(flow);
}

/* --------------------------------------------------------- tpl records */

typedef struct {
    int32_t n;
    char *name;
} named;

/* Appends "/<index>" to the name and doubles n. */
static int namer_handle(sk_step *self, sk_task *tasks, size_t count)
{
    indexed *nm = SK_CONTAINER_OF(self, indexed, base);
    for (size_t t = 0; t < count; t++) {
        named *r = tasks[t].record;
        if (r->n == 999) { /* fails alone: the rest of the batch is still handled */
            sk_task_fail(self, &tasks[t], 5, "999 refused");
            continue;
        }
        size_t len = strlen(r->name);
        char *name = malloc(len + 3);
        memcpy(name, r->name, len);
        snprintf(name + len, 3, "/%d", nm->index);
        free(r->name);
        r->name = name;
        r->n *= 2;
        if (r->n == 4000) { /* grows past image_size */
            char *big = malloc(400);
            memset(big, 'x', 399);
            big[399] = '\0';
            free(r->name);
            r->name = big;
        }
    }
    return 0;
}

static const sk_step_class namer_class = {.name = "namer", .handle = namer_handle};

/* Records with a string, as tpl images: every step sees them
 * decoded and changes them; the parent gets them back decoded (its copies
 * malloc'ed). A failed task and a record that outgrew image_size fail with
 * their reasons; a record too big to submit is refused. */
static void test_tpl_records(void **state)
{
    (void)state;
    sk_flow_config cfg = {
        .task_size = sizeof(named), .format = "S(is)", .image_size = 256, .ordered = true};
    indexed s[3];
    sk_flow *flow = three_indexed(&cfg, s, &namer_class, 4);
    assert_int_equal(sk_flow_start(flow), SK_OK);
    char names[20][16];
    named in[20];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "task%d", i);
        in[i] = (named){.n = i == 7 ? 999 : (i == 9 ? 500 : i), .name = names[i]};
    }
    /* Tasks 5 to 8 go in one frame, which step 0 handles as one batch (a
     * frame is never split, and it is batch_size long): task 8 comes after
     * the task that fails in that batch, and is handled all the same. The
     * others go one by one, so their batches are whatever is queued. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(sk_flow_submit(flow, &in[i], 10.0, 0, NULL), SK_OK);
    size_t submitted = 0;
    assert_int_equal(sk_flow_submit_many(flow, &in[5], 4, 10.0, 0, NULL, &submitted), SK_OK);
    assert_int_equal(submitted, 4);
    for (int i = 9; i < 20; i++)
        assert_int_equal(sk_flow_submit(flow, &in[i], 10.0, 0, NULL), SK_OK);
    char name[32];
    char big[300];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    named too_big = {.n = 1, .name = big};
    assert_int_equal(sk_flow_submit(flow, &too_big, 10.0, 0, NULL), SK_EINVAL);
    for (int i = 0; i < 20; i++) {
        named out = {0};
        sk_flow_result r;
        assert_int_equal(sk_flow_collect(flow, 30.0, &out, &r), SK_OK);
        assert_int_equal(r.id, (uint64_t)i);
        if (i == 7) {
            assert_int_equal(r.status, SK_EPROCESS);
            assert_int_equal(r.step, 0);
            assert_int_equal(r.error.code, 5);
            assert_non_null(strstr(r.error.cause, "999 refused"));
        } else if (i == 9) { /* 500 -> 1000 -> 2000 -> 4000: grows in step 2 */
            assert_int_equal(r.status, SK_EPROCESS);
            assert_int_equal(r.step, 2);
            assert_non_null(strstr(r.error.cause, "image_size"));
        } else {
            assert_int_equal(r.status, SK_OK);
            assert_int_equal(out.n, i * 8);
            snprintf(name, sizeof name, "task%d/0/1/2", i);
            assert_string_equal(out.name, name);
        }
        free(out.name);
    }
    assert_int_equal(sk_flow_close(flow), SK_OK);
    assert_int_equal(sk_flow_wait(flow, 10.0), SK_OK);
    sk_flow_release(flow);
    /* A format that does not describe task_size bytes is refused. */
    cfg.format = "S(iII)";
    assert_int_equal(sk_flow_create(&flow, &cfg), SK_EINVAL);
    assert_null(flow);
}

/* ------------------------------------------------------------- metrics */

/* Metrics equal what was handled: totals, batch sizes, timers' counts,
 * and the flow's own counts, while the flow runs and after. */
static void test_metrics_totals(void **state)
{
    (void)state;
    adder a[3];
    sk_flow *flow = three_adders(a, 8, 2, 256, true);
    const uint64_t n = 3000;
    unsigned char *seen = calloc(n, 1);
    struct feeder fd = {flow, 0, n, 64, SK_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, feed, &fd), 0);
    sk_flow_metrics mid; /* while it runs: consistent with itself */
    assert_int_equal(sk_flow_metrics_read(flow, &mid), SK_OK);
    assert_true(mid.completed + mid.in_flight == mid.submitted);
    assert_true(mid.submitted <= n);
    sk_flow_metrics_free(&mid);
    /* Collect everything while the feeder runs: the queues are smaller than
     * the work, so a feeder nobody collects from would wait forever. */
    uint64_t got = 0;
    static sk_flow_result r[64];
    task16 t[64];
    while (got < n) {
        size_t k = 0;
        assert_int_equal(sk_flow_collect_many(flow, 30.0, t, r, 64, &k), SK_OK);
        for (size_t j = 0; j < k; j++) {
            assert_int_equal(r[j].status, SK_OK);
            assert_int_equal(seen[t[j].orig], 0);
            seen[t[j].orig] = 1;
        }
        got += k;
    }
    pthread_join(th, NULL);
    assert_int_equal(fd.rc, SK_OK);
    assert_int_equal(sk_flow_close(flow), SK_OK);
    assert_int_equal(got + collect_all(flow, n, true, seen), n); /* none left */
    assert_int_equal(sk_flow_wait(flow, 10.0), SK_OK);
    sk_flow_metrics m;
    assert_int_equal(sk_flow_metrics_read(flow, &m), SK_OK);
    assert_int_equal(m.steps, 3);
    assert_string_equal(m.step[1].name, "picky");
    assert_int_equal(m.completed, n);
    assert_int_equal(m.failed, 0);
    assert_int_equal(m.in_flight, 0);
    assert_int_equal(sk_timer_count(m.latency), (long)n);
    assert_true(m.throughput > 0 && m.elapsed > 0);
    for (int s = 0; s < 3; s++) {
        const sk_flow_step_metrics *st = &m.step[s];
        assert_int_equal(st->processes, 2);
        assert_int_equal(st->tasks_in, n);
        assert_int_equal(st->tasks_out, n);
        assert_int_equal(st->tasks_failed, 0);
        assert_int_equal(st->queue_depth, 0);
        assert_int_equal(st->restarts, 0);
        uint64_t batches = 0;
        for (int b = 0; b < SK_FLOW_BATCH_BINS; b++) {
            batches += st->batch_sizes[b];
            if (b > 3) /* batches of at most 8 */
                assert_int_equal(st->batch_sizes[b], 0);
        }
        assert_int_equal(batches, st->batches);
        assert_int_equal(sk_timer_count(st->handle), (long)st->batches);
        assert_true(sk_timer_count(st->queue_wait) >= 1);
        assert_true(st->batches >= (n - st->tasks_skipped + 7) / 8);
    }
    sk_flow_metrics_free(&m);
    assert_null(m.step);
    sk_flow_release(flow);
    free(seen);
    /* Before start and with bad arguments. */
    sk_flow_config cfg = {.task_size = 8};
    assert_int_equal(sk_flow_create(&flow, &cfg), SK_OK);
    assert_int_equal(sk_flow_metrics_read(flow, &m), SK_ESTATE);
    assert_int_equal(sk_flow_metrics_read(NULL, &m), SK_EINVAL);
    sk_flow_release(flow);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_million_tasks),     SKT_TEST(test_four_threads_submit),
        SKT_TEST(test_payload_zero_copy), SKT_TEST(test_payload_allocator),
        SKT_TEST(test_tpl_records),       SKT_TEST(test_metrics_totals),
    };
    return skt_run(argc, argv, tests);
}
