/* SPDX-License-Identifier: MIT */
/*
 * A message ring between any two processes that share a mapping: one
 * single-producer, single-consumer ring per direction, seen from one side
 * through an endpoint. It knows nothing of processes, hooks or formats:
 * frames hold opaque bytes (skproc puts tpl images in them).
 *
 * Layout. A ring is a control block (struct sk_ring_ctl) and a data area,
 * both in memory the two sides map before they fork. The data area has
 * room for capacity + 2 x (max_message + 64) bytes of *address space*, so
 * any frame up to max_message is contiguous and is read in place. Physical
 * pages exist only where bytes were written: ordinary traffic stays within
 * the first capacity + one frame bytes (the producer wraps early), and the
 * pages of a huge frame beyond that are given back once it is read.
 *
 * Frame: u32 magic, u32 length, then length bytes, padded to 8. A frame is
 * visible only when the producer advances head after writing it whole, so a
 * producer that dies mid-message leaves no partial frame behind.
 *
 * Trust. Everything in the control block and the data area can be written
 * by the other side, which may be broken or hostile. An endpoint therefore
 * keeps its own copy of every pointer and size (data, size, capacity,
 * max_message) in memory the peer cannot write, and reads only head, tail
 * and the frames from shared memory, re-checking each against its copies on
 * every read: offsets are reduced modulo its own size, a length beyond its
 * own max_message or the published bytes, a tail ahead of head or more
 * than the ring apart, a misplaced wrap marker, are SK_ECORRUPT. A forged
 * value costs messages, never a read or write outside the data area, and
 * never a wait past the caller's deadline.
 *
 * Waking. A consumer with nothing to read sets `waiting` and sleeps on the
 * futex word wseq; the producer bumps wseq after every publish and makes a
 * system call only when someone waits, so a busy stream costs none. A
 * reader that wants a pollable fd arms a doorbell (an eventfd), rung on the
 * empty -> non-empty edge. The other way round, a producer that waits for
 * room sets `room_waiting` and sleeps on rseq; the consumer looks at
 * room_waiting after each frame it consumes (a plain load, no barrier) and
 * again, behind the full barrier it takes anyway, before it sleeps on an
 * empty ring, so a wake-up is never lost and a busy stream pays nothing.
 */
#ifndef SKPROC_IPC_RING_H
#define SKPROC_IPC_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The shared control block of one ring. */
struct sk_ring_ctl {
    _Alignas(64) _Atomic uint64_t head; /* producer: bytes published, ever */
    _Atomic uint32_t room_waiting;      /* the producer sleeps on rseq until there is room */
    _Alignas(64) _Atomic uint64_t tail; /* consumer: bytes consumed, ever */
    _Atomic uint32_t rseq;              /* futex word, bumped when room is freed for a sleeper */
    _Alignas(64) _Atomic uint32_t wseq; /* futex word, bumped at every publish */
    _Atomic uint32_t waiting;           /* the consumer sleeps on wseq */
    _Atomic uint32_t armed;             /* the consumer wants the doorbell rung */
    _Atomic uint32_t closed;            /* the producer is gone for good */
    _Atomic int32_t reader_cpu;         /* the CPU the consumer last waited on, plus one */
};

/* One ring as one side sees it: private copies of where and how big. */
struct sk_ring {
    struct sk_ring_ctl *ctl;
    char *data;
    uint64_t size;        /* data bytes */
    uint64_t capacity;    /* bytes in flight allowed (unless empty) */
    uint64_t max_message; /* the longest frame payload */
    uint64_t file_offset; /* of data in the endpoint's memfd */
};

/* One side of a pair of rings. Private memory: copied by fork, never
 * shared. */
struct sk_endpoint {
    struct sk_ring in, out;
    int memfd;        /* backs the data areas (pages of huge frames are given back); -1: none */
    int out_doorbell; /* rung when `out` turns non-empty while its reader armed it; -1: none */
    int in_doorbell;  /* ours, drained when `in` is found empty; -1: none */
    /* Whether the peer is gone without having closed `in` (it died, or the
     * protocol above says nothing more will come); NULL: only `closed`. */
    bool (*peer_gone)(void *ctx);
    /* Whether the reader of `out` is gone (nothing told will be read);
     * NULL: never. Same ctx. */
    bool (*reader_gone)(void *ctx);
    void *peer_ctx;
    int64_t recheck_ns; /* the longest sleep between two peer_gone checks; 0: no limit */
    int64_t spin_ns;    /* how long sk_ring_peek spins for a frame before it sleeps; 0: never */
    uint64_t peeked;    /* bytes of the frame sk_ring_peek returned */
    uint64_t reserved_head, reserved_end; /* the frame sk_ring_reserve returned */
};

