/* SPDX-License-Identifier: MIT */
/*
 * The channel of one process: the two rings (ipc/ring.h) in the process's
 * memfd, right behind the status page, and which end of them each party
 * holds. The parent reads the ring to the parent and writes the ring to the
 * worker; the worker the other way round; the supervisor only closes the
 * ring to the parent when the process ends.
 */
#ifndef SKPROC_CORE_CHANNEL_H
#define SKPROC_CORE_CHANNEL_H

#include "core/runtime.h"

#include <stdbool.h>
#include <stddef.h>

/* The bytes the two rings' data take in the memfd; 0 when the numbers
 * overflow. */
size_t sk_channel_span(size_t capacity, size_t max_message);

/* Lays out both rings' data in a fresh (zeroed) mapping at base, which sits
 * at file offset file_offset of rt->memfd; their control blocks are
 * rt->sh->rings. Sets up the parent's end (rt->memfd and rt->msg_doorbell
 * are already set). */
void sk_channel_init(struct sk_runtime *rt, char *base, size_t file_offset, size_t capacity,
                     size_t max_message);

/* In a fresh worker: takes the worker's end. */
void sk_channel_become_worker(struct sk_runtime *rt);

/* In a child whose handle is inert (another process's copy): lets go. */
void sk_channel_forget(struct sk_runtime *rt);

/* The end of the process as seen by the channel: wakes a parent blocked in
 * sk_listen. Called by the supervisor (or an unsupervised worker) as it
 * exits, and by the parent when it reaps. */
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
