/* SPDX-License-Identifier: MIT */
/*
 * The run log behind sk_run_log, as the session writes and reads it
 * (internal). One interface over three stores: memory (bounded), SQLite
 * (WAL, restart-safe) and CSV (appended lines, read back on open). The
 * public queries (sk_run_log_runs, _last, _count) are written once over
 * this interface.
 *
 * A run is logged twice: when it starts (a RUNNING row, so that a session
 * killed mid-run still knows the run began and "daily" does not run twice)
 * and when it ends (the row completed). Opening a store that holds RUNNING
 * rows from an earlier session ends them as SK_RUN_FAILED with a
 * SK_PROCESS_ERROR "the session ended during the run", at the time the
 * earlier session was last known alive.
 */
#ifndef SKPROC_SCHED_RUNLOG_H
#define SKPROC_SCHED_RUNLOG_H

#include "skproc.h"

#include <stddef.h>
#include <stdint.h>

/* Opens the log the config names (kind, path, max_runs as in
 * sk_sched_config), `now` being the session's clock at open (for ending
 * an earlier session's RUNNING rows). Errors as sk_sched_create. */
int sk_runlog_open(sk_log_kind kind, const char *path, size_t max_runs, int64_t now,
                   sk_run_log **out);

/* Logs the start of a run; *id is its id for sk_runlog_end. */
int sk_runlog_begin(sk_run_log *log, const char *task, int64_t start, int64_t *id);

/* Logs the end of run `id`: outcome (not RUNNING), the error (NULL for a
 * success) and the return value (NULL, 0: none). */
int sk_runlog_end(sk_run_log *log, int64_t id, int64_t end, sk_run_outcome outcome,
                  const sk_error *error, const void *value, size_t value_len);

/* The time the latest run of task with that outcome ended (what "after
 * task" compares with this task's last start; SK_COND_FAILED counts
 * terminated runs too), or SK_COND_NEVER. The shape of sk_cond_log_fn:
 * pass it as sk_cond_ctx.last_outcome. */
int64_t sk_runlog_last_time(void *log, const char *task, sk_cond_outcome outcome);

/* The latest start of task, whatever its outcome, running included, or
 * SK_COND_NEVER (a condition's last_start). */
int64_t sk_runlog_last_start(sk_run_log *log, const char *task);

/* The return value of the latest run of task that returned one: *img
 * (valid until the next call on the log) and *len; SK_OK, or SK_ECLOSED
 * when there is none. */
int sk_runlog_last_value(sk_run_log *log, const char *task, const void **img, size_t *len);

/* Records that the session was alive at `now` (cheap to call every cycle:
 * a store writes it at most once a second), and reads back when a session
 * was last alive before this one opened the log (SK_COND_NEVER: never). */
int sk_runlog_alive(sk_run_log *log, int64_t now);
int64_t sk_runlog_previous_alive(sk_run_log *log);

#endif
