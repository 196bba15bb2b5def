/* SPDX-License-Identifier: MIT */
/*
 * A session's lifetime and the calls that change what it holds: create
 * (the config checked, the log opened), add and remove tasks (by the
 * on_exists policy), user conditions, sk_sched_run_task, the log, release.
 * The cycle is in cycle.c.
 *
 * A removed task leaves the maps and the heap at once; its struct waits in
 * the graveyard until no run of it goes on and no cycle is in progress
 * (a main task or an on_run callback may remove a task the cycle holds).
 */
#include "core/error.h"
#include "os/fd.h"
#include "sched/cond.h"
#include "sched/runlog.h"
#include "sched/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int config_check(const sk_sched_config *cfg)
{
    if ((unsigned)cfg->on_exists > SK_EXISTS_RENAME)
        return sk_refuse(SK_EINVAL, "sk_sched_create: unknown on_exists %d", (int)cfg->on_exists);
    if ((unsigned)cfg->log > SK_LOG_CSV)
        return sk_refuse(SK_EINVAL, "sk_sched_create: unknown log kind %d", (int)cfg->log);
    if (isnan(cfg->cycle_sleep) || cfg->cycle_sleep < 0)
        return sk_refuse(SK_EINVAL, "sk_sched_create: cycle_sleep is negative or NaN");
    if (isnan(cfg->shutdown_grace) || cfg->shutdown_grace < 0)
        return sk_refuse(SK_EINVAL, "sk_sched_create: shutdown_grace is negative or NaN");
    if (cfg->shutdown != NULL && cfg->shutdown_cond != NULL)
        return sk_refuse(SK_EINVAL,
                         "sk_sched_create: the shutdown condition is given both as text and built");
    return SK_OK;
}

int sk_sched_create(sk_sched **out, const sk_sched_config *cfg)
{
    static const sk_sched_config defaults;
    if (cfg == NULL)
        cfg = &defaults;
    if (out == NULL) {
        sk_cond_free(cfg->shutdown_cond);
        return sk_refuse(SK_EINVAL, "sk_sched_create: out is NULL");
    }
    *out = NULL;
    int rc = config_check(cfg);
    sk_sched *s = rc == SK_OK ? calloc(1, sizeof *s) : NULL;
    if (rc == SK_OK && s == NULL)
        rc = sk_refuse(SK_ENOMEM, "sk_sched_create: out of memory");
    if (rc != SK_OK) {
        sk_cond_free(cfg->shutdown_cond);
        return rc;
    }
    s->cfg = *cfg;
    s->epoll_fd = s->wake_fd = s->clock_fd = s->mono_fd = -1;
    s->shutdown_cond = cfg->shutdown_cond;
    s->cfg.shutdown_cond = NULL;
    s->cfg.shutdown = NULL;
    if (cfg->log_path != NULL && (s->log_path = strdup(cfg->log_path)) == NULL)
        rc = sk_refuse(SK_ENOMEM, "sk_sched_create: out of memory");
    s->cfg.log_path = s->log_path;
    if (rc == SK_OK && cfg->shutdown != NULL) {
        sk_cond_parse_error err;
        rc = sk_cond_parse(cfg->shutdown, &s->shutdown_cond, &err);
        if (rc == SK_EINVAL)
            rc = sk_refuse(rc, "sk_sched_create: the shutdown condition: %s", err.message);
    }
    if (s->shutdown_cond != NULL)
        s->shutdown_users = sk_cond_asks_users(s->shutdown_cond);
    if (rc == SK_OK)
        rc = sk_wait_open(s);
    s->created = sk_sched_now(s);
    s->shutdown_check = INT64_MIN;
    if (rc == SK_OK)
        rc = sk_runlog_open(cfg->log, s->log_path, cfg->log_max_runs, s->created, &s->log);
    if (rc != SK_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", sk_last_error_message());
        s->log = NULL;
        sk_sched_release(s);
        return sk_refuse(rc, "%s", why);
    }
    *out = s;
    return SK_OK;
}

static void task_free_value(void *value, void *arg)
{
    (void)arg;
    sk_task_free(value);
}

static void dependents_free(void *value, void *arg)
{
    (void)arg;
    struct dependents *d = value;
    free(d->tasks);
    free(d->name);
    free(d);
}

