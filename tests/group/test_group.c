/* SPDX-License-Identifier: MIT */
/*
 * Groups, with OTP's semantics as its supervisor suite exercises them:
 * each strategy with children crashing in different orders, intensity
 * exceeded exactly at R + 1 restarts within the period, escalation through
 * two levels, permanent / transient / temporary children, start order
 * waiting on readiness, reverse stop with the shutdown bound enforced on a
 * child that ignores the stop, children added and removed while the group
 * runs, spawned programs as children, and nothing left behind.
 *
 * Children are "crashed" as OTP's tests do it, from outside: SIGKILL to the
 * child's worker, whose pid the group's state gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_CHILDREN 8
#define MAX_ORDER 256

/* What the children did, seen from the test: shared with every process. */
struct child_log {
    _Atomic int starts[MAX_CHILDREN];
    _Atomic int order_n;
    int order[MAX_ORDER]; /* +id when a child's prerun began, -id when it declared ready */
};

typedef struct {
    sk_process base;
    struct child_log *log;
    int id;             /* 1-based */
    double ready_delay; /* seconds in prerun before sk_ready */
    bool ignore_stop;   /* the run hook never looks at its inbox */
    bool finish;        /* the run hook returns at once: the process ends normally */
} svc;

static void log_order(struct child_log *log, int v)
{
    int i = atomic_fetch_add(&log->order_n, 1);
    if (i < MAX_ORDER)
        log->order[i] = v;
}

static int svc_prerun(sk_process *self)
{
    svc *s = SK_CONTAINER_OF(self, svc, base);
    atomic_fetch_add(&s->log->starts[s->id], 1);
    log_order(s->log, s->id);
    if (s->ready_delay > 0)
        skt_sleep(s->ready_delay);
    log_order(s->log, -s->id);
    sk_ready(self);
    return 0;
}

static int svc_run(sk_process *self)
{
    svc *s = SK_CONTAINER_OF(self, svc, base);
    if (s->finish) {
        sk_stop(self);
        return 0;
    }
    if (s->ignore_stop)
        for (;;)
            pause();
    int v;
    if (sk_listen(self, -1, "i", &v) == SK_ECLOSED)
        sk_stop(self);
    return 0;
}

static const sk_class svc_class = {.name = "svc", .prerun = svc_prerun, .run = svc_run};

static struct child_log *new_log(void)
{
    return skt_shared(sizeof(struct child_log));
}

static svc *new_svc(struct child_log *log, int id)
{
    svc *s = skt_new(svc);
    assert_int_equal(sk_init(&s->base, &svc_class), SK_OK);
    s->base.config.ready = SK_READY_ON_NOTIFY;
    s->log = log;
    s->id = id;
    return s;
}

/* ------------------------------------------------------------ events */

struct event_log {
    pthread_mutex_t lock;
    int n;
    char lines[512][80];
};

static void record_event(const sk_group_event *ev, void *ctx)
{
    struct event_log *log = ctx;
    pthread_mutex_lock(&log->lock);
    if (log->n < 512)
        snprintf(log->lines[log->n++], sizeof log->lines[0], "%s:%s:%s", ev->group,
                 sk_group_event_name(ev->kind), ev->child != NULL ? ev->child : "-");
    pthread_mutex_unlock(&log->lock);
}

/* The index of the first event line equal to `line` at or after from, or -1. */
static int event_index(struct event_log *log, const char *line, int from)
{
    pthread_mutex_lock(&log->lock);
    int found = -1;
    for (int i = from; i < log->n && found < 0; i++)
        if (strcmp(log->lines[i], line) == 0)
            found = i;
    pthread_mutex_unlock(&log->lock);
    return found;
}

static int event_count(struct event_log *log)
{
    pthread_mutex_lock(&log->lock);
    int n = log->n;
    pthread_mutex_unlock(&log->lock);
    return n;
}

static struct event_log *new_event_log(void)
{
    struct event_log *log = xcalloc(1, sizeof *log);
    pthread_mutex_init(&log->lock, NULL);
    return log;
}

/* ------------------------------------------------------------ groups */

static void release_group(void *g)
{
    sk_group_release(g);
}

static sk_group *new_group(const char *name, sk_group_strategy strategy, int intensity,
                           double period, struct event_log *events)
{
    sk_group_config cfg = {.name = name,
                           .strategy = strategy,
                           .intensity = intensity,
                           .period = period,
                           .on_event = events != NULL ? record_event : NULL,
                           .event_ctx = events};
    sk_group *g = NULL;
    assert_int_equal(sk_group_create(&g, &cfg), SK_OK);
    skt_defer_first(release_group, g); /* before the processes it holds are freed */
    return g;
}

