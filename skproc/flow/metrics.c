/* SPDX-License-Identifier: MIT */
/*
 * A flow's metrics as a snapshot: the parent's own counts and latencies,
 * and what every step process keeps in its slot (counters, the handle and
 * queue-wait timers), summed per step.
 *
 * The slots are memory the steps can write. Their counts are read as
 * numbers and never index anything; their timers are merged with
 * sk_timer_merge, which bounds every index it takes from them. A hostile
 * step can make its own numbers wrong, nothing more.
 */
#include "flow/flow_internal.h"

#include "core/error.h"
#include "os/clock.h"

#include <stdlib.h>
#include <string.h>

/* What a snapshot owns: its step entries and every timer they point at. */
struct metrics_block {
    struct sk_timer latency;
    sk_flow_step_metrics steps[FLOW_MAX_STEPS];
    struct sk_timer timers[]; /* handle, queue wait: two per step */
};

static uint64_t load(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* Step s's sums over its processes' slots. */
static void read_step(struct sk_flow *f, int s, sk_flow_step_metrics *m, struct sk_timer *handle,
                      struct sk_timer *queue_wait)
{
    struct sk_flow_step *st = &f->steps[s];
    const char *name = st->user->cls->name;
    m->name = name != NULL ? name : "step";
    m->index = s;
    m->processes = st->processes;
    for (int p = 0; p < st->processes; p++) {
        struct flow_proc *fp = &st->procs[p];
        struct flow_slot *slot = flow_slot_of(f, fp->global);
        m->tasks_in += load(&slot->tasks_in);
        m->tasks_out += load(&slot->tasks_out);
        m->tasks_failed += load(&slot->tasks_failed);
        m->tasks_skipped += load(&slot->tasks_skipped);
        m->batches += load(&slot->batches);
        for (int b = 0; b < SK_FLOW_BATCH_BINS; b++)
            m->batch_sizes[b] += load(&slot->batch_bins[b]);
        m->restarts += (uint64_t)sk_restarts(&fp->base);
        sk_timer_merge(handle, &slot->handle_timer);
        sk_timer_merge(queue_wait, &slot->queue_timer);
    }
    m->handle = handle;
    m->queue_wait = queue_wait;
}

int sk_flow_metrics_read(sk_flow *f, sk_flow_metrics *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (f == NULL || out == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_metrics_read: flow and out are required");
    pthread_mutex_lock(&f->lock);
    if (!f->started || f->procs == NULL || f->latency == NULL) {
        pthread_mutex_unlock(&f->lock);
        return sk_refuse(SK_ESTATE, "sk_flow_metrics_read: the flow has not started");
    }
    struct metrics_block *mb =
        calloc(1, sizeof *mb + 2 * (size_t)f->n_steps * sizeof(struct sk_timer));
    if (mb == NULL) {
        pthread_mutex_unlock(&f->lock);
        return SK_ENOMEM;
    }
    for (int s = 0; s < f->n_steps; s++)
        read_step(f, s, &mb->steps[s], &mb->timers[2 * s], &mb->timers[2 * s + 1]);
    /* Waiting in a step's input: what the step before passed on (the
     * parent, for step 0) and the step has not taken yet. */
    uint64_t into = f->sent;
    for (int s = 0; s < f->n_steps; s++) {
        sk_flow_step_metrics *m = &mb->steps[s];
        m->queue_depth = into > m->tasks_in ? into - m->tasks_in : 0;
        into = m->tasks_out;
    }
    sk_timer_merge(&mb->latency, f->latency);
    out->steps = f->n_steps;
    out->step = mb->steps;
    out->submitted = f->submitted;
    out->completed = f->completed;
    out->failed = f->failed;
    out->in_flight = f->in_flight;
    int64_t since = f->started_ns > 0 ? f->started_ns : sk_now_ns();
    out->elapsed = (double)(sk_now_ns() - since) / 1e9;
    out->throughput =
        out->elapsed > 0 ? (double)(out->completed + out->failed) / out->elapsed : 0.0;
    out->latency = &mb->latency;
    out->impl = mb;
    pthread_mutex_unlock(&f->lock);
    return SK_OK;
}

void sk_flow_metrics_free(sk_flow_metrics *m)
{
    if (m == NULL)
        return;
    free(m->impl);
    memset(m, 0, sizeof *m);
}
