/* SPDX-License-Identifier: MIT */
/*
 * The cycle (sk_sched_step) and what is made of cycles: sk_sched_run,
 * sk_sched_join, sk_sched_next_wake, and ending every run at shutdown.
 *
 * One cycle, in order:
 *   1. events: what the epoll set says (a run's process exited, a thread
 *      run returned, a timer fired, a command)
 *   2. running runs: a timeout or an end condition that came asks the run
 *      to stop; a kill bound that passed kills it (a thread run is reported)
 *   3. ended runs: collected, logged, reported; what waited for them (the
 *      task itself, tasks "after" it) is marked to be looked at
 *   4. the first cycle only: missed runs (SK_MISSED_RUN_ONCE)
 *   5. tasks: those marked, and those whose time came (the heap's top),
 *      are looked at: a queued start is made, the start condition is
 *      evaluated, a start is made, queued or dropped by the overlap
 *      policy; then the time the condition can next change is cached
 *   6. the shutdown condition; the timers armed for the next cycle
 *
 * A task is looked at only when something can have changed for it: its
 * time came (sk_cond_next_change), a run of it or of a task it waits for
 * ended, sk_sched_run_task, or, for conditions with user predicates (which
 * nothing announces), every SCHED_USER_RECHECK. A cycle with nothing due
 * costs a few system calls whatever the number of tasks.
 *
 * A task marked during step 5 (a main run that ended, an on_run callback)
 * is looked at in the next cycle, which is then due at once: a main task
 * whose condition stays true runs once per cycle, not forever in one.
 */
#include "core/error.h"
#include "os/clock.h"
#include "os/fd.h"
#include "sched/runlog.h"
#include "sched/session.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* How often conditions with user predicates are looked at again. */
#define SCHED_USER_RECHECK (INT64_C(1000000000))
/* How often a process run without a pidfd is looked at. */
#define SCHED_POLL (INT64_C(10000000))
/* A function task's process ends itself at its timeout (the supervisor);
 * the session steps in only this long after it. */
#define SCHED_TIMEOUT_SLACK (INT64_C(1000000000))
/* The longest sk_sched_run sleeps with a clock of the caller's (which may
 * jump), ms. */
#define SCHED_CLOCK_POLL_MS 50
/* The most changes of a start condition walked to find a missed run. */
#define SCHED_MISSED_STEPS 100000

/* What this cycle found, for the steps after. */
struct cycle {
    sk_sched *s;
    int64_t now; /* session clock */
    bool ended;  /* a run ended: end and shutdown conditions with "after" parts look again */
    bool woken;  /* the eventfd rang: thread runs may have returned */
    int crash;   /* the first failure that crashes the session (crash_on_*), or SK_OK */
    char why[256];
};

static void crash(struct cycle *c, int rc, const char *why)
{
    if (c->crash != SK_OK)
        return;
    c->crash = rc;
    snprintf(c->why, sizeof c->why, "%s", why);
}

/* ------------------------------------------------------- conditions */

static int64_t last_start_of(const sk_sched *s, const struct sched_task *t)
{
    return s->cfg.force_status_from_logs ? sk_runlog_last_start(s->log, t->name)
                                         : t->status->last_start;
}

static void ctx_at(sk_sched *s, int64_t now, int64_t last_start, sk_cond_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->now = now;
    ctx->last_start = last_start;
    ctx->last_end = SK_COND_NEVER;
    if (s->cfg.force_status_from_logs) {
        ctx->last_outcome = sk_runlog_last_time;
        ctx->log = s->log;
    } else {
        ctx->last_outcome = sk_status_last_time;
        ctx->log = s;
    }
    ctx->users = s->users;
    ctx->user_count = s->nusers;
}

/* A condition that cannot be evaluated: crashes the session, or counts as
 * false and is said on stderr once per task. */
static void cond_failed(struct cycle *c, struct sched_task *t, const char *which)
{
    char why[256];
    snprintf(why, sizeof why, "task '%.100s': its %s condition: %s", t->name, which,
             sk_last_error_message());
    if (c->s->cfg.crash_on_cond_error) {
        crash(c, SK_EINVAL, why);
    } else if (!t->cond_error_reported) {
        t->cond_error_reported = true;
        fprintf(stderr, "skproc: %s (counted as false)\n", why);
    }
}

