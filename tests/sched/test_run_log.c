/* SPDX-License-Identifier: MIT */
/*
 * The run log, each store (memory, SQLite, CSV) through the same calls:
 * what the queries find, errors and values written and read back exactly,
 * the memory bound, reopening, runs left running ended as failed, a
 * writer SIGKILLed at random points (no logged run lost or repeated), a
 * reader while a session writes, and bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "sched/runlog.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#define NS INT64_C(1000000000)
#define T(s) (INT64_C(1700000000) * NS + (int64_t)((s)*NS))

typedef enum store { MEM, SQL, CSV } store;
static const char *const store_file[] = {[MEM] = NULL, [SQL] = "runs.sqlite", [CSV] = "runs.csv"};

/* ------------------------------------------------------------- helpers */

/* A run as a query passed it, copied. */
typedef struct rec {
    int64_t id, start, end;
    sk_run_outcome outcome;
    char task[SK_COND_NAME_MAX + 1];
    bool has_error;
    sk_error error;
    unsigned char *value;
    size_t value_len;
} rec;

typedef struct recs {
    rec *v;
    size_t n, cap;
    size_t stop_after; /* 0: never */
} recs;

static int collect(const sk_run_record *r, void *arg)
{
    recs *rs = arg;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 16;
        rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
        assert_non_null(rs->v);
    }
    rec *c = &rs->v[rs->n++];
    memset(c, 0, sizeof *c);
    c->id = r->id;
    c->start = r->start;
    c->end = r->end;
    c->outcome = r->outcome;
    assert_non_null(r->task);
    assert_true(strlen(r->task) <= SK_COND_NAME_MAX);
    strcpy(c->task, r->task);
    if (r->error != NULL) {
        c->has_error = true;
        c->error = *r->error;
    }
    if (r->value != NULL) {
        c->value = malloc(r->value_len ? r->value_len : 1);
        assert_non_null(c->value);
        memcpy(c->value, r->value, r->value_len);
        c->value_len = r->value_len;
    }
    return rs->stop_after && rs->n >= rs->stop_after;
}

static void recs_free(recs *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].value);
    free(rs->v);
    *rs = (recs){0};
}

/* Every run of task (NULL: all) since `since`. */
static recs runs_of(sk_run_log *log, const char *task, int64_t since)
{
    recs rs = {0};
    int64_t n = sk_run_log_runs(log, task, since, collect, &rs);
    assert_int_equal(n, (int64_t)rs.n);
    return rs;
}

/* The id of the latest run of task with outcome, or 0 for none. */
static int64_t last_id(sk_run_log *log, const char *task, sk_cond_outcome outcome)
{
    recs rs = {0};
    int found = sk_run_log_last(log, task, outcome, collect, &rs);
    assert_true(found == 0 || found == 1);
    assert_int_equal((size_t)found, rs.n);
    int64_t id = found ? rs.v[0].id : 0;
    recs_free(&rs);
    return id;
}

static char path_buf[3][512];

static const char *log_path(store s, const char *dir)
{
    if (s == MEM)
        return NULL;
    snprintf(path_buf[s], sizeof path_buf[s], "%s/%s", dir, store_file[s]);
    return path_buf[s];
}

static sk_run_log *open_log(store s, const char *dir, size_t max_runs, int64_t now)
{
    sk_run_log *log = NULL;
    int rc = sk_runlog_open(s == MEM ? SK_LOG_MEMORY : SK_LOG_AUTO, log_path(s, dir), max_runs, now,
                            &log);
    if (rc != SK_OK)
        print_message("sk_runlog_open: %s\n", sk_last_error_message());
    assert_int_equal(rc, SK_OK);
    assert_non_null(log);
    return log;
}

static int64_t begin(sk_run_log *log, const char *task, int64_t start)
{
    int64_t id = -1;
    assert_rc(sk_runlog_begin(log, task, start, &id), SK_OK);
    assert_true(id > 0);
    return id;
}

static void end_ok(sk_run_log *log, int64_t id, int64_t end, const char *value)
{
    assert_rc(sk_runlog_end(log, id, end, SK_RUN_SUCCEEDED, NULL, value, value ? strlen(value) : 0),
              SK_OK);
}

