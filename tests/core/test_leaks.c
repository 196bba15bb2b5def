/* SPDX-License-Identifier: MIT */
/*
 * Leaks over many cycles: no file descriptor, no child (not even a zombie)
 * and no unbounded memory growth after start/result, kill, release while
 * running, and failing processes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#define CYCLES 1000
#define RSS_SLACK_KB (4 * 1024)
#define HEAP_SLACK_KB 48

typedef struct {
    sk_process base;
    int64_t value;
    int crash;
    useconds_t nap;
} cycler;

#define CYCLER(p) SK_CONTAINER_OF(p, cycler, base)

static int cycler_run(sk_process *self)
{
    cycler *c = CYCLER(self);
    if (c->crash)
        skt_die_by(SIGSEGV);
    if (c->nap)
        usleep(c->nap);
    c->value++;
    return 0;
}

static int cycler_result(sk_process *self)
{
    char *text = "a result with a string in it";
    return sk_return(self, "Is", &CYCLER(self)->value, &text);
}

static int cycler_error(sk_process *self)
{
    int32_t kind = (int32_t)sk_error_of(self)->kind;
    return sk_return(self, "i", &kind);
}

static const sk_class cycler_class = {
    .name = "cycler", .run = cycler_run, .result = cycler_result, .error = cycler_error};

/* One start/result/release cycle on c. */
static void one_cycle(cycler *c, int64_t seed)
{
    assert_rc(sk_init(&c->base, &cycler_class), SK_OK);
    c->value = seed;
    c->crash = 0;
    c->nap = 0;
    c->base.config.runs = 2;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t v = 0;
    char *s = NULL;
    assert_rc(sk_result(&c->base, "Is", &v, &s), SK_OK);
    assert_int_equal(v, seed + 2);
    assert_non_null(s);
    free(s);
    sk_release(&c->base);
}

static void test_start_result_cycles(void **state)
{
    (void)state;
    skt_bound(120); /* about ten times what it takes on an idle machine */
    cycler *c = skt_new(cycler);
    /* Warm up: lazily set-up state (tpl hooks, stdio buffers) is not a leak. */
    for (int i = 0; i < 20; i++)
        one_cycle(c, i);
    int fds = skt_fd_count();
    long rss = skt_rss_kb(), heap = skt_heap_kb();
    for (int i = 0; i < CYCLES; i++) {
        one_cycle(c, i);
        if (i % 100 == 0) /* no zombie between cycles either */
            assert_no_children();
    }
    assert_int_equal(skt_fd_count(), fds);
    assert_no_children();
    /* The heap in use means the same in every build: a leak of even 64
     * bytes a cycle would show as 64 KiB. */
    long heap_grown = skt_heap_kb() - heap;
    if (heap_grown > HEAP_SLACK_KB)
        fail_msg("the heap grew by %ld KiB over %d cycles", heap_grown, CYCLES);
    /* The process as a whole (mappings included) only where the RSS is
     * ours alone: a sanitizer's quarantine and shadow grow it by design. */
    long grown = skt_rss_kb() - rss;
    if (!SKT_SANITIZED && grown > RSS_SLACK_KB)
        fail_msg("RSS grew by %ld KiB over %d cycles", grown, CYCLES);
}

/* After sk_wait, the parent has no child left: the supervisor is reaped. */
static void test_no_zombie_after_wait(void **state)
{
    (void)state;
    cycler *c = skt_new(cycler);
    for (int i = 0; i < 20; i++) {
        assert_rc(sk_init(&c->base, &cycler_class), SK_OK);
        c->base.config.runs = 1;
        assert_rc(sk_start(&c->base), SK_OK);
        assert_false(skt_no_children()); /* the supervisor */
        assert_rc(sk_wait(&c->base, 10.0), SK_OK);
        assert_no_children();
        sk_release(&c->base);
    }
}

static void test_kill_cycles(void **state)
{
    (void)state;
    cycler *c = skt_new(cycler);
    int fds = skt_fd_count();
    for (int i = 0; i < 100; i++) {
        assert_rc(sk_init(&c->base, &cycler_class), SK_OK);
        c->nap = 100; /* endless */
        assert_rc(sk_start(&c->base), SK_OK);
        if (i % 2 == 0) /* half killed while looping, half maybe before */
            assert_running(&c->base, 5.0);
        assert_rc(sk_kill(&c->base), SK_OK);
        assert_no_children();
        assert_rc(sk_result(&c->base, NULL), SK_EKILLED);
        sk_release(&c->base);
    }
    assert_int_equal(skt_fd_count(), fds);
    assert_no_children();
}

