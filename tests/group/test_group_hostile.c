/* SPDX-License-Identifier: MIT */
/*
 * Hostile children in a group. A group adds no memory of its own that a
 * child can reach: what a child can write is its process's status page
 * (struct sk_shared), which the core checks field by field (test_hostile,
 * test_ready). These tests check the group on top of it: whatever a child
 * writes there, and however it behaves (scribbles then crashes, forges its
 * worker's pid and readiness, never becomes ready, crashes before it is
 * ready over and over, ignores every stop), the group's thread neither
 * crashes nor hangs, its state stays readable and in range, it gives up
 * within a bound when it must, and nothing the children started is left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "core/runtime.h"

#include <stdatomic.h>

enum misdeed {
    SERVE,               /* none: sk_ready, then block (ignoring SIGTERM) */
    SCRIBBLE_THEN_SERVE, /* random bytes over the whole status page, then sk_ready and block */
    SCRIBBLE_THEN_CRASH, /* random bytes, then SIGSEGV */
    FORGE_PID_AND_READY, /* worker_pid = the test's own pid, ready set without sk_ready */
    NEVER_READY_DEAF,    /* ignores SIGTERM, never ready */
    CRASH_BEFORE_READY,  /* dies in prerun, every time */
};

typedef struct {
    sk_process base;
    enum misdeed misdeed;
    pid_t test_pid;
    uint64_t seed;
    _Atomic int *incarnations; /* shared with the test */
} hostile;

static int hostile_prerun(sk_process *self)
{
    hostile *h = SK_CONTAINER_OF(self, hostile, base);
    int n = atomic_fetch_add(h->incarnations, 1);
    struct sk_shared *sh = self->rt->sh;
    switch (h->misdeed) {
    case SERVE:
        break;
    case SCRIBBLE_THEN_SERVE:
    case SCRIBBLE_THEN_CRASH:
        skt_scribble(sh, sizeof *sh, h->seed + (uint64_t)n);
        break;
    case FORGE_PID_AND_READY:
        atomic_store(&sh->worker_pid, h->test_pid);
        atomic_store(&sh->ready, 0xffffffffu);
        break;
    case NEVER_READY_DEAF:
        signal(SIGTERM, SIG_IGN);
        for (;;)
            pause();
    case CRASH_BEFORE_READY:
        skt_die_by(SIGSEGV);
    }
    if (h->misdeed == SCRIBBLE_THEN_CRASH)
        skt_die_by(SIGSEGV);
    if (h->misdeed == SCRIBBLE_THEN_SERVE || h->misdeed == SERVE)
        sk_ready(self);
    return 0;
}

static int hostile_run(sk_process *self)
{
    (void)self;
    signal(SIGTERM, SIG_IGN);
    for (;;)
        pause();
    return 0;
}

static const sk_class hostile_class = {
    .name = "hostile", .prerun = hostile_prerun, .run = hostile_run};

/* A group the test may release itself (then *ref is NULL), or that the
 * teardown releases when an assertion ended the test first. */
static void release_group(void *ref)
{
    sk_group_release(*(sk_group **)ref);
    *(sk_group **)ref = NULL;
}

static sk_group **new_group(int intensity)
{
    sk_group_config cfg = {.name = "hostile", .intensity = intensity, .period = 60};
    sk_group **ref = xcalloc(1, sizeof *ref);
    assert_int_equal(sk_group_create(ref, &cfg), SK_OK);
    skt_defer_first(release_group, ref);
    return ref;
}

static hostile *new_hostile(enum misdeed m, uint64_t seed)
{
    hostile *h = skt_new(hostile);
    assert_int_equal(sk_init(&h->base, &hostile_class), SK_OK);
    h->base.config.ready = SK_READY_ON_NOTIFY;
    h->misdeed = m;
    h->seed = seed;
    h->test_pid = getpid();
    h->incarnations = skt_shared(sizeof *h->incarnations);
    return h;
}

static void add(sk_group *g, const char *name, hostile *h, double ready_timeout)
{
    sk_group_child c = {
        .name = name, .process = &h->base, .shutdown = 0.2, .ready_timeout = ready_timeout};
    assert_int_equal(sk_group_add(g, &c), SK_OK);
}

/* The state is readable and in range: pids are never ours or 0..1. */
static void check_state(sk_group *g)
{
    sk_group_state st;
    assert_int_equal(sk_group_state_read(g, &st), SK_OK);
    assert_true(st.state >= SK_GROUP_IDLE && st.state <= SK_GROUP_FAILED);
    for (size_t i = 0; i < st.nchildren; i++) {
        const sk_group_child_info *c = &st.children[i];
        assert_true(c->state >= SK_CHILD_STOPPED && c->state <= SK_CHILD_RUNNING);
        assert_true(c->pid == -1 || c->pid > 1);
        assert_int_not_equal(c->pid, getpid());
        assert_true(c->restarts >= 0);
        assert_non_null(memchr(c->name, '\0', sizeof c->name));
    }
    sk_group_state_free(&st);
}

