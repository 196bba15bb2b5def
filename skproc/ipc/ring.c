/* SPDX-License-Identifier: MIT */
/* The ring: see ring.h for the layout, the trust rule and the waking. */
#include "ipc/ring.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/futex.h"
#include "os/shm.h"
#include "os/spin.h"
#include "skproc.h"

#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#define FRAME_MAGIC 0x534b4d47u /* "SKMG": a frame */
#define WRAP_MAGIC 0x534b5750u  /* "SKWP": the rest of the data area is skipped */
#define FRAME_HEADER 8
#define FRAME_SLACK 64
#define RELEASE_GRAIN ((uint64_t)1 << 20)
#define PREFAULT_BYTES ((uint64_t)256 << 10)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL, harmlessly */
#endif

struct frame_header {
    uint32_t magic;
    uint32_t len;
};

static uint64_t align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

size_t sk_ring_data_size(size_t capacity, size_t max_message)
{
    if (max_message > (SIZE_MAX - FRAME_SLACK) / 2)
        return 0;
    size_t frames = 2 * (max_message + FRAME_SLACK);
    if (capacity > SIZE_MAX - frames)
        return 0;
    return sk_page_round(capacity + frames);
}

void sk_ring_init(struct sk_ring *r, struct sk_ring_ctl *ctl, char *data, size_t data_size,
                  size_t capacity, size_t max_message, uint64_t file_offset)
{
    r->ctl = ctl;
    r->data = data;
    r->size = data_size;
    r->capacity = capacity;
    r->max_message = max_message;
    r->file_offset = file_offset;
}

void sk_ring_wake(struct sk_ring *r)
{
    atomic_fetch_add(&r->ctl->wseq, 1); /* a full barrier: orders head before the checks */
    if (atomic_load_explicit(&r->ctl->waiting, memory_order_relaxed))
        sk_futex_wake_all(&r->ctl->wseq);
}

static void ring_publish(struct sk_ring *r, int doorbell, uint64_t old_head, uint64_t new_head)
{
    struct sk_ring_ctl *c = r->ctl;
    atomic_store_explicit(&c->head, new_head, memory_order_release);
    sk_ring_wake(r);
    if (doorbell >= 0 && atomic_load_explicit(&c->armed, memory_order_relaxed) &&
        atomic_load(&c->tail) == old_head)
        sk_doorbell_ring(doorbell);
}

/* Where the next frame of `need` bytes goes. Writes a wrap marker when the
 * frame goes back to offset 0; returns through *old_head the head it found
 * and through *pos where the frame starts.
 *
 * The producer wraps back to offset 0 as soon as it is past `capacity` and
 * the wrap fits, not only at the end of the data area: the frames in flight
 * then live in the first capacity + one frame bytes, whose pages stay warm,
 * instead of marching through the whole area onto fresh pages. */
static int ring_reserve(struct sk_ring *r, uint64_t need, uint64_t *old_head, uint64_t *pos)
{
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_relaxed);
    *old_head = head;
    uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    uint64_t used = head - tail;
    if (used > r->size || (head & 7) != 0)
        return SK_ECORRUPT; /* a tail ahead of head, a ring apart, or a head we never wrote */
    if (used > 0 && used + need > r->capacity)
        return SK_EFULL;
    uint64_t off = head % r->size;
    uint64_t to_end = r->size - off;
    bool wrap = need > to_end || (off >= r->capacity && used + to_end + need <= r->size);
    uint64_t total = wrap ? to_end + need : need;
    if (used + total > r->size)
        return SK_EFULL;
    if (wrap) {
        struct frame_header marker = {.magic = WRAP_MAGIC, .len = 0};
        memcpy(r->data + off, &marker, sizeof marker);
        head += to_end;
    }
    *pos = head;
    return SK_OK;
}

/* Huge frames land on pages given back after the last huge one: fault them
 * in with one call rather than one trap per page. */
static void frame_prefault(char *at, uint64_t len)
{
    if (len < PREFAULT_BYTES)
        return;
    uintptr_t start = (uintptr_t)at & ~(uintptr_t)4095;
    madvise((void *)start, (size_t)((uintptr_t)at + len - start), MADV_POPULATE_WRITE);
}

