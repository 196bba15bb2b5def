/* SPDX-License-Identifier: MIT */
/*
 * Readiness (config.ready): a process of hooks is ready when a hook calls
 * sk_ready(self), a spawned program with a ready_fd when it writes a line
 * to it, any other process as soon as sk_start returned. The parent's
 * side: what sk_start makes for it, and how the parent looks without
 * waiting. sk_wait_ready itself is in process.c, beside sk_wait, whose
 * reaping it shares.
 */
#ifndef SKPROC_CORE_READY_H
#define SKPROC_CORE_READY_H

#include "core/runtime.h"

#include <stdbool.h>

/* Parent, in sk_start before anything is made: the ready mode the run
 * uses (a program's ready_fd implies SK_READY_ON_NOTIFY), checked.
 * SK_OK, or SK_EINVAL with why. */
int sk_ready_settle(struct sk_runtime *rt);

/* Parent, in sk_start before the fork: the doorbell a worker rings in
 * sk_ready (a process of hooks with SK_READY_ON_NOTIFY). SK_OK or SK_ESYS. */
int sk_ready_prepare(struct sk_runtime *rt);

/* Parent, after a successful start: a process with SK_READY_ON_START is
 * ready from now on. */
void sk_ready_started(struct sk_runtime *rt);

/* Parent: looks, without waiting, whether the process has become ready
 * (the status page's flag, a program's ready pipe, read in bounded chunks)
 * and delivers the events not delivered yet, READY among them, in order,
 * READY once. True when the process is ready (it stays so for the run). */
bool sk_ready_check(struct sk_runtime *rt);

/* Parent: an fd that turns readable when readiness may have come (the
 * ready doorbell, a program's ready pipe), for waits; -1 when there is
 * nothing to wait for. */
int sk_ready_wake_fd(const struct sk_runtime *rt);

#endif
