/* SPDX-License-Identifier: MIT */
/*
 * pool_squares: the smallest pool program, a map that squares numbers.
 *
 * sk_pool_create forks one worker per CPU. sk_pool_map applies the job's
 * function to every item of an array, in the workers, and fills the results
 * array in item order: results[i] = square(items[i]). Items and results are
 * plain records (here an int32_t and an int64_t), so they travel as bytes,
 * in batches through shared memory, with no serialization.
 *
 * The function runs in a worker process: it reads its item, writes its
 * result and returns 0 (non-zero would mark the item as failed). It must
 * exist in the program when the pool is created, which every function
 * linked into the program does.
 *
 * Build: gcc -std=c11 pool_squares.c $(pkg-config --cflags --libs skproc)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <skproc.h>

#define N 100000

static int square(const void *item, void *result, const void *arg)
{
    (void)arg; /* no argument in this job */
    int32_t x;
    memcpy(&x, item, sizeof x);
    int64_t y = (int64_t)x * x;
    memcpy(result, &y, sizeof y);
    return 0;
}

static int32_t items[N];
static int64_t results[N];

int main(void)
{
    for (int i = 0; i < N; i++)
        items[i] = i;

    sk_pool *pool;
    int rc = sk_pool_create(&pool, NULL); /* NULL: one worker per CPU, defaults */
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }

    sk_pool_job job = {
        .fn = square,
        .item_size = sizeof(int32_t),
        .result_size = sizeof(int64_t),
    };
    rc = sk_pool_map(pool, &job, items, N, results, NULL); /* blocks until done */
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_map: %s\n", sk_strerror(rc));
        sk_pool_release(pool);
        return 1;
    }

    printf("squares of 0..%d:", N - 1);
    for (int i = 0; i < 5; i++)
        printf(" %" PRId64, results[i]);
    printf(" ... %" PRId64 "\n", results[N - 1]);

    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += results[i] != (int64_t)i * i;
    printf("%d of %d results checked wrong\n", bad, N);

    /* close + join: let the workers leave politely; release frees the pool. */
    sk_pool_close(pool);
    sk_pool_join(pool, -1);
    sk_pool_release(pool);
    return bad == 0 ? 0 : 1;
}
