/* SPDX-License-Identifier: MIT */
/*
 * A held start (sk_start_held, sk_start_release: core/process.h): the
 * process is forked but runs no hook until it is released, supervised and
 * not; the release starts it at once and join_in counts from there; sk_stop
 * of a held process runs its ending hooks and never its run hook; sk_kill
 * and sk_release end a held tree; a message told while held is read after
 * the release; a worker that scribbles the released flag or dies while held
 * costs the parent nothing; what is refused, and why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "core/process.h"
#include "core/runtime.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define BOUND (10 * skt_slowdown())

/* What the hooks saw, in a page shared with the workers. */
struct seen {
    _Atomic int prerun, run, onfinish;
    _Atomic int64_t run_at; /* CLOCK_MONOTONIC ns of the first run hook */
    _Atomic long message;   /* the value of the message read in run */
};

struct held {
    sk_process base;
    struct seen *seen;
    bool listen;   /* run reads one message */
    bool scribble; /* prerun sets the released flag of the next start */
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int held_prerun(sk_process *self)
{
    struct held *h = SK_CONTAINER_OF(self, struct held, base);
    atomic_fetch_add(&h->seen->prerun, 1);
    return 0;
}

static int held_run(sk_process *self)
{
    struct held *h = SK_CONTAINER_OF(self, struct held, base);
    int64_t zero = 0;
    atomic_compare_exchange_strong(&h->seen->run_at, &zero, mono_ns());
    atomic_fetch_add(&h->seen->run, 1);
    if (h->listen) {
        int64_t v = 0;
        if (sk_listen(self, 5.0, "I", &v) == SK_OK)
            atomic_store(&h->seen->message, v);
    }
    return 0;
}

static int held_onfinish(sk_process *self)
{
    struct held *h = SK_CONTAINER_OF(self, struct held, base);
    atomic_fetch_add(&h->seen->onfinish, 1);
    return 0;
}

static const sk_class held_class = {
    .name = "held", .prerun = held_prerun, .run = held_run, .onfinish = held_onfinish};

static struct held *new_held(bool supervise, long runs)
{
    struct held *h = skt_new(struct held);
    h->seen = skt_shared(sizeof *h->seen);
    assert_rc(sk_init(&h->base, &held_class), SK_OK);
    h->base.config.runs = runs;
    h->base.config.supervise = supervise;
    return h;
}

/* Nothing runs until the release; then it runs to its end at once. */
static void held_then_released(bool supervise)
{
    struct held *h = new_held(supervise, 3);
    assert_rc(sk_start_held(&h->base, 0), SK_OK);
    assert_true(sk_alive(&h->base));
    skt_wait_until(sk_pid(&h->base) > 1, BOUND); /* the worker is there, forked */
    /* a bounded look: a held process does not end by itself */
    assert_rc(sk_wait(&h->base, 0.2), SK_ETIMEDOUT);
    assert_int_equal(atomic_load(&h->seen->prerun), 0);
    assert_int_equal(atomic_load(&h->seen->run), 0);
    int64_t released = mono_ns();
    assert_rc(sk_start_release(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, BOUND), SK_OK);
    assert_no_error(&h->base);
    assert_int_equal(atomic_load(&h->seen->run), 3);
    assert_int_equal(atomic_load(&h->seen->onfinish), 1);
    /* generous: the wake-up of a forked process, not a new fork */
    assert_cmp(atomic_load(&h->seen->run_at) - released, <, (int64_t)(1e9 * skt_slowdown()));
    assert_rc(sk_start_release(&h->base), SK_ESTATE); /* once */
}

static void test_held_unsupervised(void **state)
{
    (void)state;
    held_then_released(false);
}

static void test_held_supervised(void **state)
{
    (void)state;
    held_then_released(true);
}

/* With the release time given, the worker wakes before it and spins: a
 * release on time, one long after the spin (it sleeps again), and a time
 * already past all start the run. */
static void test_held_release_at(void **state)
{
    (void)state;
    struct timespec ts;
    const double when[] = {0.15, 0.15, -1.0};
    const double release_after[] = {0.15, 0.4, 0.05};
    for (int i = 0; i < 3; i++) {
        struct held *h = new_held(true, 1);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        assert_rc(sk_start_held(&h->base, now + (int64_t)(when[i] * 1e9)), SK_OK);
        skt_sleep(release_after[i]); /* the release is due then: nothing to wait for */
        assert_int_equal(atomic_load(&h->seen->run), 0);
        int64_t released = mono_ns();
        assert_rc(sk_start_release(&h->base), SK_OK);
        assert_rc(sk_wait(&h->base, BOUND), SK_OK);
        assert_no_error(&h->base);
        assert_int_equal(atomic_load(&h->seen->run), 1);
        assert_cmp(atomic_load(&h->seen->run_at) - released, <, (int64_t)(1e9 * skt_slowdown()));
    }
}

/* join_in counts from the release, not from the fork. */
static void test_held_join_in_from_release(void **state)
{
    (void)state;
    struct held *h = new_held(true, 0);
    h->base.config.join_in = 0.3;
    assert_rc(sk_start_held(&h->base, 0), SK_OK);
    assert_rc(sk_wait(&h->base, 0.6), SK_ETIMEDOUT); /* longer than join_in */
    assert_rc(sk_start_release(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, BOUND), SK_OK);
    assert_cmp(atomic_load(&h->seen->run), >, 0); /* it looped after the release */
    assert_int_equal(atomic_load(&h->seen->onfinish), 1);
}

/* A stop while held: the ending hooks run, the loop's never. */
static void test_held_stopped(void **state)
{
    (void)state;
    for (int supervise = 0; supervise < 2; supervise++) {
        struct held *h = new_held(supervise, 5);
        assert_rc(sk_start_held(&h->base, 0), SK_OK);
        assert_rc(sk_stop(&h->base), SK_OK);
        assert_rc(sk_wait(&h->base, BOUND), SK_OK);
        assert_int_equal(atomic_load(&h->seen->prerun), 0);
        assert_int_equal(atomic_load(&h->seen->run), 0);
        assert_int_equal(atomic_load(&h->seen->onfinish), 1);
        assert_rc(sk_start_release(&h->base), SK_ESTATE); /* finished */
    }
}

/* sk_kill and sk_release end a held process and its supervisor. */
static void test_held_killed_and_released(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    for (int i = 0; i < 20; i++) {
        struct held *h = new_held(i % 2 == 0, 1);
        assert_rc(sk_start_held(&h->base, 0), SK_OK);
        if (i % 4 < 2) {
            assert_rc(sk_kill(&h->base), SK_OK);
            assert_false(sk_alive(&h->base));
            assert_int_equal(atomic_load(&h->seen->run), 0);
        }
        sk_release(&h->base); /* kills what still runs */
    }
    assert_no_children();
    assert_int_equal(skt_fd_count(), fds);
}

/* A message told while held waits in the ring for the run hook. */
static void test_held_message_kept(void **state)
{
    (void)state;
    struct held *h = new_held(true, 1);
    h->listen = true;
    assert_rc(sk_start_held(&h->base, 0), SK_OK);
    int64_t answer = 42;
    assert_rc(sk_tell(&h->base, "I", &answer), SK_OK);
    assert_rc(sk_wait(&h->base, 0.1), SK_ETIMEDOUT); /* the message did not release it */
    assert_int_equal(atomic_load(&h->seen->run), 0);
    assert_rc(sk_start_release(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, BOUND), SK_OK);
    assert_no_error(&h->base);
    assert_int_equal(atomic_load(&h->seen->message), 42);
}

/* Hostile: a worker of a held start that scribbles the released flag only
 * starts itself early; one that dies while held is a crash like any other,
 * and the release after it is refused, not a hang. */
static int scribbler_run(sk_process *self)
{
    atomic_store(&self->rt->sh->released, 0x5a5a5a5a);
    atomic_store(&self->rt->sh->stop, 0);
    return 0;
}

static const sk_class scribbler_class = {.name = "scribbler", .run = scribbler_run};

static int dies_prerun(sk_process *self)
{
    (void)self;
    raise(SIGKILL);
    return 0;
}

static const sk_class dies_class = {.name = "dies", .prerun = dies_prerun, .run = held_run};

static void test_held_hostile_worker(void **state)
{
    (void)state;
    struct held *h = skt_new(struct held);
    assert_rc(sk_init(&h->base, &scribbler_class), SK_OK);
    h->base.config.runs = 2;
    h->base.config.supervise = true;
    assert_rc(sk_start_held(&h->base, 0), SK_OK);
    assert_rc(sk_start_release(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, BOUND), SK_OK);
    assert_no_error(&h->base);

    /* a held worker killed from outside: the parent sees a crash */
    struct held *d = skt_new(struct held);
    d->seen = skt_shared(sizeof *d->seen);
    assert_rc(sk_init(&d->base, &held_class), SK_OK);
    d->base.config.supervise = true;
    assert_rc(sk_start_held(&d->base, 0), SK_OK);
    pid_t worker = 0;
    skt_wait_until((worker = atomic_load(&d->base.rt->sh->worker_pid)) > 1, BOUND);
    assert_true(worker > 1);
    kill(worker, SIGKILL);
    assert_rc(sk_wait(&d->base, BOUND), SK_OK);
    assert_non_null(sk_error_of(&d->base));
    assert_int_equal(sk_error_of(&d->base)->kind, SK_CRASH_ERROR);
    assert_rc(sk_start_release(&d->base), SK_ESTATE);
    assert_int_equal(atomic_load(&d->seen->run), 0);

    /* one that dies in its first hook after the release */
    struct held *e = skt_new(struct held);
    e->seen = skt_shared(sizeof *e->seen);
    assert_rc(sk_init(&e->base, &dies_class), SK_OK);
    assert_rc(sk_start_held(&e->base, 0), SK_OK);
    assert_rc(sk_start_release(&e->base), SK_OK);
    assert_rc(sk_wait(&e->base, BOUND), SK_OK);
    assert_non_null(sk_error_of(&e->base));
    assert_int_equal(sk_error_of(&e->base)->kind, SK_CRASH_ERROR);
}

/* What is refused: a release of a process started plainly or never; a
 * held start of a spawned program; a handle that is not initialized. */
static void test_held_refusals(void **state)
{
    (void)state;
    struct held *h = new_held(false, 1);
    assert_rc(sk_start_release(&h->base), SK_ESTATE); /* not started */
    assert_rc(sk_start(&h->base), SK_OK);
    assert_rc(sk_start_release(&h->base), SK_ESTATE); /* not held */
    assert_non_null(strstr(sk_last_error_message(), "not started held"));
    assert_rc(sk_wait(&h->base, BOUND), SK_OK);

    sk_process prog;
    const char *argv[] = {"/bin/true", NULL};
    sk_spawn_config cfg = {.argv = argv};
    assert_rc(sk_spawn_init(&prog, &cfg), SK_OK);
    assert_rc(sk_start_held(&prog, 0), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "spawned program"));
    sk_release(&prog);

    sk_process blank;
    memset(&blank, 0, sizeof blank);
    assert_rc(sk_start_held(&blank, 0), SK_EINVAL);
    assert_rc(sk_start_release(&blank), SK_EINVAL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_held_unsupervised), SKT_TEST(test_held_supervised),
        SKT_TEST(test_held_release_at),   SKT_TEST(test_held_join_in_from_release),
        SKT_TEST(test_held_stopped),      SKT_TEST(test_held_killed_and_released),
        SKT_TEST(test_held_message_kept), SKT_TEST(test_held_hostile_worker),
        SKT_TEST(test_held_refusals),
    };
    return skt_run(argc, argv, tests);
}
