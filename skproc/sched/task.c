/* SPDX-License-Identifier: MIT */
/*
 * A task as the session keeps it: everything of sk_sched_task checked and
 * copied, its conditions parsed, and what the cycle needs to look at it
 * only when something can have changed: the task names its start condition
 * waits for ("after task 'x'": a run of x that ends touches it), and
 * whether it asks user predicates (looked at periodically).
 */
#include "codec/message.h"
#include "core/error.h"
#include "sched/cond.h"
#include "sched/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && strlen(name) <= SK_COND_NAME_MAX;
}

/* A condition from text or built (exactly one, or neither: *out NULL). */
static int cond_take(const char *what, const char *text, sk_cond *built, sk_cond **out)
{
    *out = NULL;
    if (text != NULL && built != NULL) {
        sk_cond_free(built);
        return sk_refuse(SK_EINVAL, "the %s condition is given both as text and built", what);
    }
    if (built != NULL) {
        *out = built;
        return SK_OK;
    }
    if (text == NULL)
        return SK_OK;
    sk_cond_parse_error err;
    int rc = sk_cond_parse(text, out, &err);
    if (rc == SK_EINVAL)
        return sk_refuse(SK_EINVAL, "the %s condition: %s", what, err.message);
    return rc;
}

/* Walks c for what the session must know of it. */
static int cond_scan(const sk_cond *c, struct sched_task *t, bool start, bool *users, bool *after)
{
    switch (c->kind) {
    case COND_USER:
        *users = true;
        return SK_OK;
    case COND_AFTER:
        *after = true;
        for (size_t i = 0; start && i < c->u.after.n; i++) {
            bool seen = false;
            for (size_t k = 0; k < t->nafter && !seen; k++)
                seen = strcmp(t->after[k], c->u.after.names[i]) == 0;
            if (seen)
                continue;
            char **grown = realloc(t->after, (t->nafter + 1) * sizeof *grown);
            if (grown == NULL)
                return SK_ENOMEM;
            t->after = grown;
            if ((t->after[t->nafter] = strdup(c->u.after.names[i])) == NULL)
                return SK_ENOMEM;
            t->nafter++;
        }
        return SK_OK;
    case COND_AND:
    case COND_OR: {
        int rc = cond_scan(c->u.op.a, t, start, users, after);
        return rc != SK_OK ? rc : cond_scan(c->u.op.b, t, start, users, after);
    }
    case COND_NOT:
        return cond_scan(c->u.op.a, t, start, users, after);
    default:
        return SK_OK;
    }
}

bool sk_cond_asks_users(const sk_cond *c)
{
    switch (c->kind) {
    case COND_USER:
        return true;
    case COND_AND:
    case COND_OR:
        return sk_cond_asks_users(c->u.op.a) || sk_cond_asks_users(c->u.op.b);
    case COND_NOT:
        return sk_cond_asks_users(c->u.op.a);
    default:
        return false;
    }
}

static int params_copy(const sk_sched_task *in, struct sched_task *t)
{
    if (in->param_count == 0)
        return SK_OK;
    if (in->params == NULL)
        return sk_refuse(SK_EINVAL, "task '%s': param_count is %zu and params is NULL", t->name,
                         in->param_count);
    t->params = calloc(in->param_count, sizeof *t->params);
    if (t->params == NULL)
        return SK_ENOMEM;
    for (size_t i = 0; i < in->param_count; i++) {
        const sk_param *p = &in->params[i];
        struct task_param *q = &t->params[i];
        t->nparams = i + 1;
        if (!name_ok(p->name))
            return sk_refuse(SK_EINVAL,
                             "task '%s': parameter %zu has no name or one longer "
                             "than %d bytes",
                             t->name, i, SK_COND_NAME_MAX);
        for (size_t k = 0; k < i; k++)
            if (strcmp(t->params[k].name, p->name) == 0)
                return sk_refuse(SK_EINVAL, "task '%s': parameter '%s' is declared twice", t->name,
                                 p->name);
        if ((q->name = strdup(p->name)) == NULL)
            return SK_ENOMEM;
        q->kind = p->kind;
        switch (p->kind) {
        case SK_PARAM_VALUE:
            if (p->image == NULL || p->len == 0 || sk_msg_validate(p->image, p->len) != SK_OK)
                return sk_refuse(SK_EINVAL,
                                 "task '%s': parameter '%s' is not a tpl image "
                                 "(sk_image_pack makes one)",
                                 t->name, p->name);
            if ((q->image = malloc(p->len)) == NULL)
                return SK_ENOMEM;
            memcpy(q->image, p->image, p->len);
            q->len = p->len;
            break;
        case SK_PARAM_SESSION:
            break;
        case SK_PARAM_RETURN:
            if (!name_ok(p->task))
                return sk_refuse(SK_EINVAL,
                                 "task '%s': parameter '%s' returns no task's value "
                                 "(.task is empty or too long)",
                                 t->name, p->name);
            if ((q->task = strdup(p->task)) == NULL)
                return SK_ENOMEM;
            break;
        default:
            return sk_refuse(SK_EINVAL, "task '%s': parameter '%s' has an unknown kind %d", t->name,
                             p->name, (int)p->kind);
        }
    }
    return SK_OK;
}