/* When cond must be evaluated again, after now. */
static int64_t next_look(sk_sched *s, const sk_cond *cond, const sk_cond_ctx *ctx, bool periodic)
{
    int64_t next;
    if (sk_cond_next_change(cond, ctx, &next) != SK_OK)
        next = SK_COND_NO_CHANGE;
    if (periodic && (next == SK_COND_NO_CHANGE || next - ctx->now > SCHED_USER_RECHECK))
        next = ctx->now + SCHED_USER_RECHECK;
    if (next != SK_COND_NO_CHANGE && next <= ctx->now)
        next = ctx->now + 1000000; /* a search that gave up at once: not again in this cycle */
    (void)s;
    return next;
}

/* --------------------------------------------------------- the record */

/* r's record for on_run. An orphaned thread run's value is its thread's
 * (it may still be setting it): not read. */
static void report(sk_sched *s, const sk_task_run *r, bool orphan)
{
    if (s->cfg.on_run == NULL)
        return;
    sk_run_record rec = {.id = r->log_id,
                         .task = r->name,
                         .start = r->start,
                         .end = r->state == RUN_ENDED ? r->end : SK_COND_NEVER,
                         .outcome = r->state == RUN_ENDED ? r->outcome : SK_RUN_RUNNING,
                         .error = r->has_error ? &r->error : NULL,
                         .value = orphan ? NULL : r->value,
                         .value_len = orphan ? 0 : r->value_len};
    s->cfg.on_run(&rec, s->cfg.on_run_arg);
}

static void run_link(sk_sched *s, sk_task_run *r)
{
    r->next = s->runs;
    if (s->runs != NULL)
        s->runs->prev = r;
    s->runs = r;
    s->nruns++;
}

static void run_unlink(sk_sched *s, sk_task_run *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        s->runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    s->nruns--;
}

/* A run has its outcome: logged, the cache updated, reported, and what
 * waited for it marked. The run is then freed, or (orphan) handed to its
 * thread. */
static void run_finish(struct cycle *c, sk_task_run *r, bool orphan)
{
    sk_sched *s = c->s;
    struct sched_task *t = r->task;
    r->end = c->now;
    r->state = RUN_ENDED;
    int rc = sk_runlog_end(s->log, r->log_id, r->end, r->outcome, r->has_error ? &r->error : NULL,
                           orphan ? NULL : r->value, orphan ? 0 : r->value_len);
    if (rc != SK_OK && s->cfg.crash_on_task_prerun) {
        char why[256];
        snprintf(why, sizeof why, "task '%.100s': the end of its run could not be logged: %s",
                 r->name, sk_last_error_message());
        crash(c, rc, why);
    }
    if (r->outcome == SK_RUN_SUCCEEDED)
        t->status->last_success = r->end;
    else
        t->status->last_failure = r->end;
    report(s, r, orphan);
    run_unlink(s, r);
    t->running--;
    c->ended = true;
    s->run_ended = true;
    sk_task_touch(s, t);
    sk_task_touch_dependents(s, t->name);
    if (orphan) {
        s->libs.keep_loaded = true; /* its code may be in a loaded library */
        sk_run_orphan(r);
    } else
        sk_run_free(r);
}

/* Lets t's prefork go as r's process; false when there is none to take or
 * its release failed (it died just now): the run then forks. */
static bool run_release_warm(sk_sched *s, sk_task_run *r)
{
    if (r->proc == NULL)
        return false;
    if (sk_run_release(s, r) == SK_OK)
        return true;
    sk_run_unlaunch(r);
    sk_params_free_run(r);
    return false;
}

/* Starts a run of t now: parameters, the log's RUNNING row, the run in
 * its mode (its prefork released, when there is one). A failure outside
 * the task's code is logged as a failed run. */
