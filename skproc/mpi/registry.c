/* SPDX-License-Identifier: MIT */
/*
 * The job registry: a fixed table in this process's own memory, filled
 * before sk_mpi_start on every rank.
 */
#include "mpi/registry.h"

#include "core/error.h"
#include "mpi/wire.h"
#include "pool/call.h"
#include "skproc/mpi.h"

#include <string.h>

#define MPI_JOBS 64

static struct {
    char name[MPI_NAME_MAX];
    sk_pool_job job;
    struct pool_job js;
} jobs[MPI_JOBS];
static int n_jobs;
static bool frozen;

int sk_mpi_register_job(const char *name, const sk_pool_job *job)
{
    if (name == NULL || name[0] == '\0' || strlen(name) >= MPI_NAME_MAX)
        return sk_refuse(SK_EINVAL,
                         "sk_mpi_register_job: the name is NULL, empty or over %d "
                         "characters",
                         MPI_NAME_MAX - 1);
    if (frozen)
        return sk_refuse(SK_ESTATE,
                         "sk_mpi_register_job(\"%s\"): after sk_mpi_start; register "
                         "every job before",
                         name);
    if (mpi_job_by_name(name) != NULL)
        return sk_refuse(SK_ESTATE, "sk_mpi_register_job: \"%s\" is registered already", name);
    if (n_jobs == MPI_JOBS)
        return sk_refuse(SK_EFULL, "sk_mpi_register_job: %d jobs at most", MPI_JOBS);
    struct pool_job js;
    int rc = pool_job_prepare(job, &js);
    if (rc != SK_OK)
        return rc;
    snprintf(jobs[n_jobs].name, MPI_NAME_MAX, "%s", name);
    jobs[n_jobs].job = *job;
    jobs[n_jobs].js = js;
    n_jobs++;
    return SK_OK;
}

const sk_pool_job *mpi_job_by_name(const char *name)
{
    for (int i = 0; i < n_jobs; i++)
        if (strcmp(jobs[i].name, name) == 0)
            return &jobs[i].job;
    return NULL;
}

const char *mpi_job_name_of(const struct pool_job *js)
{
    for (int i = 0; i < n_jobs; i++) {
        const struct pool_job *r = &jobs[i].js;
        if (r->kind == js->kind && r->fn == js->fn && r->star == js->star && r->cls == js->cls &&
            r->range == js->range)
            return jobs[i].name;
    }
    return NULL;
}

void mpi_registry_freeze(void)
{
    frozen = true;
}
