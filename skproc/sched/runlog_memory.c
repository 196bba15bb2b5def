/* SPDX-License-Identifier: MIT */
/*
 * The memory store (runlog_memory.h): a ring of the last max_runs runs in
 * id order, each task's runs in the ring linked oldest to newest, and a
 * map of tasks by name (name_map.h) holding what must outlive the ring.
 *
 * A run is freed when nothing holds it: the ring (or, for a run still
 * going when the ring dropped it, the list of orphans, so that its end
 * can still be logged) and its task's kept pointers each count as one
 * reference.
 */
#include "sched/runlog_memory.h"
#include "sched/name_map.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An sk_error without its fixed-size texts: message and cause are kept in
 * text[], each NUL-terminated, so a failed run costs what its words do. */
typedef struct mem_error {
    sk_error_kind kind;
    sk_section section;
    long run;
    double timeout;
    int signal, exit_status, code, reason, lives_spent;
    long item;
    size_t cause_at; /* cause starts at text + cause_at */
    char text[];
} mem_error;

typedef struct mem_task mem_task;

typedef struct mem_run {
    int64_t id, start, end;
    sk_run_outcome outcome;
    int refs;
    bool in_ring;
    mem_task *task;
    struct mem_run *older, *newer; /* the task's runs in the ring */
    struct mem_run *next_orphan;
    mem_error *error;
    unsigned char *value; /* NULL: none */
    size_t value_len;
} mem_run;

struct mem_task {
    char *name; /* its key in the tasks map */
    int64_t last_start;
    mem_run *latest[2];    /* ended last: [0] succeeded, [1] failed or terminated */
    mem_run *value_run;    /* the run that ended last among those that returned a value */
    mem_run *first, *last; /* its runs in the ring */
};

struct runlog_memory {
    size_t max_runs;
    mem_run **ring; /* ring[(head + i) % ring_cap], i < count: oldest first */
    size_t ring_cap, head, count;
    mem_run *orphans;      /* running runs the ring dropped */
    struct name_map tasks; /* name -> mem_task */
    size_t runs_held;
    int64_t last_id;
};

/* ------------------------------------------------------------------ runs */

static void run_unref(runlog_memory *m, mem_run *r)
{
    if (r == NULL || --r->refs > 0)
        return;
    free(r->error);
    free(r->value);
    free(r);
    m->runs_held--;
}

/* Points *slot at r, letting go of what it pointed at. */
static void keep(runlog_memory *m, mem_run **slot, mem_run *r)
{
    r->refs++;
    run_unref(m, *slot);
    *slot = r;
}

static mem_error *error_copy(const sk_error *e)
{
    size_t mlen = strnlen(e->message, sizeof e->message);
    size_t clen = strnlen(e->cause, sizeof e->cause);
    mem_error *c = malloc(sizeof *c + mlen + clen + 2);
    if (c == NULL)
        return NULL;
    *c = (mem_error){.kind = e->kind,
                     .section = e->section,
                     .run = e->run,
                     .timeout = e->timeout,
                     .signal = e->signal,
                     .exit_status = e->exit_status,
                     .code = e->code,
                     .reason = e->reason,
                     .lives_spent = e->lives_spent,
                     .item = e->item,
                     .cause_at = mlen + 1};
    memcpy(c->text, e->message, mlen);
    c->text[mlen] = '\0';
    memcpy(c->text + mlen + 1, e->cause, clen);
    c->text[mlen + 1 + clen] = '\0';
    return c;
}

static void error_expand(const mem_error *c, sk_error *e)
{
    memset(e, 0, sizeof *e);
    e->kind = c->kind;
    e->section = c->section;
    e->run = c->run;
    e->timeout = c->timeout;
    e->signal = c->signal;
    e->exit_status = c->exit_status;
    e->code = c->code;
    e->reason = c->reason;
    e->lives_spent = c->lives_spent;
    e->item = c->item;
    snprintf(e->message, sizeof e->message, "%s", c->text);
    snprintf(e->cause, sizeof e->cause, "%s", c->text + c->cause_at);
}

/* The record of r for a callback; e is where its error goes. */
static sk_run_record record_of(const mem_run *r, sk_error *e)
{
    sk_run_record rec = {.id = r->id,
                         .task = r->task->name,
                         .start = r->start,
                         .end = r->outcome == SK_RUN_RUNNING ? SK_COND_NEVER : r->end,
                         .outcome = r->outcome,
                         .value = r->value,
                         .value_len = r->value_len};
    if (r->error != NULL) {
        error_expand(r->error, e);
        rec.error = e;
    }
    return rec;
}

