/* SPDX-License-Identifier: MIT */
/*
 * What the session tests share: a fake clock the test moves, a session
 * made with it whose runs are recorded as on_run reports them, queries of
 * its log, and the leak check that ends a test (the session released, the
 * descriptors as they were before it, no child left).
 *
 * Include after support.h and cond_support.h.
 */
#ifndef SKPROC_TEST_SCHED_SUPPORT_H
#define SKPROC_TEST_SCHED_SUPPORT_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 2023-11-14 22:13:20 UTC, a Tuesday. */
#define SKT_T0 (INT64_C(1700000000) * SKT_NS)
#define SKT_SEC(s) ((int64_t)((s)*1e9))

/* What on_run reported, in order. */
#define SKT_MAX_EVENTS 512
struct skt_run_event {
    char task[64];
    int64_t id;
    sk_run_outcome outcome; /* SK_RUN_RUNNING: a start (or an overdue report) */
    bool has_error;
    sk_error error;
    int64_t start, end;
    size_t value_len;
};

struct skt_sched {
    sk_sched *s;
    _Atomic int64_t now; /* the fake clock, ns */
    int fds_before;
    int nevents;
    struct skt_run_event events[SKT_MAX_EVENTS];
};

static inline int64_t skt_fake_clock(void *arg)
{
    return atomic_load(&((struct skt_sched *)arg)->now);
}

static inline int skt_on_run(const sk_run_record *r, void *arg)
{
    struct skt_sched *k = arg;
    if (k->nevents >= SKT_MAX_EVENTS)
        return 0;
    struct skt_run_event *e = &k->events[k->nevents++];
    snprintf(e->task, sizeof e->task, "%s", r->task);
    e->id = r->id;
    e->outcome = r->outcome;
    e->has_error = r->error != NULL;
    if (r->error != NULL)
        e->error = *r->error;
    e->start = r->start;
    e->end = r->end;
    e->value_len = r->value_len;
    return 0;
}

static void skt_sched_release_ref(void *arg)
{
    struct skt_sched *k = arg;
    sk_sched_release(k->s);
    k->s = NULL;
}

/* A session on the fake clock (at start) unless real_clock; cfg may
 * carry options (its clock and on_run are set here). Released by the
 * teardown when the test ends early. */
static inline struct skt_sched *skt_sched_new_at(const sk_sched_config *cfg, bool real_clock,
                                                 int64_t start)
{
    struct skt_sched *k = xcalloc(1, sizeof *k);
    k->fds_before = skt_fd_count();
    atomic_store(&k->now, start);
    sk_sched_config c = cfg != NULL ? *cfg : (sk_sched_config){0};
    if (!real_clock) {
        c.clock = skt_fake_clock;
        c.clock_arg = k;
    }
    c.on_run = skt_on_run;
    c.on_run_arg = k;
    int rc = sk_sched_create(&k->s, &c);
    if (rc != SK_OK)
        print_error("sk_sched_create: %s\n", sk_last_error_message());
    assert_int_equal(rc, SK_OK);
    skt_defer(skt_sched_release_ref, k);
    return k;
}

static inline struct skt_sched *skt_sched_new(const sk_sched_config *cfg, bool real_clock)
{
    return skt_sched_new_at(cfg, real_clock, SKT_T0);
}

static inline void skt_clock_add(struct skt_sched *k, double seconds)
{
    atomic_fetch_add(&k->now, SKT_SEC(seconds));
}

/* Releases the session and checks that it left nothing: the descriptors
 * the test had before it, no child process. */
static inline void skt_sched_end(struct skt_sched *k)
{
    sk_sched_release(k->s);
    k->s = NULL;
    assert_int_equal(skt_fd_count(), k->fds_before);
    assert_no_children();
}

/* skt_sched_end for a session whose process-class tasks' handles (n of
 * them) keep their last run's descriptors until released: released after
 * the session, before the check. */
static inline void skt_sched_end_with(struct skt_sched *k, sk_process **handles, size_t n)
{
    sk_sched_release(k->s);
    k->s = NULL;
    for (size_t i = 0; i < n; i++)
        sk_release(handles[i]);
    assert_int_equal(skt_fd_count(), k->fds_before);
    assert_no_children();
}

/* Adds a task or fails the test with the session's reason. */
static inline void skt_add(struct skt_sched *k, const sk_sched_task *t)
{
    int rc = sk_sched_add(k->s, t, NULL, 0);
    if (rc != SK_OK)
        print_error("sk_sched_add '%s': %s\n", t->name, sk_last_error_message());
    assert_int_equal(rc, SK_OK);
}

static inline void skt_step(struct skt_sched *k)
{
    int rc = sk_sched_step(k->s);
    if (rc != SK_OK)
        print_error("sk_sched_step: %s\n", sk_last_error_message());
    assert_int_equal(rc, SK_OK);
}

/* Steps until no run goes on (at most 20 s). */
static inline void skt_join(struct skt_sched *k)
{
    int rc = sk_sched_join(k->s, 20 * skt_slowdown());
    if (rc != SK_OK)
        print_error("sk_sched_join: %s\n", sk_last_error_message());
    assert_int_equal(rc, SK_OK);
}

/* How many runs of task the log holds with that outcome (SK_RUN_RUNNING:
 * every run). */
struct skt_count {
    sk_run_outcome outcome;
    int64_t n;
};

static inline int skt_count_fn(const sk_run_record *r, void *arg)
{
    struct skt_count *c = arg;
    if (c->outcome == SK_RUN_RUNNING || r->outcome == c->outcome)
        c->n++;
    return 0;
}

static inline int64_t skt_runs(struct skt_sched *k, const char *task, sk_run_outcome outcome)
{
    struct skt_count c = {.outcome = outcome};
    int64_t rc = sk_run_log_runs(sk_sched_log(k->s), task, SK_COND_NEVER, skt_count_fn, &c);
    assert_true(rc >= 0);
    return c.n;
}

/* The latest ended run of task, as on_run reported it, or NULL. */
static inline const struct skt_run_event *skt_last_end(const struct skt_sched *k, const char *task)
{
    for (int i = k->nevents - 1; i >= 0; i--)
        if (strcmp(k->events[i].task, task) == 0 && k->events[i].outcome != SK_RUN_RUNNING)
            return &k->events[i];
    return NULL;
}

/* The latest value task returned, unpacked as one int64 ("I"); -1 when
 * there is none. */
struct skt_value {
    int64_t v;
    bool found;
};

static inline int skt_value_fn(const sk_run_record *r, void *arg)
{
    struct skt_value *out = arg;
    if (r->value != NULL && sk_image_unpack(r->value, r->value_len, "I", &out->v) == SK_OK)
        out->found = true;
    return 0;
}

static inline int64_t skt_last_value(struct skt_sched *k, const char *task)
{
    struct skt_value out = {.v = -1};
    sk_run_log_last(sk_sched_log(k->s), task, SK_COND_SUCCEEDED, skt_value_fn, &out);
    return out.found ? out.v : -1;
}

/* A grandchild for tree tests: a process that waits forever, deaf to
 * SIGTERM and SIGINT, in a session of its own when asked (a daemon). Its
 * pid, or -1. */
static inline pid_t skt_spawn_deaf_sleeper(bool new_session)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (new_session)
            setsid();
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        for (;;)
            pause();
    }
    return pid;
}

#endif
