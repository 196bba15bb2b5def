/* SPDX-License-Identifier: MIT */
/*
 * A group's record: its children array, what it publishes under its lock
 * (children's states, its run state), its events, the errors it makes, and
 * its memory. Nothing here starts or stops a process: that is the thread's
 * (supervise.c) and one child's (child.c).
 */
#include "group/group_internal.h"
#include "os/fd.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

/* Puts the child's end-of-life fd into the thread's epoll set, or leaves
 * it to be polled where there is none (no pidfds under valgrind). */
void sk_group_watch(sk_group *g, struct group_child *c, int fd)
{
    c->watch_fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
    if (c->watch_fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, c->watch_fd, &ev) != 0)
        sk_fd_close(&c->watch_fd);
}

void sk_group_unwatch(sk_group *g, struct group_child *c)
{
    if (c->watch_fd >= 0)
        epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, c->watch_fd, NULL);
    sk_fd_close(&c->watch_fd);
}

void sk_group_emit(sk_group *g, sk_group_event_kind kind, const struct group_child *c,
                   const sk_error *error)
{
    if (g->cfg.on_event == NULL)
        return;
    sk_group_event ev = {.kind = kind,
                         .group = g->name,
                         .child = c != NULL ? c->name : NULL,
                         .pid = c != NULL && c->live ? c->pid : -1,
                         .restarts = c != NULL ? c->restarts : 0,
                         .error = error};
    g->cfg.on_event(&ev, g->cfg.event_ctx);
}

void sk_group_publish(sk_group *g, struct group_child *c, sk_group_child_state state, pid_t pid)
{
    pthread_mutex_lock(&g->lock);
    c->state = state;
    c->pid = state == SK_CHILD_STOPPED ? -1 : pid;
    pthread_mutex_unlock(&g->lock);
}

void sk_group_end(sk_group *g, sk_group_run_state state)
{
    pthread_mutex_lock(&g->lock);
    g->state = state;
    if (g->command != NULL && !g->command->done && g->command->kind != GROUP_CMD_STOP) {
        g->command->rc = SK_ESTATE;
        g->command->done = true;
    } else if (g->command != NULL && g->command->kind == GROUP_CMD_STOP) {
        g->command->rc = SK_OK;
        g->command->done = true;
    }
    pthread_cond_broadcast(&g->answered);
    pthread_mutex_unlock(&g->lock);
    sk_doorbell_ring(g->end_fd);
}

bool sk_group_children_append(sk_group *g, struct group_child *c)
{
    pthread_mutex_lock(&g->lock);
    if (g->nchildren == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 8;
        struct group_child **more = realloc(g->children, cap * sizeof *more);
        if (more == NULL) {
            pthread_mutex_unlock(&g->lock);
            return false;
        }
        g->children = more;
        g->cap = cap;
    }
    g->children[g->nchildren++] = c;
    if (c->group != NULL)
        c->group->owned = true;
    pthread_mutex_unlock(&g->lock);
    return true;
}

void sk_group_forget_child(sk_group *g, struct group_child *c)
{
    pthread_mutex_lock(&g->lock);
    for (size_t i = 0; i < g->nchildren; i++)
        if (g->children[i] == c) {
            memmove(&g->children[i], &g->children[i + 1],
                    (g->nchildren - i - 1) * sizeof g->children[0]);
            g->nchildren--;
            break;
        }
    if (c->group != NULL)
        c->group->owned = false;
    pthread_mutex_unlock(&g->lock);
}

void sk_group_rearm(sk_group *g)
{
    pthread_mutex_lock(&g->lock);
    g->state = SK_GROUP_IDLE;
    g->has_error = false;
    memset(&g->error, 0, sizeof g->error);
    g->total_restarts = 0;
    for (size_t i = 0; i < g->nchildren; i++)
        g->children[i]->restarts = 0;
    pthread_mutex_unlock(&g->lock);
    sk_group_intensity_reset(&g->intensity);
    sk_doorbell_drain(g->end_fd);
}

/* Frees g and everything it holds. Its thread has ended and every child
 * is stopped; process children's handles are released, group children
 * freed the same way. */
struct group_child *sk_group_find_child(const sk_group *g, const char *name)
{
    for (size_t i = 0; i < g->nchildren; i++)
        if (strcmp(g->children[i]->name, name) == 0)
            return g->children[i];
    return NULL;
}

void sk_group_free(sk_group *g)
{
    for (size_t i = 0; i < g->nchildren; i++) {
        struct group_child *c = g->children[i];
        if (c->process != NULL)
            sk_release(c->process);
        else
            sk_group_free(c->group);
        free(c);
    }
    free(g->children);
    sk_group_intensity_free(&g->intensity);
    sk_fd_close(&g->end_fd);
    sk_fd_close(&g->wake_fd);
    sk_fd_close(&g->epoll_fd);
    pthread_cond_destroy(&g->answered);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