static void run_start(struct cycle *c, struct sched_task *t)
{
    sk_sched *s = c->s;
    sk_task_run *r = sk_warm_take(s, t);
    if (r == NULL && (r = sk_run_new(t)) == NULL) {
        crash(c, SK_ENOMEM, "no memory for a run");
        return;
    }
    r->start = c->now;
    r->start_mono = sk_now_ns();
    r->deadline_mono = t->timeout > 0 ? r->start_mono + sk_seconds_to_ns(t->timeout) : 0;
    r->end_check = INT64_MIN; /* the end condition is looked at in the next cycle */
    int rc = sk_runlog_begin(s->log, t->name, r->start, &r->log_id);
    if (rc != SK_OK) {
        char why[256];
        snprintf(why, sizeof why,
                 "task '%.100s' was not started: its start could not be logged: %s", t->name,
                 sk_last_error_message());
        if (s->cfg.crash_on_task_prerun)
            crash(c, rc, why);
        else if (!t->log_error_reported)
            fprintf(stderr, "skproc: %s\n", why);
        t->log_error_reported = true;
        sk_run_unlaunch(r);
        sk_run_free(r);
        return;
    }
    t->status->last_start = r->start;
    s->started_at = r->start;
    t->running++;
    run_link(s, r);
    report(s, r, false);
    sk_error why;
    rc = SK_OK;
    if (!run_release_warm(s, r)) {
        rc = sk_params_resolve(s, r, &why);
        if (rc == SK_OK)
            rc = sk_run_launch(s, r, &why);
    }
    if (rc != SK_OK) {
        r->outcome = SK_RUN_FAILED;
        r->error = why;
        r->has_error = true;
        if (s->cfg.crash_on_task_prerun)
            crash(c, rc, why.message);
        run_finish(c, r, false);
        return;
    }
    if (r->mode == SK_TASK_MAIN) { /* it ran to its end in sk_run_launch */
        sk_run_collect(s, r);
        run_finish(c, r, false);
    }
}

/* ------------------------------------------------------- the steps */

/* 1. What the epoll set says. A process's pidfd stays readable until its
 * run is collected, so the rounds are bounded by what can be in the set. */
static void take_events(struct cycle *c)
{
    sk_sched *s = c->s;
    struct epoll_event ev[64];
    size_t rounds = 1 + s->nruns / 64;
    for (size_t round = 0; round < rounds; round++) {
        int n = epoll_wait(s->epoll_fd, ev, 64, 0);
        for (int i = 0; i < n; i++) {
            switch (ev[i].data.u64) {
            case SCHED_EV_WAKE:
                sk_doorbell_drain(s->wake_fd);
                c->woken = true;
                break;
            case SCHED_EV_CLOCK:
                sk_wait_clear(s->clock_fd);
                s->armed_clock = INT64_MAX;
                break;
            case SCHED_EV_MONO:
                sk_wait_clear(s->mono_fd);
                s->armed_mono = INT64_MAX;
                break;
            default:
                ((sk_task_run *)ev[i].data.ptr)->exited = true;
                break;
            }
        }
        if (n < 64)
            break;
    }
}

static int64_t run_deadline(const sk_task_run *r)
{
    if (r->deadline_mono == 0)
        return INT64_MAX;
    return r->own != NULL ? r->deadline_mono + SCHED_TIMEOUT_SLACK : r->deadline_mono;
}

static void check_end_condition(struct cycle *c, sk_task_run *r, bool ended)
{
    struct sched_task *t = r->task;
    if (t->end == NULL || (c->now < r->end_check && !(ended && t->end_watch)))
        return;
    sk_cond_ctx ctx;
    ctx_at(c->s, c->now, r->start, &ctx);
    int v = sk_cond_eval(t->end, &ctx);
    if (v < 0)
        cond_failed(c, t, "end");
    if (v == 1) {
        sk_run_ask_stop(r, STOP_END_CONDITION, t->kill_after);
        return;
    }
    r->end_check = next_look(c->s, t->end, &ctx, t->end_watch);
}

/* 2. Timeouts, end conditions and kill bounds of the runs going. At
 * shutdown, a thread run past its bound is let go of (orphan). */
