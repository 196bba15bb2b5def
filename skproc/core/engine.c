/* SPDX-License-Identifier: MIT */
/*
 * The engine: the lifecycle loop that runs in the worker process.
 *
 * It is a small state machine. Each state runs at most one hook and picks
 * the next state from the hook's outcome:
 *
 *   CHECK    --(stopped | runs reached | join_in elapsed)--> ONFINISH
 *   CHECK    --------------------------------------------->  PRERUN
 *   PRERUN   --ok--> RUN      --ok--> POSTRUN  --ok--> COUNT --> CHECK
 *      (after prerun or run, a stop request skips to ONFINISH)
 *   any loop hook --fails, lives left--> CHECK (same run index, state kept)
 *   any loop hook --fails, no lives----> ERROR
 *   ONFINISH --ok--> RESULT --ok--> DONE(ok)
 *   ONFINISH, RESULT --fails--> ERROR (never uses lives)
 *   ERROR    ------> DONE(failed)
 *
 * Where the worker is (section, run, section start) is published in the
 * status page so the supervisor (when there is one) can enforce timeouts and
 * the parent can read the run count live. The engine ends with _exit: a worker is a fork of the
 * user's process and must not run its atexit handlers.
 */
#include "core/channel.h"
#include "core/class.h"
#include "core/engine.h"
#include "core/error.h"
#include "core/events.h"
#include "core/held_wait.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/proc.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum engine_state {
    ES_CHECK,
    ES_PRERUN,
    ES_RUN,
    ES_POSTRUN,
    ES_COUNT,
    ES_ONFINISH,
    ES_RESULT,
    ES_ERROR,
    ES_DONE
};

struct engine {
    sk_process *p;
    struct sk_runtime *rt;
    struct sk_shared *sh;
    sk_hook hooks[SK_FULL_RUN];
    int64_t timeout_ns[SK_FULL_RUN];
    long runs;             /* 0: unlimited */
    int lives;             /* total attempts */
    int64_t join_deadline; /* 0: none */
    uint64_t seq;          /* our copy of sh->seq: we are its only writer */
    long run;
    int64_t iteration_ns; /* prerun + run + postrun of this iteration so far */
    int64_t now;          /* the clock at the end of the last hook */
    enum sk_outcome outcome;
};

/* Entering a section with a deadline earlier than the supervisor's next
 * wake-up must wake it, or the timeout would fire late. The fence pairs with
 * the supervisor's (store wake; fence; load seq): one of the two sides always
 * sees the other's write. */
static void engine_wake_supervisor_if_late(struct engine *e, int64_t deadline)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (deadline < atomic_load_explicit(&e->sh->supervisor_wake, memory_order_relaxed))
        sk_doorbell_ring(e->rt->doorbell);
}

static void engine_enter_section(struct engine *e, sk_section s, int64_t t0)
{
    struct sk_shared *sh = e->sh;
    atomic_store_explicit(&sh->section, s, memory_order_relaxed);
    atomic_store_explicit(&sh->section_start_ns, t0, memory_order_relaxed);
    atomic_store_explicit(&sh->seq, ++e->seq, memory_order_release);
    if (e->timeout_ns[s])
        engine_wake_supervisor_if_late(e, t0 + e->timeout_ns[s]);
}

static void engine_leave_section(struct engine *e)
{
    atomic_store_explicit(&e->sh->seq, ++e->seq, memory_order_release);
}

/* Runs one hook, timed. A missing hook succeeds at no cost. Only a
 * successful call is recorded: a failed section's timing is discarded. */
static int engine_call(struct engine *e, sk_section s)
{
    sk_hook hook = e->hooks[s];
    if (hook == NULL)
        return 0;
    struct sk_runtime *rt = e->rt;
    int64_t t0 = sk_now_ns();
    engine_enter_section(e, s, t0);
    rt->cause_set = false;
    rt->hook_section = s;
    int rc = hook(e->p);
    rt->hook_section = -1;
    int64_t t1 = sk_now_ns();
    if (e->seq & 1) /* a hook that went idle (sk_section_idle) has left already */
        engine_leave_section(e);
    e->now = t1;
    if (rc == 0) {
        sk_timer_add(&e->sh->timers[s], t1 - t0);
        e->iteration_ns += t1 - t0;
    }
    return rc;
}