static void end_as(sk_run_log *log, int64_t id, int64_t end, sk_run_outcome outcome, int code)
{
    sk_error e = {
        .kind = SK_RUN_ERROR, .section = SK_RUN, .code = code, .reason = SK_EPROCESS, .item = -1};
    snprintf(e.message, sizeof e.message, "Error in the run hook on run %d", code);
    snprintf(e.cause, sizeof e.cause, "code %d", code);
    assert_rc(sk_runlog_end(log, id, end, outcome, &e, NULL, 0), SK_OK);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_true(skt_write_all(fd, data, len));
    close(fd);
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    buf[st.st_size] = '\0';
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

/* ------------------------------------------------------------- queries */

static void queries(store s)
{
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    sk_run_log *log = open_log(s, dir, 0, T(0));

    int64_t a1 = begin(log, "a", T(1));
    end_ok(log, a1, T(2), "A1");
    int64_t b2 = begin(log, "b", T(3));
    end_as(log, b2, T(4), SK_RUN_FAILED, 2);
    int64_t a3 = begin(log, "a", T(5));
    end_as(log, a3, T(6), SK_RUN_TERMINATED, 3);
    int64_t a4 = begin(log, "a", T(7));
    end_as(log, a4, T(8), SK_RUN_FAILED, 4);
    int64_t b5 = begin(log, "b", T(9));
    end_ok(log, b5, T(10), NULL);
    int64_t a6 = begin(log, "a", T(11)); /* still running */
    assert_true(a1 < b2 && b2 < a3 && a3 < a4 && a4 < b5 && b5 < a6);

    /* Runs of a task, oldest first; the running one has no end. */
    recs rs = runs_of(log, "a", SK_COND_NEVER);
    assert_int_equal(rs.n, 4);
    int64_t want[] = {a1, a3, a4, a6};
    sk_run_outcome outcomes[] = {SK_RUN_SUCCEEDED, SK_RUN_TERMINATED, SK_RUN_FAILED,
                                 SK_RUN_RUNNING};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(rs.v[i].id, want[i]);
        assert_int_equal(rs.v[i].outcome, outcomes[i]);
        assert_string_equal(rs.v[i].task, "a");
    }
    assert_true(rs.v[0].start == T(1) && rs.v[0].end == T(2) && !rs.v[0].has_error);
    assert_int_equal(rs.v[0].value_len, 2);
    assert_memory_equal(rs.v[0].value, "A1", 2);
    assert_true(rs.v[1].has_error && rs.v[1].error.code == 3);
    assert_true(rs.v[3].end == SK_COND_NEVER && rs.v[3].value == NULL && !rs.v[3].has_error);
    recs_free(&rs);
    /* Since: by start, inclusive. */
    rs = runs_of(log, "a", T(5));
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.v[0].id, a3);
    recs_free(&rs);
    rs = runs_of(log, NULL, T(9));
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.v[0].id, b5);
    assert_int_equal(rs.v[1].id, a6);
    recs_free(&rs);
    rs = runs_of(log, NULL, SK_COND_NEVER);
    assert_int_equal(rs.n, 6);
    recs_free(&rs);
    rs = runs_of(log, "nobody", SK_COND_NEVER);
    assert_int_equal(rs.n, 0);
    recs_free(&rs);
    /* A function that stops the query early. */
    rs = (recs){.stop_after = 2};
    assert_int_equal(sk_run_log_runs(log, NULL, SK_COND_NEVER, collect, &rs), 2);
    assert_int_equal(rs.n, 2);
    recs_free(&rs);

    /* The latest run of each outcome: terminated runs count as failed. */
    assert_int_equal(last_id(log, "a", SK_COND_SUCCEEDED), a1);
    assert_int_equal(last_id(log, "a", SK_COND_FAILED), a4);
    assert_int_equal(last_id(log, "a", SK_COND_FINISHED), a4);
    assert_int_equal(last_id(log, "b", SK_COND_FAILED), b2);
    assert_int_equal(last_id(log, "b", SK_COND_FINISHED), b5);
    assert_int_equal(last_id(log, "c", SK_COND_FINISHED), 0);
    assert_int_equal(last_id(log, NULL, SK_COND_SUCCEEDED), b5);
    assert_int_equal(last_id(log, NULL, SK_COND_FAILED), a4);
    assert_int_equal(sk_run_log_last(log, "a", SK_COND_FAILED, NULL, NULL), 1);

    /* Counts since a start. */
    assert_int_equal(sk_run_log_count(log, "a", SK_COND_FAILED, SK_COND_NEVER), 2);
    assert_int_equal(sk_run_log_count(log, "a", SK_COND_FAILED, T(6)), 1);
    assert_int_equal(sk_run_log_count(log, "a", SK_COND_SUCCEEDED, SK_COND_NEVER), 1);
    assert_int_equal(sk_run_log_count(log, "a", SK_COND_FINISHED, SK_COND_NEVER), 3);
    assert_int_equal(sk_run_log_count(log, NULL, SK_COND_FINISHED, SK_COND_NEVER), 5);
    assert_int_equal(sk_run_log_count(log, NULL, SK_COND_FAILED, T(100)), 0);
    assert_int_equal(sk_run_log_count(log, "c", SK_COND_FAILED, SK_COND_NEVER), 0);

    /* What conditions ask. */
    assert_true(sk_runlog_last_time(log, "a", SK_COND_SUCCEEDED) == T(2));
    assert_true(sk_runlog_last_time(log, "a", SK_COND_FAILED) == T(8));
    assert_true(sk_runlog_last_time(log, "a", SK_COND_FINISHED) == T(8));
    assert_true(sk_runlog_last_time(log, "b", SK_COND_SUCCEEDED) == T(10));
    assert_true(sk_runlog_last_time(log, "c", SK_COND_FINISHED) == SK_COND_NEVER);
    assert_true(sk_runlog_last_start(log, "a") == T(11));
    assert_true(sk_runlog_last_start(log, "c") == SK_COND_NEVER);
    const void *img;
    size_t len;
    assert_rc(sk_runlog_last_value(log, "a", &img, &len), SK_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(img, "A1", 2);
    assert_rc(sk_runlog_last_value(log, "b", &img, &len), SK_ECLOSED);
    assert_rc(sk_runlog_last_value(log, "c", &img, &len), SK_ECLOSED);

    /* Runs that overlap: the one that ended last is the latest, whatever
     * its id. */
    int64_t a7 = begin(log, "a", T(12));
    end_ok(log, a7, T(13), "A7");
    end_ok(log, a6, T(14), "A6");
    assert_int_equal(last_id(log, "a", SK_COND_SUCCEEDED), a6);
    assert_rc(sk_runlog_last_value(log, "a", &img, &len), SK_OK);
    assert_memory_equal(img, "A6", 2);
    assert_true(sk_runlog_last_start(log, "a") == T(12));
    rs = runs_of(log, "a", T(11));
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.v[0].id, a6);
    assert_int_equal(rs.v[1].id, a7);
    recs_free(&rs);

    /* A run ends once. */
    assert_rc(sk_runlog_end(log, a6, T(15), SK_RUN_FAILED, NULL, NULL, 0), SK_ESTATE);
    assert_rc(sk_runlog_end(log, a7 + 1000, T(15), SK_RUN_FAILED, NULL, NULL, 0), SK_EINVAL);
    assert_int_equal(last_id(log, "a", SK_COND_SUCCEEDED), a6);

    sk_run_log_close(log);
    assert_int_equal(skt_fd_count(), fds);
}

static void test_queries_memory(void **state)
{
    (void)state;
    queries(MEM);
}

static void test_queries_sqlite(void **state)
{
    (void)state;
    queries(SQL);
}

static void test_queries_csv(void **state)
{
    (void)state;
    queries(CSV);
}

/* -------------------------------------------------- exact round trips */

