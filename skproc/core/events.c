/* SPDX-License-Identifier: MIT */
/*
 * Recoveries and events.
 *
 * Recoveries: every failed attempt that is retried (a soft error in a loop
 * hook with lives left, recorded by the worker; a hard fault with lives
 * left, recorded by the supervisor) is counted in sh->spent_count and, for
 * the first SK_MAX_SPENT_ERRORS, kept in sh->spent. The supervisor counts
 * the workers it starts after hard faults in sh->restarts. The parent copies
 * all of it once, when the process has finished.
 *
 * Events: the worker (START or RESTART when it begins, FAILURE when a hook
 * fails, READY when a hook calls sk_ready) and the supervisor (TIMEOUT, CRASH, after it reaped the
 * worker) append to a log of SK_EVENT_LOG entries; the parent delivers the entries it has not
 * delivered yet whenever the user calls into the handle, and makes KILL and FINISH (and START,
 * CRASH of an unsupervised worker) itself.
 *
 * Trust: the worker can write every byte of the spent errors, the counters
 * and the log. The parent clamps every count to what the process could have
 * had (lives, the log's size), passes every error through sk_error_sanitize,
 * drops a log entry whose kind is not one the log holds or whose stamp is
 * not the event's number, and delivers at most SK_EVENT_LOG entries per call: a forged counter
 * costs at most those events, never a read outside the page or an endless loop.
 */
#include "core/events.h"
#include "core/handle.h"

#include "core/error.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/futex.h"
#include "os/proc.h"

#include <stdlib.h>
#include <string.h>

const char *sk_event_name(sk_event_kind kind)
{
    switch (kind) {
    case SK_EVENT_START:
        return "start";
    case SK_EVENT_RESTART:
        return "restart";
    case SK_EVENT_TIMEOUT:
        return "timeout";
    case SK_EVENT_CRASH:
        return "crash";
    case SK_EVENT_FAILURE:
        return "failure";
    case SK_EVENT_KILL:
        return "kill";
    case SK_EVENT_FINISH:
        return "finish";
    case SK_EVENT_READY:
        return "ready";
    }
    return "unknown";
}

/* ------------------------------------------------- worker, supervisor */

void sk_event_log(struct sk_runtime *rt, sk_event_kind kind, int section, long run, pid_t pid,
                  const sk_error *err)
{
    struct sk_shared *sh = rt->sh;
    uint32_t k = atomic_load_explicit(&sh->events_written, memory_order_relaxed);
    struct sk_logged_event *e = &sh->events[k % SK_EVENT_LOG];
    atomic_store_explicit(&e->stamp, k - 1, memory_order_relaxed); /* being written */
    atomic_thread_fence(memory_order_release);
    e->kind = (int)kind;
    e->section = section;
    e->run = run;
    e->pid = pid;
    e->has_error = err != NULL;
    if (err != NULL)
        e->error = *err;
    atomic_store_explicit(&e->stamp, k, memory_order_release);
    atomic_store_explicit(&sh->events_written, k + 1, memory_order_release);
    if (kind == SK_EVENT_START || kind == SK_EVENT_RESTART)
        sk_futex_wake_all(&sh->events_written); /* sk_start may wait for it */
    if (rt->event_doorbell >= 0)
        sk_doorbell_ring(rt->event_doorbell); /* sk_wait may wait for it */
}

void sk_spent_record(struct sk_shared *sh, const sk_error *err)
{
    int n = atomic_load(&sh->spent_count);
    if (n < 0)
        n = 0; /* scribbled: never index with it */
    if (n < SK_MAX_SPENT_ERRORS)
        sh->spent[n] = *err;
    if (n < INT32_MAX)
        atomic_store(&sh->spent_count, n + 1);
}

/* ------------------------------------------------------------- parent */

static int clamp(long v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : (int)v;
}

