/* SPDX-License-Identifier: MIT */
/*
 * The progress bar of long maps: one line on stderr, redrawn in place, so
 * that a user running a long map in a terminal sees it move. It never
 * draws into a pipe or a file, and never for streams (no known length).
 */
#include "pool/progress.h"

#include "os/clock.h"

#include <stdio.h>
#include <unistd.h>

void pool_progress_draw(const sk_pool_call *c, int64_t started, int64_t *last, bool final)
{
    if (c->pool->config.no_progress || c->produce != NULL || c->n < 1000 || !isatty(2))
        return;
    int64_t now = sk_now_ns();
    if (!final && (now - started < SK_NS_PER_SEC / 2 || now - *last < SK_NS_PER_SEC / 10))
        return;
    *last = now;
    int width = 30, filled = (int)((double)c->collected_items / (double)c->n * width);
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %3d%% %llu/%zu items", bar,
            (int)(100.0 * (double)c->collected_items / (double)c->n),
            (unsigned long long)c->collected_items, c->n);
    if (c->failed > 0)
        fprintf(stderr, ", %llu failed", (unsigned long long)c->failed);
    fputs(final ? "\n" : "", stderr);
    fflush(stderr);
}
