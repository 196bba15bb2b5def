/* SPDX-License-Identifier: MIT */
/*
 * The pool's shared-memory transport (shm_transport.c): batches travel
 * through one arena mapped by the parent and its forked workers.
 */
#ifndef SKPROC_POOL_SHM_TRANSPORT_H
#define SKPROC_POOL_SHM_TRANSPORT_H

#include "pool/transport.h"

/* Maps the arena and starts cfg->workers workers (cfg as sk_pool_create
 * settled it: every field has its final value). SK_OK with *out set, or an
 * error code with nothing left behind. */
int shm_transport_create(struct sk_pool_transport **out, const sk_pool_config *cfg);

#endif