void sk_sched_release(sk_sched *s)
{
    if (s == NULL || s->in_step)
        return;
    sk_cycle_stop_all(s, s->cfg.shutdown_grace > 0 ? s->cfg.shutdown_grace : SK_TASK_KILL_AFTER);
    for (size_t i = 0; i < s->ngrave; i++)
        sk_task_free(s->graveyard[i]);
    free(s->graveyard);
    sk_name_map_each(&s->tasks, task_free_value, NULL);
    sk_name_map_free(&s->tasks);
    sk_name_map_each(&s->depends, dependents_free, NULL);
    sk_name_map_free(&s->depends);
    sk_status_free_all(s);
    sk_params_free_session(s);
    for (size_t i = 0; i < s->nusers; i++)
        free((char *)s->users[i].name);
    free(s->users);
    free(s->heap);
    free(s->dirty);
    sk_cond_free(s->shutdown_cond);
    if (s->log != NULL)
        sk_run_log_close(s->log);
    sk_wait_close(s);
    free(s->log_path);
    sk_sched_libs_close(&s->libs); /* last: the tasks' code and data were in them */
    free(s);
}

/* ------------------------------------------------------------ tasks */

/* Takes t out of the session: its runs go on, and its struct waits in the
 * graveyard for them (or is freed now). */
static int task_drop(sk_sched *s, struct sched_task *t)
{
    if (s->ngrave == s->grave_cap) {
        size_t cap = s->grave_cap ? 2 * s->grave_cap : 16;
        struct sched_task **grown = realloc(s->graveyard, cap * sizeof *grown);
        if (grown == NULL)
            return sk_refuse(SK_ENOMEM, "out of memory");
        s->graveyard = grown;
        s->grave_cap = cap;
    }
    sk_name_map_remove(&s->tasks, t->name);
    sk_task_undepend(s, t);
    sk_task_heap_remove(s, t);
    sk_warm_drop(t);
    t->removed = true;
    s->graveyard[s->ngrave++] = t;
    if (!s->in_step)
        sk_task_bury(s);
    return SK_OK;
}

/* "name-2", "name-3", ... the first that is free. */
static int rename_free(const sk_sched *s, const char *name, char *buf, size_t len)
{
    for (unsigned n = 2; n < 1000000; n++) {
        int w = snprintf(buf, len, "%s-%u", name, n);
        if (w < 0 || (size_t)w >= len || (size_t)w > SK_COND_NAME_MAX)
            return sk_refuse(SK_EINVAL, "sk_sched_add: '%.100s' is taken and too long to rename",
                             name);
        if (sk_name_map_get(&s->tasks, buf) == NULL)
            return SK_OK;
    }
    return sk_refuse(SK_ESTATE, "sk_sched_add: no free name after '%.100s'", name);
}

static void conds_free(const sk_sched_task *task)
{
    if (task != NULL) {
        sk_cond_free(task->start_cond);
        sk_cond_free(task->end_cond);
    }
}

