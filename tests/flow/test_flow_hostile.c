/* SPDX-License-Identifier: MIT */
/*
 * Flows, hostile steps: a step's process is an untrusted peer that can write
 * every byte of the arena it shares with the parent (control block, every
 * slot, every ring's control words and data) and of the payload area. Its
 * hooks reach the flow's internals (flow/flow_internal.h: in a hook,
 * self->impl is the struct sk_flow_step, ->flow the struct sk_flow as it
 * was forked, ->current this process) and scribble on them:
 *
 *   frames    forged frames into the ring to the parent: wrong kind, count
 *             0, a huge count, lengths that do not match, ids never
 *             submitted, replays of tasks already forwarded, slots out of
 *             range, another task in flight twice in one frame
 *   rings     the control words of the ring to the parent, between steps
 *             (written by its producer or by its consumer) and from the
 *             parent: head far ahead or misaligned, tail ahead or rewound
 *             (replays), closed early, the doorbell and futex words
 *   slots     garbage in its own and other processes' slots: statuses,
 *             messages without a NUL, ready flags, counters, the hand,
 *             the handle and queue-wait timers (then metrics are read)
 *   control   flow_ctl.state and finish_step at random
 *   failures  forged FAILED frames: step, process, kind, section out of
 *             range, message and cause without a NUL
 *   payloads  a task's sk_payload moved outside the area, across blocks,
 *             onto a freed range or another live payload
 *   tpl       corrupt images in the output entries of a tpl flow
 *   hangs     a handle (or stop hook) that never returns and ignores
 *             SIGTERM, with and without a handle timeout
 *
 * Whatever was written, the parent must not crash, must return from every
 * call within a bound, must never deliver a task twice or one it was not
 * given, every submitted task comes out exactly once (SK_OK or a failure),
 * and after sk_flow_release no process of the flow is left (every pid the
 * hooks and the parent saw is gone).
 *
 * HOSTILE_TRACE=1 prints what each ring case and a few others came to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "codec/message.h"
#include "core/runtime.h"
#include "flow/flow_internal.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#define OP_BOUND 20.0 /* seconds any call of the parent may take, at most */
#define ADD0 1        /* what step 0 adds to a record */
#define ADD1 1000     /* what step 1 adds */
#define MAX_PIDS 1024
#define ENTRY_MAX 256 /* bytes of a ring entry the forgers copy, at most */
#define STOP_TIMEOUT 1.0

/* ------------------------------------------------------------ shared state */

/* What the steps' processes did, in memory shared with all of them (made
 * before the flow: restarted processes are forked from the state at start). */
struct shared {
    _Atomic int n_pids;
    _Atomic int pids[MAX_PIDS]; /* every process a hook ran in, and the parent's view */
    _Atomic long calls, handled, starts, fired, hangs;
    _Atomic long collected; /* what the test has collected so far */
    _Atomic long forged_corrupt, forged_late;
    _Atomic long mismatches;               /* a step saw something it should not have */
    _Atomic long corrupted;                /* tpl images spoiled */
    _Atomic int ring_done;                 /* a one-shot ring scribble happened */
    _Atomic unsigned char forged_ids[256]; /* a forged failure of this task went out */
};

static void note_pid(struct shared *sh, pid_t pid)
{
    if (pid <= 0)
        return;
    int n = atomic_load(&sh->n_pids);
    for (int i = 0; i < n && i < MAX_PIDS; i++)
        if (atomic_load(&sh->pids[i]) == pid)
            return;
    int at = atomic_fetch_add(&sh->n_pids, 1);
    if (at < MAX_PIDS)
        atomic_store(&sh->pids[at], pid);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ------------------------------------------------------------ the steps */

enum mode {
    M_BEHAVE,
    M_FORGE_FRAMES, /* forged frames into the ring to the parent */
    M_RING,         /* a ring's control words (where, word) */
    M_SLOTS,        /* garbage in its own slot and another's */
    M_SLOT_ERROR,   /* an error status with an unterminated message in another's slot */
    M_PEER_HAND,    /* another process's hand_count set huge */
    M_CTL,          /* flow_ctl at random */
    M_FAILURES,     /* forged FAILED frames */
    M_HANG,         /* handle never returns on task `on`, ignoring SIGTERM */
    M_HANG_STOP,    /* the stop hook never returns, ignoring SIGTERM */
    M_DIE,          /* crashes on tasks >= `on` (restarts: config) */
    M_READY,        /* the start hook says every process is ready */
    M_SLOW_START,   /* the start hook takes a while */
};

/* Which ring a ring scribble hits, in a flow of two steps of one process:
 * the ring to the parent (by step 1, its producer), the ring between the
 * steps (by step 0, its producer, or step 1, its consumer), the ring from
 * the parent (by step 0, its consumer). */
enum ring_where { RW_OUT, RW_MID_PRODUCER, RW_MID_CONSUMER, RW_IN, RW_COUNT };
enum ring_word {
    RV_HEAD_FAR,
    RV_HEAD_MISALIGNED,
    RV_TAIL_AHEAD,
    RV_TAIL_REWIND,
    RV_CLOSED,
    RV_ARMED,
    RV_OTHERS,
    RV_COUNT
};
static const char *const ring_where_names[] = {"out", "mid(producer)", "mid(consumer)", "in"};
static const char *const ring_word_names[] = {"head far",       "head misaligned", "tail ahead",
                                              "tail rewound",   "closed early",    "armed",
                                              "futex and hints"};

typedef struct {
    sk_step base;
    enum mode mode;
    int64_t add;       /* added to every record */
    int64_t final_add; /* what every step together adds: forged copies carry it */
    uint64_t on;
    long times; /* M_HANG: how often */
    bool hang_writes_state;
    enum ring_where where;
    enum ring_word word;
    struct shared *sh;
} hostile;

#define H(s) SK_CONTAINER_OF(s, hostile, base)

typedef struct {
    int64_t value;
    int64_t pad[3];
} task32;

static struct sk_flow *flow_of(sk_step *self)
{
    return self->impl->flow;
}

static struct flow_proc *me(sk_step *self)
{
    return self->impl->current;
}

/* The ring entry (struct flow_entry, then the record) of a task of a plain
 * flow: hooks see the record in place, right after its entry. */
static unsigned char *entry_of(sk_task *t)
{
    return (unsigned char *)t->record - sizeof(struct flow_entry);
}

/* This process's ring to the parent (its step must be the last). */
static struct sk_endpoint *to_parent(sk_step *self)
{
    struct sk_flow *f = flow_of(self);
    return &flow_ring_of(f, f->n_steps, me(self)->index, 0, 1)->writer;
}

static bool forge(struct sk_endpoint *ep, const void *bytes, size_t len)
{
    void *dst;
    if (sk_ring_reserve(ep, len, &dst) != SK_OK)
        return false;
    memcpy(dst, bytes, len);
    sk_ring_commit(ep);
    return true;
}

static size_t put_frame(unsigned char *buf, uint32_t kind, uint32_t count)
{
    struct flow_frame fr = {.kind = kind, .count = count, .sent_ns = 0};
    memcpy(buf, &fr, sizeof fr);
    return sizeof fr;
}

static void ignore_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&set, sigs[i]);
    }
    sigprocmask(SIG_BLOCK, &set, NULL);
}

/* Never returns; with writes_state, keeps saying the flow runs. */
static void hang_forever(sk_step *self, bool writes_state)
{
    ignore_signals();
    struct sk_flow *f = flow_of(self);
    for (volatile unsigned long i = 0;; i++)
        if (writes_state && (i & 0xffff) == 0)
            atomic_store(&f->ctl->state, FLOW_RUNNING);
}

/* --- forged frames to the parent */

