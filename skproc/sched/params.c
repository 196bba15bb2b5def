/* SPDX-License-Identifier: MIT */
/*
 * Parameters: the session's own (a fixed value or a function, by name), and
 * a run's, resolved in the session's thread right before the run starts:
 * every image is the run's own copy, so that a thread run, or a thread run
 * the session let go of at shutdown, never reads memory the session frees
 * or replaces, and a process run finds them in its copy of the memory.
 */
#include "codec/message.h"
#include "core/error.h"
#include "sched/runlog.h"
#include "sched/session.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ the session's own */

static void session_param_free(void *value, void *arg)
{
    (void)arg;
    struct session_param *p = value;
    if (p == NULL)
        return;
    free(p->image);
    free(p->name);
    free(p);
}

void sk_params_free_session(sk_sched *s)
{
    sk_name_map_each(&s->params, session_param_free, NULL);
    sk_name_map_free(&s->params);
}

/* Puts p under its name, freeing the one it replaces. */
static int session_param_set(sk_sched *s, struct session_param *p)
{
    struct session_param *old = sk_name_map_get(&s->params, p->name);
    int rc = sk_name_map_put(&s->params, p->name, p);
    if (rc != SK_OK) {
        session_param_free(p, NULL);
        return rc;
    }
    session_param_free(old, NULL);
    return SK_OK;
}

/* A new session parameter called name, or NULL with *rc saying why. */
static struct session_param *session_param_new(sk_sched *s, const char *name, const char *call,
                                               int *rc)
{
    if (s == NULL || name == NULL || name[0] == '\0' || strlen(name) > SK_COND_NAME_MAX) {
        *rc = sk_refuse(SK_EINVAL, "%s: %s", call,
                        s == NULL ? "the session is NULL" : "the name is empty, NULL or too long");
        return NULL;
    }
    struct session_param *p = calloc(1, sizeof *p);
    if (p == NULL || (p->name = strdup(name)) == NULL) {
        free(p);
        *rc = sk_refuse(SK_ENOMEM, "%s: out of memory", call);
        return NULL;
    }
    return p;
}

int sk_sched_param(sk_sched *s, const char *name, const char *fmt, ...)
{
    int rc;
    struct session_param *p = session_param_new(s, name, "sk_sched_param", &rc);
    if (p == NULL)
        return rc;
    if (fmt == NULL || fmt[0] == '\0') {
        session_param_free(p, NULL);
        return sk_refuse(SK_EINVAL, "sk_sched_param: '%s' has no format", name);
    }
    va_list ap;
    va_start(ap, fmt);
    rc = sk_msg_pack(fmt, ap, &p->image, &p->len);
    va_end(ap);
    if (rc != SK_OK) {
        session_param_free(p, NULL);
        return sk_refuse(rc, "sk_sched_param: '%s': the values do not fit \"%.64s\"", name, fmt);
    }
    return session_param_set(s, p);
}

