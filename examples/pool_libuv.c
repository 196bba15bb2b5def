/* SPDX-License-Identifier: MIT */
/*
 * A pool in a libuv loop: one uv_poll_t on the pool's fd (sk_pool_fd,
 * readable while any of its calls has something for its caller) serves
 * three submitted tasks and an iterator, next to a uv_timer_t. Built only
 * when pkg-config finds libuv (Debian: libuv1-dev); test_pool_fd runs it.
 *
 *     build/default/examples/pool_libuv
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <skproc.h>
#include <uv.h>

static int cube(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    int64_t r = (int64_t)x * x * x;
    memcpy(result, &r, sizeof r);
    return 0;
}

#define TASKS 3
#define N 1000

struct app {
    sk_pool *pool;
    sk_pool_call *tasks[TASKS], *iter;
    int32_t task_items[TASKS];
    int64_t task_results[TASKS];
    int pending; /* calls not done yet */
    int64_t iter_sum;
    long wakes, ticks;
    uv_poll_t poll;
    uv_timer_t timer;
};

static void on_pool(uv_poll_t *handle, int status, int events)
{
    struct app *app = handle->data;
    (void)events;
    if (status < 0)
        return;
    app->wakes++;
    for (int i = 0; i < TASKS; i++) {
        if (app->tasks[i] == NULL || !sk_pool_ready(app->tasks[i]))
            continue;
        int rc = sk_pool_get(app->tasks[i], 0);
        printf("task %d: %s, %" PRId32 "^3 = %" PRId64 "\n", i, sk_strerror(rc), app->task_items[i],
               app->task_results[i]);
        sk_pool_call_free(app->tasks[i]);
        app->tasks[i] = NULL;
        app->pending--;
    }
    if (app->iter != NULL) {
        size_t index;
        int64_t r;
        int rc;
        while ((rc = sk_pool_next(app->iter, 0, &index, &r)) == SK_OK)
            app->iter_sum += r;
        if (rc == SK_ECLOSED) {
            sk_pool_call_free(app->iter);
            app->iter = NULL;
            app->pending--;
        }
    }
    if (app->pending == 0) {
        uv_poll_stop(&app->poll);
        uv_timer_stop(&app->timer);
        uv_close((uv_handle_t *)&app->poll, NULL);
        uv_close((uv_handle_t *)&app->timer, NULL);
    }
}

static void on_tick(uv_timer_t *timer)
{
    ((struct app *)timer->data)->ticks++;
}

int main(void)
{
    static struct app app;
    static int32_t items[N];
    sk_pool_config cfg = {.workers = 2};
    int rc = sk_pool_create(&app.pool, &cfg);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_pool_create: %s\n", sk_strerror(rc));
        return 1;
    }
    sk_pool_job job = {.fn = cube, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};
    for (int i = 0; i < TASKS; i++) {
        app.task_items[i] = 10 * (i + 1);
        if (sk_pool_submit(app.pool, &job, &app.task_items[i], &app.task_results[i],
                           &app.tasks[i]) == SK_OK)
            app.pending++;
    }
    for (int i = 0; i < N; i++)
        items[i] = i;
    if (sk_pool_imap(app.pool, &job, items, N, &app.iter) == SK_OK)
        app.pending++;
    int fd = sk_pool_fd(app.pool);
    if (fd < 0 || app.pending != TASKS + 1) {
        fprintf(stderr, "could not start: %s\n", sk_strerror(fd < 0 ? fd : SK_EINVAL));
        sk_pool_release(app.pool);
        return 1;
    }

    uv_loop_t *loop = uv_default_loop();
    uv_poll_init(loop, &app.poll, fd);
    uv_timer_init(loop, &app.timer);
    app.poll.data = app.timer.data = &app;
    uv_poll_start(&app.poll, UV_READABLE, on_pool);
    uv_timer_start(&app.timer, on_tick, 10, 10);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);

    int64_t want = 0;
    for (int i = 0; i < N; i++)
        want += (int64_t)i * i * i;
    printf("iterator sum %" PRId64 " (want %" PRId64 "), %ld wakes, %ld ticks\n", app.iter_sum,
           want, app.wakes, app.ticks);
    sk_pool_release(app.pool);
    bool ok = app.iter_sum == want;
    for (int i = 0; i < TASKS; i++)
        ok &= app.task_results[i] ==
              (int64_t)app.task_items[i] * app.task_items[i] * app.task_items[i];
    return ok ? 0 : 1;
}
