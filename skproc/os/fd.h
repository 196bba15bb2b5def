/* SPDX-License-Identifier: MIT */
/*
 * File descriptors written once: closing, eventfd doorbells, and positioned
 * I/O that retries on EINTR and short transfers, so that no caller sees a
 * signal as a failure.
 */
#ifndef SKPROC_OS_FD_H
#define SKPROC_OS_FD_H

#include <stddef.h>
#include <sys/types.h>

/* Closes *fd when it is open and sets it to -1. */
void sk_fd_close(int *fd);

/* A non-blocking, close-on-exec eventfd, or -1 with errno set. */
int sk_doorbell_create(void);
/* Makes the doorbell readable; a doorbell that already is stays so. */
void sk_doorbell_ring(int fd);
/* Makes the doorbell unreadable again, whatever was rung before. */
void sk_doorbell_drain(int fd);

/* Writes or reads exactly len bytes at offset. 0 on success; -1 on an
 * error (errno set), and for reads also at end of file (errno 0). */
int sk_pwrite_all(int fd, const void *buf, size_t len, off_t offset);
int sk_pread_all(int fd, void *buf, size_t len, off_t offset);

#endif
