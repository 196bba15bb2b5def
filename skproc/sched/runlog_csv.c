/* SPDX-License-Identifier: MIT */
/*
 * The CSV store: a line when a run starts, a line when it ends, now and
 * then a line saying the session is alive, each appended with one
 * write(2) to a file opened O_APPEND, so a killed process leaves whole
 * lines (a line is torn only when the write itself is cut short: a kill
 * in the middle of a large write, a full disk, a power cut).
 *
 * On open the file is read back into a memory store (runlog_memory.h),
 * which answers every query: bounded as it is. A torn last line is
 * skipped; the session's open cuts it off the file before appending. A
 * line that is not a run log line elsewhere in the file is skipped too:
 * one bad line (an edit by hand) does not make the history unreadable. A
 * file whose first line is not the header is refused (SK_EFORMAT).
 *
 * A log opened to read (sk_run_log_open) reads what was appended since,
 * before each query.
 */
#include "sched/runlog_csv_line.h"
#include "sched/runlog_memory.h"
#include "sched/runlog_store.h"

#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* While no run of the session is going, an alive line at most this often. */
#define CSV_IDLE_ALIVE_EVERY (60 * RUNLOG_ALIVE_EVERY)

typedef struct csv_store {
    runlog_memory *mem;
    char *path;
    int fd; /* the session's: O_RDWR | O_APPEND, holds the lock; a reader's: O_RDONLY */
    bool writer;
    size_t max_runs;
    off_t size;     /* the bytes read back, and (session) the file's length after our writes */
    bool header;    /* the header line has been read */
    off_t stuck_at; /* a reader's: the file's end when lines were left whole but unread */
    int querying;   /* queries under way: a callback's query must not change the store */
    int64_t previous_alive;
    int64_t alive_written;
    long running; /* the session's runs going now */
    csv_buf line, scratch;
} csv_store;

/* ---------------------------------------------------------- reading back */

/* Applies one complete line to the memory store. false: not a line of
 * this log (a bad line, an end of a run it does not know). */
static bool apply(csv_store *c, const char *text, size_t len)
{
    if (!c->header) {
        if (len != strlen(CSV_HEADER) || memcmp(text, CSV_HEADER, len) != 0)
            return false;
        c->header = true;
        return true;
    }
    csv_line l;
    sk_error e;
    if (!csv_line_parse(text, len, &c->scratch, &e, &l))
        return false;
    switch (l.event) {
    case CSV_ALIVE:
        if (c->previous_alive == SK_COND_NEVER || l.time > c->previous_alive)
            c->previous_alive = l.time;
        return true;
    case CSV_START:
        return runlog_memory_insert(c->mem, l.id, l.task, l.time) == SK_OK;
    case CSV_END:
        return runlog_memory_finish(c->mem, l.id, l.time, l.outcome, l.error, l.value,
                                    l.value_len) == SK_OK;
    }
    return false;
}

/* Applies the lines of text[0, len); *used is what was taken. A record
 * that is not a line of the log is skipped one line break at a time, so a
 * stray quote costs its own line only. With at_end, what has line breaks
 * but no whole record (a stray quote before the end of the file) is
 * taken apart the same way; what follows the last line break stays: a
 * torn last line, or the rest of a line being written. */
static int consume(csv_store *c, const char *text, size_t len, bool at_end, size_t *used)
{
    size_t u = 0;
    for (;;) {
        size_t whole = csv_line_length(text + u, len - u);
        const char *nl = memchr(text + u, '\n', len - u);
        size_t line = nl ? (size_t)(nl - (text + u)) + 1 : 0;
        if (whole == 0 && (!at_end || line == 0))
            break;
        bool first = !c->header;
        if (whole > 0 && apply(c, text + u, whole)) {
            u += whole;
            continue;
        }
        if (first) {
            *used = u;
            return sk_refuse(SK_EFORMAT,
                             "%s is not a run log: its first line is not the CSV run log's "
                             "header",
                             c->path);
        }
        u += line; /* not a line of the log: skipped */
    }
    *used = u;
    /* Without a header, what is left can only be a torn header. */
    size_t left = len - u;
    if (!c->header && (left >= strlen(CSV_HEADER) || memcmp(text + u, CSV_HEADER, left) != 0))
        return sk_refuse(SK_EFORMAT, "%s is not a run log: no CSV run log header", c->path);
    return SK_OK;
}

