/* SPDX-License-Identifier: MIT */
/*
 * The raw MPI floor of a map, run as `mpirun -n 3 raw_mpi` (bench/run.py):
 * a master-worker program as one writes it by hand. Rank 0 scatters
 * batches of int32 items (MPI_Isend straight from the item array, two
 * batches in flight per rank) and gathers the results (MPI_Irecv straight
 * into the result array, MPI_Waitany); ranks 1 and 2 receive a batch,
 * compute f(x) = x * 3 + 1 in a loop in the rank itself, and send the
 * results back. No processes, no copies, no failure handling: the cheapest
 * way MPI moves a map's items and results between ranks.
 *
 *   mpi.map.raw   items per second of a map of 10M items (quick 2M), the
 *                 same batch size skproc picks for 2 workers (n / 32),
 *                 median of 5 maps (quick 3)
 */
#include "common.h"
#include "mpi_map.h"

#include <mpi.h>

#define TAG_STOP 30000
#define WINDOW 2

static void serve(void)
{
    int32_t *buf = NULL;
    int cap = 0;
    for (;;) {
        MPI_Status st;
        MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        int n = 0;
        MPI_Get_count(&st, MPI_INT, &n);
        if (n > cap) {
            free(buf);
            buf = malloc((size_t)n * sizeof *buf);
            BENCH_CHECK(buf != NULL, "malloc");
            cap = n;
        }
        MPI_Recv(buf, n, MPI_INT, 0, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (st.MPI_TAG == TAG_STOP)
            break;
        for (int i = 0; i < n; i++)
            buf[i] = buf[i] * 3 + 1;
        MPI_Send(buf, n, MPI_INT, 0, st.MPI_TAG, MPI_COMM_WORLD);
    }
    free(buf);
}

/* Batch i (items i * b ...) to rank r: its results' receive is posted
 * first, straight into the result array. */
static void hand_out(const int32_t *items, int32_t *results, long n, long b, long i, int r,
                     MPI_Request *recv, MPI_Request *send, int *rank_of)
{
    long first = i * b, count = first + b > n ? n - first : b;
    rank_of[i] = r;
    MPI_Irecv(results + first, (int)count, MPI_INT, r, (int)i, MPI_COMM_WORLD, &recv[i]);
    MPI_Isend(items + first, (int)count, MPI_INT, r, (int)i, MPI_COMM_WORLD, &send[i]);
}

/* One map of n items in batches of b over ranks 1..size-1: seconds. */
static double map_once(const int32_t *items, int32_t *results, long n, long b, int size)
{
    long batches = (n + b - 1) / b;
    MPI_Request *recv = malloc((size_t)batches * sizeof *recv);
    MPI_Request *send = malloc((size_t)batches * sizeof *send);
    int *rank_of = malloc((size_t)batches * sizeof *rank_of);
    BENCH_CHECK(recv != NULL && send != NULL && rank_of != NULL, "malloc");
    for (long i = 0; i < batches; i++)
        recv[i] = send[i] = MPI_REQUEST_NULL;
    int64_t t0 = bench_now_ns();
    long next = 0, done = 0;
    for (int r = 1; r < size; r++)
        for (int k = 0; k < WINDOW && next < batches; k++, next++)
            hand_out(items, results, n, b, next, r, recv, send, rank_of);
    while (done < batches) {
        int at;
        MPI_Waitany((int)batches, recv, &at, MPI_STATUS_IGNORE);
        done++;
        if (next < batches) {
            hand_out(items, results, n, b, next, rank_of[at], recv, send, rank_of);
            next++;
        }
    }
    for (long i = 0; i < batches; i++) /* MPI_Waitall with MPICH's MPI_STATUSES_IGNORE
                                        * trips gcc's -Wstringop-overflow */
        MPI_Wait(&send[i], MPI_STATUS_IGNORE);
    double took = (double)(bench_now_ns() - t0) / 1e9;
    free(recv);
    free(send);
    free(rank_of);
    return took;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) {
        fprintf(stderr, "raw_mpi: run it with mpirun -n 3\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (rank != 0) {
        serve();
        MPI_Finalize();
        return 0;
    }
    bench_print_info("raw_mpi");
    struct mpi_map mm = mpi_map_make(&o);
    long n = mm.n;
    int maps = mm.maps;
    long b = n / 32 > 0 ? n / 32 : 1;
    double *rates = malloc((size_t)maps * sizeof *rates);
    for (int m = 0; m < maps; m++) {
        memset(mm.results, 0, (size_t)n * sizeof *mm.results);
        rates[m] = (double)n / map_once(mm.items, mm.results, n, b, size);
        mpi_map_check(&mm, "raw map result");
    }
    struct bench_stats st = bench_summarize(rates, maps);
    bench_emit("mpi", "mpi.map.raw", "raw MPI master-worker map (2 ranks, int32)", "items/s",
               st.median, &st, NULL);
    for (int r = 1; r < size; r++)
        MPI_Send(NULL, 0, MPI_INT, r, TAG_STOP, MPI_COMM_WORLD);
    mpi_map_free(&mm);
    free(rates);
    MPI_Finalize();
    return 0;
}
