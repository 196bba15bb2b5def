/* SPDX-License-Identifier: MIT */
/*
 * The group's thread: a state machine that starts the children, watches
 * them, restarts them by the group's strategy, and stops them.
 *
 *   STARTING ──all ready──▶ SUPERVISING ◀──────────────┐
 *      │ one failed            │ a child ended,         │ restarted
 *      ▼                       │ must be restarted      │
 *    DONE (FAILED)             ├───────────────────▶ RESTARTING
 *                              │ stop command           │ too many restarts
 *                              ▼                        ▼
 *                           STOPPING ──▶ DONE        GIVING_UP ──▶ DONE (FAILED)
 *
 * A restart that fails (the child cannot start, or is not ready in time)
 * counts as one more restart and is tried again, as OTP does, until the
 * intensity says the group gives up.
 */
#include "group/group_internal.h"
#include "core/error.h"
#include "os/clock.h"
#include "os/fd.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

enum group_phase {
    PHASE_STARTING,
    PHASE_SUPERVISING,
    PHASE_RESTARTING,
    PHASE_STOPPING,
    PHASE_GIVING_UP,
    PHASE_DONE
};

struct supervision {
    sk_group *g;
    struct group_child *failed; /* RESTARTING, GIVING_UP: the child whose end decided it */
};

/* How often children without a pidfd are looked at, ms. */
#define GROUP_POLL_MS 10

static double group_seconds(const sk_group *g)
{
    return (double)(sk_now_ns() - g->started_ns) / 1e9;
}

static void answer(sk_group *g, struct group_command *cmd, int rc)
{
    pthread_mutex_lock(&g->lock);
    cmd->rc = rc;
    cmd->done = true;
    pthread_cond_broadcast(&g->answered);
    pthread_mutex_unlock(&g->lock);
}

/* ------------------------------------------------------- one child */

/* A group child is started like a process child: its own thread starts
 * its children, and it is ready once they all are. */
static int nested_start(sk_group *g, struct group_child *c, sk_error *why)
{
    sk_group *child = c->group;
    if (c->started)
        sk_group_rearm(child);
    c->started = true;
    sk_group_publish(g, c, SK_CHILD_STARTING, -1);
    sk_group_emit(g, SK_GROUP_CHILD_STARTED, c, NULL);
    if (sk_group_launch(child) != SK_OK) {
        if (child->has_error) /* its thread has ended: no lock needed */
            *why = child->error.error;
        else
            sk_error_set_text(why, SK_PROCESS_ERROR, SK_EPROCESS, "Group '%s' could not be started",
                              c->name);
        return SK_EPROCESS;
    }
    c->live = true;
    sk_group_watch(g, c, child->end_fd);
    return SK_OK;
}

static int child_start(sk_group *g, struct group_child *c, sk_error *why)
{
    int rc = c->process != NULL ? sk_group_process_start(g, c, why) : nested_start(g, c, why);
    if (rc != SK_OK) {
        sk_group_publish(g, c, SK_CHILD_STOPPED, -1);
        return rc;
    }
    sk_group_publish(g, c, SK_CHILD_RUNNING, c->pid);
    sk_group_emit(g, SK_GROUP_CHILD_READY, c, NULL);
    return SK_OK;
}

static void child_stop(sk_group *g, struct group_child *c)
{
    sk_group_unwatch(g, c);
    if (!c->live)
        return;
    if (c->process != NULL)
        sk_group_process_stop(c);
    else
        sk_group_halt(c->group);
    c->live = false;
    sk_group_publish(g, c, SK_CHILD_STOPPED, -1);
    sk_group_emit(g, SK_GROUP_CHILD_STOPPED, c, NULL);
}

/* The child ended by itself: collects it; true and *why filled when that
 * was a failure. */
static bool child_reap(sk_group *g, struct group_child *c, sk_error *why)
{
    sk_group_unwatch(g, c);
    c->live = false;
    memset(why, 0, sizeof *why);
    bool failed;
    if (c->process != NULL) {
        failed = sk_group_process_reap(c, why);
    } else {
        failed = sk_group_await(c->group, -1) == SK_EPROCESS;
        if (failed)
            *why = c->group->error.error;
    }
    sk_group_publish(g, c, SK_CHILD_STOPPED, -1);
    return failed;
}

/* For children without a pidfd: has it ended? */
static bool child_ended(const struct group_child *c)
{
    if (c->process != NULL)
        return sk_wait(c->process, 0) == SK_OK;
    return sk_group_await(c->group, 0) != SK_ETIMEDOUT;
}