/* An error with every field set, and texts that need quoting. */
static void full_error(sk_error *e, int n)
{
    memset(e, 0, sizeof *e);
    e->kind = SK_TIMEOUT_ERROR;
    e->section = n % 2 ? SK_NO_SECTION : SK_POSTRUN;
    e->run = 1234567890123L + n;
    e->timeout = 0.1 * n + 1e-9;
    e->signal = 9;
    e->exit_status = -3;
    e->code = -42 - n;
    e->reason = SK_ETIMEDOUT;
    e->lives_spent = 2;
    e->item = 98765432101L;
    snprintf(e->message, sizeof e->message, "Timeout, \"quoted\"\nafter %d", n);
    /* A cause as long as the field holds: commas, quotes, line breaks,
     * carriage returns, UTF-8. */
    const char *bits[] = {"a,b", "\"q\"", "\n", "\r\n", "é", " ", "x"};
    size_t at = 0;
    for (int i = 0; at + 4 < sizeof e->cause - 1; i++) {
        const char *b = bits[(i + n) % 7];
        size_t l = strlen(b);
        memcpy(e->cause + at, b, l);
        at += l;
    }
    e->cause[at] = '\0';
}

static void check_error_equal(const sk_error *a, const sk_error *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->section, b->section);
    assert_int_equal(a->run, b->run);
    assert_true(a->timeout == b->timeout);
    assert_int_equal(a->signal, b->signal);
    assert_int_equal(a->exit_status, b->exit_status);
    assert_int_equal(a->code, b->code);
    assert_int_equal(a->reason, b->reason);
    assert_int_equal(a->lives_spent, b->lives_spent);
    assert_int_equal(a->item, b->item);
    assert_string_equal(a->message, b->message);
    assert_string_equal(a->cause, b->cause);
}

#define BIG_VALUE 100000

static void make_value(unsigned char *v, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (unsigned char)(i * 131 + (size_t)seed);
}

/* Three runs of an odd name: a failure with everything set and a binary
 * value (every byte, NULs too), a large value, and a one-byte one. */
static const char odd_task[] = "odd, \"task\"\nname\r";

static void check_round_trip(sk_run_log *log)
{
    recs rs = runs_of(log, odd_task, SK_COND_NEVER);
    assert_int_equal(rs.n, 3);
    sk_error e;
    full_error(&e, 1);
    assert_true(rs.v[0].has_error);
    check_error_equal(&rs.v[0].error, &e);
    assert_int_equal(rs.v[0].outcome, SK_RUN_FAILED);
    unsigned char v[256];
    for (int i = 0; i < 256; i++)
        v[i] = (unsigned char)i;
    assert_int_equal(rs.v[0].value_len, 256);
    assert_memory_equal(rs.v[0].value, v, 256);
    /* A success carries no error, whatever end was given. */
    assert_false(rs.v[1].has_error);
    unsigned char *big = malloc(BIG_VALUE);
    make_value(big, BIG_VALUE, 7);
    assert_int_equal(rs.v[1].value_len, BIG_VALUE);
    assert_memory_equal(rs.v[1].value, big, BIG_VALUE);
    free(big);
    assert_int_equal(rs.v[2].value_len, 1);
    assert_int_equal(rs.v[2].value[0], 0);
    full_error(&e, 2);
    check_error_equal(&rs.v[2].error, &e);
    assert_int_equal(rs.v[2].outcome, SK_RUN_TERMINATED);
    recs_free(&rs);
    /* The same through last and last_value. */
    rs = (recs){0};
    assert_int_equal(sk_run_log_last(log, odd_task, SK_COND_FAILED, collect, &rs), 1);
    check_error_equal(&rs.v[0].error, &e);
    recs_free(&rs);
    const void *img;
    size_t len;
    assert_rc(sk_runlog_last_value(log, odd_task, &img, &len), SK_OK);
    assert_int_equal(len, 1);
    assert_int_equal(*(const unsigned char *)img, 0);
}

static void round_trip(store s)
{
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    sk_run_log *log = open_log(s, dir, 0, T(0));
    sk_error e;
    full_error(&e, 1);
    unsigned char v[256];
    for (int i = 0; i < 256; i++)
        v[i] = (unsigned char)i;
    int64_t id = begin(log, odd_task, T(1));
    assert_rc(sk_runlog_end(log, id, T(2), SK_RUN_FAILED, &e, v, sizeof v), SK_OK);
    unsigned char *big = malloc(BIG_VALUE);
    make_value(big, BIG_VALUE, 7);
    id = begin(log, odd_task, T(3));
    assert_rc(sk_runlog_end(log, id, T(4), SK_RUN_SUCCEEDED, &e, big, BIG_VALUE), SK_OK);
    free(big);
    full_error(&e, 2);
    id = begin(log, odd_task, T(5));
    assert_rc(sk_runlog_end(log, id, T(6), SK_RUN_TERMINATED, &e, "", 1), SK_OK);
    check_round_trip(log);
    sk_run_log_close(log);
    if (s != MEM) {
        /* Again from the file: the session's way and a reader's way. */
        log = open_log(s, dir, 0, T(10));
        check_round_trip(log);
        sk_run_log_close(log);
        assert_rc(sk_run_log_open(log_path(s, dir), &log), SK_OK);
        check_round_trip(log);
        sk_run_log_close(log);
    }
    assert_int_equal(skt_fd_count(), fds);
}

static void test_round_trip_memory(void **state)
{
    (void)state;
    round_trip(MEM);
}

static void test_round_trip_sqlite(void **state)
{
    (void)state;
    round_trip(SQL);
}

static void test_round_trip_csv(void **state)
{
    (void)state;
    round_trip(CSV);
}

/* ------------------------------------------------------------- bounds */

/* 10,000 runs through a log that keeps 100: the runs kept stay 100, the
 * heap does not grow with the runs, and a task whose runs all left the
 * ring still answers its latest success, failure, start and value. */
