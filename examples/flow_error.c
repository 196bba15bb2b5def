/* SPDX-License-Identifier: MIT */
/*
 * flow_error: a step that stops the whole flow with an error status.
 *
 * Two steps: "validate" (2 processes, batches of 4) checks each record,
 * and "store" (1 process, 2 ms per record) doubles it. The parent submits
 * 40 good records and collects them, then 60 more, one of them negative;
 * validate's handle then calls
 *
 *     sk_step_error(self, "record %llu is negative: %lld", ...);
 *
 * which ends the flow at once: every step stops, nothing more is handed
 * on, and the parent sees
 *
 *   - sk_flow_wait return SK_EPROCESS, and sk_flow_error(flow) name the
 *     step and the process that raised it, with its message;
 *   - every task still in the flow (the bad one included) come out of
 *     sk_flow_collect failed with SK_ECLOSED and that same error; the
 *     tasks that had got through before come out with SK_OK;
 *   - sk_flow_submit refuse more with SK_ECLOSED.
 *
 * Compare sk_task_fail, which fails one task and lets the flow go on.
 * Exit status 0 when the flow failed as it should.
 *
 *     build/default/examples/flow_error
 *
 * Build: gcc -std=c11 flow_error.c $(pkg-config --cflags --libs skproc)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <skproc.h>

#define N 100
#define GOOD 40 /* submitted and collected first */
#define BAD 60  /* the negative record */

typedef struct {
    int64_t value;
    int64_t stored;
} record;

static int validate_handle(sk_step *self, sk_task *tasks, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const record *r = tasks[i].record;
        if (r->value < 0) {
            sk_step_error(self, "record %llu is negative: %lld", (unsigned long long)tasks[i].id,
                          (long long)r->value);
            return 0; /* the flow is failing: this batch is not handed on */
        }
    }
    return 0;
}

typedef struct {
    sk_step base;
    long delay_ns;
} store_step;

#define STORE(s) SK_CONTAINER_OF(s, store_step, base)

static int store_handle(sk_step *self, sk_task *tasks, size_t count)
{
    store_step *s = STORE(self);
    for (size_t i = 0; i < count; i++) {
        record *r = tasks[i].record;
        struct timespec ts = {0, s->delay_ns}; /* a slow store: tasks queue up before it */
        nanosleep(&ts, NULL);
        r->stored = 2 * r->value;
    }
    return 0;
}

static const sk_step_class validate_class = {.name = "validate", .handle = validate_handle};
static const sk_step_class store_class = {.name = "store", .handle = store_handle};

int main(void)
{
    sk_flow_config cfg = {.task_size = sizeof(record)};
    sk_flow *flow;
    int rc = sk_flow_create(&flow, &cfg);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_flow_create: %s\n", sk_strerror(rc));
        return 1;
    }
    sk_step validate;
    store_step store = {.delay_ns = 2 * 1000 * 1000};
    sk_step_init(&validate, &validate_class);
    sk_step_init(&store.base, &store_class);
    validate.config.processes = 2;
    validate.config.batch_size = 4;
    if ((rc = sk_flow_add(flow, &validate)) != SK_OK ||
        (rc = sk_flow_add(flow, &store.base)) != SK_OK || (rc = sk_flow_start(flow)) != SK_OK) {
        fprintf(stderr, "could not start the flow: %s\n", sk_strerror(rc));
        sk_flow_release(flow);
        return 1;
    }

    int failures = 0;
    long submitted = 0, ok = 0;
    record r;
    sk_flow_result res;

    /* 0. good records go through */
    for (int i = 0; i < GOOD; i++) {
        r = (record){.value = i};
        if (sk_flow_submit(flow, &r, 1.0, 0, NULL) == SK_OK)
            submitted++;
    }
    for (long i = 0; i < submitted; i++) {
        if (sk_flow_collect(flow, 10.0, &r, &res) != SK_OK || res.status != SK_OK ||
            r.stored != 2 * r.value)
            break;
        ok++;
    }
    printf("%ld records submitted and collected: %ld ok\n", submitted, ok);
    failures += ok != GOOD;

    for (int i = GOOD; i < N; i++) {
        r = (record){.value = i == BAD ? -i : i};
        rc = sk_flow_submit(flow, &r, 1.0, 0, NULL); /* N fits the queue: no wait */
        if (rc == SK_ECLOSED)
            break; /* the error may come before the last submit */
        if (rc != SK_OK) {
            fprintf(stderr, "sk_flow_submit: %s\n", sk_strerror(rc));
            failures++;
            break;
        }
        submitted++;
    }
    printf("%ld more submitted; record %d is negative\n\n", submitted - GOOD, BAD);

    /* 1. the flow ends with an error */
    rc = sk_flow_wait(flow, 10.0);
    const sk_flow_result *e = sk_flow_error(flow);
    printf("sk_flow_wait: %s (%s)\n", rc == SK_EPROCESS ? "SK_EPROCESS" : "?", sk_strerror(rc));
    if (e != NULL) {
        printf("sk_flow_error: step %d (%s), process %d\n  %s\n  %s\n", e->step,
               e->step == 0 ? validate_class.name : "?", e->process, e->error.message,
               e->error.cause);
    }
    failures += rc != SK_EPROCESS || e == NULL || e->step != 0 || e->process < 0 ||
                e->process > 1 || strstr(e->error.cause, "is negative") == NULL;

    /* 2. what was in flight comes out failed */
    long closed = 0;
    bool bad_failed = false;
    while ((rc = sk_flow_collect(flow, 10.0, &r, &res)) == SK_OK) {
        if (res.status == SK_OK) {
            ok++;
            failures += r.stored != 2 * r.value || r.value < 0;
            continue;
        }
        closed += res.status == SK_ECLOSED;
        failures += res.status != SK_ECLOSED || res.step != 0;
        if (res.id == BAD) { /* the ids count from 0 as the records were submitted */
            bad_failed = true;
            printf("\ntask %" PRIu64 " (value %" PRId64 "): %s, step %d, process %d\n  %s\n",
                   res.id, r.value, res.status == SK_ECLOSED ? "SK_ECLOSED" : "?", res.step,
                   res.process, res.error.message);
        }
    }
    printf("\ncollected: %ld ok (%ld since the first %d), %ld failed with SK_ECLOSED, then %s\n",
           ok, ok - GOOD, GOOD, closed, sk_strerror(rc));
    failures += rc != SK_ECLOSED || ok + closed != submitted || !bad_failed;

    /* 3. no more input */
    record more = {.value = 1};
    rc = sk_flow_submit(flow, &more, 0, 0, NULL);
    printf("sk_flow_submit afterwards: %s\n", sk_strerror(rc));
    failures += rc != SK_ECLOSED;

    sk_flow_release(flow);
    printf("\n%s\n", failures ? "FAILED" : "ok: the flow stopped as it should");
    return failures ? 1 : 0;
}
