/* SPDX-License-Identifier: MIT */
/*
 * A step's process: the hooks of the skproc process every process of a step
 * is, and the calls the user's hooks make.
 *
 *   prerun   the user's start hook, once per worker (again after a
 *            restart); then the slot says ready
 *   run      the loop: gather a batch into the hand, handle it, forward
 *            it, until end of stream or the flow's state says leave; the
 *            section is idle (no timeout) except around the user's handle
 *   onfinish the user's stop hook, then the output rings are closed: the
 *            end of stream moves on to the next step
 *
 * The run loop as a state table, per gathered batch:
 *
 *   gather says      flow state                     then
 *   BATCH            RUNNING / my step after finish handle, forward, gather again
 *   BATCH            STOPPING / FINISHING at my step handle, forward, leave
 *   END (inputs      any but FAILED                 handle the partial hand,
 *   closed, empty)                                   forward, leave
 *   LEAVE            FINISHING before my step,      leave (the hand is dropped:
 *                    FAILED                          the parent fails its tasks)
 */
#include "flow/flow_internal.h"

#include "core/engine.h"
#include "os/clock.h"
#include "os/fd.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_RECHECK_NS (50 * 1000 * 1000) /* the longest sleep between two looks at the state */

enum gather_result { GATHER_BATCH, GATHER_END, GATHER_LEAVE };

/* The worker's private state for its run loop. */
struct step_worker {
    struct flow_proc *fp;
    struct sk_flow *f;
    struct sk_flow_step *st;
    struct flow_slot *slot;
    int n_in, n_out;
    struct flow_ring **in, **out;
    int *out_doorbells;
    bool *in_closed;
    int next_in;
    size_t out_batch;       /* most entries per frame to the next step */
    unsigned char *work;    /* batch x entry_size: the records being handled */
    sk_task *tasks;         /* the tasks handed to handle */
    int *task_of;           /* tasks[i] is hand entry task_of[i] */
    unsigned char *verdict; /* per hand entry: 0 ok, 1 skipped, 2 failed */
    char (*causes)[FLOW_MESSAGE];
    int *codes;
    int64_t *frame_sent;    /* when each frame in hand was sent: the queue waits */
    unsigned char *records; /* tpl records: batch x task_size, decoded */
    bool *decoded;          /* tpl records: which of them hold allocations */
    size_t n_frames;
};

static struct step_worker *current_worker;

/* The record hand entry i is seen as by the hooks: in place (plain), or
 * decoded (tpl). */
static void *task_record(struct step_worker *w, uint32_t i)
{
    if (w->f->tpl)
        return w->records + (size_t)i * w->f->task_size;
    return w->work + (size_t)i * w->f->entry_size + sizeof(struct flow_entry);
}

static unsigned char *entry_wire(struct step_worker *w, uint32_t i)
{
    return w->work + (size_t)i * w->f->entry_size + sizeof(struct flow_entry);
}

static struct flow_proc *proc_of(sk_process *self)
{
    return SK_CONTAINER_OF(self, struct flow_proc, base);
}

static enum flow_state flow_state_now(struct sk_flow *f)
{
    uint32_t s = atomic_load_explicit(&f->ctl->state, memory_order_acquire);
    return s <= FLOW_FAILED ? (enum flow_state)s : FLOW_FAILED;
}

/* Whether this process should leave its loop now, and whether it should
 * still handle and forward what it holds first. */
static bool must_leave(struct step_worker *w, bool *keep_hand)
{
    enum flow_state s = flow_state_now(w->f);
    *keep_hand = true;
    switch (s) {
    case FLOW_RUNNING:
        return false;
    case FLOW_STOPPING:
        return true;
    case FLOW_FINISHING: {
        int at = atomic_load(&w->f->ctl->finish_step);
        if (w->st->index > at)
            return false; /* after the finishing step: drain to end of stream */
        *keep_hand = w->st->index == at;
        return true;
    }
    case FLOW_FAILED:
        break;
    }
    *keep_hand = false;
    return true;
}

/* ------------------------------------------------------------ forwarding */