static void test_release_while_running_cycles(void **state)
{
    (void)state;
    cycler *c = skt_new(cycler);
    int fds = skt_fd_count();
    for (int i = 0; i < 100; i++) {
        assert_rc(sk_init(&c->base, &cycler_class), SK_OK);
        c->nap = 100;
        assert_rc(sk_start(&c->base), SK_OK);
        sk_release(&c->base);
        assert_no_children();
    }
    assert_int_equal(skt_fd_count(), fds);
}

static void test_failing_process_cycles(void **state)
{
    (void)state;
    cycler *c = skt_new(cycler);
    int fds = skt_fd_count();
    for (int i = 0; i < 100; i++) {
        assert_rc(sk_init(&c->base, &cycler_class), SK_OK);
        c->crash = 1;
        c->base.config.lives = 2; /* a restart, then the error hook's worker */
        assert_rc(sk_start(&c->base), SK_OK);
        int32_t kind = -1;
        assert_rc(sk_result(&c->base, "i", &kind), SK_EPROCESS);
        assert_int_equal(kind, SK_CRASH_ERROR);
        assert_no_children();
        sk_release(&c->base);
    }
    assert_int_equal(skt_fd_count(), fds);
}

/* When sk_kill returns, nothing of the process runs any more: not even a
 * worker its supervisor was restarting at that moment. Every process of
 * it holds the write end of a pipe, so the read end must be at end of file
 * at once. Workers crash on every run and are restarted again and again, so
 * that the kills land at every point of a restart. */
static int crash_always(sk_process *self)
{
    (void)self;
    skt_die_by(SIGKILL);
    return 0;
}

static const sk_class crash_always_class = {.name = "crash_always", .run = crash_always};

static void test_kill_during_restarts_leaves_nothing_running(void **state)
{
    (void)state;
    skt_bound(120); /* about ten times what it takes on an idle machine */
    cycler *c = skt_new(cycler);
    int late = 0, cycles = 2000;
    for (int i = 0; i < cycles; i++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        assert_rc(sk_init(&c->base, &crash_always_class), SK_OK);
        c->base.config.lives = 1000000;
        int rc = sk_start(&c->base);
        close(fds[1]);
        if (rc == SK_OK) {
            skt_sleep((i % 7) * 0.0001);
            rc = sk_kill(&c->base);
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, 0) == 0)
            late++; /* someone still holds the write end */
        close(fds[0]);
        sk_release(&c->base);
        assert_rc(rc, SK_OK);
    }
    if (late > 0)
        fail_msg("%d of %d kills returned while a process of the killed one still ran", late,
                 cycles);
    assert_no_children();
}

/* Many handles alive at once, released in a different order. */
static void test_many_handles_at_once(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    cycler *cs[40];
    for (int i = 0; i < 40; i++) {
        cs[i] = skt_new(cycler);
        assert_rc(sk_init(&cs[i]->base, &cycler_class), SK_OK);
        cs[i]->nap = 100;
        assert_rc(sk_start(&cs[i]->base), SK_OK);
    }
    for (int i = 0; i < 40; i += 2) { /* even: stop and collect */
        assert_rc(sk_stop(&cs[i]->base), SK_OK);
        int64_t v;
        char *s = NULL;
        assert_rc(sk_result(&cs[i]->base, "Is", &v, &s), SK_OK);
        free(s);
    }
    for (int i = 39; i >= 0; i--) /* odd: released while running */
        sk_release(&cs[i]->base);
    assert_no_children();
    assert_int_equal(skt_fd_count(), fds);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_start_result_cycles),
        SKT_TEST(test_no_zombie_after_wait),
        SKT_TEST(test_kill_cycles),
        SKT_TEST(test_release_while_running_cycles),
        SKT_TEST(test_failing_process_cycles),
        SKT_TEST(test_kill_during_restarts_leaves_nothing_running),
        SKT_TEST(test_many_handles_at_once),
    };
    return skt_run(argc, argv, tests);
}