/* Fills *err with the failure of a hook: the code and text given to
 * sk_fail, or the bare return value. */
static void engine_describe_failure(struct engine *e, sk_section s, int rc, sk_error *err)
{
    struct sk_runtime *rt = e->rt;
    char cause[sizeof rt->cause];
    int code = rc;
    if (rt->cause_set) {
        memcpy(cause, rt->cause, sizeof cause);
        code = rt->cause_code;
    } else {
        snprintf(cause, sizeof cause, "%s returned %d", sk_section_name(s), rc);
    }
    sk_error_set(err, sk_error_kind_of_section(s), s, e->run, code, cause);
    /* A loop failure has counted its attempt already; one after the loop
     * ends the attempt it happened in, which counts too. */
    int used = atomic_load(&e->sh->lives_used) + (sk_section_is_loop(s) ? 0 : 1);
    err->lives_spent = used > e->lives ? e->lives : used;
}

/* Records the failure of a hook as the process's error. */
static void engine_record_failure(struct engine *e, sk_section s, int rc)
{
    engine_describe_failure(e, s, rc, &e->sh->error);
}

/* Logs a FAILURE event for config.on_event. */
static void engine_log_failure(struct engine *e, const sk_error *err)
{
    sk_event_log(e->rt, SK_EVENT_FAILURE, err->section, err->run, getpid(), err);
}

/* A soft error in a loop hook: retry the iteration while lives last. A
 * retried failure is kept among the spent errors (sk_spent_error). */
static enum engine_state engine_loop_failure(struct engine *e, sk_section s, int rc)
{
    int used = atomic_fetch_add(&e->sh->lives_used, 1) + 1;
    if (used < e->lives) {
        sk_error spent;
        engine_describe_failure(e, s, rc, &spent);
        spent.lives_spent = used;
        sk_spent_record(e->sh, &spent);
        engine_log_failure(e, &spent);
        return ES_CHECK;
    }
    engine_record_failure(e, s, rc);
    engine_log_failure(e, &e->sh->error);
    return ES_ERROR;
}

static bool engine_stop_requested(const struct engine *e)
{
    return atomic_load_explicit(&e->sh->stop, memory_order_relaxed) != 0;
}

static enum engine_state engine_check(struct engine *e)
{
    if (engine_stop_requested(e) || (e->runs > 0 && e->run >= e->runs))
        return ES_ONFINISH;
    if (e->join_deadline && e->now >= e->join_deadline)
        return ES_ONFINISH;
    e->iteration_ns = 0;
    return ES_PRERUN;
}

/* One loop hook; after prerun and run a stop request ends the iteration. */
static enum engine_state engine_loop_step(struct engine *e, sk_section s, enum engine_state next)
{
    int rc = engine_call(e, s);
    if (rc != 0)
        return engine_loop_failure(e, s, rc);
    if (next != ES_COUNT && engine_stop_requested(e))
        return ES_ONFINISH;
    return next;
}

static enum engine_state engine_count(struct engine *e)
{
    e->run++;
    atomic_store_explicit(&e->sh->current_run, e->run, memory_order_relaxed);
    sk_timer_add(&e->sh->timers[SK_FULL_RUN], e->iteration_ns);
    return ES_CHECK;
}

static enum engine_state engine_finish_step(struct engine *e, sk_section s, enum engine_state next)
{
    int rc = engine_call(e, s);
    if (rc == 0)
        return next;
    if (s == SK_RESULT)
        e->sh->has_result = 0; /* a failed result hook publishes nothing */
    engine_record_failure(e, s, rc);
    engine_log_failure(e, &e->sh->error);
    return ES_ERROR;
}

/* The error hook runs with sk_error_of(self) set. If it fails too, the
 * reported error becomes an ErrorHandlerError that still names the first. */
static enum engine_state engine_error(struct engine *e)
{
    struct sk_shared *sh = e->sh;
    e->outcome = SK_OUTCOME_FAILED;
    int rc = engine_call(e, SK_ERROR);
    if (rc != 0) {
        sh->has_result = 0; /* a failed error hook publishes nothing, like result */
        sk_error first = sh->error;
        engine_record_failure(e, SK_ERROR, rc);
        sk_error_while_handling(&sh->error, &first);
        engine_log_failure(e, &sh->error);
    }
    return ES_DONE;
}