static void check_runs(struct cycle *c, bool shutting_down)
{
    sk_sched *s = c->s;
    int64_t mono = sk_now_ns();
    bool ended = s->run_ended; /* "after" parts of end conditions may have changed */
    s->run_ended = false;
    sk_task_run *next;
    for (sk_task_run *r = s->runs; r != NULL; r = next) {
        next = r->next;
        if (r->state == RUN_RUNNING && mono >= run_deadline(r))
            sk_run_ask_stop(r, STOP_TIMEOUT, r->task->kill_after);
        else if (r->state == RUN_RUNNING)
            check_end_condition(c, r, ended);
        /* A thread run reported overdue (KILLED) is let go of at shutdown,
         * once the shutdown's own bound passed too. */
        bool bound = r->state == RUN_STOPPING || (shutting_down && r->state == RUN_KILLED);
        if (!bound || mono < r->kill_mono || sk_run_has_ended(r))
            continue;
        if (r->state == RUN_STOPPING)
            sk_run_kill(s, r);
        if (r->mode != SK_TASK_THREAD)
            continue;
        if (!shutting_down) {
            report(s, r, true); /* overdue: still RUNNING, with an error that says so */
            continue;
        }
        r->outcome = SK_RUN_TERMINATED;
        sk_run_error_stopped(&r->error, r->name, r->stop, r->task->timeout, NULL);
        snprintf(r->error.cause, sizeof r->error.cause,
                 "the thread did not return within the shutdown's grace; it was left running");
        r->has_error = true;
        run_finish(c, r, true);
    }
}

/* 3. Runs whose code ended. */
static void collect_runs(struct cycle *c)
{
    sk_sched *s = c->s;
    sk_task_run *next;
    for (sk_task_run *r = s->runs; r != NULL; r = next) {
        next = r->next;
        if (r->mode == SK_TASK_THREAD && !c->woken)
            continue; /* its end rings the eventfd */
        if (!sk_run_has_ended(r))
            continue;
        sk_run_collect(s, r);
        run_finish(c, r, false);
    }
}

/* Was t's start condition true at some time in [from, to)? */
static bool was_due(sk_sched *s, const struct sched_task *t, int64_t from, int64_t to)
{
    sk_cond_ctx ctx;
    ctx_at(s, from, last_start_of(s, t), &ctx);
    for (int i = 0; i < SCHED_MISSED_STEPS && ctx.now < to; i++) {
        int v = sk_cond_eval(t->start, &ctx);
        if (v != 0)
            return v == 1;
        int64_t next;
        if (sk_cond_next_change(t->start, &ctx, &next) != SK_OK || next == SK_COND_NO_CHANGE)
            return false;
        ctx.now = next > ctx.now ? next : ctx.now + 1;
    }
    return false;
}

struct missed_walk {
    struct cycle *c;
    int64_t since;
};

static void missed_one(void *value, void *arg)
{
    struct sched_task *t = value;
    struct missed_walk *w = arg;
    if (t->missed == SK_MISSED_RUN_ONCE && was_due(w->c->s, t, w->since, w->c->now)) {
        t->forced = true;
        sk_task_touch(w->c->s, t);
    }
}

/* 4. Starts that were due while no session ran: once each. */
static void missed_runs(struct cycle *c)
{
    struct missed_walk w = {.c = c, .since = sk_runlog_previous_alive(c->s->log)};
    if (w.since == SK_COND_NEVER || w.since >= c->now)
        return;
    sk_name_map_each(&c->s->tasks, missed_one, &w);
}

/* A start that is due: made, queued or dropped by the overlap policy. */
static void start_due(struct cycle *c, struct sched_task *t)
{
    t->forced = false;
    int limit = t->overlap == SK_OVERLAP_PARALLEL ? t->max_parallel : 1;
    if (t->running < limit)
        run_start(c, t);
    else if (t->overlap == SK_OVERLAP_QUEUE && t->queued < t->max_parallel)
        t->queued++;
}

/* When t is looked at next: at its start condition's next change (t->due),
 * or a prefork's lead before it, when its run can be forked ahead and the
 * condition will be true then. A prefork whose start is no longer near
 * is dropped; one whose lead is reached is made now. */
