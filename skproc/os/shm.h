/* SPDX-License-Identifier: MIT */
/*
 * Shared memory written once: anonymous memfds mapped MAP_SHARED before a
 * fork, so that every process of a family sees them at the same address.
 * Nothing is named on the filesystem. Only the pages that get written take
 * memory; sk_shm_punch gives pages back.
 */
#ifndef SKPROC_OS_SHM_H
#define SKPROC_OS_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* n rounded up to whole pages; 0 when that does not fit a size_t. */
size_t sk_page_round(size_t n);

/* A close-on-exec memfd of `size` bytes (zeros), labelled `name` in
 * /proc/PID/maps, mapped read-write and shared at *base. `noreserve` maps it
 * MAP_NORESERVE (address space for a large, sparsely used arena). 0, or -1
 * with errno set and nothing left open. */
int sk_shm_create(const char *name, size_t size, bool noreserve, int *fd, void **base);

/* Gives the pages of [offset, offset + len) of the memfd back to the
 * kernel; they read as zeros afterwards. Whole pages only: the range is
 * shrunk to page boundaries. */
void sk_shm_punch(int fd, uint64_t offset, uint64_t len);

/* Maps the pages of [addr, addr + len) of a shared mapping into this
 * process now, readable (or writable) as they will be used: one system
 * call instead of a page fault per page, then one read of each page (see
 * shm.c). Best effort: on a kernel without MADV_POPULATE_* the reads fault
 * the pages in. */
void sk_shm_prefault(const void *addr, size_t len, bool write);

#endif
