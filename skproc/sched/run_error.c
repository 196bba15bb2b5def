/* SPDX-License-Identifier: MIT */
/*
 * The errors the session writes into a run's record when the run's own
 * code did not fail: it could not be started (a parameter function, a
 * fork, the log), or the session ended it (its end condition, its timeout,
 * the shutdown). They are sk_error records like the core's, so that a log
 * reader handles every failed or terminated run the same way.
 */
#include "sched/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sk_run_error(sk_error *e, sk_error_kind kind, int reason, const char *fmt, ...)
{
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->section = SK_NO_SECTION;
    e->reason = reason;
    e->item = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void sk_run_error_stopped(sk_error *e, const char *task, enum run_stop why, double timeout,
                          const sk_error *own)
{
    switch (why) {
    case STOP_TIMEOUT:
        sk_run_error(e, SK_TIMEOUT_ERROR, SK_ETIMEDOUT, "Task '%.200s' ran past its timeout of %gs",
                     task, timeout);
        e->timeout = timeout;
        break;
    case STOP_END_CONDITION:
        sk_run_error(e, SK_PROCESS_ERROR, SK_ECANCELED,
                     "Task '%.200s' was ended by its end condition", task);
        break;
    case STOP_SHUTDOWN:
    case STOP_NONE:
        sk_run_error(e, SK_PROCESS_ERROR, SK_ECANCELED,
                     "Task '%.200s' was ended by the session's shutdown", task);
        break;
    }
    if (own != NULL)
        snprintf(e->cause, sizeof e->cause, "%s: %s", sk_error_name(own->kind), own->message);
}