static void child_release(struct group_child *c)
{
    if (c->process != NULL) {
        sk_release(c->process);
    } else {
        sk_group_halt(c->group);
        sk_group_free(c->group);
    }
}

/* ------------------------------------------------------- the strategy */

static void record_failure(sk_group *g, struct group_child *c, const sk_error *why)
{
    pthread_mutex_lock(&g->lock);
    c->has_error = true;
    c->last_error = *why;
    pthread_mutex_unlock(&g->lock);
    sk_group_intensity_failure(&g->intensity, c->name, group_seconds(g), why);
}

static size_t child_index(const sk_group *g, const struct group_child *c)
{
    for (size_t i = 0; i < g->nchildren; i++)
        if (g->children[i] == c)
            return i;
    return g->nchildren;
}

/* Stops every child, the last started first. */
static void stop_all(sk_group *g)
{
    for (size_t i = g->nchildren; i-- > 0;)
        child_stop(g, g->children[i]);
}

/* A child leaves the group for good: its handle is released. */
static void drop_child(sk_group *g, struct group_child *c)
{
    sk_group_emit(g, SK_GROUP_CHILD_REMOVED, c, NULL);
    sk_group_forget_child(g, c);
    child_release(c);
    free(c);
}

static enum group_phase phase_start(struct supervision *s)
{
    sk_group *g = s->g;
    int rc = SK_OK;
    for (size_t i = 0; i < g->nchildren; i++) {
        struct group_child *c = g->children[i];
        sk_error why;
        if (child_start(g, c, &why) == SK_OK)
            continue;
        record_failure(g, c, &why);
        sk_group_emit(g, SK_GROUP_CHILD_START_FAILED, c, &why);
        stop_all(g);
        pthread_mutex_lock(&g->lock);
        snprintf(g->error.child, sizeof g->error.child, "%s", c->name);
        sk_group_intensity_report(&g->intensity, group_seconds(g), &g->error);
        sk_error_set_text(&g->error.error, SK_PROCESS_ERROR, SK_EPROCESS,
                          "Group '%s' could not start child '%s': %s", g->name, c->name,
                          why.message);
        g->has_error = true;
        pthread_mutex_unlock(&g->lock);
        rc = SK_EPROCESS;
        break;
    }
    if (rc != SK_OK)
        sk_group_end(g, SK_GROUP_FAILED);
    pthread_mutex_lock(&g->lock);
    g->start_rc = rc;
    g->start_done = true;
    pthread_cond_broadcast(&g->answered);
    pthread_mutex_unlock(&g->lock);
    return rc == SK_OK ? PHASE_SUPERVISING : PHASE_DONE;
}

/* A child ended by itself: remove it, or decide on a restart. */
static enum group_phase on_child_end(struct supervision *s, struct group_child *c)
{
    sk_group *g = s->g;
    sk_error why;
    bool failed = child_reap(g, c, &why);
    if (failed) {
        pthread_mutex_lock(&g->lock);
        c->has_error = true;
        c->last_error = why;
        pthread_mutex_unlock(&g->lock);
    }
    sk_group_emit(g, SK_GROUP_CHILD_ENDED, c, failed ? &why : NULL);
    if (c->restart == SK_TEMPORARY || (c->restart == SK_TRANSIENT && !failed)) {
        drop_child(g, c);
        return PHASE_SUPERVISING;
    }
    if (!failed)
        sk_error_set_text(&why, SK_PROCESS_ERROR, SK_OK,
                          "Child '%s' ended normally (permanent: restarted)", c->name);
    sk_group_intensity_failure(&g->intensity, c->name, group_seconds(g), &why);
    s->failed = c;
    return sk_group_intensity_admit(&g->intensity, sk_now_ns()) ? PHASE_RESTARTING
                                                                : PHASE_GIVING_UP;
}

static void command_add(sk_group *g, struct group_command *cmd)
{
    struct group_child *c = cmd->child;
    if (!sk_group_children_append(g, c)) {
        answer(g, cmd, SK_ENOMEM);
        return;
    }
    sk_error why;
    if (child_start(g, c, &why) == SK_OK) {
        answer(g, cmd, SK_OK);
        return;
    }
    sk_group_emit(g, SK_GROUP_CHILD_START_FAILED, c, &why);
    sk_group_forget_child(g, c);
    snprintf(cmd->why, sizeof cmd->why, "%s", why.message);
    free(c);
    answer(g, cmd, SK_EPROCESS);
}

