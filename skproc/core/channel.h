/*
 * The byte transport between parent and worker: one single-producer,
 * single-consumer ring per direction, in the memfd behind the status page.
 *
 * A ring's data area has room for capacity + 2 x max_message bytes of
 * *address space*, so any message up to max_message is one contiguous frame
 * that the receiver decodes in place. Physical pages exist only where bytes
 * were written: ordinary traffic stays within the first capacity + one
 * frame bytes (the producer wraps early), and the pages of a huge frame
 * beyond that are given back once it is read. A frame becomes visible only when the producer advances head
 * after writing it whole, so a producer that dies mid-message leaves no
 * partial frame behind.
 *
 * Frame: u32 magic, u32 length, then length bytes of tpl image, padded to 8.
 */
#ifndef SKPROC_CHANNEL_H
#define SKPROC_CHANNEL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sk_runtime;

/* A ring's control block. It lives in the status page (which every start
 * touches anyway), its data in the memfd past it. */
struct sk_ring {
    _Alignas(64) _Atomic uint64_t head; /* producer: bytes published, ever */
    _Alignas(64) _Atomic uint64_t tail; /* consumer: bytes consumed, ever */
    _Alignas(64) _Atomic uint32_t wseq; /* futex word, bumped at every publish */
    _Atomic uint32_t waiting;           /* the consumer sleeps on wseq */
    _Atomic uint32_t armed;             /* the consumer wants the doorbell eventfd */
    _Atomic uint32_t closed;            /* the producer is gone for good */
    char *data;                         /* same address in every process: mapped before fork */
    uint64_t size;                      /* data bytes */
    uint64_t capacity;                  /* bytes in flight allowed (unless empty) */
    uint64_t max_message;
};

/* The bytes the two rings take in the memfd, for a frozen config. */
size_t sk_channel_span(size_t capacity, size_t max_message);

/* Lays out both rings' data in a fresh (zeroed) mapping at base, which
 * sits at file offset file_offset of the memfd; their control blocks are
 * rt->sh->rings. */
void sk_channel_init(struct sk_runtime *rt, char *base, size_t file_offset, size_t capacity,
                     size_t max_message);

/* Copies a complete tpl image into the outgoing ring and publishes it. */
int sk_channel_send(struct sk_runtime *rt, const void *img, size_t len);

/* Encodes the values after fmt straight into the outgoing ring. */
int sk_channel_send_values(struct sk_runtime *rt, const char *fmt, va_list ap);

/* Waits for the frame at the head of the incoming ring (deadline_ns: 0
 * polls, INT64_MAX waits forever) and points *img at its bytes, in place.
 * SK_ECORRUPT when the ring held garbage: all of it was dropped. */
int sk_channel_peek(struct sk_runtime *rt, int64_t deadline_ns, const void **img, size_t *len);

/* Consumes the frame sk_channel_peek returned. */
void sk_channel_consume(struct sk_runtime *rt);

/* The end of the process as seen by the channel: wakes a parent blocked in
 * sk_listen. Called by the supervisor before it exits, and by the parent. */
void sk_channel_close_to_parent(struct sk_runtime *rt);

/* (Parent) The process has ended, as far as the channel knows: nothing
 * told now would be read. */
bool sk_channel_peer_gone(struct sk_runtime *rt);

/* Wakes a worker blocked in sk_listen (after a stop request). */
void sk_channel_wake_worker(struct sk_runtime *rt);

/* Tests only: publishes raw bytes into a ring as they are, to play a
 * corrupt or malicious peer. */
int sk_channel_inject(struct sk_runtime *rt, bool to_parent, const void *bytes, size_t len);

#endif