/* The bytes one ring's data area takes for a capacity and a largest
 * message: page-rounded. 0 when the numbers overflow. */
size_t sk_ring_data_size(size_t capacity, size_t max_message);

/* Describes one ring: its control block (zeroed by the caller, in shared
 * memory), its data area (data_size bytes from sk_ring_data_size, at
 * file_offset in the memfd) and its limits. */
void sk_ring_init(struct sk_ring *r, struct sk_ring_ctl *ctl, char *data, size_t data_size,
                  size_t capacity, size_t max_message, uint64_t file_offset);

/* Reserves a frame for a payload of len bytes in `out` and points *dst at
 * where the payload goes. Nothing is visible until sk_ring_commit; a
 * reservation that is not committed is simply forgotten.
 *   SK_EINVAL    len is 0 or over max_message
 *   SK_EFULL     capacity is used up (an empty ring always takes one frame)
 *   SK_ECORRUPT  the reader's tail is impossible (forged) */
int sk_ring_reserve(struct sk_endpoint *ep, size_t len, void **dst);
/* sk_ring_reserve that waits for room: until the reader frees enough,
 * until deadline_ns (sk_now_ns clock; INT64_MAX: no limit), or until the
 * reader is gone. SK_ETIMEDOUT, SK_ECLOSED, or what sk_ring_reserve says.
 * A frame that can never fit (over max_message) is SK_EINVAL at once. */
int sk_ring_reserve_wait(struct sk_endpoint *ep, size_t len, int64_t deadline_ns, void **dst);
/* Publishes the frame sk_ring_reserve returned, and wakes the reader. */
void sk_ring_commit(struct sk_endpoint *ep);
/* sk_ring_reserve + copy + sk_ring_commit. */
int sk_ring_send(struct sk_endpoint *ep, const void *payload, size_t len);

/* Waits for the frame at the front of `in` until deadline_ns (sk_now_ns
 * clock; 0 polls, INT64_MAX waits forever) and points *payload at its
 * bytes, in place, valid until sk_ring_consume. Before it sleeps it spins
 * for up to ep->spin_ns, once per call.
 *   SK_ETIMEDOUT  nothing came in time
 *   SK_ECLOSED    the peer is gone and nothing is left
 *   SK_ECORRUPT   the ring held garbage: everything published was dropped */
int sk_ring_peek(struct sk_endpoint *ep, int64_t deadline_ns, const void **payload, size_t *len);
/* sk_ring_peek that never waits, spins or touches the doorbell: for a
 * reader of many rings that sleeps on one doorbell of its own. SK_OK,
 * SK_ETIMEDOUT (empty), SK_ECLOSED (closed and empty) or SK_ECORRUPT. */
int sk_ring_try_peek(struct sk_endpoint *ep, const void **payload, size_t *len);
/* Consumes the frame sk_ring_peek returned. */
void sk_ring_consume(struct sk_endpoint *ep);

/* Nothing more will be published into r: its reader returns SK_ECLOSED
 * once it has read everything, and wakes up now if it sleeps; doorbell (if
 * >= 0) is rung so that a poll loop sees the end too. Either side may say
 * it: the producer as it leaves, or anyone who knows it is gone. */
void sk_ring_close(struct sk_ring *r, int doorbell);
/* Whether r was closed. */
bool sk_ring_closed(const struct sk_ring *r);
/* Wakes r's reader so that it looks at peer_gone again without a new
 * frame. */
void sk_ring_wake(struct sk_ring *r);

/* Arms in_doorbell: it is rung whenever `in` turns non-empty. True when
 * frames are already waiting (the caller rings it once itself). */
bool sk_ring_arm_doorbell(struct sk_endpoint *ep);

/* Tests only: publishes raw bytes into r as they are (padded to 8), to play
 * a corrupt or malicious producer. SK_EFULL when they do not fit. */
int sk_ring_inject(struct sk_ring *r, int doorbell, const void *bytes, size_t len);

#endif
