/* SPDX-License-Identifier: MIT */
/*
 * sk_mpi_start and sk_mpi_stop: the order that keeps user code out of MPI
 * processes.
 *
 *   1. the rank, from the launcher's environment (before MPI_Init)
 *   2. a server rank forks its local pool, with the fatal signals' default
 *      actions (an MPI library may have installed its own handlers when it
 *      was loaded, and forked workers must not inherit them)
 *   3. MPI_Init, a communicator of our own (errors returned, not fatal)
 *   4. every server says how many workers it has (MPI_Gather); rank 0 says
 *      go or not (MPI_Bcast), so that a failure anywhere ends every rank
 *   5. servers serve (server.c); rank 0 gets a pool over its transport
 *      (master.c)
 */
#include "mpi/ranks.h"

#include "core/error.h"
#include "mpi/registry.h"
#include "pool/call.h"
#include "pool/pool_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    bool started;
    int rank, size;
    MPI_Comm comm;
    sk_pool *pool;
} mpi_state = {.rank = -1};

/* What make_master hands mpi_master_create (pool_create_with takes no
 * context). */
static struct mpi_master_setup pending;

static int make_master(struct sk_pool_transport **out, const sk_pool_config *cfg)
{
    (void)cfg;
    return mpi_master_create(out, &pending);
}

/* The rank the launcher gave this process, before MPI_Init: Open MPI,
 * MPICH (Hydra), PMIx, Slurm. -1 when none says. */
static int launcher_rank(void)
{
    static const char *const names[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
                                        "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v != NULL && *v != '\0')
            return atoi(v);
    }
    return -1;
}

/* sk_pool_create with the fatal signals at their default actions: what the
 * forked workers inherit. The caller's handlers are put back after. */
static int local_pool_create(sk_pool **local, const sk_pool_config *cfg)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct sigaction saved[sizeof sigs / sizeof sigs[0]];
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, &saved[i]);
    int rc = sk_pool_create(local, cfg);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &saved[i], NULL);
    return rc;
}

static int mpi_fail(const char *what, int mpi_rc)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(mpi_rc, text, &len);
    return sk_refuse(SK_ESYS, "skproc-mpi: %s failed: %s", what, text);
}

/* Rank 0's verdict on what every rank said at start: SK_OK, or why not. */
static int start_verdict(const struct mpi_hello *hellos, int size, const sk_mpi_config *c,
                         struct mpi_journal **journal)
{
    if (size < 2)
        return sk_refuse(SK_ESTATE,
                         "sk_mpi_start: %d rank: rank 0 runs the program and the "
                         "others serve, so launch 2 or more (mpiexec -n 3 ...)",
                         size);
    for (int r = 1; r < size; r++)
        if (hellos[r].workers <= 0)
            return sk_refuse(SK_EPROCESS,
                             "sk_mpi_start: rank %d (%.63s) could not start its "
                             "local pool",
                             r, hellos[r].host);
    if (c->journal != NULL)
        return mpi_journal_open(journal, c->journal);
    return SK_OK;
}

