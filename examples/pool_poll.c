/* SPDX-License-Identifier: MIT */
/*
 * A pool in a poll() loop: the parent waits for an async map, an iterator
 * and stdin at once, with a 100 ms tick, instead of blocking in
 * sk_pool_get. sk_pool_call_fd gives each call an fd that polls readable
 * while the call has something for its caller; when it does, the loop
 * calls sk_pool_ready or sk_pool_next(call, 0, ...), which takes what is
 * there (and hands the workers more). Type a line to see that stdin is
 * served while the workers run. Then sk_pool_fd, one fd for the whole pool,
 * serves four submitted tasks as they end.
 *
 *     build/default/examples/pool_poll < /dev/null
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

/* A slow square: 2 ms per item. */
static int slow_square(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int64_t r = (int64_t)x * x;
    memcpy(result, &r, sizeof r);
    return 0;
}

#define N 400

int main(void)
{
    sk_pool_config cfg = {.workers = 2};
    sk_pool *pool;
    int rc = sk_pool_create(&pool, &cfg);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }
    static int32_t items[N];
    static int64_t squares[N];
    for (int i = 0; i < N; i++)
        items[i] = i;
    sk_pool_job job = {
        .fn = slow_square, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

    sk_pool_call *map, *iter;
    if (sk_pool_async_map(pool, &job, items, N, squares, NULL, &map) != SK_OK ||
        sk_pool_unordered_imap(pool, &job, items, N, &iter) != SK_OK) {
        fprintf(stderr, "could not start the calls\n");
        sk_pool_release(pool);
        return 1;
    }
    struct pollfd fds[3] = {
        {.fd = sk_pool_call_fd(map), .events = POLLIN},
        {.fd = sk_pool_call_fd(iter), .events = POLLIN},
        {.fd = STDIN_FILENO, .events = POLLIN},
    };
    if (fds[0].fd < 0 || fds[1].fd < 0) {
        fprintf(stderr, "sk_pool_call_fd failed\n");
        sk_pool_release(pool);
        return 1;
    }
    bool map_done = false, iter_done = false;
    int64_t iter_sum = 0;
    long ticks = 0, wakes = 0, lines = 0;
    while (!map_done || !iter_done) {
        int n = poll(fds, 3, 100);
        if (n == 0) {
            ticks++; /* the timer: other work of the program goes here */
            continue;
        }
        wakes++;
        if (fds[0].revents & POLLIN && sk_pool_ready(map)) {
            map_done = true;
            printf("map done: %s\n", sk_strerror(sk_pool_get(map, 0)));
            fds[0].fd = -1; /* poll ignores it from now on */
        }
        if (fds[1].revents & POLLIN) {
            size_t index;
            int64_t r;
            while ((rc = sk_pool_next(iter, 0, &index, &r)) == SK_OK)
                iter_sum += r;
            if (rc == SK_ECLOSED) {
                iter_done = true;
                fds[1].fd = -1;
            }
        }
        if (fds[2].revents & (POLLIN | POLLHUP)) {
            char buf[256];
            ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
            if (got <= 0)
                fds[2].fd = -1; /* end of input */
            else
                lines++;
        }
    }
    int64_t want = 0, map_sum = 0;
    for (int i = 0; i < N; i++) {
        want += (int64_t)i * i;
        map_sum += squares[i];
    }
    printf("map sum %" PRId64 ", iterator sum %" PRId64 " (want %" PRId64 ")\n", map_sum, iter_sum,
           want);
    printf("%ld wakes, %ld ticks, %ld reads from stdin\n", wakes, ticks, lines);
    sk_pool_call_free(map);
    sk_pool_call_free(iter);

    /* One fd for the whole pool: four submitted tasks, served as they end. */
    enum { TASKS = 4 };
    int32_t task_items[TASKS] = {3, 4, 5, 6};
    int64_t task_results[TASKS];
    sk_pool_call *tasks[TASKS];
    int left = 0;
    for (int i = 0; i < TASKS; i++)
        if (sk_pool_submit(pool, &job, &task_items[i], &task_results[i], &tasks[i]) == SK_OK)
            left++;
        else
            tasks[i] = NULL;
    struct pollfd pool_fd = {.fd = sk_pool_fd(pool), .events = POLLIN};
    bool tasks_ok = left == TASKS && pool_fd.fd >= 0;
    while (tasks_ok && left > 0 && poll(&pool_fd, 1, 1000) > 0) {
        for (int i = 0; i < TASKS; i++) {
            if (tasks[i] == NULL || !sk_pool_ready(tasks[i]))
                continue;
            rc = sk_pool_get(tasks[i], 0);
            printf("task %d: %s, %" PRId32 "^2 = %" PRId64 "\n", i, sk_strerror(rc), task_items[i],
                   task_results[i]);
            tasks_ok &= rc == SK_OK && task_results[i] == (int64_t)task_items[i] * task_items[i];
            sk_pool_call_free(tasks[i]);
            tasks[i] = NULL;
            left--;
        }
    }
    for (int i = 0; i < TASKS; i++)
        sk_pool_call_free(tasks[i]); /* NULL is fine */
    sk_pool_release(pool);
    return map_sum == want && iter_sum == want && tasks_ok && left == 0 ? 0 : 1;
}
