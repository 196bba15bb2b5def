/* SPDX-License-Identifier: MIT */
/*
 * The flow's fd (sk_flow_fd): one epoll set that is readable whenever
 * sk_flow_collect has something to give, so that an event loop needs no
 * tick of its own:
 *
 *   member                          readable when
 *   the parent's doorbell           the last step published, a status moved
 *   a timerfd                       the earliest task deadline passed
 *   a dup of each step process's    that process ended for good (its own
 *   pidfd                           child, the supervisor, exited)
 *
 * Whoever waits in the library takes the wake-ups (flow_wakeup_take): it
 * drains the doorbell, reads the timer and says which checks are due, and
 * drops a process that ended for good from the set, so that the fd does not
 * stay readable while the rest of the flow goes on. Without pidfds
 * (valgrind), a process's end is found by the periodic check instead.
 */
#include "flow/flow_internal.h"

#include "core/process.h"
#include "os/clock.h"
#include "os/fd.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define WAKE_DOORBELL UINT64_MAX
#define WAKE_TIMER (UINT64_MAX - 1)

static int watch(int ep, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? SK_OK : SK_ESYS;
}

int flow_wakeup_create(struct sk_flow *f)
{
    f->poll_fd = epoll_create1(EPOLL_CLOEXEC);
    f->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    f->timer_at = INT64_MAX;
    if (f->poll_fd < 0 || f->timer_fd < 0)
        return SK_ESYS;
    if (watch(f->poll_fd, f->doorbell, WAKE_DOORBELL) != SK_OK ||
        watch(f->poll_fd, f->timer_fd, WAKE_TIMER) != SK_OK)
        return SK_ESYS;
    return SK_OK;
}

int flow_wakeup_watch_processes(struct sk_flow *f)
{
    for (int g = 0; g < f->n_procs; g++) {
        int pidfd = sk_process_pidfd(&f->procs[g].base);
        if (pidfd < 0)
            continue; /* no pidfds here: the periodic check finds its end */
        /* A dup: the process closes its own when it is reaped. */
        f->procs[g].wake_pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
        if (f->procs[g].wake_pidfd < 0 ||
            watch(f->poll_fd, f->procs[g].wake_pidfd, (uint64_t)g) != SK_OK)
            return SK_ESYS;
    }
    return SK_OK;
}

void flow_wakeup_arm(struct sk_flow *f, int64_t deadline)
{
    if (deadline >= f->timer_at || f->timer_fd < 0)
        return;
    struct itimerspec its = {
        .it_value = {.tv_sec = deadline / SK_NS_PER_SEC, .tv_nsec = deadline % SK_NS_PER_SEC}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1; /* zero would disarm it */
    if (timerfd_settime(f->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        f->timer_at = deadline;
}

unsigned flow_wakeup_take(struct sk_flow *f)
{
    unsigned due = 0;
    struct epoll_event ev[16];
    int n;
    while ((n = epoll_wait(f->poll_fd, ev, 16, 0)) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64;
        if (tag == WAKE_DOORBELL) {
            sk_doorbell_drain(f->doorbell);
        } else if (tag == WAKE_TIMER) {
            uint64_t fired;
            if (read(f->timer_fd, &fired, sizeof fired) < 0) {
                /* EAGAIN: taken by another thread */
            }
            f->timer_at = INT64_MAX;
            due |= FLOW_DUE_DEADLINES;
        } else if (tag < (uint64_t)f->n_procs) {
            /* Ended for good: looked at now, and no more wake-ups from it. */
            struct flow_proc *fp = &f->procs[tag];
            epoll_ctl(f->poll_fd, EPOLL_CTL_DEL, fp->wake_pidfd, NULL);
            sk_fd_close(&fp->wake_pidfd);
            due |= FLOW_DUE_PROCESSES;
        }
    }
    return due;
}

void flow_wakeup_release(struct sk_flow *f)
{
    for (int g = 0; f->procs != NULL && g < f->n_procs; g++)
        sk_fd_close(&f->procs[g].wake_pidfd);
    sk_fd_close(&f->poll_fd);
    sk_fd_close(&f->timer_fd);
}