static void add_process(sk_group *g, const char *name, sk_process *p, sk_restart_type restart)
{
    sk_group_child c = {.name = name, .process = p, .restart = restart, .ready_timeout = 10};
    assert_int_equal(sk_group_add(g, &c), SK_OK);
}

/* The pid and state of child `name` now; -1 / STOPPED when it is not in
 * the group. */
static pid_t child_pid(sk_group *g, const char *name, sk_group_child_state *state, int *restarts)
{
    sk_group_state st;
    assert_int_equal(sk_group_state_read(g, &st), SK_OK);
    pid_t pid = -1;
    if (state != NULL)
        *state = SK_CHILD_STOPPED;
    for (size_t i = 0; i < st.nchildren; i++)
        if (strcmp(st.children[i].name, name) == 0) {
            pid = st.children[i].pid;
            if (state != NULL)
                *state = st.children[i].state;
            if (restarts != NULL)
                *restarts = st.children[i].restarts;
        }
    sk_group_state_free(&st);
    return pid;
}

static bool has_child(sk_group *g, const char *name)
{
    sk_group_state st;
    assert_int_equal(sk_group_state_read(g, &st), SK_OK);
    bool found = false;
    for (size_t i = 0; i < st.nchildren; i++)
        found |= strcmp(st.children[i].name, name) == 0;
    sk_group_state_free(&st);
    return found;
}

/* True once child `name` runs again under a pid other than old. */
static bool restarted(sk_group *g, const char *name, pid_t old)
{
    sk_group_child_state state;
    pid_t pid = child_pid(g, name, &state, NULL);
    return pid > 0 && pid != old && state == SK_CHILD_RUNNING;
}

static bool pid_alive(pid_t pid)
{
    return !skt_pid_ended(pid);
}

/* SIGKILL to child `name`'s worker. Never kill(-1): a pid of -1 or 0 fails
 * the test instead. */