static void forge_frames(hostile *h, sk_task *tasks, size_t n)
{
    struct sk_flow *f = flow_of(&h->base);
    struct sk_flow_step *st = h->base.impl;
    struct flow_proc *fp = me(&h->base);
    struct sk_endpoint *ep = to_parent(&h->base);
    size_t es = f->entry_size;
    static unsigned char old[32][ENTRY_MAX]; /* entries this process forwarded before */
    static int n_old, next_old;
    unsigned char buf[8192], e[ENTRY_MAX];
    long corrupt = 0, late = 0;
    if (es > ENTRY_MAX || st->index != f->n_steps - 1) {
        atomic_fetch_add(&h->sh->mismatches, 1);
        return;
    }
    const unsigned char *first = entry_of(&tasks[0]);

    /* Frames the parent must refuse whole. */
    size_t at = put_frame(buf, 0x0badf00d, 1); /* wrong kind */
    memcpy(buf + at, first, es);
    corrupt += forge(ep, buf, at + es);
    at = put_frame(buf, FLOW_FRAME_TASKS, 0); /* count 0 */
    corrupt += forge(ep, buf, at);
    at = put_frame(buf, FLOW_FRAME_TASKS, UINT32_MAX); /* huge count */
    memcpy(buf + at, first, es);
    corrupt += forge(ep, buf, at + es);
    at = put_frame(buf, FLOW_FRAME_TASKS, 2); /* says 2, holds 1 and a bit */
    memcpy(buf + at, first, es);
    memset(buf + at + es, 0, 8);
    corrupt += forge(ep, buf, at + es + 8);
    at = put_frame(buf, FLOW_FRAME_TASKS, 1); /* says 1, holds 1 and a bit */
    corrupt += forge(ep, buf, at + es + 8);
    at = put_frame(buf, FLOW_FRAME_TASKS, 1); /* says 1, holds less */
    corrupt += forge(ep, buf, at + es - 8);
    corrupt += forge(ep, buf, 4); /* shorter than a frame header */
    at = put_frame(buf, FLOW_FRAME_FAILED, 2);
    memset(buf + at, 0x5a, sizeof(struct flow_entry) + sizeof(struct flow_failure));
    corrupt += forge(ep, buf, at + sizeof(struct flow_entry) + sizeof(struct flow_failure));
    at = put_frame(buf, FLOW_FRAME_FAILED, 1); /* too short for a failure */
    corrupt += forge(ep, buf, at + sizeof(struct flow_entry));

    /* Entries the parent must drop one by one. Ids never submitted: */
    at = put_frame(buf, FLOW_FRAME_TASKS, 3);
    for (uint32_t k = 0; k < 3; k++) {
        struct flow_entry fe = {.id = ((uint64_t)1 << 40) + k, .slot = k};
        memset(buf + at + k * es, 0x77, es);
        memcpy(buf + at + k * es, &fe, sizeof fe);
    }
    late += 3 * forge(ep, buf, at + 3 * es);
    /* A live id with slots out of range: */
    at = put_frame(buf, FLOW_FRAME_TASKS, 3);
    const uint32_t bad_slots[3] = {UINT32_MAX, (uint32_t)f->queue, (uint32_t)f->queue + 1};
    for (uint32_t k = 0; k < 3; k++) {
        struct flow_entry fe = {.id = tasks[0].id, .slot = bad_slots[k]};
        memcpy(buf + at + k * es, first, es);
        memcpy(buf + at + k * es, &fe, sizeof fe);
    }
    late += 3 * forge(ep, buf, at + 3 * es);
    /* Tasks this process forwarded in earlier batches, again: */
    if (n_old > 0) {
        uint32_t k = (uint32_t)(n_old < 8 ? n_old : 8);
        at = put_frame(buf, FLOW_FRAME_TASKS, k);
        for (uint32_t j = 0; j < k; j++)
            memcpy(buf + at + j * es, old[(next_old + 32 - 1 - (int)j) % 32], es);
        late += k * forge(ep, buf, at + k * es);
    }
    /* Another task in flight (in the other process's hand, or one of this
     * batch), twice in one frame: the parent takes it once. */
    struct flow_slot *peer = flow_slot_of(f, st->procs[(fp->index + 1) % st->processes].global);
    uint32_t have = atomic_load_explicit(&peer->hand_count, memory_order_acquire);
    if (st->processes > 1 && have > 0 && have <= st->batch)
        memcpy(e, flow_hand(peer), es);
    else
        memcpy(e, entry_of(&tasks[n - 1]), es);
    struct flow_entry fe;
    memcpy(&fe, e, sizeof fe);
    task32 rec;
    memcpy(&rec, e + sizeof fe, sizeof rec);
    rec.value = (int64_t)fe.id + h->final_add;
    memcpy(e + sizeof fe, &rec, sizeof rec);
    at = put_frame(buf, FLOW_FRAME_TASKS, 2);
    memcpy(buf + at, e, es);
    memcpy(buf + at + es, e, es);
    late += forge(ep, buf, at + 2 * es);

    for (size_t i = 0; i < n; i++) {
        memcpy(old[next_old], entry_of(&tasks[i]), es);
        next_old = (next_old + 1) % 32;
        if (n_old < 32)
            n_old++;
    }
    atomic_fetch_add(&h->sh->forged_corrupt, corrupt);
    atomic_fetch_add(&h->sh->forged_late, late);
    atomic_fetch_add(&h->sh->fired, 1);
}

/* --- ring control words */

static void scribble_ring(hostile *h, long call)
{
    struct sk_flow *f = flow_of(&h->base);
    int edge = h->where == RW_OUT ? 2 : h->where == RW_IN ? 0 : 1;
    struct sk_ring_ctl *c = flow_ring_of(f, edge, 0, 0, 1)->writer.out.ctl;
    bool repeat = h->word == RV_ARMED || h->word == RV_OTHERS;
    if (atomic_load(&h->sh->collected) < 10)
        return; /* mid-stream: after the parent has taken some */
    if (!repeat && atomic_exchange(&h->sh->ring_done, 1) != 0)
        return;
    uint64_t head = atomic_load(&c->head), tail = atomic_load(&c->tail);
    switch (h->word) {
    case RV_HEAD_FAR:
        atomic_store(&c->head, tail + ((uint64_t)1 << 40));
        break;
    case RV_HEAD_MISALIGNED:
        atomic_store(&c->head, head + 3);
        break;
    case RV_TAIL_AHEAD:
        atomic_store(&c->tail, head + 4096);
        break;
    case RV_TAIL_REWIND:
        atomic_store(&c->tail, 0); /* every frame since the start, again */
        break;
    case RV_CLOSED:
        atomic_store(&c->closed, 1);
        break;
    case RV_ARMED:
        atomic_store(&c->armed, (call & 1) ? 0 : 0xdeadbeefu);
        break;
    case RV_OTHERS:
        atomic_store(&c->waiting, 1);
        atomic_store(&c->wseq, (uint32_t)call * 2654435761u);
        atomic_store(&c->room_waiting, 1);
        atomic_store(&c->rseq, (uint32_t)call * 40503u);
        atomic_store(&c->reader_cpu, (call & 1) ? -7 : INT32_MAX);
        break;
    case RV_COUNT:
        break;
    }
    atomic_fetch_add(&h->sh->fired, 1);
}

/* --- slots */

static void garbage_timer(struct sk_timer *t, uint64_t *rng, long variant)
{
    switch (variant % 5) {
    case 0:
        t->count = UINT64_MAX;
        t->total_ns = INT64_MAX;
        break;
    case 1:
        for (int i = 0; i < SK_TIMER_EXACT; i++)
            t->exact[i] = (int64_t)rnd(rng);
        t->count = SK_TIMER_EXACT;
        break;
    case 2:
        for (size_t b = 0; b < SK_TIMER_BUCKETS; b++)
            t->hist[b] = rnd(rng);
        t->count = (uint64_t)1 << 62;
        break;
    case 3:
        t->count = 3;
        t->min_ns = INT64_MAX;
        t->max_ns = INT64_MIN;
        t->total_ns = -5;
        t->mean_ns = NAN;
        t->m2_ns2 = -INFINITY;
        t->exact[0] = INT64_MIN;
        t->exact[1] = INT64_MAX;
        t->exact[2] = -1;
        break;
    default:
        for (size_t b = 0; b < SK_TIMER_BUCKETS; b++)
            t->hist[b] = UINT64_MAX;
        t->count = SK_TIMER_EXACT + 1;
        t->min_ns = -1;
        t->max_ns = (int64_t)rnd(rng);
        t->mean_ns = INFINITY;
        t->m2_ns2 = NAN;
        break;
    }
}

static void scribble_slot(struct flow_slot *s, uint64_t *rng, long call, bool own)
{
    static const uint32_t statuses[] = {77, UINT32_MAX, 3, 0x80000000u};
    atomic_store(&s->status, statuses[call % 4]);
    atomic_store(&s->ready, (uint32_t)rnd(rng));
    s->code = (int32_t)rnd(rng);
    memset(s->message, 'X', sizeof s->message); /* no NUL */
    uint64_t v = (call & 1) ? UINT64_MAX : rnd(rng);
    atomic_store(&s->tasks_in, v);
    atomic_store(&s->tasks_out, v);
    atomic_store(&s->tasks_failed, v);
    atomic_store(&s->tasks_skipped, v);
    atomic_store(&s->batches, v);
    for (int b = 0; b < SK_FLOW_BATCH_BINS; b++)
        atomic_store(&s->batch_bins[b], UINT64_MAX - (uint64_t)b);
    garbage_timer(&s->handle_timer, rng, call);
    garbage_timer(&s->queue_timer, rng, call + 1);
    if (own) { /* this process's own hand: it empties it after this batch */
        atomic_store(&s->hand_count, UINT32_MAX);
        atomic_store(&s->hand_tries, UINT32_MAX - 1);
    }
}

/* --- forged failures */

