/* SPDX-License-Identifier: MIT */
/*
 * The SQLite store: one row per run in `runs`, inserted RUNNING when the
 * run begins and completed when it ends, each in its own transaction; the
 * session's last-alive time in `session`. WAL mode with synchronous=NORMAL:
 * a commit is in the WAL file when the call returns, so a killed process
 * loses nothing it logged; a power cut may lose the commits since the last
 * checkpoint (the database stays consistent). docs/scheduling.md has the
 * schema.
 *
 * The file is marked as a run log by PRAGMA application_id and carries
 * its schema version in PRAGMA user_version; anything else is refused
 * (SK_EFORMAT), but an empty database becomes a run log. Statements are
 * prepared once and kept.
 */
#include "sched/runlog_store.h"

#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUNLOG_APPLICATION_ID 0x736b726c /* "skrl" */
#define RUNLOG_SCHEMA_VERSION 1
#define RUNLOG_BUSY_TIMEOUT_MS 5000

static const char schema_sql[] =
    "CREATE TABLE runs ("
    " id INTEGER PRIMARY KEY,"
    " task TEXT NOT NULL,"
    " start INTEGER NOT NULL,"
    " \"end\" INTEGER,"
    " outcome TEXT NOT NULL"
    "  CHECK (outcome IN ('running', 'succeeded', 'failed', 'terminated')),"
    " error_kind INTEGER, error_section INTEGER, error_run INTEGER, error_code INTEGER,"
    " error_reason INTEGER, error_signal INTEGER, error_exit_status INTEGER,"
    " error_timeout REAL, error_lives_spent INTEGER, error_item INTEGER,"
    " error_message TEXT, error_cause TEXT,"
    " value BLOB);"
    "CREATE INDEX runs_task_start ON runs (task, start);"
    "CREATE INDEX runs_task_end ON runs (task, outcome, \"end\");"
    "CREATE INDEX runs_task_value ON runs (task, \"end\") WHERE value IS NOT NULL;"
    "CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), alive INTEGER NOT NULL);";

/* The columns a record is read from, in this order (row_record). */
#define RUN_COLUMNS                                                                                \
    "id, task, start, \"end\", outcome, error_kind, error_section, error_run, error_code,"         \
    " error_reason, error_signal, error_exit_status, error_timeout, error_lives_spent,"            \
    " error_item, error_message, error_cause, value"

/* Outcomes as bound to `outcome IN (?, ?, ?, ?)`: a query's set, padded
 * with repeats. */
#define OUTCOME_SET "outcome IN (?3, ?4, ?5, ?6)"

enum stmt_id {
    ST_BEGIN,
    ST_END,
    ST_OUTCOME_OF,
    ST_ALIVE,
    ST_LAST_END,
    ST_LAST_START,
    ST_LAST_VALUE,
    ST_ROWS_TASK, /* queries: ?1 task, ?2 since, ?3..?6 outcomes */
    ST_ROWS_ALL,
    ST_LATEST_TASK,
    ST_LATEST_ALL,
    ST_COUNT_TASK,
    ST_COUNT_ALL,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "INSERT INTO runs (task, start, outcome) VALUES (?1, ?2, 'running')",
    [ST_END] = "UPDATE runs SET \"end\" = ?2, outcome = ?3, error_kind = ?4, error_section = ?5,"
               " error_run = ?6, error_code = ?7, error_reason = ?8, error_signal = ?9,"
               " error_exit_status = ?10, error_timeout = ?11, error_lives_spent = ?12,"
               " error_item = ?13, error_message = ?14, error_cause = ?15, value = ?16"
               " WHERE id = ?1 AND outcome = 'running'",
    [ST_OUTCOME_OF] = "SELECT outcome FROM runs WHERE id = ?1",
    [ST_ALIVE] = "INSERT INTO session (id, alive) VALUES (1, ?1)"
                 " ON CONFLICT (id) DO UPDATE SET alive = excluded.alive",
    [ST_LAST_END] = "SELECT MAX(\"end\") FROM runs WHERE task = ?1 AND outcome = ?2",
    [ST_LAST_START] = "SELECT MAX(start) FROM runs WHERE task = ?1",
    [ST_LAST_VALUE] = "SELECT value FROM runs WHERE task = ?1 AND value IS NOT NULL"
                      " ORDER BY \"end\" DESC, id DESC LIMIT 1",
    /* The _ALL forms have no ?1. */
    [ST_ROWS_TASK] = "SELECT " RUN_COLUMNS " FROM runs WHERE task = ?1 AND start >= ?2"
                     " AND " OUTCOME_SET " ORDER BY id",
    [ST_ROWS_ALL] = "SELECT " RUN_COLUMNS " FROM runs WHERE start >= ?2"
                    " AND " OUTCOME_SET " ORDER BY id",
    [ST_LATEST_TASK] = "SELECT " RUN_COLUMNS " FROM runs WHERE task = ?1 AND start >= ?2"
                       " AND " OUTCOME_SET " ORDER BY \"end\" DESC, id DESC LIMIT 1",
    [ST_LATEST_ALL] = "SELECT " RUN_COLUMNS " FROM runs WHERE start >= ?2"
                      " AND " OUTCOME_SET " ORDER BY \"end\" DESC, id DESC LIMIT 1",
    [ST_COUNT_TASK] = "SELECT COUNT(*) FROM runs WHERE task = ?1 AND start >= ?2"
                      " AND " OUTCOME_SET,
    [ST_COUNT_ALL] = "SELECT COUNT(*) FROM runs WHERE start >= ?2"
                     " AND " OUTCOME_SET,
};