static void bound(store s)
{
    const char *dir = skt_use_tmpdir("runlog");
    sk_run_log *log = open_log(s, dir, 100, T(0));
    int64_t id = begin(log, "rare", T(1));
    end_ok(log, id, T(2), "rare value");
    id = begin(log, "rare", T(3));
    end_as(log, id, T(4), SK_RUN_TERMINATED, 9);
    int64_t rare_failed = id;
    id = begin(log, "rare", T(5));
    end_ok(log, id, T(6), NULL);
    int64_t rare_ok = id;

    long heap = 0;
    for (int i = 0; i < 10000; i++) {
        if (i == 2000)
            heap = skt_heap_kb();
        char task[16];
        snprintf(task, sizeof task, "t%d", i % 7);
        id = begin(log, task, T(10 + i));
        if (i % 3)
            end_ok(log, id, T(10 + i) + 1, "v");
        else
            end_as(log, id, T(10 + i) + 1, SK_RUN_FAILED, i);
    }
    long grown = skt_heap_kb() - heap;
    print_message("heap grew by %ld KiB over 8,000 runs\n", grown);
    /* A log keeping every run would grow by megabytes (error texts);
     * SQLite keeps them in its file, and its page cache has its own bound. */
    if (s != SQL)
        assert_int_lt(grown, 256);

    if (s != SQL) { /* SQLite keeps everything: its file is the log */
        recs rs = runs_of(log, NULL, SK_COND_NEVER);
        assert_int_equal(rs.n, 100);
        assert_int_equal(rs.v[99].id, id);
        for (size_t i = 1; i < rs.n; i++)
            assert_true(rs.v[i].id > rs.v[i - 1].id);
        recs_free(&rs);
        assert_int_equal(runs_of(log, "rare", SK_COND_NEVER).n, 0);
    }
    assert_true(sk_runlog_last_time(log, "rare", SK_COND_SUCCEEDED) == T(6));
    assert_true(sk_runlog_last_time(log, "rare", SK_COND_FAILED) == T(4));
    assert_true(sk_runlog_last_start(log, "rare") == T(5));
    assert_int_equal(last_id(log, "rare", SK_COND_FAILED), rare_failed);
    assert_int_equal(last_id(log, "rare", SK_COND_FINISHED), rare_ok);
    const void *img;
    size_t len;
    assert_rc(sk_runlog_last_value(log, "rare", &img, &len), SK_OK);
    assert_int_equal(len, strlen("rare value"));
    assert_memory_equal(img, "rare value", len);
    sk_run_log_close(log);

    if (s == CSV) { /* read back into the same bound */
        log = open_log(s, dir, 100, T(20000));
        recs rs = runs_of(log, NULL, SK_COND_NEVER);
        assert_int_equal(rs.n, 100);
        recs_free(&rs);
        assert_true(sk_runlog_last_time(log, "rare", SK_COND_FAILED) == T(4));
        assert_rc(sk_runlog_last_value(log, "rare", &img, &len), SK_OK);
        assert_memory_equal(img, "rare value", len);
        sk_run_log_close(log);
    }
}

static void test_bound_memory(void **state)
{
    (void)state;
    bound(MEM);
}

static void test_bound_sqlite(void **state)
{
    (void)state;
    bound(SQL);
}

static void test_bound_csv(void **state)
{
    (void)state;
    bound(CSV);
}

/* A run still going when the ring passes it is kept until it ends. */
static void test_memory_long_run(void **state)
{
    (void)state;
    sk_run_log *log = open_log(MEM, NULL, 10, T(0));
    int64_t slow = begin(log, "slow", T(1));
    for (int i = 0; i < 100; i++)
        end_ok(log, begin(log, "fast", T(2 + i)), T(2 + i), NULL);
    assert_true(sk_runlog_last_start(log, "slow") == T(1));
    end_ok(log, slow, T(200), "done");
    assert_true(sk_runlog_last_time(log, "slow", SK_COND_SUCCEEDED) == T(200));
    assert_int_equal(last_id(log, "slow", SK_COND_SUCCEEDED), slow);
    sk_run_log_close(log);
}

/* ------------------------------------------------------------- reopen */

static bool recs_equal(const recs *a, const recs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const rec *x = &a->v[i], *y = &b->v[i];
        if (x->id != y->id || x->start != y->start || x->end != y->end ||
            x->outcome != y->outcome || strcmp(x->task, y->task) != 0 ||
            x->has_error != y->has_error || x->value_len != y->value_len ||
            (x->value_len && memcmp(x->value, y->value, x->value_len) != 0))
            return false;
        if (x->has_error &&
            (x->error.code != y->error.code || strcmp(x->error.cause, y->error.cause) != 0))
            return false;
    }
    return true;
}

static void reopen(store s)
{
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    sk_run_log *log = open_log(s, dir, 0, T(0));
    int64_t last = 0;
    for (int i = 0; i < 50; i++) {
        char task[16];
        snprintf(task, sizeof task, "task%d", i % 4);
        last = begin(log, task, T(i));
        if (i % 4 == 3)
            end_as(log, last, T(i) + 5, i % 8 == 3 ? SK_RUN_FAILED : SK_RUN_TERMINATED, i);
        else
            end_ok(log, last, T(i) + 5, i % 2 ? "odd" : NULL);
    }
    recs before = runs_of(log, NULL, SK_COND_NEVER);
    sk_run_log_close(log);

    log = open_log(s, dir, 0, T(100));
    recs after = runs_of(log, NULL, SK_COND_NEVER);
    assert_true(recs_equal(&before, &after));
    recs_free(&after);
    /* Ids go on increasing. */
    int64_t next = begin(log, "task0", T(101));
    assert_true(next > last);
    end_ok(log, next, T(102), NULL);
    assert_int_equal(last_id(log, "task0", SK_COND_SUCCEEDED), next);
    sk_run_log_close(log);

    assert_rc(sk_run_log_open(log_path(s, dir), &log), SK_OK);
    after = runs_of(log, NULL, T(0));
    assert_int_equal(after.n, before.n + 1);
    after.n--;
    assert_true(recs_equal(&before, &after));
    after.n++;
    /* A log opened to read is only read. */
    int64_t id;
    assert_rc(sk_runlog_begin(log, "x", T(200), &id), SK_ESTATE);
    assert_rc(sk_runlog_end(log, next, T(200), SK_RUN_FAILED, NULL, NULL, 0), SK_ESTATE);
    assert_rc(sk_runlog_alive(log, T(200)), SK_ESTATE);
    sk_run_log_close(log);
    recs_free(&after);
    recs_free(&before);
    assert_int_equal(skt_fd_count(), fds);
}

static void test_reopen_sqlite(void **state)
{
    (void)state;
    reopen(SQL);
}