/* The output ring with the most room, by the bytes in flight: each producer
 * spreads its tasks over the next step's processes by how far they are
 * behind. Its tail is the reader's to write: only a hint here. */
static int least_used_output(struct step_worker *w)
{
    int best = 0;
    uint64_t best_used = UINT64_MAX;
    for (int k = 0; k < w->n_out; k++) {
        const struct sk_ring *r = &w->out[k]->writer.out;
        uint64_t used = atomic_load_explicit(&r->ctl->head, memory_order_relaxed) -
                        atomic_load_explicit(&r->ctl->tail, memory_order_relaxed);
        if (used < best_used) {
            best_used = used;
            best = k;
        }
    }
    return best;
}

/* A frame of len bytes reserved in one of the output rings. Rings are sized
 * for every task in flight, so this waits only on a reader that forged its
 * tail; it gives up when the flow failed. */
static int reserve_output(struct step_worker *w, size_t len, void **dst, int *ring)
{
    for (;;) {
        int k = least_used_output(w);
        int rc = sk_ring_reserve(&w->out[k]->writer, len, dst);
        if (rc == SK_OK) {
            *ring = k;
            return SK_OK;
        }
        for (int j = 0; j < w->n_out && rc != SK_OK; j++)
            if (j != k && (rc = sk_ring_reserve(&w->out[j]->writer, len, dst)) == SK_OK)
                k = j;
        if (rc == SK_OK) {
            *ring = k;
            return SK_OK;
        }
        if (flow_state_now(w->f) == FLOW_FAILED)
            return SK_ECLOSED;
        rc = sk_ring_reserve_wait(&w->out[k]->writer, len, sk_now_ns() + STEP_RECHECK_NS, dst);
        if (rc == SK_OK) {
            *ring = k;
            return SK_OK;
        }
        if (rc != SK_ETIMEDOUT && rc != SK_EFULL && rc != SK_ECORRUPT)
            return rc;
    }
}

static void commit_output(struct step_worker *w, int k)
{
    sk_ring_commit(&w->out[k]->writer);
}

/* Forwards the hand entries whose verdict is ok or skipped, in frames of at
 * most out_batch entries. */
static int forward_tasks(struct step_worker *w, uint32_t n, int64_t now)
{
    size_t es = w->f->entry_size;
    uint32_t i = 0;
    while (i < n) {
        uint32_t count = 0;
        for (uint32_t j = i; j < n && count < w->out_batch; j++)
            if (w->verdict[j] != 2)
                count++;
        if (count == 0)
            return SK_OK;
        void *dst;
        int k;
        int rc = reserve_output(w, sizeof(struct flow_frame) + count * es, &dst, &k);
        if (rc != SK_OK)
            return rc;
        struct flow_frame fr = {.kind = FLOW_FRAME_TASKS, .count = count, .sent_ns = now};
        memcpy(dst, &fr, sizeof fr);
        unsigned char *at = (unsigned char *)dst + sizeof fr;
        uint32_t put = 0;
        while (i < n && put < count) {
            if (w->verdict[i] != 2) {
                memcpy(at, w->work + (size_t)i * es, es);
                at += es;
                put++;
            }
            i++;
        }
        commit_output(w, k);
        atomic_fetch_add_explicit(&w->slot->tasks_out, count, memory_order_relaxed);
    }
    return SK_OK;
}

/* Sends one failed task on: the steps after pass it through untouched. */
static int forward_failure(struct step_worker *w, const unsigned char *entry,
                           const struct flow_failure *why)
{
    void *dst;
    int k;
    size_t len = sizeof(struct flow_frame) + sizeof(struct flow_entry) + sizeof *why;
    int rc = reserve_output(w, len, &dst, &k);
    if (rc != SK_OK)
        return rc;
    struct flow_frame fr = {.kind = FLOW_FRAME_FAILED, .count = 1, .sent_ns = sk_now_ns()};
    unsigned char *at = dst;
    memcpy(at, &fr, sizeof fr);
    memcpy(at + sizeof fr, entry, sizeof(struct flow_entry));
    memcpy(at + sizeof fr + sizeof(struct flow_entry), why, sizeof *why);
    commit_output(w, k);
    return SK_OK;
}

