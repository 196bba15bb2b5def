/* SPDX-License-Identifier: MIT */
/*
 * A flow, the parent's side: the arena, the steps' processes, the table of
 * tasks in flight, submit and collect, and how the flow ends.
 *
 * The table. Every task submitted takes one of queue_size slots until the
 * user collects it: that is the flow's only bound, and since every ring is
 * sized for queue_size tasks, a producer never waits on a full ring (only a
 * hostile reader can make it) and no cycle of waits can form. A record
 * coming out names its slot and id; it is believed only when that slot
 * holds that very id, queued: a late, repeated or forged record is dropped.
 *
 * How it ends (flow state, the parent's own copy in f->ended/f->has_error):
 *
 *   event                          parent does
 *   sk_flow_close                  closes the rings into step 0
 *   a slot says finish             closes the rings into step 0 (no more input)
 *   a slot says error              records it, the processes leave at once,
 *                                  ends the flow: queued tasks fail SK_ECLOSED
 *   a process ended for good       as an error, from its sk_error
 *   every ring into us closed      ends the flow: queued tasks fail SK_ECLOSED
 *   sk_flow_stop                   state STOPPING, drain for stop_timeout, kill
 */
#include "flow/flow_internal.h"

#include "codec/message.h"
#include "core/error.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/shm.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FLOW_SLICE_NS (10 * 1000 * 1000) /* the longest sleep between two looks at the steps */
#define FLOW_DEFAULT_START_TIMEOUT 30.0
#define FLOW_DEFAULT_STOP_TIMEOUT 5.0
#define FLOW_SESSION_PREFIX "skflow"
#define FLOW_DEFAULT_RESTARTS 16
#define FLOW_DEFAULT_IMAGE 1024
#define FLOW_PROC_CAPACITY 4096 /* a step process's own channel: unused, kept small */

/* --------------------------------------------------------------- fifo */

static int fifo_init(struct flow_fifo *q, size_t cap)
{
    q->refs = calloc(cap, sizeof *q->refs);
    q->cap = cap;
    q->head = q->len = 0;
    return q->refs != NULL ? SK_OK : SK_ENOMEM;
}

static void fifo_push(struct flow_fifo *q, uint32_t slot, uint64_t id)
{
    q->refs[(q->head + q->len) % q->cap] = (struct flow_ref){.id = id, .slot = slot};
    q->len++;
}

static struct flow_ref *fifo_front(struct flow_fifo *q)
{
    return q->len > 0 ? &q->refs[q->head] : NULL;
}

