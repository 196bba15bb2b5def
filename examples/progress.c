/* SPDX-License-Identifier: MIT */
/*
 * progress: a child reports how far it got while the parent prints it.
 *
 * The child works through N items, one per iteration (config.runs = N), and
 * tells the parent its progress in percent each time it reaches the next
 * tenth. The parent listens with a timeout, so that it could do other work
 * (or notice that nothing comes) between two reports, and stops listening
 * when sk_listen returns SK_ECLOSED: the child has ended and every report
 * it sent has been read. sk_result then gives the process's own result.
 *
 * Build: gcc -std=c11 progress.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nanosleep */
#endif
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <skproc.h>

#define ITEMS 40

typedef struct {
    sk_process base;
    int64_t done;    /* items processed */
    int reported;    /* the last percentage told */
    int64_t skipped; /* reports dropped because the channel was full */
} worker;

#define WORKER(p) SK_CONTAINER_OF(p, worker, base)

static void work_on_item(long item)
{
    (void)item;
    struct timespec ts = {0, 15 * 1000 * 1000}; /* pretend: 15 ms of work */
    nanosleep(&ts, NULL);
}

static int worker_run(sk_process *self)
{
    worker *w = WORKER(self);
    work_on_item(sk_current_run(self));
    w->done++;
    int percent = (int)(w->done * 100 / ITEMS);
    if (percent / 10 > w->reported / 10) {
        /* tell never blocks. A progress report can be dropped if the parent
         * does not keep up: SK_EFULL queued nothing, the next one will do. */
        int rc = sk_tell(self, "i", &percent);
        if (rc == SK_EFULL)
            w->skipped++;
        else if (rc != SK_OK)
            return sk_fail(self, rc, "tell: %s", sk_strerror(rc));
        else
            w->reported = percent;
    }
    return 0;
}

static int worker_result(sk_process *self)
{
    worker *w = WORKER(self);
    return sk_return(self, "II", &w->done, &w->skipped);
}

static const sk_class worker_class = {
    .name = "worker",
    .run = worker_run,
    .result = worker_result,
};

int main(void)
{
    worker w = {.done = 0};
    sk_init(&w.base, &worker_class);
    w.base.config.runs = ITEMS;
    int rc = sk_start(&w.base);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_start: %s\n", sk_strerror(rc));
        return 1;
    }

    int last = 0, quiet = 0;
    for (;;) {
        int percent;
        rc = sk_listen(&w.base, 0.05, "i", &percent);
        if (rc == SK_OK) {
            printf("progress: %3d%%\n", percent);
            fflush(stdout);
            last = percent;
        } else if (rc == SK_ETIMEDOUT) {
            quiet++; /* 50 ms without news: time to do something else */
        } else {
            break; /* SK_ECLOSED: the child ended and everything was read */
        }
    }
    printf("sk_listen: %s (%s); %d times 50 ms without news\n", sk_strerror(rc),
           rc == SK_ECLOSED ? "SK_ECLOSED" : "?", quiet);

    int64_t done = 0, skipped = 0;
    int result = sk_result(&w.base, "II", &done, &skipped);
    printf("sk_result: %s, %" PRId64 " items done, %" PRId64 " reports skipped\n",
           sk_strerror(result), done, skipped);
    sk_release(&w.base);
    return rc == SK_ECLOSED && result == SK_OK && done == ITEMS && last == 100 ? 0 : 1;
}