static void describe_failure(struct step_worker *w, struct flow_failure *why, const sk_error *fault,
                             uint64_t id, int code, const char *cause, int attempts)
{
    memset(why, 0, sizeof *why);
    why->step = w->st->index;
    why->process = w->fp->index;
    why->status = SK_EPROCESS;
    why->lives_spent = attempts;
    const char *name = w->st->user->cls->name ? w->st->user->cls->name : "step";
    if (fault != NULL) {
        why->kind = fault->kind;
        why->section = SK_RUN;
        why->code = fault->code;
        why->reason = fault->reason;
        why->signal = fault->signal;
        why->exit_status = fault->exit_status;
        why->timeout = fault->timeout;
        snprintf(why->message, sizeof why->message,
                 "%s in step '%s' (process %d) handling task %llu (attempt %d)",
                 fault->kind == SK_TIMEOUT_ERROR ? "Timeout" : "Crash", name, w->fp->index,
                 (unsigned long long)id, attempts);
        snprintf(why->cause, sizeof why->cause, "%s", fault->message);
        return;
    }
    why->kind = SK_RUN_ERROR;
    why->section = SK_RUN;
    why->code = code;
    why->reason = SK_EPROCESS;
    snprintf(why->message, sizeof why->message,
             "Error in step '%s' (process %d) handling task %llu (attempt %d)", name, w->fp->index,
             (unsigned long long)id, attempts);
    snprintf(why->cause, sizeof why->cause, "%s", cause != NULL ? cause : "");
}

/* The user's error hook for the tasks of the hand that failed for good. */
static void call_error_hook(struct step_worker *w, uint32_t n, const sk_error *err)
{
    sk_step *user = w->st->user;
    if (user->cls->error == NULL)
        return;
    size_t es = w->f->entry_size;
    size_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (w->verdict[i] != 2)
            continue;
        const struct flow_entry *e = (const void *)(w->work + (size_t)i * es);
        if (w->f->tpl && flow_record_decode(w->f, entry_wire(w, i), task_record(w, i)) != SK_OK)
            memset(task_record(w, i), 0, w->f->task_size); /* what could not be decoded */
        w->tasks[m] = (sk_task){.id = e->id,
                                .record = task_record(w, i),
                                .attempt = (int)atomic_load(&w->slot->hand_tries)};
        m++;
    }
    if (m > 0)
        user->cls->error(user, w->tasks, m, err);
    for (uint32_t i = 0; w->f->tpl && i < n; i++)
        if (w->verdict[i] == 2)
            flow_record_release(w->f, task_record(w, i));
}

static void failure_to_error(const struct flow_failure *why, sk_error *err)
{
    memset(err, 0, sizeof *err);
    err->kind = (sk_error_kind)why->kind;
    err->section = (sk_section)why->section;
    err->code = why->code;
    err->reason = why->reason;
    err->signal = why->signal;
    err->exit_status = why->exit_status;
    err->timeout = why->timeout;
    err->lives_spent = why->lives_spent;
    err->item = -1;
    snprintf(err->message, sizeof err->message, "%s", why->message);
    snprintf(err->cause, sizeof err->cause, "%s", why->cause);
}

/* Forwards the failed entries of the hand, each with its own reason. */
static int forward_failures(struct step_worker *w, uint32_t n, const sk_error *fault, int attempts)
{
    size_t es = w->f->entry_size;
    bool hooked = false;
    for (uint32_t i = 0; i < n; i++) {
        if (w->verdict[i] != 2)
            continue;
        const unsigned char *entry = flow_hand(w->slot) + (size_t)i * es;
        struct flow_entry e;
        memcpy(&e, entry, sizeof e);
        struct flow_failure why;
        describe_failure(w, &why, fault, e.id, w->codes[i], w->causes[i], attempts);
        if (!hooked) {
            sk_error err;
            failure_to_error(&why, &err);
            call_error_hook(w, n, &err);
            hooked = true;
        }
        int rc = forward_failure(w, entry, &why);
        if (rc != SK_OK)
            return rc;
        atomic_fetch_add_explicit(&w->slot->tasks_failed, 1, memory_order_relaxed);
    }
    return SK_OK;
}