typedef struct sqlite_store {
    sqlite3 *db;
    char *path;
    int lock_fd; /* the writer's: holds the one-session lock; -1 for a reader */
    bool writer;
    int64_t previous_alive;
    int64_t alive_written; /* the last alive time written, SK_COND_NEVER */
    sqlite3_stmt *stmt[ST_COUNT];
    void *value; /* sk_runlog_last_value's copy */
} sqlite_store;

/* A SQLite failure as a return code, with SQLite's words. */
static int refuse_sqlite(sqlite_store *s, int rc, const char *doing)
{
    const char *words = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return sk_refuse(SK_ENOMEM, "%s: %s: %s", s->path, doing, words);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return sk_refuse(SK_EFORMAT, "%s is not a run log: %s", s->path, words);
    case SQLITE_TOOBIG:
        return sk_refuse(SK_EINVAL, "%s: %s: %s", s->path, doing, words);
    default:
        return sk_refuse(SK_ESYS, "%s: %s: %s", s->path, doing, words);
    }
}

/* Statement id, prepared the first time and kept. When it is in use (a
 * query's callback asking the same log again), a statement of its own
 * for this call: *temp says to finalize it. */
static int stmt_get(sqlite_store *s, enum stmt_id id, sqlite3_stmt **out, bool *temp)
{
    *temp = false;
    if (s->stmt[id] != NULL && !sqlite3_stmt_busy(s->stmt[id])) {
        *out = s->stmt[id];
        return SK_OK;
    }
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1,
                                s->stmt[id] ? 0 : SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK)
        return refuse_sqlite(s, rc, "preparing a statement");
    if (s->stmt[id] == NULL)
        s->stmt[id] = st;
    else
        *temp = true;
    *out = st;
    return SK_OK;
}

