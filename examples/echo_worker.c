/* SPDX-License-Identifier: MIT */
/*
 * echo_worker: a child that sends back whatever the parent tells it.
 *
 * The child does not know in advance what it will receive: it takes each
 * message whole with sk_listen_message, whatever its format, and tells the
 * same image back with sk_tell_image. The parent tells strings and numbers
 * with sk_tell and reads each answer with sk_listen and the same format.
 *
 * The child's loop ends when the parent calls sk_stop: its sk_listen_message
 * then returns SK_ECLOSED (once nothing is left to read).
 *
 * At the end, the parent times 20000 round trips of one int, and a second
 * process that tells 200000 ints one way as fast as it can.
 *
 * Build: gcc -std=c11 echo_worker.c $(pkg-config --cflags --libs skproc)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_yield, clock_gettime */
#endif
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <skproc.h>

/* ------------------------------------------------------------ the echo */

/* Runs once and loops inside: one call of run serves the whole session. */
static int echo_run(sk_process *self)
{
    sk_message *msg;
    int rc;
    while ((rc = sk_listen_message(self, -1, &msg)) == SK_OK) {
        size_t len;
        const void *img = sk_message_image(msg, &len);
        rc = sk_tell_image(self, img, len); /* the same bytes, back */
        sk_message_free(msg);
        if (rc != SK_OK)
            return sk_fail(self, rc, "tell: %s", sk_strerror(rc));
    }
    if (rc != SK_ECLOSED) /* SK_ECLOSED: the parent called sk_stop */
        return sk_fail(self, rc, "listen: %s", sk_strerror(rc));
    return 0;
}

static const sk_class echo_class = {.name = "echo", .run = echo_run};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each check prints one line and returns 1 when the echo differs. */
static int check_string(sk_process *p, const char *text)
{
    char *back = NULL;
    int rc = sk_tell(p, "s", &text);
    if (rc == SK_OK)
        rc = sk_listen(p, 5, "s", &back); /* back is malloc'ed: free it */
    int bad = rc != SK_OK || back == NULL || strcmp(back, text) != 0;
    printf("  \"%s\" -> \"%s\" (%s)\n", text, back != NULL ? back : "", sk_strerror(rc));
    free(back);
    return bad;
}

static int check_int64(sk_process *p, int64_t value)
{
    int64_t back = 0;
    int rc = sk_tell(p, "I", &value);
    if (rc == SK_OK)
        rc = sk_listen(p, 5, "I", &back);
    printf("  %" PRId64 " -> %" PRId64 " (%s)\n", value, back, sk_strerror(rc));
    return rc != SK_OK || back != value;
}

static int check_double(sk_process *p, double value)
{
    double back = 0;
    int rc = sk_tell(p, "f", &value);
    if (rc == SK_OK)
        rc = sk_listen(p, 5, "f", &back);
    printf("  %g -> %g (%s)\n", value, back, sk_strerror(rc));
    return rc != SK_OK || back != value;
}

/* Several values in one message: an int and a string. */
static int check_pair(sk_process *p, int32_t id, const char *name)
{
    int32_t back_id = 0;
    char *back_name = NULL;
    int rc = sk_tell(p, "is", &id, &name);
    if (rc == SK_OK)
        rc = sk_listen(p, 5, "is", &back_id, &back_name);
    int bad = rc != SK_OK || back_id != id || strcmp(back_name, name) != 0;
    printf("  (%d, \"%s\") -> (%d, \"%s\") (%s)\n", (int)id, name, (int)back_id,
           back_name ? back_name : "", sk_strerror(rc));
    free(back_name);
    return bad;
}

static double time_round_trips(sk_process *p, int n)
{
    double t0 = now();
    for (int32_t i = 0; i < n; i++) {
        int32_t back = -1;
        if (sk_tell(p, "i", &i) != SK_OK || sk_listen(p, 5, "i", &back) != SK_OK || back != i)
            return -1;
    }
    return (now() - t0) / n;
}

/* ----------------------------------------------------- one way, flat out */

#define STREAM_N 200000

static int stream_run(sk_process *self)
{
    for (int32_t i = 0; i < STREAM_N; i++) {
        int rc;
        /* tell never blocks: when the parent lags behind by config.capacity
         * bytes, it says SK_EFULL and queues nothing. Give the CPU away and
         * try again. */
        while ((rc = sk_tell(self, "i", &i)) == SK_EFULL)
            sched_yield();
        if (rc != SK_OK)
            return sk_fail(self, rc, "tell: %s", sk_strerror(rc));
    }
    return 0;
}

static const sk_class stream_class = {.name = "stream", .run = stream_run};

static double time_stream(void)
{
    sk_process p;
    sk_init(&p, &stream_class);
    p.config.runs = 1;
    double t0 = now();
    if (sk_start(&p) != SK_OK)
        return -1;
    int32_t want = 0, got;
    int rc;
    while ((rc = sk_listen(&p, 5, "i", &got)) == SK_OK && got == want)
        want++;
    double took = now() - t0; /* includes the start of the process */
    bool ok = rc == SK_ECLOSED && want == STREAM_N && sk_result(&p, NULL) == SK_OK;
    sk_release(&p);
    return ok ? STREAM_N / took : -1;
}

int main(void)
{
    sk_process echo;
    sk_init(&echo, &echo_class);
    int rc = sk_start(&echo);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_start: %s\n", sk_strerror(rc));
        return 1;
    }

    printf("told -> echoed\n");
    int bad = 0;
    bad |= check_string(&echo, "hello");
    bad |= check_string(&echo, "");
    bad |= check_int64(&echo, INT64_MIN);
    bad |= check_int64(&echo, 42);
    bad |= check_double(&echo, 3.25);
    bad |= check_pair(&echo, 7, "seven");

    double rt = time_round_trips(&echo, 20000);
    bad |= rt < 0;

    sk_stop(&echo); /* the child's listen returns SK_ECLOSED, its loop ends */
    rc = sk_result(&echo, NULL);
    printf("echo process: %s\n", sk_strerror(rc));
    sk_release(&echo);

    double rate = time_stream();
    bad |= rate < 0;
    printf("round trip (tell + listen of one int, both ways): %.1f us\n", rt * 1e6);
    printf("one way, child to parent: %.2f million messages/s\n", rate / 1e6);
    return bad || rc != SK_OK;
}