/* --------------------------------------------------------------- handling */

/* The bin of a batch of m tasks: floor(log2(m)), the last bin for larger. */
static unsigned batch_bin(size_t m)
{
    unsigned b = 0;
    while (m > 1 && b < SK_FLOW_BATCH_BINS - 1) {
        m >>= 1;
        b++;
    }
    return b;
}

/* Each frame of the hand waited from its sending until its first handle
 * call; a retried batch does not count twice. */
static void record_queue_waits(struct step_worker *w, int64_t start)
{
    for (size_t i = 0; i < w->n_frames; i++)
        sk_timer_add(&w->slot->queue_timer, start - w->frame_sent[i]);
    w->n_frames = 0;
}

/* tpl records: decodes entry i of the work area; a record that does not
 * decode (its image is corrupt) fails its task. */
static void decode_record(struct step_worker *w, uint32_t i)
{
    if (!w->f->tpl)
        return;
    if (w->decoded[i]) {
        flow_record_release(w->f, task_record(w, i));
        w->decoded[i] = false;
    }
    int rc = flow_record_decode(w->f, entry_wire(w, i), task_record(w, i));
    if (rc == SK_OK) {
        w->decoded[i] = true;
        return;
    }
    w->verdict[i] = 2;
    w->codes[i] = rc;
    snprintf(w->causes[i], FLOW_MESSAGE, "the task's record could not be decoded: %s",
             sk_strerror(rc));
}

/* tpl records: encodes the handled records back into their entries and
 * frees what decoding allocated; one that no longer fits fails. */
static void encode_records(struct step_worker *w, uint32_t n)
{
    if (!w->f->tpl)
        return;
    for (uint32_t i = 0; i < n; i++) {
        if (!w->decoded[i])
            continue;
        if (w->verdict[i] == 0) {
            int rc = flow_record_encode(w->f, task_record(w, i), entry_wire(w, i));
            if (rc != SK_OK) {
                w->verdict[i] = 2;
                w->codes[i] = rc;
                snprintf(w->causes[i], FLOW_MESSAGE,
                         "the handled record's tpl image does not fit image_size (%zu bytes)",
                         w->f->wire_size - sizeof(uint32_t));
            }
        }
        flow_record_release(w->f, task_record(w, i));
        w->decoded[i] = false;
    }
}

/* Handles the tasks in hand: the condition splits them, handle runs on the
 * rest (again for those that failed while they have lives), then every
 * task is forwarded, ok, skipped or failed, and the hand is emptied. */