static void stmt_done(sqlite3_stmt *st, bool temp)
{
    if (temp) {
        sqlite3_finalize(st);
    } else {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Runs sql (no rows) on s's connection. */
static int exec(sqlite_store *s, const char *sql, const char *doing)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? SK_OK : refuse_sqlite(s, rc, doing);
}

/* One integer from sql ("PRAGMA user_version"); *v = fallback for no row
 * or NULL. */
static int query_int(sqlite_store *s, const char *sql, int64_t fallback, int64_t *v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return refuse_sqlite(s, rc, "reading the log");
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ? sqlite3_column_int64(st, 0)
                                                                       : fallback;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SK_OK : refuse_sqlite(s, rc, "reading the log");
}

/* A run log, an empty database the writer makes one, or SK_EFORMAT. */
static int check_format(sqlite_store *s)
{
    int64_t app, version, tables;
    int rc = query_int(s, "PRAGMA application_id", 0, &app);
    if (rc == SK_OK)
        rc = query_int(s, "PRAGMA user_version", 0, &version);
    if (rc == SK_OK)
        rc = query_int(s, "SELECT COUNT(*) FROM sqlite_master", 0, &tables);
    if (rc != SK_OK)
        return rc;
    if (app == RUNLOG_APPLICATION_ID) {
        if (version == RUNLOG_SCHEMA_VERSION)
            return SK_OK;
        return sk_refuse(SK_EFORMAT, "%s is a run log of schema version %lld; this skproc reads %d",
                         s->path, (long long)version, RUNLOG_SCHEMA_VERSION);
    }
    if (app != 0 || tables != 0 || version != 0)
        return sk_refuse(SK_EFORMAT, "%s is a SQLite database but not a run log", s->path);
    if (!s->writer)
        return sk_refuse(SK_EFORMAT, "%s is an empty database, not a run log", s->path);
    char sql[sizeof schema_sql + 128];
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE;%sPRAGMA application_id = %d;"
             "PRAGMA user_version = %d;COMMIT;",
             schema_sql, RUNLOG_APPLICATION_ID, RUNLOG_SCHEMA_VERSION);
    rc = exec(s, sql, "creating the run log");
    if (rc != SK_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int write_alive(sqlite_store *s, int64_t now)
{
    sqlite3_stmt *st;
    bool temp;
    int rc = stmt_get(s, ST_ALIVE, &st, &temp);
    if (rc != SK_OK)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    int step = sqlite3_step(st);
    stmt_done(st, temp);
    if (step != SQLITE_DONE)
        return refuse_sqlite(s, step, "recording that the session is alive");
    s->alive_written = now;
    return SK_OK;
}

/* Ends the runs an earlier session left running (runlog.h), and records
 * this session as alive at now, in one transaction. */
static int recover(sqlite_store *s, int64_t now)
{
    int rc = exec(s, "BEGIN IMMEDIATE", "recovering runs left running");
    if (rc == SK_OK)
        rc = query_int(s, "SELECT alive FROM session WHERE id = 1", SK_COND_NEVER,
                       &s->previous_alive);
    sk_error e;
    sk_runlog_recovered_error(&e);
    sqlite3_stmt *st = NULL;
    if (rc == SK_OK) {
        int prc = sqlite3_prepare_v2(
            s->db,
            "UPDATE runs SET outcome = 'failed',"
            " \"end\" = CASE WHEN ?1 IS NOT NULL AND ?1 > start THEN ?1 ELSE start END,"
            " error_kind = ?2, error_section = ?3, error_run = ?4, error_code = ?5,"
            " error_reason = ?6, error_signal = 0, error_exit_status = 0, error_timeout = 0,"
            " error_lives_spent = ?7, error_item = ?8, error_message = ?9, error_cause = ?10"
            " WHERE outcome = 'running'",
            -1, &st, NULL);
        if (prc != SQLITE_OK)
            rc = refuse_sqlite(s, prc, "recovering runs left running");
    }
    if (rc == SK_OK) {
        if (s->previous_alive != SK_COND_NEVER)
            sqlite3_bind_int64(st, 1, s->previous_alive);
        sqlite3_bind_int(st, 2, e.kind);
        sqlite3_bind_int(st, 3, e.section);
        sqlite3_bind_int64(st, 4, e.run);
        sqlite3_bind_int(st, 5, e.code);
        sqlite3_bind_int(st, 6, e.reason);
        sqlite3_bind_int(st, 7, e.lives_spent);
        sqlite3_bind_int64(st, 8, e.item);
        sqlite3_bind_text(st, 9, e.message, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, e.cause, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step != SQLITE_DONE)
            rc = refuse_sqlite(s, step, "recovering runs left running");
    }
    sqlite3_finalize(st);
    if (rc == SK_OK && now != SK_COND_NEVER)
        rc = write_alive(s, now);
    if (rc == SK_OK)
        rc = exec(s, "COMMIT", "recovering runs left running");
    if (rc != SK_OK)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void store_close(void *store)
{
    sqlite_store *s = store;
    if (s == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    /* Only now: closing a descriptor of the file drops the process's POSIX
     * locks on it, SQLite's included. */
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->value);
    free(s->path);
    free(s);
}

/* The writer's descriptor of the file, made if missing, and its lock. */
static int writer_lock(sqlite_store *s)
{
    s->lock_fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        return sk_refuse(SK_ESYS, "%s: cannot open the run log: %s", s->path, strerror(errno));
    return sk_runlog_lock(s->lock_fd, s->path);
}

static int db_connect(sqlite_store *s)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK && !s->writer) {
        /* A reader may lack write access to the file: read-only then. */
        sqlite3_close(s->db);
        s->db = NULL;
        flags = (flags & ~SQLITE_OPEN_READWRITE) | SQLITE_OPEN_READONLY;
        rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    }
    if (rc != SQLITE_OK)
        return refuse_sqlite(s, rc, "cannot open the run log");
    sqlite3_busy_timeout(s->db, RUNLOG_BUSY_TIMEOUT_MS);
    return SK_OK;
}

int runlog_sqlite_open(const char *path, bool writer, int64_t now, void **out)
{
    sqlite_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return sk_refuse(SK_ENOMEM, "out of memory for the run log");
    }
    s->lock_fd = -1;
    s->writer = writer;
    s->previous_alive = SK_COND_NEVER;
    s->alive_written = SK_COND_NEVER;
    int rc = writer ? writer_lock(s) : SK_OK;
    if (rc == SK_OK)
        rc = db_connect(s);
    if (rc == SK_OK)
        rc = check_format(s);
    if (rc == SK_OK && writer)
        rc = exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", "setting WAL mode");
    if (rc == SK_OK && writer)
        rc = recover(s, now);
    if (rc == SK_OK && !writer)
        rc = query_int(s, "SELECT alive FROM session WHERE id = 1", SK_COND_NEVER,
                       &s->previous_alive);
    if (rc != SK_OK) {
        store_close(s);
        return rc;
    }
    *out = s;
    return SK_OK;
}

