/*
 * The ring transport: see channel.h for the layout.
 *
 * Waking: a consumer with nothing to read sets ring->waiting and sleeps on
 * the futex word wseq; the producer bumps wseq after every publish and wakes
 * it only when waiting is set, so a busy stream costs no system call. A
 * parent that asked for sk_fd() also arms an eventfd doorbell, written on the
 * empty -> non-empty edge.
 */
#include "core/channel.h"
#include "os/clock.h"
#include "codec/message.h"
#include "core/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FRAME_MAGIC 0x534b4d47u /* "SKMG": a message */
#define WRAP_MAGIC 0x534b5750u  /* "SKWP": the rest of the ring is skipped */
#define FRAME_HEADER 8
#define RELEASE_GRAIN ((uint64_t)1 << 20)
#define PREFAULT_BYTES ((uint64_t)256 << 10)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL, harmlessly */
#endif
#define WAIT_SLICE_NS (100 * 1000 * 1000) /* a parent re-checks its supervisor this often */

struct frame_header {
    uint32_t magic;
    uint32_t len;
};

static uint64_t align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static size_t ring_data_size(size_t capacity, size_t max_message)
{
    size_t page = 4096;
    size_t n = capacity + 2 * (max_message + 64);
    return (n + page - 1) / page * page;
}

size_t sk_channel_span(size_t capacity, size_t max_message)
{
    return 2 * ring_data_size(capacity, max_message);
}

void sk_channel_init(struct sk_runtime *rt, char *base, size_t file_offset, size_t capacity,
                     size_t max_message)
{
    size_t data = ring_data_size(capacity, max_message);
    for (int i = 0; i < 2; i++) {
        struct sk_ring *r = &rt->sh->rings[i];
        r->data = base + (size_t)i * data;
        r->size = data;
        r->capacity = capacity;
        r->max_message = max_message;
        rt->ring_data_offset[i] = file_offset + (size_t)i * data;
    }
    rt->to_parent = &rt->sh->rings[0];
    rt->to_worker = &rt->sh->rings[1];
}

static bool is_parent(const struct sk_runtime *rt)
{
    return rt->role == SK_ROLE_PARENT;
}

static struct sk_ring *ring_out(struct sk_runtime *rt)
{
    return is_parent(rt) ? rt->to_worker : rt->to_parent;
}

static struct sk_ring *ring_in(struct sk_runtime *rt)
{
    return is_parent(rt) ? rt->to_parent : rt->to_worker;
}

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static void ring_wake(struct sk_ring *r)
{
    atomic_fetch_add(&r->wseq, 1); /* a full barrier: orders head before the checks */
    if (atomic_load_explicit(&r->waiting, memory_order_relaxed))
        futex(&r->wseq, FUTEX_WAKE, INT_MAX, NULL);
}

static void doorbell_ring(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    (void)n; /* EAGAIN: already readable */
}

static void ring_publish(struct sk_runtime *rt, struct sk_ring *r, uint64_t old_head,
                         uint64_t new_head)
{
    atomic_store_explicit(&r->head, new_head, memory_order_release);
    ring_wake(r);
    if (r == rt->to_parent && atomic_load_explicit(&r->armed, memory_order_relaxed) &&
        atomic_load(&r->tail) == old_head)
        doorbell_ring(rt->msg_doorbell);
}

/* Where the next frame of `need` bytes goes, or SK_EFULL. Returns through
 * *pos the position after an eventual wrap marker, which is written here.
 *
 * The producer wraps back to offset 0 as soon as it is past `capacity` and
 * the wrap fits, not only at the end of the span: the frames in flight then
 * live in the first capacity + one frame bytes, whose pages stay warm,
 * instead of marching through the whole span onto fresh pages. */
static int ring_reserve(struct sk_ring *r, uint64_t need, uint64_t *pos)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t used = head - tail;
    if (used > 0 && used + need > r->capacity)
        return SK_EFULL;
    uint64_t off = head % r->size;
    uint64_t to_end = r->size - off;
    bool wrap = need > to_end || (off >= r->capacity && used + to_end + need <= r->size);
    uint64_t total = wrap ? to_end + need : need;
    if (used + total > r->size)
        return SK_EFULL; /* cannot happen with the sizing rule; kept as a guard */
    if (wrap) {
        struct frame_header marker = {.magic = WRAP_MAGIC, .len = 0};
        memcpy(r->data + off, &marker, sizeof marker);
        head += to_end;
    }
    *pos = head;
    return SK_OK;
}

/* A frame being written: reserved, not yet published. */
struct frame_slot {
    struct sk_ring *r;
    uint64_t old_head;
    uint64_t pos;
    uint64_t need;
};