static void fifo_pop(struct flow_fifo *q)
{
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

/* ----------------------------------------------------------- create/add */

int sk_flow_create(sk_flow **out, const sk_flow_config *cfg)
{
    if (out == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_create: flow is NULL");
    *out = NULL;
    if (cfg == NULL || cfg->task_size == 0 || cfg->task_size > FLOW_MAX_TASK)
        return sk_refuse(SK_EINVAL, "sk_flow_create: config.task_size must be 1 to %zu bytes",
                         FLOW_MAX_TASK);
    if (cfg->queue_size > FLOW_MAX_QUEUE)
        return sk_refuse(SK_EINVAL, "sk_flow_create: config.queue_size is over %zu",
                         FLOW_MAX_QUEUE);
    const char *prefix = cfg->session_prefix != NULL ? cfg->session_prefix : FLOW_SESSION_PREFIX;
    if (prefix[0] == '\0' || strchr(prefix, '/') != NULL ||
        strlen(prefix) > SK_SESSION_DIR_PREFIX_MAX)
        return sk_refuse(SK_EINVAL,
                         "sk_flow_create: config.session_prefix must be 1 to %d characters "
                         "without '/'",
                         SK_SESSION_DIR_PREFIX_MAX);
    struct sk_flow *f = calloc(1, sizeof *f);
    if (f == NULL)
        return SK_ENOMEM;
    f->config = *cfg;
    snprintf(f->session_prefix, sizeof f->session_prefix, "%s", prefix);
    f->config.session_prefix = f->session_prefix;
    f->session.janitor = -1;
    f->session.janitor_pidfd = f->session.keepalive_fd = -1;
    if (f->config.start_timeout <= 0)
        f->config.start_timeout = FLOW_DEFAULT_START_TIMEOUT;
    if (f->config.stop_timeout <= 0)
        f->config.stop_timeout = FLOW_DEFAULT_STOP_TIMEOUT;
    f->task_size = cfg->task_size;
    f->wire_size = cfg->task_size;
    if (cfg->format != NULL) {
        if (strlen(cfg->format) >= sizeof f->format ||
            sk_msg_check_one(cfg->format, cfg->task_size) != SK_OK) {
            free(f);
            return sk_refuse(SK_EINVAL,
                             "sk_flow_create: config.format \"%s\" is not a tpl format of one "
                             "record of task_size (%zu) bytes",
                             cfg->format, cfg->task_size);
        }
        snprintf(f->format, sizeof f->format, "%s", cfg->format);
        f->tpl = strpbrk(cfg->format, "sB") != NULL;
    }
    if (f->tpl) {
        size_t image = cfg->image_size > 0 ? cfg->image_size : FLOW_DEFAULT_IMAGE;
        if (image > FLOW_MAX_TASK) {
            free(f);
            return sk_refuse(SK_EINVAL, "sk_flow_create: config.image_size is over %zu",
                             FLOW_MAX_TASK);
        }
        f->wire_size = flow_align_up(sizeof(uint32_t) + image, 8);
    }
    f->entry_size = flow_align_up(sizeof(struct flow_entry) + f->wire_size, 8);
    f->memfd = -1;
    f->doorbell = f->poll_fd = f->timer_fd = -1;
    f->payload_fd = -1;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->changed, &ca);
    pthread_condattr_destroy(&ca);
    if (cfg->payload_area > 0) {
        int rc = flow_payload_area_create(f, cfg->payload_area);
        if (rc != SK_OK) {
            sk_flow_release(f);
            return rc;
        }
    }
    *out = f;
    return SK_OK;
}

/* The limits of a step's config: checked by sk_flow_add, and again by
 * sk_flow_start (the config may change until then). */
static bool step_config_ok(const sk_step_config *c)
{
    return c->processes <= FLOW_MAX_PROCESSES && c->batch_size <= FLOW_MAX_BATCH;
}

int sk_flow_add(sk_flow *f, sk_step *step)
{
    if (f == NULL || step == NULL || step->cls == NULL || step->cls->handle == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_add: a flow and a step with sk_step_init'ed "
                                    "class (with a handle hook) are needed");
    if (f->started)
        return sk_refuse(SK_ESTATE, "sk_flow_add: the flow has started");
    if (f->n_steps == FLOW_MAX_STEPS)
        return sk_refuse(SK_EINVAL, "sk_flow_add: a flow has at most %d steps", FLOW_MAX_STEPS);
    for (int i = 0; i < f->n_steps; i++)
        if (f->steps[i].user == step)
            return sk_refuse(SK_EINVAL, "sk_flow_add: that step is already in the flow");
    if (!step_config_ok(&step->config))
        return sk_refuse(SK_EINVAL,
                         "sk_flow_add: a step has at most %d processes and batches of at most "
                         "%d tasks",
                         FLOW_MAX_PROCESSES, FLOW_MAX_BATCH);
    struct sk_flow_step *st = &f->steps[f->n_steps];
    memset(st, 0, sizeof *st);
    st->user = step;
    st->flow = f;
    st->index = f->n_steps++;
    step->impl = st;
    return SK_OK;
}

/* ---------------------------------------------------------------- start */

/* The settings of every step, frozen with their defaults. */
static void freeze_steps(struct sk_flow *f)
{
    size_t most_batch = 1;
    int most_procs = 1;
    for (int i = 0; i < f->n_steps; i++) {
        struct sk_flow_step *st = &f->steps[i];
        const sk_step_config *c = &st->user->config;
        st->processes = c->processes > 0 ? c->processes : 1;
        st->batch = c->batch_size > 0 ? c->batch_size : 1;
        st->batch_timeout_ns = c->batch_timeout > 0 ? sk_seconds_to_ns(c->batch_timeout) : 0;
        st->lives = c->lives > 0 ? c->lives : 1;
        if (st->batch > most_batch)
            most_batch = st->batch;
        if (st->processes > most_procs)
            most_procs = st->processes;
        f->n_procs += st->processes;
    }
    f->queue = f->config.queue_size;
    if (f->queue == 0) {
        /* Enough frames in flight that no step waits for the one before
         * it: 32 batches over the whole flow (1 step of 64: 2048 tasks,
         * 3.5x the throughput of 4 batches), 4 per process at least. */
        f->queue = 32 * most_batch;
        if (f->queue < 4 * most_batch * (size_t)most_procs)
            f->queue = 4 * most_batch * (size_t)most_procs;
        if (f->queue < 256)
            f->queue = 256;
        if (f->queue > FLOW_MAX_QUEUE)
            f->queue = FLOW_MAX_QUEUE;
    }
}

static int procs_create(struct sk_flow *f)
{
    f->procs = calloc((size_t)f->n_procs, sizeof *f->procs);
    if (f->procs == NULL)
        return SK_ENOMEM;
    for (int g = 0; g < f->n_procs; g++)
        f->procs[g].doorbell = f->procs[g].wake_pidfd = -1;
    int g = 0;
    for (int s = 0; s < f->n_steps; s++) {
        struct sk_flow_step *st = &f->steps[s];
        const sk_step_config *c = &st->user->config;
        st->procs = &f->procs[g];
        for (int p = 0; p < st->processes; p++, g++) {
            struct flow_proc *fp = &f->procs[g];
            fp->flow = f;
            fp->step = s;
            fp->index = p;
            fp->global = g;
            int rc = sk_init(&fp->base, &flow_proc_class);
            if (rc != SK_OK)
                return rc;
            sk_config *pc = &fp->base.config;
            pc->runs = 1;
            int restarts = c->restarts > 0 ? c->restarts : FLOW_DEFAULT_RESTARTS;
            pc->lives = c->crash_stops_flow ? 1 : restarts + 1;
            pc->timeouts.prerun = c->timeouts.start;
            pc->timeouts.run = c->timeouts.handle;
            pc->timeouts.onfinish = c->timeouts.stop;
            pc->supervise = true;
            pc->capacity = FLOW_PROC_CAPACITY;
            pc->max_message = FLOW_PROC_CAPACITY / 2;
        }
    }
    return SK_OK;
}

static const char *step_name(const struct sk_flow *f, int s)
{
    const char *n = s >= 0 && s < f->n_steps ? f->steps[s].user->cls->name : NULL;
    return n != NULL ? n : "step";
}

/* The flow's error, from a process: where it happened is the parent's own
 * knowledge (the slot), what happened is the process's word, sanitized. */
static void set_error(struct sk_flow *f, int g, const sk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(struct sk_flow *f, int g, const sk_error *err, const char *fmt, ...)
{
    if (f->has_error)
        return;
    f->has_error = true;
    sk_flow_result *r = &f->error;
    memset(r, 0, sizeof *r);
    r->status = SK_EPROCESS;
    r->step = g >= 0 ? f->procs[g].step : -1;
    r->process = g >= 0 ? f->procs[g].index : -1;
    if (err != NULL) {
        r->error = *err;
        sk_error_sanitize(&r->error);
    } else {
        r->error.kind = SK_PROCESS_ERROR;
        r->error.reason = SK_EPROCESS;
    }
    r->error.item = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error.message, sizeof r->error.message, fmt, ap);
    va_end(ap);
}

/* No more input: the rings into step 0 close. */
static void close_input(struct sk_flow *f)
{
    f->closed = true;
    int consumers = flow_edge_consumers(f, 0);
    for (int c = 0; c < consumers; c++) {
        struct flow_ring *r = flow_ring_of(f, 0, 0, c, consumers);
        sk_ring_close(&r->writer.out, r->writer.out_doorbell);
    }
    pthread_cond_broadcast(&f->changed);
}

/* What a process's slot says about the flow (under the lock). */
static void read_statuses(struct sk_flow *f)
{
    for (int g = 0; g < f->n_procs; g++) {
        struct flow_slot *slot = flow_slot_of(f, g);
        uint32_t status = atomic_load_explicit(&slot->status, memory_order_acquire);
        if (status == FLOW_STATUS_NONE)
            continue;
        struct flow_proc *fp = &f->procs[g];
        if (status == FLOW_STATUS_ERROR && !f->has_error) {
            sk_error e = {.kind = SK_RUN_ERROR, .reason = SK_EPROCESS, .item = -1};
            memcpy(e.cause, slot->message, sizeof slot->message);
            e.cause[sizeof slot->message - 1] = '\0';
            set_error(f, g, &e, "Error status from step '%s' (process %d)", step_name(f, fp->step),
                      fp->index);
        } else if (status == FLOW_STATUS_FINISH && !f->closed) {
            close_input(f); /* the finishing step forwards what it has; no more input */
        }
    }
}

/* ------------------------------------------------------------ the table */

/* The task in slot is done. now > 0: it came out of the last step then
 * (its latency counts). */
static void finish_task(struct sk_flow *f, uint32_t slot, int status, int64_t now)
{
    struct flow_task *t = &f->tasks[slot];
    t->state = FLOW_TASK_DONE;
    t->status = status;
    if (t->deadline_ns != INT64_MAX)
        f->deadlines--;
    f->in_flight--;
    if (status == SK_OK)
        f->completed++;
    else
        f->failed++;
    if (now > 0)
        sk_timer_add(f->latency, now - t->submitted_ns);
    if (!f->config.ordered)
        fifo_push(&f->order, slot, t->id);
}

/* The task in slot is done with a failure; r says why (copied: a failure
 * is rare, so only failures carry the weight of an sk_flow_result). */
static void fail_task(struct sk_flow *f, uint32_t slot, int status, const sk_flow_result *r,
                      int64_t now)
{
    struct flow_task *t = &f->tasks[slot];
    t->failure = malloc(sizeof *t->failure);
    if (t->failure != NULL) {
        *t->failure = *r;
        t->failure->id = t->id;
        t->failure->status = status;
        t->failure->error.item = (long)(t->id & 0x7fffffffffffffffULL);
    }
    finish_task(f, slot, status, now);
}

/* The task in slot did not come out by its deadline: it fails with
 * SK_ETIMEDOUT (a result that comes later is dropped). */
static void time_out_task(struct sk_flow *f, uint32_t slot)
{
    const struct flow_task *t = &f->tasks[slot];
    sk_flow_result result, *r = &result;
    memset(r, 0, sizeof *r);
    r->step = r->process = -1;
    r->error.kind = SK_TIMEOUT_ERROR;
    r->error.reason = SK_ETIMEDOUT;
    r->error.timeout = (double)(t->deadline_ns - t->submitted_ns) / 1e9;
    r->error.item = (long)(t->id & 0x7fffffffffffffffULL);
    snprintf(r->error.message, sizeof r->error.message, "task %llu did not come out within %.3gs",
             (unsigned long long)t->id, r->error.timeout);
    fail_task(f, slot, SK_ETIMEDOUT, r, 0);
}

/* The task in slot came out of the last step with a record that is not an
 * image of the flow's format (a forged or broken one): it fails with
 * SK_ECORRUPT. */
static void corrupt_task(struct sk_flow *f, uint32_t slot)
{
    sk_flow_result result, *r = &result;
    memset(r, 0, sizeof *r);
    r->step = f->n_steps - 1;
    r->process = -1;
    r->error.kind = SK_PROCESS_ERROR;
    r->error.reason = SK_ECORRUPT;
    snprintf(r->error.message, sizeof r->error.message,
             "task %llu came out of step '%.64s' with a record that is not a valid image of "
             "\"%.64s\"",
             (unsigned long long)f->tasks[slot].id, step_name(f, f->n_steps - 1), f->format);
    fail_task(f, slot, SK_ECORRUPT, r, 0);
}

/* Whether (slot, id) names a task still queued. */
static bool queued(const struct sk_flow *f, uint64_t id, uint32_t slot)
{
    return slot < f->queue && f->tasks[slot].state == FLOW_TASK_QUEUED && f->tasks[slot].id == id;
}

static void take_failure(struct sk_flow *f, const unsigned char *p, int64_t now)
{
    struct flow_entry e;
    struct flow_failure why;
    memcpy(&e, p, sizeof e);
    memcpy(&why, p + sizeof e, sizeof why);
    if (!queued(f, e.id, e.slot)) {
        f->late++;
        return;
    }
    sk_flow_result result, *r = &result;
    memset(r, 0, sizeof *r);
    r->step = why.step >= 0 && why.step < f->n_steps ? why.step : -1;
    r->process = r->step >= 0 && why.process >= 0 && why.process < f->steps[r->step].processes
                     ? why.process
                     : -1;
    r->error.kind = (sk_error_kind)why.kind;
    r->error.section = (sk_section)why.section;
    r->error.code = why.code;
    r->error.reason = why.reason;
    r->error.signal = why.signal;
    r->error.exit_status = why.exit_status;
    r->error.timeout = why.timeout;
    r->error.lives_spent = why.lives_spent;
    memcpy(r->error.message, why.message, sizeof why.message);
    memcpy(r->error.cause, why.cause, sizeof why.cause);
    sk_error_sanitize(&r->error);
    fail_task(f, e.slot, SK_EPROCESS, r, now);
}

/* One frame from the last step: every entry checked against the table. */
static void take_frame(struct sk_flow *f, const unsigned char *p, size_t len, int64_t now)
{
    struct flow_frame fr;
    if (len < sizeof fr) {
        f->corrupt++;
        return;
    }
    memcpy(&fr, p, sizeof fr);
    p += sizeof fr;
    len -= sizeof fr;
    if (fr.kind == FLOW_FRAME_FAILED) {
        if (fr.count != 1 || len != sizeof(struct flow_entry) + sizeof(struct flow_failure)) {
            f->corrupt++;
            return;
        }
        take_failure(f, p, now);
        return;
    }
    if (fr.kind != FLOW_FRAME_TASKS || fr.count == 0 || len / f->entry_size < fr.count ||
        len != (size_t)fr.count * f->entry_size) {
        f->corrupt++;
        return;
    }
    for (uint32_t i = 0; i < fr.count; i++, p += f->entry_size) {
        struct flow_entry e;
        memcpy(&e, p, sizeof e);
        if (!queued(f, e.id, e.slot)) {
            f->late++;
            continue;
        }
        if (f->tasks[e.slot].deadline_ns <= now) { /* came, but after its deadline */
            f->late++;
            time_out_task(f, e.slot);
            continue;
        }
        if (flow_record_check(f, p + sizeof e) != SK_OK) {
            f->corrupt++;
            corrupt_task(f, e.slot);
            continue;
        }
        memcpy(f->records + (size_t)e.slot * f->wire_size, p + sizeof e, f->wire_size);
        finish_task(f, e.slot, SK_OK, now);
    }
}

/* Takes everything the last step has published (under the lock). True
 * when something came. */
static bool pull_outputs(struct sk_flow *f)
{
    bool got = false;
    int64_t now = 0;
    int producers = flow_edge_producers(f, f->n_steps);
    for (int p = 0; p < producers; p++) {
        struct flow_ring *r = flow_ring_of(f, f->n_steps, p, 0, 1);
        for (int guard = 0; guard < 1 << 16; guard++) {
            const void *payload;
            size_t len;
            int rc = sk_ring_try_peek(&r->reader, &payload, &len);
            if (rc == SK_ECORRUPT) {
                f->corrupt++;
                continue;
            }
            if (rc != SK_OK)
                break;
            if (now == 0)
                now = sk_now_ns(); /* one clock read per pull: the latencies' end */
            take_frame(f, payload, len, now);
            sk_ring_consume(&r->reader);
            got = true;
        }
    }
    if (got && f->news_waiters > 0)
        sk_doorbell_ring(f->doorbell); /* another thread waits for what this one took */
    return got;
}

/* Every ring into the parent is closed and empty. */
static bool outputs_ended(struct sk_flow *f)
{
    int producers = flow_edge_producers(f, f->n_steps);
    for (int p = 0; p < producers; p++) {
        struct flow_ring *r = flow_ring_of(f, f->n_steps, p, 0, 1);
        const void *payload;
        size_t len;
        if (sk_ring_try_peek(&r->reader, &payload, &len) != SK_ECLOSED)
            return false;
    }
    return true;
}

/* The flow is over: what is still queued fails. */
static void end_flow(struct sk_flow *f)
{
    if (f->ended)
        return;
    f->ended = true;
    f->closed = true;
    sk_flow_result result, *r = &result;
    for (uint32_t s = 0; s < f->queue; s++) {
        if (f->tasks[s].state != FLOW_TASK_QUEUED)
            continue;
        if (f->has_error) {
            *r = f->error;
        } else {
            memset(r, 0, sizeof *r);
            r->step = r->process = -1;
            r->error.kind = SK_PROCESS_ERROR;
            r->error.reason = SK_ECLOSED;
            snprintf(r->error.message, sizeof r->error.message,
                     "the flow ended before task %llu came out",
                     (unsigned long long)f->tasks[s].id);
        }
        fail_task(f, s, SK_ECLOSED, r, 0);
    }
    pthread_cond_broadcast(&f->changed);
    sk_doorbell_ring(f->doorbell);
}

/* Processes that ended for good before closing their outputs fail the flow. */
/* Whether every ring out of fp is closed: what the parent itself sees of
 * a process that reached its end of stream (not a word the process wrote
 * in its slot, which a dying process could forge). */
static bool proc_outputs_closed(struct sk_flow *f, const struct flow_proc *fp)
{
    int edge = fp->step + 1;
    int consumers = flow_edge_consumers(f, edge);
    for (int c = 0; c < consumers; c++)
        if (!sk_ring_closed(&flow_ring_of(f, edge, fp->index, c, consumers)->reader.in))
            return false;
    return true;
}

static void check_processes(struct sk_flow *f)
{
    for (int g = 0; g < f->n_procs; g++) {
        struct flow_proc *fp = &f->procs[g];
        if (proc_outputs_closed(f, fp) || sk_alive(&fp->base))
            continue;
        if (f->has_error || f->ended)
            return;
        sk_wait(&fp->base, 1.0); /* ended: reaps it, and its error is known */
        const sk_error *err = sk_error_of(&fp->base);
        set_error(f, g, err, "Step '%s' (process %d) ended: %s", step_name(f, fp->step), fp->index,
                  err != NULL ? err->message : "killed");
    }
}

/* Tasks whose own timeout passed fail with SK_ETIMEDOUT; the flow's timer
 * is armed for the earliest deadline left. */
static void expire_tasks(struct sk_flow *f, int64_t now)
{
    if (f->deadlines == 0 || now < f->next_deadline_scan)
        return;
    f->next_deadline_scan = now + 1000 * 1000;
    int64_t next = INT64_MAX;
    for (uint32_t s = 0; s < f->queue && f->deadlines > 0; s++) {
        struct flow_task *t = &f->tasks[s];
        if (t->state != FLOW_TASK_QUEUED || t->deadline_ns == INT64_MAX)
            continue;
        if (t->deadline_ns <= now)
            time_out_task(f, s);
        else if (t->deadline_ns < next)
            next = t->deadline_ns;
    }
    if (next != INT64_MAX && next != f->timer_at) {
        f->timer_at = INT64_MAX;
        flow_wakeup_arm(f, next);
    }
}

/* Everything the parent looks at between two waits (under the lock). */
static void advance(struct sk_flow *f, bool deep)
{
    bool got = pull_outputs(f);
    if (f->ended)
        return;
    int64_t now = f->deadlines > 0 || deep ? sk_now_ns() : 0;
    if (f->deadlines > 0)
        expire_tasks(f, now);
    if (deep) {
        read_statuses(f);
        /* Whether a process ended for good costs a system call each:
         * looked at once per slice. */
        if (!f->has_error && now >= f->next_process_check) {
            f->next_process_check = now + FLOW_SLICE_NS;
            check_processes(f);
        }
    }
    if (f->has_error) {
        atomic_store(&f->ctl->state, FLOW_FAILED);
        flow_wake_all(f);
        end_flow(f);
    } else if (!got && outputs_ended(f)) {
        pull_outputs(f);
        end_flow(f);
    }
}

/* The rings into the parent ring its doorbell (the flow's fd) whenever
 * they turn non-empty: from the start, so that a caller who only polls
 * sk_flow_fd and collects with timeout 0 is woken too. */
static void arm_outputs(struct sk_flow *f)
{
    int producers = flow_edge_producers(f, f->n_steps);
    for (int p = 0; p < producers; p++)
        atomic_store(&flow_ring_of(f, f->n_steps, p, 0, 1)->reader.in.ctl->armed, 1);
    atomic_thread_fence(memory_order_seq_cst);
}

/* Takes what woke the flow's fd; what is due is looked at by the next
 * advance. True when something is due besides new outputs. */
static bool take_wakeups(struct sk_flow *f)
{
    unsigned due = flow_wakeup_take(f);
    if (due & FLOW_DUE_DEADLINES)
        f->next_deadline_scan = 0;
    if (due & FLOW_DUE_PROCESSES)
        f->next_process_check = 0;
    return due != 0;
}

/* Sleeps until the last step publishes, a status moves, a task deadline
 * passes, a process ends, or deadline (at most one slice). The lock is
 * dropped meanwhile. */
static void wait_for_news(struct sk_flow *f, int64_t deadline)
{
    arm_outputs(f);
    if (pull_outputs(f))
        return;
    int64_t now = sk_now_ns();
    int64_t wait = deadline - now < FLOW_SLICE_NS ? deadline - now : FLOW_SLICE_NS;
    if (wait <= 0)
        return;
    f->news_waiters++;
    pthread_mutex_unlock(&f->lock);
    struct pollfd pfd = {.fd = f->poll_fd, .events = POLLIN};
    bool woken = poll(&pfd, 1, (int)((wait + 999999) / 1000000)) > 0;
    pthread_mutex_lock(&f->lock);
    f->news_waiters--;
    if (woken)
        take_wakeups(f);
}

static void start_failed(struct sk_flow *f)
{
    atomic_store(&f->ctl->state, FLOW_FAILED);
    flow_wake_all(f);
    for (int g = 0; g < f->n_procs; g++)
        sk_kill(&f->procs[g].base);
    f->ended = true;
}

/* Reaps every process, up to deadline; then kills the rest. */
static void reap_all(struct sk_flow *f, int64_t deadline)
{
    for (int g = 0; f->procs != NULL && g < f->n_procs; g++) {
        struct flow_proc *fp = &f->procs[g];
        int64_t now = sk_now_ns();
        double left = deadline > now ? (double)(deadline - now) / 1e9 : 0;
        if (sk_wait(&fp->base, left) == SK_ETIMEDOUT) {
            fp->killed_at_end = true;
            sk_kill(&fp->base);
            sk_wait(&fp->base, -1);
        }
    }
}

/* The run's session directory, made before any step process is forked so
 * that each of them holds its janitor's keepalive: the directory is removed
 * by sk_flow_wait, sk_flow_stop or sk_flow_release once the processes are
 * reaped, or by the janitor once the parent and every step are gone. */
static int session_create(struct sk_flow *f)
{
    if (f->config.no_session_dir)
        return SK_OK;
    if (sk_session_dir_create(&f->session, f->session_prefix) == 0)
        return SK_OK;
    int e = errno;
    const char *tmp = getenv("TMPDIR");
    set_error(f, -1, NULL, "the session directory could not be made in %s: %s",
              tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", strerror(e));
    f->error.status = SK_ESYS;
    errno = e;
    return SK_ESYS;
}

/* Removes the session directory: every process of the run is reaped. */
static void session_remove(struct sk_flow *f)
{
    sk_session_dir_remove(&f->session);
}

/* Waits until every process says ready. */
static int await_ready(struct sk_flow *f)
{
    int64_t deadline = sk_deadline_ns(f->config.start_timeout);
    for (;;) {
        int not_ready = -1;
        for (int g = 0; g < f->n_procs && not_ready < 0; g++)
            if (!atomic_load(&flow_slot_of(f, g)->ready))
                not_ready = g;
        if (not_ready < 0)
            return SK_OK;
        read_statuses(f);
        check_processes(f);
        if (f->has_error)
            return SK_EPROCESS;
        if (sk_now_ns() >= deadline) {
            struct flow_proc *fp = &f->procs[not_ready];
            sk_error e = {.kind = SK_TIMEOUT_ERROR,
                          .section = SK_PRERUN,
                          .reason = SK_ETIMEDOUT,
                          .timeout = f->config.start_timeout};
            set_error(f, not_ready, &e,
                      "Step '%s' (process %d) was not ready after %.3gs (in its start hook, "
                      "%d restarts)",
                      step_name(f, fp->step), fp->index, f->config.start_timeout,
                      sk_restarts(&fp->base));
            f->error.status = SK_ETIMEDOUT;
            return SK_ETIMEDOUT;
        }
        wait_for_news(f, deadline);
    }
}

int sk_flow_start(sk_flow *f)
{
    if (f == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_start: flow is NULL");
    if (f->started)
        return sk_refuse(SK_ESTATE, "sk_flow_start: the flow has started");
    if (f->n_steps == 0)
        return sk_refuse(SK_EINVAL, "sk_flow_start: the flow has no step");
    for (int i = 0; i < f->n_steps; i++)
        if (!step_config_ok(&f->steps[i].user->config))
            return sk_refuse(SK_EINVAL,
                             "sk_flow_start: step %d ('%s') has more than %d processes or "
                             "batches of more than %d tasks",
                             i, step_name(f, i), FLOW_MAX_PROCESSES, FLOW_MAX_BATCH);
    pthread_mutex_lock(&f->lock);
    f->started = true;
    freeze_steps(f);
    int rc = session_create(f);
    if (rc == SK_OK)
        rc = procs_create(f);
    if (rc == SK_OK)
        rc = flow_arena_create(f);
    if (rc == SK_OK)
        rc = flow_doorbells_create(f);
    if (rc == SK_OK)
        rc = flow_wakeup_create(f);
    if (rc == SK_OK) {
        f->tasks = calloc(f->queue, sizeof *f->tasks);
        f->latency = calloc(1, sizeof *f->latency);
        f->records = malloc(f->queue * f->wire_size);
        f->free_slots = malloc(f->queue * sizeof *f->free_slots);
        if (f->tasks == NULL || f->records == NULL || f->free_slots == NULL || f->latency == NULL ||
            fifo_init(&f->order, f->queue) != SK_OK)
            rc = SK_ENOMEM;
    }
    if (rc == SK_OK) {
        for (size_t s = 0; s < f->queue; s++)
            f->free_slots[s] = (uint32_t)(f->queue - 1 - s); /* slot 0 first */
        f->n_free = f->queue;
        for (int g = 0; g < f->n_procs && rc == SK_OK; g++)
            rc = sk_start(&f->procs[g].base);
        if (rc == SK_OK)
            rc = flow_wakeup_watch_processes(f);
        if (rc != SK_OK) {
            set_error(f, -1, NULL, "a step process could not start: %s", sk_strerror(rc));
            start_failed(f);
        }
    } else {
        f->ended = true;
    }
    if (rc == SK_OK) {
        arm_outputs(f);
        rc = await_ready(f);
        if (rc != SK_OK)
            start_failed(f);
        else
            take_wakeups(f); /* the processes' ready rings: nothing to collect */
        f->started_ns = sk_now_ns();
    }
    pthread_mutex_unlock(&f->lock);
    if (rc != SK_OK) { /* nothing is left running: the processes (killed), the janitor */
        reap_all(f, sk_now_ns());
        pthread_mutex_lock(&f->lock);
        session_remove(f);
        pthread_mutex_unlock(&f->lock);
    }
    return rc;
}

/* --------------------------------------------------------- submit/collect */

/* Writes count tasks (taken from the table's slots) as one frame into the
 * ring of the next step-0 process. SK_ECORRUPT when no ring has room: only
 * a reader that forged its tail can do that. */
static int send_tasks(struct sk_flow *f, const uint32_t *slots, size_t count, int64_t now)
{
    int consumers = flow_edge_consumers(f, 0);
    size_t len = sizeof(struct flow_frame) + count * f->entry_size;
    size_t pad = f->entry_size - sizeof(struct flow_entry) - f->wire_size;
    for (int j = 0; j < consumers; j++) {
        int c = (int)((f->next_ring + (size_t)j) % (size_t)consumers);
        struct flow_ring *r = flow_ring_of(f, 0, 0, c, consumers);
        void *dst;
        if (sk_ring_reserve(&r->writer, len, &dst) != SK_OK)
            continue;
        unsigned char *at = dst;
        struct flow_frame fr = {.kind = FLOW_FRAME_TASKS, .count = (uint32_t)count, .sent_ns = now};
        memcpy(at, &fr, sizeof fr);
        at += sizeof fr;
        for (size_t i = 0; i < count; i++) {
            struct flow_entry e = {.id = f->tasks[slots[i]].id, .slot = slots[i]};
            memcpy(at, &e, sizeof e);
            memcpy(at + sizeof e, f->records + (size_t)slots[i] * f->wire_size, f->wire_size);
            if (pad > 0)
                memset(at + sizeof e + f->wire_size, 0, pad);
            at += f->entry_size;
        }
        sk_ring_commit(&r->writer);
        f->next_ring = (size_t)c + 1;
        f->sent += count;
        return SK_OK;
    }
    return SK_ECORRUPT;
}

/* Waits (under the lock) until a slot is free, the flow is closed, or
 * deadline. */
static int wait_for_room(struct sk_flow *f, int64_t deadline)
{
    for (;;) {
        if (f->closed || f->ended)
            return SK_ECLOSED;
        if (f->n_free > 0)
            return SK_OK;
        advance(f, true);
        if (f->n_free > 0 || f->closed)
            continue;
        int64_t now = sk_now_ns();
        if (now >= deadline)
            return SK_EFULL;
        /* Room comes when someone collects. */
        int64_t until = deadline - now < FLOW_SLICE_NS ? deadline : now + FLOW_SLICE_NS;
        struct timespec ts = sk_ns_to_timespec(until);
        f->waiting_room++;
        pthread_cond_timedwait(&f->changed, &f->lock, &ts);
        f->waiting_room--;
    }
}

/* Submits count tasks (under the lock): as many as there is room for at a
 * time, in frames of at most step 0's batch. *done gets how many went in;
 * ids (may be NULL) their numbers; *first_slot (may be NULL) the slot of
 * the first. */
static int submit_locked(struct sk_flow *f, const unsigned char *records, size_t count,
                         double timeout, double task_timeout, uint64_t *ids, size_t *done,
                         uint32_t *first_slot)
{
    *done = 0;
    if (!f->started)
        return sk_refuse(SK_ESTATE, "sk_flow_submit: the flow has not started");
    int64_t deadline = sk_deadline_ns(timeout);
    int64_t ttl = task_timeout > 0 ? sk_seconds_to_ns(task_timeout) : 0;
    uint32_t slots[FLOW_MAX_BATCH];
    while (*done < count) {
        int rc = wait_for_room(f, deadline);
        if (rc != SK_OK)
            return rc;
        size_t k = count - *done;
        if (k > f->n_free)
            k = f->n_free;
        if (k > f->steps[0].batch)
            k = f->steps[0].batch;
        int64_t now = sk_now_ns();
        for (size_t i = 0; i < k; i++) {
            uint32_t slot = f->free_slots[f->n_free - 1];
            const unsigned char *record = records + (*done + i) * f->task_size;
            int rc = flow_record_encode(f, record, f->records + (size_t)slot * f->wire_size);
            if (rc != SK_OK) {
                k = i; /* the tasks before it go; this one is refused */
                if (k > 0)
                    break;
                if (rc == SK_EFULL)
                    return sk_refuse(SK_EINVAL,
                                     "sk_flow_submit: the record's tpl image is over "
                                     "image_size (%zu bytes)",
                                     f->wire_size - sizeof(uint32_t));
                return rc;
            }
            f->n_free--;
            struct flow_task *t = &f->tasks[slot];
            t->id = f->next_id++;
            t->state = FLOW_TASK_QUEUED;
            t->submitted_ns = now;
            t->deadline_ns = ttl > 0 ? now + ttl : INT64_MAX;
            t->failure = NULL;
            if (ttl > 0) {
                f->deadlines++;
                flow_wakeup_arm(f, t->deadline_ns);
            }
            f->in_flight++;
            if (f->config.ordered)
                fifo_push(&f->order, slot, t->id);
            if (ids != NULL)
                ids[*done + i] = t->id;
            if (first_slot != NULL && *done + i == 0)
                *first_slot = slot;
            slots[i] = slot;
        }
        f->submitted += k;
        if (send_tasks(f, slots, k, now) != SK_OK) {
            sk_flow_result r;
            memset(&r, 0, sizeof r);
            r.step = 0;
            r.process = -1;
            r.error.reason = SK_ECORRUPT;
            snprintf(r.error.message, sizeof r.error.message,
                     "no room in step '%s': its processes corrupted their queues", step_name(f, 0));
            for (size_t i = 0; i < k; i++)
                fail_task(f, slots[i], SK_ECORRUPT, &r, 0);
        }
        *done += k;
    }
    return SK_OK;
}

int sk_flow_submit(sk_flow *f, const void *record, double timeout, double task_timeout,
                   uint64_t *id)
{
    if (f == NULL || record == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_submit: flow and record are required");
    pthread_mutex_lock(&f->lock);
    size_t done;
    int rc = submit_locked(f, record, 1, timeout, task_timeout, id, &done, NULL);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int sk_flow_submit_many(sk_flow *f, const void *records, size_t count, double timeout,
                        double task_timeout, uint64_t *ids, size_t *submitted)
{
    if (submitted != NULL)
        *submitted = 0;
    if (f == NULL || (records == NULL && count > 0))
        return sk_refuse(SK_EINVAL, "sk_flow_submit_many: flow and records are required");
    pthread_mutex_lock(&f->lock);
    size_t done;
    int rc = submit_locked(f, records, count, timeout, task_timeout, ids, &done, NULL);
    pthread_mutex_unlock(&f->lock);
    if (submitted != NULL)
        *submitted = done;
    return rc;
}

/* The next task ready to be collected, or NULL. Entries of tasks already
 * taken (by sk_flow_call) are skipped. */
static struct flow_ref *next_ready(struct sk_flow *f)
{
    for (;;) {
        struct flow_ref *ref = fifo_front(&f->order);
        if (ref == NULL)
            return NULL;
        struct flow_task *t = &f->tasks[ref->slot];
        if (t->id != ref->id || t->state == FLOW_TASK_FREE || t->state == FLOW_TASK_TAKEN) {
            fifo_pop(&f->order);
            continue;
        }
        return t->state == FLOW_TASK_DONE ? ref : NULL;
    }
}

/* Hands a done task to the caller and frees its slot. A success writes
 * only id, status, step and process: error stays as the caller had it. */
static int give(struct sk_flow *f, uint32_t slot, void *record, sk_flow_result *out)
{
    struct flow_task *t = &f->tasks[slot];
    int status = t->status;
    bool undecoded = false;
    if (record != NULL) {
        int rc = flow_record_decode(f, f->records + (size_t)slot * f->wire_size, record);
        if (rc != SK_OK && status == SK_OK) {
            undecoded = true;
            status = t->status = rc; /* SK_ENOMEM for its strings, or SK_EFORMAT */
            memset(record, 0, f->task_size);
        }
    }
    if (out != NULL) {
        if (t->failure != NULL) {
            *out = *t->failure;
        } else {
            out->id = t->id;
            out->status = status;
            out->step = out->process = -1;
            if (status != SK_OK) { /* undecodable, or its failure's details lost to malloc */
                memset(&out->error, 0, sizeof out->error);
                out->error.reason = status;
                out->error.item = (long)(t->id & 0x7fffffffffffffffULL);
                snprintf(out->error.message, sizeof out->error.message,
                         undecoded ? "task %llu: its record could not be decoded (%s)"
                                   : "task %llu failed (%s); no memory was left for the details",
                         (unsigned long long)t->id, sk_strerror(status));
            }
        }
    }
    free(t->failure);
    t->failure = NULL;
    t->state = FLOW_TASK_FREE;
    f->free_slots[f->n_free++] = slot;
    if (f->waiting_room > 0)
        pthread_cond_broadcast(&f->changed);
    return status;
}

/* Gives up to max ready tasks (under the lock), waiting up to timeout for
 * the first. */
static int collect_locked(struct sk_flow *f, double timeout, unsigned char *records,
                          sk_flow_result *results, size_t max, size_t *got)
{
    *got = 0;
    if (!f->started)
        return sk_refuse(SK_ESTATE, "sk_flow_collect: the flow has not started");
    int64_t deadline = sk_deadline_ns(timeout);
    bool deep = false, rechecked = false;
    for (;;) {
        struct flow_ref *ref = next_ready(f);
        if (ref == NULL) {
            advance(f, deep);
            ref = next_ready(f);
        }
        while (ref != NULL && *got < max) {
            uint32_t slot = ref->slot;
            fifo_pop(&f->order);
            give(f, slot, records != NULL ? records + *got * f->task_size : NULL,
                 results != NULL ? &results[*got] : NULL);
            (*got)++;
            ref = next_ready(f);
        }
        if (*got > 0)
            return SK_OK;
        if (f->ended && f->in_flight == 0 && f->order.len == 0)
            return SK_ECLOSED;
        if (!deep) {
            deep = true; /* statuses and processes: only when nothing is ready */
            continue;
        }
        if (sk_now_ns() >= deadline) {
            /* Nothing to give: the fd must not stay readable, or an event
             * loop would spin on it. Drained, then looked at once more
             * (and what the drain says is due, once). */
            bool due = take_wakeups(f) && !rechecked;
            rechecked = true;
            atomic_thread_fence(memory_order_seq_cst);
            if (pull_outputs(f) && next_ready(f) != NULL)
                continue;
            if (due)
                continue;
            return SK_ETIMEDOUT;
        }
        wait_for_news(f, deadline);
    }
}

int sk_flow_collect(sk_flow *f, double timeout, void *record, sk_flow_result *out)
{
    if (f == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_collect: flow is NULL");
    pthread_mutex_lock(&f->lock);
    size_t got;
    int rc = collect_locked(f, timeout, record, out, 1, &got);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int sk_flow_collect_many(sk_flow *f, double timeout, void *records, sk_flow_result *results,
                         size_t max, size_t *count)
{
    if (count != NULL)
        *count = 0;
    if (f == NULL || results == NULL || count == NULL || max == 0)
        return sk_refuse(SK_EINVAL,
                         "sk_flow_collect_many: flow, results, count and max > 0 are required");
    pthread_mutex_lock(&f->lock);
    int rc = collect_locked(f, timeout, records, results, max, count);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int sk_flow_call(sk_flow *f, void *record, double timeout, sk_flow_result *out)
{
    if (f == NULL || record == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_call: flow and record are required");
    pthread_mutex_lock(&f->lock);
    size_t done;
    uint32_t slot = 0;
    int rc = submit_locked(f, record, 1, timeout, timeout, NULL, &done, &slot);
    if (rc == SK_OK) {
        /* The task's own timeout (or the flow's end) ends the wait. */
        while (f->tasks[slot].state == FLOW_TASK_QUEUED) {
            advance(f, true);
            if (f->tasks[slot].state == FLOW_TASK_QUEUED)
                wait_for_news(f, INT64_MAX);
        }
        f->tasks[slot].state = FLOW_TASK_TAKEN; /* its fifo entry is skipped */
        rc = give(f, slot, record, out);
    }
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* ------------------------------------------------------------- the end */

int sk_flow_close(sk_flow *f)
{
    if (f == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_close: flow is NULL");
    if (!f->started)
        return sk_refuse(SK_ESTATE, "sk_flow_close: the flow has not started");
    pthread_mutex_lock(&f->lock);
    if (!f->closed)
        close_input(f);
    pthread_mutex_unlock(&f->lock);
    return SK_OK;
}

/* After a normal end (every process left on its own): a process that
 * ended with an error anyway, in its stop hook, makes it the flow's error.
 * One the flow killed for not leaving in time is not counted. */
static void note_late_errors(struct sk_flow *f)
{
    for (int g = 0; g < f->n_procs && !f->has_error && !f->stopping; g++) {
        struct flow_proc *fp = &f->procs[g];
        const sk_error *err = sk_error_of(&fp->base);
        if (err != NULL && !fp->killed_at_end)
            set_error(f, g, err, "Step '%s' (process %d) ended: %s", step_name(f, fp->step),
                      fp->index, err->message);
    }
}

int sk_flow_wait(sk_flow *f, double timeout)
{
    if (f == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_wait: flow is NULL");
    pthread_mutex_lock(&f->lock);
    int rc = SK_OK;
    if (!f->started)
        goto out;
    int64_t deadline = sk_deadline_ns(timeout);
    while (!f->ended) {
        advance(f, true);
        if (f->ended)
            break;
        if (sk_now_ns() >= deadline) {
            rc = SK_ETIMEDOUT;
            goto out;
        }
        wait_for_news(f, deadline);
    }
    /* Ended: every process leaves on its own (end of stream, or the state
     * says so); one that does not within stop_timeout is killed. */
    int64_t stop = sk_deadline_ns(f->config.stop_timeout);
    pthread_mutex_unlock(&f->lock);
    reap_all(f, deadline < stop ? deadline : stop);
    pthread_mutex_lock(&f->lock);
    note_late_errors(f);
    session_remove(f);
    rc = f->has_error ? SK_EPROCESS : SK_OK;
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int sk_flow_stop(sk_flow *f)
{
    if (f == NULL)
        return sk_refuse(SK_EINVAL, "sk_flow_stop: flow is NULL");
    pthread_mutex_lock(&f->lock);
    if (!f->started) {
        pthread_mutex_unlock(&f->lock);
        return SK_OK;
    }
    if (!f->closed)
        close_input(f);
    f->stopping = true;
    uint32_t s = atomic_load(&f->ctl->state);
    if (s != FLOW_FAILED)
        atomic_store(&f->ctl->state, FLOW_STOPPING);
    flow_wake_all(f);
    int64_t deadline = sk_deadline_ns(f->config.stop_timeout);
    while (!f->ended && sk_now_ns() < deadline) {
        advance(f, true);
        if (!f->ended)
            wait_for_news(f, deadline);
    }
    end_flow(f);
    pthread_mutex_unlock(&f->lock);
    reap_all(f, deadline);
    pthread_mutex_lock(&f->lock);
    session_remove(f);
    pthread_mutex_unlock(&f->lock);
    return SK_OK;
}

void sk_flow_release(sk_flow *f)
{
    if (f == NULL)
        return;
    if (f->started && f->procs != NULL) {
        if (!f->ended)
            sk_flow_stop(f);
        reap_all(f, sk_now_ns());
        for (int g = 0; g < f->n_procs; g++)
            sk_release(&f->procs[g].base);
    }
    session_remove(f);
    for (int g = 0; f->procs != NULL && g < f->n_procs; g++)
        sk_fd_close(&f->procs[g].doorbell);
    if (f->base != NULL)
        munmap(f->base, f->size);
    flow_wakeup_release(f);
    sk_fd_close(&f->memfd);
    sk_fd_close(&f->doorbell);
    free(f->procs);
    free(f->slot_offset);
    free(f->edge_ring);
    free(f->rings);
    for (size_t s = 0; f->tasks != NULL && s < f->queue; s++)
        free(f->tasks[s].failure);
    free(f->tasks);
    free(f->records);
    free(f->free_slots);
    free(f->order.refs);
    free(f->latency);
    flow_payload_area_release(f);
    pthread_cond_destroy(&f->changed);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

int sk_flow_fd(const sk_flow *f)
{
    return f != NULL && f->started ? f->poll_fd : -1;
}

const char *sk_flow_session_dir(const sk_flow *f)
{
    return f != NULL && f->session.path[0] != '\0' ? f->session.path : NULL;
}

const sk_flow_result *sk_flow_error(const sk_flow *f)
{
    return f != NULL && f->has_error ? &f->error : NULL;
}
