/* SPDX-License-Identifier: MIT */
/* The entry of a freshly forked worker, supervised or not. */
#ifndef SKPROC_CORE_WORKER_H
#define SKPROC_CORE_WORKER_H

#include "core/engine.h"

#include <sys/types.h>

/* Runs in a fresh worker forked by forked_by (the supervisor, or the parent
 * of an unsupervised process); never returns. */
_Noreturn void sk_worker_main(sk_process *p, pid_t forked_by, enum sk_engine_mode mode);

#endif