void sk_event_emit(struct sk_runtime *rt, sk_event_kind kind, pid_t pid, int section, long run,
                   const sk_error *err)
{
    if (rt->config.on_event == NULL)
        return;
    if (pid > 0 && (kind == SK_EVENT_START || kind == SK_EVENT_RESTART))
        rt->event_pid = pid;
    sk_event ev = {.kind = kind,
                   .pid = pid > 0 ? pid : -1,
                   .section = (sk_section)section,
                   .run = run < 0 ? 0 : run,
                   .error = err,
                   .item = -1,
                   .worker = -1};
    rt->config.on_event(&ev, rt->config.event_ctx);
}

/* Copies entry k of the log into *out; false if the writer overwrote it
 * (or was overwriting it) meanwhile, or a worker forged its stamp. */
static bool copy_entry(const struct sk_shared *sh, uint32_t k, struct sk_logged_event *out)
{
    const struct sk_logged_event *e = &sh->events[k % SK_EVENT_LOG];
    if (atomic_load_explicit(&e->stamp, memory_order_acquire) != k)
        return false;
    memcpy(out, e, sizeof *out);
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&e->stamp, memory_order_relaxed) == k;
}

/* One entry copied out of the log, checked and delivered. */
static void deliver_entry(struct sk_runtime *rt, struct sk_logged_event *e)
{
    switch (e->kind) {
    case SK_EVENT_START:
    case SK_EVENT_RESTART:
    case SK_EVENT_TIMEOUT:
    case SK_EVENT_CRASH:
    case SK_EVENT_FAILURE:
        break;
    case SK_EVENT_READY:
        /* Once per run, and only where a hook can say it: a forged or
         * repeated entry is dropped. */
        if (rt->ready_delivered || rt->spawn != NULL || rt->config.ready != SK_READY_ON_NOTIFY)
            return;
        rt->ready_delivered = true;
        rt->ready = true; /* logged before the flag: the worker said so */
        break;
    default:
        return; /* not a kind the log holds: corrupt, dropped */
    }
    if (e->section < SK_NO_SECTION || e->section >= SK_SECTION_COUNT)
        e->section = SK_NO_SECTION;
    const sk_error *err = NULL;
    if (e->has_error) {
        sk_error_sanitize(&e->error);
        if (e->error.item < -1)
            e->error.item = -1;
        err = &e->error;
    }
    sk_event_emit(rt, (sk_event_kind)e->kind, e->pid, e->section, e->run, err);
}

/* Every entry not delivered yet is copied out first and only then handed
 * to the callback: a callback that takes its time would otherwise let the
 * worker lap the log under the entries still to come. The writer overwrites
 * the oldest first, so what it overwrote during the copy is a prefix; the
 * delivered events stay consecutive and end with the newest. */
void sk_events_deliver(struct sk_runtime *rt)
{
    if (rt->config.on_event == NULL || rt->sh == NULL)
        return;
    if (rt->event_copy == NULL) {
        rt->event_copy = malloc(SK_EVENT_LOG * sizeof *rt->event_copy);
        if (rt->event_copy == NULL)
            return; /* delivered on a later call, or lost as the log moves on */
    }
    struct sk_shared *sh = rt->sh;
    uint32_t written = atomic_load_explicit(&sh->events_written, memory_order_acquire);
    uint32_t ahead = written - rt->events_delivered;
    if (ahead > UINT32_MAX / 2)
        return;               /* went backwards: forged; wait until it passes us again */
    if (ahead > SK_EVENT_LOG) /* the oldest were overwritten: lost */
        ahead = SK_EVENT_LOG;
    uint32_t first = written - ahead;
    uint32_t valid = ahead; /* the entries after the last one overwritten */
    for (uint32_t i = 0; i < ahead; i++)
        if (!copy_entry(sh, first + i, &rt->event_copy[i]))
            valid = ahead - i - 1;
    rt->events_delivered = written;
    for (uint32_t i = ahead - valid; i < ahead; i++)
        deliver_entry(rt, &rt->event_copy[i]);
}

