/* SPDX-License-Identifier: MIT */
/*
 * What rank 0 and the server ranks say to each other: one MPI message of
 * bytes each, a fixed head and then its payload, the MPI tag being the
 * head's kind. Items and results travel as the pool's batch images
 * (pool/batch.h), exactly as the engine wrote them and as the server's
 * local pool gave them back.
 *
 *   rank 0 -> server                 server -> rank 0
 *   OPEN    name, job, arg           OPENED  rc, message text
 *   END     slot posts no more
 *   BATCH   item image               RESULT  result image, error records
 *   (BODY   a split BATCH's items)   (BODY   a split RESULT's results)
 *   CONTROL stop/kill item k
 *   CLOSE                            CLOSED  its local pool has left
 *   TERMINATE
 *   STOP                             BYE     (then MPI_Finalize)
 *                                    ALIVE   every 0.2 s (heartbeat)
 *
 * Split messages: a BATCH of plain items lying in the caller's array, or a
 * bare RESULT, of at least MPI_SPLIT_MIN bytes travels as its head alone
 * (split = 1, image_len the body's length) and then a BODY message of just
 * the items or results, sent from where they lie and received where they
 * belong (a server's local batch, rank 0's caller's array). A message of
 * one contiguous buffer is the only kind MPI moves without copying it on
 * both sides (a two-block datatype is packed and unpacked on the way), and
 * MPI keeps the two in order: messages from one rank to another that a
 * receive could match both are never overtaken.
 */
#ifndef SKPROC_MPI_WIRE_H
#define SKPROC_MPI_WIRE_H

#include "pool/batch.h"
#include "skproc.h"

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

enum mpi_kind {
    MPI_K_OPEN = 1,
    MPI_K_OPENED,
    MPI_K_END,
    MPI_K_BATCH,
    MPI_K_RESULT,
    MPI_K_CONTROL,
    MPI_K_CLOSE,
    MPI_K_CLOSED,
    MPI_K_TERMINATE,
    MPI_K_STOP,
    MPI_K_BYE,
    MPI_K_ALIVE,
    MPI_K_BODY,
};

#define MPI_NAME_MAX 64
#define MPI_HOST_MAX 64
#define MPI_ALIVE_NS (200 * 1000 * 1000) /* a server's heartbeat period */
#define MPI_SPLIT_MIN (64 * 1024)        /* bodies this large travel as their own message */

struct mpi_head {
    uint32_t kind;
    uint32_t slot;
    uint32_t batch; /* rank 0's batch id */
    uint32_t count;
    uint64_t first;
    uint64_t image_len;                 /* BATCH, RESULT: bytes of the image after the head */
    int32_t rc;                         /* OPENED: SK_OK or why not */
    uint32_t failed, retried, n_errors; /* RESULT: errors follow the image */
    uint32_t k, kill;                   /* CONTROL */
    uint32_t bare;                      /* RESULT: every item succeeded and the image is
                                         * the plain results alone, no statuses */
    uint32_t split;                     /* BATCH, bare RESULT: the head alone; the image
                                         * (image_len bytes) follows as a BODY message */
};

/* OPEN's payload, then arg_size bytes of the call's argument. */
struct mpi_open {
    char name[MPI_NAME_MAX];
    struct pool_job job; /* rank 0's: the sizes and formats a server checks */
    uint64_t arg_size;
};

/* What each server tells rank 0 at start (MPI_Gather). */
struct mpi_hello {
    int32_t workers;
    int32_t pid;
    char host[MPI_HOST_MAX];
};

/* A result image's length for count items of a call: the statuses and
 * plain results, or the tpl index (images follow). A bare RESULT (every
 * item succeeded, plain results) holds count * result_size bytes only. */
static inline size_t mpi_result_floor(uint32_t count, int result_tpl, uint64_t result_size)
{
    return result_tpl ? pool_images_at(count) : pool_results_at(count) + count * result_size;
}

#endif