/* SPDX-License-Identifier: MIT */
/*
 * sk_tell_wait: a tell that sleeps for room instead of saying SK_EFULL.
 * From the parent into a child that reads late, never, or ends; from a
 * hook into a parent that reads slowly; with timeout 0 it is sk_tell. The
 * wait costs no CPU and the messages arrive whole and in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <sys/resource.h>

#define CAPACITY 4096 /* an "I" message takes 32 bytes in the ring: 128 fit */
#define MESSAGES 2000 /* far more than fit at once */

struct gate {
    _Atomic int open; /* the reader may start */
    _Atomic int read; /* messages the child has read */
};

typedef struct {
    sk_process base;
    struct gate *gate;
    int mode;
} reader;

enum { READ_AFTER_GATE, READ_NEVER, END_AFTER_GATE, TELL_MANY };

/* Reads "I" messages in order until the parent stops it; each must be the
 * next number. */
static int reader_run(sk_process *self)
{
    reader *r = SK_CONTAINER_OF(self, reader, base);
    if (r->mode == TELL_MANY) {
        for (int64_t i = 0; i < MESSAGES; i++) {
            int rc = sk_tell_wait(self, 30, "I", &i);
            if (rc != SK_OK)
                return sk_fail(self, rc, "tell_wait %" PRId64 ": %s", i, sk_strerror(rc));
        }
        sk_stop(self);
        return 0;
    }
    while (!atomic_load(&r->gate->open))
        skt_sleep(0.001);
    if (r->mode == READ_NEVER || r->mode == END_AFTER_GATE) {
        sk_stop(self);
        return 0;
    }
    for (int64_t want = 0;; want++) {
        int64_t v = -1;
        int rc = sk_listen(self, -1, "I", &v);
        if (rc == SK_ECLOSED)
            break;
        if (rc != SK_OK || v != want)
            return sk_fail(self, rc ? rc : 1, "got %" PRId64 " (%s), want %" PRId64, v,
                           sk_strerror(rc), want);
        atomic_fetch_add(&r->gate->read, 1);
    }
    sk_stop(self);
    return 0;
}

static const sk_class reader_class = {.name = "reader", .run = reader_run};

static reader *reader_start(int mode)
{
    reader *r = skt_new(reader);
    assert_rc(sk_init(&r->base, &reader_class), SK_OK);
    r->gate = skt_shared(sizeof *r->gate);
    r->mode = mode;
    r->base.config.capacity = CAPACITY;
    assert_rc(sk_start(&r->base), SK_OK);
    return r;
}

/* Fills the channel with plain tells until SK_EFULL; returns how many. */
static int64_t fill(reader *r)
{
    int64_t i = 0;
    int rc;
    while ((rc = sk_tell(&r->base, "I", &i)) == SK_OK)
        i++;
    assert_rc(rc, SK_EFULL);
    assert_cmp(i, >, 0);
    return i;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* The parent waits for room while the child has not started reading, then
 * every message arrives, in order. */
static void test_parent_waits_for_room(void **state)
{
    (void)state;
    reader *r = reader_start(READ_AFTER_GATE);
    int64_t i = fill(r);
    /* Full, and nobody reads: a wait with a timeout says so. */
    double t0 = skt_now(), c0 = cpu_seconds();
    assert_rc(sk_tell_wait(&r->base, 0.3, "I", &i), SK_ETIMEDOUT);
    double waited = skt_now() - t0, burned = cpu_seconds() - c0;
    assert_cmp(waited, >=, 0.29);
    assert_cmp(burned, <, 0.05 * skt_slowdown()); /* it slept, it did not spin */
    atomic_store(&r->gate->open, 1);
    for (; i < MESSAGES; i++)
        assert_rc(sk_tell_wait(&r->base, 30, "I", &i), SK_OK);
    skt_wait_until(atomic_load(&r->gate->read) == MESSAGES, 30);
    assert_rc(sk_stop(&r->base), SK_OK);
    assert_rc(sk_wait(&r->base, 30), SK_OK);
    assert_no_error(&r->base);
}

/* Timeout 0 is sk_tell: SK_EFULL at once, nothing queued. */
static void test_timeout_zero_is_tell(void **state)
{
    (void)state;
    reader *r = reader_start(READ_AFTER_GATE);
    int64_t i = fill(r);
    double t0 = skt_now();
    assert_rc(sk_tell_wait(&r->base, 0, "I", &i), SK_EFULL);
    assert_cmp(skt_now() - t0, <, 0.1 * skt_slowdown());
    atomic_store(&r->gate->open, 1);
    skt_wait_until(atomic_load(&r->gate->read) == i, 30); /* exactly what fit, no more */
    assert_rc(sk_stop(&r->base), SK_OK);
    assert_rc(sk_wait(&r->base, 30), SK_OK);
    assert_no_error(&r->base);
    assert_int_equal(atomic_load(&r->gate->read), i);
}

/* The child ends without reading while the parent waits (no limit): the
 * wait ends with SK_ECLOSED instead of hanging. */
static void test_child_ends_while_parent_waits(void **state)
{
    (void)state;
    reader *r = reader_start(END_AFTER_GATE);
    int64_t i = fill(r);
    atomic_store(&r->gate->open, 1);
    assert_rc(sk_tell_wait(&r->base, -1, "I", &i), SK_ECLOSED);
    assert_rc(sk_wait(&r->base, 30), SK_OK);
    assert_no_error(&r->base);
}

/* A hook tells far more than fits while the parent reads: all of them
 * arrive, in order, and the hook never saw SK_EFULL. */
static void test_hook_waits_for_room(void **state)
{
    (void)state;
    reader *r = reader_start(TELL_MANY);
    for (int64_t want = 0; want < MESSAGES; want++) {
        int64_t v = -1;
        assert_rc(sk_listen(&r->base, 30, "I", &v), SK_OK);
        assert_int_equal(v, want);
        if (want % 500 == 0)
            skt_sleep(0.01); /* read slowly now and then: the hook must wait */
    }
    assert_rc(sk_wait(&r->base, 30), SK_OK);
    assert_no_error(&r->base);
}

/* Bad calls are refused as sk_tell refuses them. */
static void test_bad_calls(void **state)
{
    (void)state;
    int64_t v = 1;
    assert_rc(sk_tell_wait(NULL, 1, "I", &v), SK_EINVAL);
    reader *r = skt_new(reader);
    assert_rc(sk_init(&r->base, &reader_class), SK_OK);
    assert_rc(sk_tell_wait(&r->base, 1, "I", &v), SK_ESTATE); /* not started */
    r->gate = skt_shared(sizeof *r->gate);
    r->mode = READ_NEVER;
    assert_rc(sk_start(&r->base), SK_OK);
    assert_rc(sk_tell_wait(&r->base, 1, NULL), SK_EINVAL);
    assert_rc(sk_tell_wait(&r->base, 1, "A(i)", &v), SK_EINVAL);
    atomic_store(&r->gate->open, 1);
    assert_rc(sk_wait(&r->base, 30), SK_OK);
    assert_rc(sk_tell_wait(&r->base, 1, "I", &v), SK_ECLOSED); /* ended */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_parent_waits_for_room),
        SKT_TEST(test_timeout_zero_is_tell),
        SKT_TEST(test_child_ends_while_parent_waits),
        SKT_TEST(test_hook_waits_for_room),
        SKT_TEST(test_bad_calls),
    };
    return skt_run(argc, argv, tests);
}
