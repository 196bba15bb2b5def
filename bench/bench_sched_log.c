/* SPDX-License-Identifier: MIT */
/*
 * The scheduler's run log (skproc/sched/runlog.h): runs logged per second,
 * a run being its start and its end (sk_runlog_begin + sk_runlog_end,
 * each its own commit), against floors written in this program.
 *
 *   sched_log.sqlite       skproc's SQLite store: WAL, synchronous=NORMAL,
 *                          runs/s
 *   sched_log.sqlite.raw   the floor: raw sqlite3 with the same pragmas and
 *                          the same table and indexes, a prepared INSERT at
 *                          the start and a prepared UPDATE at the end of
 *                          each run (autocommit: a transaction each)
 *   sched_log.csv          skproc's CSV store: a line per start and per end
 *   sched_log.csv.raw      the floor: the same lines from snprintf, one
 *                          write(2) each to an O_APPEND file
 *   sched_log.memory       the memory store (bounded ring): information
 *
 * A round is 10,000 runs for SQLite (quick 2,000), ten times that for
 * CSV and a hundred times for memory (--ops sets SQLite's count).
 * Every run has one of 16 task names, succeeds and returns an 8-byte value.
 * The kinds take turns round by round (the order rotating), each round a
 * fresh file in a fresh directory under $TMPDIR (or /tmp), so that a slow
 * moment of the machine hits all alike; a row is the median round. This
 * program includes the library's private header for the run log: the
 * session that writes it in real use adds its own work on top.
 */
#include "common.h"

#include <skproc.h>

#include "sched/runlog.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#define AREA "scheduler"
#define TASKS 16
#define ROUNDS 5

static char dir[512];
static int64_t fake_now = INT64_C(1700000000000000000);

static char task_names[TASKS][16];

static void fresh_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/bench-sched-log-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    BENCH_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
}

static void remove_dir(void)
{
    const char *names[] = {"runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm", "runs.csv",
                           "raw.sqlite",  "raw.sqlite-wal",  "raw.sqlite-shm",  "raw.csv"};
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    BENCH_CHECK(rmdir(dir) == 0, "rmdir");
}

/* skproc's store of kind: runs/s over n runs. */
static double skproc_round(sk_log_kind kind, long n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/runs.%s", dir, kind == SK_LOG_CSV ? "csv" : "sqlite");
    sk_run_log *log;
    BENCH_CHECK(sk_runlog_open(kind, kind == SK_LOG_MEMORY ? NULL : path, 0, fake_now, &log) ==
                    SK_OK,
                sk_last_error_message());
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        int64_t id, now = fake_now + i * 1000;
        uint64_t value = (uint64_t)i;
        BENCH_CHECK(sk_runlog_begin(log, task_names[i % TASKS], now, &id) == SK_OK, "begin");
        BENCH_CHECK(sk_runlog_end(log, id, now + 500, SK_RUN_SUCCEEDED, NULL, &value,
                                  sizeof value) == SK_OK,
                    "end");
    }
    int64_t t1 = bench_now_ns();
    sk_run_log_close(log);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

/* The run log's table as skproc makes it (runlog_sqlite.c). */
static const char raw_schema[] =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, task TEXT NOT NULL, start INTEGER NOT NULL,"
    " \"end\" INTEGER, outcome TEXT NOT NULL"
    "  CHECK (outcome IN ('running', 'succeeded', 'failed', 'terminated')),"
    " error_kind INTEGER, error_section INTEGER, error_run INTEGER, error_code INTEGER,"
    " error_reason INTEGER, error_signal INTEGER, error_exit_status INTEGER,"
    " error_timeout REAL, error_lives_spent INTEGER, error_item INTEGER,"
    " error_message TEXT, error_cause TEXT, value BLOB);"
    "CREATE INDEX runs_task_start ON runs (task, start);"
    "CREATE INDEX runs_task_end ON runs (task, outcome, \"end\");"
    "CREATE INDEX runs_task_value ON runs (task, \"end\") WHERE value IS NOT NULL;"
    "CREATE TABLE session (id INTEGER PRIMARY KEY CHECK (id = 1), alive INTEGER NOT NULL);";