static void forge_failure(hostile *h, sk_task *t)
{
    struct flow_failure why;
    memset(&why, 0, sizeof why);
    unsigned long long id = (unsigned long long)t->id;
    switch ((t->id / 3) % 5) {
    case 0: /* everything out of range, strings without a NUL */
        why.step = 1000;
        why.process = -7;
        why.kind = 0x7fffffff;
        why.section = -99;
        why.reason = 12345;
        why.code = INT32_MIN;
        why.lives_spent = -3;
        why.timeout = NAN;
        memset(why.message, 'M', sizeof why.message);
        memset(why.cause, 'C', sizeof why.cause);
        break;
    case 1: /* a real step, a process it does not have */
        why.step = 0;
        why.process = 99;
        why.kind = -1;
        why.section = INT32_MAX;
        why.reason = -100000;
        snprintf(why.message, sizeof why.message, "forged failure %llu", id);
        memset(why.cause, 'C', sizeof why.cause);
        break;
    case 2: /* all in range: believed as it is */
        why.step = 0;
        why.process = 0;
        why.kind = SK_RUN_ERROR;
        why.section = SK_RUN;
        why.reason = SK_EPROCESS;
        why.code = 17;
        why.lives_spent = 1;
        snprintf(why.message, sizeof why.message, "forged %llu", id);
        snprintf(why.cause, sizeof why.cause, "cause %llu", id);
        break;
    case 3:
        why.step = INT32_MIN;
        why.process = INT32_MAX;
        why.kind = INT32_MIN;
        why.section = SK_FULL_RUN + 1;
        why.reason = SK_OK;
        memset(why.message, 0xff, sizeof why.message);
        break;
    default:
        why.step = -1;
        why.process = 0;
        why.reason = SK_ETIMEDOUT;
        break;
    }
    struct sk_endpoint *ep = to_parent(&h->base);
    unsigned char buf[sizeof(struct flow_frame) + sizeof(struct flow_entry) + sizeof why];
    size_t at = put_frame(buf, FLOW_FRAME_FAILED, 1);
    memcpy(buf + at, entry_of(t), sizeof(struct flow_entry));
    memcpy(buf + at + sizeof(struct flow_entry), &why, sizeof why);
    /* Marked before it is published (the parent may read it at once),
     * unmarked when it did not fit (the parent reads the real result only
     * after this hook returned). */
    if (t->id < 256)
        atomic_store(&h->sh->forged_ids[t->id], 1);
    if (forge(ep, buf, sizeof buf))
        atomic_fetch_add(&h->sh->fired, 1);
    else if (t->id < 256)
        atomic_store(&h->sh->forged_ids[t->id], 0);
    /* And failures of tasks that are not there: dropped. */
    struct flow_entry ghost = {.id = ((uint64_t)1 << 50) + t->id, .slot = 0};
    memcpy(buf + at, &ghost, sizeof ghost);
    forge(ep, buf, sizeof buf);
    ghost = (struct flow_entry){.id = t->id, .slot = UINT32_MAX};
    memcpy(buf + at, &ghost, sizeof ghost);
    forge(ep, buf, sizeof buf);
}

/* --- the class */

static int h_start(sk_step *self)
{
    hostile *h = H(self);
    note_pid(h->sh, getpid());
    atomic_fetch_add(&h->sh->starts, 1);
    struct sk_flow *f = flow_of(self);
    if (h->mode == M_READY)
        for (int g = 0; g < f->n_procs; g++)
            atomic_store(&flow_slot_of(f, g)->ready, 1);
    if (h->mode == M_SLOW_START)
        skt_sleep(0.3); /* a slow start hook: the work it stands for */
    return 0;
}

static int h_stop(sk_step *self)
{
    hostile *h = H(self);
    if (h->mode == M_HANG_STOP) {
        atomic_fetch_add(&h->sh->hangs, 1);
        hang_forever(self, false);
    }
    return 0;
}

static int h_handle(sk_step *self, sk_task *tasks, size_t n)
{
    hostile *h = H(self);
    struct shared *sh = h->sh;
    struct sk_flow *f = flow_of(self);
    struct flow_proc *fp = me(self);
    static pid_t noted;
    static uint64_t rng;
    if (noted != getpid()) {
        noted = getpid();
        note_pid(sh, noted);
        rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)noted;
    }
    long call = atomic_fetch_add(&sh->calls, 1);

    switch (h->mode) {
    case M_HANG:
        for (size_t i = 0; i < n; i++)
            if (tasks[i].id == h->on && atomic_fetch_add(&sh->hangs, 1) < h->times)
                hang_forever(self, h->hang_writes_state);
        break;
    case M_DIE:
        for (size_t i = 0; i < n; i++)
            if (tasks[i].id >= h->on) {
                if (h->times > 0) { /* its slot says all is well, then it dies */
                    struct flow_slot *slot = flow_slot_of(f, fp->global);
                    atomic_store(&slot->ready, 1);
                    atomic_store(&slot->tasks_out, UINT64_MAX / 2);
                    atomic_store(&slot->hand_count, 0);
                }
                atomic_fetch_add(&sh->hangs, 1);
                skt_die_by(SIGSEGV);
            }
        break;
    default:
        break;
    }

    for (size_t i = 0; i < n; i++)
        ((task32 *)tasks[i].record)->value += h->add;
    atomic_fetch_add(&sh->handled, (long)n);

    switch (h->mode) {
    case M_FORGE_FRAMES:
        forge_frames(h, tasks, n);
        break;
    case M_RING:
        scribble_ring(h, call);
        break;
    case M_SLOTS:
        scribble_slot(flow_slot_of(f, fp->global), &rng, call, true);
        scribble_slot(flow_slot_of(f, (fp->global + 1) % f->n_procs), &rng, call + 1, false);
        atomic_fetch_add(&sh->fired, 1);
        break;
    case M_SLOT_ERROR:
        if (call >= 2 && fp->index == 0 && atomic_exchange(&sh->ring_done, 1) == 0) {
            struct flow_slot *victim = flow_slot_of(f, 0); /* step 0, process 0 */
            memset(victim->message, 'Z', sizeof victim->message);
            atomic_store(&victim->status, FLOW_STATUS_ERROR);
            atomic_fetch_add(&sh->fired, 1);
        }
        break;
    case M_PEER_HAND:
        if (fp->index == 0 && atomic_load(&sh->fired) < 3) {
            struct sk_flow_step *st = self->impl;
            struct flow_slot *peer = flow_slot_of(f, st->procs[1].global);
            atomic_store(&peer->hand_count, UINT32_MAX);
            atomic_fetch_add(&sh->fired, 1);
        }
        break;
    case M_CTL: {
        static const uint32_t states[] = {
            FLOW_RUNNING, FLOW_STOPPING, FLOW_FINISHING, FLOW_FAILED, 4,
            77,           UINT32_MAX,    0x80000000u};
        static const int32_t steps[] = {INT32_MIN, -1, 0, 1, 2, FLOW_MAX_STEPS, INT32_MAX, 7};
        uint64_t r = rnd(&rng);
        atomic_store(&f->ctl->state, (r & 8) ? (uint32_t)(r >> 32) : states[r & 7]);
        atomic_store(&f->ctl->finish_step, (r & 0x80) ? (int32_t)(r >> 16) : steps[(r >> 4) & 7]);
        atomic_fetch_add(&sh->fired, 1);
        break;
    }
    case M_FAILURES:
        for (size_t i = 0; i < n; i++)
            if (tasks[i].id % 3 == 0)
                forge_failure(h, &tasks[i]);
        break;
    default:
        break;
    }
    return 0;
}

static const sk_step_class hostile_class = {
    .name = "hostile", .start = h_start, .handle = h_handle, .stop = h_stop};

/* ------------------------------------------------------------ a run */

struct run {
    sk_flow *flow;
    struct shared *sh;
    hostile *step[4];
    int n_steps;
};

static void release_run(void *arg)
{
    struct run *rn = arg;
    if (rn->flow != NULL)
        sk_flow_release(rn->flow);
    rn->flow = NULL;
}

/* A flow (not started) whose release is the first thing teardown does. */
static struct run *new_run(const sk_flow_config *cfg)
{
    struct run *rn = xcalloc(1, sizeof *rn);
    rn->sh = skt_shared(sizeof *rn->sh);
    sk_flow_config c = *cfg;
    if (c.stop_timeout == 0)
        c.stop_timeout = STOP_TIMEOUT;
    assert_rc(sk_flow_create(&rn->flow, &c), SK_OK);
    skt_defer_first(release_run, rn);
    return rn;
}

static hostile *add_step(struct run *rn, const sk_step_class *cls, enum mode mode, int64_t add,
                         int procs, size_t batch)
{
    hostile *h = xcalloc(1, sizeof *h);
    assert_rc(sk_step_init(&h->base, cls), SK_OK);
    h->mode = mode;
    h->add = add;
    h->on = UINT64_MAX;
    h->sh = rn->sh;
    h->base.config.processes = procs;
    h->base.config.batch_size = batch;
    rn->step[rn->n_steps++] = h;
    return h;
}

/* The pids the parent knows: each process's supervisor and worker. */
static void note_parent_pids(struct run *rn)
{
    struct sk_flow *f = rn->flow;
    for (int g = 0; f != NULL && g < f->n_procs; g++) {
        note_pid(rn->sh, sk_pid(&f->procs[g].base));
        note_pid(rn->sh, f->procs[g].base.rt->child_pid);
    }
}

static void start_run(struct run *rn)
{
    int64_t total = 0;
    for (int i = 0; i < rn->n_steps; i++)
        total += rn->step[i]->add;
    for (int i = 0; i < rn->n_steps; i++) {
        rn->step[i]->final_add = total;
        assert_rc(sk_flow_add(rn->flow, &rn->step[i]->base), SK_OK);
    }
    /* The processes crash the plain way: cmocka's handlers, inherited by
     * fork, would catch a fault in a step process and go on running the
     * test there (its teardown included). */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    struct sigaction saved[sizeof sigs / sizeof sigs[0]];
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, &saved[i]);
    double t0 = skt_now();
    int rc = sk_flow_start(rn->flow);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &saved[i], NULL);
    assert_rc(rc, SK_OK);
    assert_dbl_lt(skt_now() - t0, OP_BOUND);
    note_parent_pids(rn);
    /* Every process's supervisor and worker is known from here on (unless
     * a forged ready flag let the start return early). */
    if (rn->step[0]->mode != M_READY)
        assert_int_ge(atomic_load(&rn->sh->n_pids), 2 * rn->flow->n_procs);
}