/* ----------------------------------------------------------------- tasks */

static mem_task *task_find(const runlog_memory *m, const char *name)
{
    return sk_name_map_get(&m->tasks, name);
}

static mem_task *task_get(runlog_memory *m, const char *name)
{
    mem_task *t = task_find(m, name);
    if (t != NULL)
        return t;
    t = calloc(1, sizeof *t);
    if (t == NULL || (t->name = strdup(name)) == NULL ||
        sk_name_map_put(&m->tasks, t->name, t) != SK_OK) {
        if (t != NULL)
            free(t->name);
        free(t);
        return NULL;
    }
    t->last_start = SK_COND_NEVER;
    return t;
}

/* ------------------------------------------------------------------ ring */

static mem_run *ring_at(const runlog_memory *m, size_t i)
{
    return m->ring[(m->head + i) % m->ring_cap];
}

/* The ring grows by doubling up to max_runs, so a large bound costs
 * nothing until it is used. */
static int ring_make_room(runlog_memory *m)
{
    if (m->count < m->ring_cap || m->ring_cap == m->max_runs)
        return SK_OK;
    size_t cap = m->ring_cap ? m->ring_cap * 2 : 64;
    if (cap > m->max_runs)
        cap = m->max_runs;
    mem_run **ring = malloc(cap * sizeof *ring);
    if (ring == NULL)
        return SK_ENOMEM;
    for (size_t i = 0; i < m->count; i++)
        ring[i] = ring_at(m, i);
    free(m->ring);
    m->ring = ring;
    m->ring_cap = cap;
    m->head = 0;
    return SK_OK;
}

/* Drops the oldest run from the ring: a run still going becomes an orphan
 * until it ends. */
static void ring_drop_oldest(runlog_memory *m)
{
    mem_run *r = m->ring[m->head];
    m->head = (m->head + 1) % m->ring_cap;
    m->count--;
    r->in_ring = false;
    mem_task *t = r->task; /* r is its task's oldest run in the ring */
    t->first = r->newer;
    if (t->first != NULL)
        t->first->older = NULL;
    else
        t->last = NULL;
    r->newer = NULL;
    if (r->outcome == SK_RUN_RUNNING) {
        r->next_orphan = m->orphans;
        m->orphans = r;
    } else {
        run_unref(m, r);
    }
}

/* Run id, in the ring (a binary search: ids increase along it) or among
 * the orphans; NULL when neither holds it. */