static void engine_init(struct engine *e, sk_process *p)
{
    struct sk_runtime *rt = p->rt;
    memset(e, 0, sizeof *e);
    e->p = p;
    e->rt = rt;
    e->sh = rt->sh;
    for (int s = 0; s < SK_FULL_RUN; s++) {
        e->hooks[s] = sk_class_hook(p->cls, (sk_section)s);
        e->timeout_ns[s] = sk_seconds_to_ns(sk_config_timeout(&rt->config, (sk_section)s));
    }
    e->runs = rt->config.runs;
    e->lives = rt->config.lives;
    int64_t join = sk_seconds_to_ns(rt->config.join_in);
    e->join_deadline = join ? e->sh->start_ns + join : 0;
    e->seq = atomic_load(&e->sh->seq);
    e->run = atomic_load(&e->sh->current_run);
    e->now = sk_now_ns();
    e->outcome = SK_OUTCOME_OK;
}

/* The engine of this worker, for the sk_section_* calls made from hooks. */
static struct engine *current_engine;

void sk_section_restart(sk_process *self)
{
    struct engine *e = current_engine;
    if (e == NULL || self == NULL || self->rt != e->rt || e->rt->hook_section < 0)
        return;
    engine_leave_section(e);
    engine_enter_section(e, (sk_section)e->rt->hook_section, sk_now_ns());
}

void sk_section_idle(sk_process *self)
{
    struct engine *e = current_engine;
    if (e != NULL && self != NULL && self->rt == e->rt && (e->seq & 1))
        engine_leave_section(e);
}

int64_t sk_section_resume(sk_process *self)
{
    struct engine *e = current_engine;
    int64_t now = sk_now_ns();
    if (e != NULL && self != NULL && self->rt == e->rt && !(e->seq & 1) && e->rt->hook_section >= 0)
        engine_enter_section(e, (sk_section)e->rt->hook_section, now);
    return now;
}

_Noreturn void sk_worker_recycle(sk_process *self)
{
    atomic_store(&self->rt->sh->recycle, 1);
    fflush(NULL);
    sk_child_exit(0);
}

const sk_error *sk_worker_last_fault(const sk_process *self)
{
    if (self == NULL || self->rt == NULL || self->rt->role != SK_ROLE_WORKER)
        return NULL;
    return atomic_load(&self->rt->sh->faults) > 0 ? &self->rt->sh->last_fault : NULL;
}

_Noreturn void sk_engine_main(sk_process *p, enum sk_engine_mode mode)
{
    struct engine e;
    engine_init(&e, p);
    current_engine = &e;
    if (p->rt->held) {
        /* A held start (core/held_start.c) waits here, with the pages the
         * loop writes first written already; join_in counts from the
         * release. */
        sk_worker_wait_release(p->rt);
        engine_init(&e, p);
    }
    enum engine_state state = mode == SK_ENGINE_ERROR_ONLY ? ES_ERROR : ES_CHECK;
    while (state != ES_DONE) {
        switch (state) {
        case ES_CHECK:
            state = engine_check(&e);
            break;
        case ES_PRERUN:
            state = engine_loop_step(&e, SK_PRERUN, ES_RUN);
            break;
        case ES_RUN:
            state = engine_loop_step(&e, SK_RUN, ES_POSTRUN);
            break;
        case ES_POSTRUN:
            state = engine_loop_step(&e, SK_POSTRUN, ES_COUNT);
            break;
        case ES_COUNT:
            state = engine_count(&e);
            break;
        case ES_ONFINISH:
            state = engine_finish_step(&e, SK_ONFINISH, ES_RESULT);
            break;
        case ES_RESULT:
            state = engine_finish_step(&e, SK_RESULT, ES_DONE);
            break;
        case ES_ERROR:
            state = engine_error(&e);
            break;
        case ES_DONE:
            break;
        }
    }
    struct sk_shared *sh = e.sh;
    sh->outcome = e.outcome;
    atomic_store(&sh->engine_done, 1);
    if (!e.rt->supervised) /* no supervisor to say it when it exits */
        sk_channel_close_to_parent(e.rt);
    /* The parent flushed its stdio before forking, so what is buffered now
     * is the hooks' own output. */
    fflush(NULL);
    sk_child_exit(0);
}
