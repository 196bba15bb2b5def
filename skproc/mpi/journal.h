/* SPDX-License-Identifier: MIT */
/*
 * The journal: an append-only file on rank 0 of the batches that finished
 * with every item a success, each with its item indexes (its call, first
 * item and count) and its result message as the server sent it. Running the
 * same command again reads it back, and a batch of the same call, first item
 * and count is answered from it instead of being run again.
 *
 * A record is written whole with one write(2) and then the file is synced
 * at most every 0.5 s: a record cut short by a crash (the last one) is
 * dropped at the next open, and the file is cut back to the records before
 * it.
 */
#ifndef SKPROC_MPI_JOURNAL_H
#define SKPROC_MPI_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct mpi_journal;

/* Opens (or creates, mode 0600) the journal at path and reads what it
 * holds. SK_OK, or SK_ESYS / SK_ENOMEM with sk_refuse's reason. */
int mpi_journal_open(struct mpi_journal **out, const char *path);

/* The message recorded for batch (call, first, count) of the job called
 * name, and its length; NULL when there is none. Valid until close. */
const void *mpi_journal_find(struct mpi_journal *j, uint32_t call, const char *name, uint64_t first,
                             uint32_t count, size_t *len);

/* Appends a finished batch: its message is msg_len bytes at msg and then
 * more_len at more (a split result's head and body, wire.h). SK_OK,
 * SK_ENOMEM or SK_ESYS. */
int mpi_journal_add(struct mpi_journal *j, uint32_t call, const char *name, uint64_t first,
                    uint32_t count, const void *msg, size_t msg_len, const void *more,
                    size_t more_len);

/* Records read at open. */
size_t mpi_journal_size(const struct mpi_journal *j);

void mpi_journal_close(struct mpi_journal *j);

#endif