static void test_reopen_csv(void **state)
{
    (void)state;
    reopen(CSV);
}

/* ----------------------------------------------------------- recovery */

static void recovery(store s)
{
    const char *dir = skt_use_tmpdir("runlog");
    sk_run_log *log = open_log(s, dir, 0, T(0));
    assert_true(sk_runlog_previous_alive(log) == SK_COND_NEVER);
    int64_t done = begin(log, "a", T(1));
    end_ok(log, done, T(2), NULL);
    int64_t left = begin(log, "a", T(10));
    assert_rc(sk_runlog_alive(log, T(20)), SK_OK);
    assert_rc(sk_runlog_alive(log, T(20.5)), SK_OK); /* within the second: not written */
    int64_t late = begin(log, "b", T(30));
    /* The session ends without ending its runs (as a kill would). */
    sk_run_log_close(log);

    log = open_log(s, dir, 0, T(100));
    assert_true(sk_runlog_previous_alive(log) == T(20));
    recs rs = runs_of(log, NULL, SK_COND_NEVER);
    assert_int_equal(rs.n, 3);
    assert_int_equal(rs.v[0].outcome, SK_RUN_SUCCEEDED);
    /* Left running: failed, ended when the session was last alive... */
    assert_int_equal(rs.v[1].id, left);
    assert_int_equal(rs.v[1].outcome, SK_RUN_FAILED);
    assert_true(rs.v[1].end == T(20));
    assert_true(rs.v[1].has_error);
    assert_int_equal(rs.v[1].error.kind, SK_PROCESS_ERROR);
    assert_string_equal(rs.v[1].error.message, "the session ended during the run");
    /* ... or at its start, when it started after that. */
    assert_int_equal(rs.v[2].id, late);
    assert_int_equal(rs.v[2].outcome, SK_RUN_FAILED);
    assert_true(rs.v[2].end == T(30));
    recs_free(&rs);
    assert_true(sk_runlog_last_time(log, "a", SK_COND_FAILED) == T(20));
    assert_true(sk_runlog_last_start(log, "b") == T(30));
    sk_run_log_close(log);

    /* The recovery is written: the next session finds it done, and this
     * session's open as its last sign of life. */
    log = open_log(s, dir, 0, SK_COND_NEVER);
    assert_true(sk_runlog_previous_alive(log) == T(100));
    assert_int_equal(sk_run_log_count(log, NULL, SK_COND_FAILED, SK_COND_NEVER), 2);
    /* A session never known alive: a run it left ends at its start. */
    int64_t lone = begin(log, "c", T(150));
    sk_run_log_close(log);
    log = open_log(s, dir, 0, T(300));
    rs = (recs){0};
    assert_int_equal(sk_run_log_last(log, "c", SK_COND_FAILED, collect, &rs), 1);
    assert_int_equal(rs.v[0].id, lone);
    assert_true(rs.v[0].end == T(150));
    recs_free(&rs);
    sk_run_log_close(log);
}

static void test_recovery_sqlite(void **state)
{
    (void)state;
    recovery(SQL);
}

static void test_recovery_csv(void **state)
{
    (void)state;
    recovery(CSV);
}

/* ------------------------------------------------------- killed writers */

#define VALUE_OF(id) ((uint64_t)(id)*UINT64_C(0x9E3779B97F4A7C15))

/* The child: logs runs in a loop from start T(base) on, each with a value
 * made from its id, and writes the id to fd once sk_runlog_end returned. */
_Noreturn static void killed_writer(store s, const char *dir, int fd, int64_t base)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sk_run_log *log;
    if (sk_runlog_open(SK_LOG_AUTO, log_path(s, dir), 0, T(base), &log) != SK_OK)
        _exit(2);
    for (int64_t i = base;; i++) {
        int64_t id;
        if (sk_runlog_begin(log, "loop", T(i), &id) != SK_OK)
            _exit(3);
        uint64_t v = VALUE_OF(id);
        if (sk_runlog_end(log, id, T(i) + 1, SK_RUN_SUCCEEDED, NULL, &v, sizeof v) != SK_OK)
            _exit(4);
        if (!skt_write_all(fd, &id, sizeof id))
            _exit(5);
    }
}

static void killed(store s)
{
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    print_message("seed %u\n", seed);
    srand(seed);
    int64_t rows = 0; /* the runs in the log so far */
    for (int round = 0; round < 4; round++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            killed_writer(s, dir, p[1], rows);
        }
        close(p[1]);
        assert_true(pid > 1);
        /* Kill it after a random number of runs. */
        int until = 20 + rand() % 1500;
        int64_t *ended = calloc(200000, sizeof *ended);
        size_t n = 0;
        while (n < (size_t)until && skt_read_all(p[0], &ended[n], sizeof ended[n], 20))
            n++;
        assert_int_equal(n, (size_t)until);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        while (n < 200000 && skt_read_all(p[0], &ended[n], sizeof ended[n], 1))
            n++;
        close(p[0]);

        /* Every run whose end returned is there, whole; nothing twice. */
        sk_run_log *log = open_log(s, dir, 0, T(1000000));
        recs rs = runs_of(log, "loop", SK_COND_NEVER);
        size_t new_rows = rs.n - (size_t)rows;
        assert_true(new_rows == n || new_rows == n + 1);
        size_t k = 0;
        for (size_t i = 0; i < rs.n; i++) {
            rec *r = &rs.v[i];
            if (i > 0)
                assert_true(r->id > rs.v[i - 1].id);
            assert_true(r->start == T((int64_t)i)); /* one run per start, none lost */
            if (i < (size_t)rows)
                continue;
            if (k < n && r->id == ended[k]) {
                k++;
                assert_int_equal(r->outcome, SK_RUN_SUCCEEDED);
                assert_true(r->end == r->start + 1);
                assert_int_equal(r->value_len, sizeof(uint64_t));
                uint64_t v;
                memcpy(&v, r->value, sizeof v);
                assert_true(v == VALUE_OF(r->id));
            } else {
                /* The run the kill cut: only the last one, ended either way. */
                assert_int_equal(i, rs.n - 1);
                assert_true(r->outcome == SK_RUN_FAILED || r->outcome == SK_RUN_SUCCEEDED);
            }
        }
        assert_int_equal(k, n);
        rows = (int64_t)rs.n;
        recs_free(&rs);
        free(ended);
        sk_run_log_close(log);
    }
    assert_int_equal(skt_fd_count(), fds);
    assert_no_children();
}