/* Everything but the conditions and parameters. */
static int fields_check(const sk_sched_task *in, const char *name)
{
    if ((in->fn == NULL) == (in->process == NULL))
        return sk_refuse(SK_EINVAL, "task '%s': set exactly one of fn and process", name);
    if ((unsigned)in->mode > SK_TASK_MAIN)
        return sk_refuse(SK_EINVAL, "task '%s': unknown mode %d", name, (int)in->mode);
    if (in->process != NULL && in->mode != SK_TASK_PROCESS)
        return sk_refuse(SK_EINVAL, "task '%s': a process-class task runs in SK_TASK_PROCESS mode",
                         name);
    if (isnan(in->timeout))
        return sk_refuse(SK_EINVAL, "task '%s': timeout is NaN", name);
    if (isnan(in->kill_after) || in->kill_after < 0)
        return sk_refuse(SK_EINVAL, "task '%s': kill_after is negative or NaN", name);
    if ((unsigned)in->overlap > SK_OVERLAP_PARALLEL)
        return sk_refuse(SK_EINVAL, "task '%s': unknown overlap %d", name, (int)in->overlap);
    if (in->max_parallel < 0)
        return sk_refuse(SK_EINVAL, "task '%s': max_parallel is negative", name);
    if (in->process != NULL && in->overlap == SK_OVERLAP_PARALLEL && in->max_parallel > 1)
        return sk_refuse(SK_EINVAL,
                         "task '%s': a process-class task has one handle, so one run at a "
                         "time (max_parallel %d)",
                         name, in->max_parallel);
    if ((unsigned)in->missed > SK_MISSED_RUN_ONCE)
        return sk_refuse(SK_EINVAL, "task '%s': unknown missed-run policy %d", name,
                         (int)in->missed);
    return SK_OK;
}

int sk_task_build(const sk_sched_task *in, const char *name, struct sched_task **out)
{
    *out = NULL;
    sk_cond *start = NULL, *end = NULL;
    int rc = cond_take("start", in->start, in->start_cond, &start);
    int rc_end = cond_take("end", in->end, in->end_cond, &end);
    if (rc == SK_OK)
        rc = rc_end;
    if (rc == SK_OK)
        rc = fields_check(in, name);
    struct sched_task *t = rc == SK_OK ? calloc(1, sizeof *t) : NULL;
    if (rc == SK_OK && t == NULL)
        rc = SK_ENOMEM;
    if (rc != SK_OK) {
        sk_cond_free(start);
        sk_cond_free(end);
        return rc;
    }
    t->start = start;
    t->end = end;
    t->heap_at = TASK_NOT_IN_HEAP;
    t->next_check = SK_COND_NO_CHANGE;
    if ((t->name = strdup(name)) == NULL || (t->start == NULL && !(t->start = sk_cond_false()))) {
        sk_task_free(t);
        return SK_ENOMEM;
    }
    t->timeout = in->timeout > 0 ? in->timeout : 0;
    t->kill_after = in->kill_after > 0 ? in->kill_after : SK_TASK_KILL_AFTER;
    t->mode = in->mode;
    t->fn = in->fn;
    t->arg = in->arg;
    t->process = in->process;
    t->overlap = in->overlap;
    t->max_parallel = in->max_parallel > 0 ? in->max_parallel : 1;
    t->missed = in->missed;
    bool after = false, end_users = false, end_after = false;
    rc = params_copy(in, t);
    if (rc == SK_OK)
        rc = cond_scan(t->start, t, true, &t->start_users, &after);
    if (rc == SK_OK && t->end != NULL)
        rc = cond_scan(t->end, t, false, &end_users, &end_after);
    if (rc != SK_OK) {
        sk_task_free(t);
        return rc;
    }
    t->end_watch = end_users || end_after;
    *out = t;
    return SK_OK;
}