int sk_ring_reserve(struct sk_endpoint *ep, size_t len, void **dst)
{
    struct sk_ring *r = &ep->out;
    if (len == 0 || len > r->max_message)
        return SK_EINVAL;
    uint64_t need = align8(FRAME_HEADER + len);
    uint64_t pos;
    int rc = ring_reserve(r, need, &ep->reserved_head, &pos);
    if (rc != SK_OK)
        return rc;
    char *at = r->data + pos % r->size;
    frame_prefault(at, need);
    struct frame_header h = {.magic = FRAME_MAGIC, .len = (uint32_t)len};
    memcpy(at, &h, sizeof h);
    ep->reserved_end = pos + need;
    *dst = at + FRAME_HEADER;
    return SK_OK;
}

void sk_ring_commit(struct sk_endpoint *ep)
{
    ring_publish(&ep->out, ep->out_doorbell, ep->reserved_head, ep->reserved_end);
}

int sk_ring_reserve_wait(struct sk_endpoint *ep, size_t len, int64_t deadline_ns, void **dst)
{
    struct sk_ring_ctl *c = ep->out.ctl;
    for (;;) {
        int rc = sk_ring_reserve(ep, len, dst);
        if (rc != SK_EFULL)
            return rc;
        if (ep->reader_gone != NULL && ep->reader_gone(ep->peer_ctx))
            return SK_ECLOSED;
        uint32_t seen = atomic_load(&c->rseq);
        atomic_store(&c->room_waiting, 1);
        atomic_thread_fence(memory_order_seq_cst);
        rc = sk_ring_reserve(ep, len, dst);
        if (rc != SK_EFULL) {
            atomic_store(&c->room_waiting, 0);
            return rc;
        }
        int64_t now = sk_now_ns();
        if (deadline_ns <= now) {
            atomic_store(&c->room_waiting, 0);
            return SK_ETIMEDOUT;
        }
        int64_t wait = deadline_ns - now;
        if (ep->recheck_ns > 0 && wait > ep->recheck_ns)
            wait = ep->recheck_ns; /* the reader may die without a word */
        struct timespec ts = sk_ns_to_timespec(wait);
        sk_futex_wait(&c->rseq, seen, wait >= INT64_MAX / 4 ? NULL : &ts);
        atomic_store(&c->room_waiting, 0);
    }
}

/* A producer sleeps for room: wake it. */
static void ring_wake_producer(struct sk_ring_ctl *c)
{
    atomic_fetch_add(&c->rseq, 1);
    sk_futex_wake_all(&c->rseq);
}

int sk_ring_send(struct sk_endpoint *ep, const void *payload, size_t len)
{
    void *dst;
    int rc = sk_ring_reserve(ep, len, &dst);
    if (rc != SK_OK)
        return rc;
    memcpy(dst, payload, len);
    sk_ring_commit(ep);
    return SK_OK;
}

/* Gives the pages of a consumed frame back to the kernel when it lay beyond
 * the warm window (capacity + one grain): after a burst of huge messages the
 * ring shrinks back to what ordinary traffic keeps resident. */
static void ring_release_frame(const struct sk_endpoint *ep, const struct sk_ring *r, uint64_t off,
                               uint64_t len)
{
    uint64_t warm = (r->capacity + RELEASE_GRAIN) / RELEASE_GRAIN * RELEASE_GRAIN;
    uint64_t end = off + len;
    if (ep->memfd < 0 || end <= warm || len < RELEASE_GRAIN)
        return;
    uint64_t from = off > warm ? off : warm;
    sk_shm_punch(ep->memfd, r->file_offset + from, end - from);
}

/* Everything published is garbage: drop it so the ring goes on. */
static int ring_drop_corrupt(struct sk_ring *r, uint64_t head)
{
    atomic_store_explicit(&r->ctl->tail, head, memory_order_release);
    return SK_ECORRUPT;
}

/* The frame at the tail, if one is there; SK_ETIMEDOUT when empty. Every
 * number read from shared memory is checked against our own copies before
 * it is used: at most one wrap marker is followed, and never one at offset
 * 0, so this returns after two turns at most whatever the peer writes. */
