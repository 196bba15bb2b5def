/* SPDX-License-Identifier: MIT */
#include "mpi/pace.h"

void mpi_pace_heard(struct mpi_pace *p, int64_t now)
{
    if (p->last > 0 && now > p->last) {
        int64_t gap = now - p->last;
        if (gap > 8 * MPI_PACE_MAX_NS) /* a pause between calls: not the stream's pace */
            gap = 8 * MPI_PACE_MAX_NS;
        p->interval = p->interval > 0 ? (7 * p->interval + gap) / 8 : gap;
    }
    p->last = now;
    p->nap = MPI_PACE_MIN_NS;
}

int64_t mpi_pace_nap(struct mpi_pace *p)
{
    int64_t cap = p->interval > 0 ? p->interval / 8 : MPI_PACE_MAX_NS;
    if (cap < MPI_PACE_MIN_NS)
        cap = MPI_PACE_MIN_NS;
    if (cap > MPI_PACE_MAX_NS)
        cap = MPI_PACE_MAX_NS;
    if (p->nap < MPI_PACE_MIN_NS)
        p->nap = MPI_PACE_MIN_NS;
    if (p->nap > cap)
        p->nap = cap;
    int64_t nap = p->nap;
    p->nap *= 2;
    return nap;
}
