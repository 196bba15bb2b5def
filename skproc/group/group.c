/* SPDX-License-Identifier: MIT */
/*
 * The public calls of a group (include/skproc/group.h). Before the group
 * starts and after it ended they act on it directly; while its thread runs,
 * the calls that change it are commands the thread carries out.
 */
#include "group/group_internal.h"
#include "core/error.h"
#include "core/handle.h"
#include "core/runtime.h"
#include "os/clock.h"
#include "os/fd.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

static const char *const event_names[] = {
    [SK_GROUP_CHILD_STARTED] = "started",
    [SK_GROUP_CHILD_READY] = "ready",
    [SK_GROUP_CHILD_ENDED] = "ended",
    [SK_GROUP_CHILD_RESTARTING] = "restarting",
    [SK_GROUP_CHILD_START_FAILED] = "start_failed",
    [SK_GROUP_CHILD_STOPPED] = "stopped",
    [SK_GROUP_CHILD_REMOVED] = "removed",
    [SK_GROUP_GAVE_UP] = "gave_up",
    [SK_GROUP_STOPPED] = "group_stopped",
};

const char *sk_group_event_name(sk_group_event_kind kind)
{
    if ((unsigned)kind >= sizeof event_names / sizeof event_names[0])
        return "unknown";
    return event_names[kind];
}

int sk_group_create(sk_group **out, const sk_group_config *cfg)
{
    if (out == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_create: out is NULL");
    *out = NULL;
    sk_group_config c = cfg != NULL ? *cfg : (sk_group_config){0};
    if ((unsigned)c.strategy > SK_REST_FOR_ONE)
        return sk_refuse(SK_EINVAL, "sk_group_create: unknown strategy %d", (int)c.strategy);
    if (!isfinite(c.period) || c.period < 0)
        return sk_refuse(SK_EINVAL, "sk_group_create: period is not a finite, non-negative number");
    if (c.name != NULL && (strlen(c.name) == 0 || strlen(c.name) >= GROUP_NAME))
        return sk_refuse(SK_EINVAL, "sk_group_create: name must be 1 to %d bytes", GROUP_NAME - 1);
    if (c.intensity == 0)
        c.intensity = 1;
    if (c.intensity < 0)
        c.intensity = 0;
    if (c.period == 0)
        c.period = 5.0;

    sk_group *g = calloc(1, sizeof *g);
    if (g == NULL)
        return SK_ENOMEM;
    snprintf(g->name, sizeof g->name, "%s", c.name != NULL ? c.name : "group");
    c.name = g->name;
    g->cfg = c;
    g->end_fd = sk_doorbell_create();
    g->wake_fd = sk_doorbell_create();
    g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->answered, NULL);
    if (g->end_fd < 0 || g->wake_fd < 0 || g->epoll_fd < 0 ||
        sk_group_intensity_init(&g->intensity, c.intensity, c.period) != SK_OK) {
        int rc = errno == ENOMEM ? SK_ENOMEM : SK_ESYS;
        sk_group_release(g);
        return rc;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->wake_fd, &ev) != 0) {
        sk_group_release(g);
        return SK_ESYS;
    }
    *out = g;
    return SK_OK;
}

/* A child from the caller's spec, checked; the group's own copy. */
static int child_from_spec(sk_group *g, const sk_group_child *spec, struct group_child **out)
{
    if (spec == NULL || spec->name == NULL || spec->name[0] == '\0' ||
        strlen(spec->name) >= GROUP_NAME)
        return sk_refuse(SK_EINVAL, "sk_group_add: a child's name must be 1 to %d bytes",
                         GROUP_NAME - 1);
    if ((spec->process == NULL) == (spec->group == NULL))
        return sk_refuse(SK_EINVAL,
                         "sk_group_add: child '%s' needs exactly one of process and "
                         "group",
                         spec->name);
    if ((unsigned)spec->restart > SK_TEMPORARY)
        return sk_refuse(SK_EINVAL, "sk_group_add: child '%s' has an unknown restart type",
                         spec->name);
    double shutdown = spec->shutdown;
    if (shutdown == 0)
        shutdown = SK_DEFAULT_SHUTDOWN;
    if (isnan(shutdown) ||
        (shutdown < 0 && shutdown != SK_SHUTDOWN_INFINITY && shutdown != SK_SHUTDOWN_BRUTAL_KILL))
        return sk_refuse(SK_EINVAL, "sk_group_add: child '%s' has a bad shutdown", spec->name);
    if (isinf(shutdown))
        shutdown = SK_SHUTDOWN_INFINITY;
    double ready = spec->ready_timeout;
    if (isnan(ready))
        return sk_refuse(SK_EINVAL, "sk_group_add: child '%s' has a bad ready_timeout", spec->name);
    if (ready == 0)
        ready = SK_DEFAULT_READY_TIMEOUT;
    if (ready < 0 || isinf(ready))
        ready = -1;
    if (sk_group_find_child(g, spec->name) != NULL)
        return sk_refuse(SK_EINVAL, "sk_group_add: group '%s' already has a child '%s'", g->name,
                         spec->name);
    if (spec->process != NULL) {
        int rc = sk_handle_check_parent(spec->process, "sk_group_add");
        if (rc != SK_OK)
            return rc;
        if (spec->process->rt->started)
            return sk_refuse(SK_ESTATE, "sk_group_add: child '%s' was started already", spec->name);
        for (size_t i = 0; i < g->nchildren; i++)
            if (g->children[i]->process == spec->process)
                return sk_refuse(SK_EINVAL, "sk_group_add: that process is child '%s' already",
                                 g->children[i]->name);
    } else {
        sk_group *child = spec->group;
        if (child == g || child->owned || child->state != SK_GROUP_IDLE)
            return sk_refuse(SK_EINVAL,
                             "sk_group_add: group '%s' cannot be a child here (it "
                             "is this group, another's child, or started)",
                             child->name);
    }
    struct group_child *c = calloc(1, sizeof *c);
    if (c == NULL)
        return SK_ENOMEM;
    snprintf(c->name, sizeof c->name, "%s", spec->name);
    c->process = spec->process;
    c->group = spec->group;
    c->restart = spec->restart;
    c->shutdown = shutdown;
    c->ready_timeout = ready;
    c->watch_fd = -1;
    c->pid = -1;
    if (c->process != NULL && !spec->no_supervisor)
        c->process->config.supervise = true; /* its whole tree ends with it */
    *out = c;
    return SK_OK;
}