int sk_mpi_start(sk_pool **pool, const sk_mpi_config *cfg, int *argc, char ***argv)
{
    if (pool == NULL)
        return sk_refuse(SK_EINVAL, "sk_mpi_start: pool is NULL");
    *pool = NULL;
    if (mpi_state.started)
        return sk_refuse(SK_ESTATE, "sk_mpi_start: started already (once per program)");
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        return sk_refuse(SK_ESTATE, "sk_mpi_start: MPI is initialized already; sk_mpi_start "
                                    "must call MPI_Init itself, after forking the local pool");
    sk_mpi_config c = {0};
    if (cfg != NULL)
        c = *cfg;
    mpi_state.started = true;
    mpi_registry_freeze();
    sk_pool *local = NULL;
    if (launcher_rank() != 0 && local_pool_create(&local, &c.pool) != SK_OK)
        local = NULL; /* rank 0 hears of it below */
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) {
        sk_pool_release(local);
        return mpi_fail("MPI_Init", rc);
    }
    MPI_Comm comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm, &mpi_state.rank);
    MPI_Comm_size(comm, &mpi_state.size);
    mpi_state.comm = comm;
    bool root = mpi_state.rank == 0;
    if (root && local != NULL) { /* an unknown launcher: rank 0 runs no items */
        sk_pool_release(local);
        local = NULL;
    }
    struct mpi_hello hello = {.workers = local != NULL ? local->n_workers : 0, .pid = getpid()};
    if (gethostname(hello.host, sizeof hello.host) != 0)
        snprintf(hello.host, sizeof hello.host, "?");
    hello.host[sizeof hello.host - 1] = '\0';
    struct mpi_hello *hellos = root ? calloc((size_t)mpi_state.size, sizeof *hellos) : NULL;
    int go = 0, verdict = SK_ENOMEM;
    struct mpi_journal *journal = NULL;
    rc = MPI_Gather(&hello, (int)sizeof hello, MPI_BYTE, hellos, (int)sizeof hello, MPI_BYTE, 0,
                    comm);
    if (root && rc == MPI_SUCCESS && hellos != NULL) {
        verdict = start_verdict(hellos, mpi_state.size, &c, &journal);
        go = verdict == SK_OK;
    }
    if (rc == MPI_SUCCESS)
        rc = MPI_Bcast(&go, 1, MPI_INT, 0, comm);
    if (rc != MPI_SUCCESS || !go) {
        free(hellos);
        mpi_journal_close(journal);
        sk_pool_release(local);
        MPI_Comm_free(&comm);
        MPI_Finalize();
        if (rc != MPI_SUCCESS)
            return mpi_fail("the start (MPI_Gather, MPI_Bcast)", rc);
        return root ? verdict : sk_refuse(SK_EPROCESS, "sk_mpi_start: rank 0 refused the start");
    }
    if (!root) {
        int served = mpi_serve(comm, local);
        MPI_Comm_free(&comm);
        MPI_Finalize();
        return served;
    }
    pending = (struct mpi_master_setup){
        .comm = comm,
        .size = mpi_state.size,
        .hellos = hellos,
        .window = c.window,
        .rank_timeout = (int64_t)((c.rank_timeout > 0 ? c.rank_timeout : 30.0) * 1e9),
        .journal = journal,
    };
    rc = pool_create_with(pool, &c.pool, make_master);
    free(hellos);
    if (rc != SK_OK) {
        MPI_Abort(comm, 1); /* the servers wait for rank 0: end them all */
        return rc;
    }
    mpi_state.pool = *pool;
    return SK_OK;
}

/* A rank died: nothing can end cleanly under MPI without it. */
static void stop_dead(sk_pool *pool)
{
    char report[1024];
    mpi_master_dead(pool->t, report, sizeof report);
    sk_pool_release(pool); /* closes the journal */
    fprintf(stderr, "skproc-mpi: ending every rank (MPI_Abort): %s\n", report);
    fflush(stderr);
    MPI_Abort(mpi_state.comm, 3);
    _exit(3); /* MPI_Abort does not return; in case it did */
}

int sk_mpi_stop(sk_pool *pool)
{
    if (pool == NULL || pool != mpi_state.pool)
        return sk_refuse(SK_EINVAL, "sk_mpi_stop: not the pool sk_mpi_start gave");
    char report[1024];
    /* Maps in progress run to their end; an iterator still alive would
     * wait for its caller forever, so with one the servers are stopped
     * as they are. */
    bool iterators = false;
    for (int i = 0; i < POOL_CALLS; i++)
        iterators |= pool->live[i] != NULL && pool->live[i]->iterator;
    if (!iterators && !mpi_master_dead(pool->t, report, sizeof report)) {
        sk_pool_close(pool);
        sk_pool_join(pool, -1);
    }
    if (mpi_master_dead(pool->t, report, sizeof report))
        stop_dead(pool);
    sk_pool_release(pool);
    mpi_state.pool = NULL;
    MPI_Comm_free(&mpi_state.comm);
    MPI_Finalize();
    return SK_OK;
}

int sk_mpi_rank(void)
{
    return mpi_state.rank;
}

int sk_mpi_size(void)
{
    return mpi_state.size;
}

size_t sk_mpi_resumed(const sk_pool *pool)
{
    if (pool == NULL || pool != mpi_state.pool)
        return 0;
    return mpi_master_resumed(pool->t);
}