/* Reads the file from c->size on, applying each complete line; c->size
 * ends after the last line taken. SK_EFORMAT when the first line is not
 * the header. A reader takes apart what a stray quote holds together only
 * when it finds the file's end where it was the time before: a line being
 * written may show in part. */
static int read_back(csv_store *c)
{
    csv_buf buf = {0};
    int rc = SK_OK;
    off_t at = c->size;
    for (bool eof = false; !eof && rc == SK_OK;) {
        if (csv_buf_reserve(&buf, 65536) != SK_OK) {
            rc = sk_refuse(SK_ENOMEM, "out of memory reading %s", c->path);
            break;
        }
        ssize_t n = pread(c->fd, buf.data + buf.len, buf.cap - buf.len, at);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = sk_refuse(SK_ESYS, "%s: cannot read the run log: %s", c->path, strerror(errno));
            break;
        }
        eof = n == 0;
        at += n;
        buf.len += (size_t)n;
        size_t used;
        rc = consume(c, buf.data, buf.len, eof && (c->writer || c->stuck_at == at), &used);
        memmove(buf.data, buf.data + used, buf.len - used);
        buf.len -= used;
        c->size += (off_t)used;
        if (eof && memchr(buf.data, '\n', buf.len) != NULL)
            c->stuck_at = at;
    }
    csv_buf_free(&buf);
    return rc;
}

/* A reader's catching up: what was appended since; everything again when
 * the file is shorter than what was read (cut or replaced). */
static int refresh(csv_store *c)
{
    if (c->writer || c->querying > 0)
        return SK_OK;
    struct stat st;
    if (fstat(c->fd, &st) != 0)
        return sk_refuse(SK_ESYS, "%s: %s", c->path, strerror(errno));
    if (st.st_size == c->size)
        return SK_OK;
    if (st.st_size < c->size) {
        runlog_memory_ops.close(c->mem);
        c->mem = NULL;
        int rc = runlog_memory_open(c->max_runs, &c->mem);
        if (rc != SK_OK)
            return rc;
        c->size = 0;
        c->header = false;
        c->previous_alive = SK_COND_NEVER;
    }
    return read_back(c);
}

/* ------------------------------------------------------------- writing */

/* Appends c->line with one write; a write cut short is undone, so the
 * file never keeps half a line of ours. */
static int append_line(csv_store *c)
{
    ssize_t n;
    do
        n = write(c->fd, c->line.data, c->line.len);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)c->line.len) {
        c->size += n;
        return SK_OK;
    }
    int err = n < 0 ? errno : ENOSPC;
    if (n > 0 && ftruncate(c->fd, c->size) != 0)
        return sk_refuse(SK_ESYS, "%s: a line was cut short and could not be undone: %s", c->path,
                         strerror(errno));
    return sk_refuse(SK_ESYS, "%s: cannot append to the run log: %s", c->path, strerror(err));
}

static int write_line(csv_store *c, const csv_line *l)
{
    c->line.len = 0;
    if (csv_line_format(&c->line, l) != SK_OK)
        return sk_refuse(SK_ENOMEM, "out of memory for a line of the run log");
    return append_line(c);
}

static int write_alive(csv_store *c, int64_t now)
{
    csv_line l = {.event = CSV_ALIVE, .time = now};
    int rc = write_line(c, &l);
    if (rc == SK_OK)
        c->alive_written = now;
    return rc;
}

/* The runs an earlier session left running, gathered to be ended. */
typedef struct left_running {
    int64_t *ids, *starts;
    size_t n, cap;
    bool out_of_memory;
} left_running;

