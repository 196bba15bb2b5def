/* SPDX-License-Identifier: MIT */
/*
 * The progress of long maps (progress.c): the application's callback, and
 * the optional bar on stderr.
 */
#ifndef SKPROC_POOL_PROGRESS_H
#define SKPROC_POOL_PROGRESS_H

#include "pool/pool_internal.h"

#include <stddef.h>

/* Reports c's progress to the pool's callback (at most every 0.1 s) and
 * draws the bar when the pool asks for one, stderr is a terminal, the map
 * has a known length and it has run half a second; final reports the end
 * whatever the time and clears the bar. */
void pool_progress_report(const sk_pool_call *c, struct pool_progress_state *st, bool final);

/* The bar's line for a terminal `columns` wide, without the carriage
 * return: it never takes more than columns - 1 characters, so that the
 * terminal never wraps it. Returns its length. */
size_t pool_progress_format(char *buf, size_t cap, int columns, const sk_pool_progress *p);

#endif