/* ------------------------------------------------------------- writing */

static int store_begin(void *store, const char *task, int64_t start, int64_t *id)
{
    sqlite_store *s = store;
    sqlite3_stmt *st;
    bool temp;
    int rc = stmt_get(s, ST_BEGIN, &st, &temp);
    if (rc != SK_OK)
        return rc;
    sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, start);
    int step = sqlite3_step(st);
    stmt_done(st, temp);
    if (step != SQLITE_DONE)
        return refuse_sqlite(s, step, "logging the start of a run");
    *id = sqlite3_last_insert_rowid(s->db);
    return SK_OK;
}

/* Why run id could not be ended: there is no such run, or it has ended. */
static int end_refusal(sqlite_store *s, int64_t id)
{
    sqlite3_stmt *st;
    bool temp;
    int rc = stmt_get(s, ST_OUTCOME_OF, &st, &temp);
    if (rc != SK_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int step = sqlite3_step(st);
    stmt_done(st, temp);
    if (step == SQLITE_ROW)
        return sk_refuse(SK_ESTATE, "run %lld has ended already", (long long)id);
    if (step == SQLITE_DONE)
        return sk_refuse(SK_EINVAL, "no run with id %lld in the run log", (long long)id);
    return refuse_sqlite(s, step, "logging the end of a run");
}

static void bind_error(sqlite3_stmt *st, const sk_error *e)
{
    sqlite3_bind_int(st, 4, e->kind);
    sqlite3_bind_int(st, 5, e->section);
    sqlite3_bind_int64(st, 6, e->run);
    sqlite3_bind_int(st, 7, e->code);
    sqlite3_bind_int(st, 8, e->reason);
    sqlite3_bind_int(st, 9, e->signal);
    sqlite3_bind_int(st, 10, e->exit_status);
    sqlite3_bind_double(st, 11, e->timeout);
    sqlite3_bind_int(st, 12, e->lives_spent);
    sqlite3_bind_int64(st, 13, e->item);
    sqlite3_bind_text(st, 14, e->message, (int)strnlen(e->message, sizeof e->message),
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 15, e->cause, (int)strnlen(e->cause, sizeof e->cause), SQLITE_STATIC);
}

static int store_end(void *store, int64_t id, int64_t end, sk_run_outcome outcome,
                     const sk_error *error, const void *value, size_t value_len)
{
    sqlite_store *s = store;
    sqlite3_stmt *st;
    bool temp;
    int rc = stmt_get(s, ST_END, &st, &temp);
    if (rc != SK_OK)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, end);
    sqlite3_bind_text(st, 3, sk_runlog_outcome_name(outcome), -1, SQLITE_STATIC);
    if (error != NULL && outcome != SK_RUN_SUCCEEDED)
        bind_error(st, error);
    if (value != NULL && value_len > 0)
        sqlite3_bind_blob64(st, 16, value, value_len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    stmt_done(st, temp);
    if (step != SQLITE_DONE)
        return refuse_sqlite(s, step, "logging the end of a run");
    return sqlite3_changes(s->db) == 1 ? SK_OK : end_refusal(s, id);
}

static int store_alive(void *store, int64_t now)
{
    sqlite_store *s = store;
    if (s->alive_written != SK_COND_NEVER && now >= s->alive_written &&
        now - s->alive_written < RUNLOG_ALIVE_EVERY)
        return SK_OK;
    return write_alive(s, now);
}

static int64_t store_previous_alive(void *store)
{
    return ((sqlite_store *)store)->previous_alive;
}

/* ------------------------------------------------------------- reading */

static int64_t one_int(sqlite_store *s, enum stmt_id id, const char *task, const char *outcome)
{
    sqlite3_stmt *st;
    bool temp;
    if (stmt_get(s, id, &st, &temp) != SK_OK)
        return SK_COND_NEVER;
    sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
    if (outcome != NULL)
        sqlite3_bind_text(st, 2, outcome, -1, SQLITE_STATIC);
    int64_t v = SK_COND_NEVER;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    stmt_done(st, temp);
    return v;
}

static int64_t store_last_time(void *store, const char *task, sk_cond_outcome outcome)
{
    static const sk_run_outcome each[] = {SK_RUN_SUCCEEDED, SK_RUN_FAILED, SK_RUN_TERMINATED};
    int64_t latest = SK_COND_NEVER;
    for (size_t i = 0; i < sizeof each / sizeof each[0]; i++) {
        if (!sk_runlog_outcome_is(each[i], outcome))
            continue;
        int64_t t = one_int(store, ST_LAST_END, task, sk_runlog_outcome_name(each[i]));
        if (t != SK_COND_NEVER && (latest == SK_COND_NEVER || t > latest))
            latest = t;
    }
    return latest;
}

static int64_t store_last_start(void *store, const char *task)
{
    return one_int(store, ST_LAST_START, task, NULL);
}

static int store_last_value(void *store, const char *task, const void **img, size_t *len)
{
    sqlite_store *s = store;
    sqlite3_stmt *st;
    bool temp;
    int rc = stmt_get(s, ST_LAST_VALUE, &st, &temp);
    if (rc != SK_OK)
        return rc;
    sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    rc = SK_ECLOSED;
    if (step == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        void *copy = malloc(n ? n : 1);
        if (copy == NULL) {
            rc = sk_refuse(SK_ENOMEM, "out of memory for a run's value");
        } else {
            memcpy(copy, sqlite3_column_blob(st, 0), n);
            free(s->value);
            s->value = copy;
            *img = copy;
            *len = n;
            rc = SK_OK;
        }
    } else if (step != SQLITE_DONE) {
        rc = refuse_sqlite(s, step, "reading a run's value");
    }
    stmt_done(st, temp);
    return rc;
}

/* The record of the row st is on; e holds its error. */
static sk_run_record row_record(sqlite3_stmt *st, sk_error *e)
{
    int outcome = sk_runlog_outcome_parse((const char *)sqlite3_column_text(st, 4),
                                          (size_t)sqlite3_column_bytes(st, 4));
    sk_run_record rec = {
        .id = sqlite3_column_int64(st, 0),
        .task = (const char *)sqlite3_column_text(st, 1),
        .start = sqlite3_column_int64(st, 2),
        .end =
            sqlite3_column_type(st, 3) == SQLITE_NULL ? SK_COND_NEVER : sqlite3_column_int64(st, 3),
        .outcome = outcome < 0 ? SK_RUN_FAILED : (sk_run_outcome)outcome,
    };
    if (rec.outcome == SK_RUN_RUNNING)
        rec.end = SK_COND_NEVER;
    if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
        memset(e, 0, sizeof *e);
        e->kind = (sk_error_kind)sqlite3_column_int(st, 5);
        e->section = (sk_section)sqlite3_column_int(st, 6);
        e->run = (long)sqlite3_column_int64(st, 7);
        e->code = sqlite3_column_int(st, 8);
        e->reason = sqlite3_column_int(st, 9);
        e->signal = sqlite3_column_int(st, 10);
        e->exit_status = sqlite3_column_int(st, 11);
        e->timeout = sqlite3_column_double(st, 12);
        e->lives_spent = sqlite3_column_int(st, 13);
        e->item = (long)sqlite3_column_int64(st, 14);
        const char *m = (const char *)sqlite3_column_text(st, 15);
        const char *c = (const char *)sqlite3_column_text(st, 16);
        snprintf(e->message, sizeof e->message, "%s", m ? m : "");
        snprintf(e->cause, sizeof e->cause, "%s", c ? c : "");
        rec.error = e;
    }
    if (sqlite3_column_type(st, 17) != SQLITE_NULL) {
        rec.value_len = (size_t)sqlite3_column_bytes(st, 17);
        rec.value = sqlite3_column_blob(st, 17);
    }
    if (rec.task == NULL)
        rec.task = "";
    return rec;
}