/* Gone: no such process any more (a process of the flow is reaped by its
 * supervisor, a supervisor by the parent). */
static bool pid_gone(pid_t pid)
{
    return kill(pid, 0) == -1 && errno == ESRCH;
}

static void assert_pids_gone(struct shared *sh)
{
    int n = atomic_load(&sh->n_pids);
    if (n > MAX_PIDS)
        n = MAX_PIDS;
    assert_int_gt(n, 0);
    for (int i = 0; i < n; i++) {
        pid_t pid = atomic_load(&sh->pids[i]);
        if (pid <= 0 || pid == getpid())
            continue;
        double deadline = skt_now() + 10.0;
        while (!pid_gone(pid) && skt_now() < deadline)
            skt_sleep(0.001);
        if (!pid_gone(pid))
            fail_msg("process %d of the flow still runs after sk_flow_release", (int)pid);
    }
}

/* Releases the flow (bounded), then nothing of it may be left. */
static void end_run(struct run *rn)
{
    note_parent_pids(rn);
    double t0 = skt_now();
    sk_flow_release(rn->flow);
    rn->flow = NULL;
    assert_dbl_lt(skt_now() - t0, OP_BOUND);
    assert_pids_gone(rn->sh);
    assert_no_children();
}

/* ------------------------------------------------------------ the ledger */

/* Every task that comes out, checked: an id that was submitted, never
 * twice; an SK_OK record with the value the steps give it; a failure with
 * a status and terminated strings. */
struct ledger {
    long n;   /* ids 0 .. n-1 were submitted */
    long cap; /* ids the ledger has room for */
    unsigned char *seen;
    int *status;
    long out, ok, failed;
    int64_t add;       /* an SK_OK record's value is id + add; INT64_MIN: unchecked */
    bool ordered;      /* ids come in order */
    struct shared *sh; /* collected is mirrored there */
    int n_steps;
    void (*extra)(const struct ledger *lg, const sk_flow_result *r); /* more checks */
};

static struct ledger *new_ledger(struct run *rn, long cap, int64_t add)
{
    struct ledger *lg = xcalloc(1, sizeof *lg);
    lg->cap = cap;
    lg->seen = xcalloc((size_t)cap, 1);
    lg->status = xcalloc((size_t)cap, sizeof *lg->status);
    lg->add = add;
    lg->sh = rn->sh;
    lg->n_steps = rn->n_steps;
    return lg;
}

static void check_failure(const struct ledger *lg, const sk_flow_result *r)
{
    assert_cmp(strnlen(r->error.message, sizeof r->error.message), <, sizeof r->error.message);
    assert_cmp(strnlen(r->error.cause, sizeof r->error.cause), <, sizeof r->error.cause);
    assert_int_ge(r->step, -1);
    assert_int_lt(r->step, lg->n_steps);
    assert_int_ge(r->process, -1);
    if (r->step < 0)
        assert_int_equal(r->process, -1);
    assert_cmp((unsigned)r->error.kind, <=, (unsigned)SK_CRASH_ERROR);
    assert_int_ge(r->error.section, SK_NO_SECTION);
    assert_int_le(r->error.section, SK_FULL_RUN);
}

static void ledger_take(struct ledger *lg, const sk_flow_result *r, const task32 *t)
{
    assert_cmp(r->id, <, (uint64_t)lg->n); /* never a task it was not given */
    if (lg->seen[r->id])
        fail_msg("task %llu came out twice", (unsigned long long)r->id);
    if (lg->ordered)
        assert_cmp(r->id, ==, (uint64_t)lg->out);
    lg->seen[r->id] = 1;
    lg->status[r->id] = r->status;
    lg->out++;
    atomic_store(&lg->sh->collected, lg->out);
    if (lg->extra != NULL)
        lg->extra(lg, r);
    if (r->status == SK_OK) {
        lg->ok++;
        if (t != NULL && lg->add != INT64_MIN)
            assert_int_equal(t->value, (int64_t)r->id + lg->add);
        return;
    }
    lg->failed++;
    assert_true(r->status == SK_EPROCESS || r->status == SK_ETIMEDOUT || r->status == SK_ECLOSED ||
                r->status == SK_ECORRUPT);
    check_failure(lg, r);
}

/* Every submitted task came out, once. */
static void ledger_complete(const struct ledger *lg)
{
    for (long i = 0; i < lg->n; i++)
        if (lg->seen[i] != 1)
            fail_msg("task %ld never came out (%ld of %ld did)", i, lg->out, lg->n);
    assert_int_equal(lg->out, lg->n);
}

/* Submits tasks first .. first+k-1 (value = id) until SK_ECLOSED; how many
 * went in. */
static long submit_range(struct run *rn, long first, long k, double task_timeout)
{
    for (long i = 0; i < k; i++) {
        task32 t = {.value = first + i};
        uint64_t id = UINT64_MAX;
        double t0 = skt_now();
        int rc = sk_flow_submit(rn->flow, &t, 5.0, task_timeout, &id);
        assert_dbl_lt(skt_now() - t0, 6.0);
        if (rc == SK_ECLOSED)
            return i;
        assert_rc(rc, SK_OK);
        assert_int_equal(id, (uint64_t)(first + i));
    }
    return k;
}

/* Collects for up to `seconds`: true at SK_ECLOSED. With idle > 0, returns
 * (false) once nothing came for idle seconds or everything submitted is
 * out. */
static bool collect_for(struct run *rn, struct ledger *lg, double seconds, double idle)
{
    double end = skt_now() + seconds;
    for (;;) {
        double left = end - skt_now();
        if (left <= 0 || (idle > 0 && lg->out == lg->n))
            return false;
        double wait = idle > 0 ? idle : 0.5;
        if (wait > left)
            wait = left;
        task32 t;
        sk_flow_result r;
        memset(&r, 0, sizeof r);
        double t0 = skt_now();
        int rc = sk_flow_collect(rn->flow, wait, &t, &r);
        assert_dbl_lt(skt_now() - t0, wait + 5.0);
        if (rc == SK_ECLOSED)
            return true;
        if (rc == SK_ETIMEDOUT) {
            if (idle > 0)
                return false;
            continue;
        }
        assert_rc(rc, SK_OK);
        ledger_take(lg, &r, &t);
    }
}

/* Submits n tasks in rounds, collecting what comes between them. */
static void run_paced(struct run *rn, struct ledger *lg, long n, long round, double task_timeout)
{
    long sub = 0;
    while (sub < n) {
        long k = n - sub < round ? n - sub : round;
        long got = submit_range(rn, sub, k, task_timeout);
        sub += got;
        lg->n = sub;
        if (got < k)
            break;
        collect_for(rn, lg, 5.0, 0.3);
    }
}

/* Closes the flow and takes everything out. The flow should end by itself
 * within end_within seconds; when it does not, sk_flow_stop ends it.
 * Every call is bounded; every submitted task comes out once. Returns
 * whether the flow ended without a stop; *wait_rc gets sk_flow_wait's. */
static bool finish_run(struct run *rn, struct ledger *lg, double end_within, int *wait_rc)
{
    sk_flow *f = rn->flow;
    assert_rc(sk_flow_close(f), SK_OK);
    bool by_itself = collect_for(rn, lg, end_within, 0);
    if (!by_itself) {
        double t0 = skt_now();
        assert_rc(sk_flow_stop(f), SK_OK);
        assert_dbl_lt(skt_now() - t0, f->config.stop_timeout + 10.0);
        assert_true(collect_for(rn, lg, 10.0, 0));
    }
    double t0 = skt_now();
    int rc = sk_flow_wait(f, OP_BOUND);
    assert_dbl_lt(skt_now() - t0, OP_BOUND + 1.0);
    assert_int_not_equal(rc, SK_ETIMEDOUT);
    ledger_complete(lg);
    if (wait_rc != NULL)
        *wait_rc = rc;
    return by_itself;
}

/* Reads the metrics and every number in them; writes them as Prometheus
 * text to /dev/null when that is built. */