static void handle_hand(struct step_worker *w, bool recovered)
{
    struct flow_slot *slot = w->slot;
    size_t es = w->f->entry_size;
    uint32_t n = atomic_load(&slot->hand_count);
    if (n > w->st->batch)
        n = (uint32_t)w->st->batch; /* scribbled by a predecessor: what fits */
    uint32_t tries = atomic_load(&slot->hand_tries);
    memset(w->verdict, 0, n);
    memset(w->codes, 0, n * sizeof *w->codes);
    memcpy(w->work, flow_hand(slot), (size_t)n * es);
    sk_step *user = w->st->user;
    const sk_error *fault = recovered ? sk_worker_last_fault(&w->fp->base) : NULL;
    int64_t now = 0;
    int lives = w->st->lives;
    if (recovered && tries >= (uint32_t)lives) {
        /* The batch took its last life with it: every task fails. */
        memset(w->verdict, 2, n);
        sk_error fallback = {.kind = SK_CRASH_ERROR, .reason = SK_ECRASHED};
        snprintf(fallback.message, sizeof fallback.message, "the process ended while handling");
        forward_failures(w, n, fault != NULL ? fault : &fallback, (int)tries);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        decode_record(w, i);
        if (w->verdict[i] != 0)
            continue;
        const struct flow_entry *e = (const void *)(w->work + (size_t)i * es);
        sk_task t = {.id = e->id, .record = task_record(w, i), .attempt = 1};
        if (user->cls->condition != NULL && !user->cls->condition(user, &t))
            w->verdict[i] = 1;
    }
    for (;;) {
        size_t m = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (w->verdict[i] != 0 || w->codes[i] == INT32_MIN)
                continue;
            const struct flow_entry *e = (const void *)(w->work + (size_t)i * es);
            w->tasks[m] =
                (sk_task){.id = e->id, .record = task_record(w, i), .attempt = (int)tries + 1};
            w->task_of[m] = (int)i;
            m++;
        }
        if (m == 0)
            break;
        tries++;
        atomic_store(&slot->hand_tries, tries);
        w->fp->cause_set = false;
        int64_t t0 = sk_section_resume(&w->fp->base);
        if (w->n_frames > 0)
            record_queue_waits(w, t0);
        int rc = user->cls->handle(user, w->tasks, m);
        sk_section_idle(&w->fp->base);
        now = sk_now_ns();
        sk_timer_add(&slot->handle_timer, now - t0);
        atomic_fetch_add_explicit(&slot->batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&slot->batch_bins[batch_bin(m)], 1, memory_order_relaxed);
        bool again = false;
        for (size_t j = 0; j < m; j++) {
            int i = w->task_of[j];
            int code = rc != 0 ? rc : w->tasks[j].status;
            if (code == 0) {
                w->codes[i] = INT32_MIN; /* done: not handed again */
                continue;
            }
            if (rc != 0)
                snprintf(w->causes[i], FLOW_MESSAGE, "%.*s", FLOW_MESSAGE - 1,
                         w->fp->cause_set ? w->fp->cause : "the handle hook failed");
            w->codes[i] = code;
            if ((int)tries < lives) {
                /* Tried again from the record as it came in. */
                memcpy(w->work + (size_t)i * es, flow_hand(slot) + (size_t)i * es, es);
                w->codes[i] = 0;
                decode_record(w, (uint32_t)i);
                again = w->verdict[i] == 0 || again;
            } else {
                w->verdict[i] = 2;
            }
        }
        if (!again || flow_state_now(w->f) == FLOW_FAILED)
            break; /* done, or the flow failed: no try is worth it */
    }
    encode_records(w, n);
    for (uint32_t i = 0; i < n; i++)
        if (w->verdict[i] == 1)
            atomic_fetch_add_explicit(&slot->tasks_skipped, 1, memory_order_relaxed);
    if (flow_state_now(w->f) == FLOW_FAILED)
        goto done; /* the parent fails what is in flight */
    if (forward_failures(w, n, NULL, (int)tries) != SK_OK)
        goto done;
    forward_tasks(w, n, now != 0 ? now : sk_now_ns());
done:
    w->n_frames = 0;
    atomic_store(&slot->hand_count, 0);
    atomic_store(&slot->hand_tries, 0);
}

/* ---------------------------------------------------------------- gathering */

/* Takes one frame from input ring k into the hand, or passes a failed task
 * on. False when the frame does not fit the hand (it stays queued). */
static bool take_frame(struct step_worker *w, int k, const void *payload, size_t len)
{
    struct flow_slot *slot = w->slot;
    size_t es = w->f->entry_size;
    struct sk_endpoint *ep = &w->in[k]->reader;
    struct flow_frame fr;
    if (len < sizeof fr) {
        sk_ring_consume(ep);
        return true; /* garbage: dropped */
    }
    memcpy(&fr, payload, sizeof fr);
    if (fr.kind == FLOW_FRAME_FAILED) {
        if (len == sizeof fr + sizeof(struct flow_entry) + sizeof(struct flow_failure)) {
            struct flow_failure why;
            memcpy(&why, (const char *)payload + sizeof fr + sizeof(struct flow_entry), sizeof why);
            forward_failure(w, (const unsigned char *)payload + sizeof fr, &why);
        }
        sk_ring_consume(ep);
        return true;
    }
    uint32_t have = atomic_load_explicit(&slot->hand_count, memory_order_relaxed);
    if (fr.kind != FLOW_FRAME_TASKS || fr.count == 0 || fr.count > w->st->batch ||
        len != sizeof fr + (size_t)fr.count * es) {
        sk_ring_consume(ep);
        return true;
    }
    /* have may be any word a peer wrote: compared alone, so that the sum
     * cannot wrap below the batch. */
    if (have > w->st->batch || have + fr.count > w->st->batch)
        return false;
    memcpy(flow_hand(slot) + (size_t)have * es, (const char *)payload + sizeof fr,
           (size_t)fr.count * es);
    if (w->n_frames < w->st->batch)
        w->frame_sent[w->n_frames++] = fr.sent_ns;
    /* The hand holds them before the ring lets go of them. */
    atomic_store_explicit(&slot->hand_count, have + fr.count, memory_order_release);
    sk_ring_consume(ep);
    atomic_fetch_add_explicit(&slot->tasks_in, fr.count, memory_order_relaxed);
    return true;
}

