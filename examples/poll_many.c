/* SPDX-License-Identifier: MIT */
/*
 * poll_many: one parent, four processes, one poll() loop.
 *
 * Each process tells a few messages at its own pace, then ends. The parent
 * does not block on any one of them: sk_fd(p) gives a file descriptor that
 * polls readable while a message from p is waiting, and stays readable for
 * good once p has ended. So the parent polls all four descriptors, drains
 * what is there with sk_listen(p, 0, ...) when one is readable, and takes a
 * process out of the set when sk_listen says SK_ECLOSED (ended, and all its
 * messages read). The same descriptors work with epoll or an event library.
 *
 * Build: gcc -std=c11 poll_many.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nanosleep, clock_gettime */
#endif
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <skproc.h>

#define PROCS 4
#define STEPS 3

typedef struct {
    sk_process base;
    int id;
    int pace_ms; /* time between two messages */
} ticker;

#define TICKER(p) SK_CONTAINER_OF(p, ticker, base)

static int ticker_run(sk_process *self)
{
    ticker *t = TICKER(self);
    struct timespec ts = {0, (long)t->pace_ms * 1000 * 1000};
    nanosleep(&ts, NULL);
    char text[64];
    snprintf(text, sizeof text, "step %ld of %d after %d ms", sk_current_run(self) + 1, STEPS,
             (int)(sk_current_run(self) + 1) * t->pace_ms);
    const char *s = text;
    int rc = sk_tell(self, "is", &t->id, &s); /* an int and a string */
    return rc == SK_OK ? 0 : sk_fail(self, rc, "tell: %s", sk_strerror(rc));
}

static const sk_class ticker_class = {.name = "ticker", .run = ticker_run};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads every message waiting from t. Returns true once t has ended. */
static bool drain(ticker *t, double t0, int *received)
{
    for (;;) {
        int id = -1;
        char *text = NULL;
        int rc = sk_listen(&t->base, 0, "is", &id, &text); /* 0: never blocks */
        if (rc == SK_OK) {
            printf("%6.1f ms  process %d: %s\n", (now() - t0) * 1e3, id, text);
            free(text);
            (*received)++;
            continue;
        }
        if (rc == SK_ETIMEDOUT)
            return false; /* nothing more for now */
        /* SK_ECLOSED: it ended and everything it sent was read. */
        int result = sk_result(&t->base, NULL); /* reaps it; does not block now */
        printf("%6.1f ms  process %d ended: %s\n", (now() - t0) * 1e3, t->id, sk_strerror(result));
        return true;
    }
}

int main(void)
{
    static const int pace_ms[PROCS] = {70, 20, 45, 30};
    ticker tickers[PROCS];
    struct pollfd fds[PROCS];
    double t0 = now();

    for (int i = 0; i < PROCS; i++) {
        ticker *t = &tickers[i];
        sk_init(&t->base, &ticker_class);
        t->id = i;
        t->pace_ms = pace_ms[i];
        t->base.config.runs = STEPS;
        int rc = sk_start(&t->base);
        if (rc == SK_OK)
            rc = sk_fd(&t->base);
        if (rc < 0) {
            fprintf(stderr, "process %d: %s\n", i, sk_strerror(rc));
            return 1;
        }
        fds[i] = (struct pollfd){.fd = rc, .events = POLLIN};
    }

    int open = PROCS, received = 0;
    while (open > 0) {
        if (poll(fds, PROCS, 5000) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        for (int i = 0; i < PROCS; i++) {
            if (fds[i].fd >= 0 && (fds[i].revents & POLLIN) && drain(&tickers[i], t0, &received)) {
                fds[i].fd = -1; /* poll ignores negative descriptors */
                open--;
            }
        }
    }

    int failed = 0;
    for (int i = 0; i < PROCS; i++) {
        failed |= sk_error_of(&tickers[i].base) != NULL;
        sk_release(&tickers[i].base); /* also closes the descriptor of sk_fd */
    }
    printf("%d messages from %d processes\n", received, PROCS);
    return failed || received != PROCS * STEPS;
}