void sk_task_free(struct sched_task *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nparams; i++) {
        free(t->params[i].name);
        free(t->params[i].image);
        free(t->params[i].task);
    }
    free(t->params);
    for (size_t i = 0; i < t->nafter; i++)
        free(t->after[i]);
    free(t->after);
    sk_cond_free(t->start);
    sk_cond_free(t->end);
    free(t->name);
    free(t);
}

/* ---------------------------------------------------------- dependents */

int sk_task_depend(sk_sched *s, struct sched_task *t)
{
    for (size_t i = 0; i < t->nafter; i++) {
        struct dependents *d = sk_name_map_get(&s->depends, t->after[i]);
        if (d == NULL) {
            d = calloc(1, sizeof *d);
            if (d == NULL || (d->name = strdup(t->after[i])) == NULL ||
                sk_name_map_put(&s->depends, d->name, d) != SK_OK) {
                if (d != NULL)
                    free(d->name);
                free(d);
                t->nafter = i; /* undepend takes out what was put in */
                sk_task_undepend(s, t);
                return SK_ENOMEM;
            }
        }
        if (d->n == d->cap) {
            size_t cap = d->cap ? 2 * d->cap : 4;
            struct sched_task **grown = realloc(d->tasks, cap * sizeof *grown);
            if (grown == NULL) {
                t->nafter = i;
                sk_task_undepend(s, t);
                return SK_ENOMEM;
            }
            d->tasks = grown;
            d->cap = cap;
        }
        d->tasks[d->n++] = t;
    }
    return SK_OK;
}

void sk_task_undepend(sk_sched *s, struct sched_task *t)
{
    for (size_t i = 0; i < t->nafter; i++) {
        struct dependents *d = sk_name_map_get(&s->depends, t->after[i]);
        if (d == NULL)
            continue;
        for (size_t k = 0; k < d->n; k++) {
            if (d->tasks[k] == t) {
                d->tasks[k] = d->tasks[--d->n];
                break;
            }
        }
        if (d->n == 0) {
            sk_name_map_remove(&s->depends, d->name);
            free(d->tasks);
            free(d->name);
            free(d);
        }
    }
}

int sk_task_touch(sk_sched *s, struct sched_task *t)
{
    if (t->dirty || t->removed)
        return SK_OK;
    if (s->ndirty == s->dirty_cap) {
        size_t cap = s->dirty_cap ? 2 * s->dirty_cap : 64;
        struct sched_task **grown = realloc(s->dirty, cap * sizeof *grown);
        if (grown == NULL)
            return SK_ENOMEM;
        s->dirty = grown;
        s->dirty_cap = cap;
    }
    s->dirty[s->ndirty++] = t;
    t->dirty = true;
    return SK_OK;
}

void sk_task_touch_dependents(sk_sched *s, const char *name)
{
    struct dependents *d = sk_name_map_get(&s->depends, name);
    for (size_t k = 0; d != NULL && k < d->n; k++)
        if (sk_task_touch(s, d->tasks[k]) != SK_OK) /* no memory: looked at when its time comes */
            break;
}

void sk_task_bury(sk_sched *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->ngrave; i++) {
        struct sched_task *t = s->graveyard[i];
        if (t->running > 0 || t->dirty)
            s->graveyard[kept++] = t;
        else
            sk_task_free(t);
    }
    s->ngrave = kept;
}
