/* SPDX-License-Identifier: MIT */
/*
 * The two sides of skproc-mpi behind sk_mpi_start (start.c): rank 0's pool
 * transport (master.c), which hands batches to the server ranks, and a
 * server rank's loop (server.c), which runs them on its local pool.
 */
#ifndef SKPROC_MPI_RANKS_H
#define SKPROC_MPI_RANKS_H

#include "mpi/journal.h"
#include "mpi/wire.h"
#include "pool/transport.h"
#include "skproc/mpi.h"

#include <stdbool.h>

/* What rank 0's transport starts with: the communicator, what each rank
 * said at start (index: rank), the settled settings, and the journal (or
 * NULL; the transport owns it). */
struct mpi_master_setup {
    MPI_Comm comm;
    int size;
    const struct mpi_hello *hellos;
    int window;           /* per rank; 0: twice its workers plus 2 */
    int64_t rank_timeout; /* ns */
    struct mpi_journal *journal;
};

/* Rank 0's transport over setup's ranks. SK_OK or SK_ENOMEM. */
int mpi_master_create(struct sk_pool_transport **out, const struct mpi_master_setup *setup);

/* Whether a rank died; then report holds what rank 0 said about it. */
bool mpi_master_dead(struct sk_pool_transport *t, char *report, size_t len);

/* Items answered from the journal. */
size_t mpi_master_resumed(struct sk_pool_transport *t);

/* A server rank: runs what rank 0 sends on local (whose transport it
 * drives directly) until rank 0 says STOP. SK_OK, or SK_ESYS when MPI
 * fails. */
int mpi_serve(MPI_Comm comm, sk_pool *local);

#endif