/* Huge frames land on pages given back after the last huge one: fault them
 * in with one call rather than one trap per page. */
static void frame_prefault(char *at, uint64_t len)
{
    if (len < PREFAULT_BYTES)
        return;
    uintptr_t start = (uintptr_t)at & ~(uintptr_t)4095;
    madvise((void *)start, (size_t)((uintptr_t)at + len - start), MADV_POPULATE_WRITE);
}

/* Reserves a frame for an image of len bytes and returns where the image
 * goes; sk_msg_reserve_fn for sk_msg_encode. */
static int frame_reserve(void *ctx, size_t len, void **dst)
{
    struct frame_slot *f = ctx;
    if (len == 0 || len > f->r->max_message)
        return SK_EINVAL;
    f->need = align8(FRAME_HEADER + len);
    int rc = ring_reserve(f->r, f->need, &f->pos);
    if (rc != SK_OK)
        return rc;
    char *at = f->r->data + f->pos % f->r->size;
    frame_prefault(at, f->need);
    struct frame_header h = {.magic = FRAME_MAGIC, .len = (uint32_t)len};
    memcpy(at, &h, sizeof h);
    *dst = at + FRAME_HEADER;
    return SK_OK;
}

static struct frame_slot frame_begin(struct sk_runtime *rt)
{
    struct frame_slot f = {.r = ring_out(rt)};
    f.old_head = atomic_load_explicit(&f.r->head, memory_order_relaxed);
    return f;
}

int sk_channel_send(struct sk_runtime *rt, const void *img, size_t len)
{
    struct frame_slot f = frame_begin(rt);
    void *dst;
    int rc = frame_reserve(&f, len, &dst);
    if (rc != SK_OK)
        return rc;
    memcpy(dst, img, len);
    ring_publish(rt, f.r, f.old_head, f.pos + f.need);
    return SK_OK;
}

int sk_channel_send_values(struct sk_runtime *rt, const char *fmt, va_list ap)
{
    struct frame_slot f = frame_begin(rt);
    size_t len;
    int rc = sk_msg_encode(fmt, ap, frame_reserve, &f, &len);
    if (rc != SK_OK)
        return rc;
    ring_publish(rt, f.r, f.old_head, f.pos + f.need);
    return SK_OK;
}

/* Gives the pages of a consumed frame back to the kernel when it lay beyond
 * the warm window (capacity + one grain): after a burst of huge messages the
 * channel shrinks back to what ordinary traffic keeps resident. */
static void ring_release_frame(struct sk_runtime *rt, struct sk_ring *r, int which, uint64_t off,
                               uint64_t len)
{
    uint64_t warm = (r->capacity + RELEASE_GRAIN) / RELEASE_GRAIN * RELEASE_GRAIN;
    uint64_t end = off + len;
    if (end <= warm || len < RELEASE_GRAIN)
        return;
    uint64_t from = off > warm ? off : warm;
    from = (from + 4095) / 4096 * 4096;
    end = end / 4096 * 4096;
    if (end > from)
        fallocate(rt->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)(rt->ring_data_offset[which] + from), (off_t)(end - from));
}

/* Everything published is garbage: drop it so the channel goes on. */
static int ring_drop_corrupt(struct sk_ring *r, uint64_t head)
{
    atomic_store_explicit(&r->tail, head, memory_order_release);
    return SK_ECORRUPT;
}

/* The frame at the tail, if one is there. SK_ETIMEDOUT when empty. */
static int ring_front(struct sk_runtime *rt, struct sk_ring *r, const void **img, size_t *len)
{
    for (;;) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        if (head == tail)
            return SK_ETIMEDOUT;
        uint64_t avail = head - tail;
        uint64_t off = tail % r->size;
        uint64_t to_end = r->size - off;
        struct frame_header h;
        if (avail < FRAME_HEADER || (off & 7) != 0)
            return ring_drop_corrupt(r, head);
        memcpy(&h, r->data + off, sizeof h);
        if (h.magic == WRAP_MAGIC) {
            if (avail < to_end)
                return ring_drop_corrupt(r, head);
            atomic_store_explicit(&r->tail, tail + to_end, memory_order_release);
            continue;
        }
        uint64_t need = align8(FRAME_HEADER + (uint64_t)h.len);
        if (h.magic != FRAME_MAGIC || h.len == 0 || h.len > r->max_message || need > avail ||
            need > to_end)
            return ring_drop_corrupt(r, head);
        *img = r->data + off + FRAME_HEADER;
        *len = h.len;
        rt->peeked_frame = need;
        return SK_OK;
    }
}

