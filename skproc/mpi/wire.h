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
 *   CONTROL stop/kill item k
 *   CLOSE                            CLOSED  its local pool has left
 *   TERMINATE
 *   STOP                             BYE     (then MPI_Finalize)
 *                                    ALIVE   every 0.2 s (heartbeat)
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
};

#define MPI_NAME_MAX 64
#define MPI_HOST_MAX 64
#define MPI_ALIVE_NS (200 * 1000 * 1000) /* a server's heartbeat period */

struct mpi_head {
    uint32_t kind;
    uint32_t slot;
    uint32_t batch; /* rank 0's batch id */
    uint32_t count;
    uint64_t first;
    uint64_t image_len;                 /* RESULT: bytes of the result image after the head */
    int32_t rc;                         /* OPENED: SK_OK or why not */
    uint32_t failed, retried, n_errors; /* RESULT: errors follow the image */
    uint32_t k, kill;                   /* CONTROL */
    uint32_t bare;                      /* RESULT: every item succeeded and the image is
                                         * the plain results alone, no statuses */
    uint32_t pad;
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

/* Two blocks at absolute addresses (MPI_BOTTOM) as one MPI datatype: a
 * message's head in one place and its body in another (a local pool's
 * batch, the caller's array), so that the body is not copied on its way.
 * SK_OK, or SK_ESYS when MPI refused the type. */
static inline int mpi_two_blocks(const void *head, size_t head_len, const void *body,
                                 size_t body_len, MPI_Datatype *type)
{
    MPI_Aint at[2];
    int len[2] = {(int)head_len, (int)body_len};
    MPI_Get_address(head, &at[0]);
    MPI_Get_address(body, &at[1]);
    if (MPI_Type_create_hindexed(2, len, at, MPI_BYTE, type) != MPI_SUCCESS)
        return SK_ESYS;
    if (MPI_Type_commit(type) != MPI_SUCCESS) {
        MPI_Type_free(type);
        return SK_ESYS;
    }
    return SK_OK;
}

#endif