static void test_killed_sqlite(void **state)
{
    (void)state;
    skt_bound(120);
    killed(SQL);
}

static void test_killed_csv(void **state)
{
    (void)state;
    skt_bound(120);
    killed(CSV);
}

/* ------------------------------------------------- reading while written */

#define WRITTEN_RUNS 3000

static int check_seen(const sk_run_record *r, void *arg)
{
    int64_t *bad = arg;
    bool whole = r->outcome == SK_RUN_SUCCEEDED && r->value_len == 3 &&
                 memcmp(r->value, "val", 3) == 0 && r->end == r->start + 1;
    bool going = r->outcome == SK_RUN_RUNNING && r->end == SK_COND_NEVER;
    if (!whole && !going)
        (*bad)++;
    return 0;
}

static void reader(store s)
{
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sk_run_log *log;
        if (sk_runlog_open(SK_LOG_AUTO, log_path(s, dir), 0, T(0), &log) != SK_OK)
            _exit(2);
        skt_write_byte(p[1], 'o');
        for (int i = 0; i < WRITTEN_RUNS; i++) {
            int64_t id;
            if (sk_runlog_begin(log, "w", T(i), &id) != SK_OK ||
                sk_runlog_end(log, id, T(i) + 1, SK_RUN_SUCCEEDED, NULL, "val", 3) != SK_OK)
                _exit(3);
        }
        sk_run_log_close(log);
        _exit(0);
    }
    close(p[1]);
    assert_true(pid > 1);
    assert_int_equal(skt_read_byte(p[0], 20), 'o');
    close(p[0]);
    sk_run_log *log;
    assert_rc(sk_run_log_open(log_path(s, dir), &log), SK_OK);
    int64_t seen = 0, bad = 0, looks = 0;
    int status = 0;
    for (bool done = false; !done; looks++) {
        done = waitpid(pid, &status, WNOHANG) == pid;
        int64_t count = sk_run_log_count(log, "w", SK_COND_SUCCEEDED, SK_COND_NEVER);
        assert_true(count >= seen); /* never goes back */
        seen = count;
        assert_true(sk_run_log_runs(log, "w", T(seen - 5), check_seen, &bad) >= 0);
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(bad, 0);
    assert_int_equal(seen, WRITTEN_RUNS);
    print_message("%lld looks while the writer wrote\n", (long long)looks);
    assert_true(sk_runlog_last_start(log, "w") == T(WRITTEN_RUNS - 1));
    sk_run_log_close(log);
    assert_int_equal(skt_fd_count(), fds);
}

static void test_reader_sqlite(void **state)
{
    (void)state;
    reader(SQL);
}

static void test_reader_csv(void **state)
{
    (void)state;
    reader(CSV);
}

/* One session per file: a second one is refused until the first closes. */
static void test_one_writer(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("runlog");
    for (store s = SQL; s <= CSV; s++) {
        sk_run_log *a = open_log(s, dir, 0, T(0)), *b = NULL;
        assert_rc(sk_runlog_open(SK_LOG_AUTO, log_path(s, dir), 0, T(1), &b), SK_ESYS);
        assert_null(b);
        assert_non_null(strstr(sk_last_error_message(), "another session"));
        /* Readers are welcome. */
        assert_rc(sk_run_log_open(log_path(s, dir), &b), SK_OK);
        sk_run_log_close(b);
        sk_run_log_close(a);
        b = open_log(s, dir, 0, T(2));
        sk_run_log_close(b);
    }
}

/* ------------------------------------------------------ nested queries */

typedef struct nested {
    sk_run_log *log;
    int64_t calls, inner;
} nested;

/* Asks the same log again from inside a query. */
static int query_again(const sk_run_record *r, void *arg)
{
    nested *n = arg;
    n->calls++;
    recs rs = runs_of(n->log, r->task, SK_COND_NEVER);
    n->inner += (int64_t)rs.n;
    recs_free(&rs);
    assert_true(sk_run_log_count(n->log, r->task, SK_COND_FINISHED, SK_COND_NEVER) >= 0);
    assert_true(sk_runlog_last_time(n->log, r->task, SK_COND_SUCCEEDED) != SK_COND_NEVER);
    return 0;
}

/* A query's callback may query the same log, also a reader's whose file
 * grew since its last query. */
static void test_nested_queries(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("runlog");
    for (store s = MEM; s <= CSV; s++) {
        sk_run_log *log = open_log(s, dir, 0, T(0)), *reader = NULL;
        for (int i = 0; i < 10; i++)
            end_ok(log, begin(log, i % 2 ? "a" : "b", T(i)), T(i) + 1, NULL);
        if (s != MEM)
            assert_rc(sk_run_log_open(log_path(s, dir), &reader), SK_OK);
        for (int i = 10; i < 20; i++)
            end_ok(log, begin(log, i % 2 ? "a" : "b", T(i)), T(i) + 1, NULL);
        nested n = {.log = reader ? reader : log};
        assert_int_equal(sk_run_log_runs(n.log, NULL, SK_COND_NEVER, query_again, &n), 20);
        assert_int_equal(n.calls, 20);
        assert_int_equal(n.inner, 20 * 10);
        sk_run_log_close(reader);
        sk_run_log_close(log);
    }
}

/* ---------------------------------------------------------- the files */

/* The store follows the path: ".csv" is CSV, anything else SQLite. */
static void test_files_by_name(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("runlog");
    sk_run_log *log = open_log(CSV, dir, 0, T(0));
    end_ok(log, begin(log, "a,b", T(1)), T(2), "xy");
    sk_run_log_close(log);
    size_t len;
    char *text = read_file(log_path(CSV, dir), &len);
    const char *header =
        "id,event,task,time,outcome,error_kind,error_section,error_run,error_code,error_reason,"
        "error_signal,error_exit_status,error_timeout,error_lives_spent,error_item,"
        "error_message,error_cause,value\n";
    assert_memory_equal(text, header, strlen(header));
    assert_non_null(strstr(text, "\n1,start,\"a,b\",1700000001000000000,,,,,,,,,,,,,,\n"));
    assert_non_null(
        strstr(text, "\n1,end,\"a,b\",1700000002000000000,succeeded,,,,,,,,,,,,,eHk=\n"));
    free(text);

    log = open_log(SQL, dir, 0, T(0));
    sk_run_log_close(log);
    text = read_file(log_path(SQL, dir), &len);
    assert_true(len > 16 && memcmp(text, "SQLite format 3", 16) == 0);
    free(text);
}