static void command_remove(sk_group *g, struct group_command *cmd)
{
    struct group_child *c = sk_group_find_child(g, cmd->name);
    if (c == NULL) {
        answer(g, cmd, SK_EINVAL);
        return;
    }
    child_stop(g, c);
    sk_group_emit(g, SK_GROUP_CHILD_REMOVED, c, NULL);
    sk_group_forget_child(g, c);
    free(c); /* the handle is the caller's again */
    answer(g, cmd, SK_OK);
}

static enum group_phase take_command(struct supervision *s)
{
    sk_group *g = s->g;
    sk_doorbell_drain(g->wake_fd);
    pthread_mutex_lock(&g->lock);
    struct group_command *cmd = g->command;
    bool pending = cmd != NULL && !cmd->done;
    pthread_mutex_unlock(&g->lock);
    if (!pending)
        return PHASE_SUPERVISING;
    switch (cmd->kind) {
    case GROUP_CMD_ADD:
        command_add(g, cmd);
        break;
    case GROUP_CMD_REMOVE:
        command_remove(g, cmd);
        break;
    case GROUP_CMD_STOP:
        return PHASE_STOPPING;
    case GROUP_CMD_NONE:
        break;
    }
    return PHASE_SUPERVISING;
}

static enum group_phase phase_supervise(struct supervision *s)
{
    sk_group *g = s->g;
    bool polled = false;
    for (size_t i = 0; i < g->nchildren; i++)
        polled |= g->children[i]->live && g->children[i]->watch_fd < 0;
    struct epoll_event ev[16];
    int n = epoll_wait(g->epoll_fd, ev, 16, polled ? GROUP_POLL_MS : -1);
    for (int i = 0; i < n; i++) {
        if (ev[i].data.ptr == NULL)
            continue; /* the command, after the children */
        struct group_child *c = ev[i].data.ptr;
        enum group_phase next = on_child_end(s, c);
        if (next != PHASE_SUPERVISING)
            return next; /* the other events are still pending in the epoll set */
    }
    for (size_t i = 0; polled && i < g->nchildren; i++) {
        struct group_child *c = g->children[i];
        if (c->live && c->watch_fd < 0 && child_ended(c))
            return on_child_end(s, c);
    }
    return take_command(s);
}

/* The children the strategy restarts after `failed` ended, stopped first
 * (later ones first), then started in order. */
static enum group_phase phase_restart(struct supervision *s)
{
    sk_group *g = s->g;
    size_t at = child_index(g, s->failed);
    size_t from = g->cfg.strategy == SK_ONE_FOR_ALL ? 0 : at;
    size_t to = g->cfg.strategy == SK_ONE_FOR_ONE ? at + 1 : g->nchildren;
    for (size_t i = to; i-- > from;)
        if (i != at)
            child_stop(g, g->children[i]);
    pthread_mutex_lock(&g->lock);
    g->total_restarts++;
    pthread_mutex_unlock(&g->lock);
    for (size_t i = from; i < to && i < g->nchildren;) {
        struct group_child *c = g->children[i];
        if (c->restart == SK_TEMPORARY) { /* stopped by the strategy: never restarted */
            drop_child(g, c);
            to--;
            continue;
        }
        pthread_mutex_lock(&g->lock);
        c->restarts++;
        pthread_mutex_unlock(&g->lock);
        sk_group_emit(g, SK_GROUP_CHILD_RESTARTING, c, NULL);
        sk_error why;
        if (child_start(g, c, &why) != SK_OK) {
            record_failure(g, c, &why);
            sk_group_emit(g, SK_GROUP_CHILD_START_FAILED, c, &why);
            s->failed = c;
            return sk_group_intensity_admit(&g->intensity, sk_now_ns()) ? PHASE_RESTARTING
                                                                        : PHASE_GIVING_UP;
        }
        i++;
    }
    return PHASE_SUPERVISING;
}

