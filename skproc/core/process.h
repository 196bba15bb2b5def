/* SPDX-License-Identifier: MIT */
/*
 * Parent-side views of a process for the layers above core (a flow, a
 * group), which hold many processes and wait on all of them at once.
 */
#ifndef SKPROC_CORE_PROCESS_H
#define SKPROC_CORE_PROCESS_H

#include "skproc.h"

/* The pidfd of p's own child (its supervisor when it has one): readable
 * once that child exited, which is when p ended for good (a restart does
 * not end it). Owned by p, valid until p is reaped; dup it to keep it in
 * an epoll set. -1 before sk_start, after reaping, or where pidfds cannot
 * be had (valgrind, some seccomp profiles). */
int sk_process_pidfd(const sk_process *p);

#endif