static void arm_inputs(struct step_worker *w, uint32_t on)
{
    for (int k = 0; k < w->n_in; k++)
        if (!w->in_closed[k])
            atomic_store(&w->in[k]->reader.in.ctl->armed, on);
}

/* Fills the hand up to a batch: waits for the first task, then up to the
 * batch timeout for the rest. */
static enum gather_result gather(struct step_worker *w)
{
    struct flow_slot *slot = w->slot;
    int64_t deadline = INT64_MAX;
    bool armed = false;
    for (;;) {
        bool progress = false, full = false;
        int open = 0;
        for (int j = 0; j < w->n_in && !full; j++) {
            int k = (w->next_in + j) % w->n_in;
            if (w->in_closed[k])
                continue;
            for (;;) {
                const void *payload;
                size_t len;
                int rc = sk_ring_try_peek(&w->in[k]->reader, &payload, &len);
                if (rc == SK_ECLOSED) {
                    w->in_closed[k] = true;
                    break;
                }
                if (rc != SK_OK)
                    break; /* empty, or garbage dropped */
                if (!take_frame(w, k, payload, len)) {
                    full = true;
                    break;
                }
                progress = true;
                if (atomic_load(&slot->hand_count) >= w->st->batch) {
                    full = true;
                    break;
                }
            }
            if (!w->in_closed[k])
                open++;
        }
        w->next_in = (w->next_in + 1) % (w->n_in > 0 ? w->n_in : 1);
        uint32_t have = atomic_load(&slot->hand_count);
        if (armed && (progress || full)) {
            arm_inputs(w, 0);
            armed = false;
        }
        if (full)
            return GATHER_BATCH;
        if (open == 0)
            return GATHER_END;
        bool keep;
        if (must_leave(w, &keep))
            return keep && have > 0 ? GATHER_END : GATHER_LEAVE;
        if (have > 0 && !progress && w->st->batch_timeout_ns == 0)
            return GATHER_BATCH; /* what is queued, at once */
        if (have > 0) {
            if (deadline == INT64_MAX)
                deadline = sk_now_ns() + w->st->batch_timeout_ns;
            if (!progress && sk_now_ns() >= deadline)
                return GATHER_BATCH;
        }
        if (progress)
            continue;
        if (!armed) {
            /* Armed, looked again: a frame published from here on rings
             * the doorbell. (A ring left from before only costs one more
             * look: it is drained when poll says so.) */
            arm_inputs(w, 1);
            atomic_thread_fence(memory_order_seq_cst);
            armed = true;
            continue;
        }
        int64_t now = sk_now_ns();
        int64_t wait = STEP_RECHECK_NS;
        if (deadline != INT64_MAX && deadline - now < wait)
            wait = deadline - now > 0 ? deadline - now : 0;
        struct pollfd pfd = {.fd = w->fp->doorbell, .events = POLLIN};
        int ms = (int)((wait + 999999) / 1000000);
        if (poll(&pfd, 1, ms) > 0)
            sk_doorbell_drain(w->fp->doorbell);
    }
}

/* ------------------------------------------------------------------ hooks */

