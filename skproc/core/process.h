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

/* Makes a handle whose process has finished (sk_wait said it ended, or
 * sk_kill, or a failed sk_start) startable again with sk_start, as a group
 * restarts a child: everything of the previous run is freed (the status
 * page and rings, every fd and pipe, sk_fd's fd, the error, the result,
 * the timers, the recoveries, readiness), and what the handle was made
 * with is kept: its class, p->config as the user set it, and a spawned
 * program's plan (argv, env, paths and stdio copies). A handle never
 * started is SK_OK as it is. SK_ESTATE while the process still runs
 * (also when it exited and nobody waited for it yet: sk_wait first);
 * SK_EINVAL for a handle that is not sk_init'ed. One thread at a time, as
 * every call on a handle. */
int sk_process_rearm(sk_process *p);

/* A pointer a layer above keeps with the handle for one run (the
 * scheduler: the run a process-class task's hooks belong to), readable in
 * the parent and, as it was at sk_start, in the worker. Set it after
 * sk_process_rearm (which clears it) and before sk_start. NULL for a
 * handle that is not sealed. */
void sk_process_set_tag(sk_process *p, void *tag);
void *sk_process_tag(const sk_process *p);

/* In a hook (self): true once the parent asked the process to stop
 * (sk_stop), which the engine acts on only between hooks; false anywhere
 * else. For code that runs long inside one hook and wants to end early. */
bool sk_process_stop_asked(const sk_process *self);

/* A start made ahead of time (core/held_start.c): sk_start_held forks the
 * process (its supervisor and worker) as sk_start does, but the worker
 * waits before its first hook until sk_start_release; a layer that knows
 * when a process will be wanted (the scheduler) pays for the forks before
 * that time, and the release costs one wake-up. release_at is when the
 * release is expected (CLOCK_MONOTONIC ns, as sk_now_ns), 0 when unknown.
 * With it and spinning on (config.spin, normalized), the worker wakes
 * 0.5 ms before it and looks for the release between sched_yield calls
 * until 3 ms past it (core/held_wait.h), then sleeps again: a sleeping
 * process takes up to a millisecond to wake on a loaded virtual machine,
 * and a pure spin would hold a CPU the releasing thread needs. join_in
 * counts from the release. Until then sk_stop makes the worker go on to
 * its ending hooks (no run hook), sk_kill ends it, sk_wait waits.
 * SK_EINVAL for a spawned program (it has no hooks to hold); else as
 * sk_start. sk_start_release: SK_OK, SK_ESTATE when p was not started
 * held, was released already or has finished. */
int sk_start_held(sk_process *p, int64_t release_at);
int sk_start_release(sk_process *p);

#endif