static void plan_next(struct cycle *c, struct sched_task *t, const sk_cond_ctx *ctx)
{
    sk_sched *s = c->s;
    bool periodic = t->start_users || (s->cfg.force_status_from_logs && t->nafter > 0);
    t->due = next_look(s, t->start, ctx, periodic);
    t->next_check = t->due;
    int64_t lead = sk_warm_lead(s);
    if (lead == 0 || t->mode != SK_TASK_PROCESS)
        return;
    bool near = !periodic && t->due != SK_COND_NO_CHANGE && t->due - c->now <= 2 * lead;
    if (t->warm != NULL && !near)
        sk_warm_drop(t);
    if (periodic || t->due == SK_COND_NO_CHANGE || !sk_warm_fits(s, t))
        return;
    sk_cond_ctx at_due = *ctx;
    at_due.now = t->due;
    if (sk_cond_eval(t->start, &at_due) != 1)
        return; /* a change, but not to a start */
    if (t->due - lead > c->now) {
        t->next_check = t->due - lead;
        return;
    }
    int64_t retry_at;
    sk_warm_make(s, t, c->now, &retry_at);
    if (t->warm == NULL)
        t->next_check = retry_at;
}

/* 5. One task: a queued start, its condition, its next look. */
static void look_at(struct cycle *c, struct sched_task *t)
{
    sk_sched *s = c->s;
    if (t->removed)
        return;
    if (t->queued > 0 && t->running == 0) {
        t->queued--;
        run_start(c, t);
    }
    sk_cond_ctx ctx;
    ctx_at(s, c->now, last_start_of(s, t), &ctx);
    int v = sk_cond_eval(t->start, &ctx);
    if (v < 0)
        cond_failed(c, t, "start");
    if (v == 1 || t->forced) {
        start_due(c, t);
        ctx.last_start = last_start_of(s, t);
    }
    if (t->removed) /* a main run or on_run removed it */
        return;
    plan_next(c, t, &ctx);
    sk_task_heap_set(s, t);
}

static void look_at_tasks(struct cycle *c)
{
    sk_sched *s = c->s;
    /* Marked before this cycle; those marked while it goes wait for the next. */
    size_t marked = s->ndirty;
    for (size_t i = 0; i < marked; i++) {
        struct sched_task *t = s->dirty[i];
        t->dirty = false;
        look_at(c, t);
    }
    memmove(s->dirty, s->dirty + marked, (s->ndirty - marked) * sizeof *s->dirty);
    s->ndirty -= marked;
    struct sched_task *t;
    while ((t = sk_task_heap_top(s)) != NULL && t->next_check <= c->now) {
        if (t->dirty) /* due, and marked again meanwhile: the next cycle has it */
            sk_task_heap_remove(s, t);
        else
            look_at(c, t);
    }
}

/* 6. The shutdown condition, "since" the session began. */
static void check_shutdown(struct cycle *c)
{
    sk_sched *s = c->s;
    if (s->shutdown_cond == NULL || (c->now < s->shutdown_check && !c->ended))
        return;
    sk_cond_ctx ctx;
    ctx_at(s, c->now, s->created, &ctx);
    int v = sk_cond_eval(s->shutdown_cond, &ctx);
    if (v < 0 && s->cfg.crash_on_cond_error) {
        char why[256];
        snprintf(why, sizeof why, "the shutdown condition: %s", sk_last_error_message());
        crash(c, SK_EINVAL, why);
    }
    if (v == 1) {
        atomic_store(&s->shutdown_asked, 1);
        return;
    }
    s->shutdown_check = next_look(s, s->shutdown_cond, &ctx, s->shutdown_users);
}

/* When the next cycle is due: on the session clock (conditions) and on
 * CLOCK_MONOTONIC (timeouts, kill bounds, polled runs). */
static void wake_times(const sk_sched *s, int64_t *clock_at, int64_t *mono_at)
{
    const struct sched_task *top = sk_task_heap_top(s);
    int64_t at = top != NULL ? top->next_check : SK_COND_NO_CHANGE;
    if (s->shutdown_cond != NULL && s->shutdown_check < at)
        at = s->shutdown_check;
    int64_t mono = INT64_MAX, now = sk_now_ns();
    for (const sk_task_run *r = s->runs; r != NULL; r = r->next) {
        if (r->state == RUN_RUNNING && r->task->end != NULL && r->end_check < at)
            at = r->end_check;
        if (r->state == RUN_RUNNING && run_deadline(r) < mono)
            mono = run_deadline(r);
        /* KILLED: a thread reported overdue, waited for without a bound,
         * except at shutdown (a new bound, in the future) */
        bool bound = r->state == RUN_STOPPING ||
                     (r->state == RUN_KILLED && r->mode == SK_TASK_THREAD && r->kill_mono > now);
        if (bound && r->kill_mono < mono)
            mono = r->kill_mono;
    }
    if (s->npolled > 0) {
        int64_t poll_at = now + SCHED_POLL;
        mono = poll_at < mono ? poll_at : mono;
    }
    *clock_at = at;
    *mono_at = mono;
}