static int worker_setup(struct step_worker *w, struct flow_proc *fp)
{
    struct sk_flow *f = fp->flow;
    struct sk_flow_step *st = &f->steps[fp->step];
    memset(w, 0, sizeof *w);
    w->fp = fp;
    w->f = f;
    w->st = st;
    w->slot = flow_slot_of(f, fp->global);
    int edge_in = fp->step, edge_out = fp->step + 1;
    w->n_in = flow_edge_producers(f, edge_in);
    w->n_out = flow_edge_consumers(f, edge_out);
    w->out_batch = edge_out < f->n_steps ? f->steps[edge_out].batch : st->batch;
    size_t b = st->batch;
    w->in = calloc((size_t)w->n_in, sizeof *w->in);
    w->out = calloc((size_t)w->n_out, sizeof *w->out);
    w->in_closed = calloc((size_t)w->n_in, sizeof *w->in_closed);
    w->work = malloc(b * f->entry_size);
    w->tasks = calloc(b, sizeof *w->tasks);
    w->task_of = calloc(b, sizeof *w->task_of);
    w->verdict = calloc(b, 1);
    w->causes = calloc(b, sizeof *w->causes);
    w->codes = calloc(b, sizeof *w->codes);
    w->frame_sent = calloc(b, sizeof *w->frame_sent);
    w->records = calloc(b, f->tpl ? f->task_size : 1);
    w->decoded = calloc(b, sizeof *w->decoded);
    if (!w->in || !w->out || !w->in_closed || !w->work || !w->tasks || !w->task_of || !w->verdict ||
        !w->causes || !w->codes || !w->frame_sent || !w->records || !w->decoded)
        return -1;
    for (int p = 0; p < w->n_in; p++)
        w->in[p] = flow_ring_of(f, edge_in, p, fp->index, flow_edge_consumers(f, edge_in));
    for (int c = 0; c < w->n_out; c++)
        w->out[c] = flow_ring_of(f, edge_out, fp->index, c, w->n_out);
    return 0;
}

static int proc_prerun(sk_process *self)
{
    struct flow_proc *fp = proc_of(self);
    struct sk_flow *f = fp->flow;
    struct sk_flow_step *st = &f->steps[fp->step];
    st->current = fp;
    if (fp->started)
        return 0;
    sk_step *user = st->user;
    if (user->cls->start != NULL) {
        fp->cause_set = false;
        int rc = user->cls->start(user);
        if (rc != 0)
            return sk_fail(self, rc, "%s", fp->cause_set ? fp->cause : "the start hook failed");
    }
    fp->started = true;
    /* The ring comes first: once the parent sees every process ready, every
     * such ring has happened, and sk_flow_start can take them all (the fd
     * is then quiet until there is something to collect). */
    sk_doorbell_ring(f->doorbell);
    atomic_store(&flow_slot_of(f, fp->global)->ready, 1);
    return 0;
}

static int proc_run(sk_process *self)
{
    struct flow_proc *fp = proc_of(self);
    static struct step_worker w;
    sk_section_idle(self);
    if (worker_setup(&w, fp) != 0)
        return sk_fail(self, SK_ENOMEM, "out of memory for a batch of %zu tasks",
                       fp->flow->steps[fp->step].batch);
    current_worker = &w;
    if (atomic_load(&w.slot->hand_count) > 0)
        handle_hand(&w, true); /* what the worker before this one died with */
    for (;;) {
        enum gather_result g = gather(&w);
        if (g != GATHER_LEAVE && atomic_load(&w.slot->hand_count) > 0)
            handle_hand(&w, false);
        if (g != GATHER_BATCH)
            break;
        bool keep;
        if (must_leave(&w, &keep))
            break;
    }
    atomic_store(&w.slot->hand_count, 0);
    return 0;
}

static int proc_onfinish(sk_process *self)
{
    struct flow_proc *fp = proc_of(self);
    struct sk_flow *f = fp->flow;
    struct sk_flow_step *st = &f->steps[fp->step];
    sk_step *user = st->user;
    int rc = 0;
    if (fp->started && user->cls->stop != NULL) {
        fp->cause_set = false;
        rc = user->cls->stop(user);
        if (rc != 0)
            sk_fail(self, rc, "%s", fp->cause_set ? fp->cause : "the stop hook failed");
    }
    int edge = fp->step + 1;
    int consumers = flow_edge_consumers(f, edge);
    for (int c = 0; c < consumers; c++) {
        struct flow_ring *r = flow_ring_of(f, edge, fp->index, c, consumers);
        sk_ring_close(&r->writer.out, r->writer.out_doorbell);
    }
    sk_doorbell_ring(f->doorbell);
    return rc;
}