static void exercise_metrics(sk_flow *f)
{
    sk_flow_metrics m;
    double t0 = skt_now();
    assert_rc(sk_flow_metrics_read(f, &m), SK_OK);
    assert_dbl_lt(skt_now() - t0, 5.0);
    assert_int_equal(m.steps, f->n_steps);
    volatile double sink = 0;
    for (int s = 0; s < m.steps; s++) {
        const sk_flow_step_metrics *st = &m.step[s];
        assert_non_null(st->name);
        assert_int_equal(st->index, s);
        sink += (double)(st->tasks_in + st->tasks_out + st->tasks_failed + st->tasks_skipped +
                         st->batches + st->queue_depth + st->restarts);
        for (int b = 0; b < SK_FLOW_BATCH_BINS; b++)
            sink += (double)st->batch_sizes[b];
        const sk_timer *timers[2] = {st->handle, st->queue_wait};
        for (int k = 0; k < 2; k++) {
            const sk_timer *t = timers[k];
            assert_non_null(t);
            sink += (double)sk_timer_count(t) + sk_timer_total(t) + sk_timer_mean(t) +
                    sk_timer_median(t) + sk_timer_min(t) + sk_timer_max(t) + sk_timer_stdev(t) +
                    sk_timer_variance(t) + sk_timer_last(t) + sk_timer_percentile(t, 0) +
                    sk_timer_percentile(t, 1) + sk_timer_percentile(t, 99.9) +
                    sk_timer_percentile(t, 100);
        }
    }
    sink += sk_timer_median(m.latency) + sk_timer_percentile(m.latency, 100);
    sink += (double)(m.submitted + m.completed + m.failed + m.in_flight) + m.throughput;
    (void)sink;
    FILE *null = fopen("/dev/null", "w"); /* the exporter reads every field too */
    assert_non_null(null);
    assert_rc(sk_flow_metrics_prometheus(&m, NULL, null), SK_OK);
    assert_rc(sk_flow_metrics_prometheus(&m, "hostile", null), SK_OK);
    fclose(null);
    sk_flow_metrics_free(&m);
}

/* ------------------------------------------------------------ 1. frames */

/* The last step (two processes) writes, after each batch, forged frames
 * into its ring to the parent: every refusable frame, entries of ids never
 * submitted and of slots out of range, replays of its own earlier tasks,
 * and another task in flight twice in one frame. Every task comes out once,
 * with its value; the parent counted every forged frame as corrupt. */
static void forged_output_frames(bool ordered)
{
    sk_flow_config cfg = {.task_size = sizeof(task32), .ordered = ordered};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_BEHAVE, ADD0, 1, 4);
    add_step(rn, &hostile_class, M_FORGE_FRAMES, ADD1, 2, 4);
    start_run(rn);
    long n = 160;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    lg->ordered = ordered;
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    int rc;
    assert_true(finish_run(rn, lg, OP_BOUND, &rc));
    assert_rc(rc, SK_OK);
    assert_null(sk_flow_error(rn->flow));
    assert_int_equal(lg->ok, n);
    assert_int_equal(atomic_load(&rn->sh->mismatches), 0);
    assert_int_gt(atomic_load(&rn->sh->fired), 0);
    assert_int_equal(rn->flow->corrupt, (uint64_t)atomic_load(&rn->sh->forged_corrupt));
    assert_int_ge(rn->flow->late, (uint64_t)atomic_load(&rn->sh->forged_late));
    assert_int_gt(atomic_load(&rn->sh->forged_late), 0);
    end_run(rn);
}

static void test_forged_output_frames(void **state)
{
    (void)state;
    forged_output_frames(false);
}

static void test_forged_output_frames_ordered(void **state)
{
    (void)state;
    forged_output_frames(true);
}

/* ------------------------------------------------------------ 2. rings */

/* One ring word scribbled once (or, for the doorbell and futex words, at
 * every batch) after the parent has taken 10 tasks, in a flow of two steps
 * of one process. The flow ends by itself or by sk_flow_stop, every call
 * within its bound, every task out once (those the scribble cost fail). */
static void ring_case(enum ring_where where, enum ring_word word)
{
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    hostile *s0 = add_step(rn, &hostile_class, M_BEHAVE, ADD0, 1, 2);
    hostile *s1 = add_step(rn, &hostile_class, M_BEHAVE, ADD1, 1, 2);
    hostile *who = where == RW_OUT || where == RW_MID_CONSUMER ? s1 : s0;
    who->mode = M_RING;
    who->where = where;
    who->word = word;
    start_run(rn);
    long n = 60;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    double t0 = skt_now();
    run_paced(rn, lg, n, 20, 0);
    int rc;
    bool by_itself = finish_run(rn, lg, 3.0, &rc);
    if (getenv("HOSTILE_TRACE") != NULL)
        print_message("ring %-13s %-15s: %ld ok, %ld failed of %ld, %s, wait %s, %.2f s, corrupt "
                      "%llu, late %llu\n",
                      ring_where_names[where], ring_word_names[word], lg->ok, lg->failed, lg->n,
                      by_itself ? "ended" : "stopped", sk_strerror(rc), skt_now() - t0,
                      (unsigned long long)rn->flow->corrupt, (unsigned long long)rn->flow->late);
    assert_int_gt(atomic_load(&rn->sh->fired), 0);
    if (word == RV_ARMED || word == RV_OTHERS) {
        /* Hints only: nothing is lost, the flow ends as ever. */
        assert_true(by_itself);
        assert_rc(rc, SK_OK);
        assert_int_equal(lg->ok, n);
    }
    end_run(rn);
}

static void ring_cases(enum ring_where where)
{
    for (int w = 0; w < RV_COUNT; w++) {
        ring_case(where, (enum ring_word)w);
        skt_bound(60.0); /* each case gets its own */
    }
}

static void test_ring_out(void **state)
{
    (void)state;
    ring_cases(RW_OUT);
}

static void test_ring_mid_producer(void **state)
{
    (void)state;
    ring_cases(RW_MID_PRODUCER);
}

static void test_ring_mid_consumer(void **state)
{
    (void)state;
    ring_cases(RW_MID_CONSUMER);
}

static void test_ring_in(void **state)
{
    (void)state;
    ring_cases(RW_IN);
}

/* ------------------------------------------------------------ 3. slots */

/* Every process writes garbage into its own slot and the next process's
 * (statuses out of range, messages without a NUL, ready flags, counters,
 * its own hand, both timers) after every batch, while the parent collects
 * and reads the metrics. No status counts: the flow ends normally, every
 * task with its value, and the metrics only hold wrong numbers. */
static void test_slots_garbage(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_SLOTS, ADD0, 2, 2);
    add_step(rn, &hostile_class, M_SLOTS, ADD1, 2, 2);
    start_run(rn);
    long n = 120;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    double end = skt_now() + OP_BOUND;
    while (lg->out < n && skt_now() < end) {
        long before = lg->out;
        collect_for(rn, lg, 1.0, 0.2);
        if (lg->out / 16 != before / 16)
            exercise_metrics(rn->flow);
    }
    exercise_metrics(rn->flow);
    int rc;
    assert_true(finish_run(rn, lg, OP_BOUND, &rc));
    assert_rc(rc, SK_OK);
    assert_null(sk_flow_error(rn->flow));
    assert_int_equal(lg->ok, n);
    assert_int_gt(atomic_load(&rn->sh->fired), 0);
    exercise_metrics(rn->flow); /* after the end too: the slots are still there */
    end_run(rn);
}

/* A process of step 1 puts an error status, with a message of 256 bytes and
 * no NUL, into step 0's slot: the flow fails, blaming the slot's owner,
 * with a terminated cause; every task comes out once. */
static void test_slot_error_status(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_BEHAVE, ADD0, 1, 1);
    add_step(rn, &hostile_class, M_SLOT_ERROR, ADD1, 2, 1);
    start_run(rn);
    long n = 60;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    run_paced(rn, lg, n, 10, 0);
    int rc;
    finish_run(rn, lg, OP_BOUND, &rc);
    assert_int_equal(atomic_load(&rn->sh->fired), 1);
    assert_rc(rc, SK_EPROCESS);
    const sk_flow_result *e = sk_flow_error(rn->flow);
    assert_non_null(e);
    assert_int_equal(e->step, 0);
    assert_int_equal(e->process, 0);
    assert_int_equal(strnlen(e->error.cause, sizeof e->error.cause), FLOW_MESSAGE - 1);
    assert_cmp(strnlen(e->error.message, sizeof e->error.message), <, sizeof e->error.message);
    assert_non_null(strstr(e->error.message, "Error status from step"));
    end_run(rn);
}

/* A process of step 0 sets its peer's hand_count to UINT32_MAX (a few
 * times). The parent never reads a hand: whatever the peer does with it,
 * every task comes out once and the flow ends. */
static void test_peer_hand_count(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    hostile *s0 = add_step(rn, &hostile_class, M_PEER_HAND, ADD0, 2, 4);
    add_step(rn, &hostile_class, M_BEHAVE, ADD1, 1, 4);
    s0->base.config.lives = 2;
    start_run(rn);
    long n = 80;
    struct ledger *lg = new_ledger(rn, n, INT64_MIN); /* replayed stale hands: values unchecked */
    run_paced(rn, lg, n, 8, 0);
    int rc;
    finish_run(rn, lg, OP_BOUND, &rc);
    assert_int_gt(atomic_load(&rn->sh->fired), 0);
    if (getenv("HOSTILE_TRACE") != NULL)
        print_message("peer hand: %ld ok, %ld failed, wait %s, victim restarts %d\n", lg->ok,
                      lg->failed, sk_strerror(rc), sk_restarts(&rn->flow->procs[1].base));
    end_run(rn);
}

/* A peer writes UINT32_MAX into the victim's hand_count while the victim
 * gathers: the check that a frame fits in the hand must not wrap (it once
 * did, and the victim wrote a frame ~4 G entries past its slot). No step
 * process may crash because of a word a peer wrote. */