/* A torn last line is skipped and, by the next session, cut off; a line
 * in the middle that is not a run log line is skipped. */
static void test_csv_torn_and_corrupt(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    sk_run_log *log = open_log(CSV, dir, 0, T(0));
    int64_t a = begin(log, "a", T(1));
    end_ok(log, a, T(2), NULL);
    sk_run_log_close(log);
    /* Bad lines in the middle, then good ones, then half a line. */
    int fd = open(log_path(CSV, dir), O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    const char *more = "this is not a line\n"
                       "7,end,a,notanumber,succeeded,,,,,,,,,,,,,\n"
                       "8,start,\"unclosed,1,,,,,,,,,,,,,,\n"
                       "9,start,,1700000003000000000,,,,,,,,,,,,,,\n" /* no task */
                       "10,start,b,1700000003000000000,,,,,,,,,,,,,,\n"
                       "10,end,b,1700000004000000000,failed,2,1,0,5,-2,0,0,0,1,-1,m,c,\n"
                       "11,start,b,17000000050";
    assert_true(skt_write_all(fd, more, strlen(more)));
    close(fd);

    sk_run_log *r;
    assert_rc(sk_run_log_open(log_path(CSV, dir), &r), SK_OK);
    recs rs = runs_of(r, NULL, SK_COND_NEVER);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.v[0].id, a);
    assert_int_equal(rs.v[1].id, 10);
    assert_int_equal(rs.v[1].outcome, SK_RUN_FAILED);
    assert_int_equal(rs.v[1].error.code, 5);
    assert_string_equal(rs.v[1].error.cause, "c");
    recs_free(&rs);

    /* The session cuts the torn line and goes on after the last id. */
    log = open_log(CSV, dir, 0, T(10));
    int64_t next = begin(log, "b", T(11));
    assert_int_equal(next, 11);
    end_ok(log, next, T(12), NULL);
    sk_run_log_close(log);
    size_t len;
    char *text = read_file(log_path(CSV, dir), &len);
    assert_null(strstr(text, "17000000050"));
    assert_int_equal(text[len - 1], '\n');
    free(text);
    /* The reader catches up with what was appended. */
    rs = runs_of(r, "b", SK_COND_NEVER);
    assert_int_equal(rs.n, 2);
    assert_int_equal(rs.v[1].id, 11);
    assert_int_equal(rs.v[1].outcome, SK_RUN_SUCCEEDED);
    recs_free(&rs);
    sk_run_log_close(r);
    assert_int_equal(skt_fd_count(), fds);
}

/* ---------------------------------------------------------- bad input */

static void test_bad_arguments(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    sk_run_log *log = NULL;
    assert_rc(sk_runlog_open(SK_LOG_MEMORY, NULL, 0, 0, NULL), SK_EINVAL);
    assert_rc(sk_runlog_open(SK_LOG_SQLITE, NULL, 0, 0, &log), SK_EINVAL);
    assert_rc(sk_runlog_open(SK_LOG_CSV, "", 0, 0, &log), SK_EINVAL);
    assert_rc(sk_runlog_open((sk_log_kind)99, "x", 0, 0, &log), SK_EINVAL);
    assert_null(log);
    assert_rc(sk_run_log_open(NULL, &log), SK_EINVAL);
    assert_rc(sk_run_log_open("x", NULL), SK_EINVAL);
    sk_run_log_close(NULL);

    int64_t id;
    assert_rc(sk_runlog_begin(NULL, "a", 0, &id), SK_EINVAL);
    assert_rc(sk_runlog_end(NULL, 1, 0, SK_RUN_SUCCEEDED, NULL, NULL, 0), SK_EINVAL);
    assert_rc(sk_runlog_alive(NULL, 0), SK_EINVAL);
    assert_true(sk_runlog_previous_alive(NULL) == SK_COND_NEVER);
    assert_true(sk_runlog_last_time(NULL, "a", SK_COND_FAILED) == SK_COND_NEVER);
    assert_true(sk_runlog_last_start(NULL, "a") == SK_COND_NEVER);
    const void *img;
    size_t len;
    assert_rc(sk_runlog_last_value(NULL, "a", &img, &len), SK_EINVAL);
    assert_int_equal(sk_run_log_runs(NULL, NULL, 0, collect, NULL), SK_EINVAL);
    assert_int_equal(sk_run_log_last(NULL, "a", SK_COND_FAILED, NULL, NULL), SK_EINVAL);
    assert_int_equal(sk_run_log_count(NULL, "a", SK_COND_FAILED, 0), SK_EINVAL);

    for (store s = MEM; s <= CSV; s++) {
        log = open_log(s, dir, 0, T(0));
        char huge[SK_COND_NAME_MAX + 2];
        memset(huge, 'n', sizeof huge - 1);
        huge[sizeof huge - 1] = '\0';
        assert_rc(sk_runlog_begin(log, huge, T(1), &id), SK_EINVAL);
        assert_non_null(strstr(sk_last_error_message(), "task name"));
        assert_int_equal(sk_run_log_count(log, huge, SK_COND_FAILED, 0), SK_EINVAL);
        assert_true(sk_runlog_last_time(log, huge, SK_COND_FAILED) == SK_COND_NEVER);
        huge[SK_COND_NAME_MAX] = '\0'; /* the longest name is fine */
        id = begin(log, huge, T(1));
        assert_rc(sk_runlog_begin(log, "", T(1), &id), SK_EINVAL);
        assert_rc(sk_runlog_begin(log, NULL, T(1), &id), SK_EINVAL);
        assert_rc(sk_runlog_begin(log, "a", T(1), NULL), SK_EINVAL);
        assert_rc(sk_runlog_end(log, id, T(2), SK_RUN_RUNNING, NULL, NULL, 0), SK_EINVAL);
        assert_rc(sk_runlog_end(log, id, T(2), (sk_run_outcome)7, NULL, NULL, 0), SK_EINVAL);
        assert_rc(sk_runlog_end(log, id, T(2), SK_RUN_SUCCEEDED, NULL, NULL, 3), SK_EINVAL);
        assert_rc(sk_runlog_end(log, -1, T(2), SK_RUN_SUCCEEDED, NULL, NULL, 0), SK_EINVAL);
        end_ok(log, id, T(2), NULL);
        assert_int_equal(last_id(log, huge, SK_COND_SUCCEEDED), id);
        assert_int_equal(sk_run_log_runs(log, NULL, 0, NULL, NULL), SK_EINVAL);
        assert_int_equal(sk_run_log_last(log, "a", (sk_cond_outcome)9, NULL, NULL), SK_EINVAL);
        assert_int_equal(sk_run_log_count(log, "", SK_COND_FAILED, 0), SK_EINVAL);
        assert_rc(sk_runlog_last_value(log, "a", NULL, &len), SK_EINVAL);
        sk_run_log_close(log);
    }
    assert_int_equal(skt_fd_count(), fds);
}

