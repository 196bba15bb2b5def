/* SPDX-License-Identifier: MIT */
/*
 * How long a rank naps between two looks at MPI while it waits for
 * messages it expects (rank 0 for results, a server rank for batches).
 * MPI has no wait that also wakes on the local pool, so a rank polls: the
 * nap starts at MPI_PACE_MIN_NS after a message and doubles up to a cap
 * that follows how often messages come (an eighth of their mean
 * interval, within MPI_PACE_MIN_NS and MPI_PACE_MAX_NS). A fast stream of
 * batches is then seen within tens of microseconds (a fixed 1 ms cap left
 * a map of tiny items waiting in naps: 100M against 150M items/s), and a
 * slow one costs a wake-up a millisecond.
 */
#ifndef SKPROC_MPI_PACE_H
#define SKPROC_MPI_PACE_H

#include <stdint.h>

#define MPI_PACE_MIN_NS (20 * 1000)
#define MPI_PACE_MAX_NS (1000 * 1000)

struct mpi_pace {
    int64_t last;     /* when the last message came (0: none yet) */
    int64_t interval; /* mean time between messages (0: unknown) */
    int64_t nap;      /* the next nap */
};

/* A message came at now: the next nap is the shortest again. */
void mpi_pace_heard(struct mpi_pace *p, int64_t now);

/* The nap to take now (ns); the one after it is longer, up to the cap. */
int64_t mpi_pace_nap(struct mpi_pace *p);

#endif
