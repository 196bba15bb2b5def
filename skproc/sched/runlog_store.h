/* SPDX-License-Identifier: MIT */
/*
 * What a run log store is to the dispatcher (runlog.c), and the rules every
 * store shares (runlog_rules.c). A store is a table of operations over its
 * own state; runlog.c checks the arguments of every call once, so a store
 * sees only valid ones: a task name of 1 to SK_COND_NAME_MAX bytes, an
 * outcome that ends a run, a value with a length.
 *
 * A store never calls back into runlog.c (the layer check forbids the
 * cycle); what stores share lives in runlog_rules.c.
 */
#ifndef SKPROC_SCHED_RUNLOG_STORE_H
#define SKPROC_SCHED_RUNLOG_STORE_H

#include "skproc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The runs a query wants. Every query of the public API is one of these. */
typedef struct runlog_query {
    const char *task; /* NULL: every task */
    int64_t since;    /* runs that started at or after it; SK_COND_NEVER: all */
    bool finished;    /* only finished runs with `outcome`; false: every run, running too */
    sk_cond_outcome outcome;
    bool latest; /* only the one that ended last (greatest end, then greatest id); false:
                  * all, oldest (smallest id) first */
} runlog_query;

typedef struct runlog_ops {
    const char *name; /* "memory", "sqlite", "csv": in messages */
    int (*begin)(void *store, const char *task, int64_t start, int64_t *id);
    /* SK_EINVAL: no run has that id; SK_ESTATE: it has ended already. */
    int (*end)(void *store, int64_t id, int64_t end, sk_run_outcome outcome, const sk_error *error,
               const void *value, size_t value_len);
    /* Passes the runs q selects to fn (which may stop it with non-zero);
     * fn NULL: only counts. Returns the number passed (counted), or a
     * negative code. */
    int64_t (*query)(void *store, const runlog_query *q, sk_run_fn fn, void *arg);
    int64_t (*last_time)(void *store, const char *task, sk_cond_outcome outcome);
    int64_t (*last_start)(void *store, const char *task);
    int (*last_value)(void *store, const char *task, const void **img, size_t *len);
    int (*alive)(void *store, int64_t now);
    int64_t (*previous_alive)(void *store);
    void (*close)(void *store);
} runlog_ops;

/* The stores behind files. writer: the session's log (recovers runs left
 * running, takes the lock, records being alive at now); otherwise opened
 * by sk_run_log_open to read, also while a session writes. Errors as
 * sk_runlog_open. */
extern const runlog_ops runlog_sqlite_ops, runlog_csv_ops;
int runlog_sqlite_open(const char *path, bool writer, int64_t now, void **out);
int runlog_csv_open(const char *path, bool writer, size_t max_runs, int64_t now, void **out);

/* The default of sk_sched_config.log_max_runs. */
#define RUNLOG_DEFAULT_MAX_RUNS 10000

/* A store writes the session's alive time at most this often (ns). */
#define RUNLOG_ALIVE_EVERY INT64_C(1000000000)

/* The error of a run an earlier session left running (runlog.h). */
#define RUNLOG_RECOVERED_MESSAGE "the session ended during the run"
void sk_runlog_recovered_error(sk_error *e);

/* When a run left running by a session last alive at previous_alive
 * (SK_COND_NEVER: unknown) is taken to have ended: then, or at its start
 * when that is later. */
int64_t sk_runlog_recovered_end(int64_t start, int64_t previous_alive);

/* True when a finished run's outcome counts as `outcome` (terminated runs
 * count as failed). */
bool sk_runlog_outcome_is(sk_run_outcome run, sk_cond_outcome outcome);

/* True when run a ended after run b (greater end, then greater id): the
 * order of "latest". */
bool sk_runlog_ended_after(int64_t end_a, int64_t id_a, int64_t end_b, int64_t id_b);

/* "running", "succeeded", "failed", "terminated"; and back (-1: none). */
const char *sk_runlog_outcome_name(sk_run_outcome outcome);
int sk_runlog_outcome_parse(const char *text, size_t len);

/* Takes the write lock that keeps a second session off a log file (an
 * open file description lock on fd, on a byte no store uses). Waits up to
 * two seconds for it: the processes a killed session forked hold its
 * descriptor until they are gone. SK_ESYS with the message when another
 * session holds it. */
int sk_runlog_lock(int fd, const char *path);

#endif