int sk_group_add(sk_group *g, const sk_group_child *spec)
{
    if (g == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_add: group is NULL");
    pthread_mutex_lock(&g->lock);
    sk_group_run_state state = g->state;
    pthread_mutex_unlock(&g->lock);
    if (state == SK_GROUP_ENDED || state == SK_GROUP_FAILED)
        return sk_refuse(SK_ESTATE, "sk_group_add: group '%s' has ended", g->name);
    struct group_child *c = NULL;
    int rc = child_from_spec(g, spec, &c);
    if (rc != SK_OK)
        return rc;
    if (state == SK_GROUP_IDLE) {
        if (!sk_group_children_append(g, c)) {
            free(c);
            return SK_ENOMEM;
        }
        return SK_OK;
    }
    struct group_command cmd = {.kind = GROUP_CMD_ADD, .child = c};
    rc = sk_group_command(g, &cmd);
    if (rc == SK_ESTATE) {
        free(c);
        return sk_refuse(SK_ESTATE, "sk_group_add: group '%s' has ended", g->name);
    }
    if (rc == SK_EPROCESS)
        return sk_refuse(SK_EPROCESS, "sk_group_add: %s", cmd.why);
    return rc;
}

int sk_group_remove(sk_group *g, const char *name)
{
    if (g == NULL || name == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_remove: group or name is NULL");
    struct group_command cmd = {.kind = GROUP_CMD_REMOVE, .name = name};
    int rc = sk_group_command(g, &cmd);
    if (rc != SK_ESTATE)
        return rc == SK_EINVAL ? sk_refuse(SK_EINVAL, "sk_group_remove: no child '%s'", name) : rc;
    /* Not running: nothing to stop. */
    struct group_child *c = sk_group_find_child(g, name);
    if (c == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_remove: no child '%s'", name);
    sk_group_forget_child(g, c);
    free(c);
    return SK_OK;
}

int sk_group_fd(const sk_group *g)
{
    if (g == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_fd: group is NULL");
    return g->end_fd;
}

int sk_group_start(sk_group *g)
{
    if (g == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_start: group is NULL");
    if (g->state != SK_GROUP_IDLE || g->owned)
        return sk_refuse(SK_ESTATE,
                         "sk_group_start: group '%s' was started already, or is a "
                         "child of another group",
                         g->name);
    return sk_group_launch(g);
}

int sk_group_stop(sk_group *g)
{
    if (g == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_stop: group is NULL");
    sk_group_halt(g);
    return SK_OK;
}

int sk_group_wait(sk_group *g, double timeout)
{
    if (g == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_wait: group is NULL");
    return sk_group_await(g, timeout);
}

const sk_group_error *sk_group_error_of(const sk_group *g)
{
    if (g == NULL)
        return NULL;
    pthread_mutex_lock((pthread_mutex_t *)&g->lock);
    bool has = g->has_error;
    pthread_mutex_unlock((pthread_mutex_t *)&g->lock);
    return has ? &g->error : NULL;
}

int sk_group_state_read(sk_group *g, sk_group_state *out)
{
    if (g == NULL || out == NULL)
        return sk_refuse(SK_EINVAL, "sk_group_state_read: group or out is NULL");
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&g->lock);
    out->state = g->state;
    out->total_restarts = g->total_restarts;
    out->nchildren = g->nchildren;
    if (g->nchildren > 0) {
        out->children = calloc(g->nchildren, sizeof *out->children);
        if (out->children == NULL) {
            pthread_mutex_unlock(&g->lock);
            out->nchildren = 0;
            return SK_ENOMEM;
        }
    }
    for (size_t i = 0; i < g->nchildren; i++) {
        const struct group_child *c = g->children[i];
        sk_group_child_info *info = &out->children[i];
        snprintf(info->name, sizeof info->name, "%s", c->name);
        info->state = c->state;
        info->pid = c->state == SK_CHILD_STOPPED ? -1 : c->pid;
        info->restarts = c->restarts;
        info->has_error = c->has_error;
        info->last_error = c->last_error;
    }
    pthread_mutex_unlock(&g->lock);
    return SK_OK;
}

pid_t sk_group_pid(sk_group *g, const char *name)
{
    if (g == NULL || name == NULL)
        return -1;
    pthread_mutex_lock(&g->lock);
    const struct group_child *c = sk_group_find_child(g, name);
    pid_t pid = c != NULL && c->state == SK_CHILD_RUNNING ? c->pid : -1;
    pthread_mutex_unlock(&g->lock);
    return pid;
}

void sk_group_state_free(sk_group_state *s)
{
    if (s == NULL)
        return;
    free(s->children);
    s->children = NULL;
    s->nchildren = 0;
}

void sk_group_release(sk_group *g)
{
    if (g == NULL)
        return;
    if (g->owned) { /* its parent group releases it */
        sk_refuse(SK_ESTATE, "sk_group_release: group '%s' is a child of another group", g->name);
        return;
    }
    sk_group_halt(g);
    sk_group_free(g);
}
