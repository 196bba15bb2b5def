/* SPDX-License-Identifier: MIT */
/*
 * The progress bar of long maps (progress.c).
 */
#ifndef SKPROC_POOL_PROGRESS_H
#define SKPROC_POOL_PROGRESS_H

#include "pool/pool_internal.h"

/* Draws c's progress on stderr when it is a terminal, the map is long
 * (1000 items or more, not a stream) and the pool allows it: no sooner
 * than half a second after started, then at most every 0.1 s (*last: when
 * it was last drawn, 0: never); final draws the last line whatever the
 * time. */
void pool_progress_draw(const sk_pool_call *c, int64_t started, int64_t *last, bool final);

#endif