int sk_sched_add(sk_sched *s, const sk_sched_task *task, char *name_out, size_t len)
{
    if (s == NULL || task == NULL) {
        conds_free(task);
        return sk_refuse(SK_EINVAL, "sk_sched_add: %s is NULL", s == NULL ? "the session" : "task");
    }
    if (task->name == NULL || task->name[0] == '\0' || strlen(task->name) > SK_COND_NAME_MAX) {
        conds_free(task);
        return sk_refuse(SK_EINVAL,
                         "sk_sched_add: the task's name is empty or longer than %d bytes",
                         SK_COND_NAME_MAX);
    }
    char name[SK_COND_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", task->name);
    struct sched_task *old = sk_name_map_get(&s->tasks, name);
    int rc = SK_OK;
    if (old != NULL) {
        switch (s->cfg.on_exists) {
        case SK_EXISTS_RAISE:
            conds_free(task);
            return sk_refuse(SK_ESTATE, "sk_sched_add: a task '%.200s' exists already", name);
        case SK_EXISTS_IGNORE:
            conds_free(task);
            if (name_out != NULL && len > 0)
                snprintf(name_out, len, "%s", name);
            return SK_OK;
        case SK_EXISTS_RENAME:
            rc = rename_free(s, task->name, name, sizeof name);
            old = NULL;
            break;
        case SK_EXISTS_REPLACE:
            break;
        }
    }
    if (rc != SK_OK) {
        conds_free(task);
        return rc;
    }
    struct sched_task *t;
    rc = sk_task_build(task, name, &t);
    if (rc != SK_OK)
        return rc;
    if (old != NULL && (rc = task_drop(s, old)) != SK_OK) {
        sk_task_free(t);
        return rc;
    }
    if ((t->status = sk_status_of(s, t->name)) == NULL || sk_task_depend(s, t) != SK_OK) {
        sk_task_free(t);
        return sk_refuse(SK_ENOMEM, "sk_sched_add: out of memory");
    }
    if (sk_name_map_put(&s->tasks, t->name, t) != SK_OK) {
        sk_task_undepend(s, t);
        sk_task_free(t);
        return sk_refuse(SK_ENOMEM, "sk_sched_add: out of memory");
    }
    if (sk_task_touch(s, t) != SK_OK) {
        sk_name_map_remove(&s->tasks, t->name);
        sk_task_undepend(s, t);
        sk_task_free(t);
        return sk_refuse(SK_ENOMEM, "sk_sched_add: out of memory");
    }
    sk_doorbell_ring(s->wake_fd); /* an event loop steps soon */
    if (name_out != NULL && len > 0)
        snprintf(name_out, len, "%s", name);
    return SK_OK;
}

int sk_sched_remove(sk_sched *s, const char *name)
{
    if (s == NULL || name == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_remove: %s is NULL",
                         s == NULL ? "the session" : "name");
    struct sched_task *t = sk_name_map_get(&s->tasks, name);
    if (t == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_remove: no task '%.200s'", name);
    return task_drop(s, t);
}

int sk_sched_run_task(sk_sched *s, const char *name)
{
    if (s == NULL || name == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_run_task: %s is NULL",
                         s == NULL ? "the session" : "name");
    struct sched_task *t = sk_name_map_get(&s->tasks, name);
    if (t == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_run_task: no task '%.200s'", name);
    t->forced = true;
    if (sk_task_touch(s, t) != SK_OK)
        return sk_refuse(SK_ENOMEM, "sk_sched_run_task: out of memory");
    sk_doorbell_ring(s->wake_fd);
    return SK_OK;
}

/* ------------------------------------------------- user conditions */

static void touch_if_users(void *value, void *arg)
{
    struct sched_task *t = value;
    if (t->start_users)
        sk_task_touch(arg, t);
}

int sk_sched_condition(sk_sched *s, const char *name, sk_cond_user_fn fn, void *arg)
{
    if (s == NULL || name == NULL || fn == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_condition: %s is NULL",
                         s == NULL      ? "the session"
                         : name == NULL ? "name"
                                        : "fn");
    if (!sk_cond_valid_user_name(name, strlen(name)) || sk_cond_is_keyword(name, strlen(name)))
        return sk_refuse(SK_EINVAL, "sk_sched_condition: '%.100s' is not a user condition's name",
                         name);
    size_t i = 0;
    while (i < s->nusers && strcmp(s->users[i].name, name) != 0)
        i++;
    if (i == s->nusers) {
        if (s->nusers == s->users_cap) {
            size_t cap = s->users_cap ? 2 * s->users_cap : 8;
            sk_cond_user_def *grown = realloc(s->users, cap * sizeof *grown);
            if (grown == NULL)
                return sk_refuse(SK_ENOMEM, "sk_sched_condition: out of memory");
            s->users = grown;
            s->users_cap = cap;
        }
        char *copy = strdup(name);
        if (copy == NULL)
            return sk_refuse(SK_ENOMEM, "sk_sched_condition: out of memory");
        s->users[i].name = copy;
        s->nusers++;
    }
    s->users[i].fn = fn;
    s->users[i].arg = arg;
    sk_name_map_each(&s->tasks, touch_if_users, s); /* it may decide them now */
    sk_doorbell_ring(s->wake_fd);
    return SK_OK;
}

sk_run_log *sk_sched_log(sk_sched *s)
{
    return s != NULL ? s->log : NULL;
}
