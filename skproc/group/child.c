/* SPDX-License-Identifier: MIT */
/*
 * A process child of a group (a spawned program is one too), in the
 * group's thread: start it and wait until it is ready, stop it within its
 * shutdown bound, collect it when it ended by itself.
 */
#include "core/error.h"
#include "group/group_internal.h"
#include "core/process.h"
#include "os/clock.h"
#include "os/fd.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The worker's pid, for the group's state: a supervised process that is
 * ready on start may not have forked its worker yet when sk_start returns,
 * and nothing tells when it has, so this looks every 50 us (a fork takes a
 * millisecond or less). -1 when the process ended first or no worker came
 * within the bound. */
static pid_t worker_pid(const sk_process *p, double bound)
{
    int64_t deadline = sk_deadline_ns(bound < 0 ? 1.0 : bound);
    pid_t pid;
    while ((pid = sk_pid(p)) <= 0 && sk_alive(p) && sk_now_ns() < deadline) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 50000};
        nanosleep(&ts, NULL);
    }
    return pid;
}

int sk_group_process_start(sk_group *g, struct group_child *c, sk_error *why)
{
    sk_process *p = c->process;
    int rc = c->started ? sk_process_rearm(p) : SK_OK;
    if (rc == SK_OK)
        rc = sk_start(p);
    c->started = true;
    if (rc != SK_OK) {
        sk_error_set_text(why, SK_PROCESS_ERROR, rc, "Child '%s' could not be started: %s", c->name,
                          *sk_last_error_message() ? sk_last_error_message() : sk_strerror(rc));
        return SK_EPROCESS;
    }
    c->live = true;
    /* a supervised worker may not be forked yet: -1 */
    sk_group_publish(g, c, SK_CHILD_STARTING, sk_pid(p));
    sk_group_emit(g, SK_GROUP_CHILD_STARTED, c, NULL);

    rc = sk_wait_ready(p, c->ready_timeout);
    if (rc == SK_OK) {
        sk_group_publish(g, c, SK_CHILD_STARTING, worker_pid(p, c->ready_timeout));
        sk_group_watch(g, c, sk_process_pidfd(p));
        return SK_OK;
    }
    if (rc == SK_ETIMEDOUT) {
        sk_kill(p); /* its whole tree, with its supervisor */
        sk_error_set_text(why, SK_TIMEOUT_ERROR, SK_ETIMEDOUT,
                          "Child '%s' was not ready within %gs", c->name, c->ready_timeout);
        why->timeout = c->ready_timeout;
    } else if (rc == SK_EPROCESS && sk_error_of(p) != NULL) {
        *why = *sk_error_of(p);
    } else {
        sk_error_set_text(why, SK_PROCESS_ERROR, rc, "Child '%s' ended before it was ready (%s)",
                          c->name, sk_strerror(rc));
    }
    c->live = false;
    return SK_EPROCESS;
}

/* Stop, wait up to the bound, then kill: sk_kill ends the whole tree of a
 * process that has a supervisor. */
void sk_group_process_stop(struct group_child *c)
{
    sk_process *p = c->process;
    if (c->shutdown == SK_SHUTDOWN_BRUTAL_KILL) {
        sk_kill(p);
        return;
    }
    sk_stop(p);
    double bound = c->shutdown == SK_SHUTDOWN_INFINITY ? -1 : c->shutdown;
    if (sk_wait(p, bound) != SK_OK)
        sk_kill(p);
}

/* Its top process has exited: collects what it left; true and *why when
 * that was a failure. */
bool sk_group_process_reap(struct group_child *c, sk_error *why)
{
    if (sk_wait(c->process, 5.0) != SK_OK)
        sk_kill(c->process);
    const sk_error *e = sk_error_of(c->process);
    if (e != NULL)
        *why = *e;
    return e != NULL;
}