void sk_channel_consume(struct sk_runtime *rt)
{
    struct sk_ring *r = ring_in(rt);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t frame = rt->peeked_frame;
    rt->peeked_frame = 0;
    /* Pages first, tail second: once the tail moves, the producer may wrap
     * and write its next frame over this range. */
    ring_release_frame(rt, r, r == rt->to_parent ? 0 : 1, tail % r->size, frame);
    atomic_store_explicit(&r->tail, tail + frame, memory_order_release);
}

/* Nothing more will come: the parent's peer has ended, or the worker was
 * asked to stop. */
static bool ring_closed(struct sk_runtime *rt, struct sk_ring *r)
{
    if (!is_parent(rt))
        return atomic_load(&rt->sh->stop) != 0;
    if (atomic_load(&r->closed))
        return true;
    if (rt->finished || sk_child_exited(rt)) {
        atomic_store(&r->closed, 1); /* so that tell sees it too */
        return true;
    }
    return false;
}

bool sk_channel_peer_gone(struct sk_runtime *rt)
{
    return is_parent(rt) && (rt->finished || atomic_load(&rt->to_parent->closed));
}

static void doorbell_drain(struct sk_runtime *rt)
{
    uint64_t count;
    if (is_parent(rt) && rt->msg_doorbell >= 0 && !rt->finished) {
        ssize_t n = read(rt->msg_doorbell, &count, sizeof count);
        (void)n;
    }
}

/* The doorbell (sk_fd) is drained only when the ring is found empty, and the
 * ring looked at again afterwards: so the fd stays readable exactly while
 * messages wait, with no system call per message. */
int sk_channel_peek(struct sk_runtime *rt, int64_t deadline_ns, const void **img, size_t *len)
{
    struct sk_ring *r = ring_in(rt);
    for (;;) {
        int rc = ring_front(rt, r, img, len);
        if (rc != SK_ETIMEDOUT)
            return rc;
        if (is_parent(rt) && atomic_load_explicit(&r->armed, memory_order_relaxed)) {
            doorbell_drain(rt);
            atomic_thread_fence(memory_order_seq_cst);
            rc = ring_front(rt, r, img, len);
            if (rc != SK_ETIMEDOUT)
                return rc;
        }
        uint32_t seen = atomic_load(&r->wseq);
        atomic_store(&r->waiting, 1);
        atomic_thread_fence(memory_order_seq_cst);
        rc = ring_front(rt, r, img, len);
        if (rc != SK_ETIMEDOUT) {
            atomic_store(&r->waiting, 0);
            return rc;
        }
        if (ring_closed(rt, r)) {
            atomic_store(&r->waiting, 0);
            /* A last look: the producer may have published just before. */
            rc = ring_front(rt, r, img, len);
            return rc == SK_ETIMEDOUT ? SK_ECLOSED : rc;
        }
        int64_t now = sk_now_ns();
        if (deadline_ns <= now) {
            atomic_store(&r->waiting, 0);
            return SK_ETIMEDOUT;
        }
        int64_t wait = deadline_ns - now;
        if (is_parent(rt) && wait > WAIT_SLICE_NS)
            wait = WAIT_SLICE_NS; /* its supervisor may be killed without a word */
        struct timespec ts = sk_ns_to_timespec(wait);
        futex(&r->wseq, FUTEX_WAIT, seen, wait >= INT64_MAX / 4 ? NULL : &ts);
        atomic_store(&r->waiting, 0);
    }
}

void sk_channel_close_to_parent(struct sk_runtime *rt)
{
    struct sk_ring *r = rt->to_parent;
    if (r == NULL)
        return;
    atomic_store(&r->closed, 1);
    ring_wake(r);
    if (rt->msg_doorbell >= 0)
        doorbell_ring(rt->msg_doorbell);
}

void sk_channel_wake_worker(struct sk_runtime *rt)
{
    if (rt->to_worker != NULL)
        ring_wake(rt->to_worker);
}

int sk_channel_inject(struct sk_runtime *rt, bool to_parent, const void *bytes, size_t len)
{
    struct sk_ring *r = to_parent ? rt->to_parent : rt->to_worker;
    if (r == NULL)
        return SK_ESTATE;
    uint64_t head = atomic_load(&r->head);
    uint64_t off = head % r->size;
    uint64_t padded = align8(len); /* keeps frames 8-aligned after the garbage */
    if (padded > r->size - off || padded > r->size - (head - atomic_load(&r->tail)))
        return SK_EFULL;
    memset(r->data + off, 0, padded);
    memcpy(r->data + off, bytes, len);
    ring_publish(rt, r, head, head + padded);
    return SK_OK;
}