static enum group_phase phase_give_up(struct supervision *s)
{
    sk_group *g = s->g;
    stop_all(g);
    pthread_mutex_lock(&g->lock);
    sk_group_error *err = &g->error;
    memset(err, 0, sizeof *err);
    snprintf(err->child, sizeof err->child, "%s", s->failed->name);
    sk_group_intensity_report(&g->intensity, group_seconds(g), err);
    sk_error_set_text(&err->error, SK_PROCESS_ERROR, SK_EPROCESS,
                      "Group '%s' gave up: more than %d restarts within %gs, the last for "
                      "child '%s'",
                      g->name, g->cfg.intensity, g->cfg.period, s->failed->name);
    size_t used = 0;
    for (int i = 0; i < err->nfailures && used < sizeof err->error.cause; i++) {
        const sk_group_failure *f = &err->failures[i];
        int w = snprintf(err->error.cause + used, sizeof err->error.cause - used, "%.3fs %s: %s\n",
                         f->at, f->child, f->error.message);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    g->has_error = true;
    pthread_mutex_unlock(&g->lock);
    sk_group_emit(g, SK_GROUP_GAVE_UP, NULL, &err->error);
    sk_group_end(g, SK_GROUP_FAILED);
    return PHASE_DONE;
}

static enum group_phase phase_stop(struct supervision *s)
{
    sk_group *g = s->g;
    stop_all(g);
    sk_group_emit(g, SK_GROUP_STOPPED, NULL, NULL);
    sk_group_end(g, SK_GROUP_ENDED); /* answers the stop command */
    return PHASE_DONE;
}

static void *group_thread(void *arg)
{
    struct supervision s = {.g = arg};
    enum group_phase phase = PHASE_STARTING;
    while (phase != PHASE_DONE) {
        switch (phase) {
        case PHASE_STARTING:
            phase = phase_start(&s);
            break;
        case PHASE_SUPERVISING:
            phase = phase_supervise(&s);
            break;
        case PHASE_RESTARTING:
            phase = phase_restart(&s);
            break;
        case PHASE_GIVING_UP:
            phase = phase_give_up(&s);
            break;
        case PHASE_STOPPING:
            phase = phase_stop(&s);
            break;
        case PHASE_DONE:
            break;
        }
    }
    return NULL;
}

/* ------------------------------------------------- the group's lifetime */

static void thread_join(sk_group *g)
{
    if (g->has_thread) {
        pthread_join(g->thread, NULL);
        g->has_thread = false;
    }
}

int sk_group_launch(sk_group *g)
{
    pthread_mutex_lock(&g->lock);
    g->state = SK_GROUP_RUNNING;
    g->start_done = false;
    g->started_ns = sk_now_ns();
    pthread_mutex_unlock(&g->lock);
    /* The thread starts the children: their parent-death signal then
     * follows a thread that lives as long as the group. */
    int rc = pthread_create(&g->thread, NULL, group_thread, g);
    if (rc != 0) {
        pthread_mutex_lock(&g->lock);
        g->state = SK_GROUP_IDLE;
        pthread_mutex_unlock(&g->lock);
        return sk_refuse(rc == EAGAIN ? SK_ENOMEM : SK_ESYS,
                         "sk_group_start: no thread for group '%s'", g->name);
    }
    g->has_thread = true;
    pthread_mutex_lock(&g->lock);
    while (!g->start_done)
        pthread_cond_wait(&g->answered, &g->lock);
    rc = g->start_rc;
    pthread_mutex_unlock(&g->lock);
    if (rc != SK_OK)
        thread_join(g);
    return rc;
}

int sk_group_command(sk_group *g, struct group_command *cmd)
{
    pthread_mutex_lock(&g->lock);
    if (g->state != SK_GROUP_RUNNING) {
        pthread_mutex_unlock(&g->lock);
        return SK_ESTATE;
    }
    g->command = cmd;
    sk_doorbell_ring(g->wake_fd);
    while (!cmd->done)
        pthread_cond_wait(&g->answered, &g->lock);
    g->command = NULL;
    pthread_mutex_unlock(&g->lock);
    return cmd->rc;
}

void sk_group_halt(sk_group *g)
{
    struct group_command cmd = {.kind = GROUP_CMD_STOP};
    sk_group_command(g, &cmd);
    thread_join(g);
}

int sk_group_await(sk_group *g, double timeout)
{
    pthread_mutex_lock(&g->lock);
    bool idle = g->state == SK_GROUP_IDLE;
    pthread_mutex_unlock(&g->lock);
    if (idle)
        return SK_OK;
    int64_t deadline = sk_deadline_ns(timeout);
    for (;;) {
        pthread_mutex_lock(&g->lock);
        sk_group_run_state state = g->state;
        pthread_mutex_unlock(&g->lock);
        if (state != SK_GROUP_RUNNING) {
            thread_join(g);
            return state == SK_GROUP_FAILED ? SK_EPROCESS : SK_OK;
        }
        int64_t left = deadline == INT64_MAX ? -1 : deadline - sk_now_ns();
        if (deadline != INT64_MAX && left <= 0)
            return SK_ETIMEDOUT;
        struct pollfd pfd = {.fd = g->end_fd, .events = POLLIN};
        poll(&pfd, 1, left < 0 ? -1 : (int)((left + 999999) / 1000000));
    }
}
