/* SPDX-License-Identifier: MIT */
/*
 * What the session sleeps on, in one epoll set (sk_sched_fd):
 *
 *   wake_fd   an eventfd: sk_sched_shutdown (any thread, a signal handler),
 *             sk_sched_run_task, a thread run that returned
 *   clock_fd  a timerfd on CLOCK_REALTIME, absolute: the next time a
 *             condition can change (only with the real clock: a test's
 *             clock is not the kernel's)
 *   mono_fd   a timerfd on CLOCK_MONOTONIC, absolute: the next timeout or
 *             kill bound of a run, and the look at runs without a pidfd
 *   a dup of each process run's pidfd: readable when the run's process
 *             (its supervisor) exited
 *
 * Nothing in it is readable while nothing is due, so a session that waits
 * costs no CPU. A timer is rewritten only when its time changes.
 *
 * SIGINT and SIGTERM, while sk_sched_run runs with signals on, call
 * sk_sched_shutdown for every session that runs: the handler only stores a
 * flag and writes the eventfd, which are async-signal-safe. A process
 * forked by a task inherits the handler; there the signal is the process's
 * own, so the handler puts back what was there before and raises it again.
 */
#include "core/error.h"
#include "os/clock.h"
#include "os/fd.h"
#include "sched/session.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int64_t sk_sched_now(const sk_sched *s)
{
    return s->cfg.clock != NULL ? s->cfg.clock(s->cfg.clock_arg) : sk_cond_now();
}

static int watch_add(int epoll_fd, int fd, uint64_t data)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

int sk_wait_open(sk_sched *s)
{
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = sk_doorbell_create();
    s->mono_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    s->clock_fd =
        s->cfg.clock == NULL ? timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK) : -1;
    s->armed_clock = s->armed_mono = INT64_MAX;
    s->signal_slot = -1;
    if (s->epoll_fd < 0 || s->wake_fd < 0 || s->mono_fd < 0 ||
        (s->cfg.clock == NULL && s->clock_fd < 0) ||
        watch_add(s->epoll_fd, s->wake_fd, SCHED_EV_WAKE) != 0 ||
        watch_add(s->epoll_fd, s->mono_fd, SCHED_EV_MONO) != 0 ||
        (s->clock_fd >= 0 && watch_add(s->epoll_fd, s->clock_fd, SCHED_EV_CLOCK) != 0)) {
        int rc = sk_refuse(errno == ENOMEM ? SK_ENOMEM : SK_ESYS,
                           "sk_sched_create: the session's descriptors: %s", strerror(errno));
        sk_wait_close(s);
        return rc;
    }
    return SK_OK;
}

void sk_wait_close(sk_sched *s)
{
    sk_fd_close(&s->clock_fd);
    sk_fd_close(&s->mono_fd);
    sk_fd_close(&s->wake_fd);
    sk_fd_close(&s->epoll_fd);
}

static void timer_set(int fd, int64_t at, int64_t *armed)
{
    if (fd < 0 || at == *armed)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (at != INT64_MAX)
        its.it_value = sk_ns_to_timespec(at > 0 ? at : 1);
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        *armed = at;
}

void sk_wait_arm(sk_sched *s, int64_t clock_at, int64_t mono_at)
{
    if (clock_at == SK_COND_NO_CHANGE)
        clock_at = INT64_MAX;
    timer_set(s->clock_fd, clock_at, &s->armed_clock);
    timer_set(s->mono_fd, mono_at, &s->armed_mono);
}

void sk_wait_clear(int fd)
{
    uint64_t expirations;
    ssize_t n = read(fd, &expirations, sizeof expirations);
    (void)n; /* EAGAIN: it had not fired */
}

void sk_wait_watch(sk_sched *s, sk_task_run *r, int pidfd)
{
    r->watch_fd = pidfd >= 0 ? fcntl(pidfd, F_DUPFD_CLOEXEC, 3) : -1;
    if (r->watch_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
        if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, r->watch_fd, &ev) == 0)
            return;
        sk_fd_close(&r->watch_fd);
    }
    s->npolled++; /* looked at every SCHED_POLL_MS (cycle.c) */
}

void sk_wait_unwatch(sk_sched *s, sk_task_run *r)
{
    if (r->watch_fd >= 0) {
        epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, r->watch_fd, NULL);
        sk_fd_close(&r->watch_fd);
    } else if (s->npolled > 0) {
        s->npolled--;
    }
}

int sk_sched_fd(sk_sched *s)
{
    if (s == NULL)
        return sk_refuse(SK_EINVAL, "sk_sched_fd: the session is NULL");
    return s->epoll_fd;
}

int sk_sched_shutdown(sk_sched *s)
{
    if (s == NULL)
        return SK_EINVAL;
    atomic_store(&s->shutdown_asked, 1);
    sk_doorbell_ring(s->wake_fd);
    return SK_OK;
}

/* ------------------------------------------------------------ signals */

#define SIGNAL_SLOTS 64

static _Atomic(sk_sched *) signal_targets[SIGNAL_SLOTS];
static pthread_mutex_t signal_lock = PTHREAD_MUTEX_INITIALIZER;
static int signal_users; /* sessions in the table; the handlers are ours while > 0 */
static struct sigaction old_int, old_term; /* what was there before */
static volatile pid_t signal_owner;        /* the process that installed them */

static void on_signal(int sig)
{
    int saved = errno;
    if (getpid() != signal_owner) {
        sigaction(sig, sig == SIGINT ? &old_int : &old_term, NULL);
        raise(sig); /* delivered when this handler returns */
        errno = saved;
        return;
    }
    for (int i = 0; i < SIGNAL_SLOTS; i++) {
        sk_sched *s = atomic_load(&signal_targets[i]);
        if (s != NULL)
            sk_sched_shutdown(s);
    }
    errno = saved;
}

int sk_wait_signals_on(sk_sched *s)
{
    pthread_mutex_lock(&signal_lock);
    int slot = -1;
    for (int i = 0; i < SIGNAL_SLOTS && slot < 0; i++)
        if (atomic_load(&signal_targets[i]) == NULL)
            slot = i;
    if (slot < 0) {
        pthread_mutex_unlock(&signal_lock);
        return sk_refuse(SK_ESTATE, "sk_sched_run: more than %d sessions run with signals on",
                         SIGNAL_SLOTS);
    }
    if (signal_users == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        signal_owner = getpid();
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    }
    signal_users++;
    atomic_store(&signal_targets[slot], s);
    s->signal_slot = slot;
    pthread_mutex_unlock(&signal_lock);
    return SK_OK;
}

void sk_wait_signals_off(sk_sched *s)
{
    if (s->signal_slot < 0)
        return;
    pthread_mutex_lock(&signal_lock);
    atomic_store(&signal_targets[s->signal_slot], NULL);
    s->signal_slot = -1;
    if (--signal_users == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    pthread_mutex_unlock(&signal_lock);
}