int sk_sched_param_fn(sk_sched *s, const char *name, sk_param_fn fn, void *arg)
{
    if (fn == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_param_fn: fn is NULL");
    int rc;
    struct session_param *p = session_param_new(s, name, "sk_sched_param_fn", &rc);
    if (p == NULL)
        return rc;
    p->fn = fn;
    p->arg = arg;
    return session_param_set(s, p);
}

/* ------------------------------------------------------ a run's own */

static int image_copy(const void *img, size_t len, struct run_param *out)
{
    if (img == NULL || len == 0)
        return SK_OK;
    if ((out->image = malloc(len)) == NULL)
        return SK_ENOMEM;
    memcpy(out->image, img, len);
    out->len = len;
    return SK_OK;
}

/* A session parameter's value: a copy of the fixed one, or what its
 * function made (the run takes it over). No session parameter of that name
 * is no value. */
static int resolve_session(sk_sched *s, const sk_task_run *r, const char *name,
                           struct run_param *out, sk_error *why)
{
    struct session_param *p = sk_name_map_get(&s->params, name);
    if (p == NULL)
        return SK_OK;
    if (p->fn == NULL)
        return image_copy(p->image, p->len, out);
    void *img = NULL;
    size_t len = 0;
    int rc = p->fn(p->arg, &img, &len);
    if (rc != 0) {
        free(img);
        sk_run_error(why, SK_PROCESS_ERROR, SK_EPROCESS,
                     "Task '%.100s' was not started: the function of parameter '%.100s' failed",
                     r->name, name);
        why->code = rc;
        return SK_EPROCESS;
    }
    if (img != NULL && (len == 0 || sk_msg_validate(img, len) != SK_OK)) {
        free(img);
        sk_run_error(why, SK_PROCESS_ERROR, SK_EFORMAT,
                     "Task '%.100s' was not started: the function of parameter '%.100s' made "
                     "no tpl image",
                     r->name, name);
        return SK_EFORMAT;
    }
    out->image = img;
    out->len = img != NULL ? len : 0;
    return SK_OK;
}

static int resolve_return(sk_sched *s, const sk_task_run *r, const struct task_param *tp,
                          struct run_param *out, sk_error *why)
{
    const void *img = NULL;
    size_t len = 0;
    int rc = sk_runlog_last_value(s->log, tp->task, &img, &len);
    if (rc == SK_ECLOSED)
        return SK_OK;
    if (rc == SK_OK)
        rc = image_copy(img, len, out);
    if (rc != SK_OK)
        sk_run_error(why, SK_PROCESS_ERROR, rc,
                     "Task '%.100s' was not started: the return value of task '%.100s' for "
                     "parameter '%.40s' could not be read (%s)",
                     r->name, tp->task, tp->name, sk_strerror(rc));
    return rc;
}

int sk_params_resolve(sk_sched *s, sk_task_run *r, sk_error *why)
{
    const struct sched_task *t = r->task;
    if (t->nparams == 0)
        return SK_OK;
    r->params = calloc(t->nparams, sizeof *r->params);
    if (r->params == NULL)
        goto no_memory;
    for (size_t i = 0; i < t->nparams; i++) {
        const struct task_param *tp = &t->params[i];
        struct run_param *rp = &r->params[i];
        r->nparams = i + 1;
        if ((rp->name = strdup(tp->name)) == NULL)
            goto no_memory;
        int rc = SK_OK;
        switch (tp->kind) {
        case SK_PARAM_VALUE:
            rc = image_copy(tp->image, tp->len, rp);
            break;
        case SK_PARAM_SESSION:
            rc = resolve_session(s, r, tp->name, rp, why);
            break;
        case SK_PARAM_RETURN:
            rc = resolve_return(s, r, tp, rp, why);
            break;
        }
        if (rc == SK_ENOMEM)
            goto no_memory;
        if (rc != SK_OK)
            return rc;
    }
    return SK_OK;
no_memory:
    sk_run_error(why, SK_PROCESS_ERROR, SK_ENOMEM,
                 "Task '%.200s' was not started: no memory for its parameters", r->name);
    return SK_ENOMEM;
}

bool sk_params_known_ahead(const sk_sched *s, const struct sched_task *t)
{
    for (size_t i = 0; i < t->nparams; i++) {
        if (t->params[i].kind != SK_PARAM_SESSION)
            continue;
        const struct session_param *p = sk_name_map_get(&s->params, t->params[i].name);
        if (p != NULL && p->fn != NULL)
            return false;
    }
    return true;
}

static bool same_image(const struct run_param *rp, const void *img, size_t len)
{
    if (img == NULL || len == 0)
        return rp->image == NULL;
    return rp->image != NULL && rp->len == len && memcmp(rp->image, img, len) == 0;
}

bool sk_params_current(sk_sched *s, const sk_task_run *r)
{
    const struct sched_task *t = r->task;
    if (r->nparams != t->nparams)
        return false;
    for (size_t i = 0; i < t->nparams; i++) {
        const struct task_param *tp = &t->params[i];
        const struct run_param *rp = &r->params[i];
        const void *img = NULL;
        size_t len = 0;
        if (tp->kind == SK_PARAM_SESSION) {
            const struct session_param *p = sk_name_map_get(&s->params, tp->name);
            if (p != NULL && p->fn != NULL)
                return false;
            if (p != NULL) {
                img = p->image;
                len = p->len;
            }
        } else if (tp->kind == SK_PARAM_RETURN) {
            int rc = sk_runlog_last_value(s->log, tp->task, &img, &len);
            if (rc != SK_OK && rc != SK_ECLOSED)
                return false;
        } else {
            continue; /* the task's own fixed value: the task cannot change */
        }
        if (!same_image(rp, img, len))
            return false;
    }
    return true;
}

void sk_params_free_run(sk_task_run *r)
{
    for (size_t i = 0; i < r->nparams; i++) {
        free(r->params[i].name);
        free(r->params[i].image);
    }
    free(r->params);
    r->params = NULL;
    r->nparams = 0;
}

/* -------------------------------------------------- in a task's code */

static const struct run_param *param_find(const sk_task_run *run, const char *name)
{
    for (size_t i = 0; run != NULL && name != NULL && i < run->nparams; i++)
        if (strcmp(run->params[i].name, name) == 0)
            return &run->params[i];
    return NULL;
}

int sk_task_param(sk_task_run *run, const char *name, const char *fmt, ...)
{
    if (run == NULL || name == NULL || fmt == NULL)
        return sk_refuse(SK_EINVAL, "sk_task_param: %s is NULL",
                         run == NULL    ? "run"
                         : name == NULL ? "name"
                                        : "fmt");
    const struct run_param *p = param_find(run, name);
    if (p == NULL)
        return sk_refuse(SK_EINVAL, "sk_task_param: task '%.100s' declares no parameter '%.100s'",
                         run->name, name);
    if (p->image == NULL)
        return sk_refuse(SK_ECLOSED, "sk_task_param: parameter '%.100s' has no value", name);
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_unpack(p->image, p->len, fmt, ap);
    va_end(ap);
    if (rc == SK_EFORMAT)
        return sk_refuse(rc, "sk_task_param: parameter '%.100s' is not \"%.64s\"", name, fmt);
    return rc;
}

const void *sk_task_param_image(sk_task_run *run, const char *name, size_t *len)
{
    const struct run_param *p = param_find(run, name);
    if (len != NULL)
        *len = p != NULL && p->image != NULL ? p->len : 0;
    return p != NULL ? p->image : NULL;
}
