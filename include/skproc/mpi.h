/* SPDX-License-Identifier: MIT */
/*
 * skproc-mpi: a pool whose workers are MPI ranks, for maps that no longer
 * fit one machine. The same sk_pool_map, sk_pool_imap,
 * sk_pool_unordered_imap, sk_pool_async_map, star and stream calls run
 * their items on the server ranks; only the start and the stop change.
 * A separate library (pkg-config skproc-mpi), built when MPI is found.
 *
 *     sk_mpi_register_job("square", &square_job);   // on every rank
 *     sk_pool *pool;
 *     if (sk_mpi_start(&pool, &cfg, &argc, &argv) != SK_OK) return 1;
 *     if (pool == NULL) return 0;                   // a server rank: it has served
 *     sk_pool_map(pool, &square_job, items, n, results, NULL);
 *     return sk_mpi_stop(pool) == SK_OK ? 0 : 1;
 *
 * Launch one program on every rank (mpiexec -n N, srun, a host file):
 * rank 0 runs the program's own code and the others serve. Each server
 * rank forks a local pool (cfg.pool) before MPI_Init, so item functions
 * never run inside an MPI process: a crash, a timeout or a leak is an item
 * failure exactly as in a local pool. The rank's main thread only moves
 * batches (tpl images, no shared memory between hosts) between MPI and its
 * local pool; rank 0 forks nothing.
 *
 * Jobs travel by name: function pointers do not cross hosts. Every rank
 * registers the same jobs before sk_mpi_start; rank 0 then passes the
 * registered sk_pool_job (its function or class tells which) to the pool's
 * calls, with any arg. A call with a job no rank knows by that name fails
 * at once with SK_EINVAL, naming the job and the rank.
 *
 * A rank that dies (is killed, its host fails) ends the job: rank 0 says on
 * stderr which rank it was and which items were in flight on it, those
 * items fail (SK_EPROCESS, their sk_error names the rank), and sk_mpi_stop
 * ends every rank with a non-zero status. With a journal (cfg.journal),
 * running the same command again resumes: batches finished before are read
 * from the journal, not run again.
 *
 * What the MPI pool does not have: sk_pool_alloc (no memory is shared
 * between hosts: refused), sk_pool_fd and sk_pool_call_fd (refused), and
 * config.on_event (not called). sk_pool_stop_item and sk_pool_kill_item
 * say SK_OK once the item's batch is on a rank, which acts if the item
 * still runs; sk_pool_cancel takes back the batches not sent yet.
 * Everything else behaves as in docs/pool.md.
 *
 * Threads: call MPI from one thread; use the pool from the thread that
 * called sk_mpi_start.
 */
#ifndef SKPROC_MPI_H
#define SKPROC_MPI_H

#include <skproc.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* For every field, zero (or NULL) means the default. */
typedef struct sk_mpi_config {
    /* Each server rank's local pool: workers per rank (default: its online
     * CPUs), item_timeout, lives, max_tasks, initializer, spin. On rank 0:
     * batch, progress and progress_bar, as for a local pool. on_event is
     * not called. */
    sk_pool_config pool;
    /* Batches in flight per server rank (sent and not answered): the
     * backpressure bound. Default: twice the rank's workers, plus 2. */
    int window;
    /* Seconds a rank with batches in flight may stay silent (server ranks
     * say they are alive every 0.2 s) before rank 0 takes it as dead.
     * Default 30. */
    double rank_timeout;
    /* Rank 0: a file of finished batches (item indexes and results), so
     * that running the same command again resumes. NULL: none. */
    const char *journal;
    /* Room for later settings without an ABI break: zero it. */
    void *reserved[6];
} sk_mpi_config;

/* Registers job under name (at most 63 characters) for this process: every
 * rank calls it with the same names before sk_mpi_start. The job is
 * copied; its function, class and formats must live as long as the
 * program (static data does). SK_OK, SK_EINVAL (a NULL or long name, a
 * job sk_pool_map would refuse), SK_EFULL (64 jobs at most), or SK_ESTATE
 * (the name is taken, or sk_mpi_start has run). */
int sk_mpi_register_job(const char *name, const sk_pool_job *job);

/* Starts MPI (argc and argv go to MPI_Init; they may be NULL). On a server
 * rank: forks the local pool first, then serves until rank 0 stops, ends
 * MPI, and returns SK_OK with *pool NULL (return from main then). On rank
 * 0: SK_OK with *pool a pool whose workers are the server ranks' workers.
 * cfg may be NULL. SK_ESTATE when started twice or with fewer than 2
 * ranks; SK_EPROCESS when a rank's local pool fails to start; SK_ESYS when
 * MPI fails (sk_last_error_message says which). */
int sk_mpi_start(sk_pool **pool, const sk_mpi_config *cfg, int *argc, char ***argv);

/* Rank 0: closes the pool, lets the calls in progress end, stops every
 * server rank, releases the pool and ends MPI. SK_OK; after a rank died,
 * it reports on stderr and ends the whole job with MPI_Abort (every rank
 * exits non-zero) and does not return. */
int sk_mpi_stop(sk_pool *pool);

/* This process's rank and the number of ranks (after sk_mpi_start; -1 and
 * 0 before). */
int sk_mpi_rank(void);
int sk_mpi_size(void);

/* Items of the pool's calls served from the journal rather than run
 * (rank 0). */
size_t sk_mpi_resumed(const sk_pool *pool);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
