/* SPDX-License-Identifier: MIT */
/*
 * The map both MPI benchmarks time: raw_mpi.c (the floor) and bench_mpi.c
 * (skproc-mpi). n int32 items 0 .. n - 1 (10M, quick 2M) to int32
 * results, f(x) = 3x + 1, timed `maps` times (5, quick 3). One definition,
 * so that the ratio of the two compares the same work.
 */
#ifndef SKPROC_BENCH_MPI_MAP_H
#define SKPROC_BENCH_MPI_MAP_H

#include "common.h"

struct mpi_map {
    long n;
    int maps;
    int32_t *items;
    int32_t *results;
};

static inline struct mpi_map mpi_map_make(const struct bench_opts *o)
{
    struct mpi_map m = {.n = bench_ops(o, 10000000, 2000000), .maps = o->quick ? 3 : 5};
    m.items = malloc((size_t)m.n * sizeof *m.items);
    m.results = malloc((size_t)m.n * sizeof *m.results);
    BENCH_CHECK(m.items != NULL && m.results != NULL, "malloc");
    for (long i = 0; i < m.n; i++)
        m.items[i] = (int32_t)i;
    return m;
}

/* Fails the benchmark unless a sample of the results is f(item). */
static inline void mpi_map_check(const struct mpi_map *m, const char *what)
{
    for (long i = 0; i < m->n; i += 7919)
        BENCH_CHECK(m->results[i] == (int32_t)i * 3 + 1, what);
}

static inline void mpi_map_free(struct mpi_map *m)
{
    free(m->items);
    free(m->results);
}

#endif
