/* SPDX-License-Identifier: MIT */
/*
 * Warm message buffers (bufs.h): the smallest kept buffer that fits is
 * taken, so that a large one stays for a large message.
 */
#include "mpi/bufs.h"

#include <stdlib.h>

unsigned char *mpi_buf_take(struct mpi_bufs *b, size_t len, size_t *cap)
{
    int best = -1;
    for (int i = 0; i < b->n; i++)
        if (b->kept[i].cap >= len && (best < 0 || b->kept[i].cap < b->kept[best].cap))
            best = i;
    if (best >= 0) {
        unsigned char *p = b->kept[best].p;
        *cap = b->kept[best].cap;
        b->kept[best] = b->kept[--b->n];
        return p;
    }
    size_t want = len < 4096 ? 4096 : len + len / 4; /* room to grow a little */
    *cap = want;
    return malloc(want);
}

void mpi_buf_give(struct mpi_bufs *b, unsigned char *p, size_t cap)
{
    if (p == NULL)
        return;
    if (b->n < MPI_BUFS_KEPT) {
        b->kept[b->n].p = p;
        b->kept[b->n].cap = cap;
        b->n++;
        return;
    }
    int smallest = 0;
    for (int i = 1; i < b->n; i++)
        if (b->kept[i].cap < b->kept[smallest].cap)
            smallest = i;
    if (b->kept[smallest].cap < cap) { /* keep the larger */
        free(b->kept[smallest].p);
        b->kept[smallest].p = p;
        b->kept[smallest].cap = cap;
        return;
    }
    free(p);
}

void mpi_bufs_free(struct mpi_bufs *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->kept[i].p);
    b->n = 0;
}
