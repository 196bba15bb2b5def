/* SPDX-License-Identifier: MIT */
/*
 * Preforks: a process task's run forked ahead of its start.
 *
 * A process task's start costs two forks (the supervisor, then the
 * worker), a millisecond or more each on a virtual machine. When the next
 * start is due at a time known in advance (the start condition's next
 * change, and the condition true at that instant), the session forks the
 * run's process sk_sched_config.prefork seconds before, held
 * (sk_start_held): the process and its supervisor exist and wait. At the
 * due time the start takes that run and releases it, one eventfd write.
 *
 * A prefork is a bet, and each way it can lose costs only the forks:
 *   the start is not made at the due time (the condition turned false, the
 *   overlap policy skipped it): kept while the next due time is near,
 *   else dropped;
 *   its parameters changed meanwhile (a session parameter set again, a new
 *   Return value): dropped at the start, which forks afresh;
 *   its process died while it waited: dropped at the start, same;
 *   the task is removed, or the session shuts down: dropped.
 * Dropped means killed with its tree and reaped, never logged: it never
 * ran a hook. The run's start, its log row and on_run are made at the due
 * time, as for any start.
 *
 *   no prefork ──lead reached──▶ held ──start──▶ (the run, RUNNING)
 *                                  │ far, removed, shutdown, stale, dead
 *                                  ▼
 *                               dropped
 */
#include "os/clock.h"
#include "sched/session.h"

#include <stdlib.h>

int64_t sk_warm_lead(const sk_sched *s)
{
    if (s->cfg.clock != NULL || s->cfg.prefork < 0) /* a fake clock's seconds are not real */
        return 0;
    return sk_seconds_to_ns(s->cfg.prefork > 0 ? s->cfg.prefork : SK_SCHED_PREFORK);
}

bool sk_warm_fits(const sk_sched *s, const struct sched_task *t)
{
    if (t->mode != SK_TASK_PROCESS || t->removed || t->warm != NULL)
        return false;
    if (t->process != NULL && t->running > 0) /* its one handle is in use */
        return false;
    return sk_params_known_ahead(s, t);
}

/* What a prefork's launch takes before the first one is measured: two
 * forks on a virtual machine. */
#define WARM_FORK_GUESS (INT64_C(3000000))
/* A cycle's own work around a start. */
#define WARM_SLACK (INT64_C(1000000))
/* How long a run just started keeps the CPUs to itself: a released
 * process reaches its code in well under this when nothing else runs. */
#define WARM_SETTLE (INT64_C(3000000))

/* The fork holds the session's thread, and then the new supervisor and
 * worker take CPUs: a start due meanwhile would be late by it, and so
 * would the run a start has just let go (on two CPUs, a prefork made right
 * after a release made that run's process reach its code 1.9 ms late
 * instead of 0.2 ms). Such a start goes first and has WARM_SETTLE to
 * itself, and the fork comes after. Returns when the fork may be made:
 * now, or later. */
static int64_t warm_clear_at(const sk_sched *s, const struct sched_task *t, int64_t now,
                             int64_t fork_ns)
{
    int64_t clear = s->started_at + WARM_SETTLE;
    const struct sched_task *other =
        sk_task_heap_due_in(s, t, INT64_MIN, now + 2 * fork_ns + WARM_SLACK);
    if (other != NULL && other->due + WARM_SETTLE > clear)
        clear = other->due + WARM_SETTLE;
    return clear > now ? clear : now;
}

void sk_warm_make(sk_sched *s, struct sched_task *t, int64_t now, int64_t *retry_at)
{
    *retry_at = t->due;
    int64_t fork_ns = s->fork_ns > 0 ? s->fork_ns : WARM_FORK_GUESS;
    int64_t clear = warm_clear_at(s, t, now, fork_ns);
    if (clear > now) {
        if (clear + fork_ns + WARM_SLACK < t->due)
            *retry_at = clear;
        return;
    }
    sk_task_run *r = sk_run_new(t);
    if (r == NULL)
        return; /* the start will fork */
    sk_error why;
    int64_t t0 = sk_now_ns();
    /* the due time on the session clock, as CLOCK_MONOTONIC for the worker */
    int64_t release_at = t0 + (t->due - now);
    if (sk_params_resolve(s, r, &why) != SK_OK ||
        sk_run_launch_held(r, release_at, &why) != SK_OK) {
        sk_run_free(r); /* the start will fork, and say what fails then */
        return;
    }
    /* r's page is shared with the fork now: copied here, by this write,
     * rather than by the start's first write (a fault of 10 to 20 us on
     * a virtual machine, in the start's path). */
    r->start = 0;
    int64_t took = sk_now_ns() - t0;
    s->fork_ns = s->fork_ns > 0 ? (7 * s->fork_ns + took) / 8 : took;
    t->warm = r;
}

void sk_warm_drop(struct sched_task *t)
{
    sk_task_run *r = t->warm;
    if (r == NULL)
        return;
    t->warm = NULL;
    sk_run_unlaunch(r);
    sk_run_free(r);
}

sk_task_run *sk_warm_take(sk_sched *s, struct sched_task *t)
{
    sk_task_run *r = t->warm;
    if (r == NULL)
        return NULL;
    if (!sk_alive(r->proc) || !sk_params_current(s, r)) {
        sk_warm_drop(t);
        return NULL;
    }
    t->warm = NULL;
    return r;
}

static void drop_one(void *value, void *arg)
{
    (void)arg;
    sk_warm_drop(value);
}

void sk_warm_drop_all(sk_sched *s)
{
    sk_name_map_each(&s->tasks, drop_one, NULL);
}
