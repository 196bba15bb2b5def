/* SPDX-License-Identifier: MIT */
/* The worker's side of a held start (sk_start_held, core/process.h): core/held_wait.c. */
#ifndef SKPROC_CORE_HELD_WAIT_H
#define SKPROC_CORE_HELD_WAIT_H

#include "core/runtime.h"

/* With spinning on and the release time known, the worker looks for the
 * release (yielding the CPU between looks) from this long before it to
 * this long after it (ns), and sleeps outside that window. */
#define SK_HELD_SPIN_EARLY (INT64_C(500000))
#define SK_HELD_SPIN_LATE (INT64_C(3000000))

/* In a fresh worker of a held start, in the engine before its first hook:
 * returns once the parent released it or asked it to stop. */
void sk_worker_wait_release(struct sk_runtime *rt);

#endif
