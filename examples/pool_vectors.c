/* SPDX-License-Identifier: MIT */
/*
 * pool_vectors: a map at memory speed, y[i] = a * x[i] + b over 10 million
 * floats, with the two tools a pool has for tiny items.
 *
 * The range form of a job (sk_pool_job.range) hands the function a run of
 * consecutive items at once, so its loop is one the compiler vectorises,
 * with no call per item. Zero-copy arrays (sk_pool_alloc) live in memory
 * the workers read and write in place, so nothing is copied in or out.
 *
 * Failures stay per item: an x that is not a number makes its run fail,
 * the pool runs that run again one item per call, and only those items
 * fail (status[i] says which; sk_pool_item_error why).
 *
 * Build: gcc -std=c11 -O2 pool_vectors.c $(pkg-config --cflags --libs skproc)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <skproc.h>

#define N 10000000L

struct line {
    float a, b;
};

/* y = a * x + b for a run of `count` items; fails the run on a NaN. */
static int affine(const void *items, void *results, size_t count, const void *arg)
{
    const struct line *l = arg;
    const float *x = items;
    float *y = results;
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        y[i] = l->a * x[i] + l->b;
        bad |= isnan(x[i]);
    }
    return bad ? 22 : 0; /* 22: this example's code for "not a number" */
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
    sk_pool *pool;
    int rc = sk_pool_create(&pool, NULL);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }
    /* Arrays the workers see at the same address: no copy either way. */
    float *x = sk_pool_alloc(pool, N * sizeof *x);
    float *y = sk_pool_alloc(pool, N * sizeof *y);
    int *status = malloc(N * sizeof *status); /* written by the parent only */
    if (x == NULL || y == NULL || status == NULL) {
        fprintf(stderr, "sk_pool_alloc: %s\n", sk_last_error_message());
        sk_pool_release(pool);
        return 1;
    }
    for (long i = 0; i < N; i++)
        x[i] = (float)(i % 1000);

    struct line l = {.a = 2.0f, .b = 1.0f};
    sk_pool_job job = {.range = affine,
                       .arg = &l,
                       .arg_size = sizeof l, /* copied to the workers */
                       .item_size = sizeof(float),
                       .result_size = sizeof(float)};
    /* The first map maps the arrays' pages into every worker; then the
     * pool runs at memory speed. status NULL: sk_pool_map's code says
     * whether every item succeeded. */
    for (int round = 1; round <= 4; round++) {
        double t0 = seconds();
        rc = sk_pool_map(pool, &job, x, N, y, NULL);
        double t = seconds() - t0;
        printf("map %d: %6.1f ms, %5.0f M items/s: %s\n", round, t * 1e3, N / t / 1e6,
               sk_strerror(rc));
    }

    /* One bad input: its run fails, is run again one item per call, and
     * only that item fails; status[] says which. */
    x[4242] = NAN;
    rc = sk_pool_map(pool, &job, x, N, y, status);
    long failed = 0, wrong = 0;
    for (long i = 0; i < N; i++) {
        if (status[i] != SK_OK)
            failed++;
        else if (y[i] != 2.0f * x[i] + 1.0f)
            wrong++;
    }
    printf("with a NaN at 4242: %s; %ld item(s) failed (status[4242] = %d), %ld wrong "
           "result(s); y[4243] = %.1f\n",
           sk_strerror(rc), failed, status[4242], wrong, y[4243]);
    bool as_expected = rc == SK_EPROCESS && failed == 1 && status[4242] != SK_OK && wrong == 0;

    free(status);
    sk_pool_free(pool, y);
    sk_pool_free(pool, x);
    sk_pool_release(pool);
    return as_expected ? 0 : 1;
}