static void test_peer_hand_count_no_crash(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_PEER_HAND, ADD0, 2, 4);
    add_step(rn, &hostile_class, M_BEHAVE, ADD1, 1, 4);
    start_run(rn);
    long n = 80;
    struct ledger *lg = new_ledger(rn, n, INT64_MIN);
    run_paced(rn, lg, n, 8, 0);
    finish_run(rn, lg, OP_BOUND, NULL);
    assert_int_gt(atomic_load(&rn->sh->fired), 0);
    assert_int_equal(sk_restarts(&rn->flow->procs[1].base), 0);
    assert_int_equal(atomic_load(&rn->sh->starts), 3); /* no process started twice */
    end_run(rn);
}

/* ------------------------------------------------------------ 4. control */

/* Every batch writes random values into flow_ctl.state and finish_step.
 * The parent takes no decision from them: the flow ends (processes may
 * leave early: their tasks fail), with no error, every task out once. */
static void test_ctl_garbage(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_CTL, ADD0, 2, 2);
    add_step(rn, &hostile_class, M_CTL, ADD1, 2, 2);
    start_run(rn);
    long n = 120;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    run_paced(rn, lg, n, 20, 0);
    int rc;
    finish_run(rn, lg, OP_BOUND, &rc);
    assert_int_gt(atomic_load(&rn->sh->fired), 0);
    assert_rc(rc, SK_OK);
    assert_null(sk_flow_error(rn->flow));
    end_run(rn);
}

/* ------------------------------------------------------------ 5. failures */

/* The last step sends a forged FAILED frame, ahead of the real result, for
 * every third task: steps and processes out of range, kinds and sections
 * out of their enums, message and cause without a NUL. Those tasks fail
 * with what was believable, sanitized; the others come out right. */
/* The forged failure a task got (when its frame fit the ring), sanitized. */
static void check_forged_failure(const struct ledger *lg, const sk_flow_result *r)
{
    if (!atomic_load(&lg->sh->forged_ids[r->id])) {
        assert_rc(r->status, SK_OK);
        return;
    }
    assert_rc(r->status, SK_EPROCESS);
    assert_int_equal(r->error.item, (long)r->id);
    assert_int_ge(r->error.lives_spent, 0);
    assert_int_lt(r->error.reason, 0);
    char want[64];
    switch ((r->id / 3) % 5) {
    case 0:
        assert_int_equal(r->step, -1);
        assert_int_equal(r->process, -1);
        assert_int_equal(strlen(r->error.message), sizeof r->error.message - 1);
        assert_int_equal(r->error.message[0], 'M');
        assert_int_equal(strlen(r->error.cause), FLOW_CAUSE);
        assert_int_equal(r->error.kind, SK_PROCESS_ERROR);
        assert_int_equal(r->error.section, SK_NO_SECTION);
        assert_rc(r->error.reason, SK_ECORRUPT);
        break;
    case 1:
        assert_int_equal(r->step, 0);
        assert_int_equal(r->process, -1);
        snprintf(want, sizeof want, "forged failure %llu", (unsigned long long)r->id);
        assert_string_equal(r->error.message, want);
        assert_int_equal(strlen(r->error.cause), FLOW_CAUSE);
        assert_int_equal(r->error.kind, SK_PROCESS_ERROR);
        assert_int_equal(r->error.section, SK_NO_SECTION);
        break;
    case 2:
        assert_int_equal(r->step, 0);
        assert_int_equal(r->process, 0);
        assert_int_equal(r->error.kind, SK_RUN_ERROR);
        assert_int_equal(r->error.section, SK_RUN);
        assert_rc(r->error.reason, SK_EPROCESS);
        assert_int_equal(r->error.code, 17);
        snprintf(want, sizeof want, "forged %llu", (unsigned long long)r->id);
        assert_string_equal(r->error.message, want);
        snprintf(want, sizeof want, "cause %llu", (unsigned long long)r->id);
        assert_string_equal(r->error.cause, want);
        break;
    case 3:
        assert_int_equal(r->step, -1);
        assert_int_equal(r->process, -1);
        assert_int_equal(r->error.kind, SK_PROCESS_ERROR);
        assert_int_equal(r->error.section, SK_NO_SECTION);
        assert_rc(r->error.reason, SK_ECORRUPT);
        break;
    default:
        assert_int_equal(r->step, -1);
        assert_int_equal(r->process, -1);
        assert_rc(r->error.reason, SK_ETIMEDOUT);
        break;
    }
}

static void test_forged_failures(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_FAILURES, ADD0, 1, 4);
    start_run(rn);
    long n = 60;
    struct ledger *lg = new_ledger(rn, n, ADD0);
    lg->extra = check_forged_failure;
    run_paced(rn, lg, n, 12, 0);
    int rc;
    assert_true(finish_run(rn, lg, OP_BOUND, &rc));
    assert_rc(rc, SK_OK);
    long forged = atomic_load(&rn->sh->fired);
    if (getenv("HOSTILE_TRACE") != NULL)
        print_message("forged failures: %ld of %ld, late %llu\n", forged, (n + 2) / 3,
                      (unsigned long long)rn->flow->late);
    assert_int_gt(forged, n / 6); /* most fit: the parent reads between rounds */
    assert_int_equal(lg->failed, forged);
    assert_int_ge(rn->flow->late, (uint64_t)forged); /* the real results after them */
    end_run(rn);
}

/* ------------------------------------------------------------ 6. payloads */

#define P_SIZE 1024
#define P_TASKS 28
#define P_KINDS 7

typedef struct {
    sk_payload p;     /* the task's own */
    sk_payload other; /* another task's, live */
    sk_payload freed; /* a range the parent freed before submitting */
    int64_t id;
    int64_t pad;
} ptask;

/* Checks its own payload, marks it, then changes the handle by id % 7:
 * 0 lowers the size (fine), 1 beyond the area, 2 an offset that wraps,
 * 3 a huge size, 4 across into the next block, 5 onto the freed range,
 * 6 onto another live payload. */
static int payload_handle(sk_step *self, sk_task *tasks, size_t n)
{
    hostile *h = H(self);
    struct sk_flow *f = flow_of(self);
    note_pid(h->sh, getpid());
    for (size_t i = 0; i < n; i++) {
        ptask *t = tasks[i].record;
        unsigned char *b = sk_step_payload(self, &t->p);
        if (b == NULL || t->id != (int64_t)tasks[i].id || b[0] != (unsigned char)t->id ||
            b[P_SIZE - 1] != (unsigned char)t->id) {
            atomic_fetch_add(&h->sh->mismatches, 1);
            continue;
        }
        b[0] = 0xab;
        switch (t->id % P_KINDS) {
        case 0:
            t->p.size = P_SIZE / 2;
            break;
        case 1:
            t->p.offset = f->payload_size + 4096;
            break;
        case 2:
            t->p.offset = UINT64_MAX - 8;
            t->p.size = 64;
            break;
        case 3:
            t->p.size = UINT64_MAX;
            break;
        case 4:
            t->p.offset += P_SIZE / 2;
            t->p.size = P_SIZE;
            break;
        case 5:
            t->p = t->freed;
            break;
        default:
            t->p = t->other;
            break;
        }
        long kind = t->id % P_KINDS;
        if ((kind == 1 || kind == 2 || kind == 3) && sk_step_payload(self, &t->p) != NULL)
            atomic_fetch_add(&h->sh->mismatches, 1); /* the step side refuses them too */
    }
    atomic_fetch_add(&h->sh->handled, (long)n);
    return 0;
}

static const sk_step_class payload_class = {
    .name = "payloads", .start = h_start, .handle = payload_handle};

