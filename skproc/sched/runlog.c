/* SPDX-License-Identifier: MIT */
/*
 * The run log's dispatcher: which store a log uses (sk_runlog_open, and
 * sk_run_log_open by the file's contents), the checks of every argument,
 * made once here for all stores, and the public queries, written once
 * over the stores' query operation.
 */
#include "sched/runlog.h"

#include "core/error.h"
#include "sched/runlog_memory.h"
#include "sched/runlog_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sk_run_log {
    const runlog_ops *ops;
    void *store;
    bool writer; /* a session's log; false: opened by sk_run_log_open to read */
};

/* The first bytes of every SQLite 3 database, and of every CSV run log. */
static const char sqlite_magic[16] = "SQLite format 3";
#define CSV_MAGIC "id,event,"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int check_task(const char *task)
{
    if (task == NULL)
        return sk_refuse(SK_EINVAL, "no task name");
    size_t len = strnlen(task, SK_COND_NAME_MAX + 1);
    if (len == 0 || len > SK_COND_NAME_MAX)
        return sk_refuse(SK_EINVAL, "a task name is 1 to %d bytes, not %s", SK_COND_NAME_MAX,
                         len ? "longer" : "empty");
    return SK_OK;
}

static int check_outcome(sk_cond_outcome outcome)
{
    if (outcome != SK_COND_SUCCEEDED && outcome != SK_COND_FAILED && outcome != SK_COND_FINISHED)
        return sk_refuse(SK_EINVAL, "%d is not an outcome (SK_COND_SUCCEEDED, _FAILED, _FINISHED)",
                         (int)outcome);
    return SK_OK;
}

static int log_make(const runlog_ops *ops, void *store, bool writer, sk_run_log **out)
{
    sk_run_log *log = malloc(sizeof *log);
    if (log == NULL) {
        ops->close(store);
        return sk_refuse(SK_ENOMEM, "out of memory for the run log");
    }
    *log = (sk_run_log){.ops = ops, .store = store, .writer = writer};
    *out = log;
    return SK_OK;
}

int sk_runlog_open(sk_log_kind kind, const char *path, size_t max_runs, int64_t now,
                   sk_run_log **out)
{
    if (out == NULL)
        return sk_refuse(SK_EINVAL, "no place for the run log");
    *out = NULL;
    if (kind == SK_LOG_AUTO)
        kind = path == NULL ? SK_LOG_MEMORY : ends_with(path, ".csv") ? SK_LOG_CSV : SK_LOG_SQLITE;
    if ((kind == SK_LOG_SQLITE || kind == SK_LOG_CSV) && (path == NULL || *path == '\0'))
        return sk_refuse(SK_EINVAL, "a %s run log needs a log_path",
                         kind == SK_LOG_CSV ? "CSV" : "SQLite");
    void *store = NULL;
    int rc;
    switch (kind) {
    case SK_LOG_MEMORY:
        rc = runlog_memory_open(max_runs, (runlog_memory **)&store);
        return rc == SK_OK ? log_make(&runlog_memory_ops, store, true, out) : rc;
    case SK_LOG_SQLITE:
        rc = runlog_sqlite_open(path, true, now, &store);
        return rc == SK_OK ? log_make(&runlog_sqlite_ops, store, true, out) : rc;
    case SK_LOG_CSV:
        rc = runlog_csv_open(path, true, max_runs, now, &store);
        return rc == SK_OK ? log_make(&runlog_csv_ops, store, true, out) : rc;
    default:
        return sk_refuse(SK_EINVAL, "%d is not a run log kind", (int)kind);
    }
}

/* Which store a file is: SQLite by its header, CSV by its header line or,
 * empty, by its name. */
static int sniff(const char *path, sk_log_kind *kind)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sk_refuse(SK_ESYS, "%s: %s", path, strerror(errno));
    char head[16] = {0};
    ssize_t n;
    do
        n = read(fd, head, sizeof head);
    while (n < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (n < 0)
        return sk_refuse(SK_ESYS, "%s: %s", path, strerror(err));
    if (n == sizeof head && memcmp(head, sqlite_magic, sizeof head) == 0)
        *kind = SK_LOG_SQLITE;
    else if ((size_t)n >= strlen(CSV_MAGIC) && memcmp(head, CSV_MAGIC, strlen(CSV_MAGIC)) == 0)
        *kind = SK_LOG_CSV;
    else if (n == 0 && ends_with(path, ".csv"))
        *kind = SK_LOG_CSV;
    else
        return sk_refuse(SK_EFORMAT, "%s is not a run log (neither SQLite nor skproc's CSV)", path);
    return SK_OK;
}