void sk_events_await_start(struct sk_runtime *rt)
{
    struct sk_shared *sh = rt->sh;
    int64_t deadline = sk_now_ns() + SK_NS_PER_SEC;
    for (;;) {
        uint32_t seen = atomic_load(&sh->events_written);
        if (seen != 0 || sk_pid_exited(rt->child_pid))
            break;
        int64_t now = sk_now_ns();
        if (now >= deadline)
            break;
        int64_t slice = deadline - now < 10 * 1000 * 1000 ? deadline - now : 10 * 1000 * 1000;
        struct timespec ts = sk_ns_to_timespec(slice);
        sk_futex_wait(&sh->events_written, seen, &ts);
    }
    sk_events_deliver(rt);
}

void sk_events_finish(struct sk_runtime *rt)
{
    if (rt->finish_delivered)
        return;
    rt->finish_delivered = true;
    if (rt->config.on_event == NULL)
        return;
    sk_events_deliver(rt);
    const sk_error *err = rt->has_error ? &rt->error : NULL;
    long run = rt->sh != NULL ? atomic_load(&rt->sh->current_run) : 0;
    sk_event_emit(rt, SK_EVENT_FINISH, rt->event_pid, err ? (int)err->section : SK_NO_SECTION,
                  err ? err->run : run, err);
}

void sk_recovery_copy(struct sk_runtime *rt)
{
    struct sk_shared *sh = rt->sh;
    int lives = rt->config.lives;
    rt->spent_total = clamp(atomic_load(&sh->spent_count), 0, lives - 1);
    rt->attempts = 1 + rt->spent_total;
    rt->restarts = clamp(atomic_load(&sh->restarts), 0, lives);
    int kept = rt->spent_total < SK_MAX_SPENT_ERRORS ? rt->spent_total : SK_MAX_SPENT_ERRORS;
    for (int i = 0; i < kept; i++) {
        memcpy(&rt->spent[i], &sh->spent[i], sizeof rt->spent[i]);
        sk_error_sanitize(&rt->spent[i]);
    }
    rt->recovery_copied = true;
}

/* -------------------------------------------------------- public views */

static const struct sk_runtime *parent_rt(const sk_process *p)
{
    if (!sk_handle_sealed(p) || p->rt->role != SK_ROLE_PARENT || !p->rt->started)
        return NULL;
    return p->rt;
}

int sk_attempts(const sk_process *p)
{
    const struct sk_runtime *rt = parent_rt(p);
    if (rt == NULL)
        return 0;
    if (rt->recovery_copied)
        return rt->attempts;
    if (rt->sh == NULL)
        return 0;
    return 1 + clamp(atomic_load(&rt->sh->spent_count), 0, rt->config.lives - 1);
}

int sk_restarts(const sk_process *p)
{
    const struct sk_runtime *rt = parent_rt(p);
    if (rt == NULL)
        return 0;
    if (rt->recovery_copied)
        return rt->restarts;
    if (rt->sh == NULL)
        return 0;
    return clamp(atomic_load(&rt->sh->restarts), 0, rt->config.lives);
}

int sk_spent_error_count(const sk_process *p)
{
    const struct sk_runtime *rt = parent_rt(p);
    if (rt == NULL || !rt->recovery_copied)
        return 0;
    return rt->spent_total < SK_MAX_SPENT_ERRORS ? rt->spent_total : SK_MAX_SPENT_ERRORS;
}

int sk_spent_errors_dropped(const sk_process *p)
{
    const struct sk_runtime *rt = parent_rt(p);
    if (rt == NULL || !rt->recovery_copied)
        return 0;
    return rt->spent_total > SK_MAX_SPENT_ERRORS ? rt->spent_total - SK_MAX_SPENT_ERRORS : 0;
}

const sk_error *sk_spent_error(const sk_process *p, int i)
{
    if (i < 0 || i >= sk_spent_error_count(p))
        return NULL;
    return &p->rt->spent[i];
}