static void test_payload_handles(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(ptask), .payload_area = 64 << 10};
    struct run *rn = new_run(&cfg);
    add_step(rn, &payload_class, M_BEHAVE, 0, 1, 4);
    start_run(rn);
    sk_flow *f = rn->flow;
    sk_payload own[P_TASKS], decoy;
    for (int i = 0; i < P_TASKS; i++) {
        void *data;
        assert_rc(sk_flow_payload_alloc(f, P_SIZE, &own[i], &data), SK_OK);
        memset(data, i & 0xff, P_SIZE);
    }
    assert_rc(sk_flow_payload_alloc(f, P_SIZE, &decoy, NULL), SK_OK);
    assert_rc(sk_flow_payload_free(f, &decoy), SK_OK);
    for (int i = 0; i < P_TASKS; i++) {
        ptask t = {.p = own[i], .other = own[(i + 1) % P_TASKS], .freed = decoy, .id = i};
        uint64_t id;
        assert_rc(sk_flow_submit(f, &t, 5.0, 0, &id), SK_OK);
        assert_int_equal(id, (uint64_t)i);
    }
    assert_rc(sk_flow_close(f), SK_OK);
    const char *area = f->payload_base;
    for (int k = 0; k < P_TASKS; k++) {
        ptask t;
        sk_flow_result r;
        assert_rc(sk_flow_collect(f, OP_BOUND, &t, &r), SK_OK);
        assert_rc(r.status, SK_OK);
        assert_int_equal(t.id, (int64_t)r.id);
        const unsigned char *b = sk_flow_payload(f, &t.p);
        switch (t.id % P_KINDS) {
        case 0:
            assert_ptr_equal(b, area + own[t.id].offset);
            assert_int_equal(b[0], 0xab);
            assert_int_equal(b[1], t.id & 0xff);
            break;
        case 6: /* a live payload: a handle cannot be told from its owner's */
            assert_ptr_equal(b, area + own[(t.id + 1) % P_TASKS].offset);
            break;
        default:
            assert_null(b);
            break;
        }
        switch (t.id % P_KINDS) {
        case 1:
        case 2:
        case 4:
        case 5: /* no payload starts there: refused, the allocator untouched */
            assert_rc(sk_flow_payload_free(f, &t.p), SK_EINVAL);
            break;
        default:
            break;
        }
    }
    assert_rc(sk_flow_collect(f, OP_BOUND, NULL, NULL), SK_ECLOSED);
    assert_rc(sk_flow_wait(f, OP_BOUND), SK_OK);
    assert_int_equal(atomic_load(&rn->sh->mismatches), 0);
    assert_int_equal(atomic_load(&rn->sh->handled), P_TASKS);
    sk_payload forged = {.offset = own[3].offset + 64, .size = 64};
    assert_rc(sk_flow_payload_free(f, &forged), SK_EINVAL);
    forged.offset = UINT64_MAX;
    assert_rc(sk_flow_payload_free(f, &forged), SK_EINVAL);
    for (int i = 0; i < P_TASKS; i++)
        assert_rc(sk_flow_payload_free(f, &own[i]), SK_OK);
    assert_rc(sk_flow_payload_free(f, &own[0]), SK_EINVAL); /* twice */
    assert_rc(sk_flow_payload_free(f, &decoy), SK_EINVAL);
    assert_int_equal(f->payload_used, 0);
    /* The whole area, in one piece: the free list was not corrupted. */
    sk_payload all;
    void *data;
    assert_rc(sk_flow_payload_alloc(f, f->payload_size, &all, &data), SK_OK);
    assert_int_equal(all.offset, 0);
    assert_ptr_equal(data, area);
    assert_ptr_equal(sk_flow_payload(f, &all), area);
    assert_rc(sk_flow_payload_free(f, &all), SK_OK);
    end_run(rn);
}

/* ------------------------------------------------------------ 7. tpl */

#define T_BATCHES 6
#define T_BATCH 4

typedef struct {
    int32_t n;
    char *s;
} ttask;

static int pack_va(const char *fmt, void **img, size_t *len, ...)
{
    va_list ap;
    va_start(ap, len);
    int rc = sk_msg_pack(fmt, ap, img, len);
    va_end(ap);
    return rc;
}

static bool tpl_victim(uint64_t id)
{
    return id % 4 == 1;
}

/* Spoils the image in one wire cell, by victim: 0 random bytes, 1 a huge
 * length word, 2 the longest length and random bytes, 3 a valid image of
 * another format, 4 the empty image. */
static void spoil_image(unsigned char *wire, size_t wire_size, uint64_t id, uint64_t *rng)
{
    uint32_t len;
    memcpy(&len, wire, sizeof len);
    switch ((id / 4) % 5) {
    case 0:
        if (len > wire_size - sizeof len)
            len = (uint32_t)(wire_size - sizeof len);
        for (uint32_t i = 0; i < len; i++)
            wire[sizeof len + i] = (unsigned char)rnd(rng);
        break;
    case 1:
        len = 0xfffffff0u;
        memcpy(wire, &len, sizeof len);
        break;
    case 2:
        len = (uint32_t)(wire_size - sizeof len);
        memcpy(wire, &len, sizeof len);
        for (uint32_t i = 0; i < len; i++)
            wire[sizeof len + i] = (unsigned char)rnd(rng);
        break;
    case 3: {
        struct {
            int32_t a, b;
        } v = {7, 9};
        void *img = NULL;
        size_t n = 0;
        if (pack_va("S(ii)", &img, &n, &v) == SK_OK && n <= wire_size - sizeof len) {
            len = (uint32_t)n;
            memcpy(wire, &len, sizeof len);
            memcpy(wire + sizeof len, img, n);
        }
        free(img);
        break;
    }
    default:
        len = 0;
        memcpy(wire, &len, sizeof len);
        break;
    }
}

/* Walks the frames this process has published to the parent and the parent
 * has not read yet, spoiling the images of the victims. */
static void spoil_pending(sk_step *self, uint64_t *rng)
{
    hostile *h = H(self);
    struct sk_flow *f = flow_of(self);
    struct sk_ring *r = &to_parent(self)->out;
    static uint64_t done; /* spoiled up to here */
    uint64_t head = atomic_load(&r->ctl->head), tail = atomic_load(&r->ctl->tail);
    uint64_t pos = tail > done ? tail : done;
    for (int guard = 0; pos < head && guard < 1000; guard++) {
        uint64_t off = pos % r->size;
        uint32_t hd[2];
        memcpy(hd, r->data + off, sizeof hd);
        if (hd[0] == 0x534b5750u) { /* ring.c's wrap marker */
            pos += r->size - off;
            continue;
        }
        if (hd[0] != 0x534b4d47u) /* ring.c's frame magic */
            break;
        unsigned char *p = (unsigned char *)r->data + off + sizeof hd;
        struct flow_frame fr;
        memcpy(&fr, p, sizeof fr);
        if (fr.kind == FLOW_FRAME_TASKS && hd[1] == sizeof fr + (size_t)fr.count * f->entry_size)
            for (uint32_t i = 0; i < fr.count; i++) {
                unsigned char *e = p + sizeof fr + (size_t)i * f->entry_size;
                struct flow_entry fe;
                memcpy(&fe, e, sizeof fe);
                if (tpl_victim(fe.id)) {
                    spoil_image(e + sizeof fe, f->wire_size, fe.id, rng);
                    atomic_fetch_add(&h->sh->corrupted, 1);
                }
            }
        pos += (sizeof hd + hd[1] + 7) & ~(uint64_t)7;
    }
    done = pos;
}

static int tpl_handle(sk_step *self, sk_task *tasks, size_t n)
{
    hostile *h = H(self);
    static uint64_t rng = 0x2545f4914f6cdd1dull;
    note_pid(h->sh, getpid());
    spoil_pending(self, &rng); /* the batches before this one, still unread */
    for (size_t i = 0; i < n; i++) {
        ttask *t = tasks[i].record;
        char want[32];
        snprintf(want, sizeof want, "task %llu", (unsigned long long)tasks[i].id);
        if (t->s == NULL || strcmp(t->s, want) != 0 || t->n != (int32_t)tasks[i].id)
            atomic_fetch_add(&h->sh->mismatches, 1);
        t->n += ADD1;
    }
    atomic_fetch_add(&h->sh->handled, (long)n);
    return 0;
}

static const sk_step_class tpl_class = {.name = "tpl", .start = h_start, .handle = tpl_handle};

/* A tpl flow ("S(is)") whose step spoils the images of every fourth task in
 * its output entries after publishing them (the test keeps the parent from
 * reading until the next batch has started). The spoiled tasks never come
 * out as SK_OK: unreadable images fail their task with SK_ECORRUPT as
 * they come out; images that validate but are not of the flow's format
 * fail to decode (SK_EFORMAT). The others come out right. */
static void test_tpl_corrupt_images(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(ttask), .format = "S(is)", .image_size = 200};
    struct run *rn = new_run(&cfg);
    add_step(rn, &tpl_class, M_BEHAVE, ADD1, 1, T_BATCH);
    start_run(rn);
    sk_flow *f = rn->flow;
    long n = T_BATCHES * T_BATCH + 1; /* the last task only makes the step look back once more */
    char text[T_BATCH][32];
    for (long b = 0; b * T_BATCH < n; b++) {
        long k = n - b * T_BATCH < T_BATCH ? n - b * T_BATCH : T_BATCH;
        ttask recs[T_BATCH];
        for (long i = 0; i < k; i++) {
            long id = b * T_BATCH + i;
            snprintf(text[i], sizeof text[i], "task %ld", id);
            recs[i] = (ttask){.n = (int32_t)id, .s = text[i]};
        }
        size_t sub;
        assert_rc(sk_flow_submit_many(f, recs, (size_t)k, 5.0, 2.0, NULL, &sub), SK_OK);
        assert_int_equal(sub, (size_t)k);
        /* Submitting with room never reads the outputs: what the step
         * published stays unread until it spoils it. */
        long want = b * T_BATCH + k;
        skt_wait_until(atomic_load(&rn->sh->handled) >= want, OP_BOUND);
    }
    assert_int_ge(atomic_load(&rn->sh->corrupted), T_BATCHES);
    assert_int_equal(atomic_load(&rn->sh->mismatches), 0);
    unsigned char *seen = xcalloc((size_t)n, 1);
    for (long k = 0; k < n; k++) {
        ttask t = {0};
        sk_flow_result r;
        double t0 = skt_now();
        assert_rc(sk_flow_collect(f, OP_BOUND, &t, &r), SK_OK);
        assert_dbl_lt(skt_now() - t0, OP_BOUND);
        assert_cmp(r.id, <, (uint64_t)n);
        assert_int_equal(seen[r.id], 0);
        seen[r.id] = 1;
        if (!tpl_victim(r.id)) {
            char want[32];
            snprintf(want, sizeof want, "task %llu", (unsigned long long)r.id);
            assert_rc(r.status, SK_OK);
            assert_int_equal(t.n, (int32_t)r.id + ADD1);
            assert_non_null(t.s);
            assert_string_equal(t.s, want);
        } else if ((r.id / 4) % 5 <= 2) { /* refused as corrupt as it came out */
            assert_rc(r.status, SK_ECORRUPT);
            assert_int_equal(r.step, 0);
            assert_non_null(strstr(r.error.message, "not a valid image"));
        } else { /* valid images, not of this format */
            if (getenv("HOSTILE_TRACE") != NULL)
                print_message("tpl task %llu: %s: %s\n", (unsigned long long)r.id,
                              sk_strerror(r.status), r.error.message);
            assert_rc(r.status, SK_EFORMAT); /* decoded at collect: fails there */
            assert_cmp(strnlen(r.error.message, sizeof r.error.message), <, sizeof r.error.message);
        }
        free(t.s);
    }
    assert_int_ge(f->corrupt, 3);
    assert_rc(sk_flow_close(f), SK_OK);
    assert_rc(sk_flow_collect(f, OP_BOUND, NULL, NULL), SK_ECLOSED);
    assert_rc(sk_flow_wait(f, OP_BOUND), SK_OK);
    end_run(rn);
}

