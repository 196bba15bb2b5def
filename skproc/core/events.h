/* SPDX-License-Identifier: MIT */
/*
 * Recoveries and events (issue 11 items 3 and 4): what the worker and the
 * supervisor record in the status page (the spent errors, the event log),
 * and how the parent copies, checks and delivers it.
 */
#ifndef SKPROC_CORE_EVENTS_H
#define SKPROC_CORE_EVENTS_H

#include "core/runtime.h"

/* Worker or supervisor: one more event in the log (err may be NULL); rings
 * the parent's event doorbell, when it has one, so that sk_wait delivers it. */
void sk_event_log(struct sk_runtime *rt, sk_event_kind kind, int section, long run, pid_t pid,
                  const sk_error *err);
/* Worker or supervisor: a failed attempt that is retried used up a life. */
void sk_spent_record(struct sk_shared *sh, const sk_error *err);

/* Parent: calls config.on_event with one event made here. */
void sk_event_emit(struct sk_runtime *rt, sk_event_kind kind, pid_t pid, int section, long run,
                   const sk_error *err);
/* Parent: delivers the log's entries not delivered yet, each checked. */
void sk_events_deliver(struct sk_runtime *rt);
/* Parent, in sk_start of a supervised process with on_event: waits (at most
 * a second, or until the child exits) for the worker's START. */
void sk_events_await_start(struct sk_runtime *rt);
/* Parent, once the process is finished: delivers the rest and FINISH, once. */
void sk_events_finish(struct sk_runtime *rt);
/* Parent, once the process is finished: copies the recoveries, checked. */
void sk_recovery_copy(struct sk_runtime *rt);

#endif