static void crash_child(sk_group *g, const char *name)
{
    pid_t pid = sk_group_pid(g, name);
    assert_int_equal(pid, child_pid(g, name, NULL, NULL));
    assert_true(pid > 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
}

/* Crashes child `name` (SIGKILL to its worker) and waits for the group to
 * run it again; returns the new pid. */
static pid_t crash_and_wait(sk_group *g, const char *name)
{
    pid_t old = child_pid(g, name, NULL, NULL);
    assert_true(old > 1);
    assert_int_equal(kill(old, SIGKILL), 0);
    skt_wait_until(restarted(g, name, old), 10 * skt_slowdown());
    return child_pid(g, name, NULL, NULL);
}

struct trio {
    sk_group *g;
    struct child_log *log;
    struct event_log *events;
    pid_t pid[4]; /* by id, 1..3 */
};

static const char *const trio_names[] = {NULL, "a", "b", "c"};

static struct trio start_trio(sk_group_strategy strategy)
{
    struct trio t = {.log = new_log(), .events = new_event_log()};
    t.g = new_group("trio", strategy, 10, 10.0, t.events);
    for (int id = 1; id <= 3; id++)
        add_process(t.g, trio_names[id], &new_svc(t.log, id)->base, SK_PERMANENT);
    assert_int_equal(sk_group_start(t.g), SK_OK);
    for (int id = 1; id <= 3; id++) {
        t.pid[id] = child_pid(t.g, trio_names[id], NULL, NULL);
        assert_true(t.pid[id] > 0);
    }
    return t;
}

/* ------------------------------------------------------------ strategies */

static void test_one_for_one(void **state)
{
    (void)state;
    struct trio t = start_trio(SK_ONE_FOR_ONE);
    pid_t b = crash_and_wait(t.g, "b");
    assert_int_not_equal(b, t.pid[2]);
    assert_int_equal(child_pid(t.g, "a", NULL, NULL), t.pid[1]);
    assert_int_equal(child_pid(t.g, "c", NULL, NULL), t.pid[3]);
    /* Another order: c, then a. */
    pid_t c = crash_and_wait(t.g, "c");
    pid_t a = crash_and_wait(t.g, "a");
    assert_int_equal(child_pid(t.g, "b", NULL, NULL), b);
    assert_int_equal(child_pid(t.g, "c", NULL, NULL), c);
    assert_int_equal(child_pid(t.g, "a", NULL, NULL), a);
    int restarts = -1;
    child_pid(t.g, "b", NULL, &restarts);
    assert_int_equal(restarts, 1);
    assert_int_equal(atomic_load(&t.log->starts[1]), 2);
    assert_int_equal(atomic_load(&t.log->starts[2]), 2);
    assert_int_equal(atomic_load(&t.log->starts[3]), 2);
    assert_int_equal(sk_group_stop(t.g), SK_OK);
    assert_int_equal(sk_group_wait(t.g, 0), SK_OK);
    assert_false(pid_alive(a) || pid_alive(b) || pid_alive(c));
}

static void test_one_for_all(void **state)
{
    (void)state;
    struct trio t = start_trio(SK_ONE_FOR_ALL);
    int from = event_count(t.events);
    pid_t b = crash_and_wait(t.g, "b");
    skt_wait_until(restarted(t.g, "c", t.pid[3]), 10 * skt_slowdown());
    assert_int_not_equal(b, t.pid[2]);
    assert_int_not_equal(child_pid(t.g, "a", NULL, NULL), t.pid[1]);
    assert_false(pid_alive(t.pid[1]) || pid_alive(t.pid[3]));
    /* The others stopped later ones first, then all started in order. */
    int stop_c = event_index(t.events, "trio:stopped:c", from);
    int stop_a = event_index(t.events, "trio:stopped:a", from);
    int start_a = event_index(t.events, "trio:started:a", from);
    int ready_a = event_index(t.events, "trio:ready:a", from);
    int start_b = event_index(t.events, "trio:started:b", from);
    int start_c = event_index(t.events, "trio:started:c", from);
    assert_true(stop_c >= 0 && stop_a > stop_c && start_a > stop_a);
    assert_true(ready_a > start_a && start_b > ready_a && start_c > start_b);
    assert_int_equal(event_index(t.events, "trio:stopped:b", from), -1); /* it was dead */
    for (int id = 1; id <= 3; id++)
        assert_int_equal(atomic_load(&t.log->starts[id]), 2);
    /* Crashing the first restarts all again. */
    pid_t c = child_pid(t.g, "c", NULL, NULL);
    crash_and_wait(t.g, "a");
    skt_wait_until(restarted(t.g, "c", c), 10 * skt_slowdown());
    for (int id = 1; id <= 3; id++)
        assert_int_equal(atomic_load(&t.log->starts[id]), 3);
}

static void test_rest_for_one(void **state)
{
    (void)state;
    struct trio t = start_trio(SK_REST_FOR_ONE);
    crash_and_wait(t.g, "b");
    skt_wait_until(restarted(t.g, "c", t.pid[3]), 10 * skt_slowdown());
    assert_int_equal(child_pid(t.g, "a", NULL, NULL), t.pid[1]);
    assert_int_equal(atomic_load(&t.log->starts[1]), 1);
    assert_int_equal(atomic_load(&t.log->starts[2]), 2);
    assert_int_equal(atomic_load(&t.log->starts[3]), 2);
    /* The last one alone restarts only itself. */
    pid_t b = child_pid(t.g, "b", NULL, NULL);
    crash_and_wait(t.g, "c");
    assert_int_equal(child_pid(t.g, "b", NULL, NULL), b);
    assert_int_equal(atomic_load(&t.log->starts[2]), 2);
    assert_int_equal(atomic_load(&t.log->starts[3]), 3);
    /* The first restarts everything. */
    crash_and_wait(t.g, "a");
    skt_wait_until(restarted(t.g, "b", b), 10 * skt_slowdown());
    assert_int_equal(atomic_load(&t.log->starts[1]), 2);
}

/* ------------------------------------------------------------ intensity */

static void test_intensity_exceeded_at_r_plus_one(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    struct event_log *events = new_event_log();
    sk_group *g = new_group("limited", SK_ONE_FOR_ONE, 3, 60.0, events);
    add_process(g, "a", &new_svc(log, 1)->base, SK_PERMANENT);
    add_process(g, "w", &new_svc(log, 2)->base, SK_PERMANENT);
    assert_int_equal(sk_group_start(g), SK_OK);
    pid_t a = child_pid(g, "a", NULL, NULL);
    for (int i = 0; i < 3; i++)
        crash_and_wait(g, "w");
    assert_int_equal(sk_group_wait(g, 0), SK_ETIMEDOUT); /* 3 restarts: still running */
    assert_null(sk_group_error_of(g));
    pid_t w = child_pid(g, "w", NULL, NULL);
    crash_child(g, "w"); /* the 4th within the period: one too many */
    assert_int_equal(sk_group_wait(g, 10 * skt_slowdown()), SK_EPROCESS);
    const sk_group_error *e = sk_group_error_of(g);
    assert_non_null(e);
    assert_string_equal(e->child, "w");
    assert_int_equal(e->nfailures, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(e->failures[i].child, "w");
        assert_true(sk_error_is(&e->failures[i].error, SK_CRASH_ERROR));
        assert_int_equal(e->failures[i].error.signal, SIGKILL);
        if (i > 0)
            assert_true(e->failures[i].at >= e->failures[i - 1].at);
    }
    assert_non_null(strstr(e->error.message, "'limited' gave up"));
    assert_non_null(strstr(e->error.message, "'w'"));
    assert_int_equal(atomic_load(&log->starts[2]), 4); /* the 4th restart was not made */
    assert_false(pid_alive(a) || pid_alive(w));
    assert_true(event_index(events, "limited:gave_up:-", 0) >
                event_index(events, "limited:stopped:a", 0));
    sk_group_state st;
    assert_int_equal(sk_group_state_read(g, &st), SK_OK);
    assert_int_equal(st.state, SK_GROUP_FAILED);
    assert_int_equal(st.total_restarts, 3);
    sk_group_state_free(&st);
    struct pollfd pfd = {.fd = sk_group_fd(g), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 1);
}

static void test_intensity_window_slides(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    /* One restart per period; the period long enough for a restart under
     * sanitizers and valgrind too. */
    double period = 0.5 * skt_slowdown();
    sk_group *g = new_group("sliding", SK_ONE_FOR_ONE, 1, period, NULL);
    add_process(g, "w", &new_svc(log, 1)->base, SK_PERMANENT);
    assert_int_equal(sk_group_start(g), SK_OK);
    for (int i = 0; i < 3; i++) {
        crash_and_wait(g, "w");
        skt_sleep(period + 0.1); /* the period itself is what is tested: this restart leaves it */
    }
    assert_int_equal(sk_group_wait(g, 0), SK_ETIMEDOUT);
    /* Two within the period: one too many. */
    double t0 = skt_now();
    crash_and_wait(g, "w");
    crash_child(g, "w");
    double took = skt_now() - t0;
    assert_int_equal(sk_group_wait(g, 10 * skt_slowdown()), SK_EPROCESS);
    assert_true(took < period); /* else the test proved nothing: it was too slow */
}

static void test_intensity_zero_gives_up_at_once(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    sk_group *g = new_group("strict", SK_ONE_FOR_ONE, -1, 5.0, NULL);
    add_process(g, "w", &new_svc(log, 1)->base, SK_PERMANENT);
    assert_int_equal(sk_group_start(g), SK_OK);
    crash_child(g, "w");
    assert_int_equal(sk_group_wait(g, 10 * skt_slowdown()), SK_EPROCESS);
    assert_int_equal(atomic_load(&log->starts[1]), 1);
    assert_int_equal(sk_group_error_of(g)->nfailures, 1);
}

/* ------------------------------------------------------------ escalation */

static void test_escalation_two_levels(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    struct event_log *events = new_event_log();
    sk_group *top = new_group("top", SK_ONE_FOR_ONE, 1, 60.0, events);
    sk_group_config mc = {.name = "mid",
                          .intensity = 1,
                          .period = 60.0,
                          .on_event = record_event,
                          .event_ctx = events};
    sk_group *mid = NULL;
    assert_int_equal(sk_group_create(&mid, &mc), SK_OK); /* released by top */
    add_process(mid, "leaf", &new_svc(log, 1)->base, SK_PERMANENT);
    add_process(top, "other", &new_svc(log, 2)->base, SK_PERMANENT);
    sk_group_child mcs = {.name = "mid", .group = mid};
    assert_int_equal(sk_group_add(top, &mcs), SK_OK);
    assert_int_equal(sk_group_start(top), SK_OK);
    pid_t other = child_pid(top, "other", NULL, NULL);

    /* Two leaf crashes: mid gives up, top restarts mid (its first restart). */
    crash_and_wait(mid, "leaf");
    pid_t leaf = child_pid(mid, "leaf", NULL, NULL);
    crash_child(mid, "leaf");
    skt_wait_until(event_index(events, "top:restarting:mid", 0) >= 0, 10 * skt_slowdown());
    skt_wait_until(restarted(mid, "leaf", leaf), 10 * skt_slowdown());
    assert_int_equal(atomic_load(&log->starts[1]), 3);
    assert_true(event_index(events, "mid:gave_up:-", 0) <
                event_index(events, "top:restarting:mid", 0));
    assert_int_equal(child_pid(top, "other", NULL, NULL), other);

    /* Again: top's second restart within its period is one too many. */
    crash_and_wait(mid, "leaf");
    crash_child(mid, "leaf");
    assert_int_equal(sk_group_wait(top, 10 * skt_slowdown()), SK_EPROCESS);
    const sk_group_error *e = sk_group_error_of(top);
    assert_string_equal(e->child, "mid");
    assert_int_equal(e->nfailures, 2);
    assert_non_null(strstr(e->failures[1].error.message, "'mid' gave up"));
    assert_non_null(strstr(e->failures[1].error.cause, "leaf"));
    assert_false(pid_alive(other));
}

/* ------------------------------------------------------------ restart types */

static void test_restart_types(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    sk_group *g = new_group("types", SK_ONE_FOR_ONE, 10, 60.0, NULL);
    svc *perm = new_svc(log, 1), *trans_done = new_svc(log, 2);
    svc *trans_crash = new_svc(log, 3), *temp = new_svc(log, 4);
    add_process(g, "perm", &perm->base, SK_PERMANENT);
    add_process(g, "trans_done", &trans_done->base, SK_TRANSIENT);
    add_process(g, "trans_crash", &trans_crash->base, SK_TRANSIENT);
    add_process(g, "temp", &temp->base, SK_TEMPORARY);
    assert_int_equal(sk_group_start(g), SK_OK);

    /* A transient child that crashes is restarted. */
    crash_and_wait(g, "trans_crash");
    assert_int_equal(atomic_load(&log->starts[3]), 2);
    /* A temporary one is not: it leaves the group. */
    crash_child(g, "temp");
    skt_wait_until(!has_child(g, "temp"), 10 * skt_slowdown());
    assert_int_equal(atomic_load(&log->starts[4]), 1);
    /* A transient child that ends normally leaves too. Every incarnation
     * starts from the parent's struct: from now on it finishes at once. */
    trans_done->finish = true;
    crash_child(g, "trans_done");                                     /* a failure: restarted */
    skt_wait_until(!has_child(g, "trans_done"), 10 * skt_slowdown()); /* then a normal end */
    assert_int_equal(atomic_load(&log->starts[2]), 2);
    assert_int_equal(sk_group_wait(g, 0), SK_ETIMEDOUT);
    /* A permanent child is restarted after a normal end as well: one that
     * always finishes at once uses up the intensity (10) and the group
     * gives up on the 11th restart. */
    perm->finish = true;
    crash_child(g, "perm");
    assert_int_equal(sk_group_wait(g, 20 * skt_slowdown()), SK_EPROCESS);
    /* the restart of trans_done and trans_crash counted too: 10 - 2 = 8 of perm's */
    assert_int_equal(atomic_load(&log->starts[1]), 1 + 8);
    const sk_group_error *e = sk_group_error_of(g);
    assert_string_equal(e->child, "perm");
    assert_non_null(strstr(e->failures[e->nfailures - 1].error.message, "ended normally"));
}

/* ------------------------------------------------------------ order */

static void test_start_order_waits_for_readiness(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    sk_group *g = new_group("ordered", SK_ONE_FOR_ONE, 1, 5.0, NULL);
    for (int id = 1; id <= 3; id++) {
        svc *s = new_svc(log, id);
        s->ready_delay = 0.1;
        char name[8];
        snprintf(name, sizeof name, "s%d", id);
        add_process(g, name, &s->base, SK_PERMANENT);
    }
    assert_int_equal(sk_group_start(g), SK_OK);
    /* Each began only after the one before declared itself ready. */
    assert_int_equal(atomic_load(&log->order_n), 6);
    const int want[6] = {1, -1, 2, -2, 3, -3};
    for (int i = 0; i < 6; i++)
        assert_int_equal(log->order[i], want[i]);
}

static void test_not_ready_in_time_fails_the_start(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    struct event_log *events = new_event_log();
    sk_group *g = new_group("slow", SK_ONE_FOR_ONE, 1, 5.0, events);
    svc *a = new_svc(log, 1), *b = new_svc(log, 2);
    b->ready_delay = 30;
    add_process(g, "a", &a->base, SK_PERMANENT);
    sk_group_child bs = {.name = "b", .process = &b->base, .ready_timeout = 0.2};
    assert_int_equal(sk_group_add(g, &bs), SK_OK);
    double t0 = skt_now();
    assert_int_equal(sk_group_start(g), SK_EPROCESS);
    assert_true(skt_now() - t0 < 5 * skt_slowdown());
    const sk_group_error *e = sk_group_error_of(g);
    assert_non_null(e);
    assert_string_equal(e->child, "b");
    assert_non_null(strstr(e->error.message, "not ready within"));
    assert_int_equal(e->failures[e->nfailures - 1].error.kind, SK_TIMEOUT_ERROR);
    assert_true(event_index(events, "slow:stopped:a", 0) >
                event_index(events, "slow:start_failed:b", 0));
    assert_int_equal(sk_group_wait(g, 0), SK_EPROCESS);
    assert_false(sk_alive(&a->base));
    assert_false(sk_alive(&b->base));
}

/* A child that ignores the stop is killed at its shutdown bound, after the
 * children started after it were stopped. */
static void test_stop_reverse_with_shutdown_bound(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    struct event_log *events = new_event_log();
    sk_group *g = new_group("stopping", SK_ONE_FOR_ONE, 1, 5.0, events);
    svc *a = new_svc(log, 1), *stubborn = new_svc(log, 2), *c = new_svc(log, 3);
    stubborn->ignore_stop = true;
    add_process(g, "a", &a->base, SK_PERMANENT);
    sk_group_child ss = {.name = "stubborn", .process = &stubborn->base, .shutdown = 0.3};
    assert_int_equal(sk_group_add(g, &ss), SK_OK);
    add_process(g, "c", &c->base, SK_PERMANENT);
    assert_int_equal(sk_group_start(g), SK_OK);
    pid_t sp = child_pid(g, "stubborn", NULL, NULL);
    double t0 = skt_now();
    assert_int_equal(sk_group_stop(g), SK_OK);
    double took = skt_now() - t0;
    assert_true(took >= 0.3);
    assert_true(took < 0.3 + 3 * skt_slowdown());
    assert_false(pid_alive(sp));
    int sc = event_index(events, "stopping:stopped:c", 0);
    int ss_ = event_index(events, "stopping:stopped:stubborn", 0);
    int sa = event_index(events, "stopping:stopped:a", 0);
    assert_true(sc >= 0 && ss_ > sc && sa > ss_);
    assert_true(event_index(events, "stopping:group_stopped:-", 0) > sa);
    assert_null(sk_error_of(&a->base)); /* a stop is not a failure */
}

static void test_brutal_kill(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    sk_group *g = new_group("brutal", SK_ONE_FOR_ONE, 1, 5.0, NULL);
    svc *s = new_svc(log, 1);
    s->ignore_stop = true; /* the default bound would take 5 s */
    sk_group_child cs = {.name = "s", .process = &s->base, .shutdown = SK_SHUTDOWN_BRUTAL_KILL};
    assert_int_equal(sk_group_add(g, &cs), SK_OK);
    assert_int_equal(sk_group_start(g), SK_OK);
    pid_t pid = child_pid(g, "s", NULL, NULL);
    double t0 = skt_now();
    assert_int_equal(sk_group_stop(g), SK_OK);
    assert_true(skt_now() - t0 < 2 * skt_slowdown());
    assert_false(pid_alive(pid));
}

/* ------------------------------------------------------------ dynamic */

static void test_add_and_remove_while_running(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    sk_group *g = new_group("dyn", SK_REST_FOR_ONE, 5, 60.0, NULL);
    add_process(g, "a", &new_svc(log, 1)->base, SK_PERMANENT);
    assert_int_equal(sk_group_start(g), SK_OK);
    svc *b = new_svc(log, 2);
    add_process(g, "b", &b->base, SK_PERMANENT); /* returns once b is ready */
    sk_group_child_state st;
    assert_true(child_pid(g, "b", &st, NULL) > 0);
    assert_int_equal(st, SK_CHILD_RUNNING);
    assert_int_equal(atomic_load(&log->starts[2]), 1);
    /* rest_for_one knows the new order: crashing a restarts b. */
    pid_t bp = child_pid(g, "b", NULL, NULL);
    crash_and_wait(g, "a");
    skt_wait_until(restarted(g, "b", bp), 10 * skt_slowdown());
    /* Removing b stops it; the handle is the caller's again. */
    bp = child_pid(g, "b", NULL, NULL);
    assert_int_equal(sk_group_remove(g, "b"), SK_OK);
    assert_false(has_child(g, "b"));
    assert_false(pid_alive(bp));
    assert_int_equal(sk_wait(&b->base, 0), SK_OK);
    sk_release(&b->base);
    assert_int_equal(sk_group_remove(g, "b"), SK_EINVAL);
    assert_int_equal(sk_group_pid(g, "b"), -1);
    /* A child that does not become ready in time is refused and not kept. */
    svc *never = new_svc(log, 3);
    never->ready_delay = 30;
    sk_group_child ns = {.name = "never", .process = &never->base, .ready_timeout = 0.2};
    assert_int_equal(sk_group_add(g, &ns), SK_EPROCESS);
    assert_non_null(strstr(sk_last_error_message(), "not ready"));
    assert_false(has_child(g, "never"));
    assert_int_equal(sk_group_wait(g, 0), SK_ETIMEDOUT);
}

/* ------------------------------------------------------------ programs */

static void test_spawned_programs(void **state)
{
    (void)state;
    sk_group *g = new_group("progs", SK_ONE_FOR_ONE, 5, 60.0, NULL);
    sk_process *sleeper = xcalloc(1, sizeof *sleeper);
    const char *argv[] = {"sleep", "1000", NULL};
    sk_spawn_config sc = {.argv = argv};
    assert_int_equal(sk_spawn_init(sleeper, &sc), SK_OK);
    add_process(g, "sleeper", sleeper, SK_PERMANENT);
    /* A program that daemonizes a grandchild in a session of its own. */
    sk_process *daemonizer = xcalloc(1, sizeof *daemonizer);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char script[128];
    snprintf(script, sizeof script,
             "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $! >&%d; "
             "exec sleep 1000",
             fds[1]);
    const char *dargv[] = {"sh", "-c", script, NULL};
    sk_spawn_config dc = {.argv = dargv};
    assert_int_equal(sk_spawn_init(daemonizer, &dc), SK_OK);
    add_process(g, "daemonizer", daemonizer, SK_PERMANENT);
    assert_int_equal(sk_group_start(g), SK_OK);
    close(fds[1]);
    char buf[32] = {0};
    double deadline = skt_now() + 10;
    size_t got = 0;
    while (got == 0 || buf[got - 1] != '\n') {
        assert_true(skt_now() < deadline);
        ssize_t r = read(fds[0], buf + got, sizeof buf - 1 - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    close(fds[0]);
    pid_t daemon = (pid_t)atoi(buf);
    assert_true(daemon > 0 && pid_alive(daemon));
    pid_t s = crash_and_wait(g, "sleeper");
    assert_true(pid_alive(s));
    assert_int_equal(sk_group_stop(g), SK_OK);
    assert_false(pid_alive(s));
    skt_wait_until(!pid_alive(daemon), 5);
}

/* ------------------------------------------------------------ the parent dies */

static void test_parent_sigkilled_leaves_nothing(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t parent = fork();
    if (parent == 0) {
        close(fds[0]);
        struct child_log *log = new_log();
        sk_group *g = NULL;
        sk_group_config cfg = {.name = "orphaned"};
        if (sk_group_create(&g, &cfg) != SK_OK)
            _exit(1);
        for (int id = 1; id <= 3; id++) {
            svc *s = calloc(1, sizeof *s);
            sk_init(&s->base, &svc_class);
            s->base.config.ready = SK_READY_ON_NOTIFY;
            s->log = log;
            s->id = id;
            char name[8];
            snprintf(name, sizeof name, "s%d", id);
            sk_group_child c = {.name = name, .process = &s->base};
            sk_group_add(g, &c);
        }
        if (sk_group_start(g) != SK_OK)
            _exit(2);
        sk_group_state st;
        sk_group_state_read(g, &st);
        for (size_t i = 0; i < st.nchildren; i++) {
            pid_t pid = st.children[i].pid;
            if (write(fds[1], &pid, sizeof pid) != sizeof pid)
                _exit(3);
        }
        close(fds[1]);
        for (;;)
            pause();
    }
    close(fds[1]);
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        double deadline = skt_now() + 20 * skt_slowdown();
        ssize_t r;
        while ((r = read(fds[0], &pids[i], sizeof pids[i])) < 0 && errno == EINTR &&
               skt_now() < deadline)
            ;
        assert_int_equal(r, sizeof pids[i]);
        assert_true(pid_alive(pids[i]));
    }
    close(fds[0]);
    assert_true(parent > 1);
    kill(parent, SIGKILL);
    int status;
    assert_int_equal(waitpid(parent, &status, 0), parent);
    for (int i = 0; i < 3; i++)
        skt_wait_until(!pid_alive(pids[i]), 10 * skt_slowdown());
}

/* ------------------------------------------------------------ state and misuse */

struct reader {
    sk_group *g;
    pthread_t thread;
    _Atomic int stop;
    _Atomic long reads;
};

static void *read_state_forever(void *arg)
{
    struct reader *r = arg;
    while (!atomic_load(&r->stop)) {
        sk_group_state st;
        if (sk_group_state_read(r->g, &st) == SK_OK) {
            for (size_t i = 0; i < st.nchildren; i++)
                if (st.children[i].name[0] == '\0')
                    abort();
            sk_group_state_free(&st);
            r->reads++;
        }
    }
    return NULL;
}

static void stop_reader(void *arg)
{
    struct reader *r = arg;
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
}

static bool all_running(sk_group *g)
{
    for (int id = 1; id <= 3; id++) {
        sk_group_child_state st;
        if (child_pid(g, trio_names[id], &st, NULL) <= 0 || st != SK_CHILD_RUNNING)
            return false;
    }
    return true;
}

static void test_state_read_while_restarting(void **state)
{
    (void)state;
    struct trio t = start_trio(SK_ONE_FOR_ALL);
    struct reader *r = xcalloc(1, sizeof *r);
    r->g = t.g;
    assert_int_equal(pthread_create(&r->thread, NULL, read_state_forever, r), 0);
    skt_defer_first(stop_reader, r); /* before the group is released */
    for (int i = 0; i < 3; i++) {
        skt_wait_until(all_running(t.g), 10 * skt_slowdown());
        crash_and_wait(t.g, trio_names[1 + i % 3]);
    }
    skt_wait_until(all_running(t.g), 10 * skt_slowdown());
    long reads = r->reads;
    assert_true(reads > 0);
    sk_group_state st;
    assert_int_equal(sk_group_state_read(t.g, &st), SK_OK);
    assert_int_equal(st.state, SK_GROUP_RUNNING);
    assert_int_equal(st.total_restarts, 3);
    assert_int_equal(st.nchildren, 3);
    for (int i = 0; i < 3; i++) { /* each was crashed once */
        assert_true(st.children[i].has_error);
        assert_true(sk_error_is(&st.children[i].last_error, SK_CRASH_ERROR));
    }
    sk_group_state_free(&st);
}

static void test_refusals(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    sk_group *g = NULL;
    sk_group_config bad = {.strategy = (sk_group_strategy)7};
    assert_int_equal(sk_group_create(&g, &bad), SK_EINVAL);
    sk_group_config badp = {.period = -1};
    assert_int_equal(sk_group_create(&g, &badp), SK_EINVAL);
    g = new_group("misuse", SK_ONE_FOR_ONE, 1, 5.0, NULL);
    svc *a = new_svc(log, 1);
    sk_group_child none = {.name = "x"};
    assert_int_equal(sk_group_add(g, &none), SK_EINVAL);
    sk_group_child noname = {.process = &a->base};
    assert_int_equal(sk_group_add(g, &noname), SK_EINVAL);
    sk_group_child badsd = {.name = "a", .process = &a->base, .shutdown = -5};
    assert_int_equal(sk_group_add(g, &badsd), SK_EINVAL);
    sk_group_child both = {.name = "a", .process = &a->base, .group = g};
    assert_int_equal(sk_group_add(g, &both), SK_EINVAL);
    sk_group_child self = {.name = "self", .group = g};
    assert_int_equal(sk_group_add(g, &self), SK_EINVAL);
    add_process(g, "a", &a->base, SK_PERMANENT);
    sk_group_child dup = {.name = "a", .process = &new_svc(log, 2)->base};
    assert_int_equal(sk_group_add(g, &dup), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "already has a child 'a'"));
    sk_group_child same = {.name = "a2", .process = &a->base};
    assert_int_equal(sk_group_add(g, &same), SK_EINVAL);
    assert_int_equal(sk_group_wait(g, 0), SK_OK); /* not started */
    assert_int_equal(sk_group_start(g), SK_OK);
    assert_int_equal(sk_group_start(g), SK_ESTATE);
    assert_int_equal(sk_group_stop(g), SK_OK);
    assert_int_equal(sk_group_stop(g), SK_OK);
    sk_group_child late = {.name = "late", .process = &new_svc(log, 3)->base};
    assert_int_equal(sk_group_add(g, &late), SK_ESTATE);
    assert_int_equal(sk_group_add(NULL, &late), SK_EINVAL);
    assert_string_equal(sk_group_event_name(SK_GROUP_GAVE_UP), "gave_up");
    assert_string_equal(sk_group_event_name((sk_group_event_kind)99), "unknown");
}

static void test_cycles_leak_nothing(void **state)
{
    (void)state;
    struct child_log *log = new_log();
    int fds_before = skt_fd_count();
    for (int i = 0; i < 30; i++) {
        sk_group *g = NULL;
        sk_group_config cfg = {.name = "cycle"};
        assert_int_equal(sk_group_create(&g, &cfg), SK_OK);
        svc *a = xcalloc(1, sizeof *a), *b = xcalloc(1, sizeof *b);
        sk_init(&a->base, &svc_class);
        sk_init(&b->base, &svc_class);
        a->log = b->log = log;
        a->id = 1;
        b->id = 2;
        sk_group_child ca = {.name = "a", .process = &a->base};
        sk_group_child cb = {.name = "b", .process = &b->base, .no_supervisor = (i % 2) == 0};
        assert_int_equal(sk_group_add(g, &ca), SK_OK);
        assert_int_equal(sk_group_add(g, &cb), SK_OK);
        assert_int_equal(sk_group_start(g), SK_OK);
        if (i % 3 == 0)
            crash_and_wait(g, "b");
        sk_group_release(g);
        xfree(a);
        xfree(b);
    }
    assert_int_equal(skt_fd_count(), fds_before);
    assert_no_children();
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_one_for_one),
        SKT_TEST(test_one_for_all),
        SKT_TEST(test_rest_for_one),
        SKT_TEST(test_intensity_exceeded_at_r_plus_one),
        SKT_TEST(test_intensity_window_slides),
        SKT_TEST(test_intensity_zero_gives_up_at_once),
        SKT_TEST(test_escalation_two_levels),
        SKT_TEST(test_restart_types),
        SKT_TEST(test_start_order_waits_for_readiness),
        SKT_TEST(test_not_ready_in_time_fails_the_start),
        SKT_TEST(test_stop_reverse_with_shutdown_bound),
        SKT_TEST(test_brutal_kill),
        SKT_TEST(test_add_and_remove_while_running),
        SKT_TEST(test_spawned_programs),
        SKT_TEST(test_parent_sigkilled_leaves_nothing),
        SKT_TEST(test_state_read_while_restarting),
        SKT_TEST(test_refusals),
        SKT_TEST(test_cycles_leak_nothing),
    };
    return skt_run(argc, argv, tests);
}