static int gather_running(const sk_run_record *run, void *arg)
{
    left_running *lr = arg;
    if (lr->n == lr->cap) {
        size_t cap = lr->cap ? lr->cap * 2 : 16;
        int64_t *ids = realloc(lr->ids, cap * sizeof *ids);
        if (ids != NULL)
            lr->ids = ids;
        int64_t *starts = ids ? realloc(lr->starts, cap * sizeof *starts) : NULL;
        if (starts == NULL) {
            lr->out_of_memory = true;
            return 1;
        }
        lr->starts = starts;
        lr->cap = cap;
    }
    lr->ids[lr->n] = run->id;
    lr->starts[lr->n++] = run->start;
    return 0;
}

static int write_end(csv_store *c, int64_t id, int64_t end, sk_run_outcome outcome,
                     const sk_error *error, const void *value, size_t value_len);

/* Ends the runs an earlier session left running (runlog.h): a line for
 * each, as if that session had logged it. */
static int recover(csv_store *c)
{
    left_running lr = {0};
    int rc = runlog_memory_each_running(c->mem, gather_running, &lr);
    if (rc == SK_OK && lr.out_of_memory)
        rc = sk_refuse(SK_ENOMEM, "out of memory for the run log");
    sk_error e;
    sk_runlog_recovered_error(&e);
    for (size_t i = 0; i < lr.n && rc == SK_OK; i++)
        rc = write_end(c, lr.ids[i], sk_runlog_recovered_end(lr.starts[i], c->previous_alive),
                       SK_RUN_FAILED, &e, NULL, 0);
    free(lr.ids);
    free(lr.starts);
    return rc;
}

static void store_close(void *store)
{
    csv_store *c = store;
    if (c == NULL)
        return;
    if (c->mem != NULL)
        runlog_memory_ops.close(c->mem);
    if (c->fd >= 0)
        close(c->fd);
    csv_buf_free(&c->line);
    csv_buf_free(&c->scratch);
    free(c->path);
    free(c);
}

/* The session's open: the lock, the history, a torn last line cut off, the
 * header of a new file, runs left running ended, and being alive now. */