/* ------------------------------------------------------------ 8. hangs */

/* A handle that never returns (SIGTERM and friends ignored) with a handle
 * timeout: its process is killed and restarted, the batch tried again. */
static void test_hang_handle_timeout(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    hostile *s = add_step(rn, &hostile_class, M_HANG, ADD0, 1, 2);
    s->on = 3;
    s->times = 1;
    s->base.config.lives = 2;
    s->base.config.timeouts.handle = 0.3;
    start_run(rn);
    long n = 10;
    struct ledger *lg = new_ledger(rn, n, ADD0);
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    int rc;
    double t0 = skt_now();
    assert_true(finish_run(rn, lg, OP_BOUND, &rc));
    assert_dbl_lt(skt_now() - t0, OP_BOUND);
    assert_rc(rc, SK_OK);
    assert_int_equal(lg->ok, n);
    assert_int_equal(atomic_load(&rn->sh->hangs), 2); /* hung once, then let through */
    assert_int_equal(sk_restarts(&rn->flow->procs[0].base), 1);
    assert_int_equal(atomic_load(&rn->sh->starts), 2);
    end_run(rn);
}

/* The same without a handle timeout (and the hung handle keeps writing
 * "running" into the control block): sk_flow_wait times out on time,
 * sk_flow_stop ends everything within stop_timeout and a bound, the tasks
 * that did not get through fail. */
static void test_hang_stop(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_BEHAVE, ADD0, 1, 2);
    hostile *s = add_step(rn, &hostile_class, M_HANG, ADD1, 1, 2);
    s->on = 3;
    s->times = 1000;
    s->hang_writes_state = true;
    start_run(rn);
    long n = 10;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    skt_wait_until(atomic_load(&rn->sh->hangs) >= 1, OP_BOUND);
    assert_rc(sk_flow_close(rn->flow), SK_OK);
    double t0 = skt_now();
    assert_rc(sk_flow_wait(rn->flow, 0.5), SK_ETIMEDOUT);
    assert_dbl_lt(skt_now() - t0, 0.5 + 2.0);
    t0 = skt_now();
    assert_rc(sk_flow_stop(rn->flow), SK_OK);
    assert_dbl_lt(skt_now() - t0, STOP_TIMEOUT + 10.0);
    assert_true(collect_for(rn, lg, OP_BOUND, 0));
    ledger_complete(lg);
    assert_int_gt(lg->failed, 0);
    assert_int_equal(lg->status[3], SK_ECLOSED);
    t0 = skt_now();
    assert_int_not_equal(sk_flow_wait(rn->flow, OP_BOUND), SK_ETIMEDOUT);
    assert_dbl_lt(skt_now() - t0, OP_BOUND);
    end_run(rn);
}

/* Released while a handle hangs, without close or stop: bounded, nothing
 * left. */
static void test_hang_release(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    hostile *s = add_step(rn, &hostile_class, M_HANG, ADD0, 2, 1);
    s->on = 0;
    s->times = 1000;
    s->hang_writes_state = true;
    start_run(rn);
    assert_int_equal(submit_range(rn, 0, 4, 0), 4);
    skt_wait_until(atomic_load(&rn->sh->hangs) >= 1, OP_BOUND);
    double t0 = skt_now();
    end_run(rn);
    assert_dbl_lt(skt_now() - t0, STOP_TIMEOUT + 10.0);
}

/* A stop hook that never returns, ignoring SIGTERM: the flow cannot end by
 * itself; stop ends it, and what was handled came out. */
static void test_hang_stop_hook(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_BEHAVE, ADD0, 1, 2);
    add_step(rn, &hostile_class, M_HANG_STOP, ADD1, 1, 2);
    start_run(rn);
    long n = 10;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    int rc;
    assert_false(finish_run(rn, lg, 2.0, &rc));
    assert_int_equal(atomic_load(&rn->sh->hangs), 1);
    assert_int_equal(lg->ok, n); /* all handled before the stop hook */
    end_run(rn);
}

/* ------------------------------------------------------- dead processes */

/* The last step's only process crashes on every task from 3 on; it has one
 * restart, then it has ended for good. Control: the flow ends with an
 * error, every task out once. */
static void test_dead_process_ends_flow(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    hostile *s = add_step(rn, &hostile_class, M_DIE, ADD0, 1, 1);
    s->on = 3;
    s->base.config.restarts = 1;
    start_run(rn);
    long n = 10;
    struct ledger *lg = new_ledger(rn, n, ADD0);
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    double t0 = skt_now();
    assert_rc(sk_flow_wait(rn->flow, OP_BOUND), SK_EPROCESS);
    assert_dbl_lt(skt_now() - t0, OP_BOUND);
    int rc;
    assert_true(finish_run(rn, lg, OP_BOUND, &rc));
    assert_rc(rc, SK_EPROCESS);
    assert_int_equal(lg->ok, 3);
    end_run(rn);
}

/* A process that ended for good without closing its rings, its slot
 * forged to look healthy just before: the parent goes by what it sees (the
 * process ended, its rings are open), so the flow fails with SK_EPROCESS
 * instead of waiting for ever for rings nobody will close. (It once trusted
 * a word in the slot saying the rings were closed.) */
static void test_dead_process_forged_slot(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    hostile *s = add_step(rn, &hostile_class, M_DIE, ADD0, 1, 1);
    s->on = 3;
    s->times = 1; /* forge its slot */
    s->base.config.restarts = 1;
    start_run(rn);
    long n = 10;
    struct ledger *lg = new_ledger(rn, n, ADD0);
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    double t0 = skt_now();
    assert_rc(sk_flow_wait(rn->flow, 10.0), SK_EPROCESS);
    assert_dbl_lt(skt_now() - t0, 10.5);
    int rc;
    assert_true(finish_run(rn, lg, OP_BOUND, &rc));
    end_run(rn);
}

/* ------------------------------------------------------------ start */

/* Step 0's start hook marks every slot ready while step 1's processes are
 * still in their (slow) start hooks: start may return early, the tasks
 * wait in the rings and all come out. */
static void test_ready_forged(void **state)
{
    (void)state;
    sk_flow_config cfg = {.task_size = sizeof(task32)};
    struct run *rn = new_run(&cfg);
    add_step(rn, &hostile_class, M_READY, ADD0, 1, 2);
    add_step(rn, &hostile_class, M_SLOW_START, ADD1, 2, 2);
    start_run(rn);
    long n = 40;
    struct ledger *lg = new_ledger(rn, n, ADD0 + ADD1);
    assert_int_equal(submit_range(rn, 0, n, 0), n);
    lg->n = n;
    int rc;
    assert_true(finish_run(rn, lg, OP_BOUND, &rc));
    assert_rc(rc, SK_OK);
    assert_int_equal(lg->ok, n);
    assert_int_equal(atomic_load(&rn->sh->starts), 3);
    end_run(rn);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_forged_output_frames),
        SKT_TEST(test_forged_output_frames_ordered),
        SKT_TEST(test_ring_out),
        SKT_TEST(test_ring_mid_producer),
        SKT_TEST(test_ring_mid_consumer),
        SKT_TEST(test_ring_in),
        SKT_TEST(test_slots_garbage),
        SKT_TEST(test_slot_error_status),
        SKT_TEST(test_peer_hand_count),
        SKT_TEST(test_peer_hand_count_no_crash),
        SKT_TEST(test_ctl_garbage),
        SKT_TEST(test_forged_failures),
        SKT_TEST(test_payload_handles),
        SKT_TEST(test_tpl_corrupt_images),
        SKT_TEST(test_hang_handle_timeout),
        SKT_TEST(test_hang_stop),
        SKT_TEST(test_hang_release),
        SKT_TEST(test_hang_stop_hook),
        SKT_TEST(test_dead_process_ends_flow),
        SKT_TEST(test_dead_process_forged_slot),
        SKT_TEST(test_ready_forged),
    };
    return skt_run(argc, argv, tests);
}