static int64_t store_query(void *store, const runlog_query *q, sk_run_fn fn, void *arg)
{
    sqlite_store *s = store;
    bool counting = fn == NULL && !q->latest;
    enum stmt_id id = q->latest ? ST_LATEST_ALL : counting ? ST_COUNT_ALL : ST_ROWS_ALL;
    if (q->task != NULL)
        id = id == ST_LATEST_ALL  ? ST_LATEST_TASK
             : id == ST_COUNT_ALL ? ST_COUNT_TASK
                                  : ST_ROWS_TASK;
    sqlite3_stmt *st;
    bool temp;
    int rc = stmt_get(s, id, &st, &temp);
    if (rc != SK_OK)
        return rc;
    if (q->task != NULL)
        sqlite3_bind_text(st, 1, q->task, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, q->since);
    /* The outcomes the query takes, as ?3..?6 (repeats pad the set). */
    static const sk_run_outcome all[] = {SK_RUN_RUNNING, SK_RUN_SUCCEEDED, SK_RUN_FAILED,
                                         SK_RUN_TERMINATED};
    const char *set[4];
    int n = 0;
    for (size_t i = 0; i < 4; i++)
        if (!q->finished || sk_runlog_outcome_is(all[i], q->outcome))
            set[n++] = sk_runlog_outcome_name(all[i]);
    for (int i = 0; i < 4; i++)
        sqlite3_bind_text(st, 3 + i, set[i < n ? i : n - 1], -1, SQLITE_STATIC);

    int64_t count = 0;
    int step;
    sk_error e;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (counting) {
            count = sqlite3_column_int64(st, 0);
            continue;
        }
        count++;
        if (fn == NULL)
            continue;
        sk_run_record rec = row_record(st, &e);
        if (fn(&rec, arg) != 0) {
            step = SQLITE_DONE;
            break;
        }
    }
    stmt_done(st, temp);
    if (step != SQLITE_DONE)
        return refuse_sqlite(s, step, "querying the run log");
    return count;
}

const runlog_ops runlog_sqlite_ops = {
    .name = "sqlite",
    .begin = store_begin,
    .end = store_end,
    .query = store_query,
    .last_time = store_last_time,
    .last_start = store_last_start,
    .last_value = store_last_value,
    .alive = store_alive,
    .previous_alive = store_previous_alive,
    .close = store_close,
};