static int ring_front(struct sk_endpoint *ep, const void **payload, size_t *len)
{
    struct sk_ring *r = &ep->in;
    for (;;) {
        uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
        uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_relaxed);
        if (head == tail)
            return SK_ETIMEDOUT;
        uint64_t avail = head - tail;
        uint64_t off = tail % r->size;
        uint64_t to_end = r->size - off;
        struct frame_header h;
        if (avail > r->size || avail < FRAME_HEADER || (off & 7) != 0)
            return ring_drop_corrupt(r, head);
        memcpy(&h, r->data + off, sizeof h);
        if (h.magic == WRAP_MAGIC) {
            if (off == 0 || avail < to_end)
                return ring_drop_corrupt(r, head);
            atomic_store_explicit(&r->ctl->tail, tail + to_end, memory_order_release);
            continue;
        }
        uint64_t need = align8(FRAME_HEADER + (uint64_t)h.len);
        if (h.magic != FRAME_MAGIC || h.len == 0 || h.len > r->max_message || need > avail ||
            need > to_end)
            return ring_drop_corrupt(r, head);
        *payload = r->data + off + FRAME_HEADER;
        *len = h.len;
        ep->peeked = need;
        return SK_OK;
    }
}

void sk_ring_consume(struct sk_endpoint *ep)
{
    struct sk_ring *r = &ep->in;
    uint64_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_relaxed);
    uint64_t frame = ep->peeked;
    ep->peeked = 0;
    /* Pages first, tail second: once the tail moves, the producer may wrap
     * and write its next frame over this range. */
    ring_release_frame(ep, r, tail % r->size, frame);
    atomic_store_explicit(&r->ctl->tail, tail + frame, memory_order_release);
    if (atomic_load_explicit(&r->ctl->room_waiting, memory_order_relaxed))
        ring_wake_producer(r->ctl);
}

bool sk_ring_closed(const struct sk_ring *r)
{
    return atomic_load(&r->ctl->closed) != 0;
}

/* Nothing more will come into `in`: it was closed, or the protocol above
 * says its producer is gone (then it is marked closed, for the other
 * direction's users too). */
static bool ring_in_finished(struct sk_endpoint *ep)
{
    if (sk_ring_closed(&ep->in))
        return true;
    if (ep->peer_gone != NULL && ep->peer_gone(ep->peer_ctx)) {
        atomic_store(&ep->in.ctl->closed, 1);
        /* A doorbell drained a moment ago stays readable from now on. */
        if (ep->in_doorbell >= 0 && atomic_load(&ep->in.ctl->armed))
            sk_doorbell_ring(ep->in_doorbell);
        return true;
    }
    return false;
}

/* The doorbell is drained only when the ring is found empty (and not
 * closed: then it stays readable for good), and the ring looked at again
 * afterwards: so the fd is readable exactly while frames wait, with no
 * system call per frame. */
/* Spins until `in` holds a frame or is closed, for at most spin_ns and
 * never past the deadline. A reply that comes within a few microseconds is
 * caught without the futex sleep and wake-up both sides would pay (the
 * producer wakes only readers that set `waiting`, which a spinning reader
 * has not). Bounded and once per wait, so an idle reader burns spin_ns of
 * CPU per wait, no more.
 *
 * Not when the peer last waited on this very CPU (both pinned to one, say):
 * there a spin only keeps the peer from running, and yielding instead would
 * hand the CPU to any other task for a whole time slice. Each side notes
 * its CPU in the ring it reads when it waits; the peer's note is a hint
 * (the peer can write anything there; it only decides whether we spin). */
static bool ring_has_frame(const void *ctl)
{
    const struct sk_ring_ctl *c = ctl;
    return atomic_load_explicit(&c->head, memory_order_relaxed) !=
               atomic_load_explicit(&c->tail, memory_order_relaxed) ||
           atomic_load_explicit(&c->closed, memory_order_relaxed);
}

