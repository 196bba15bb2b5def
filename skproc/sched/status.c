/* SPDX-License-Identifier: MIT */
/*
 * What conditions read of a task: its latest start and the end of its
 * latest success and failure, kept per name. The log is asked once per
 * name, the first time a condition or a run needs it (so what earlier
 * sessions logged counts); from then on the session updates the entry as
 * it logs, and evaluating "after task 'x'" costs a map lookup, not a query.
 * force_status_from_logs bypasses this cache (cycle.c).
 */
#include "sched/runlog.h"
#include "sched/session.h"

#include <stdlib.h>
#include <string.h>

struct task_status *sk_status_of(sk_sched *s, const char *name)
{
    struct task_status *st = sk_name_map_get(&s->statuses, name);
    if (st != NULL)
        return st;
    st = calloc(1, sizeof *st);
    if (st == NULL || (st->name = strdup(name)) == NULL) {
        free(st);
        return NULL;
    }
    st->last_start = sk_runlog_last_start(s->log, name);
    st->last_success = sk_runlog_last_time(s->log, name, SK_COND_SUCCEEDED);
    st->last_failure = sk_runlog_last_time(s->log, name, SK_COND_FAILED);
    if (sk_name_map_put(&s->statuses, st->name, st) != SK_OK) {
        free(st->name);
        free(st);
        return NULL;
    }
    return st;
}

int64_t sk_status_last_time(void *session, const char *task, sk_cond_outcome outcome)
{
    struct task_status *st = sk_status_of(session, task);
    if (st == NULL) /* no memory for the cache: the log itself answers */
        return sk_runlog_last_time(((sk_sched *)session)->log, task, outcome);
    switch (outcome) {
    case SK_COND_SUCCEEDED:
        return st->last_success;
    case SK_COND_FAILED:
        return st->last_failure;
    case SK_COND_FINISHED:
        break;
    }
    return st->last_success > st->last_failure ? st->last_success : st->last_failure;
}

static void status_free(void *value, void *arg)
{
    (void)arg;
    struct task_status *st = value;
    free(st->name);
    free(st);
}

void sk_status_free_all(sk_sched *s)
{
    sk_name_map_each(&s->statuses, status_free, NULL);
    sk_name_map_free(&s->statuses);
}