static int open_writer(csv_store *c, int64_t now)
{
    c->fd = open(c->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (c->fd < 0)
        return sk_refuse(SK_ESYS, "%s: cannot open the run log: %s", c->path, strerror(errno));
    int rc = sk_runlog_lock(c->fd, c->path);
    if (rc == SK_OK)
        rc = read_back(c);
    struct stat st;
    if (rc == SK_OK && fstat(c->fd, &st) != 0)
        rc = sk_refuse(SK_ESYS, "%s: %s", c->path, strerror(errno));
    if (rc == SK_OK && st.st_size > c->size && ftruncate(c->fd, c->size) != 0)
        rc =
            sk_refuse(SK_ESYS, "%s: cannot cut off a torn last line: %s", c->path, strerror(errno));
    if (rc == SK_OK && !c->header) {
        csv_buf_free(&c->line);
        if (csv_buf_reserve(&c->line, strlen(CSV_HEADER)) != SK_OK)
            return sk_refuse(SK_ENOMEM, "out of memory for the run log");
        memcpy(c->line.data, CSV_HEADER, strlen(CSV_HEADER));
        c->line.len = strlen(CSV_HEADER);
        rc = append_line(c);
        c->header = rc == SK_OK;
    }
    if (rc == SK_OK)
        rc = recover(c);
    if (rc == SK_OK && now != SK_COND_NEVER)
        rc = write_alive(c, now);
    return rc;
}

int runlog_csv_open(const char *path, bool writer, size_t max_runs, int64_t now, void **out)
{
    csv_store *c = calloc(1, sizeof *c);
    if (c == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        return sk_refuse(SK_ENOMEM, "out of memory for the run log");
    }
    c->fd = -1;
    c->writer = writer;
    c->max_runs = max_runs;
    c->previous_alive = SK_COND_NEVER;
    c->alive_written = SK_COND_NEVER;
    c->stuck_at = -1;
    int rc = runlog_memory_open(max_runs, &c->mem);
    if (rc == SK_OK && writer) {
        rc = open_writer(c, now);
    } else if (rc == SK_OK) {
        c->fd = open(path, O_RDONLY | O_CLOEXEC);
        rc = c->fd >= 0
                 ? read_back(c)
                 : sk_refuse(SK_ESYS, "%s: cannot open the run log: %s", path, strerror(errno));
    }
    if (rc != SK_OK) {
        store_close(c);
        return rc;
    }
    *out = c;
    return SK_OK;
}

/* ------------------------------------------------------------- the ops */

static int store_begin(void *store, const char *task, int64_t start, int64_t *id)
{
    csv_store *c = store;
    int64_t next = runlog_memory_last_id(c->mem) + 1;
    csv_line l = {.event = CSV_START, .id = next, .task = task, .time = start};
    int rc = write_line(c, &l);
    /* The line is the log: a store out of memory after it leaves a run
     * that the next session's open ends as failed. */
    if (rc == SK_OK)
        rc = runlog_memory_insert(c->mem, next, task, start);
    if (rc != SK_OK)
        return rc;
    c->running++;
    *id = next;
    return SK_OK;
}

/* Logs the end of run id: the line, then the memory store. */
static int write_end(csv_store *c, int64_t id, int64_t end, sk_run_outcome outcome,
                     const sk_error *error, const void *value, size_t value_len)
{
    const char *task;
    int rc = runlog_memory_running_task(c->mem, id, &task);
    if (rc != SK_OK)
        return rc;
    csv_line l = {.event = CSV_END,
                  .id = id,
                  .task = task,
                  .time = end,
                  .outcome = outcome,
                  .error = outcome == SK_RUN_SUCCEEDED ? NULL : error,
                  .value = value,
                  .value_len = value_len};
    rc = write_line(c, &l);
    if (rc == SK_OK)
        rc = runlog_memory_finish(c->mem, id, end, outcome, error, value, value_len);
    return rc;
}

static int store_end(void *store, int64_t id, int64_t end, sk_run_outcome outcome,
                     const sk_error *error, const void *value, size_t value_len)
{
    csv_store *c = store;
    int rc = write_end(c, id, end, outcome, error, value, value_len);
    if (rc == SK_OK)
        c->running--;
    return rc;
}

static int store_alive(void *store, int64_t now)
{
    csv_store *c = store;
    int64_t every = c->running > 0 ? RUNLOG_ALIVE_EVERY : CSV_IDLE_ALIVE_EVERY;
    if (c->alive_written != SK_COND_NEVER && now >= c->alive_written &&
        now - c->alive_written < every)
        return SK_OK;
    return write_alive(c, now);
}

static int64_t store_previous_alive(void *store)
{
    return ((csv_store *)store)->previous_alive;
}

static int64_t store_query(void *store, const runlog_query *q, sk_run_fn fn, void *arg)
{
    csv_store *c = store;
    int rc = refresh(c);
    if (rc != SK_OK)
        return rc;
    c->querying++;
    int64_t n = runlog_memory_ops.query(c->mem, q, fn, arg);
    c->querying--;
    return n;
}

static int64_t store_last_time(void *store, const char *task, sk_cond_outcome outcome)
{
    csv_store *c = store;
    refresh(c);
    return runlog_memory_ops.last_time(c->mem, task, outcome);
}

static int64_t store_last_start(void *store, const char *task)
{
    csv_store *c = store;
    refresh(c);
    return runlog_memory_ops.last_start(c->mem, task);
}

static int store_last_value(void *store, const char *task, const void **img, size_t *len)
{
    csv_store *c = store;
    int rc = refresh(c);
    return rc != SK_OK ? rc : runlog_memory_ops.last_value(c->mem, task, img, len);
}

const runlog_ops runlog_csv_ops = {
    .name = "csv",
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