static mem_run *run_find(runlog_memory *m, int64_t id)
{
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        mem_run *r = ring_at(m, mid);
        if (r->id == id)
            return r;
        if (r->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (mem_run *r = m->orphans; r != NULL; r = r->next_orphan)
        if (r->id == id)
            return r;
    return NULL;
}

static void orphan_remove(runlog_memory *m, mem_run *r)
{
    for (mem_run **p = &m->orphans; *p != NULL; p = &(*p)->next_orphan)
        if (*p == r) {
            *p = r->next_orphan;
            run_unref(m, r);
            return;
        }
}

/* ----------------------------------------------------------- the store */

int runlog_memory_open(size_t max_runs, runlog_memory **out)
{
    runlog_memory *m = calloc(1, sizeof *m);
    if (m == NULL)
        return sk_refuse(SK_ENOMEM, "out of memory for the run log");
    m->max_runs = max_runs ? max_runs : RUNLOG_DEFAULT_MAX_RUNS;
    *out = m;
    return SK_OK;
}

int runlog_memory_insert(runlog_memory *m, int64_t id, const char *task, int64_t start)
{
    if (id <= m->last_id)
        return sk_refuse(SK_EINVAL, "run id %lld is not greater than %lld", (long long)id,
                         (long long)m->last_id);
    mem_task *t = task_get(m, task);
    mem_run *r = calloc(1, sizeof *r);
    if (t == NULL || r == NULL || ring_make_room(m) != SK_OK) {
        free(r);
        return sk_refuse(SK_ENOMEM, "out of memory for the run log");
    }
    if (m->count == m->ring_cap)
        ring_drop_oldest(m);
    *r = (mem_run){.id = id,
                   .start = start,
                   .end = SK_COND_NEVER,
                   .outcome = SK_RUN_RUNNING,
                   .refs = 1,
                   .in_ring = true,
                   .task = t,
                   .older = t->last};
    m->ring[(m->head + m->count) % m->ring_cap] = r;
    m->count++;
    m->runs_held++;
    if (t->last != NULL)
        t->last->newer = r;
    else
        t->first = r;
    t->last = r;
    if (t->last_start == SK_COND_NEVER || start > t->last_start)
        t->last_start = start;
    m->last_id = id;
    return SK_OK;
}

/* Run id, when it is still going: SK_EINVAL when there is no such run,
 * SK_ESTATE when it has ended. */
static int running_run(runlog_memory *m, int64_t id, mem_run **out)
{
    mem_run *r = run_find(m, id);
    if (r == NULL)
        return sk_refuse(SK_EINVAL, "no run with id %lld in the run log", (long long)id);
    if (r->outcome != SK_RUN_RUNNING)
        return sk_refuse(SK_ESTATE, "run %lld has ended already", (long long)id);
    *out = r;
    return SK_OK;
}

int runlog_memory_running_task(runlog_memory *m, int64_t id, const char **task)
{
    mem_run *r;
    int rc = running_run(m, id, &r);
    if (rc == SK_OK)
        *task = r->task->name;
    return rc;
}

int runlog_memory_finish(runlog_memory *m, int64_t id, int64_t end, sk_run_outcome outcome,
                         const sk_error *error, const void *value, size_t value_len)
{
    mem_run *r;
    int rc = running_run(m, id, &r);
    if (rc != SK_OK)
        return rc;
    mem_error *e = NULL;
    unsigned char *v = NULL;
    if (error != NULL && outcome != SK_RUN_SUCCEEDED && (e = error_copy(error)) == NULL)
        return sk_refuse(SK_ENOMEM, "out of memory for the run log");
    if (value != NULL && value_len > 0) {
        if ((v = malloc(value_len)) == NULL) {
            free(e);
            return sk_refuse(SK_ENOMEM, "out of memory for the run log");
        }
        memcpy(v, value, value_len);
    }
    r->end = end;
    r->outcome = outcome;
    r->error = e;
    r->value = v;
    r->value_len = v ? value_len : 0;

    mem_task *t = r->task;
    mem_run **latest = &t->latest[outcome == SK_RUN_SUCCEEDED ? 0 : 1];
    if (*latest == NULL || sk_runlog_ended_after(end, id, (*latest)->end, (*latest)->id))
        keep(m, latest, r);
    if (v != NULL && (t->value_run == NULL ||
                      sk_runlog_ended_after(end, id, t->value_run->end, t->value_run->id)))
        keep(m, &t->value_run, r);
    if (!r->in_ring)
        orphan_remove(m, r);
    return SK_OK;
}

int64_t runlog_memory_last_id(const runlog_memory *m)
{
    return m->last_id;
}

size_t runlog_memory_runs_held(const runlog_memory *m)
{
    return m->runs_held;
}

size_t runlog_memory_tasks_held(const runlog_memory *m)
{
    return m->tasks.live;
}

int runlog_memory_each_running(runlog_memory *m, sk_run_fn fn, void *arg)
{
    sk_error e;
    /* Orphans are older than anything in the ring; newest first in their
     * list, so gather them oldest first. */
    size_t n = 0;
    for (mem_run *r = m->orphans; r != NULL; r = r->next_orphan)
        n++;
    mem_run **old = n ? malloc(n * sizeof *old) : NULL;
    if (n && old == NULL)
        return sk_refuse(SK_ENOMEM, "out of memory for the run log");
    size_t i = n;
    for (mem_run *r = m->orphans; r != NULL; r = r->next_orphan)
        old[--i] = r;
    int rc = 0;
    for (i = 0; i < n && rc == 0; i++) {
        sk_run_record rec = record_of(old[i], &e);
        rc = fn(&rec, arg);
    }
    free(old);
    for (i = 0; i < m->count && rc == 0; i++) {
        mem_run *r = ring_at(m, i);
        if (r->outcome == SK_RUN_RUNNING) {
            sk_run_record rec = record_of(r, &e);
            rc = fn(&rec, arg);
        }
    }
    return SK_OK;
}

/* ------------------------------------------------------------- the ops */

static int mem_begin(void *store, const char *task, int64_t start, int64_t *id)
{
    runlog_memory *m = store;
    int rc = runlog_memory_insert(m, m->last_id + 1, task, start);
    if (rc == SK_OK)
        *id = m->last_id;
    return rc;
}

static int mem_end(void *store, int64_t id, int64_t end, sk_run_outcome outcome,
                   const sk_error *error, const void *value, size_t value_len)
{
    return runlog_memory_finish(store, id, end, outcome, error, value, value_len);
}

static bool selected(const mem_run *r, const runlog_query *q)
{
    if (q->since != SK_COND_NEVER && r->start < q->since)
        return false;
    return !q->finished || sk_runlog_outcome_is(r->outcome, q->outcome);
}

/* The run of t that ended last with q's outcome, from the kept pointers. */
static mem_run *task_latest(const mem_task *t, sk_cond_outcome outcome)
{
    mem_run *ok = t->latest[0], *failed = t->latest[1];
    if (outcome == SK_COND_SUCCEEDED)
        return ok;
    if (outcome == SK_COND_FAILED || ok == NULL)
        return failed;
    if (failed == NULL)
        return ok;
    return sk_runlog_ended_after(ok->end, ok->id, failed->end, failed->id) ? ok : failed;
}

static int64_t mem_query(void *store, const runlog_query *q, sk_run_fn fn, void *arg)
{
    runlog_memory *m = store;
    mem_task *t = NULL;
    if (q->task != NULL && (t = task_find(m, q->task)) == NULL)
        return 0;
    sk_error e;
    if (q->latest) {
        mem_run *best = NULL;
        if (t != NULL && q->finished)
            best = task_latest(t, q->outcome); /* kept past the ring */
        if (best == NULL || !selected(best, q)) {
            best = NULL;
            for (size_t i = 0; i < m->count; i++) {
                mem_run *r = ring_at(m, i);
                if ((t == NULL || r->task == t) && r->outcome != SK_RUN_RUNNING && selected(r, q) &&
                    (best == NULL || sk_runlog_ended_after(r->end, r->id, best->end, best->id)))
                    best = r;
            }
        }
        if (best != NULL && fn != NULL) {
            sk_run_record rec = record_of(best, &e);
            fn(&rec, arg);
        }
        return best != NULL;
    }
    int64_t n = 0;
    mem_run *r = t != NULL ? t->first : m->count ? ring_at(m, 0) : NULL;
    for (size_t i = 0; r != NULL;) {
        if (selected(r, q)) {
            n++;
            if (fn != NULL) {
                sk_run_record rec = record_of(r, &e);
                if (fn(&rec, arg) != 0)
                    break;
            }
        }
        if (t != NULL)
            r = r->newer;
        else
            r = ++i < m->count ? ring_at(m, i) : NULL;
    }
    return n;
}

static int64_t mem_last_time(void *store, const char *task, sk_cond_outcome outcome)
{
    mem_task *t = task_find(store, task);
    mem_run *r = t ? task_latest(t, outcome) : NULL;
    return r ? r->end : SK_COND_NEVER;
}

static int64_t mem_last_start(void *store, const char *task)
{
    mem_task *t = task_find(store, task);
    return t ? t->last_start : SK_COND_NEVER;
}

static int mem_last_value(void *store, const char *task, const void **img, size_t *len)
{
    mem_task *t = task_find(store, task);
    if (t == NULL || t->value_run == NULL)
        return SK_ECLOSED;
    *img = t->value_run->value;
    *len = t->value_run->value_len;
    return SK_OK;
}

static int mem_alive(void *store, int64_t now)
{
    (void)store;
    (void)now;
    return SK_OK;
}

static int64_t mem_previous_alive(void *store)
{
    (void)store;
    return SK_COND_NEVER;
}

static void task_free(void *value, void *arg)
{
    runlog_memory *m = arg;
    mem_task *t = value;
    run_unref(m, t->latest[0]);
    run_unref(m, t->latest[1]);
    run_unref(m, t->value_run);
    free(t->name);
    free(t);
}

static void mem_close(void *store)
{
    runlog_memory *m = store;
    if (m == NULL)
        return;
    while (m->count > 0) {
        mem_run *r = ring_at(m, 0);
        r->outcome = SK_RUN_SUCCEEDED; /* not an orphan: freed with its last reference */
        ring_drop_oldest(m);
    }
    while (m->orphans != NULL)
        orphan_remove(m, m->orphans);
    sk_name_map_each(&m->tasks, task_free, m);
    sk_name_map_free(&m->tasks);
    free(m->ring);
    free(m);
}

const runlog_ops runlog_memory_ops = {
    .name = "memory",
    .begin = mem_begin,
    .end = mem_end,
    .query = mem_query,
    .last_time = mem_last_time,
    .last_start = mem_last_start,
    .last_value = mem_last_value,
    .alive = mem_alive,
    .previous_alive = mem_previous_alive,
    .close = mem_close,
};