int sk_run_log_open(const char *path, sk_run_log **out)
{
    if (path == NULL || out == NULL)
        return sk_refuse(SK_EINVAL, "sk_run_log_open needs a path and a place for the log");
    *out = NULL;
    sk_log_kind kind;
    int rc = sniff(path, &kind);
    if (rc != SK_OK)
        return rc;
    void *store = NULL;
    if (kind == SK_LOG_SQLITE) {
        rc = runlog_sqlite_open(path, false, SK_COND_NEVER, &store);
        return rc == SK_OK ? log_make(&runlog_sqlite_ops, store, false, out) : rc;
    }
    rc = runlog_csv_open(path, false, 0, SK_COND_NEVER, &store);
    return rc == SK_OK ? log_make(&runlog_csv_ops, store, false, out) : rc;
}

void sk_run_log_close(sk_run_log *log)
{
    if (log == NULL)
        return;
    log->ops->close(log->store);
    free(log);
}

/* ------------------------------------------------------------- writing */

int sk_runlog_begin(sk_run_log *log, const char *task, int64_t start, int64_t *id)
{
    if (log == NULL || id == NULL)
        return sk_refuse(SK_EINVAL, "sk_runlog_begin needs a log and a place for the id");
    int rc = check_task(task);
    if (rc != SK_OK)
        return rc;
    if (!log->writer)
        return sk_refuse(SK_ESTATE, "this run log was opened to read");
    return log->ops->begin(log->store, task, start, id);
}

int sk_runlog_end(sk_run_log *log, int64_t id, int64_t end, sk_run_outcome outcome,
                  const sk_error *error, const void *value, size_t value_len)
{
    if (log == NULL)
        return sk_refuse(SK_EINVAL, "no run log");
    if (outcome != SK_RUN_SUCCEEDED && outcome != SK_RUN_FAILED && outcome != SK_RUN_TERMINATED)
        return sk_refuse(SK_EINVAL, "%d is not an outcome that ends a run", (int)outcome);
    if (value == NULL && value_len > 0)
        return sk_refuse(SK_EINVAL, "a value of %zu bytes at NULL", value_len);
    if (!log->writer)
        return sk_refuse(SK_ESTATE, "this run log was opened to read");
    return log->ops->end(log->store, id, end, outcome, error, value, value_len);
}

int sk_runlog_alive(sk_run_log *log, int64_t now)
{
    if (log == NULL)
        return sk_refuse(SK_EINVAL, "no run log");
    if (!log->writer)
        return sk_refuse(SK_ESTATE, "this run log was opened to read");
    return log->ops->alive(log->store, now);
}

int64_t sk_runlog_previous_alive(sk_run_log *log)
{
    return log ? log->ops->previous_alive(log->store) : SK_COND_NEVER;
}

/* -------------------------------------------------- what conditions ask */

int64_t sk_runlog_last_time(void *log, const char *task, sk_cond_outcome outcome)
{
    sk_run_log *l = log;
    if (l == NULL || check_task(task) != SK_OK || check_outcome(outcome) != SK_OK)
        return SK_COND_NEVER;
    return l->ops->last_time(l->store, task, outcome);
}

int64_t sk_runlog_last_start(sk_run_log *log, const char *task)
{
    if (log == NULL || check_task(task) != SK_OK)
        return SK_COND_NEVER;
    return log->ops->last_start(log->store, task);
}

int sk_runlog_last_value(sk_run_log *log, const char *task, const void **img, size_t *len)
{
    if (log == NULL || img == NULL || len == NULL)
        return sk_refuse(SK_EINVAL, "sk_runlog_last_value needs a log and places for the value");
    int rc = check_task(task);
    if (rc != SK_OK)
        return rc;
    return log->ops->last_value(log->store, task, img, len);
}

/* ------------------------------------------------------ public queries */

static int check_query(sk_run_log *log, const char *task)
{
    if (log == NULL)
        return sk_refuse(SK_EINVAL, "no run log");
    return task == NULL ? SK_OK : check_task(task);
}

int64_t sk_run_log_runs(sk_run_log *log, const char *task, int64_t since, sk_run_fn fn, void *arg)
{
    int rc = check_query(log, task);
    if (rc != SK_OK)
        return rc;
    if (fn == NULL)
        return sk_refuse(SK_EINVAL, "sk_run_log_runs needs a function to pass the runs to");
    runlog_query q = {.task = task, .since = since};
    return log->ops->query(log->store, &q, fn, arg);
}

int sk_run_log_last(sk_run_log *log, const char *task, sk_cond_outcome outcome, sk_run_fn fn,
                    void *arg)
{
    int rc = check_query(log, task);
    if (rc == SK_OK)
        rc = check_outcome(outcome);
    if (rc != SK_OK)
        return rc;
    runlog_query q = {
        .task = task, .since = SK_COND_NEVER, .finished = true, .outcome = outcome, .latest = true};
    return (int)log->ops->query(log->store, &q, fn, arg);
}

int64_t sk_run_log_count(sk_run_log *log, const char *task, sk_cond_outcome outcome, int64_t since)
{
    int rc = check_query(log, task);
    if (rc == SK_OK)
        rc = check_outcome(outcome);
    if (rc != SK_OK)
        return rc;
    runlog_query q = {.task = task, .since = since, .finished = true, .outcome = outcome};
    return log->ops->query(log->store, &q, NULL, NULL);
}
