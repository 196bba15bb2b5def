/* SPDX-License-Identifier: MIT */
/* The supervisor: one small process between the parent and the worker. */
#ifndef SKPROC_CORE_SUPERVISOR_H
#define SKPROC_CORE_SUPERVISOR_H

#include "skproc.h"

/* Runs in the supervisor, forked by sk_start; never returns. */
_Noreturn void sk_supervisor_main(sk_process *p);

#endif