static int cycle_end(struct cycle *c)
{
    sk_sched *s = c->s;
    int64_t clock_at, mono_at;
    wake_times(s, &clock_at, &mono_at);
    sk_wait_arm(s, clock_at, mono_at);
    if (s->ndirty > 0)
        sk_doorbell_ring(s->wake_fd); /* the next cycle is due at once */
    s->in_step = false;
    sk_task_bury(s);
    if (c->crash != SK_OK)
        return sk_refuse(c->crash, "%s", c->why);
    return SK_OK;
}

static int cycle_begin(sk_sched *s, struct cycle *c, const char *call)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    if (s == NULL)
        return sk_refuse(SK_EINVAL, "%s: the session is NULL", call);
    if (s->in_step)
        return sk_refuse(SK_ESTATE, "%s: called from a task of the same session, during its cycle",
                         call);
    s->in_step = true;
    take_events(c);
    c->now = sk_sched_now(s);
    sk_runlog_alive(s->log, c->now);
    return SK_OK;
}

int sk_sched_step(sk_sched *s)
{
    struct cycle c;
    int rc = cycle_begin(s, &c, "sk_sched_step");
    if (rc != SK_OK)
        return rc;
    check_runs(&c, false);
    collect_runs(&c);
    if (!s->first_cycle_done) {
        s->first_cycle_done = true;
        missed_runs(&c);
    }
    look_at_tasks(&c);
    check_shutdown(&c);
    return cycle_end(&c);
}

/* ------------------------------------------------------------ waiting */

/* Milliseconds until the next cycle is due, for epoll_wait: -1 when the
 * timers in the set say it (the real clock), else what the caller's clock
 * says, at most SCHED_CLOCK_POLL_MS. */
static int wait_ms(sk_sched *s)
{
    if (s->ndirty > 0)
        return 0;
    if (s->cfg.clock == NULL)
        return -1;
    int64_t clock_at, mono_at;
    wake_times(s, &clock_at, &mono_at);
    (void)mono_at; /* in mono_fd */
    if (clock_at == SK_COND_NO_CHANGE)
        return SCHED_CLOCK_POLL_MS;
    int64_t left = clock_at - sk_sched_now(s);
    if (left <= 0)
        return 0;
    return left / 1000000 < SCHED_CLOCK_POLL_MS ? (int)(left / 1000000) + 1 : SCHED_CLOCK_POLL_MS;
}

static void wait_for_work(sk_sched *s, int ms)
{
    struct epoll_event ev;
    epoll_wait(s->epoll_fd, &ev, 1, ms); /* EINTR: a signal, looked at by the caller */
}

/* cycle_sleep: at least that long since the last cycle began, unless a
 * shutdown comes. */
static void cycle_gap(sk_sched *s, int64_t last_cycle)
{
    int64_t until = last_cycle + sk_seconds_to_ns(s->cfg.cycle_sleep);
    for (;;) {
        int64_t left = until - sk_now_ns();
        if (left <= 0 || atomic_load(&s->shutdown_asked))
            return;
        struct pollfd pfd = {.fd = s->wake_fd, .events = POLLIN};
        int ms = (int)(left / 1000000) + 1;
        if (poll(&pfd, 1, ms) > 0 && !atomic_load(&s->shutdown_asked)) {
            struct timespec ts = sk_ns_to_timespec(left < SCHED_POLL ? left : SCHED_POLL);
            nanosleep(&ts, NULL); /* rung for the next cycle: no busy loop meanwhile */
        }
    }
}

