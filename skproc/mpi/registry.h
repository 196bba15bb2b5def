/* SPDX-License-Identifier: MIT */
/*
 * Jobs known by name (sk_mpi_register_job): the same on every rank, since
 * function pointers do not travel. Rank 0 finds a call's name by the job's
 * function or class; a server finds the job by that name.
 */
#ifndef SKPROC_MPI_REGISTRY_H
#define SKPROC_MPI_REGISTRY_H

#include "pool/batch.h"

#include <stdbool.h>

/* The registered job called name, or NULL. */
const sk_pool_job *mpi_job_by_name(const char *name);

/* The name of the registered job whose function or class js runs, or NULL. */
const char *mpi_job_name_of(const struct pool_job *js);

/* sk_mpi_start has begun: no more registrations. */
void mpi_registry_freeze(void);

#endif