static double raw_sqlite_round(long n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/raw.sqlite", dir);
    sqlite3 *db;
    BENCH_CHECK(sqlite3_open_v2(path, &db,
                                SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                NULL) == SQLITE_OK,
                "sqlite3_open");
    BENCH_CHECK(sqlite3_exec(db, raw_schema, NULL, NULL, NULL) == SQLITE_OK, sqlite3_errmsg(db));
    sqlite3_stmt *ins, *upd;
    BENCH_CHECK(sqlite3_prepare_v2(db,
                                   "INSERT INTO runs (task, start, outcome)"
                                   " VALUES (?1, ?2, 'running')",
                                   -1, &ins, NULL) == SQLITE_OK,
                "prepare");
    BENCH_CHECK(sqlite3_prepare_v2(db,
                                   "UPDATE runs SET \"end\" = ?2, outcome = 'succeeded',"
                                   " value = ?3 WHERE id = ?1 AND outcome = 'running'",
                                   -1, &upd, NULL) == SQLITE_OK,
                "prepare");
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        int64_t now = fake_now + i * 1000;
        uint64_t value = (uint64_t)i;
        sqlite3_bind_text(ins, 1, task_names[i % TASKS], -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, now);
        BENCH_CHECK(sqlite3_step(ins) == SQLITE_DONE, "insert");
        sqlite3_reset(ins);
        int64_t id = sqlite3_last_insert_rowid(db);
        sqlite3_bind_int64(upd, 1, id);
        sqlite3_bind_int64(upd, 2, now + 500);
        sqlite3_bind_blob(upd, 3, &value, sizeof value, SQLITE_STATIC);
        BENCH_CHECK(sqlite3_step(upd) == SQLITE_DONE && sqlite3_changes(db) == 1, "update");
        sqlite3_reset(upd);
    }
    int64_t t1 = bench_now_ns();
    sqlite3_finalize(ins);
    sqlite3_finalize(upd);
    sqlite3_close(db);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

/* The CSV store's lines, written the cheapest way: snprintf and a write. */
static double raw_csv_round(long n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/raw.csv", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    BENCH_CHECK(fd >= 0, "open");
    char line[512];
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        int64_t now = fake_now + i * 1000;
        int len = snprintf(line, sizeof line, "%ld,start,%s,%lld,,,,,,,,,,,,,,\n", i + 1,
                           task_names[i % TASKS], (long long)now);
        bench_write_all(fd, line, (size_t)len);
        len = snprintf(line, sizeof line, "%ld,end,%s,%lld,succeeded,,,,,,,,,,,,,AAAAAAAAAAA=\n",
                       i + 1, task_names[i % TASKS], (long long)(now + 500));
        bench_write_all(fd, line, (size_t)len);
    }
    int64_t t1 = bench_now_ns();
    close(fd);
    return (double)n / ((double)(t1 - t0) / 1e9);
}

enum kind { K_SQLITE, K_SQLITE_RAW, K_CSV, K_CSV_RAW, K_MEMORY, K_COUNT };

/* The runs of one round of kind k: SQLite commits cost tens of
 * microseconds, so its rounds are shorter. */
static long runs_of(enum kind k, long n)
{
    return k == K_SQLITE || k == K_SQLITE_RAW ? n : k == K_MEMORY ? n * 100 : n * 10;
}

static double round_of(enum kind k, long n)
{
    switch (k) {
    case K_SQLITE:
        return skproc_round(SK_LOG_SQLITE, n);
    case K_SQLITE_RAW:
        return raw_sqlite_round(n);
    case K_CSV:
        return skproc_round(SK_LOG_CSV, n);
    case K_CSV_RAW:
        return raw_csv_round(n);
    default:
        return skproc_round(SK_LOG_MEMORY, n);
    }
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    long n = bench_ops(&o, 10000, 2000); /* SQLite's; CSV x10, memory x100 */
    long rounds = o.quick ? 3 : ROUNDS;
    bench_print_info("bench_sched_log");
    for (int i = 0; i < TASKS; i++)
        snprintf(task_names[i], sizeof task_names[i], "task-%02d", i);

    double v[K_COUNT][ROUNDS];
    for (long r = 0; r < rounds; r++) {
        fresh_dir();
        for (int j = 0; j < K_COUNT; j++) {
            enum kind k = (enum kind)((j + r) % K_COUNT);
            v[k][r] = round_of(k, runs_of(k, n));
        }
        remove_dir();
    }

    static const struct {
        const char *key, *name, *shrt, *baseline;
    } rows[K_COUNT] = {
        [K_SQLITE] = {"sched_log.sqlite", "SQLite run log (WAL), start + end per run",
                      "skproc SQLite", "sched_log.sqlite.raw"},
        [K_SQLITE_RAW] = {"sched_log.sqlite.raw",
                          "raw sqlite3: prepared INSERT + UPDATE, same pragmas and table",
                          "raw sqlite3", NULL},
        [K_CSV] = {"sched_log.csv", "CSV run log, a line per start and per end", "skproc CSV",
                   "sched_log.csv.raw"},
        [K_CSV_RAW] = {"sched_log.csv.raw", "raw CSV: snprintf + write(2) per line", "raw write",
                       NULL},
        [K_MEMORY] = {"sched_log.memory", "memory run log (ring of 10,000)", "skproc memory", NULL},
    };
    for (int k = 0; k < K_COUNT; k++) {
        struct bench_stats s = bench_summarize(v[k], rounds);
        char extra[200];
        snprintf(extra, sizeof extra, "\"short\":\"%s\"%s%s%s,\"runs\":%ld", rows[k].shrt,
                 rows[k].baseline ? ",\"baseline\":\"" : "",
                 rows[k].baseline ? rows[k].baseline : "", rows[k].baseline ? "\"" : "",
                 runs_of((enum kind)k, n));
        bench_emit(AREA, rows[k].key, rows[k].name, "runs/s", s.median, &s, extra);
    }
    return 0;
}
