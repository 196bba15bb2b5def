/* SPDX-License-Identifier: MIT */
/*
 * Message buffers kept for the next message instead of freed: a fresh
 * buffer of a few hundred KiB is a fresh mapping, and every 4 KiB of it a
 * page fault when first written (dear in a virtual machine: about as dear
 * as the copy itself). A few warm buffers, largest needs first served.
 */
#ifndef SKPROC_MPI_BUFS_H
#define SKPROC_MPI_BUFS_H

#include <stddef.h>

#define MPI_BUFS_KEPT 64

struct mpi_bufs {
    struct {
        unsigned char *p;
        size_t cap;
    } kept[MPI_BUFS_KEPT];
    int n;
};

/* A buffer of at least len bytes (*cap: its size), or NULL. */
unsigned char *mpi_buf_take(struct mpi_bufs *b, size_t len, size_t *cap);

/* Keeps p (cap bytes) for a later take, or frees it when enough are kept. */
void mpi_buf_give(struct mpi_bufs *b, unsigned char *p, size_t cap);

/* Frees every kept buffer. */
void mpi_bufs_free(struct mpi_bufs *b);

#endif