/* A SQLite database made by someone else. */
static void other_database(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE runs (x); INSERT INTO runs VALUES (1)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
}

static void test_not_a_run_log(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    char path[600];
    unsigned char noise[4096];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)(i * 7919 % 251);
    struct {
        const char *name;
        const void *data;
        size_t len;
    } files[] = {
        {"text.sqlite", "hello, world\nsecond line\n", 25},
        {"noise.sqlite", noise, sizeof noise},
        {"text.csv", "hello, world\nsecond line\n", 25},
        {"noise.csv", noise, sizeof noise},
        {"short.csv", "id,x", 4}, /* shorter than the header, and not its start */
        {"other.sqlite", NULL, 0},
        {"other.csv", NULL, 0}, /* a SQLite database named .csv */
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (files[i].data)
            write_file(path, files[i].data, files[i].len);
        else
            other_database(path);
        size_t before_len, after_len;
        char *before = read_file(path, &before_len);
        sk_run_log *log = NULL;
        int rc = sk_runlog_open(SK_LOG_AUTO, path, 0, T(0), &log);
        print_message("%s: %s\n", files[i].name, sk_last_error_message());
        assert_int_equal(rc, SK_EFORMAT);
        assert_null(log);
        assert_non_null(strstr(sk_last_error_message(), "not a run log"));
        assert_rc(sk_run_log_open(path, &log), SK_EFORMAT);
        /* Left as it was. */
        char *after = read_file(path, &after_len);
        assert_int_equal(before_len, after_len);
        assert_memory_equal(before, after, before_len);
        free(before);
        free(after);
    }
    /* An empty file: a reader finds no log in it; a session makes one. */
    snprintf(path, sizeof path, "%s/empty.sqlite", dir);
    write_file(path, "", 0);
    sk_run_log *log = NULL;
    assert_rc(sk_run_log_open(path, &log), SK_EFORMAT);
    assert_rc(sk_runlog_open(SK_LOG_AUTO, path, 0, T(0), &log), SK_OK);
    sk_run_log_close(log);
    assert_rc(sk_run_log_open(path, &log), SK_OK);
    sk_run_log_close(log);
    assert_int_equal(skt_fd_count(), fds);
}

static void test_cannot_open(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("runlog");
    int fds = skt_fd_count();
    char path[600];
    sk_run_log *log = NULL;
    const char *names[] = {"runs.sqlite", "runs.csv"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/missing/%s", dir, names[i]);
        assert_rc(sk_runlog_open(SK_LOG_AUTO, path, 0, T(0), &log), SK_ESYS);
        assert_non_null(strstr(sk_last_error_message(), "No such file"));
        assert_non_null(strstr(sk_last_error_message(), path));
        assert_rc(sk_run_log_open(path, &log), SK_ESYS);
        /* Somewhere nobody may create files, root included. */
        snprintf(path, sizeof path, "/proc/self/%s", names[i]);
        assert_rc(sk_runlog_open(SK_LOG_AUTO, path, 0, T(0), &log), SK_ESYS);
        assert_true(strlen(sk_last_error_message()) > strlen(path));
        if (geteuid() != 0) {
            snprintf(path, sizeof path, "%s/locked", dir);
            assert_int_equal(mkdir(path, 0500), 0);
            snprintf(path, sizeof path, "%s/locked/%s", dir, names[i]);
            assert_rc(sk_runlog_open(SK_LOG_AUTO, path, 0, T(0), &log), SK_ESYS);
            assert_non_null(strstr(sk_last_error_message(), "Permission denied"));
            snprintf(path, sizeof path, "%s/locked", dir);
            rmdir(path);
        }
    }
    assert_null(log);
    assert_int_equal(skt_fd_count(), fds);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_queries_memory),    SKT_TEST(test_queries_sqlite),
        SKT_TEST(test_queries_csv),       SKT_TEST(test_round_trip_memory),
        SKT_TEST(test_round_trip_sqlite), SKT_TEST(test_round_trip_csv),
        SKT_TEST(test_bound_memory),      SKT_TEST(test_bound_sqlite),
        SKT_TEST(test_bound_csv),         SKT_TEST(test_memory_long_run),
        SKT_TEST(test_reopen_sqlite),     SKT_TEST(test_reopen_csv),
        SKT_TEST(test_recovery_sqlite),   SKT_TEST(test_recovery_csv),
        SKT_TEST(test_killed_sqlite),     SKT_TEST(test_killed_csv),
        SKT_TEST(test_reader_sqlite),     SKT_TEST(test_reader_csv),
        SKT_TEST(test_one_writer),        SKT_TEST(test_nested_queries),
        SKT_TEST(test_files_by_name),     SKT_TEST(test_csv_torn_and_corrupt),
        SKT_TEST(test_bad_arguments),     SKT_TEST(test_not_a_run_log),
        SKT_TEST(test_cannot_open),
    };
    return skt_run(argc, argv, tests);
}
