/* SPDX-License-Identifier: MIT */
/*
 * pool_classes: a process class per item, and what a failing item reports.
 *
 * Instead of a function, a job can name a process class (job.cls). For every
 * item, a worker makes a fresh object of cls->size bytes, sk_init's it, and
 * calls cls->init(self, item), which fills the object from the item and may
 * set its config (here: runs = the item). The object then runs its whole
 * lifecycle (prerun/run/postrun loop, onfinish, result) as a process of its
 * own, and the item's result is what its result hook sk_return'ed, unpacked
 * with job.result_format.
 *
 * Each item n sums 0 + 1 + ... + (n - 1), one number per run. The item 13
 * fails in its run hook on run 5, so the call ends with SK_EPROCESS: the
 * other results are filled all the same, status[] says which item failed,
 * and sk_pool_item_error says why, with the same sk_error a process gets
 * (kind, section, run, code, message, and the item's index).
 *
 * The call is an async_map so that there is a call object to ask for the
 * errors of its items: sk_pool_get waits for it and returns what sk_pool_map
 * would have.
 *
 * Build: gcc -std=c11 pool_classes.c $(pkg-config --cflags --libs skproc)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <skproc.h>

typedef struct {
    sk_process base;
    int n;       /* from the item */
    int64_t sum; /* 0 + 1 + ... + (n - 1) */
} summer;

#define SUMMER(p) SK_CONTAINER_OF(p, summer, base)

/* In the worker, on a zeroed, sk_init'ed object: take the item. */
static int summer_init(sk_process *self, const void *item)
{
    summer *s = SUMMER(self);
    memcpy(&s->n, item, sizeof s->n);
    self->config.runs = s->n; /* one run per number */
    return 0;
}

static int summer_run(sk_process *self)
{
    summer *s = SUMMER(self);
    long run = sk_current_run(self);
    if (s->n == 13 && run == 5)
        return sk_fail(self, 13, "unlucky number %d", s->n);
    s->sum += run;
    return 0;
}

static int summer_result(sk_process *self)
{
    return sk_return(self, "I", &SUMMER(self)->sum);
}

static const sk_class summer_class = {
    .name = "summer",
    .run = summer_run,
    .result = summer_result,
    .size = sizeof(summer),
    .init = summer_init,
};

#define N 16

int main(void)
{
    sk_pool *pool;
    int rc = sk_pool_create(&pool, NULL);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }

    int items[N];
    int64_t sums[N];
    int status[N];
    for (int i = 0; i < N; i++)
        items[i] = i + 1;

    sk_pool_job job = {
        .cls = &summer_class,
        .item_size = sizeof(int),
        .result_size = sizeof(int64_t),
        .result_format = "I", /* what the result hook sk_return's */
    };
    sk_pool_call *call;
    rc = sk_pool_async_map(pool, &job, items, N, sums, status, &call);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_async_map: %s\n", sk_strerror(rc));
        sk_pool_release(pool);
        return 1;
    }
    /* ... the parent is free to do other work here ... */
    rc = sk_pool_get(call, -1);
    printf("sk_pool_get: %s\n", sk_strerror(rc));

    int ok = rc == SK_EPROCESS; /* item 12 (n = 13) fails, the rest succeed */
    for (int i = 0; i < N; i++) {
        int64_t want = (int64_t)items[i] * (items[i] - 1) / 2;
        if (status[i] == SK_OK) {
            printf("  item %2d: n = %2d, sum = %3" PRId64 "\n", i, items[i], sums[i]);
            ok &= sums[i] == want;
            continue;
        }
        const sk_error *e = sk_pool_item_error(call, (size_t)i);
        printf("  item %2d: n = %2d, failed: %s\n", i, items[i], sk_strerror(status[i]));
        if (e != NULL) {
            char report[2048];
            sk_error_format(e, report, sizeof report);
            printf("%s\n", report);
        }
        ok &= items[i] == 13 && e != NULL && e->kind == SK_RUN_ERROR && e->run == 5 &&
              e->code == 13 && e->item == i;
    }
    const sk_error *first = sk_pool_error(call);
    if (first != NULL)
        printf("first failure: item %ld, %s\n", first->item, sk_error_name(first->kind));

    sk_pool_call_free(call);
    sk_pool_release(pool);
    return ok ? 0 : 1;
}