static void test_scribblers_serve_and_stop(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    for (uint64_t seed = 1; seed <= 6; seed++) {
        sk_group **ref = new_group(5);
        sk_group *g = *ref;
        hostile *h = new_hostile(SCRIBBLE_THEN_SERVE, seed);
        add(g, "scribbler", h, 5);
        int rc = sk_group_start(g);
        /* The page it wrote may say anything: started and ready, or a
         * failure the group reports. Never a crash or a hang. */
        assert_true(rc == SK_OK || rc == SK_EPROCESS);
        check_state(g);
        double t0 = skt_now();
        assert_int_equal(sk_group_stop(g), SK_OK);
        assert_true(skt_now() - t0 < 5 * skt_slowdown());
        check_state(g);
        release_group(ref);
    }
    assert_int_equal(skt_fd_count(), fds);
    assert_no_children();
}

static void test_scribblers_that_crash_use_up_the_intensity(void **state)
{
    (void)state;
    sk_group *g = *new_group(3);
    hostile *h = new_hostile(SCRIBBLE_THEN_CRASH, 99);
    add(g, "crasher", h, 5);
    double t0 = skt_now();
    /* Its page may say it is ready (the ready word is random): then it
     * starts and crashes; or the start fails. Either way the group fails,
     * soon. */
    int rc = sk_group_start(g);
    assert_true(rc == SK_OK || rc == SK_EPROCESS);
    assert_int_equal(sk_group_wait(g, 10 * skt_slowdown()), SK_EPROCESS);
    assert_true(skt_now() - t0 < 10 * skt_slowdown());
    const sk_group_error *e = sk_group_error_of(g);
    assert_non_null(e);
    assert_string_equal(e->child, "crasher");
    check_state(g);
}

static void test_forged_pid_and_ready(void **state)
{
    (void)state;
    sk_group *g = *new_group(5);
    hostile *h = new_hostile(FORGE_PID_AND_READY, 0);
    add(g, "forger", h, 0.5);
    /* It set the ready word without sk_ready: the core believes a non-zero
     * word (readiness is a claim about itself), or the group times out
     * waiting. Either way the pid it forged is never shown nor signalled. */
    int rc = sk_group_start(g);
    assert_true(rc == SK_OK || rc == SK_EPROCESS);
    check_state(g);
    assert_int_equal(sk_group_stop(g), SK_OK);
    check_state(g);
    assert_int_equal(kill(getpid(), 0), 0); /* we are still here */
}

static void test_deaf_child_never_ready(void **state)
{
    (void)state;
    sk_group *g = *new_group(5);
    hostile *ok = new_hostile(SCRIBBLE_THEN_SERVE, 7);
    hostile *deaf = new_hostile(NEVER_READY_DEAF, 0);
    add(g, "first", ok, 5);
    add(g, "deaf", deaf, 0.3);
    double t0 = skt_now();
    assert_int_equal(sk_group_start(g), SK_EPROCESS);
    assert_true(skt_now() - t0 < 5 * skt_slowdown());
    assert_string_equal(sk_group_error_of(g)->child, "deaf");
    assert_false(sk_alive(&deaf->base));
    assert_false(sk_alive(&ok->base));
}

/* Dying before ready at every restart: each failed restart counts, so the
 * group gives up after intensity + 1 of them instead of looping. */
static void test_crash_before_ready_on_restart(void **state)
{
    (void)state;
    sk_group *g = *new_group(4);
    hostile *h = new_hostile(SERVE, 3);
    add(g, "flaky", h, 5);
    assert_int_equal(sk_group_start(g), SK_OK);
    /* From now on every incarnation dies before it is ready. */
    h->misdeed = CRASH_BEFORE_READY;
    sk_group_state st;
    assert_int_equal(sk_group_state_read(g, &st), SK_OK);
    pid_t pid = st.children[0].pid;
    sk_group_state_free(&st);
    assert_true(pid > 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(sk_group_wait(g, 20 * skt_slowdown()), SK_EPROCESS);
    /* 1 first start + 4 admitted restarts, every one a failed start. */
    assert_int_equal(atomic_load(h->incarnations), 5);
    const sk_group_error *e = sk_group_error_of(g);
    assert_int_equal(e->nfailures, 5);
    assert_true(sk_error_is(&e->failures[4].error, SK_CRASH_ERROR));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_scribblers_serve_and_stop),
        SKT_TEST(test_scribblers_that_crash_use_up_the_intensity),
        SKT_TEST(test_forged_pid_and_ready),
        SKT_TEST(test_deaf_child_never_ready),
        SKT_TEST(test_crash_before_ready_on_restart),
    };
    return skt_run(argc, argv, tests);
}