int sk_sched_run(sk_sched *s)
{
    if (s == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_run: the session is NULL");
    if (s->in_step)
        return sk_refuse(SK_ESTATE, "sk_sched_run: called from a task of the same session");
    int rc = s->cfg.no_signals ? SK_OK : sk_wait_signals_on(s);
    if (rc != SK_OK)
        return rc;
    int64_t last_cycle = INT64_MIN;
    while (!atomic_load(&s->shutdown_asked)) {
        if (s->cfg.cycle_sleep > 0 && last_cycle != INT64_MIN)
            cycle_gap(s, last_cycle);
        if (atomic_load(&s->shutdown_asked))
            break;
        last_cycle = sk_now_ns();
        rc = sk_sched_step(s);
        if (rc != SK_OK || atomic_load(&s->shutdown_asked))
            break;
        wait_for_work(s, wait_ms(s));
    }
    char why[256];
    snprintf(why, sizeof why, "%s", sk_last_error_message());
    sk_cycle_stop_all(s, s->cfg.shutdown_grace > 0 ? s->cfg.shutdown_grace : SK_TASK_KILL_AFTER);
    atomic_store(&s->shutdown_asked, 0);
    sk_wait_signals_off(s);
    return rc == SK_OK ? SK_OK : sk_refuse(rc, "%s", why);
}

int sk_sched_join(sk_sched *s, double timeout)
{
    if (s == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_join: the session is NULL");
    int64_t deadline = sk_deadline_ns(timeout);
    for (;;) {
        int rc = sk_sched_step(s);
        if (rc != SK_OK)
            return rc;
        /* a queued start waits for a run, whose end marks its task */
        if (s->nruns == 0 && s->ndirty == 0)
            return SK_OK;
        int64_t left = deadline == INT64_MAX ? INT64_MAX : deadline - sk_now_ns();
        if (left <= 0)
            return sk_refuse(SK_ETIMEDOUT, "sk_sched_join: %zu runs still going after %gs",
                             s->nruns, timeout);
        int ms = wait_ms(s);
        int64_t cap = left == INT64_MAX ? SCHED_CLOCK_POLL_MS : left / 1000000 + 1;
        if (ms < 0 || ms > cap)
            ms = (int)(cap < SCHED_CLOCK_POLL_MS ? cap : SCHED_CLOCK_POLL_MS);
        wait_for_work(s, ms);
    }
}

int sk_sched_next_wake(sk_sched *s, int64_t *when)
{
    if (s == NULL || when == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_next_wake: %s is NULL",
                         s == NULL ? "the session" : "when");
    int64_t now = sk_sched_now(s);
    int64_t clock_at, mono_at;
    wake_times(s, &clock_at, &mono_at);
    if (mono_at != INT64_MAX) {
        int64_t left = mono_at - sk_now_ns();
        int64_t at = left <= 0 ? now : now + left;
        clock_at = at < clock_at ? at : clock_at;
    }
    if (s->ndirty > 0 || !s->first_cycle_done)
        clock_at = now;
    *when = clock_at;
    return SK_OK;
}

/* ----------------------------------------------------------- shutdown */

void sk_cycle_stop_all(sk_sched *s, double grace)
{
    if (s->in_step)
        return;
    sk_warm_drop_all(s);
    for (sk_task_run *r = s->runs; r != NULL; r = r->next)
        sk_run_ask_stop(r, STOP_SHUTDOWN, grace);
    while (s->nruns > 0) {
        struct cycle c;
        memset(&c, 0, sizeof c);
        c.s = s;
        s->in_step = true;
        take_events(&c);
        c.now = sk_sched_now(s);
        c.woken = true;
        check_runs(&c, true);
        collect_runs(&c);
        s->in_step = false;
        if (s->nruns == 0)
            break;
        int64_t clock_at, mono_at;
        wake_times(s, &clock_at, &mono_at);
        int64_t left = mono_at - sk_now_ns();
        int ms = left <= 0                              ? 0
                 : left / 1000000 < SCHED_CLOCK_POLL_MS ? (int)(left / 1000000) + 1
                                                        : SCHED_CLOCK_POLL_MS;
        wait_for_work(s, ms);
    }
    sk_task_bury(s);
}