const sk_class flow_proc_class = {
    .name = "flow step",
    .prerun = proc_prerun,
    .run = proc_run,
    .onfinish = proc_onfinish,
};

/* ------------------------------------------------------- hook-side calls */

static struct flow_proc *hook_proc(const sk_step *self)
{
    if (self == NULL || self->impl == NULL)
        return NULL;
    return self->impl->current;
}

int sk_step_init(sk_step *step, const sk_step_class *cls)
{
    if (step == NULL || cls == NULL || cls->handle == NULL)
        return SK_EINVAL;
    memset(step, 0, sizeof *step);
    step->cls = cls;
    return SK_OK;
}

static void vcause(struct flow_proc *fp, int code, const char *fmt, va_list ap)
{
    fp->cause_code = code;
    fp->cause_set = true;
    if (fmt != NULL)
        vsnprintf(fp->cause, sizeof fp->cause, fmt, ap);
    else
        fp->cause[0] = '\0';
}

int sk_step_fail(sk_step *self, int code, const char *fmt, ...)
{
    struct flow_proc *fp = hook_proc(self);
    if (code == 0)
        code = -1;
    if (fp != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vcause(fp, code, fmt, ap);
        va_end(ap);
    }
    return code;
}

int sk_task_fail(sk_step *self, sk_task *task, int code, const char *fmt, ...)
{
    struct flow_proc *fp = hook_proc(self);
    struct step_worker *w = current_worker;
    if (code == 0)
        code = -1;
    if (fp == NULL || w == NULL || task == NULL || task < w->tasks ||
        task >= w->tasks + w->st->batch)
        return SK_EINVAL;
    task->status = code;
    int i = w->task_of[task - w->tasks];
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->causes[i], FLOW_MESSAGE, fmt, ap);
        va_end(ap);
    } else {
        w->causes[i][0] = '\0';
    }
    return code;
}

/* A status for the whole flow, in this process's own slot (the parent
 * believes it only from there); the state word tells the other processes
 * at once. ap may be NULL: no message. */
static int announce(sk_step *self, enum flow_status status, const char *fmt, va_list *ap)
{
    struct flow_proc *fp = hook_proc(self);
    if (fp == NULL)
        return SK_ESTATE;
    struct sk_flow *f = fp->flow;
    struct flow_slot *slot = flow_slot_of(f, fp->global);
    if (fmt != NULL && ap != NULL)
        vsnprintf(slot->message, sizeof slot->message, fmt, *ap);
    atomic_store(&slot->status, status);
    if (status == FLOW_STATUS_ERROR) {
        atomic_store(&f->ctl->state, FLOW_FAILED);
    } else {
        uint32_t running = FLOW_RUNNING;
        atomic_store(&f->ctl->finish_step, fp->step);
        atomic_compare_exchange_strong(&f->ctl->state, &running, FLOW_FINISHING);
    }
    flow_wake_all(f);
    return SK_OK;
}

int sk_step_finish(sk_step *self)
{
    return announce(self, FLOW_STATUS_FINISH, NULL, NULL);
}

int sk_step_error(sk_step *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = announce(self, FLOW_STATUS_ERROR, fmt, &ap);
    va_end(ap);
    return rc == SK_OK ? SK_EPROCESS : rc;
}

int sk_step_process(const sk_step *self)
{
    struct flow_proc *fp = hook_proc(self);
    return fp != NULL ? fp->index : -1;
}

int sk_step_index(const sk_step *self)
{
    return self != NULL && self->impl != NULL ? self->impl->index : -1;
}

const char *sk_step_session_dir(const sk_step *self)
{
    if (self == NULL || self->impl == NULL || self->impl->flow == NULL)
        return NULL;
    const char *path = self->impl->flow->session.path;
    return path[0] != '\0' ? path : NULL;
}