static bool ring_spin_for_frame(const struct sk_endpoint *ep, int64_t deadline_ns)
{
    int cpu = sched_getcpu() + 1;
    atomic_store_explicit(&ep->in.ctl->reader_cpu, cpu, memory_order_relaxed);
    if (ep->out.ctl != NULL &&
        atomic_load_explicit(&ep->out.ctl->reader_cpu, memory_order_relaxed) == cpu)
        return false;
    int64_t now = sk_now_ns();
    int64_t until = deadline_ns - now < ep->spin_ns ? deadline_ns : now + ep->spin_ns;
    return sk_spin_until(until, ring_has_frame, ep->in.ctl);
}

int sk_ring_peek(struct sk_endpoint *ep, int64_t deadline_ns, const void **payload, size_t *len)
{
    struct sk_ring *r = &ep->in;
    struct sk_ring_ctl *c = r->ctl;
    bool spun = ep->spin_ns <= 0 || deadline_ns == 0;
    for (;;) {
        int rc = ring_front(ep, payload, len);
        if (rc != SK_ETIMEDOUT)
            return rc;
        if (!spun) {
            spun = true;
            if (ring_spin_for_frame(ep, deadline_ns))
                continue;
        }
        if (ep->in_doorbell >= 0 && atomic_load_explicit(&c->armed, memory_order_relaxed) &&
            !sk_ring_closed(r)) {
            sk_doorbell_drain(ep->in_doorbell);
            atomic_thread_fence(memory_order_seq_cst);
            rc = ring_front(ep, payload, len);
            if (rc != SK_ETIMEDOUT)
                return rc;
        }
        uint32_t seen = atomic_load(&c->wseq);
        atomic_store(&c->waiting, 1);
        atomic_thread_fence(memory_order_seq_cst);
        rc = ring_front(ep, payload, len);
        if (rc != SK_ETIMEDOUT) {
            atomic_store(&c->waiting, 0);
            return rc;
        }
        if (atomic_load_explicit(&c->room_waiting, memory_order_relaxed))
            ring_wake_producer(c); /* behind the barrier above: never missed */
        if (ring_in_finished(ep)) {
            atomic_store(&c->waiting, 0);
            /* A last look: the producer may have published just before. */
            rc = ring_front(ep, payload, len);
            return rc == SK_ETIMEDOUT ? SK_ECLOSED : rc;
        }
        int64_t now = sk_now_ns();
        if (deadline_ns <= now) {
            atomic_store(&c->waiting, 0);
            return SK_ETIMEDOUT;
        }
        int64_t wait = deadline_ns - now;
        if (ep->recheck_ns > 0 && wait > ep->recheck_ns)
            wait = ep->recheck_ns; /* the peer may die without a word */
        struct timespec ts = sk_ns_to_timespec(wait);
        sk_futex_wait(&c->wseq, seen, wait >= INT64_MAX / 4 ? NULL : &ts);
        atomic_store(&c->waiting, 0);
    }
}

int sk_ring_try_peek(struct sk_endpoint *ep, const void **payload, size_t *len)
{
    int rc = ring_front(ep, payload, len);
    if (rc != SK_ETIMEDOUT || !sk_ring_closed(&ep->in))
        return rc;
    rc = ring_front(ep, payload, len); /* published just before the close */
    return rc == SK_ETIMEDOUT ? SK_ECLOSED : rc;
}

void sk_ring_close(struct sk_ring *r, int doorbell)
{
    atomic_store(&r->ctl->closed, 1);
    sk_ring_wake(r);
    if (doorbell >= 0)
        sk_doorbell_ring(doorbell);
}

bool sk_ring_arm_doorbell(struct sk_endpoint *ep)
{
    struct sk_ring_ctl *c = ep->in.ctl;
    atomic_store(&c->armed, 1);
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load(&c->head) != atomic_load(&c->tail);
}

int sk_ring_inject(struct sk_ring *r, int doorbell, const void *bytes, size_t len)
{
    uint64_t head = atomic_load(&r->ctl->head);
    uint64_t used = head - atomic_load(&r->ctl->tail);
    uint64_t off = head % r->size;
    uint64_t padded = align8(len); /* keeps frames 8-aligned after the garbage */
    if (used > r->size || padded > r->size - off || padded > r->size - used)
        return SK_EFULL;
    memset(r->data + off, 0, padded);
    memcpy(r->data + off, bytes, len);
    ring_publish(r, doorbell, head, head + padded);
    return SK_OK;
}
