/* SPDX-License-Identifier: MIT */
/*
 * The engine: the hook loop that runs in the worker, and the calls a hook
 * that works through many items (the pool's workers) makes to it.
 */
#ifndef SKPROC_CORE_ENGINE_H
#define SKPROC_CORE_ENGINE_H

#include "skproc.h"

/* What the engine does when a worker is forked. */
enum sk_engine_mode {
    SK_ENGINE_LOOP,      /* the full lifecycle, from sh->current_run */
    SK_ENGINE_ERROR_ONLY /* after a fatal hard fault: only the error hook */
};

/* Runs in the worker; never returns. */
_Noreturn void sk_engine_main(sk_process *p, enum sk_engine_mode mode);

/* The section in progress starts again now (its timeout counts from here),
 * leaves its section while idle (no deadline), or comes back. */
void sk_section_restart(sk_process *self);
void sk_section_idle(sk_process *self);
int64_t sk_section_resume(sk_process *self); /* returns the time it resumed at (sk_now_ns) */
/* Ends the worker now so that its supervisor starts a fresh one (from the
 * state at start) without counting a fault. */
_Noreturn void sk_worker_recycle(sk_process *self);
/* The hard fault the current worker is a restart after, or NULL. */
const sk_error *sk_worker_last_fault(const sk_process *self);
/* Before sk_start: after a hard fault the supervisor calls fn(ctx) (in its
 * own memory, a fork of the caller's) for the index of the item the dead
 * worker had in hand, or -1, and puts it in the fault's .item (and so in
 * its CRASH or TIMEOUT event). For the pool's workers. */
void sk_process_fault_item(sk_process *p, long (*fn)(void *ctx), void *ctx);

#endif
