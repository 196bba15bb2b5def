/* SPDX-License-Identifier: MIT */
/*
 * The memory store: the last max_runs runs in a ring, oldest dropped
 * first, and per task (a hash table by name) what conditions and
 * parameters ask, kept apart from the ring so that it stays right after
 * the runs are dropped: the latest start, the run that ended last with
 * success, the one that ended last with failure (or termination), and the
 * latest run that returned a value.
 *
 * The CSV store reads its file back into one of these, giving each run
 * the id the file has: runlog_memory_insert and runlog_memory_finish.
 */
#ifndef SKPROC_SCHED_RUNLOG_MEMORY_H
#define SKPROC_SCHED_RUNLOG_MEMORY_H

#include "sched/runlog_store.h"

typedef struct runlog_memory runlog_memory;

extern const runlog_ops runlog_memory_ops;

/* A new empty store keeping max_runs runs (0: RUNLOG_DEFAULT_MAX_RUNS).
 * SK_ENOMEM. */
int runlog_memory_open(size_t max_runs, runlog_memory **out);

/* Adds a run that began with the given id (greater than every id so far:
 * SK_EINVAL otherwise). */
int runlog_memory_insert(runlog_memory *m, int64_t id, const char *task, int64_t start);

/* Ends run id as sk_runlog_end does (the ops' end). */
int runlog_memory_finish(runlog_memory *m, int64_t id, int64_t end, sk_run_outcome outcome,
                         const sk_error *error, const void *value, size_t value_len);

/* The task of run id, when it is still going (*task valid until the run
 * ends); SK_EINVAL: no such run, SK_ESTATE: it has ended. */
int runlog_memory_running_task(runlog_memory *m, int64_t id, const char **task);

/* The greatest id so far (0: none). */
int64_t runlog_memory_last_id(const runlog_memory *m);

/* Passes each run still running to fn, oldest first (fn must not change
 * the store; copy what it needs). */
int runlog_memory_each_running(runlog_memory *m, sk_run_fn fn, void *arg);

/* The runs and tasks the store holds now, for tests of its bound. */
size_t runlog_memory_runs_held(const runlog_memory *m);
size_t runlog_memory_tasks_held(const runlog_memory *m);

#endif
